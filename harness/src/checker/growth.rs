//! In a partition with appends, a string only grows until a reset.
//!
//! `append` extends the state; only a *reset* (`put`, `delete`, `cas`)
//! can replace it. So while no reset can run before an ok `get` g returns,
//! every state from now until g is the current state T plus appended
//! suffixes, and g (reading S) can only ever be legal if T is a prefix of S.
//! A configuration where some candidate get fails that test is dead.
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
//! O(1) amortised per lift and unlift.

use super::model::Step;
use super::search::PartOp;

/// Marks an op that is not a reset.
const NOT_RESET: u32 = u32::MAX;

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

    /// Whether some unplaced reset was invoked before time `t`.
    #[inline]
    pub(crate) fn reset_before(&self, ops: &[PartOp], t: u64) -> bool {
        self.resets
            .get(self.first)
            .is_some_and(|&r| ops[r as usize].call < t)
    }

    fn position(&self, i: u32) -> Option<usize> {
        if !self.on {
            return None;
        }
        let p = self.pos[i as usize];
        (p != NOT_RESET).then_some(p as usize)
    }
}
