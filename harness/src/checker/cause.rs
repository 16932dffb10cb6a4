//! The direct reason a key fails, when the checker has one: a get that
//! appends have outgrown (`growth.rs`), a value every producer of which is
//! overwritten before it is observed, or a value consumed by more cas ops
//! than produce it (`refute.rs`). Reported beside the longest prefix.

use std::fmt::Write as _;

use serde::Serialize;

use super::history::{History, Value};
use super::refute::Refutation;
use super::report::OpSummary;
use super::search::PartOp;

/// Ops listed per part of a cause (the rest are counted).
const LISTED_MAX: usize = 8;

/// Why a key cannot be linearised, in terms of a few ops.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    /// With appends: an ok get the state after the prefix is no prefix of,
    /// while no put, delete or cas can come before it returns, so it can
    /// never be satisfied — the prefix placed an append its value lacks (a
    /// stale or corrupted read, typically).
    Outgrown {
        /// The get.
        get: OpSummary,
    },
    /// `observer` needs `value` current, but every op that sets it (and the
    /// initial state, if it is that value) is followed by an op that sets
    /// another value and returns before `observer` is invoked — in real
    /// time, or because it is a cas from the value's only source — or is
    /// invoked only after `observer` returns. A stale read, or a lost write.
    Overwritten {
        /// The read or cas.
        observer: OpSummary,
        /// The value it needs.
        value: Value,
        /// Each producer and what overwrites it (the first `LISTED_MAX`).
        producers: Vec<Overwrite>,
        /// How many producers there are in all.
        producers_total: usize,
    },
    /// More ok cas ops change `value` to something else than ops set it:
    /// each needs its own production of it (the initial state counts once).
    /// Two cas ops that both succeeded from the same value, typically.
    Overdrawn {
        /// The value.
        value: Value,
        /// The cas ops (the first `LISTED_MAX`).
        consumers: Vec<OpSummary>,
        /// How many in all.
        consumers_total: usize,
        /// Ops that set it (the first `LISTED_MAX`).
        producers: Vec<OpSummary>,
        /// How many in all.
        producers_total: usize,
        /// Whether the initial state is that value.
        initial: bool,
    },
}

/// One producer of an overwritten value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overwrite {
    /// The op that sets the value; `None`: the initial state.
    pub producer: Option<OpSummary>,
    /// An op that must come between it and the observer and sets another
    /// value; `None`: the producer is invoked after the observer returns.
    pub by: Option<OpSummary>,
}

/// Builds the public cause; `ops` are the partition's, `init` its initial
/// state.
pub(crate) fn of_refutation(h: &History, ops: &[PartOp], r: &Refutation, init: u32) -> Cause {
    let summary = |i: u32| OpSummary::of(h, ops[i as usize].op);
    match r {
        Refutation::Overwritten {
            observer,
            value,
            producers,
        } => Cause::Overwritten {
            observer: summary(*observer),
            value: h.value(*value),
            producers: producers
                .iter()
                .take(LISTED_MAX)
                .map(|&(p, w)| Overwrite {
                    producer: p.map(summary),
                    by: w.map(summary),
                })
                .collect(),
            producers_total: producers.len(),
        },
        Refutation::Overdrawn {
            value,
            consumers,
            producers,
        } => Cause::Overdrawn {
            value: h.value(*value),
            consumers: consumers
                .iter()
                .take(LISTED_MAX)
                .map(|&i| summary(i))
                .collect(),
            consumers_total: consumers.len(),
            producers: producers
                .iter()
                .take(LISTED_MAX)
                .map(|&i| summary(i))
                .collect(),
            producers_total: producers.len(),
            initial: *value == init,
        },
    }
}

/// Partition ops a refutation names, to show them in the window.
pub(crate) fn ops_of(r: &Refutation) -> Vec<u32> {
    match r {
        Refutation::Overwritten {
            observer,
            producers,
            ..
        } => std::iter::once(*observer)
            .chain(
                producers
                    .iter()
                    .take(LISTED_MAX)
                    .flat_map(|&(p, w)| p.into_iter().chain(w)),
            )
            .collect(),
        Refutation::Overdrawn {
            consumers,
            producers,
            ..
        } => consumers
            .iter()
            .take(LISTED_MAX)
            .chain(producers.iter().take(LISTED_MAX))
            .copied()
            .collect(),
    }
}

/// The cause as indented lines of the text report.
pub(crate) fn explain(s: &mut String, cause: &Cause) {
    match cause {
        Cause::Outgrown { get } => {
            let _ = writeln!(
                s,
                "  why: this get can never be satisfied now: the state is no prefix of what \
                 it read, and only appends can come before it returns:"
            );
            let _ = writeln!(s, "    {get}");
        }
        Cause::Overwritten {
            observer,
            value,
            producers,
            producers_total,
        } => {
            let _ = writeln!(
                s,
                "  why: this op needs {value}, but whatever sets {value} is overwritten \
                 before it is invoked:"
            );
            let _ = writeln!(s, "    {observer}");
            for o in producers {
                let what = o
                    .producer
                    .as_ref()
                    .map_or("the initial state".to_string(), ToString::to_string);
                match &o.by {
                    Some(w) => {
                        let _ = writeln!(s, "    {what}\n      is followed by {w}");
                    }
                    None => {
                        let _ = writeln!(s, "    {what}\n      is invoked after it returns");
                    }
                }
            }
            more(s, producers.len(), *producers_total);
        }
        Cause::Overdrawn {
            value,
            consumers,
            consumers_total,
            producers,
            producers_total,
            initial,
        } => {
            let init = if *initial {
                " and the initial state"
            } else {
                ""
            };
            let (ops, set) = match (*producers_total, *initial) {
                (1, false) => ("op", "sets"),
                _ => ("ops", "set"),
            };
            let _ = writeln!(
                s,
                "  why: {consumers_total} ok cas ops change {value} to another value, each \
                 needing its own {value}, but only {producers_total} {ops}{init} {set} it:"
            );
            for c in consumers {
                let _ = writeln!(s, "    {c}");
            }
            more(s, consumers.len(), *consumers_total);
            if !producers.is_empty() {
                let _ = writeln!(s, "  set by:");
            }
            for p in producers {
                let _ = writeln!(s, "    {p}");
            }
            more(s, producers.len(), *producers_total);
        }
    }
}

fn more(s: &mut String, shown: usize, total: usize) {
    if total > shown {
        let _ = writeln!(s, "    ... and {} more", total - shown);
    }
}
