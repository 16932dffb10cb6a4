//! The replicated log (§5.3) as one node holds it: a contiguous run of entries after a
//! compaction point, with the operations the paper's rules need.
//!
//! Every mutation also writes the matching [`WriteBatch`] op, so memory and storage
//! cannot drift apart: entries are stored under their index, the compaction point
//! under the meta key [`META_LOG_PREV`].
//!
//! Invariants (checked by `assert!` where they could be broken):
//! * entries are contiguous: `entries[k].index == prev_index + 1 + k`;
//! * terms never decrease along the log;
//! * a committed entry is never truncated (§5.4 / Leader Completeness).

use crate::types::{Entry, LogIndex, Term};
use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use synod_core::{codec, Kv, StateMachine, WriteBatch};

/// Meta key of the compaction point `(index, term)`.
pub const META_LOG_PREV: &str = "log_prev";

/// Where the log starts: the index and term of the entry just before the first one
/// held (the last compacted entry), `(0, 0)` for a log that was never compacted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct LogPrev {
    /// Index of the last compacted entry.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
}

/// A node's log.
#[derive(Clone, Debug, Default)]
#[derive_where(PartialEq, Eq, Hash)]
pub struct RaftLog<S: StateMachine = Kv> {
    prev: LogPrev,
    entries: VecDeque<Entry<S>>,
}

/// Why a follower could not append (the consistency check of §5.3 failed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mismatch {
    /// The follower's conflicting term at `prev_index`, if it has an entry there.
    pub conflict_term: Option<Term>,
    /// The first index the leader should try next: the first index of
    /// `conflict_term`, or one past the follower's last entry.
    pub conflict_index: LogIndex,
}

impl<S: StateMachine> RaftLog<S> {
    /// Rebuilds the log from storage. Entries at or below `prev` are ignored (they are
    /// compacted); the rest must be contiguous.
    pub fn recover(prev: LogPrev, stored: impl IntoIterator<Item = Entry<S>>) -> RaftLog<S> {
        let mut log = RaftLog {
            prev,
            entries: VecDeque::new(),
        };
        for e in stored {
            if e.index <= prev.index {
                continue;
            }
            assert_eq!(
                e.index,
                log.last_index().next(),
                "stored log has a hole before {}",
                e.index
            );
            assert!(
                e.term >= log.last_term(),
                "stored log has a decreasing term at {}",
                e.index
            );
            log.entries.push_back(e);
        }
        log
    }

    /// The compaction point.
    pub fn prev(&self) -> LogPrev {
        self.prev
    }

    /// Index of the first entry held (may exceed `last_index` when empty).
    pub fn first_index(&self) -> LogIndex {
        self.prev.index.next()
    }

    /// Index of the last entry (or of the compaction point if none is held).
    pub fn last_index(&self) -> LogIndex {
        self.entries.back().map_or(self.prev.index, |e| e.index)
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.prev.term, |e| e.term)
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` if no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The term of the entry at `index`, if known (held, or the compaction point).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.prev.index {
            return Some(self.prev.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry<S>> {
        let offset = index.0.checked_sub(self.first_index().0)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Up to `max` entries starting at `from` (which must be held).
    pub fn slice(&self, from: LogIndex, max: usize) -> Vec<Entry<S>> {
        let Some(offset) = from.0.checked_sub(self.first_index().0) else {
            return Vec::new();
        };
        let start = (offset as usize).min(self.entries.len());
        let end = start + max.min(self.entries.len() - start);
        self.entries.range(start..end).cloned().collect()
    }

    /// §5.4.1 election restriction: is a log ending at `(last_index, last_term)` at
    /// least as up-to-date as ours? Compare last terms, then lengths.
    pub fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// The last index holding an entry of `term`, if any is held.
    pub fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        self.entries
            .iter()
            .rev()
            .skip_while(|e| e.term > term)
            .take_while(|e| e.term == term)
            .map(|e| e.index)
            .next()
    }

    /// Leader append (§5.3): the entry goes at the end of the log.
    pub fn append(&mut self, entry: Entry<S>, batch: &mut WriteBatch) {
        assert_eq!(
            entry.index,
            self.last_index().next(),
            "leader append out of place"
        );
        assert!(
            entry.term >= self.last_term(),
            "leader append with a smaller term"
        );
        batch.put_entry(entry.index.0, entry.encode());
        self.entries.push_back(entry);
    }

    /// Follower side of AppendEntries (§5.3, Figure 2 receiver rules 2–4): check that
    /// our log matches at `prev_index`/`prev_term`, delete a conflicting suffix, append
    /// what is new. Returns the index of the last entry the message vouches for.
    pub fn append_from_leader(
        &mut self,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry<S>>,
        commit: LogIndex,
        batch: &mut WriteBatch,
    ) -> Result<LogIndex, Mismatch> {
        if prev_index < self.prev.index {
            // The leader is behind our compaction point: everything compacted is
            // committed, hence identical; skip the part we no longer hold.
            let skip = (self.prev.index.0 - prev_index.0) as usize;
            if skip >= entries.len() {
                return Ok(prev_index.max(LogIndex(prev_index.0 + entries.len() as u64)));
            }
            let rest: Vec<Entry<S>> = entries.into_iter().skip(skip).collect();
            return self.append_from_leader(self.prev.index, self.prev.term, rest, commit, batch);
        }
        match self.term_at(prev_index) {
            Some(t) if t == prev_term => {}
            Some(t) => return Err(self.mismatch_at(prev_index, t)),
            None => {
                return Err(Mismatch {
                    conflict_term: None,
                    conflict_index: self.last_index().next(),
                })
            }
        }
        for (k, e) in entries.iter().enumerate() {
            assert_eq!(
                e.index.0,
                prev_index.0 + 1 + k as u64,
                "AppendEntries entries must be contiguous"
            );
        }
        let last_new = LogIndex(prev_index.0 + entries.len() as u64);
        for e in entries {
            match self.term_at(e.index) {
                Some(t) if t == e.term => continue, // already held (Log Matching)
                Some(_) => {
                    assert!(
                        e.index > commit,
                        "Leader Completeness broken: truncating committed {} (commit {})",
                        e.index,
                        commit
                    );
                    self.truncate_from(e.index, batch);
                }
                None => {}
            }
            assert_eq!(
                e.index,
                self.last_index().next(),
                "append must extend the log"
            );
            assert!(
                e.term >= self.last_term(),
                "terms decrease along the log at {}",
                e.index
            );
            batch.put_entry(e.index.0, e.encode());
            self.entries.push_back(e);
        }
        Ok(last_new)
    }

    fn mismatch_at(&self, index: LogIndex, term: Term) -> Mismatch {
        // Fast backtracking (§5.3, last paragraphs): report the first index of the
        // conflicting term so the leader can skip the whole term in one round trip.
        let first_of_term = self
            .entries
            .iter()
            .take_while(|e| e.index <= index)
            .find(|e| e.term == term)
            .map_or(self.first_index(), |e| e.index);
        Mismatch {
            conflict_term: Some(term),
            conflict_index: first_of_term,
        }
    }

    fn truncate_from(&mut self, index: LogIndex, batch: &mut WriteBatch) {
        let keep = (index.0 - self.first_index().0) as usize;
        self.entries.truncate(keep);
        batch.truncate_from(index.0);
    }

    /// Drops entries up to and including `index` (which must be held or be the
    /// compaction point), recording the new compaction point.
    pub fn compact_to(&mut self, index: LogIndex, batch: &mut WriteBatch) {
        if index <= self.prev.index {
            return;
        }
        let term = self.term_at(index).expect("compact only to a held index");
        let drop = (index.0 - self.prev.index.0) as usize;
        self.entries.drain(..drop);
        self.prev = LogPrev { index, term };
        batch.set_meta(META_LOG_PREV, codec::encode(&self.prev));
        batch.compact_to(index.0);
    }

    /// Installs a snapshot covering everything up to `(index, term)` (§7): if we hold
    /// a matching entry at `index`, the suffix after it is kept; otherwise the whole log
    /// is discarded.
    pub fn restart_at_snapshot(&mut self, index: LogIndex, term: Term, batch: &mut WriteBatch) {
        if self.term_at(index) == Some(term) && index >= self.prev.index {
            self.compact_to(index, batch);
            return;
        }
        self.entries.clear();
        self.prev = LogPrev { index, term };
        batch.truncate_from(0);
        batch.set_meta(META_LOG_PREV, codec::encode(&self.prev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Payload;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: Payload::Noop,
        }
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        let mut log = RaftLog::default();
        let mut b = WriteBatch::new();
        for (i, &t) in terms.iter().enumerate() {
            log.append(e(i as u64 + 1, t), &mut b);
        }
        log
    }

    fn terms(log: &RaftLog) -> Vec<u64> {
        log.entries.iter().map(|e| e.term.0).collect()
    }

    #[test]
    fn raft_5_3_consistency_check_rejects_a_missing_prev_entry() {
        let mut log = log_of(&[1, 1]);
        let r = log.append_from_leader(
            LogIndex(5),
            Term(1),
            vec![e(6, 1)],
            LogIndex(0),
            &mut WriteBatch::new(),
        );
        assert_eq!(
            r,
            Err(Mismatch {
                conflict_term: None,
                conflict_index: LogIndex(3)
            })
        );
    }

    #[test]
    fn raft_5_3_conflicting_suffix_is_deleted_and_replaced() {
        let mut log = log_of(&[1, 1, 2, 2]);
        let mut b = WriteBatch::new();
        let r = log.append_from_leader(
            LogIndex(2),
            Term(1),
            vec![e(3, 3), e(4, 3)],
            LogIndex(2),
            &mut b,
        );
        assert_eq!(r, Ok(LogIndex(4)));
        assert_eq!(terms(&log), vec![1, 1, 3, 3]);
        assert!(b
            .ops()
            .iter()
            .any(|op| matches!(op, synod_core::StorageOp::TruncateFrom(3))));
    }

    #[test]
    fn raft_5_3_duplicate_or_stale_append_changes_nothing() {
        let mut log = log_of(&[1, 1, 2]);
        let mut b = WriteBatch::new();
        // An old, shorter AppendEntries arrives late: it must not truncate index 3.
        let r = log.append_from_leader(
            LogIndex(0),
            Term(0),
            vec![e(1, 1), e(2, 1)],
            LogIndex(0),
            &mut b,
        );
        assert_eq!(r, Ok(LogIndex(2)));
        assert_eq!(terms(&log), vec![1, 1, 2]);
        assert!(b.is_empty());
    }

    #[test]
    fn raft_5_3_fast_backtracking_hint_names_first_index_of_conflicting_term() {
        let mut log = log_of(&[1, 2, 2, 2, 2]);
        let r = log.append_from_leader(
            LogIndex(5),
            Term(3),
            vec![],
            LogIndex(0),
            &mut WriteBatch::new(),
        );
        assert_eq!(
            r,
            Err(Mismatch {
                conflict_term: Some(Term(2)),
                conflict_index: LogIndex(2)
            })
        );
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(1)), Some(LogIndex(1)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
    }

    #[test]
    fn raft_5_4_1_up_to_date_compares_last_term_then_length() {
        let log = log_of(&[1, 2, 2]);
        assert!(
            log.is_up_to_date(LogIndex(1), Term(3)),
            "higher last term wins"
        );
        assert!(
            !log.is_up_to_date(LogIndex(9), Term(1)),
            "longer but older loses"
        );
        assert!(
            log.is_up_to_date(LogIndex(3), Term(2)),
            "equal is up to date"
        );
        assert!(
            !log.is_up_to_date(LogIndex(2), Term(2)),
            "shorter same term loses"
        );
    }

    #[test]
    #[should_panic(expected = "Leader Completeness")]
    fn truncating_a_committed_entry_stops_the_node() {
        let mut log = log_of(&[1, 1, 2]);
        let _ = log.append_from_leader(
            LogIndex(1),
            Term(1),
            vec![e(2, 3)],
            LogIndex(2),
            &mut WriteBatch::new(),
        );
    }

    #[test]
    fn compaction_keeps_terms_answerable_at_the_boundary() {
        let mut log = log_of(&[1, 1, 2, 3]);
        let mut b = WriteBatch::new();
        log.compact_to(LogIndex(2), &mut b);
        assert_eq!(log.first_index(), LogIndex(3));
        assert_eq!(log.term_at(LogIndex(2)), Some(Term(1)));
        assert_eq!(log.term_at(LogIndex(1)), None);
        // A leader behind our compaction point is skipped forward, not rejected.
        let r = log.append_from_leader(
            LogIndex(0),
            Term(0),
            vec![e(1, 1), e(2, 1), e(3, 2)],
            LogIndex(0),
            &mut b,
        );
        assert_eq!(r, Ok(LogIndex(3)));
        assert_eq!(terms(&log), vec![2, 3]);
        assert_eq!((log.len(), log.is_empty()), (2, false));
        // … and one wholly behind it vouches for what it sent, nothing more.
        let r = log.append_from_leader(LogIndex(0), Term(0), vec![e(1, 1)], LogIndex(0), &mut b);
        assert_eq!(r, Ok(LogIndex(1)));
        let r = log.append_from_leader(LogIndex(1), Term(1), vec![], LogIndex(0), &mut b);
        assert_eq!(r, Ok(LogIndex(1)));
        assert_eq!(terms(&log), vec![2, 3]);
        let back = RaftLog::recover(log.prev(), log.entries.iter().cloned());
        assert_eq!(back, log);
    }

    #[test]
    fn raft_7_snapshot_keeps_a_matching_suffix_and_drops_a_conflicting_log() {
        let mut log = log_of(&[1, 1, 2, 2]);
        let mut b = WriteBatch::new();
        log.restart_at_snapshot(LogIndex(2), Term(1), &mut b);
        assert_eq!(terms(&log), vec![2, 2]);
        log.restart_at_snapshot(LogIndex(10), Term(5), &mut b);
        assert!(log.is_empty());
        assert_eq!(log.last_index(), LogIndex(10));
        assert_eq!(log.last_term(), Term(5));
    }
}
