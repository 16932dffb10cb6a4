//! # synod-zab
//!
//! Zab, ZooKeeper's atomic broadcast (Junqueira, Reed & Serafini, "Zab:
//! High-performance broadcast for primary-backup systems", DSN 2011; Medeiros,
//! "ZooKeeper's atomic broadcast protocol: Theory and practice", 2012), sans-IO over
//! synod-core: no sockets, clocks, threads or entropy — only inputs and
//! [`synod_core::Effects`]. `docs/protocols/zab.md` maps the paper to the code and
//! the tests.
//!
//! * [`election`] — Fast Leader Election, a pure state machine.
//! * [`log`] — the transaction log at dense positions and the per-follower sync
//!   plan (DIFF, TRUNC+DIFF, SNAP) from the follower's epoch summary.
//! * [`ZabNode`] — one server over any [`synod_core::StateMachine`]: discovery,
//!   synchronisation and broadcast as leader or follower, leader-confirmed reads,
//!   snapshots, recovery.
//!
//! ```
//! use synod_core::{ClientId, ClientRequest, Effects, KvOp, MemStorage, Node, NodeId, Time};
//! use synod_zab::{Request, ZabConfig, ZabNode};
//!
//! // A one-server ensemble elects itself, establishes epoch 1 and commits alone.
//! let mut z: ZabNode = ZabNode::new(ZabConfig::lan(NodeId(1), [NodeId(1)], 7));
//! let mut disk = MemStorage::new();
//! let mut fx = Effects::new();
//! z.on_start(Time::ZERO, disk.recover(), &mut fx);
//! let mut tag = fx.persist_notify.take();
//! disk.persist(fx.persist.take());
//! while let Some(t) = tag {
//!     fx = Effects::new();
//!     z.on_persisted(Time::ZERO, t, &mut fx);
//!     tag = fx.persist_notify.take();
//!     disk.persist(fx.persist.take());
//! }
//! assert_eq!(z.established_epoch().map(|e| e.0), Some(1));
//!
//! let put = KvOp::Put { key: "k".into(), value: "v".into() };
//! let mut fx = Effects::new();
//! z.on_client_request(Time::ZERO, ClientRequest { client: ClientId(1), seq: 1, op: Request::Command(put) }, &mut fx);
//! disk.persist(fx.persist.take());
//! let tag = fx.persist_notify.take().expect("the leader waits for its own write");
//! let mut fx = Effects::new();
//! z.on_persisted(Time::ZERO, tag, &mut fx);
//! assert_eq!(fx.early_replies.len(), 1, "committed once durable on a quorum: itself");
//! assert_eq!(z.state_machine().read("k"), Some("v"));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod election;
mod follower;
mod leader;
pub mod log;
pub mod message;
pub mod node;
pub mod types;

pub use config::ZabConfig;
pub use election::{Election, Notification, PeerState, Step, To, Vote};
pub use log::{sync_plan, HistorySummary, SyncPlan, TxnLog};
pub use message::{Message, Txn};
pub use node::{Request, Response, ZabNode, ZabTimer};
pub use synod_core;
pub use types::{Epoch, Pos, Zxid};
