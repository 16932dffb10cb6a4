//! The leader's phase 2 for a stream of slots ("Paxos Made Simple" §3: with phase 1
//! done for all instances, "the leader can … execute phase 2 for each command"),
//! pipelined and batched as in "Paxos Made Live" §5 / "Paxos Made Moderately
//! Complex" (commanders run concurrently for different slots):
//!
//! * up to `accept_inflight_max` accept messages are in flight; the writes of a
//!   client input (one, or all a server read at once) go out together in one accept
//!   only while at most half of that window is in use ([`lone_max`]), else they wait
//!   in a queue bounded by `proposal_queue_max`, and when a batch completes the queue
//!   leaves in accepts of up to `accept_batch_max` consecutive slots — the upper half
//!   of the window carries batches, so batching falls out of the load;
//! * a slot is chosen once a phase-2 quorum accepted it durably in our ballot; the
//!   leader's `decided` (first slot not known chosen) rides on every accept and
//!   heartbeat;
//! * the leader writes its own acceptance in parallel with sending the accept (the
//!   Paxos twin of Raft thesis §10.2.1): once its ballot's promise is durable, accepts
//!   go out as early sends, and the leader counts itself toward a phase-2 quorum only
//!   for what `on_persisted` confirmed durable;
//! * unacknowledged accepts are retransmitted every heartbeat interval;
//! * check-quorum: a leader that heard no phase-2 quorum for `election_timeout_max`
//!   steps down, so clients stop waiting on it.

use super::message::{EncodedEntries, EntryBytes, Message};
use super::node::{AckSet, Batch, Fx, MultiPaxosNode, MultiPaxosTimer, Role};
use crate::types::{Ballot, Slot, Value};
use std::sync::Arc;
use synod_core::NodeId;
use synod_core::StateMachine;

/// Accept messages in flight below which the writes of a client input are proposed
/// at once: half the window, rounded up (so a window of one still proposes). Above
/// it writes queue and leave together when a batch completes. Without this bound
/// every completion freed a window slot that the next lone command took, and under
/// steady load batches stayed at a few commands each. Liveness: a write stays
/// queued only while a batch is in flight (`lone_max >= 1`), and every completion
/// drains the queue into the freed slots.
pub(crate) fn lone_max(accept_inflight_max: usize) -> usize {
    accept_inflight_max.div_ceil(2)
}

/// `true` once the acceptors in `acks` form a phase-2 quorum of `q2`.
pub(crate) fn is_quorum(acks: AckSet, q2: usize) -> bool {
    acks.count_ones() as usize >= q2
}

/// Marks `acks_from` on every batch not yet chosen that lies within `first..=last`
/// (an acceptor's `Accepted` for those slots) and marks chosen the batches that now
/// have a phase-2 quorum of `q2`; returns how many became chosen. A batch only
/// partly inside the range gains nothing: its acceptor did not accept all of it.
pub(crate) fn ack_range(
    batches: &mut std::collections::VecDeque<Batch>,
    first: Slot,
    last: Slot,
    acks_from: AckSet,
    q2: usize,
) -> usize {
    let mut newly_chosen = 0;
    for b in batches.iter_mut() {
        if b.first > last {
            break;
        }
        if b.chosen || b.first < first || b.last > last {
            continue;
        }
        b.acks |= acks_from;
        if is_quorum(b.acks, q2) {
            b.chosen = true;
            newly_chosen += 1;
        }
    }
    newly_chosen
}

impl<S: StateMachine> MultiPaxosNode<S> {
    /// Proposes the queued writes of a client input now, as one batch, if at most
    /// half the window is in use ([`lone_max`]); else they wait for a batch to
    /// complete (`advance_decided` drains the queue into the freed window).
    pub(crate) fn propose_queued(&mut self, out: &mut Fx<S>) {
        let Role::Leader(st) = &self.role else {
            return;
        };
        if st.unchosen < lone_max(self.cfg.accept_inflight_max) {
            self.drain_one_batch(out);
        }
    }

    /// Phase 2(a) for consecutive new slots from `next_slot`, one per value: accept
    /// them ourselves (written in this input's batch; we count ourselves once it is
    /// durable) and send one accept message to every peer — at once if our ballot is
    /// durable, else after this batch. The caller registered the waiting clients.
    pub(crate) fn propose_batch(&mut self, values: Vec<Value<S>>, out: &mut Fx<S>) {
        let (ballot, now) = (self.promised, self.now);
        let Role::Leader(st) = &mut self.role else {
            unreachable!("only a leader proposes (`drain_one_batch`, the takeover)");
        };
        assert!(!values.is_empty(), "empty batch");
        let first = st.next_slot;
        // Encode each entry once; every acceptor stores these bytes, as one run.
        let encoded = Arc::new(EntryBytes::encode(ballot, first, &values));
        let fresh = self.log.accept_run(
            first,
            ballot,
            values.iter().cloned(),
            Some(&encoded),
            &mut out.persist,
        );
        assert_eq!(
            fresh,
            Some(first),
            "leader of {ballot} proposes from {first}, already chosen"
        );
        let last = first.plus(values.len() as u64 - 1);
        for slot in first.0..=last.0 {
            self.facts.accepted(Slot(slot), ballot);
        }
        st.next_slot = last.next();
        if let Some(prev) = st.batches.back() {
            assert_eq!(
                prev.last.next(),
                first,
                "{first} proposed twice in {ballot}"
            );
        }
        st.batches.push_back(Batch {
            first,
            last,
            acks: 0, // ours counts once durable (`on_own_acceptances_durable`)
            chosen: false,
            sent_at: now,
        });
        st.unchosen += 1;
        let (decided, early) = (st.decided, st.ballot_durable);
        let encoded = EncodedEntries::shared(encoded);
        // Every peer gets its own copy of the values; the last takes the original.
        let mut values = Some(values);
        let n = st.peers.len();
        for (k, (&peer, p)) in st.peers.iter_mut().enumerate() {
            p.sent_at = Some(now);
            let values = if k + 1 == n {
                values.take().expect("moved once")
            } else {
                values.clone().expect("not moved yet")
            };
            let msg = Message::Accept {
                ballot,
                first,
                values,
                decided,
                encoded: encoded.clone(),
            };
            if early {
                out.send_early(peer, msg);
            } else {
                out.send(peer, msg);
            }
        }
        self.await_durable(out);
    }

    /// Asks the driver to confirm this input's batch (`Effects::persist_notify`),
    /// which holds our acceptance of every slot proposed so far; one notification
    /// covers all proposals of an input.
    pub(crate) fn await_durable(&mut self, out: &mut Fx<S>) {
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        let notify = &mut out.persist_notify;
        st.durable_waits
            .await_batch(st.next_slot, &mut self.persist_tag, notify);
    }

    /// The batch tagged `tag` is durable, and with it every batch before it: our
    /// acceptances there now count toward phase-2 quorums, and our ballot's promise
    /// is durable. Notifications of an earlier leadership find no wait of ours.
    pub(crate) fn on_own_acceptances_durable(&mut self, tag: u64, out: &mut Fx<S>) {
        let (me, q2) = (self.cfg.member_bit(self.cfg.id), self.cfg.phase2_quorum);
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        let Some(end) = st.durable_waits.confirm(tag) else {
            return;
        };
        st.ballot_durable = true;
        if end > st.decided {
            let chosen = ack_range(&mut st.batches, st.decided, Slot(end.0 - 1), me, q2);
            if chosen > 0 {
                assert!(
                    chosen <= st.unchosen,
                    "{chosen} batches chosen, {} open",
                    st.unchosen
                );
                st.unchosen -= chosen;
                self.advance_decided(out);
            }
        }
    }

    /// Proposes one batch of queued commands if the window has room; returns
    /// `true` if it did.
    fn drain_one_batch(&mut self, out: &mut Fx<S>) -> bool {
        let Role::Leader(st) = &mut self.role else {
            return false;
        };
        if st.queue.is_empty() || st.unchosen >= self.cfg.accept_inflight_max {
            return false;
        }
        let n = st.queue.len().min(self.cfg.accept_batch_max);
        let mut values = Vec::with_capacity(n);
        let mut slot = st.next_slot;
        while values.len() < n {
            let (w, cmd) = st.queue.pop_front().expect("n queued");
            st.waiters.push_back((slot, w));
            values.push(Value::Command(cmd));
            slot = slot.next();
        }
        self.propose_batch(values, out);
        true
    }

    /// Phase 2(b) answers for our ballot: `from` accepted every slot in
    /// `first..=last` in it.
    pub(crate) fn on_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first: Slot,
        last: Slot,
        first_unchosen: Slot,
        out: &mut Fx<S>,
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
        peer.first_unchosen = first_unchosen; // the latest report (see `Peer`)
                                              // An acceptor accepts in our ballot only what we proposed in it.
        assert!(
            first <= last && last < st.next_slot,
            "{from} accepted {first}..={last} in {ballot}, which proposed up to {}",
            st.next_slot
        );
        let bit = peer.bit;
        let chosen = ack_range(&mut st.batches, first, last, bit, self.cfg.phase2_quorum);
        if chosen > 0 {
            assert!(
                chosen <= st.unchosen,
                "{chosen} batches chosen, {} open",
                st.unchosen
            );
            st.unchosen -= chosen;
            self.advance_decided(out);
        }
    }

    /// A value is chosen once a phase-2 quorum accepted it in our ballot ("Paxos
    /// Made Simple" §2.2). Moves `decided`, frees completed batches, learns and
    /// executes what we now know chosen, and refills the window from the queue.
    pub(crate) fn advance_decided(&mut self, out: &mut Fx<S>) {
        self.retire_chosen(out);
        while self.drain_one_batch(out) {}
    }

    /// Retires the chosen batches at the front: everything below the first batch
    /// not chosen is chosen, so `decided` moves there.
    fn retire_chosen(&mut self, out: &mut Fx<S>) {
        let ballot = self.promised;
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        while st.batches.front().is_some_and(|b| b.chosen) {
            st.batches.pop_front();
        }
        let decided = st.batches.front().map_or(st.next_slot, |b| b.first);
        // Chosen is forever: the known-chosen prefix only grows.
        assert!(
            decided >= st.decided,
            "decided moved back from {} to {decided}",
            st.decided
        );
        st.decided = decided;
        self.log.learn_in_ballot(decided, ballot);
        self.execute_chosen(out);
    }

    /// Leader heartbeat: check-quorum, heartbeats to peers not sent an accept in
    /// the last interval, retransmission, and our own catch-up.
    pub(crate) fn on_heartbeat_timer(&mut self, out: &mut Fx<S>) {
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
    pub(crate) fn send_heartbeats(&mut self, read_round: Option<u64>, out: &mut Fx<S>) {
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

    /// Resends, whole, each batch not chosen that a peer has not acknowledged
    /// within a heartbeat interval (the accept or its answer was lost, or the peer
    /// was down). The values come from our own acceptances in our ballot.
    fn retransmit(&mut self, out: &mut Fx<S>) {
        let (ballot, now, interval) = (self.promised, self.now, self.cfg.heartbeat_interval);
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        for batch in st.batches.iter_mut() {
            if batch.chosen || now < batch.sent_at + interval {
                continue;
            }
            batch.sent_at = now;
            let missing = st.peers.iter().filter(|(_, p)| batch.acks & p.bit == 0);
            let mut values: Option<Vec<Value<S>>> = None;
            for (&peer, _) in missing {
                let values = values.get_or_insert_with(|| {
                    (batch.first.0..=batch.last.0)
                        .map(|s| match self.log.accepted(Slot(s)) {
                            Some((b, v)) if b == ballot => v.clone(),
                            other => panic!("{ballot} proposed s{s}, the log holds {other:?}"),
                        })
                        .collect()
                });
                let msg = Message::Accept {
                    ballot,
                    first: batch.first,
                    values: values.clone(),
                    decided: st.decided,
                    encoded: EncodedEntries::NONE,
                };
                out.send(peer, msg);
            }
        }
    }

    /// A leader that took over behind its quorum (slots below its takeover start it
    /// does not hold) fetches them from the live peer whose latest answer says it
    /// knows the most (`Peer::first_unchosen`). If no live peer knows more than we
    /// do, the node that told us those slots were chosen has gone silent, and we
    /// run phase 1 again: the new quorum's reports start where the live nodes'
    /// knowledge ends and re-propose what they accepted below our old start. (Else
    /// a live majority waits forever for one dead node: we could execute nothing
    /// past the gap.)
    fn leader_catch_up(&mut self, out: &mut Fx<S>) {
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
        match best {
            Some(peer) => self.request_catch_up(peer, out),
            None => {
                tracing::info!(%mine, start = %st.start, "no live source below our start: phase 1 again");
                self.step_down(None, out);
                self.campaign(out);
            }
        }
    }

    /// A heartbeat answer: the peer is alive and promised nothing above our ballot.
    pub(crate) fn on_heartbeat_ack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        read_ctx: u64,
        first_unchosen: Slot,
        out: &mut Fx<S>,
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
        peer.first_unchosen = first_unchosen; // the latest report (see `Peer`)
        self.serve_reads(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use synod_core::Time;

    fn batches(ranges: &[(u64, u64)]) -> VecDeque<Batch> {
        ranges
            .iter()
            .map(|&(first, last)| Batch {
                first: Slot(first),
                last: Slot(last),
                acks: 0b001, // the leader's own acceptance
                chosen: false,
                sent_at: Time::ZERO,
            })
            .collect()
    }

    fn chosen(b: &VecDeque<Batch>) -> Vec<bool> {
        b.iter().map(|b| b.chosen).collect()
    }

    #[test]
    fn a_batch_is_chosen_when_a_phase2_quorum_accepted_all_of_it() {
        let mut b = batches(&[(1, 4), (5, 8), (9, 9)]);
        // n2 accepted the second batch: with the leader that is 2 of 3.
        assert_eq!(ack_range(&mut b, Slot(5), Slot(8), 0b010, 2), 1);
        assert_eq!(chosen(&b), vec![false, true, false]);
        // Acks for a chosen batch change nothing; a range covering several batches
        // acknowledges each.
        assert_eq!(ack_range(&mut b, Slot(1), Slot(9), 0b100, 2), 2);
        assert_eq!(chosen(&b), vec![true, true, true]);
    }

    #[test]
    fn a_range_covering_part_of_a_batch_acknowledges_nothing_of_it() {
        let mut b = batches(&[(1, 4), (5, 8)]);
        assert_eq!(ack_range(&mut b, Slot(2), Slot(6), 0b010, 2), 0);
        assert_eq!(ack_range(&mut b, Slot(1), Slot(3), 0b010, 2), 0);
        assert_eq!(b[0].acks, 0b001);
        assert_eq!(b[1].acks, 0b001);
    }

    #[test]
    fn the_same_acceptor_acknowledging_twice_counts_once() {
        let mut b = batches(&[(1, 4)]);
        assert_eq!(ack_range(&mut b, Slot(1), Slot(4), 0b010, 3), 0);
        assert_eq!(ack_range(&mut b, Slot(1), Slot(4), 0b010, 3), 0);
        assert_eq!(chosen(&b), vec![false]);
        assert_eq!(ack_range(&mut b, Slot(1), Slot(4), 0b100, 3), 1);
    }
}
