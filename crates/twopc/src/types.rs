//! Transactions, their operations and results, and the topology that routes them.

use serde::{Deserialize, Serialize};
use std::fmt;
use synod_core::NodeId;

/// A transaction's identity, given by the coordinator: its **epoch** in the high 32
/// bits — the durable incarnation of a single coordinator, or the Raft term of a
/// replicated one's leader —, a count within it below. Unique across coordinator
/// restarts and leaders, and ordered by age (older = smaller), which the wait-die
/// policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxnId(pub u64);

impl TxnId {
    /// The `n`th transaction of `epoch`.
    ///
    /// # Panics
    /// If `epoch` or `n` does not fit in 32 bits.
    pub fn new(epoch: u64, n: u64) -> TxnId {
        assert!(
            epoch < 1 << 32 && n < 1 << 32,
            "transaction id {epoch}.{n} overflows"
        );
        TxnId(epoch << 32 | n)
    }

    /// The epoch (incarnation or term) of the coordinator that started it.
    pub fn epoch(self) -> u64 {
        self.0 >> 32
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}.{}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// A shard of the keyspace: index into [`Topology::shards`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardId(pub u32);

/// One operation of a transaction, on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Read the key (a missing key reads `None`).
    Read {
        /// The key.
        key: String,
    },
    /// Replace the key's value.
    Write {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Append `value` to the key's value (a missing key is empty).
    Append {
        /// The key.
        key: String,
        /// What to append.
        value: String,
    },
    /// Replace the value with `new` if it is `expected` (a missing key is `""`);
    /// otherwise the participant refuses the transaction.
    Cas {
        /// The key.
        key: String,
        /// The value required.
        expected: String,
        /// The new value.
        new: String,
    },
    /// Remove the key.
    Delete {
        /// The key.
        key: String,
    },
    /// Add `delta` to the key's integer value (missing = 0); the participant votes NO
    /// if the result would be negative (a bank account cannot be overdrawn).
    Add {
        /// The key.
        key: String,
        /// The amount.
        delta: i64,
    },
}

impl Op {
    /// The key it touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key } | Op::Write { key, .. } | Op::Append { key, .. } => key,
            Op::Add { key, .. } | Op::Cas { key, .. } | Op::Delete { key } => key,
        }
    }

    /// `true` if it only reads.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Read { .. })
    }
}

/// What one operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpResult {
    /// A read's value.
    Value(Option<String>),
    /// A write, append or add took effect (once the transaction commits).
    Done,
}

/// A client's request: one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Txn {
    /// Its operations, in order; each runs at the shard owning its key.
    pub ops: Vec<Op>,
}

/// The answer to a [`Txn`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxnOutcome {
    /// Committed at every shard; one result per operation, in order.
    Committed(Vec<OpResult>),
    /// Aborted everywhere: nothing of it took effect.
    Aborted(AbortReason),
}

/// Why a transaction aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AbortReason {
    /// A lock conflict with an older transaction (wait-die: the younger dies).
    Conflict,
    /// The application refused it (an `Add` would overdraw, a `Cas` found
    /// another value).
    Refused,
    /// A participant did not vote in time (crashed, partitioned or slow).
    Timeout,
}

/// Who does what: the coordinator — one node, or the replicas of a replicated one
/// (`twopc-nb`: its decisions go through Raft, its leader coordinates) — and one
/// node per shard, and how keys map to shards. Given at construction to every node;
/// the simulator and the runtime build the same one from the member list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Topology {
    /// The transaction manager's nodes (one for classic 2PC).
    pub coordinators: Vec<NodeId>,
    /// The participant owning each shard.
    pub shards: Vec<NodeId>,
}

impl Topology {
    /// `members[0]` coordinates, each other member owns one shard.
    ///
    /// # Panics
    /// With fewer than two members.
    pub fn from_members(members: &[NodeId]) -> Topology {
        Topology::replicated(members, 1)
    }

    /// The first `replicas` members are the coordinator's replicas, each other
    /// member owns one shard.
    ///
    /// # Panics
    /// Without a coordinator or without a shard.
    pub fn replicated(members: &[NodeId], replicas: usize) -> Topology {
        assert!(
            replicas >= 1 && members.len() > replicas,
            "2PC needs a coordinator and a shard: {replicas} coordinator replicas of {} members",
            members.len()
        );
        Topology {
            coordinators: members[..replicas].to_vec(),
            shards: members[replicas..].to_vec(),
        }
    }

    /// Whether `node` is (a replica of) the coordinator.
    pub fn is_coordinator(&self, node: NodeId) -> bool {
        self.coordinators.contains(&node)
    }

    /// The shard owning `key`: FNV-1a of the key, modulo the shard count (stable
    /// across runs and machines). A key that names its place, `"<n>/…"` with `n` a
    /// decimal number, lives on shard `n` modulo the shard count — how a
    /// benchmark makes a transaction span exactly the shards it means to (as
    /// Spanner's directories and CockroachDB's zone configs place ranges).
    pub fn shard_of(&self, key: &str) -> ShardId {
        let shards = self.shards.len() as u64;
        if let Some((place, _)) = key.split_once('/') {
            if let Ok(n) = place.parse::<u64>() {
                return ShardId((n % shards) as u32);
            }
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        ShardId((h % shards) as u32)
    }

    /// The node owning `shard`.
    pub fn node_of(&self, shard: ShardId) -> NodeId {
        self.shards[shard.0 as usize]
    }

    /// The shard `node` owns, if it is a participant.
    pub fn shard_owned_by(&self, node: NodeId) -> Option<ShardId> {
        let i = self.shards.iter().position(|&n| n == node)?;
        Some(ShardId(i as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys spread by hash unless they name their shard; a named place wraps
    /// modulo the shard count.
    #[test]
    fn a_key_lands_on_the_shard_it_names_or_on_its_hash() {
        let t = Topology::from_members(&[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
        assert_eq!(t.shard_of("0/k17"), ShardId(0));
        assert_eq!(t.shard_of("2/k17"), ShardId(2));
        assert_eq!(t.shard_of("4/x"), ShardId(1));
        let hashed: std::collections::BTreeSet<ShardId> =
            (0..64).map(|i| t.shard_of(&format!("k{i}"))).collect();
        assert_eq!(hashed.len(), 3, "plain keys spread over every shard");
    }

    /// Placement is FNV-1a of the key's bytes modulo the shard count — the same on
    /// every run and machine, so a benchmark's keys and a replayed history land where
    /// they did (values from the reference FNV-1a, 64-bit).
    #[test]
    fn a_plain_key_lands_by_its_fnv1a_hash_on_every_run() {
        let members = |k: u64| (1..=k + 1).map(NodeId).collect::<Vec<_>>();
        let five = Topology::from_members(&members(5));
        let seven = Topology::from_members(&members(7));
        for (key, on_five, on_seven) in [("k0", 2, 4), ("k1", 3, 0), ("alice", 3, 1), ("x", 1, 3)] {
            assert_eq!(five.shard_of(key), ShardId(on_five), "{key} of 5");
            assert_eq!(seven.shard_of(key), ShardId(on_seven), "{key} of 7");
        }
        // A place that is not a number is part of the key: hashed whole.
        assert_eq!(five.shard_of("x/k0"), ShardId(4));
    }
}
