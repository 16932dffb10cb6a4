//! A serializability checker for list-append transaction histories, after Jepsen's
//! Elle (Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from Experimental
//! Observations", VLDB 2020) — `synod check-history FILE --model list-append`.
//!
//! Transactions append unique elements to lists and read whole lists, so every read
//! reveals the order of all appends before it. From the reads of committed
//! transactions the checker recovers each key's version order, infers ww/wr/rw
//! dependencies between transactions, and reports impossible reads (G1a, G1b,
//! incompatible orders, duplicate or never-appended elements) and dependency cycles
//! classified as G0, G1c, G-single or G2. Any finding means no serial order explains
//! the history. Real-time order is not used: the promise checked is serializability,
//! not strict serializability.
//!
//! # Layout
//! - [`history`] — the JSON-lines format and its parser (errors name the line)
//! - `infer` — version orders, the dependency graph and the non-cycle findings
//! - `graph` — Tarjan components and the per-class BFS cycle search
//! - [`anomaly`] — edge kinds, anomaly classes, anomalies
//! - [`report`] — [`TxnReport`]: verdict, text and JSON
//! - [`cli`] — the `check-history --model list-append` command

pub mod anomaly;
pub mod cli;
mod graph;
pub mod history;
mod infer;
pub mod report;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Instant;

pub use anomaly::{Anomaly, AnomalyClass, EdgeKind, ReadSeen, Step};
pub use cli::{run_cli, TxnCliArgs};
pub use history::{
    ElemId, KeyId, MicroOp, Txn, TxnErrorKind, TxnHistory, TxnHistoryError, TxnId, TxnStatus,
};
pub use report::{TxnCounts, TxnReport, TxnSummary, TxnVerdict};

/// Checks `history` for serializability (list-append, Elle's inference).
pub fn check(history: &TxnHistory) -> TxnReport {
    let start = Instant::now();
    let inferred = infer::infer(history);
    let mut anomalies = inferred.findings;
    for mut raw in graph::find_cycles(&inferred.graph) {
        // Start at the smallest transaction, so a cycle reads the same however found.
        let first = (0..raw.len()).min_by_key(|&i| raw[i].0).unwrap_or(0);
        raw.rotate_left(first);
        let steps: Vec<Step> = raw
            .iter()
            .map(|(from, e)| Step {
                from: TxnId(*from),
                kind: e.kind,
                key: history.key(e.key).clone(),
                to: TxnId(e.to),
            })
            .collect();
        let class = AnomalyClass::of_cycle(&steps);
        anomalies.push(Anomaly::Cycle { class, steps });
    }
    // Stable: within a class, findings stay in key order and cycles in the order of
    // their components' smallest transaction.
    anomalies.sort_by_key(Anomaly::class);
    let involved: BTreeMap<TxnId, TxnSummary> = anomalies
        .iter()
        .flat_map(Anomaly::txns)
        .map(|t| (t, TxnSummary::of(history, t)))
        .collect();
    let mut counts = TxnCounts {
        edges: inferred.graph.counts(),
        ..TxnCounts::default()
    };
    for t in &history.txns {
        match t.status {
            TxnStatus::Ok => counts.ok += 1,
            TxnStatus::Fail => counts.fail += 1,
            TxnStatus::Info => counts.info += 1,
        }
    }
    let verdict = if anomalies.is_empty() {
        TxnVerdict::Valid
    } else {
        TxnVerdict::Invalid
    };
    TxnReport {
        verdict,
        anomalies,
        involved,
        counts,
        elapsed: start.elapsed(),
    }
}
