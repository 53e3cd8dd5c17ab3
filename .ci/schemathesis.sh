#!/usr/bin/env bash
# Schemathesis against the release binary and its own OpenAPI document: all
# phases (examples, coverage, fuzzing, stateful), every check, signed in as
# an instance admin. The checks the contract deliberately contradicts are
# switched off in schemathesis.toml, each with its reason. Every built-in
# check runs by default; `--checks all` is not given because a check named
# on the command line overrides the file's switching off.
#
#   .ci/schemathesis.sh            # as CI runs it
#   SCHEMATHESIS_EXAMPLES=500 SCHEMATHESIS_SEED=random SCHEMATHESIS_TIMEOUT=3600 .ci/schemathesis.sh
#
# Schemathesis comes from PyPI into a venv under target/ (made once, reused).
set -euo pipefail
cd "$(dirname "$0")/.."

version="4.32.5"
examples="${SCHEMATHESIS_EXAMPLES:-100}"
seed="${SCHEMATHESIS_SEED:-20260325}"
# The whole run, server start-up included, stays under this many seconds.
budget="${SCHEMATHESIS_TIMEOUT:-540}"

venv="target/schemathesis-venv"
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $version" ]; then
  echo "==> installing schemathesis $version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

echo "==> cargo build --release"
cargo build --release --locked --quiet
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')" || true
binary="${target_dir:-target}/release/tokenward"

scratch="$(mktemp -d)"
trap 'kill "${server_pid:-}" 2>/dev/null || true; rm -rf "$scratch"' EXIT
"$binary" serve --addr 127.0.0.1:0 --db "$scratch/tokenward.db" \
  >"$scratch/out.log" 2>"$scratch/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^tokenward listening on //p' "$scratch/out.log")"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$scratch/server.log"; echo "tokenward did not start" >&2; exit 1; }

# The instance admin's session, a verifier token and a few real objects,
# exported for schemathesis.toml.
eval "$("$venv/bin/python" .ci/schemathesis-setup.py "$url")"

echo "==> schemathesis run $url/api/v1/openapi.json (-n $examples, seed $seed, at most ${budget}s)"
seed_option=(--seed "$seed")
[ "$seed" = "random" ] && seed_option=()
started=$SECONDS
status=0
timeout --signal=INT --kill-after=30 "$budget" \
  "$venv/bin/schemathesis" --config-file schemathesis.toml run "$url/api/v1/openapi.json" \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$examples" \
  "${seed_option[@]}" \
  --no-color || status=$?
echo "schemathesis took $((SECONDS - started)) s"
if [ "$status" -ne 0 ]; then
  echo "--- server log (last 50 lines)"
  tail -n 50 "$scratch/server.log"
  [ "$status" -eq 124 ] && echo "schemathesis ran out of its ${budget}s" >&2
  exit "$status"
fi
