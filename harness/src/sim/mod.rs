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
pub mod spacetime;
pub mod swarm;

mod clients;
mod disk;
mod event;
mod faults;
mod network;
mod nodes;
mod outcome;

use disk::Pending;
use event::{Event, EventSlab, Scheduled};
use nodes::Slot;
pub use outcome::{add_metrics, RunOutcome, SimStats, SplitRecord, Violation, ViolationKind};

use crate::protocol::{Invariant, SimProtocol};
use crate::workload::{ClientStats, Phase, Workload};
use clock::NodeClock;
use config::SimConfig;
use digest::TraceDigest;
use nemesis::{Fault, Nemesis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use script::Script;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Duration;
use synod_core::{ClientRequest, MemStorage, Node, NodeEffects, NodeId, Time};

/// Stream ids for deriving independent random streams from the master seed.
const STREAM_NETWORK: u64 = 1;
const STREAM_DISK: u64 = 2;
const STREAM_NEMESIS: u64 = 3;
const STREAM_WORKLOAD: u64 = 4;
const STREAM_NODES: u64 = 5;

/// The run's liveness bound: after the heal, every client completes its liveness
/// operations within this, or the run fails. It is the protocol's
/// [`RECOVERY`](SimProtocol::RECOVERY), then one attempt timeout and back-off for the
/// attempt each client may have lost to the faults, and one per liveness
/// operation — a recovered cluster answers an attempt before the client gives up
/// on it. `SimConfig::heal_timeout` overrides it.
pub fn liveness_bound<P: SimProtocol>(cfg: &SimConfig) -> Duration {
    let w = &cfg.workload;
    let attempt = w.attempt_timeout + w.retry_backoff;
    (cfg.heal_timeout).unwrap_or(P::RECOVERY + attempt * (w.liveness_ops + 1))
}

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
    /// During the scripted split (`--faults split`): `sides[i]` is `true` for the
    /// minority's nodes; nodes, and clients by their home node, reach only their side.
    sides: Option<Vec<bool>>,
    /// Since when the cluster has been without the leader it had (a crash or the
    /// split took it), until the next `ok` (`SimStats::recoveries_ns`).
    leader_lost_at: Option<Time>,
    /// The space-time diagram being recorded (`SimConfig::trace_until`).
    trace: Option<spacetime::SpaceTime>,
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
    /// Per client, what it remembers between requests (`SimProtocol::Session`).
    client_session: Vec<P::Session>,
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
    pub fn new(mut cfg: SimConfig) -> Simulator<P> {
        assert!(cfg.nodes > 0, "a cluster needs at least one node");
        cfg.nemesis.disk_losses = P::disk_losses(cfg.nodes);
        let n = cfg.nodes;
        let members: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
        let trace = cfg.trace_until.map(|until| {
            let names: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            spacetime::SpaceTime::new(&names, until)
        });
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
                writing: 0,
                disk_fail: None,
                down: None,
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
            sides: None,
            leader_lost_at: None,
            trace,
            script: None,
            script_runs: 0,
            clogged: vec![false; n * n],
            link_last: vec![Time::ZERO; n * n],
            held: Vec::new(),
            lossy: false,
            delaying: false,
            client_deadline: vec![None; cfg.workload.clients],
            client_timeout_at: vec![None; cfg.workload.clients],
            client_session: (0..cfg.workload.clients)
                .map(|_| P::Session::default())
                .collect(),
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

    /// Node `index`'s storage, for a test that damages it.
    #[cfg(test)]
    pub(crate) fn storage_mut(&mut self, index: usize) -> &mut MemStorage {
        &mut self.slots[index].storage
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
        if self.cfg.nemesis.faults.split {
            self.schedule(config::SPLIT_AT, Event::Split { on: true });
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
        if self.violation.is_none() && !P::SETTLE.is_zero() {
            // Faults are over and clients idle: the protocol's time to converge.
            let until = self.now + P::SETTLE;
            while self.violation.is_none() {
                match self.queue.peek() {
                    Some(next) if next.at <= until => {
                        self.step_event();
                    }
                    _ => break,
                }
            }
            self.now = self.now.max(until);
        }
        self.check_at_end();
        let verdict = self.judge();
        tracing::debug!(digest = %self.digest.hex(), events = self.stats.events, "run finished");
        let space_time = self.trace.take().map(|mut t| {
            t.finish(&self.stats.faults);
            t
        });
        RunOutcome {
            seed: self.cfg.seed,
            digest: self.digest.hex(),
            space_time,
            end: self.now,
            main_end: self.main_end,
            stats: self.stats,
            clients: self.workload.stats.clone(),
            history: self.workload.take_history(),
            violation: self.violation,
            metrics: (self.invariants.iter().flat_map(|i| i.metrics()))
                .chain(verdict.metrics)
                .collect(),
        }
    }

    /// The protocol's own end-of-run judgement ([`SimProtocol::judge`]); a broken
    /// promise is the run's violation unless an earlier one stands.
    fn judge(&mut self) -> crate::protocol::Verdict {
        let live: Vec<(NodeId, &P::Node)> = self
            .slots
            .iter()
            .filter_map(|s| s.node.as_ref().map(|n| (s.id, n)))
            .collect();
        let mut verdict = P::judge(&self.client_session, &live);
        if let Some((name, message)) = verdict.broken.take() {
            if self.violation.is_none() {
                self.violation = Some(Violation {
                    kind: ViolationKind::Invariant(name),
                    at: self.now,
                    message,
                });
            }
        }
        verdict
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
                // A lost disk stays lost: its fault's end undoes nothing.
                let ends = |(i, f): &(u64, Fault)| *i == id && !f.is_for_good();
                if let Some(pos) = self.active_faults.iter().position(ends) {
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
            Event::Split { on } => self.scripted_split(on),
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
                            "{} after the heal (the liveness bound), clients {pending:?} had not completed their {} liveness ops",
                            humantime(liveness_bound::<P>(&self.cfg)),
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

    fn advance_phase(&mut self) {
        match self.phase {
            Phase::Main if self.workload.budget_left() == 0 && self.workload.all_idle() => {
                self.begin_heal();
            }
            Phase::Heal if self.workload.liveness_done() => {
                self.phase = Phase::Done;
                self.stats.heal_to_live_ns = (self.now - self.main_end).as_nanos() as u64;
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
        self.scripted_split(false);
        let bound = liveness_bound::<P>(&self.cfg);
        self.stats.liveness_bound_ns = bound.as_nanos() as u64;
        self.schedule(bound, Event::HealDeadline);
        for c in 0..self.workload.len() {
            let token = self.workload.token(c);
            self.schedule(Duration::ZERO, Event::ClientWake { client: c, token });
        }
        self.advance_phase();
    }
}

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
