#!/usr/bin/env python3
"""Adds to the committed corpus of a target at most COUNT inputs from its
work corpus, chosen greedily for the coverage edges they add.

    fuzz/minimise.py TARGET [COUNT]

libFuzzer's own merge keeps every input that adds any feature, which after a
few minutes is hundreds of files, most of them for one branch deep in the
JSON parser. Kept here: the committed inputs, then each time the input that
reaches the most edges none kept reaches yet, the smallest on a tie. Run
fuzz/run.sh first: it builds the target and fills fuzz/work/TARGET.
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FUZZ = Path(__file__).resolve().parent


def edges_per_file(binary, corpus, work):
    """Runs libFuzzer's merge only for its control file: each input's edges."""
    with tempfile.TemporaryDirectory() as scratch:
        control = Path(scratch) / "control"
        out = Path(scratch) / "out"
        out.mkdir()
        subprocess.run(
            [binary, "-merge=1", "-use_counters=0",
             f"-merge_control_file={control}", out, corpus, work],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        lines = control.read_text().splitlines()
    count = int(lines[0])
    paths = [Path(p) for p in lines[2:2 + count]]
    edges = {}
    for line in lines[2 + count:]:
        if line.startswith("COV "):
            _, index, *found = line.split()
            edges[paths[int(index)]] = set(found)
    return edges


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    target = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) == 3 else 50
    binary = FUZZ / "target/x86_64-unknown-linux-gnu/release" / target
    corpus, work = FUZZ / "corpus" / target, FUZZ / "work" / target
    edges = edges_per_file(binary, corpus, work)

    everything = set().union(*edges.values())
    covered = set().union(*(e for p, e in edges.items() if p.parent == corpus))
    candidates = {p: e for p, e in edges.items() if p.parent == work}
    added = 0
    while added < limit and candidates:
        best = max(candidates,
                   key=lambda p: (len(candidates[p] - covered), -p.stat().st_size))
        if not candidates[best] - covered:
            break
        covered |= candidates.pop(best)
        name = hashlib.sha1(best.read_bytes()).hexdigest()
        shutil.copyfile(best, corpus / name)
        added += 1
    print(f"{target}: added {added} inputs; the corpus reaches "
          f"{len(covered)} of the {len(everything)} edges reached")


if __name__ == "__main__":
    main()
