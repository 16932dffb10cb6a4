//! What one key holds in each mode, and the rules that write and merge it.
//!
//! A replica keeps one [`Causality`] value per key. The node's code is the same in
//! every mode (coordinating, replicating, read repair, anti-entropy all call
//! [`Causality::write`] and [`Causality::merge`]); only these rules differ:
//!
//! * [`Dvv`] — a **dotted version vector set** (Preguiça, Baquero, Almeida et al.,
//!   "Dotted Version Vectors", 2010/2012; Riak's `dvvset`): per replica, a counter and
//!   the values of its most recent, still-live events. A write replaces exactly the
//!   values its context covers; concurrent writes stay as siblings, and at most one
//!   sibling per concurrent writer remains.
//! * [`Vv`] — one version vector for the whole sibling set, by replica id (Riak before
//!   DVVs): it never loses a write, but cannot tell which siblings a context covered
//!   unless it covers them all, so siblings pile up ("sibling explosion").
//! * [`Lww`] — a version number and the coordinating replica's timestamp: the higher
//!   `(version, timestamp, replica)` wins, the other write is silently lost.
//!
//! Every `merge` is commutative, associative and idempotent, so replicas that have
//! merged the same states hold identical values whatever the order
//! (`merge_is_a_join_in_every_mode`).

use crate::clock::VersionVector;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;
use synod_core::{NodeId, Time};

/// A value as stored: `None` is a delete's tombstone.
pub type Stored = Option<String>;

/// The per-key state of one mode.
pub trait Causality:
    Clone
    + Debug
    + Default
    + PartialEq
    + Eq
    + Hash
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// What a client carries from a read to its next write of the key.
    type Context: Clone
        + Debug
        + Default
        + PartialEq
        + Eq
        + Hash
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;

    /// The mode's name (`dvv`, `vv`, `lww`).
    const MODE: &'static str;

    /// A client's write of `value` (`None`: a delete) with the `context` it read,
    /// coordinated by `replica` whose clock reads `now`, its event numbered above
    /// `floor` (see [`counter_of`](Self::counter_of)): the events a collected
    /// tombstone replaced may live on in clients' contexts, and a new event numbered
    /// like one of them would be taken as replaced too.
    fn write_above(
        &mut self,
        context: &Self::Context,
        value: Stored,
        replica: NodeId,
        now: Time,
        floor: u64,
    );

    /// [`write_above`](Self::write_above) with no floor: a replica that never
    /// collected a tombstone.
    fn write(&mut self, context: &Self::Context, value: Stored, replica: NodeId, now: Time) {
        self.write_above(context, value, replica, now, 0);
    }

    /// Folds in another replica's state of the same key.
    fn merge(&mut self, other: &Self);

    /// The context a client reading this state gets.
    fn context(&self) -> Self::Context;

    /// Every stored value, tombstones included.
    fn stored(&self) -> Vec<&Stored>;

    /// The highest event number of `replica` this state knows (DVV and VV: its
    /// counter; LWW: the version, which all replicas share). A replica that collects
    /// a tombstone keeps the highest of these it dropped, so the events it numbers
    /// for the key afterwards are newer than any a lingering copy remembers.
    fn counter_of(&self, replica: NodeId) -> u64;

    /// `true` if merging `other` in would change nothing (this state has seen all
    /// of it).
    fn descends(&self, other: &Self) -> bool {
        let mut merged = self.clone();
        merged.merge(other);
        &merged == self
    }

    /// The live values — what a read returns (empty: missing or deleted).
    fn siblings(&self) -> Vec<String> {
        self.stored().into_iter().flatten().cloned().collect()
    }

    /// `true` if nothing live is left: the key was deleted (or never written).
    fn is_deleted(&self) -> bool {
        self.stored().iter().all(|v| v.is_none())
    }
}

/// One replica's entry of a [`Dvv`]: its counter for the key and the values of its
/// latest events still live, newest first — `values[i]` is the event numbered
/// `counter - i`; events up to `counter - values.len()` were replaced.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DvvEntry {
    /// The replica whose events these are.
    pub replica: NodeId,
    /// Its events for this key so far.
    pub counter: u64,
    /// The live ones, newest first.
    pub values: Vec<Stored>,
}

impl DvvEntry {
    /// Events up to this number are known and replaced.
    fn floor(&self) -> u64 {
        self.counter - self.values.len() as u64
    }
}

/// A dotted version vector set: one [`DvvEntry`] per replica, in replica order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dvv {
    entries: Vec<DvvEntry>,
}

impl Dvv {
    /// The entries, in replica order.
    pub fn entries(&self) -> &[DvvEntry] {
        &self.entries
    }

    fn entry(&mut self, replica: NodeId) -> &mut DvvEntry {
        let i = match self.entries.binary_search_by_key(&replica, |e| e.replica) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(
                    i,
                    DvvEntry {
                        replica,
                        counter: 0,
                        values: Vec::new(),
                    },
                );
                i
            }
        };
        &mut self.entries[i]
    }
}

impl Causality for Dvv {
    type Context = VersionVector;
    const MODE: &'static str = "dvv";

    fn write_above(
        &mut self,
        context: &VersionVector,
        value: Stored,
        replica: NodeId,
        _now: Time,
        floor: u64,
    ) {
        // An entry's live values are its latest events, numbered up to its counter:
        // with live values of its own the counter cannot jump. None of them can be
        // from before a collection of this key (that tombstone had replaced them all,
        // and older states are refused), so the events after them are new already.
        let own = self.entry(replica);
        if own.values.is_empty() {
            own.counter = own.counter.max(floor);
        }
        // Drop what the context covers (the client saw it and replaces it); learn what
        // the context knows that this replica did not (a zero counter knows nothing).
        for (r, seen) in context.iter() {
            if seen > 0 {
                self.entry(r);
            }
        }
        for e in &mut self.entries {
            let seen = context.get(e.replica);
            let live = e.counter.saturating_sub(seen).min(e.values.len() as u64);
            e.values.truncate(live as usize);
            e.counter = e.counter.max(seen);
        }
        // The write itself: the coordinator's next event.
        let e = self.entry(replica);
        e.counter += 1;
        e.values.insert(0, value);
    }

    fn merge(&mut self, other: &Dvv) {
        for o in &other.entries {
            let e = self.entry(o.replica);
            // Live after the merge: events above both floors, up to the higher counter;
            // the entry with the higher counter holds all of them.
            let floor = e.floor().max(o.floor());
            let (counter, values) = match o.counter > e.counter {
                true => (o.counter, &o.values),
                false => (e.counter, &e.values),
            };
            let live = (counter - floor) as usize;
            let values: Vec<Stored> = values[..live].to_vec();
            e.counter = counter;
            e.values = values;
        }
    }

    fn context(&self) -> VersionVector {
        VersionVector::from_pairs(self.entries.iter().map(|e| (e.replica, e.counter)))
    }

    fn descends(&self, other: &Dvv) -> bool {
        // The merge keeps the higher counter and the higher floor of each replica.
        other.entries.iter().all(|o| {
            let e = self.entries.iter().find(|e| e.replica == o.replica);
            e.is_some_and(|e| e.counter >= o.counter && e.floor() >= o.floor())
                || (o.counter == 0 && o.values.is_empty())
        })
    }

    fn counter_of(&self, replica: NodeId) -> u64 {
        self.entries
            .iter()
            .find(|e| e.replica == replica)
            .map_or(0, |e| e.counter)
    }

    fn stored(&self) -> Vec<&Stored> {
        self.entries.iter().flat_map(|e| e.values.iter()).collect()
    }
}

/// Siblings under one version vector by replica id — the scheme before DVVs.
///
/// The vector (`knows`) is the key's whole causal history; a write may replace the
/// siblings only if its context covers all of it, since one vector for the set cannot
/// say which siblings the client saw. Each sibling still carries the event that wrote
/// it (its replica and that replica's counter), which is what merges need to be a
/// join — replicas holding the same history hold the same siblings, in any merge
/// order — as Riak's siblings carry their own metadata. The write rule is what makes
/// siblings pile up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vv {
    knows: VersionVector,
    /// `(replica, counter, value)` of each sibling, in event order.
    siblings: Vec<(NodeId, u64, Stored)>,
}

impl Vv {
    /// The vector covering every write seen, replaced or not.
    pub fn clock(&self) -> &VersionVector {
        &self.knows
    }
}

impl Causality for Vv {
    type Context = VersionVector;
    const MODE: &'static str = "vv";

    fn write_above(
        &mut self,
        context: &VersionVector,
        value: Stored,
        replica: NodeId,
        _now: Time,
        floor: u64,
    ) {
        if context.descends(&self.knows) {
            self.siblings.clear();
        }
        self.knows.join(context);
        // Each sibling names its own event, so skipping numbers reinterprets nothing;
        // the floor is raised after the coverage test, which is about what was seen.
        let own = self.knows.get(replica).max(floor);
        self.knows.set(replica, own);
        let n = self.knows.bump(replica);
        let at = self.siblings.partition_point(|s| (s.0, s.1) < (replica, n));
        self.siblings.insert(at, (replica, n, value));
    }

    fn merge(&mut self, other: &Vv) {
        // A sibling stays if both hold it, or if the other side never saw its event
        // (a sibling the other saw and does not hold was replaced there).
        let mine = std::mem::take(&mut self.siblings);
        let holds = |set: &[(NodeId, u64, Stored)], s: &(NodeId, u64, Stored)| {
            set.binary_search_by(|t| (t.0, t.1).cmp(&(s.0, s.1)))
                .is_ok()
        };
        let mut kept: Vec<(NodeId, u64, Stored)> = mine
            .iter()
            .filter(|s| holds(&other.siblings, s) || other.knows.get(s.0) < s.1)
            .cloned()
            .collect();
        kept.extend(
            other
                .siblings
                .iter()
                .filter(|s| !holds(&mine, s) && self.knows.get(s.0) < s.1)
                .cloned(),
        );
        kept.sort_by_key(|s| (s.0, s.1));
        self.siblings = kept;
        self.knows.join(&other.knows);
    }

    fn context(&self) -> VersionVector {
        self.knows.clone()
    }

    fn counter_of(&self, replica: NodeId) -> u64 {
        self.knows.get(replica)
    }

    fn stored(&self) -> Vec<&Stored> {
        self.siblings.iter().map(|s| &s.2).collect()
    }
}

/// Last writer wins: one value, ordered by `(version, stamp, replica)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lww {
    /// Writes this value follows (the coordinator's version + 1).
    pub version: u64,
    /// The coordinating replica's clock when it wrote.
    pub stamp: Time,
    /// The coordinating replica (breaks ties).
    pub replica: NodeId,
    /// The value; `None` before any write and for a delete.
    pub value: Stored,
}

impl Default for Lww {
    fn default() -> Lww {
        Lww {
            version: 0,
            stamp: Time::ZERO,
            replica: NodeId(0),
            value: None,
        }
    }
}

impl Lww {
    fn order(&self) -> (u64, Time, NodeId) {
        (self.version, self.stamp, self.replica)
    }
}

impl Causality for Lww {
    type Context = ();
    const MODE: &'static str = "lww";

    fn write_above(&mut self, _: &(), value: Stored, replica: NodeId, now: Time, floor: u64) {
        // No context can carry an old version here: only a key this replica holds
        // nothing of (it may have collected it) starts above the floor, so the floor
        // does not tilt concurrent writes toward replicas that collected more.
        let version = match self.version {
            0 => floor,
            v => v,
        };
        *self = Lww {
            version: version + 1,
            stamp: now,
            replica,
            value,
        };
    }

    fn merge(&mut self, other: &Lww) {
        if other.order() > self.order() {
            *self = other.clone();
        }
    }

    fn context(&self) {}

    fn counter_of(&self, _replica: NodeId) -> u64 {
        self.version
    }

    fn stored(&self) -> Vec<&Stored> {
        match self.version {
            0 => Vec::new(),
            _ => vec![&self.value],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: NodeId = NodeId(1);

    fn put<C: Causality>(state: &mut C, ctx: &C::Context, v: &str) -> C::Context {
        state.write(ctx, Some(v.to_owned()), A, Time::ZERO);
        state.context()
    }

    /// The DVV paper's example (Preguiça et al., §2): clients Y and X write one key
    /// through one coordinator with stale contexts — Y with an empty context, X with an
    /// empty context, Y with its first write's context, X with its first write's.
    fn four_steps<C: Causality>() -> Vec<usize> {
        let mut s = C::default();
        let empty = C::Context::default();
        let y1 = put(&mut s, &empty, "y1");
        let mut counts = vec![s.siblings().len()];
        let x1 = put(&mut s, &empty, "x1");
        counts.push(s.siblings().len());
        put(&mut s, &y1, "y2");
        counts.push(s.siblings().len());
        put(&mut s, &x1, "x2");
        counts.push(s.siblings().len());
        counts
    }

    #[test]
    fn dvv_2_stale_contexts_through_one_coordinator_keep_one_sibling_per_writer() {
        assert_eq!(four_steps::<Dvv>(), [1, 2, 2, 2]);
        assert_eq!(
            four_steps::<Vv>(),
            [1, 2, 3, 4],
            "replica-id vectors explode"
        );
        assert_eq!(four_steps::<Lww>(), [1, 1, 1, 1]);
    }

    /// Two clients alternate 101 writes, each with the context of its own last write.
    fn alternating<C: Causality>() -> C {
        let mut s = C::default();
        let mut ctx = [C::Context::default(), C::Context::default()];
        for i in 0..101 {
            let c = i % 2;
            ctx[c] = put(&mut s, &ctx[c].clone(), &format!("c{c}.{i}"));
        }
        s
    }

    #[test]
    fn dvv_2_alternating_writers_do_not_explode_where_replica_vectors_do() {
        assert_eq!(alternating::<Vv>().siblings().len(), 101);
        let dvv = alternating::<Dvv>();
        assert_eq!(dvv.siblings(), ["c0.100", "c1.99"]);
    }

    #[test]
    fn dvv_a_write_replaces_exactly_what_its_context_covers() {
        // Two replicas take concurrent writes; a client that read both resolves them.
        let (b, c) = (NodeId(2), NodeId(3));
        let mut at_b = Dvv::default();
        at_b.write(&VersionVector::new(), Some("left".into()), b, Time::ZERO);
        let mut at_c = Dvv::default();
        at_c.write(&VersionVector::new(), Some("right".into()), c, Time::ZERO);
        let mut merged = at_b.clone();
        merged.merge(&at_c);
        assert_eq!(merged.siblings(), ["left", "right"]);
        // A third write with only b's context keeps c's value.
        let mut partial = merged.clone();
        partial.write(&at_b.context(), Some("after-left".into()), b, Time::ZERO);
        assert_eq!(partial.siblings(), ["after-left", "right"]);
        // One with the merged context replaces both.
        merged.write(&merged.context(), Some("resolved".into()), c, Time::ZERO);
        assert_eq!(merged.siblings(), ["resolved"]);
        // And the replica that missed it all learns the outcome by merging.
        at_b.merge(&merged);
        assert_eq!(at_b, merged);
    }

    #[test]
    fn lww_concurrent_writes_keep_one_and_lose_the_other_silently() {
        let mut b = Lww::default();
        b.write(&(), Some("left".into()), NodeId(2), Time::from_millis(5));
        let mut c = Lww::default();
        c.write(&(), Some("right".into()), NodeId(3), Time::from_millis(4));
        let mut bc = b.clone();
        bc.merge(&c);
        let mut cb = c.clone();
        cb.merge(&b);
        assert_eq!(bc, cb);
        assert_eq!(
            bc.siblings(),
            ["left"],
            "the later stamp wins, 'right' is gone"
        );
    }

    #[test]
    fn a_delete_leaves_a_tombstone_that_reads_as_missing() {
        let mut s = Dvv::default();
        let ctx = put(&mut s, &VersionVector::new(), "v");
        s.write(&ctx, None, A, Time::ZERO);
        assert!(s.is_deleted() && s.siblings().is_empty());
        assert_eq!(s.stored(), [&None]);
        // A concurrent write survives the delete as a sibling.
        let mut s2 = Dvv::default();
        put(&mut s2, &VersionVector::new(), "v");
        let mut other = s2.clone();
        other.write(
            &VersionVector::new(),
            Some("w".into()),
            NodeId(2),
            Time::ZERO,
        );
        s2.write(&ctx, None, A, Time::ZERO);
        s2.merge(&other);
        assert_eq!(s2.siblings(), ["w"]);
    }

    /// A random history of writes at three replicas with contexts read from random
    /// states, and merges between them.
    fn states<C: Causality>(ops: &[(u8, u8, u8, bool)]) -> Vec<C> {
        let mut replicas = vec![C::default(), C::default(), C::default()];
        let mut contexts = vec![C::Context::default()];
        for (i, &(r, other, ctx, write)) in ops.iter().enumerate() {
            let (r, other) = (r as usize % 3, other as usize % 3);
            if write {
                let ctx = contexts[ctx as usize % contexts.len()].clone();
                let id = NodeId(r as u64 + 1);
                let value = (i % 5 != 0).then(|| format!("v{i}"));
                replicas[r].write(&ctx, value, id, Time::from_millis(i as u64));
            } else {
                let o = replicas[other].clone();
                replicas[r].merge(&o);
            }
            contexts.push(replicas[r].context());
        }
        replicas
    }

    fn covered_rule<C: Causality<Context = VersionVector>>(
        ops: &[(u8, u8, u8, bool)],
        exact: bool,
    ) -> Result<(), TestCaseError> {
        let mut replicas = [C::default(), C::default(), C::default()];
        let mut contexts = vec![VersionVector::new()];
        let mut writes = Vec::new();
        for (i, &(r, other, ctx, write)) in ops.iter().enumerate() {
            let (r, other) = (r as usize % 3, other as usize % 3);
            if write {
                let ctx = contexts[ctx as usize % contexts.len()].clone();
                let id = NodeId(r as u64 + 1);
                let value = format!("v{i}");
                replicas[r].write(&ctx, Some(value.clone()), id, Time::ZERO);
                writes.push((value, id, replicas[r].context().get(id), ctx));
            } else {
                let o = replicas[other].clone();
                replicas[r].merge(&o);
            }
            contexts.push(replicas[r].context());
        }
        let mut all = replicas[0].clone();
        all.merge(&replicas[1]);
        all.merge(&replicas[2]);
        let live = all.siblings();
        for (value, id, dot, _) in &writes {
            let covered = writes.iter().any(|w| w.3.get(*id) >= *dot);
            let is_live = live.contains(value);
            prop_assert!(covered || is_live, "{} lost: {:?}", value, all);
            if exact {
                prop_assert!(
                    !(covered && is_live),
                    "{} covered but live: {:?}",
                    value,
                    all
                );
            }
        }
        Ok(())
    }

    fn check_join<C: Causality>(ops: &[(u8, u8, u8, bool)]) -> Result<(), TestCaseError> {
        let s = states::<C>(ops);
        let (a, b, c) = (&s[0], &s[1], &s[2]);
        let join = |x: &C, y: &C| {
            let mut j = x.clone();
            j.merge(y);
            j
        };
        prop_assert_eq!(join(a, b), join(b, a), "commutative");
        prop_assert_eq!(join(&join(a, b), c), join(a, &join(b, c)), "associative");
        prop_assert_eq!(join(a, a), a.clone(), "idempotent");
        for (x, y) in [(a, b), (b, a), (&join(a, b), a), (a, &join(a, c))] {
            prop_assert_eq!(
                x.descends(y),
                &join(x, y) == x,
                "descends is 'merging changes nothing'"
            );
        }
        Ok(())
    }

    /// Every state a history passes through, the empty one first.
    fn history<C: Causality>(ops: &[(u8, u8, u8, bool)]) -> Vec<C> {
        (0..=ops.len())
            .step_by(4)
            .flat_map(|i| states::<C>(&ops[..i]))
            .chain([C::default()])
            .collect()
    }

    /// DVV's own `descends` (a shortcut: no merge, no allocation) says exactly what
    /// the definition says — "merging `other` in changes nothing" — for every pair of
    /// states of a history, the empty state and entries whose events were all
    /// replaced included.
    fn check_descends(ops: &[(u8, u8, u8, bool)]) -> Result<(), TestCaseError> {
        let all = history::<Dvv>(ops);
        for x in &all {
            for y in &all {
                let mut j = x.clone();
                j.merge(y);
                prop_assert_eq!(x.descends(y), &j == x, "{:?} descends {:?}", x, y);
            }
        }
        Ok(())
    }

    #[test]
    fn dvv_descends_sees_an_entry_whose_events_were_all_replaced() {
        let (b, c) = (NodeId(2), NodeId(3));
        let mut s = Dvv::default();
        s.write(&VersionVector::new(), Some("b".into()), b, Time::ZERO);
        s.write(&s.context(), Some("c".into()), c, Time::ZERO);
        let b_entry = &s.entries()[0];
        assert_eq!((b_entry.replica, b_entry.counter), (b, 1));
        assert!(b_entry.values.is_empty(), "b's event was replaced");
        let mut only_c = Dvv::default();
        only_c.write(&VersionVector::new(), Some("c".into()), c, Time::ZERO);
        assert!(!only_c.descends(&s), "it has not seen b's event");
        assert!(s.descends(&Dvv::default()) && Dvv::default().descends(&Dvv::default()));
        assert!(!Dvv::default().descends(&s));
    }

    /// The counter each mode keeps per replica — what a replica collecting a
    /// tombstone must number its later events above: DVV and VV count each replica's
    /// events, LWW the version all replicas share.
    #[test]
    fn counter_of_is_the_highest_event_number_known() {
        fn counters<C: Causality>() -> [u64; 3] {
            let (b, c) = (NodeId(2), NodeId(3));
            let mut s = C::default();
            s.write(&C::Context::default(), Some("1".into()), b, Time::ZERO);
            s.write(&s.context(), Some("2".into()), b, Time::ZERO);
            s.write(&s.context(), Some("3".into()), c, Time::from_millis(1));
            [b, c, NodeId(4)].map(|r| s.counter_of(r))
        }
        assert_eq!(counters::<Dvv>(), [2, 1, 0]);
        assert_eq!(counters::<Vv>(), [2, 1, 0]);
        assert_eq!(counters::<Lww>(), [3, 3, 3]);
    }

    /// Replica-id version vectors: one vector for the whole set (`clock`), which is
    /// the context a reader gets; a write whose context covers all of it replaces
    /// every sibling, one that covers less keeps them.
    #[test]
    fn vv_a_context_covering_the_whole_clock_replaces_every_sibling() {
        let (b, c) = (NodeId(2), NodeId(3));
        let mut s = Vv::default();
        s.write(&VersionVector::new(), Some("x".into()), b, Time::ZERO);
        s.write(&VersionVector::new(), Some("y".into()), c, Time::ZERO);
        let all = VersionVector::from_pairs([(b, 1), (c, 1)]);
        assert_eq!(s.clock(), &all);
        assert_eq!(s.context(), all);
        let mut partial = s.clone();
        let only_b = VersionVector::from_pairs([(b, 1)]);
        partial.write(&only_b, Some("z".into()), b, Time::ZERO);
        assert_eq!(partial.siblings(), ["x", "z", "y"]);
        s.write(&s.context(), Some("z".into()), b, Time::ZERO);
        assert_eq!(s.siblings(), ["z"]);
        assert_eq!(s.clock(), &VersionVector::from_pairs([(b, 2), (c, 1)]));
    }

    /// A key never written stores nothing in any mode (not even a tombstone); a
    /// delete stores one.
    #[test]
    fn a_key_never_written_stores_nothing_a_deleted_one_a_tombstone() {
        fn stored<C: Causality>() -> (usize, Vec<Stored>) {
            let mut s = C::default();
            let empty = s.stored().len();
            s.write(&C::Context::default(), None, A, Time::ZERO);
            (empty, s.stored().into_iter().cloned().collect())
        }
        assert_eq!(stored::<Dvv>(), (0, vec![None]));
        assert_eq!(stored::<Vv>(), (0, vec![None]));
        assert_eq!(stored::<Lww>(), (0, vec![None]));
        assert!(Lww::default().is_deleted() && Lww::default().siblings().is_empty());
    }

    proptest! {
        #[test]
        fn merge_is_a_join_in_every_mode(ops in prop::collection::vec(any::<(u8, u8, u8, bool)>(), 0..40)) {
            check_join::<Dvv>(&ops)?;
            check_join::<Vv>(&ops)?;
            check_join::<Lww>(&ops)?;
        }

        #[test]
        fn dvv_descends_is_merging_changes_nothing(ops in prop::collection::vec(any::<(u8, u8, u8, bool)>(), 0..24)) {
            check_descends(&ops)?;
        }

        /// No lost updates, and (DVV) no stale sibling: once every replica's state is
        /// merged, a write's value is live unless a later write's context covered its
        /// dot — and with DVV it is gone if one did.
        #[test]
        fn a_value_is_replaced_exactly_when_a_context_covered_it(ops in prop::collection::vec(any::<(u8, u8, u8, bool)>(), 0..40)) {
            covered_rule::<Dvv>(&ops, true)?;
            covered_rule::<Vv>(&ops, false)?;
        }
    }
}
