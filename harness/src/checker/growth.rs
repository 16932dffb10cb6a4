//! In a partition with appends, a string only grows until a reset.
//!
//! `append` extends the state; only a *reset* (`put`, `delete`, `cas`)
//! can replace it. So the state an ok `get` g (reading S) sees is either
//! the current state T plus appended suffixes, if no reset runs before g,
//! or the string the last reset before g sets plus appended suffixes. g can
//! only ever be legal if T is a prefix of S or some reset that can still
//! run before g sets a prefix of S (a `delete` sets "", a prefix of
//! everything; a `cas` to n sets n, and needing its expected value first
//! only makes it rarer). A configuration where some get fails both tests
//! is dead.
//!
//! This is what keeps append-heavy histories tractable: appends are never
//! "invisible" (each makes a new string), so without it the search tries
//! every order of every set of concurrent appends before the get that
//! refutes them — k! orders for k concurrent appends, each a new string.
//! With it, an append that does not extend towards what the pending gets
//! read is cut as soon as it is lifted.
//!
//! A reset "can run before g" if it is unplaced and invoked before g
//! returns (an op invoked after g's return follows g in every
//! linearisation). Ops are in call order, so the unplaced reset invoked
//! first is the first unplaced one in index order; it is kept up to date in
//! O(1) amortised per lift and unlift, and the resets that can run before
//! g are scanned from it. Ok resets invoked before the search frontier are
//! placed, so the scan covers about the concurrent ones; an info reset
//! never placed keeps it long, so past `RESETS_SCANNED_MAX` the scan gives
//! up and assumes a reset can lead to S (the test is then void, as it was
//! for any reset before).
//!
//! **Unobservable strings.** When the current string T is a prefix of no
//! value that an unplaced get or cas invoked before some unplaced ok reset
//! r returns needs, no op can observe T or any extension of it: every op
//! invoked after r returns follows r, and the ones before it can never be
//! legal on T plus appends. Then every continuation is appends until the
//! first reset, whatever T is — so two configurations with the same placed
//! set and such strings have the same fate, and the memo keys them both
//! with `UNOBSERVABLE` instead of the string (`Search::memo_state`). The
//! orders in which appends overwritten by a later put were placed then
//! count once, not k! times.
//!
//! Without these, a history mixing a few puts into the appends
//! (Porcupine's kv files: about one op in ten is a put) lost the cut
//! whenever a put was concurrent with a get, and a 2,000-op 50-client
//! history ran out a 20 s timeout.

use super::model::Step;
use super::search::{PartOp, INFINITY};
use super::states::States;

/// Marks an op that is not a reset.
const NOT_RESET: u32 = u32::MAX;
/// Reset positions `reset_may_lead` looks at before assuming one may, and
/// `reset_return` before giving up.
const RESETS_SCANNED_MAX: usize = 64;
/// The memo's stand-in for a string no unplaced op can observe (no state
/// id reaches it: ids are dense, and a partition has < 2^31 ops).
pub(crate) const UNOBSERVABLE: u32 = u32::MAX - 1;

/// Which resets are still unplaced.
pub(crate) struct Growth {
    /// Whether the partition has appends (otherwise the test is void).
    on: bool,
    /// Partition indices of resets, ascending (so in call order).
    resets: Vec<u32>,
    /// Position in `resets` of each op, or `NOT_RESET`.
    pos: Vec<u32>,
    /// Per position in `resets`: placed.
    placed: Vec<bool>,
    /// Position of the first unplaced reset; `resets.len()` if none.
    first: usize,
}

impl Growth {
    /// Nothing placed yet. `ops` must be sorted by call time.
    pub(crate) fn new(ops: &[PartOp]) -> Self {
        let on = ops.iter().any(|o| matches!(o.step, Step::Append(_)));
        let mut g = Growth {
            on,
            resets: Vec::new(),
            pos: Vec::new(),
            placed: Vec::new(),
            first: 0,
        };
        if !on {
            return g;
        }
        debug_assert!(ops.windows(2).all(|w| w[0].call <= w[1].call));
        g.pos = vec![NOT_RESET; ops.len()];
        for (i, o) in (0u32..).zip(ops) {
            if matches!(o.step, Step::Write(_) | Step::Cas(..)) {
                g.pos[i as usize] = g.resets.len() as u32;
                g.resets.push(i);
            }
        }
        g.placed = vec![false; g.resets.len()];
        g
    }

    /// Whether the prefix test applies at all.
    #[inline]
    pub(crate) fn on(&self) -> bool {
        self.on
    }

    /// Op `i` was placed.
    #[inline]
    pub(crate) fn take(&mut self, i: u32) {
        let Some(p) = self.position(i) else { return };
        debug_assert!(!self.placed[p]);
        self.placed[p] = true;
        while self.first < self.placed.len() && self.placed[self.first] {
            self.first += 1;
        }
    }

    /// Op `i` was unplaced.
    #[inline]
    pub(crate) fn put_back(&mut self, i: u32) {
        let Some(p) = self.position(i) else { return };
        debug_assert!(self.placed[p]);
        self.placed[p] = false;
        self.first = self.first.min(p);
    }

    /// Whether some unplaced reset invoked before time `t` may set a
    /// prefix of string `v` (see the module docs; true past the scan
    /// bound).
    pub(crate) fn reset_may_lead(
        &self,
        ops: &[PartOp],
        t: u64,
        v: u32,
        states: &mut States<'_>,
    ) -> bool {
        for (seen, p) in (self.first..self.resets.len()).enumerate() {
            let reset = &ops[self.resets[p] as usize];
            if reset.call >= t {
                return false;
            }
            if seen == RESETS_SCANNED_MAX {
                return true;
            }
            let set = match reset.step {
                Step::Write(x) | Step::Cas(_, x) => x,
                Step::Read(_) | Step::Append(_) => unreachable!("not a reset"),
            };
            if !self.placed[p] && states.is_prefix(set, v) {
                return true;
            }
        }
        false
    }

    /// The earliest return of an unplaced ok reset other than `except`, or
    /// `INFINITY` if none is found within the scan bound. Resets are in
    /// call order and return after they are invoked, so the scan stops at
    /// the first one invoked after the best return so far.
    pub(crate) fn reset_return(&self, ops: &[PartOp], except: u32) -> u64 {
        let mut best = INFINITY;
        for p in (self.first..self.resets.len()).take(RESETS_SCANNED_MAX) {
            let r = self.resets[p];
            let reset = &ops[r as usize];
            if reset.call > best {
                break;
            }
            if !self.placed[p] && r != except {
                best = best.min(reset.ret);
            }
        }
        best
    }

    fn position(&self, i: u32) -> Option<usize> {
        if !self.on {
            return None;
        }
        let p = self.pos[i as usize];
        (p != NOT_RESET).then_some(p as usize)
    }
}
