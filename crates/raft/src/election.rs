//! Leader election (§5.2, §5.4.1) with pre-vote (thesis §9.6), leader stickiness and
//! check-quorum (thesis §6.2), and leadership transfer (thesis §3.10).

use crate::message::Message;
use crate::node::{Fx, LeaderState, RaftNode, RaftTimer, Role};
use crate::progress::Progress;
use crate::types::{LogIndex, Payload, Term};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use synod_core::{DurableWaits, NodeId, StateMachine};

impl<S: StateMachine> RaftNode<S> {
    /// The election timer fired on a follower or candidate (§5.2): campaign — first
    /// with a pre-vote round if enabled.
    pub(crate) fn on_election_timeout(&mut self, out: &mut Fx<S>) {
        if !self.may_campaign() {
            // Learners, and servers whose removal is known committed, never campaign.
            self.reset_election_timer(out);
            return;
        }
        // A server outside its latest configuration always starts with a pre-vote
        // round: it may have been removed without learning that the removal
        // committed, and must not bump everyone's term (thesis §4.2.3, disruptive
        // servers) unless it could actually win.
        if self.cfg.pre_vote || !self.membership.is_voter(self.cfg.id) {
            self.become_pre_candidate(out);
        } else {
            self.become_candidate(false, out);
        }
    }

    /// A voter campaigns; so does a server removed by a configuration entry not yet
    /// known committed. Thesis §4.2.2: "a server that is not part of its own latest
    /// configuration should still start new elections, as it might still be needed
    /// until the Cnew entry is committed" — its own vote does not count, votes are
    /// counted in the latest configuration. Without this, removing one of two voters
    /// deadlocks (thesis Figure 4.6) if the leader crashes before the other voter
    /// stores the entry: that voter needs the removed server's vote and is refused it
    /// (its log is shorter), and the removed server would never campaign.
    fn may_campaign(&self) -> bool {
        let id = self.cfg.id;
        if self.membership.is_voter(id) {
            return true;
        }
        let at = self.config_index();
        at > self.commit && self.membership_at(at.prev()).is_voter(id)
    }

    fn become_pre_candidate(&mut self, out: &mut Fx<S>) {
        tracing::debug!(term = %self.term, "pre-campaign");
        self.role = Role::PreCandidate {
            votes: BTreeSet::from([self.cfg.id]),
        };
        self.leader = None;
        self.reset_election_timer(out);
        self.request_votes(self.term.next(), true, false, out);
        self.maybe_win(out);
    }

    /// §5.2: increment the term, vote for self, ask everyone else.
    pub(crate) fn become_candidate(&mut self, transfer: bool, out: &mut Fx<S>) {
        if let Role::Leader(_) = self.role {
            return;
        }
        self.term = self.term.next();
        self.vote = Some(self.cfg.id);
        self.leader = None;
        self.persist_hard_state(out);
        tracing::debug!(term = %self.term, transfer, "campaign");
        self.role = Role::Candidate {
            votes: BTreeSet::from([self.cfg.id]),
        };
        self.reset_election_timer(out);
        self.request_votes(self.term, false, transfer, out);
        self.maybe_win(out);
    }

    fn request_votes(&self, term: Term, pre_vote: bool, transfer: bool, out: &mut Fx<S>) {
        let msg = Message::RequestVote {
            term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote,
            transfer,
        };
        for &v in self.membership.voters.iter().filter(|&&v| v != self.cfg.id) {
            out.send(v, msg.clone());
        }
    }

    /// Thesis §4.2.3 / §6.2: a node that heard from a live leader within the minimum
    /// election timeout ignores vote requests (unless a transfer asked for them), so a
    /// rejoining partitioned or removed server cannot depose a healthy leader.
    pub(crate) fn ignores_vote_request(&self, msg: &Message<S>) -> bool {
        let Message::RequestVote { transfer, .. } = msg else {
            return false;
        };
        if *transfer || !self.cfg.check_quorum {
            return false;
        }
        if self.is_leader() {
            return true;
        }
        self.leader.is_some()
            && self
                .leader_contact
                .is_some_and(|t| self.now < t + self.cfg.election_timeout_min)
    }

    /// RequestVote receiver (Figure 2, §5.2, §5.4.1) and its pre-vote variant.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_request_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
        transfer: bool,
        out: &mut Fx<S>,
    ) {
        let msg_probe = Message::RequestVote {
            term,
            last_log_index,
            last_log_term,
            pre_vote,
            transfer,
        };
        let up_to_date = self.log.is_up_to_date(last_log_index, last_log_term);
        let granted = if pre_vote {
            // Would we vote in `term`? Only if it is newer than ours, the candidate's
            // log is up to date, and no live leader is known.
            term > self.term && up_to_date && !self.ignores_vote_request(&msg_probe)
        } else {
            term == self.term
                && (self.vote.is_none() || self.vote == Some(from))
                && up_to_date
                && !self.ignores_vote_request(&msg_probe)
        };
        if granted && !pre_vote {
            self.vote = Some(from);
            self.persist_hard_state(out);
            self.reset_election_timer(out);
        }
        let reply_term = if pre_vote && granted { term } else { self.term };
        tracing::trace!(%from, %term, pre_vote, granted, "vote request");
        out.send(
            from,
            Message::Vote {
                term: reply_term,
                granted,
                pre_vote,
            },
        );
    }

    /// A vote (or pre-vote) answer.
    pub(crate) fn on_vote(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre_vote: bool,
        out: &mut Fx<S>,
    ) {
        match &mut self.role {
            Role::PreCandidate { votes } if pre_vote && granted && term == self.term.next() => {
                votes.insert(from);
            }
            Role::Candidate { votes } if !pre_vote && granted && term == self.term => {
                votes.insert(from);
            }
            _ => return,
        }
        self.maybe_win(out);
    }

    fn maybe_win(&mut self, out: &mut Fx<S>) {
        let quorum = self.membership.quorum();
        let voters = &self.membership.voters;
        match &self.role {
            Role::PreCandidate { votes } if votes.intersection(voters).count() >= quorum => {
                self.become_candidate(false, out);
            }
            Role::Candidate { votes } if votes.intersection(voters).count() >= quorum => {
                self.become_leader(out);
            }
            _ => {}
        }
    }

    /// §5.2: won the election. §8: append a no-op so entries of earlier terms can be
    /// committed (§5.4.2) and reads can be served.
    fn become_leader(&mut self, out: &mut Fx<S>) {
        tracing::debug!(term = %self.term, last = %self.log.last_index(), "became leader");
        let last = self.log.last_index();
        let progress: BTreeMap<NodeId, Progress> = self
            .membership
            .members()
            .filter(|&m| m != self.cfg.id)
            .map(|m| (m, Progress::new(last)))
            .collect();
        self.role = Role::Leader(Box::new(LeaderState {
            progress,
            pending: VecDeque::new(),
            reads: VecDeque::new(),
            read_ctx: 0,
            term_start: last.next(),
            transfer: None,
            config_pending: None,
            durable: LogIndex(0),
            durable_waits: DurableWaits::default(),
        }));
        self.leader = Some(self.cfg.id);
        let noop = self.leader_append(Payload::Noop, out);
        debug_assert_eq!(noop, last.next());
        // An uncommitted configuration entry from an earlier term needs no marking as
        // pending: no change is taken before an entry of this term commits
        // (`change_membership`), and by then every earlier entry has.
        self.broadcast_append(out);
        self.advance_commit(out);
        out.set_timer(RaftTimer::Heartbeat, self.now + self.cfg.heartbeat_interval);
        // The election timer now paces check-quorum rounds.
        self.election_deadline = self.now + self.cfg.election_timeout_min;
        out.set_timer(RaftTimer::Election, self.election_deadline);
    }

    /// Check-quorum (thesis §6.2): once per minimum election timeout, a leader that has
    /// not heard from a majority steps down, so clients stop waiting on a leader that
    /// cannot commit anything.
    pub(crate) fn check_quorum(&mut self, out: &mut Fx<S>) {
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        let id = self.cfg.id;
        let active = self
            .membership
            .voters
            .iter()
            .filter(|&&v| v == id || state.progress.get(&v).is_some_and(|p| p.recent_active))
            .count();
        for p in state.progress.values_mut() {
            p.recent_active = false;
        }
        if let Some((_, deadline)) = state.transfer {
            if self.now >= deadline {
                state.transfer = None; // thesis §3.10: abort a transfer that took too long
            }
        }
        if self.cfg.check_quorum && active < self.membership.quorum() {
            tracing::debug!(term = %self.term, active, "lost quorum, stepping down");
            self.become_follower(self.term, None, out);
            return;
        }
        self.election_deadline = self.now + self.cfg.election_timeout_min;
        out.set_timer(RaftTimer::Election, self.election_deadline);
    }

    /// TimeoutNow (thesis §3.10): campaign at once, skipping pre-vote, with the
    /// transfer flag so voters do not ignore us.
    pub(crate) fn on_timeout_now(&mut self, term: Term, out: &mut Fx<S>) {
        if term < self.term || !self.membership.is_voter(self.cfg.id) {
            return;
        }
        self.become_candidate(true, out);
    }
}
