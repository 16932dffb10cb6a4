//! # synod-paxos
//!
//! Paxos as **sans-IO** state machines: this crate contains no networking code, no
//! threads, and never reads a clock or the system's entropy. Time arrives as `now`
//! on every input; randomness (election jitter, back-off) comes from a
//! [`synod_core::Prng`] seeded in the configuration. A driver feeds inputs through
//! the [`synod_core::Node`] trait and carries out the returned effects, persisting
//! each batch before it sends anything of the same input — every promise and every
//! acceptance is durable before the message that reveals it leaves.
//!
//! Two layers:
//!
//! * [`single`] — the Synod protocol of "Paxos Made Simple" (Lamport, 2001) §2,
//!   one role per type ([`single::Proposer`], [`single::Acceptor`],
//!   [`single::Learner`]) and a [`single::SynodNode`] running all three, with
//!   randomised back-off for dueling proposers. Readable beside the paper.
//! * [`multi`] — Multi-Paxos replicating any [`synod_core::StateMachine`] (the KV by default):
//!   a stable leader elected by ballot (heartbeats, randomised timeouts, stickiness,
//!   check-quorum); **one phase 1 for all slots** from the leader's first unchosen
//!   slot; phase 2 **pipelined** (a bounded window of accepts in flight) and
//!   **batched** (queued commands share an accept when the window is full); no-op
//!   filling of holes at takeover; in-order execution; catch-up of lagging replicas;
//!   snapshots, log truncation and snapshot transfer; linearizable reads by a quorum
//!   read round (no clock leases); exactly-once commands through the session layer's
//!   `(client, seq)` dedup; optional Flexible Paxos quorums.
//!
//! # Layout
//! - `types` — [`Ballot`], [`Slot`], [`Value`]
//! - `single` — `acceptor`, `proposer`, `learner`, `node` ([`single::SynodNode`])
//! - `multi` — `config` ([`MultiPaxosConfig`]), `message`, `log` ([`SlotLog`]),
//!   `node` ([`MultiPaxosNode`]), `election` (phase 1, takeover), `acceptor`,
//!   `replication` (phase 2), `learner` (catch-up, snapshots), `read`
//!
//! See `docs/protocols/paxos.md` for the paper's rules mapped to functions and tests.
//!
//! # Your own application
//!
//! `MultiPaxosNode<S>` replicates any [`synod_core::StateMachine`] `S`: its commands
//! are chosen in slots ([`Request::Command`]), its reads are read rounds
//! ([`Request::Query`]). `examples/counters.rs` is a counter service of its own
//! replicated by three nodes over `synod-runtime` (TCP, file WAL) and restarted from
//! disk — copy it: `cargo run -p synod-paxos --example counters`.
//! `MultiPaxosNode` alone is `MultiPaxosNode<Kv>`, the built-in key-value store.
//!
//! # Example: a three-node Multi-Paxos cluster driven by hand
//!
//! A driver is a loop that feeds inputs and carries out effects. This one keeps the
//! "network" in a queue and the disks in memory, and persists before it sends.
//!
//! ```
//! use std::collections::VecDeque;
//! use synod_core::*;
//! use synod_paxos::{Message, MultiPaxosConfig, MultiPaxosNode, MultiPaxosTimer, Request, Response};
//!
//! struct Cluster {
//!     nodes: Vec<MultiPaxosNode>,
//!     disks: Vec<MemStorage>,
//!     wire: VecDeque<(NodeId, NodeId, Message)>,
//!     replies: Vec<ClientReply<Response>>,
//! }
//!
//! impl Cluster {
//!     /// Persist first, then send: the rule every driver must follow. Early sends
//!     /// and replies may leave before the batch is durable (a real driver sends them
//!     /// while its disk writes); a leader asks, through `persist_notify`, to hear
//!     /// when its batch is durable, and counts its own acceptances only then.
//!     fn drain(&mut self, i: usize, now: Time, fx: &mut NodeEffects<MultiPaxosNode>) {
//!         loop {
//!             self.disks[i].persist(fx.persist.take());
//!             let from = self.nodes[i].node_id();
//!             for env in fx.early_sends.drain(..).chain(fx.sends.drain(..)) {
//!                 self.wire.push_back((from, env.to, env.msg));
//!             }
//!             self.replies.extend(fx.early_replies.drain(..).chain(fx.replies.drain(..)));
//!             fx.timers.clear(); // this toy driver fires timers by hand
//!             let Some(tag) = fx.persist_notify.take() else { return };
//!             self.nodes[i].on_persisted(now, tag, fx);
//!         }
//!     }
//!     fn deliver_all(&mut self, now: Time) {
//!         let mut fx = Effects::new();
//!         while let Some((from, to, msg)) = self.wire.pop_front() {
//!             let i = (to.0 - 1) as usize;
//!             self.nodes[i].on_message(now, from, msg, &mut fx);
//!             self.drain(i, now, &mut fx);
//!         }
//!     }
//! }
//!
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut c = Cluster {
//!     nodes: ids.iter().map(|&id| MultiPaxosNode::new(MultiPaxosConfig::lan(id, ids, id.0))).collect(),
//!     disks: ids.iter().map(|_| MemStorage::new()).collect(),
//!     wire: VecDeque::new(),
//!     replies: Vec::new(),
//! };
//! let mut fx = Effects::new();
//! for i in 0..3 {
//!     let recovered = c.disks[i].recover();
//!     c.nodes[i].on_start(Time::ZERO, recovered, &mut fx);
//!     c.drain(i, Time::ZERO, &mut fx);
//! }
//! // Node 1's election timer fires: one phase 1 makes it leader for every slot.
//! let now = Time::from_millis(400);
//! c.nodes[0].on_timer(now, MultiPaxosTimer::Election, &mut fx);
//! c.drain(0, now, &mut fx);
//! c.deliver_all(now);
//! assert!(c.nodes[0].is_leader());
//!
//! // A write is chosen once a majority accepted it; the leader executes and answers.
//! let put = Request::Command(KvOp::Put { key: "x".into(), value: "1".into() });
//! c.nodes[0].on_client_request(now, ClientRequest { client: ClientId(7), seq: 1, op: put }, &mut fx);
//! c.drain(0, now, &mut fx);
//! c.deliver_all(now);
//! assert_eq!(c.replies.last().unwrap().outcome, Outcome::Done(Response::Output(KvResult::Written)));
//! assert_eq!(c.nodes[0].state_machine().read("x"), Some("1"));
//!
//! // A read is a heartbeat round through a quorum; it writes nothing.
//! let get = Request::Query("x".into());
//! c.nodes[0].on_client_request(now, ClientRequest { client: ClientId(7), seq: 2, op: get }, &mut fx);
//! assert!(fx.persist.is_empty());
//! c.drain(0, now, &mut fx);
//! c.deliver_all(now);
//! let read = Outcome::Done(Response::QueryOutput(Some("1".into())));
//! assert_eq!(c.replies.last().unwrap().outcome, read);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod multi;
pub mod single;
mod types;

pub use multi::{
    AcceptedSlot, LogEntry, LogRun, Message, MultiPaxosConfig, MultiPaxosNode, MultiPaxosTimer,
    Request, Response, SlotLog, StepJournal,
};
pub use synod_core;
pub use types::{Ballot, Slot, Value};
