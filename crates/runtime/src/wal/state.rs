//! What the writer must remember between batches — the meta map (for the checkpoint
//! opening each new segment), the current snapshot generation, and which segment holds
//! the latest write of every live log entry (to know when a segment may be deleted) —
//! and the replay of logged ops into a [`Recovered`](synod_core::Recovered) log.

use super::format::{Checkpoint, LogOp};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Which segment holds the latest write of each live log entry.
///
/// A segment may be deleted once no live entry was last written in it (and every
/// older segment may be deleted too): replaying the later segments from an empty log
/// then yields the same log, because every entry the deleted segments wrote was since
/// overwritten, truncated or compacted away. This covers the usual case — all of a
/// segment's entries are at or below the compacted index — and stays right when a
/// protocol writes an entry below an earlier compaction point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Liveness {
    /// Live log index → number of the segment holding its latest `PutEntry`.
    segment_of: BTreeMap<u64, u64>,
    /// Segment number → how many live entries it holds. Invariant: the counts sum to
    /// `segment_of.len()` and no count is zero (zero counts are removed).
    live_entries: BTreeMap<u64, u64>,
}

impl Liveness {
    fn put(&mut self, index: u64, segment: u64) {
        if let Some(previous) = self.segment_of.insert(index, segment) {
            self.release(previous);
        }
        *self.live_entries.entry(segment).or_insert(0) += 1;
    }

    fn truncate_from(&mut self, index: u64) {
        let removed = self.segment_of.split_off(&index);
        self.release_all(removed);
    }

    fn compact_to(&mut self, index: u64) {
        let removed = match index.checked_add(1) {
            Some(keep_from) => {
                let kept = self.segment_of.split_off(&keep_from);
                std::mem::replace(&mut self.segment_of, kept)
            }
            None => std::mem::take(&mut self.segment_of),
        };
        self.release_all(removed);
    }

    fn release_all(&mut self, removed: BTreeMap<u64, u64>) {
        for segment in removed.into_values() {
            self.release(segment);
        }
    }

    fn release(&mut self, segment: u64) {
        let count = self
            .live_entries
            .get_mut(&segment)
            .expect("a live entry's segment has a live count");
        *count -= 1;
        if *count == 0 {
            self.live_entries.remove(&segment);
        }
    }

    /// `true` if no live entry was last written in `segment`.
    pub(crate) fn is_dead(&self, segment: u64) -> bool {
        !self.live_entries.contains_key(&segment)
    }

    /// Number of live log entries.
    pub(crate) fn live_len(&self) -> usize {
        self.segment_of.len()
    }
}

/// The writer's memory of the durable state, without the log entries themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WalState {
    /// The meta map.
    pub(crate) meta: BTreeMap<String, Vec<u8>>,
    /// Generation of the current snapshot file.
    pub(crate) snapshot: Option<u64>,
    /// Where the live entries were written.
    pub(crate) liveness: Liveness,
}

impl WalState {
    /// Starts from a segment's checkpoint, forgetting any log: what recovery does at
    /// the first surviving segment.
    pub(crate) fn from_checkpoint(checkpoint: Checkpoint<'_>) -> WalState {
        WalState {
            meta: checkpoint.meta.into_owned(),
            snapshot: checkpoint.snapshot,
            liveness: Liveness::default(),
        }
    }

    /// The checkpoint that opens a new segment: this state minus the log.
    pub(crate) fn checkpoint(&self) -> Checkpoint<'_> {
        Checkpoint {
            meta: Cow::Borrowed(&self.meta),
            snapshot: self.snapshot,
        }
    }

    /// `true` if `checkpoint` describes this state (checked on recovery for every
    /// segment after the first: the checkpoint was written from the same state).
    pub(crate) fn agrees_with(&self, checkpoint: &Checkpoint<'_>) -> bool {
        *checkpoint.meta == self.meta && checkpoint.snapshot == self.snapshot
    }

    /// Applies one logged op that was written to `segment`.
    pub(crate) fn apply(&mut self, op: &LogOp<'_>, segment: u64) {
        match op {
            LogOp::SetMeta { key, value } => {
                self.meta.insert(key.to_string(), value.to_vec());
            }
            LogOp::PutEntry { index, .. } => self.liveness.put(*index, segment),
            LogOp::TruncateFrom(index) => self.liveness.truncate_from(*index),
            LogOp::CompactTo(index) => self.liveness.compact_to(*index),
            LogOp::SnapshotSaved(generation) => self.snapshot = Some(*generation),
        }
    }
}

/// Applies one logged op to a recovered log, with exactly the semantics of
/// [`Recovered::apply`](synod_core::Recovered::apply).
pub(crate) fn apply_to_log(log: &mut BTreeMap<u64, Vec<u8>>, op: LogOp<'_>) {
    match op {
        LogOp::PutEntry { index, entry } => {
            log.insert(index, entry.into_owned());
        }
        LogOp::TruncateFrom(index) => {
            log.split_off(&index);
        }
        LogOp::CompactTo(index) => match index.checked_add(1) {
            Some(keep_from) => *log = log.split_off(&keep_from),
            None => log.clear(),
        },
        LogOp::SetMeta { .. } | LogOp::SnapshotSaved(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(index: u64) -> LogOp<'static> {
        LogOp::PutEntry {
            index,
            entry: Cow::Owned(vec![]),
        }
    }

    #[test]
    fn a_segment_dies_when_its_entries_are_compacted_overwritten_or_truncated() {
        let mut state = WalState::default();
        for i in 1..=3 {
            state.apply(&put(i), 1);
        }
        state.apply(&put(4), 2);
        state.apply(&put(5), 3);
        state.apply(&LogOp::CompactTo(2), 3);
        assert!(
            !state.liveness.is_dead(1),
            "entry 3 still lives in segment 1"
        );
        state.apply(&put(3), 3);
        assert!(
            state.liveness.is_dead(1),
            "entry 3 was overwritten in segment 3"
        );
        state.apply(&LogOp::TruncateFrom(5), 3);
        assert!(
            !state.liveness.is_dead(3),
            "entry 3 still lives in segment 3"
        );
        state.apply(&LogOp::TruncateFrom(4), 3);
        assert!(state.liveness.is_dead(2), "entry 4 truncated");
        assert!(!state.liveness.is_dead(3));
        assert_eq!(state.liveness.live_len(), 1);
    }

    #[test]
    fn an_entry_written_below_the_compaction_point_keeps_its_segment_alive() {
        let mut state = WalState::default();
        state.apply(&LogOp::CompactTo(10), 1);
        state.apply(&put(4), 1);
        assert!(!state.liveness.is_dead(1));
        state.apply(&LogOp::CompactTo(u64::MAX), 2);
        assert!(state.liveness.is_dead(1));
    }
}
