//! The clients' side of the wire: requests to nodes, replies back, timeouts; the
//! client state machines themselves are the workload's (`crate::workload`).

use super::spacetime::{CLIENTS, REPLY};
use super::{Event, Resp, Simulator};
use crate::protocol::SimProtocol;
use crate::workload::ClientStep;
use synod_core::{ClientReply, ClientRequest, Outcome};

impl<P: SimProtocol> Simulator<P> {
    pub(super) fn reply(&mut self, node: usize, reply: ClientReply<Resp<P>>) {
        tracing::trace!(node = %self.slots[node].id, client = %reply.client, seq = reply.seq, outcome = ?reply.outcome, "reply");
        if let Some(client) = self.workload.index_of(reply.client) {
            if self.across_split(node, self.home(client)) {
                self.stats.dropped_partition += 1;
                return;
            }
            let (d, _) = self.latency();
            let d = self.long_delay().map_or(d, |extra| d + extra);
            let arrives = self.now + d;
            self.trace_arrow(node + 1, CLIENTS, Some(arrives), || {
                match &reply.outcome {
                    Outcome::Done(_) => REPLY,
                    _ => "refusal",
                }
                .to_owned()
            });
            self.schedule(d, Event::ToClient { client, reply });
        }
    }

    pub(super) fn client_answer(&mut self, client: usize, reply: ClientReply<Resp<P>>) {
        self.stats.client_delivered += 1;
        let hint = match reply.outcome {
            Outcome::NotLeader { leader } => leader,
            _ => None,
        };
        if let Outcome::Done(response) = &reply.outcome {
            if self.workload.takes(client, reply.seq) {
                P::observe(&mut self.client_session[client], response);
            }
        }
        let members = &self.members;
        let answer = crate::protocol::answer_of::<P>(&reply.outcome, || {
            hint.and_then(|l| members.iter().position(|&m| m == l))
        });
        let ok_before = self.workload.stats.ok;
        let step = self.workload.on_answer(client, reply.seq, answer, self.now);
        if self.workload.stats.ok > ok_before {
            self.note_recovery(client);
        }
        if let Some(broken) = self.workload.take_violation() {
            self.violate(crate::sim::ViolationKind::Workload, broken);
        }
        self.client_step(client, step);
    }

    /// After an `ok`: if the leader was lost, the cluster serves again — counted only
    /// for an operation asked after the loss (an older one may have committed before
    /// it), and during the split only on the majority side.
    fn note_recovery(&mut self, client: usize) {
        let Some(lost) = self.leader_lost_at else {
            return;
        };
        let on_minority = self
            .sides
            .as_ref()
            .is_some_and(|sides| sides[self.home(client)]);
        if self.workload.stats.last_ok_invoked_at >= lost && !on_minority {
            self.leader_lost_at = None;
            self.stats
                .recoveries_ns
                .push((self.now - lost).as_nanos() as u64);
        }
    }

    pub(super) fn client_step(&mut self, client: usize, step: ClientStep) {
        match step {
            ClientStep::Send {
                node,
                seq,
                op,
                timeout,
            } => {
                let id = self.workload.client_id(client);
                let request = ClientRequest {
                    client: id,
                    seq,
                    op: P::request_as(&mut self.client_session[client], id, seq, op),
                };
                let (d, _) = self.latency();
                let across = self.across_split(node, self.home(client));
                let arrives = (!across).then_some(self.now + d);
                self.trace_arrow(CLIENTS, node + 1, arrives, || "request".to_owned());
                if across {
                    self.stats.dropped_partition += 1;
                } else {
                    self.schedule(d, Event::ToNode { node, request });
                }
                let deadline = self.now + timeout;
                self.client_deadline[client] = Some((deadline, self.workload.token(client)));
                if self.client_timeout_at[client].is_none() {
                    self.client_timeout_at[client] = Some(deadline);
                    self.schedule_at(deadline, Event::ClientTimeout { client });
                }
            }
            ClientStep::Sleep(d) if d.is_zero() => {
                // No think time: start the next operation now instead of queueing
                // a wake-up for the same instant.
                let token = self.workload.token(client);
                let step = self.workload.on_wake(client, token, self.now, self.phase);
                return self.client_step(client, step);
            }
            ClientStep::Sleep(d) => {
                let token = self.workload.token(client);
                self.schedule(d, Event::ClientWake { client, token });
            }
            ClientStep::Idle => {}
        }
        self.advance_phase();
    }

    pub(super) fn client_timeout(&mut self, client: usize) {
        self.client_timeout_at[client] = None;
        let Some((deadline, token)) = self.client_deadline[client] else {
            return;
        };
        if deadline > self.now {
            // A later attempt replaced the one this event was queued for.
            self.client_timeout_at[client] = Some(deadline);
            self.schedule_at(deadline, Event::ClientTimeout { client });
            return;
        }
        self.client_deadline[client] = None;
        // A stale token (the attempt was answered) makes this a no-op.
        let step = self.workload.on_wake(client, token, self.now, self.phase);
        self.client_step(client, step);
    }
}
