//! # synod-zab
//!
//! Zab, ZooKeeper's atomic broadcast (Junqueira, Reed & Serafini, "Zab:
//! High-performance broadcast for primary-backup systems", DSN 2011; Medeiros,
//! "ZooKeeper's atomic broadcast protocol: Theory and practice", 2012), sans-IO over
//! synod-core: no sockets, clocks, threads or entropy — only inputs and
//! [`synod_core::Effects`].
//!
//! **Work in progress** (issue 16). In place: zxids, epochs and dense log positions
//! ([`types`]), Fast Leader Election as a pure state machine ([`election`]), and the
//! transaction log with the per-follower sync plan (DIFF / TRUNC / SNAP, [`log`]).
//! Discovery, synchronisation, broadcast and the node come next; see
//! `docs/protocols/zab.md` for the design they follow.

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
