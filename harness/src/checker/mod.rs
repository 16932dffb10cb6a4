//! Linearisability checker for recorded histories (Jepsen/Knossos format).
//!
//! Input is a history of `invoke` / `ok` / `fail` / `info` events
//! ([`History::parse_jsonl`] for JSON lines, [`HistoryBuilder`] or
//! [`History::from_events`] in memory); [`check`] decides whether it is
//! linearisable for a [`Model`] (`register`, `cas-register`, `kv`) and
//! explains a violation ([`Failure`], text, JSON, and an SVG timeline via
//! [`write_svg`]). [`run_cli`] is the `check-history` command.
//!
//! Semantics: `ok` took effect between invoke and completion; `fail` did not
//! happen and is dropped; `info` (and an invoke never completed) may take
//! effect at any point after its invoke or never, i.e. it returns at
//! +infinity. An info read constrains nothing and is dropped.
//!
//! # Algorithm
//! The history is split by key (P-compositionality, Horn & Kroening: a
//! history over independent objects is linearisable iff each object's
//! sub-history is), and each key is searched with the Wing & Gong algorithm
//! as improved by Lowe: a depth-first search over a linked list of call and
//! return entries, lifting a candidate op out of the list when its step is
//! legal, with a memo of visited (linearised-set, model-state)
//! configurations, as in Porcupine (see `search.rs`).
//!
//! # Improvements over the plain algorithm
//! Search reductions (sound: each is argued in the code; the brute-force
//! property tests in `proptests.rs` check them against the definition):
//! - **Reads placed without branching** (`search.rs`): a legal read among
//!   the candidates is linearised at once and never retried another way.
//! - **Invisible writes in bulk** (`observe.rs`): a write whose value no
//!   unplaced op observes is never branched on alone; all such candidates
//!   are placed together before the next write. Which writes are invisible
//!   is recomputed as observers are placed.
//! - **Starvation cut-off** (`observe.rs`): a configuration is dead as soon
//!   as an ok op observes a value that is neither current nor produced by
//!   any unplaced op (O(1) per step from counters).
//! - **Blocker check**: the op that returns first needs its value from one
//!   of the current candidates, or the configuration is dead.
//! - **Strings only grow** (`growth.rs`): with appends, a get whose value
//!   the current state is no prefix of, and before whose return no put,
//!   delete or cas that sets a prefix of it can run, is dead, and so is the
//!   configuration. Checked for candidate gets and for gets a little further
//!   down the entry list, so concurrent appends are not tried in every
//!   order.
//! - **Unobservable strings** (`growth.rs`): a string no pending get or cas
//!   invoked before the next reset returns can ever read is memoised as one
//!   state, so the orders of appends a later put overwrites count once.
//! - **Early success**: once every unplaced ok op is a write, they can all
//!   go last (writes are legal in any state).
//! - **Info ops off the main list**: no return entry, own list, tried only
//!   after the ok candidates and only if invoked before the earliest pending
//!   return; info reads, and info writes/cas whose value nobody observes, are
//!   dropped before the search — with appends, info puts/cas whose value no
//!   observed string starts with and info appends whose piece none contains
//!   (`observe.rs`); `fail` ops are dropped too.
//!
//! Refutations before the search (`refute.rs`, partitions without appends;
//! each an O(n log n) proof of a violation, checked against the brute-force
//! checker in `proptests.rs`):
//! - **Overwritten**: an ok read or cas needs a value v, but every op that
//!   sets v (and the initial state, if it is v) is followed in real time by
//!   an ok op setting another value that returns before the observer is
//!   invoked, or is invoked only after the observer returns. A stale read,
//!   a lost write.
//! - **Overdrawn**: more ok cas ops change v to something else than ops set
//!   v (the initial state counts once): each needs its own production of v.
//!   Two cas ops succeeding from one write.
//!
//! A refuted key is still searched, for the report's prefix only, within a
//! step budget proportional to its size (`partition.rs`,
//! `EXPLAIN_STEPS_PER_OP`); the deepest prefix reached is reported with the
//! refutation as its [`Cause`]. So the explanation never costs more than a
//! small multiple of checking the same key without the bug. With appends,
//! the cause is the get the growth cut found out of reach, if any.
//!
//! Together these take a 100-client single-key cas-register history from
//! seconds at 200 ops (plain Wing–Gong/Lowe with memo, measured during
//! development) to milliseconds at 10,000 ops.
//!
//! Engineering:
//! - **Interned states**: values are interned to `u32`; after the split each
//!   partition is one register, so a model state is a `Copy` `u32`. Strings
//!   built by `append` are never materialised (`states.rs`): a rope node
//!   with its length and polynomial hash, built in O(1) per (state, suffix),
//!   canonical (equal strings, equal ids, confirmed on the text), and
//!   compared with a get's value piece by piece, memoised.
//! - **Zobrist-hashed linearised set**, updated in O(1) per lift/unlift.
//! - **Trimmed cache keys**: a visited set is stored as (count of leading
//!   all-ones words, ragged middle) in one arena, with an exact compare.
//! - **Parallel partitions, largest first**, on `available_parallelism`
//!   scoped threads pulling from an atomic work queue.
//! - **Early exit**: once a partition fails, every other search stops (the
//!   verdict is known). The verdict never depends on thread timing; with
//!   several failing keys, which one is explained may (not with one thread).
//! - **Lazy best-prefix snapshots**: the longest linearisable prefix is
//!   copied only when the search first backtracks from a new maximum.
//! - **Timeouts** are polled every 4096 search steps; a timed-out partition
//!   is `Unknown`, never a guess. A violation found elsewhere still wins.
//! - **Compact history**: one 48-byte record per op, interned keys/values.
//!
//! # Limits
//! - Append partitions (kv with `append`) get the read, blocker, growth and
//!   info reductions, not the invisible-write and starvation ones nor the
//!   refutations: an append can build strings no one wrote, so value
//!   bookkeeping is off there. The growth cut is void while a reset that
//!   sets a prefix of the get's value can still run before it, so one key
//!   shared by many clients mixing puts with appends can still take seconds
//!   (50 clients on one key with one put in ten ops: not decided in 20 s).
//! - Without a refutation (appends, or a violation neither refutation
//!   names, e.g. one needing several reads together), proving a violation
//!   still means exhausting every configuration before it; at high
//!   concurrency that can take seconds (see the timeout).

mod cache;
mod cause;
mod cli;
mod growth;
pub(crate) mod history;
mod intern;
mod links;
mod model;
mod observe;
mod partition;
mod refute;
mod report;
mod search;
mod states;
mod svg;
pub(crate) use svg::esc as xml_escape;
pub mod synth;
mod value;

#[cfg(test)]
mod brute;
#[cfg(test)]
mod early_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

pub use cause::{Cause, Overwrite};
pub use cli::{run_cli, CheckHistoryArgs};
pub use history::{
    Event, EventKind, History, HistoryBuilder, HistoryError, HistoryErrorKind, Op, Value,
};
pub use model::{Model, ParseModelError};
pub use report::{CheckResult, Failure, OpStatus, OpSummary, Role, Verdict, WindowOp};
pub use svg::{render_svg, write_svg};

use partition::{run_all, split, PartResult, RunConfig};
use search::StopReason;

/// Knobs of [`check`]. The default has no timeout and uses every core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Give up after this long; the verdict is then `Unknown`.
    pub timeout: Option<Duration>,
    /// Worker threads; `None` means `std::thread::available_parallelism`.
    pub threads: Option<NonZeroUsize>,
}

/// Checks `history` against `model`.
///
/// Errors only if the history does not fit the model (an `f` the model
/// lacks, a kv op without key, a non-string kv value), naming the line.
pub fn check(
    history: &History,
    model: Model,
    options: Options,
) -> Result<CheckResult, HistoryError> {
    let start = Instant::now();
    model::validate(history, model)?;
    let deadline = options.timeout.and_then(|t| start.checked_add(t));
    let parts = split(history);
    let threads = options
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let cfg = RunConfig { threads, deadline };
    let results = run_all(history, model, &parts, &cfg);
    let mut out = CheckResult {
        verdict: Verdict::Linearizable,
        model,
        ops: history.len(),
        partitions: parts.len(),
        elapsed: Duration::ZERO,
        failure: None,
        unknown_reason: None,
    };
    // Results are in rank order: report the lowest-ranked failure found.
    for r in results {
        match r {
            PartResult::Ok => {}
            PartResult::Failed(f) => {
                out.verdict = Verdict::NotLinearizable;
                out.failure = Some(*f);
                out.unknown_reason = None;
                break;
            }
            PartResult::Unknown(why) => {
                out.verdict = Verdict::Unknown;
                out.unknown_reason
                    .get_or_insert_with(|| describe(why, options.timeout));
            }
        }
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

fn describe(why: StopReason, timeout: Option<Duration>) -> String {
    match (why, timeout) {
        (StopReason::Timeout, Some(t)) => format!("timed out after {t:?}"),
        (StopReason::Timeout, None) => "timed out".into(),
        (StopReason::Cancelled, _) => "cancelled".into(),
        (StopReason::TooLarge, _) => "a key has more than 2^31 operations".into(),
        (StopReason::WorkerPanicked, _) => "internal error: a worker thread panicked".into(),
        // Only refuted keys have a budget, and they are failures.
        (StopReason::Budget, _) => "internal error: a step budget ran out".into(),
        (StopReason::Disagreement, _) => {
            "internal error: a refutation and the search disagree".into()
        }
    }
}
