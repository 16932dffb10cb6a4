//! The slot log: an acceptor's accepted proposals per slot and a learner's chosen
//! values, as one durable sequence (storage log index = slot).
//!
//! Durable layout: meta [`META_FIRST_UNCHOSEN`] and [`META_LOG_START`], and one log
//! entry per slot holding a [`LogEntry`]. Every entry write goes through the input's
//! `WriteBatch`, so the driver sends an `Accepted` only once the acceptance is durable.

use super::message::AcceptedSlot;
use crate::types::{Ballot, Slot, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use synod_core::{codec, WriteBatch};

/// Meta key of the first slot not known chosen.
pub const META_FIRST_UNCHOSEN: &str = "first_unchosen";
/// Meta key of the first slot still held in the log (below it: compacted).
pub const META_LOG_START: &str = "log_start";

/// How far the in-memory chosen prefix may run ahead of its durable copy before a
/// batch with nothing else to write saves it anyway. The durable copy is only a
/// lower bound used at restart (slots above it are fetched again), so saving it
/// lazily costs a little catch-up after a crash, never safety — and spares a leader
/// one disk write per decision, which its client's answer would wait for.
pub const FRONTIER_LAG_MAX: u64 = 64;

/// What the log holds for one slot.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum LogEntry {
    /// The acceptor accepted `value` in `ballot` (Phase 2(b)).
    Accepted {
        /// Ballot of the acceptance.
        ballot: Ballot,
        /// Value accepted.
        value: Value,
    },
    /// The learner learned `value` chosen from a peer (catch-up), without accepting it.
    Chosen {
        /// The chosen value.
        value: Value,
    },
}

impl LogEntry {
    /// The value held, whichever way.
    pub fn value(&self) -> &Value {
        match self {
            LogEntry::Accepted { value, .. } | LogEntry::Chosen { value } => value,
        }
    }
}

/// The slot log.
///
/// Invariants (checked on recovery and on every advance):
/// * `start <= first_unchosen`;
/// * every slot in `start..first_unchosen` holds an entry, and its value is the
///   chosen one — so a replica can execute up to `first_unchosen` from its own log;
/// * an `Accepted` entry's ballot only grows, and a slot below `first_unchosen` is
///   never overwritten with another value;
/// * `start <= saved_first_unchosen <= first_unchosen`: the durable copy of the
///   chosen prefix lags the in-memory one (see [`FRONTIER_LAG_MAX`]) but never
///   falls below the durable log start.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SlotLog {
    entries: BTreeMap<Slot, LogEntry>,
    start: Slot,
    first_unchosen: Slot,
    saved_first_unchosen: Slot,
}

impl Default for SlotLog {
    fn default() -> Self {
        SlotLog {
            entries: BTreeMap::new(),
            start: Slot::FIRST,
            first_unchosen: Slot::FIRST,
            saved_first_unchosen: Slot::FIRST,
        }
    }
}

impl SlotLog {
    /// Rebuilds the log from storage.
    ///
    /// # Panics
    /// If the recovered state breaks the invariants (storage corruption).
    pub fn recover(
        start: Slot,
        first_unchosen: Slot,
        entries: impl IntoIterator<Item = (Slot, LogEntry)>,
    ) -> SlotLog {
        let entries: BTreeMap<Slot, LogEntry> =
            entries.into_iter().filter(|(s, _)| *s >= start).collect();
        assert!(
            start <= first_unchosen,
            "log start {start} above {first_unchosen}"
        );
        let mut s = start;
        while s < first_unchosen {
            assert!(entries.contains_key(&s), "chosen {s} missing from the log");
            s = s.next();
        }
        SlotLog {
            entries,
            start,
            first_unchosen,
            saved_first_unchosen: first_unchosen,
        }
    }

    /// First slot still held (below it, the snapshot covers).
    pub fn start(&self) -> Slot {
        self.start
    }

    /// First slot not known chosen; every slot below holds its chosen value.
    pub fn first_unchosen(&self) -> Slot {
        self.first_unchosen
    }

    /// The entry at `slot`.
    pub fn entry(&self, slot: Slot) -> Option<&LogEntry> {
        self.entries.get(&slot)
    }

    /// The proposal accepted at `slot`, if the entry is an acceptance.
    pub fn accepted(&self, slot: Slot) -> Option<(Ballot, &Value)> {
        match self.entries.get(&slot)? {
            LogEntry::Accepted { ballot, value } => Some((*ballot, value)),
            LogEntry::Chosen { .. } => None,
        }
    }

    /// The chosen value of `slot`, if known and still held.
    pub fn chosen(&self, slot: Slot) -> Option<&Value> {
        (slot < self.first_unchosen)
            .then(|| self.entries.get(&slot).map(LogEntry::value))
            .flatten()
    }

    /// The highest slot holding an entry.
    pub fn last_slot(&self) -> Option<Slot> {
        self.entries.keys().next_back().copied()
    }

    /// Phase 2(b) write: accept `value` at `slot` in `ballot`. A slot known chosen is
    /// not rewritten (its value is the one any later ballot proposes, asserted when
    /// we still hold it). Returns `true` if an acceptance was recorded.
    pub fn accept(&mut self, slot: Slot, ballot: Ballot, value: Value, b: &mut WriteBatch) -> bool {
        if slot < self.first_unchosen {
            if let Some(chosen) = self.chosen(slot) {
                assert_eq!(
                    *chosen, value,
                    "{slot} was chosen, {ballot} proposes another value"
                );
            }
            return false;
        }
        if let Some((prev, v)) = self.accepted(slot) {
            assert!(
                prev <= ballot,
                "{slot}: acceptance went back from {prev} to {ballot}"
            );
            if prev == ballot {
                assert_eq!(*v, value, "{slot}: two values proposed in {ballot}");
            }
        }
        let entry = LogEntry::Accepted { ballot, value };
        b.put_entry(slot.0, codec::encode(&entry));
        self.entries.insert(slot, entry);
        true
    }

    /// Every acceptance at or after `from` in slots not known chosen — what a promise
    /// reports ("Paxos Made Simple" Phase 1(b), for all instances at once).
    pub fn unchosen_from(&self, from: Slot) -> Vec<AcceptedSlot> {
        let from = from.max(self.first_unchosen);
        self.entries
            .range(from..)
            .filter_map(|(&slot, e)| match e {
                LogEntry::Accepted { ballot, value } => Some(AcceptedSlot {
                    slot,
                    ballot: *ballot,
                    value: value.clone(),
                }),
                LogEntry::Chosen { .. } => None,
            })
            .collect()
    }

    /// Learns slots chosen in `ballot` below `decided`: a leader of `ballot` says
    /// every slot below `decided` is chosen, and it proposes one value per slot per
    /// ballot, so an acceptance in that very ballot holds the chosen value. Stops at
    /// the first slot that is not such an acceptance (catch-up fills it). Returns
    /// `true` if `first_unchosen` advanced (see [`SlotLog::save_frontier`]).
    pub fn learn_in_ballot(&mut self, decided: Slot, ballot: Ballot) -> bool {
        let before = self.first_unchosen;
        while self.first_unchosen < decided {
            match self.accepted(self.first_unchosen) {
                Some((bal, _)) if bal == ballot => self.first_unchosen = self.first_unchosen.next(),
                _ => break,
            }
        }
        self.first_unchosen != before
    }

    /// Learns chosen values from a peer, for consecutive slots from `first`. Values
    /// for slots already known chosen must agree; a gap before `first` is ignored.
    /// Returns `true` if `first_unchosen` advanced; the entries are in `b`, and so
    /// is the new chosen prefix.
    pub fn learn_chosen(&mut self, first: Slot, values: Vec<Value>, b: &mut WriteBatch) -> bool {
        let before = self.first_unchosen;
        for (slot, value) in (first.0..).map(Slot).zip(values) {
            if slot < self.first_unchosen {
                if let Some(mine) = self.chosen(slot) {
                    assert_eq!(
                        *mine, value,
                        "{slot}: peers learned different chosen values"
                    );
                }
                continue;
            }
            if slot > self.first_unchosen {
                break;
            }
            let entry = LogEntry::Chosen { value };
            b.put_entry(slot.0, codec::encode(&entry));
            self.entries.insert(slot, entry);
            self.first_unchosen = slot.next();
        }
        self.save_frontier(b, false);
        self.first_unchosen != before
    }

    /// Saves the chosen prefix in `b` if it moved and `force` is set, `b` is written
    /// anyway, or the durable copy lags by `FRONTIER_LAG_MAX` slots.
    pub fn save_frontier(&mut self, b: &mut WriteBatch, force: bool) {
        let lag = self.first_unchosen.0 - self.saved_first_unchosen.0;
        if lag == 0 || !(force || !b.is_empty() || lag >= FRONTIER_LAG_MAX) {
            return;
        }
        b.set_meta(META_FIRST_UNCHOSEN, codec::encode(&self.first_unchosen));
        self.saved_first_unchosen = self.first_unchosen;
    }

    /// Chosen values from `from`, at most `max` of them (a catch-up answer).
    pub fn chosen_from(&self, from: Slot, max: usize) -> Vec<Value> {
        assert!(
            from >= self.start,
            "{from} is compacted (log starts at {})",
            self.start
        );
        self.entries
            .range(from..self.first_unchosen)
            .take(max)
            .map(|(_, e)| e.value().clone())
            .collect()
    }

    /// Drops every entry below `start` (they are chosen and covered by a snapshot).
    pub fn compact(&mut self, start: Slot, b: &mut WriteBatch) {
        assert!(
            start <= self.first_unchosen,
            "compacting unchosen slots below {start}"
        );
        if start <= self.start {
            return;
        }
        // The durable chosen prefix must reach the new start (recovery checks it).
        self.save_frontier(b, true);
        b.compact_to(start.0 - 1);
        b.set_meta(META_LOG_START, codec::encode(&start));
        self.entries = self.entries.split_off(&start);
        self.start = start;
    }

    /// Restarts the log at a received snapshot covering every slot below `below`:
    /// those slots are chosen; entries at and above `below` are kept.
    pub fn install_snapshot(&mut self, below: Slot, b: &mut WriteBatch) {
        self.first_unchosen = self.first_unchosen.max(below);
        self.save_frontier(b, true);
        self.compact(below, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_core::NodeId;

    fn b(round: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(1),
        }
    }

    #[test]
    fn learning_in_a_ballot_stops_at_a_slot_accepted_in_another() {
        let mut log = SlotLog::default();
        let mut wb = WriteBatch::new();
        log.accept(Slot(1), b(2), Value::Noop, &mut wb);
        log.accept(Slot(2), b(1), Value::Noop, &mut wb);
        log.accept(Slot(3), b(2), Value::Noop, &mut wb);
        assert!(log.learn_in_ballot(Slot(4), b(2)));
        assert_eq!(log.first_unchosen(), Slot(2));
        assert_eq!(log.unchosen_from(Slot(1)).len(), 2);
        log.learn_chosen(Slot(2), vec![Value::Noop], &mut wb);
        assert!(log.learn_in_ballot(Slot(4), b(2)));
        assert_eq!(log.first_unchosen(), Slot(4));
        assert!(log.unchosen_from(Slot(1)).is_empty());
    }

    #[test]
    fn recovery_round_trips_and_compaction_keeps_the_suffix() {
        let mut log = SlotLog::default();
        let mut rec = synod_core::Recovered::default();
        let mut wb = WriteBatch::new();
        for s in 1..=6 {
            log.accept(Slot(s), b(1), Value::Noop, &mut wb);
        }
        log.learn_in_ballot(Slot(5), b(1));
        log.compact(Slot(3), &mut wb);
        rec.apply(&wb);
        let start = codec::decode(&rec.meta[META_LOG_START]).unwrap();
        let fu = codec::decode(&rec.meta[META_FIRST_UNCHOSEN]).unwrap();
        let entries = rec
            .log
            .iter()
            .map(|(i, e)| (Slot(*i), codec::decode(e).unwrap()));
        let back = SlotLog::recover(start, fu, entries);
        assert_eq!(back, log);
        assert_eq!(back.start(), Slot(3));
        assert_eq!(back.chosen_from(Slot(3), 10).len(), 2);
    }

    #[test]
    fn the_chosen_prefix_is_saved_lazily_but_never_below_the_log_start() {
        let mut log = SlotLog::default();
        let mut wb = WriteBatch::new();
        for s in 1..=3 {
            log.accept(Slot(s), b(1), Value::Noop, &mut wb);
        }
        let mut quiet = WriteBatch::new();
        log.learn_in_ballot(Slot(3), b(1));
        log.save_frontier(&mut quiet, false);
        assert!(quiet.is_empty(), "nothing else to write: deferred");
        log.save_frontier(&mut wb, false);
        assert_eq!(wb.ops().len(), 4, "rides along with the acceptances");
        log.learn_in_ballot(Slot(4), b(1));
        let mut compacting = WriteBatch::new();
        log.compact(Slot(4), &mut compacting);
        assert!(compacting
            .ops()
            .iter()
            .any(|op| matches!(op, synod_core::StorageOp::SetMeta { key, .. } if key == META_FIRST_UNCHOSEN)));
    }

    #[test]
    #[should_panic(expected = "went back")]
    fn acceptance_never_goes_back_to_a_lower_ballot() {
        let mut log = SlotLog::default();
        let mut wb = WriteBatch::new();
        log.accept(Slot(1), b(2), Value::Noop, &mut wb);
        log.accept(Slot(1), b(1), Value::Noop, &mut wb);
    }
}
