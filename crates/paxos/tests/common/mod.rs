//! A deterministic driver for the protocol tests: a [`Cluster`] of nodes of either
//! layer, a message queue, hand-advanced virtual time and in-memory disks.
//!
//! It carries out each input's effects by the contract in `synod_core::node`: the
//! batch is persisted to the node's `MemStorage` first, and only then are its
//! messages queued and its replies recorded (persist before send). `MemStorage::persist`
//! is synchronous, so a crash — which happens between inputs — loses nothing that was
//! drained; it drops the node, its timers and the messages queued *to* it (what it
//! already sent stays on the wire).
//!
//! After every input the driver runs the cluster's [`Check`]s (`synod.rs`,
//! `multi.rs`), so every test is also a safety test. `chaos` injects seeded faults.

#![allow(dead_code)] // each test binary uses a different subset

pub mod multi;
pub mod synod;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;
use synod_core::{
    ClientId, ClientReply, ClientRequest, Effects, MemStorage, Node, NodeEffects, NodeId, Outcome,
    Prng, Time, TimerOp,
};

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

/// Runs `run` for every seed in `seeds`; a failure names the seed that replays it.
pub fn for_seeds(seeds: std::ops::Range<u64>, run: impl Fn(u64)) {
    for seed in seeds {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed)));
        if outcome.is_err() {
            panic!("failed with seed {seed} (the panic message is above)");
        }
    }
}

/// A check run after every input of every node.
pub trait Check<N> {
    /// Node `id` processed one input.
    fn after_step(&mut self, id: NodeId, node: &N);
    /// Node `id` crashed.
    fn crashed(&mut self, _id: NodeId) {}
}

/// A message on the wire: (from, to, message).
pub type Wire<N> = (NodeId, NodeId, <N as Node>::Message);

/// A client request handed to the cluster, to look its outcome up later.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ticket {
    pub client: ClientId,
    pub seq: u64,
}

struct Slot<N: Node> {
    node: Option<N>,
    disk: MemStorage,
    timers: BTreeMap<N::Timer, Time>,
}

pub struct Cluster<N: Node> {
    slots: BTreeMap<NodeId, Slot<N>>,
    build: Box<dyn Fn(NodeId) -> N>,
    checks: Vec<Box<dyn Check<N>>>,
    pub wire: VecDeque<Wire<N>>,
    pub now: Time,
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every client reply, with the node that gave it.
    pub replies: Vec<(NodeId, ClientReply<N::Response>)>,
    /// Every message handed to a live node, in delivery order.
    pub delivered: Vec<Wire<N>>,
    /// (from, to) of every message sent ahead of its input's batch
    /// (`Effects::early_sends`).
    pub early_sent: Vec<(u64, u64)>,
    /// Persist notifications kept back while set ([`Cluster::hold_notifications`]).
    held: Option<Vec<(NodeId, u64)>>,
    clients: u64,
}

impl<N: Node> Cluster<N> {
    /// Nodes `1..=size` built by `build`, started from empty disks.
    pub fn start(
        size: u64,
        build: impl Fn(NodeId) -> N + 'static,
        checks: Vec<Box<dyn Check<N>>>,
    ) -> Self {
        let mut c = Cluster {
            slots: BTreeMap::new(),
            build: Box::new(build),
            checks,
            wire: VecDeque::new(),
            now: Time::ZERO,
            cut: BTreeSet::new(),
            replies: Vec::new(),
            delivered: Vec::new(),
            early_sent: Vec::new(),
            held: None,
            clients: 0,
        };
        for id in 1..=size {
            let slot = Slot {
                node: None,
                disk: MemStorage::new(),
                timers: BTreeMap::new(),
            };
            c.slots.insert(n(id), slot);
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
    pub fn node(&self, id: u64) -> &N {
        let slot = &self.slots[&n(id)];
        slot.node
            .as_ref()
            .unwrap_or_else(|| panic!("n{id} is crashed"))
    }
    pub fn live(&self) -> impl Iterator<Item = &N> {
        self.slots.values().filter_map(|s| s.node.as_ref())
    }
    pub fn disk(&self, id: u64) -> &MemStorage {
        &self.slots[&n(id)].disk
    }
    pub fn armed(&self, id: u64, timer: N::Timer) -> Option<Time> {
        self.slots[&n(id)].timers.get(&timer).copied()
    }
    /// The latest reply to `t`.
    pub fn outcome(&self, t: Ticket) -> Option<&Outcome<N::Response>> {
        let mut mine = self
            .replies
            .iter()
            .filter(|(_, r)| (r.client, r.seq) == (t.client, t.seq));
        mine.next_back().map(|(_, r)| &r.outcome)
    }
    /// Delivered messages matching `f`.
    pub fn count(&self, f: impl Fn(NodeId, NodeId, &N::Message) -> bool) -> usize {
        self.delivered
            .iter()
            .filter(|(a, b, m)| f(*a, *b, m))
            .count()
    }

    // ----- network ------------------------------------------------------------------

    /// Puts a message on the wire (dropped if the link is cut), as if `from` sent it.
    pub fn send(&mut self, from: u64, to: u64, msg: N::Message) {
        if !self.cut.contains(&(n(from), n(to))) {
            self.wire.push_back((n(from), n(to), msg));
        }
    }
    /// Cuts both directions between `a` and `b`.
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
    pub fn drop_next(
        &mut self,
        f: impl Fn(NodeId, NodeId, &N::Message) -> bool,
    ) -> Option<Wire<N>> {
        let i = self.wire.iter().position(|(a, b, m)| f(*a, *b, m))?;
        self.wire.remove(i)
    }
    /// Removes every queued message matching `f`; returns how many.
    pub fn drop_all(&mut self, f: impl Fn(NodeId, NodeId, &N::Message) -> bool) -> usize {
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
    pub fn deliver_all_dropping(
        &mut self,
        mut drop: impl FnMut(NodeId, NodeId, &N::Message) -> bool,
    ) {
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
    fn deliver(&mut self, from: NodeId, to: NodeId, msg: N::Message) {
        if self.cut.contains(&(from, to)) || self.slots[&to].node.is_none() {
            return; // partitions are checked on send and on arrival
        }
        self.delivered.push((from, to, msg.clone()));
        self.input(to, |r, now, fx| r.on_message(now, from, msg, fx));
    }

    // ----- time ---------------------------------------------------------------------

    /// Fires `timer` of `id` now, or at its deadline if that is later (time jumps).
    pub fn fire(&mut self, id: u64, timer: N::Timer) {
        let slot = self.slots.get_mut(&n(id)).expect("unknown node");
        let at = slot.timers.remove(&timer);
        let at = at.unwrap_or_else(|| panic!("n{id}: {timer:?} is not armed"));
        self.now = self.now.max(at);
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
            match self.earliest_timer() {
                Some((at, id, t)) if at <= end => self.fire(id, t),
                _ => break,
            }
        }
        self.now = end;
    }
    fn earliest_timer(&self) -> Option<(Time, u64, N::Timer)> {
        let timers = self
            .slots
            .iter()
            .flat_map(|(&id, s)| s.timers.iter().map(move |(&t, &at)| (at, id.0, t)));
        timers.min()
    }

    // ----- crashes ------------------------------------------------------------------

    pub fn crash(&mut self, id: u64) {
        let slot = self.slots.get_mut(&n(id)).expect("unknown node");
        slot.node = None;
        slot.timers.clear();
        self.wire.retain(|(_, to, _)| *to != n(id));
        if let Some(held) = &mut self.held {
            held.retain(|&(to, _)| to != n(id));
        }
        for c in &mut self.checks {
            c.crashed(n(id));
        }
    }
    /// Starts a fresh incarnation from what `id` persisted (also the first boot).
    pub fn restart(&mut self, id: u64) {
        let slot = self.slots.get_mut(&n(id)).expect("unknown node");
        assert!(slot.node.is_none(), "n{id} is running");
        let recovered = slot.disk.recover();
        slot.node = Some((self.build)(n(id)));
        self.input(n(id), |r, now, fx| r.on_start(now, recovered, fx));
    }

    // ----- clients ------------------------------------------------------------------

    pub fn request(&mut self, id: u64, client: ClientId, seq: u64, op: N::Request) -> Ticket {
        let req = ClientRequest { client, seq, op };
        self.input(n(id), |r, now, fx| r.on_client_request(now, req, fx));
        Ticket { client, seq }
    }
    /// Requests from fresh client sessions handed to node `id` together, as one input
    /// (a server that read them at once).
    pub fn propose_all(&mut self, id: u64, ops: Vec<N::Request>) -> Vec<Ticket> {
        let mut tickets = Vec::new();
        let mut reqs = Vec::new();
        for op in ops {
            self.clients += 1;
            let client = ClientId(1000 + self.clients);
            tickets.push(Ticket { client, seq: 1 });
            reqs.push(ClientRequest { client, seq: 1, op });
        }
        self.input(n(id), |r, now, fx| r.on_client_requests(now, reqs, fx));
        tickets
    }
    /// A request from a fresh client session (so proposals never dedup each other).
    pub fn propose(&mut self, id: u64, op: N::Request) -> Ticket {
        self.clients += 1;
        self.request(id, ClientId(1000 + self.clients), 1, op)
    }

    /// From now on, keeps persist notifications until [`Cluster::release_notifications`]
    /// (the batches themselves are durable at once, as always).
    pub fn hold_notifications(&mut self) {
        self.held.get_or_insert_with(Vec::new);
    }
    /// Delivers the held persist notifications, in order, and stops holding them.
    pub fn release_notifications(&mut self) {
        for (id, tag) in self.held.take().unwrap_or_default() {
            self.notify(id, tag);
        }
    }

    // ----- the driver loop ----------------------------------------------------------

    /// One input, then the persist notifications it and its follow-ups asked for.
    fn input(&mut self, id: NodeId, f: impl FnOnce(&mut N, Time, &mut NodeEffects<N>)) {
        if let Some(tag) = self.step(id, f) {
            self.notify(id, tag);
        }
    }

    /// Tells `id` its batch `tag` is durable (`MemStorage::persist` is synchronous),
    /// unless notifications are held.
    fn notify(&mut self, id: NodeId, mut tag: u64) {
        loop {
            if let Some(held) = &mut self.held {
                held.push((id, tag));
                return;
            }
            match self.step(id, |r, now, fx| r.on_persisted(now, tag, fx)) {
                Some(next) => tag = next,
                None => return,
            }
        }
    }

    /// Carries out one input of `id`; returns the persist notification it asked for.
    fn step(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut N, Time, &mut NodeEffects<N>),
    ) -> Option<u64> {
        let now = self.now;
        let slot = self.slots.get_mut(&id).expect("unknown node");
        let node = slot
            .node
            .as_mut()
            .unwrap_or_else(|| panic!("input to crashed {id}"));
        let mut fx = Effects::new();
        f(node, now, &mut fx);
        // Persist before send: the batch is durable before anything of this input leaves.
        slot.disk.persist(fx.persist.take());
        for op in fx.timers.drain(..) {
            match op {
                TimerOp::Set { timer, at } => slot.timers.insert(timer, at),
                TimerOp::Cancel(timer) => slot.timers.remove(&timer),
            };
        }
        for c in &mut self.checks {
            c.after_step(id, node);
        }
        for env in fx.early_sends.drain(..) {
            self.early_sent.push((id.0, env.to.0));
            self.send(id.0, env.to.0, env.msg);
        }
        for env in fx.sends.drain(..) {
            self.send(id.0, env.to.0, env.msg);
        }
        let replies = fx.early_replies.drain(..).chain(fx.replies.drain(..));
        self.replies.extend(replies.map(|r| (id, r)));
        fx.persist_notify
    }
}

/// Weights (out of 100 per step) of what [`Cluster::chaos`] does besides delivering a
/// random queued message (so delivery order is random): lose or duplicate a queued
/// message, ask a node to propose, crash or restart a node, fire a random armed timer
/// (out of time order, so others fire late), or isolate a random node / heal every
/// cut. On a quiet wire the earliest timer fires.
pub struct Faults {
    pub drop: u64,
    pub duplicate: u64,
    pub propose: u64,
    pub crash: u64,
    pub timer: u64,
    pub partition: u64,
}

impl<N: Node> Cluster<N> {
    /// `steps` random steps; `propose(cluster, rng, node)` makes a client request.
    /// Crashes keep a majority up.
    pub fn chaos(
        &mut self,
        rng: &mut Prng,
        steps: usize,
        faults: &Faults,
        propose: &dyn Fn(&mut Cluster<N>, &mut Prng, u64),
    ) {
        let ids = self.ids();
        let pick = |rng: &mut Prng, len: usize| rng.below(len as u64) as usize;
        let dup_below = faults.drop + faults.duplicate;
        let propose_below = dup_below + faults.propose;
        let crash_below = propose_below + faults.crash;
        let timer_below = crash_below + faults.timer;
        let partition_below = timer_below + faults.partition;
        for _ in 0..steps {
            let roll = rng.below(100);
            let queued = self.wire.len();
            let armed: Vec<(Time, u64, N::Timer)> = (self.slots.iter())
                .flat_map(|(id, s)| s.timers.iter().map(move |(&t, &at)| (at, id.0, t)))
                .collect();
            if roll < faults.drop && queued > 0 {
                self.wire.remove(pick(rng, queued));
            } else if roll < dup_below && queued > 0 {
                let copy = self.wire[pick(rng, queued)].clone();
                self.wire.push_back(copy);
            } else if roll < propose_below {
                let id = ids[pick(rng, ids.len())];
                if self.is_up(id) {
                    propose(self, rng, id);
                }
            } else if roll < crash_below {
                let id = ids[pick(rng, ids.len())];
                let down = ids.iter().filter(|&&i| !self.is_up(i)).count();
                if !self.is_up(id) {
                    self.restart(id);
                } else if (down + 1) * 2 < ids.len() {
                    self.crash(id);
                }
            } else if roll < partition_below {
                match rng.below(2) {
                    0 => self.isolate(ids[pick(rng, ids.len())]),
                    _ => self.heal(),
                }
            } else if roll < timer_below || queued == 0 {
                if armed.is_empty() {
                    continue;
                }
                let (_, id, t) = match roll < timer_below {
                    true => armed[pick(rng, armed.len())],
                    false => *armed.iter().min().expect("not empty"),
                };
                self.fire(id, t);
            } else {
                self.deliver_at(pick(rng, queued));
            }
        }
    }

    /// Ends every fault, then runs the network for `d`.
    pub fn settle(&mut self, d: Duration) {
        self.heal();
        for id in self.ids() {
            if !self.is_up(id) {
                self.restart(id);
            }
        }
        self.run_for(d);
    }
}
