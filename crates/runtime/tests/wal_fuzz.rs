//! WAL directories of random and damaged files (issue 20's decoder fuzzing, bounded
//! for CI): opening one returns a state or a `StorageError`, never panics; a state is
//! one a second open agrees with; and damage to a real WAL's files never recovers a
//! state that is not a prefix of the acknowledged batches. (The record and header
//! decoders alone: `wal::format::fuzz`, the unit tests.)
//!
//! A longer run: `PROPTEST_CASES=20000 cargo test -p synod-runtime --release --test
//! wal_fuzz`.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use std::fs;
use std::path::{Path, PathBuf};
use synod_core::{MemStorage, Recovered, Snapshot, StorageError, StorageOp, WriteBatch};
use synod_runtime::wal::{FileStorage, SyncMode, WalOptions};

/// 2,000 cases in CI for byte-level tests, `directory_cases` for those that build a
/// WAL per case; `PROPTEST_CASES` asks for more (or fewer) for all.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Small segments, so that a handful of batches spans several; no syncs (the page
/// cache keeps the bytes for the reopen, and syncs are not under test here).
fn options() -> WalOptions {
    WalOptions::new(256).with_sync_mode(SyncMode::Never)
}

fn segment_name(n: u64) -> String {
    format!("wal-{n:020}.log")
}

fn snapshot_name(g: u64) -> String {
    format!("snap-{g:020}.snap")
}

/// A segment header as the module docs lay it out, for segment `number`.
fn segment_header(number: u64) -> Vec<u8> {
    let mut header = b"SYNODWAL".to_vec();
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&number.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

/// `payload` framed as a record: length, CRC32 of length and payload, payload.
fn framed(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(payload);
    let mut out = len.to_vec();
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A snapshot file of generation `generation` whose header and checksum are right.
fn snapshot_file(generation: u64, payload: &[u8]) -> Vec<u8> {
    let mut header = b"SYNODSNP".to_vec();
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&generation.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header);
    hasher.update(payload);
    header.extend_from_slice(&hasher.finalize().to_le_bytes());
    header.extend_from_slice(payload);
    header
}

/// Opens `dir`: a state or an error, never a panic. A state must be what a second
/// open recovers too (the first open's repairs — a cut torn tail, removed files —
/// change nothing that counts).
fn open_twice(dir: &Path) -> Result<Recovered, StorageError> {
    let (storage, first) = FileStorage::open(dir, options())?;
    drop(storage);
    let (_, second) = FileStorage::open(dir, options())
        .unwrap_or_else(|e| panic!("opened once, refused the second time: {e}"));
    assert_eq!(first, second, "a second open recovers what the first did");
    Ok(first)
}

/// Bytes that mostly decode as postcard tags and short varints.
fn small_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![3 => 0u8..6, 1 => any::<u8>()], 0..max)
}

/// A segment file's content: random bytes, or a valid header followed by records
/// whose checksums hold around random payloads (so the decoder sees them) and by a
/// random tail.
fn segment_bytes() -> impl Strategy<Value = Vec<u8>> {
    let checksummed = (vec(small_bytes(64), 0..4), small_bytes(48), any::<bool>()).prop_map(
        |(payloads, tail, checkpoint)| {
            let mut bytes = segment_header(1);
            if checkpoint {
                // An empty meta map and no snapshot: `Record::Checkpoint`, tag 0.
                bytes.extend(framed(&[0, 0, 0]));
            }
            for payload in payloads.iter().filter(|p| !p.is_empty()) {
                bytes.extend(framed(payload));
            }
            bytes.extend(tail);
            bytes
        },
    );
    prop_oneof![small_bytes(256), checksummed]
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn random_bytes_as_a_segment_open_as_a_state_or_an_error_never_a_panic(
        bytes in segment_bytes(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(segment_name(1)), &bytes).unwrap();

        let _ = open_twice(dir.path());
    }

    #[test]
    fn random_bytes_as_the_snapshot_are_refused_unless_checksummed_and_never_panic(
        payload in small_bytes(128),
        checksummed in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = FileStorage::open(dir.path(), options()).unwrap();
        let snapshot = Snapshot { meta: vec![1], data: vec![2; 10] };
        storage.write_batch(&one(StorageOp::SaveSnapshot(snapshot))).unwrap();
        drop(storage);
        let content = if checksummed { snapshot_file(1, &payload) } else { payload.clone() };
        fs::write(dir.path().join(snapshot_name(1)), &content).unwrap();

        let opened = open_twice(dir.path());

        if !checksummed {
            prop_assert!(matches!(opened, Err(StorageError::Corrupt(_))), "{:?}", opened);
        }
    }
}

// ---------------------------------------------------------------------------------
// Damage to a real WAL: a prefix of the acknowledged batches, or an error.

fn one(op: StorageOp) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.push(op);
    batch
}

/// Batches that never overwrite, truncate or compact, so that no segment is ever
/// deleted: every prefix of them is a state some cut of the files can show.
fn batch_strategy() -> impl Strategy<Value = WriteBatch> {
    let op = prop_oneof![
        4 => vec(any::<u8>(), 0..24).prop_map(|entry| (0, entry)),
        2 => vec(any::<u8>(), 0..8).prop_map(|value| (1, value)),
        1 => vec(any::<u8>(), 0..16).prop_map(|data| (2, data)),
    ];
    vec(op, 1..4).prop_map(|ops| {
        let mut batch = WriteBatch::new();
        for (kind, bytes) in ops {
            match kind {
                0 => batch.push(StorageOp::PutEntry {
                    index: 0,
                    entry: bytes.into(),
                }),
                1 => batch.set_meta("term", bytes),
                _ => batch.push(StorageOp::SaveSnapshot(Snapshot {
                    meta: vec![7],
                    data: bytes,
                })),
            }
        }
        batch
    })
}

/// Gives every entry its own index, in order (`index: 0` above is a placeholder).
fn numbered_entries(batches: Vec<WriteBatch>) -> Vec<WriteBatch> {
    let mut next = 1;
    batches
        .into_iter()
        .map(|batch| {
            let mut renumbered = WriteBatch::new();
            for op in batch.ops() {
                match op {
                    StorageOp::PutEntry { entry, .. } => {
                        renumbered.push(StorageOp::PutEntry {
                            index: next,
                            entry: entry.clone(),
                        });
                        next += 1;
                    }
                    other => renumbered.push(other.clone()),
                }
            }
            renumbered
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Damage {
    /// XOR the byte at the index with the mask (never 0).
    Flip(Index, u8),
    /// Cut the file at the index.
    Truncate(Index),
    /// Zero the file from the index on.
    ZeroFrom(Index),
    /// Append bytes.
    Extend(Vec<u8>),
}

fn damage_strategy() -> impl Strategy<Value = (Index, Damage)> {
    let damage = prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        2 => any::<Index>().prop_map(Damage::Truncate),
        1 => any::<Index>().prop_map(Damage::ZeroFrom),
        1 => small_bytes(40).prop_map(Damage::Extend),
    ];
    (any::<Index>(), damage)
}

/// The WAL's segment and snapshot files (not the lock, not a temporary).
fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log" || e == "snap"))
        .collect();
    files.sort();
    files
}

fn apply(path: &Path, damage: &Damage) {
    let mut bytes = fs::read(path).unwrap();
    match damage {
        Damage::Flip(at, mask) if !bytes.is_empty() => {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        Damage::Flip(..) => {}
        Damage::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
        Damage::ZeroFrom(at) => {
            let from = at.index(bytes.len() + 1);
            bytes[from..].fill(0);
        }
        Damage::Extend(tail) => bytes.extend(tail),
    }
    fs::write(path, bytes).unwrap();
}

proptest! {
    #![proptest_config(config(500))]

    /// Damage anywhere in a real WAL's files — flipped bytes, a cut, zeros, garbage
    /// after the end — is refused, or recovers the acknowledged batches up to some
    /// point: never a mix, never a batch in part, never bytes no batch wrote. (A cut
    /// may lose acknowledged batches: that is damage to what was durable, which only
    /// checksums of every record could not tell from a torn write.) Afterwards the
    /// WAL appends normally.
    #[test]
    fn damaged_wal_files_recover_a_prefix_of_the_acknowledged_batches_or_are_refused(
        batches in vec(batch_strategy(), 1..12),
        damage in vec(damage_strategy(), 1..4),
    ) {
        let batches = numbered_entries(batches);
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = FileStorage::open(dir.path(), options()).unwrap();
        for batch in &batches {
            storage.write_batch(batch).unwrap();
        }
        drop(storage);
        for (file, damage) in &damage {
            let files = wal_files(dir.path());
            apply(&files[file.index(files.len())], damage);
        }

        let Ok(recovered) = open_twice(dir.path()) else {
            return Ok(());
        };

        let mut mem = MemStorage::new();
        let mut prefixes = vec![mem.recover()];
        for batch in &batches {
            mem.persist(batch.clone());
            prefixes.push(mem.recover());
        }
        prop_assert!(
            prefixes.contains(&recovered),
            "recovered a state no prefix of the batches leaves: {:?}", recovered
        );
        let (mut storage, _) = FileStorage::open(dir.path(), options()).unwrap();
        let after = one(StorageOp::PutEntry { index: 10_000, entry: vec![1].into() });
        storage.write_batch(&after).unwrap();
        drop(storage);
        let reopened = open_twice(dir.path()).unwrap();
        prop_assert_eq!(reopened.log.get(&10_000), Some(&vec![1]));
    }
}
