//! Leader election by ballot: phase 1 run once for all slots, and the takeover that
//! follows it — re-proposing accepted values (P2c per slot) and filling holes with
//! no-ops ("Paxos Made Simple" §3; "Paxos Made Moderately Complex" §3, the leader's
//! *scout*; "Paxos Made Live" §5.2 on master leases and stable leaders).
//!
//! Liveness, not safety, motivates the rest: randomised election timeouts (§2.4's
//! "distinguished proposer" must be elected "using randomness or real time"), leader
//! stickiness (an acceptor that heard from a live leader within
//! `election_timeout_min` refuses other candidates, so a node returning from a
//! partition does not depose a working leader), and check-quorum (a leader that has
//! not heard from a phase-2 quorum for `election_timeout_max` steps down).

use super::message::AcceptedSlot;
use super::node::{Fx, LeaderState, MultiPaxosNode, Peer, Phase1, Report, Role};
use crate::types::{Ballot, Slot, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use synod_core::StateMachine;
use synod_core::{DurableWaits, NodeId};

/// What a new leader must propose, from the promises of a phase-1 quorum: the
/// first slot nobody in the quorum knows chosen, and for every later slot the value
/// of the highest-ballot acceptance reported (Phase 2(a)'s P2c, slot by slot), or
/// `Noop` for a hole below the last reported slot.
pub(crate) fn takeover_plan<'a, S: StateMachine>(
    reports: impl IntoIterator<Item = &'a Report<S>>,
    own_first_unchosen: Slot,
) -> (Slot, Vec<Value<S>>) {
    let mut start = own_first_unchosen;
    let mut best: BTreeMap<Slot, &AcceptedSlot<S>> = BTreeMap::new();
    for r in reports {
        start = start.max(r.first_unchosen);
        for a in &r.accepted {
            let keep = best.get(&a.slot).is_some_and(|b| b.ballot >= a.ballot);
            if !keep {
                best.insert(a.slot, a);
            }
        }
    }
    let end = best
        .range(start..)
        .next_back()
        .map_or(start, |(s, _)| s.next());
    let values = (start.0..end.0)
        .map(|s| best.get(&Slot(s)).map_or(Value::Noop, |a| a.value.clone()))
        .collect();
    (start, values)
}

impl<S: StateMachine> MultiPaxosNode<S> {
    /// Phase 1(a) for every slot from our first unchosen one: pick a ballot above any
    /// round seen, promise it ourselves (persisted before the prepares leave) and ask
    /// the other acceptors.
    pub(crate) fn campaign(&mut self, out: &mut Fx<S>) {
        let ballot = Ballot::above(self.round_seen.max(self.promised.round), self.cfg.id);
        self.promised = ballot;
        self.note_round(ballot);
        self.persist_promised(out);
        self.leader = None;
        self.leader_contact = None;
        let first_unchosen = self.log.first_unchosen();
        let mut phase1 = Phase1 {
            ballot,
            promises: BTreeMap::new(),
            refusals: BTreeSet::new(),
        };
        let own = Report {
            first_unchosen,
            accepted: self.log.unchosen_from(first_unchosen),
        };
        phase1.promises.insert(self.cfg.id, own);
        self.role = Role::Candidate(Box::new(phase1));
        tracing::debug!(%ballot, %first_unchosen, "phase 1");
        let msg = super::message::Message::Prepare {
            ballot,
            first_unchosen,
        };
        for &peer in self.cfg.members.iter().filter(|&&m| m != self.cfg.id) {
            out.send(peer, msg.clone());
        }
        self.reset_election_timer(out);
        self.maybe_win(out);
    }

    /// An acceptor refuses candidates other than the leader it heard from within
    /// the stickiness window; a leader refuses them while it leads (check-quorum
    /// makes a leader without a quorum step down).
    pub(crate) fn refuses_candidate(&self, from: NodeId) -> bool {
        match &self.role {
            Role::Leader(_) => true,
            Role::Candidate(_) => false,
            Role::Follower => {
                let window = self.cfg.election_timeout_min;
                self.leader.is_some_and(|l| l != from)
                    && self.leader_contact.is_some_and(|t| self.now < t + window)
            }
        }
    }

    /// Phase 1(b) answer for our ballot.
    pub(crate) fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first_unchosen: Slot,
        accepted: Vec<AcceptedSlot<S>>,
        out: &mut Fx<S>,
    ) {
        let Role::Candidate(phase1) = &mut self.role else {
            return;
        };
        if phase1.ballot != ballot {
            return; // an answer to an earlier campaign
        }
        for a in &accepted {
            assert!(
                a.ballot < ballot,
                "promise for {ballot} reports {} at {}",
                a.ballot,
                a.slot
            );
        }
        let report = Report {
            first_unchosen,
            accepted,
        };
        phase1.promises.insert(from, report);
        self.maybe_win(out);
    }

    fn maybe_win(&mut self, out: &mut Fx<S>) {
        let won =
            matches!(&self.role, Role::Candidate(p) if p.promises.len() >= self.cfg.phase1_quorum);
        if !won {
            return;
        }
        let Role::Candidate(phase1) = std::mem::replace(&mut self.role, Role::Follower) else {
            unreachable!("checked above");
        };
        self.become_leader(*phase1, out);
    }

    /// A refusal. A candidate gives up when some acceptor promised higher or when
    /// too many refused for a phase-1 quorum; it retries after a random election
    /// timeout (the back-off that lets one of two dueling candidates through). A
    /// leader refused for a higher promise steps down — unless the acceptor says it
    /// follows *us*: then the promise is a stray one (a node that campaigned alone
    /// during a partition), and we run phase 1 again above it.
    pub(crate) fn on_nack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        promised: Ballot,
        leader: Option<NodeId>,
        out: &mut Fx<S>,
    ) {
        self.note_round(promised);
        let n = self.cfg.members.len();
        let q1 = self.cfg.phase1_quorum;
        match &mut self.role {
            Role::Candidate(p) if p.ballot == ballot => {
                p.refusals.insert(from);
                if promised > ballot || p.refusals.len() + q1 > n {
                    tracing::debug!(%ballot, %promised, "phase 1 refused");
                    self.step_down(leader, out);
                }
            }
            Role::Leader(_) if ballot == self.promised && promised > ballot => {
                if leader == Some(self.cfg.id) {
                    tracing::debug!(%ballot, %promised, "stray promise: phase 1 again");
                    self.step_down(None, out);
                    self.campaign(out);
                } else {
                    self.step_down(leader, out);
                }
            }
            _ => {}
        }
    }

    /// Phase 1 is complete: lead `phase1.ballot`. Slots nobody in the quorum knows
    /// chosen are proposed again — the highest-ballot value reported, or a no-op for
    /// a hole — so that commands after the holes can execute ("Paxos Made Simple"
    /// §3). No phase 1 is needed for any later slot while we lead.
    fn become_leader(&mut self, phase1: Phase1<S>, out: &mut Fx<S>) {
        let own_first_unchosen = self.log.first_unchosen();
        let (start, values) = takeover_plan(phase1.promises.values(), own_first_unchosen);
        let takeover_end = start.plus(values.len() as u64);
        let peers = self
            .cfg
            .members
            .iter()
            .filter(|&&m| m != self.cfg.id)
            .map(|&m| {
                // A promise is an answer: it counts for check-quorum and tells us
                // how much the peer knows chosen (for our own catch-up).
                let promise = phase1.promises.get(&m);
                let peer = Peer {
                    bit: self.cfg.member_bit(m),
                    first_unchosen: promise.map_or(Slot::default(), |r| r.first_unchosen),
                    last_ack: promise.map(|_| self.now),
                    ..Peer::default()
                };
                (m, peer)
            })
            .collect();
        tracing::info!(ballot = %phase1.ballot, %start, %takeover_end, "leading");
        self.role = Role::Leader(Box::new(LeaderState {
            start,
            next_slot: start,
            batches: VecDeque::new(),
            unchosen: 0,
            queue: VecDeque::new(),
            waiters: VecDeque::new(),
            decided: start,
            takeover_end,
            peers,
            reads: VecDeque::new(),
            read_ctx: 0,
            since: self.now,
            heartbeat_at: self.now,
            durable_waits: DurableWaits::default(),
            ballot_durable: false,
        }));
        self.leader = Some(self.cfg.id);
        self.leader_contact = None;
        for chunk in values.chunks(self.cfg.accept_batch_max) {
            self.propose_batch(chunk.to_vec(), out);
        }
        // Our promise is in this batch or an earlier one: its confirmation tells us
        // the ballot is durable, even if the takeover proposed nothing.
        self.await_durable(out);
        self.on_heartbeat_timer(out);
        self.advance_decided(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use synod_core::{ClientId, Kv, KvCommand, KvOp};

    fn b(round: u64, node: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(node),
        }
    }
    fn cmd(n: u64) -> Value {
        Value::Command(Arc::new(KvCommand {
            client: ClientId(n),
            seq: 1,
            op: KvOp::Delete { key: "k".into() },
        }))
    }
    fn acc(slot: u64, ballot: Ballot, value: Value) -> AcceptedSlot {
        AcceptedSlot {
            slot: Slot(slot),
            ballot,
            value,
        }
    }

    #[test]
    fn takeover_adopts_the_highest_ballot_per_slot_and_fills_holes() {
        let r1 = Report {
            first_unchosen: Slot(3),
            accepted: vec![acc(3, b(1, 1), cmd(1)), acc(6, b(1, 1), cmd(6))],
        };
        let r2 = Report {
            first_unchosen: Slot(4),
            accepted: vec![acc(4, b(2, 2), cmd(4)), acc(6, b(3, 2), cmd(7))],
        };
        let (start, values) = takeover_plan([&r1, &r2], Slot(2));
        // Slot 3 is chosen (r2 knows it), 5 is a hole, 6 takes the higher ballot.
        assert_eq!(start, Slot(4));
        assert_eq!(values, vec![cmd(4), Value::Noop, cmd(7)]);
    }

    #[test]
    fn takeover_with_nothing_accepted_proposes_nothing() {
        let r: Report<Kv> = Report {
            first_unchosen: Slot(9),
            accepted: vec![],
        };
        assert_eq!(takeover_plan([&r], Slot(1)), (Slot(9), vec![]));
    }
}
