#!/usr/bin/env bash
# ZooKeeper as shipped (Debian's 3.8.0, default settings: fsync on every write
# batch), 3 members on loopback, loaded by `zk-bench` (closed-loop setData of
# 16-byte values over 1000 znodes, one session per client) with 1, 16, 64 and 256
# clients; then Synod's Zab, 3 `synod node` processes with the file WAL (fsync on),
# loaded by `synod bench --workload write` (puts of 16-byte values over 1000 keys)
# with the same client counts — one run, one machine, one table.
#
# Usage: scripts/bench-zookeeper.sh [SECONDS_PER_POINT]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
bash scripts/install-zookeeper.sh
cargo build --release -q -p synod-benches --bin zk-bench
cargo build --release -q -p synod-harness
dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  target/release/synod cluster down --dir "$dir/synod" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

row='
import json, sys
d = json.load(sys.stdin)
l = d["latency_us"]
cells = [sys.argv[1], d["clients"], round(d["ok_per_sec"]), l["p50"], l["p99"], l["p999"]]
print("| " + " | ".join(str(c) for c in cells) + " |")
'
servers=""
for i in 1 2 3; do servers+="server.$i=127.0.0.1:2288$i:2388$i"$'\n'; done
for i in 1 2 3; do
  mkdir -p "$dir/zk$i/data"
  echo "$i" > "$dir/zk$i/data/myid"
  cat > "$dir/zk$i/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/zk$i/data
clientPort=2218$i
admin.enableServer=false
4lw.commands.whitelist=srvr
$servers
CFG
  java -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar" \
    -Dzookeeper.log.dir="$dir/zk$i" -Dzookeeper.root.logger=WARN,CONSOLE \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zk$i/zoo.cfg" \
    > "$dir/zk$i/out.log" 2>&1 &
  pids+=($!)
done
# Serving once some member says it leads (bounded: 60 s).
leads() { { exec 3<>"/dev/tcp/127.0.0.1/$1" && echo srvr >&3 && cat <&3; } 2>/dev/null | grep -q "Mode: leader"; }
serving=""
for _ in $(seq 120); do
  for i in 1 2 3; do
    if leads "2218$i"; then serving=yes; break 2; fi
  done
  sleep 0.5
done
if [ -z "$serving" ]; then
  echo "ZooKeeper did not elect a leader in 60 s; member 1's log:" >&2
  tail -20 "$dir/zk1/out.log" >&2
  exit 1
fi
zk_addrs=127.0.0.1:22181,127.0.0.1:22182,127.0.0.1:22183
echo "| system | clients | writes/s | p50 µs | p99 µs | p999 µs |"
echo "|---|---|---|---|---|---|"
target/release/zk-bench --addr "$zk_addrs" --clients 1 --duration 1 >/dev/null # creates the znodes
for clients in 1 16 64 256; do
  target/release/zk-bench --addr "$zk_addrs" --clients "$clients" --duration "$secs" |
    python3 -c "$row" "zookeeper 3.8.0"
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()

target/release/synod cluster up --protocol zab --nodes 3 --dir "$dir/synod" --base-port 27000 >/dev/null
addrs=127.0.0.1:27101,127.0.0.1:27102,127.0.0.1:27103
for clients in 1 16 64 256; do
  target/release/synod bench --addr "$addrs" --clients "$clients" --duration "$secs" --workload write --json |
    python3 -c "$row" "synod zab"
done
