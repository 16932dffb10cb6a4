//! The protocol crates' test kit: a deterministic in-memory [`Cluster`] over any
//! sans-IO [`Node`] — a message queue the test controls, hand-advanced virtual time,
//! one [`MemStorage`] disk per node, crashes and restarts, and seeded [`chaos`]
//! (`Cluster::chaos`). Raft's, Multi-Paxos's and every later protocol's tests drive
//! their nodes through it; only what is protocol-specific (building a node, naming a
//! message, the protocol's own safety [`Check`]) lives in each crate's
//! `tests/common`.
//!
//! The cluster carries out each input's effects by the contract in
//! `synod_core::node`: the batch is persisted to the node's `MemStorage` first, and
//! only then are its messages queued and its replies recorded (persist before send).
//! `MemStorage::persist` is synchronous, so a crash — which happens between inputs —
//! loses nothing that was drained; it drops the node, its timers, its held persist
//! notifications and the messages queued *to* it (what it already sent stays on the
//! wire). After every input the cluster runs the test's [`Check`]s, so every test is
//! also a safety test, and fails if the node halted itself ([`Node::halted`]).
//!
//! Nothing here is random unless a test hands in a seeded [`Prng`]: the same test
//! runs the same way every time.
//!
//! ```
//! use synod_testkit::{n, Cluster};
//! # use synod_core::{ClientRequest, NodeEffects, NodeId, Recovered, Time, Node};
//! # /// A node that answers every request at once with its own id.
//! # struct Echo(NodeId);
//! # impl Node for Echo {
//! #     type Message = ();
//! #     type Timer = ();
//! #     type Request = u64;
//! #     type Response = u64;
//! #     fn id(&self) -> NodeId { self.0 }
//! #     fn on_start(&mut self, _: Time, _: Recovered, _: &mut NodeEffects<Self>) {}
//! #     fn on_message(&mut self, _: Time, _: NodeId, _: (), _: &mut NodeEffects<Self>) {}
//! #     fn on_timer(&mut self, _: Time, _: (), _: &mut NodeEffects<Self>) {}
//! #     fn on_client_request(&mut self, _: Time, r: ClientRequest<u64>, out: &mut NodeEffects<Self>) {
//! #         out.reply(r.client, r.seq, synod_core::Outcome::Done(r.op + self.0 .0));
//! #     }
//! #     fn on_persisted(&mut self, _: Time, _: u64, _: &mut NodeEffects<Self>) {}
//! # }
//! let mut cluster = Cluster::start(3, Echo, Vec::new());
//! let ticket = cluster.propose(2, 40);
//! assert_eq!(cluster.outcome(ticket), Some(&synod_core::Outcome::Done(42)));
//! cluster.crash(2);
//! assert!(!cluster.is_up(2));
//! cluster.restart(2);
//! ```

mod chaos;

pub use chaos::{for_seeds, Faults};

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;
use synod_core::{
    ClientId, ClientReply, ClientRequest, Effects, MemStorage, Node, NodeEffects, NodeId, Outcome,
    Time, TimerOp,
};

#[doc(no_inline)]
pub use synod_core::Prng;

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

/// A protocol's safety check, run after every input of every node.
pub trait Check<N> {
    /// Node `id` processed one input (and persisted its batch).
    fn after_step(&mut self, id: NodeId, node: &N);
    /// Node `id` crashed: whatever the check remembered of its volatile state is gone.
    fn crashed(&mut self, _id: NodeId) {}
}

/// A check the test keeps a handle on, to read what it recorded (e.g. the leader of
/// every term) while the cluster runs it.
impl<N, C: Check<N>> Check<N> for Rc<RefCell<C>> {
    fn after_step(&mut self, id: NodeId, node: &N) {
        self.borrow_mut().after_step(id, node);
    }
    fn crashed(&mut self, id: NodeId) {
        self.borrow_mut().crashed(id);
    }
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

/// Nodes of one protocol, the wire between them, their disks and the clock.
pub struct Cluster<N: Node> {
    slots: BTreeMap<NodeId, Slot<N>>,
    build: Box<dyn Fn(NodeId) -> N>,
    checks: Vec<Box<dyn Check<N>>>,
    /// Messages sent and not yet delivered, oldest first.
    pub wire: VecDeque<Wire<N>>,
    pub now: Time,
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every client reply, with the node that gave it.
    pub replies: Vec<(NodeId, ClientReply<N::Response>)>,
    /// Every message handed to a live node, in delivery order.
    pub delivered: Vec<Wire<N>>,
    /// Every message sent ahead of its input's batch (`Effects::early_sends`).
    pub early_sent: Vec<Wire<N>>,
    /// How many times each timer of each node fired.
    pub fired: BTreeMap<(NodeId, N::Timer), usize>,
    /// Persist notifications kept back while set ([`Cluster::hold_notifications`]).
    held: Option<Vec<(NodeId, u64)>>,
    clients: u64,
}

impl<N: Node> Cluster<N> {
    /// Nodes `1..=size` built by `build`, started from empty disks, each input of
    /// each node followed by `checks`.
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
            fired: BTreeMap::new(),
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
    /// Node `id`; panics if it is crashed.
    pub fn node(&self, id: u64) -> &N {
        let slot = &self.slots[&n(id)];
        slot.node
            .as_ref()
            .unwrap_or_else(|| panic!("n{id} is crashed"))
    }
    /// The running nodes, by id.
    pub fn live(&self) -> impl Iterator<Item = &N> {
        self.slots.values().filter_map(|s| s.node.as_ref())
    }
    /// What `id` has persisted (it survives the node's crashes).
    pub fn disk(&self, id: u64) -> &MemStorage {
        &self.slots[&n(id)].disk
    }
    /// `id`'s disk, for a test that damages it between incarnations.
    pub fn disk_mut(&mut self, id: u64) -> &mut MemStorage {
        &mut self.slots.get_mut(&n(id)).expect("unknown node").disk
    }
    /// When `timer` of `id` is due, if it is armed.
    pub fn armed(&self, id: u64, timer: N::Timer) -> Option<Time> {
        self.slots[&n(id)].timers.get(&timer).copied()
    }
    /// Every armed timer: (deadline, node, timer), by node and then timer.
    pub fn timers(&self) -> Vec<(Time, u64, N::Timer)> {
        self.armed_timers().collect()
    }
    /// The latest reply to `t`.
    pub fn outcome(&self, t: Ticket) -> Option<&Outcome<N::Response>> {
        let mut mine = self
            .replies
            .iter()
            .filter(|(_, r)| (r.client, r.seq) == (t.client, t.seq));
        mine.next_back().map(|(_, r)| &r.outcome)
    }
    /// The position on the wire of the first queued message matching `f`.
    pub fn queued(&self, f: impl Fn(NodeId, NodeId, &N::Message) -> bool) -> Option<usize> {
        self.wire.iter().position(|(a, b, m)| f(*a, *b, m))
    }
    /// Queued (not yet delivered) messages matching `f`.
    pub fn count_queued(&self, f: impl Fn(NodeId, NodeId, &N::Message) -> bool) -> usize {
        self.wire.iter().filter(|(a, b, m)| f(*a, *b, m)).count()
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
    /// Cuts both directions between `a` and `b`; what is queued across it is lost on
    /// arrival.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((n(a), n(b)));
        self.cut.insert((n(b), n(a)));
    }
    /// Cuts every link between a node of `a` and a node of `b`.
    pub fn partition(&mut self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                self.cut(x, y);
            }
        }
    }
    /// Cuts `id` off from every other node.
    pub fn isolate(&mut self, id: u64) {
        let others: Vec<u64> = self.ids().into_iter().filter(|&o| o != id).collect();
        self.partition(&[id], &others);
    }
    /// Restores every link.
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
    /// Delivers the queued message at position `i` (ahead of older ones: reordering).
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
        let last = &self.delivered[self.delivered.len().saturating_sub(8)..];
        let last: Vec<String> = (last.iter())
            .map(|(from, to, m)| format!("{from}->{to} {m:?}"))
            .collect();
        panic!(
            "livelock: {DELIVERIES_MAX} deliveries and the network is not quiet; the last:\n  {}",
            last.join("\n  ")
        );
    }
    /// Delivers in FIFO order until `done` holds; panics if the wire empties first.
    pub fn deliver_until(&mut self, done: impl Fn(&Self) -> bool) {
        while !done(self) {
            let (from, to, msg) = self.wire.pop_front().expect("wire empty, condition unmet");
            self.deliver(from, to, msg);
        }
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
        *self.fired.entry((n(id), timer)).or_default() += 1;
        self.input(n(id), |r, now, fx| r.on_timer(now, timer, fx));
    }
    /// Hands `timer` to `id` now, armed or not, due or not: the stale expiry a real
    /// runtime can deliver for a timer re-armed or cancelled after it went off. The
    /// timer stays armed as it was.
    pub fn fire_spurious(&mut self, id: u64, timer: N::Timer) {
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
            match self.armed_timers().min() {
                Some((at, id, t)) if at <= end => self.fire(id, t),
                _ => break,
            }
        }
        self.now = end;
    }
    /// Every armed timer: (deadline, node, timer), by node.
    fn armed_timers(&self) -> impl Iterator<Item = (Time, u64, N::Timer)> + '_ {
        (self.slots.iter()).flat_map(|(&id, s)| s.timers.iter().map(move |(&t, &at)| (at, id.0, t)))
    }

    // ----- crashes ------------------------------------------------------------------

    /// Stops `id` between two inputs: its volatile state, its timers, the persist
    /// notifications held for it and the messages queued to it are gone; its disk
    /// stays.
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

    /// `op` as request `seq` of `client`, handed to node `id`.
    pub fn request(&mut self, id: u64, client: ClientId, seq: u64, op: N::Request) -> Ticket {
        let req = ClientRequest { client, seq, op };
        self.input(n(id), |r, now, fx| r.on_client_request(now, req, fx));
        Ticket { client, seq }
    }
    /// A request from a fresh client session (so proposals never dedup each other).
    pub fn propose(&mut self, id: u64, op: N::Request) -> Ticket {
        let client = self.fresh_client();
        self.request(id, client, 1, op)
    }
    /// Requests from fresh client sessions handed to node `id` together, as one input
    /// (a server that read them at once: `Node::on_client_requests`).
    pub fn propose_all(&mut self, id: u64, ops: Vec<N::Request>) -> Vec<Ticket> {
        let mut tickets = Vec::new();
        let mut reqs = Vec::new();
        for op in ops {
            let client = self.fresh_client();
            tickets.push(Ticket { client, seq: 1 });
            reqs.push(ClientRequest { client, seq: 1, op });
        }
        self.input(n(id), |r, now, fx| r.on_client_requests(now, reqs, fx));
        tickets
    }
    fn fresh_client(&mut self) -> ClientId {
        self.clients += 1;
        ClientId(1000 + self.clients)
    }

    /// From now on, keeps persist notifications until [`Cluster::release_notifications`]:
    /// the disk is "slow" as far as the nodes can tell (their batches are durable at
    /// once, as always, but they have not heard so).
    pub fn hold_notifications(&mut self) {
        self.held.get_or_insert_with(Vec::new);
    }
    /// Delivers the held persist notifications, in order, and stops holding them.
    pub fn release_notifications(&mut self) {
        for (id, tag) in self.held.take().unwrap_or_default() {
            self.notify(id, tag);
        }
    }

    /// Delivers the oldest held persist notification and keeps holding the rest
    /// (those it leads to join the back of the queue): one slow write completes
    /// while later ones are still in flight.
    pub fn release_next_notification(&mut self) {
        let held = self.held.as_mut().expect("notifications are not held");
        assert!(!held.is_empty(), "no persist notification is held");
        let (id, tag) = held.remove(0);
        if let Some(next) = self.step(id, |r, now, fx| r.on_persisted(now, tag, fx)) {
            self.notify(id, next);
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
        if let Some(reason) = node.halted() {
            panic!("{id} halted: {reason}");
        }
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
            self.early_sent.push((id, env.to, env.msg.clone()));
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
