//! Multi-Paxos messages. Phase 1 and 2 are "Paxos Made Simple" §2.2's, run for all
//! slots at once (§3); heartbeats, catch-up and snapshots are the engineering of
//! "Paxos Made Live" (Chandra, Griesemer, Redstone 2007) §5.

use super::log::{put_run_header, run_header_len};
use crate::types::{Ballot, Slot, Value};
use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use synod_core::codec::postcard_format::Sink;
use synod_core::{Kv, NodeId, StateMachine};

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

/// Entries `first..` of `ballot`, concatenated after room for a run header: entry
/// `k` starts where entry `k - 1` ends (`ends[k - 1]`; entry 0 at [`HEADER_ROOM`]);
/// the last one ends with `bytes` (so a batch of one entry, the common case at low
/// load, needs no `ends` allocation). The header of the run of all of them sits
/// right before entry 0, from `header_at`, so that run is one copy of a slice.
pub(crate) struct EntryBytes {
    ballot: Ballot,
    first: Slot,
    count: usize,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    header_at: usize,
}

/// Room for a run header before the entries: two varints of at most 10 bytes.
const HEADER_ROOM: usize = 20;

/// A [`Sink`] over a slice exactly as long as what is written into it.
struct SliceSink<'a>(&'a mut [u8]);

impl Sink for SliceSink<'_> {
    fn put_byte(&mut self, byte: u8) {
        self.put_slice(&[byte]);
    }
    fn put_slice(&mut self, bytes: &[u8]) {
        let (to, rest) = std::mem::take(&mut self.0).split_at_mut(bytes.len());
        to.copy_from_slice(bytes);
        self.0 = rest;
    }
}

impl EntryBytes {
    /// Encodes `values` as the acceptances of consecutive slots from `first` in
    /// `ballot`.
    pub(crate) fn encode<S: StateMachine>(
        ballot: Ballot,
        first: Slot,
        values: &[Value<S>],
    ) -> EntryBytes {
        let mut bytes =
            Vec::with_capacity(HEADER_ROOM + values.len() * super::log::ENTRY_BYTES_HINT);
        bytes.resize(HEADER_ROOM, 0);
        let mut ends = Vec::with_capacity(values.len().saturating_sub(1));
        for (k, value) in values.iter().enumerate() {
            if k > 0 {
                ends.push(bytes.len());
            }
            super::log::put_accepted(&mut bytes, ballot, value);
        }
        let count = values.len() as u64;
        let header_at = HEADER_ROOM - run_header_len(first, count);
        put_run_header(
            &mut SliceSink(&mut bytes[header_at..HEADER_ROOM]),
            first,
            count,
        );
        EntryBytes {
            ballot,
            first,
            count: values.len(),
            bytes,
            ends,
            header_at,
        }
    }

    /// Where entry `k` starts.
    fn start_of(&self, k: usize) -> usize {
        if k == 0 {
            HEADER_ROOM
        } else {
            self.ends[k - 1]
        }
    }

    /// The storage bytes of the run of entries from `from` to the last one
    /// (`LogRun { first: from, entries }` as serde encodes it): one copy of the
    /// entries behind a two-number header.
    ///
    /// # Panics
    /// If `from` is not one of these entries' slots.
    pub(crate) fn run_bytes(self: &Arc<Self>, from: Slot) -> synod_core::EntryBytes {
        let k = from
            .0
            .checked_sub(self.first.0)
            .and_then(|k| usize::try_from(k).ok())
            .filter(|&k| k < self.count)
            .unwrap_or_else(|| panic!("{from} is not among these entries"));
        if k == 0 {
            // The whole run: every node in our process shares these very bytes.
            return synod_core::EntryBytes::shared(Arc::clone(self));
        }
        // A suffix (its first slots were known chosen): a header of its own.
        let tail = &self.bytes[self.start_of(k)..];
        let count = (self.count - k) as u64;
        let mut out = Vec::with_capacity(run_header_len(from, count) + tail.len());
        put_run_header(&mut out, from, count);
        out.extend_from_slice(tail);
        out.into()
    }

    /// Entry `k`'s bytes.
    #[cfg(test)]
    pub(crate) fn entry(&self, k: usize) -> Option<&[u8]> {
        if k >= self.count {
            return None;
        }
        let start = self.start_of(k);
        let end = self.ends.get(k).copied().unwrap_or(self.bytes.len());
        Some(&self.bytes[start..end])
    }
}

/// The storage bytes of the run of all the entries (`run_bytes` from the first).
impl synod_core::AsEntryBytes for EntryBytes {
    fn entry_bytes(&self) -> &[u8] {
        &self.bytes[self.header_at..]
    }
}

impl EncodedEntries {
    /// No bytes: the acceptor encodes.
    pub const NONE: EncodedEntries = EncodedEntries(None);

    /// Bytes the leader also stores (the same buffer).
    pub(crate) fn shared(bytes: Arc<EntryBytes>) -> EncodedEntries {
        EncodedEntries(Some(bytes))
    }

    /// The bytes, if they were made for `count` entries from `first` in `ballot`.
    pub(crate) fn made_for(
        &self,
        ballot: Ballot,
        first: Slot,
        count: usize,
    ) -> Option<&Arc<EntryBytes>> {
        self.0
            .as_ref()
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
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct AcceptedSlot<S: StateMachine = Kv> {
    /// The slot.
    pub slot: Slot,
    /// The ballot it was accepted in.
    pub ballot: Ballot,
    /// The value accepted.
    pub value: Value<S>,
}

/// A Multi-Paxos message.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Message<S: StateMachine = Kv> {
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
        accepted: Vec<AcceptedSlot<S>>,
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
        values: Vec<Value<S>>,
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
        values: Vec<Value<S>>,
        /// The sender's first slot not known chosen (ask again below it).
        decided: Slot,
    },
    /// A state-machine snapshot covering every slot below `below`, for a learner
    /// whose next slot was truncated from the sender's log.
    Snapshot {
        /// First slot not covered.
        below: Slot,
        /// `Sessions::snapshot` bytes of the application.
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
            let encoded =
                EncodedEntries::shared(Arc::new(EntryBytes::encode(ballot, Slot(7), &values)));
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
            for k in 0..n {
                let from = Slot(7 + k as u64);
                let run = crate::multi::LogRun {
                    first: from,
                    entries: values[k..]
                        .iter()
                        .map(|v| LogEntry::Accepted {
                            ballot,
                            value: v.clone(),
                        })
                        .collect(),
                };
                assert_eq!(
                    made.run_bytes(from)[..],
                    synod_core::codec::encode(&run)[..]
                );
            }
            let other = Ballot { round: 4, ..ballot };
            assert!(encoded.made_for(other, Slot(7), n).is_none());
            assert!(encoded.made_for(ballot, Slot(8), n).is_none());
            assert!(encoded.made_for(ballot, Slot(7), n + 1).is_none());
            assert!(EncodedEntries::NONE.made_for(ballot, Slot(7), n).is_none());
        }
    }

    #[test]
    #[should_panic(expected = "s9 is not among these entries")]
    fn a_run_from_past_the_last_entry_is_refused() {
        let values = [put(1), put(2)];
        let bytes = Arc::new(EntryBytes::encode(Ballot::ZERO, Slot(7), &values));
        let _ = bytes.run_bytes(Slot(9));
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
        let bytes = EntryBytes::encode(Ballot::ZERO, Slot(1), &[Value::<Kv>::Noop]);
        let with = accept(EncodedEntries::shared(Arc::new(bytes)));
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
