//! `zk-bench`: closed-loop `setData` load against a real ZooKeeper ensemble — the
//! reference `scripts/bench-zookeeper.sh` measures Synod's Zab beside.
//!
//! Each client is its own ZooKeeper session (one TCP connection, to a server the
//! client library picks from `--addr`), and does one `setData` at a time of a
//! 16-byte value on one of `--keys` znodes drawn uniformly — the `write` workload of
//! `synod bench`. Prints the same JSON fields as `synod bench --json`
//! (`ops_per_sec`, `ok_per_sec`, `latency_us.{p50,p99,p999}`).

use clap::Parser;
use hdrhistogram::Histogram;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use zookeeper_client as zk;

#[derive(Parser, Debug)]
#[command(about = "closed-loop setData load against a ZooKeeper ensemble")]
struct Args {
    /// The ensemble's client addresses, `host:port,host:port,…`.
    #[arg(long)]
    addr: String,
    /// Concurrent closed-loop clients (sessions).
    #[arg(long, default_value_t = 64)]
    clients: u32,
    /// Seconds of timed load.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Distinct znodes written.
    #[arg(long, default_value_t = 1000)]
    keys: u32,
}

const ROOT: &str = "/synod-bench";

fn path(key: u32) -> String {
    format!("{ROOT}/k{key}")
}

/// Creates `path` unless it exists.
async fn ensure(client: &zk::Client, path: &str) -> Result<(), String> {
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    match client.create(path, b"0000000000000000", &options).await {
        Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
        Err(e) => Err(format!("create {path}: {e}")),
    }
}

struct Tally {
    ok: u64,
    errors: u64,
    latency: Histogram<u64>,
}

async fn run_client(addr: String, id: u32, keys: u32, end: Instant) -> Result<Tally, String> {
    let client = zk::Client::connect(&addr)
        .await
        .map_err(|e| format!("client {id}: connect to {addr}: {e}"))?;
    let mut tally = Tally {
        ok: 0,
        errors: 0,
        latency: Histogram::new(3).expect("3 significant figures"),
    };
    // xorshift64*, seeded per client: the keys are uniform, the run repeatable.
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (u64::from(id) + 1);
    let mut n = 0u64;
    while Instant::now() < end {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let key = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % u64::from(keys)) as u32;
        n += 1;
        let value = format!("{:0>16}", format!("{id}.{n}"));
        let start = Instant::now();
        match client.set_data(&path(key), value.as_bytes(), None).await {
            Ok(_) => {
                tally.ok += 1;
                let us = start.elapsed().as_micros() as u64;
                tally.latency.record(us.max(1)).expect("in range");
            }
            Err(_) => tally.errors += 1,
        }
    }
    Ok(tally)
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    if args.clients == 0 || args.keys == 0 {
        return Err("--clients and --keys must be at least 1".into());
    }
    let setup = zk::Client::connect(&args.addr)
        .await
        .map_err(|e| format!("connect to {}: {e}", args.addr))?;
    ensure(&setup, ROOT).await?;
    for key in 0..args.keys {
        ensure(&setup, &path(key)).await?;
    }
    let end = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|id| tokio::spawn(run_client(args.addr.clone(), id, args.keys, end)))
        .collect();
    let mut total = Tally {
        ok: 0,
        errors: 0,
        latency: Histogram::new(3).expect("3 significant figures"),
    };
    for task in tasks {
        let t = task.await.map_err(|e| format!("client task: {e}"))??;
        total.ok += t.ok;
        total.errors += t.errors;
        total.latency.add(&t.latency).expect("same bounds");
    }
    let secs = started.elapsed().as_secs_f64();
    let q = |p: f64| total.latency.value_at_quantile(p);
    Ok(serde_json::json!({
        "system": "zookeeper",
        "workload": "write",
        "clients": args.clients,
        "seconds": secs,
        "ok": total.ok,
        "errors": total.errors,
        "ops_per_sec": total.ok as f64 / secs,
        "ok_per_sec": total.ok as f64 / secs,
        "latency_us": { "p50": q(0.5), "p99": q(0.99), "p999": q(0.999) },
    }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(doc) => {
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zk-bench: {e}");
            ExitCode::from(1)
        }
    }
}
