//! `anchor-load`: one closed-loop write load, three backends — Synod's KV client, etcd
//! and ZooKeeper — so that `scripts/bench-anchors.sh` measures Synod beside the systems
//! users would pick instead with the same generator.
//!
//! Every client is closed-loop (one operation at a time, no think time) on its own
//! session and connection, and each operation is a put of a fresh 16-byte value on a
//! key drawn uniformly from `--keys` — the `write` workload of `synod bench`. Sessions
//! are opened (and warmed by one round trip) before the clock starts. The JSON summary
//! has the fields of `synod bench --json` (`ops_per_sec`, `ok_per_sec`,
//! `latency_us.{p50,p99,p999}`, `clients`).
//!
//! # Layout
//! - [`args`] — the command line and its checks
//! - [`load`] — the key and value generator, the closed-loop client, the summary
//! - [`synod`], [`etcd`], [`zookeeper`] — one session per client of each system

mod args;
#[cfg(feature = "etcd")]
mod etcd;
mod load;
mod synod;
mod zookeeper;

use args::{Args, Backend};
use clap::Parser;
use load::Session;
use std::process::ExitCode;

// Every Synod binary runs on this allocator (see the workspace's Cargo.toml); the load
// generator does too, whichever system it drives.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a run needs to open client sessions, set up before the clock starts.
enum Target {
    Synod(synod::Cluster),
    #[cfg(feature = "etcd")]
    Etcd(etcd::Cluster),
    Zookeeper(zookeeper::Ensemble),
}

impl Target {
    async fn prepare(args: &Args) -> Result<Target, String> {
        Ok(match args.backend {
            Backend::Synod => Target::Synod(synod::Cluster::prepare(&args.addrs()).await?),
            #[cfg(feature = "etcd")]
            Backend::Etcd => Target::Etcd(etcd::Cluster::new(args.addrs())),
            #[cfg(not(feature = "etcd"))]
            Backend::Etcd => {
                return Err("built without the etcd backend: build with \
                     `cargo build --release -p synod-anchors --features etcd` \
                     (needs Debian's protobuf-compiler and libprotobuf-dev)"
                    .into())
            }
            Backend::Zookeeper => {
                Target::Zookeeper(zookeeper::Ensemble::prepare(&args.addr, args.keys).await?)
            }
        })
    }

    /// The system's name in the summary (`synod raft`, `etcd`, `zookeeper`).
    fn system(&self) -> String {
        match self {
            Target::Synod(c) => format!("synod {}", c.protocol()),
            #[cfg(feature = "etcd")]
            Target::Etcd(_) => "etcd".into(),
            Target::Zookeeper(_) => "zookeeper".into(),
        }
    }

    async fn open(&self, client: u32) -> Result<Session, String> {
        Ok(match self {
            Target::Synod(c) => Session::Synod(c.open(client).await?),
            #[cfg(feature = "etcd")]
            Target::Etcd(c) => Session::Etcd(c.open(client).await?),
            Target::Zookeeper(e) => Session::Zookeeper(e.open(client).await?),
        })
    }
}

async fn run(args: Args) -> Result<load::Summary, String> {
    args.check()?;
    let target = Target::prepare(&args).await?;
    let sessions = load::open_all(args.clients, |client| target.open(client)).await?;
    let measured = load::run(sessions, args.keys, args.duration()).await;
    Ok(load::Summary::new(target.system(), args.clients, &measured))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(summary) if json => {
            println!("{}", summary.to_json());
            ExitCode::SUCCESS
        }
        Ok(summary) => {
            println!("{}", summary.to_line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("anchor-load: {e}");
            ExitCode::from(1)
        }
    }
}
