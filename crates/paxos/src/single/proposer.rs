//! The proposer ("Paxos Made Simple" §2.2 "Phase 1 (a)" and "Phase 2 (a)").

use crate::types::Ballot;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use synod_core::NodeId;

/// Where a proposer is in its current attempt.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Phase<V> {
    /// No attempt in progress.
    Idle,
    /// Phase 1: a prepare request went out; promises are being collected.
    Preparing {
        /// The ballot of this attempt.
        ballot: Ballot,
        /// The value the proposer would like chosen (used only if no promise reports
        /// an accepted proposal: P2c).
        own: V,
        /// Promises received, with the proposal each acceptor reported.
        promises: BTreeMap<NodeId, Option<(Ballot, V)>>,
        /// Acceptors that refused.
        refusals: BTreeSet<NodeId>,
    },
    /// Phase 2: an accept request for `value` went out in `ballot`.
    Accepting {
        /// The ballot of this attempt.
        ballot: Ballot,
        /// The value proposed.
        value: V,
        /// Acceptors that refused.
        refusals: BTreeSet<NodeId>,
    },
}

/// A proposer: picks ballots, collects promises and proposes a safe value.
///
/// Invariant: every ballot it issues is above every round it issued before
/// (`round`, which the node persists before the prepare leaves — §2.5: "each
/// proposer remembers (in stable storage) the highest-numbered proposal it has tried
/// to issue, and begins phase 1 with a higher proposal number than any it has already
/// used").
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Proposer<V> {
    id: NodeId,
    acceptors: usize,
    quorum: usize,
    round: u64,
    phase: Phase<V>,
}

/// P2c: among the promises, the proposal with the highest ballot, if any acceptor
/// reported one. "v is the value of the highest-numbered proposal among the
/// responses, or is any value if the responders reported no proposals."
pub fn highest_accepted<'a, V: 'a>(
    reports: impl IntoIterator<Item = &'a Option<(Ballot, V)>>,
) -> Option<&'a (Ballot, V)> {
    reports
        .into_iter()
        .filter_map(Option::as_ref)
        .max_by_key(|(b, _)| *b)
}

impl<V: Clone> Proposer<V> {
    /// A proposer `id` talking to `acceptors` acceptors, of which `quorum` form a
    /// majority. `round` is the highest round it ever issued (persisted).
    pub fn new(id: NodeId, acceptors: usize, quorum: usize, round: u64) -> Proposer<V> {
        assert!(
            quorum * 2 > acceptors && quorum <= acceptors,
            "not a majority"
        );
        Proposer {
            id,
            acceptors,
            quorum,
            round,
            phase: Phase::Idle,
        }
    }

    /// The highest round issued so far.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The current attempt.
    pub fn phase(&self) -> &Phase<V> {
        &self.phase
    }

    /// Phase 1(a): "A proposer selects a proposal number n and sends a prepare
    /// request with number n to a majority of acceptors." The number is above every
    /// round this proposer issued and above `seen` (rounds it learned from refusals).
    pub fn prepare(&mut self, own: V, seen: u64) -> Ballot {
        let ballot = Ballot::above(self.round.max(seen), self.id);
        self.round = ballot.round;
        self.phase = Phase::Preparing {
            ballot,
            own,
            promises: BTreeMap::new(),
            refusals: BTreeSet::new(),
        };
        ballot
    }

    /// A promise for `ballot`. Returns the accept request to send once a majority
    /// promised — Phase 2(a): "If the proposer receives a response to its prepare
    /// requests (numbered n) from a majority of acceptors, then it sends an accept
    /// request to each of those acceptors for a proposal numbered n with a value v,
    /// where v is the value of the highest-numbered proposal among the responses, or
    /// is any value if the responses reported no proposals."
    pub fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        accepted: Option<(Ballot, V)>,
    ) -> Option<(Ballot, V)> {
        let Phase::Preparing {
            ballot: mine,
            own,
            promises,
            ..
        } = &mut self.phase
        else {
            return None;
        };
        if *mine != ballot {
            return None; // a promise for an attempt we gave up
        }
        if let Some((b, _)) = &accepted {
            assert!(
                *b < ballot,
                "promise for {ballot} reports acceptance in {b}"
            );
        }
        promises.insert(from, accepted);
        if promises.len() < self.quorum {
            return None;
        }
        let value = match highest_accepted(promises.values()) {
            Some((_, v)) => v.clone(),
            None => own.clone(),
        };
        self.phase = Phase::Accepting {
            ballot,
            value: value.clone(),
            refusals: BTreeSet::new(),
        };
        Some((ballot, value))
    }

    /// A refusal of `ballot` by `from`. Returns `true` if the attempt is lost: the
    /// refusals leave no majority that could still promise or accept it.
    pub fn on_refusal(&mut self, from: NodeId, ballot: Ballot) -> bool {
        let (mine, refusals) = match &mut self.phase {
            Phase::Preparing {
                ballot, refusals, ..
            }
            | Phase::Accepting {
                ballot, refusals, ..
            } => (*ballot, refusals),
            Phase::Idle => return false,
        };
        if mine != ballot {
            return false;
        }
        refusals.insert(from);
        if refusals.len() + self.quorum > self.acceptors {
            self.phase = Phase::Idle;
            return true;
        }
        false
    }

    /// Ends the attempt (the value is chosen, or the node gives up).
    pub fn stop(&mut self) {
        self.phase = Phase::Idle;
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
    fn p2c_picks_the_value_of_the_highest_numbered_report() {
        let reports = [None, Some((b(3, 2), "old")), Some((b(4, 1), "newer")), None];
        assert_eq!(highest_accepted(&reports), Some(&(b(4, 1), "newer")));
        assert_eq!(highest_accepted::<&str>(&[None, None]), None);
    }

    #[test]
    fn a_majority_of_promises_yields_the_accept_request() {
        let mut p = Proposer::new(NodeId(1), 3, 2, 0);
        let ballot = p.prepare("mine", 4);
        assert_eq!(ballot, b(5, 1));
        assert_eq!(p.on_promise(NodeId(1), ballot, None), None);
        assert_eq!(
            p.on_promise(NodeId(2), ballot, Some((b(2, 3), "theirs"))),
            Some((ballot, "theirs"))
        );
        // A late promise changes nothing.
        assert_eq!(p.on_promise(NodeId(3), ballot, None), None);
    }

    #[test]
    fn refusals_from_a_majority_abandon_the_attempt() {
        let mut p = Proposer::new(NodeId(1), 3, 2, 0);
        let ballot = p.prepare(1, 0);
        assert!(!p.on_refusal(NodeId(2), ballot));
        assert!(!p.on_refusal(NodeId(2), ballot), "a duplicate counts once");
        assert!(p.on_refusal(NodeId(3), ballot));
        assert_eq!(p.phase(), &Phase::Idle);
        assert!(
            p.prepare(1, 0) > ballot,
            "a new attempt uses a higher round"
        );
    }

    #[test]
    fn in_five_acceptors_the_third_refusal_abandons_the_attempt() {
        // Two refusals leave three acceptors, still a quorum of 3: keep waiting.
        let mut p = Proposer::new(NodeId(1), 5, 3, 0);
        let ballot = p.prepare(1, 0);
        assert!(!p.on_refusal(NodeId(2), ballot));
        assert!(!p.on_refusal(NodeId(3), ballot));
        assert!(matches!(p.phase(), Phase::Preparing { .. }));
        assert!(p.on_refusal(NodeId(4), ballot));
        assert_eq!(p.phase(), &Phase::Idle);
    }
}
