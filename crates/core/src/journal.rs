//! A durable journal over the storage model, for protocols whose state is not a
//! replicated log (2PC's coordinator and participants, vvsync's replicas): records at
//! consecutive log indices, behind a snapshot of the state they built, compacted
//! when the snapshot is taken. Recovery is the snapshot's image and the records
//! after it, in order; bytes that do not decode, or a gap, are an error naming what
//! and where.

use crate::{codec, Recovered, Snapshot, WriteBatch};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Where the next record goes, and when a snapshot is due.
#[derive(Clone, Debug)]
pub struct Journal {
    /// The next record's index.
    next: u64,
    /// The snapshot covers every record through this index.
    compacted: u64,
    /// Records between snapshots.
    every: u64,
}

impl Journal {
    /// A journal that asks for a snapshot every `every` records.
    pub fn new(every: u64) -> Journal {
        Journal {
            next: 1,
            compacted: 0,
            every,
        }
    }

    /// The snapshot's image, if any, and the records after it in order; bytes that do
    /// not decode, or a gap, are an error naming what and where (`who`: the role).
    #[allow(clippy::type_complexity)]
    pub fn recover<I: DeserializeOwned, R: DeserializeOwned>(
        &mut self,
        who: &str,
        rec: &Recovered,
    ) -> Result<(Option<I>, Vec<R>), String> {
        let mut image = None;
        if let Some(snap) = &rec.snapshot {
            image = Some(
                codec::decode(&snap.data).map_err(|e| format!("corrupt {who} snapshot: {e}"))?,
            );
            self.compacted = codec::decode(&snap.meta)
                .map_err(|e| format!("corrupt {who} snapshot meta: {e}"))?;
            self.next = self.compacted + 1;
        }
        let mut records = Vec::new();
        for (&index, bytes) in rec.log.range(self.compacted + 1..) {
            if index != self.next {
                let last = self.next - 1;
                return Err(format!("{who} journal gap: record {index} after {last}"));
            }
            let record = codec::decode(bytes)
                .map_err(|e| format!("corrupt {who} journal record {index}: {e}"))?;
            records.push(record);
            self.next += 1;
        }
        Ok((image, records))
    }

    /// Adds `record` to `batch`.
    pub fn append<R: Serialize>(&mut self, record: &R, batch: &mut WriteBatch) {
        batch.put_entry(self.next, codec::encode(record));
        self.next += 1;
    }

    /// Adds a record already encoded (`codec::encode` of it) to `batch`.
    pub fn append_encoded(&mut self, record: Vec<u8>, batch: &mut WriteBatch) {
        batch.put_entry(self.next, record);
        self.next += 1;
    }

    /// Enough records since the last snapshot.
    pub fn snapshot_due(&self) -> bool {
        self.next > self.compacted + self.every
    }

    /// Saves `image` as covering every record so far and compacts them away.
    pub fn snapshot<I: Serialize>(&mut self, image: &I, batch: &mut WriteBatch) {
        let at = self.next - 1;
        batch.save_snapshot(Snapshot {
            meta: codec::encode(&at),
            data: codec::encode(image),
        });
        batch.compact_to(at);
        self.compacted = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a durable store holds after `batches`.
    fn disk(batches: &[&WriteBatch]) -> Recovered {
        let mut rec = Recovered::default();
        for b in batches {
            rec.apply(b);
        }
        rec
    }

    /// Records land at consecutive indices from 1 and come back in order, encoded or
    /// not; a fresh journal over them continues after the last one.
    #[test]
    fn records_come_back_in_order_and_the_next_one_follows_them() {
        let mut j = Journal::new(100);
        let mut batch = WriteBatch::new();
        j.append(&"a".to_string(), &mut batch);
        j.append_encoded(codec::encode(&"b".to_string()), &mut batch);
        j.append(&"c".to_string(), &mut batch);
        let rec = disk(&[&batch]);
        assert_eq!(rec.log.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        let mut again = Journal::new(100);
        let (image, records) = again.recover::<u64, String>("test", &rec).unwrap();
        assert_eq!(
            (image, records),
            (None, vec!["a".into(), "b".into(), "c".into()])
        );
        let mut next = WriteBatch::new();
        again.append(&"d".to_string(), &mut next);
        let rec = disk(&[&batch, &next]);
        assert_eq!(rec.log.keys().last(), Some(&4));
    }

    /// A snapshot is due once `every` records were written since the last one — not
    /// before; it covers every record so far, which are compacted away, and recovery
    /// is its image plus the records after it.
    #[test]
    fn a_snapshot_every_n_records_covers_them_and_recovery_replays_only_the_rest() {
        let mut j = Journal::new(3);
        let mut batch = WriteBatch::new();
        for r in 1..=2u64 {
            j.append(&r, &mut batch);
        }
        assert!(!j.snapshot_due(), "2 of 3");
        j.append(&3u64, &mut batch);
        assert!(j.snapshot_due(), "3 of 3");
        j.snapshot(&vec![1u64, 2, 3], &mut batch);
        assert!(!j.snapshot_due(), "just taken");
        j.append(&4u64, &mut batch);
        let rec = disk(&[&batch]);
        assert_eq!(
            rec.log.keys().copied().collect::<Vec<_>>(),
            [4],
            "compacted"
        );
        let mut again = Journal::new(3);
        let (image, records) = again.recover::<Vec<u64>, u64>("test", &rec).unwrap();
        assert_eq!((image, records), (Some(vec![1, 2, 3]), vec![4]));
        for r in 5..=6u64 {
            assert!(!again.snapshot_due(), "{r}: counted from the snapshot at 3");
            again.append(&r, &mut WriteBatch::new());
        }
        assert!(again.snapshot_due(), "4, 5, 6 since the snapshot");
    }

    /// What recovery cannot read is an error naming the role, the part and the
    /// index — never a silent skip of a record.
    #[test]
    fn unreadable_records_snapshots_and_gaps_are_errors_naming_where() {
        let mut batch = WriteBatch::new();
        let mut j = Journal::new(100);
        j.append(&1u64, &mut batch);
        j.append(&2u64, &mut batch);
        let mut rec = disk(&[&batch]);
        rec.log.remove(&1);
        let err = Journal::new(100)
            .recover::<u64, u64>("shard", &rec)
            .unwrap_err();
        assert_eq!(err, "shard journal gap: record 2 after 0");

        let mut rec = disk(&[&batch]);
        rec.log.insert(2, vec![0xff; 11]);
        let err = Journal::new(100)
            .recover::<u64, u64>("shard", &rec)
            .unwrap_err();
        assert!(err.starts_with("corrupt shard journal record 2: "), "{err}");

        let mut rec = disk(&[&batch]);
        rec.snapshot = Some(Snapshot {
            meta: codec::encode(&1u64),
            data: vec![0xff; 3],
        });
        let err = Journal::new(100)
            .recover::<String, u64>("shard", &rec)
            .unwrap_err();
        assert!(err.starts_with("corrupt shard snapshot: "), "{err}");
        rec.snapshot = Some(Snapshot {
            meta: vec![],
            data: codec::encode(&"image".to_string()),
        });
        let err = Journal::new(100)
            .recover::<String, u64>("shard", &rec)
            .unwrap_err();
        assert!(err.starts_with("corrupt shard snapshot meta: "), "{err}");
    }

    /// A store may compact lazily: records the snapshot covers that are still there
    /// are skipped, not replayed over the image (nor taken for a gap).
    #[test]
    fn records_a_snapshot_covers_are_skipped_if_the_store_still_has_them() {
        let mut j = Journal::new(100);
        let mut batch = WriteBatch::new();
        for r in 1..=3u64 {
            j.append(&r, &mut batch);
        }
        let mut rec = disk(&[&batch]);
        rec.snapshot = Some(Snapshot {
            meta: codec::encode(&2u64),
            data: codec::encode(&vec![1u64, 2]),
        });
        let (image, records) = Journal::new(100)
            .recover::<Vec<u64>, u64>("t", &rec)
            .unwrap();
        assert_eq!((image, records), (Some(vec![1, 2]), vec![3]));
    }
}
