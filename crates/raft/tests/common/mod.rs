//! A deterministic driver for the protocol tests: a [`Cluster`] of `RaftNode`s, a
//! message queue, hand-advanced virtual time and in-memory disks.
//!
//! It carries out each input's effects by the contract in `synod_core::node`: the
//! batch is persisted to the node's `MemStorage` first, and only then are its
//! messages queued and its replies recorded (persist before send). `MemStorage::persist`
//! is synchronous, so a crash — which happens between inputs — loses nothing that was
//! drained; it drops the node, its timers and the messages queued *to* it (what it
//! already sent stays on the wire).
//!
//! After every input the driver checks Raft's Figure 3 properties (`checks`), so every
//! test is also a safety test: Election Safety (one leader per term, ever), State
//! Machine Safety (an index once committed never holds another entry, on any node) and
//! Leader Completeness (a new leader holds every entry committed before its term).
//! `chaos` injects seeded faults for the property and scenario tests.

#![allow(dead_code)] // each test binary uses a different subset

mod chaos;
mod checks;

#[allow(unused_imports)] // used by the property and scenario tests only
pub use chaos::{for_seeds, Faults};
use checks::Figure3;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;
use synod_core::{
    ClientId, ClientReply, ClientRequest, Effects, KvOp, MemStorage, Node, NodeEffects, NodeId,
    Outcome, Prng, Time, TimerOp,
};
use synod_raft::{
    AppendResult, Entry, LogIndex, Message, RaftConfig, RaftNode, RaftTimer, Request, Response,
    Term,
};

/// A message on the wire: (from, to, message).
pub type Wire = (NodeId, NodeId, Message);

/// Bound on deliveries in one `deliver_all`: a protocol that never goes quiet fails.
pub const DELIVERIES_MAX: usize = 100_000;

/// `NodeId(id)`, for short.
pub fn n(id: u64) -> NodeId {
    NodeId(id)
}

/// `Duration::from_millis(v)`, for short.
pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

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

/// A client request handed to the cluster, to look its outcome up later.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ticket {
    pub client: ClientId,
    pub seq: u64,
}

struct Slot {
    cfg: RaftConfig,
    node: Option<RaftNode>,
    disk: MemStorage,
    timers: BTreeMap<RaftTimer, Time>,
}

pub struct Cluster {
    slots: BTreeMap<NodeId, Slot>,
    pub wire: VecDeque<Wire>,
    pub now: Time,
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every client reply, with the node that gave it.
    pub replies: Vec<(NodeId, ClientReply<Response>)>,
    /// Every message handed to a live node, in delivery order.
    pub delivered: Vec<Wire>,
    /// How many times each timer fired.
    pub fired: BTreeMap<(NodeId, RaftTimer), usize>,
    clients: u64,
    figure_3: Figure3,
    /// While `Some`, persist notifications are kept here instead of delivered: the
    /// disk is "slow" as far as the nodes can tell (their batches are durable, but
    /// they have not heard so).
    held: Option<Vec<(NodeId, u64)>>,
    /// (from, to, kind) of each message sent as an early send (before its input's
    /// batch was durable).
    pub early_sent: Vec<(u64, u64, &'static str)>,
}

impl Cluster {
    /// `voters` nodes with `RaftConfig::lan` and seed 1.
    pub fn new(voters: u64) -> Cluster {
        Cluster::build(voters, 0, 1, |_| {})
    }

    /// Voters `1..=voters`, plus `spares` nodes after them that start outside the
    /// configuration (to be added as learners); `tweak` edits every node's config.
    pub fn build(voters: u64, spares: u64, seed: u64, tweak: impl Fn(&mut RaftConfig)) -> Cluster {
        let mut c = Cluster {
            slots: BTreeMap::new(),
            wire: VecDeque::new(),
            now: Time::ZERO,
            cut: BTreeSet::new(),
            replies: Vec::new(),
            delivered: Vec::new(),
            fired: BTreeMap::new(),
            clients: 0,
            figure_3: Figure3::default(),
            held: None,
            early_sent: Vec::new(),
        };
        for id in 1..=voters + spares {
            let mut cfg = RaftConfig::lan(n(id), (1..=voters).map(n), seed * 1000 + id);
            tweak(&mut cfg);
            let (node, disk, timers) = (None, MemStorage::new(), BTreeMap::new());
            c.slots.insert(
                n(id),
                Slot {
                    cfg,
                    node,
                    disk,
                    timers,
                },
            );
            c.restart(id);
        }
        c
    }

    // ----- observers -----------------------------------------------------------------

    pub fn ids(&self) -> Vec<u64> {
        self.slots.keys().map(|id| id.0).collect()
    }
    pub fn is_up(&self, id: u64) -> bool {
        self.slots[&n(id)].node.is_some()
    }
    pub fn node(&self, id: u64) -> &RaftNode {
        let slot = &self.slots[&n(id)];
        slot.node
            .as_ref()
            .unwrap_or_else(|| panic!("n{id} is crashed"))
    }
    pub fn live(&self) -> impl Iterator<Item = &RaftNode> {
        self.slots.values().filter_map(|s| s.node.as_ref())
    }
    /// The live leader of the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        let leaders = self.live().filter(|r| r.is_leader());
        leaders.max_by_key(|r| r.term()).map(|r| r.node_id().0)
    }
    /// Every term that had a leader, with it (from the Election Safety check).
    pub fn leaders_by_term(&self) -> &BTreeMap<Term, NodeId> {
        &self.figure_3.leaders
    }
    /// The latest reply to `t`.
    pub fn outcome(&self, t: Ticket) -> Option<&Outcome<Response>> {
        let mut mine = self
            .replies
            .iter()
            .filter(|(_, r)| (r.client, r.seq) == (t.client, t.seq));
        mine.next_back().map(|(_, r)| &r.outcome)
    }
    /// Delivered messages matching `f`.
    pub fn count(&self, f: impl Fn(NodeId, NodeId, &Message) -> bool) -> usize {
        self.delivered
            .iter()
            .filter(|(a, b, m)| f(*a, *b, m))
            .count()
    }
    /// Delivered messages of `kind` (see [`kind`]).
    pub fn count_kind(&self, k: &str) -> usize {
        self.count(|_, _, m| kind(m) == k)
    }
    /// The committed entries a node holds, from its first held index up to its commit.
    pub fn committed_entries(&self, id: u64) -> Vec<Entry> {
        let log = self.node(id).log();
        let held = log.first_index().0..=self.node(id).commit_index().0;
        held.map(|i| log.entry(LogIndex(i)).expect("held").clone())
            .collect()
    }

    // ----- network ------------------------------------------------------------------

    /// Puts a message on the wire (dropped if the link is cut), as if `from` sent it.
    pub fn send(&mut self, from: u64, to: u64, msg: Message) {
        if !self.cut.contains(&(n(from), n(to))) {
            self.wire.push_back((n(from), n(to), msg));
        }
    }
    /// Cuts both directions between `a` and `b`; queued messages across it are lost.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((n(a), n(b)));
        self.cut.insert((n(b), n(a)));
    }
    pub fn partition(&mut self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                self.cut(x, y);
            }
        }
    }
    pub fn isolate(&mut self, id: u64) {
        let others: Vec<u64> = self.ids().into_iter().filter(|&o| o != id).collect();
        self.partition(&[id], &others);
    }
    pub fn heal(&mut self) {
        self.cut.clear();
    }
    /// Removes the first queued message matching `f` and returns it.
    pub fn drop_next(&mut self, f: impl Fn(NodeId, NodeId, &Message) -> bool) -> Option<Wire> {
        let i = self.wire.iter().position(|(a, b, m)| f(*a, *b, m))?;
        self.wire.remove(i)
    }
    /// Removes every queued message matching `f`; returns how many.
    pub fn drop_all(&mut self, f: impl Fn(NodeId, NodeId, &Message) -> bool) -> usize {
        let before = self.wire.len();
        self.wire.retain(|(a, b, m)| !f(*a, *b, m));
        before - self.wire.len()
    }
    /// Delivers the queued message at position `i`.
    pub fn deliver_at(&mut self, i: usize) {
        let (from, to, msg) = self.wire.remove(i).expect("no message there");
        self.deliver(from, to, msg);
    }
    /// Delivers in FIFO order until the wire is empty.
    pub fn deliver_all(&mut self) {
        self.deliver_all_dropping(|_, _, _| false);
    }
    /// Like [`Cluster::deliver_all`], but messages matching `drop` are lost.
    pub fn deliver_all_dropping(&mut self, mut drop: impl FnMut(NodeId, NodeId, &Message) -> bool) {
        for _ in 0..DELIVERIES_MAX {
            let Some((from, to, msg)) = self.wire.pop_front() else {
                return;
            };
            if !drop(from, to, &msg) {
                self.deliver(from, to, msg);
            }
        }
        panic!("livelock: {DELIVERIES_MAX} deliveries and the network is not quiet");
    }
    /// Delivers in FIFO order until `done` holds; panics if the wire empties first.
    pub fn deliver_until(&mut self, done: impl Fn(&Cluster) -> bool) {
        while !done(self) {
            let (from, to, msg) = self.wire.pop_front().expect("wire empty, condition unmet");
            self.deliver(from, to, msg);
        }
    }
    fn deliver(&mut self, from: NodeId, to: NodeId, msg: Message) {
        if self.cut.contains(&(from, to)) || self.slots[&to].node.is_none() {
            return; // partitions are checked on send and on arrival
        }
        self.delivered.push((from, to, msg.clone()));
        self.input(to, |r, now, fx| r.on_message(now, from, msg, fx));
    }

    // ----- time ---------------------------------------------------------------------

    /// Fires `timer` of `id` now, or at its deadline if that is later (time jumps).
    pub fn fire(&mut self, id: u64, timer: RaftTimer) {
        let slot = self.slots.get_mut(&n(id)).expect("unknown node");
        let at = slot.timers.remove(&timer);
        let at = at.unwrap_or_else(|| panic!("n{id}: {timer:?} is not armed"));
        self.now = self.now.max(at);
        *self.fired.entry((n(id), timer)).or_default() += 1;
        self.input(n(id), |r, now, fx| r.on_timer(now, timer, fx));
    }
    /// Advances time by `d`, firing due timers in time order; messages stay queued.
    pub fn tick(&mut self, d: Duration) {
        self.advance(d, false);
    }
    /// Advances time by `d` on an instant network: everything queued is delivered
    /// before each timer fires.
    pub fn run_for(&mut self, d: Duration) {
        self.advance(d, true);
    }
    fn advance(&mut self, d: Duration, deliver: bool) {
        let end = self.now + d;
        loop {
            if deliver {
                self.deliver_all();
            }
            let timers = self
                .slots
                .iter()
                .flat_map(|(&id, s)| s.timers.iter().map(move |(&t, &at)| (at, id, t)));
            match timers.min() {
                Some((at, id, t)) if at <= end => self.fire(id.0, t),
                _ => break,
            }
        }
        self.now = end;
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

    // ----- crashes ------------------------------------------------------------------

    pub fn crash(&mut self, id: u64) {
        let slot = self.slots.get_mut(&n(id)).expect("unknown node");
        slot.node = None;
        slot.timers.clear();
        self.wire.retain(|(_, to, _)| *to != n(id));
        self.figure_3.crashed(n(id));
    }
    /// Starts a fresh incarnation from what `id` persisted (also the first boot).
    pub fn restart(&mut self, id: u64) {
        let slot = self.slots.get_mut(&n(id)).expect("unknown node");
        assert!(slot.node.is_none(), "n{id} is running");
        let recovered = slot.disk.recover();
        slot.node = Some(RaftNode::new(slot.cfg.clone()));
        self.input(n(id), |r, now, fx| r.on_start(now, recovered, fx));
    }

    // ----- clients ------------------------------------------------------------------

    pub fn request(&mut self, id: u64, client: ClientId, seq: u64, op: Request) -> Ticket {
        let req = ClientRequest { client, seq, op };
        self.input(n(id), |r, now, fx| r.on_client_request(now, req, fx));
        Ticket { client, seq }
    }
    /// Puts from fresh client sessions, handed to `id` together as one input
    /// (`Node::on_client_requests`).
    pub fn put_batch(&mut self, id: u64, kvs: &[(&str, &str)]) -> Vec<Ticket> {
        let mut reqs = Vec::new();
        for (key, value) in kvs {
            self.clients += 1;
            let (key, value) = (key.to_string(), value.to_string());
            reqs.push(ClientRequest {
                client: ClientId(1000 + self.clients),
                seq: 1,
                op: Request::Command(KvOp::Put { key, value }),
            });
        }
        let tickets = reqs.iter().map(|r| Ticket {
            client: r.client,
            seq: r.seq,
        });
        let tickets = tickets.collect();
        self.input(n(id), |r, now, fx| r.on_client_requests(now, reqs, fx));
        tickets
    }
    /// A request from a fresh client session (so proposals never dedup each other).
    pub fn propose(&mut self, id: u64, op: Request) -> Ticket {
        self.clients += 1;
        self.request(id, ClientId(1000 + self.clients), 1, op)
    }
    pub fn put(&mut self, id: u64, key: &str, value: &str) -> Ticket {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.propose(id, Request::Command(KvOp::Put { key, value }))
    }
    pub fn get(&mut self, id: u64, key: &str) -> Ticket {
        self.propose(id, Request::Query(key.to_owned()))
    }

    /// From now on, keeps persist notifications until [`Cluster::release_notifications`].
    pub fn hold_notifications(&mut self) {
        self.held.get_or_insert_with(Vec::new);
    }
    /// Delivers the held persist notifications, in order, and stops holding them.
    pub fn release_notifications(&mut self) {
        for (id, tag) in self.held.take().unwrap_or_default() {
            if self.is_up(id.0) {
                self.input_dyn(id, &mut |n, t, fx| n.on_persisted(t, tag, fx));
            }
        }
    }

    // ----- the driver loop ----------------------------------------------------------

    fn input(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut RaftNode, Time, &mut NodeEffects<RaftNode>),
    ) {
        let mut f = Some(f);
        self.input_dyn(id, &mut |n, t, fx| {
            (f.take().expect("each input runs once"))(n, t, fx)
        });
    }

    /// Non-generic body of [`Cluster::input`], so it can recurse for persist
    /// notifications without instantiating itself forever.
    fn input_dyn(
        &mut self,
        id: NodeId,
        f: &mut dyn FnMut(&mut RaftNode, Time, &mut NodeEffects<RaftNode>),
    ) {
        let now = self.now;
        let slot = self.slots.get_mut(&id).expect("unknown node");
        let node = slot
            .node
            .as_mut()
            .unwrap_or_else(|| panic!("input to crashed {id}"));
        let mut fx = Effects::new();
        f(node, now, &mut fx);
        let notify = fx.persist_notify.take();
        // Persist before send: the batch is durable before anything of this input leaves.
        slot.disk.persist(fx.persist.take());
        for op in fx.timers.drain(..) {
            match op {
                TimerOp::Set { timer, at } => slot.timers.insert(timer, at),
                TimerOp::Cancel(timer) => slot.timers.remove(&timer),
            };
        }
        self.figure_3.after_step(id, node);
        for env in fx.early_sends.drain(..) {
            self.early_sent.push((id.0, env.to.0, kind(&env.msg)));
            self.send(id.0, env.to.0, env.msg);
        }
        for env in fx.sends.drain(..) {
            self.send(id.0, env.to.0, env.msg);
        }
        let replies = fx.early_replies.drain(..).chain(fx.replies.drain(..));
        self.replies.extend(replies.map(|r| (id, r)));
        // The batch is durable (MemStorage::persist is synchronous): tell the node
        // if it asked (a leader counts itself toward a majority only after this).
        match (notify, &mut self.held) {
            (Some(tag), Some(held)) => held.push((id, tag)),
            (Some(tag), None) => self.input_dyn(id, &mut |n, t, fx| n.on_persisted(t, tag, fx)),
            (None, _) => {}
        }
    }
}
