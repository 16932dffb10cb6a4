//! The `synod` command line. Conventions (from the design): errors go to stderr with
//! a clear message and exit code 2 for bad input; `--json` prints exactly one JSON
//! document on stdout; `synod sim` ends with `digest: <hex>`; `synod check` exits 1
//! on any violation and prints the command that replays it.

use crate::registry;
use crate::runner::run_protocol;

/// How long one run's linearizability check may take before its verdict is `unknown`.
const LINEARIZABILITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
use crate::sim::config::{FaultSpec, SimConfig};
use crate::sim::swarm::Swarm;
use crate::sim::RunOutcome;
use crate::workload::{WorkloadConfig, WorkloadName};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Synod: replication protocols side by side, on one deterministic simulator.
#[derive(Parser, Debug)]
#[command(name = "synod", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (e.g. `debug`, `synod_harness=trace`); overrides RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compare protocols on the same workload, faults and seeds (the main job).
    Compare(CompareArgs),
    /// Run one simulation and print its trace digest.
    Sim(SimArgs),
    /// Run many seeds in parallel and report every violation with its replay command.
    Check(CheckArgs),
    /// Check a history file (JSON lines) for linearizability (register, cas-register,
    /// kv) or serializability (list-append transactions).
    CheckHistory(CheckHistoryCmd),
    /// Run a closed-loop load against a real cluster and report throughput and latency.
    Bench(crate::cli_real::BenchArgs),
    /// Run one member of a real cluster (TCP peers, file WAL, client port).
    Node(crate::cli_real::NodeArgs),
    /// Start or stop a local multi-process cluster on loopback.
    Cluster(crate::cli_real::ClusterArgs),
}

/// `synod check-history`.
#[derive(Args, Debug)]
pub struct CheckHistoryCmd {
    /// History file: JSON lines, one event per line (see docs/ARCHITECTURE.md).
    pub file: PathBuf,
    /// Model: register, cas-register, kv or list-append.
    #[arg(long, value_parser = parse_model)]
    pub model: HistoryModel,
    /// Give up after this many seconds with verdict `unknown` (exit 3).
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// Draw the smallest failing window as an SVG timeline into FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `check-history` checks a history against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryModel {
    /// Linearizability against one of the checker's sequential models.
    Linearizable(crate::checker::Model),
    /// Serializability of list-append transactions (the `txn` checker).
    ListAppend,
}

fn parse_model(s: &str) -> Result<HistoryModel, String> {
    if s == "list-append" {
        return Ok(HistoryModel::ListAppend);
    }
    s.parse().map(HistoryModel::Linearizable).map_err(|_| {
        format!("unknown model \"{s}\": expected one of register, cas-register, kv, list-append")
    })
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("expected a positive number of seconds, not `{s}`"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Options shared by every simulated run.
#[derive(Args, Debug, Clone)]
pub struct RunOpts {
    /// Faults to inject: none, all, net, crash, or a comma list of
    /// partition, asymmetric, loss, clog, delay, crash, crash-in-write, storm,
    /// figure-8, comeback, depose, pause, clock, restart-all
    /// (every node down at once, back one by one; not part of all: `all,restart-all`).
    #[arg(long, default_value = "none", value_parser = parse_faults)]
    pub faults: FaultSpec,
    /// Operations in the main phase (all clients together).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: u64,
    /// Run the main phase for this many seconds of virtual time instead of an op
    /// budget (for `--faults split`, whose split begins at 1 s and lasts 1 s).
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, conflicts_with = "ops")]
    pub duration: Option<std::time::Duration>,
    /// Workload: kv, ycsb-a, ycsb-b, ycsb-c, register, write, bank, list-append.
    #[arg(long, default_value = "kv", value_parser = parse_workload)]
    pub workload: WorkloadName,
    /// With `--workload write`: each operation is one transaction of this many puts,
    /// one on each of shards 0, 1, … (for 2PC's cost by shards per transaction).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub shards_per_txn: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub clients: u64,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub nodes: u64,
    /// Swarm testing: each seed also draws which fault kinds are on (storage faults
    /// included), their rates, the cluster size (3, 5, 7), clients, value sizes and
    /// the workload mix (`harness/src/sim/swarm.rs`); the other flags are the base
    /// it changes. `--protocol all` implies it.
    #[arg(long)]
    pub swarm: bool,
    /// Do not record the history nor check it for linearizability (for very long
    /// runs, where the history would dominate memory).
    #[arg(long)]
    pub skip_linearizability: bool,
    /// Build nodes with their default knobs even under faults (`compare` measures
    /// the protocols as configured; sweeps vary batch sizes and windows).
    #[arg(skip)]
    pub default_tuning: bool,
    /// Count the encoded bytes of every peer message (`compare` reports them).
    #[arg(skip)]
    pub measure_bytes: bool,
    /// Record the space-time diagram of the run's first moments (`sim --trace`).
    #[arg(skip)]
    pub trace_until: Option<std::time::Duration>,
}

impl RunOpts {
    /// The simulation config for `seed`.
    pub fn config(&self, seed: u64) -> SimConfig {
        let mut cfg = SimConfig::standard(seed, self.faults, self.ops);
        cfg.nodes = self.nodes as usize;
        cfg.workload = WorkloadConfig::named(self.workload, self.ops);
        cfg.workload.clients = self.clients as usize;
        cfg.workload.shards_per_txn = self.shards_per_txn as usize;
        cfg.workload.record_history = !self.skip_linearizability;
        cfg.vary_tuning &= !self.default_tuning;
        cfg.measure_bytes = self.measure_bytes;
        cfg.trace_until = self.trace_until;
        if let Some(d) = self.duration {
            cfg.main_phase_max = d;
            cfg.workload.ops = u64::MAX;
        }
        cfg
    }

    /// Runs `protocol` for `seed` and checks the history unless told not to.
    pub fn run(&self, protocol: &str, seed: u64) -> Result<RunOutcome, String> {
        check_shards_per_txn(self.shards_per_txn, self.workload)?;
        let mut cfg = self.config(seed);
        if self.swarm {
            Swarm::draw(seed, registry::get(protocol)?).apply(&mut cfg);
        }
        let mut outcome = run_protocol(protocol, cfg)?;
        if !self.skip_linearizability {
            (registry::get(protocol)?.check)(&mut outcome, LINEARIZABILITY_TIMEOUT);
        }
        Ok(outcome)
    }

    /// The flags that reproduce these options.
    pub fn flags(&self) -> String {
        let skip = match (self.skip_linearizability, self.swarm) {
            (true, true) => " --skip-linearizability --swarm",
            (true, false) => " --skip-linearizability",
            (false, true) => " --swarm",
            (false, false) => "",
        };
        let shards = match self.shards_per_txn {
            0 => String::new(),
            k => format!(" --shards-per-txn {k}"),
        };
        let budget = match self.duration {
            Some(d) => format!("--duration {}", d.as_secs_f64()),
            None => format!("--ops {}", self.ops),
        };
        format!(
            "--faults {} {budget} --workload {}{shards} --clients {} --nodes {}{skip}",
            self.faults, self.workload, self.clients, self.nodes
        )
    }
}

/// `--shards-per-txn` shapes the `write` workload only.
pub(crate) fn check_shards_per_txn(shards: u64, workload: WorkloadName) -> Result<(), String> {
    match shards == 0 || workload == WorkloadName::Write {
        true => Ok(()),
        false => Err(format!(
            "--shards-per-txn {shards} applies to --workload write, not {workload}"
        )),
    }
}

/// `synod sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Protocol to run.
    #[arg(long, value_parser = registry::value_parser(false))]
    pub protocol: String,
    /// Master seed; the same seed replays the same run.
    #[arg(long)]
    pub seed: u64,
    /// Run options.
    #[command(flatten)]
    pub run: RunOpts,
    /// Write the client history (JSON lines) to this file.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Write the space-time diagram of the run's first moments (SVG) to this file:
    /// every message an arrow, disk writes, crashes, leaders and faults marked.
    #[arg(long, value_name = "FILE.svg")]
    pub trace: Option<PathBuf>,
    /// How much of the run the diagram shows, in virtual milliseconds: from 20 before
    /// the first answer a client gets (the election or synchronisation before it).
    #[arg(long, value_name = "MS", default_value_t = 50, requires = "trace",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub trace_ms: u64,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `synod check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Protocol to run, or `all`: every protocol and mode, with `--swarm`.
    #[arg(long, value_parser = registry::value_parser_or_all())]
    pub protocol: String,
    /// Number of seeds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Run options.
    #[command(flatten)]
    pub run: RunOpts,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: Option<u64>,
    /// Stop starting seeds after the first violation. Seeds start in order, so every
    /// seed below a failing one still runs, and the smallest failing seed reported
    /// is the smallest in the range.
    #[arg(long)]
    pub fail_fast: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `synod compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Protocols to compare (comma-separated; default: raft, paxos, zab, twopc,
    /// twopc-nb, vvsync, vvsync-lww).
    #[arg(long, value_delimiter = ',', value_parser = registry::value_parser(false))]
    pub protocols: Vec<String>,
    /// Workloads (comma-separated; default: kv, bank, write).
    #[arg(long, value_delimiter = ',', value_parser = parse_workload)]
    pub workloads: Vec<WorkloadName>,
    /// Fault profiles (comma-separated; default: none, net, crash, partition, all).
    #[arg(long, value_delimiter = ',', value_parser = parse_profile)]
    pub profiles: Vec<crate::compare::Profile>,
    /// Seeds per cell (default: 4; --quick 2, --thorough 32).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: Option<u64>,
    /// Virtual seconds of each run's main phase (default: 1; --quick 0.5, --thorough 2); the
    /// partition profile runs at least 3 (its split is at 1–2 s).
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub duration: Option<std::time::Duration>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub clients: u64,
    /// Cluster size (a protocol that needs more nodes runs with its minimum).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub nodes: u64,
    /// A small run, for a first look (seconds).
    #[arg(long, conflicts_with = "thorough")]
    pub quick: bool,
    /// Many more seeds and operations (minutes).
    #[arg(long)]
    pub thorough: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: Option<u64>,
    /// Also write the report into this directory: `compare.json` (the `--json`
    /// document) and `index.html` (self-contained: charts of every workload, no
    /// network fetches; open it in a browser).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON document instead of the tables.
    #[arg(long)]
    pub json: bool,
}

fn parse_profile(s: &str) -> Result<crate::compare::Profile, String> {
    s.parse()
}

fn parse_faults(s: &str) -> Result<FaultSpec, String> {
    s.parse()
}

pub(crate) fn parse_workload(s: &str) -> Result<WorkloadName, String> {
    s.parse()
}

/// Entry point: parses `std::env::args` and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    // A real node logs at `info` unless told otherwise; simulations log nothing.
    let default_log = matches!(cli.command, Command::Node(_)).then_some("info");
    init_logging(cli.log.as_deref().or(default_log));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Sim(args) => cmd_sim(&args, &mut out),
        Command::Check(args) => cmd_check(&args, &mut out),
        Command::Compare(args) => cmd_compare(&args, &mut out),
        Command::Bench(args) => crate::cli_real::cmd_bench(&args, &mut out),
        Command::Node(args) => crate::cli_real::cmd_node(&args),
        Command::Cluster(args) => crate::cli_real::cmd_cluster(&args, &mut out),
        Command::CheckHistory(args) => {
            let stderr = std::io::stderr();
            let model = match args.model {
                HistoryModel::Linearizable(model) => model,
                HistoryModel::ListAppend => return cmd_check_txn_history(args, &mut out),
            };
            let args = crate::checker::CheckHistoryArgs {
                file: args.file,
                model,
                json: args.json,
                timeout: args.timeout,
                svg: args.svg,
            };
            return crate::checker::run_cli(&args, &mut out, &mut stderr.lock());
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    }
}

/// `check-history --model list-append`: `--timeout` and `--svg` belong to the
/// linearizability search and are refused rather than ignored.
fn cmd_check_txn_history(args: CheckHistoryCmd, out: &mut dyn Write) -> i32 {
    let stderr = std::io::stderr();
    if args.timeout.is_some() || args.svg.is_some() {
        eprintln!("error: --timeout and --svg apply to register, cas-register and kv only");
        return 2;
    }
    let args = crate::txn::TxnCliArgs {
        file: args.file,
        json: args.json,
    };
    crate::txn::run_cli(&args, out, &mut stderr.lock())
}

fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).ok(),
        None => EnvFilter::try_from_default_env().ok(),
    };
    // No filter given and no RUST_LOG: install nothing, so logging costs nothing.
    if let Some(filter) = filter {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .with_target(false)
            .try_init();
    }
}

fn io_err(e: std::io::Error) -> String {
    format!("cannot write output: {e}")
}

/// Key figures of one run, for text and JSON output.
pub(crate) fn metrics_json(metrics: &[(&'static str, u64)]) -> serde_json::Value {
    let map = metrics
        .iter()
        .map(|&(k, v)| (k.to_string(), serde_json::json!(v)));
    serde_json::Value::Object(map.collect())
}

/// `name=value` pairs, in the order measured.
fn metrics_line(metrics: &[(&'static str, u64)]) -> String {
    let pairs: Vec<String> = metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

fn run_json(protocol: &str, o: &RunOutcome) -> serde_json::Value {
    serde_json::json!({
        "protocol": protocol,
        "seed": o.seed,
        "digest": o.digest,
        "end_ns": o.end.as_nanos(),
        "main_end_ns": o.main_end.as_nanos(),
        "events": o.stats.events,
        "messages_sent": o.stats.sent,
        "messages_delivered": o.stats.delivered,
        "client_messages_delivered": o.stats.client_delivered,
        "client_inputs_batched": o.stats.client_batches,
        "dropped": {
            "partition": o.stats.dropped_partition,
            "loss": o.stats.dropped_loss,
            "node_down": o.stats.dropped_down,
        },
        "duplicated": o.stats.duplicated,
        "delayed": o.stats.delayed,
        "persists": o.stats.persists,
        "syncs": o.stats.syncs,
        "recoveries_ns": o.stats.recoveries_ns,
        "crashes": o.stats.crashes,
        "torn_writes": o.stats.torn_writes,
        "disk_failures": o.stats.disk_failures,
        "heal_to_live_ns": o.stats.heal_to_live_ns,
        "liveness_bound_ns": o.stats.liveness_bound_ns,
        "faults": o.stats.faults,
        "ops": { "ok": o.clients.ok, "fail": o.clients.fail, "info": o.clients.info },
        "latency_us": {
            "p50": o.clients.latency_us.value_at_quantile(0.5),
            "p99": o.clients.latency_us.value_at_quantile(0.99),
            "max": o.clients.latency_us.max(),
        },
        "peak_rss_kib": peak_rss_kib(),
        "metrics": metrics_json(&o.metrics),
        "violation": o.violation.as_ref().map(|v| serde_json::json!({
            "kind": format!("{:?}", v.kind),
            "at_ns": v.at.as_nanos(),
            "message": v.message,
        })),
    })
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cmd_sim(args: &SimArgs, out: &mut dyn Write) -> Result<i32, String> {
    if args.history.is_some() && args.run.skip_linearizability {
        return Err("--history needs the history recorded: drop --skip-linearizability".into());
    }
    let mut opts = args.run.clone();
    if args.trace.is_some() {
        opts.trace_until = Some(std::time::Duration::from_millis(args.trace_ms));
    }
    let outcome = opts.run(&args.protocol, args.seed)?;
    if let (Some(path), Some(st)) = (&args.trace, &outcome.space_time) {
        let title = format!(
            "{} · seed {} · faults {} · {} ms to and after the first answer",
            args.protocol, args.seed, args.run.faults, args.trace_ms
        );
        std::fs::write(path, st.svg(&title))
            .map_err(|e| format!("cannot write trace file {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.history {
        let mut file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create history file {}: {e}", path.display()))?;
        crate::history::write_jsonl(&outcome.history, &mut file)
            .map_err(|e| format!("cannot write history file {}: {e}", path.display()))?;
    }
    if args.json {
        let doc = run_json(&args.protocol, &outcome);
        writeln!(out, "{doc}").map_err(io_err)?;
    } else {
        let o = &outcome;
        writeln!(
            out,
            "protocol: {}  seed: {}  faults: {}",
            args.protocol, o.seed, args.run.faults
        )
        .map_err(io_err)?;
        if let Some(swarm) = swarm_line(&args.protocol, o.seed, &args.run) {
            writeln!(out, "  {swarm}").map_err(io_err)?;
        }
        for f in &o.stats.faults {
            writeln!(out, "  fault {f}").map_err(io_err)?;
        }
        writeln!(
            out,
            "ops: {} ok, {} fail, {} info; latency p50 {} us, p99 {} us",
            o.clients.ok,
            o.clients.fail,
            o.clients.info,
            o.clients.latency_us.value_at_quantile(0.5),
            o.clients.latency_us.value_at_quantile(0.99)
        )
        .map_err(io_err)?;
        writeln!(
            out,
            "events: {}; messages: {} sent, {} delivered; crashes: {} ({} tearing a write, {} on a failed disk); virtual time: {}",
            o.stats.events,
            o.stats.sent,
            o.stats.delivered,
            o.stats.crashes,
            o.stats.torn_writes,
            o.stats.disk_failures,
            o.end
        )
        .map_err(io_err)?;
        if !o.metrics.is_empty() {
            writeln!(out, "measured: {}", metrics_line(&o.metrics)).map_err(io_err)?;
        }
        match &o.violation {
            Some(v) => writeln!(out, "VIOLATION {:?} at {}: {}", v.kind, v.at, v.message),
            None => writeln!(
                out,
                "ok: no violation, live {:.1} ms after the heal (bound {:.0} ms)",
                o.stats.heal_to_live_ns as f64 / 1e6,
                o.stats.liveness_bound_ns as f64 / 1e6
            ),
        }
        .map_err(io_err)?;
        writeln!(out, "digest: {}", o.digest).map_err(io_err)?;
    }
    Ok(if outcome.violation.is_some() { 1 } else { 0 })
}

fn replay_command(protocol: &str, seed: u64, run: &RunOpts) -> String {
    format!(
        "synod sim --protocol {protocol} --seed {seed} {}",
        run.flags()
    )
}

/// Runs `seeds` in parallel on `jobs` threads, calling `each` after every run; with
/// `fail_fast`, starts no further seed once one has a violation.
fn run_seeds(
    protocol: &str,
    seeds: impl Iterator<Item = u64>,
    run: &RunOpts,
    jobs: usize,
    each: &(dyn Fn(&RunOutcome) + Sync),
    fail_fast: bool,
) -> Result<Vec<RunOutcome>, String> {
    let seeds: Vec<u64> = seeds.collect();
    let next = AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Mutex<Vec<RunOutcome>> = Mutex::new(Vec::with_capacity(seeds.len()));
    let error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&seed) = seeds.get(i) else { break };
                match run.run(protocol, seed) {
                    Ok(mut outcome) => {
                        outcome.history = Vec::new(); // keep memory flat over many seeds
                        if fail_fast && outcome.violation.is_some() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        each(&outcome);
                        results
                            .lock()
                            .expect("no panics under this lock")
                            .push(outcome);
                    }
                    Err(e) => {
                        *error.lock().expect("no panics under this lock") = Some(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().expect("no panics under this lock") {
        return Err(e);
    }
    let mut results = results.into_inner().expect("no panics under this lock");
    results.sort_by_key(|o| o.seed);
    Ok(results)
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cmd_check(args: &CheckArgs, out: &mut dyn Write) -> Result<i32, String> {
    let jobs = args.jobs.map_or_else(default_jobs, |j| j as usize);
    let all = args.protocol == "all";
    let protocols: Vec<&str> = match all {
        true => registry::names(),
        false => vec![args.protocol.as_str()],
    };
    let mut run = args.run.clone();
    run.swarm |= all;
    let total = args.seeds.saturating_mul(protocols.len() as u64);
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} seeds ({per_sec}, eta {eta}) {msg}",
        )
        .map_err(|e| e.to_string())?,
    );
    let failures = AtomicU64::new(0);
    // A protocol assert! becomes a reported violation; keep the default hook quiet
    // so the progress bar stays readable.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut sweeps = Vec::new();
    for protocol in &protocols {
        let seeds = args.from..args.from.saturating_add(args.seeds);
        let each = |o: &RunOutcome| {
            if o.violation.is_some() {
                let n = failures.fetch_add(1, Ordering::Relaxed) + 1;
                bar.set_message(format!("{n} FAILED"));
            }
            bar.inc(1);
        };
        match run_seeds(protocol, seeds, &run, jobs, &each, args.fail_fast) {
            Ok(results) => {
                let stop = args.fail_fast && results.iter().any(|o| o.violation.is_some());
                sweeps.push(Sweep::of(protocol, results));
                if stop {
                    break;
                }
            }
            Err(e) => {
                std::panic::set_hook(hook);
                bar.finish_and_clear();
                return Err(e);
            }
        }
    }
    std::panic::set_hook(hook);
    bar.finish_and_clear();
    let violations: usize = sweeps.iter().map(|s| s.failed.len()).sum();
    if args.json {
        let docs: Vec<serde_json::Value> = sweeps.iter().map(|s| s.json(args, &run)).collect();
        let doc = match all {
            true => {
                serde_json::json!({ "protocol": "all", "violations": violations, "protocols": docs })
            }
            false => docs.into_iter().next().expect("one protocol"),
        };
        writeln!(out, "{doc}").map_err(io_err)?;
    } else {
        for sweep in &sweeps {
            sweep.text(args, &run, out)?;
        }
    }
    Ok(if violations == 0 { 0 } else { 1 })
}

/// One protocol's seeds of a `synod check`: what its report needs of each run.
struct Sweep<'a> {
    protocol: &'a str,
    ran: usize,
    ops_ok: u64,
    failed: Vec<RunOutcome>,
    metrics: Vec<(&'static str, u64)>,
    /// Heal to live, per seed that passed (nanoseconds, sorted).
    heal_to_live: Vec<u64>,
    /// The least liveness bound of the seeds (nanoseconds).
    bound_min: u64,
}

impl<'a> Sweep<'a> {
    fn of(protocol: &'a str, results: Vec<RunOutcome>) -> Sweep<'a> {
        let mut metrics = Vec::new();
        for o in &results {
            crate::sim::add_metrics(&mut metrics, &o.metrics);
        }
        let mut heal_to_live: Vec<u64> = results
            .iter()
            .filter(|o| o.violation.is_none())
            .map(|o| o.stats.heal_to_live_ns)
            .collect();
        heal_to_live.sort_unstable();
        let bound_min = (results.iter())
            .map(|o| o.stats.liveness_bound_ns)
            .min()
            .unwrap_or(0);
        Sweep {
            protocol,
            ran: results.len(),
            ops_ok: results.iter().map(|o| o.clients.ok).sum(),
            failed: results
                .into_iter()
                .filter(|o| o.violation.is_some())
                .collect(),
            metrics,
            heal_to_live,
            bound_min,
        }
    }

    /// The `q` quantile of heal-to-live times, in milliseconds.
    fn heal_ms(&self, q: f64) -> f64 {
        let Some(last) = self.heal_to_live.len().checked_sub(1) else {
            return 0.0;
        };
        let at = ((last as f64) * q).round() as usize;
        self.heal_to_live[at.min(last)] as f64 / 1e6
    }

    fn json(&self, args: &CheckArgs, run: &RunOpts) -> serde_json::Value {
        serde_json::json!({
            "protocol": self.protocol,
            "seeds": args.seeds,
            "from": args.from,
            "ran": self.ran,
            "faults": run.faults.to_string(),
            "swarm": run.swarm,
            "violations": self.failed.len(),
            "failures": self.failed.iter().map(|o| serde_json::json!({
                "seed": o.seed,
                "kind": format!("{:?}", o.violation.as_ref().map(|v| &v.kind)),
                "message": o.violation.as_ref().map(|v| v.message.clone()),
                "swarm": swarm_line(self.protocol, o.seed, run),
                "replay": replay_command(self.protocol, o.seed, run),
            })).collect::<Vec<_>>(),
            "ops_ok": self.ops_ok,
            "heal_to_live_ms": {
                "p50": self.heal_ms(0.5),
                "p99": self.heal_ms(0.99),
                "max": self.heal_ms(1.0),
                "bound_min": self.bound_min as f64 / 1e6,
            },
            "metrics": metrics_json(&self.metrics),
        })
    }

    fn text(&self, args: &CheckArgs, run: &RunOpts, out: &mut dyn Write) -> Result<(), String> {
        for o in &self.failed {
            let v = o.violation.as_ref().expect("failed runs have a violation");
            writeln!(
                out,
                "{} seed {}: {:?} at {}: {}",
                self.protocol, o.seed, v.kind, v.at, v.message
            )
            .map_err(io_err)?;
            if let Some(swarm) = swarm_line(self.protocol, o.seed, run) {
                writeln!(out, "  {swarm}").map_err(io_err)?;
            }
            writeln!(
                out,
                "  replay: {}",
                replay_command(self.protocol, o.seed, run)
            )
            .map_err(io_err)?;
        }
        let ran = match self.ran as u64 == args.seeds {
            true => String::new(),
            false => format!(" (ran {}: stopped at the first violation)", self.ran),
        };
        let swarm = if run.swarm { " (swarm)" } else { "" };
        writeln!(
            out,
            "{}: {} seeds from {}{ran}, faults {}{swarm}: {} violations, {} ops ok; live after the heal within {:.0} ms (p50 {:.0}, p99 {:.0}; bound at least {:.0} ms)",
            self.protocol,
            args.seeds,
            args.from,
            run.faults,
            self.failed.len(),
            self.ops_ok,
            self.heal_ms(1.0),
            self.heal_ms(0.5),
            self.heal_ms(0.99),
            self.bound_min as f64 / 1e6,
        )
        .map_err(io_err)?;
        if !self.metrics.is_empty() {
            writeln!(
                out,
                "measured over all seeds: {}",
                metrics_line(&self.metrics)
            )
            .map_err(io_err)?;
        }
        Ok(())
    }
}

/// A swarm run's draw for `seed`, as the report shows it.
fn swarm_line(protocol: &str, seed: u64, run: &RunOpts) -> Option<String> {
    let entry = registry::get(protocol).ok()?;
    run.swarm.then(|| Swarm::draw(seed, entry).to_string())
}

/// How much of a run the report's space-time diagrams show.
const DIAGRAM_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

fn cmd_compare(args: &CompareArgs, out: &mut dyn Write) -> Result<i32, String> {
    use crate::compare::{self, Plan, Profile, Report};
    let names: Vec<&str> = match args.protocols.is_empty() {
        true => compare::DEFAULT_PROTOCOLS.to_vec(),
        false => args.protocols.iter().map(String::as_str).collect(),
    };
    let secs = std::time::Duration::from_secs;
    let (seeds, duration) = match (args.quick, args.thorough) {
        (true, _) => (2, std::time::Duration::from_millis(500)),
        (_, true) => (32, secs(2)),
        _ => (4, secs(1)),
    };
    let plan = Plan {
        protocols: names
            .iter()
            .map(|n| registry::get(n))
            .collect::<Result<_, _>>()?,
        workloads: match args.workloads.is_empty() {
            true => compare::DEFAULT_WORKLOADS.to_vec(),
            false => args.workloads.clone(),
        },
        profiles: match args.profiles.is_empty() {
            true => Profile::ALL.to_vec(),
            false => args.profiles.clone(),
        },
        seeds: args.seeds.unwrap_or(seeds),
        duration: args.duration.unwrap_or(duration),
        clients: args.clients,
        nodes: args.nodes,
        fan_out: vec![1, 2, 3, 4],
    };
    let jobs = args.jobs.map_or_else(default_jobs, |j| j as usize);
    let bar = indicatif::ProgressBar::new(Report::runs(&plan));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} runs (eta {eta})",
        )
        .map_err(|e| e.to_string())?,
    );
    // A protocol assert! becomes a reported violation; keep the default hook quiet
    // so the progress bar stays readable.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // One diagram per protocol for the report: a short run of each, seed 0.
    let diagrams = match &args.out {
        Some(_) => compare::diagrams(&plan, DIAGRAM_WINDOW),
        None => Ok(Vec::new()),
    };
    let report = compare::run(plan, jobs, &|| bar.inc(1));
    std::panic::set_hook(hook);
    bar.finish_and_clear();
    let report = report?;
    let doc = report.json();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create output directory {}: {e}", dir.display()))?;
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        let html = compare::html::render(&doc, &diagrams?);
        for (name, contents) in [("compare.json", text), ("index.html", html)] {
            let path = dir.join(name);
            std::fs::write(&path, contents)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    match args.json {
        true => writeln!(out, "{doc}"),
        false => write!(out, "{}", report.text()),
    }
    .map_err(io_err)?;
    Ok(if report.any_violation() { 1 } else { 0 })
}
