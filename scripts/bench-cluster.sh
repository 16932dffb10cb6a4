#!/usr/bin/env bash
# Real-cluster bench: for each protocol, a 3-node loopback cluster of separate
# `synod node` processes (file WAL with fsync, then in-memory storage), loaded by
# `synod bench` with 1, 16, 64 and 256 closed-loop clients.
#
# Usage: scripts/bench-cluster.sh [SECONDS_PER_POINT] [PROTOCOLS...]
# Prints one markdown table row per point: answered operations per second (`ok` and
# `cas` mismatches, both committed through the log), `ok` ones alone, and latency.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
shift || true
protocols=("${@:-raft paxos}")
cargo build --release -q -p synod-harness
synod=target/release/synod
dir="$(mktemp -d)"
trap '$synod cluster down --dir "$dir/c" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
row='
import json, sys
d = json.load(sys.stdin)
l = d["latency_us"]
cells = [sys.argv[1], sys.argv[2], d["clients"], round(d["ops_per_sec"]), round(d["ok_per_sec"]), l["p50"], l["p99"], l["p999"]]
print("| " + " | ".join(str(c) for c in cells) + " |")
'
echo "| protocol | storage | clients | ops/s | ok ops/s | p50 µs | p99 µs | p999 µs |"
echo "|---|---|---|---|---|---|---|---|"
for protocol in ${protocols[@]}; do
  for storage in fsync memory; do
    flags=()
    [ "$storage" = memory ] && flags=(--memory)
    rm -rf "$dir/c"
    $synod cluster up --protocol "$protocol" --nodes 3 --dir "$dir/c" --base-port 27000 "${flags[@]}" >/dev/null
    addrs=127.0.0.1:27101,127.0.0.1:27102,127.0.0.1:27103
    for clients in 1 16 64 256; do
      $synod bench --addr "$addrs" --clients "$clients" --duration "$secs" --json |
        python3 -c "$row" "$protocol" "$storage"
    done
    $synod cluster down --dir "$dir/c" >/dev/null
  done
done
