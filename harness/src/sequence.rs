//! Message-sequence fuzzing: any protocol's nodes driven by a script of network,
//! timer, crash and client steps, with the protocol's online invariants checked after
//! every input.
//!
//! The simulator reaches its event orders through a seeded nemesis; a script reaches
//! them step by step, so a failing one shrinks (`harness/tests/fuzz_nodes.rs` drives
//! it with proptest) to the few steps that break the rule. Each step is one the
//! crash-fault model allows — a message delivered out of order, lost, duplicated, or
//! delivered again long after (an answer from an older term arriving late); a timer
//! fired ahead of earlier ones; a node crashed between two inputs and restarted from
//! its disk; a client retrying its request at another node — so every message a node
//! sees is one a correct peer sent. A forged message (random bytes decoded as a
//! protocol message) is Byzantine and out of that model: a forged vote may elect two
//! leaders. Decoders get random bytes in `harness/tests/fuzz_decoders.rs` instead.
//!
//! A run fails if a node panics (its own `assert!`s, an index, an overflow in debug
//! builds), halts itself ([`Node::halted`]: no disk faults here, so a halt is a bug),
//! or breaks an invariant of [`SimProtocol::invariants`]. Liveness is not judged: a
//! script may lose every message.

use crate::protocol::{Invariant, SimProtocol};
use crate::workload::kv::KvOps;
use crate::workload::WorkloadConfig;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use synod_core::{ClientId, KvOp, Node, NodeId, Outcome, Time};
use synod_testkit::{Check, Cluster};

/// One step of a script. Indices pick among what is there at that moment, modulo
/// its count (a step with nothing to act on does nothing), so every script is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Delivers the queued message at this position, ahead of older ones.
    Deliver(usize),
    /// Delivers the oldest queued messages, this many, in order.
    DeliverFront(u8),
    /// Loses the queued message at this position.
    Drop(usize),
    /// Queues a copy of the queued message at this position.
    Duplicate(usize),
    /// Delivers again, now, the message delivered this many deliveries ago.
    Replay(usize),
    /// Fires the armed timer at this position (by node, then timer) now, or at its
    /// deadline if that is later: a timer may fire ahead of earlier ones.
    Fire(usize),
    /// Advances time by this many milliseconds, firing due timers in time order.
    Tick(u16),
    /// A calm spell: advances time by this many milliseconds on an instant network
    /// (everything queued is delivered before each due timer fires).
    Settle(u16),
    /// Crashes this node if it is up (its volatile state, timers and the messages
    /// queued to it are gone), restarts it from its disk if it is down.
    CrashOrRestart(u8),
    /// Client `client` hands node `node` its next operation or, with `retry`, its
    /// last one again (same sequence number: deduplication must hold). `node` modulo
    /// one more than the cluster size: the last choice is the node that believes it
    /// leads ([`SimProtocol::is_leader`]).
    Request {
        /// The node asked.
        node: u8,
        /// The client asking (modulo the script's clients).
        client: u8,
        /// Resend the client's last request rather than start its next one.
        retry: bool,
    },
}

/// What a script runs on: the cluster size and the seed of the nodes' knobs and
/// randomness (`SimProtocol::build_varied`) and of the clients' operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Nodes in the cluster (at least the protocol's `MIN_NODES`).
    pub nodes: usize,
    /// Seeds every node incarnation's build and the clients' operations.
    pub seed: u64,
}

/// How far a script got: a fuzz whose scripts never commit anything tests little.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    /// Messages delivered to a live node.
    pub delivered: usize,
    /// Client requests answered `Done`.
    pub done: usize,
    /// Node crashes.
    pub crashes: usize,
}

/// The clients of a script.
const CLIENTS: u64 = 3;

/// The first invariant broken, shared between the check and the driver.
type Broken = Rc<RefCell<Option<String>>>;

/// `P`'s online invariants as a test-kit check, at the driver's virtual time.
struct Online<N: Node> {
    invariants: Vec<Box<dyn Invariant<N>>>,
    now: Rc<Cell<Time>>,
    broken: Broken,
}

impl<N: Node> Check<N> for Online<N> {
    fn after_step(&mut self, id: NodeId, node: &N) {
        for inv in &mut self.invariants {
            if let Err(e) = inv.after_step(self.now.get(), id, node) {
                let mut broken = self.broken.borrow_mut();
                broken.get_or_insert_with(|| format!("{} at {id}: {e}", inv.name()));
            }
        }
    }
    fn crashed(&mut self, id: NodeId) {
        for inv in &mut self.invariants {
            inv.on_crash(id);
        }
    }
}

/// A client of the script: its session, its last request, and what it last read.
#[derive(Default)]
struct ScriptClient<S> {
    session: S,
    seq: u64,
    last: Option<KvOp>,
    seen: HashMap<String, String>,
}

/// Runs `steps` on a fresh cluster of `P` (at least `P::MIN_NODES` nodes); `Err`
/// names the invariant broken and the step. A panic in a node propagates.
pub fn run<P: SimProtocol>(setup: Setup, steps: &[Step]) -> Result<Reached, String> {
    let size = setup.nodes.max(P::MIN_NODES) as u64;
    let members: Vec<NodeId> = (1..=size).map(NodeId).collect();
    let now = Rc::new(Cell::new(Time::ZERO));
    let broken = Broken::default();
    let online = Online {
        invariants: P::invariants(&members),
        now: now.clone(),
        broken: broken.clone(),
    };
    let incarnations = Cell::new(0u64);
    let build = {
        let members = members.clone();
        move |id: NodeId| {
            incarnations.set(incarnations.get() + 1);
            let seed = crate::sim::derive_seed(setup.seed, incarnations.get());
            P::build_varied(id, &members, seed)
        }
    };
    let mut cluster = Cluster::start(size, build, vec![Box::new(online)]);
    let mut workload = WorkloadConfig::standard(u64::MAX);
    workload.keys = 3; // contention: most operations meet another on their key
    P::fit_workload(&mut workload).map_err(|e| format!("no workload to fuzz with: {e}"))?;
    let mut ops = KvOps::new(&workload, setup.seed);
    let mut clients: Vec<ScriptClient<P::Session>> =
        (0..CLIENTS).map(|_| ScriptClient::default()).collect();
    let mut answered = 0;
    let mut reached = Reached::default();
    for (i, step) in steps.iter().enumerate() {
        now.set(cluster.now);
        reached.crashes += usize::from(
            matches!(step, Step::CrashOrRestart(n) if cluster.is_up(1 + u64::from(*n) % size)),
        );
        apply::<P>(&mut cluster, &now, &mut ops, &mut clients, step);
        if let Some(e) = broken.borrow().as_ref() {
            return Err(format!("step {i} ({step:?}): {e}"));
        }
        for (_, reply) in &cluster.replies[answered..] {
            let Some(c) = client_index(reply.client) else {
                continue;
            };
            if let Outcome::Done(response) = &reply.outcome {
                reached.done += 1;
                let client = &mut clients[c];
                P::observe(&mut client.session, response);
                if let (Some(KvOp::Get { key }), synod_core::KvResult::Value(Some(v))) =
                    (&client.last, P::result(response))
                {
                    client.seen.insert(key.clone(), v);
                }
            }
        }
        answered = cluster.replies.len();
    }
    reached.delivered = cluster.delivered.len();
    Ok(reached)
}

fn client_id(c: usize) -> ClientId {
    ClientId(1 + c as u64)
}

fn client_index(id: ClientId) -> Option<usize> {
    (1..=CLIENTS).contains(&id.0).then(|| id.0 as usize - 1)
}

fn apply<P: SimProtocol>(
    cluster: &mut Cluster<P::Node>,
    now: &Cell<Time>,
    ops: &mut KvOps,
    clients: &mut [ScriptClient<P::Session>],
    step: &Step,
) {
    let queued = cluster.wire.len();
    match *step {
        Step::Deliver(k) if queued > 0 => cluster.deliver_at(k % queued),
        Step::DeliverFront(count) => {
            for _ in 0..count.min(queued as u8) {
                cluster.deliver_at(0);
            }
        }
        Step::Drop(k) if queued > 0 => {
            cluster.wire.remove(k % queued);
        }
        Step::Duplicate(k) if queued > 0 => {
            let copy = cluster.wire[k % queued].clone();
            cluster.wire.push_back(copy);
        }
        Step::Replay(k) if !cluster.delivered.is_empty() => {
            let past = cluster.delivered.len();
            let (from, to, msg) = cluster.delivered[past - 1 - k % past].clone();
            cluster.send(from.0, to.0, msg);
            cluster.deliver_at(cluster.wire.len() - 1);
        }
        Step::Fire(k) => {
            let timers = cluster.timers();
            if let Some(&(at, id, timer)) = timers.get(k % timers.len().max(1)) {
                now.set(cluster.now.max(at));
                cluster.fire(id, timer);
            }
        }
        Step::Tick(millis) => advance(cluster, now, millis, false),
        Step::Settle(millis) => advance(cluster, now, millis, true),
        Step::CrashOrRestart(node) => {
            let id = 1 + u64::from(node) % cluster.ids().len() as u64;
            if cluster.is_up(id) {
                cluster.crash(id);
            } else {
                cluster.restart(id);
            }
        }
        Step::Request {
            node,
            client,
            retry,
        } => {
            // One choice more than there are nodes: the node that believes it leads
            // (where most requests go), else the first.
            let size = cluster.ids().len() as u64;
            let id = match u64::from(node) % (size + 1) {
                k if k < size => k + 1,
                _ => (1..=size)
                    .find(|&k| cluster.is_up(k) && P::is_leader(cluster.node(k)))
                    .unwrap_or(1),
            };
            let c = usize::from(client) % clients.len();
            let cl = &mut clients[c];
            if !retry || cl.last.is_none() {
                cl.seq += 1;
                cl.last = Some(ops.next_op(client_id(c), &cl.seen));
            }
            let op = cl.last.clone().expect("set above");
            let request = P::request_as(&mut cl.session, client_id(c), cl.seq, op);
            if cluster.is_up(id) {
                cluster.request(id, client_id(c), cl.seq, request);
            }
        }
        _ => {}
    }
}

/// Advances time by `millis`, firing due timers in time order at their deadlines;
/// with `deliver`, everything queued is delivered before each of them.
fn advance<N: Node>(cluster: &mut Cluster<N>, now: &Cell<Time>, millis: u16, deliver: bool) {
    let end = cluster.now + Duration::from_millis(millis.into());
    loop {
        if deliver {
            cluster.deliver_all();
        }
        match cluster.timers().into_iter().min() {
            Some((at, id, timer)) if at <= end => {
                now.set(cluster.now.max(at));
                cluster.fire(id, timer);
            }
            _ => break,
        }
    }
    cluster.tick(end.saturating_since(cluster.now));
}
