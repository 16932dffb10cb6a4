//! # synod-core
//!
//! The shared foundation of Synod's protocols and drivers:
//!
//! * identifiers ([`NodeId`], [`ClientId`]) and virtual/monotonic [`Time`];
//! * the sans-IO [`Node`] trait and the [`Effects`] a node returns — read the
//!   [`node`] module docs for the driver contract (persist before send, timers,
//!   crash semantics);
//! * the storage model ([`WriteBatch`], [`Recovered`], [`MemStorage`]);
//! * the async [`Storage`] and [`Transport`] traits that real drivers implement;
//! * a seeded [`Prng`] for protocol randomness;
//! * postcard [`codec`] helpers and stream framing;
//! * the replicated [`KvStateMachine`] every consensus protocol serves.
//!
//! This crate — like every protocol crate built on it — contains no networking,
//! no threads, and never reads a clock or the system's entropy. All of that is the
//! driver's job, which is what makes every run replayable.
//!
//! # Layout
//! - `id` — node and client ids
//! - `time` — [`Time`]
//! - `rng` — [`Prng`]
//! - `node` — [`Node`], [`Effects`], client request/reply types
//! - `storage` — [`WriteBatch`], [`Recovered`], [`MemStorage`]
//! - `driver` — [`Storage`], [`Transport`]
//! - `codec` — postcard encode/decode, frames
//! - `kv` — [`KvStateMachine`]
//!
//! # Example: driving a node by hand
//!
//! ```
//! use synod_core::*;
//!
//! /// A node that counts client requests and persists the count.
//! struct Counter { id: NodeId, count: u64 }
//!
//! impl Node for Counter {
//!     type Message = ();
//!     type Timer = ();
//!     type Request = ();
//!     type Response = u64;
//!     fn id(&self) -> NodeId { self.id }
//!     fn on_start(&mut self, _now: Time, rec: Recovered, _out: &mut NodeEffects<Self>) {
//!         self.count = rec.meta.get("count").map_or(0, |b| codec::decode(b).unwrap());
//!     }
//!     fn on_message(&mut self, _: Time, _: NodeId, _: (), _: &mut NodeEffects<Self>) {}
//!     fn on_timer(&mut self, _: Time, _: (), _: &mut NodeEffects<Self>) {}
//!     fn on_client_request(&mut self, _now: Time, req: ClientRequest<()>, out: &mut NodeEffects<Self>) {
//!         self.count += 1;
//!         out.persist.set_meta("count", codec::encode(&self.count));
//!         out.reply(req.client, req.seq, Outcome::Done(self.count));
//!     }
//! }
//!
//! // A minimal driver: persist first, then deliver the replies.
//! let mut disk = MemStorage::new();
//! let mut node = Counter { id: NodeId(1), count: 0 };
//! let mut fx = Effects::new();
//! node.on_start(Time::ZERO, disk.recover(), &mut fx);
//! for seq in 1..=3 {
//!     fx.clear();
//!     node.on_client_request(Time::ZERO, ClientRequest { client: ClientId(9), seq, op: () }, &mut fx);
//!     disk.persist(fx.persist.take());
//!     assert_eq!(fx.replies[0].outcome, Outcome::Done(seq));
//! }
//! // After a "crash", the node rebuilds from what was durable.
//! let mut node = Counter { id: NodeId(1), count: 0 };
//! node.on_start(Time::ZERO, disk.recover(), &mut fx);
//! assert_eq!(node.count, 3);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod codec;
pub mod driver;
pub mod id;
pub mod journal;
pub mod kv;
pub mod node;
pub mod rng;
pub mod storage;
pub mod time;

pub use app::{AppData, SessionCommand, Sessions, StateMachine};
pub use codec::CodecError;
pub use driver::{Storage, StorageError, Transport, TransportError};
pub use id::{ClientId, NodeId};
pub use journal::Journal;
pub use kv::{Applied, Kv, KvCommand, KvOp, KvResult, KvStateMachine};
pub use node::{
    ClientReply, ClientRequest, DurableWaits, Effects, Envelope, Node, NodeEffects, Outcome,
    TimerOp,
};
pub use rng::Prng;
pub use storage::{
    AsEntryBytes, EntryBytes, MemStorage, Recovered, Snapshot, StorageOp, WriteBatch,
};
pub use time::Time;
