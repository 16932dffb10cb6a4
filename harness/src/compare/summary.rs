//! One cell's figures, summed over its seeds.

use super::Profile;
use crate::cli::RunOpts;
use crate::registry::{Consistency, Protocol};
use crate::sim::RunOutcome;
use crate::workload::{WorkloadName, TIMELINE_BUCKET};

/// One side of the scripted split, per [`TIMELINE_BUCKET`], summed over seeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SideTimeline {
    /// Operations completed `ok`.
    pub ok: Vec<u64>,
    /// Attempts timed out or refused.
    pub unserved: Vec<u64>,
}

impl SideTimeline {
    /// The fraction of requests served in bucket `b`: `ok / (ok + unserved)`, 0 when
    /// nothing completed (every client of the side was waiting).
    pub fn served(&self, b: usize) -> f64 {
        let ok = self.ok.get(b).copied().unwrap_or(0) as f64;
        let unserved = self.unserved.get(b).copied().unwrap_or(0) as f64;
        match ok > 0.0 {
            true => ok / (ok + unserved),
            false => 0.0,
        }
    }

    /// The mean served fraction over buckets `range`.
    pub fn mean_served(&self, range: std::ops::Range<usize>) -> f64 {
        let n = range.len().max(1) as f64;
        range.map(|b| self.served(b)).sum::<f64>() / n
    }

    fn add(&mut self, ok: &[u32], unserved: &[u32]) {
        let grow = |v: &mut Vec<u64>, from: &[u32]| {
            if v.len() < from.len() {
                v.resize(from.len(), 0);
            }
            for (a, &b) in v.iter_mut().zip(from) {
                *a += u64::from(b);
            }
        };
        grow(&mut self.ok, ok);
        grow(&mut self.unserved, unserved);
    }
}

/// One protocol × workload × profile, over its seeds.
#[derive(Debug)]
pub struct Cell {
    /// The protocol.
    pub protocol: &'static str,
    /// What it promises.
    pub promise: Consistency,
    /// The workload.
    pub workload: WorkloadName,
    /// The fault profile.
    pub profile: Profile,
    /// Cluster size it ran with.
    pub nodes: u64,
    /// Seeds run.
    pub runs: usize,
    /// Operations completed `ok` (main phase and heal).
    pub ok: u64,
    /// Operations that definitely failed.
    pub fail: u64,
    /// Operations of unknown outcome.
    pub info: u64,
    /// Answered operations of the main phase (the latency samples).
    pub main_answered: u64,
    /// Main-phase virtual seconds, summed over seeds.
    pub main_secs: f64,
    /// Peer messages sent.
    pub messages: u64,
    /// Their encoded bytes.
    pub bytes: u64,
    /// Durable writes (batches persisted).
    pub persists: u64,
    /// Disk syncs.
    pub syncs: u64,
    /// Latency of answered main-phase operations, microseconds.
    pub latency: hdrhistogram::Histogram<u64>,
    /// Times from losing a leader to the next `ok`, nanoseconds, sorted.
    pub recoveries_ns: Vec<u64>,
    /// Per side of the scripted split: `[minority, majority]`.
    pub sides: Option<[SideTimeline; 2]>,
    /// The protocol's own measurements, summed (maxima by maximum).
    pub metrics: Vec<(&'static str, u64)>,
    /// Broken promises, each with its replay command.
    pub violations: Vec<String>,
    /// What of the workload the protocol serves, if a subset.
    pub subset: Option<String>,
}

impl Cell {
    /// Sums `outcomes` (sorted by seed) into a cell.
    pub fn summarise(
        protocol: &'static Protocol,
        workload: WorkloadName,
        profile: Profile,
        opts: &RunOpts,
        outcomes: &[RunOutcome],
    ) -> Cell {
        let mut latency = hdrhistogram::Histogram::new(3).expect("valid precision");
        let mut metrics = Vec::new();
        let mut recoveries_ns = Vec::new();
        let mut sides: Option<[SideTimeline; 2]> = None;
        for o in outcomes {
            let _ = latency.add(&o.clients.latency_us);
            crate::sim::add_metrics(&mut metrics, &o.metrics);
            recoveries_ns.extend(&o.stats.recoveries_ns);
            if let Some(split) = &o.stats.split {
                let sides = sides.get_or_insert_with(Default::default);
                for (c, t) in o.clients.timelines.iter().enumerate() {
                    let side = usize::from(!split.minority[c % split.minority.len()]);
                    sides[side].add(&t.ok, &t.unserved);
                }
            }
        }
        recoveries_ns.sort_unstable();
        let sum = |f: fn(&RunOutcome) -> u64| outcomes.iter().map(f).sum::<u64>();
        Cell {
            protocol: protocol.name,
            promise: protocol.consistency,
            workload,
            profile,
            nodes: opts.nodes,
            runs: outcomes.len(),
            ok: sum(|o| o.clients.ok),
            fail: sum(|o| o.clients.fail),
            info: sum(|o| o.clients.info),
            main_answered: latency.len(),
            main_secs: outcomes
                .iter()
                .map(|o| o.main_end.as_nanos() as f64 / 1e9)
                .sum(),
            messages: sum(|o| o.stats.sent),
            bytes: sum(|o| o.stats.bytes_sent),
            persists: sum(|o| o.stats.persists),
            syncs: sum(|o| o.stats.syncs),
            latency,
            recoveries_ns,
            sides,
            metrics,
            violations: outcomes
                .iter()
                .filter_map(|o| {
                    let v = o.violation.as_ref()?;
                    Some(format!(
                        "seed {} {:?}: {} (replay: synod sim --protocol {} --seed {} {})",
                        o.seed,
                        v.kind,
                        v.message,
                        protocol.name,
                        o.seed,
                        opts.flags()
                    ))
                })
                .collect(),
            subset: super::Plan::subset(protocol, opts),
        }
    }

    /// Answered operations per virtual second of the main phase.
    pub fn throughput(&self) -> f64 {
        match self.main_secs > 0.0 {
            true => self.main_answered as f64 / self.main_secs,
            false => 0.0,
        }
    }

    /// Latency quantile `q`, milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// `count` per operation completed `ok`.
    pub fn per_op(&self, count: u64) -> f64 {
        count as f64 / self.ok.max(1) as f64
    }

    /// Recovery-time quantile `q` in milliseconds, if a leader was ever lost.
    pub fn recovery_ms(&self, q: f64) -> Option<f64> {
        let n = self.recoveries_ns.len();
        let i = ((n as f64 * q) as usize).min(n.checked_sub(1)?);
        Some(self.recoveries_ns[i] as f64 / 1e6)
    }

    /// The judgement in the promised model: `kept`, or how many runs broke it.
    pub fn verdict(&self) -> String {
        match self.violations.len() {
            0 => "kept".into(),
            n => format!("BROKEN {n}"),
        }
    }

    /// A metric summed over the seeds (0 if the protocol does not measure it).
    pub fn metric(&self, name: &str) -> u64 {
        self.metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |&(_, v)| v)
    }

    /// For the bank: runs whose accounts did not add up to what was opened (a
    /// protocol's own measure where it has one — vvsync's ledgers — else the
    /// workload's check of every read of all accounts, a violation), and by how
    /// much in all (`None` where only the check judged).
    pub fn money_off(&self) -> Option<(u64, Option<u64>)> {
        if self.workload != WorkloadName::Bank {
            return None;
        }
        match self.metrics.iter().any(|(n, _)| *n == "bank_runs_off") {
            true => Some((self.metric("bank_runs_off"), Some(self.metric("bank_off")))),
            false => Some((self.violations.len() as u64, None)),
        }
    }

    /// The JSON object of this cell.
    pub fn json(&self) -> serde_json::Value {
        let bucket_ms = TIMELINE_BUCKET.as_millis() as u64;
        let side = |t: &SideTimeline| {
            serde_json::json!({
                "ok": t.ok,
                "unserved": t.unserved,
                "served": (0..t.ok.len().max(t.unserved.len()))
                    .map(|b| round(t.served(b)))
                    .collect::<Vec<_>>(),
            })
        };
        serde_json::json!({
            "protocol": self.protocol,
            "promise": self.promise.to_string(),
            "workload": self.workload.to_string(),
            "profile": self.profile.to_string(),
            "nodes": self.nodes,
            "runs": self.runs,
            "ops": { "ok": self.ok, "fail": self.fail, "info": self.info },
            "throughput_ops_per_virtual_sec": round(self.throughput()),
            "latency_ms": {
                "p50": self.latency_ms(0.5),
                "p99": self.latency_ms(0.99),
                "p999": self.latency_ms(0.999),
                "max": self.latency.max() as f64 / 1000.0,
                "cdf": CDF_POINTS.iter().map(|&q| [q, self.latency_ms(q)]).collect::<Vec<_>>(),
            },
            "per_op": {
                "messages": round(self.per_op(self.messages)),
                "bytes": round(self.per_op(self.bytes)),
                "durable_writes": round(self.per_op(self.persists)),
                "syncs": round(self.per_op(self.syncs)),
            },
            "recovery_ms": {
                "count": self.recoveries_ns.len(),
                "p50": self.recovery_ms(0.5),
                "max": self.recovery_ms(1.0),
            },
            "availability": self.sides.as_ref().map(|[minority, majority]| serde_json::json!({
                "bucket_ms": bucket_ms,
                "minority": side(minority),
                "majority": side(majority),
            })),
            "metrics": crate::cli::metrics_json(&self.metrics),
            "bank": self.money_off().map(|(runs_off, off)| serde_json::json!({
                "runs_off": runs_off,
                "off": off,
            })),
            "verdict": self.verdict(),
            "violations": self.violations,
            "serves": self.subset,
        })
    }
}

/// The quantiles the report's latency CDFs are drawn through.
pub const CDF_POINTS: [f64; 12] = [
    0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0,
];

/// Four decimals: enough for a report, and stable text.
pub(super) fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// The protocol-specific figures worth a line: lost updates and siblings (vvsync),
/// blocked and in-doubt transactions (2PC).
pub fn highlights(metrics: &[(&'static str, u64)]) -> Option<String> {
    const SHOWN: [(&str, &str); 6] = [
        ("lost_updates", "lost updates"),
        ("siblings_max", "siblings at most"),
        ("stale_siblings", "stale siblings"),
        ("blocked_over_1s", "transactions blocked > 1 s"),
        ("in_doubt_at_end", "in doubt at the end"),
        ("writes_effective", "writes"),
    ];
    let parts: Vec<String> = SHOWN
        .iter()
        .filter_map(|&(key, label)| {
            let v = metrics.iter().find(|(n, _)| *n == key)?.1;
            Some(format!("{v} {label}"))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}
