//! Log replication (§5.3): the leader's pipelined, batched AppendEntries with fast
//! backtracking, the follower's receiver rules, heartbeats, and the commit rule of
//! §5.4.2.

use crate::message::{AppendResult, Message};
use crate::node::{Fx, RaftNode, RaftTimer, Role, Waiter};
use crate::progress::Mode;
use crate::quorum::quorum_value;
use crate::types::{Entry, LogIndex, Payload, Term};
use synod_core::{NodeId, Outcome, StateMachine};

impl<S: StateMachine> RaftNode<S> {
    /// Appends a client's entry and replicates it (§5.3 "the leader appends the
    /// command to its log as a new entry, then issues AppendEntries in parallel").
    pub(crate) fn propose(&mut self, payload: Payload<S>, waiter: Waiter, out: &mut Fx<S>) {
        // A configuration entry takes effect when appended (§6) and may shrink the
        // quorum, which can commit at once.
        let reconfigures = matches!(payload, Payload::Config(_));
        self.append_proposal(payload, waiter, out);
        self.broadcast_append(out);
        // Otherwise appending changes no match index we count: ours moves when the
        // write is durable (`on_persisted`), the followers' when they acknowledge.
        // Skipping the count here saves a quorum computation per proposal.
        if reconfigures {
            self.advance_commit(out);
        }
    }

    /// The first half of [`propose`](Self::propose): appends the entry and notes who
    /// waits for it, without sending it yet.
    pub(crate) fn append_proposal(&mut self, payload: Payload<S>, waiter: Waiter, out: &mut Fx<S>) {
        let index = self.leader_append(payload, out);
        if let Role::Leader(state) = &mut self.role {
            state.pending.push_back((index, waiter));
        }
    }

    /// Sends new entries to every follower whose window has room. A follower whose
    /// window is full gets them batched into the message sent when an ack frees a
    /// slot — batching falls out of flow control.
    pub(crate) fn broadcast_append(&mut self, out: &mut Fx<S>) {
        // Indexing rather than collecting the peer ids: this runs on every proposal.
        // Under load most windows are full; those peers are passed over here (as
        // `send_appends` would) without looking them up again.
        let inflight_max = self.cfg.inflight_max;
        match &self.role {
            Role::Leader(state) if state.progress.values().any(|p| p.can_send(inflight_max)) => {}
            _ => return,
        }
        let mut i = 0;
        loop {
            let peer = match &self.role {
                Role::Leader(state) => match state.progress.iter().nth(i) {
                    Some((&peer, progress)) => progress.can_send(inflight_max).then_some(peer),
                    None => return,
                },
                _ => return,
            };
            if let Some(peer) = peer {
                self.send_appends(peer, out);
            }
            i += 1;
        }
    }

    /// Sends AppendEntries to `peer` while its flow-control window allows and there
    /// is something to send (or, when probing, one message even if empty).
    pub(crate) fn send_appends(&mut self, peer: NodeId, out: &mut Fx<S>) {
        let inflight_max = self.cfg.inflight_max;
        let batch_max = self.cfg.batch_entries_max;
        loop {
            let Role::Leader(state) = &mut self.role else {
                return;
            };
            let early = state.sends_early();
            let Some(progress) = state.progress.get_mut(&peer) else {
                return;
            };
            if !progress.can_send(inflight_max) {
                return;
            }
            let next = progress.next_index();
            let probing = matches!(progress.mode, Mode::Probe { .. });
            if next > self.log.last_index() && !probing {
                return; // nothing new to pipeline
            }
            let prev_index = next.prev();
            let Some(prev_term) = self.log.term_at(prev_index) else {
                // The entries the follower needs are compacted (§7).
                self.send_snapshot(peer, out);
                return;
            };
            let entries: Vec<Entry<S>> = self.log.slice(next, batch_max);
            let last = entries.last().map_or(prev_index, |e| e.index);
            // What we send continues right after `prev_index`, from our own log, and
            // holds no entry of a term after ours.
            assert!(
                entries.first().is_none_or(|e| e.index == next),
                "append to {peer} does not start at its next index {next}"
            );
            assert!(
                entries.last().is_none_or(|e| e.term <= self.term),
                "leader of {} holds an entry of a later term at {last}",
                self.term
            );
            progress.sent(last);
            progress.append_sent_at = Some(self.now);
            let msg = Message::Append {
                term: self.term,
                prev_index,
                prev_term,
                entries,
                commit: self.commit,
            };
            // §10.2.1: the entries may reach followers before our own copy is
            // durable; we count ourselves only once it is (`advance_commit`).
            if early {
                out.send_early(peer, msg);
            } else {
                out.send(peer, msg);
            }
            if probing {
                return;
            }
        }
    }

    /// AppendEntries receiver (Figure 2).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry<S>>,
        leader_commit: LogIndex,
        out: &mut Fx<S>,
    ) {
        if term < self.term {
            // Rule 1: reply false if term < currentTerm. Our higher term makes the
            // stale leader step down before it looks at the result.
            out.send(
                from,
                Message::AppendResponse {
                    term: self.term,
                    answers: term,
                    result: AppendResult::Reject {
                        rejected: prev_index,
                        conflict_term: None,
                        conflict_index: LogIndex(0),
                    },
                },
            );
            return;
        }
        // A newer term made us a follower of it before we got here.
        assert_eq!(term, self.term, "append of {term} handled in {}", self.term);
        self.heard_from_leader(from, out);
        let touches_config = entries
            .iter()
            .any(|e| matches!(e.payload, Payload::Config(_)));
        // A conflicting suffix is about to be deleted (rule 3). It may hold the
        // configuration in force (§6: the latest entry in the log wins, committed or
        // not), and the entries replacing it may well make the log longer.
        let truncates = entries
            .iter()
            .any(|e| self.log.term_at(e.index).is_some_and(|t| t != e.term));
        let result = match self.log.append_from_leader(
            prev_index,
            prev_term,
            entries,
            self.commit,
            &mut out.persist,
        ) {
            Ok(last_new) => {
                assert!(
                    last_new >= prev_index && last_new <= self.log.last_index(),
                    "an accepted append from {from} ends at {last_new}, outside {prev_index}..={}",
                    self.log.last_index()
                );
                // Rule 5: commit up to what this message vouches for.
                let commit = leader_commit.min(last_new);
                if commit > self.commit {
                    self.commit = commit;
                }
                AppendResult::Ok(last_new)
            }
            Err(m) => AppendResult::Reject {
                rejected: prev_index,
                conflict_term: m.conflict_term,
                conflict_index: m.conflict_index,
            },
        };
        if touches_config || truncates {
            self.refresh_membership();
        }
        out.send(
            from,
            Message::AppendResponse {
                term: self.term,
                answers: term,
                result,
            },
        );
        self.apply_committed(out);
    }

    /// Any valid message from the current leader: follow it and stay quiet.
    pub(crate) fn heard_from_leader(&mut self, leader: NodeId, out: &mut Fx<S>) {
        // Election Safety (§5.2): at most one leader per term, so a leader never hears
        // from another one of its own term.
        assert!(
            !matches!(self.role, Role::Leader(_)),
            "Election Safety: {leader} leads {} and so does {}",
            self.term,
            self.cfg.id
        );
        assert!(
            self.leader.is_none_or(|l| l == leader),
            "Election Safety: {leader} and {:?} both lead {}",
            self.leader,
            self.term
        );
        if !matches!(self.role, Role::Follower) {
            // A candidate that hears from a leader of its term steps down (§5.2).
            self.role = Role::Follower;
        }
        self.leader = Some(leader);
        self.leader_contact = Some(self.now);
        self.reset_election_timer(out);
    }

    /// Leader side of AppendEntries responses: advance match/next, or backtrack.
    pub(crate) fn on_append_response(
        &mut self,
        from: NodeId,
        answers: Term,
        result: AppendResult,
        out: &mut Fx<S>,
    ) {
        if answers != self.term {
            // An answer to a message of an earlier term. The follower may have
            // answered it in our current term, but it says nothing about what we
            // sent in this one (a stale rejection would needlessly back us off).
            return;
        }
        let log = &self.log;
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        let Some(progress) = state.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        match result {
            AppendResult::Ok(last) => {
                // We sent it in this term, and a leader's log only grows (Leader
                // Append-Only): the follower cannot hold more of it than we do.
                assert!(
                    last <= log.last_index(),
                    "{from} acknowledged {last} of our term, past our last {}",
                    log.last_index()
                );
                if progress.acknowledge(last) {
                    self.advance_commit(out);
                    self.maybe_finish_transfer(from, out);
                }
            }
            AppendResult::Reject {
                rejected,
                conflict_term,
                conflict_index,
            } => {
                // Fast backtracking: if we hold the conflicting term, resume after our
                // last entry of it; otherwise skip the follower's whole term.
                let hint = match conflict_term.and_then(|t| log.last_index_of_term(t)) {
                    Some(i) => i.next(),
                    None => conflict_index,
                };
                if !progress.reject(rejected, hint.max(LogIndex(1))) {
                    return;
                }
                tracing::trace!(%from, %rejected, next = %progress.next_index(), "backtrack");
            }
        }
        self.send_appends(from, out);
    }

    /// §5.4.2: the leader commits the highest index stored on a majority of voters,
    /// but only if that entry is from its current term (Figure 8); earlier entries
    /// are then committed indirectly by the Log Matching Property.
    pub(crate) fn advance_commit(&mut self, out: &mut Fx<S>) {
        let Role::Leader(state) = &self.role else {
            return;
        };
        let id = self.cfg.id;
        // Our own match index: only what our storage confirmed, since our entries go
        // out while we write them (§10.2.1). So a committed entry is durable on a
        // majority, which is what lets its answer skip our in-flight writes
        // (`reply_early`).
        let own = state.durable.min(self.log.last_index());
        let matched = self.membership.voters.iter().map(|v| {
            if *v == id {
                own
            } else {
                state
                    .progress
                    .get(v)
                    .map_or(LogIndex(0), |p| p.match_index())
            }
        });
        let Some(candidate) = quorum_value(matched, self.membership.quorum()) else {
            return;
        };
        if candidate > self.commit && self.log.term_at(candidate) == Some(self.term) {
            self.commit = candidate;
            self.apply_committed(out);
        }
    }

    /// Leader heartbeat (thesis §3.4): every follower hears from us at least once per
    /// heartbeat interval; probes that went unanswered are retried.
    pub(crate) fn on_heartbeat_timer(&mut self, out: &mut Fx<S>) {
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        for (&peer, progress) in state.progress.iter_mut() {
            progress.acked_since_heartbeat = false;
            // An AppendEntries sent within the last interval already told the
            // follower we lead and what is committed: skip the heartbeat.
            let appended_lately = progress
                .append_sent_at
                .is_some_and(|t| self.now < t + self.cfg.heartbeat_interval);
            if appended_lately {
                continue;
            }
            out.send(
                peer,
                Message::Heartbeat {
                    term: self.term,
                    commit: self.commit.min(progress.match_index()),
                    read_ctx: state.read_ctx,
                },
            );
        }
        out.set_timer(RaftTimer::Heartbeat, self.now + self.cfg.heartbeat_interval);
    }

    /// Follower side of a heartbeat.
    pub(crate) fn on_heartbeat(
        &mut self,
        from: NodeId,
        term: Term,
        commit: LogIndex,
        read_ctx: u64,
        out: &mut Fx<S>,
    ) {
        if term < self.term {
            out.send(
                from,
                Message::HeartbeatResponse {
                    term: self.term,
                    answers: term,
                    read_ctx,
                },
            );
            return;
        }
        assert_eq!(
            term, self.term,
            "heartbeat of {term} handled in {}",
            self.term
        );
        self.heard_from_leader(from, out);
        // The leader only sends commit ≤ our match, so our log agrees up to it.
        let commit = commit.min(self.log.last_index());
        if commit > self.commit {
            self.commit = commit;
        }
        out.send(
            from,
            Message::HeartbeatResponse {
                term: self.term,
                answers: term,
                read_ctx,
            },
        );
        self.apply_committed(out);
    }

    /// Leader side of a heartbeat answer: liveness for check-quorum, a ReadIndex
    /// confirmation, and a chance to retry a stalled probe or snapshot chunk.
    pub(crate) fn on_heartbeat_response(
        &mut self,
        from: NodeId,
        answers: Term,
        read_ctx: u64,
        out: &mut Fx<S>,
    ) {
        if answers != self.term {
            // Thesis §6.4: only heartbeats sent after a read was registered confirm
            // it. Contexts restart with each leadership, so context 7 of an earlier
            // term — answered by a follower that has since reached our term — must
            // not confirm our read 7 (nor count toward check-quorum).
            return;
        }
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        let Some(progress) = state.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        progress.read_ctx = progress.read_ctx.max(read_ctx);
        let behind = progress.match_index() < self.log.last_index();
        match progress.mode {
            Mode::Probe { .. } => progress.unpause_probe(),
            Mode::Snapshot { .. } => {
                self.resend_snapshot_chunk(from, out);
                self.serve_reads(out);
                return;
            }
            Mode::Replicate { .. } if behind && !progress.acked_since_heartbeat => {
                // §5.3 "the leader retries AppendEntries RPCs indefinitely": an append
                // or its answer may have been lost, and pipelining has already moved
                // `next_index` past it, so nothing else would resend it (with a full
                // window, nothing would ever be sent again). An empty append at the
                // end of what was sent either acknowledges all of it or is rejected,
                // which falls back to probing and resending (as etcd raft does).
                let prev_index = progress.next_index().prev();
                match self.log.term_at(prev_index) {
                    Some(prev_term) => out.send(
                        from,
                        Message::Append {
                            term: self.term,
                            prev_index,
                            prev_term,
                            entries: Vec::new(),
                            commit: self.commit,
                        },
                    ),
                    None => progress.reset_to_probe(), // compacted: probe finds the snapshot
                }
            }
            Mode::Replicate { .. } => {}
        }
        self.serve_reads(out);
        if behind {
            self.send_appends(from, out);
        }
    }

    /// Replies a definite refusal to a client (nothing was appended).
    pub(crate) fn refuse(&self, waiter: Waiter, out: &mut Fx<S>) {
        out.reply(waiter.client, waiter.seq, Outcome::Unavailable);
    }
}
