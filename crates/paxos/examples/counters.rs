//! A counter service replicated by Multi-Paxos: your own application over
//! `synod-paxos`, three nodes talking TCP on loopback, each with its own file WAL —
//! stopped and started again, to show the counts are durable.
//!
//! The service is an ordinary Rust type implementing [`StateMachine`]: named
//! counters you add to (the command returns the new value) and read (a query, served
//! by a read round through a quorum, not through a slot). Multi-Paxos chooses each
//! command in a slot and executes it once per `(client, seq)`.
//!
//! Run it with `cargo run -p synod-paxos --example counters`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;
use synod_core::{ClientId, NodeId, StateMachine};
use synod_paxos::{MultiPaxosConfig, MultiPaxosNode, Request, Response};
use synod_runtime::client::ClientOf;
use synod_runtime::node::{self, Member, NodeConfig, RunningNode, StorageChoice};
use synod_runtime::wal::SyncMode;

/// The application: counters by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counters(BTreeMap<String, i64>);

/// Adds `by` to counter `name` (created at 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Add {
    pub name: String,
    pub by: i64,
}

impl StateMachine for Counters {
    type Command = Add;
    /// The counter's new value.
    type Output = i64;
    /// A counter's name.
    type Query = String;
    /// Its value (0 if never added to).
    type QueryOutput = i64;

    fn apply(&mut self, add: &Add) -> i64 {
        let value = self.0.entry(add.name.clone()).or_insert(0);
        *value += add.by;
        *value
    }

    fn query(&self, name: &String) -> i64 {
        self.0.get(name).copied().unwrap_or(0)
    }
}

type Node = MultiPaxosNode<Counters>;

/// Starts the three members, each on its WAL under `dir`.
async fn start(members: &[Member], dir: &Path) -> Result<Vec<RunningNode>, node::NodeError> {
    let ids: Vec<NodeId> = members.iter().map(|m| m.id).collect();
    let mut running = Vec::new();
    for m in members {
        let paxos = Node::new(MultiPaxosConfig::lan(m.id, ids.iter().copied(), m.id.0));
        let config = NodeConfig {
            protocol: "paxos".into(),
            id: m.id,
            members: members.to_vec(),
            cluster_id: "counters".into(),
            storage: StorageChoice::File {
                dir: dir.join(format!("node-{}", m.id.0)),
                sync: SyncMode::Fsync,
            },
            tls: None,
        };
        running.push(node::start(paxos, config).await?);
    }
    Ok(running)
}

async fn stop(nodes: Vec<RunningNode>) -> Result<(), node::NodeError> {
    for n in &nodes {
        n.stop();
    }
    for n in nodes {
        n.wait().await?;
    }
    Ok(())
}

/// Counts page views on a three-node cluster, restarts the whole cluster from its
/// WALs, and returns the counters read back after the restart.
pub async fn run(dir: &Path) -> Result<BTreeMap<String, i64>, Box<dyn std::error::Error>> {
    let free = || TcpListener::bind("127.0.0.1:0")?.local_addr();
    let mut members = Vec::new();
    for id in 1..=3 {
        members.push(Member {
            id: NodeId(id),
            peer: free()?,
            client: free()?,
        });
    }
    let addrs: Vec<SocketAddr> = members.iter().map(|m| m.client).collect();
    let timeout = Duration::from_secs(10);
    let pages = ["home", "docs", "blog"];

    let nodes = start(&members, dir).await?;
    let mut client = ClientOf::<Node>::new(ClientId(1), addrs.clone());
    for i in 0..20 {
        let add = Add {
            name: pages[i % 3].into(),
            by: 1 + i as i64 % 2,
        };
        let Response::Output(_) = client.call(Request::Command(add), timeout).await? else {
            return Err("an add answered with a read's answer".into());
        };
    }
    stop(nodes).await?;

    // Every count survives a restart of every member: they were durable when acked.
    let nodes = start(&members, dir).await?;
    let mut client = ClientOf::<Node>::new(ClientId(2), addrs);
    let mut counts = BTreeMap::new();
    for page in pages {
        match client.call(Request::Query(page.into()), timeout).await? {
            Response::QueryOutput(n) => counts.insert(page.to_string(), n),
            other => return Err(format!("{page}: unexpected answer {other:?}").into()),
        };
    }
    stop(nodes).await?;
    Ok(counts)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("synod-counters-{}", std::process::id()));
    let counts = run(&dir).await?;
    std::fs::remove_dir_all(&dir)?;
    println!("page views after a full restart: {counts:?}");
    Ok(())
}
