//! # synod-runtime
//!
//! Runs the same sans-IO protocol nodes that the simulator runs, for real: a tokio
//! driver that carries out [`Effects`](synod_core::Effects) with the persist-before-send
//! rule, a TCP transport with optional mutual TLS, and a segmented, checksummed,
//! fsync'd file WAL.
//!
//! * [`node`] — one cluster member: protocol node + driver + transport + storage +
//!   client port. `synod node` and `synod cluster up` are thin wrappers around it.
//! * [`driver`] — the node task: inputs in, effects out, persist before send, group
//!   commit through [`wal::GroupCommitQueue`] on a dedicated storage thread.
//! * [`wal`] — crash-safe file storage implementing [`synod_core::Storage`].
//! * [`transport`] — TCP peer transport implementing [`synod_core::Transport`].
//! * [`client`] / [`server`] — the client protocol on each node's client port.
//!
//! The runtime depends on no protocol crate: any [`synod_core::Node`] runs here
//! unchanged, replicating whatever application it was built with, and its clients
//! speak the node's own request and response types.
//!
//! # Example: a one-node Raft cluster with a file WAL, and a client
//!
//! ```
//! use std::time::Duration;
//! use synod_core::{ClientId, KvOp, KvResult, NodeId};
//! use synod_raft::{RaftConfig, RaftNode, Request, Response};
//! use synod_runtime::client::ClientOf;
//! use synod_runtime::node::{self, Member, NodeConfig, StorageChoice};
//! use synod_runtime::wal::SyncMode;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("synod-doc-{}", std::process::id()));
//! let free = || std::net::TcpListener::bind("127.0.0.1:0")?.local_addr();
//! let me = Member { id: NodeId(1), peer: free()?, client: free()? };
//! // Raft replicating the built-in KV (`RaftNode` is `RaftNode<Kv>`).
//! let raft: RaftNode = RaftNode::new(RaftConfig::lan(NodeId(1), [NodeId(1)], 1));
//! let running = node::start(raft, NodeConfig {
//!     protocol: "raft".into(),
//!     id: NodeId(1),
//!     members: vec![me],
//!     cluster_id: "example".into(),
//!     storage: StorageChoice::File { dir: dir.clone(), sync: SyncMode::Fsync },
//!     tls: None,
//! })
//! .await?;
//!
//! let mut client = ClientOf::<RaftNode>::new(ClientId(1), vec![running.client_addr]);
//! let put = Request::Command(KvOp::Put { key: "greeting".into(), value: "hello".into() });
//! let written = client.call(put, Duration::from_secs(10)).await?;
//! assert_eq!(written, Response::Output(KvResult::Written));
//! let read = client.call(Request::Query("greeting".into()), Duration::from_secs(10)).await?;
//! assert_eq!(read, Response::QueryOutput(Some("hello".into())));
//!
//! running.stop();
//! running.wait().await?;
//! std::fs::remove_dir_all(dir)?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod driver;
pub mod framed;
pub mod node;
pub mod pipeline;
pub mod server;
mod sync;
pub mod transport;
pub mod wal;

pub use synod_core;
