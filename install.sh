#!/usr/bin/env bash
# Builds tokenward from this checkout and installs it.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ./install.sh [--prefix DIR] [--data-dir DIR] [--no-systemd] [--help]

Builds the release binary from this checkout and installs it to PREFIX/bin.

  --prefix DIR    where to install (default: /usr/local as root, ~/.local otherwise)
  --data-dir DIR  where the database lives (default: /var/lib/tokenward as root,
                  ${XDG_DATA_HOME:-~/.local/share}/tokenward otherwise)
  --no-systemd    do not create the tokenward user and systemd unit
  --help          show this help

As root on a machine running systemd, it also creates a "tokenward" system
user owning the data folder and a hardened unit, tokenward.service, listening
on 127.0.0.1:8080 (edit TOKENWARD_ADDR in the unit to change that).
Running it again upgrades in place; the database is never touched.
USAGE
}

is_root() { [ "$(id -u)" -eq 0 ]; }

prefix=""
data_dir=""
systemd=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --data-dir) data_dir="${2:?--data-dir needs a folder}"; shift 2 ;;
    --data-dir=*) data_dir="${1#*=}"; shift ;;
    --no-systemd) systemd=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if is_root; then
  prefix="${prefix:-/usr/local}"
  data_dir="${data_dir:-/var/lib/tokenward}"
else
  prefix="${prefix:-$HOME/.local}"
  data_dir="${data_dir:-${XDG_DATA_HOME:-$HOME/.local/share}/tokenward}"
fi

source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v cargo >/dev/null || { echo "install.sh: cargo is needed to build tokenward (https://rustup.rs)" >&2; exit 1; }

echo "==> building tokenward (release)"
(cd "$source_dir" && cargo build --release --locked)

# Where cargo put it: CARGO_TARGET_DIR or a configured build.target-dir move
# it out of ./target. cargo metadata knows; its JSON is read with sed, since
# neither jq nor python can be counted on.
target_dir="$(cd "$source_dir" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')" || true
target_dir="${target_dir:-${CARGO_TARGET_DIR:-$source_dir/target}}"
case "$target_dir" in /*) ;; *) target_dir="$source_dir/$target_dir" ;; esac
binary="$target_dir/release/tokenward"
[ -x "$binary" ] || { echo "install.sh: cargo built tokenward but $binary is missing" >&2; exit 1; }

echo "==> installing $prefix/bin/tokenward"
install -d "$prefix/bin"
install -m 0755 "$binary" "$prefix/bin/tokenward.new"
mv -f "$prefix/bin/tokenward.new" "$prefix/bin/tokenward"

echo "==> data folder $data_dir"
install -d -m 0750 "$data_dir"

if [ "$systemd" -eq 1 ] && is_root && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  if ! id tokenward >/dev/null 2>&1; then
    echo "==> creating system user tokenward"
    useradd --system --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin tokenward
  fi
  chown tokenward:tokenward "$data_dir"
  unit=/etc/systemd/system/tokenward.service
  echo "==> writing $unit"
  cat > "$unit" <<UNIT
[Unit]
Description=tokenward API token server
After=network.target

[Service]
User=tokenward
Group=tokenward
Environment=TOKENWARD_ADDR=127.0.0.1:8080
Environment=TOKENWARD_DB=$data_dir/tokenward.db
ExecStart=$prefix/bin/tokenward serve
Restart=on-failure
# systemd's default soft limit of 1 024 open files would cap connections.
LimitNOFILE=65536
# Hardening: the service sees a read-only system and writes only its data.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths=$data_dir
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
CapabilityBoundingSet=
UMask=0077

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable tokenward.service >/dev/null
  systemctl restart tokenward.service
  echo "==> tokenward.service is running: systemctl status tokenward; journalctl -u tokenward"
else
  echo "==> run it with: $prefix/bin/tokenward serve --db $data_dir/tokenward.db"
fi
echo "==> installed $("$prefix/bin/tokenward" --version)"
