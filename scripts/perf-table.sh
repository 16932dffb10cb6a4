#!/usr/bin/env bash
# Runs the paired bench (Synod beside raft-rs, openraft and omnipaxos, and Zab and
# vvsync beside Synod's Raft) and regenerates docs/performance.md's peer table from
# its output — the table is never typed by hand. The raw output stays in
# target/paired-bench.txt.
#
# Usage: scripts/perf-table.sh [PAIRINGS…]   (default: all; e.g. `raft paxos`)
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/paired-bench.txt
mkdir -p target
cargo bench -p synod-benches --bench paired -- "$@" | tee "$out"
python3 scripts/perf_table.py "$out" --write docs/performance.md
