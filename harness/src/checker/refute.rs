//! Refutations: necessary conditions of every linearisation, checked on a
//! whole partition before the search, in O(n log n).
//!
//! Proving a violation by search means exhausting every configuration that
//! could come before it. At high concurrency that is exponential in the
//! width of the window: a lost cas or a stale read among 100 concurrent
//! clients took seconds, against milliseconds for the same history without
//! the bug. Most real violations break one of two counting or real-time
//! facts that need no search at all:
//! - **Overwritten**: an op observing value u (a read of u, a cas expecting
//!   u) needs some producer p of u (a write of u, a cas to u, or the initial
//!   state) to be the last one placed before it. If for every p some ok
//!   state-changing op w to another value has p.ret < w.call and
//!   w.ret < observer.call, then w sits between p and the observer in every
//!   linearisation, so p is never the last producer before it; a p invoked
//!   after the observer returns cannot precede it either. No p left: no
//!   linearisation. (The stale read and the lost write.) When u has a
//!   single source (one producer, or only the initial state), an ok cas
//!   from u to another value that returns before the observer is invoked
//!   is such a w too, without real-time order to the source: it needs u,
//!   so it comes after the only op that makes u. (The lost cas, read
//!   after it returned.)
//! - **Overdrawn**: an ok cas from u to another value consumes u: the state
//!   is u just before it and not after. Two consumers need a production of
//!   u between them, so there can be no more consumers than producers
//!   (counting the initial state). (The lost cas: two cas ops succeeding
//!   from the same value.)
//!
//! Both need every state change to come from writes and cas, so partitions
//! with appends are skipped (`Prep::track`). A refuted partition still gets
//! a search, bounded, for the report's prefix (`partition.rs`).

use std::collections::HashMap;

use super::model::Step;
use super::search::PartOp;

/// Producers of one value beyond which the overwritten test skips it (a
/// value written that often is hardly ever refuted this way).
const PRODUCERS_MAX: usize = 64;
/// Candidates the overwriter query scans past an excluded minimum.
const SCAN_MAX: usize = 256;

/// Why a partition cannot be linearisable (op indices are partition ops).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refutation {
    /// Every producer of what `observer` observes is overwritten before it:
    /// (producer, `None` for the initial state; the op that overwrites it,
    /// `None` if the producer is invoked only after the observer returns).
    Overwritten {
        observer: u32,
        value: u32,
        producers: Vec<(Option<u32>, Option<u32>)>,
    },
    /// More ok cas ops consume `value` than ops produce it.
    Overdrawn {
        value: u32,
        consumers: Vec<u32>,
        producers: Vec<u32>,
    },
}

/// The first refutation found, if any; `ops` sorted by call time.
pub(crate) fn refute(ops: &[PartOp], track: bool, init: u32) -> Option<Refutation> {
    if !track {
        return None;
    }
    let producers = producers_by_value(ops);
    let consumers = consumers_by_value(ops);
    overdrawn(&producers, &consumers, init)
        .or_else(|| overwritten(ops, &producers, &consumers, init))
}

/// The value an op sets, if it changes the state (a cas to its own expected
/// value changes nothing).
fn produced(op: &PartOp) -> Option<u32> {
    match op.step {
        Step::Write(v) => Some(v),
        Step::Cas(e, n) if e != n => Some(n),
        _ => None,
    }
}

/// The value an op needs to be current, if any.
fn observed(op: &PartOp) -> Option<u32> {
    match op.step {
        Step::Read(v) | Step::Cas(v, _) => Some(v),
        _ => None,
    }
}

fn producers_by_value(ops: &[PartOp]) -> HashMap<u32, Vec<u32>> {
    let mut by: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, op) in (0u32..).zip(ops) {
        if let Some(v) = produced(op) {
            by.entry(v).or_default().push(i);
        }
    }
    by
}

/// Ok cas ops from a value to another, by the value they consume, in call
/// order.
fn consumers_by_value(ops: &[PartOp]) -> HashMap<u32, Vec<u32>> {
    let mut by: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, op) in (0u32..).zip(ops) {
        if let (Step::Cas(e, n), false) = (op.step, op.is_info()) {
            if e != n {
                by.entry(e).or_default().push(i);
            }
        }
    }
    by
}

fn overdrawn(
    producers: &HashMap<u32, Vec<u32>>,
    consumers: &HashMap<u32, Vec<u32>>,
    init: u32,
) -> Option<Refutation> {
    let none = Vec::new();
    let mut found: Vec<(u32, Vec<u32>)> = consumers
        .iter()
        .map(|(&v, c)| (v, c.clone()))
        .filter(|(v, c)| {
            let made = producers.get(v).map_or(0, Vec::len) + usize::from(*v == init);
            c.len() > made
        })
        .collect();
    // Deterministic: the value whose second consumer comes first.
    found.sort_by_key(|(_, c)| c[1.min(c.len() - 1)]);
    let (value, consumers) = found.into_iter().next()?;
    let producers = producers.get(&value).unwrap_or(&none).clone();
    Some(Refutation::Overdrawn {
        value,
        consumers,
        producers,
    })
}

/// Ok state changers in call order, with the minimum return time (and
/// where it is) over each suffix, to find an op invoked after a time that
/// returns before another.
struct Changers {
    /// Partition indices, in call order.
    ids: Vec<u32>,
    calls: Vec<u64>,
    /// `suffix_min[k]`: position (in `ids`) of the least return among k..
    suffix_min: Vec<usize>,
}

impl Changers {
    fn new(ops: &[PartOp]) -> Self {
        let ids: Vec<u32> = (0u32..)
            .zip(ops)
            .filter(|(_, o)| !o.is_info() && produced(o).is_some())
            .map(|(i, _)| i)
            .collect();
        let calls = ids.iter().map(|&i| ops[i as usize].call).collect();
        let mut suffix_min = vec![0; ids.len()];
        for k in (0..ids.len()).rev() {
            let ret = |p: usize| ops[ids[p] as usize].ret;
            suffix_min[k] = match suffix_min.get(k + 1) {
                Some(&m) if ret(m) < ret(k) => m,
                _ => k,
            };
        }
        Changers {
            ids,
            calls,
            suffix_min,
        }
    }

    /// An ok op to a value other than `value`, other than `observer`,
    /// invoked after `after` (`None`: from the start) and returned before
    /// `before`.
    fn overwriter(
        &self,
        ops: &[PartOp],
        after: Option<u64>,
        before: u64,
        value: u32,
        observer: u32,
    ) -> Option<u32> {
        let from = after.map_or(0, |t| self.calls.partition_point(|&c| c <= t));
        let &m = self.suffix_min.get(from)?;
        let ok = |p: usize| {
            let i = self.ids[p];
            let op = &ops[i as usize];
            op.ret < before && i != observer && produced(op) != Some(value)
        };
        if ok(m) {
            return Some(self.ids[m]);
        }
        if ops[self.ids[m] as usize].ret >= before {
            return None;
        }
        // The earliest return is excluded: scan, a bounded distance.
        (from..self.ids.len())
            .take_while(|&p| self.calls[p] < before)
            .take(SCAN_MAX)
            .find(|&p| ok(p))
            .map(|p| self.ids[p])
    }
}

/// An ok consumer of `value` other than `observer` that returns before
/// `before`, if `value` has a single source (one producer, or only the
/// initial state): it must come after that source.
fn consumer_between(
    ops: &[PartOp],
    consumers: Option<&Vec<u32>>,
    sources: usize,
    before: u64,
    observer: u32,
) -> Option<u32> {
    if sources != 1 {
        return None;
    }
    consumers?
        .iter()
        .copied()
        .filter(|&c| c != observer && ops[c as usize].ret < before)
        .min_by_key(|&c| ops[c as usize].ret)
}

fn overwritten(
    ops: &[PartOp],
    producers: &HashMap<u32, Vec<u32>>,
    consumers: &HashMap<u32, Vec<u32>>,
    init: u32,
) -> Option<Refutation> {
    let changers = Changers::new(ops);
    let none = Vec::new();
    let mut best: Option<(u64, Refutation)> = None;
    for (r, op) in (0u32..).zip(ops) {
        let (Some(value), false) = (observed(op), op.is_info()) else {
            continue;
        };
        if best.as_ref().is_some_and(|(ret, _)| *ret <= op.ret) {
            continue;
        }
        let made = producers.get(&value).unwrap_or(&none);
        if made.len() > PRODUCERS_MAX {
            continue;
        }
        let sources = made.len() + usize::from(value == init);
        let mut refuted = Vec::with_capacity(sources);
        let initial = (value == init).then_some(None);
        for p in initial.into_iter().chain(made.iter().map(|&p| Some(p))) {
            let after = p.map(|p| ops[p as usize].ret);
            if p.is_some_and(|p| ops[p as usize].call > op.ret) {
                refuted.push((p, None)); // invoked after the observer returned
                continue;
            }
            let w = changers
                .overwriter(ops, after, op.call, value, r)
                .or_else(|| consumer_between(ops, consumers.get(&value), sources, op.call, r));
            match w {
                Some(w) => refuted.push((p, Some(w))),
                None => break,
            }
        }
        if refuted.len() == sources {
            let found = Refutation::Overwritten {
                observer: r,
                value,
                producers: refuted,
            };
            best = Some((op.ret, found));
        }
    }
    best.map(|(_, r)| r)
}
