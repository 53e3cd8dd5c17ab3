#!/usr/bin/env bash
# Runs the fuzz targets, each for SECONDS, on stable Rust.
#
#   fuzz/run.sh TARGET|all SECONDS
#
# `-s none` builds without a sanitizer, which is what lets stable Rust build
# the targets (sanitizers need nightly); coverage instrumentation is all that
# libFuzzer needs, and safe Rust already panics where a sanitizer would
# report. New inputs go to fuzz/work/TARGET (not committed); the committed
# corpus in fuzz/corpus/TARGET only seeds the run. A crash is saved in
# fuzz/artifacts/TARGET, which `cargo test --test fuzz_corpus` replays.
set -euo pipefail

usage="usage: fuzz/run.sh TARGET|all SECONDS"
target=${1:?$usage}
seconds=${2:?$usage}
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$target" = all ]; then
    targets=$(cargo fuzz list)
else
    targets=$target
fi

failed=""
for name in $targets; do
    mkdir -p "work/$name"
    echo "== $name: ${seconds} s"
    if ! cargo fuzz run -s none "$name" "work/$name" "corpus/$name" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        failed="$failed $name"
    fi
done

if [ -n "$failed" ]; then
    echo "crashed:$failed (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
