//! Multi-Paxos helpers and the per-slot safety checks.

use super::{n, Check, Cluster, Ticket};
use std::collections::{BTreeMap, BTreeSet};
use synod_core::{KvOp, KvResult, NodeId, Outcome};
use synod_paxos::{
    Ballot, Message, MultiPaxosConfig, MultiPaxosNode, MultiPaxosTimer, Request, Response, Slot,
    Value,
};

pub type MultiCluster = Cluster<MultiPaxosNode>;

pub const WRITTEN: Outcome<Response> = Outcome::Done(Response::Output(KvResult::Written));

/// `Outcome::Done` of a read returning `v`.
pub fn read_ok(v: Option<&str>) -> Outcome<Response> {
    Outcome::Done(Response::QueryOutput(v.map(str::to_owned)))
}

/// `size` nodes with `MultiPaxosConfig::lan` and seed 1.
pub fn multi_cluster(size: u64) -> MultiCluster {
    build(size, 1, |_| {})
}

/// `size` nodes, `tweak` editing every node's config, checked after every input.
pub fn build(
    size: u64,
    seed: u64,
    tweak: impl Fn(&mut MultiPaxosConfig) + 'static,
) -> MultiCluster {
    let first = MultiPaxosConfig::lan(n(1), (1..=size).map(n), 0);
    let mut probe = first.clone();
    tweak(&mut probe);
    let make = move |id: NodeId| {
        let mut cfg = MultiPaxosConfig::lan(id, (1..=size).map(n), seed * 1000 + id.0);
        tweak(&mut cfg);
        MultiPaxosNode::new(cfg)
    };
    Cluster::start(
        size,
        make,
        vec![Box::new(SlotSafety::new(probe.phase2_quorum))],
    )
}

/// Phase 1(a) of `ballot` for every slot from the first (a fresh log's).
pub fn prepare(ballot: Ballot) -> Message {
    Message::Prepare {
        ballot,
        first_unchosen: Slot::FIRST,
    }
}

/// Names a message by kind.
pub fn kind(m: &Message) -> &'static str {
    match m {
        Message::Prepare { .. } => "Prepare",
        Message::Promise { .. } => "Promise",
        Message::Nack { .. } => "Nack",
        Message::Accept { .. } => "Accept",
        Message::Accepted { .. } => "Accepted",
        Message::Heartbeat { .. } => "Heartbeat",
        Message::HeartbeatAck { .. } => "HeartbeatAck",
        Message::CatchUp { .. } => "CatchUp",
        Message::Chosen { .. } => "Chosen",
        Message::Snapshot { .. } => "Snapshot",
    }
}

/// Multi-Paxos helpers on the test kit's cluster.
pub trait MultiPaxosCluster {
    fn put(&mut self, id: u64, key: &str, value: &str) -> Ticket;
    fn get(&mut self, id: u64, key: &str) -> Ticket;
    /// Delivered messages of `kind` (see [`kind`]).
    fn count_kind(&self, k: &str) -> usize;
    /// Delivered messages of `kind` from `from` to `to`.
    fn count_sent(&self, from: u64, to: u64, k: &str) -> usize;
    /// The live leader of the highest ballot, if any.
    fn leader(&self) -> Option<u64>;
    /// Fires `id`'s election timer (and delivers everything) until it leads.
    fn elect(&mut self, id: u64);
    /// Every live node follows one leader, knows as much chosen and executed it all,
    /// with the same state machine.
    fn assert_converged(&self);
    /// (from, to) of every message sent ahead of its input's batch.
    fn early_sends(&self) -> Vec<(u64, u64)>;
}

impl MultiPaxosCluster for MultiCluster {
    fn put(&mut self, id: u64, key: &str, value: &str) -> Ticket {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.propose(id, Request::Command(KvOp::Put { key, value }))
    }
    fn get(&mut self, id: u64, key: &str) -> Ticket {
        let key = key.to_owned();
        self.propose(id, Request::Query(key))
    }
    fn count_kind(&self, k: &str) -> usize {
        self.count(|_, _, m| kind(m) == k)
    }
    fn count_sent(&self, from: u64, to: u64, k: &str) -> usize {
        self.count(|f, t, m| (f, t) == (n(from), n(to)) && kind(m) == k)
    }
    fn leader(&self) -> Option<u64> {
        let leaders = self.live().filter(|r| r.is_leader());
        leaders.max_by_key(|r| r.promised()).map(|r| r.node_id().0)
    }
    fn elect(&mut self, id: u64) {
        for _ in 0..3 {
            self.fire(id, MultiPaxosTimer::Election);
            self.deliver_all();
            if self.node(id).is_leader() {
                return;
            }
        }
        panic!("n{id} did not win phase 1");
    }
    fn assert_converged(&self) {
        let lead = self.node(self.leader().expect("no leader"));
        for r in self.live() {
            let id = r.node_id();
            assert_eq!(
                r.leader(),
                Some(lead.node_id()),
                "{id} follows another leader"
            );
            assert_eq!(
                r.first_unchosen(),
                lead.first_unchosen(),
                "{id} chosen prefix"
            );
            assert_eq!(
                r.first_unexecuted(),
                r.first_unchosen(),
                "{id} has not executed"
            );
            assert_eq!(
                r.state_machine(),
                lead.state_machine(),
                "{id} state machine"
            );
        }
    }
    fn early_sends(&self) -> Vec<(u64, u64)> {
        let sends = self.early_sent.iter();
        sends.map(|(from, to, _)| (from.0, to.0)).collect()
    }
}

/// Per slot, after every input: one value per `(slot, ballot)`; at most one value
/// chosen (a phase-2 quorum accepted it in one ballot), computed from the acceptances
/// in the nodes' journals; P2b (every acceptance in a ballot above the one that
/// chose a value carries that value); every executed value is the chosen one; every
/// replica executes the same value at a slot.
pub struct SlotSafety {
    quorum: usize,
    votes: BTreeMap<Slot, BTreeMap<Ballot, (Value, BTreeSet<NodeId>)>>,
    chosen: BTreeMap<Slot, Value>,
    executed: BTreeMap<Slot, Value>,
}

impl SlotSafety {
    fn new(quorum: usize) -> SlotSafety {
        SlotSafety {
            quorum,
            votes: BTreeMap::new(),
            chosen: BTreeMap::new(),
            executed: BTreeMap::new(),
        }
    }
}

impl Check<MultiPaxosNode> for SlotSafety {
    fn after_step(&mut self, id: NodeId, node: &MultiPaxosNode) {
        for (slot, ballot, value) in &node.journal().accepted {
            let per = self.votes.entry(*slot).or_default();
            let (v, voters) = per
                .entry(*ballot)
                .or_insert_with(|| (value.clone(), BTreeSet::new()));
            assert_eq!(v, value, "two values accepted at {slot} in {ballot}");
            voters.insert(id);
            if voters.len() >= self.quorum {
                let chosen = self.chosen.entry(*slot).or_insert_with(|| value.clone());
                assert_eq!(chosen, value, "two values chosen at {slot}");
            }
            // P2b: once chosen, every higher-ballot acceptance carries the value.
            if let Some(chosen) = self.chosen.get(slot) {
                let first = per.iter().find(|(_, (_, vs))| vs.len() >= self.quorum);
                let chosen_in = *first.expect("chosen by a quorum").0;
                for (b, (v, _)) in per.range(chosen_in..) {
                    assert_eq!(
                        v, chosen,
                        "P2b: {b} proposes another value at chosen {slot}"
                    );
                }
            }
        }
        for (slot, value) in &node.journal().executed {
            assert_eq!(
                self.chosen.get(slot),
                Some(value),
                "{id} executed unchosen {slot}"
            );
            let first = self.executed.entry(*slot).or_insert_with(|| value.clone());
            assert_eq!(first, value, "{id} executed another command at {slot}");
        }
    }
}
