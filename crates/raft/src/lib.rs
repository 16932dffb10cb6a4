//! # synod-raft
//!
//! Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! 2014; Ongaro's thesis, 2014) as a **sans-IO** state machine: this crate contains no
//! networking code, no threads, and never reads a clock or the system's entropy. Time
//! arrives as `now` on every input; election jitter comes from a PRNG seeded in the
//! [`RaftConfig`]. A driver feeds inputs to [`RaftNode`] through the
//! [`synod_core::Node`] trait and carries out the returned effects, persisting each
//! batch before sending what depends on it.
//!
//! What is implemented, with the paper's section:
//! * leader election with randomised timeouts (§5.2), the election restriction
//!   (§5.4.1), pre-vote (thesis §9.6) and check-quorum with leader stickiness
//!   (thesis §6.2, §4.2.3);
//! * log replication (§5.3) with per-follower flow control, pipelining, batching and
//!   fast backtracking; the commit rule of §5.4.2 (Figure 8);
//! * linearizable reads by ReadIndex (thesis §6.4), without writing to the log;
//! * log compaction and chunked InstallSnapshot (§7);
//! * single-server membership changes with learners (thesis §4), including the fix
//!   for the 2015 single-server-change bug; leadership transfer (thesis §3.10);
//! * exactly-once client commands for any [`synod_core::StateMachine`], through the
//!   generic session layer [`synod_core::Sessions`] (thesis §6.3); `RaftNode` alone
//!   means `RaftNode<Kv>`, the built-in KV.
//!
//! # Layout
//! - `types` — [`Term`], [`LogIndex`], [`Entry`], [`Command`], [`Membership`]
//! - `message` — the RPCs
//! - `log` — [`RaftLog`]: the consistency check, truncation, compaction
//! - `progress` — the leader's view of each follower (flow control)
//! - `quorum` — pure majority arithmetic over acknowledgements
//! - `node` — [`RaftNode`]: state, inputs, shared transitions, applying entries
//! - `election`, `replication`, `read`, `snapshot`, `membership` — the rules by topic
//! - `config` — [`RaftConfig`]
//!
//! # Your own application
//!
//! `RaftNode<S>` replicates any [`synod_core::StateMachine`] `S`: its commands go
//! through the log ([`Request::Command`]), its reads through ReadIndex
//! ([`Request::Query`]). `examples/bank.rs` is a bank ledger of its own replicated by
//! three nodes over `synod-runtime` (TCP, file WAL) in under 200 lines — copy it:
//! `cargo run -p synod-raft --example bank`. `RaftNode` alone is `RaftNode<Kv>`, the
//! built-in key-value store the harness compares protocols on.
//!
//! # Example: a three-node cluster driven by hand
//!
//! A driver is a loop that feeds inputs and carries out effects. This one keeps the
//! "network" in a queue and the disks in memory, and persists before it sends.
//!
//! ```
//! use std::collections::VecDeque;
//! use synod_core::*;
//! use synod_raft::{Message, RaftConfig, RaftNode, RaftTimer, Request, Response};
//!
//! struct Cluster {
//!     nodes: Vec<RaftNode>,
//!     disks: Vec<MemStorage>,
//!     wire: VecDeque<(NodeId, NodeId, Message)>,
//!     replies: Vec<ClientReply<Response>>,
//! }
//!
//! impl Cluster {
//!     /// Persist first, then send: the rule every driver must follow.
//!     fn drain(&mut self, i: usize, fx: &mut NodeEffects<RaftNode>) {
//!         self.disks[i].persist(fx.persist.take());
//!         let from = self.nodes[i].node_id();
//!         for env in fx.early_sends.drain(..).chain(fx.sends.drain(..)) {
//!             self.wire.push_back((from, env.to, env.msg));
//!         }
//!         self.replies.extend(fx.early_replies.drain(..).chain(fx.replies.drain(..)));
//!         fx.timers.clear(); // this toy driver fires timers by hand
//!     }
//!     fn deliver_all(&mut self, now: Time) {
//!         let mut fx = Effects::new();
//!         while let Some((from, to, msg)) = self.wire.pop_front() {
//!             let i = (to.0 - 1) as usize;
//!             self.nodes[i].on_message(now, from, msg, &mut fx);
//!             self.drain(i, &mut fx);
//!         }
//!     }
//! }
//!
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut c = Cluster {
//!     nodes: ids.iter().map(|&id| RaftNode::new(RaftConfig::lan(id, ids, id.0))).collect(),
//!     disks: ids.iter().map(|_| MemStorage::new()).collect(),
//!     wire: VecDeque::new(),
//!     replies: Vec::new(),
//! };
//! let mut fx = Effects::new();
//! for i in 0..3 {
//!     let recovered = c.disks[i].recover();
//!     c.nodes[i].on_start(Time::ZERO, recovered, &mut fx);
//!     c.drain(i, &mut fx);
//! }
//! // Node 1's election timer fires: pre-vote, vote, then it leads.
//! let now = Time::from_millis(400);
//! c.nodes[0].on_timer(now, RaftTimer::Election, &mut fx);
//! c.drain(0, &mut fx);
//! c.deliver_all(now);
//! assert!(c.nodes[0].is_leader());
//!
//! // A client write commits once a majority has it durably.
//! let put = Request::Command(KvOp::Put { key: "x".into(), value: "1".into() });
//! c.nodes[0].on_client_request(now, ClientRequest { client: ClientId(7), seq: 1, op: put }, &mut fx);
//! c.drain(0, &mut fx);
//! c.deliver_all(now);
//! assert_eq!(c.replies.last().unwrap().outcome, Outcome::Done(Response::Output(KvResult::Written)));
//! assert_eq!(c.nodes[0].state_machine().read("x"), Some("1"));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod election;
mod log;
mod membership;
mod message;
mod node;
mod progress;
mod quorum;
mod read;
mod replication;
mod snapshot;
mod types;

pub use config::RaftConfig;
pub use log::{LogPrev, Mismatch, RaftLog};
pub use message::{AppendResult, Message, SnapshotMeta};
pub use node::{RaftNode, RaftTimer, Request, Response, META_TERM, META_VOTE};
pub use progress::{Mode, Progress};
pub use types::{Command, Entry, LogIndex, Membership, Payload, Term};
