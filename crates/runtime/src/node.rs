//! One cluster member as a real process: a protocol node behind the [`driver`],
//! talking to its peers over [`TcpTransport`], storing to a [`FileStorage`] WAL (or
//! memory), and serving clients on its own port ([`server`]).
//!
//! The runtime knows no protocol: [`start`] runs any [`Node`] it is handed — Raft,
//! Multi-Paxos, yours — replicating any application, and its client port speaks the
//! node's own request and response types ([`crate::client`]). Choosing a protocol by
//! name is the caller's business (the `synod` binary's registry). Below this level,
//! [`driver::spawn`] takes the node, a transport and a storage of your own.
//!
//! [`driver`]: crate::driver
//! [`server`]: crate::server

use crate::driver::{self, DriverError};
use crate::server::{serve_clients, ClientServerConfig, ClientServerStats};
use crate::transport::{peer_map, TcpTransport, TlsConfig, TransportConfig};
use crate::wal::{FileStorage, SyncMode, WalOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use synod_core::{
    MemStorage, Node, NodeId, Recovered, Storage, StorageError, TransportError, WriteBatch,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One member of the cluster: its id, peer address and client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The node.
    pub id: NodeId,
    /// Where peers connect.
    pub peer: SocketAddr,
    /// Where clients connect.
    pub client: SocketAddr,
}

/// Parses a member list `ID=PEER_ADDR/CLIENT_ADDR,…`, e.g.
/// `1=127.0.0.1:7001/127.0.0.1:7101,2=127.0.0.1:7002/127.0.0.1:7102`. Rejects a node
/// listed twice and an address used twice, naming the entry.
pub fn parse_members(list: &str) -> Result<Vec<Member>, String> {
    let mut members: Vec<Member> = Vec::new();
    let mut addrs = BTreeSet::new();
    for (i, entry) in list.split(',').map(str::trim).enumerate() {
        let member =
            parse_member(entry).map_err(|e| format!("member {} (`{entry}`): {e}", i + 1))?;
        if members.iter().any(|m| m.id == member.id) {
            return Err(format!(
                "member {} (`{entry}`): node {} is listed twice",
                i + 1,
                member.id
            ));
        }
        for addr in [member.peer, member.client] {
            if !addrs.insert(addr) {
                return Err(format!(
                    "member {} (`{entry}`): address {addr} is used twice",
                    i + 1
                ));
            }
        }
        members.push(member);
    }
    Ok(members)
}

fn parse_member(entry: &str) -> Result<Member, String> {
    let (id, addrs) = entry
        .split_once('=')
        .ok_or("expected ID=PEER_ADDR/CLIENT_ADDR")?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| format!("`{id}` is not a node id (a positive integer)"))?;
    if id == 0 {
        return Err("node ids start at 1".into());
    }
    let (peer, client) = addrs
        .split_once('/')
        .ok_or("expected PEER_ADDR/CLIENT_ADDR after `=`")?;
    let addr = |s: &str| {
        s.trim()
            .parse::<SocketAddr>()
            .map_err(|_| format!("`{s}` is not a socket address like 127.0.0.1:7001"))
    };
    Ok(Member {
        id: NodeId(id),
        peer: addr(peer)?,
        client: addr(client)?,
    })
}

/// Where a node keeps its durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageChoice {
    /// The segmented file WAL in `dir`.
    File {
        /// Data directory.
        dir: PathBuf,
        /// Whether writes are fsync'd before they are acknowledged.
        sync: SyncMode,
    },
    /// In memory: lost on restart. Only for measuring the cost of durability.
    Memory,
}

/// Everything one node needs to run, besides the node itself.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The protocol's name. It chooses nothing — the node handed to [`start`] is the
    /// protocol — but peers compare it in the handshake (a Raft node refuses a Paxos
    /// peer) and clients read it in the welcome.
    pub protocol: String,
    /// This node.
    pub id: NodeId,
    /// All members, this node included.
    pub members: Vec<Member>,
    /// Cluster name; peers of another cluster are refused.
    pub cluster_id: String,
    /// Storage.
    pub storage: StorageChoice,
    /// Mutual TLS between peers.
    pub tls: Option<TlsConfig>,
}

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The peer transport failed to start.
    #[error("peer transport: {0}")]
    Transport(#[from] TransportError),
    /// Storage failed to open.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The node task failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
}

impl NodeConfig {
    /// This node's own member entry.
    pub fn me(&self) -> Result<&Member, NodeError> {
        self.members
            .iter()
            .find(|m| m.id == self.id)
            .ok_or_else(|| NodeError::Config(format!("node {} is not in the member list", self.id)))
    }

    fn validate(&self, node: NodeId) -> Result<(), NodeError> {
        if self.protocol.is_empty() {
            return Err(NodeError::Config("the protocol name is empty".into()));
        }
        if node != self.id {
            return Err(NodeError::Config(format!(
                "the node handed in is node {node}, the configuration is node {}",
                self.id
            )));
        }
        self.me()?;
        let ids: BTreeSet<NodeId> = self.members.iter().map(|m| m.id).collect();
        if ids.len() != self.members.len() {
            return Err(NodeError::Config("a node is listed twice".into()));
        }
        Ok(())
    }
}

/// A started node.
pub struct RunningNode {
    /// Where peers connect (the bound address).
    pub peer_addr: SocketAddr,
    /// Where clients connect (the bound address).
    pub client_addr: SocketAddr,
    /// Client-server counters.
    pub client_stats: Arc<ClientServerStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), NodeError>>,
}

impl RunningNode {
    /// Asks the node to stop gracefully.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the node has stopped (after [`RunningNode::stop`] or a fatal error).
    pub async fn wait(self) -> Result<(), NodeError> {
        driver::joined(self.task.await)
    }

    /// Runs until `stop` completes (then stops gracefully) or the node fails.
    pub async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), NodeError> {
        tokio::select! {
            _ = stop => {
                self.stop();
                self.wait().await
            }
            ended = &mut self.task => driver::joined(ended),
        }
    }

    /// Whether the node has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Runs `node` as the member `config` describes, on the current tokio runtime: opens
/// storage (recovering what it holds, which the node rebuilds from in `on_start`),
/// binds the peer and client ports, and runs. `node` is freshly built (not started)
/// and is member `config.id`; its clients speak `N::Request` and `N::Response`.
pub async fn start<N: Node + Send + 'static>(
    node: N,
    config: NodeConfig,
) -> Result<RunningNode, NodeError> {
    config.validate(node.id())?;
    let me = *config.me()?;
    // Storage first: a damaged WAL stops the node before it takes any port.
    let storage = open_storage(&config.storage).await?;
    let peers = peer_map(config.members.iter().map(|m| (m.id, m.peer)))
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let mut transport_config =
        TransportConfig::new(&config.cluster_id, &config.protocol, me.id, me.peer, peers);
    transport_config.tls = config.tls.clone();
    let transport = TcpTransport::<N::Message>::bind(transport_config).await?;
    let peer_addr = transport.local_addr();
    let clients = TcpListener::bind(me.client)
        .await
        .map_err(|source| NodeError::Listen {
            addr: me.client,
            source,
        })?;
    let client_addr = clients.local_addr().map_err(|source| NodeError::Listen {
        addr: me.client,
        source,
    })?;
    let handle = match storage {
        Opened::File(storage) => driver::spawn(node, transport, storage),
        Opened::Memory(storage) => driver::spawn(node, transport, storage),
    };
    let server_config = Arc::new(ClientServerConfig {
        node: me.id,
        protocol: config.protocol.clone(),
        client_addrs: config
            .members
            .iter()
            .map(|m| (m.id, m.client))
            .collect::<BTreeMap<_, _>>(),
    });
    let client_stats = Arc::new(ClientServerStats::default());
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(serve_clients::<N>(
        clients,
        server_config,
        handle.requests(),
        Arc::clone(&client_stats),
        stopped.clone(),
    ));
    let task = tokio::spawn(async move {
        let result = handle.run_until(stopped).await;
        // Wait for the accept loop to be gone, so the client port is free again.
        server.abort();
        let _ = server.await;
        result.map_err(NodeError::from)
    });
    Ok(RunningNode {
        peer_addr,
        client_addr,
        client_stats,
        stop,
        task,
    })
}

/// Opened storage of either kind; lives only until the driver takes it.
#[allow(clippy::large_enum_variant)]
enum Opened {
    File(Preloaded<FileStorage>),
    Memory(MemStorage),
}

/// Storage whose state was already recovered when it was opened: `load` hands that
/// state over instead of reading the directory a second time.
struct Preloaded<S> {
    storage: S,
    recovered: Option<Recovered>,
}

#[async_trait::async_trait]
impl<S: Storage> Storage for Preloaded<S> {
    async fn load(&mut self) -> Result<Recovered, StorageError> {
        match self.recovered.take() {
            Some(recovered) => Ok(recovered),
            None => self.storage.load().await,
        }
    }

    async fn persist(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        self.storage.persist(batch).await
    }

    async fn persist_all(&mut self, batches: Vec<WriteBatch>) -> Result<(), StorageError> {
        self.storage.persist_all(batches).await
    }
}

async fn open_storage(choice: &StorageChoice) -> Result<Opened, NodeError> {
    match choice {
        StorageChoice::File { dir, sync } => {
            let options = WalOptions::default().with_sync_mode(*sync);
            let dir = dir.clone();
            // Opening recovers (and repairs a torn tail).
            let (storage, recovered) =
                tokio::task::spawn_blocking(move || FileStorage::open(&dir, options))
                    .await
                    .map_err(|_| NodeError::Driver(DriverError::StorageThreadGone))??;
            Ok(Opened::File(Preloaded {
                storage,
                recovered: Some(recovered),
            }))
        }
        StorageChoice::Memory => Ok(Opened::Memory(MemStorage::new())),
    }
}
