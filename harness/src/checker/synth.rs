//! Seeded synthetic histories for tests, benchmarks and examples.
//!
//! Clients run against a real sequential model in a discrete-event
//! simulation: each op is invoked, takes effect at one instant (its
//! linearisation point) a random delay later, and returns a random delay
//! after that, so ops overlap at random. The history is therefore
//! linearisable by construction. Crashes produce `info` completions (or no
//! completion) for ops that did or did not take effect; `fail` is produced
//! for ops that did not take effect, including a cas whose expected value
//! did not match. Same config, same seed: same history.
//!
//! A [`Fault`] plants one bug, to make histories that are *not*
//! linearisable at scale: a stale read, or a write acknowledged but lost.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::history::{Event, EventKind, Op, Value};
use super::model::Model;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthConfig {
    /// Model whose operations are issued.
    pub model: Model,
    /// Number of keys; 0 means unkeyed (register models only; kv uses 1).
    pub keys: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Operations to invoke in total.
    pub ops: usize,
    /// PRNG seed.
    pub seed: u64,
    /// Per-mille chance an op crashes (info or no completion; it may or may
    /// not take effect).
    pub info_per_mille: u32,
    /// Per-mille chance an op fails without taking effect.
    pub fail_per_mille: u32,
    /// Invoke-to-effect and effect-to-return delays are uniform in
    /// `1..=max_latency` time units.
    pub max_latency: u64,
    /// Pause between a client's ops, uniform in `0..=max_think`.
    pub max_think: u64,
    /// Draw values from this many distinct ones (to provoke ambiguity); `None`
    /// makes every written value unique.
    pub values: Option<u32>,
    /// Which operations clients issue.
    pub mix: Mix,
    /// A bug to plant, if any.
    pub fault: Fault,
}

/// One bug planted in an otherwise linearisable history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// None: the history is linearisable by construction.
    None,
    /// The first ok read invoked after `after` ops were issued that can be
    /// made stale returns an older value instead: the value produced by an
    /// op p that returned before some state-changing op w was invoked, where
    /// w returned before the read was invoked. With unique values (`values:
    /// None`) only p produces that value and real time orders p < w < read,
    /// so the history is not linearisable.
    StaleRead {
        /// Ops issued before the fault may be planted.
        after: usize,
    },
    /// The first write invoked after `after` ops were issued that completes
    /// ok and is lost visibly is acknowledged but never applied. A `cas`
    /// whose expected value matches qualifies at once: it consumed the
    /// value it leaves in place, so (with unique values) a read of that
    /// value invoked after the cas returns, or a second cas from it,
    /// contradicts the model. A `write` / `put` qualifies only while the key
    /// holds a value set by an op that returned before the write was
    /// invoked (else the write could have come first); at high concurrency
    /// that is rare, so a cas is what is lost there. If the value is
    /// overwritten before anyone looks, the loss is invisible: callers that
    /// need a violation check the verdict.
    LostWrite {
        /// Ops issued before the fault may be planted.
        after: usize,
    },
}

/// The operation mix of the clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Every operation of the model (kv: get, put, append, delete, cas).
    Standard,
    /// Kv only: 65 % `append`, 35 % `get`. Appended values are tokens
    /// `x <client> <n> y` (as in Porcupine's kv test files), so a key's
    /// string only grows and a get returns every token so far.
    AppendHeavy,
    /// Kv only: 55 % `append`, 35 % `get` and 10 % `put` of a fresh token,
    /// the mix of Porcupine's kv test files (`test_data/kv/c50-bad.txt`
    /// opens with about one put in ten ops): each put restarts the key's
    /// string, so gets read a put's token and the appends after it.
    AppendPut,
}

impl SynthConfig {
    /// A config with no crashes or failures, latency up to 100 and think
    /// time up to 10, unique values.
    pub fn new(model: Model, keys: usize, clients: usize, ops: usize, seed: u64) -> Self {
        SynthConfig {
            model,
            keys,
            clients,
            ops,
            seed,
            info_per_mille: 0,
            fail_per_mille: 0,
            max_latency: 100,
            max_think: 10,
            values: None,
            mix: Mix::Standard,
            fault: Fault::None,
        }
    }
}

/// A SplitMix64 generator: tiny, fast, deterministic.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        // `mix` adds the golden-ratio increment itself: this is SplitMix64.
        let z = self.0;
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        super::cache::mix(z)
    }
    /// Uniform in `0..n` (n > 0; modulo bias is irrelevant here).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Ok,
    Fail,
    Info,
    /// Crashed with no completion recorded.
    Lost,
}

struct InFlight {
    f: Op,
    key: Option<String>,
    arg: Value,
    read: Value,
    end: End,
    /// Position of the op among issued ones (1-based).
    index: usize,
    /// Index of the invoke event.
    call: usize,
    /// The value this op set, if it changed the state to a non-initial one.
    produced: Option<Value>,
    /// When it took effect (`Sim::effects` after it).
    effect: u64,
    /// The stale value this read will return instead (`Fault::StaleRead`).
    stale: Option<Value>,
}

/// A state-changing op that completed ok, as `Fault::StaleRead` needs it:
/// event indices of its invoke and return, and the value it set.
struct Done {
    call: usize,
    ret: usize,
    /// Order in which ops took effect.
    effect: u64,
    produced: Value,
}

/// Generates a history of events in real-time order: linearisable unless
/// `cfg.fault` plants a bug.
pub fn generate(cfg: &SynthConfig) -> Vec<Event> {
    Sim::new(cfg).run()
}

struct Sim<'a> {
    cfg: &'a SynthConfig,
    rng: Rng,
    state: HashMap<Option<String>, Value>,
    procs: Vec<u64>,
    flight: Vec<Option<InFlight>>,
    /// (time, tie-break sequence, client, phase 0=start 1=effect 2=return)
    queue: BinaryHeap<Reverse<(u64, u64, usize, u8)>>,
    seq: u64,
    issued: usize,
    counter: u64,
    events: Vec<Event>,
    /// The fault is still to be planted.
    fault_pending: bool,
    /// Per key, completed state-changing ops (only kept for `StaleRead`).
    done: HashMap<Option<String>, Vec<Done>>,
    effects: u64,
    /// Per key: the effect that set the current value, and the index of
    /// its ok return once it has returned (a key never set is absent).
    settled: HashMap<Option<String>, (u64, Option<usize>)>,
}

impl<'a> Sim<'a> {
    fn new(cfg: &'a SynthConfig) -> Self {
        let mut sim = Sim {
            cfg,
            rng: Rng::new(cfg.seed),
            state: HashMap::new(),
            procs: (0..cfg.clients as u64).collect(),
            flight: (0..cfg.clients).map(|_| None).collect(),
            queue: BinaryHeap::new(),
            seq: 0,
            issued: 0,
            counter: 0,
            events: Vec::with_capacity(cfg.ops * 2),
            fault_pending: cfg.fault != Fault::None,
            done: HashMap::new(),
            effects: 0,
            settled: HashMap::new(),
        };
        for c in 0..cfg.clients {
            let t = sim.rng.below(cfg.max_think + 1);
            sim.schedule(t, c, 0);
        }
        sim
    }

    fn schedule(&mut self, t: u64, client: usize, phase: u8) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, client, phase)));
    }

    fn latency(&mut self) -> u64 {
        1 + self.rng.below(self.cfg.max_latency.max(1))
    }

    fn run(mut self) -> Vec<Event> {
        while let Some(Reverse((t, _, c, phase))) = self.queue.pop() {
            match phase {
                0 => self.start(t, c),
                1 => self.take_effect(t, c),
                _ => self.finish(t, c),
            }
        }
        self.events
    }

    fn initial(&self) -> Value {
        if self.cfg.model == Model::Kv {
            Value::from("")
        } else {
            Value::Null
        }
    }

    fn current(&self, key: &Option<String>) -> Value {
        self.state
            .get(key)
            .cloned()
            .unwrap_or_else(|| self.initial())
    }

    fn fresh(&mut self, client: usize) -> Value {
        self.counter += 1;
        if self.cfg.mix != Mix::Standard && self.cfg.model == Model::Kv {
            return Value::Str(format!("x {client} {} y", self.counter));
        }
        let n = match self.cfg.values {
            Some(d) => self.rng.below(u64::from(d)),
            None => self.counter,
        };
        match self.cfg.model {
            Model::Kv => Value::Str(format!("v{n}")),
            _ => Value::from(n),
        }
    }

    fn pick_key(&mut self) -> Option<String> {
        let keys = if self.cfg.model == Model::Kv {
            self.cfg.keys.max(1)
        } else {
            self.cfg.keys
        };
        (keys > 0).then(|| format!("k{}", self.rng.below(keys as u64)))
    }

    fn pick_op(&mut self) -> Op {
        let r = self.rng.below(100);
        if self.cfg.mix == Mix::AppendHeavy && self.cfg.model == Model::Kv {
            return if r < 35 { Op::Get } else { Op::Append };
        }
        if self.cfg.mix == Mix::AppendPut && self.cfg.model == Model::Kv {
            return match r {
                0..35 => Op::Get,
                35..45 => Op::Put,
                _ => Op::Append,
            };
        }
        match self.cfg.model {
            Model::Register if r < 50 => Op::Read,
            Model::Register => Op::Write,
            Model::CasRegister if r < 40 => Op::Read,
            Model::CasRegister if r < 60 => Op::Write,
            Model::CasRegister => Op::Cas,
            Model::Kv if r < 40 => Op::Get,
            Model::Kv if r < 65 => Op::Put,
            Model::Kv if r < 80 => Op::Append,
            Model::Kv if r < 85 => Op::Delete,
            Model::Kv => Op::Cas,
        }
    }

    fn start(&mut self, t: u64, c: usize) {
        if self.issued == self.cfg.ops {
            return;
        }
        self.issued += 1;
        let f = self.pick_op();
        let key = self.pick_key();
        let arg = match f {
            Op::Read | Op::Get | Op::Delete => Value::Null,
            Op::Cas => {
                // Half the time expect the value current at invoke time, so
                // a fair share of cas ops succeed.
                let expected = if self.rng.below(2) == 0 {
                    self.current(&key)
                } else {
                    self.fresh(c)
                };
                Value::pair(expected, self.fresh(c))
            }
            _ => self.fresh(c),
        };
        let stale = match self.cfg.fault {
            Fault::StaleRead { after } if f.is_read() && self.issued > after => {
                self.stale_value(&key)
            }
            _ => None,
        };
        let mut ev = Event::new(self.procs[c], EventKind::Invoke, f, arg.clone());
        ev.key = key.clone().map(Value::Str);
        let call = self.events.len();
        self.events.push(ev);
        self.flight[c] = Some(InFlight {
            f,
            key,
            arg,
            read: Value::Null,
            end: End::Ok,
            index: self.issued,
            call,
            produced: None,
            effect: 0,
            stale,
        });
        let t = t + self.latency();
        self.schedule(t, c, 1);
    }

    /// The op's linearisation point: apply it to the sequential model.
    fn take_effect(&mut self, t: u64, c: usize) {
        let roll = self.rng.below(1000) as u32;
        let coin = self.rng.below(2) == 0;
        let Some(mut op) = self.flight[c].take() else {
            return;
        };
        let crash = roll < self.cfg.info_per_mille;
        let fail = !crash && roll < self.cfg.info_per_mille + self.cfg.fail_per_mille;
        let applies = if crash { coin } else { !fail };
        op.end = match (crash, fail) {
            (true, _) if self.rng.below(2) == 0 => End::Info,
            (true, _) => End::Lost,
            (false, true) => End::Fail,
            _ => End::Ok,
        };
        let lost = match self.cfg.fault {
            Fault::LostWrite { after } => {
                let visible = match (op.f, &op.arg) {
                    (Op::Write | Op::Put, _) => self.quiet(&op.key, op.call),
                    (Op::Cas, Value::Pair(p)) => p.0 == self.current(&op.key),
                    _ => false,
                };
                self.fault_pending && op.index > after && op.end == End::Ok && visible
            }
            _ => false,
        };
        if lost {
            self.fault_pending = false;
        } else if applies && !self.apply(&mut op) && op.end == End::Ok {
            op.end = End::Fail; // a cas whose expected value did not match
        }
        self.flight[c] = Some(op);
        let t = t + self.latency();
        self.schedule(t, c, 2);
    }

    /// Applies `op`; false for a cas that did not match.
    fn apply(&mut self, op: &mut InFlight) -> bool {
        let cur = self.current(&op.key);
        let new = match (op.f, &op.arg) {
            (Op::Read | Op::Get, _) => {
                op.read = cur;
                return true;
            }
            (Op::Delete, _) => self.initial(),
            (Op::Append, Value::Str(s)) => match cur {
                Value::Str(c) => Value::Str(c + s),
                _ => return false,
            },
            (Op::Cas, Value::Pair(p)) if p.0 == cur => p.1.clone(),
            (Op::Cas, _) => return false,
            (_, v) => v.clone(),
        };
        self.effects += 1;
        op.effect = self.effects;
        self.settled.insert(op.key.clone(), (self.effects, None));
        op.produced = (new != self.initial()).then(|| new.clone());
        self.state.insert(op.key.clone(), new);
        true
    }

    /// Whether the current value of `key` was set by an op that returned
    /// before event `call` (or was never set): losing a write invoked at
    /// `call` then leaves a value real time says it replaced.
    fn quiet(&self, key: &Option<String>, call: usize) -> bool {
        match self.settled.get(key) {
            None => true,
            Some(&(_, ret)) => ret.is_some_and(|r| r < call),
        }
    }

    /// For a read of `key` about to be invoked: a value that real time
    /// forbids it to return (see `Fault::StaleRead`), if there is one yet.
    fn stale_value(&self, key: &Option<String>) -> Option<Value> {
        if !self.fault_pending {
            return None;
        }
        let done = self.done.get(key)?;
        // w: the completed op invoked last; p: the op that took effect last
        // among those that returned before w was invoked.
        let w_call = done.iter().map(|d| d.call).max()?;
        done.iter()
            .filter(|d| d.ret < w_call)
            .max_by_key(|d| d.effect)
            .map(|d| d.produced.clone())
    }

    /// Records a completed state-changing op for `Fault::StaleRead`.
    fn record_done(&mut self, op: &InFlight) {
        let Some(produced) = &op.produced else { return };
        self.done.entry(op.key.clone()).or_default().push(Done {
            call: op.call,
            ret: self.events.len(),
            effect: op.effect,
            produced: produced.clone(),
        });
    }

    fn finish(&mut self, t: u64, c: usize) {
        let Some(op) = self.flight[c].take() else {
            return;
        };
        let kind = match op.end {
            End::Ok => EventKind::Ok,
            End::Fail => EventKind::Fail,
            End::Info => EventKind::Info,
            End::Lost => EventKind::Invoke, // marker: nothing is recorded
        };
        if op.end == End::Ok {
            if let Some((effect, ret)) = self.settled.get_mut(&op.key) {
                if *effect == op.effect {
                    *ret = Some(self.events.len());
                }
            }
        }
        let stale_read = matches!(self.cfg.fault, Fault::StaleRead { .. });
        if stale_read && op.end == End::Ok && !op.f.is_read() {
            self.record_done(&op);
        }
        if kind != EventKind::Invoke {
            let read = match op.stale {
                Some(v) if kind == EventKind::Ok && self.fault_pending => {
                    self.fault_pending = false;
                    v
                }
                _ => op.read,
            };
            let value = if op.f.is_read() { read } else { op.arg };
            let value = if kind == EventKind::Ok {
                value
            } else {
                Value::Null
            };
            let mut ev = Event::new(self.procs[c], kind, op.f, value);
            ev.key = op.key.map(Value::Str);
            self.events.push(ev);
        }
        if matches!(op.end, End::Info | End::Lost) {
            // Jepsen gives a crashed client a fresh process id.
            self.procs[c] += self.cfg.clients as u64;
        }
        let t = t + self.rng.below(self.cfg.max_think + 1);
        self.schedule(t, c, 0);
    }
}
