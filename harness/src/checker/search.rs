//! The Wing & Gong / Lowe search over one partition (one register).
//!
//! Ops sit in a doubly linked list of call and return entries sorted by
//! time (`links.rs`). Scanning from the head, every call entry met before
//! the first return entry is a candidate to be linearised next. A candidate
//! whose step is legal and whose resulting (linearised set, state) is new is
//! *lifted* (its entries unlinked, dancing-links style) and the scan
//! restarts; on reaching a return entry every candidate has failed, so the
//! last lift is undone (*unlift*) and the scan resumes after it.
//!
//! On top of that, sound reductions (each argued where it is coded):
//! - Info ops (return +infinity) have no return entry and live in a second
//!   list, tried after the ok candidates and only if called before the first
//!   pending return.
//! - Success comes once every unplaced ok op is a write: writes are legal
//!   in any state, so they can all go last.
//! - A legal read among the candidates is placed at once, with no branching.
//! - Writes whose value no unplaced op observes ("invisible", `observe.rs`)
//!   are not branched on one by one: every candidate invisible write is
//!   placed in bulk right before the next write, or alone when it must be.
//! - Dead ends are cut early: when an ok op waits for a value no unplaced op
//!   can produce (`observe.rs`), when the op that returns first needs a
//!   value that no candidate can produce, or, with appends, when a candidate
//!   get reads a string the current state can no longer grow into
//!   (`growth.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::cache::{Bitset, Cache};
use super::growth::{Growth, UNOBSERVABLE};
use super::links::{call_node, is_ret, op_of, ret_node, Links, HEAD_INFO, HEAD_MAIN, NIL};
use super::model::Step;
use super::observe::{Prep, Tracker, NO_SLOT};
use super::states::States;

/// Return time of an op that never returns (info or no completion).
pub(crate) const INFINITY: u64 = u64::MAX;
/// How many loop iterations between looks at the clock and cancel flag.
const POLL_EVERY: u32 = 1 << 12;
/// How many list entries past the candidates `outgrown_ahead` looks at.
const LOOKAHEAD_MAX: u32 = 256;
/// How many list entries `memo_state` looks at for an observer.
const OBSERVERS_SCANNED_MAX: u32 = 512;

/// How the search treats an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// A read: changes nothing, so it is placed as soon as it is legal.
    Read,
    /// A write in a partition without appends (may be placed in bulk).
    Write,
    /// Cas, append, and writes of partitions with appends.
    Other,
}

/// One op of a partition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PartOp {
    /// Invoke time (line of the invoke).
    pub call: u64,
    /// Return time, `INFINITY` for info ops.
    pub ret: u64,
    pub step: Step,
    /// Index of the op in the history.
    pub op: u32,
    pub class: Class,
    /// Slot of the value it observes, or `NO_SLOT` (see `observe.rs`).
    pub obs: u32,
    /// Slot of the value it produces, or `NO_SLOT`.
    pub prod: u32,
}

impl PartOp {
    /// An op of a partition, before `prepare` classifies it.
    pub(crate) fn new(call: u64, ret: u64, step: Step, op: u32) -> Self {
        PartOp {
            call,
            ret,
            step,
            op,
            class: Class::Other,
            obs: NO_SLOT,
            prod: NO_SLOT,
        }
    }

    /// Info ops may take effect or not; only ok ops must be linearised.
    pub(crate) fn is_info(&self) -> bool {
        self.ret == INFINITY
    }

    /// Writes are legal in every state.
    fn is_write(&self) -> bool {
        matches!(self.step, Step::Write(_))
    }
}

/// Why a search stopped without a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    Timeout,
    /// Another partition already failed (early exit).
    Cancelled,
    /// More ops in one partition than node ids can address.
    TooLarge,
    /// The worker thread panicked (a bug); its partitions have no verdict.
    WorkerPanicked,
    /// The step budget ran out (`Stop::steps_max`).
    Budget,
    /// A refutation and the search disagree (a bug in one of them).
    Disagreement,
}

/// The deepest configuration reached: a linearisable prefix.
#[derive(Clone, Debug)]
pub(crate) struct BestPrefix {
    /// Partition op indices, in linearisation order.
    pub order: Vec<u32>,
    /// Model state after them.
    pub state: u32,
    /// A get this configuration can no longer satisfy, if that is what cut
    /// it (`growth.rs`): the prefix placed an append its value lacks.
    pub outgrown: Option<u32>,
}

impl BestPrefix {
    fn empty(init: u32) -> Self {
        BestPrefix {
            order: Vec::new(),
            state: init,
            outgrown: None,
        }
    }
}

/// Result of searching one partition.
#[derive(Debug)]
pub(crate) enum Outcome {
    Linearizable,
    Violation(BestPrefix),
    /// Stopped early, with the deepest prefix reached so far.
    Unknown(StopReason, BestPrefix),
}

/// When to give up: a deadline, a flag raised as soon as any partition
/// fails (the verdict is then known; searching on is wasted work), and a
/// step budget (for a search that only looks for an explanation).
#[derive(Clone, Copy)]
pub(crate) struct Stop<'a> {
    pub deadline: Option<Instant>,
    pub failed: &'a AtomicBool,
    /// Search loop iterations allowed, checked every `POLL_EVERY`.
    pub steps_max: Option<u64>,
}

impl Stop<'_> {
    /// Some reason if the search must stop now.
    pub(crate) fn check(&self) -> Option<StopReason> {
        if self.failed.load(Ordering::Relaxed) {
            return Some(StopReason::Cancelled);
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Some(StopReason::Timeout),
            _ => None,
        }
    }
}

/// Where to go when a frame is undone.
#[derive(Clone, Copy)]
enum Resume {
    /// Forced lift: the configuration below it is dead too, keep undoing.
    Dead,
    /// Continue the main-list scan after the op.
    Main { bulk_tried: bool },
    /// Continue the info-list scan after the op.
    Info { barrier: u64 },
}

/// A lifted op and what to restore on backtrack.
#[derive(Clone, Copy)]
struct Frame {
    op: u32,
    state: u32,
    /// State slot before the lift.
    slot: u32,
    /// Invisible writes lifted just before `op` (top of `companions`).
    companions: u32,
    /// Ops placed before this frame's companions.
    pos: u32,
    resume: Resume,
}

/// Where the scan is.
#[derive(Clone, Copy)]
enum Cursor {
    /// A configuration just reached: apply the shortcuts first.
    Fresh,
    /// At a main-list node; `bulk_tried`: invisible writes were already
    /// tried as a block at this configuration.
    Main(u32, bool),
    /// At an info-list node; info calls after `barrier` are not candidates.
    Info(u32, u64),
}

/// Checks one partition prepared by `observe::prepare`, sorted by call
/// time, from state `init`.
pub(crate) fn search(
    ops: &[PartOp],
    prep: &Prep,
    init: u32,
    states: &mut States<'_>,
    stop: &Stop,
) -> Outcome {
    // Node ids are u32: two per op plus two list heads.
    if ops.len() >= (1 << 31) - 2 {
        return Outcome::Unknown(StopReason::TooLarge, BestPrefix::empty(init));
    }
    Search::new(ops, prep, init).run(states, stop)
}

struct Search<'a> {
    ops: &'a [PartOp],
    links: Links,
    set: Bitset,
    cache: Cache,
    stack: Vec<Frame>,
    /// Invisible writes lifted along with frames, in lift order.
    companions: Vec<u32>,
    state: u32,
    /// Observer slot of `state`.
    slot: u32,
    tracker: Tracker,
    growth: Growth,
    /// Unplaced ok ops other than writes; 0 means success.
    remaining: usize,
    /// Ok ops placed, the measure of "longest prefix".
    placed_ok: usize,
    best: Best,
    /// Invisible write candidates of the current configuration, valid
    /// while `fresh_inv`.
    invisible: Vec<u32>,
    fresh_inv: bool,
}

/// Tracks the longest prefix. Copying the stack on every improvement would
/// be quadratic, so an improvement only marks it dirty and the copy is made
/// when the search first backtracks from there; and only the frames above
/// the last one the copy still shares with the stack are copied, so the
/// explanation costs O(1) amortised per lift, however deep the search.
struct Best {
    ok_count: usize,
    dirty: bool,
    /// Frames `0..agree` of the stack are in `prefix.order` as they are.
    agree: usize,
    /// Why the configuration reached since the last improvement was cut.
    outgrown: Option<u32>,
    prefix: BestPrefix,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [PartOp], prep: &Prep, init: u32) -> Self {
        let links = Links::build(
            ops.iter()
                .map(|o| (o.call, (!o.is_info()).then_some(o.ret))),
        );
        let remaining = ops.iter().filter(|o| !o.is_info() && !o.is_write()).count();
        Search {
            ops,
            links,
            set: Bitset::new(ops.len()),
            cache: Cache::new(),
            stack: Vec::new(),
            companions: Vec::new(),
            state: init,
            slot: prep.init_slot,
            tracker: Tracker::new(ops, prep),
            growth: Growth::new(ops),
            remaining,
            placed_ok: 0,
            best: Best {
                ok_count: 0,
                dirty: false,
                agree: 0,
                outgrown: None,
                prefix: BestPrefix::empty(init),
            },
            invisible: Vec::new(),
            fresh_inv: false,
        }
    }

    fn run(mut self, states: &mut States<'_>, stop: &Stop) -> Outcome {
        let mut cur = Cursor::Fresh;
        let (mut poll, mut steps) = (0u32, 0u64);
        loop {
            if self.remaining == 0 {
                return Outcome::Linearizable;
            }
            poll += 1;
            if poll == POLL_EVERY {
                poll = 0;
                steps += u64::from(POLL_EVERY);
                let spent = stop.steps_max.is_some_and(|m| steps >= m);
                if let Some(why) = stop.check().or(spent.then_some(StopReason::Budget)) {
                    if self.best.dirty {
                        self.snapshot_best();
                    }
                    return Outcome::Unknown(why, self.best.prefix);
                }
            }
            let next = match cur {
                Cursor::Fresh => self.fresh(states),
                Cursor::Main(n, bulk_tried) => self.scan_main(n, bulk_tried, states),
                Cursor::Info(n, barrier) => self.scan_info(n, barrier, states),
            };
            cur = match next.or_else(|| self.backtrack()) {
                Some(c) => c,
                None => return Outcome::Violation(self.best.prefix),
            };
        }
    }

    /// Shortcuts at a new configuration; `None` if it is dead.
    ///
    /// A legal candidate read r is placed without alternatives: given any
    /// valid continuation, moving r to its front keeps it valid (r changes
    /// no state, and no unplaced op returned before r's invoke, else r would
    /// not be a candidate). So if placing r fails, this configuration fails.
    fn fresh(&mut self, states: &mut States<'_>) -> Option<Cursor> {
        if self.tracker.starving(self.slot) {
            return None;
        }
        let mut n = self.links.next(HEAD_MAIN);
        while n != NIL && !is_ret(n) {
            let i = op_of(n);
            let op = self.ops[i as usize];
            if op.class == Class::Read {
                if states.apply(self.state, op.step).is_some() {
                    return self.lift(i, Resume::Dead, states).then_some(Cursor::Fresh);
                }
                if self.out_grown(&op, states) {
                    self.note_outgrown(i);
                    return None;
                }
            }
            n = self.links.next(n);
        }
        if n != NIL && !self.blocker_reachable(op_of(n), states) {
            return None;
        }
        if self.growth.on() {
            if let Some(g) = self.outgrown_ahead(n, states) {
                self.note_outgrown(g);
                return None;
            }
        }
        Some(Cursor::Main(self.links.next(HEAD_MAIN), false))
    }

    /// Whether the ok read `op` can never become legal: the state is no
    /// prefix of what it read, and no reset that can run before it returns
    /// sets one (see `growth.rs`).
    fn out_grown(&self, op: &PartOp, states: &mut States<'_>) -> bool {
        let Step::Read(v) = op.step else { return false };
        self.growth.on()
            && !states.is_prefix(self.state, v)
            && !self.growth.reset_may_lead(self.ops, op.ret, v, states)
    }

    /// The state the memo keys the configuration after lifting `i` with:
    /// `UNOBSERVABLE` for a string no unplaced op can observe (see
    /// `growth.rs`), else `next`. Looks at the unplaced gets and cas invoked
    /// before the earliest return of an unplaced ok reset; past
    /// `OBSERVERS_SCANNED_MAX` list entries it keeps `next` (no merging).
    fn memo_state(&self, i: u32, next: u32, states: &mut States<'_>) -> u32 {
        if !self.growth.on() {
            return next;
        }
        let until = self.growth.reset_return(self.ops, i);
        if until == INFINITY {
            return next;
        }
        let observable = |op: u32, states: &mut States<'_>| {
            let o = &self.ops[op as usize];
            match o.step {
                Step::Read(v) | Step::Cas(v, _) if op != i => states.is_prefix(next, v),
                _ => false,
            }
        };
        let (mut n, mut seen) = (self.links.next(HEAD_MAIN), 0);
        while n != NIL {
            let o = &self.ops[op_of(n) as usize];
            if (if is_ret(n) { o.ret } else { o.call }) > until {
                break;
            }
            seen += 1;
            if seen > OBSERVERS_SCANNED_MAX || (!is_ret(n) && observable(op_of(n), states)) {
                return next;
            }
            n = self.links.next(n);
        }
        let mut n = self.links.next(HEAD_INFO);
        while n != NIL && self.ops[op_of(n) as usize].call < until {
            seen += 1;
            if seen > OBSERVERS_SCANNED_MAX || observable(op_of(n), states) {
                return next;
            }
            n = self.links.next(n);
        }
        UNOBSERVABLE
    }

    /// Past the candidates (from `n`, the first return entry), a get
    /// invoked before the first pending get return that is already out of
    /// reach, if any. Those gets are not candidates yet, but they bound the orders
    /// of the appends running up to them: without this, concurrent appends
    /// no candidate get reads are tried in every order.
    fn outgrown_ahead(&self, mut n: u32, states: &mut States<'_>) -> Option<u32> {
        let mut seen = 0;
        while n != NIL && seen < LOOKAHEAD_MAX {
            let op = self.ops[op_of(n) as usize];
            if op.class == Class::Read {
                if is_ret(n) {
                    return None;
                }
                if self.out_grown(&op, states) {
                    return Some(op_of(n));
                }
            }
            seen += 1;
            n = self.links.next(n);
        }
        None
    }

    /// Remembers the get that cut the deepest configuration, for the report.
    fn note_outgrown(&mut self, get: u32) {
        if self.best.dirty {
            self.best.outgrown = Some(get);
        }
    }

    /// The blocker b (first pending return) precedes every op invoked after
    /// it returns, so only current candidates can run before it. If b needs
    /// a value (read, cas) that is not current, one of them must make it.
    fn blocker_reachable(&self, b: u32, states: &States<'_>) -> bool {
        let blocker = self.ops[b as usize];
        let need = match blocker.step {
            Step::Read(v) | Step::Cas(v, _) => v,
            _ => return true,
        };
        if need == self.state {
            return true;
        }
        let makes = |i: u32| match self.ops[i as usize].step {
            Step::Write(v) | Step::Cas(_, v) => v == need,
            // The last append before the blocker must be a suffix of it.
            Step::Append(a) => states.ends_with(need, a),
            Step::Read(_) => false,
        };
        let mut n = self.links.next(HEAD_MAIN);
        while n != NIL && !is_ret(n) {
            if makes(op_of(n)) {
                return true;
            }
            n = self.links.next(n);
        }
        let mut n = self.links.next(HEAD_INFO);
        while n != NIL && self.ops[op_of(n) as usize].call < blocker.ret {
            if makes(op_of(n)) {
                return true;
            }
            n = self.links.next(n);
        }
        false
    }

    /// Tries the main-list candidate at `n`.
    fn scan_main(&mut self, n: u32, bulk_tried: bool, states: &mut States<'_>) -> Option<Cursor> {
        if n == NIL || is_ret(n) {
            // Every ok candidate failed; info calls before this return are
            // the remaining candidates.
            let barrier = if n == NIL {
                INFINITY
            } else {
                self.ops[op_of(n) as usize].ret
            };
            return Some(Cursor::Info(self.links.next(HEAD_INFO), barrier));
        }
        let i = op_of(n);
        let after = self.links.next(n);
        let op = self.ops[i as usize];
        let invisible = self.tracker.invisible(&op);
        let tried = bulk_tried || invisible;
        let lifted = match op.class {
            // Not legal here: `fresh` places legal reads.
            Class::Read => false,
            // The first invisible candidate lifted them all; no other
            // subset needs trying (see `lift`).
            _ if invisible && bulk_tried => false,
            _ => self.lift(i, Resume::Main { bulk_tried: tried }, states),
        };
        Some(if lifted {
            Cursor::Fresh
        } else {
            Cursor::Main(after, tried)
        })
    }

    /// Tries the info-list candidate at `n`; `None` when none is left.
    fn scan_info(&mut self, n: u32, barrier: u64, states: &mut States<'_>) -> Option<Cursor> {
        if n == NIL || self.ops[op_of(n) as usize].call > barrier {
            return None;
        }
        let i = op_of(n);
        let after = self.links.next(n);
        let lifted = self.lift(i, Resume::Info { barrier }, states);
        Some(if lifted {
            Cursor::Fresh
        } else {
            Cursor::Info(after, barrier)
        })
    }

    /// Linearises op `i` next if legal and the configuration is new.
    ///
    /// A blind write w (any write) is preceded by every candidate invisible
    /// write. That dominates lifting a subset S: from a valid continuation
    /// after S + w, deleting the other invisible writes keeps it valid (each
    /// is followed by a blind write or nothing, so no state it sets is ever
    /// seen), and placing them now is legal as they are candidates.
    fn lift(&mut self, i: u32, resume: Resume, states: &mut States<'_>) -> bool {
        let op = self.ops[i as usize];
        let Some(next_state) = states.apply(self.state, op.step) else {
            return false;
        };
        let mark = self.companions.len();
        if op.class == Class::Write {
            self.refresh_invisible();
            self.companions
                .extend(self.invisible.iter().filter(|&&j| j != i));
        }
        for &j in &self.companions[mark..] {
            self.set.insert(j as usize);
        }
        self.set.insert(i as usize);
        let key = self.memo_state(i, next_state, states);
        if !self.cache.insert(&self.set, key) {
            self.set.remove(i as usize);
            for &j in &self.companions[mark..] {
                self.set.remove(j as usize);
            }
            self.companions.truncate(mark);
            return false;
        }
        let companions = (self.companions.len() - mark) as u32;
        // Partitions have < 2^31 ops (checked by `search`).
        let pos = (mark + self.stack.len()) as u32;
        self.stack.push(Frame {
            op: i,
            state: self.state,
            slot: self.slot,
            companions,
            pos,
            resume,
        });
        self.state = next_state;
        if matches!(op.step, Step::Write(_) | Step::Cas(..)) {
            self.slot = op.prod;
        }
        for k in mark..self.companions.len() {
            self.take(self.companions[k]);
        }
        self.take(i);
        self.fresh_inv = false;
        true
    }

    /// Collects the invisible writes among the current candidates.
    fn refresh_invisible(&mut self) {
        if self.fresh_inv {
            return;
        }
        self.invisible.clear();
        let mut n = self.links.next(HEAD_MAIN);
        while n != NIL && !is_ret(n) {
            let i = op_of(n);
            if self.tracker.invisible(&self.ops[i as usize]) {
                self.invisible.push(i);
            }
            n = self.links.next(n);
        }
        self.fresh_inv = true;
    }

    /// Unlinks op `i` (already in the set) and updates the counters.
    fn take(&mut self, i: u32) {
        let op = self.ops[i as usize];
        self.tracker.take(&op);
        self.growth.take(i);
        self.links.unlink(call_node(i));
        if op.is_info() {
            return;
        }
        self.links.unlink(ret_node(i));
        self.placed_ok += 1;
        if !op.is_write() {
            self.remaining -= 1;
        }
        if self.placed_ok > self.best.ok_count {
            self.best.ok_count = self.placed_ok;
            self.best.dirty = true;
            self.best.outgrown = None;
        }
    }

    /// Exact inverse of `take`, plus removal from the set.
    fn put_back(&mut self, i: u32) {
        let op = self.ops[i as usize];
        if !op.is_info() {
            self.links.relink(ret_node(i));
            self.placed_ok -= 1;
            if !op.is_write() {
                self.remaining += 1;
            }
        }
        self.links.relink(call_node(i));
        self.set.remove(i as usize);
        self.tracker.put_back(&op);
        self.growth.put_back(i);
    }

    /// Undoes lifts until a scan can resume; `None` when nothing is left to
    /// undo (no linearisation exists).
    fn backtrack(&mut self) -> Option<Cursor> {
        if self.best.dirty {
            self.snapshot_best();
        }
        self.fresh_inv = false;
        loop {
            let f = self.stack.pop()?;
            self.best.agree = self.best.agree.min(self.stack.len());
            self.put_back(f.op);
            for _ in 0..f.companions {
                if let Some(j) = self.companions.pop() {
                    self.put_back(j);
                }
            }
            self.state = f.state;
            self.slot = f.slot;
            let after = self.links.next(call_node(f.op));
            match f.resume {
                Resume::Dead => continue,
                Resume::Main { bulk_tried } => return Some(Cursor::Main(after, bulk_tried)),
                Resume::Info { barrier } => return Some(Cursor::Info(after, barrier)),
            }
        }
    }

    fn snapshot_best(&mut self) {
        let best = &mut self.best;
        best.dirty = false;
        let keep = match self.stack.get(best.agree) {
            Some(f) => f.pos as usize,
            None => self.companions.len() + self.stack.len(),
        };
        best.prefix.order.truncate(keep);
        for (j, f) in self.stack.iter().enumerate().skip(best.agree) {
            let start = f.pos as usize - j;
            let end = start + f.companions as usize;
            best.prefix
                .order
                .extend_from_slice(&self.companions[start..end]);
            best.prefix.order.push(f.op);
        }
        best.agree = self.stack.len();
        best.prefix.state = self.state;
        best.prefix.outgrown = best.outgrown;
    }
}
