//! `omnipaxos` 0.2.4 driven like `direct::DirectCluster` drives Synod Multi-Paxos:
//! three `OmniPaxos` servers in one thread with `omnipaxos_storage`'s `MemoryStorage`,
//! messages moved by value through one FIFO queue (no serialisation, as on our side),
//! the same 16-byte `KvCommand` puts on one key, every decided entry applied to a
//! `KvStateMachine` on every node, and a fixed number of commands in flight. Timers
//! (`tick`) are not fired while measuring, as on our side.
//!
//! The fairness choices, each explained where it is made:
//!
//! * [`OmniPaxosCluster::new`]: `batch_size = 1` (its documented default, "no
//!   batching") and the default outgoing `buffer_size`; the bench waits until
//!   ballot leader election has settled and proposes at the elected leader.
//! * [`OmniPaxosCluster::step`]: outgoing messages are taken once per input, after the
//!   proposals that arrive at that moment, so omnipaxos coalesces entries into one
//!   `AcceptDecide` per follower the way its periodic `take_outgoing_messages`
//!   design intends.
//! * [`OmniPaxosCluster::compact`]: the log is trimmed every 10,000 decided entries,
//!   keeping 1,000 — Synod's `snapshot_threshold` / `snapshot_trailing` in the bench.
//!
//! Correctness is checked on every decided entry, not sampled: each node must apply
//! the commands in exactly the order they were proposed (`seq` 1, 2, 3, … with no
//! gap, repetition or reordering), so all nodes decide the same sequence and a broken
//! setup stops the bench with a panic instead of measuring it.

use omnipaxos::macros::Entry;
use omnipaxos::messages::Message;
use omnipaxos::util::{LogEntry, NodeId};
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use omnipaxos_storage::memory_storage::MemoryStorage;
use std::collections::VecDeque;
use synod_core::{ClientId, KvCommand, KvOp, KvStateMachine};

/// The log entry: our `KvCommand`, by value. omnipaxos logs are generic over the entry
/// type, so nothing is encoded (raft-rs needs bytes; omnipaxos does not).
#[derive(Clone, Debug, Entry)]
pub struct Command(pub KvCommand);

type Server = OmniPaxos<Command, MemoryStorage<Command>>;

/// Nodes in the cluster (pids 1..=3).
const NODES: usize = 3;
/// Consecutive ticks every node must report the same leader, in the accept phase,
/// before the cluster counts as settled.
const SETTLED_TICKS: u32 = 5;
/// Ticks after which an unsettled election fails the setup.
const SETTLE_TICKS_MAX: u32 = 1_000;
/// Trim the log once this many entries were decided since the last trim...
const TRIM_THRESHOLD: usize = 10_000;
/// ...keeping this many decided entries behind the trim point.
const TRIM_TRAILING: usize = 1_000;
const _: () = assert!(TRIM_TRAILING < TRIM_THRESHOLD);

/// Three omnipaxos servers wired directly.
pub struct OmniPaxosCluster {
    nodes: Vec<Server>,
    kvs: Vec<KvStateMachine>,
    /// Log index of the next decided entry to apply, per node (entries below it
    /// were applied to `kvs`).
    applied: Vec<usize>,
    /// `seq` of the last command applied, per node: the correctness check.
    last_seq: Vec<u64>,
    /// The node ballot leader election settled on (0-based); it takes every
    /// proposal, as node 1 does in the Synod bench. Which node wins is up to
    /// omnipaxos (its ballots order by round before priority, so a
    /// `leader_priority` does not pin the first election); it does not matter here.
    leader: usize,
    wire: VecDeque<Message<Command>>,
    /// Reused buffer for `take_outgoing_messages`.
    outbox: Vec<Message<Command>>,
    /// Decided index at the leader when the log was last trimmed.
    trimmed_at: usize,
    committed: u64,
    next_seq: u64,
    value: String,
}

impl Default for OmniPaxosCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl OmniPaxosCluster {
    /// Three servers, a leader elected and every node in the accept phase.
    ///
    /// Configuration: `batch_size = 1` is omnipaxos's documented default ("no
    /// batching"): a larger batch holds entries back until it fills or until
    /// `flush_batch_tick_timeout` ticks pass, which with 1 command in flight would
    /// stall on a timer, and it is not needed for throughput because omnipaxos also
    /// coalesces every entry appended before the next `take_outgoing_messages` into
    /// one `AcceptDecide` per follower (see [`OmniPaxosCluster::step`]). The outgoing
    /// `buffer_size` keeps its default (100,000 messages, far above what one input
    /// produces). Timeouts keep their defaults; they only matter while settling,
    /// since no tick is fired while measuring.
    ///
    /// # Panics
    /// If ballot leader election has not settled within
    /// `SETTLE_TICKS_MAX` ticks.
    pub fn new() -> OmniPaxosCluster {
        let pids: Vec<NodeId> = (1..=NODES as u64).collect();
        let cluster_config = ClusterConfig {
            configuration_id: 1,
            nodes: pids.clone(),
            flexible_quorum: None,
        };
        let nodes = pids
            .iter()
            .map(|&pid| {
                let server_config = ServerConfig {
                    pid,
                    ..ServerConfig::default()
                };
                OmniPaxosConfig {
                    cluster_config: cluster_config.clone(),
                    server_config,
                }
                .build(MemoryStorage::default())
                .expect("valid omnipaxos config")
            })
            .collect();
        let mut c = OmniPaxosCluster {
            nodes,
            kvs: vec![KvStateMachine::new(); NODES],
            applied: vec![0; NODES],
            last_seq: vec![0; NODES],
            leader: 0,
            wire: VecDeque::new(),
            outbox: Vec::new(),
            trimmed_at: 0,
            committed: 0,
            next_seq: 0,
            value: "0123456789abcdef".to_string(), // 16-byte payload, as on our side
        };
        c.settle();
        c.committed = 0;
        c
    }

    /// Ticks every node and delivers until quiet, until every node has reported the
    /// same leader, in the accept phase, for `SETTLED_TICKS` consecutive ticks.
    /// The peer-library notes found that ballot leader election needs a couple of
    /// heartbeat rounds to settle; measuring earlier lets the leader change mid-run.
    fn settle(&mut self) {
        let mut settled = 0;
        for _ in 0..SETTLE_TICKS_MAX {
            for i in 0..NODES {
                self.nodes[i].tick();
                self.flush(i);
            }
            while let Some(m) = self.wire.pop_front() {
                let j = Self::index(m.get_receiver());
                self.nodes[j].handle_incoming(m);
                self.flush(j);
            }
            let first = self.nodes[0].get_current_leader();
            let agreed = matches!(first, Some((_, true)))
                && self.nodes.iter().all(|n| n.get_current_leader() == first);
            settled = if agreed { settled + 1 } else { 0 };
            if settled == SETTLED_TICKS {
                let (pid, _) = first.expect("agreed on a leader");
                self.leader = Self::index(pid);
                return;
            }
        }
        let leaders: Vec<_> = self
            .nodes
            .iter()
            .map(|n| (n.get_current_leader(), n.get_promise()))
            .collect();
        panic!("omnipaxos ballot leader election did not settle: {leaders:?}");
    }

    fn index(pid: NodeId) -> usize {
        (pid - 1) as usize
    }

    /// Moves node `i`'s outgoing messages onto the wire.
    fn flush(&mut self, i: usize) {
        self.nodes[i].take_outgoing_messages(&mut self.outbox);
        self.wire.extend(self.outbox.drain(..));
    }

    /// Applies the entries node `i` has decided since the last call, checking that
    /// they continue the proposal order exactly.
    ///
    /// # Panics
    /// If a decided entry is not the command after the last one this node applied,
    /// or if the log was trimmed past what this node applied.
    fn apply(&mut self, i: usize) {
        let Some(entries) = self.nodes[i].read_decided_suffix(self.applied[i]) else {
            return;
        };
        for entry in entries {
            let LogEntry::Decided(Command(cmd)) = entry else {
                panic!("node {}: unexpected decided-suffix entry {entry:?}", i + 1);
            };
            assert_eq!(
                cmd.seq,
                self.last_seq[i] + 1,
                "node {} decided commands out of proposal order",
                i + 1
            );
            self.last_seq[i] = cmd.seq;
            self.kvs[i].apply(&cmd);
            self.applied[i] += 1;
            if i == self.leader {
                self.committed += 1;
            }
        }
    }

    /// Trims the log once `TRIM_THRESHOLD` entries were decided since the last trim,
    /// keeping `TRIM_TRAILING` (the same numbers as Synod's snapshots in the bench).
    /// `trim` rather than `snapshot`: the state machine lives outside omnipaxos here,
    /// so there is nothing for an omnipaxos snapshot to hold. The leader trims and
    /// tells the followers, which trim up to their own decided index. Every node has
    /// applied all it decided before any message reaches it, so nothing unapplied is
    /// trimmed (and [`apply`](Self::apply) would panic if it were).
    fn compact(&mut self) {
        let decided = self.nodes[self.leader].get_decided_idx();
        if decided - self.trimmed_at >= TRIM_THRESHOLD {
            let upto = decided - TRIM_TRAILING;
            // Fails (harmlessly) while a follower has not accepted `upto` yet; the next
            // input retries.
            if self.nodes[self.leader].trim(Some(upto)).is_ok() {
                self.trimmed_at = decided;
            }
        }
    }

    /// Appends new commands at the leader until `in_flight` are outstanding or
    /// `remaining` were proposed; returns how many it proposed.
    fn top_up(&mut self, outstanding: u64, in_flight: u64, remaining: u64) -> u64 {
        let n = crate::proposals_due(outstanding, in_flight, remaining);
        for _ in 0..n {
            self.next_seq += 1;
            let cmd = KvCommand {
                client: ClientId(1),
                seq: self.next_seq,
                op: KvOp::Put {
                    key: "k".to_string(),
                    value: self.value.clone(),
                },
            };
            self.nodes[self.leader]
                .append(Command(cmd))
                .expect("no reconfiguration is pending");
        }
        n
    }

    /// One input: delivers the next message (if any) to its node and applies what
    /// that node decided, lets the leader take the proposals that are due, then moves
    /// the outgoing messages of both onto the wire.
    ///
    /// Taking the outgoing messages once per input, after the proposals, is how
    /// omnipaxos is meant to be driven: entries appended between two
    /// `take_outgoing_messages` calls are merged into one `AcceptDecide` per follower
    /// (and a decided index into a pending `AcceptDecide`), and followers merge their
    /// `Accepted` replies the same way. Taking after every single `append` would send
    /// one message per entry and understate it. Our side drains after every input too
    /// and batches by its own window (`accept_inflight_max` × `accept_batch_max`).
    fn step(&mut self, proposed: &mut u64, entries: u64, in_flight: u64, start: u64) {
        let mut receiver = None;
        if let Some(m) = self.wire.pop_front() {
            let j = Self::index(m.get_receiver());
            self.nodes[j].handle_incoming(m);
            self.apply(j);
            receiver = Some(j);
        }
        let outstanding = *proposed - (self.committed - start);
        *proposed += self.top_up(outstanding, in_flight, entries - *proposed);
        self.compact();
        self.flush(self.leader);
        if let Some(j) = receiver.filter(|&j| j != self.leader) {
            self.flush(j);
        }
    }

    /// Commits `entries` more commands keeping `in_flight` proposals outstanding.
    ///
    /// # Panics
    /// If the cluster stops making progress (nothing in flight on the wire), or a
    /// node decides commands out of proposal order.
    pub fn run(&mut self, entries: u64, in_flight: u64) {
        let start = self.committed;
        let mut proposed = 0;
        while self.committed - start < entries {
            self.step(&mut proposed, entries, in_flight, start);
            assert!(
                !self.wire.is_empty() || self.committed - start >= entries,
                "omnipaxos: proposals in flight but nothing on the wire"
            );
        }
    }

    /// Delivers messages until the wire is empty, so that followers learn every
    /// decision (test helper; the bench stops as soon as the leader has committed).
    pub fn quiesce(&mut self) {
        while let Some(m) = self.wire.pop_front() {
            let j = Self::index(m.get_receiver());
            self.nodes[j].handle_incoming(m);
            self.apply(j);
            self.flush(j);
        }
    }

    /// Commands applied at each node since the cluster was built, and each node's
    /// state machine.
    pub fn applied(&self) -> (Vec<u64>, &[KvStateMachine]) {
        (self.last_seq.clone(), &self.kvs)
    }

    /// Entries currently held in node `i`'s log (decided index minus trimmed index).
    pub fn log_len(&self, i: usize) -> usize {
        self.nodes[i].get_decided_idx() - self.nodes[i].get_compacted_idx()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Init: a settled cluster. Act: 500 commands with 1, then 64 in flight, crossing
    /// no trim; then 25,000 with 1024 in flight, crossing two. Check: every node
    /// applied every command in proposal order (checked per entry inside the driver),
    /// the state machines agree, and the log stays bounded by the trim settings.
    #[test]
    fn omnipaxos_all_nodes_decide_the_proposal_order_and_the_log_is_trimmed() {
        let mut c = OmniPaxosCluster::new();
        c.run(300, 1);
        c.run(200, 64);
        c.quiesce();
        let (seqs, kvs) = c.applied();
        assert_eq!(seqs, vec![500; NODES]);
        assert!(kvs.iter().all(|kv| kv == &kvs[0]));

        c.run(25_000, 1024);
        c.quiesce();
        let (seqs, kvs) = c.applied();
        assert_eq!(seqs, vec![25_500; NODES]);
        assert!(kvs.iter().all(|kv| kv == &kvs[0]));
        for i in 0..NODES {
            assert!(
                c.log_len(i) <= TRIM_THRESHOLD + TRIM_TRAILING,
                "node {} keeps {} entries",
                i + 1,
                c.log_len(i)
            );
        }
    }
}
