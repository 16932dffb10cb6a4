# Sourced by the bench scripts: starts a 3-member ZooKeeper ensemble on loopback, as
# Debian ships it (fsync on every write batch), and waits (bounded) until a member
# leads. One change from Debian's zoo.cfg: maxClientCnxns=0 — its cap of 60
# connections per client IP per server counts every loopback client as one host, so
# the 181st session would be refused; it admits connections and has nothing to do
# with durability.
#
#   start_zookeeper DIR WAIT_SECS   # appends the members' pids to `pids`,
#                                   # sets `zk_addrs` (host:port,…)

start_zookeeper() {
  local dir="$1" wait_secs="$2" servers="" i
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
maxClientCnxns=0
4lw.commands.whitelist=srvr
$servers
CFG
    java -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar" \
      -Dzookeeper.log.dir="$dir/zk$i" -Dzookeeper.root.logger=WARN,CONSOLE \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zk$i/zoo.cfg" \
      > "$dir/zk$i/out.log" 2>&1 &
    pids+=($!)
  done
  local _
  for _ in $(seq $((wait_secs * 2))); do
    for i in 1 2 3; do
      if zookeeper_leads "2218$i"; then
        zk_addrs=127.0.0.1:22181,127.0.0.1:22182,127.0.0.1:22183
        return 0
      fi
    done
    sleep 0.5
  done
  echo "ZooKeeper did not elect a leader in $wait_secs s; member 1's log:" >&2
  tail -20 "$dir/zk1/out.log" >&2
  return 1
}

# `true` if the member whose client port is $1 says it leads.
zookeeper_leads() {
  { exec 3<>"/dev/tcp/127.0.0.1/$1" && echo srvr >&3 && timeout 2 cat <&3; } 2>/dev/null |
    grep -q "Mode: leader"
}
