//! Running protocols by name (through the [registry](crate::registry)), with panic
//! capture so a protocol `assert!` becomes a reported violation with its seed.

use crate::checker;
use crate::registry;
use crate::sim::config::SimConfig;
use crate::sim::{RunOutcome, SimStats, Violation, ViolationKind};
use crate::workload::ClientStats;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;
use synod_core::Time;

/// Checks the run's recorded history for linearizability (the `kv` model) and records
/// a [`ViolationKind::Linearizability`] violation if it is not. A run that already
/// failed, or recorded no history, is left as it is.
pub fn check_linearizability(outcome: &mut RunOutcome, timeout: Duration) {
    if outcome.violation.is_some() || outcome.history.is_empty() {
        return;
    }
    if crate::history::is_transactional(&outcome.history) {
        return check_transactions(outcome);
    }
    let events = std::mem::take(&mut outcome.history);
    check_events(outcome, &events, timeout);
    outcome.history = events;
}

/// Checks the run's history in the model of ZooKeeper's local reads: the writes
/// are linearizable, and every read returns the state after some prefix of them
/// that was current at an instant before the read returned — the history is checked
/// for linearizability with each answered read's invocation moved to the start (and
/// to a process of its own), reads left unanswered dropped. Stale reads pass, a read
/// of a value never committed or of an order no prefix had does not.
pub fn check_prefix_reads(outcome: &mut RunOutcome, timeout: Duration) {
    if outcome.violation.is_some() || outcome.history.is_empty() {
        return;
    }
    if crate::history::is_transactional(&outcome.history) {
        return check_transactions(outcome);
    }
    let events = crate::history::reads_from_the_start(&outcome.history);
    check_events(outcome, &events, timeout);
}

/// A history judged during the run instead (vvsync: convergence and lost updates
/// from the clients' audit and the final replicas, `SimProtocol::judge`): nothing
/// left to check here.
pub fn judged_in_the_run(outcome: &mut RunOutcome, timeout: Duration) {
    let _ = (outcome, timeout);
}

/// Checks a transaction history: list-append histories for serializability
/// ([`crate::txn`], through the same JSON lines `--history` writes); the bank's
/// reads were judged as they were answered ([`crate::workload::Ops::check`]).
fn check_transactions(outcome: &mut RunOutcome) {
    let appends = outcome.history.iter().any(|e| match &e.value {
        crate::history::Value::Txn(micros) => micros.iter().any(|m| m.0 == "append"),
        _ => false,
    });
    if !appends {
        return;
    }
    let mut lines = Vec::new();
    let parsed = crate::history::write_jsonl(&outcome.history, &mut lines)
        .map_err(|e| e.to_string())
        .and_then(|()| crate::txn::TxnHistory::parse_jsonl(&lines[..]).map_err(|e| e.to_string()));
    let message = match parsed {
        Err(e) => format!("recorded transaction history is malformed: {e}"),
        Ok(history) => {
            let report = crate::txn::check(&history);
            if report.verdict == crate::txn::TxnVerdict::Valid {
                return;
            }
            report.explain()
        }
    };
    outcome.violation = Some(Violation {
        kind: ViolationKind::Serializability,
        at: outcome.end,
        message,
    });
}

fn check_events(
    outcome: &mut RunOutcome,
    events: &[crate::history::HistoryEvent],
    timeout: Duration,
) {
    let history = match crate::history::to_checker(events) {
        Ok(h) => h,
        Err(message) => {
            outcome.violation = Some(Violation {
                kind: ViolationKind::Linearizability,
                at: outcome.end,
                message,
            });
            return;
        }
    };
    let options = checker::Options {
        timeout: Some(timeout),
        threads: NonZeroUsize::new(1),
    };
    match checker::check(&history, checker::Model::Kv, options) {
        Ok(r) if r.verdict == checker::Verdict::Linearizable => {}
        Ok(r) if r.verdict == checker::Verdict::Unknown => {
            tracing::warn!(seed = outcome.seed, "linearizability check timed out");
        }
        Ok(r) => {
            outcome.violation = Some(Violation {
                kind: ViolationKind::Linearizability,
                at: outcome.end,
                message: r.explain(),
            })
        }
        Err(e) => {
            outcome.violation = Some(Violation {
                kind: ViolationKind::Linearizability,
                at: outcome.end,
                message: format!("history does not fit the kv model: {e}"),
            })
        }
    }
}

/// Runs protocol `name` under `cfg`. A panic inside the run (a protocol's safety
/// `assert!`) is caught and reported as a [`ViolationKind::Panic`].
pub fn run_protocol(name: &str, mut cfg: SimConfig) -> Result<RunOutcome, String> {
    let seed = cfg.seed;
    let protocol = registry::get(name)?;
    (protocol.fit_workload)(&mut cfg.workload).map_err(|e| format!("{name}: {e}"))?;
    if cfg.nodes < protocol.min_nodes {
        return Err(format!(
            "{name} needs at least {} nodes, not {} (--nodes)",
            protocol.min_nodes, cfg.nodes
        ));
    }
    let run = protocol.simulate;
    match panic::catch_unwind(AssertUnwindSafe(|| run(cfg))) {
        Ok(outcome) => Ok(outcome),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic payload".to_string());
            Ok(panicked(seed, message))
        }
    }
}

fn panicked(seed: u64, message: String) -> RunOutcome {
    RunOutcome {
        seed,
        digest: "-".into(),
        end: Time::ZERO,
        main_end: Time::ZERO,
        stats: SimStats::default(),
        clients: ClientStats::empty(),
        history: Vec::new(),
        violation: Some(Violation {
            kind: ViolationKind::Panic,
            at: Time::ZERO,
            message,
        }),
        metrics: Vec::new(),
        space_time: None,
    }
}
