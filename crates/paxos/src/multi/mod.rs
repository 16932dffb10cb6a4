//! Multi-Paxos: a sequence of single-decree instances ("slots") run by a stable
//! leader, replicating any [`synod_core::StateMachine`] (by default the KV).
//!
//! Sources: "Paxos Made Simple" §3 (Lamport 2001) for the algorithm; "Paxos Made
//! Live" (Chandra, Griesemer, Redstone 2007) for the engineering (catch-up,
//! snapshots, stable leaders); "Paxos Made Moderately Complex" (van Renesse &
//! Altinbuken 2015) for the leader's structure (scout = phase 1, commanders =
//! concurrent phase 2 per slot); "Flexible Paxos" (Howard, Malkhi, Spiegelman 2016)
//! for configurable quorums.
//!
//! | module | what |
//! |---|---|
//! | `config` | [`MultiPaxosConfig`]: quorums (flexible), timing, window and batch bounds |
//! | `message` | [`Message`]: phase 1/2 for all slots, heartbeats, catch-up, snapshots |
//! | `log` | [`SlotLog`]: accepted and chosen values per slot, the chosen prefix, truncation |
//! | `node` | [`MultiPaxosNode`]: state, inputs, stepping down, in-order execution, recovery |
//! | `election` | phase 1 for all slots, takeover with no-op filling, stickiness |
//! | `acceptor` | phase 1(b)/2(b), following the leader, learning decided slots |
//! | `replication` | the leader's pipelined, batched phase 2; retransmission; check-quorum |
//! | `journal` | [`StepJournal`]: what each input accepted and executed, for observers |
//! | `learner` | catch-up of lagging replicas, snapshot transfer, local snapshots |
//! | `read` | linearizable reads by a quorum read round |

mod acceptor;
mod config;
mod election;
mod journal;
mod learner;
mod log;
mod message;
mod node;
mod read;
mod replication;

pub use config::{majority, MultiPaxosConfig};
pub use journal::StepJournal;
pub use log::{
    LogEntry, LogRun, SlotLog, FRONTIER_LAG_MAX, META_FIRST_UNCHOSEN, META_LOG_START,
    META_RUN_FLOOR,
};
pub use message::{AcceptedSlot, EncodedEntries, Message};
pub use node::{Fx, MultiPaxosNode, MultiPaxosTimer, Request, Response, META_PROMISED};
