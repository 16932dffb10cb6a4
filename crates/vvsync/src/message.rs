//! What replicas say to each other, and what clients ask and are told.

use crate::causality::Causality;
use serde::{Deserialize, Serialize};

/// A client's request to any replica of the key (the coordinator of that request).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Request<X> {
    /// Read every sibling of `key`, from `R` replicas.
    Get {
        /// The key.
        key: String,
    },
    /// Write `value`, replacing what `context` covers (the context of the client's
    /// last read or write of the key; the default context replaces nothing).
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What the client had seen.
        context: X,
    },
    /// Delete what `context` covers: a tombstone, replicated like a write.
    Delete {
        /// The key.
        key: String,
        /// What the client had seen.
        context: X,
    },
}

impl<X> Request<X> {
    /// The key asked about.
    pub fn key(&self) -> &str {
        match self {
            Request::Get { key } | Request::Put { key, .. } | Request::Delete { key, .. } => key,
        }
    }
}

/// A replica's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Response<X> {
    /// A read: the live siblings (none: missing or deleted) of the merge of `R`
    /// replicas, and the context to write with.
    Values {
        /// The key read.
        key: String,
        /// Every concurrent value, in the mode's order.
        siblings: Vec<String>,
        /// Covers everything read.
        context: X,
    },
    /// A write (or delete) durable at `W` replicas: the coordinator's siblings right
    /// after it (the write's own value and what it did not replace) and their context.
    Written {
        /// The key written.
        key: String,
        /// The siblings after the write.
        siblings: Vec<String>,
        /// Covers the write and the siblings.
        context: X,
    },
}

impl<X> Response<X> {
    /// The key answered about.
    pub fn key(&self) -> &str {
        match self {
            Response::Values { key, .. } | Response::Written { key, .. } => key,
        }
    }

    /// The siblings answered.
    pub fn siblings(&self) -> &[String] {
        match self {
            Response::Values { siblings, .. } | Response::Written { siblings, .. } => siblings,
        }
    }

    /// The context answered.
    pub fn context(&self) -> &X {
        match self {
            Response::Values { context, .. } | Response::Written { context, .. } => context,
        }
    }
}

/// When a replica sent a message: its incarnation and the message's number in it.
/// Stamps of one sender only grow (the incarnation is durable and counted up at every
/// start), so a receiver can refuse what a peer sent before some point (tombstone
/// collection, [`crate::node`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    /// The sender's incarnation.
    pub incarnation: u64,
    /// Messages the sender sent this incarnation, this one included.
    pub seq: u64,
}

/// Replica to replica: a [`Body`] and when it was sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Message<C: Causality> {
    /// When.
    pub sent: Stamp,
    /// What.
    pub body: Body<C>,
}

/// What replicas say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Body<C: Causality> {
    /// A coordinator's write: merge `state` into yours, make it durable, acknowledge.
    Replicate {
        /// The coordinator's operation.
        op: u64,
        /// The key.
        key: String,
        /// The coordinator's state of the key after the write.
        state: C,
    },
    /// `Replicate` is durable here.
    Replicated {
        /// The operation acknowledged.
        op: u64,
    },
    /// A coordinator's read: send your state of `key`.
    Read {
        /// The coordinator's operation.
        op: u64,
        /// The key.
        key: String,
    },
    /// The answer to `Read` (`None`: never heard of the key).
    ReadReply {
        /// The operation answered.
        op: u64,
        /// This replica's state of the key.
        state: Option<C>,
    },
    /// Read repair: the merge a read found; merge it in.
    Repair {
        /// The key.
        key: String,
        /// The merged state.
        state: C,
    },
    /// Anti-entropy, round start: the initiator's hash of every bucket it shares with
    /// the receiver (absent: empty).
    Digest {
        /// `(bucket, hash)`, nonzero hashes only.
        buckets: Vec<(u16, u64)>,
        /// `(key, hash)` of the tombstones the sender has seen every replica hold:
        /// it is ready to collect them.
        ready: Vec<(String, u64)>,
    },
    /// The buckets whose hashes differ, and the sender's hash of each of their leaves.
    Leaves {
        /// The differing buckets.
        buckets: Vec<u16>,
        /// `(leaf, hash)` of their leaves, nonzero hashes only.
        leaves: Vec<(u32, u64)>,
    },
    /// The leaves whose hashes differ, and the sender's hash of each key in them.
    Keys {
        /// The differing leaves.
        leaves: Vec<u32>,
        /// `(key, hash)` of every key the sender holds in them.
        keys: Vec<(String, u64)>,
    },
    /// States the sender holds that the receiver lacks or holds otherwise, and the
    /// keys the sender wants back.
    States {
        /// `(key, state)` to merge in.
        states: Vec<(String, C)>,
        /// Keys whose states the sender asks for.
        want: Vec<String>,
    },
}
