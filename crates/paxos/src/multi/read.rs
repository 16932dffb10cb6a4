//! Linearizable reads without writing to the log: a read round through a quorum.
//!
//! 1. A read that arrives at the leader records a read index: the leader's first
//!    slot not known chosen, but at least the end of the slots it re-proposed at
//!    takeover. Every write completed before the read arrived is below it: writes
//!    this leader answered are chosen (below `decided`), and writes an earlier
//!    leader answered were chosen before our phase 1, which found them (below the
//!    takeover start, or re-proposed below the takeover end).
//! 2. The leader confirms its ballot: it sends a heartbeat numbered for this read to
//!    every acceptor, and the read proceeds once `n - phase1_quorum + 1` of them
//!    (counting itself) acknowledged a heartbeat numbered at least that — each
//!    acknowledgement says the acceptor promised nothing above our ballot. That many
//!    acceptors intersect every phase-1 quorum, so no newer leader had completed
//!    phase 1 when the read arrived, hence none had completed a write either.
//! 3. It answers from the state machine once it has executed up to the read index.
//!
//! No clock is trusted, so clock drift cannot break these reads (there are no
//! leases). The cost is one heartbeat round per read; reads never touch the disk.

use super::node::{Fx, MultiPaxosNode, PendingRead, Response, Role, Waiter};
use synod_core::{Outcome, StateMachine};

impl<S: StateMachine> MultiPaxosNode<S> {
    /// Starts a read of `key` for `waiter` (the caller checked we lead).
    pub(crate) fn read(&mut self, waiter: Waiter, query: S::Query, out: &mut Fx<S>) {
        let Role::Leader(st) = &mut self.role else {
            unreachable!("only a leader reads");
        };
        st.read_ctx += 1;
        let ctx = st.read_ctx;
        let index = st.decided.max(st.takeover_end);
        st.reads.push_back(PendingRead {
            ctx,
            index,
            waiter,
            query,
        });
        self.send_heartbeats(Some(ctx), out);
        self.serve_reads(out);
    }

    /// Answers, in arrival order, every read whose round is confirmed and whose
    /// index is executed.
    pub(crate) fn serve_reads(&mut self, out: &mut Fx<S>) {
        let Role::Leader(st) = &mut self.role else {
            return;
        };
        if st.reads.is_empty() {
            return;
        }
        let need = self.cfg.confirm_quorum();
        let mut acked: Vec<u64> = st.peers.values().map(|p| p.read_ctx).collect();
        acked.push(u64::MAX); // we confirm our own ballot
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = acked[need - 1];
        while let Some(read) = st.reads.front() {
            if read.ctx > confirmed || read.index > self.first_unexecuted {
                break;
            }
            let read = st.reads.pop_front().expect("front exists");
            let value = self.app.app().query(&read.query);
            let answer = Outcome::Done(Response::QueryOutput(value));
            read.waiter.answer(answer, out);
        }
    }
}
