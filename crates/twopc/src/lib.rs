//! # synod-twopc
//!
//! Two-phase commit across KV shards, sans-IO over synod-core: a coordinator
//! (transaction manager) with **presumed abort** and participants (one per shard)
//! with **strict two-phase locking** under the **wait-die** policy, durable prepared
//! and decision records, recovery of both roles, and cooperative termination among
//! in-doubt participants. See `docs/protocols/twopc.md`.
//!
//! The coordinator's records go through a [`DecisionLog`]: its own journal
//! ([`LocalLog`], classic 2PC), or a replicated log — the harness's `twopc-nb` runs
//! the coordinator on a Raft group replicating [`Decisions`], so a coordinator
//! crash does not block. Work in progress (issue 17): the bank and list-append
//! workloads in the simulator come next.
//!
//! ```
//! use synod_core::*;
//! use synod_twopc::*;
//!
//! // A coordinator (n1) and two shards (n2, n3).
//! let topology = Topology::from_members(&[NodeId(1), NodeId(2), NodeId(3)]);
//! let mut c = TwoPcNode::new(TwoPcConfig::lan(NodeId(1), topology.clone()));
//! let mut fx = Effects::new();
//! c.on_start(Time::ZERO, Recovered::default(), &mut fx);
//! let txn = Txn { ops: vec![Op::Write { key: "a".into(), value: "1".into() }] };
//! let mut fx = Effects::new();
//! c.on_client_request(Time::ZERO, ClientRequest { client: ClientId(1), seq: 1, op: txn }, &mut fx);
//! // One PREPARE, to the shard owning "a".
//! assert_eq!(fx.sends.len(), 1);
//! assert_eq!(fx.sends[0].to, topology.node_of(topology.shard_of("a")));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod coordinator;
pub mod message;
pub mod node;
pub mod participant;
pub mod types;

pub use coordinator::{
    Coordinator, CoordinatorTiming, Decided, DecisionCmd, DecisionLog, DecisionOutput, Decisions,
    LocalLog, Session,
};
pub use message::{Message, Vote};
pub use node::{Fx, Role, Timer, TwoPcConfig, TwoPcNode};
pub use participant::{DoubtStats, Participant, ParticipantTiming};
pub use synod_core;
pub use types::{AbortReason, Op, OpResult, ShardId, Topology, Txn, TxnId, TxnOutcome};
