//! Raft's vocabulary: terms, log indices, entries and cluster membership.

use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use synod_core::codec::{
    self,
    postcard_format::{put_varint, varint_len, Sink},
};
use synod_core::{AsEntryBytes, EntryBytes, Kv, NodeId, SessionCommand, StateMachine};

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

/// What a log entry carries. `S` is the replicated application.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Payload<S: StateMachine = Kv> {
    /// Appended by a new leader so it can commit entries of earlier terms (§5.4.2, §8).
    Noop,
    /// A client command for the application.
    Command(Arc<Command<S>>),
    /// A new cluster configuration; it takes effect as soon as it is appended (§6).
    Config(Membership),
}

/// One log entry.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Entry<S: StateMachine = Kv> {
    /// The term in which a leader created it.
    pub term: Term,
    /// Its position.
    pub index: LogIndex,
    /// Its content.
    pub payload: Payload<S>,
}

impl<S: StateMachine> Entry<S> {
    /// The entry's storage encoding, `codec::encode(self)`.
    ///
    /// Every node stores every entry. A client command — nearly every entry — carries
    /// the bytes of the entry its leader appended it as ([`Command`]), so each node
    /// stores those very bytes (sharing them) rather than encoding the entry again;
    /// any other entry is encoded now.
    pub fn encode(&self) -> EntryBytes {
        let Entry {
            term,
            index,
            payload,
        } = self;
        let Payload::Command(command) = payload else {
            return codec::encode(self).into();
        };
        match &command.logged {
            Some(logged) if logged.term == *term && logged.index == *index => {
                EntryBytes::shared(Arc::clone(command))
            }
            _ => {
                let len = command_entry_len::<S>(*term, *index, command);
                let mut bytes = Vec::with_capacity(len);
                put_command_entry::<S>(&mut bytes, *term, *index, command);
                debug_assert_eq!(bytes.len(), len, "command_entry_len is exact");
                bytes.into()
            }
        }
    }
}

/// Serde's variant index of [`Payload::Command`] (declaration order; below 128, so
/// one byte).
const PAYLOAD_COMMAND_VARIANT: u64 = 1;

/// Bytes [`put_command_entry`] writes.
fn command_entry_len<S: StateMachine>(
    term: Term,
    index: LogIndex,
    command: &SessionCommand<S::Command>,
) -> usize {
    varint_len(term.0) + varint_len(index.0) + 1 + command.encoded_len_with::<S>()
}

/// `codec::encode(&Entry { term, index, payload: Payload::Command(command) })`,
/// written by hand (the fields in declaration order, then the command, see
/// `StateMachine::encode_command`): postcard's serde path costs several times more
/// (for the KV's hand-written hook).
/// `command_entries_encode_as_serde_does` checks the bytes.
fn put_command_entry<S: StateMachine>(
    out: &mut impl Sink,
    term: Term,
    index: LogIndex,
    command: &SessionCommand<S::Command>,
) {
    put_varint(out, term.0);
    put_varint(out, index.0);
    put_varint(out, PAYLOAD_COMMAND_VARIANT);
    command.encode_with::<S>(out);
}

/// A client command as the log holds it: the [`SessionCommand`], and the storage bytes of
/// the entry its leader appended it as, made once by the leader and shared through
/// the `Arc` by every copy of that entry (the leader's log, AppendEntries, the
/// followers' logs). Every node stores a copy of these bytes ([`Entry::encode`])
/// instead of encoding the entry again; the bytes are used only for an entry at the
/// term and index they were made for.
///
/// It is the command in every other respect: it dereferences to it, and equality,
/// hashing, `Debug` and serde see only the command (the encodings on disk and on the
/// wire are unchanged; a command received over a real network has no bytes and its
/// entries are encoded by the receiver).
#[derive(Clone)]
pub struct Command<S: StateMachine = Kv> {
    command: SessionCommand<S::Command>,
    logged: Option<LoggedBytes>,
}

#[derive(Clone)]
struct LoggedBytes {
    term: Term,
    index: LogIndex,
    bytes: LoggedBuf,
}

impl<S: StateMachine> Command<S> {
    /// Wraps `command`.
    pub fn new(command: SessionCommand<S::Command>) -> Command<S> {
        Command {
            command,
            logged: None,
        }
    }

    /// Wraps `command` that a leader of `term` appends at `index`, encoding that entry.
    pub(crate) fn logged_at(
        term: Term,
        index: LogIndex,
        command: SessionCommand<S::Command>,
    ) -> Command<S> {
        let mut inline = InlineBytes {
            len: 0,
            overflow: false,
            bytes: [0; ENTRY_INLINE_BYTES],
        };
        put_command_entry::<S>(&mut inline, term, index, &command);
        let bytes = if inline.overflow {
            let len = command_entry_len::<S>(term, index, &command);
            let mut heap = Vec::with_capacity(len);
            put_command_entry::<S>(&mut heap, term, index, &command);
            debug_assert_eq!(heap.len(), len, "command_entry_len is exact");
            LoggedBuf::Heap(heap.into_boxed_slice())
        } else {
            LoggedBuf::Inline(inline)
        };
        Command {
            command,
            logged: Some(LoggedBytes { term, index, bytes }),
        }
    }

    /// The command.
    pub fn command(&self) -> &SessionCommand<S::Command> {
        &self.command
    }
}

/// Entries encoded in at most this many bytes (a command with a short key and value)
/// keep their bytes inside the `Command`, in the `Arc`'s allocation.
const ENTRY_INLINE_BYTES: usize = 56;

#[derive(Clone)]
enum LoggedBuf {
    Inline(InlineBytes),
    Heap(Box<[u8]>),
}

impl LoggedBuf {
    fn as_slice(&self) -> &[u8] {
        match self {
            LoggedBuf::Inline(b) => &b.bytes[..usize::from(b.len)],
            LoggedBuf::Heap(b) => b,
        }
    }
}

/// What a batch stores for a command entry: the bytes of the entry its leader
/// appended it as (empty for a command that was never logged; [`Entry::encode`]
/// shares them only for that very entry).
impl<S: StateMachine> AsEntryBytes for Command<S> {
    fn entry_bytes(&self) -> &[u8] {
        self.logged.as_ref().map_or(&[], |l| l.bytes.as_slice())
    }
}

/// A fixed buffer that notes when something did not fit (and then holds garbage).
#[derive(Clone)]
struct InlineBytes {
    len: u8,
    overflow: bool,
    bytes: [u8; ENTRY_INLINE_BYTES],
}

const _: () = assert!(ENTRY_INLINE_BYTES < u8::MAX as usize);

impl Sink for InlineBytes {
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        match self.bytes.get_mut(usize::from(self.len)) {
            Some(b) => {
                *b = byte;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }
    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
        let start = usize::from(self.len);
        match self.bytes.get_mut(start..start + bytes.len()) {
            Some(to) => {
                to.copy_from_slice(bytes);
                self.len += bytes.len() as u8;
            }
            None => self.overflow = true,
        }
    }
}

impl<S: StateMachine> std::ops::Deref for Command<S> {
    type Target = SessionCommand<S::Command>;
    fn deref(&self) -> &SessionCommand<S::Command> {
        &self.command
    }
}

impl<S: StateMachine> From<SessionCommand<S::Command>> for Command<S> {
    fn from(command: SessionCommand<S::Command>) -> Command<S> {
        Command::new(command)
    }
}

impl<S: StateMachine> PartialEq for Command<S> {
    fn eq(&self, other: &Command<S>) -> bool {
        self.command == other.command
    }
}

impl<S: StateMachine> Eq for Command<S> {}

impl<S: StateMachine> std::hash::Hash for Command<S> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.command.hash(state);
    }
}

impl<S: StateMachine> fmt::Debug for Command<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.command.fmt(f)
    }
}

impl<S: StateMachine> Serialize for Command<S> {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.command.serialize(serializer)
    }
}

impl<'de, S: StateMachine> Deserialize<'de> for Command<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Command<S>, D::Error> {
        SessionCommand::deserialize(deserializer).map(Command::new)
    }
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
    use proptest::prelude::*;
    use synod_core::{ClientId, KvCommand, KvOp};

    /// An application that keeps serde's encoding (no hand-written hook).
    #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    struct Tally(Vec<(String, i64)>);

    impl StateMachine for Tally {
        type Command = (String, i64);
        type Output = usize;
        type Query = ();
        type QueryOutput = usize;
        fn apply(&mut self, cmd: &(String, i64)) -> usize {
            self.0.push(cmd.clone());
            self.0.len()
        }
        fn query(&self, _: &()) -> usize {
            self.0.len()
        }
    }

    fn command(value: &str) -> Payload {
        Payload::Command(Arc::new(Command::new(KvCommand {
            client: ClientId(3),
            seq: 9,
            op: KvOp::Put {
                key: "k".into(),
                value: value.into(),
            },
        })))
    }

    proptest! {
        #[test]
        fn command_entries_encode_as_serde_does(term in any::<u64>(), index in any::<u64>(), value in ".{0,300}") {
            let Payload::Command(plain) = command(&value) else { unreachable!() };
            let logged: Command = Command::logged_at(Term(term), LogIndex(index), plain.command().clone());
            for c in [plain, Arc::new(logged)] {
                let e = Entry { term: Term(term), index: LogIndex(index), payload: Payload::Command(c) };
                let bytes = e.encode();
                prop_assert_eq!(&bytes[..], &codec::encode(&e)[..]);
                prop_assert_eq!(codec::decode::<Entry>(&bytes).unwrap(), e);
            }
        }

        /// The same holds for an application on serde's default encoding hook.
        #[test]
        fn command_entries_of_any_application_encode_as_serde_does(term in any::<u64>(), index in any::<u64>(), name in ".{0,80}", add in any::<i64>()) {
            let cmd = SessionCommand { client: ClientId(4), seq: 1, op: (name, add) };
            let logged = Command::<Tally>::logged_at(Term(term), LogIndex(index), cmd.clone());
            for c in [Command::new(cmd), logged] {
                let e = Entry { term: Term(term), index: LogIndex(index), payload: Payload::Command(Arc::new(c)) };
                let bytes = e.encode();
                prop_assert_eq!(&bytes[..], &codec::encode(&e)[..]);
                prop_assert_eq!(codec::decode::<Entry<Tally>>(&bytes).unwrap(), e);
            }
        }
    }

    #[test]
    fn a_command_is_its_kv_command_to_everything_but_the_storage_path() {
        let kv = KvCommand {
            client: ClientId(1),
            seq: 2,
            op: KvOp::Delete { key: "k".into() },
        };
        let command: Command = Command::logged_at(Term(1), LogIndex(1), kv.clone());
        assert_eq!(*command, kv);
        assert_eq!(command, Command::new(kv.clone()));
        assert_eq!(codec::encode(&command), codec::encode(&kv));
        assert_eq!(format!("{command:?}"), format!("{kv:?}"));
        let back: Command = codec::decode(&codec::encode(&kv)).unwrap();
        assert_eq!(back, command);
        let hash = |v: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
            use std::hash::Hasher;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            v(&mut h);
            h.finish()
        };
        use std::hash::Hash;
        assert_eq!(hash(&|h| command.hash(h)), hash(&|h| kv.hash(h)));
        // … and two different commands differ (the Figure 3 checks compare entries)
        let other = KvCommand {
            seq: 3,
            ..kv.clone()
        };
        assert_ne!(command, Command::new(other));
    }

    #[test]
    fn logged_bytes_serve_only_the_entry_they_were_made_for() {
        let kv = |value: &str| KvCommand {
            client: ClientId(3),
            seq: 9,
            op: KvOp::Put {
                key: "k".into(),
                value: value.into(),
            },
        };
        for value in ["", "v", &"x".repeat(100)] {
            let logged = Arc::new(Command::<Kv>::logged_at(Term(2), LogIndex(7), kv(value)));
            assert!(logged.logged.is_some());
            for (term, index) in [(2, 7), (3, 7), (2, 8)] {
                let e = Entry {
                    term: Term(term),
                    index: LogIndex(index),
                    payload: Payload::Command(Arc::clone(&logged)),
                };
                assert_eq!(
                    e.encode()[..],
                    codec::encode(&e)[..],
                    "at ({term}, {index})"
                );
            }
        }
    }

    #[test]
    fn other_entries_encode_through_serde() {
        for payload in [
            Payload::<Kv>::Noop,
            Payload::Config(Membership::with_voters([NodeId(1)])),
        ] {
            let e = Entry {
                term: Term(1),
                index: LogIndex(2),
                payload,
            };
            assert_eq!(e.encode()[..], codec::encode(&e)[..]);
        }
    }
}
