//! The application contract: what a protocol replicates.
//!
//! A [`StateMachine`] is the user's application — its own command, output and
//! read-query types, a deterministic [`apply`](StateMachine::apply), and a snapshot
//! that restores with an error, never a panic, on bad bytes. Protocols replicate
//! [`Sessions<S>`]: the application wrapped in one generic exactly-once layer (Raft
//! thesis §6.3). Every command carries `(client, seq)`; the layer remembers, per
//! client, the highest `seq` applied and its output, so a retry of that `seq` gets
//! the remembered output without applying again and an older one is reported stale.
//! The session table is part of the replicated state (and of snapshots), so every
//! replica makes the same decision.
//!
//! ```
//! use synod_core::app::{Applied, Sessions, SessionCommand, StateMachine};
//! use synod_core::ClientId;
//! use serde::{Deserialize, Serialize};
//!
//! /// A counter service: add to it, read it.
//! #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
//! struct Counter(i64);
//!
//! impl StateMachine for Counter {
//!     type Command = i64;
//!     type Output = i64;
//!     type Query = ();
//!     type QueryOutput = i64;
//!     fn apply(&mut self, add: &i64) -> i64 {
//!         self.0 += add;
//!         self.0
//!     }
//!     fn query(&self, _: &()) -> i64 {
//!         self.0
//!     }
//! }
//!
//! let mut replica = Sessions::<Counter>::default();
//! let cmd = SessionCommand { client: ClientId(7), seq: 1, op: 5 };
//! assert_eq!(replica.apply(&cmd), Applied::Fresh(5));
//! assert_eq!(replica.apply(&cmd), Applied::Duplicate(5), "a retry is not applied twice");
//! let copy = Sessions::<Counter>::restore(&replica.snapshot()).unwrap();
//! assert_eq!(copy.app().query(&()), 5);
//! assert!(Sessions::<Counter>::restore(&[0xff; 3]).is_err(), "bad bytes: an error");
//! ```

use crate::codec::postcard_format::{put_varint, varint_len, Sink};
use crate::codec::{self, CodecError};
use crate::id::ClientId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

/// An application a protocol replicates. `apply` must be deterministic: the same
/// commands in the same order give the same state on every replica.
///
/// The associated types cross the network (commands in log entries, queries and
/// outputs between clients and nodes) and live in nodes that drivers move between
/// threads, hence the bounds; a `#[derive]` of them all is the usual way to meet them.
pub trait StateMachine:
    Clone + Debug + Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// A command, replicated through the log.
    type Command: AppData;
    /// What applying a command returns to its client.
    type Output: AppData;
    /// A read served without the log, once the protocol made it linearizable
    /// (ReadIndex, a read round).
    type Query: AppData;
    /// What a query returns.
    type QueryOutput: AppData;

    /// Applies `cmd`.
    fn apply(&mut self, cmd: &Self::Command) -> Self::Output;

    /// Answers `query` from the current state.
    fn query(&self, query: &Self::Query) -> Self::QueryOutput;

    /// Appends the postcard encoding of `cmd` to `out`: the bytes
    /// `codec::encode(cmd)` returns. The default goes through serde. A leader
    /// encodes every command once per log entry, so an application whose commands
    /// are on that hot path may write them by hand with `codec::postcard_format`,
    /// byte for byte the same (and test it against `codec::encode`, as the KV does).
    fn encode_command(cmd: &Self::Command, out: &mut impl Sink) {
        codec::encode_to_sink(cmd, out);
    }

    /// Bytes [`encode_command`](StateMachine::encode_command) writes.
    fn encoded_command_len(cmd: &Self::Command) -> usize {
        codec::encode(cmd).len()
    }
}

/// What the application's command, output, query and answer types are: values that
/// cross the network and that the simulator folds into its trace digest. Implemented
/// for every type with these traits.
pub trait AppData:
    Clone + Debug + PartialEq + Eq + Hash + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> AppData for T where
    T: Clone + Debug + PartialEq + Eq + Hash + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// A command with its client session: one logical client request.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SessionCommand<C> {
    /// Client session.
    pub client: ClientId,
    /// Sequence number within the session (first is 1).
    pub seq: u64,
    /// The application's command.
    pub op: C,
}

impl<C> SessionCommand<C> {
    /// Appends `codec::encode(self)` to `out`, the command through `S`'s encoding
    /// hook.
    #[inline]
    pub fn encode_with<S: StateMachine<Command = C>>(&self, out: &mut impl Sink) {
        put_varint(out, self.client.0);
        put_varint(out, self.seq);
        S::encode_command(&self.op, out);
    }

    /// Bytes [`encode_with`](SessionCommand::encode_with) writes.
    #[inline]
    pub fn encoded_len_with<S: StateMachine<Command = C>>(&self) -> usize {
        varint_len(self.client.0) + varint_len(self.seq) + S::encoded_command_len(&self.op)
    }
}

/// What [`Sessions::apply`] did with a command.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Applied<O> {
    /// First time this `(client, seq)` was seen: applied, with this output.
    Fresh(O),
    /// A retry of the latest command of the session: not applied again; the
    /// remembered output is returned.
    Duplicate(O),
    /// Older than the latest command of the session. The client has moved on, so
    /// no one waits for this output; nothing changed.
    Stale,
}

impl<O> Applied<O> {
    /// The output to send back, if any.
    pub fn result(&self) -> Option<&O> {
        match self {
            Applied::Fresh(r) | Applied::Duplicate(r) => Some(r),
            Applied::Stale => None,
        }
    }

    /// The output to send back, if any, by value.
    pub fn into_result(self) -> Option<O> {
        match self {
            Applied::Fresh(r) | Applied::Duplicate(r) => Some(r),
            Applied::Stale => None,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
struct Session<O> {
    seq: u64,
    result: O,
}

/// An application with exactly-once client sessions: what protocols replicate.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "S: Serialize", deserialize = "S: DeserializeOwned"))]
pub struct Sessions<S: StateMachine> {
    app: S,
    sessions: BTreeMap<ClientId, Session<S::Output>>,
    applied_commands: u64,
}

impl<S: StateMachine> Default for Sessions<S> {
    fn default() -> Self {
        Sessions {
            app: S::default(),
            sessions: BTreeMap::new(),
            applied_commands: 0,
        }
    }
}

impl<S: StateMachine> Sessions<S> {
    /// Applies `cmd` at most once per `(client, seq)`.
    pub fn apply(&mut self, cmd: &SessionCommand<S::Command>) -> Applied<S::Output> {
        // One session lookup per command: this runs for every committed entry on
        // every replica.
        match self.sessions.entry(cmd.client) {
            Entry::Occupied(e) => {
                let session = e.into_mut();
                if cmd.seq == session.seq {
                    return Applied::Duplicate(session.result.clone());
                }
                if cmd.seq < session.seq {
                    return Applied::Stale;
                }
                let result = self.app.apply(&cmd.op);
                session.seq = cmd.seq;
                session.result.clone_from(&result);
                self.applied_commands += 1;
                Applied::Fresh(result)
            }
            Entry::Vacant(e) => {
                let result = self.app.apply(&cmd.op);
                e.insert(Session {
                    seq: cmd.seq,
                    result: result.clone(),
                });
                self.applied_commands += 1;
                Applied::Fresh(result)
            }
        }
    }

    /// The application (for queries, once the protocol made them linearizable).
    pub fn app(&self) -> &S {
        &self.app
    }

    /// Number of commands applied fresh (duplicates and stale ones excluded).
    pub fn applied_commands(&self) -> u64 {
        self.applied_commands
    }

    /// The highest sequence number applied for `client`, if any.
    pub fn last_seq(&self, client: ClientId) -> Option<u64> {
        self.sessions.get(&client).map(|s| s.seq)
    }

    /// Serialises the whole machine (application and sessions) for a snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Rebuilds a machine from [`snapshot`](Self::snapshot) bytes; bad bytes are an
    /// error, never a panic.
    pub fn restore(bytes: &[u8]) -> Result<Sessions<S>, CodecError> {
        codec::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of every command applied, so a second application shows.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    struct Journal(Vec<u32>);

    impl StateMachine for Journal {
        type Command = u32;
        type Output = usize;
        type Query = ();
        type QueryOutput = Vec<u32>;
        fn apply(&mut self, x: &u32) -> usize {
            self.0.push(*x);
            self.0.len()
        }
        fn query(&self, _: &()) -> Vec<u32> {
            self.0.clone()
        }
    }

    fn cmd(client: u64, seq: u64, op: u32) -> SessionCommand<u32> {
        SessionCommand {
            client: ClientId(client),
            seq,
            op,
        }
    }

    #[test]
    fn raft_thesis_6_3_each_session_command_applies_once() {
        let mut s = Sessions::<Journal>::default();
        assert_eq!(s.apply(&cmd(1, 1, 10)), Applied::Fresh(1));
        assert_eq!(
            s.apply(&cmd(2, 1, 20)),
            Applied::Fresh(2),
            "sessions are per client"
        );
        assert_eq!(
            s.apply(&cmd(1, 1, 10)),
            Applied::Duplicate(1),
            "the cached answer"
        );
        assert_eq!(s.apply(&cmd(1, 2, 11)), Applied::Fresh(3));
        assert_eq!(
            s.apply(&cmd(1, 1, 10)),
            Applied::Stale,
            "older than the session"
        );
        assert_eq!(s.app().query(&()), [10, 20, 11]);
        assert_eq!(
            (s.applied_commands(), s.last_seq(ClientId(1))),
            (3, Some(2))
        );
        assert_eq!(s.last_seq(ClientId(9)), None);
    }

    #[test]
    fn the_default_command_encoding_is_the_serde_one() {
        for (client, seq, op) in [(0, 0, 0), (1, 300, 7), (u64::MAX, u64::MAX, u32::MAX)] {
            let c = cmd(client, seq, op);
            let mut out = vec![9]; // appends after what is there
            c.encode_with::<Journal>(&mut out);
            assert_eq!(&out[1..], &codec::encode(&c)[..]);
            assert_eq!(out.len() - 1, c.encoded_len_with::<Journal>());
        }
    }

    #[test]
    fn a_restored_snapshot_makes_the_same_dedup_decisions() {
        let mut s = Sessions::<Journal>::default();
        s.apply(&cmd(1, 4, 7));
        let mut r = Sessions::<Journal>::restore(&s.snapshot()).unwrap();
        assert_eq!(r, s);
        assert_eq!(r.apply(&cmd(1, 4, 7)), Applied::Duplicate(1));
        assert_eq!(r.apply(&cmd(1, 3, 7)), Applied::Stale);
        let mut truncated = s.snapshot();
        truncated.pop();
        assert!(Sessions::<Journal>::restore(&truncated).is_err());
    }

    /// What goes back to the client: the output of a fresh or a duplicate command,
    /// nothing for a stale one — by reference and by value alike.
    #[test]
    fn raft_thesis_6_3_a_duplicate_is_answered_a_stale_command_is_not() {
        for (applied, answer) in [
            (Applied::Fresh(3), Some(3)),
            (Applied::Duplicate(4), Some(4)),
            (Applied::Stale, None),
        ] {
            assert_eq!(applied.result().copied(), answer);
            assert_eq!(applied.into_result(), answer);
        }
    }
}
