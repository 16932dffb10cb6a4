//! The acceptor ("Paxos Made Simple" §2.2, §2.3). Pure state and rules: the node
//! persists the two fields after every change, before it answers.

use crate::types::Ballot;
use serde::{Deserialize, Serialize};

/// An acceptor's state: the highest ballot it promised and the highest-ballot
/// proposal it accepted. §2.3: "an acceptor needs to remember only the
/// highest-numbered proposal that it has ever accepted and the number of the
/// highest-numbered prepare request to which it has responded … even if it fails and
/// is then restarted".
///
/// Invariant: `accepted.ballot <= promised` whenever both are set (accepting a
/// proposal numbered n is also promising n).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Acceptor<V> {
    promised: Ballot,
    accepted: Option<(Ballot, V)>,
}

impl<V> Default for Acceptor<V> {
    fn default() -> Self {
        Acceptor {
            promised: Ballot::ZERO,
            accepted: None,
        }
    }
}

impl<V: Clone + Eq + std::fmt::Debug> Acceptor<V> {
    /// An acceptor that has promised and accepted nothing.
    pub fn new() -> Acceptor<V> {
        Acceptor::default()
    }

    /// Rebuilds an acceptor from what it had persisted.
    ///
    /// # Panics
    /// If the state breaks the invariant (storage corruption).
    pub fn recover(promised: Ballot, accepted: Option<(Ballot, V)>) -> Acceptor<V> {
        if let Some((b, _)) = &accepted {
            assert!(
                *b <= promised,
                "recovered acceptance {b} above promise {promised}"
            );
        }
        Acceptor { promised, accepted }
    }

    /// The highest ballot promised (`Ballot::ZERO` if none).
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The highest-ballot proposal accepted, if any.
    pub fn accepted(&self) -> Option<&(Ballot, V)> {
        self.accepted.as_ref()
    }

    /// Phase 1(b): "If an acceptor receives a prepare request with number n greater
    /// than that of any prepare request to which it has already responded, then it
    /// responds to the request with a promise not to accept any more proposals
    /// numbered less than n and with the highest-numbered proposal (if any) that it
    /// has accepted."
    ///
    /// A repeated prepare with the promised number itself (a duplicate on the wire)
    /// gets the same promise again, which tells the proposer nothing new. A lower
    /// number is refused with the promise that stands in its way (an optimisation
    /// §2.3 suggests: "inform the proposer so it can abandon its proposal").
    pub fn on_prepare(&mut self, ballot: Ballot) -> Result<Option<(Ballot, V)>, Ballot> {
        if ballot < self.promised {
            return Err(self.promised);
        }
        self.promised = ballot;
        Ok(self.accepted.clone())
    }

    /// Phase 2(b) under P1a: "An acceptor can accept a proposal numbered n iff it has
    /// not responded to a prepare request having a number greater than n."
    /// Accepting n raises the promise to n, so the accepted ballot never decreases.
    pub fn on_accept(&mut self, ballot: Ballot, value: V) -> Result<(), Ballot> {
        if ballot < self.promised {
            return Err(self.promised);
        }
        if let Some((b, v)) = &self.accepted {
            assert!(*b <= ballot, "acceptance went backwards: {b} then {ballot}");
            if *b == ballot {
                // One proposer issues one value per ballot (Phase 2(a)).
                assert_eq!(*v, value, "two values proposed in ballot {ballot}");
            }
        }
        self.promised = ballot;
        self.accepted = Some((ballot, value));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_core::NodeId;

    fn b(round: u64, node: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(node),
        }
    }

    #[test]
    fn promise_reports_the_accepted_proposal_and_blocks_lower_ballots() {
        let mut a = Acceptor::new();
        assert_eq!(a.on_prepare(b(1, 1)), Ok(None));
        assert_eq!(a.on_accept(b(1, 1), "x"), Ok(()));
        assert_eq!(a.on_prepare(b(2, 2)), Ok(Some((b(1, 1), "x"))));
        assert_eq!(a.on_accept(b(1, 1), "x"), Err(b(2, 2)));
        assert_eq!(a.on_prepare(b(1, 3)), Err(b(2, 2)));
        // A duplicate of the prepare it answered is answered again.
        assert_eq!(a.on_prepare(b(2, 2)), Ok(Some((b(1, 1), "x"))));
    }

    #[test]
    fn accepting_raises_the_promise() {
        let mut a = Acceptor::new();
        assert_eq!(a.on_accept(b(5, 1), 7), Ok(()));
        assert_eq!(a.promised(), b(5, 1));
        assert_eq!(a.on_prepare(b(4, 2)), Err(b(5, 1)));
    }

    #[test]
    #[should_panic(expected = "above promise")]
    fn recovery_rejects_an_acceptance_above_the_promise() {
        let _ = Acceptor::recover(b(1, 1), Some((b(2, 1), 0)));
    }
}
