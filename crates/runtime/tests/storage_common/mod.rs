//! Helpers shared by the storage-fault test binaries (`storage_faults`, and
//! `full_file_system`, which runs alone: see its docs).

#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::io;
use std::path::Path;
use synod_core::{MemStorage, Recovered, Snapshot, StorageError, StorageOp, WriteBatch};
use synod_runtime::wal::faults::FaultyDisk;
use synod_runtime::wal::{FileStorage, WalOptions};

pub fn options() -> WalOptions {
    WalOptions::new(64 << 10)
}

pub fn open(dir: &Path, options: WalOptions) -> (FileStorage, Recovered) {
    FileStorage::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

pub fn open_faulty(dir: &Path, options: WalOptions) -> (FileStorage, FaultyDisk) {
    let disk = FaultyDisk::new(options.sync_mode);
    let (storage, _) = FileStorage::open_with_disk(dir, options, Box::new(disk.clone()))
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    (storage, disk)
}

pub fn batch(ops: impl IntoIterator<Item = StorageOp>) -> WriteBatch {
    let mut b = WriteBatch::new();
    for op in ops {
        b.push(op);
    }
    b
}

pub fn put(index: u64, entry: &[u8]) -> StorageOp {
    StorageOp::PutEntry {
        index,
        entry: entry.to_vec().into(),
    }
}

pub fn set_meta(key: &str, value: &[u8]) -> StorageOp {
    StorageOp::SetMeta {
        key: key.to_owned(),
        value: value.to_vec(),
    }
}

pub fn snapshot(tag: u8) -> StorageOp {
    StorageOp::SaveSnapshot(Snapshot {
        meta: vec![tag],
        data: vec![tag; 40],
    })
}

/// Batch `i` of a numbered sequence: the meta that says how far we got, and an entry
/// (last, so that the record does not end in zeros, which a tear could hide behind).
pub fn numbered(i: u64) -> WriteBatch {
    batch([set_meta("term", &i.to_le_bytes()), put(i, &[i as u8; 30])])
}

/// The sector a device writes whole (the WAL's tear model, `format::SECTOR_BYTES`).
pub const SECTOR_BYTES: u64 = 512;

/// What `MemStorage` recovers after `batches`.
pub fn mem_after<'a>(batches: impl IntoIterator<Item = &'a WriteBatch>) -> Recovered {
    let mut mem = MemStorage::new();
    for b in batches {
        mem.persist(b.clone());
    }
    mem.recover()
}

/// How many of `group`, written after `acknowledged`, `recovered` holds — if it is
/// one of the states `MemStorage` allows: the acknowledged batches and a prefix of
/// the group. `None` for any other state.
pub fn group_prefix_recovered(
    recovered: &Recovered,
    acknowledged: &[WriteBatch],
    group: &[WriteBatch],
) -> Option<usize> {
    (0..=group.len()).find(|&k| *recovered == mem_after(acknowledged.iter().chain(&group[..k])))
}

pub fn segment_name(n: u64) -> String {
    format!("wal-{n:020}.log")
}

pub fn snapshot_name(g: u64) -> String {
    format!("snap-{g:020}.snap")
}

/// File names in `dir`, sorted, but for the directory lock.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "wal.lock")
        .collect();
    names.sort();
    names
}

/// Where each record of a segment ends (the checkpoint's first): a 24-byte header,
/// then `length u32, crc u32, payload` up to a zero length or the end of the file.
pub fn record_ends(segment: &[u8]) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut offset = 24;
    while offset + 8 <= segment.len() {
        let len = u32::from_le_bytes(segment[offset..offset + 4].try_into().unwrap());
        if len == 0 {
            break;
        }
        offset += 8 + len as usize;
        ends.push(offset as u64);
    }
    ends
}

/// The `Io` error's message and source; panics on anything else.
pub fn io_parts(error: &StorageError) -> (String, &io::Error) {
    match error {
        StorageError::Io { source, .. } => (error.to_string(), source),
        other => panic!("expected an I/O error, got {other}"),
    }
}

pub const EIO: i32 = 5;
