//! The leader's phase 2 for a stream of slots ("Paxos Made Simple" §3: with phase 1
//! done for all instances, "the leader can … execute phase 2 for each command"),
//! pipelined and batched as in "Paxos Made Live" §5 / "Paxos Made Moderately
//! Complex" (commanders run concurrently for different slots):
//!
//! * up to `accept_inflight_max` accept messages are in flight; a command that
//!   arrives while the window is full waits in a queue bounded by
//!   `proposal_queue_max`, and when a batch completes the queue leaves in one accept
//!   of up to `accept_batch_max` consecutive slots — batching falls out of the window;
//! * a slot is chosen once a phase-2 quorum accepted it in our ballot; the leader's
//!   `decided` (first slot not known chosen) rides on every accept and heartbeat;
//! * unacknowledged accepts are retransmitted every heartbeat interval;
//! * check-quorum: a leader that heard no phase-2 quorum for `election_timeout_max`
//!   steps down, so clients stop waiting on it.

use super::message::Message;
use super::node::{Fx, MultiPaxosNode, MultiPaxosTimer, Proposal, Role, Waiter};
use crate::types::{Ballot, Slot, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use synod_core::{KvCommand, NodeId, Outcome, Time};

/// Runs of consecutive proposals `peer` has not acknowledged and that were last sent
/// at least `interval` ago, each at most `batch_max` long: what to retransmit.
pub(crate) fn stale_runs(
    proposals: &BTreeMap<Slot, Proposal>,
    peer: NodeId,
    now: Time,
    interval: Duration,
    batch_max: usize,
) -> Vec<(Slot, Vec<Value>)> {
    let mut runs: Vec<(Slot, Vec<Value>)> = Vec::new();
    let mut prev: Option<Slot> = None;
    for (&slot, p) in proposals {
        let due = now >= p.sent_at + interval && !p.acks.contains(&peer);
        if !due {
            prev = None;
            continue;
        }
        match runs.last_mut() {
            Some((_, values))
                if prev.is_some_and(|s| s.next() == slot) && values.len() < batch_max =>
            {
                values.push(p.value.clone())
            }
            _ => runs.push((slot, vec![p.value.clone()])),
        }
        prev = Some(slot);
    }
    runs
}

impl MultiPaxosNode {
    /// A client write at the leader: propose it now if the window has room, else
    /// queue it (or refuse it when the queue is full — nothing was proposed).
    pub(crate) fn propose_command(&mut self, waiter: Waiter, cmd: Arc<KvCommand>, out: &mut Fx) {
        let Role::Leader(st) = &mut self.role else {
            unreachable!("only a leader proposes");
        };
        if st.queue.is_empty() && st.batches.len() < self.cfg.accept_inflight_max {
            self.propose_batch(vec![(Value::Command(cmd), Some(waiter))], out);
            self.advance_decided(out); // a phase-2 quorum of one chooses at once
        } else if st.queue.len() >= self.cfg.proposal_queue_max {
            out.reply(waiter.client, waiter.seq, Outcome::Unavailable);
        } else {
            st.queue.push_back((waiter, cmd));
        }
    }

    /// Phase 2(a) for consecutive new slots: accept them ourselves (persisted before
    /// the accept leaves) and send one accept message to every peer.
    pub(crate) fn propose_batch(&mut self, batch: Vec<(Value, Option<Waiter>)>, out: &mut Fx) {
        let (ballot, id, now) = (self.promised, self.cfg.id, self.now);
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        assert!(!batch.is_empty(), "empty batch");
        let first = st.next_slot;
        let mut values = Vec::with_capacity(batch.len());
        for (slot, (value, waiter)) in (first.0..).map(Slot).zip(batch) {
            let fresh = self
                .log
                .accept(slot, ballot, value.clone(), &mut out.persist);
            assert!(fresh, "leader of {ballot} proposes {slot}, already chosen");
            self.journal.accepted.push((slot, ballot, value.clone()));
            let proposal = Proposal {
                value: value.clone(),
                acks: BTreeSet::from([id]),
                sent_at: now,
            };
            assert!(
                st.proposals.insert(slot, proposal).is_none(),
                "{slot} proposed twice in {ballot}"
            );
            if let Some(w) = waiter {
                st.waiters.insert(slot, w);
            }
            values.push(value);
        }
        let last = first.plus(values.len() as u64 - 1);
        st.next_slot = last.next();
        st.batches.push_back((first, last));
        let msg = Message::Accept {
            ballot,
            first,
            values,
            decided: st.decided,
        };
        for (&peer, p) in st.peers.iter_mut() {
            p.sent_at = Some(now);
            out.send(peer, msg.clone());
        }
    }

    /// Proposes one batch of queued commands if the window has room; returns
    /// `true` if it did.
    fn drain_one_batch(&mut self, out: &mut Fx) -> bool {
        let Role::Leader(st) = &mut self.role else {
            return false;
        };
        if st.queue.is_empty() || st.batches.len() >= self.cfg.accept_inflight_max {
            return false;
        }
        let n = st.queue.len().min(self.cfg.accept_batch_max);
        let batch = st
            .queue
            .drain(..n)
            .map(|(w, cmd)| (Value::Command(cmd), Some(w)))
            .collect();
        self.propose_batch(batch, out);
        true
    }

    /// Phase 2(b) answers for our ballot.
    pub(crate) fn on_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first: Slot,
        last: Slot,
        first_unchosen: Slot,
        out: &mut Fx,
    ) {
        if ballot != self.promised {
            return; // for an earlier ballot of ours, or we were deposed since
        }
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        let Some(peer) = st.peers.get_mut(&from) else {
            return;
        };
        peer.last_ack = Some(self.now);
        peer.first_unchosen = peer.first_unchosen.max(first_unchosen);
        for (_, p) in st.proposals.range_mut(first..=last) {
            p.acks.insert(from);
        }
        self.advance_decided(out);
    }

    /// A value is chosen once a phase-2 quorum accepted it in our ballot ("Paxos
    /// Made Simple" §2.2). Moves `decided`, frees completed batches, learns and
    /// executes what we now know chosen, and refills the window from the queue.
    pub(crate) fn advance_decided(&mut self, out: &mut Fx) {
        loop {
            self.retire_chosen(out);
            // With a phase-2 quorum of one, a new batch is chosen at once: loop.
            if !self.drain_one_batch(out) {
                return;
            }
        }
    }

    fn retire_chosen(&mut self, out: &mut Fx) {
        let (ballot, q2) = (self.promised, self.cfg.phase2_quorum);
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        st.proposals.retain(|_, p| p.acks.len() < q2);
        st.decided = st.proposals.keys().next().copied().unwrap_or(st.next_slot);
        let proposals = &st.proposals;
        st.batches
            .retain(|&(a, b)| proposals.range(a..=b).next().is_some());
        let decided = st.decided;
        self.log.learn_in_ballot(decided, ballot);
        self.execute_chosen(out);
    }

    /// Leader heartbeat: check-quorum, heartbeats to peers not sent an accept in
    /// the last interval, retransmission, and our own catch-up.
    pub(crate) fn on_heartbeat_timer(&mut self, out: &mut Fx) {
        if self.lost_quorum() {
            tracing::debug!(ballot = %self.promised, "no quorum heard: stepping down");
            self.step_down(None, out);
            return;
        }
        self.send_heartbeats(None, out);
        self.retransmit(out);
        self.leader_catch_up(out);
        // The leader's own decisions leave no other write: save them once per beat.
        self.log.save_frontier(&mut out.persist, true);
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        st.heartbeat_at = self.now + self.cfg.heartbeat_interval;
        out.set_timer(MultiPaxosTimer::Heartbeat, st.heartbeat_at);
    }

    fn lost_quorum(&self) -> bool {
        let Role::Leader(st) = &self.role else {
            return false;
        };
        let window = self.cfg.election_timeout_max;
        if self.now < st.since + window {
            return false;
        }
        let heard = st
            .peers
            .values()
            .filter(|p| p.last_ack.is_some_and(|t| self.now < t + window))
            .count();
        heard + 1 < self.cfg.phase2_quorum
    }

    /// Sends a heartbeat to every peer — all of them for a read round (`Some(ctx)`),
    /// else only those not sent anything within the last interval.
    pub(crate) fn send_heartbeats(&mut self, read_round: Option<u64>, out: &mut Fx) {
        let (ballot, now, interval) = (self.promised, self.now, self.cfg.heartbeat_interval);
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        let msg = Message::Heartbeat {
            ballot,
            decided: st.decided,
            read_ctx: read_round.unwrap_or(st.read_ctx),
        };
        for (&peer, p) in st.peers.iter_mut() {
            let recent = p.sent_at.is_some_and(|t| now < t + interval);
            if read_round.is_none() && recent {
                continue;
            }
            p.sent_at = Some(now);
            out.send(peer, msg.clone());
        }
    }

    /// Resends accepts a peer has not acknowledged within a heartbeat interval
    /// (the accept or its answer was lost, or the peer was down).
    fn retransmit(&mut self, out: &mut Fx) {
        let (ballot, now, interval) = (self.promised, self.now, self.cfg.heartbeat_interval);
        let batch_max = self.cfg.accept_batch_max;
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        let peers: Vec<NodeId> = st.peers.keys().copied().collect();
        for peer in peers {
            for (first, values) in stale_runs(&st.proposals, peer, now, interval, batch_max) {
                let msg = Message::Accept {
                    ballot,
                    first,
                    values,
                    decided: st.decided,
                };
                out.send(peer, msg);
            }
        }
        for p in st.proposals.values_mut() {
            if now >= p.sent_at + interval {
                p.sent_at = now;
            }
        }
    }

    /// A leader that took over behind its quorum (slots below its takeover start it
    /// does not hold) fetches them from the live peer that knows the most.
    fn leader_catch_up(&mut self, out: &mut Fx) {
        let Role::Leader(st) = &self.role else {
            return;
        };
        let mine = self.log.first_unchosen();
        if mine >= st.start {
            return;
        }
        let window = self.cfg.election_timeout_max;
        let alive = |p: &&super::node::Peer| p.last_ack.is_some_and(|t| self.now < t + window);
        let best = st
            .peers
            .iter()
            .filter(|(_, p)| p.first_unchosen > mine && alive(p))
            .max_by_key(|(_, p)| p.first_unchosen)
            .map(|(&id, _)| id);
        if let Some(peer) = best {
            self.request_catch_up(peer, out);
        }
    }

    /// A heartbeat answer: the peer is alive and promised nothing above our ballot.
    pub(crate) fn on_heartbeat_ack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        read_ctx: u64,
        first_unchosen: Slot,
        out: &mut Fx,
    ) {
        if ballot != self.promised {
            return;
        }
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        let Some(peer) = st.peers.get_mut(&from) else {
            return;
        };
        peer.last_ack = Some(self.now);
        peer.read_ctx = peer.read_ctx.max(read_ctx);
        peer.first_unchosen = peer.first_unchosen.max(first_unchosen);
        self.serve_reads(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(sent_ms: u64, acks: &[u64]) -> Proposal {
        Proposal {
            value: Value::Noop,
            acks: acks.iter().map(|&a| NodeId(a)).collect(),
            sent_at: Time::from_millis(sent_ms),
        }
    }

    #[test]
    fn stale_runs_split_at_acked_recent_and_missing_slots_and_at_the_batch_bound() {
        let mut p = BTreeMap::new();
        p.insert(Slot(1), proposal(0, &[1]));
        p.insert(Slot(2), proposal(0, &[1]));
        p.insert(Slot(3), proposal(0, &[1, 2])); // acked by n2
        p.insert(Slot(4), proposal(0, &[1]));
        p.insert(Slot(6), proposal(0, &[1])); // 5 missing: a new run
        p.insert(Slot(7), proposal(90, &[1])); // sent recently
        p.insert(Slot(8), proposal(0, &[1]));
        let runs = stale_runs(
            &p,
            NodeId(2),
            Time::from_millis(100),
            Duration::from_millis(50),
            8,
        );
        let shape: Vec<(u64, usize)> = runs.iter().map(|(s, v)| (s.0, v.len())).collect();
        assert_eq!(shape, vec![(1, 2), (4, 1), (6, 1), (8, 1)]);
        let capped = stale_runs(
            &p,
            NodeId(3),
            Time::from_millis(100),
            Duration::from_millis(50),
            2,
        );
        let shape: Vec<(u64, usize)> = capped.iter().map(|(s, v)| (s.0, v.len())).collect();
        assert_eq!(shape, vec![(1, 2), (3, 2), (6, 1), (8, 1)]);
    }
}
