//! Raft's vocabulary: terms, log indices, entries and cluster membership.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use synod_core::{codec, KvCommand, NodeId};

/// A Raft term (§5.1): a logical clock that numbers leaderships.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct Term(pub u64);

impl Term {
    /// The next term.
    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A position in the log; the first entry has index 1, index 0 is "before the log".
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct LogIndex(pub u64);

impl LogIndex {
    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index before this one (saturating at 0).
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

/// What a log entry carries.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by a new leader so it can commit entries of earlier terms (§5.4.2, §8).
    Noop,
    /// A client command for the replicated KV state machine.
    Command(Arc<KvCommand>),
    /// A new cluster configuration; it takes effect as soon as it is appended (§6).
    Config(Membership),
}

/// One log entry.
///
/// Besides its value (`term`, `index`, `payload`) an entry may carry the bytes its
/// leader stored it as, shared by every in-memory copy of it: the leader's log, the
/// AppendEntries that carry it, the followers' logs. Followers then persist a copy of
/// those bytes instead of encoding the entry again (see [`Entry::encode`]). The bytes
/// are not part of the value: equality, hashing, `Debug` and serde ignore them, so the
/// storage and wire encodings are unchanged and a receiver across a real network, which
/// gets no bytes, encodes the entry itself.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The term in which a leader created it.
    pub term: Term,
    /// Its position.
    pub index: LogIndex,
    /// Its content.
    pub payload: Payload,
    #[serde(skip)]
    encoded: SharedEncoding,
}

impl Entry {
    /// A new entry (without stored bytes; [`Entry::encode`] encodes it).
    pub fn new(term: Term, index: LogIndex, payload: Payload) -> Entry {
        Entry {
            term,
            index,
            payload,
            encoded: SharedEncoding::default(),
        }
    }

    /// The entry's storage encoding, `codec::encode(self)`: a copy of the bytes its
    /// leader encoded, when this entry carries them and they still describe it, else
    /// encoded now.
    pub fn encode(&self) -> Vec<u8> {
        match self.encoded.bytes_for(self) {
            Some(bytes) => bytes.to_vec(),
            None => codec::encode(self),
        }
    }

    /// Encodes the entry for storage and keeps the bytes with it, so that every copy
    /// made from now on (AppendEntries, followers' logs) can reuse them. Only client
    /// commands keep them: other entries are rare and small.
    pub(crate) fn encode_to_share(&mut self) -> Vec<u8> {
        let bytes = codec::encode(self);
        if let Payload::Command(command) = &self.payload {
            self.encoded = SharedEncoding(Some(Arc::new(Encoded {
                term: self.term,
                index: self.index,
                command: Arc::clone(command),
                bytes: bytes.as_slice().into(),
            })));
        }
        bytes
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("term", &self.term)
            .field("index", &self.index)
            .field("payload", &self.payload)
            .finish()
    }
}

/// The bytes an entry was encoded to, with what they describe. `Entry`'s fields are
/// public, so a copy could be edited after it was encoded: the bytes are used only
/// while term and index are unchanged and the payload is the very command (the same
/// allocation, which nobody can change while we hold a reference to it) they encode.
#[derive(Clone, Default)]
struct SharedEncoding(Option<Arc<Encoded>>);

struct Encoded {
    term: Term,
    index: LogIndex,
    command: Arc<KvCommand>,
    bytes: Box<[u8]>,
}

impl SharedEncoding {
    fn bytes_for(&self, entry: &Entry) -> Option<&[u8]> {
        let e = self.0.as_deref()?;
        let same_command =
            matches!(&entry.payload, Payload::Command(c) if Arc::ptr_eq(c, &e.command));
        (same_command && e.term == entry.term && e.index == entry.index).then_some(&*e.bytes)
    }
}

/// Not part of an entry's value (see [`Entry`]).
impl PartialEq for SharedEncoding {
    fn eq(&self, _: &SharedEncoding) -> bool {
        true
    }
}

impl Eq for SharedEncoding {}

/// Not part of an entry's value (see [`Entry`]): hashes nothing, so digests of
/// messages and states are what they were before entries carried bytes.
impl std::hash::Hash for SharedEncoding {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// Cluster membership: voters decide elections and commitment; learners only
/// receive the log (they catch up before being promoted, thesis §4.2.1).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Membership {
    /// Voting members.
    pub voters: BTreeSet<NodeId>,
    /// Non-voting members.
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A configuration of voters only.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    /// Votes needed for a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// `true` if `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// `true` if `id` is a voter or learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_core::{ClientId, KvOp};

    fn command(value: &str) -> Payload {
        Payload::Command(Arc::new(KvCommand {
            client: ClientId(3),
            seq: 9,
            op: KvOp::Put {
                key: "k".into(),
                value: value.into(),
            },
        }))
    }

    #[test]
    fn shared_bytes_are_the_entry_encoding_and_follow_every_copy() {
        let mut leader = Entry::new(Term(2), LogIndex(7), command("v"));
        let stored = leader.encode_to_share();
        assert_eq!(stored, codec::encode(&leader));
        let copy = leader.clone(); // as carried by AppendEntries
        assert!(
            copy.encoded.bytes_for(&copy).is_some(),
            "the copy shares the bytes"
        );
        assert_eq!(copy.encode(), stored);
        assert_eq!(codec::decode::<Entry>(&stored).unwrap(), leader);
    }

    #[test]
    fn an_edited_copy_is_encoded_afresh() {
        let mut leader = Entry::new(Term(2), LogIndex(7), command("v"));
        leader.encode_to_share();
        let mut edits: Vec<Entry> = vec![leader.clone(), leader.clone(), leader.clone()];
        edits[0].term = Term(3);
        edits[1].index = LogIndex(8);
        edits[2].payload = command("v"); // equal value, another allocation
        for e in &edits {
            assert!(e.encoded.bytes_for(e).is_none());
            assert_eq!(e.encode(), codec::encode(e));
        }
    }

    #[test]
    fn shared_bytes_are_not_part_of_the_value() {
        let plain = Entry::new(Term(1), LogIndex(1), command("v"));
        let mut shared = plain.clone();
        shared.encode_to_share();
        assert_eq!(plain, shared);
        let hash = |e: &Entry| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(e)
        };
        assert_eq!(hash(&plain), hash(&shared));
        assert_eq!(format!("{plain:?}"), format!("{shared:?}"));
        assert_eq!(codec::encode(&plain), codec::encode(&shared));
    }
}
