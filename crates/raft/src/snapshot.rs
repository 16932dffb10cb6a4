//! Log compaction and InstallSnapshot (§7).
//!
//! Each node snapshots its state machine on its own once `snapshot_threshold`
//! entries were applied since the last snapshot, then drops the log up to
//! `snapshot_trailing` entries behind it. A leader whose follower needs compacted
//! entries streams its latest snapshot in `snapshot_chunk_bytes` chunks, one chunk
//! in flight at a time; a lost chunk is resent on the next heartbeat answer.

use crate::message::{Message, SnapshotMeta};
use crate::node::{Fx, Incoming, RaftNode, Role};
use crate::progress::Mode;
use crate::types::{LogIndex, Payload, Term};
use std::sync::Arc;
use synod_core::{codec, NodeId, Sessions, Snapshot, StateMachine};

impl<S: StateMachine> RaftNode<S> {
    /// Takes a snapshot if enough entries were applied since the last one.
    pub(crate) fn maybe_snapshot(&mut self, out: &mut Fx<S>) {
        let last = self.snapshot.as_ref().map_or(LogIndex(0), |(m, _)| m.index);
        if self.applied.0 < last.0 + self.cfg.snapshot_threshold {
            return;
        }
        let index = self.applied;
        // Only applied, hence committed, state goes into a snapshot.
        assert!(
            index <= self.commit && index > last,
            "snapshot at {index}: commit {}, previous snapshot {last}",
            self.commit
        );
        let term = self.log.term_at(index).expect("applied entries are held");
        let meta = SnapshotMeta {
            index,
            term,
            membership: self.membership_at(index),
        };
        let data = self.app.snapshot();
        out.persist.save_snapshot(Snapshot {
            meta: codec::encode(&meta),
            data: data.clone(),
        });
        let keep_from = LogIndex(index.0.saturating_sub(self.cfg.snapshot_trailing));
        if keep_from > self.log.prev().index {
            self.log.compact_to(keep_from, &mut out.persist);
        }
        tracing::debug!(%index, bytes = data.len(), "snapshot taken");
        self.snapshot = Some((meta, Arc::new(data)));
    }

    /// The configuration in effect at `index`: the latest configuration entry at or
    /// below it, else the previous snapshot's, else the initial one.
    pub(crate) fn membership_at(&self, index: LogIndex) -> crate::types::Membership {
        let mut i = index;
        while i >= self.log.first_index() {
            if let Some(Payload::Config(m)) = self.log.entry(i).map(|e| &e.payload) {
                return m.clone();
            }
            i = i.prev();
        }
        self.snapshot
            .as_ref()
            .map(|(m, _)| m.membership.clone())
            .unwrap_or_else(|| self.cfg.initial.clone())
    }

    /// Starts streaming our snapshot to `peer`.
    pub(crate) fn send_snapshot(&mut self, peer: NodeId, out: &mut Fx<S>) {
        let Some((meta, _)) = &self.snapshot else {
            panic!("log compacted without a snapshot");
        };
        let index = meta.index;
        if let Role::Leader(state) = &mut self.role {
            if let Some(p) = state.progress.get_mut(&peer) {
                tracing::debug!(%peer, %index, "sending snapshot");
                p.start_snapshot(index);
            }
        }
        self.resend_snapshot_chunk(peer, out);
    }

    /// Sends the chunk at the follower's acknowledged offset.
    pub(crate) fn resend_snapshot_chunk(&mut self, peer: NodeId, out: &mut Fx<S>) {
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        let Some((meta, data)) = &self.snapshot else {
            return;
        };
        let Some(progress) = state.progress.get_mut(&peer) else {
            return;
        };
        let Mode::Snapshot { index, offset } = progress.mode else {
            return;
        };
        if index != meta.index {
            // We took a newer snapshot meanwhile: restart with it.
            progress.start_snapshot(meta.index);
        }
        let offset = if index == meta.index { offset } else { 0 };
        let start = (offset as usize).min(data.len());
        let end = (start + self.cfg.snapshot_chunk_bytes).min(data.len());
        out.send(
            peer,
            Message::InstallSnapshot {
                term: self.term,
                meta: meta.clone(),
                offset,
                data: Arc::new(data[start..end].to_vec()),
                done: end == data.len(),
            },
        );
    }

    /// InstallSnapshot receiver (Figure 13).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        term: Term,
        meta: SnapshotMeta,
        offset: u64,
        data: &[u8],
        done: bool,
        out: &mut Fx<S>,
    ) {
        if term < self.term {
            out.send(
                from,
                Message::SnapshotResponse {
                    term: self.term,
                    answers: term,
                    next_offset: 0,
                    installed: None,
                },
            );
            return;
        }
        assert_eq!(
            term, self.term,
            "snapshot of {term} handled in {}",
            self.term
        );
        self.heard_from_leader(from, out);
        if meta.index <= self.commit {
            // Already have everything it covers (a duplicate or a late chunk).
            self.incoming = None;
            out.send(
                from,
                Message::SnapshotResponse {
                    term: self.term,
                    answers: term,
                    next_offset: 0,
                    installed: Some(self.commit),
                },
            );
            return;
        }
        // Figure 13 rules 2–4: a chunk at offset 0 starts a new snapshot; others must
        // continue the one we are assembling.
        if offset == 0 {
            self.incoming = Some(Incoming {
                meta: meta.clone(),
                data: Vec::new(),
            });
        }
        let expected = match &mut self.incoming {
            Some(inc) if inc.meta == meta && inc.data.len() as u64 == offset => {
                inc.data.extend_from_slice(data);
                inc.data.len() as u64
            }
            Some(inc) if inc.meta == meta => inc.data.len() as u64,
            _ => 0,
        };
        if !(done && expected == offset + data.len() as u64) {
            out.send(
                from,
                Message::SnapshotResponse {
                    term: self.term,
                    answers: term,
                    next_offset: expected,
                    installed: None,
                },
            );
            return;
        }
        let inc = self.incoming.take().expect("assembled above");
        self.install_snapshot(inc, out);
        out.send(
            from,
            Message::SnapshotResponse {
                term: self.term,
                answers: term,
                next_offset: 0,
                installed: Some(self.commit),
            },
        );
    }

    /// Figure 13 rules 5–8: save the snapshot, keep a matching log suffix or discard
    /// the log, reset the state machine from the snapshot.
    fn install_snapshot(&mut self, inc: Incoming, out: &mut Fx<S>) {
        let Incoming { meta, data } = inc;
        // A snapshot replaces only uncommitted state: it never rolls committed
        // entries back (the caller answered the ones it covers already).
        assert!(
            meta.index > self.commit,
            "installing a snapshot at {} over commit {}",
            meta.index,
            self.commit
        );
        let app = match Sessions::restore(&data) {
            Ok(app) => app,
            Err(e) => {
                tracing::warn!(error = %e, "discarding a corrupt snapshot");
                return;
            }
        };
        tracing::debug!(index = %meta.index, bytes = data.len(), "installing snapshot");
        out.persist.save_snapshot(Snapshot {
            meta: codec::encode(&meta),
            data: data.clone(),
        });
        self.log
            .restart_at_snapshot(meta.index, meta.term, &mut out.persist);
        self.app = app;
        self.commit = meta.index;
        self.applied = meta.index;
        self.snapshot = Some((meta, Arc::new(data)));
        self.refresh_membership();
    }

    /// Leader side of a snapshot answer.
    pub(crate) fn on_snapshot_response(
        &mut self,
        from: NodeId,
        answers: Term,
        next_offset: u64,
        installed: Option<LogIndex>,
        out: &mut Fx<S>,
    ) {
        if answers != self.term {
            return; // answers a chunk of an earlier term (see `on_append_response`)
        }
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        let Some(progress) = state.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        match installed {
            Some(index) => {
                // What the follower holds committed, we hold (Leader Completeness).
                assert!(
                    index <= self.log.last_index(),
                    "{from} installed up to {index}, past our last {}",
                    self.log.last_index()
                );
                progress.snapshot_installed(index);
                self.send_appends(from, out);
            }
            None => {
                if let Mode::Snapshot { offset, .. } = &mut progress.mode {
                    *offset = next_offset;
                }
                self.resend_snapshot_chunk(from, out);
            }
        }
    }
}
