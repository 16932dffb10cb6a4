//! Membership changes one server at a time (thesis §4.1, §4.2) and leadership
//! transfer (thesis §3.10).
//!
//! Single-server changes are safe because any two majorities of configurations that
//! differ by one voter overlap — *provided* a leader does not start a change before
//! it has committed an entry of its own term. Without that rule a change made by a
//! deposed leader and one made by its successor can each be committed by disjoint
//! majorities (the bug Ongaro reported on raft-dev in 2015); we enforce it, and allow
//! only one uncommitted change at a time. A new configuration takes effect as soon as
//! it is appended (§6), on the leader and on each follower.

use crate::message::Message;
use crate::node::{Fx, RaftNode, Response, Role, Waiter};
use crate::progress::Progress;
use crate::types::{Membership, Payload};
use synod_core::{NodeId, Outcome, StateMachine};

/// What an edit of the configuration did.
pub(crate) enum Edit {
    /// The configuration changed.
    Changed,
    /// The requested state already holds (idempotent retry).
    AlreadyDone,
    /// The change is not allowed (e.g. it would leave no voter).
    Invalid,
}

impl<S: StateMachine> RaftNode<S> {
    /// Proposes `edit` of the current configuration as a new configuration entry.
    pub(crate) fn change_membership(
        &mut self,
        waiter: Waiter,
        edit: impl FnOnce(&mut Membership) -> Edit,
        out: &mut Fx<S>,
    ) {
        let Role::Leader(state) = &self.role else {
            unreachable!("only a leader takes requests (`take_request`)");
        };
        if self.commit < state.term_start || state.config_pending.is_some() {
            // Not yet committed an entry of our term, or a change is in flight.
            self.refuse(waiter, out);
            return;
        }
        // One change at a time (thesis §4.1): with an entry of our term committed,
        // every configuration entry before it is committed too.
        assert!(
            self.config_index() <= self.commit,
            "a configuration change at {} is uncommitted (commit {})",
            self.config_index(),
            self.commit
        );
        let mut next = self.membership.clone();
        match edit(&mut next) {
            Edit::Changed => {}
            Edit::AlreadyDone => {
                let at = self.config_index();
                out.reply(
                    waiter.client,
                    waiter.seq,
                    Outcome::Done(Response::ConfigChanged(at)),
                );
                return;
            }
            Edit::Invalid => {
                self.refuse(waiter, out);
                return;
            }
        }
        tracing::debug!(?next, "proposing configuration");
        let last = self.log.last_index();
        if let Role::Leader(state) = &mut self.role {
            for m in next.members().filter(|&m| m != self.cfg.id) {
                state
                    .progress
                    .entry(m)
                    .or_insert_with(|| Progress::new(last));
            }
            state.config_pending = Some(last.next());
        }
        self.membership = next.clone();
        self.propose(Payload::Config(next), waiter, out);
    }

    /// Promotes a learner that has caught up (thesis §4.2.1: new servers join as
    /// non-voters until their logs are close to the leader's).
    pub(crate) fn promote(&mut self, waiter: Waiter, id: NodeId, out: &mut Fx<S>) {
        let Role::Leader(state) = &self.role else {
            unreachable!("only a leader takes requests (`take_request`)");
        };
        if self.membership.is_voter(id) {
            let at = self.config_index();
            out.reply(
                waiter.client,
                waiter.seq,
                Outcome::Done(Response::ConfigChanged(at)),
            );
            return;
        }
        let caught_up = state.progress.get(&id).is_some_and(|p| {
            p.match_index().0 + self.cfg.promote_lag_max >= self.log.last_index().0
        });
        if !self.membership.learners.contains(&id) || !caught_up {
            self.refuse(waiter, out);
            return;
        }
        self.change_membership(
            waiter,
            |m| {
                m.learners.remove(&id);
                m.voters.insert(id);
                Edit::Changed
            },
            out,
        );
    }

    /// Drops leader-side progress for nodes no longer in the configuration.
    pub(crate) fn prune_progress(&mut self) {
        let membership = &self.membership;
        if let Role::Leader(state) = &mut self.role {
            state.progress.retain(|id, _| membership.contains(*id));
        }
    }

    /// Thesis §3.10: bring the target up to date, then tell it to campaign at once.
    pub(crate) fn transfer_leadership(&mut self, waiter: Waiter, target: NodeId, out: &mut Fx<S>) {
        if target == self.cfg.id {
            out.reply(
                waiter.client,
                waiter.seq,
                Outcome::Done(Response::TransferStarted),
            );
            return;
        }
        if !self.membership.is_voter(target) {
            self.refuse(waiter, out);
            return;
        }
        let deadline = self.now + self.cfg.election_timeout_max;
        if let Role::Leader(state) = &mut self.role {
            state.transfer = Some((target, deadline));
        }
        tracing::debug!(%target, "transferring leadership");
        out.reply(
            waiter.client,
            waiter.seq,
            Outcome::Done(Response::TransferStarted),
        );
        self.maybe_finish_transfer(target, out);
        self.send_appends(target, out);
    }

    /// Sends TimeoutNow once the transfer target holds our whole log.
    pub(crate) fn maybe_finish_transfer(&mut self, peer: NodeId, out: &mut Fx<S>) {
        let Role::Leader(state) = &self.role else {
            return;
        };
        let ready = state.transfer.is_some_and(|(t, _)| t == peer)
            && state
                .progress
                .get(&peer)
                .is_some_and(|p| p.match_index() == self.log.last_index());
        if ready {
            out.send(peer, Message::TimeoutNow { term: self.term });
        }
    }
}
