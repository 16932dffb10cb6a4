//! The learner ("Paxos Made Simple" §2.3 "Learning a Chosen Value").

use crate::types::Ballot;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use synod_core::NodeId;

/// A learner: "a value is chosen when a single proposal with that value has been
/// accepted by a majority of the acceptors" (§2.2). It counts acceptances per ballot,
/// because the same value accepted in different ballots by different acceptors does
/// not make a majority for any one proposal.
///
/// Invariant: once `chosen` is set it never changes (§2.1 safety: "only a single
/// value is chosen"); a second majority for another value panics.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Learner<V> {
    quorum: usize,
    votes: BTreeMap<Ballot, (V, BTreeSet<NodeId>)>,
    chosen: Option<V>,
}

impl<V: Clone + Eq + std::fmt::Debug> Learner<V> {
    /// A learner for acceptor majorities of `quorum`, knowing `chosen` (persisted).
    pub fn new(quorum: usize, chosen: Option<V>) -> Learner<V> {
        Learner {
            quorum,
            votes: BTreeMap::new(),
            chosen,
        }
    }

    /// The chosen value, once learned.
    pub fn chosen(&self) -> Option<&V> {
        self.chosen.as_ref()
    }

    /// Acceptor `from` accepted `value` in `ballot`. Returns the value if this
    /// acceptance made it chosen (the first time only).
    pub fn on_accepted(&mut self, from: NodeId, ballot: Ballot, value: V) -> Option<V> {
        let (v, voters) = self
            .votes
            .entry(ballot)
            .or_insert_with(|| (value.clone(), BTreeSet::new()));
        assert_eq!(*v, value, "two values accepted in ballot {ballot}");
        voters.insert(from);
        if voters.len() < self.quorum {
            return None;
        }
        match &self.chosen {
            Some(c) => {
                assert_eq!(*c, value, "a second value was chosen in {ballot}");
                None
            }
            None => {
                self.chosen = Some(value.clone());
                Some(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(round: u64, node: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(node),
        }
    }

    #[test]
    fn chosen_needs_a_majority_in_one_ballot() {
        let mut l = Learner::new(2, None);
        assert_eq!(l.on_accepted(NodeId(1), b(1, 1), "x"), None);
        assert_eq!(l.on_accepted(NodeId(2), b(2, 2), "x"), None, "two ballots");
        assert_eq!(l.on_accepted(NodeId(1), b(1, 1), "x"), None, "a duplicate");
        assert_eq!(l.on_accepted(NodeId(3), b(2, 2), "x"), Some("x"));
        assert_eq!(l.on_accepted(NodeId(1), b(2, 2), "x"), None, "learned once");
        assert_eq!(l.chosen(), Some(&"x"));
    }

    #[test]
    #[should_panic(expected = "second value")]
    fn a_second_chosen_value_is_a_safety_violation() {
        let mut l = Learner::new(1, Some("x"));
        l.on_accepted(NodeId(1), b(1, 1), "y");
    }
}
