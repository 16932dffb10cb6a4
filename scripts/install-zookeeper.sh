#!/usr/bin/env bash
# Installs Debian's ZooKeeper (3.8.0 on bookworm) when missing: the real system
# scripts/bench-zookeeper.sh measures Synod's Zab beside. Needs root (apt).
set -euo pipefail
if [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q zookeeper >/dev/null
test -f /usr/share/java/zookeeper.jar
