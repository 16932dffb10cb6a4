//! The Raft tests' driver: `synod-testkit`'s deterministic cluster of `RaftNode`s
//! (a message queue the test controls, hand-advanced virtual time, in-memory disks,
//! persist before send), with Raft's own helpers on top.
//!
//! After every input the cluster checks Raft's Figure 3 properties (`checks`), so
//! every test is also a safety test: Election Safety (one leader per term, ever),
//! State Machine Safety (an index once committed never holds another entry, on any
//! node) and Leader Completeness (a new leader holds every entry committed before its
//! term). `chaos` injects seeded faults for the property and scenario tests.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

mod checks;

use checks::Figure3;
use std::cell::{Ref, RefCell};
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use synod_core::{KvOp, NodeId, Prng};
use synod_raft::{
    AppendResult, Entry, LogIndex, Message, RaftConfig, RaftLog, RaftNode, RaftTimer, Request, Term,
};
pub use synod_testkit::{for_seeds, ms, n, Faults, Ticket, Wire, DELIVERIES_MAX};

/// Names a message by kind, splitting the ones whose flavour matters to tests.
pub fn kind(m: &Message) -> &'static str {
    match m {
        Message::RequestVote { pre_vote: true, .. } => "PreVote",
        Message::RequestVote { .. } => "RequestVote",
        Message::Vote { pre_vote: true, .. } => "PreVoteResponse",
        Message::Vote { .. } => "Vote",
        Message::Append { .. } => "Append",
        Message::AppendResponse {
            result: AppendResult::Ok(_),
            ..
        } => "AppendOk",
        Message::AppendResponse { .. } => "AppendReject",
        Message::Heartbeat { .. } => "Heartbeat",
        Message::HeartbeatResponse { .. } => "HeartbeatResponse",
        Message::InstallSnapshot { .. } => "InstallSnapshot",
        Message::SnapshotResponse { .. } => "SnapshotResponse",
        Message::TimeoutNow { .. } => "TimeoutNow",
    }
}

/// A RequestVote (or pre-vote) in `term` from a candidate whose log ends where `log`
/// does — as up to date as it.
pub fn vote_request(term: Term, log: &RaftLog, pre_vote: bool) -> Message {
    Message::RequestVote {
        term,
        last_log_index: log.last_index(),
        last_log_term: log.last_term(),
        pre_vote,
        transfer: false,
    }
}

/// The test kit's cluster of `RaftNode`s (reached through `Deref`), checked after
/// every input by [`Figure3`].
pub struct Cluster {
    kit: synod_testkit::Cluster<RaftNode>,
    figure_3: Rc<RefCell<Figure3>>,
}

impl Deref for Cluster {
    type Target = synod_testkit::Cluster<RaftNode>;
    fn deref(&self) -> &Self::Target {
        &self.kit
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.kit
    }
}

impl Cluster {
    /// `voters` nodes with `RaftConfig::lan` and seed 1.
    pub fn new(voters: u64) -> Cluster {
        Cluster::build(voters, 0, 1, |_| {})
    }

    /// Voters `1..=voters`, plus `spares` nodes after them that start outside the
    /// configuration (to be added as learners); `tweak` edits every node's config.
    pub fn build(voters: u64, spares: u64, seed: u64, tweak: impl Fn(&mut RaftConfig)) -> Cluster {
        let configs: BTreeMap<NodeId, RaftConfig> = (1..=voters + spares)
            .map(|id| {
                let mut cfg = RaftConfig::lan(n(id), (1..=voters).map(n), seed * 1000 + id);
                tweak(&mut cfg);
                (n(id), cfg)
            })
            .collect();
        let figure_3 = Rc::new(RefCell::new(Figure3::default()));
        let build = move |id: NodeId| RaftNode::new(configs[&id].clone());
        let kit =
            synod_testkit::Cluster::start(voters + spares, build, vec![Box::new(figure_3.clone())]);
        Cluster { kit, figure_3 }
    }

    // ----- observers -----------------------------------------------------------------

    /// The live leader of the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        let leaders = self.live().filter(|r| r.is_leader());
        leaders.max_by_key(|r| r.term()).map(|r| r.node_id().0)
    }
    /// Every term that had a leader, with it (from the Election Safety check).
    pub fn leaders_by_term(&self) -> Ref<'_, BTreeMap<Term, NodeId>> {
        Ref::map(self.figure_3.borrow(), |f| &f.leaders)
    }
    /// Delivered messages of `kind` (see [`kind`]).
    pub fn count_kind(&self, k: &str) -> usize {
        self.count(|_, _, m| kind(m) == k)
    }
    /// The last delivered message of kind `k` (see [`kind`]) that `from` sent.
    pub fn last_sent(&self, from: u64, k: &str) -> &Message {
        let mut sent = self.delivered.iter().rev();
        let found = sent.find(|(f, _, m)| f.0 == from && kind(m) == k);
        &found.unwrap_or_else(|| panic!("n{from} sent no {k}")).2
    }
    /// (from, to, kind) of every message sent ahead of its input's batch.
    pub fn early_sends(&self) -> Vec<(u64, u64, &'static str)> {
        let sends = self.early_sent.iter();
        sends.map(|(a, b, m)| (a.0, b.0, kind(m))).collect()
    }
    /// The committed entries a node holds, from its first held index up to its commit.
    pub fn committed_entries(&self, id: u64) -> Vec<Entry> {
        let log = self.node(id).log();
        let held = log.first_index().0..=self.node(id).commit_index().0;
        held.map(|i| log.entry(LogIndex(i)).expect("held").clone())
            .collect()
    }

    // ----- network and time ---------------------------------------------------------

    /// Delivers in FIFO order until `done` holds; panics if the wire empties first.
    pub fn deliver_until(&mut self, done: impl Fn(&Cluster) -> bool) {
        while !done(self) {
            assert!(!self.wire.is_empty(), "wire empty, condition unmet");
            self.deliver_at(0);
        }
    }
    /// Fires `id`'s election timer (and delivers everything) until it leads; a first
    /// try may only teach it a newer term.
    pub fn elect(&mut self, id: u64) {
        for _ in 0..3 {
            self.fire(id, RaftTimer::Election);
            self.deliver_all();
            if self.node(id).is_leader() {
                return;
            }
        }
        panic!("n{id} did not win an election");
    }
    /// The test kit's chaos, proposing puts of a few hot keys.
    pub fn chaos(&mut self, rng: &mut Prng, steps: usize, faults: &Faults) {
        let put = |c: &mut synod_testkit::Cluster<RaftNode>, rng: &mut Prng, id: u64| {
            let key = format!("k{}", rng.below(5));
            let value = rng.next_u64().to_string();
            c.propose(id, Request::Command(KvOp::Put { key, value }));
        };
        self.kit.chaos(rng, steps, faults, &put);
    }

    // ----- clients ------------------------------------------------------------------

    /// Puts from fresh client sessions, handed to `id` together as one input
    /// (`Node::on_client_requests`).
    pub fn put_batch(&mut self, id: u64, kvs: &[(&str, &str)]) -> Vec<Ticket> {
        let puts = kvs.iter().map(|(key, value)| {
            let (key, value) = (key.to_string(), value.to_string());
            Request::Command(KvOp::Put { key, value })
        });
        self.propose_all(id, puts.collect())
    }
    pub fn put(&mut self, id: u64, key: &str, value: &str) -> Ticket {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.propose(id, Request::Command(KvOp::Put { key, value }))
    }
    pub fn get(&mut self, id: u64, key: &str) -> Ticket {
        self.propose(id, Request::Query(key.to_owned()))
    }
}
