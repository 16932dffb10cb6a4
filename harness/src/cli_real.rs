//! The real-cluster subcommands: `synod node`, `synod cluster up|down` and
//! `synod bench`.

use crate::loadgen::{LoadConfig, LoadReport};
use crate::workload::{WorkloadConfig, WorkloadName};
use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `synod bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Client addresses of the cluster's nodes (comma-separated host:port).
    #[arg(long, value_delimiter = ',', required = true, value_parser = parse_addr)]
    pub addr: Vec<SocketAddr>,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub clients: u64,
    /// Seconds of load.
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub duration: Duration,
    /// Workload: kv, ycsb-a, ycsb-b, ycsb-c, register, write, bank, list-append.
    #[arg(long, default_value = "kv", value_parser = crate::cli::parse_workload)]
    pub workload: WorkloadName,
    /// With `--workload write`: each operation is one transaction of this many puts,
    /// one on each of shards 0, 1, … (for 2PC's cost by shards per transaction).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub shards_per_txn: u64,
    /// Write the client history (JSON lines, for `synod check-history`) to FILE.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Seed of the operation generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Tokio worker threads of the load generator. 1 (the default) drives every
    /// client from one thread: the clients share three connections and one loop, and
    /// next to a cluster on a few cores, wake-ups across worker threads cost more than
    /// they spread (64 clients, raft with fsync: 34–35K → 45–51K ops/s).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a socket address like 127.0.0.1:7101"))
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("`{s}` must be between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Client ids unused by any earlier run against the same cluster: the state machine
/// remembers sessions, so a rerun with ids 1..N would be answered as stale.
fn fresh_client_id_base() -> u64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    // Room for a million clients per run below the timestamp.
    micros << 20
}

/// The real-node hooks of the protocol `name`.
fn real_protocol(name: &str) -> Result<crate::registry::Real, String> {
    real_entry(name).map(|p| p.real.expect("checked"))
}

/// The registry entry of `name`, if it runs as real nodes.
fn real_entry(name: &str) -> Result<&'static crate::registry::Protocol, String> {
    let protocol = crate::registry::get(name)?;
    match protocol.real {
        Some(_) => Ok(protocol),
        None => Err(format!("`{name}` runs only in the simulator")),
    }
}

/// The protocol a cluster runs, as its nodes say in their welcome: the first node
/// that answers decides, and one that names another protocol is an error.
async fn cluster_protocol(
    addrs: &[SocketAddr],
) -> Result<&'static crate::registry::Protocol, String> {
    let mut named: Option<(SocketAddr, String)> = None;
    let mut unreachable = Vec::new();
    for &addr in addrs {
        let probe =
            tokio::time::timeout(Duration::from_secs(2), synod_runtime::client::probe(addr));
        match probe.await {
            Ok(Ok(welcome)) => match &named {
                Some((first, protocol)) if *protocol != welcome.protocol => {
                    return Err(format!(
                        "{first} runs {protocol} but {addr} runs {}: not one cluster",
                        welcome.protocol
                    ))
                }
                Some(_) => {}
                None => named = Some((addr, welcome.protocol)),
            },
            Ok(Err(e)) => unreachable.push(e.to_string()),
            Err(_) => unreachable.push(format!("{addr}: no welcome within 2 s")),
        }
    }
    match named {
        Some((_, protocol)) => real_entry(&protocol),
        None => Err(format!(
            "no node of the cluster answered: {}",
            unreachable.join("; ")
        )),
    }
}

/// A tokio runtime on `threads` worker threads; one means the calling thread alone.
fn runtime(threads: u16) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads.into());
        b
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))
}

/// Runs `synod bench`; returns the exit code.
pub fn cmd_bench(args: &BenchArgs, out: &mut dyn Write) -> Result<i32, String> {
    crate::cli::check_shards_per_txn(args.shards_per_txn, args.workload)?;
    let mut workload = WorkloadConfig::named(args.workload, u64::MAX);
    workload.clients = args.clients as usize;
    workload.shards_per_txn = args.shards_per_txn as usize;
    workload.record_history = args.history.is_some();
    workload.liveness_ops = 0;
    workload.attempt_timeout = Duration::from_secs(1);
    workload.client_id_base = fresh_client_id_base();
    let mut config = LoadConfig {
        addrs: args.addr.clone(),
        workload,
        duration: args.duration,
        seed: args.seed,
    };
    let runtime = runtime(args.threads)?;
    let report = runtime.block_on(async {
        let protocol = cluster_protocol(&config.addrs).await?;
        (protocol.fit_workload)(&mut config.workload)
            .map_err(|e| format!("{}: {e}", protocol.name))?;
        let real = protocol.real.expect("a real cluster's protocol");
        Ok::<_, String>((real.load)(config, Box::pin(std::future::pending())).await)
    })?;
    if let Some(path) = &args.history {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        crate::history::write_jsonl(&report.history, &mut std::io::BufWriter::new(file))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    print_report(args, &report, out).map_err(|e| format!("cannot write output: {e}"))?;
    Ok(if report.ok == 0 || report.violation.is_some() {
        1
    } else {
        0
    })
}

fn print_report(args: &BenchArgs, r: &LoadReport, out: &mut dyn Write) -> std::io::Result<()> {
    let q = |p: f64| r.latency_us.value_at_quantile(p);
    if args.json {
        let doc = serde_json::json!({
            "clients": args.clients,
            "workload": args.workload.to_string(),
            "shards_per_txn": args.shards_per_txn,
            "seconds": r.elapsed.as_secs_f64(),
            "ok": r.ok, "fail": r.fail, "info": r.info, "attempts": r.attempts,
            "cas_mismatch": r.cas_mismatch,
            "ops_per_sec": r.throughput(),
            "ok_per_sec": r.ok_throughput(),
            "latency_us": {"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": r.latency_us.max()},
            "history": args.history.as_ref().map(|p| p.display().to_string()),
            "violation": r.violation,
        });
        return writeln!(out, "{doc}");
    }
    writeln!(
        out,
        "{} clients, {} workload, {:.1} s: {} ok, {} fail ({} of them cas mismatches), {} info \
         ({} attempts)",
        args.clients,
        args.workload,
        r.elapsed.as_secs_f64(),
        r.ok,
        r.fail,
        r.cas_mismatch,
        r.info,
        r.attempts
    )?;
    writeln!(
        out,
        "throughput: {:.0} ops/s answered (ok and cas mismatch), {:.0} ok ops/s",
        r.throughput(),
        r.ok_throughput()
    )?;
    writeln!(
        out,
        "latency: p50 {} us, p99 {} us, p999 {} us, max {} us",
        q(0.5),
        q(0.99),
        q(0.999),
        r.latency_us.max()
    )?;
    if let Some(broken) = &r.violation {
        writeln!(out, "VIOLATION: {broken}")?;
    }
    if let Some(path) = &args.history {
        let model = match args.workload {
            WorkloadName::ListAppend => "list-append",
            WorkloadName::Bank => {
                // Judged as answered (above); no history model reads it.
                return writeln!(out, "history: {}", path.display());
            }
            _ => "kv",
        };
        writeln!(
            out,
            "history: {} (check with `synod check-history {} --model {model}`)",
            path.display(),
            path.display()
        )?;
    }
    Ok(())
}

/// `synod node`: one cluster member in the foreground.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Protocol to run.
    #[arg(long, value_parser = crate::registry::value_parser(true))]
    pub protocol: String,
    /// This node's id (it must appear in --peers).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// All members, this node included: ID=PEER_ADDR/CLIENT_ADDR,…
    /// (e.g. 1=127.0.0.1:7001/127.0.0.1:7101,2=…).
    #[arg(long, value_parser = parse_peers)]
    pub peers: Members,
    /// Data directory (the WAL and snapshots).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Cluster name; peers from another cluster are refused.
    #[arg(long, default_value = "synod")]
    pub cluster_id: String,
    /// Keep state in memory instead of the WAL (lost on restart; for measuring the
    /// cost of durability only).
    #[arg(long)]
    pub memory: bool,
    /// Write the WAL without fsync (not crash-safe; for measurements only).
    #[arg(long)]
    pub no_fsync: bool,
    /// Mutual TLS between peers: the CA certificate (PEM).
    #[arg(long, requires_all = ["tls_cert", "tls_key"], value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Mutual TLS: this node's certificate chain (PEM).
    #[arg(long, requires = "tls_ca", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Mutual TLS: this node's private key (PEM).
    #[arg(long, requires = "tls_ca", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Seed of the protocol's randomness (default: the node id).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Tokio worker threads. 1 (the default) runs the node on one thread, which is
    /// fastest when nodes share a few cores (each node is one protocol task plus
    /// I/O tasks); more threads spread connection work (e.g. TLS) over cores. The
    /// WAL always syncs on its own thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

use synod_runtime::node::{Member, NodeConfig, StorageChoice};
use synod_runtime::wal::SyncMode;

/// A parsed `--peers` list.
#[derive(Clone, Debug)]
pub struct Members(pub Vec<Member>);

fn parse_peers(s: &str) -> Result<Members, String> {
    synod_runtime::node::parse_members(s).map(Members)
}

impl NodeArgs {
    fn config(&self) -> NodeConfig {
        let storage = if self.memory {
            StorageChoice::Memory
        } else {
            StorageChoice::File {
                dir: self.data_dir.clone(),
                sync: if self.no_fsync {
                    SyncMode::Never
                } else {
                    SyncMode::Fsync
                },
            }
        };
        let tls = match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => Some(synod_runtime::transport::TlsConfig {
                ca_cert: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        NodeConfig {
            protocol: self.protocol.clone(),
            id: synod_core::NodeId(self.id),
            members: self.peers.0.clone(),
            cluster_id: self.cluster_id.clone(),
            storage,
            tls,
        }
    }
}

/// Runs `synod node` until SIGTERM or Ctrl-C; returns the exit code.
pub fn cmd_node(args: &NodeArgs) -> Result<i32, String> {
    let config = args.config();
    let real = real_protocol(&args.protocol)?;
    let runtime = runtime(args.threads)?;
    runtime.block_on(async move {
        let node = (real.start)(config.clone(), args.seed.unwrap_or(args.id))
            .await
            .map_err(|e| format!("node {}: {e}", config.id))?;
        eprintln!(
            "node {} ({}) serving clients on {}, peers on {}",
            config.id, config.protocol, node.client_addr, node.peer_addr
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        let stop = async {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        node.run_until(stop)
            .await
            .map_err(|e| format!("node {}: {e}", config.id))?;
        eprintln!("node {}: stopped", config.id);
        Ok(0)
    })
}

/// `synod cluster`.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// up or down.
    #[command(subcommand)]
    pub action: ClusterAction,
}

/// `synod cluster up|down`.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterAction {
    /// Start a local multi-process cluster on loopback, one `synod node` per member.
    Up(ClusterUpArgs),
    /// Stop the cluster started in DIR (SIGTERM, then SIGKILL after 5 s).
    Down {
        /// The cluster's directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `synod cluster up`.
#[derive(Args, Debug)]
pub struct ClusterUpArgs {
    /// Protocol to run.
    #[arg(long, value_parser = crate::registry::value_parser(true))]
    pub protocol: String,
    /// Members.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Directory for the members' data, logs and `cluster.json`.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Node N listens for peers on BASE+N and for clients on BASE+100+N.
    #[arg(long, default_value_t = 7000, value_parser = clap::value_parser!(u16).range(1024..=65000))]
    pub base_port: u16,
    /// Keep state in memory (see `synod node --memory`).
    #[arg(long)]
    pub memory: bool,
    /// WAL without fsync (see `synod node --no-fsync`).
    #[arg(long)]
    pub no_fsync: bool,
}

/// What `cluster up` records in `DIR/cluster.json` for `cluster down` and for users.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct ClusterFile {
    /// Protocol.
    pub protocol: String,
    /// One entry per member.
    pub members: Vec<ClusterMember>,
}

/// A member in `cluster.json`.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct ClusterMember {
    /// Node id.
    pub id: u64,
    /// Peer address.
    pub peer: SocketAddr,
    /// Client address.
    pub client: SocketAddr,
    /// Process id of its `synod node`.
    pub pid: u32,
}

/// Runs `synod cluster up|down`; returns the exit code.
pub fn cmd_cluster(args: &ClusterArgs, out: &mut dyn Write) -> Result<i32, String> {
    match &args.action {
        ClusterAction::Up(up) => cluster_up(up, out),
        ClusterAction::Down { dir } => cluster_down(dir, out),
    }
}

fn cluster_file(dir: &std::path::Path) -> PathBuf {
    dir.join("cluster.json")
}

fn cluster_up(args: &ClusterUpArgs, out: &mut dyn Write) -> Result<i32, String> {
    let file = cluster_file(&args.dir);
    if let Ok(existing) = read_cluster(&file) {
        if existing.members.iter().any(|m| process_alive(m.pid)) {
            return Err(format!(
                "a cluster started in {} is still running; run `synod cluster down --dir {}` first",
                args.dir.display(),
                args.dir.display()
            ));
        }
    }
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let ip = std::net::Ipv4Addr::LOCALHOST;
    let members: Vec<Member> = (1..=args.nodes)
        .map(|id| Member {
            id: synod_core::NodeId(id),
            peer: SocketAddr::from((ip, args.base_port + id as u16)),
            client: SocketAddr::from((ip, args.base_port + 100 + id as u16)),
        })
        .collect();
    let peers = members
        .iter()
        .map(|m| format!("{}={}/{}", m.id.0, m.peer, m.client))
        .collect::<Vec<_>>()
        .join(",");
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the synod binary: {e}"))?;
    let mut recorded = Vec::new();
    for m in &members {
        let pid = spawn_member(&exe, args, m, &peers)?;
        recorded.push(ClusterMember {
            id: m.id.0,
            peer: m.peer,
            client: m.client,
            pid,
        });
    }
    let doc = ClusterFile {
        protocol: args.protocol.clone(),
        members: recorded,
    };
    let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&file, json).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    wait_until_serving(&doc, &args.dir)?;
    let addrs: Vec<String> = doc.members.iter().map(|m| m.client.to_string()).collect();
    writeln!(
        out,
        "{} cluster of {} up in {} (logs: node-N.log)\nclients: {}\nload it:  synod bench --addr {}\nstop it:  synod cluster down --dir {}",
        args.protocol,
        args.nodes,
        args.dir.display(),
        addrs.join(","),
        addrs.join(","),
        args.dir.display()
    )
    .map_err(|e| format!("cannot write output: {e}"))?;
    Ok(0)
}

fn spawn_member(
    exe: &std::path::Path,
    args: &ClusterUpArgs,
    m: &Member,
    peers: &str,
) -> Result<u32, String> {
    use std::os::unix::process::CommandExt;
    let log_path = args.dir.join(format!("node-{}.log", m.id.0));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("node")
        .args(["--protocol", &args.protocol])
        .args(["--id", &m.id.0.to_string()])
        .args(["--peers", peers])
        .arg("--data-dir")
        .arg(args.dir.join(format!("node-{}", m.id.0)))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        // Its own process group: a Ctrl-C in the terminal that ran `up` does not
        // reach the members.
        .process_group(0);
    if args.memory {
        cmd.arg("--memory");
    }
    if args.no_fsync {
        cmd.arg("--no-fsync");
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start node {}: {e}", m.id))?;
    Ok(child.id())
}

fn wait_until_serving(doc: &ClusterFile, dir: &std::path::Path) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for m in &doc.members {
        loop {
            let ok = runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_millis(500),
                    synod_runtime::client::probe(m.client),
                )
                .await
                .is_ok_and(|r| r.is_ok())
            });
            if ok {
                break;
            }
            if !process_alive(m.pid) || std::time::Instant::now() > deadline {
                let log = dir.join(format!("node-{}.log", m.id));
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                return Err(format!(
                    "node {} is not serving on {} (log {}):\n{}",
                    m.id,
                    m.client,
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn read_cluster(file: &std::path::Path) -> Result<ClusterFile, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a cluster file: {e}", file.display()))
}

fn cluster_down(dir: &std::path::Path, out: &mut dyn Write) -> Result<i32, String> {
    use nix::sys::signal::{kill, Signal};
    let doc = read_cluster(&cluster_file(dir))?;
    for m in &doc.members {
        let _ = kill(pid_of(m.pid), Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while doc.members.iter().any(|m| process_alive(m.pid)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut killed = 0;
    for m in doc.members.iter().filter(|m| process_alive(m.pid)) {
        let _ = kill(pid_of(m.pid), Signal::SIGKILL);
        killed += 1;
    }
    writeln!(
        out,
        "{} cluster in {} stopped ({killed} member(s) needed SIGKILL)",
        doc.protocol,
        dir.display()
    )
    .map_err(|e| format!("cannot write output: {e}"))?;
    Ok(0)
}

fn pid_of(pid: u32) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(pid as i32)
}

/// Whether `pid` is a live process (not a zombie awaiting its parent).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
