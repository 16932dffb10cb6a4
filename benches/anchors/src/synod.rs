//! The Synod backend: `put` of key `k<n>` through the harness's [`KvClient`], one
//! session per client (its own connection to one node at a time, following redirects
//! to the leader and retrying with the same `(client, seq)`). The cluster's protocol
//! is the one its nodes name in their welcome.
//!
//! Unlike `synod bench`, which multiplexes every client over one connection per node,
//! each client here has its own connection, as the etcd and ZooKeeper clients do.

use crate::load::OP_TIMEOUT;
use std::net::SocketAddr;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult};
use synod_harness::kv_client::KvClient;

/// How long a node may take to send its welcome.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A cluster whose protocol is known.
pub struct Cluster {
    protocol: String,
    nodes: Vec<SocketAddr>,
    /// Client `i` is `ClientId(id_base + i + 1)`.
    id_base: u64,
}

impl Cluster {
    /// Learns the protocol from the first node that sends its welcome.
    pub async fn prepare(addrs: &[String]) -> Result<Cluster, String> {
        let nodes = addrs
            .iter()
            .map(|a| a.parse().map_err(|e| format!("--addr {a}: {e}")))
            .collect::<Result<Vec<SocketAddr>, String>>()?;
        let mut unreachable = Vec::new();
        for &node in &nodes {
            match tokio::time::timeout(PROBE_TIMEOUT, synod_runtime::client::probe(node)).await {
                Ok(Ok(welcome)) => {
                    return Ok(Cluster {
                        protocol: welcome.protocol,
                        nodes,
                        id_base: fresh_client_id_base(),
                    })
                }
                Ok(Err(e)) => unreachable.push(e.to_string()),
                Err(_) => unreachable.push(format!("{node}: no welcome within {PROBE_TIMEOUT:?}")),
            }
        }
        Err(format!("no node answered: {}", unreachable.join("; ")))
    }

    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// A session for client `client`, connected and pointed at the leader by one
    /// warm-up read (the client connects lazily).
    pub async fn open(&self, client: u32) -> Result<Session, String> {
        let id = ClientId(self.id_base + u64::from(client) + 1);
        let mut kv = KvClient::new(&self.protocol, id, self.nodes.clone())?;
        let warm_up = KvOp::Get { key: "k0".into() };
        kv.call(warm_up, OP_TIMEOUT)
            .await
            .map_err(|e| format!("first request: {e}"))?;
        Ok(Session { kv })
    }
}

/// Client ids unused by any earlier run against the same cluster, as `synod bench`
/// picks them: the state machine remembers sessions, so a rerun with ids 1..N would
/// be answered as stale retries.
fn fresh_client_id_base() -> u64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    // Room for a million clients per run below the timestamp (CLIENTS_MAX is fewer).
    const _: () = assert!(crate::load::CLIENTS_MAX < 1 << 20);
    micros << 20
}

/// One client's session.
pub struct Session {
    kv: KvClient,
}

impl Session {
    pub async fn put(&mut self, key: u32, value: String) -> Result<(), String> {
        let key = format!("k{key}");
        let op = KvOp::Put {
            key: key.clone(),
            value,
        };
        match self.kv.call(op, OP_TIMEOUT).await {
            Ok(KvResult::Written) => Ok(()),
            Ok(other) => Err(format!("put {key}: answered {other:?}")),
            Err(e) => Err(format!("put {key}: {e}")),
        }
    }
}
