//! The slot log: an acceptor's accepted proposals per slot and a learner's chosen
//! values, made durable as a sequence of numbered runs of consecutive slots.
//!
//! Durable layout: meta [`META_FIRST_UNCHOSEN`], [`META_LOG_START`] and
//! [`META_RUN_FLOOR`], and one storage log entry per *run*: a [`LogRun`] holding the
//! [`LogEntry`] of each of the consecutive slots one accept (or one catch-up answer)
//! wrote, stored under a run number that grows with every write. A later run
//! overrides an earlier one slot by slot, exactly as rewriting a per-slot entry
//! would, so recovery replays runs in number order. One entry per accept instead of
//! one per slot spares every replica an allocation, a storage write and a later
//! free per slot. Every run goes through the input's `WriteBatch`, so the driver
//! sends an `Accepted` only once the acceptance is durable.
//!
//! In memory the log is dense: a deque indexed by `slot - start`, with `None` for a
//! hole. Multi-Paxos slots are nearly contiguous (a stable leader proposes
//! consecutive slots; holes are slots an acceptor missed), so one index computation
//! replaces a tree search on every acceptance, decision and execution. Holes are
//! bounded by [`HOLE_MAX`].

use super::message::{AcceptedSlot, EntryBytes};
use crate::types::{Ballot, Slot, Value};
use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use synod_core::codec::{
    self,
    postcard_format::{put_varint, varint_len, Sink},
};
use synod_core::WriteBatch;
use synod_core::{Kv, StateMachine};

/// Meta key of the first slot not known chosen.
pub const META_FIRST_UNCHOSEN: &str = "first_unchosen";
/// Meta key of the first slot still held in the log (below it: compacted).
pub const META_LOG_START: &str = "log_start";
/// Meta key of the lowest run number still stored (runs below it were compacted):
/// a restarted replica numbers its next run at least this, never reusing a number.
pub const META_RUN_FLOOR: &str = "run_floor";

/// How far the in-memory chosen prefix may run ahead of its durable copy before an
/// input saves it. The durable copy is only a lower bound used at restart (slots
/// above it are learned or fetched again), so saving it lazily costs a little
/// catch-up after a crash, never safety — and spares every replica a meta write per
/// decision (and a leader a disk write its client's answer would wait for).
pub const FRONTIER_LAG_MAX: u64 = 64;

/// The largest run of empty slots the log opens past its last entry for one
/// acceptance. A healthy acceptor's holes are accepts it missed, at most the
/// leader's window; an accept further out comes from a leader far ahead of us, and
/// the acceptor ignores it (always safe in Paxos) and catches up first, instead of
/// allocating for the gap.
pub const HOLE_MAX: u64 = 1 << 16;

/// What the log holds for one slot.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum LogEntry<S: StateMachine = Kv> {
    /// The acceptor accepted `value` in `ballot` (Phase 2(b)).
    Accepted {
        /// Ballot of the acceptance.
        ballot: Ballot,
        /// Value accepted.
        value: Value<S>,
    },
    /// The learner learned `value` chosen from a peer (catch-up), without accepting it.
    Chosen {
        /// The chosen value.
        value: Value<S>,
    },
}

/// One storage log entry: the entries of consecutive slots from `first`, written by
/// one input (an accept's acceptances, or the values one catch-up answer taught).
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct LogRun<S: StateMachine = Kv> {
    /// Slot of `entries[0]`.
    pub first: Slot,
    /// One entry per slot.
    pub entries: Vec<LogEntry<S>>,
}

/// Writes the header of a [`LogRun`] of `count` entries from `first`, as serde
/// encodes it: `first`, then the length of `entries`.
pub(crate) fn put_run_header(out: &mut impl Sink, first: Slot, count: u64) {
    put_varint(out, first.0);
    put_varint(out, count);
}

/// Bytes [`put_run_header`] writes.
pub(crate) fn run_header_len(first: Slot, count: u64) -> usize {
    varint_len(first.0) + varint_len(count)
}

/// Serde's variant indices (declaration order; below 128, so one byte each).
const ENTRY_ACCEPTED: u64 = 0;
const ENTRY_CHOSEN: u64 = 1;
const VALUE_NOOP: u64 = 0;
const VALUE_COMMAND: u64 = 1;

impl<S: StateMachine> LogEntry<S> {
    /// The value held, whichever way.
    pub fn value(&self) -> &Value<S> {
        match self {
            LogEntry::Accepted { value, .. } | LogEntry::Chosen { value } => value,
        }
    }

    /// The entry's bytes, `codec::encode(self)`, written by hand: acceptors write
    /// entries into every run they store, and postcard's serde path costs several
    /// times more. The destructuring stops the build if a field or variant is added
    /// without updating it; `entries_encode_as_serde_does` checks the bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_BYTES_HINT);
        self.encode_into(&mut out);
        out
    }

    pub(crate) fn encode_into(&self, out: &mut impl Sink) {
        match self {
            LogEntry::Accepted { ballot, value } => put_accepted(out, *ballot, value),
            LogEntry::Chosen { value } => {
                put_varint(out, ENTRY_CHOSEN);
                put_value(out, value);
            }
        }
    }
}

/// Typical bytes of one entry (a small command), to size buffers once.
pub(crate) const ENTRY_BYTES_HINT: usize = 48;

/// The bytes of `LogEntry::Accepted { ballot, value }`, without building one.
pub(crate) fn put_accepted<S: StateMachine>(out: &mut impl Sink, ballot: Ballot, value: &Value<S>) {
    let Ballot { round, node } = ballot;
    put_varint(out, ENTRY_ACCEPTED);
    put_varint(out, round);
    put_varint(out, node.0);
    put_value(out, value);
}

fn put_value<S: StateMachine>(out: &mut impl Sink, value: &Value<S>) {
    match value {
        Value::Noop => put_varint(out, VALUE_NOOP),
        Value::Command(cmd) => {
            put_varint(out, VALUE_COMMAND);
            cmd.encode_with::<S>(out);
        }
    }
}

/// The slot log.
///
/// Invariants (checked on recovery and on every advance):
/// * `entries[k]` is slot `start + k`'s entry (`None`: nothing held), and the last
///   element, if any, is an entry — so equal logs have equal representations;
/// * `start <= first_unchosen`;
/// * every slot in `start..first_unchosen` holds an entry, and its value is the
///   chosen one — so a replica can execute up to `first_unchosen` from its own log;
/// * an `Accepted` entry's ballot only grows, and a slot below `first_unchosen` is
///   never overwritten with another value;
/// * `start <= saved_first_unchosen <= first_unchosen`: the durable copy of the
///   chosen prefix lags the in-memory one (see [`FRONTIER_LAG_MAX`]) but never
///   falls below the durable log start;
/// * every held entry's `run` is the durable run that wrote it (the latest run
///   covering its slot), and `run_floor <= run < next_run`: compaction drops only
///   runs below every held entry's run.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
pub struct SlotLog<S: StateMachine = Kv> {
    entries: VecDeque<Option<Held<S>>>,
    start: Slot,
    first_unchosen: Slot,
    saved_first_unchosen: Slot,
    /// Storage index of the next run written.
    next_run: u64,
    /// Runs below it were compacted away (durable as [`META_RUN_FLOOR`]).
    run_floor: u64,
}

/// A slot's entry and the run that made it durable.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
struct Held<S: StateMachine> {
    entry: LogEntry<S>,
    run: u64,
}

impl<S: StateMachine> Default for SlotLog<S> {
    fn default() -> Self {
        SlotLog {
            entries: VecDeque::new(),
            start: Slot::FIRST,
            first_unchosen: Slot::FIRST,
            saved_first_unchosen: Slot::FIRST,
            next_run: 1,
            run_floor: 1,
        }
    }
}

impl<S: StateMachine> SlotLog<S> {
    /// Rebuilds the log from storage: `runs` by storage index, ascending, so a
    /// later run overrides an earlier one slot by slot, as it did when written.
    ///
    /// # Panics
    /// If the recovered state breaks the invariants (storage corruption).
    pub fn recover(
        start: Slot,
        first_unchosen: Slot,
        run_floor: u64,
        runs: impl IntoIterator<Item = (u64, LogRun<S>)>,
    ) -> SlotLog<S> {
        assert!(
            start <= first_unchosen,
            "log start {start} above {first_unchosen}"
        );
        let mut log = SlotLog {
            entries: VecDeque::new(),
            start,
            first_unchosen,
            saved_first_unchosen: first_unchosen,
            next_run: run_floor.max(1),
            run_floor: run_floor.max(1),
        };
        for (run, LogRun { first, entries }) in runs {
            assert!(
                run >= log.next_run,
                "run {run} out of order or below the compacted floor"
            );
            for (slot, entry) in (first.0..).map(Slot).zip(entries) {
                if slot >= start {
                    log.put(slot, entry, run);
                }
            }
            log.next_run = run + 1;
        }
        let mut s = start;
        while s < first_unchosen {
            assert!(log.entry(s).is_some(), "chosen {s} missing from the log");
            s = s.next();
        }
        log
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
    pub fn entry(&self, slot: Slot) -> Option<&LogEntry<S>> {
        let k = usize::try_from(slot.0.checked_sub(self.start.0)?).ok()?;
        self.entries.get(k)?.as_ref().map(|h| &h.entry)
    }

    /// The proposal accepted at `slot`, if the entry is an acceptance.
    pub fn accepted(&self, slot: Slot) -> Option<(Ballot, &Value<S>)> {
        match self.entry(slot)? {
            LogEntry::Accepted { ballot, value } => Some((*ballot, value)),
            LogEntry::Chosen { .. } => None,
        }
    }

    /// The chosen value of `slot`, if known and still held.
    pub fn chosen(&self, slot: Slot) -> Option<&Value<S>> {
        (slot < self.first_unchosen)
            .then(|| self.entry(slot).map(LogEntry::value))
            .flatten()
    }

    /// The highest slot holding an entry.
    pub fn last_slot(&self) -> Option<Slot> {
        (!self.entries.is_empty()).then(|| self.start.plus(self.entries.len() as u64 - 1))
    }

    /// `true` if accepting at `slot` opens at most [`HOLE_MAX`] empty slots.
    pub fn within_reach(&self, slot: Slot) -> bool {
        let end = self.start.0 + self.entries.len() as u64;
        slot.0.saturating_sub(end) <= HOLE_MAX
    }

    /// Stores `entry` at `slot` (at or above `start`), written durably by `run`,
    /// opening a hole if needed; returns the previous entry.
    #[inline]
    fn put(&mut self, slot: Slot, entry: LogEntry<S>, run: u64) -> Option<LogEntry<S>> {
        let k = usize::try_from(slot.0 - self.start.0).expect("slot offset fits in memory");
        let held = Held { entry, run };
        if let Some(e) = self.entries.get_mut(k) {
            return e.replace(held).map(|h| h.entry);
        }
        while self.entries.len() < k {
            self.entries.push_back(None);
        }
        self.entries.push_back(Some(held));
        None
    }

    /// The storage bytes of the run of our entries `from..=to` (`LogRun` as serde
    /// encodes it, written by hand as [`LogEntry::encode`] is).
    fn encode_run(&self, from: Slot, to: Slot) -> Vec<u8> {
        let count = to.0 - from.0 + 1;
        let header = run_header_len(from, count);
        let mut out = Vec::with_capacity(header + ENTRY_BYTES_HINT * count as usize);
        put_run_header(&mut out, from, count);
        for s in from.0..=to.0 {
            self.entry(Slot(s))
                .unwrap_or_else(|| panic!("run entry s{s} not held"))
                .encode_into(&mut out);
        }
        out
    }

    /// Phase 2(b) write: accept `value` at `slot` in `ballot`. A slot known chosen is
    /// not rewritten (its value is the one any later ballot proposes, asserted when
    /// we still hold it). Returns `true` if an acceptance was recorded.
    ///
    /// # Panics
    /// If the acceptance would go back to a lower ballot, if `ballot` already has
    /// another value here, or if `slot` is not [`within_reach`](Self::within_reach).
    pub fn accept(
        &mut self,
        slot: Slot,
        ballot: Ballot,
        value: Value<S>,
        b: &mut WriteBatch,
    ) -> bool {
        self.accept_run(slot, ballot, [value], None, b).is_some()
    }

    /// [`accept`](Self::accept) for consecutive slots from `first`, one value
    /// each, made durable as one run. The slots recorded are those not known chosen
    /// — a suffix of the run; returns its first slot, `None` if there is none.
    /// `leader`, when the accept's leader encoded the entries (in our process),
    /// gives their bytes (asserted equal to our own encoding in debug builds).
    pub(crate) fn accept_run(
        &mut self,
        first: Slot,
        ballot: Ballot,
        values: impl IntoIterator<Item = Value<S>>,
        leader: Option<&Arc<EntryBytes>>,
        b: &mut WriteBatch,
    ) -> Option<Slot> {
        let run = self.next_run;
        let mut fresh: Option<(Slot, Slot)> = None;
        for (slot, value) in (first.0..).map(Slot).zip(values) {
            if !self.accept_slot(slot, ballot, value, run) {
                continue;
            }
            match &mut fresh {
                Some((_, last)) => {
                    assert_eq!(last.next(), slot, "acceptances of a run not consecutive");
                    *last = slot;
                }
                None => fresh = Some((slot, slot)),
            }
        }
        let (from, to) = fresh?;
        let bytes = match leader {
            Some(entries) => {
                let bytes = entries.run_bytes(from);
                debug_assert_eq!(bytes[..], self.encode_run(from, to), "foreign run bytes");
                bytes
            }
            None => self.encode_run(from, to).into(),
        };
        b.put_entry(run, bytes);
        self.next_run += 1;
        Some(from)
    }

    /// The in-memory part of an acceptance at `slot`, made durable by `run`.
    #[inline(always)]
    fn accept_slot(&mut self, slot: Slot, ballot: Ballot, value: Value<S>, run: u64) -> bool {
        if slot < self.first_unchosen {
            if let Some(chosen) = self.chosen(slot) {
                assert_eq!(
                    *chosen, value,
                    "{slot} was chosen, {ballot} proposes another value"
                );
            }
            return false;
        }
        assert!(
            self.within_reach(slot),
            "{slot} is more than {HOLE_MAX} slots past the log's end"
        );
        let entry = LogEntry::Accepted { ballot, value };
        // One lookup: write the new entry, then check what it replaced.
        if let Some(LogEntry::Accepted {
            ballot: prev,
            value: v,
        }) = self.put(slot, entry, run)
        {
            assert!(
                prev <= ballot,
                "{slot}: acceptance went back from {prev} to {ballot}"
            );
            if prev == ballot {
                let LogEntry::Accepted { value, .. } = self.entry(slot).expect("just written")
                else {
                    unreachable!("just written as an acceptance")
                };
                assert_eq!(v, *value, "{slot}: two values proposed in {ballot}");
            }
        }
        true
    }

    /// Every acceptance at or after `from` in slots not known chosen — what a promise
    /// reports ("Paxos Made Simple" Phase 1(b), for all instances at once).
    pub fn unchosen_from(&self, from: Slot) -> Vec<AcceptedSlot<S>> {
        let from = from.max(self.first_unchosen);
        let skip = usize::try_from(from.0 - self.start.0).unwrap_or(usize::MAX);
        (self.start.0..)
            .map(Slot)
            .zip(&self.entries)
            .skip(skip)
            .filter_map(|(slot, e)| match e.as_ref().map(|h| &h.entry) {
                Some(LogEntry::Accepted { ballot, value }) => Some(AcceptedSlot {
                    slot,
                    ballot: *ballot,
                    value: value.clone(),
                }),
                _ => None,
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
    pub fn learn_chosen(&mut self, first: Slot, values: Vec<Value<S>>, b: &mut WriteBatch) -> bool {
        let before = self.first_unchosen;
        let run = self.next_run;
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
            self.put(slot, LogEntry::Chosen { value }, run);
            self.first_unchosen = slot.next();
        }
        if self.first_unchosen != before {
            // The slots learned are `before..first_unchosen`: one run.
            let last = Slot(self.first_unchosen.0 - 1);
            b.put_entry(run, self.encode_run(before, last));
            self.next_run += 1;
        }
        // Catch-up is rare and writes anyway: save how far it got.
        self.save_frontier(b, true);
        self.first_unchosen != before
    }

    /// Saves the chosen prefix in `b` if it moved and `force` is set or the durable
    /// copy lags by `FRONTIER_LAG_MAX` slots.
    pub fn save_frontier(&mut self, b: &mut WriteBatch, force: bool) {
        let lag = self.first_unchosen.0 - self.saved_first_unchosen.0;
        if lag == 0 || !(force || lag >= FRONTIER_LAG_MAX) {
            return;
        }
        b.set_meta(META_FIRST_UNCHOSEN, codec::encode(&self.first_unchosen));
        self.saved_first_unchosen = self.first_unchosen;
    }

    /// Chosen values from `from`, at most `max` of them (a catch-up answer).
    pub fn chosen_from(&self, from: Slot, max: usize) -> Vec<Value<S>> {
        assert!(
            from >= self.start,
            "{from} is compacted (log starts at {})",
            self.start
        );
        let n = usize::try_from(self.first_unchosen.0.saturating_sub(from.0))
            .unwrap_or(usize::MAX)
            .min(max);
        let skip = usize::try_from(from.0 - self.start.0).unwrap_or(usize::MAX);
        self.entries
            .iter()
            .skip(skip)
            .take(n)
            .map(|e| {
                let held = e.as_ref().expect("chosen slots are held");
                held.entry.value().clone()
            })
            .collect()
    }

    /// Drops every entry below `start` (they are chosen and covered by a snapshot).
    pub fn compact(&mut self, start: Slot, b: &mut WriteBatch) {
        self.compact_with(start, b, |_, _| {});
    }

    /// [`compact`](Self::compact), handing each removed entry to `removed`.
    pub(crate) fn compact_with(
        &mut self,
        start: Slot,
        b: &mut WriteBatch,
        mut removed: impl FnMut(Slot, LogEntry<S>),
    ) {
        assert!(
            start <= self.first_unchosen,
            "compacting unchosen slots below {start}"
        );
        if start <= self.start {
            return;
        }
        // The durable chosen prefix must reach the new start (recovery checks it).
        self.save_frontier(b, true);
        b.set_meta(META_LOG_START, codec::encode(&start));
        let dropped = usize::try_from(start.0 - self.start.0).unwrap_or(usize::MAX);
        let first = self.start.0;
        for (k, entry) in self
            .entries
            .drain(..dropped.min(self.entries.len()))
            .enumerate()
        {
            if let Some(held) = entry {
                removed(Slot(first + k as u64), held.entry);
            }
        }
        self.start = start;
        // A run below the oldest run still holding a kept entry holds only slots
        // below `start` or entries a later run overrode: drop them from storage.
        let floor = self
            .entries
            .iter()
            .flatten()
            .map(|h| h.run)
            .min()
            .unwrap_or(self.next_run);
        if floor > self.run_floor {
            b.compact_to(floor - 1);
            b.set_meta(META_RUN_FLOOR, codec::encode(&floor));
            self.run_floor = floor;
        }
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
        let mut log: SlotLog = SlotLog::default();
        let mut wb = WriteBatch::new();
        log.accept(Slot(1), b(2), Value::Noop, &mut wb);
        log.accept(Slot(2), b(1), Value::Noop, &mut wb);
        log.accept(Slot(3), b(2), Value::Noop, &mut wb);
        assert!(log.learn_in_ballot(Slot(4), b(2)));
        assert_eq!(log.first_unchosen(), Slot(2));
        assert_eq!(log.chosen(Slot(1)), Some(&Value::Noop));
        assert_eq!(log.chosen(Slot(2)), None, "accepted, not known chosen");
        assert_eq!(log.unchosen_from(Slot(1)).len(), 2);
        log.learn_chosen(Slot(2), vec![Value::Noop], &mut wb);
        assert!(log.learn_in_ballot(Slot(4), b(2)));
        assert_eq!(log.first_unchosen(), Slot(4));
        assert!(log.unchosen_from(Slot(1)).is_empty());
    }

    #[test]
    fn recovery_round_trips_and_compaction_keeps_the_suffix() {
        let mut log: SlotLog = SlotLog::default();
        let mut rec = synod_core::Recovered::default();
        let mut wb = WriteBatch::new();
        for s in 1..=6 {
            log.accept(Slot(s), b(1), Value::Noop, &mut wb);
        }
        log.learn_in_ballot(Slot(5), b(1));
        log.compact(Slot(3), &mut wb);
        rec.apply(&wb);
        let back = recovered(&rec);
        assert_eq!(back, log);
        assert_eq!(back.start(), Slot(3));
        assert_eq!(back.chosen_from(Slot(3), 10).len(), 2);
    }

    #[test]
    fn the_chosen_prefix_is_saved_lazily_but_never_below_the_log_start() {
        let mut log: SlotLog = SlotLog::default();
        let mut wb = WriteBatch::new();
        for s in 1..=3 {
            log.accept(Slot(s), b(1), Value::Noop, &mut wb);
        }
        let mut quiet = WriteBatch::new();
        log.learn_in_ballot(Slot(3), b(1));
        log.save_frontier(&mut quiet, false);
        assert!(quiet.is_empty(), "nothing else to write: deferred");
        log.save_frontier(&mut wb, false);
        assert_eq!(wb.ops().len(), 3, "deferred beside the acceptances too");
        log.save_frontier(&mut wb, true);
        assert_eq!(wb.ops().len(), 4, "saved when forced");
        log.learn_in_ballot(Slot(4), b(1));
        let mut compacting = WriteBatch::new();
        log.compact(Slot(4), &mut compacting);
        assert!(compacting
            .ops()
            .iter()
            .any(|op| matches!(op, synod_core::StorageOp::SetMeta { key, .. } if key == META_FIRST_UNCHOSEN)));
    }

    fn put(n: u64, value: &str) -> Value {
        Value::Command(std::sync::Arc::new(synod_core::KvCommand {
            client: synod_core::ClientId(n),
            seq: n,
            op: synod_core::KvOp::Put {
                key: "k".into(),
                value: value.into(),
            },
        }))
    }

    /// Round-trips `log` through the batches it wrote (`rec` holds what was durable).
    fn recovered(rec: &synod_core::Recovered) -> SlotLog {
        let start = rec
            .meta
            .get(META_LOG_START)
            .map_or(Slot::FIRST, |b| codec::decode(b).unwrap());
        let fu = rec
            .meta
            .get(META_FIRST_UNCHOSEN)
            .map_or(Slot::FIRST, |b| codec::decode(b).unwrap());
        let floor = rec
            .meta
            .get(META_RUN_FLOOR)
            .map_or(1, |b| codec::decode(b).unwrap());
        let runs = rec.log.iter().map(|(i, r)| (*i, codec::decode(r).unwrap()));
        SlotLog::recover(start, fu, floor, runs)
    }

    proptest::proptest! {
        #[test]
        fn entries_encode_as_serde_does(
            round in proptest::prelude::any::<u64>(),
            node in proptest::prelude::any::<u64>(),
            client in proptest::prelude::any::<u64>(),
            value in ".{0,200}",
            chosen in proptest::prelude::any::<bool>(),
            noop in proptest::prelude::any::<bool>(),
        ) {
            let value = if noop { Value::Noop } else { put(client, &value) };
            let entry = if chosen {
                LogEntry::Chosen { value }
            } else {
                LogEntry::Accepted { ballot: Ballot { round, node: NodeId(node) }, value }
            };
            let bytes = entry.encode();
            proptest::prop_assert_eq!(&bytes, &codec::encode(&entry));
            proptest::prop_assert_eq!(codec::decode::<LogEntry>(&bytes).unwrap(), entry);
        }
    }

    #[test]
    fn the_dense_log_indexes_slots_across_holes_compaction_and_recovery() {
        let mut log: SlotLog = SlotLog::default();
        let mut rec = synod_core::Recovered::default();
        let mut wb = WriteBatch::new();
        for s in [1, 2, 3, 5, 8] {
            log.accept(Slot(s), b(1), put(s, "v"), &mut wb);
        }
        assert_eq!(log.last_slot(), Some(Slot(8)));
        assert_eq!(log.entry(Slot(4)), None, "a hole");
        assert_eq!(log.entry(Slot(9)), None, "past the end");
        assert_eq!(log.accepted(Slot(5)), Some((b(1), &put(5, "v"))));
        // A higher ballot overwrites in place; the hole at 4 stays one.
        log.accept(Slot(5), b(2), put(50, "w"), &mut wb);
        assert_eq!(log.accepted(Slot(5)), Some((b(2), &put(50, "w"))));
        assert!(log.learn_in_ballot(Slot(9), b(1)));
        assert_eq!(log.first_unchosen(), Slot(4), "stops at the hole");
        log.learn_chosen(Slot(4), vec![put(4, "c"), put(50, "w")], &mut wb);
        assert_eq!(log.first_unchosen(), Slot(6));
        assert_eq!(log.chosen(Slot(4)), Some(&put(4, "c")));
        assert_eq!(
            log.unchosen_from(Slot(1))
                .iter()
                .map(|a| a.slot)
                .collect::<Vec<_>>(),
            vec![Slot(8)]
        );
        log.compact(Slot(3), &mut wb);
        assert_eq!((log.start(), log.entry(Slot(2))), (Slot(3), None));
        assert_eq!(log.chosen(Slot(3)), Some(&put(3, "v")));
        assert_eq!(
            log.chosen_from(Slot(3), 10),
            vec![put(3, "v"), put(4, "c"), put(50, "w")]
        );
        assert_eq!(log.chosen_from(Slot(4), 1), vec![put(4, "c")]);
        rec.apply(&wb);
        assert_eq!(recovered(&rec), log);
        // A snapshot beyond everything held empties the log; it restarts there.
        let mut wb = WriteBatch::new();
        log.install_snapshot(Slot(20), &mut wb);
        assert_eq!(
            (log.start(), log.first_unchosen(), log.last_slot()),
            (Slot(20), Slot(20), None)
        );
        log.accept(Slot(22), b(3), Value::Noop, &mut wb);
        assert_eq!(log.entry(Slot(21)), None);
        assert_eq!(log.accepted(Slot(22)), Some((b(3), &Value::Noop)));
        rec.apply(&wb);
        assert_eq!(recovered(&rec), log);
        // A snapshot inside the log keeps the entries from it on.
        let mut log2 = recovered(&rec);
        let mut wb = WriteBatch::new();
        log2.install_snapshot(Slot(22), &mut wb);
        assert_eq!((log2.start(), log2.first_unchosen()), (Slot(22), Slot(22)));
        assert_eq!(log2.accepted(Slot(22)), Some((b(3), &Value::Noop)));
    }

    /// The storage entry of each `PutEntry` in `wb`, decoded.
    fn runs_in(wb: &WriteBatch) -> Vec<(u64, LogRun)> {
        wb.ops()
            .iter()
            .filter_map(|op| match op {
                synod_core::StorageOp::PutEntry { index, entry } => {
                    Some((*index, codec::decode(entry).unwrap()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_accept_is_one_durable_run_encoded_as_serde_does() {
        let mut log: SlotLog = SlotLog::default();
        let mut wb = WriteBatch::new();
        let values = vec![put(1, "a"), Value::Noop, put(3, "ccc")];
        assert_eq!(
            log.accept_run(Slot(1), b(1), values.clone(), None, &mut wb),
            Some(Slot(1))
        );
        let run = LogRun {
            first: Slot(1),
            entries: values
                .iter()
                .map(|v| LogEntry::Accepted {
                    ballot: b(1),
                    value: v.clone(),
                })
                .collect(),
        };
        assert_eq!(runs_in(&wb), vec![(1, run.clone())]);
        let synod_core::StorageOp::PutEntry { entry, .. } = &wb.ops()[0] else {
            unreachable!("one run written")
        };
        assert_eq!(entry[..], codec::encode(&run)[..]);
        // Slots known chosen are not rewritten: the next run holds the suffix.
        log.learn_in_ballot(Slot(3), b(1));
        let mut wb = WriteBatch::new();
        assert_eq!(
            log.accept_run(Slot(1), b(1), values.clone(), None, &mut wb),
            Some(Slot(3))
        );
        assert_eq!(
            runs_in(&wb),
            vec![(
                2,
                LogRun {
                    first: Slot(3),
                    entries: run.entries[2..].to_vec()
                }
            )]
        );
        let mut wb = WriteBatch::new();
        log.learn_in_ballot(Slot(4), b(1));
        assert_eq!(log.accept_run(Slot(1), b(1), values, None, &mut wb), None);
        assert!(wb.is_empty());
    }

    #[test]
    fn a_later_run_overrides_slot_by_slot_and_compaction_keeps_runs_still_needed() {
        let mut log: SlotLog = SlotLog::default();
        let mut rec = synod_core::Recovered::default();
        let mut wb = WriteBatch::new();
        // Run 1 accepts slots 1..=4 in b1; run 2 re-accepts 2..=3 in b2; run 3 is 5.
        let ones: Vec<Value> = (1..=4).map(|s| put(s, "b1")).collect();
        log.accept_run(Slot(1), b(1), ones, None, &mut wb);
        log.accept_run(Slot(2), b(2), [put(2, "b2"), put(3, "b2")], None, &mut wb);
        log.accept_run(Slot(5), b(2), [put(5, "b2")], None, &mut wb);
        rec.apply(&wb);
        let back = recovered(&rec);
        assert_eq!(back, log);
        assert_eq!(back.accepted(Slot(3)), Some((b(2), &put(3, "b2"))));
        assert_eq!(back.accepted(Slot(4)), Some((b(1), &put(4, "b1"))));
        for (decided, ballot) in [(2, 1), (4, 2), (5, 1), (6, 2)] {
            log.learn_in_ballot(Slot(decided), b(ballot));
        }
        assert_eq!(log.first_unchosen(), Slot(6));
        // Below slot 4 everything is dropped from memory, but run 1 stays stored:
        // slot 4's acceptance lives there (the floor does not move: nothing to
        // drop or to record).
        let mut wb = WriteBatch::new();
        log.compact(Slot(4), &mut wb);
        assert!(!wb.ops().iter().any(|op| matches!(
            op,
            synod_core::StorageOp::CompactTo(_)
        ) || matches!(op, synod_core::StorageOp::SetMeta { key, .. } if key == META_RUN_FLOOR)));
        rec.apply(&wb);
        assert_eq!(rec.log.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(recovered(&rec), log);
        // Past slot 4, runs 1 and 2 hold nothing kept.
        let mut wb = WriteBatch::new();
        log.compact(Slot(5), &mut wb);
        rec.apply(&wb);
        assert_eq!(rec.log.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(recovered(&rec), log);
        let mut wb = WriteBatch::new();
        log.compact(Slot(6), &mut wb);
        rec.apply(&wb);
        assert!(rec.log.is_empty());
        let mut back = recovered(&rec);
        assert_eq!(back, log);
        // A restarted log numbers its next run above every compacted one.
        let mut wb = WriteBatch::new();
        back.accept(Slot(6), b(3), Value::Noop, &mut wb);
        assert_eq!(runs_in(&wb)[0].0, 4);
    }

    #[test]
    fn holes_are_bounded_past_the_last_entry() {
        let mut log: SlotLog = SlotLog::default();
        let mut wb = WriteBatch::new();
        assert!(log.within_reach(Slot(1 + HOLE_MAX)));
        assert!(!log.within_reach(Slot(2 + HOLE_MAX)));
        log.accept(Slot(10), b(1), Value::Noop, &mut wb);
        assert!(log.within_reach(Slot(11 + HOLE_MAX)));
        assert!(!log.within_reach(Slot(12 + HOLE_MAX)));
    }

    #[test]
    fn chosen_values_after_a_gap_are_not_learned() {
        let mut log: SlotLog = SlotLog::default();
        let mut wb = WriteBatch::new();
        assert!(!log.learn_chosen(Slot(3), vec![Value::Noop; 2], &mut wb));
        assert_eq!(log.first_unchosen(), Slot(1), "the prefix jumped a gap");
        assert_eq!((log.chosen(Slot(3)), log.last_slot()), (None, None));
        assert!(log.learn_chosen(Slot(1), vec![Value::Noop; 4], &mut wb));
        assert_eq!(log.first_unchosen(), Slot(5));
    }

    #[test]
    fn the_chosen_prefix_is_saved_only_when_it_moved() {
        let mut log: SlotLog = SlotLog::default();
        let mut wb = WriteBatch::new();
        log.save_frontier(&mut wb, true);
        assert!(wb.is_empty(), "saved a prefix that did not move");
        // Exactly FRONTIER_LAG_MAX behind: saved without being forced, once.
        let values = vec![Value::Noop; FRONTIER_LAG_MAX as usize];
        let mut wb = WriteBatch::new();
        log.accept_run(Slot(1), b(1), values, None, &mut wb);
        log.learn_in_ballot(Slot(1 + FRONTIER_LAG_MAX), b(1));
        let mut wb = WriteBatch::new();
        log.save_frontier(&mut wb, false);
        assert_eq!(wb.ops().len(), 1);
        let mut wb = WriteBatch::new();
        log.save_frontier(&mut wb, true);
        assert!(wb.is_empty());
    }

    #[test]
    #[should_panic(expected = "chosen s2 missing from the log")]
    fn recovery_refuses_a_chosen_prefix_the_runs_do_not_hold() {
        let run = LogRun {
            first: Slot(1),
            entries: vec![LogEntry::Chosen { value: Value::Noop }],
        };
        let _: SlotLog = SlotLog::recover(Slot(1), Slot(3), 1, [(1, run)]);
    }

    #[test]
    #[should_panic(expected = "two values")]
    fn one_value_per_slot_per_ballot() {
        let mut log: SlotLog = SlotLog::default();
        let mut wb = WriteBatch::new();
        log.accept(Slot(1), b(2), put(1, "a"), &mut wb);
        log.accept(Slot(1), b(2), put(1, "b"), &mut wb);
    }

    #[test]
    #[should_panic(expected = "went back")]
    fn acceptance_never_goes_back_to_a_lower_ballot() {
        let mut log: SlotLog = SlotLog::default();
        let mut wb = WriteBatch::new();
        log.accept(Slot(1), b(2), Value::Noop, &mut wb);
        log.accept(Slot(1), b(1), Value::Noop, &mut wb);
    }
}
