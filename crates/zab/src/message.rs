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
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};
use synod_core::{codec, AsEntryBytes, Kv, SessionCommand, StateMachine};

/// A command as the log holds it: shared between the log, every message and (as its
/// storage bytes) every server's storage in one process.
pub type Cmd<S> = Arc<Logged<S>>;

/// A transaction's command with its storage encoding `(zxid, command)`, made once —
/// by the first server of the process that stores it, normally the leader — and then
/// shared: followers in the same process (the simulator, the benches) store the same
/// bytes without encoding or copying them. Equality, hashing and `Debug` see only the
/// command; the bytes cross no network (a receiver encodes its own).
pub struct Logged<S: StateMachine = Kv> {
    zxid: Zxid,
    command: SessionCommand<S::Command>,
    bytes: OnceLock<Vec<u8>>,
}

impl<S: StateMachine> Logged<S> {
    /// `command` as transaction `zxid`.
    pub fn new(zxid: Zxid, command: SessionCommand<S::Command>) -> Logged<S> {
        let bytes = OnceLock::new();
        Logged {
            zxid,
            command,
            bytes,
        }
    }

    /// As [`Logged::new`], with its storage bytes already at hand (recovery).
    pub(crate) fn with_bytes(
        zxid: Zxid,
        command: SessionCommand<S::Command>,
        bytes: Vec<u8>,
    ) -> Self {
        Logged {
            zxid,
            command,
            bytes: OnceLock::from(bytes),
        }
    }

    /// The command.
    pub fn command(&self) -> &SessionCommand<S::Command> {
        &self.command
    }
}

impl<S: StateMachine> AsEntryBytes for Logged<S> {
    fn entry_bytes(&self) -> &[u8] {
        self.bytes.get_or_init(|| {
            let mut out = codec::encode(&self.zxid);
            self.command.encode_with::<S>(&mut out);
            out
        })
    }
}

impl<S: StateMachine> PartialEq for Logged<S> {
    fn eq(&self, other: &Self) -> bool {
        (self.zxid, &self.command) == (other.zxid, &other.command)
    }
}
impl<S: StateMachine> Eq for Logged<S> {}
impl<S: StateMachine> Hash for Logged<S> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.command.hash(h);
    }
}
impl<S: StateMachine> fmt::Debug for Logged<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.command.fmt(f)
    }
}

/// A transaction: a client's command and the zxid its leader gave it.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
pub struct Txn<S: StateMachine = Kv> {
    /// Its id.
    pub zxid: Zxid,
    /// What it does.
    pub cmd: Cmd<S>,
}

impl<S: StateMachine> Txn<S> {
    /// `command` as transaction `zxid`.
    pub fn new(zxid: Zxid, command: SessionCommand<S::Command>) -> Txn<S> {
        let cmd = Arc::new(Logged::new(zxid, command));
        Txn { zxid, cmd }
    }
}

impl<S: StateMachine> Serialize for Txn<S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        (self.zxid, &self.cmd.command).serialize(s)
    }
}

impl<'de, S: StateMachine> Deserialize<'de> for Txn<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (zxid, command) = <(Zxid, SessionCommand<S::Command>)>::deserialize(d)?;
        Ok(Txn::new(zxid, command))
    }
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
        /// Numbers this handshake (the follower's durable incarnation, then a count
        /// within it, so a newer one, even after a restart, has a higher number): a
        /// late copy of an earlier one is ignored.
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
        /// `epoch` was promised to this leader (newly, or before in an earlier
        /// handshake with it). `false`: another leader proposing the same epoch was
        /// promised it first — this answer does not count toward the discovery
        /// quorum (ZooKeeper's ACKEPOCH with epoch -1), the follower still syncs.
        promised: bool,
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
        /// The epoch is established: a synced follower still waiting for UPTODATE
        /// (lost) takes this as one.
        established: bool,
    },
    /// Follower → leader: commands its clients sent (ZooKeeper's REQUEST). The leader
    /// proposes them like its own clients'; the follower answers each client once it
    /// applies the transaction.
    Forward {
        /// The commands, in the order the follower received them.
        cmds: Vec<SessionCommand<S::Command>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Epoch;
    use std::collections::hash_map::DefaultHasher;
    use synod_core::{ClientId, KvOp};

    fn cmd(key: &str) -> SessionCommand<KvOp> {
        SessionCommand {
            client: ClientId(1),
            seq: 1,
            op: KvOp::Put {
                key: key.into(),
                value: "v".into(),
            },
        }
    }

    fn hash_of(l: &Logged) -> u64 {
        let mut h = DefaultHasher::new();
        l.hash(&mut h);
        h.finish()
    }

    /// A transaction is its zxid and command; its cached storage bytes are a
    /// by-product (made by whichever server stored it first). Messages carrying
    /// transactions are hashed into the simulator's trace digest
    /// (`harness/src/sim/event.rs`) and compared by tests: they must be equal, and
    /// hash alike, exactly when zxid and command are — else two replays of one seed
    /// digest differently, or a test takes one transaction for another.
    #[test]
    fn a_logged_command_is_equal_by_zxid_and_command_not_by_its_bytes() {
        let z1 = Zxid::new(Epoch(1), 1);
        let a = Logged::<Kv>::new(z1, cmd("a"));
        let same = Logged::<Kv>::with_bytes(z1, cmd("a"), vec![9, 9]);
        assert_eq!(a, same, "the bytes do not count");
        assert_eq!(hash_of(&a), hash_of(&same));
        let other_cmd = Logged::<Kv>::new(z1, cmd("b"));
        assert_ne!(a, other_cmd);
        assert_ne!(hash_of(&a), hash_of(&other_cmd));
        let other_zxid = Logged::<Kv>::new(Zxid::new(Epoch(1), 2), cmd("a"));
        assert_ne!(a, other_zxid);
    }
}
