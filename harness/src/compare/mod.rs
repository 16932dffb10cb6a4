//! `synod compare`: every protocol on the same workloads, seeds and fault profiles,
//! and what each costs and promises — the figures behind the terminal table, the
//! JSON document and the HTML report.
//!
//! A *cell* is one protocol × workload × profile; each runs the same seeds, so the
//! clients' operation streams and the nemesis's schedules are the same in every
//! protocol's cell of a column (a protocol's own behaviour then changes what
//! happens). Every (cell, seed) is one job; jobs are spread over the cores.

pub mod html;
mod summary;

pub use summary::{Cell, SideTimeline};

use crate::cli::RunOpts;
use crate::registry::Protocol;
use crate::sim::config::{FaultSpec, SPLIT_AT, SPLIT_FOR};
use crate::sim::RunOutcome;
use crate::workload::WorkloadName;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A fault profile: which faults every protocol of a column is run under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Profile {
    /// No faults: the steady state.
    None,
    /// Network faults: partitions, one-way partitions, loss bursts, clogged links,
    /// long delays.
    Net,
    /// Crashes and restarts, half of them aimed at the leader, and crash storms.
    Crash,
    /// One scripted majority/minority split with its clients (`--faults split`),
    /// for the availability timelines.
    Partition,
    /// Every fault kind of the nemesis.
    All,
}

impl Profile {
    /// Every profile, in report order.
    pub const ALL: [Profile; 5] = [
        Profile::None,
        Profile::Net,
        Profile::Crash,
        Profile::Partition,
        Profile::All,
    ];

    /// The faults of this profile.
    pub fn faults(self) -> FaultSpec {
        let parse = |s: &str| s.parse::<FaultSpec>().expect("profile fault specs parse");
        match self {
            Profile::None => FaultSpec::default(),
            Profile::Net => parse("net"),
            Profile::Crash => parse("crash,storm"),
            Profile::Partition => parse("split"),
            Profile::All => FaultSpec::all(),
        }
    }

    /// One line for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Profile::None => "no faults",
            Profile::Net => "partitions, one-way partitions, loss, clogged links, long delays",
            Profile::Crash => "crash and restart (half aimed at the leader), crash storms",
            Profile::Partition => {
                "the leader (node 1 if none) and its clients split off at 1 s, healed at 2 s"
            }
            Profile::All => "every fault kind of the nemesis",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::None => "none",
            Profile::Net => "net",
            Profile::Crash => "crash",
            Profile::Partition => "partition",
            Profile::All => "all",
        })
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Profile, String> {
        Profile::ALL
            .into_iter()
            .find(|p| p.to_string() == s)
            .ok_or_else(|| {
                format!("unknown profile `{s}`; expected one of none, net, crash, partition, all")
            })
    }
}

/// The protocols compared when none are named: one per protocol and mode.
pub const DEFAULT_PROTOCOLS: &[&str] = &[
    "raft",
    "paxos",
    "zab",
    "twopc",
    "twopc-nb",
    "vvsync",
    "vvsync-lww",
];

/// The workloads compared when none are named.
pub const DEFAULT_WORKLOADS: &[WorkloadName] =
    &[WorkloadName::Kv, WorkloadName::Bank, WorkloadName::Write];

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Protocols, in report order.
    pub protocols: Vec<&'static Protocol>,
    /// Workloads, in report order.
    pub workloads: Vec<WorkloadName>,
    /// Profiles, in report order.
    pub profiles: Vec<Profile>,
    /// Seeds per cell: `0..seeds`.
    pub seeds: u64,
    /// Virtual time of each run's main phase: every protocol of a column faces the
    /// same nemesis schedule over the same window (the `partition` profile runs
    /// at least [`partition_run`], so the split and its heal fit).
    pub duration: Duration,
    /// Concurrent clients.
    pub clients: u64,
    /// Cluster size (a protocol that needs more runs with its minimum).
    pub nodes: u64,
    /// Participants per transaction of the fan-out runs (the `write` workload as
    /// transactions of that many puts on as many shards, no faults, seed 0): what
    /// a transaction costs as it spans more shards. Empty: none.
    pub fan_out: Vec<u64>,
}

/// The fan-out runs' main phase.
const FAN_OUT_RUN: Duration = Duration::from_millis(500);

/// The `partition` profile's main phase: the split and a second after it.
pub fn partition_run() -> Duration {
    SPLIT_AT + SPLIT_FOR + Duration::from_millis(1000)
}

impl Plan {
    /// The run options of one cell, or why the protocol does not serve the workload.
    pub fn options(
        &self,
        protocol: &Protocol,
        workload: WorkloadName,
        profile: Profile,
    ) -> Result<RunOpts, String> {
        let opts = RunOpts {
            faults: profile.faults(),
            ops: 1,
            duration: Some(match profile {
                Profile::Partition => self.duration.max(partition_run()),
                _ => self.duration,
            }),
            workload,
            shards_per_txn: 0,
            clients: self.clients,
            nodes: self.nodes.max(protocol.min_nodes as u64),
            skip_linearizability: false,
            swarm: false,
            default_tuning: true,
            measure_bytes: true,
            trace_until: None,
        };
        (protocol.fit_workload)(&mut opts.config(0).workload)?;
        Ok(opts)
    }

    /// The run options of a fan-out run with `participants` per transaction: 2PC
    /// gets one shard per participant besides its coordinator('s replicas).
    pub fn fan_out_options(
        &self,
        protocol: &Protocol,
        participants: u64,
    ) -> Result<RunOpts, String> {
        let mut opts = self.options(protocol, WorkloadName::Write, Profile::None)?;
        opts.shards_per_txn = participants;
        opts.duration = Some(FAN_OUT_RUN);
        if protocol.min_nodes > 1 {
            // A sharded protocol: its minimum has one shard.
            opts.nodes = participants + protocol.min_nodes as u64 - 1;
        }
        (protocol.fit_workload)(&mut opts.config(0).workload)?;
        Ok(opts)
    }

    /// What the protocol serves of the workload when it serves a subset: the
    /// operations its fitting turned into puts.
    pub fn subset(protocol: &Protocol, opts: &RunOpts) -> Option<String> {
        let asked = opts.config(0).workload;
        let mut fitted = asked.clone();
        (protocol.fit_workload)(&mut fitted).ok()?;
        if fitted.bank_per_key && !asked.bank_per_key {
            return Some(
                "transfers as two ledger writes (debit, then credit), one account read at a time"
                    .into(),
            );
        }
        let mut changed = Vec::new();
        if asked.mix.cas > 0.0 && fitted.mix.cas == 0.0 {
            changed.push("cas");
        }
        if asked.mix.append > 0.0 && fitted.mix.append == 0.0 {
            changed.push("append");
        }
        (!changed.is_empty()).then(|| format!("{} run as put", changed.join(" and ")))
    }
}

/// A cell the protocol does not serve, and why.
#[derive(Clone, Debug)]
pub struct NotRun {
    /// The protocol.
    pub protocol: &'static str,
    /// The workload.
    pub workload: WorkloadName,
    /// Why.
    pub reason: String,
}

/// Everything a comparison measured.
#[derive(Debug)]
pub struct Report {
    /// The plan it ran.
    pub plan: Plan,
    /// The cells run, in plan order (workload, protocol, profile).
    pub cells: Vec<Cell>,
    /// The cells not run.
    pub not_run: Vec<NotRun>,
    /// The fan-out runs, by protocol then participants.
    pub fan_out: Vec<FanOut>,
}

/// One fan-out run ([`Plan::fan_out`]).
#[derive(Clone, Debug)]
pub struct FanOut {
    /// The protocol.
    pub protocol: &'static str,
    /// Puts (and shards) per transaction.
    pub participants: u64,
    /// Its cluster size.
    pub nodes: u64,
    /// Peer messages per committed transaction.
    pub messages_per_txn: f64,
    /// Disk syncs per committed transaction.
    pub syncs_per_txn: f64,
}

/// Runs the plan on `jobs` threads, calling `tick` after each run.
pub fn run(plan: Plan, jobs: usize, tick: &(dyn Fn() + Sync)) -> Result<Report, String> {
    let mut cells = Vec::new();
    let mut not_run = Vec::new();
    for &workload in &plan.workloads {
        for &protocol in &plan.protocols {
            for &profile in &plan.profiles {
                match plan.options(protocol, workload, profile) {
                    Ok(opts) => cells.push((protocol, workload, profile, opts)),
                    Err(reason) => {
                        if profile == plan.profiles[0] {
                            not_run.push(NotRun {
                                protocol: protocol.name,
                                workload,
                                reason,
                            });
                        }
                    }
                }
            }
        }
    }
    let mut fans = Vec::new();
    for &protocol in &plan.protocols {
        for &n in &plan.fan_out {
            if let Ok(opts) = plan.fan_out_options(protocol, n) {
                fans.push((protocol, n, opts));
            }
        }
    }
    // Every run is one job: each cell's seeds, then one seed of each fan-out run.
    let mut work: Vec<(usize, &'static Protocol, &RunOpts, u64)> = Vec::new();
    for (i, (protocol, _, _, opts)) in cells.iter().enumerate() {
        work.extend((0..plan.seeds).map(|seed| (i, *protocol, opts, seed)));
    }
    for (i, (protocol, _, opts)) in fans.iter().enumerate() {
        work.push((cells.len() + i, *protocol, opts, 0));
    }
    let mut results = run_jobs(&work, cells.len() + fans.len(), jobs, tick)?;
    let fan_results = results.split_off(cells.len());
    let cells = cells
        .into_iter()
        .zip(results)
        .map(|((protocol, workload, profile, opts), mut outcomes)| {
            outcomes.sort_by_key(|o| o.seed);
            Cell::summarise(protocol, workload, profile, &opts, &outcomes)
        })
        .collect();
    let fan_out = fans
        .into_iter()
        .zip(fan_results)
        .map(|((protocol, participants, opts), outcomes)| {
            let o = &outcomes[0];
            let per = |n: u64| n as f64 / o.clients.ok.max(1) as f64;
            FanOut {
                protocol: protocol.name,
                participants,
                nodes: opts.nodes,
                messages_per_txn: per(o.stats.sent),
                syncs_per_txn: per(o.stats.syncs),
            }
        })
        .collect();
    Ok(Report {
        plan,
        cells,
        not_run,
        fan_out,
    })
}

/// Runs `work` — `(slot, protocol, options, seed)` — on `jobs` threads, calling `tick`
/// after each run: the outcomes of each of `slots` slots, in no particular order.
fn run_jobs(
    work: &[(usize, &'static Protocol, &RunOpts, u64)],
    slots: usize,
    jobs: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Vec<RunOutcome>>, String> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Vec<RunOutcome>>> = Mutex::new(vec![Vec::new(); slots]);
    let error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                while let Some(&(slot, protocol, opts, seed)) =
                    work.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    match opts.run(protocol.name, seed) {
                        Ok(mut outcome) => {
                            outcome.history = Vec::new();
                            results.lock().expect("no panics under this lock")[slot].push(outcome);
                            tick();
                        }
                        Err(e) => {
                            *error.lock().expect("no panics under this lock") = Some(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    match error.into_inner().expect("no panics under this lock") {
        Some(e) => Err(e),
        None => Ok(results.into_inner().expect("no panics under this lock")),
    }
}

/// The space-time diagram of one run per protocol (seed 0 of the first workload it
/// serves, under every fault kind): `(protocol, SVG)`, for the report.
pub fn diagrams(plan: &Plan, window: Duration) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for &protocol in &plan.protocols {
        let Some((workload, mut opts)) = (plan.workloads.iter())
            .find_map(|&w| Some((w, plan.options(protocol, w, Profile::All).ok()?)))
        else {
            continue;
        };
        opts.trace_until = Some(window);
        let outcome = opts.run(protocol.name, 0)?;
        if let Some(st) = outcome.space_time {
            let title = format!(
                "{} · {workload} · faults all · seed 0 · {} ms to and after the first answer",
                protocol.name,
                window.as_millis()
            );
            out.push((protocol.name.to_owned(), st.svg(&title)));
        }
    }
    Ok(out)
}

impl Report {
    /// Runs in total.
    pub fn runs(plan: &Plan) -> u64 {
        let cells = plan.workloads.len() * plan.protocols.len() * plan.profiles.len();
        let fans = (plan.protocols.iter())
            .flat_map(|p| {
                plan.fan_out
                    .iter()
                    .map(move |&n| plan.fan_out_options(p, n))
            })
            .filter(Result::is_ok)
            .count();
        cells as u64 * plan.seeds + fans as u64
    }

    /// The cells of `workload`, in plan order.
    pub fn cells_of(&self, workload: WorkloadName) -> impl Iterator<Item = &Cell> {
        self.cells.iter().filter(move |c| c.workload == workload)
    }

    /// Any violation of a promise.
    pub fn any_violation(&self) -> bool {
        self.cells.iter().any(|c| !c.violations.is_empty())
    }

    /// The JSON document: the same plan gives the same bytes (nothing in it depends
    /// on the machine, the wall clock or the thread schedule).
    pub fn json(&self) -> serde_json::Value {
        let plan = &self.plan;
        serde_json::json!({
            "seeds": plan.seeds,
            "run_ms": plan.duration.as_millis() as u64,
            "partition_run_ms": plan.duration.max(partition_run()).as_millis() as u64,
            "split_ms": [SPLIT_AT.as_millis() as u64, (SPLIT_AT + SPLIT_FOR).as_millis() as u64],
            "clients": plan.clients,
            "nodes": plan.nodes,
            "workloads": plan.workloads.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            "profiles": plan.profiles.iter().map(|p| serde_json::json!({
                "name": p.to_string(),
                "faults": p.faults().to_string(),
                "description": p.describe(),
            })).collect::<Vec<_>>(),
            "protocols": plan.protocols.iter().map(|p| serde_json::json!({
                "name": p.name,
                "description": p.description,
                "promise": p.consistency.to_string(),
            })).collect::<Vec<_>>(),
            "cells": self.cells.iter().map(Cell::json).collect::<Vec<_>>(),
            "fan_out": self.fan_out.iter().map(|f| serde_json::json!({
                "protocol": f.protocol,
                "participants": f.participants,
                "nodes": f.nodes,
                "messages_per_txn": summary::round(f.messages_per_txn),
                "syncs_per_txn": summary::round(f.syncs_per_txn),
            })).collect::<Vec<_>>(),
            "not_run": self.not_run.iter().map(|n| serde_json::json!({
                "protocol": n.protocol,
                "workload": n.workload.to_string(),
                "reason": n.reason,
            })).collect::<Vec<_>>(),
        })
    }

    /// Messages per transaction by participants: one row per protocol.
    fn fan_out_text(&self) -> String {
        use comfy_table::{presets, Table};
        if self.fan_out.is_empty() {
            return String::new();
        }
        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED);
        let mut header = vec!["protocol".to_string()];
        header.extend(self.plan.fan_out.iter().map(|n| format!("{n} shard(s)")));
        table.set_header(header);
        for p in &self.plan.protocols {
            let row: Vec<&FanOut> = self
                .fan_out
                .iter()
                .filter(|f| f.protocol == p.name)
                .collect();
            if row.is_empty() {
                continue;
            }
            let mut cells = vec![p.name.to_string()];
            for &n in &self.plan.fan_out {
                cells.push(
                    row.iter()
                        .find(|f| f.participants == n)
                        .map_or("-".into(), |f| format!("{:.1}", f.messages_per_txn)),
                );
            }
            table.add_row(cells);
        }
        format!(
            "\nfan-out · write transactions of n puts on n shards, no faults · peer messages per transaction\n{table}\n  2PC: PREPARE, vote, COMMIT, ACK per participant (4n), and twopc-nb's Raft rounds;\n  consensus replicates one command, whatever it spans\n"
        )
    }

    /// Who kept the bank's money: `money: raft, … conserved in every run; vvsync-lww
    /// off in 12 of 20 runs (by 345 in all)`.
    fn money_line(&self) -> String {
        let mut kept = Vec::new();
        let mut off = Vec::new();
        for p in &self.plan.protocols {
            let cells: Vec<&Cell> = self
                .cells_of(WorkloadName::Bank)
                .filter(|c| c.protocol == p.name)
                .collect();
            let runs: usize = cells.iter().map(|c| c.runs).sum();
            let (mut runs_off, mut by) = (0, None::<u64>);
            for (n, amount) in cells.iter().filter_map(|c| c.money_off()) {
                runs_off += n;
                if let Some(a) = amount {
                    by = Some(by.unwrap_or(0) + a);
                }
            }
            match (runs, runs_off) {
                (0, _) => {}
                (_, 0) => kept.push(p.name.to_string()),
                (_, n) => off.push(format!(
                    "{} off in {n} of {runs} runs{}",
                    p.name,
                    by.map_or(String::new(), |b| format!(" (by {b} in all)"))
                )),
            }
        }
        let mut parts = Vec::new();
        if !kept.is_empty() {
            parts.push(format!("{} conserved in every run", kept.join(", ")));
        }
        parts.extend(off);
        parts.iter().map(|p| format!("  money: {p}\n")).collect()
    }

    /// The terminal report: one table per workload (fits 100 columns), then what
    /// each protocol promises and how its runs were judged.
    pub fn text(&self) -> String {
        use comfy_table::{presets, ContentArrangement, Table};
        let plan = &self.plan;
        let mut out = format!(
            "synod compare · {} seeds per cell · {} s runs ({} s for partition) · {} clients · {} nodes\n",
            plan.seeds,
            plan.duration.as_secs_f64(),
            plan.duration.max(partition_run()).as_secs_f64(),
            plan.clients,
            plan.nodes,
        );
        for p in &plan.profiles {
            out += &format!("  {:<9} {}\n", p.to_string(), p.describe());
        }
        for &workload in &plan.workloads {
            let mut table = Table::new();
            table
                .load_preset(presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Disabled)
                .set_header(vec![
                    "protocol", "faults", "ops/s", "p50", "p99", "p999", "msg", "bytes", "syncs",
                    "recover", "promise",
                ]);
            for c in self.cells_of(workload) {
                table.add_row(vec![
                    c.protocol.to_string(),
                    c.profile.to_string(),
                    format!("{:.0}", c.throughput()),
                    format!("{:.2}", c.latency_ms(0.5)),
                    format!("{:.1}", c.latency_ms(0.99)),
                    format!("{:.0}", c.latency_ms(0.999)),
                    format!("{:.1}", c.per_op(c.messages)),
                    format!("{:.0}", c.per_op(c.bytes)),
                    format!("{:.2}", c.per_op(c.syncs)),
                    c.recovery_ms(0.5)
                        .map_or("-".into(), |ms| format!("{ms:.0}")),
                    c.verdict(),
                ]);
            }
            out += &format!(
                "\nworkload {workload} · ops/s virtual · latency ms · msg, bytes, syncs per op\n{table}\n"
            );
            for n in self.not_run.iter().filter(|n| n.workload == workload) {
                out += &format!("  not run: {} — {}\n", n.protocol, n.reason);
            }
            if workload == WorkloadName::Bank {
                out += &self.money_line();
            }
            for c in self
                .cells_of(workload)
                .filter(|c| c.profile == plan.profiles[0])
            {
                if let Some(subset) = &c.subset {
                    out += &format!("  {}: {subset}\n", c.protocol);
                }
                if c.nodes != plan.nodes {
                    out += &format!(
                        "  {}: {} nodes, its smallest cluster\n",
                        c.protocol, c.nodes
                    );
                }
            }
        }
        out += "recover: median ms from losing the leader to serving again (the majority side, for the split)\n";
        out += &self.fan_out_text();
        out += "\nwhat each promises, and what the runs showed (all profiles, all workloads)\n";
        for p in &plan.protocols {
            let cells: Vec<&Cell> = self.cells.iter().filter(|c| c.protocol == p.name).collect();
            let runs: usize = cells.iter().map(|c| c.runs).sum();
            let broken: usize = cells.iter().map(|c| c.violations.len()).sum();
            let mut metrics = Vec::new();
            for c in &cells {
                crate::sim::add_metrics(&mut metrics, &c.metrics);
            }
            out += &format!(
                "  {:<10} {} — {runs} runs, {}\n",
                p.name,
                p.consistency,
                match broken {
                    0 => "kept".to_string(),
                    n => format!("BROKEN in {n}"),
                },
            );
            if let Some(h) = summary::highlights(&metrics) {
                out += &format!("  {:<10} {h}\n", "");
            }
        }
        for c in &self.cells {
            for v in &c.violations {
                out += &format!("{} {} {}: {v}\n", c.protocol, c.workload, c.profile);
            }
        }
        out
    }
}
