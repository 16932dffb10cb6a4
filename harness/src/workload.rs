//! Seeded, protocol-independent client workloads.
//!
//! Closed-loop clients issue one operation at a time: they pick an operation, send it
//! to the node they believe leads, wait for the answer or a timeout, follow redirects
//! and retry — always with the same `(client, seq)`, so the protocol's dedup makes a
//! retry safe. Every invoke and completion is recorded in the history format of
//! `shared/design.md`:
//!
//! * `ok` when an attempt returns [`Outcome::Done`](synod_core::Outcome::Done);
//! * `fail` when the client gives up and *no* attempt could have taken effect (every
//!   answer was a definite refusal);
//! * `info` when it gives up after an attempt that may have taken effect (a timeout
//!   or [`Outcome::Unknown`](synod_core::Outcome::Unknown)). As in Jepsen, the
//!   process is then retired and the client continues as a fresh process id.

use crate::history::{EventType, HistoryEvent, OpName, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult, Outcome, Time};

/// How keys are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `s` (YCSB uses 0.99): a few hot keys.
    Zipf(f64),
}

/// The operation mix, as probabilities that sum to at most 1 (the rest are puts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mix {
    /// `get`.
    pub read: f64,
    /// `append`.
    pub append: f64,
    /// `cas`.
    pub cas: f64,
    /// `delete`.
    pub delete: f64,
}

/// Named workloads, identical across protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadName {
    /// Mixed KV for linearizability: get/put/append/cas/delete on 8 uniform keys.
    Kv,
    /// YCSB A-like: 50% reads, 50% puts, Zipf over 1000 keys.
    YcsbA,
    /// YCSB B-like: 95% reads.
    YcsbB,
    /// YCSB C-like: reads only (keys preloaded by the first ops of each client).
    YcsbC,
    /// Register/CAS on 3 hot keys: reads, writes and compare-and-sets.
    Register,
}

impl WorkloadName {
    /// Accepted names, for error messages.
    pub const NAMES: &'static str = "kv, ycsb-a, ycsb-b, ycsb-c, register";
}

impl FromStr for WorkloadName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "kv" => WorkloadName::Kv,
            "ycsb-a" => WorkloadName::YcsbA,
            "ycsb-b" => WorkloadName::YcsbB,
            "ycsb-c" => WorkloadName::YcsbC,
            "register" => WorkloadName::Register,
            other => {
                return Err(format!(
                    "unknown workload `{other}`; expected one of {}",
                    WorkloadName::NAMES
                ))
            }
        })
    }
}

impl fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadName::Kv => "kv",
            WorkloadName::YcsbA => "ycsb-a",
            WorkloadName::YcsbB => "ycsb-b",
            WorkloadName::YcsbC => "ycsb-c",
            WorkloadName::Register => "register",
        })
    }
}

/// Client load configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Which workload.
    pub name: WorkloadName,
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// Operations to invoke in the main phase (across all clients).
    pub ops: u64,
    /// Number of distinct keys.
    pub keys: usize,
    /// Key popularity.
    pub key_dist: KeyDist,
    /// Operation mix.
    pub mix: Mix,
    /// How long one attempt waits for an answer.
    pub attempt_timeout: Duration,
    /// Attempts per operation in the main phase before giving up.
    pub attempts_max: u32,
    /// Pause before retrying after a refusal.
    pub retry_backoff: Duration,
    /// Think time between operations, uniform in `[0, think_max]`.
    pub think_max: Duration,
    /// Operations each client must complete `ok` after the heal (the liveness check).
    pub liveness_ops: u32,
    /// Record the history (off for benchmarks, to keep memory flat).
    pub record_history: bool,
    /// Clients start issuing operations after this much virtual time.
    pub start_after: Duration,
    /// Client `i` is `ClientId(client_id_base + i + 1)`. A real cluster remembers
    /// client sessions across runs, so each run against one needs fresh ids.
    pub client_id_base: u64,
}

impl WorkloadConfig {
    /// The `kv` workload with `ops` operations and 5 clients.
    pub fn standard(ops: u64) -> WorkloadConfig {
        WorkloadConfig::named(WorkloadName::Kv, ops)
    }

    /// A named workload with `ops` operations.
    pub fn named(name: WorkloadName, ops: u64) -> WorkloadConfig {
        let (keys, key_dist, mix) = match name {
            WorkloadName::Kv => (
                8,
                KeyDist::Uniform,
                Mix {
                    read: 0.4,
                    append: 0.2,
                    cas: 0.1,
                    delete: 0.05,
                },
            ),
            WorkloadName::YcsbA => (1000, KeyDist::Zipf(0.99), reads(0.5)),
            WorkloadName::YcsbB => (1000, KeyDist::Zipf(0.99), reads(0.95)),
            WorkloadName::YcsbC => (1000, KeyDist::Zipf(0.99), reads(1.0)),
            WorkloadName::Register => (
                3,
                KeyDist::Uniform,
                Mix {
                    read: 0.5,
                    append: 0.0,
                    cas: 0.25,
                    delete: 0.0,
                },
            ),
        };
        WorkloadConfig {
            name,
            clients: 5,
            ops,
            keys,
            key_dist,
            mix,
            attempt_timeout: Duration::from_millis(500),
            attempts_max: 8,
            retry_backoff: Duration::from_millis(20),
            think_max: Duration::ZERO,
            liveness_ops: 3,
            record_history: true,
            start_after: Duration::ZERO,
            client_id_base: 0,
        }
    }
}

fn reads(read: f64) -> Mix {
    Mix {
        read,
        append: 0.0,
        cas: 0.0,
        delete: 0.0,
    }
}

/// Picks keys and operations.
#[derive(Debug)]
pub struct OpGenerator {
    rng: ChaCha8Rng,
    mix: Mix,
    keys: Vec<String>,
    /// Cumulative weights for Zipf; empty for uniform.
    cdf: Vec<f64>,
    counter: u64,
}

impl OpGenerator {
    /// A generator for `cfg` drawing from `seed`.
    pub fn new(cfg: &WorkloadConfig, seed: u64) -> OpGenerator {
        let keys: Vec<String> = (0..cfg.keys.max(1)).map(|i| format!("k{i}")).collect();
        let cdf = match cfg.key_dist {
            KeyDist::Uniform => Vec::new(),
            KeyDist::Zipf(s) => {
                let mut acc = 0.0;
                let mut cdf: Vec<f64> = (1..=keys.len())
                    .map(|r| {
                        acc += 1.0 / (r as f64).powf(s);
                        acc
                    })
                    .collect();
                for c in &mut cdf {
                    *c /= acc;
                }
                cdf
            }
        };
        OpGenerator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            mix: cfg.mix,
            keys,
            cdf,
            counter: 0,
        }
    }

    fn key(&mut self) -> String {
        let i = if self.cdf.is_empty() {
            self.rng.gen_range(0..self.keys.len())
        } else {
            let u: f64 = self.rng.gen();
            self.cdf
                .partition_point(|&c| c < u)
                .min(self.keys.len() - 1)
        };
        self.keys[i].clone()
    }

    /// A uniform duration in `[0, max]`.
    pub fn think(&mut self, max: Duration) -> Duration {
        Duration::from_nanos(self.rng.gen_range(0..=max.as_nanos() as u64))
    }

    /// A random node index in `0..n`.
    pub fn node(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n)
    }

    /// The next operation for a client whose last observed values are `seen`.
    /// Written values are unique (`<client>.<n>`), which makes histories easy to check.
    pub fn next_op(&mut self, client: ClientId, seen: &HashMap<String, String>) -> KvOp {
        let key = self.key();
        self.counter += 1;
        let fresh = format!("{}.{}", client.0, self.counter);
        let u: f64 = self.rng.gen();
        let m = self.mix;
        if u < m.read {
            KvOp::Get { key }
        } else if u < m.read + m.append {
            KvOp::Append {
                key,
                value: format!("{fresh};"),
            }
        } else if u < m.read + m.append + m.cas {
            let expected = seen.get(&key).cloned().unwrap_or_default();
            KvOp::Cas {
                key,
                expected,
                new: fresh,
            }
        } else if u < m.read + m.append + m.cas + m.delete {
            KvOp::Delete { key }
        } else {
            KvOp::Put { key, value: fresh }
        }
    }
}

/// How an attempt ended, as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Took effect with this result.
    Done(KvResult),
    /// Ask another node (hint: node index).
    NotLeader(Option<usize>),
    /// Refused for now.
    Unavailable,
    /// May or may not take effect.
    Unknown,
}

impl Answer {
    /// The client's view of a node's `outcome`: `result` reads the protocol's
    /// response; `leader` is the node index of a `NotLeader` hint, if known.
    pub fn from_outcome<R>(
        outcome: &Outcome<R>,
        result: impl FnOnce(&R) -> KvResult,
        leader: impl FnOnce() -> Option<usize>,
    ) -> Answer {
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
pub enum ClientStep {
    /// Send `op` as `(client, seq)` to node `node`, and time out after `timeout`.
    Send {
        /// Node index.
        node: usize,
        /// Sequence number.
        seq: u64,
        /// Operation.
        op: KvOp,
        /// Attempt timeout.
        timeout: Duration,
    },
    /// Wake the client after this long (think time or back-off).
    Sleep(Duration),
    /// Nothing to do.
    Idle,
}

#[derive(Clone, Debug)]
struct InFlight {
    op: KvOp,
    invoked_at: Time,
    attempts: u32,
    maybe_applied: bool,
    in_heal_phase: bool,
}

#[derive(Clone, Debug)]
enum State {
    /// Waiting to start the next operation.
    Ready,
    /// An attempt is outstanding.
    Waiting(InFlight),
    /// Backing off before the next attempt.
    Backoff(InFlight),
}

/// One closed-loop client.
#[derive(Clone, Debug)]
pub struct Client {
    id: ClientId,
    process: u64,
    seq: u64,
    target: usize,
    state: State,
    /// Guards timeouts and wake-ups: only the latest token counts.
    token: u64,
    seen: HashMap<String, String>,
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
    /// `ok` completions per 100 ms of virtual time (availability over time).
    pub ok_timeline: Vec<u32>,
}

impl ClientStats {
    /// Records how long an answered op of the main phase took.
    fn record_latency(&mut self, flight: &InFlight, now: Time) {
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
            ok_timeline: Vec::new(),
        }
    }
}

/// Width of one availability bucket.
pub const TIMELINE_BUCKET: Duration = Duration::from_millis(100);

/// All clients of a run, their generator and their history.
#[derive(Debug)]
pub struct Workload {
    cfg: WorkloadConfig,
    nodes: usize,
    gen: OpGenerator,
    clients: Vec<Client>,
    budget: u64,
    history: Vec<HistoryEvent>,
    /// Client-side measurements.
    pub stats: ClientStats,
}

impl Workload {
    /// Clients for a cluster of `nodes` nodes.
    pub fn new(cfg: WorkloadConfig, nodes: usize, seed: u64) -> Workload {
        let mut gen = OpGenerator::new(&cfg, seed);
        let clients = (0..cfg.clients)
            .map(|i| Client {
                id: ClientId(cfg.client_id_base + i as u64 + 1),
                process: i as u64,
                seq: 0,
                target: gen.node(nodes),
                state: State::Ready,
                token: 0,
                seen: HashMap::new(),
                liveness_left: cfg.liveness_ops,
            })
            .collect();
        Workload {
            budget: cfg.ops,
            nodes,
            gen,
            clients,
            history: Vec::new(),
            stats: ClientStats::empty(),
            cfg,
        }
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
    pub fn start_next(&mut self, index: usize, now: Time, phase: Phase) -> ClientStep {
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
        let op = self.gen.next_op(c.id, &c.seen);
        let c = &mut self.clients[index];
        c.seq += 1;
        record(
            &mut self.history,
            self.cfg.record_history,
            c.process,
            EventType::Invoke,
            &op,
            invoke_value(&op),
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

    fn attempt(&mut self, index: usize, mut flight: InFlight) -> ClientStep {
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

    /// A reply for `(client index, seq)` arrived.
    pub fn on_answer(&mut self, index: usize, seq: u64, answer: Answer, now: Time) -> ClientStep {
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
                c.target = match hint {
                    Some(l) if l < self.nodes => l,
                    _ => (c.target + 1) % self.nodes,
                };
                self.retry_or_give_up(index, flight, now)
            }
            Answer::Unavailable => {
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
    pub fn on_wake(&mut self, index: usize, token: u64, now: Time, phase: Phase) -> ClientStep {
        let c = &mut self.clients[index];
        if token != c.token {
            return ClientStep::Idle;
        }
        match std::mem::replace(&mut c.state, State::Ready) {
            State::Ready => self.start_next(index, now, phase),
            State::Waiting(mut flight) => {
                // Timed out: the request may have been applied.
                flight.maybe_applied = true;
                c.target = (c.target + 1) % self.nodes;
                self.retry_or_give_up(index, flight, now)
            }
            State::Backoff(flight) => self.attempt(index, flight),
        }
    }

    fn retry_or_give_up(&mut self, index: usize, flight: InFlight, now: Time) -> ClientStep {
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
        record(
            &mut self.history,
            self.cfg.record_history,
            c.process,
            kind,
            &flight.op,
            invoke_value(&flight.op),
            now,
        );
        if flight.maybe_applied {
            self.stats.info += 1;
            // Jepsen: a process with an indeterminate op never issues another one.
            c.process += self.cfg.clients as u64;
        } else {
            self.stats.fail += 1;
        }
        self.think(index)
    }

    fn complete_ok(&mut self, index: usize, flight: InFlight, result: KvResult, now: Time) {
        let c = &mut self.clients[index];
        let value = match (&flight.op, &result) {
            (KvOp::Get { key }, KvResult::Value(v)) => {
                let v = v.clone().unwrap_or_default();
                c.seen.insert(key.clone(), v.clone());
                Value::Str(v)
            }
            (KvOp::Cas { key, .. }, KvResult::CasMismatch { current }) => {
                c.seen
                    .insert(key.clone(), current.clone().unwrap_or_default());
                // A cas that did not apply is a definite failure in the history.
                record(
                    &mut self.history,
                    self.cfg.record_history,
                    c.process,
                    EventType::Fail,
                    &flight.op,
                    invoke_value(&flight.op),
                    now,
                );
                self.stats.fail += 1;
                self.stats.cas_mismatch += 1;
                self.stats.record_latency(&flight, now);
                return;
            }
            (op, _) => invoke_value(op),
        };
        if flight.in_heal_phase {
            c.liveness_left = c.liveness_left.saturating_sub(1);
        }
        self.stats.record_latency(&flight, now);
        let bucket = (now.as_nanos() / TIMELINE_BUCKET.as_nanos() as u64) as usize;
        if self.stats.ok_timeline.len() <= bucket {
            self.stats.ok_timeline.resize(bucket + 1, 0);
        }
        self.stats.ok_timeline[bucket] += 1;
        self.stats.ok += 1;
        record(
            &mut self.history,
            self.cfg.record_history,
            c.process,
            EventType::Ok,
            &flight.op,
            value,
            now,
        );
    }

    fn think(&mut self, index: usize) -> ClientStep {
        let c = &mut self.clients[index];
        c.state = State::Ready;
        c.token += 1;
        ClientStep::Sleep(self.gen.think(self.cfg.think_max))
    }
}

fn op_name(op: &KvOp) -> OpName {
    match op {
        KvOp::Get { .. } => OpName::Get,
        KvOp::Put { .. } => OpName::Put,
        KvOp::Append { .. } => OpName::Append,
        KvOp::Cas { .. } => OpName::Cas,
        KvOp::Delete { .. } => OpName::Delete,
    }
}

fn invoke_value(op: &KvOp) -> Value {
    match op {
        KvOp::Get { .. } | KvOp::Delete { .. } => Value::Null,
        KvOp::Put { value, .. } | KvOp::Append { value, .. } => Value::Str(value.clone()),
        KvOp::Cas { expected, new, .. } => Value::Pair(expected.clone(), new.clone()),
    }
}

fn record(
    history: &mut Vec<HistoryEvent>,
    enabled: bool,
    process: u64,
    kind: EventType,
    op: &KvOp,
    value: Value,
    now: Time,
) {
    if enabled {
        history.push(HistoryEvent {
            process,
            kind,
            f: op_name(op),
            key: op.key().to_owned(),
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

    #[test]
    fn zipf_prefers_low_ranks() {
        let mut cfg = WorkloadConfig::named(WorkloadName::YcsbA, 1);
        cfg.keys = 100;
        let mut g = OpGenerator::new(&cfg, 3);
        let mut hot = 0;
        for _ in 0..10_000 {
            if g.key() == "k0" {
                hot += 1;
            }
        }
        // Rank 1 of Zipf(0.99) over 100 keys has probability ~0.19; uniform would be 0.01.
        assert!((1500..2500).contains(&hot), "{hot}");
    }
}
