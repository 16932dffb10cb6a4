//! Multi-Paxos messages. Phase 1 and 2 are "Paxos Made Simple" §2.2's, run for all
//! slots at once (§3); heartbeats, catch-up and snapshots are the engineering of
//! "Paxos Made Live" (Chandra, Griesemer, Redstone 2007) §5.

use crate::types::{Ballot, Slot, Value};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use synod_core::NodeId;

/// One slot an acceptor accepted but does not know chosen, reported in a promise.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct AcceptedSlot {
    /// The slot.
    pub slot: Slot,
    /// The ballot it was accepted in.
    pub ballot: Ballot,
    /// The value accepted.
    pub value: Value,
}

/// A Multi-Paxos message.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1(a) for every slot from `first_unchosen` on (§3: "phase 1 for infinitely
    /// many instances" in one message).
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// The candidate's first slot not known chosen: promises report accepted
        /// values from there on.
        first_unchosen: Slot,
    },
    /// Phase 1(b) for every slot: the promise, and every proposal accepted at or
    /// after the asked slot that the acceptor does not know chosen.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The acceptor's first slot not known chosen (everything below is chosen).
        first_unchosen: Slot,
        /// Accepted, not known chosen, at or after `max(asked, first_unchosen)`.
        accepted: Vec<AcceptedSlot>,
    },
    /// A prepare, accept or heartbeat refused because of a higher promise.
    Nack {
        /// The ballot refused.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
        /// Whom the acceptor follows, if anyone (lets the refused leader tell an
        /// elected rival from a stray promise; see `election.rs`).
        leader: Option<NodeId>,
    },
    /// Phase 2(a) for consecutive slots `first..first + values.len()`.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// Slot of `values[0]`.
        first: Slot,
        /// One value per slot (a batch when the window was full).
        values: Vec<Value>,
        /// The leader's first slot not known chosen: everything below is chosen.
        decided: Slot,
    },
    /// Phase 2(b): the acceptor accepted slots `first..=last` in `ballot`.
    Accepted {
        /// The ballot accepted in.
        ballot: Ballot,
        /// First slot accepted.
        first: Slot,
        /// Last slot accepted.
        last: Slot,
        /// The acceptor's first slot not known chosen.
        first_unchosen: Slot,
    },
    /// Leader liveness and commit notification; `read_ctx` numbers a read round.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's first slot not known chosen.
        decided: Slot,
        /// The read round this heartbeat confirms (0: none).
        read_ctx: u64,
    },
    /// Answer to a heartbeat: the acceptor has promised nothing above `ballot`.
    HeartbeatAck {
        /// The ballot acknowledged.
        ballot: Ballot,
        /// Echo of the read round.
        read_ctx: u64,
        /// The acceptor's first slot not known chosen.
        first_unchosen: Slot,
    },
    /// A lagging learner asks for chosen values from `first_unchosen` on.
    CatchUp {
        /// The asker's first slot not known chosen.
        first_unchosen: Slot,
    },
    /// Chosen values of consecutive slots from `first`.
    Chosen {
        /// Slot of `values[0]`.
        first: Slot,
        /// Chosen values.
        values: Vec<Value>,
        /// The sender's first slot not known chosen (ask again below it).
        decided: Slot,
    },
    /// A state-machine snapshot covering every slot below `below`, for a learner
    /// whose next slot was truncated from the sender's log.
    Snapshot {
        /// First slot not covered.
        below: Slot,
        /// `KvStateMachine::snapshot` bytes.
        data: Arc<Vec<u8>>,
    },
}
