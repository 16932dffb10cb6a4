#!/usr/bin/env bash
# ZooKeeper as shipped (Debian's 3.8.0, default settings: fsync on every write
# batch), 3 members on loopback, loaded by `anchor-load --backend zookeeper`
# (closed-loop setData of 16-byte values over 1000 znodes, one session per client;
# benches/anchors, shared with scripts/bench-anchors.sh) with 1, 16, 64 and 256
# clients; then Synod's Zab, 3 `synod node` processes with the file WAL (fsync on),
# loaded by `synod bench --workload write` (puts of 16-byte values over 1000 keys)
# with the same client counts — one run, one machine, one table.
#
# Usage: scripts/bench-zookeeper.sh [SECONDS_PER_POINT]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/zookeeper-ensemble.sh
source scripts/zookeeper-ensemble.sh
secs="${1:-5}"
bash scripts/install-zookeeper.sh
cargo build --release -q -p synod-anchors
cargo build --release -q -p synod-harness
dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  target/release/synod cluster down --dir "$dir/synod" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# ZooKeeper as shipped (scripts/zookeeper-ensemble.sh), serving within 60 s.
start_zookeeper "$dir" 60
echo "| system | clients | writes/s | p50 µs | p99 µs | p999 µs |"
echo "|---|---|---|---|---|---|"
zk_load() { target/release/anchor-load --backend zookeeper --addr "$zk_addrs" "$@"; }
zk_load --clients 1 --duration 1 >/dev/null # creates the znodes
for clients in 1 16 64 256; do
  zk_load --clients "$clients" --duration "$secs" --json |
    python3 scripts/bench_row.py "zookeeper 3.8.0"
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()

target/release/synod cluster up --protocol zab --nodes 3 --dir "$dir/synod" --base-port 27000 >/dev/null
addrs=127.0.0.1:27101,127.0.0.1:27102,127.0.0.1:27103
for clients in 1 16 64 256; do
  target/release/synod bench --addr "$addrs" --clients "$clients" --duration "$secs" --workload write --json |
    python3 scripts/bench_row.py "synod zab"
done
