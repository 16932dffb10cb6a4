//! The verdict of a list-append check, as text ([`TxnReport::explain`]) and JSON
//! ([`TxnReport::to_json`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::anomaly::{list_label, Anomaly, AnomalyClass};
use super::history::{TxnHistory, TxnId, TxnStatus};

/// How many anomalies of one class the text names (the JSON has them all).
pub const EXPLAIN_PER_CLASS_MAX: usize = 10;

/// Serializable or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnVerdict {
    /// No anomaly: some serial order explains every committed transaction.
    Valid,
    /// At least one anomaly.
    Invalid,
}

impl TxnVerdict {
    /// `serializable` / `not-serializable`.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnVerdict::Valid => "serializable",
            TxnVerdict::Invalid => "not-serializable",
        }
    }

    /// The CLI exit code: 0 valid, 1 invalid.
    pub fn exit_code(self) -> i32 {
        match self {
            TxnVerdict::Valid => 0,
            TxnVerdict::Invalid => 1,
        }
    }
}

/// A transaction as the report shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnSummary {
    /// Its id.
    pub id: TxnId,
    /// The client process.
    pub process: u64,
    /// How it ended.
    pub status: TxnStatus,
    /// Line of its invoke.
    pub invoke_line: u64,
    /// Line of its completion, if any.
    pub complete_line: Option<u64>,
    /// Its micro-ops as JSON (`["append","x",3]`, `["r","y",[1,2]]`).
    pub ops: Vec<Json>,
}

impl TxnSummary {
    pub(crate) fn of(h: &TxnHistory, id: TxnId) -> TxnSummary {
        let t = h.txn(id);
        TxnSummary {
            id,
            process: t.process,
            status: t.status,
            invoke_line: t.invoke_line,
            complete_line: t.complete_line,
            ops: t.ops.iter().map(|op| h.op_json(op)).collect(),
        }
    }

    fn lines(&self) -> String {
        match self.complete_line {
            Some(c) => format!("lines {}-{c}", self.invoke_line),
            None => format!("line {}, never completed", self.invoke_line),
        }
    }
}

/// Counts of what was checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxnCounts {
    /// Transactions that committed.
    pub ok: usize,
    /// Transactions that did not commit.
    pub fail: usize,
    /// Transactions of unknown outcome (including those never completed).
    pub info: usize,
    /// Dependency edges by kind: ww, wr, rw.
    pub edges: [usize; 3],
}

/// The result of [`check`](super::check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnReport {
    /// The verdict.
    pub verdict: TxnVerdict,
    /// Every anomaly, strongest class first.
    pub anomalies: Vec<Anomaly>,
    /// The transactions the anomalies mention.
    pub involved: BTreeMap<TxnId, TxnSummary>,
    /// What was checked.
    pub counts: TxnCounts,
    /// Time the check took.
    pub elapsed: Duration,
}

impl TxnReport {
    /// The strongest class found, if any.
    pub fn strongest(&self) -> Option<AnomalyClass> {
        self.anomalies.first().map(Anomaly::class)
    }

    /// Whether an anomaly of `class` was found.
    pub fn has(&self, class: AnomalyClass) -> bool {
        self.anomalies.iter().any(|a| a.class() == class)
    }

    /// The text report: the verdict on the first line, then one line per anomaly
    /// (at most [`EXPLAIN_PER_CLASS_MAX`] per class), the transactions involved and a
    /// summary.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.verdict.as_str());
        let mut i = 0;
        while i < self.anomalies.len() {
            let class = self.anomalies[i].class();
            let same = self.anomalies[i..]
                .iter()
                .take_while(|a| a.class() == class)
                .count();
            for a in &self.anomalies[i..i + same.min(EXPLAIN_PER_CLASS_MAX)] {
                let _ = writeln!(s, "{a}");
            }
            if same > EXPLAIN_PER_CLASS_MAX {
                let _ = writeln!(s, "{class}: … and {} more", same - EXPLAIN_PER_CLASS_MAX);
            }
            i += same;
        }
        let shown: Vec<&TxnSummary> = self
            .involved
            .values()
            .take(2 * EXPLAIN_PER_CLASS_MAX)
            .collect();
        if !shown.is_empty() {
            let _ = writeln!(s, "transactions:");
        }
        for t in &shown {
            let ops: Vec<String> = t.ops.iter().map(op_label).collect();
            let _ = writeln!(
                s,
                "  {} ({}, process {}, {}): {}",
                t.id,
                t.lines(),
                t.process,
                t.status.as_str(),
                ops.join(" ")
            );
        }
        if self.involved.len() > shown.len() {
            let _ = writeln!(s, "  … and {} more", self.involved.len() - shown.len());
        }
        let c = &self.counts;
        let _ = writeln!(
            s,
            "checked {} transactions ({} ok, {} info, {} fail), {} ww / {} wr / {} rw edges in {} ms",
            c.ok + c.info + c.fail,
            c.ok,
            c.info,
            c.fail,
            c.edges[0],
            c.edges[1],
            c.edges[2],
            self.elapsed.as_millis()
        );
        s
    }

    /// One JSON document.
    pub fn to_json(&self) -> Json {
        let c = &self.counts;
        json!({
            "verdict": self.verdict.as_str(),
            "model": "list-append",
            "strongest": self.strongest().map(AnomalyClass::as_str),
            "anomalies": self.anomalies.iter().map(Anomaly::to_json).collect::<Vec<_>>(),
            "txns": self.involved.values().map(|t| json!({
                "txn": t.id.0,
                "process": t.process,
                "status": t.status.as_str(),
                "invoke_line": t.invoke_line,
                "complete_line": t.complete_line,
                "ops": t.ops,
            })).collect::<Vec<_>>(),
            "counts": {
                "ok": c.ok, "info": c.info, "fail": c.fail,
                "ww": c.edges[0], "wr": c.edges[1], "rw": c.edges[2],
            },
            "elapsed_ms": self.elapsed.as_secs_f64() * 1e3,
        })
    }
}

/// A micro-op for the text report, a long read list elided.
fn op_label(op: &Json) -> String {
    match op.as_array().map(Vec::as_slice) {
        Some([f, k, list]) if list.is_array() => format!("[{f},{k},{}]", list_label(list)),
        _ => op.to_string(),
    }
}
