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
//! Any protocol node that implements [`synod_core::KvNode`] runs here unchanged.
//!
//! # Example: a one-node Raft cluster with a file WAL, and a client
//!
//! ```
//! use std::time::Duration;
//! use synod_core::{ClientId, KvOp, KvResult, NodeId};
//! use synod_runtime::client::KvClient;
//! use synod_runtime::node::{self, Member, NodeConfig, StorageChoice};
//! use synod_runtime::wal::SyncMode;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("synod-doc-{}", std::process::id()));
//! let free = || std::net::TcpListener::bind("127.0.0.1:0")?.local_addr();
//! let me = Member { id: NodeId(1), peer: free()?, client: free()? };
//! let running = node::start(NodeConfig {
//!     protocol: "raft".into(),
//!     id: NodeId(1),
//!     members: vec![me],
//!     cluster_id: "example".into(),
//!     storage: StorageChoice::File { dir: dir.clone(), sync: SyncMode::Fsync },
//!     tls: None,
//!     seed: 1,
//! })
//! .await?;
//!
//! let mut client = KvClient::new(ClientId(1), vec![running.client_addr]);
//! let put = KvOp::Put { key: "greeting".into(), value: "hello".into() };
//! assert_eq!(client.call(put, Duration::from_secs(10)).await?, KvResult::Written);
//! let get = KvOp::Get { key: "greeting".into() };
//! let read = client.call(get, Duration::from_secs(10)).await?;
//! assert_eq!(read, KvResult::Value(Some("hello".into())));
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
pub mod transport;
pub mod wal;

pub use synod_core;
