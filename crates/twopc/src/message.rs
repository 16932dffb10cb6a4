//! The messages of two-phase commit (Gray 1978; Bernstein, Hadzilacos & Goodman
//! ch. 7), with presumed abort (Mohan, Lindsay & Obermarck 1986) and cooperative
//! termination.

use crate::types::{AbortReason, Op, OpResult, ShardId, TxnId};
use serde::{Deserialize, Serialize};

/// A participant's vote.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Vote {
    /// Prepared: its writes are durable in a prepared record, its locks held until
    /// the decision; the reads it made, by operation index.
    Yes(Vec<(u32, OpResult)>),
    /// It aborted the transaction unilaterally (allowed until it votes YES).
    No(AbortReason),
}

/// A 2PC message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Message {
    /// Coordinator → participant, phase 1: lock, run `ops`, make the prepared record
    /// durable, vote.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// Its age for wait-die: the id of the client request's first attempt, so
        /// a transaction retried after dying keeps its place and in time becomes
        /// the oldest (Rosenkrantz et al. 1978: a restarted transaction keeps its
        /// timestamp, which is what makes wait-die starvation-free).
        age: TxnId,
        /// Its operations on this shard, with their index in the transaction.
        ops: Vec<(u32, Op)>,
        /// Every shard it touches (for cooperative termination).
        participants: Vec<ShardId>,
        /// The coordinator's oldest undecided transaction: everything older is
        /// decided, so its outcome records may be dropped.
        active_from: TxnId,
    },
    /// Participant → coordinator: the vote, sent once the prepared record (for YES)
    /// or the abort is durable.
    Vote {
        /// The transaction.
        txn: TxnId,
        /// The vote.
        vote: Vote,
    },
    /// Coordinator → participant, phase 2. A COMMIT leaves only once the decision
    /// record is durable; an ABORT needs none (presumed abort).
    Decide {
        /// The transaction.
        txn: TxnId,
        /// Commit, or abort.
        commit: bool,
    },
    /// Participant → coordinator: the commit is applied durably (aborts are not
    /// acknowledged: presumed abort).
    Ack {
        /// The transaction.
        txn: TxnId,
    },
    /// An in-doubt participant → the coordinator, or another participant
    /// (cooperative termination): what was decided?
    Inquire {
        /// The transaction.
        txn: TxnId,
    },
    /// The answer to [`Message::Inquire`]: `Some(commit)` if known; `None` if the
    /// sender is in doubt too.
    Known {
        /// The transaction.
        txn: TxnId,
        /// What it knows.
        outcome: Option<bool>,
    },
}
