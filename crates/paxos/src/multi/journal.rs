//! What each input accepted and executed, for observers (the simulator's safety
//! invariants, the paper tests).
//!
//! The hot path records only facts — `(slot, ballot)` per acceptance and the range
//! of slots executed — and no values: copying each value into a journal cost a
//! reference-count round trip per slot per node on every input, whether anybody
//! looked or not. An observer that asks for the [`StepJournal`] gets the values
//! looked up in the log then (once per input). Values stay in the log at least
//! until the next input, except for slots a snapshot compacts away within the same
//! input: those entries are kept aside for the journal until the next input.

use super::log::{LogEntry, SlotLog};
use crate::types::{Ballot, Slot, Value};
use derive_where::derive_where;
use std::sync::OnceLock;
use synod_core::{Kv, StateMachine};

/// What one input did, for observers (the simulator's invariants, tests): the
/// acceptances it recorded and the slots it executed. Cleared at every input.
#[derive(Clone, Debug, Default)]
#[derive_where(PartialEq, Eq, Hash)]
pub struct StepJournal<S: StateMachine = Kv> {
    /// `(slot, ballot, value)` accepted in this input.
    pub accepted: Vec<(Slot, Ballot, Value<S>)>,
    /// `(slot, value)` executed in this input, in order.
    pub executed: Vec<(Slot, Value<S>)>,
}

/// The facts of one input, from which its [`StepJournal`] is built on demand.
#[derive(Clone, Debug, Default)]
#[derive_where(PartialEq, Eq, Hash)]
pub(crate) struct JournalFacts<S: StateMachine> {
    /// Acceptances recorded, in order.
    accepted: Vec<(Slot, Ballot)>,
    /// Slots executed: `first..end`, consecutive by the execution rule.
    executed: Option<(Slot, Slot)>,
    /// Entries compaction removed in this input at or above the oldest slot
    /// recorded: the journal still needs their values.
    compacted: Vec<(Slot, LogEntry<S>)>,
    view: JournalView<S>,
}

impl<S: StateMachine> JournalFacts<S> {
    /// Forgets the previous input.
    pub(crate) fn clear(&mut self) {
        self.accepted.clear();
        self.executed = None;
        self.compacted.clear();
        self.view = JournalView::default();
    }

    /// `slot` was accepted in `ballot` (its log entry holds the value).
    pub(crate) fn accepted(&mut self, slot: Slot, ballot: Ballot) {
        self.accepted.push((slot, ballot));
    }

    /// `slot` was executed, right after the previous one executed.
    pub(crate) fn executed(&mut self, slot: Slot) {
        match &mut self.executed {
            Some((_, end)) => {
                assert_eq!(*end, slot, "execution skipped to {slot}");
                *end = slot.next();
            }
            None => self.executed = Some((slot, slot.next())),
        }
    }

    /// The oldest slot this input recorded: compaction must keep the entries it
    /// removes from there on ([`JournalFacts::compacted`]).
    pub(crate) fn oldest(&self) -> Option<Slot> {
        let accepted = self.accepted.iter().map(|&(s, _)| s).min();
        let executed = self.executed.map(|(first, _)| first);
        match (accepted, executed) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        }
    }

    /// Compaction removed `entry` at `slot`, at or above [`JournalFacts::oldest`].
    pub(crate) fn compacted(&mut self, slot: Slot, entry: LogEntry<S>) {
        self.compacted.push((slot, entry));
    }

    /// The journal of this input, its values taken from `log`.
    ///
    /// # Panics
    /// If the log no longer holds what the input recorded (a slot accepted in
    /// this input holds an acceptance in another ballot): a bug in the recorder.
    pub(crate) fn view(&self, log: &SlotLog<S>) -> &StepJournal<S> {
        self.view.0.get_or_init(|| {
            let entry = |slot: Slot| {
                self.compacted
                    .iter()
                    .find(|(s, _)| *s == slot)
                    .map(|(_, e)| e)
                    .or_else(|| log.entry(slot))
                    .unwrap_or_else(|| panic!("journal: {slot} is not in the log"))
            };
            let accepted = self
                .accepted
                .iter()
                .map(|&(slot, ballot)| match entry(slot) {
                    LogEntry::Accepted { ballot: b, value } if *b == ballot => {
                        (slot, ballot, value.clone())
                    }
                    other => {
                        panic!("journal: {slot} accepted in {ballot}, the log holds {other:?}")
                    }
                })
                .collect();
            let executed = self.executed.map_or_else(Vec::new, |(first, end)| {
                (first.0..end.0)
                    .map(|s| (Slot(s), entry(Slot(s)).value().clone()))
                    .collect()
            });
            StepJournal { accepted, executed }
        })
    }
}

/// The journal built for observers, once per input. Derived data: ignored by
/// equality and hashing.
#[derive(Clone, Default)]
struct JournalView<S: StateMachine>(OnceLock<StepJournal<S>>);

impl<S: StateMachine> PartialEq for JournalView<S> {
    fn eq(&self, _: &JournalView<S>) -> bool {
        true
    }
}

impl<S: StateMachine> Eq for JournalView<S> {}

impl<S: StateMachine> std::hash::Hash for JournalView<S> {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl<S: StateMachine> std::fmt::Debug for JournalView<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_core::{NodeId, WriteBatch};

    fn b(round: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(1),
        }
    }

    fn put(n: u64) -> Value {
        Value::Command(std::sync::Arc::new(synod_core::KvCommand {
            client: synod_core::ClientId(n),
            seq: n,
            op: synod_core::KvOp::Delete { key: "k".into() },
        }))
    }

    #[test]
    fn the_journal_takes_values_from_the_log_and_from_what_compaction_removed() {
        let mut log = SlotLog::default();
        let mut wb = WriteBatch::new();
        let mut facts = JournalFacts::default();
        for s in 1..=4 {
            log.accept(Slot(s), b(1), put(s), &mut wb);
        }
        log.learn_in_ballot(Slot(4), b(1));
        facts.clear();
        for s in 2..=4 {
            facts.accepted(Slot(s), b(1));
        }
        for s in 1..=3 {
            facts.executed(Slot(s));
        }
        // Compaction within the input removes slots 1 and 2: 1 was executed here,
        // so both are kept for the journal.
        assert_eq!(facts.oldest(), Some(Slot(1)));
        log.compact_with(Slot(3), &mut wb, |s, e| facts.compacted(s, e));
        let j = facts.view(&log);
        assert_eq!(
            j.accepted,
            (2..=4).map(|s| (Slot(s), b(1), put(s))).collect::<Vec<_>>()
        );
        assert_eq!(
            j.executed,
            (1..=3).map(|s| (Slot(s), put(s))).collect::<Vec<_>>()
        );
        facts.clear();
        assert_eq!(facts.view(&log), &StepJournal::default());
    }

    #[test]
    #[should_panic(expected = "accepted in")]
    fn the_journal_refuses_an_acceptance_the_log_holds_in_another_ballot() {
        let mut log = SlotLog::default();
        let mut wb = WriteBatch::new();
        let mut facts = JournalFacts::default();
        log.accept(Slot(1), b(2), put(1), &mut wb);
        facts.accepted(Slot(1), b(1));
        facts.view(&log);
    }

    #[test]
    fn the_built_view_is_ignored_by_equality_and_hashing() {
        use std::hash::{BuildHasher, RandomState};
        let mut log = SlotLog::default();
        let mut wb = WriteBatch::new();
        let mut facts = JournalFacts::default();
        log.accept(Slot(1), b(1), put(1), &mut wb);
        facts.accepted(Slot(1), b(1));
        let unbuilt = facts.clone();
        assert_eq!(facts.view(&log).accepted.len(), 1);
        assert_eq!(facts, unbuilt);
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&facts), hasher.hash_one(&unbuilt));
    }

    #[test]
    fn compaction_keeps_nothing_for_an_input_that_recorded_nothing_there() {
        let mut log = SlotLog::default();
        let mut wb = WriteBatch::new();
        let mut facts = JournalFacts::default();
        for s in 1..=4 {
            log.accept(Slot(s), b(1), put(s), &mut wb);
        }
        log.learn_in_ballot(Slot(5), b(1));
        facts.executed(Slot(4));
        let oldest = facts.oldest();
        assert_eq!(oldest, Some(Slot(4)));
        log.compact_with(Slot(4), &mut wb, |s, e| {
            if oldest.is_some_and(|o| s >= o) {
                facts.compacted(s, e)
            }
        });
        assert!(facts.compacted.is_empty());
        assert_eq!(facts.view(&log).executed, vec![(Slot(4), put(4))]);
    }
}
