//! The storage model: what a node may make durable, and what it gets back after a restart.
//!
//! A node's durable state is a small key → bytes *meta* map (term, vote, promised
//! ballot, …), an indexed *log* (`u64` index → entry bytes) and an optional snapshot.
//! A node describes every change as one [`WriteBatch`] per input; a driver applies the
//! batch atomically and — the persist-before-send rule — only then delivers the
//! messages and replies produced by the same input.
//!
//! [`MemStorage`] is the in-memory implementation with crash semantics used by the
//! simulator and by tests: batches are first *staged*, become durable when *flushed*
//! (in staging order), and a crash discards whatever was still staged.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// The bytes of one encoded log entry, shared rather than copied.
///
/// A protocol that keeps an entry's encoding next to the entry (Raft keeps it inside
/// the command its leader appended) hands that very buffer to the batch with
/// [`EntryBytes::shared`]; in one process several nodes, the batch and the store then
/// hold one buffer. A `Vec<u8>` converts without copying its bytes. Equality,
/// hashing, `Debug` and serde see only the bytes (serialized exactly as a `Vec<u8>`).
#[derive(Clone)]
pub struct EntryBytes(Arc<dyn AsEntryBytes>);

/// A buffer that holds an encoded log entry; see [`EntryBytes::shared`].
pub trait AsEntryBytes: Send + Sync + 'static {
    /// The encoded entry.
    fn entry_bytes(&self) -> &[u8];
}

impl AsEntryBytes for Vec<u8> {
    fn entry_bytes(&self) -> &[u8] {
        self
    }
}

impl EntryBytes {
    /// Shares the encoding `owner` holds.
    pub fn shared<T: AsEntryBytes>(owner: Arc<T>) -> EntryBytes {
        EntryBytes(owner)
    }
}

impl From<Vec<u8>> for EntryBytes {
    fn from(bytes: Vec<u8>) -> EntryBytes {
        EntryBytes(Arc::new(bytes))
    }
}

impl std::ops::Deref for EntryBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.entry_bytes()
    }
}

impl PartialEq for EntryBytes {
    fn eq(&self, other: &EntryBytes) -> bool {
        **self == **other
    }
}

impl Eq for EntryBytes {}

impl std::hash::Hash for EntryBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl std::fmt::Debug for EntryBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl Serialize for EntryBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EntryBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<EntryBytes, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(EntryBytes::from)
    }
}

/// One durable change. Batches apply their ops in order.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum StorageOp {
    /// Set a meta key (e.g. `"term"`) to a value, replacing any previous value.
    SetMeta {
        /// The key, unique within a node.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
    /// Write the log entry at `index`, replacing any entry already there.
    PutEntry {
        /// Log index (protocol-defined; Raft uses 1-based indices, Paxos slots).
        index: u64,
        /// Encoded entry, shared (see [`EntryBytes`]); a store keeps or writes the
        /// bytes as they are.
        entry: EntryBytes,
    },
    /// Remove every log entry with index `>= index` (a follower discarding a conflicting suffix).
    TruncateFrom(u64),
    /// Remove every log entry with index `<= index` (the prefix a snapshot now covers).
    CompactTo(u64),
    /// Replace the snapshot. `meta` is protocol-defined (e.g. last included index and
    /// term, membership); `data` is the state machine image.
    SaveSnapshot(Snapshot),
}

/// A state-machine snapshot as stored.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Protocol-defined description (last included index/term, configuration, …).
    pub meta: Vec<u8>,
    /// The state machine image.
    pub data: Vec<u8>,
}

/// An ordered list of [`StorageOp`]s that a driver makes durable atomically: after a
/// crash either all of it is visible or none of it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct WriteBatch {
    ops: Vec<StorageOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// `true` if the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The ops in application order.
    pub fn ops(&self) -> &[StorageOp] {
        &self.ops
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Takes the ops out, leaving the batch empty (drivers reuse one batch per node).
    pub fn take(&mut self) -> WriteBatch {
        WriteBatch {
            ops: std::mem::take(&mut self.ops),
        }
    }

    /// Removes every op, keeping the allocation.
    pub fn clear(&mut self) {
        self.ops.clear();
    }

    /// Moves `other`'s ops to the end of this batch, in order (a composed node's
    /// parts writing in one input), leaving `other` empty.
    pub fn append(&mut self, other: &mut WriteBatch) {
        self.ops.append(&mut other.ops);
    }

    /// Appends an arbitrary op.
    pub fn push(&mut self, op: StorageOp) {
        self.ops.push(op);
    }

    /// Sets meta `key` to `value`.
    pub fn set_meta(&mut self, key: &str, value: Vec<u8>) {
        self.ops.push(StorageOp::SetMeta {
            key: key.to_owned(),
            value,
        });
    }

    /// Writes the log entry at `index` (a `Vec<u8>`, or [`EntryBytes`] to share an
    /// encoding the protocol keeps).
    pub fn put_entry(&mut self, index: u64, entry: impl Into<EntryBytes>) {
        self.ops.push(StorageOp::PutEntry {
            index,
            entry: entry.into(),
        });
    }

    /// Removes log entries at `index` and above.
    pub fn truncate_from(&mut self, index: u64) {
        self.ops.push(StorageOp::TruncateFrom(index));
    }

    /// Removes log entries at `index` and below.
    pub fn compact_to(&mut self, index: u64) {
        self.ops.push(StorageOp::CompactTo(index));
    }

    /// Replaces the snapshot.
    pub fn save_snapshot(&mut self, snapshot: Snapshot) {
        self.ops.push(StorageOp::SaveSnapshot(snapshot));
    }

    /// Total payload bytes, for accounting (disk-bandwidth models, metrics).
    pub fn payload_bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                StorageOp::SetMeta { key, value } => key.len() + value.len(),
                StorageOp::PutEntry { entry, .. } => entry.len() + 8,
                StorageOp::TruncateFrom(_) | StorageOp::CompactTo(_) => 8,
                StorageOp::SaveSnapshot(s) => s.meta.len() + s.data.len(),
            })
            .sum()
    }
}

/// Everything a node had made durable, handed back to it on (re)start.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Recovered {
    /// Meta map.
    pub meta: BTreeMap<String, Vec<u8>>,
    /// Log entries by index.
    pub log: BTreeMap<u64, Vec<u8>>,
    /// The latest saved snapshot, if any.
    pub snapshot: Option<Snapshot>,
}

impl Recovered {
    /// `true` on a node's very first start (nothing was ever persisted).
    pub fn is_fresh(&self) -> bool {
        self.meta.is_empty() && self.log.is_empty() && self.snapshot.is_none()
    }

    /// Applies one batch, exactly as a durable store must.
    pub fn apply(&mut self, batch: &WriteBatch) {
        self.apply_owned(batch.clone());
    }

    /// Applies one batch, taking its buffers instead of copying them.
    pub fn apply_owned(&mut self, batch: WriteBatch) {
        for op in batch.ops {
            match op {
                StorageOp::SetMeta { key, value } => {
                    self.meta.insert(key, value);
                }
                StorageOp::PutEntry { index, entry } => {
                    self.log.insert(index, entry.to_vec());
                }
                StorageOp::TruncateFrom(index) => {
                    self.log.split_off(&index);
                }
                StorageOp::CompactTo(index) => match index.checked_add(1) {
                    Some(keep_from) => self.log = self.log.split_off(&keep_from),
                    None => self.log.clear(),
                },
                StorageOp::SaveSnapshot(s) => self.snapshot = Some(s),
            }
        }
    }
}

/// A log keyed by index, stored densely: protocol logs are contiguous (Raft, Zab) or
/// nearly so (Paxos slots), so a deque with occasional holes beats a tree.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
struct DenseLog {
    /// Index of `slots[0]`.
    first: u64,
    slots: VecDeque<Option<EntryBytes>>,
}

/// Largest gap a [`DenseLog`] accepts between its entries; beyond it a protocol is
/// writing indices no real log has, and we stop rather than allocate without bound.
const DENSE_GAP_MAX: u64 = 1 << 24;

impl DenseLog {
    fn put(&mut self, index: u64, entry: EntryBytes) {
        if self.slots.is_empty() {
            self.first = index;
        }
        if index >= self.first && index - self.first == self.slots.len() as u64 {
            self.slots.push_back(Some(entry)); // the common case: appending
            return;
        }
        if index < self.first {
            assert!(
                self.first - index <= DENSE_GAP_MAX,
                "log index {index} far below the log"
            );
            for _ in index..self.first {
                self.slots.push_front(None);
            }
            self.first = index;
        }
        let k = index - self.first;
        assert!(
            k <= self.slots.len() as u64 + DENSE_GAP_MAX,
            "log index {index} leaves a gap of more than {DENSE_GAP_MAX} entries"
        );
        let k = k as usize;
        while self.slots.len() <= k {
            self.slots.push_back(None);
        }
        self.slots[k] = Some(entry);
    }

    fn truncate_from(&mut self, index: u64) {
        if index <= self.first {
            self.slots.clear();
        } else {
            let keep = (index - self.first).min(self.slots.len() as u64) as usize;
            self.slots.truncate(keep);
        }
        while self.slots.back().is_some_and(Option::is_none) {
            self.slots.pop_back();
        }
    }

    fn compact_to(&mut self, index: u64) {
        while !self.slots.is_empty() && self.first <= index {
            self.slots.pop_front();
            self.first += 1;
        }
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.first += 1;
        }
    }

    fn to_map(&self) -> BTreeMap<u64, Vec<u8>> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(k, e)| e.as_ref().map(|e| (self.first + k as u64, e.to_vec())))
            .collect()
    }
}

/// The durable part of a [`MemStorage`].
#[derive(Clone, PartialEq, Eq, Debug, Default)]
struct Durable {
    meta: BTreeMap<String, Vec<u8>>,
    log: DenseLog,
    snapshot: Option<Snapshot>,
}

impl Durable {
    fn apply(&mut self, ops: impl Iterator<Item = StorageOp>) {
        for op in ops {
            match op {
                StorageOp::SetMeta { key, value } => {
                    self.meta.insert(key, value);
                }
                StorageOp::PutEntry { index, entry } => self.log.put(index, entry),
                StorageOp::TruncateFrom(index) => self.log.truncate_from(index),
                StorageOp::CompactTo(index) => self.log.compact_to(index),
                StorageOp::SaveSnapshot(s) => self.snapshot = Some(s),
            }
        }
    }
}

/// In-memory storage with crash semantics.
///
/// Batches are [`stage`](MemStorage::stage)d in order and become durable when
/// [`flush_one`](MemStorage::flush_one) (or [`flush_all`](MemStorage::flush_all)) is
/// called; [`crash`](MemStorage::crash) discards the staged ones. This is how the
/// simulator models a disk whose writes take time: a crash in between loses exactly
/// what had not been flushed.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct MemStorage {
    durable: Durable,
    staged: VecDeque<WriteBatch>,
    flushed_batches: u64,
}

impl MemStorage {
    /// Empty storage.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Queues a batch; it is not durable yet.
    pub fn stage(&mut self, batch: WriteBatch) {
        self.staged.push_back(batch);
    }

    /// Makes the oldest staged batch durable. Returns `false` if none was staged.
    pub fn flush_one(&mut self) -> bool {
        match self.staged.pop_front() {
            Some(batch) => {
                self.durable.apply(batch.ops.into_iter());
                self.flushed_batches += 1;
                true
            }
            None => false,
        }
    }

    /// Makes every staged batch durable.
    pub fn flush_all(&mut self) {
        while self.flush_one() {}
    }

    /// Stages and flushes in one step (a synchronous disk).
    pub fn persist(&mut self, batch: WriteBatch) {
        if self.staged.is_empty() {
            self.durable.apply(batch.ops.into_iter());
            self.flushed_batches += 1;
        } else {
            self.stage(batch);
            self.flush_all();
        }
    }

    /// As [`persist`](MemStorage::persist), but empties `batch` in place so the
    /// caller can reuse its allocation for the next input (a driver that keeps one
    /// `Effects` per node: its batch then stops allocating once warm).
    pub fn persist_from(&mut self, batch: &mut WriteBatch) {
        if !self.staged.is_empty() {
            self.flush_all();
        }
        self.durable.apply(batch.ops.drain(..));
        self.flushed_batches += 1;
    }

    /// Discards every staged batch, as a power failure would. Durable state is kept.
    pub fn crash(&mut self) -> usize {
        let lost = self.staged.len();
        self.staged.clear();
        lost
    }

    /// Number of staged (not yet durable) batches.
    pub fn staged_len(&self) -> usize {
        self.staged.len()
    }

    /// Number of batches made durable so far (a sync counter for tests).
    pub fn flushed_batches(&self) -> u64 {
        self.flushed_batches
    }

    /// The value of durable meta `key`, if set.
    pub fn meta(&self, key: &str) -> Option<&[u8]> {
        self.durable.meta.get(key).map(Vec::as_slice)
    }

    /// Number of durable log entries.
    pub fn log_len(&self) -> usize {
        self.durable
            .log
            .slots
            .iter()
            .filter(|e| e.is_some())
            .count()
    }

    /// A copy of the durable state, as a restarting node would see it.
    pub fn recover(&self) -> Recovered {
        Recovered {
            meta: self.durable.meta.clone(),
            log: self.durable.log.to_map(),
            snapshot: self.durable.snapshot.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `EntryBytes` is its bytes to everything but the allocator: serialized exactly
    /// as a `Vec<u8>` (so stored batches do not change), equal and hashed by content,
    /// and a shared owner's buffer is not copied.
    #[test]
    fn entry_bytes_are_their_bytes_and_share_the_owners_buffer() {
        struct Owner([u8; 3]);
        impl AsEntryBytes for Owner {
            fn entry_bytes(&self) -> &[u8] {
                &self.0
            }
        }
        let owner = Arc::new(Owner([1, 2, 3]));
        let shared = EntryBytes::shared(Arc::clone(&owner));
        let owned = EntryBytes::from(vec![1, 2, 3]);
        assert_eq!(shared, owned);
        assert_eq!(shared.as_ptr(), owner.0.as_ptr(), "no copy");
        let encoded = crate::codec::encode(&shared);
        assert_eq!(encoded, crate::codec::encode(&vec![1u8, 2, 3]));
        assert_eq!(crate::codec::decode::<EntryBytes>(&encoded).unwrap(), owned);
        let hash = |b: &EntryBytes| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            b.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&shared), hash(&owned));
        assert_eq!(format!("{shared:?}"), "[1, 2, 3]");
    }

    fn batch(f: impl FnOnce(&mut WriteBatch)) -> WriteBatch {
        let mut b = WriteBatch::new();
        f(&mut b);
        b
    }

    #[test]
    fn crash_loses_exactly_the_staged_batches() {
        let mut s = MemStorage::new();
        s.stage(batch(|b| b.set_meta("term", vec![1])));
        s.stage(batch(|b| b.put_entry(1, vec![10])));
        s.flush_one();
        s.stage(batch(|b| b.set_meta("term", vec![2])));
        assert_eq!(s.crash(), 2);
        let r = s.recover();
        assert_eq!(r.meta.get("term"), Some(&vec![1]));
        assert!(r.log.is_empty(), "the unflushed append must be lost");
    }

    #[test]
    fn truncate_and_compact_bound_the_log_from_both_ends() {
        let mut r = Recovered::default();
        r.apply(&batch(|b| {
            for i in 1..=10 {
                b.put_entry(i, vec![i as u8]);
            }
            b.truncate_from(8);
            b.compact_to(3);
        }));
        let idx: Vec<u64> = r.log.keys().copied().collect();
        assert_eq!(idx, vec![4, 5, 6, 7]);
        r.apply(&batch(|b| b.compact_to(u64::MAX)));
        assert!(r.log.is_empty());
    }

    #[test]
    fn batches_apply_in_order_within_and_across() {
        let mut s = MemStorage::new();
        s.persist(batch(|b| {
            b.put_entry(1, vec![1]);
            b.put_entry(1, vec![2]);
        }));
        s.persist(batch(|b| {
            b.save_snapshot(Snapshot {
                meta: vec![9],
                data: vec![],
            })
        }));
        assert_eq!(s.recover().log[&1], vec![2]);
        assert_eq!(s.recover().snapshot.map(|x| x.meta), Some(vec![9]));
        assert_eq!(s.flushed_batches(), 2);
        assert!(!s.recover().is_fresh());
    }

    #[test]
    fn persist_from_empties_the_batch_and_orders_after_staged_batches() {
        let mut s = MemStorage::new();
        s.stage(batch(|b| b.put_entry(1, vec![1])));
        let mut b = batch(|b| {
            b.put_entry(1, vec![2]);
            b.set_meta("term", vec![3]);
        });
        s.persist_from(&mut b);
        assert!(b.is_empty());
        assert_eq!(s.staged_len(), 0);
        assert_eq!(s.flushed_batches(), 2);
        assert_eq!(
            s.recover().log[&1],
            vec![2],
            "the staged batch applies first"
        );
        assert_eq!(s.meta("term"), Some(&[3][..]));
    }

    /// MemStorage's dense log must agree with the reference semantics of
    /// `Recovered::apply` for any sequence of ops, including holes.
    #[test]
    fn dense_log_matches_reference_semantics() {
        use proptest::prelude::*;
        let op = prop_oneof![
            (0u64..40, any::<u8>()).prop_map(|(i, b)| StorageOp::PutEntry {
                index: i,
                entry: vec![b].into()
            }),
            (0u64..40).prop_map(StorageOp::TruncateFrom),
            (0u64..40).prop_map(StorageOp::CompactTo),
        ];
        proptest!(|(ops in prop::collection::vec(op, 0..60))| {
            let mut reference = Recovered::default();
            let mut mem = MemStorage::new();
            for op in ops {
                let mut b = WriteBatch::new();
                b.push(op);
                reference.apply(&b);
                mem.persist(b);
                prop_assert_eq!(&mem.recover().log, &reference.log);
            }
        });
    }

    /// Different bytes are different entries, by equality and (here) by hash.
    #[test]
    fn entry_bytes_differ_when_their_bytes_do() {
        let (a, b) = (
            EntryBytes::from(vec![1, 2, 3]),
            EntryBytes::from(vec![1, 2, 4]),
        );
        assert_ne!(a, b);
        let hash = |b: &EntryBytes| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            b.hash(&mut h);
            h.finish()
        };
        assert_ne!(hash(&a), hash(&b));
    }

    /// A batch lists its ops in the order written; `append` moves another batch's
    /// ops behind them (a composed node's parts writing in one input) and `take`
    /// moves them all out; `payload_bytes` counts keys, values, entries (+ 8 for the
    /// index), snapshots, and 8 per truncation or compaction.
    #[test]
    fn a_batch_keeps_its_ops_in_order_and_counts_its_payload() {
        let mut a = batch(|b| {
            b.set_meta("term", vec![1, 2]);
            b.put_entry(1, vec![9; 10]);
        });
        let mut b = batch(|b| {
            b.truncate_from(5);
            b.push(StorageOp::CompactTo(0));
            b.save_snapshot(Snapshot {
                meta: vec![1],
                data: vec![2; 3],
            });
        });
        assert_eq!((a.len(), a.is_empty()), (2, false));
        a.append(&mut b);
        assert!(b.is_empty());
        let kinds: Vec<&str> = (a.ops().iter())
            .map(|op| match op {
                StorageOp::SetMeta { .. } => "meta",
                StorageOp::PutEntry { .. } => "entry",
                StorageOp::TruncateFrom(_) => "truncate",
                StorageOp::CompactTo(_) => "compact",
                StorageOp::SaveSnapshot(_) => "snapshot",
            })
            .collect();
        assert_eq!(kinds, ["meta", "entry", "truncate", "compact", "snapshot"]);
        assert_eq!(a.payload_bytes(), (4 + 2) + (10 + 8) + 8 + 8 + (1 + 3));
        let taken = a.take();
        assert!(a.is_empty());
        assert_eq!(taken.len(), 5);
        assert!(WriteBatch::new().is_empty());
    }

    /// A node's first boot is told apart from a restart: anything persisted — a meta
    /// key, an entry, a snapshot — means it was here before.
    #[test]
    fn only_a_store_that_never_persisted_anything_is_fresh() {
        assert!(Recovered::default().is_fresh());
        let writes: [fn(&mut WriteBatch); 3] = [
            |b| b.set_meta("k", vec![]),
            |b| b.put_entry(1, vec![]),
            |b| b.save_snapshot(Snapshot::default()),
        ];
        for (i, write) in writes.iter().enumerate() {
            let mut rec = Recovered::default();
            rec.apply(&batch(write));
            assert!(!rec.is_fresh(), "write {i}");
        }
    }

    /// The store's counters for tests and drivers: batches staged and not yet
    /// durable, and durable log entries (holes not counted).
    #[test]
    fn staged_and_durable_counts_follow_stage_flush_and_crash() {
        let mut s = MemStorage::new();
        s.persist(batch(|b| {
            b.put_entry(1, vec![1]);
            b.put_entry(3, vec![3]);
        }));
        assert_eq!((s.log_len(), s.staged_len()), (2, 0), "a hole is no entry");
        s.stage(batch(|b| b.put_entry(4, vec![4])));
        s.stage(batch(|b| b.put_entry(5, vec![5])));
        assert_eq!((s.log_len(), s.staged_len()), (2, 2));
        assert!(s.flush_one());
        assert_eq!((s.log_len(), s.staged_len()), (3, 1));
        assert_eq!(s.crash(), 1);
        assert_eq!((s.log_len(), s.staged_len()), (3, 0));
    }
}
