//! The deterministic simulator.
//!
//! A single-threaded discrete-event loop over a priority queue ordered by
//! `(virtual time, sequence number)`. One seed decides everything — network delays,
//! losses, the nemesis's faults, the workload — through independent ChaCha streams,
//! so any run is replayed exactly from `(seed, config)` and ends with the same
//! [trace digest](digest::TraceDigest).
//!
//! What it models:
//! * **Network** — latency with an exponential tail (which reorders), loss,
//!   duplication, extra reordering delay, symmetric and one-way partitions (checked
//!   when a message is sent *and* when it arrives), clogged links that hold messages
//!   and release them later, and long delays (up to several election timeouts) that
//!   deliver a message of an earlier term after the next leadership formed.
//! * **Disk** — each node's batches are written one after another, each taking a
//!   random time. **Persist before send** is enforced: the messages and replies of an
//!   input are released only when its batch (and every earlier one) is durable.
//! * **Nodes** — crash (volatile state, staged writes, pending sends and timers are
//!   lost; messages already on the wire are not), restart from storage, pause (inputs
//!   wait), clock drift.
//! * **Run phases** — a *main* phase in which the workload spends its op budget while
//!   the nemesis injects faults, then a *heal*: every fault is undone and each client
//!   must complete its liveness ops within the heal timeout.
//!
//! Protocol invariants registered through [`SimProtocol::invariants`] are checked
//! after every step; the first violation stops the run.

pub mod clock;
pub mod comeback;
pub mod config;
pub mod digest;
pub mod figure8;
pub mod nemesis;
pub mod script;

use crate::history::HistoryEvent;
use crate::protocol::{Invariant, SimProtocol};
use crate::workload::{Answer, ClientStats, ClientStep, Phase, Workload};
use clock::NodeClock;
use config::SimConfig;
use digest::TraceDigest;
use nemesis::{Fault, Nemesis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use script::{Action, Comeback, Figure8, Script};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Duration;
use synod_core::{
    ClientReply, ClientRequest, Envelope, MemStorage, Node, NodeEffects, NodeId, Outcome, Time,
    TimerOp,
};

/// Stream ids for deriving independent random streams from the master seed.
const STREAM_NETWORK: u64 = 1;
const STREAM_DISK: u64 = 2;
const STREAM_NEMESIS: u64 = 3;
const STREAM_WORKLOAD: u64 = 4;
const STREAM_NODES: u64 = 5;

/// Derives a sub-seed (SplitMix64 over `seed` and `stream`).
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

type Msg<P> = <<P as SimProtocol>::Node as Node>::Message;
type Req<P> = <<P as SimProtocol>::Node as Node>::Request;
type Resp<P> = <<P as SimProtocol>::Node as Node>::Response;
type TimerOf<P> = <<P as SimProtocol>::Node as Node>::Timer;

enum Event<P: SimProtocol> {
    Deliver {
        from: usize,
        to: usize,
        msg: Msg<P>,
    },
    Timer {
        node: usize,
        timer: TimerOf<P>,
        generation: u64,
    },
    PersistDone {
        node: usize,
        incarnation: u32,
        batches: usize,
    },
    ToNode {
        node: usize,
        request: ClientRequest<Req<P>>,
    },
    ToClient {
        client: usize,
        reply: ClientReply<Resp<P>>,
    },
    ClientWake {
        client: usize,
        token: u64,
    },
    ClientTimeout {
        client: usize,
    },
    NemesisTick,
    FaultEnd {
        id: u64,
    },
    MainDeadline,
    HealDeadline,
    /// A step of the scripted fault numbered `run`.
    ScriptWake {
        run: u64,
    },
}

impl<P: SimProtocol> Event<P> {
    /// The node this event is an input to, if any (those wait while it is paused).
    fn target_node(&self) -> Option<usize> {
        match self {
            Event::Deliver { to, .. } => Some(*to),
            Event::Timer { node, .. }
            | Event::PersistDone { node, .. }
            | Event::ToNode { node, .. } => Some(*node),
            _ => None,
        }
    }

    fn fold_into(&self, at: Time, d: &mut TraceDigest) {
        let tag = match self {
            Event::Deliver { .. } => 1,
            Event::Timer { .. } => 2,
            Event::PersistDone { .. } => 3,
            Event::ToNode { .. } => 4,
            Event::ToClient { .. } => 5,
            Event::ClientWake { .. } => 6,
            Event::NemesisTick => 7,
            Event::FaultEnd { .. } => 8,
            Event::MainDeadline => 9,
            Event::HealDeadline => 10,
            Event::ClientTimeout { .. } => 11,
            Event::ScriptWake { .. } => 12,
        };
        d.begin_event(tag);
        d.write_u64(at.as_nanos());
        match self {
            Event::Deliver { from, to, msg } => {
                d.write_usize(*from);
                d.write_usize(*to);
                msg.hash(d);
            }
            Event::Timer { node, timer, .. } => {
                d.write_usize(*node);
                timer.hash(d);
            }
            Event::PersistDone { node, .. } => d.write_usize(*node),
            Event::ToNode { node, request } => {
                d.write_usize(*node);
                request.hash(d);
            }
            Event::ToClient { client, reply } => {
                d.write_usize(*client);
                reply.hash(d);
            }
            Event::ClientWake { client, token } => {
                d.write_usize(*client);
                d.write_u64(*token);
            }
            Event::FaultEnd { id } => d.write_u64(*id),
            Event::ClientTimeout { client } => d.write_usize(*client),
            Event::ScriptWake { run } => d.write_u64(*run),
            Event::NemesisTick | Event::MainDeadline | Event::HealDeadline => {}
        }
    }
}

/// A queue entry: the event itself lives in the simulator's slab, so the heap moves
/// only these 24 bytes around while it sifts.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Scheduled {
    at: Time,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed so that `BinaryHeap` (a max-heap) pops the earliest event first;
    /// `seq` breaks ties in scheduling order, which keeps runs deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Storage for scheduled events, indexed by [`Scheduled::slot`]; freed slots are reused
/// so the slab's size follows the number of pending events, not the run length.
struct EventSlab<P: SimProtocol> {
    events: Vec<Option<Event<P>>>,
    free: Vec<u32>,
}

impl<P: SimProtocol> EventSlab<P> {
    fn insert(&mut self, event: Event<P>) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.events[slot as usize] = Some(event);
                slot
            }
            None => {
                let slot =
                    u32::try_from(self.events.len()).expect("fewer than 2^32 pending events");
                self.events.push(Some(event));
                slot
            }
        }
    }

    fn take(&mut self, slot: u32) -> Event<P> {
        self.free.push(slot);
        self.events[slot as usize]
            .take()
            .expect("every queued slot holds an event")
    }
}

/// Output of one input waiting for the disk.
struct Pending<P: SimProtocol> {
    /// `true` if this entry has its own batch in the disk queue.
    owns_batch: bool,
    sends: Vec<Envelope<Msg<P>>>,
    replies: Vec<ClientReply<Resp<P>>>,
    notify: Option<u64>,
}

struct Slot<P: SimProtocol> {
    id: NodeId,
    node: Option<P::Node>,
    paused: bool,
    inbox: Vec<Event<P>>,
    storage: MemStorage,
    incarnation: u32,
    /// Armed timers: generation (to recognise stale queue entries) and deadline on
    /// the node's own clock.
    timers: BTreeMap<TimerOf<P>, (u64, Time)>,
    pending: VecDeque<Pending<P>>,
    /// A write is in progress; batches staged meanwhile go in the next one.
    disk_busy: bool,
    /// A "crash in write" fault waits for this node's next early send.
    crash_armed: bool,
    clock: NodeClock,
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A protocol invariant (named) was broken.
    Invariant(&'static str),
    /// The cluster did not serve every client after the heal.
    Liveness,
    /// The run hit the event cap (a livelock or an unbounded loop).
    EventLimit,
    /// A node panicked (a protocol `assert!`).
    Panic,
    /// The history is not linearizable.
    Linearizability,
}

/// A failed check, with when it was detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What failed.
    pub kind: ViolationKind,
    /// Virtual time of detection.
    pub at: Time,
    /// Explanation.
    pub message: String,
}

/// Counters over one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events processed.
    pub events: u64,
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered to a running node.
    pub delivered: u64,
    /// Client requests delivered to a running node and replies delivered to clients.
    pub client_delivered: u64,
    /// Inputs that handed a node two or more client requests together (those that
    /// queued up while it was paused).
    pub client_batches: u64,
    /// Dropped by a partition.
    pub dropped_partition: u64,
    /// Dropped by loss.
    pub dropped_loss: u64,
    /// Arrived at a crashed node.
    pub dropped_down: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Peer messages and client replies held back by a "delay" fault.
    pub delayed: u64,
    /// Timer firings delivered.
    pub timers_fired: u64,
    /// Batches written.
    pub persists: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Faults injected, as `time: description`.
    pub faults: Vec<String>,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// Master seed.
    pub seed: u64,
    /// Trace digest (16 hex digits).
    pub digest: String,
    /// Virtual time at the end.
    pub end: Time,
    /// Virtual time when the main phase ended (the heal began).
    pub main_end: Time,
    /// Simulator counters.
    pub stats: SimStats,
    /// Client-side measurements.
    pub clients: ClientStats,
    /// The recorded history (empty if recording was off).
    pub history: Vec<HistoryEvent>,
    /// The first violation, if any.
    pub violation: Option<Violation>,
}

/// The simulator for protocol `P`.
pub struct Simulator<P: SimProtocol> {
    cfg: SimConfig,
    now: Time,
    queue: BinaryHeap<Scheduled>,
    slab: EventSlab<P>,
    next_seq: u64,
    next_generation: u64,
    net_rng: ChaCha8Rng,
    disk_rng: ChaCha8Rng,
    nemesis: Nemesis,
    active_faults: Vec<(u64, Fault)>,
    next_fault_id: u64,
    members: Vec<NodeId>,
    slots: Vec<Slot<P>>,
    /// `blocked[from * n + to]`: the directed link drops everything.
    blocked: Vec<bool>,
    /// `isolated[i]`: every peer link of node `i` drops everything, both ways
    /// (`depose`, and the Figure 8 schedule).
    isolated: Vec<bool>,
    /// `muffled[i]`: node `i`'s peer links drop what it receives and hold what it
    /// sends in `stalled` until it rejoins (scripted faults).
    muffled: Vec<bool>,
    stalled: Vec<(usize, usize, Msg<P>)>,
    /// `split[i]`: node `i` cannot exchange messages with another split node.
    split: Vec<bool>,
    /// The scripted fault in progress (`script.rs`), with its run number (wakes
    /// of earlier runs are ignored).
    script: Option<(u64, Script)>,
    script_runs: u64,
    /// `clogged[from * n + to]`: the directed link holds messages.
    clogged: Vec<bool>,
    /// `link_last[from * n + to]`: latest arrival scheduled on the link (FIFO links).
    link_last: Vec<Time>,
    held: Vec<(usize, usize, Msg<P>)>,
    lossy: bool,
    /// A "delay" fault is active.
    delaying: bool,

    workload: Workload,
    /// Per client: deadline and token of the outstanding attempt.
    client_deadline: Vec<Option<(Time, u64)>>,
    /// Per client: when its one queued `ClientTimeout` event fires, if queued. Keeping
    /// one timeout event per client (re-armed lazily) keeps the queue small.
    client_timeout_at: Vec<Option<Time>>,
    phase: Phase,
    main_end: Time,
    digest: TraceDigest,
    stats: SimStats,
    invariants: Vec<Box<dyn Invariant<P::Node>>>,
    fx: NodeEffects<P::Node>,
    violation: Option<Violation>,
    started: bool,
}

impl<P: SimProtocol> Simulator<P> {
    /// A simulator for `cfg` with the protocol's own invariants registered.
    pub fn new(cfg: SimConfig) -> Simulator<P> {
        assert!(cfg.nodes > 0, "a cluster needs at least one node");
        let n = cfg.nodes;
        let members: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
        let slots = members
            .iter()
            .map(|&id| Slot {
                id,
                node: None,
                paused: false,
                inbox: Vec::new(),
                storage: MemStorage::new(),
                incarnation: 0,
                timers: BTreeMap::new(),
                pending: VecDeque::new(),
                disk_busy: false,
                crash_armed: false,
                clock: NodeClock::default(),
            })
            .collect();
        let seed = cfg.seed;
        Simulator {
            invariants: P::invariants(&members),
            net_rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, STREAM_NETWORK)),
            disk_rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, STREAM_DISK)),
            nemesis: Nemesis::new(cfg.nemesis.clone(), derive_seed(seed, STREAM_NEMESIS)),
            workload: Workload::new(cfg.workload.clone(), n, derive_seed(seed, STREAM_WORKLOAD)),
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            slab: EventSlab {
                events: Vec::new(),
                free: Vec::new(),
            },
            next_seq: 0,
            next_generation: 0,
            active_faults: Vec::new(),
            next_fault_id: 0,
            members,
            slots,
            blocked: vec![false; n * n],
            isolated: vec![false; n],
            muffled: vec![false; n],
            stalled: Vec::new(),
            split: vec![false; n],
            script: None,
            script_runs: 0,
            clogged: vec![false; n * n],
            link_last: vec![Time::ZERO; n * n],
            held: Vec::new(),
            lossy: false,
            delaying: false,
            client_deadline: vec![None; cfg.workload.clients],
            client_timeout_at: vec![None; cfg.workload.clients],
            phase: Phase::Main,
            main_end: Time::ZERO,
            digest: TraceDigest::default(),
            stats: SimStats::default(),
            fx: NodeEffects::<P::Node>::default(),
            violation: None,
            started: false,
            cfg,
        }
    }

    /// Adds an extra invariant (tests use this to observe runs).
    pub fn add_invariant(&mut self, inv: Box<dyn Invariant<P::Node>>) {
        self.invariants.push(inv);
    }

    /// Current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Node `index` if it is up.
    pub fn node(&self, index: usize) -> Option<&P::Node> {
        self.slots[index].node.as_ref()
    }

    /// Node `index`'s storage.
    pub fn storage(&self, index: usize) -> &MemStorage {
        &self.slots[index].storage
    }

    /// Counters so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Client-side measurements so far.
    pub fn client_stats(&self) -> &ClientStats {
        &self.workload.stats
    }

    /// The first violation so far.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// The trace digest so far.
    pub fn digest(&self) -> String {
        self.digest.hex()
    }

    /// Boots every node and schedules the workload and the nemesis. Idempotent.
    pub fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        for i in 0..self.slots.len() {
            self.boot(i);
        }
        for c in 0..self.workload.len() {
            let token = self.workload.token(c);
            let jitter = Duration::from_micros(self.net_rng.gen_range(0..1000));
            let at = self.cfg.workload.start_after + jitter;
            self.schedule(at, Event::ClientWake { client: c, token });
        }
        if self.nemesis.is_active() {
            let gap = self.nemesis.next_gap(&[]);
            self.schedule(gap, Event::NemesisTick);
        }
        self.schedule(self.cfg.main_phase_max, Event::MainDeadline);
    }

    /// Runs the whole scenario (main phase, heal, liveness) and reports.
    pub fn run(mut self) -> RunOutcome {
        self.start();
        while self.phase != Phase::Done && self.violation.is_none() && self.step_event() {}
        if self.violation.is_none() && self.phase != Phase::Done {
            let pending = self.workload.liveness_pending();
            self.violate(
                ViolationKind::Liveness,
                format!("the run ended with clients still waiting: {pending:?}"),
            );
        }
        self.check_at_end();
        tracing::debug!(digest = %self.digest.hex(), events = self.stats.events, "run finished");
        RunOutcome {
            seed: self.cfg.seed,
            digest: self.digest.hex(),
            end: self.now,
            main_end: self.main_end,
            stats: self.stats,
            clients: self.workload.stats.clone(),
            history: self.workload.take_history(),
            violation: self.violation,
        }
    }

    /// Processes events up to and including virtual time `until` (for tests and
    /// step-by-step exploration). Returns `false` if the queue ran dry.
    pub fn run_until(&mut self, until: Time) -> bool {
        self.start();
        while self.violation.is_none() {
            match self.queue.peek() {
                Some(s) if s.at <= until => {
                    self.step_event();
                }
                Some(_) => {
                    self.now = until;
                    return true;
                }
                None => return false,
            }
        }
        true
    }

    fn check_at_end(&mut self) {
        let live: Vec<(NodeId, &P::Node)> = self
            .slots
            .iter()
            .filter_map(|s| s.node.as_ref().map(|n| (s.id, n)))
            .collect();
        for inv in &mut self.invariants {
            if let Err(message) = inv.at_end(&live) {
                if self.violation.is_none() {
                    self.violation = Some(Violation {
                        kind: ViolationKind::Invariant(inv.name()),
                        at: self.now,
                        message,
                    });
                }
            }
        }
    }

    /// Pops and handles one event. Returns `false` if there was none.
    fn step_event(&mut self) -> bool {
        let Some(Scheduled { at, slot, .. }) = self.queue.pop() else {
            return false;
        };
        let event = self.slab.take(slot);
        debug_assert!(at >= self.now, "time went backwards");
        self.now = at;
        self.stats.events += 1;
        if self.stats.events > self.cfg.events_max {
            self.violate(
                ViolationKind::EventLimit,
                format!("more than {} events", self.cfg.events_max),
            );
            return false;
        }
        if let Some(node) = event.target_node() {
            let slot = &mut self.slots[node];
            if slot.paused && slot.node.is_some() {
                slot.inbox.push(event);
                return true;
            }
        }
        event.fold_into(at, &mut self.digest);
        self.handle(event);
        true
    }

    /// Pops the next event if it is a client request for `node` due now, and
    /// accounts for it as `step_event` would.
    fn take_request_due_now(
        &mut self,
        node: usize,
    ) -> Option<ClientRequest<<P::Node as Node>::Request>> {
        let next = self.queue.peek()?;
        let due = next.at == self.now
            && matches!(self.slab.events[next.slot as usize], Some(Event::ToNode { node: n, .. }) if n == node);
        if !due {
            return None;
        }
        let Scheduled { at, slot, .. } = self.queue.pop()?;
        let event = self.slab.take(slot);
        self.stats.events += 1;
        event.fold_into(at, &mut self.digest);
        match event {
            Event::ToNode { request, .. } => Some(request),
            _ => unreachable!("checked above"),
        }
    }

    fn handle(&mut self, event: Event<P>) {
        match event {
            Event::Deliver { from, to, msg } => self.deliver(from, to, msg),
            Event::Timer {
                node,
                timer,
                generation,
            } => {
                let slot = &mut self.slots[node];
                let Some(&(armed, deadline)) = slot.timers.get(&timer) else {
                    return; // cancelled, or from an earlier incarnation
                };
                if armed != generation {
                    return; // re-armed since
                }
                if slot.clock.local(self.now) < deadline {
                    // The node's clock slowed down after the timer was queued: never
                    // fire before the deadline on the node's own clock.
                    let at = slot
                        .clock
                        .global_at(deadline, self.now)
                        .max(self.now + Duration::from_nanos(1));
                    self.schedule_at(
                        at,
                        Event::Timer {
                            node,
                            timer,
                            generation,
                        },
                    );
                    return;
                }
                slot.timers.remove(&timer);
                self.stats.timers_fired += 1;
                self.step_node(node, |n, t, fx| n.on_timer(t, timer, fx));
            }
            Event::PersistDone {
                node,
                incarnation,
                batches,
            } => self.persist_done(node, incarnation, batches),
            Event::ToNode { node, request } => {
                if self.slots[node].node.is_some() {
                    // Requests due at this node at this same instant — those that
                    // queued up while it was paused — reach it as one input, the way
                    // a server reads everything its sockets hold at once.
                    let mut requests = vec![request];
                    while let Some(next) = self.take_request_due_now(node) {
                        requests.push(next);
                    }
                    self.stats.client_delivered += requests.len() as u64;
                    self.stats.client_batches += u64::from(requests.len() > 1);
                    self.step_node(node, |n, t, fx| n.on_client_requests(t, requests, fx));
                }
            }
            Event::ToClient { client, reply } => self.client_answer(client, reply),
            Event::ClientWake { client, token } => {
                let step = self.workload.on_wake(client, token, self.now, self.phase);
                self.client_step(client, step);
            }
            Event::ClientTimeout { client } => self.client_timeout(client),
            Event::NemesisTick => self.nemesis_tick(),
            Event::FaultEnd { id } => {
                if let Some(pos) = self.active_faults.iter().position(|(i, _)| *i == id) {
                    let (_, fault) = self.active_faults.remove(pos);
                    self.revert(fault);
                }
            }
            Event::ScriptWake { run } => {
                if let Some((_, script)) = self.script.as_mut().filter(|(r, _)| *r == run) {
                    let actions = script.on_wake();
                    self.script_act(run, actions);
                }
            }
            Event::MainDeadline => {
                if self.phase == Phase::Main {
                    self.begin_heal();
                }
            }
            Event::HealDeadline => {
                if self.phase == Phase::Heal && !self.workload.liveness_done() {
                    let pending = self.workload.liveness_pending();
                    self.violate(
                        ViolationKind::Liveness,
                        format!(
                            "{} after the heal, clients {pending:?} had not completed their {} liveness ops",
                            humantime(self.cfg.heal_timeout),
                            self.cfg.workload.liveness_ops
                        ),
                    );
                }
            }
        }
    }

    fn schedule(&mut self, after: Duration, event: Event<P>) {
        self.schedule_at(self.now + after, event);
    }

    fn schedule_at(&mut self, at: Time, event: Event<P>) {
        self.next_seq += 1;
        let slot = self.slab.insert(event);
        self.queue.push(Scheduled {
            at,
            seq: self.next_seq,
            slot,
        });
    }

    fn violate(&mut self, kind: ViolationKind, message: String) {
        if self.violation.is_none() {
            tracing::error!(?kind, %message, seed = self.cfg.seed, "violation");
            self.violation = Some(Violation {
                kind,
                at: self.now,
                message,
            });
        }
    }

    // ----- nodes -------------------------------------------------------------------

    fn boot(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let seed = derive_seed(
            derive_seed(self.cfg.seed, STREAM_NODES),
            (index as u64) << 32 | u64::from(slot.incarnation),
        );
        slot.node = Some(if self.cfg.vary_tuning {
            P::build_varied(slot.id, &self.members, seed)
        } else {
            P::build(slot.id, &self.members, seed)
        });
        let recovered = slot.storage.recover();
        tracing::debug!(node = %slot.id, incarnation = slot.incarnation, "start");
        self.step_node(index, |n, t, fx| n.on_start(t, recovered, fx));
    }

    /// Feeds one input to node `index`, checks invariants, carries out the effects.
    fn step_node(
        &mut self,
        index: usize,
        input: impl FnOnce(&mut P::Node, Time, &mut NodeEffects<P::Node>),
    ) {
        let slot = &mut self.slots[index];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let local = slot.clock.local(self.now);
        {
            let span = tracing::debug_span!("node", id = %slot.id, t = %self.now);
            let _entered = span.enter();
            input(node, local, &mut self.fx);
        }
        for inv in &mut self.invariants {
            if let Err(message) = inv.after_step(self.now, slot.id, node) {
                if self.violation.is_none() {
                    tracing::error!(invariant = inv.name(), %message, "invariant violated");
                    self.violation = Some(Violation {
                        kind: ViolationKind::Invariant(inv.name()),
                        at: self.now,
                        message,
                    });
                }
            }
        }
        self.apply_effects(index);
        if let Some((run, script)) = self.script.as_mut().filter(|(_, s)| s.awaits_leader()) {
            let run = *run;
            if self.slots[index].node.as_ref().is_some_and(P::is_leader) {
                let actions = script.on_leader(index);
                self.script_act(run, actions);
            }
        }
    }

    fn apply_effects(&mut self, index: usize) {
        let mut fx = std::mem::take(&mut self.fx);
        for op in fx.timers.drain(..) {
            self.timer_op(index, op);
        }
        let sent_ahead = !fx.early_sends.is_empty() || !fx.early_replies.is_empty();
        let armed_hit = self.slots[index].crash_armed && sent_ahead && !fx.persist.is_empty();
        for env in fx.early_sends.drain(..) {
            self.transmit(index, env);
        }
        for reply in fx.early_replies.drain(..) {
            self.reply(index, reply);
        }
        let slot = &mut self.slots[index];
        if !fx.persist.is_empty() || fx.persist_notify.is_some() {
            self.stats.persists += 1;
            slot.storage.stage(fx.persist.take());
            slot.pending.push_back(Pending {
                owns_batch: true,
                sends: std::mem::take(&mut fx.sends),
                replies: std::mem::take(&mut fx.replies),
                notify: fx.persist_notify.take(),
            });
            if !slot.disk_busy {
                self.start_write(index);
            }
        } else if !slot.pending.is_empty() {
            // Nothing to write, but an earlier batch is in flight: whatever this input
            // sends may depend on it, so it waits in line.
            if !fx.sends.is_empty() || !fx.replies.is_empty() {
                slot.pending.push_back(Pending {
                    owns_batch: false,
                    sends: std::mem::take(&mut fx.sends),
                    replies: std::mem::take(&mut fx.replies),
                    notify: None,
                });
            }
        } else {
            for env in fx.sends.drain(..) {
                self.transmit(index, env);
            }
            for reply in fx.replies.drain(..) {
                self.reply(index, reply);
            }
        }
        self.fx = fx;
        if armed_hit {
            // The early sends are on the wire, the batch is staged: crash before it
            // is durable (a write takes at least `write_min`, so nothing lands first).
            tracing::debug!(node = %self.slots[index].id, "crash in write");
            self.slots[index].crash_armed = false;
            self.crash(index);
        }
    }

    fn timer_op(&mut self, index: usize, op: TimerOp<TimerOf<P>>) {
        match op {
            TimerOp::Set { timer, at } => {
                self.next_generation += 1;
                let generation = self.next_generation;
                let slot = &mut self.slots[index];
                slot.timers.insert(timer, (generation, at));
                let at = slot.clock.global_at(at, self.now);
                self.schedule_at(
                    at,
                    Event::Timer {
                        node: index,
                        timer,
                        generation,
                    },
                );
            }
            TimerOp::Cancel(timer) => {
                self.slots[index].timers.remove(&timer);
            }
        }
    }

    /// Starts one disk write covering every staged batch (group commit: batches
    /// staged while a write is in progress wait for the next one).
    fn start_write(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let batches = slot.storage.staged_len();
        if batches == 0 {
            return;
        }
        slot.disk_busy = true;
        let incarnation = slot.incarnation;
        let write = uniform(
            &mut self.disk_rng,
            self.cfg.disk.write_min,
            self.cfg.disk.write_max,
        );
        self.schedule(
            write,
            Event::PersistDone {
                node: index,
                incarnation,
                batches,
            },
        );
    }

    fn persist_done(&mut self, index: usize, incarnation: u32, batches: usize) {
        let slot = &mut self.slots[index];
        if slot.incarnation != incarnation || slot.node.is_none() {
            return; // the write was lost in a crash
        }
        slot.disk_busy = false;
        let mut notify = Vec::new();
        for _ in 0..batches {
            let slot = &mut self.slots[index];
            assert!(
                slot.storage.flush_one(),
                "persist completion without a staged batch"
            );
            let done = slot
                .pending
                .pop_front()
                .expect("a staged batch always has its pending entry");
            assert!(
                done.owns_batch,
                "disk completions must match batches in order"
            );
            notify.extend(done.notify);
            self.release(index, done);
            while self.slots[index]
                .pending
                .front()
                .is_some_and(|p| !p.owns_batch)
            {
                let next = self.slots[index].pending.pop_front().expect("front exists");
                self.release(index, next);
            }
        }
        self.start_write(index);
        for tag in notify {
            self.step_node(index, |n, t, fx| n.on_persisted(t, tag, fx));
        }
    }

    fn release(&mut self, index: usize, p: Pending<P>) {
        for env in p.sends {
            self.transmit(index, env);
        }
        for reply in p.replies {
            self.reply(index, reply);
        }
    }

    fn crash(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.node.take().is_none() {
            return;
        }
        let lost = slot.storage.crash();
        slot.pending.clear();
        slot.timers.clear();
        slot.inbox.clear();
        slot.paused = false;
        slot.incarnation += 1;
        slot.disk_busy = false;
        self.stats.crashes += 1;
        tracing::debug!(node = %slot.id, lost_batches = lost, "crash");
        let id = slot.id;
        for inv in &mut self.invariants {
            inv.on_crash(id);
        }
    }

    fn restart(&mut self, index: usize) {
        if self.slots[index].node.is_none() {
            self.boot(index);
        }
    }

    fn resume(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.paused = false;
        let inbox = std::mem::take(&mut slot.inbox);
        for event in inbox {
            self.schedule_at(self.now, event);
        }
    }

    // ----- network -----------------------------------------------------------------

    fn link(&self, from: usize, to: usize) -> usize {
        from * self.slots.len() + to
    }

    fn index_of(&self, id: NodeId) -> usize {
        let i = usize::try_from(id.0)
            .ok()
            .and_then(|x| x.checked_sub(1))
            .filter(|&i| i < self.slots.len());
        match i {
            Some(i) => i,
            None => panic!("protocol addressed unknown node {id}"),
        }
    }

    /// One-way delay: the minimum plus an exponential tail. Returns the delay and
    /// whether the message was picked for reordering (an extra random delay that
    /// lets it overtake or be overtaken).
    fn latency(&mut self) -> (Duration, bool) {
        let net = &self.cfg.network;
        let u: f64 = self.net_rng.gen();
        let tail = net.latency_tail_mean.as_secs_f64() * -(1.0 - u).ln();
        let tail = Duration::from_secs_f64(tail.min(net.latency_tail_max.as_secs_f64()));
        let mut d = net.latency_min + tail;
        let reordered = net.reorder > 0.0 && self.net_rng.gen_bool(net.reorder);
        if reordered {
            d += uniform(&mut self.net_rng, Duration::ZERO, net.reorder_delay_max);
        }
        (d, reordered)
    }

    /// When a peer message sent now on `link` arrives. Links are FIFO like the TCP
    /// connections the runtime uses — a message never overtakes an earlier one on the
    /// same link — except for messages picked for reordering, and duplicates.
    fn arrival(&mut self, link: usize) -> Time {
        let (d, reordered) = self.latency();
        let at = self.now + d;
        if reordered || !self.cfg.network.fifo_links {
            return at;
        }
        let at = at.max(self.link_last[link]);
        self.link_last[link] = at;
        at
    }

    fn transmit(&mut self, from: usize, env: Envelope<Msg<P>>) {
        let to = self.index_of(env.to);
        self.stats.sent += 1;
        let link = self.link(from, to);
        if self.muffled[from] {
            self.stats.delayed += 1;
            return self.stalled.push((from, to, env.msg));
        }
        if self.cut(from, to) {
            self.stats.dropped_partition += 1;
            return;
        }
        if self.clogged[link] {
            self.held.push((from, to, env.msg));
            return;
        }
        let loss = if self.lossy {
            self.cfg.network.fault_loss
        } else {
            self.cfg.network.loss
        };
        if loss > 0.0 && self.net_rng.gen_bool(loss) {
            self.stats.dropped_loss += 1;
            return;
        }
        let dup = self.cfg.network.duplicate;
        if dup > 0.0 && self.net_rng.gen_bool(dup) {
            self.stats.duplicated += 1;
            let (d, _) = self.latency();
            let msg = env.msg.clone();
            self.schedule(d, Event::Deliver { from, to, msg });
        }
        let at = match self.long_delay() {
            // Held far past the link's order: newer messages overtake it.
            Some(d) => self.now + d,
            None => self.arrival(link),
        };
        self.schedule_at(
            at,
            Event::Deliver {
                from,
                to,
                msg: env.msg,
            },
        );
    }

    /// During a "delay" fault, picks messages to hold back for a long time (up to
    /// several election timeouts) and returns how long. No random draw otherwise, so
    /// runs without the fault keep their network stream.
    fn long_delay(&mut self) -> Option<Duration> {
        let net = &self.cfg.network;
        if !self.delaying || net.fault_delay <= 0.0 || !self.net_rng.gen_bool(net.fault_delay) {
            return None;
        }
        let (lo, hi) = (net.fault_delay_min, net.fault_delay_max);
        self.stats.delayed += 1;
        Some(uniform(&mut self.net_rng, lo, hi))
    }

    /// `true` if a partition or an isolation drops messages from `from` to `to`.
    fn cut(&self, from: usize, to: usize) -> bool {
        self.blocked[self.link(from, to)]
            || self.isolated[from]
            || self.isolated[to]
            || self.muffled[to]
            || (self.split[from] && self.split[to])
    }

    fn deliver(&mut self, from: usize, to: usize, msg: Msg<P>) {
        if self.cut(from, to) {
            // The partition formed while the message was on the wire.
            self.stats.dropped_partition += 1;
            return;
        }
        if self.slots[to].node.is_none() {
            self.stats.dropped_down += 1;
            return;
        }
        self.stats.delivered += 1;
        let from_id = self.members[from];
        tracing::trace!(from = %from_id, ?msg, "deliver");
        self.step_node(to, |n, t, fx| n.on_message(t, from_id, msg, fx));
        if let Some((run, script)) = self.script.as_mut().filter(|(_, s)| s.counts_messages()) {
            let run = *run;
            let actions = script.on_delivered(to);
            self.script_act(run, actions);
        }
    }

    // ----- clients -----------------------------------------------------------------

    fn reply(&mut self, node: usize, reply: ClientReply<Resp<P>>) {
        tracing::trace!(node = %self.slots[node].id, client = %reply.client, seq = reply.seq, outcome = ?reply.outcome, "reply");
        if let Some(client) = self.workload.index_of(reply.client) {
            let (d, _) = self.latency();
            let d = self.long_delay().map_or(d, |extra| d + extra);
            self.schedule(d, Event::ToClient { client, reply });
        }
    }

    fn client_answer(&mut self, client: usize, reply: ClientReply<Resp<P>>) {
        self.stats.client_delivered += 1;
        let hint = match reply.outcome {
            Outcome::NotLeader { leader } => leader,
            _ => None,
        };
        let members = &self.members;
        let answer = Answer::from_outcome(&reply.outcome, P::result, || {
            hint.and_then(|l| members.iter().position(|&m| m == l))
        });
        let step = self.workload.on_answer(client, reply.seq, answer, self.now);
        self.client_step(client, step);
    }

    fn client_step(&mut self, client: usize, step: ClientStep) {
        match step {
            ClientStep::Send {
                node,
                seq,
                op,
                timeout,
            } => {
                let request = ClientRequest {
                    client: self.workload.client_id(client),
                    seq,
                    op: P::request(op),
                };
                let (d, _) = self.latency();
                self.schedule(d, Event::ToNode { node, request });
                let deadline = self.now + timeout;
                self.client_deadline[client] = Some((deadline, self.workload.token(client)));
                if self.client_timeout_at[client].is_none() {
                    self.client_timeout_at[client] = Some(deadline);
                    self.schedule_at(deadline, Event::ClientTimeout { client });
                }
            }
            ClientStep::Sleep(d) if d.is_zero() => {
                // No think time: start the next operation now instead of queueing
                // a wake-up for the same instant.
                let token = self.workload.token(client);
                let step = self.workload.on_wake(client, token, self.now, self.phase);
                return self.client_step(client, step);
            }
            ClientStep::Sleep(d) => {
                let token = self.workload.token(client);
                self.schedule(d, Event::ClientWake { client, token });
            }
            ClientStep::Idle => {}
        }
        self.advance_phase();
    }

    fn client_timeout(&mut self, client: usize) {
        self.client_timeout_at[client] = None;
        let Some((deadline, token)) = self.client_deadline[client] else {
            return;
        };
        if deadline > self.now {
            // A later attempt replaced the one this event was queued for.
            self.client_timeout_at[client] = Some(deadline);
            self.schedule_at(deadline, Event::ClientTimeout { client });
            return;
        }
        self.client_deadline[client] = None;
        // A stale token (the attempt was answered) makes this a no-op.
        let step = self.workload.on_wake(client, token, self.now, self.phase);
        self.client_step(client, step);
    }

    fn advance_phase(&mut self) {
        match self.phase {
            Phase::Main if self.workload.budget_left() == 0 && self.workload.all_idle() => {
                self.begin_heal();
            }
            Phase::Heal if self.workload.liveness_done() => {
                self.phase = Phase::Done;
            }
            _ => {}
        }
    }

    fn begin_heal(&mut self) {
        self.phase = Phase::Heal;
        self.main_end = self.now;
        tracing::debug!("heal: undoing all faults");
        for (_, fault) in std::mem::take(&mut self.active_faults) {
            self.revert(fault);
        }
        self.schedule(self.cfg.heal_timeout, Event::HealDeadline);
        for c in 0..self.workload.len() {
            let token = self.workload.token(c);
            self.schedule(Duration::ZERO, Event::ClientWake { client: c, token });
        }
        self.advance_phase();
    }

    // ----- faults ------------------------------------------------------------------

    fn nemesis_tick(&mut self) {
        if self.phase != Phase::Main {
            return;
        }
        let active: Vec<Fault> = self.active_faults.iter().map(|(_, f)| f.clone()).collect();
        let leader = self.leader();
        for (fault, duration) in self.nemesis.pick(self.slots.len(), leader, &active) {
            self.next_fault_id += 1;
            let id = self.next_fault_id;
            self.stats.faults.push(format!("{}: {fault}", self.now));
            tracing::debug!(%fault, ?duration, "fault");
            self.apply_fault(fault.clone());
            self.active_faults.push((id, fault));
            self.schedule(duration, Event::FaultEnd { id });
        }
        let active: Vec<Fault> = self.active_faults.iter().map(|(_, f)| f.clone()).collect();
        let gap = self.nemesis.next_gap(&active);
        self.schedule(gap, Event::NemesisTick);
    }

    /// The up node that believes it leads, of the highest index if several do (a
    /// deposed leader that has not noticed yet is as good a target as the new one).
    fn leader(&self) -> Option<usize> {
        let up = self.slots.iter().enumerate();
        up.filter_map(|(i, s)| s.node.as_ref().filter(|n| P::is_leader(n)).map(|_| i))
            .last()
    }

    /// Applies `fault` now. Public so tests can script faults by hand.
    pub fn apply_fault(&mut self, fault: Fault) {
        self.start();
        match fault {
            Fault::Partition { blocked, .. } => {
                for (a, b) in blocked {
                    let l = self.link(a, b);
                    self.blocked[l] = true;
                }
            }
            Fault::Crash(n) => self.crash(n),
            Fault::CrashInWrite(n) => {
                if self.slots[n].node.is_some() {
                    self.slots[n].crash_armed = true;
                }
            }
            Fault::Storm => {} // the nemesis crashes leaders while it lasts
            Fault::Figure8(plan) => {
                if let (None, Some(leader)) = (&self.script, self.leader()) {
                    let (f8, actions) = Figure8::start(plan, leader);
                    self.start_script(Script::Figure8(f8), actions);
                }
            }
            Fault::Comeback(plan) => {
                if let (None, Some(leader)) = (&self.script, self.leader()) {
                    let (c, actions) = Comeback::start(plan, leader, self.slots.len());
                    self.start_script(Script::Comeback(c), actions);
                }
            }
            Fault::Depose { leader, armed } => {
                self.isolated[leader] = true;
                self.slots[leader].clock.set_rate(self.now, DEPOSE_PPM);
                if let Some(n) = armed.filter(|&n| self.slots[n].node.is_some()) {
                    self.slots[n].crash_armed = true;
                }
            }
            Fault::Pause(n) => {
                if self.slots[n].node.is_some() {
                    self.slots[n].paused = true;
                }
            }
            Fault::Drift { node, ppm } => self.slots[node].clock.set_rate(self.now, ppm),
            Fault::Loss => self.lossy = true,
            Fault::Delay => self.delaying = true,
            Fault::Clog { from, to } => {
                let l = self.link(from, to);
                self.clogged[l] = true;
            }
        }
    }

    /// Undoes `fault` now. Public so tests can script faults by hand.
    pub fn revert(&mut self, fault: Fault) {
        match fault {
            Fault::Partition { blocked, .. } => {
                for (a, b) in blocked {
                    let l = self.link(a, b);
                    self.blocked[l] = false;
                }
            }
            Fault::Crash(n) => self.restart(n),
            Fault::CrashInWrite(n) => {
                self.slots[n].crash_armed = false;
                self.restart(n);
            }
            Fault::Storm => {}
            Fault::Figure8(_) | Fault::Comeback(_) => {
                if let Some((run, script)) = self.script.take() {
                    self.script_act(run, script.undo());
                }
            }
            Fault::Depose { leader, armed } => {
                self.isolated[leader] = false;
                self.slots[leader].clock.set_rate(self.now, 0);
                if let Some(n) = armed {
                    self.slots[n].crash_armed = false;
                    self.restart(n);
                }
            }
            Fault::Pause(n) => self.resume(n),
            Fault::Drift { node, .. } => self.slots[node].clock.set_rate(self.now, 0),
            Fault::Loss => self.lossy = false,
            Fault::Delay => self.delaying = false,
            Fault::Clog { from, to } => {
                let l = self.link(from, to);
                self.clogged[l] = false;
                let (release, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition(|(f, t, _)| (*f, *t) == (from, to));
                self.held = keep;
                for (f, t, msg) in release {
                    let at = self.arrival(l);
                    self.schedule_at(
                        at,
                        Event::Deliver {
                            from: f,
                            to: t,
                            msg,
                        },
                    );
                }
            }
        }
    }
}

impl<P: SimProtocol> Simulator<P> {
    /// Delivers what muffled node `n` sent, each message at its own random time
    /// within `STALL_RELEASE` from now: out of order, overtaken by newer traffic.
    fn release_stalled(&mut self, n: usize) {
        let (release, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stalled)
            .into_iter()
            .partition(|(from, _, _)| *from == n);
        self.stalled = keep;
        for (from, to, msg) in release {
            let at = uniform(&mut self.net_rng, Duration::ZERO, STALL_RELEASE);
            self.schedule(at, Event::Deliver { from, to, msg });
        }
    }

    fn start_script(&mut self, script: Script, actions: Vec<Action>) {
        self.script_runs += 1;
        let run = self.script_runs;
        self.script = Some((run, script));
        self.script_act(run, actions);
    }

    /// Carries out steps of the scripted fault numbered `run`.
    fn script_act(&mut self, run: u64, actions: Vec<Action>) {
        for action in actions {
            tracing::debug!(?action, "script");
            match action {
                Action::Isolate(n) => self.isolated[n] = true,
                Action::Muffle(n) => self.muffled[n] = true,
                Action::Depose(n) => {
                    self.isolated[n] = true;
                    self.slots[n].clock.set_rate(self.now, DEPOSE_PPM);
                }
                Action::Split(n) => self.split[n] = true,
                Action::Unsplit => self.split.fill(false),
                Action::Rejoin(n) => {
                    self.isolated[n] = false;
                    self.muffled[n] = false;
                    self.slots[n].clock.set_rate(self.now, 0);
                    self.release_stalled(n);
                }
                Action::Crash(n) => self.crash(n),
                Action::Restart(n) => self.restart(n),
                Action::Wake(after) => self.schedule(after, Event::ScriptWake { run }),
                Action::Done => {
                    self.script = None;
                    self.active_faults.retain(|(_, f)| !f.is_script());
                }
            }
        }
    }
}

/// A muffled node's stalled messages arrive within this long after it rejoins:
/// after the election that follows, most of them (`script.rs`).
const STALL_RELEASE: Duration = Duration::from_millis(800);

/// Clock rate of a deposed leader (`Fault::Depose`): a tenth of real time (a
/// starved process, a VM whose time is stolen), so its own timers tell it it lost
/// its majority only seconds later. Neither protocol trusts clocks for safety.
const DEPOSE_PPM: i64 = -900_000;

fn uniform(rng: &mut ChaCha8Rng, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    lo + Duration::from_nanos(rng.gen_range(0..=(hi - lo).as_nanos() as u64))
}

fn humantime(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests;
