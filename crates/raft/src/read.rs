//! Linearizable reads without writing to the log: ReadIndex (thesis §6.4).
//!
//! 1. The leader records its commit index as the read index — but not before an
//!    entry of its own term is committed (until then it may not know the latest
//!    commit index), so the read index is at least the term's first entry.
//! 2. It confirms it is still leader by a heartbeat round: the read completes once
//!    a majority of voters acknowledged a heartbeat sent after the read arrived.
//! 3. It waits until the state machine has applied the read index, then answers
//!    from the state machine.
//!
//! Reads that arrive together share one heartbeat round. No clock is trusted, so
//! clock drift cannot break these reads (unlike lease reads, which we do not offer).

use crate::message::Message;
use crate::node::Response;
use crate::node::{Fx, PendingRead, RaftNode, Role, Waiter};
use crate::quorum::quorum_value;
use synod_core::{Outcome, StateMachine};

impl<S: StateMachine> RaftNode<S> {
    /// Starts a ReadIndex read of `query` for `waiter`.
    pub(crate) fn read_index(&mut self, waiter: Waiter, query: S::Query, out: &mut Fx<S>) {
        let Role::Leader(state) = &mut self.role else {
            unreachable!("only a leader takes requests (`take_request`)");
        };
        state.read_ctx += 1;
        let ctx = state.read_ctx;
        // Rounds are answered in order: each read's context is newer than the last.
        assert!(
            state.reads.back().is_none_or(|r| r.ctx < ctx),
            "read contexts out of order at {ctx}"
        );
        let index = self.commit.max(state.term_start);
        state.reads.push_back(PendingRead {
            ctx,
            index,
            waiter,
            query,
        });
        for (&peer, progress) in &state.progress {
            out.send(
                peer,
                Message::Heartbeat {
                    term: self.term,
                    commit: self.commit.min(progress.match_index()),
                    read_ctx: ctx,
                },
            );
        }
        self.serve_reads(out);
    }

    /// Answers every read whose round is confirmed by a majority and whose index is
    /// applied. Reads are answered in arrival order.
    pub(crate) fn serve_reads(&mut self, out: &mut Fx<S>) {
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        if state.reads.is_empty() {
            return;
        }
        let id = self.cfg.id;
        // The highest context confirmed by a majority of voters (we confirm our own).
        let acked = self.membership.voters.iter().map(|v| {
            if *v == id {
                u64::MAX
            } else {
                state.progress.get(v).map_or(0, |p| p.read_ctx)
            }
        });
        let confirmed = quorum_value(acked, self.membership.quorum()).unwrap_or(0);
        while let Some(read) = state.reads.front() {
            if read.ctx > confirmed || read.index > self.applied {
                break;
            }
            let read = state.reads.pop_front().expect("front exists");
            // §6.4: the answer reflects every write committed before the read arrived,
            // which needs an entry of this term committed and applied.
            assert!(
                self.applied >= state.term_start && self.applied <= self.commit,
                "read {} answered at applied {} (term start {}, commit {})",
                read.ctx,
                self.applied,
                state.term_start,
                self.commit
            );
            let answer = self.app.app().query(&read.query);
            // Applied state is committed, hence durable on a majority.
            out.reply_early(
                read.waiter.client,
                read.waiter.seq,
                Outcome::Done(Response::QueryOutput(answer)),
            );
        }
    }
}
