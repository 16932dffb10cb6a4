//! P-compositionality (Horn & Kroening): a history of independent keys is
//! linearisable iff each key's sub-history is. Partitions are searched in
//! parallel from a shared work queue, largest first so one big key does not
//! start last and dominate the wall time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use super::history::{History, Status, NO_KEY};
use super::model::{Model, Step};
use super::observe::{prepare, Prep};
use super::refute::refute;
use super::report::{build_failure, Failure, Found};
use super::search::{search, Outcome, PartOp, Stop, StopReason, INFINITY};
use super::states::States;

/// Ops of one key, as indices into the history.
pub(crate) struct Partition {
    pub key: u32,
    pub ops: Vec<u32>,
}

/// What one partition's search concluded.
pub(crate) enum PartResult {
    Ok,
    Failed(Box<Failure>),
    Unknown(StopReason),
}

/// Groups ops by key, dropping ops that cannot matter: `fail` ops did not
/// happen, and a read with no `ok` observed nothing. The result is sorted
/// largest first (ties by key, for determinism).
pub(crate) fn split(h: &History) -> Vec<Partition> {
    // Slot `keys.len()` collects ops without a key.
    let no_key = h.keys.len();
    let mut by_key: Vec<Vec<u32>> = vec![Vec::new(); no_key + 1];
    for (i, op) in (0u32..).zip(&h.ops) {
        let dropped = op.status == Status::Fail || (op.f.is_read() && op.status != Status::Ok);
        if !dropped {
            let slot = if op.key == NO_KEY {
                no_key
            } else {
                op.key as usize
            };
            by_key[slot].push(i);
        }
    }
    let mut parts: Vec<Partition> = (0u32..)
        .zip(by_key)
        .filter(|(_, ops)| !ops.is_empty())
        .map(|(k, ops)| Partition {
            key: if k as usize == no_key { NO_KEY } else { k },
            ops,
        })
        .collect();
    parts.sort_by(|a, b| b.ops.len().cmp(&a.ops.len()).then(a.key.cmp(&b.key)));
    parts
}

/// The search's view of a partition's ops, in call order.
pub(crate) fn part_ops(h: &History, p: &Partition, init: u32) -> (Vec<PartOp>, Prep) {
    let mut ops: Vec<PartOp> = p
        .ops
        .iter()
        .map(|&i| {
            let r = &h.ops[i as usize];
            let ret = if r.status == Status::Ok {
                r.return_line
            } else {
                INFINITY
            };
            PartOp::new(r.invoke_line, ret, Step::of(r), i)
        })
        .collect();
    let prep = prepare(&mut ops, init, &h.values);
    (ops, prep)
}

/// Shared settings of a parallel run.
pub(crate) struct RunConfig {
    pub threads: usize,
    pub deadline: Option<Instant>,
}

/// Checks every partition; results are indexed like `parts`.
pub(crate) fn run_all(
    h: &History,
    model: Model,
    parts: &[Partition],
    cfg: &RunConfig,
) -> Vec<PartResult> {
    let next = AtomicUsize::new(0);
    // Raised by the first partition to fail: every other search stops at
    // its next poll, and partitions not yet started are skipped. The verdict
    // is then known; which failing key is explained is the lowest-ranked
    // one that finished, so with several failing keys and several threads
    // it can depend on timing (with one thread it is the first in rank).
    let failed = AtomicBool::new(false);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let rank = next.fetch_add(1, Ordering::Relaxed);
            let Some(p) = parts.get(rank) else { break };
            let stop = Stop {
                deadline: cfg.deadline,
                failed: &failed,
                steps_max: None,
            };
            let r = check_one(h, model, p, &stop);
            if matches!(r, PartResult::Failed(_)) {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((rank, r));
        }
        done
    };
    let threads = cfg.threads.clamp(1, parts.len().max(1));
    let mut results: Vec<Option<PartResult>> = parts.iter().map(|_| None).collect();
    let batches: Vec<_> = if threads == 1 {
        vec![worker()]
    } else {
        thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
            // A panicking worker (a bug) loses its results; those partitions
            // then count as unknown below instead of aborting the check.
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    };
    for (rank, r) in batches.into_iter().flatten() {
        results[rank] = Some(r);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(PartResult::Unknown(StopReason::WorkerPanicked)))
        .collect()
}

/// Search steps per op a refuted partition's search may take to find the
/// report's prefix, and a floor for small partitions: a linearisable
/// partition takes about one to three steps per op, so the explanation
/// costs a small multiple of checking the same history without the bug.
const EXPLAIN_STEPS_PER_OP: u64 = 8;
const EXPLAIN_STEPS_MIN: u64 = 1 << 14;

/// Refutes or searches one partition. A refutation decides the verdict at
/// once (`refute.rs`); the search then only looks for the report's prefix,
/// within a step budget, and keeps the deepest prefix it reached.
fn check_one(h: &History, model: Model, p: &Partition, stop: &Stop) -> PartResult {
    if let Some(why) = stop.check() {
        return PartResult::Unknown(why);
    }
    let init = model.initial_state();
    let (ops, prep) = part_ops(h, p, init);
    let refuted = refute(&ops, prep.track, init);
    let mut stop = *stop;
    if refuted.is_some() {
        let per_op = EXPLAIN_STEPS_PER_OP.saturating_mul(ops.len() as u64);
        stop.steps_max = Some(per_op.max(EXPLAIN_STEPS_MIN));
    }
    let mut states = States::new(&h.values, ops.iter().map(|o| o.step));
    let best = match (search(&ops, &prep, init, &mut states, &stop), &refuted) {
        (Outcome::Linearizable, None) => return PartResult::Ok,
        (Outcome::Unknown(why, _), None) => return PartResult::Unknown(why),
        (Outcome::Violation(best) | Outcome::Unknown(_, best), _) => best,
        (Outcome::Linearizable, Some(r)) => {
            // Both are sound, so this is a bug in one of them.
            debug_assert!(false, "refuted partition searched linearisable: {r:?}");
            return PartResult::Unknown(StopReason::Disagreement);
        }
    };
    let found = Found {
        best: &best,
        refuted: refuted.as_ref(),
        init,
    };
    PartResult::Failed(Box::new(build_failure(h, p.key, &ops, &found, &states)))
}
