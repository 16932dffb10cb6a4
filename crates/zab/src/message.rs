//! Zab's messages: Fast Leader Election's notifications, then the three phases of
//! an epoch (DSN 2011 §IV; Medeiros 2012 §3) — discovery (FOLLOWERINFO, LEADERINFO,
//! ACKEPOCH), synchronisation (NEWLEADER carrying the DIFF/TRUNC/SNAP, its ACK,
//! UPTODATE) and broadcast (PROPOSAL, ACK, COMMIT), plus the leader's pings.
//!
//! Every message after the election names the epoch it belongs to; a server drops
//! what belongs to another epoch. ZooKeeper relies on TCP for order; here a PROPOSAL
//! names the zxid it follows (`prev`), ACKs and COMMITs are cumulative, and the
//! NEWLEADER acknowledgement is its own message type (ZOOKEEPER-4685: an ACK of a
//! proposal must never be taken for the ACK of NEWLEADER), so loss, duplication and
//! reordering are detected instead of assumed away (see `follower.rs`).

use crate::election::Notification;
use crate::log::HistorySummary;
use crate::types::{Epoch, Pos, Zxid};
use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use synod_core::{Kv, SessionCommand, StateMachine};

/// A command as the log holds it: shared between the log and every message.
pub type Cmd<S> = Arc<SessionCommand<<S as StateMachine>::Command>>;

/// A transaction: a client's command and the zxid its leader gave it.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Txn<S: StateMachine = Kv> {
    /// Its id.
    pub zxid: Zxid,
    /// What it does.
    pub cmd: Cmd<S>,
}

/// The leader's snapshot as a SNAP sends it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotImage {
    /// The last position it covers.
    pub pos: Pos,
    /// The zxid there.
    pub zxid: Zxid,
    /// The application's image, sessions included.
    pub data: Arc<Vec<u8>>,
}

/// What a NEWLEADER brings a follower's history to.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Sync<S: StateMachine = Kv> {
    /// Keep the history through `keep`, drop the rest (TRUNC, if there is any),
    /// append `txns` (DIFF).
    Diff {
        /// The last transaction the follower keeps.
        keep: Zxid,
        /// The leader's transactions after it.
        txns: Vec<Txn<S>>,
    },
    /// Replace everything with the snapshot, then append `txns` (SNAP).
    Snap {
        /// The leader's snapshot.
        snapshot: SnapshotImage,
        /// The leader's transactions after it.
        txns: Vec<Txn<S>>,
    },
}

/// A Zab message.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Message<S: StateMachine = Kv> {
    /// Fast Leader Election.
    Notification(Notification),
    /// Discovery, follower → prospective leader: the last epoch it accepted and its
    /// history (ZooKeeper sends only the last zxid; see `log.rs` for why a summary).
    FollowerInfo {
        /// Numbers this handshake (the follower's clock when it began it, so a newer
        /// one, even after a restart, has a higher number): a late copy of an
        /// earlier one is ignored.
        session: u64,
        /// Its `acceptedEpoch`.
        accepted_epoch: Epoch,
        /// Its history.
        history: HistorySummary,
        /// It observes (never counts toward a quorum).
        observer: bool,
    },
    /// Discovery, leader → follower: the epoch it will establish.
    LeaderInfo {
        /// The handshake it answers.
        session: u64,
        /// The new epoch: above every `acceptedEpoch` of a quorum.
        epoch: Epoch,
    },
    /// Discovery, follower → leader: it accepted `epoch` (durably) and will follow no
    /// leader of an earlier one.
    AckEpoch {
        /// The handshake it answers (its history is of that moment).
        session: u64,
        /// The epoch acknowledged.
        epoch: Epoch,
        /// Its `currentEpoch`.
        current_epoch: Epoch,
        /// Its history now (it may have grown since FOLLOWERINFO).
        history: HistorySummary,
    },
    /// Synchronisation, leader → follower: the history to adopt, and the epoch.
    NewLeader {
        /// The handshake it answers.
        session: u64,
        /// The epoch being established.
        epoch: Epoch,
        /// How the follower's history becomes the leader's.
        sync: Sync<S>,
    },
    /// Synchronisation, follower → leader: its history is the leader's and durable,
    /// and its `currentEpoch` is `epoch` (durable too).
    AckNewLeader {
        /// The handshake whose NEWLEADER it acknowledges.
        session: u64,
        /// The epoch acknowledged.
        epoch: Epoch,
    },
    /// Synchronisation, leader → follower: a quorum synced; everything through
    /// `commit` is committed, and the follower may serve.
    UpToDate {
        /// The epoch.
        epoch: Epoch,
        /// The leader's commit point.
        commit: Zxid,
    },
    /// Broadcast, leader → follower: new transactions, right after `prev`.
    Propose {
        /// The epoch.
        epoch: Epoch,
        /// The zxid the first transaction follows.
        prev: Zxid,
        /// Consecutive transactions of this epoch.
        txns: Vec<Txn<S>>,
        /// The leader's commit point.
        commit: Zxid,
    },
    /// Broadcast, follower → leader: it holds every transaction through `zxid`
    /// durably (cumulative).
    Ack {
        /// The epoch.
        epoch: Epoch,
        /// The last transaction held durably.
        zxid: Zxid,
    },
    /// Broadcast, leader → follower: every transaction through `zxid` is committed
    /// (cumulative).
    Commit {
        /// The epoch.
        epoch: Epoch,
        /// The commit point.
        zxid: Zxid,
    },
    /// Leader → follower: the leader is alive; answered by [`Message::PingAck`].
    /// `read_ctx` numbers the leader's read rounds.
    Ping {
        /// The epoch.
        epoch: Epoch,
        /// The leader's commit point.
        commit: Zxid,
        /// The latest read round.
        read_ctx: u64,
        /// The last transaction the leader sent this follower: one it lacks was lost.
        sent: Zxid,
    },
    /// Follower → leader: it follows the leader of `epoch`. Also a cumulative ACK of
    /// `last` (sent after every earlier batch is durable) and of NEWLEADER, for the
    /// handshake `synced` names — so a lost ACK stalls nothing.
    PingAck {
        /// The epoch.
        epoch: Epoch,
        /// The read round it answers.
        read_ctx: u64,
        /// The handshake in which it acknowledged NEWLEADER, if it did (in the
        /// current one, `last` is a prefix of the leader's history).
        synced: Option<u64>,
        /// The last transaction it holds.
        last: Zxid,
    },
}
