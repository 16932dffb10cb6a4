#!/usr/bin/env bash
# Synod beside the systems users would pick instead: etcd (Debian's etcd-server 3.4)
# and ZooKeeper (Debian's 3.8), each as shipped (fsync on every write batch), 3
# members on loopback, then Synod's raft, paxos and zab clusters (3 `synod node`
# processes each, file WAL with fsync). One load generator drives them all —
# `anchor-load` (benches/anchors): closed-loop puts of fresh 16-byte values on keys
# drawn uniformly from 1000, one session and connection per client, 1, 16, 64 and
# 256 clients — and one markdown table comes out.
#
# Usage: scripts/bench-anchors.sh [SECONDS_PER_POINT]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/zookeeper-ensemble.sh
source scripts/zookeeper-ensemble.sh
secs="${1:-5}"
# Every wait and every load point is bounded.
start_wait_max=60
load_secs_max=$((secs + 60))

if ! command -v etcd >/dev/null || ! command -v protoc >/dev/null \
    || [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # protoc and protobuf's own .proto files: the etcd-client crate's build script
  # compiles etcd's .proto files, which import descriptor.proto.
  apt-get install -y -q etcd-server protobuf-compiler libprotobuf-dev >/dev/null
fi
bash scripts/install-zookeeper.sh
cargo build --release -q -p synod-anchors --features etcd
cargo build --release -q -p synod-harness

dir="$(mktemp -d)"
pids=()
synod_dirs=()
stop_members() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_members
  for d in "${synod_dirs[@]}"; do
    target/release/synod cluster down --dir "$d" >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

# load LABEL BACKEND ADDRS: the four load points of one system.
load() {
  local label="$1" backend="$2" addrs="$3"
  for clients in 1 16 64 256; do
    timeout "$load_secs_max" target/release/anchor-load --backend "$backend" --addr "$addrs" \
      --clients "$clients" --duration "$secs" --keys 1000 --json |
      python3 scripts/bench_row.py "$label"
  done
}

echo "| system | clients | writes/s | p50 µs | p99 µs | p999 µs |"
echo "|---|---|---|---|---|---|"

# etcd: member i serves clients on 2379+100(i-1) and peers on 2380+100(i-1).
etcd_version="$(etcd --version | awk 'NR == 1 { print $3 }')"
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://127.0.0.1:$((2280 + 100 * i))"; done
for i in 1 2 3; do
  client="http://127.0.0.1:$((2279 + 100 * i))"
  peer="http://127.0.0.1:$((2280 + 100 * i))"
  etcd --name "e$i" --data-dir "$dir/e$i" \
    --initial-advertise-peer-urls "$peer" --listen-peer-urls "$peer" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --initial-cluster "$cluster" --initial-cluster-state new \
    --initial-cluster-token synod-anchors --log-level warn --logger zap \
    > "$dir/e$i.log" 2>&1 &
  pids+=($!)
done
healthy=""
for _ in $(seq $((start_wait_max * 2))); do
  if curl -sf --max-time 1 http://127.0.0.1:2379/health | grep -q '"health":"true"'; then
    healthy=yes
    break
  fi
  sleep 0.5
done
if [ -z "$healthy" ]; then
  echo "etcd was not healthy within $start_wait_max s; member 1's log:" >&2
  tail -20 "$dir/e1.log" >&2
  exit 1
fi
load "etcd $etcd_version" etcd 127.0.0.1:2379,127.0.0.1:2479,127.0.0.1:2579
stop_members

# ZooKeeper as shipped (scripts/zookeeper-ensemble.sh).
zk_version="$(dpkg-query -W -f '${Version}' zookeeper | cut -d- -f1)"
start_zookeeper "$dir" "$start_wait_max"
# Creates the 1000 znodes before any timed point.
timeout "$load_secs_max" target/release/anchor-load --backend zookeeper --addr "$zk_addrs" \
  --clients 1 --duration 1 >/dev/null
load "zookeeper $zk_version" zookeeper "$zk_addrs"
stop_members

# Synod: one cluster per protocol, each on its own ports (clients on BASE+101..103).
base=27000
for protocol in raft paxos zab; do
  synod_dirs+=("$dir/synod-$protocol")
  timeout "$start_wait_max" target/release/synod cluster up --protocol "$protocol" --nodes 3 \
    --dir "$dir/synod-$protocol" --base-port "$base" >/dev/null
  load "synod $protocol" synod "127.0.0.1:$((base + 101)),127.0.0.1:$((base + 102)),127.0.0.1:$((base + 103))"
  target/release/synod cluster down --dir "$dir/synod-$protocol" >/dev/null
  base=$((base + 200))
done
