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
    let history = match crate::history::to_checker(&outcome.history) {
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
pub fn run_protocol(name: &str, cfg: SimConfig) -> Result<RunOutcome, String> {
    let seed = cfg.seed;
    let run = registry::get(name)?.simulate;
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
    }
}
