//! The closed-loop client state machine shared by every workload: one operation at a
//! time per client, redirects, retries with the same `(client, seq)`, timeouts, and
//! the Jepsen-style `ok` / `fail` / `info` history (see the [module docs](super)).
//! What the clients ask comes from an [`Ops`] generator.

use super::kv::KvOps;
use super::WorkloadConfig;
use crate::history::{EventType, HistoryEvent, OpName, Value};
use std::fmt::Debug;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult, Outcome, Time};

/// What a workload's clients ask, and how it reads in the history: the one part of
/// a workload that knows its operations. Every random draw of the clients (think
/// times, first targets) goes through it, so one stream decides a whole workload.
pub trait Ops: Debug + Sized {
    /// One client operation.
    type Op: Clone + Debug;
    /// The application's answer to an operation.
    type Result: Clone + Debug + PartialEq;
    /// What a client remembers of earlier answers (e.g. the last value it read per
    /// key), for operations that depend on them.
    type Seen: Clone + Debug + Default;

    /// The generator for `cfg`, drawing from `seed`.
    fn new(cfg: &WorkloadConfig, seed: u64) -> Self;
    /// A random node index in `0..nodes`.
    fn node(&mut self, nodes: usize) -> usize;
    /// A random think time in `[0, max]`.
    fn think(&mut self, max: Duration) -> Duration;
    /// The next operation of `client`, which has seen `seen`.
    fn next_op(&mut self, client: ClientId, seen: &Self::Seen) -> Self::Op;
    /// The next operation of `client` after the heal (its liveness operations).
    /// Workloads whose final state must be read (the bank reads every account)
    /// ask for it here.
    fn heal_op(&mut self, client: ClientId, seen: &Self::Seen) -> Self::Op {
        self.next_op(client, seen)
    }
    /// How `op` is named in the history, and the value its invoke records.
    fn invocation(&self, op: &Self::Op) -> Invocation;
    /// How `op` completed with `result` (and what the client learns from it).
    fn completion(&self, op: &Self::Op, result: Self::Result, seen: &mut Self::Seen) -> Completion;
    /// Checks an answer against what the workload knows must hold of every
    /// committed one (the bank: a read of every account sums to the money opened);
    /// `Err` names what broke, and the simulator fails the run on it.
    fn check(&self, op: &Self::Op, result: &Self::Result) -> Result<(), String> {
        let _ = (op, result);
        Ok(())
    }
}

/// An operation as the history records its invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// The history's operation name.
    pub f: OpName,
    /// The key it touches.
    pub key: String,
    /// The value of its invoke event (and of a `fail`/`info` completion).
    pub value: Value,
}

/// How an answered operation ends in the history.
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    /// `ok`, with this value.
    Ok(Value),
    /// `fail`: the application answered and refused it (a `cas` whose expected value
    /// did not match).
    Refused,
}

/// How an attempt ended, as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<R = KvResult> {
    /// Took effect with this result.
    Done(R),
    /// Ask another node (hint: node index).
    NotLeader(Option<usize>),
    /// Refused for now.
    Unavailable,
    /// May or may not take effect.
    Unknown,
}

impl<R> Answer<R> {
    /// The client's view of a node's `outcome`: `result` reads the protocol's
    /// response; `leader` is the node index of a `NotLeader` hint, if known.
    pub fn from_outcome<T>(
        outcome: &Outcome<T>,
        result: impl FnOnce(&T) -> R,
        leader: impl FnOnce() -> Option<usize>,
    ) -> Answer<R> {
        match outcome {
            Outcome::Done(r) => Answer::Done(result(r)),
            Outcome::NotLeader { .. } => Answer::NotLeader(leader()),
            Outcome::Unavailable => Answer::Unavailable,
            Outcome::Unknown => Answer::Unknown,
        }
    }
}

/// What the simulator should do for a client next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientStep<O = KvOp> {
    /// Send `op` as `(client, seq)` to node `node`, and time out after `timeout`.
    Send {
        /// Node index.
        node: usize,
        /// Sequence number.
        seq: u64,
        /// Operation.
        op: O,
        /// Attempt timeout.
        timeout: Duration,
    },
    /// Wake the client after this long (think time or back-off).
    Sleep(Duration),
    /// Nothing to do.
    Idle,
}

#[derive(Clone, Debug)]
struct InFlight<O> {
    op: O,
    invoked_at: Time,
    attempts: u32,
    maybe_applied: bool,
    in_heal_phase: bool,
}

#[derive(Clone, Debug)]
enum State<O> {
    /// Waiting to start the next operation.
    Ready,
    /// An attempt is outstanding.
    Waiting(InFlight<O>),
    /// Backing off before the next attempt.
    Backoff(InFlight<O>),
}

/// One closed-loop client.
#[derive(Clone, Debug)]
pub struct Client<G: Ops> {
    id: ClientId,
    process: u64,
    seq: u64,
    target: usize,
    state: State<G::Op>,
    /// Guards timeouts and wake-ups: only the latest token counts.
    token: u64,
    seen: G::Seen,
    liveness_left: u32,
}

/// Phase of the run, which decides whether clients start new operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Faults may be active; the op budget is being spent.
    Main,
    /// Faults healed; clients run their liveness ops.
    Heal,
    /// Finished.
    Done,
}

/// Aggregate client-side measurements.
#[derive(Clone, Debug)]
pub struct ClientStats {
    /// Ops completed `ok` / `fail` / `info`.
    pub ok: u64,
    /// See `ok`.
    pub fail: u64,
    /// See `ok`.
    pub info: u64,
    /// The `fail` ops the cluster answered itself: a `cas` whose expected value did
    /// not match. Like an `ok` op it went through the log and the state machine, so
    /// it counts toward throughput and latency.
    pub cas_mismatch: u64,
    /// Attempts sent (including retries).
    pub attempts: u64,
    /// Latency of answered ops (`ok` and `cas_mismatch`) in the main phase,
    /// microseconds.
    pub latency_us: hdrhistogram::Histogram<u64>,
    /// Per client (by index), per [`TIMELINE_BUCKET`] of virtual time: operations
    /// completed `ok`, and attempts left unserved (timed out or refused: not the
    /// leader, unavailable) — availability over time, side by side.
    pub timelines: Vec<ClientTimeline>,
    /// When the operation last completed `ok` was invoked (recovery times count
    /// only operations asked after the leader was lost).
    pub last_ok_invoked_at: Time,
}

/// One client's availability over time, per [`TIMELINE_BUCKET`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTimeline {
    /// Operations completed `ok` in each bucket.
    pub ok: Vec<u32>,
    /// Attempts that timed out or were refused in each bucket.
    pub unserved: Vec<u32>,
}

impl ClientTimeline {
    fn bump(counts: &mut Vec<u32>, now: Time) {
        let bucket = (now.as_nanos() / TIMELINE_BUCKET.as_nanos() as u64) as usize;
        if counts.len() <= bucket {
            counts.resize(bucket + 1, 0);
        }
        counts[bucket] += 1;
    }
}

impl ClientStats {
    /// Records how long an answered op of the main phase took.
    fn record_latency<O>(&mut self, flight: &InFlight<O>, now: Time) {
        if !flight.in_heal_phase {
            let us = (now - flight.invoked_at).as_micros() as u64;
            let _ = self.latency_us.record(us.max(1));
        }
    }

    /// No measurements.
    pub fn empty() -> ClientStats {
        ClientStats {
            ok: 0,
            fail: 0,
            info: 0,
            cas_mismatch: 0,
            attempts: 0,
            latency_us: hdrhistogram::Histogram::new(3).expect("3 significant figures is valid"),
            timelines: Vec::new(),
            last_ok_invoked_at: Time::ZERO,
        }
    }
}

/// Width of one availability bucket.
pub const TIMELINE_BUCKET: Duration = Duration::from_millis(100);

/// All clients of a run, their operation generator and their history.
#[derive(Debug)]
pub struct Workload<G: Ops = KvOps> {
    cfg: WorkloadConfig,
    nodes: usize,
    gen: G,
    clients: Vec<Client<G>>,
    budget: u64,
    history: Vec<HistoryEvent>,
    /// The first answer [`Ops::check`] refused, until taken.
    violation: Option<String>,
    /// Client-side measurements.
    pub stats: ClientStats,
}

impl<G: Ops> Workload<G> {
    /// Clients for a cluster of `nodes` nodes.
    pub fn new(cfg: WorkloadConfig, nodes: usize, seed: u64) -> Workload<G> {
        let mut gen = G::new(&cfg, seed);
        let clients = (0..cfg.clients)
            .map(|i| Client {
                id: ClientId(cfg.client_id_base + i as u64 + 1),
                process: i as u64,
                seq: 0,
                target: gen.node(nodes),
                state: State::Ready,
                token: 0,
                seen: G::Seen::default(),
                liveness_left: cfg.liveness_ops,
            })
            .collect();
        Workload {
            budget: cfg.ops,
            nodes,
            gen,
            clients,
            history: Vec::new(),
            violation: None,
            stats: ClientStats {
                timelines: vec![ClientTimeline::default(); cfg.clients],
                ..ClientStats::empty()
            },
            cfg,
        }
    }

    /// The first answer that broke the workload's own check ([`Ops::check`]), once.
    pub fn take_violation(&mut self) -> Option<String> {
        self.violation.take()
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// `true` if there are no clients.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client id of client `index`.
    pub fn client_id(&self, index: usize) -> ClientId {
        self.clients[index].id
    }

    /// Maps a client id back to its index.
    pub fn index_of(&self, id: ClientId) -> Option<usize> {
        let i = usize::try_from(id.0.checked_sub(self.cfg.client_id_base + 1)?).ok()?;
        (i < self.clients.len()).then_some(i)
    }

    /// The current wake-up token of client `index`.
    pub fn token(&self, index: usize) -> u64 {
        self.clients[index].token
    }

    /// The recorded history.
    pub fn history(&self) -> &[HistoryEvent] {
        &self.history
    }

    /// Takes the recorded history out.
    pub fn take_history(&mut self) -> Vec<HistoryEvent> {
        std::mem::take(&mut self.history)
    }

    /// Main-phase operations not yet invoked.
    pub fn budget_left(&self) -> u64 {
        self.budget
    }

    /// `true` if no client has an operation in progress.
    pub fn all_idle(&self) -> bool {
        self.clients.iter().all(|c| matches!(c.state, State::Ready))
    }

    /// `true` once every client has completed its liveness ops.
    pub fn liveness_done(&self) -> bool {
        self.clients.iter().all(|c| c.liveness_left == 0)
    }

    /// Clients that still owe liveness ops.
    pub fn liveness_pending(&self) -> Vec<ClientId> {
        self.clients
            .iter()
            .filter(|c| c.liveness_left > 0)
            .map(|c| c.id)
            .collect()
    }

    /// Client `index` is ready: start its next operation if the phase allows one.
    pub fn start_next(&mut self, index: usize, now: Time, phase: Phase) -> ClientStep<G::Op> {
        let c = &self.clients[index];
        if !matches!(c.state, State::Ready) {
            return ClientStep::Idle;
        }
        let in_heal_phase = match phase {
            Phase::Main if self.budget > 0 => {
                self.budget -= 1;
                false
            }
            Phase::Heal if c.liveness_left > 0 => true,
            _ => return ClientStep::Idle,
        };
        let op = if in_heal_phase {
            self.gen.heal_op(c.id, &c.seen)
        } else {
            self.gen.next_op(c.id, &c.seen)
        };
        let c = &mut self.clients[index];
        c.seq += 1;
        let invocation = self.gen.invocation(&op);
        let value = invocation.value.clone();
        let history = (&mut self.history, self.cfg.record_history);
        record(
            history,
            c.process,
            EventType::Invoke,
            &invocation,
            value,
            now,
        );
        let flight = InFlight {
            op,
            invoked_at: now,
            attempts: 0,
            maybe_applied: false,
            in_heal_phase,
        };
        self.attempt(index, flight)
    }

    fn attempt(&mut self, index: usize, mut flight: InFlight<G::Op>) -> ClientStep<G::Op> {
        let c = &mut self.clients[index];
        flight.attempts += 1;
        c.token += 1;
        self.stats.attempts += 1;
        let step = ClientStep::Send {
            node: c.target,
            seq: c.seq,
            op: flight.op.clone(),
            timeout: self.cfg.attempt_timeout,
        };
        c.state = State::Waiting(flight);
        step
    }

    /// `true` if a reply for `(client index, seq)` would complete the operation in
    /// flight — what [`on_answer`](Self::on_answer) takes; a late reply to an
    /// operation already finished is not (the client's session learns only from the
    /// answers its workload takes, so both see the same).
    pub fn takes(&self, index: usize, seq: u64) -> bool {
        let c = &self.clients[index];
        seq == c.seq && matches!(c.state, State::Waiting(_) | State::Backoff(_))
    }

    /// A reply for `(client index, seq)` arrived.
    pub fn on_answer(
        &mut self,
        index: usize,
        seq: u64,
        answer: Answer<G::Result>,
        now: Time,
    ) -> ClientStep<G::Op> {
        let c = &mut self.clients[index];
        if seq != c.seq {
            return ClientStep::Idle; // a late answer to an op already finished
        }
        let mut flight = match std::mem::replace(&mut c.state, State::Ready) {
            State::Waiting(flight) => flight,
            // A late answer to an earlier attempt of this same request: a result is
            // still a result, a refusal changes nothing.
            State::Backoff(flight) if matches!(answer, Answer::Done(_)) => flight,
            other => {
                c.state = other;
                return ClientStep::Idle;
            }
        };
        c.token += 1;
        match answer {
            Answer::Done(result) => {
                self.complete_ok(index, flight, result, now);
                self.think(index)
            }
            Answer::NotLeader(hint) => {
                ClientTimeline::bump(&mut self.stats.timelines[index].unserved, now);
                let c = &mut self.clients[index];
                c.target = match hint {
                    Some(l) if l < self.nodes => l,
                    _ => (c.target + 1) % self.nodes,
                };
                self.retry_or_give_up(index, flight, now)
            }
            Answer::Unavailable => {
                ClientTimeline::bump(&mut self.stats.timelines[index].unserved, now);
                let c = &mut self.clients[index];
                c.target = (c.target + 1) % self.nodes;
                self.retry_or_give_up(index, flight, now)
            }
            Answer::Unknown => {
                flight.maybe_applied = true;
                self.retry_or_give_up(index, flight, now)
            }
        }
    }

    /// Client `index` woke up with `token` (a timeout, think time or back-off ended).
    pub fn on_wake(
        &mut self,
        index: usize,
        token: u64,
        now: Time,
        phase: Phase,
    ) -> ClientStep<G::Op> {
        let c = &mut self.clients[index];
        if token != c.token {
            return ClientStep::Idle;
        }
        match std::mem::replace(&mut c.state, State::Ready) {
            State::Ready => self.start_next(index, now, phase),
            State::Waiting(mut flight) => {
                // Timed out: the request may have been applied.
                flight.maybe_applied = true;
                ClientTimeline::bump(&mut self.stats.timelines[index].unserved, now);
                let c = &mut self.clients[index];
                c.target = (c.target + 1) % self.nodes;
                self.retry_or_give_up(index, flight, now)
            }
            State::Backoff(flight) => self.attempt(index, flight),
        }
    }

    fn retry_or_give_up(
        &mut self,
        index: usize,
        flight: InFlight<G::Op>,
        now: Time,
    ) -> ClientStep<G::Op> {
        let c = &mut self.clients[index];
        if flight.in_heal_phase || flight.attempts < self.cfg.attempts_max {
            c.token += 1;
            c.state = State::Backoff(flight);
            return ClientStep::Sleep(self.cfg.retry_backoff);
        }
        let kind = if flight.maybe_applied {
            EventType::Info
        } else {
            EventType::Fail
        };
        let invocation = self.gen.invocation(&flight.op);
        let value = invocation.value.clone();
        let history = (&mut self.history, self.cfg.record_history);
        record(history, c.process, kind, &invocation, value, now);
        if flight.maybe_applied {
            self.stats.info += 1;
            // Jepsen: a process with an indeterminate op never issues another one.
            c.process += self.cfg.clients as u64;
        } else {
            self.stats.fail += 1;
        }
        self.think(index)
    }

    fn complete_ok(&mut self, index: usize, flight: InFlight<G::Op>, result: G::Result, now: Time) {
        let c = &mut self.clients[index];
        if let Err(broken) = self.gen.check(&flight.op, &result) {
            let at = format!("client {} seq {}: ", c.id, c.seq);
            self.violation.get_or_insert(at + &broken);
        }
        let invocation = self.gen.invocation(&flight.op);
        let history = (&mut self.history, self.cfg.record_history);
        let value = match self.gen.completion(&flight.op, result, &mut c.seen) {
            Completion::Ok(value) => value,
            Completion::Refused => {
                // Refused by the application (a cas that did not apply): a definite
                // failure in the history, but answered through the log.
                let value = invocation.value.clone();
                record(history, c.process, EventType::Fail, &invocation, value, now);
                self.stats.fail += 1;
                self.stats.cas_mismatch += 1;
                self.stats.record_latency(&flight, now);
                return;
            }
        };
        if flight.in_heal_phase {
            c.liveness_left = c.liveness_left.saturating_sub(1);
        }
        self.stats.record_latency(&flight, now);
        ClientTimeline::bump(&mut self.stats.timelines[index].ok, now);
        self.stats.last_ok_invoked_at = flight.invoked_at;
        self.stats.ok += 1;
        record(history, c.process, EventType::Ok, &invocation, value, now);
    }

    fn think(&mut self, index: usize) -> ClientStep<G::Op> {
        let c = &mut self.clients[index];
        c.state = State::Ready;
        c.token += 1;
        ClientStep::Sleep(self.gen.think(self.cfg.think_max))
    }
}

fn record(
    (history, enabled): (&mut Vec<HistoryEvent>, bool),
    process: u64,
    kind: EventType,
    invocation: &Invocation,
    value: Value,
    now: Time,
) {
    if enabled {
        history.push(HistoryEvent {
            process,
            kind,
            f: invocation.f,
            key: invocation.key.clone(),
            value,
            time: now.as_nanos(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(ops: u64) -> Workload {
        let mut cfg = WorkloadConfig::standard(ops);
        cfg.clients = 1;
        cfg.attempts_max = 2;
        Workload::new(cfg, 3, 1)
    }

    fn send_seq(step: &ClientStep) -> u64 {
        match step {
            ClientStep::Send { seq, .. } => *seq,
            other => panic!("expected a send, got {other:?}"),
        }
    }

    #[test]
    fn retries_reuse_seq_and_give_up_as_info_after_a_timeout() {
        let mut w = workload(10);
        let s1 = w.start_next(0, Time::ZERO, Phase::Main);
        let seq = send_seq(&s1);
        // Attempt 1 times out: maybe applied.
        let t = w.token(0);
        assert!(matches!(
            w.on_wake(0, t, Time::from_millis(1), Phase::Main),
            ClientStep::Sleep(_)
        ));
        let t = w.token(0);
        let s2 = w.on_wake(0, t, Time::from_millis(2), Phase::Main);
        assert_eq!(send_seq(&s2), seq, "a retry must reuse the seq");
        // Attempt 2 refused: out of attempts; a timeout happened, so the op is info.
        w.on_answer(0, seq, Answer::Unavailable, Time::from_millis(3));
        let h = w.history();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].kind, EventType::Info);
        // The next op runs as a new process.
        let t = w.token(0);
        let s3 = w.on_wake(0, t, Time::from_millis(4), Phase::Main);
        assert_eq!(send_seq(&s3), seq + 1);
        assert_ne!(w.history()[2].process, h_process(&w, 0));
    }

    fn h_process(w: &Workload, i: usize) -> u64 {
        w.history()[i].process
    }

    #[test]
    fn definite_refusals_only_give_fail() {
        let mut w = workload(10);
        let seq = send_seq(&w.start_next(0, Time::ZERO, Phase::Main));
        w.on_answer(0, seq, Answer::NotLeader(Some(2)), Time::from_millis(1));
        let t = w.token(0);
        match w.on_wake(0, t, Time::from_millis(2), Phase::Main) {
            ClientStep::Send { node, .. } => assert_eq!(node, 2, "redirect hint followed"),
            other => panic!("{other:?}"),
        }
        w.on_answer(0, seq, Answer::Unavailable, Time::from_millis(3));
        assert_eq!(w.history()[1].kind, EventType::Fail);
        assert_eq!(w.stats.fail, 1);
    }

    /// A `cas` whose expected value is stale is a definite `fail` in the history, but
    /// the cluster answered it (it went through the log): it counts as answered, and
    /// its latency is recorded like an `ok` op's; a refusal is neither.
    #[test]
    fn a_cas_mismatch_is_a_fail_the_cluster_answered() {
        let mut w = workload(1000);
        let mut step = w.start_next(0, Time::ZERO, Phase::Main);
        let mut now = Time::ZERO;
        // Every op before the first cas is answered `ok`: `oks` of them.
        for oks in 0..1000 {
            let ClientStep::Send { seq, op, .. } = step else {
                panic!("expected a send, got {step:?}")
            };
            now += Duration::from_millis(2);
            if matches!(op, KvOp::Cas { .. }) {
                let current = Some("other".to_owned());
                w.on_answer(0, seq, Answer::Done(KvResult::CasMismatch { current }), now);
                assert_eq!(w.history().last().unwrap().kind, EventType::Fail);
                assert_eq!((w.stats.fail, w.stats.cas_mismatch), (1, 1));
                assert_eq!(w.stats.latency_us.len(), oks + 1, "its latency is recorded");
                assert_eq!(w.stats.latency_us.max(), 2000, "2 ms, like every op here");
                let seq = send_seq(&w.start_next(0, now, Phase::Main));
                w.on_answer(0, seq, Answer::Unavailable, now);
                let t = w.token(0);
                assert_eq!(send_seq(&w.on_wake(0, t, now, Phase::Main)), seq, "retried");
                w.on_answer(0, seq, Answer::Unavailable, now);
                assert_eq!(
                    (w.stats.fail, w.stats.cas_mismatch),
                    (2, 1),
                    "a refusal is not answered"
                );
                return;
            }
            let result = match op {
                KvOp::Get { .. } => KvResult::Value(None),
                _ => KvResult::Written,
            };
            w.on_answer(0, seq, Answer::Done(result), now);
            step = w.start_next(0, now, Phase::Main);
        }
        panic!("the standard mix produced no cas in 1000 ops");
    }

    #[test]
    fn stale_answers_and_stale_wakeups_are_ignored() {
        let mut w = workload(10);
        let seq = send_seq(&w.start_next(0, Time::ZERO, Phase::Main));
        let old = w.token(0);
        w.on_answer(
            0,
            seq,
            Answer::Done(KvResult::Written),
            Time::from_millis(1),
        );
        assert_eq!(
            w.on_wake(0, old, Time::from_millis(2), Phase::Main),
            ClientStep::Idle
        );
        assert_eq!(
            w.on_answer(
                0,
                seq,
                Answer::Done(KvResult::Written),
                Time::from_millis(3)
            ),
            ClientStep::Idle
        );
        assert_eq!(w.stats.ok, 1);
    }

    #[test]
    fn late_refusal_while_backing_off_does_not_lose_the_operation() {
        let mut w = workload(10);
        let seq = send_seq(&w.start_next(0, Time::ZERO, Phase::Main));
        w.on_answer(0, seq, Answer::Unavailable, Time::from_millis(1)); // now backing off
                                                                        // A duplicate refusal of the same attempt arrives during the back-off.
        assert_eq!(
            w.on_answer(0, seq, Answer::Unavailable, Time::from_millis(2)),
            ClientStep::Idle
        );
        // The back-off ends: the same request is retried, not a new one started.
        let t = w.token(0);
        assert_eq!(
            send_seq(&w.on_wake(0, t, Time::from_millis(30), Phase::Main)),
            seq
        );
        assert_eq!(w.history().len(), 1, "no completion and no second invoke");
    }

    #[test]
    fn late_result_while_backing_off_completes_the_operation() {
        let mut w = workload(10);
        let seq = send_seq(&w.start_next(0, Time::ZERO, Phase::Main));
        w.on_answer(0, seq, Answer::Unknown, Time::from_millis(1));
        w.on_answer(
            0,
            seq,
            Answer::Done(KvResult::Written),
            Time::from_millis(2),
        );
        assert_eq!(w.history()[1].kind, EventType::Ok);
        assert_eq!(w.stats.ok, 1);
    }

    #[test]
    fn budget_bounds_main_phase_and_heal_runs_liveness_ops() {
        let mut w = workload(1);
        let seq = send_seq(&w.start_next(0, Time::ZERO, Phase::Main));
        w.on_answer(
            0,
            seq,
            Answer::Done(KvResult::Written),
            Time::from_millis(1),
        );
        assert_eq!(
            w.start_next(0, Time::from_millis(2), Phase::Main),
            ClientStep::Idle
        );
        assert!(!w.liveness_done());
        for i in 0..3 {
            let seq = send_seq(&w.start_next(0, Time::from_millis(10 + i), Phase::Heal));
            w.on_answer(
                0,
                seq,
                Answer::Done(KvResult::Value(None)),
                Time::from_millis(11 + i),
            );
        }
        assert!(w.liveness_done());
        assert_eq!(
            w.start_next(0, Time::from_millis(20), Phase::Heal),
            ClientStep::Idle
        );
    }
}
