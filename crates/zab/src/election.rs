//! Fast Leader Election (ZooKeeper's `FastLeaderElection`; Medeiros, "ZooKeeper's
//! atomic broadcast protocol: Theory and practice", 2012, §4), as a pure state
//! machine: notifications in, notifications out, a decision when a quorum agrees.
//!
//! Each looking server proposes a [`Vote`] — a leader, the last zxid of its history
//! and its current epoch — and adopts any better vote it hears of. Votes are ordered
//! by `(peer epoch, zxid, server id)` ([`Vote::beats`]), so the quorum settles on the
//! server with the most up-to-date durable history, which is what lets Zab's
//! discovery phase skip fetching histories from followers in the common case.
//!
//! * **Rounds.** `election_epoch` (ZooKeeper's `logicalclock`) counts this server's
//!   elections; a notification of a later round makes it join that round afresh, one
//!   of an earlier round is answered with our current vote and otherwise ignored.
//! * **Deciding.** Once the votes of this round equal our proposal at a quorum of
//!   voters ([`Step::Quorum`]), the server waits `finalize_wait` for a better vote
//!   ([`Election::finalize`]): a proposal that changed in between restarts the wait.
//! * **Joining an established leader.** Notifications from servers that are
//!   `Following` or `Leading` (the answers of a settled ensemble to a looking
//!   server) are collected apart; once a quorum of them names one leader and epoch —
//!   whatever round each decided in — and that leader itself says it is `Leading`,
//!   the server follows it at once.
//!
//! Only voters' notifications count; observers take part to learn who leads.
//!
//! ZooKeeper runs this over TCP and relies on its order. Here a server's vote within
//! a round only ever improves, so the votes of a round are kept as the best heard
//! from each server: a late, older notification cannot undo a newer one, and the
//! election tolerates reordering (`fle_every_server_decides_the_best_vote_whatever_the_delivery_order`).

use crate::types::{Epoch, Zxid};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use synod_core::NodeId;

/// What a server is doing, as its notifications say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PeerState {
    /// In an election.
    Looking,
    /// Following an established (or establishing) leader.
    Following,
    /// Leading.
    Leading,
    /// A non-voting replica.
    Observing,
}

/// A vote: who should lead, and the history it would lead with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    /// The proposed leader.
    pub leader: NodeId,
    /// The last zxid of its durable history.
    pub zxid: Zxid,
    /// Its current epoch (the last epoch whose NEWLEADER it acknowledged).
    pub peer_epoch: Epoch,
}

impl Vote {
    /// ZooKeeper's `totalOrderPredicate`: `self` is a better leader than `other` —
    /// a later current epoch, else a later zxid, else a higher server id.
    pub fn beats(&self, other: &Vote) -> bool {
        (self.peer_epoch, self.zxid, self.leader) > (other.peer_epoch, other.zxid, other.leader)
    }
}

/// One server's election message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Notification {
    /// Whom it votes for.
    pub vote: Vote,
    /// The round it votes in (its `logicalclock`, or the round it decided in).
    pub election_epoch: u64,
    /// What it is doing.
    pub state: PeerState,
}

/// What a notification led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing decided.
    Continue,
    /// This round's votes agree with our proposal at a quorum: wait `finalize_wait`
    /// for a better one, then call [`Election::finalize`] with this vote.
    Quorum(Vote),
    /// Decided: `vote.leader` leads (us, if it is our id).
    Decided(Vote),
}

/// Where a notification goes: every other server, or one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    /// Every other server, voters and observers.
    All,
    /// One server.
    One(NodeId),
}

/// One server's side of Fast Leader Election, across its elections.
#[derive(Clone, Debug)]
pub struct Election {
    me: NodeId,
    voters: BTreeSet<NodeId>,
    /// This server's round (`logicalclock`); volatile, as in ZooKeeper.
    round: u64,
    proposal: Vote,
    /// This round's votes of looking voters (and of settled ones in this round).
    votes: BTreeMap<NodeId, Vote>,
    /// Votes of settled servers, of any round: (vote, its round, its state).
    settled: BTreeMap<NodeId, (Vote, u64, PeerState)>,
    /// Leaders we cannot follow, with the epoch they lead in: their LEADERINFO named
    /// an epoch below our acceptedEpoch ([`Election::refuse`]). Volatile.
    refused: BTreeMap<NodeId, Epoch>,
}

impl Election {
    /// Server `me` of an ensemble whose voters are `voters` (observers not included).
    pub fn new(me: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Election {
        let proposal = Vote {
            leader: me,
            zxid: Zxid::ZERO,
            peer_epoch: Epoch(0),
        };
        Election {
            me,
            voters: voters.into_iter().collect(),
            round: 0,
            proposal,
            votes: BTreeMap::new(),
            settled: BTreeMap::new(),
            refused: BTreeMap::new(),
        }
    }

    /// `leader` leads in `epoch`, below our acceptedEpoch, so it can never take us
    /// (a follower never acknowledges an epoch below the one it accepted, DSN 2011
    /// §IV-A): its settled ensemble's notifications for an epoch up to `epoch` no
    /// longer decide our election. Without this a server whose acceptedEpoch is past
    /// the established leader's — it accepted a NEWEPOCH of a prospective leader that
    /// never established — joins that leader, is refused, looks, hears the ensemble
    /// and joins again, in a loop of messages with no timer in it (found by
    /// `harness/tests/fuzz_nodes.rs`). It now waits, looking, until that leadership
    /// ends and an election it takes part in picks an epoch past its own; ZooKeeper
    /// keeps such a server out the same way, but retries the leader each time.
    pub fn refuse(&mut self, leader: NodeId, epoch: Epoch) {
        let e = self.refused.entry(leader).or_insert(epoch);
        *e = (*e).max(epoch);
    }

    /// The current round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The vote we currently propose.
    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    /// `true` if `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Starts a new round proposing `own` (ourselves, with our durable last zxid and
    /// current epoch; an observer proposes nobody it could win with, but must still
    /// ask): sends our notification to everyone.
    pub fn begin(&mut self, own: Vote, send: &mut impl FnMut(To, Notification)) {
        self.round += 1;
        self.votes.clear();
        self.settled.clear();
        self.propose(own);
        send(To::All, self.notification(PeerState::Looking));
    }

    /// Resends our proposal to everyone (nothing heard for a while: ZooKeeper's
    /// `notTimeout` path).
    pub fn resend(&self, send: &mut impl FnMut(To, Notification)) {
        send(To::All, self.notification(PeerState::Looking));
    }

    /// Our notification in `state`.
    pub fn notification(&self, state: PeerState) -> Notification {
        Notification {
            vote: self.proposal,
            election_epoch: self.round,
            state,
        }
    }

    /// A notification from `from` while we are looking. `own` is our vote for
    /// ourselves (needed when a later round makes us start over).
    pub fn on_notification(
        &mut self,
        from: NodeId,
        n: Notification,
        own: Vote,
        send: &mut impl FnMut(To, Notification),
    ) -> Step {
        // Only voters count, and only votes for voters.
        if !self.is_voter(from) || !self.is_voter(n.vote.leader) {
            if n.state == PeerState::Looking && n.election_epoch < self.round {
                send(To::One(from), self.notification(PeerState::Looking));
            }
            return Step::Continue;
        }
        match n.state {
            PeerState::Looking => self.on_looking(from, n, own, send),
            PeerState::Observing => Step::Continue,
            PeerState::Following | PeerState::Leading => self.on_settled(from, n),
        }
    }

    fn on_looking(
        &mut self,
        from: NodeId,
        n: Notification,
        own: Vote,
        send: &mut impl FnMut(To, Notification),
    ) -> Step {
        if n.election_epoch > self.round {
            // A later round: join it, from the better of its vote and our own.
            self.round = n.election_epoch;
            self.votes.clear();
            self.propose(if n.vote.beats(&own) { n.vote } else { own });
            send(To::All, self.notification(PeerState::Looking));
        } else if n.election_epoch < self.round {
            // An earlier round: tell the sender where we are, count nothing.
            send(To::One(from), self.notification(PeerState::Looking));
            return Step::Continue;
        } else if n.vote.beats(&self.proposal) {
            self.propose(n.vote);
            send(To::All, self.notification(PeerState::Looking));
        }
        // Within a round a server only ever moves to a better vote, so a worse one
        // from it is an older notification that arrived late (Zab assumes FIFO
        // channels; this keeps the count right without them).
        let vote = self.votes.entry(from).or_insert(n.vote);
        if n.vote.beats(vote) {
            *vote = n.vote;
        }
        if self.has_quorum(&self.votes, &self.proposal) {
            Step::Quorum(self.proposal)
        } else {
            Step::Continue
        }
    }

    fn on_settled(&mut self, from: NodeId, n: Notification) -> Step {
        if (self.refused.get(&n.vote.leader)).is_some_and(|&e| n.vote.peer_epoch <= e) {
            return Step::Continue; // a leadership that cannot take us
        }
        if n.election_epoch == self.round {
            self.votes.insert(from, n.vote);
            if self.has_quorum(&self.votes, &n.vote)
                && self.leader_confirms(n.vote, n.election_epoch)
            {
                return Step::Decided(n.vote);
            }
        }
        self.settled
            .insert(from, (n.vote, n.election_epoch, n.state));
        // Settled servers agree if they name the same leader and epoch: they may have
        // decided in different rounds (one joined later) and with different zxids
        // (ZooKeeper's `Vote.equals` out of election, ZOOKEEPER-1732).
        let same: BTreeMap<NodeId, Vote> = (self.settled.iter())
            .filter(|(_, (v, _, _))| (v.leader, v.peer_epoch) == (n.vote.leader, n.vote.peer_epoch))
            .map(|(&id, _)| (id, n.vote))
            .collect();
        if self.has_quorum(&same, &n.vote) && self.leader_confirms(n.vote, n.election_epoch) {
            self.round = n.election_epoch;
            return Step::Decided(n.vote);
        }
        Step::Continue
    }

    /// Makes `vote` our proposal; as a voter, our own vote in this round is it.
    fn propose(&mut self, vote: Vote) {
        self.proposal = vote;
        if self.is_voter(self.me) {
            self.votes.insert(self.me, vote);
        }
    }

    /// ZooKeeper's `checkLeader`: the leader of `vote` says it leads (we heard it in
    /// state `Leading`), or it is us and the round is ours.
    fn leader_confirms(&self, vote: Vote, round: u64) -> bool {
        if vote.leader == self.me {
            return self.round == round;
        }
        self.settled
            .get(&vote.leader)
            .is_some_and(|(_, _, state)| *state == PeerState::Leading)
    }

    /// `finalize_wait` passed since [`Step::Quorum`] for `expected`: decides it if it
    /// is still our proposal and still holds a quorum of this round's votes.
    pub fn finalize(&self, expected: Vote) -> Option<Vote> {
        (self.proposal == expected && self.has_quorum(&self.votes, &expected)).then_some(expected)
    }

    /// ZooKeeper's `termPredicate`: the voters whose vote equals `vote` are a
    /// majority of the voters.
    fn has_quorum(&self, votes: &BTreeMap<NodeId, Vote>, vote: &Vote) -> bool {
        let agree = (votes.iter())
            .filter(|(id, v)| self.voters.contains(id) && *v == vote)
            .count();
        agree * 2 > self.voters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn n(id: u64) -> NodeId {
        NodeId(id)
    }

    fn vote(leader: u64, epoch: u32, counter: u32, peer_epoch: u32) -> Vote {
        Vote {
            leader: n(leader),
            zxid: Zxid::new(Epoch(epoch), counter),
            peer_epoch: Epoch(peer_epoch),
        }
    }

    fn settled(v: Vote, round: u64, state: PeerState) -> Notification {
        Notification {
            vote: v,
            election_epoch: round,
            state,
        }
    }

    /// Runs one election among servers `own` (each voting for itself first) over a
    /// FIFO network; a server decides when the network is quiet after its proposal
    /// reached a quorum (the finalize wait passed with no better vote).
    fn elect(own: &[Vote]) -> Vec<Vote> {
        elect_shuffled(own, &mut synod_core::Prng::new(0), false)
    }

    /// [`elect`], delivering a random queued notification each step when `reorder`.
    fn elect_shuffled(own: &[Vote], rng: &mut synod_core::Prng, reorder: bool) -> Vec<Vote> {
        let ids: Vec<NodeId> = own.iter().map(|v| v.leader).collect();
        let mut servers: Vec<Election> = ids
            .iter()
            .map(|&id| Election::new(id, ids.clone()))
            .collect();
        let mut wire: VecDeque<(NodeId, NodeId, Notification)> = VecDeque::new();
        let post = |wire: &mut VecDeque<_>, from: NodeId, to: To, m: Notification| match to {
            To::All => wire.extend(ids.iter().filter(|&&i| i != from).map(|&i| (from, i, m))),
            To::One(i) => wire.push_back((from, i, m)),
        };
        for (k, s) in servers.iter_mut().enumerate() {
            s.begin(own[k], &mut |to, m| post(&mut wire, ids[k], to, m));
        }
        let mut waiting: Vec<Option<Vote>> = vec![None; ids.len()];
        let mut decided: Vec<Option<Vote>> = vec![None; ids.len()];
        for _ in 0..10_000 {
            let next = match reorder && !wire.is_empty() {
                true => wire.remove(rng.below(wire.len() as u64) as usize),
                false => wire.pop_front(),
            };
            if let Some((from, to, m)) = next {
                let k = ids.iter().position(|&i| i == to).expect("known");
                if decided[k].is_some() {
                    continue;
                }
                let mut out = Vec::new();
                match servers[k].on_notification(from, m, own[k], &mut |t, m| out.push((t, m))) {
                    Step::Quorum(v) => waiting[k] = Some(v),
                    Step::Decided(v) => decided[k] = Some(v),
                    Step::Continue => {}
                }
                for (t, m) in out {
                    post(&mut wire, to, t, m);
                }
                continue;
            }
            for k in 0..ids.len() {
                if let Some(v) = waiting[k].take() {
                    decided[k] = decided[k].or(servers[k].finalize(v));
                }
            }
            if decided.iter().all(Option::is_some) {
                return decided
                    .into_iter()
                    .map(|d| d.expect("all decided"))
                    .collect();
            }
            assert!(
                wire.is_empty() && waiting.iter().all(Option::is_none),
                "stuck: {decided:?}"
            );
            panic!("the network went quiet undecided: {decided:?}");
        }
        panic!("no decision in 10,000 deliveries");
    }

    #[test]
    fn fle_vote_order_is_peer_epoch_then_zxid_then_server_id() {
        assert!(
            vote(1, 1, 1, 2).beats(&vote(3, 9, 9, 1)),
            "current epoch first"
        );
        assert!(vote(1, 2, 1, 1).beats(&vote(3, 1, 9, 1)), "then the zxid");
        assert!(vote(3, 1, 1, 1).beats(&vote(2, 1, 1, 1)), "then the id");
        assert!(!vote(2, 1, 1, 1).beats(&vote(2, 1, 1, 1)), "strict");
    }

    #[test]
    fn fle_elects_the_server_with_the_most_up_to_date_history() {
        // n2 holds the latest zxid; n3 the highest id.
        let own = [vote(1, 1, 5, 1), vote(2, 1, 7, 1), vote(3, 1, 6, 1)];
        let decided = elect(&own);
        assert!(decided.iter().all(|v| *v == own[1]), "{decided:?}");
        // A higher current epoch beats a longer history of an older epoch.
        let own = [
            vote(1, 1, 90, 1),
            vote(2, 2, 1, 2),
            vote(3, 1, 95, 1),
            vote(4, 1, 3, 1),
            vote(5, 0, 0, 0),
        ];
        let decided = elect(&own);
        assert!(decided.iter().all(|v| *v == own[1]), "{decided:?}");
        // Equal histories: the highest id.
        let own = [vote(1, 1, 4, 1), vote(2, 1, 4, 1), vote(3, 1, 4, 1)];
        assert!(elect(&own).iter().all(|v| v.leader == n(3)));
    }

    #[test]
    fn fle_every_server_decides_the_best_vote_whatever_the_delivery_order() {
        for seed in 0..300 {
            let mut rng = synod_core::Prng::new(seed);
            let size = 3 + 2 * rng.below(2);
            let own: Vec<Vote> = (1..=size)
                .map(|id| {
                    let e = rng.below(3) as u32;
                    vote(id, e, rng.below(4) as u32, e)
                })
                .collect();
            let best = *own
                .iter()
                .max_by(|a, b| match a.beats(b) {
                    true => std::cmp::Ordering::Greater,
                    false => std::cmp::Ordering::Less,
                })
                .expect("servers");
            let decided = elect_shuffled(&own, &mut rng, true);
            assert!(
                decided.iter().all(|v| *v == best),
                "seed {seed}: {own:?} -> {decided:?}"
            );
        }
    }

    #[test]
    fn fle_a_later_round_discards_the_votes_of_the_earlier_one() {
        let mut e = Election::new(n(1), [n(1), n(2), n(3)]);
        let own = vote(1, 1, 1, 1);
        e.begin(own, &mut |_, _| {});
        let low = vote(1, 1, 1, 1);
        let step = e.on_notification(
            n(2),
            settled(low, 1, PeerState::Looking),
            own,
            &mut |_, _| {},
        );
        assert_eq!(
            step,
            Step::Quorum(own),
            "n2 agrees in round 1: n1 and n2 are a quorum"
        );
        // n3 is in round 4 and proposes itself with a better history.
        let better = vote(3, 1, 2, 1);
        let mut sent = Vec::new();
        let step = e.on_notification(
            n(3),
            settled(better, 4, PeerState::Looking),
            own,
            &mut |t, m| sent.push((t, m)),
        );
        assert_eq!(e.round(), 4);
        assert_eq!(e.proposal(), better);
        assert_eq!(sent, vec![(To::All, e.notification(PeerState::Looking))]);
        assert_eq!(step, Step::Quorum(better), "n1 and n3 agree in round 4");
        assert_eq!(e.finalize(own), None, "the round-1 quorum no longer stands");
    }

    #[test]
    fn fle_an_earlier_round_is_answered_not_counted() {
        let mut e = Election::new(n(1), [n(1), n(2), n(3)]);
        let own = vote(1, 1, 1, 1);
        e.begin(own, &mut |_, _| {});
        e.begin(own, &mut |_, _| {}); // round 2
        let mut sent = Vec::new();
        let stale = settled(own, 1, PeerState::Looking);
        let step = e.on_notification(n(2), stale, own, &mut |t, m| sent.push((t, m)));
        assert_eq!(step, Step::Continue);
        assert_eq!(
            sent,
            vec![(To::One(n(2)), e.notification(PeerState::Looking))]
        );
    }

    #[test]
    fn fle_finalize_waits_for_a_better_vote() {
        let mut e = Election::new(n(1), [n(1), n(2), n(3)]);
        let own = vote(1, 1, 1, 1);
        e.begin(own, &mut |_, _| {});
        let step = e.on_notification(
            n(2),
            settled(own, 1, PeerState::Looking),
            own,
            &mut |_, _| {},
        );
        assert_eq!(step, Step::Quorum(own));
        // Within the wait, n3 reports a better history: the proposal changes.
        let better = vote(3, 1, 9, 1);
        e.on_notification(
            n(3),
            settled(better, 1, PeerState::Looking),
            own,
            &mut |_, _| {},
        );
        assert_eq!(
            e.finalize(own),
            None,
            "a changed proposal restarts the wait"
        );
        assert_eq!(e.proposal(), better);
    }

    #[test]
    fn fle_a_looking_server_joins_the_established_leader() {
        // n4 restarts into an ensemble where n3 leads round 7, followed by n1 and n2.
        let mut e = Election::new(n(4), [n(1), n(2), n(3), n(4), n(5)]);
        let own = vote(4, 1, 2, 1);
        e.begin(own, &mut |_, _| {});
        let leader = vote(3, 2, 40, 2);
        let f = |s| settled(leader, 7, s);
        let mut step = e.on_notification(n(1), f(PeerState::Following), own, &mut |_, _| {});
        assert_eq!(step, Step::Continue);
        step = e.on_notification(n(2), f(PeerState::Following), own, &mut |_, _| {});
        assert_eq!(step, Step::Continue, "two of five is no quorum");
        step = e.on_notification(n(3), f(PeerState::Leading), own, &mut |_, _| {});
        assert_eq!(step, Step::Decided(leader));
        assert_eq!(e.round(), 7, "it adopts the leader's round");
    }

    #[test]
    fn zab_4_a_leader_below_our_accepted_epoch_is_not_rejoined() {
        // n3 leads epoch 2, followed by n1; n4 accepted epoch 3 and was refused by it.
        let mut e = Election::new(n(4), [n(1), n(2), n(3)]);
        let own = vote(4, 1, 2, 1);
        e.begin(own, &mut |_, _| {});
        e.refuse(n(3), Epoch(2));
        let leader = vote(3, 2, 40, 2);
        let f = |s| settled(leader, 7, s);
        assert_eq!(
            e.on_notification(n(1), f(PeerState::Following), own, &mut |_, _| {}),
            Step::Continue
        );
        let step = e.on_notification(n(3), f(PeerState::Leading), own, &mut |_, _| {});
        assert_eq!(step, Step::Continue, "that leadership cannot take us");
        // A later leadership of n3, in an epoch past the refused one, can.
        let later = vote(3, 3, 0, 3);
        let g = |s| settled(later, 8, s);
        e.on_notification(n(1), g(PeerState::Following), own, &mut |_, _| {});
        let step = e.on_notification(n(3), g(PeerState::Leading), own, &mut |_, _| {});
        assert_eq!(step, Step::Decided(later));
    }

    #[test]
    fn fle_a_quorum_of_followers_is_not_enough_without_the_leader_saying_it_leads() {
        // ZooKeeper's checkLeader: followers may still name a leader that crashed.
        let mut e = Election::new(n(4), [n(1), n(2), n(3), n(4), n(5)]);
        let own = vote(4, 1, 2, 1);
        e.begin(own, &mut |_, _| {});
        let leader = vote(3, 2, 40, 2);
        for id in [1, 2, 5] {
            let step = e.on_notification(
                n(id),
                settled(leader, 7, PeerState::Following),
                own,
                &mut |_, _| {},
            );
            assert_eq!(step, Step::Continue, "n3 never said it leads");
        }
    }

    #[test]
    fn fle_observers_and_votes_for_observers_do_not_count() {
        // n9 observes: its vote is no vote, and no voter may vote for it.
        let mut e = Election::new(n(1), [n(1), n(2), n(3)]);
        let own = vote(1, 1, 1, 1);
        e.begin(own, &mut |_, _| {});
        let for_observer = vote(9, 5, 5, 5);
        let step = e.on_notification(
            n(2),
            settled(for_observer, 1, PeerState::Looking),
            own,
            &mut |_, _| {},
        );
        assert_eq!(step, Step::Continue);
        assert_eq!(e.proposal(), own, "a vote for a non-voter is never adopted");
        let step = e.on_notification(
            n(9),
            settled(own, 1, PeerState::Looking),
            own,
            &mut |_, _| {},
        );
        assert_eq!(
            step,
            Step::Continue,
            "the observer's agreement is no quorum"
        );
    }

    /// Looking notification of `v` in `round` from `from`; returns the step and what
    /// `e` sent.
    fn hear(
        e: &mut Election,
        from: u64,
        v: Vote,
        round: u64,
        own: Vote,
    ) -> (Step, Vec<(To, Notification)>) {
        let mut sent = Vec::new();
        let note = settled(v, round, PeerState::Looking);
        let step = e.on_notification(n(from), note, own, &mut |t, m| sent.push((t, m)));
        (step, sent)
    }

    /// ZooKeeper's `termPredicate`: a server decides only when the votes of this round
    /// that *equal its proposal* are a majority of the voters — its own vote alone, or
    /// a majority of voters that merely voted (for someone else), is no quorum.
    /// Counting any vote, or skipping the count, lets a server lead (or follow) a
    /// leader no majority chose, and two servers decide different leaders.
    #[test]
    fn fle_term_predicate_counts_only_the_votes_equal_to_the_proposal() {
        let mut e = Election::new(n(1), [n(1), n(2), n(3)]);
        let own = vote(1, 1, 5, 1);
        e.begin(own, &mut |_, _| {});
        assert_eq!(e.finalize(own), None, "a lone vote never decides");
        // n2 votes for itself with a worse history: two votes, one for our proposal.
        let (step, _) = hear(&mut e, 2, vote(2, 1, 1, 1), 1, own);
        assert_eq!(
            step,
            Step::Continue,
            "a vote for another server is no agreement"
        );
        assert_eq!(e.proposal(), own);
        assert_eq!(e.finalize(own), None);
        // n3 agrees: n1 and n3 are a majority for `own`.
        let (step, _) = hear(&mut e, 3, own, 1, own);
        assert_eq!(step, Step::Quorum(own));
        assert_eq!(e.finalize(own), Some(own));
    }

    /// A quorum is *more* than half of the voters: two disjoint halves of an even
    /// ensemble must not both reach one, or each half would elect its own leader.
    #[test]
    fn fle_half_of_an_even_ensemble_is_no_quorum() {
        let mut e = Election::new(n(1), [n(1), n(2), n(3), n(4)]);
        let own = vote(1, 1, 5, 1);
        e.begin(own, &mut |_, _| {});
        let (step, _) = hear(&mut e, 2, own, 1, own);
        assert_eq!(step, Step::Continue, "2 of 4 is half, not a majority");
        assert_eq!(e.finalize(own), None);
        let (step, _) = hear(&mut e, 3, own, 1, own);
        assert_eq!(step, Step::Quorum(own), "3 of 4 is");
        assert_eq!(e.finalize(own), Some(own));
    }

    /// The finalize wait (ZooKeeper's `finalizeWait`) ends in a decision only if the
    /// vote that reached a quorum is *still* our proposal *and* still has a quorum of
    /// this round's votes. Both halves matter: a better vote heard during the wait
    /// changes the proposal even though the old majority still stands (deciding it
    /// would elect a server with a less up-to-date history than one we know of), and
    /// a later round clears the votes even if our proposal stays the same (deciding
    /// it would rest on votes of an abandoned round).
    #[test]
    fn fle_finalize_decides_only_the_standing_proposal_with_its_quorum() {
        // Five voters: n2, n3 and n4 agree with n1's own vote, then n5 shows a better
        // one. Three votes for `own` remain, but n1 now proposes n5.
        let mut e = Election::new(n(1), [n(1), n(2), n(3), n(4), n(5)]);
        let own = vote(1, 1, 5, 1);
        e.begin(own, &mut |_, _| {});
        for id in [2, 3, 4] {
            hear(&mut e, id, own, 1, own);
        }
        assert_eq!(e.finalize(own), Some(own), "a quorum for own, before n5");
        let better = vote(5, 1, 9, 1);
        let (step, sent) = hear(&mut e, 5, better, 1, own);
        assert_eq!(step, Step::Continue);
        assert_eq!(sent, vec![(To::All, e.notification(PeerState::Looking))]);
        assert_eq!(e.proposal(), better);
        assert_eq!(
            e.finalize(own),
            None,
            "the proposal changed during the wait"
        );

        // Three voters: n2 agrees in round 1, then n3 opens round 2 with a worse vote.
        // n1 keeps proposing `own`, but round 1's agreement is gone.
        let mut e = Election::new(n(1), [n(1), n(2), n(3)]);
        e.begin(own, &mut |_, _| {});
        assert_eq!(hear(&mut e, 2, own, 1, own).0, Step::Quorum(own));
        let (step, _) = hear(&mut e, 3, vote(3, 1, 1, 1), 2, own);
        assert_eq!(step, Step::Continue);
        assert_eq!((e.round(), e.proposal()), (2, own));
        assert_eq!(
            e.finalize(own),
            None,
            "round 1's quorum does not carry over"
        );
    }

    /// A looking non-voter (an observer) behind us is told our round, as FLE answers
    /// every looking server of an earlier round; one in *our* round is not answered:
    /// it has our notification already, and two looking observers answering each
    /// other's notifications of one round would exchange them forever, with no timer
    /// in the loop.
    #[test]
    fn fle_a_non_voter_is_answered_only_from_an_earlier_round() {
        let mut e = Election::new(n(1), [n(1), n(2), n(3)]);
        let own = vote(1, 1, 5, 1);
        e.begin(own, &mut |_, _| {});
        e.begin(own, &mut |_, _| {}); // round 2
        let observer = vote(9, 0, 0, 0);
        let (step, sent) = hear(&mut e, 9, observer, 1, own);
        assert_eq!(step, Step::Continue);
        assert_eq!(
            sent,
            vec![(To::One(n(9)), e.notification(PeerState::Looking))]
        );
        let (step, sent) = hear(&mut e, 9, observer, 2, own);
        assert_eq!(
            (step, sent),
            (Step::Continue, vec![]),
            "same round: no answer"
        );

        // Two looking observers of one ensemble go quiet.
        let voters = [n(1), n(2), n(3)];
        let mut obs = [Election::new(n(8), voters), Election::new(n(9), voters)];
        let own_of = |k: usize| vote(8 + k as u64, 0, 0, 0);
        let mut wire = Vec::new();
        for (k, o) in obs.iter_mut().enumerate() {
            o.begin(own_of(k), &mut |_, m| wire.push((k, 1 - k, m)));
        }
        let mut delivered = 0;
        while let Some((from, to, m)) = wire.pop() {
            delivered += 1;
            assert!(delivered <= 10, "observers answer each other forever");
            let from_id = 8 + from as u64;
            obs[to].on_notification(n(from_id), m, own_of(to), &mut |_, a| {
                wire.push((to, from, a))
            });
        }
        assert_eq!(
            delivered, 2,
            "each observer's first notification, nothing more"
        );
    }

    /// ZooKeeper's FLE counts a `Following`/`Leading` notification of our own round
    /// with this round's votes (`recvset`), so a server that missed the decision of
    /// its round joins as soon as that round's votes and the leader's `Leading` agree.
    /// Counting it only among the settled servers would need a quorum of *settled*
    /// servers: a leader establishing with the smallest quorum, which needs this
    /// server, would wait for it forever.
    #[test]
    fn fle_a_settled_answer_of_our_round_counts_with_this_rounds_votes() {
        // Round 1 of five voters (n2 and n5 are down): n1 adopted n3's vote, then
        // missed n3 and n4 deciding it.
        let mut e = Election::new(n(1), [n(1), n(2), n(3), n(4), n(5)]);
        let own = vote(1, 1, 1, 1);
        e.begin(own, &mut |_, _| {});
        let v = vote(3, 1, 5, 1);
        assert_eq!(hear(&mut e, 3, v, 1, own).0, Step::Continue);
        assert_eq!(e.proposal(), v);
        let lead = e.on_notification(n(3), settled(v, 1, PeerState::Leading), own, &mut |_, _| {});
        assert_eq!(lead, Step::Continue, "n1 and n3 are two of five");
        let step = e.on_notification(
            n(4),
            settled(v, 1, PeerState::Following),
            own,
            &mut |_, _| {},
        );
        assert_eq!(
            step,
            Step::Decided(v),
            "n1, n3 and n4 vote n3 in round 1, and n3 leads"
        );
    }

    /// Deciding from settled servers of our round needs *both* a quorum of the round's
    /// votes for the leader *and* the leader saying it leads (ZooKeeper's
    /// `termPredicate && checkLeader`): followers can still name a leader that crashed,
    /// and a leader's own word is one vote. Either alone would make a server follow a
    /// leader that no quorum follows, or one that is gone.
    #[test]
    fn fle_our_rounds_settled_servers_decide_only_with_a_quorum_and_the_leaders_word() {
        let v = vote(3, 1, 5, 1);
        let own = vote(1, 1, 1, 1);
        // A quorum of followers of round 1, n3 silent.
        let mut e = Election::new(n(1), [n(1), n(2), n(3), n(4), n(5)]);
        e.begin(own, &mut |_, _| {});
        for id in [2, 4, 5] {
            let note = settled(v, 1, PeerState::Following);
            let step = e.on_notification(n(id), note, own, &mut |_, _| {});
            assert_eq!(step, Step::Continue, "n3 never said it leads (after n{id})");
        }
        // n3 says it leads, twice, and nobody else agrees.
        let mut e = Election::new(n(1), [n(1), n(2), n(3), n(4), n(5)]);
        e.begin(own, &mut |_, _| {});
        for _ in 0..2 {
            let note = settled(v, 1, PeerState::Leading);
            let step = e.on_notification(n(3), note, own, &mut |_, _| {});
            assert_eq!(step, Step::Continue, "the leader's word is one vote");
        }
    }
}
