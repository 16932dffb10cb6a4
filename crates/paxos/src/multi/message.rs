//! Multi-Paxos messages. Phase 1 and 2 are "Paxos Made Simple" §2.2's, run for all
//! slots at once (§3); heartbeats, catch-up and snapshots are the engineering of
//! "Paxos Made Live" (Chandra, Griesemer, Redstone 2007) §5.

use crate::types::{Ballot, Slot, Value};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use synod_core::NodeId;

/// The storage bytes of an accept's entries (`LogEntry::Accepted { ballot, value }`
/// per slot), made once by the leader that proposed them. Every acceptor of the
/// ballot stores exactly these bytes, so an acceptor that receives the accept in
/// the leader's process (a simulator, a bench) stores a copy of them instead of
/// encoding each entry again.
///
/// It is no part of the message: it is not serialized (an acceptor across a
/// network receives none and encodes itself), and equality, hashing and `Debug`
/// ignore it. The bytes are used only for the ballot and slots they were made for.
#[derive(Clone, Default)]
pub struct EncodedEntries(Option<Arc<EntryBytes>>);

/// Entries `first..` of `ballot`, concatenated: entry `k` starts where entry
/// `k - 1` ends (`ends[k - 1]`); the last one ends with `bytes` (so a batch of one
/// entry, the common case at low load, needs no `ends` allocation).
pub(crate) struct EntryBytes {
    ballot: Ballot,
    first: Slot,
    count: usize,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl EntryBytes {
    /// An empty run of entries from `first`, proposed in `ballot`, with room for
    /// `entries` of them.
    pub(crate) fn new(ballot: Ballot, first: Slot, entries: usize) -> EntryBytes {
        EntryBytes {
            ballot,
            first,
            count: 0,
            bytes: Vec::with_capacity(entries * ENTRY_BYTES_HINT),
            ends: Vec::with_capacity(entries.saturating_sub(1)),
        }
    }

    /// Appends the next slot's entry; returns its bytes.
    pub(crate) fn push(&mut self, value: &Value) -> &[u8] {
        let start = self.bytes.len();
        if self.count > 0 {
            self.ends.push(start);
        }
        self.count += 1;
        super::log::put_accepted(&mut self.bytes, self.ballot, value);
        &self.bytes[start..]
    }

    /// Entry `k`'s bytes.
    pub(crate) fn entry(&self, k: usize) -> Option<&[u8]> {
        if k >= self.count {
            return None;
        }
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        let end = self.ends.get(k).copied().unwrap_or(self.bytes.len());
        Some(&self.bytes[start..end])
    }
}

/// Typical bytes of one entry (a small command), to size the buffer once.
const ENTRY_BYTES_HINT: usize = 48;

impl EncodedEntries {
    /// No bytes: the acceptor encodes.
    pub const NONE: EncodedEntries = EncodedEntries(None);

    pub(crate) fn new(bytes: EntryBytes) -> EncodedEntries {
        EncodedEntries(Some(Arc::new(bytes)))
    }

    /// The bytes, if they were made for `count` entries from `first` in `ballot`.
    pub(crate) fn made_for(
        &self,
        ballot: Ballot,
        first: Slot,
        count: usize,
    ) -> Option<&EntryBytes> {
        self.0
            .as_deref()
            .filter(|e| e.ballot == ballot && e.first == first && e.count == count)
    }
}

impl PartialEq for EncodedEntries {
    fn eq(&self, _: &EncodedEntries) -> bool {
        true
    }
}

impl Eq for EncodedEntries {}

impl std::hash::Hash for EncodedEntries {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl fmt::Debug for EncodedEntries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("_")
    }
}

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
        /// The entries' storage bytes, when the leader's are at hand (not sent).
        #[serde(skip)]
        encoded: EncodedEntries,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multi::LogEntry;
    use synod_core::{ClientId, KvCommand, KvOp};

    fn put(n: u64) -> Value {
        Value::Command(Arc::new(KvCommand {
            client: ClientId(n),
            seq: n,
            op: KvOp::Put {
                key: "k".into(),
                value: "v".repeat(n as usize * 40),
            },
        }))
    }

    #[test]
    fn leader_bytes_are_each_entrys_encoding_and_serve_only_their_batch() {
        let ballot = Ballot {
            round: 3,
            node: NodeId(2),
        };
        for values in [vec![put(1)], vec![put(0), Value::Noop, put(3)]] {
            let mut bytes = EntryBytes::new(ballot, Slot(7), values.len());
            for v in &values {
                bytes.push(v);
            }
            let encoded = EncodedEntries::new(bytes);
            let n = values.len();
            let made = encoded.made_for(ballot, Slot(7), n).expect("made for it");
            for (k, value) in values.iter().enumerate() {
                let entry = LogEntry::Accepted {
                    ballot,
                    value: value.clone(),
                };
                assert_eq!(made.entry(k), Some(entry.encode().as_slice()), "entry {k}");
            }
            assert_eq!(made.entry(n), None);
            let other = Ballot { round: 4, ..ballot };
            assert!(encoded.made_for(other, Slot(7), n).is_none());
            assert!(encoded.made_for(ballot, Slot(8), n).is_none());
            assert!(encoded.made_for(ballot, Slot(7), n + 1).is_none());
            assert!(EncodedEntries::NONE.made_for(ballot, Slot(7), n).is_none());
        }
    }

    #[test]
    fn leader_bytes_are_no_part_of_the_message() {
        let accept = |encoded| Message::Accept {
            ballot: Ballot::ZERO,
            first: Slot(1),
            values: vec![Value::Noop],
            decided: Slot(1),
            encoded,
        };
        let mut bytes = EntryBytes::new(Ballot::ZERO, Slot(1), 1);
        bytes.push(&Value::Noop);
        let with = accept(EncodedEntries::new(bytes));
        assert_eq!(with, accept(EncodedEntries::NONE));
        let wire = synod_core::codec::encode(&with);
        assert_eq!(
            wire,
            synod_core::codec::encode(&accept(EncodedEntries::NONE))
        );
        let back: Message = synod_core::codec::decode(&wire).unwrap();
        assert_eq!(back, with);
    }
}
