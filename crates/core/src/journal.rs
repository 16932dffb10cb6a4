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
