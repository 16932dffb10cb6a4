//! The learner's catch-up: a replica that lags (it missed accepts, was down, or was
//! partitioned away) fetches chosen values from a peer; one that lags behind the
//! peer's truncation point gets a snapshot instead ("Paxos Made Live" §5.5,
//! snapshots; "Paxos Made Simple" §3: a new leader or lagging server learns
//! chosen commands). Also taking local snapshots and truncating the log.
//!
//! Catch-up is pulled: whenever a leader says slots below `decided` are chosen and
//! we cannot fill them from our own acceptances, we ask it (at most once per
//! heartbeat interval while no answer came); each answer asks for the next batch.
//! Only the answer to the outstanding request releases the next one — a `Chosen`
//! that starts at the slot we asked from, or a snapshot that covers it — so a
//! duplicated or late answer to an earlier request starts no second request chain.

use super::message::Message;
use super::node::{Fx, MultiPaxosNode, Role};
use crate::types::{Slot, Value};
use std::sync::Arc;
use synod_core::StateMachine;
use synod_core::{codec, NodeId, Sessions, Snapshot};

impl<S: StateMachine> MultiPaxosNode<S> {
    /// Asks `to` for chosen values from our first unchosen slot, unless a request is
    /// outstanding (not answered, and sent less than a heartbeat interval ago).
    pub(crate) fn request_catch_up(&mut self, to: NodeId, out: &mut Fx<S>) {
        let interval = self.cfg.heartbeat_interval;
        if self
            .catchup_asked
            .is_some_and(|(t, _)| self.now < t + interval)
        {
            return;
        }
        let first_unchosen = self.log.first_unchosen();
        self.catchup_asked = Some((self.now, first_unchosen));
        out.send(to, Message::CatchUp { first_unchosen });
    }

    /// An answer arrived: if `answers(asked)` says it answers the outstanding
    /// request, the next one may leave at once.
    fn catch_up_answered(&mut self, answers: impl FnOnce(Slot) -> bool) {
        if self.catchup_asked.is_some_and(|(_, asked)| answers(asked)) {
            self.catchup_asked = None;
        }
    }

    /// Serves a catch-up request from our chosen prefix, or from our snapshot when
    /// the asked slot was truncated from the log.
    pub(crate) fn on_catch_up(&mut self, from: NodeId, first_unchosen: Slot, out: &mut Fx<S>) {
        if first_unchosen >= self.log.first_unchosen() {
            return; // we know nothing more
        }
        if first_unchosen < self.log.start() {
            let Some((below, data)) = &self.snapshot else {
                panic!("log starts at {} without a snapshot", self.log.start());
            };
            tracing::debug!(to = %from, %below, "sending snapshot");
            let msg = Message::Snapshot {
                below: *below,
                data: Arc::clone(data),
            };
            out.send(from, msg);
            return;
        }
        let values = self
            .log
            .chosen_from(first_unchosen, self.cfg.catchup_batch_max);
        let msg = Message::Chosen {
            first: first_unchosen,
            values,
            decided: self.log.first_unchosen(),
        };
        out.send(from, msg);
    }

    /// Chosen values from a peer. A leader takes only slots below its takeover start:
    /// from there on it learns from its own ballot, and a peer that knows other
    /// values there has followed a newer leader (we will be told by a refusal).
    pub(crate) fn on_chosen(
        &mut self,
        from: NodeId,
        first: Slot,
        mut values: Vec<Value<S>>,
        decided: Slot,
        out: &mut Fx<S>,
    ) {
        self.catch_up_answered(|asked| first == asked);
        if let Role::Leader(st) = &self.role {
            let room = st.start.0.saturating_sub(first.0);
            values.truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        if self.log.learn_chosen(first, values, &mut out.persist) {
            self.learn_own_decided();
            self.execute_chosen(out);
        }
        let wanted = match &self.role {
            Role::Leader(st) => st.start.min(decided),
            _ => decided,
        };
        if self.log.first_unchosen() < wanted {
            self.request_catch_up(from, out);
        }
    }

    /// A leader's own ballot may have chosen slots above a gap it was still catching
    /// up (its takeover re-proposals, chosen before the peer's answer came): those
    /// were decided while `learn_in_ballot` could not reach them, and no later
    /// decision of ours names them again, so learn them once the gap is filled.
    /// (A follower needs no such step: every heartbeat repeats `decided`.)
    fn learn_own_decided(&mut self) {
        if let Role::Leader(st) = &self.role {
            self.log.learn_in_ballot(st.decided, self.promised);
        }
    }

    /// A snapshot covering every slot below `below`: install it if it takes us
    /// further than we executed, keep the log from `below` on, and ask for more.
    pub(crate) fn on_snapshot(
        &mut self,
        from: NodeId,
        below: Slot,
        data: Arc<Vec<u8>>,
        out: &mut Fx<S>,
    ) {
        self.catch_up_answered(|asked| below > asked);
        if below <= self.first_unexecuted {
            return;
        }
        let app = match Sessions::restore(&data) {
            Ok(app) => app,
            Err(e) => {
                tracing::warn!(error = %e, "discarding a corrupt snapshot");
                return;
            }
        };
        if matches!(&self.role, Role::Leader(st) if below > st.start) {
            // It covers slots of our own ballot we never executed: we cannot answer
            // their clients, and a peer past them may follow a newer leader.
            self.step_down(None, out);
        }
        tracing::debug!(%below, bytes = data.len(), "installing snapshot");
        out.persist.save_snapshot(Snapshot {
            meta: codec::encode(&below),
            data: data.to_vec(),
        });
        self.log.install_snapshot(below, &mut out.persist);
        self.app = app;
        self.first_unexecuted = below;
        self.snapshot = Some((below, data));
        self.learn_own_decided();
        self.execute_chosen(out);
        self.request_catch_up(from, out);
    }

    /// Takes a snapshot once `snapshot_threshold` slots were executed since the last
    /// one, and truncates the log up to `snapshot_trailing` slots behind it. Only
    /// executed — hence chosen — slots are ever truncated: an acceptance in a slot
    /// not known chosen is never dropped.
    pub(crate) fn maybe_snapshot(&mut self, out: &mut Fx<S>) {
        let last = self.snapshot.as_ref().map_or(Slot::FIRST, |(s, _)| *s);
        if self.first_unexecuted.0 < last.0 + self.cfg.snapshot_threshold {
            return;
        }
        let below = self.first_unexecuted;
        let data = self.app.snapshot();
        // Recovery needs the durable chosen prefix to reach the snapshot.
        self.log.save_frontier(&mut out.persist, true);
        out.persist.save_snapshot(Snapshot {
            meta: codec::encode(&below),
            data: data.clone(),
        });
        let keep_from = Slot(below.0.saturating_sub(self.cfg.snapshot_trailing).max(1));
        // Entries of slots this input recorded stay readable for its journal.
        let oldest = self.facts.oldest();
        let facts = &mut self.facts;
        self.log.compact_with(keep_from, &mut out.persist, |s, e| {
            if oldest.is_some_and(|o| s >= o) {
                facts.compacted(s, e)
            }
        });
        tracing::debug!(%below, bytes = data.len(), "snapshot taken");
        self.snapshot = Some((below, Arc::new(data)));
    }
}
