//! # synod-vvsync
//!
//! Multi-master replication, sans-IO over synod-core: every replica of a key takes
//! reads and writes for it, even cut off from the others, and replicas converge by
//! read repair and anti-entropy. What one key holds is a [`Causality`] value, one of
//! three modes on the same node code:
//!
//! * [`Dvv`] (`vvsync`): a dotted version vector set — concurrent writes are kept as
//!   siblings, a write replaces exactly what its client's context covered;
//! * [`Vv`] (`vvsync-vv`): one version vector by replica id for all siblings — loses
//!   nothing, but siblings pile up;
//! * [`Lww`] (`vvsync-lww`): version number + timestamp, the higher wins — the other
//!   concurrent write is lost.
//!
//! A client reads ([`Request::Get`]) and gets every sibling and a context; its next
//! write of the key ([`Request::Put`], [`Request::Delete`]) carries that context.
//! See `docs/protocols/vvsync.md`.
//!
//! ```
//! use synod_core::*;
//! use synod_vvsync::*;
//!
//! // Two clients write one key concurrently with empty contexts: both are kept.
//! let members = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut cfg = VvConfig::lan(NodeId(1), &members, 7);
//! cfg.w = 1; // answer once the coordinator holds the write durably
//! let mut node = VvNode::<Dvv>::new(cfg);
//! node.on_start(Time::ZERO, Recovered::default(), &mut Effects::new());
//! for (client, value) in [(1, "x"), (2, "y")] {
//!     let put = Request::Put { key: "k".into(), value: value.into(), context: VersionVector::new() };
//!     let mut fx = Effects::new();
//!     node.on_client_request(Time::ZERO, ClientRequest { client: ClientId(client), seq: 1, op: put }, &mut fx);
//!     assert_eq!(fx.sends.len(), 2, "replicated to the key's two other replicas");
//! }
//! assert_eq!(node.state("k").unwrap().siblings(), ["y", "x"]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod causality;
pub mod clock;
pub mod message;
pub mod node;
pub mod resolve;

pub use causality::{Causality, Dvv, DvvEntry, Lww, Stored, Vv};
pub use clock::VersionVector;
pub use message::{Body, Message, Request, Response, Stamp};
pub use node::{Fx, GcStats, SyncStats, Timer, VvConfig, VvNode};
pub use synod_core;
