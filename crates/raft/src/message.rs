//! Raft's messages (Figure 2 RPCs, plus the thesis's pre-vote, heartbeat, snapshot
//! chunks and TimeoutNow). Every message carries the sender's term (§5.1: "if one
//! server's current term is smaller than the other's, it updates its term").

use crate::types::{Entry, LogIndex, Membership, Term};
use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use synod_core::{Kv, StateMachine};

/// What a snapshot covers.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Last log index included.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
    /// The configuration in effect at `index`.
    pub membership: Membership,
}

/// A Raft message; `S` is the replicated application (its commands travel in
/// [`Message::Append`]).
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Message<S: StateMachine = Kv> {
    /// RequestVote (§5.2), or a pre-vote (thesis §9.6) when `pre_vote` is set: a
    /// pre-vote asks "would you vote for me in `term`?" without anyone changing term.
    RequestVote {
        /// The candidate's term (for a pre-vote: the term it would campaign in).
        term: Term,
        /// Index of the candidate's last entry (§5.4.1).
        last_log_index: LogIndex,
        /// Term of the candidate's last entry (§5.4.1).
        last_log_term: Term,
        /// A pre-vote.
        pre_vote: bool,
        /// The election was started by a leadership transfer (thesis §3.10), so
        /// voters must not ignore it for having heard from a leader recently.
        transfer: bool,
    },
    /// Answer to [`Message::RequestVote`].
    Vote {
        /// The voter's term (for a granted pre-vote: the term asked about).
        term: Term,
        /// Whether the vote is granted.
        granted: bool,
        /// Answers a pre-vote.
        pre_vote: bool,
    },
    /// AppendEntries (§5.3).
    Append {
        /// Leader's term.
        term: Term,
        /// Index of the entry immediately preceding `entries`.
        prev_index: LogIndex,
        /// Its term.
        prev_term: Term,
        /// Entries to store (possibly empty).
        entries: Vec<Entry<S>>,
        /// Leader's commit index.
        commit: LogIndex,
    },
    /// Answer to [`Message::Append`].
    AppendResponse {
        /// Follower's term.
        term: Term,
        /// Term of the AppendEntries this answers. The leader counts only answers to
        /// its own term's messages: a follower answers a stale message with its newer
        /// term, which the sender may since have reached as leader again.
        answers: Term,
        /// `Ok(last)`: the follower's log matches the leader's through `last`.
        /// `Err(..)`: the consistency check failed at `rejected`.
        result: AppendResult,
    },
    /// Leader heartbeat (thesis §3.4, §6.4): keeps followers from campaigning, carries
    /// the commit index and a read context for ReadIndex.
    Heartbeat {
        /// Leader's term.
        term: Term,
        /// `min(leader commit, follower's known match)`: safe for the follower to commit.
        commit: LogIndex,
        /// ReadIndex round this heartbeat confirms (thesis §6.4).
        read_ctx: u64,
    },
    /// Answer to [`Message::Heartbeat`].
    HeartbeatResponse {
        /// Follower's term.
        term: Term,
        /// Term of the heartbeat this answers. Read contexts restart with each
        /// leadership, so a context confirms a read only together with its term
        /// (thesis §6.4: the heartbeats must be sent after the read arrived).
        answers: Term,
        /// Echo of the read context.
        read_ctx: u64,
    },
    /// One chunk of a snapshot (§7, chunked as in Figure 13).
    InstallSnapshot {
        /// Leader's term.
        term: Term,
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// Byte offset of `data` in the snapshot.
        offset: u64,
        /// Chunk bytes.
        data: Arc<Vec<u8>>,
        /// Last chunk.
        done: bool,
    },
    /// Answer to [`Message::InstallSnapshot`].
    SnapshotResponse {
        /// Follower's term.
        term: Term,
        /// Term of the chunk this answers (see [`Message::AppendResponse`]).
        answers: Term,
        /// Bytes received so far (the offset the leader should send next), or, once
        /// installed, `None` together with `installed`.
        next_offset: u64,
        /// Index of the snapshot installed, when done.
        installed: Option<LogIndex>,
    },
    /// Leadership transfer (thesis §3.10): "start an election now".
    TimeoutNow {
        /// Leader's term.
        term: Term,
    },
}

/// Outcome of an AppendEntries at the follower.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum AppendResult {
    /// Logs match through this index.
    Ok(LogIndex),
    /// The consistency check failed.
    Reject {
        /// The `prev_index` that did not match.
        rejected: LogIndex,
        /// The follower's term at `rejected`, if it holds an entry there.
        conflict_term: Option<Term>,
        /// Where the leader should try next (fast backtracking, §5.3).
        conflict_index: LogIndex,
    },
}

impl<S: StateMachine> Message<S> {
    /// The sender's term.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::Vote { term, .. }
            | Message::Append { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::SnapshotResponse { term, .. }
            | Message::TimeoutNow { term } => *term,
        }
    }
}
