//! Who observes and who produces each value, among the ops not yet placed.
//!
//! A read of v, or a cas expecting v, *observes* v; a write of v or a cas
//! to v *produces* it. Counting these over the unplaced ops gives two sound
//! facts the search uses at every configuration:
//! - **Starvation**: if an unplaced ok op observes v, v is not the current
//!   state, and no unplaced op produces v, that op can never become legal:
//!   the configuration is dead.
//! - **Invisibility**: a write of v with no unplaced observer of v can only
//!   be followed by another write (or nothing), so which subset of such
//!   writes goes first never matters; the search places them in bulk.
//!
//! Both need every value change to come from writes and cas. An `append`
//! makes new strings, so partitions with appends turn tracking off; there
//! `prepare` still drops the info ops whose effect no value read shows.

use std::collections::HashMap;

use super::history::Value;
use super::intern::Interner;
use super::model::Step;
use super::search::{Class, PartOp};

/// "No slot": a value nobody observes.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// What `prepare` learnt about a partition.
pub(crate) struct Prep {
    /// Whether the counts are sound (no appends).
    pub track: bool,
    /// Number of observed values.
    pub slots: usize,
    /// Slot of the initial state.
    pub init_slot: u32,
}

/// Assigns observed values dense slots, classifies ops, and drops info
/// ops whose effect nobody can observe (taking effect or not is the same).
pub(crate) fn prepare(ops: &mut Vec<PartOp>, init: u32, values: &Interner) -> Prep {
    let track = !ops.iter().any(|o| matches!(o.step, Step::Append(_)));
    let mut slot_of: HashMap<u32, u32> = HashMap::new();
    for o in ops.iter() {
        if let Step::Read(v) | Step::Cas(v, _) = o.step {
            let next = slot_of.len() as u32;
            slot_of.entry(v).or_insert(next);
        }
    }
    let slot = |v: u32| slot_of.get(&v).copied().unwrap_or(NO_SLOT);
    for o in ops.iter_mut() {
        (o.class, o.obs, o.prod) = match o.step {
            Step::Read(v) => (Class::Read, slot(v), NO_SLOT),
            Step::Write(v) if track => (Class::Write, NO_SLOT, slot(v)),
            Step::Write(v) => (Class::Other, NO_SLOT, slot(v)),
            Step::Cas(e, n) => (Class::Other, slot(e), slot(n)),
            Step::Append(_) => (Class::Other, NO_SLOT, NO_SLOT),
        };
    }
    // An info write or cas to a value nobody observes can be dropped: in any
    // linearisation using it, the op after it must be a write (legal in any
    // state), so removing it changes no state that anyone sees.
    let unseen =
        |o: &PartOp| track && o.prod == NO_SLOT && matches!(o.step, Step::Write(_) | Step::Cas(..));
    ops.retain(|o| !(o.is_info() && unseen(o)));
    if !track {
        drop_unseen_with_appends(ops, values);
    }
    Prep {
        track,
        slots: slot_of.len(),
        init_slot: slot(init),
    }
}

/// Drops the info ops of a partition with appends whose effect no observed
/// value shows: a write or cas whose new value no read or cas expectation
/// starts with, an append whose piece none contains.
///
/// A state is a string that appends grow until the next write or successful
/// cas. In a linearisation using such an op w, no observer lies between w and
/// the next write: it would see a string starting with w's value, or holding
/// w's piece. So between them there are only appends (legal in every state)
/// and no cas (a cas there would expect such a string); after that write
/// every state is what it is without w. Removing w keeps the linearisation
/// valid, and an info op need not take effect. Each drop's condition is about
/// the history's values alone, so dropping several at once is sound too.
fn drop_unseen_with_appends(ops: &mut Vec<PartOp>, values: &Interner) {
    let text = |id: u32| match values.get(id) {
        Value::Str(s) => Some(s.as_str()),
        _ => None,
    };
    let observed: Option<Vec<&str>> = ops
        .iter()
        .filter_map(|o| match o.step {
            Step::Read(v) | Step::Cas(v, _) => Some(v),
            _ => None,
        })
        .collect::<std::collections::HashSet<u32>>()
        .into_iter()
        .map(text)
        .collect();
    // Non-string values never come with appends (`model::validate`); where
    // one does anyway, nothing is dropped rather than reason about it.
    let Some(observed) = observed else { return };
    let unseen = |o: &PartOp| match o.step {
        Step::Write(v) | Step::Cas(_, v) => {
            text(v).is_some_and(|v| !observed.iter().any(|x| x.starts_with(v)))
        }
        Step::Append(a) => text(a).is_some_and(|a| !observed.iter().any(|x| x.contains(a))),
        Step::Read(_) => false,
    };
    ops.retain(|o| !(o.is_info() && unseen(o)));
}

/// Observer and producer counts over unplaced ops.
pub(crate) struct Tracker {
    on: bool,
    /// Unplaced ok observers per slot: these must be satisfied.
    obs_ok: Vec<u32>,
    /// Unplaced observers per slot, info included: these might be.
    obs_all: Vec<u32>,
    /// Unplaced producers per slot, info included.
    prod: Vec<u32>,
    /// Slots with ok observers and no producers.
    starved: usize,
}

impl Tracker {
    /// Counts over all ops (nothing placed yet).
    pub(crate) fn new(ops: &[PartOp], prep: &Prep) -> Self {
        let n = if prep.track { prep.slots } else { 0 };
        let mut t = Tracker {
            on: prep.track,
            obs_ok: vec![0; n],
            obs_all: vec![0; n],
            prod: vec![0; n],
            starved: 0,
        };
        if t.on {
            for op in ops {
                t.add(op, 1);
            }
        }
        t
    }

    /// Op `op` was placed.
    #[inline]
    pub(crate) fn take(&mut self, op: &PartOp) {
        if self.on {
            self.add(op, -1);
        }
    }

    /// Op `op` was unplaced.
    #[inline]
    pub(crate) fn put_back(&mut self, op: &PartOp) {
        if self.on {
            self.add(op, 1);
        }
    }

    fn add(&mut self, op: &PartOp, d: i32) {
        for (s, is_obs) in [(op.obs, true), (op.prod, false)] {
            if s == NO_SLOT {
                continue;
            }
            let s = s as usize;
            let before = self.is_starved(s);
            let bump = |c: &mut u32| *c = c.wrapping_add_signed(d);
            if is_obs {
                bump(&mut self.obs_all[s]);
                if !op.is_info() {
                    bump(&mut self.obs_ok[s]);
                }
            } else {
                bump(&mut self.prod[s]);
            }
            let after = self.is_starved(s);
            self.starved = self.starved + usize::from(after) - usize::from(before);
        }
    }

    fn is_starved(&self, s: usize) -> bool {
        self.obs_ok[s] > 0 && self.prod[s] == 0
    }

    /// Whether some ok op waits for a value that can no longer occur. The
    /// current state's value may be starved: its observers can still run.
    pub(crate) fn starving(&self, state_slot: u32) -> bool {
        if !self.on || self.starved == 0 {
            return false;
        }
        let current = state_slot != NO_SLOT && self.is_starved(state_slot as usize);
        self.starved > usize::from(current)
    }

    /// Whether a write's value has no unplaced observer.
    #[inline]
    pub(crate) fn invisible(&self, op: &PartOp) -> bool {
        self.on
            && op.class == Class::Write
            && (op.prod == NO_SLOT || self.obs_all[op.prod as usize] == 0)
    }
}
