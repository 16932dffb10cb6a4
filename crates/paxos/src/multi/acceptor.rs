//! The acceptor and follower side: Phase 1(b) and Phase 2(b) for all slots ("Paxos
//! Made Simple" §2.2 P1a: "an acceptor can accept a proposal numbered n iff it has
//! not responded to a prepare request having a number greater than n"), and the
//! heartbeats that tell a follower its leader is alive and which slots are chosen.
//!
//! Every promise and acceptance is written to this input's batch; the answer is
//! queued in the same effects, so the driver sends it only once it is durable.

use super::message::{EncodedEntries, Message};
use super::node::{Fx, MultiPaxosNode};
use crate::types::{Ballot, Slot, Value};
use synod_core::NodeId;
use synod_core::StateMachine;

impl<S: StateMachine> MultiPaxosNode<S> {
    /// Phase 1(b) for every slot at or after `first_unchosen`: promise `ballot`
    /// unless we promised higher (or, for liveness only, we follow a live leader),
    /// and report every acceptance in slots we do not know chosen.
    pub(crate) fn on_prepare(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first_unchosen: Slot,
        out: &mut Fx<S>,
    ) {
        self.note_round(ballot);
        let sticky = ballot > self.promised && self.refuses_candidate(from);
        if ballot < self.promised || sticky {
            let nack = Message::Nack {
                ballot,
                promised: self.promised,
                leader: self.leader,
            };
            out.send(from, nack);
            return;
        }
        if ballot > self.promised {
            self.raise_promise(ballot, out);
            self.leader = None;
            self.leader_contact = None;
            // Give the candidate an election timeout to finish phase 1.
            self.reset_election_timer(out);
        }
        // The candidate takes every slot below our first unchosen slot as chosen and
        // will not propose it again: that knowledge must survive our crash, or no one
        // may be left to supply those values (the chosen prefix is otherwise saved
        // lazily, `save_frontier`). The promise leaves after this batch is durable.
        self.log.save_frontier(&mut out.persist, true);
        let promise = Message::Promise {
            ballot,
            first_unchosen: self.log.first_unchosen(),
            accepted: self.log.unchosen_from(first_unchosen),
        };
        out.send(from, promise);
    }

    /// Phase 2(b) for the consecutive slots from `first`: accept unless we promised
    /// a higher ballot. Accepting raises the promise to `ballot` (so an acceptance
    /// never goes back to a lower ballot), and the sender is our leader.
    pub(crate) fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first: Slot,
        (values, encoded): (Vec<Value<S>>, EncodedEntries),
        decided: Slot,
        out: &mut Fx<S>,
    ) {
        self.note_round(ballot);
        if ballot < self.promised {
            self.refuse_stale(from, ballot, out);
            return;
        }
        assert!(!values.is_empty(), "empty accept from {from}");
        self.raise_promise(ballot, out);
        // P1a: we accept in `ballot` only while it is the highest we promised.
        assert_eq!(
            self.promised, ballot,
            "accepting in {ballot} below our promise"
        );
        self.follow(from, out);
        let last = first.plus(values.len() as u64 - 1);
        if !self.log.within_reach(last) {
            // The leader is far ahead of our log: ignore the accept (an acceptor may
            // always stay silent) and catch up first; it will be retransmitted.
            self.request_catch_up(from, out);
            return;
        }
        let leaders = encoded.made_for(ballot, first, values.len());
        let fresh = self
            .log
            .accept_run(first, ballot, values, leaders, &mut out.persist);
        if let Some(from) = fresh {
            for slot in from.0..=last.0 {
                self.facts.accepted(Slot(slot), ballot);
            }
        }
        self.learn_from_leader(from, ballot, decided, out);
        let accepted = Message::Accepted {
            ballot,
            first,
            last,
            first_unchosen: self.log.first_unchosen(),
        };
        out.send(from, accepted);
    }

    /// A heartbeat of the leader of `ballot`: follow it, learn what it says is
    /// chosen, and acknowledge — the acknowledgement states that we promised nothing
    /// above `ballot`, which is what a read round needs (see `read`).
    pub(crate) fn on_heartbeat(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        decided: Slot,
        read_ctx: u64,
        out: &mut Fx<S>,
    ) {
        self.note_round(ballot);
        if ballot < self.promised {
            self.refuse_stale(from, ballot, out);
            return;
        }
        self.follow(from, out);
        self.learn_from_leader(from, ballot, decided, out);
        let ack = Message::HeartbeatAck {
            ballot,
            read_ctx,
            first_unchosen: self.log.first_unchosen(),
        };
        out.send(from, ack);
    }

    /// Refuses a message of a ballot below our promise. If the promise is our own,
    /// from a phase 1 that never completed (we campaigned alone, e.g. while cut
    /// off), the sender is the leader everyone else follows: we follow it too and
    /// tell it so, and it runs phase 1 above our stray promise (`on_nack`).
    /// Otherwise the sender is a deposed leader and learns whom we follow.
    fn refuse_stale(&mut self, from: NodeId, ballot: Ballot, out: &mut Fx<S>) {
        let promised = self.promised;
        let stray = promised.node == self.cfg.id && !self.is_leader();
        let leader = if stray {
            self.follow(from, out);
            Some(from)
        } else {
            self.leader
        };
        out.send(
            from,
            Message::Nack {
                ballot,
                promised,
                leader,
            },
        );
    }

    /// What the leader of `ballot` says is chosen (every slot below `decided`):
    /// learn our own acceptances in that ballot, execute, and ask the leader for
    /// whatever we cannot fill ourselves.
    fn learn_from_leader(
        &mut self,
        leader: NodeId,
        ballot: Ballot,
        decided: Slot,
        out: &mut Fx<S>,
    ) {
        self.log.learn_in_ballot(decided, ballot);
        self.execute_chosen(out);
        if self.log.first_unchosen() < decided {
            self.request_catch_up(leader, out);
        }
    }
}
