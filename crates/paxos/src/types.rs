//! Paxos's vocabulary, shared by both layers: ballots, slots and slot values.

use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use synod_core::{Kv, StateMachine};
use synod_core::{NodeId, SessionCommand};

/// A ballot — "Paxos Made Simple" §2.2's *proposal number*. Ballots are totally
/// ordered by `round`, then by `node`: two proposers never issue the same ballot
/// because each only uses its own id (§2.5: "different proposers choose their numbers
/// from disjoint sets of numbers").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Ballot {
    /// The round; compared first.
    pub round: u64,
    /// The proposer that owns this ballot; breaks ties between equal rounds.
    pub node: NodeId,
}

impl Ballot {
    /// Lower than every ballot a proposer issues (rounds start at 1): the "promised
    /// nothing yet" value of a fresh acceptor.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        node: NodeId(0),
    };

    /// The smallest ballot owned by `node` that is above every round in `seen`.
    pub fn above(seen: u64, node: NodeId) -> Ballot {
        Ballot {
            round: seen + 1,
            node,
        }
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.round, self.node.0)
    }
}

/// A position in the Multi-Paxos sequence: one instance of single-decree Paxos
/// ("Paxos Made Simple" §3: "a separate instance of the Paxos consensus algorithm
/// chooses the i-th state machine command"). Slots start at 1; the durable log stores
/// them in runs of consecutive slots (`multi::LogRun`).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct Slot(pub u64);

impl Slot {
    /// The first slot of a fresh log.
    pub const FIRST: Slot = Slot(1);

    /// The slot after this one.
    pub fn next(self) -> Slot {
        Slot(self.0 + 1)
    }

    /// The slot `n` after this one.
    pub fn plus(self, n: u64) -> Slot {
        Slot(self.0 + n)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// What a Multi-Paxos slot decides.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Value<S: StateMachine = Kv> {
    /// Fills a hole a new leader found in the sequence ("Paxos Made Simple" §3: the
    /// leader "proposes a special 'no-op' command that leaves the state unchanged").
    Noop,
    /// A client command for the application.
    Command(Arc<SessionCommand<S::Command>>),
}

impl<S: StateMachine> Value<S> {
    /// The `(client, seq)` of a command, `None` for a no-op.
    pub fn request_id(&self) -> Option<(synod_core::ClientId, u64)> {
        match self {
            Value::Noop => None,
            Value::Command(c) => Some((c.client, c.seq)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_node() {
        let b = |r, n| Ballot {
            round: r,
            node: NodeId(n),
        };
        assert!(b(1, 9) < b(2, 1));
        assert!(b(2, 1) < b(2, 2));
        assert!(Ballot::ZERO < b(1, 0));
        assert_eq!(Ballot::above(7, NodeId(3)), b(8, 3));
    }
}
