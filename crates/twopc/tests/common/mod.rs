//! The 2PC tests' driver: `synod-testkit`'s cluster of `TwoPcNode`s (n1 coordinates,
//! n2.. own one shard each), with atomicity checked after every input.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use synod_core::{NodeId, Outcome};
pub use synod_testkit::{for_seeds, ms, n, Check, Faults, Ticket};
use synod_twopc::{
    DecisionLog, Op, OpResult, Participant, Role, Topology, TwoPcConfig, TwoPcNode, Txn, TxnId,
    TxnOutcome,
};

pub type Cluster = synod_testkit::Cluster<TwoPcNode>;

/// Atomicity (Bernstein et al. §7.2, AC1/AC2): no transaction is committed anywhere
/// and aborted anywhere else — checked over every outcome any node ever held.
#[derive(Default)]
pub struct Atomicity {
    pub outcomes: BTreeMap<TxnId, (bool, NodeId)>,
}

impl Check<TwoPcNode> for Atomicity {
    fn after_step(&mut self, id: NodeId, node: &TwoPcNode) {
        for (txn, commit) in node.known_outcomes() {
            let (first, by) = *self.outcomes.entry(txn).or_insert((commit, id));
            assert_eq!(
                first,
                commit,
                "atomicity: {txn} is {} at {by} and {} at {id}",
                verdict(first),
                verdict(commit)
            );
        }
    }
}

fn verdict(commit: bool) -> &'static str {
    match commit {
        true => "committed",
        false => "aborted",
    }
}

pub const COORDINATOR: u64 = 1;

/// A coordinator and `shards` participants, atomicity checked.
pub fn cluster(shards: u64) -> (Cluster, Rc<RefCell<Atomicity>>) {
    cluster_with(shards, |_| {})
}

/// The same, with `tune` applied to every node's configuration.
pub fn cluster_with(
    shards: u64,
    tune: impl Fn(&mut TwoPcConfig) + 'static,
) -> (Cluster, Rc<RefCell<Atomicity>>) {
    let check = Rc::new(RefCell::new(Atomicity::default()));
    let members: Vec<NodeId> = (1..=shards + 1).map(n).collect();
    let topology = Topology::from_members(&members);
    let build = move |id: NodeId| {
        let mut cfg = TwoPcConfig::lan(id, topology.clone());
        tune(&mut cfg);
        TwoPcNode::new(cfg)
    };
    let c = Cluster::start(shards + 1, build, vec![Box::new(check.clone())]);
    (c, check)
}

pub fn topology(c: &Cluster) -> Topology {
    let members: Vec<NodeId> = c.ids().into_iter().map(n).collect();
    Topology::from_members(&members)
}

/// A key on `shard` (0-based), the `i`-th one found.
pub fn key_on(c: &Cluster, shard: u32, i: usize) -> String {
    let t = topology(c);
    (0..)
        .map(|k| format!("k{k}"))
        .filter(|k| t.shard_of(k).0 == shard)
        .nth(i)
        .expect("keys cover every shard")
}

/// The node owning `key`.
pub fn owner(c: &Cluster, key: &str) -> u64 {
    let t = topology(c);
    t.node_of(t.shard_of(key)).0
}

pub fn txn(c: &mut Cluster, ops: Vec<Op>) -> Ticket {
    c.propose(COORDINATOR, Txn { ops })
}

pub fn write(key: &str, value: &str) -> Op {
    Op::Write {
        key: key.into(),
        value: value.into(),
    }
}

pub fn read(key: &str) -> Op {
    Op::Read { key: key.into() }
}

pub fn add(key: &str, delta: i64) -> Op {
    Op::Add {
        key: key.into(),
        delta,
    }
}

/// Node `id`'s participant state.
pub fn participant(c: &Cluster, id: u64) -> &Participant {
    match c.node(id).role() {
        Role::Participant(p) => p,
        Role::Coordinator(..) => panic!("n{id} coordinates"),
    }
}

/// The value of `key` at its shard (committed data).
pub fn value(c: &Cluster, key: &str) -> Option<String> {
    participant(c, owner(c, key)).data().get(key).cloned()
}

pub fn committed(c: &Cluster, t: Ticket) -> Option<Vec<OpResult>> {
    match c.outcome(t)? {
        Outcome::Done(TxnOutcome::Committed(r)) => Some(r.clone()),
        _ => None,
    }
}

pub fn aborted(c: &Cluster, t: Ticket) -> bool {
    matches!(c.outcome(t), Some(Outcome::Done(TxnOutcome::Aborted(_))))
}

/// Nothing is in doubt, locked or waiting anywhere; the coordinator holds nothing.
pub fn assert_quiescent(c: &Cluster) {
    for id in c.ids() {
        match c.node(id).role() {
            Role::Coordinator(k, log) => {
                assert_eq!(k.active(), 0, "active transactions");
                assert_eq!(k.unacknowledged().count(), 0, "unacknowledged commits");
                assert_eq!(log.decisions().commits().count(), 0, "commits held");
            }
            Role::Participant(p) => {
                assert_eq!(p.in_doubt().count(), 0, "n{id} in doubt");
                assert_eq!(p.locked_keys(), 0, "n{id} holds locks");
                assert_eq!(p.waiting(), 0, "n{id} has waiting prepares");
            }
        }
    }
}
