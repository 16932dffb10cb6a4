//! The file WAL against its contract: `FileStorage` recovers exactly what `MemStorage`
//! would after the same acknowledged batches, whatever a crash left behind.
//!
//! Each test is init / act / check. Property tests use tiny segments so that rolling
//! and segment deletion happen constantly, and `SyncMode::Never` where the syncs
//! themselves are not under test (the page cache keeps the bytes for the reopen).

use proptest::collection::vec;
use proptest::prelude::*;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use synod_core::{MemStorage, Recovered, Snapshot, Storage, StorageError, StorageOp, WriteBatch};
use synod_runtime::wal::{FileStorage, SyncMode, Syncer, WalOptions};

// ---------------------------------------------------------------------------------
// Helpers

const TINY_SEGMENT_BYTES: u64 = 256;

/// The sector a device writes whole (the WAL's tear model, `format::SECTOR_BYTES`).
const SECTOR_BYTES: u64 = 512;

fn tiny() -> WalOptions {
    WalOptions::new(TINY_SEGMENT_BYTES).with_sync_mode(SyncMode::Never)
}

fn big() -> WalOptions {
    WalOptions::new(1 << 20)
}

fn open(dir: &Path, options: WalOptions) -> (FileStorage, Recovered) {
    FileStorage::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

fn open_err(dir: &Path) -> String {
    match FileStorage::open(dir, big()) {
        Ok(_) => panic!("{} opened, expected an error", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn is_corrupt(dir: &Path) -> bool {
    matches!(FileStorage::open(dir, big()), Err(StorageError::Corrupt(_)))
}

fn batch(ops: impl IntoIterator<Item = StorageOp>) -> WriteBatch {
    let mut b = WriteBatch::new();
    for op in ops {
        b.push(op);
    }
    b
}

fn put(index: u64, entry: &[u8]) -> StorageOp {
    StorageOp::PutEntry {
        index,
        entry: entry.to_vec().into(),
    }
}

fn set_meta(key: &str, value: &[u8]) -> StorageOp {
    StorageOp::SetMeta {
        key: key.to_owned(),
        value: value.to_vec(),
    }
}

fn snapshot(tag: u8) -> StorageOp {
    StorageOp::SaveSnapshot(Snapshot {
        meta: vec![tag],
        data: vec![tag; 40],
    })
}

/// What `MemStorage` recovers after `batches`.
fn mem_after<'a>(batches: impl IntoIterator<Item = &'a WriteBatch>) -> Recovered {
    let mut mem = MemStorage::new();
    for b in batches {
        mem.persist(b.clone());
    }
    mem.recover()
}

fn segment_name(n: u64) -> String {
    format!("wal-{n:020}.log")
}

fn snapshot_name(g: u64) -> String {
    format!("snap-{g:020}.snap")
}

/// File names in `dir`, sorted, but for the directory lock (`wal.lock`, always there).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "wal.lock")
        .collect();
    names.sort();
    names
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Where the records of segment file `path` end: its length, less the zero fill of a
/// preallocated segment.
fn records_end(path: &Path) -> u64 {
    *record_ends(&fs::read(path).unwrap()).last().unwrap()
}

/// The last segment's file, filled with zeros after byte `cut` (what a crash leaves in
/// a preallocated file: the blocks hold their old zeros wherever a write did not land).
fn zeroed_after(segment: &[u8], cut: usize) -> Vec<u8> {
    let mut bytes = segment.to_vec();
    bytes[cut..].fill(0);
    bytes
}

/// Writes each batch on its own and returns, per batch, the segment it went to and
/// where its record ends.
fn write_one_by_one(storage: &mut FileStorage, batches: &[WriteBatch]) -> Vec<(u64, u64)> {
    batches
        .iter()
        .map(|b| {
            storage.write_batch(b).unwrap();
            let segment = *storage.segments().end();
            (
                segment,
                records_end(&storage.dir().join(segment_name(segment))),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Strategies

const META_KEYS: [&str; 4] = ["term", "vote", "epoch", "ballot"];

fn op_strategy() -> impl Strategy<Value = StorageOp> {
    prop_oneof![
        6 => (0u64..48, vec(any::<u8>(), 0..24)).prop_map(|(index, entry)| StorageOp::PutEntry { index, entry: entry.into() }),
        1 => (0u64..48).prop_map(StorageOp::TruncateFrom),
        1 => (0u64..48).prop_map(StorageOp::CompactTo),
        1 => Just(StorageOp::CompactTo(u64::MAX)),
        2 => (0..META_KEYS.len(), vec(any::<u8>(), 0..8))
            .prop_map(|(k, value)| StorageOp::SetMeta { key: META_KEYS[k].to_owned(), value }),
        1 => (vec(any::<u8>(), 0..8), vec(any::<u8>(), 0..32))
            .prop_map(|(meta, data)| StorageOp::SaveSnapshot(Snapshot { meta, data })),
    ]
}

fn batch_strategy() -> impl Strategy<Value = WriteBatch> {
    vec(op_strategy(), 0..5).prop_map(batch)
}

#[derive(Clone, Debug)]
enum Step {
    /// `write_batches` of a group.
    Write(Vec<WriteBatch>),
    /// Drop the storage and open the directory again.
    Reopen,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => vec(batch_strategy(), 1..4).prop_map(Step::Write),
        1 => Just(Step::Reopen),
    ]
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------
// (1a) Recovery equals MemStorage on random batch sequences, reopening in between.

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn recovery_equals_mem_storage_across_reopens(steps in vec(step_strategy(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, recovered) = open(dir.path(), tiny());
        prop_assert!(recovered.is_fresh());
        let mut mem = MemStorage::new();
        for step in steps {
            match step {
                Step::Write(group) => {
                    storage.write_batches(&group).unwrap();
                    group.into_iter().for_each(|b| mem.persist(b));
                }
                Step::Reopen => {
                    drop(storage);
                    let (reopened, recovered) = open(dir.path(), tiny());
                    prop_assert_eq!(&recovered, &mem.recover());
                    storage = reopened;
                }
            }
        }
        prop_assert_eq!(storage.read_back().unwrap(), mem.recover());
        let on_disk: Vec<String> = names(dir.path()).into_iter().filter(|n| n.ends_with(".log")).collect();
        let in_use: Vec<String> = storage.segments().map(segment_name).collect();
        prop_assert_eq!(on_disk, in_use, "exactly the segments in use are on disk");
        drop(storage);
        prop_assert_eq!(open(dir.path(), tiny()).1, mem.recover());
    }
}

// ---------------------------------------------------------------------------------
// (1b) Torn tail: a crash during a group write leaves any prefix of the group's bytes.
// Take the directory as it is at the group's final sync (every record written, none
// acknowledged), cut the last segment at every offset inside the group, reopen: exactly
// the complete batches survive, and the WAL keeps working after the cut.

/// Copies the WAL directory to `copy_to` at every segment sync while armed: the last
/// copy is the directory just before the group being written was acknowledged.
#[derive(Clone)]
struct CopyAtSync {
    copy_to: PathBuf,
    armed: Arc<Mutex<bool>>,
}

impl Syncer for CopyAtSync {
    fn sync_file(&mut self, _file: &fs::File, path: &Path) -> io::Result<()> {
        let is_segment = path.extension().is_some_and(|e| e == "log");
        if *self.armed.lock().unwrap() && is_segment {
            let _ = fs::remove_dir_all(&self.copy_to);
            copy_dir(path.parent().unwrap(), &self.copy_to);
        }
        Ok(())
    }

    fn sync_dir(&mut self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// Where each record of a segment ends (the checkpoint's first), read from the framing
/// documented in the module docs: a 24-byte header, then `length u32, crc u32, payload`,
/// up to the end of the file or of the records (a zero length: preallocated space).
fn record_ends(segment: &[u8]) -> Vec<u64> {
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

proptest! {
    #![proptest_config(config(8))]

    #[test]
    fn cutting_a_group_write_anywhere_recovers_exactly_the_complete_batches(
        acknowledged in vec(batch_strategy(), 0..8),
        group in vec(batch_strategy(), 1..6),
    ) {
        let root = tempfile::tempdir().unwrap();
        let (wal, at_sync) = (root.path().join("wal"), root.path().join("at-sync"));
        let syncer = CopyAtSync { copy_to: at_sync.clone(), armed: Arc::new(Mutex::new(false)) };
        let (mut storage, _) =
            FileStorage::open_with_syncer(&wal, WalOptions::new(TINY_SEGMENT_BYTES), Box::new(syncer.clone())).unwrap();
        storage.write_batches(&acknowledged).unwrap();
        *syncer.armed.lock().unwrap() = true;
        storage.write_batches(&group).unwrap();
        let last_name = segment_name(*storage.segments().end());
        drop(storage);

        let segment = fs::read(at_sync.join(&last_name)).unwrap();
        let ends = record_ends(&segment);
        let all: Vec<&WriteBatch> = acknowledged.iter().chain(&group).collect();
        // The last segment holds the checkpoint and the last `ends.len() - 1` batches.
        let in_last = ends.len() - 1;
        let group_in_last = in_last.min(group.len());
        let group_start = ends[in_last - group_in_last];
        let records_end = *ends.last().unwrap();
        // A crash leaves the file cut short (appended, not preallocated), or leaves
        // zeros where the writes did not land (preallocated): from a sector boundary
        // (a device writes 512-byte sectors whole) or from where the group started.
        // Zeros from any other byte are no crash's doing; recovery may then refuse.
        let cuts = (group_start..=records_end).flat_map(|cut| [(cut, false), (cut, true)]);
        for (cut, zeroed) in cuts {
            let dir = root.path().join(format!("cut-{cut}-{zeroed}"));
            copy_dir(&at_sync, &dir);
            let damaged = if zeroed {
                zeroed_after(&segment, cut as usize)
            } else {
                segment[..cut as usize].to_vec()
            };
            fs::write(dir.join(&last_name), damaged).unwrap();
            // A record survives if it ends before the cut, or — zeroed — if its bytes
            // from the cut on were zeros anyway (e.g. an empty value's length byte).
            let survives = |end: u64| {
                end <= cut || zeroed && segment[cut as usize..end as usize].iter().all(|&b| b == 0)
            };
            let complete_in_last = ends[1..].iter().take_while(|&&end| survives(end)).count();
            let surviving = &all[..all.len() - in_last + complete_in_last];

            let crash_made = !zeroed || cut == group_start || cut % SECTOR_BYTES == 0;

            let (mut storage, recovered) = match FileStorage::open(&dir, tiny()) {
                Ok(opened) => opened,
                Err(StorageError::Corrupt(_)) if !crash_made => continue,
                Err(e) => panic!("cut at {cut} (zeroed: {zeroed}): {e}"),
            };

            prop_assert_eq!(&recovered, &mem_after(surviving.iter().copied()), "cut at {} (zeroed: {})", cut, zeroed);
            let extra = batch([set_meta("after-cut", &[1]), put(1000, b"x")]);
            storage.write_batch(&extra).unwrap();
            drop(storage);
            let expected = mem_after(surviving.iter().copied().chain([&extra]));
            prop_assert_eq!(open(&dir, tiny()).1, expected, "write after cut at {} (zeroed: {})", cut, zeroed);
            fs::remove_dir_all(&dir).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------
// (2) Flipped bytes: in the middle of the log it is corruption naming file and offset;
// in the last record it is a torn tail.

/// One segment with ten batches; returns the batches and where each record ends.
fn ten_batches(dir: &Path) -> (Vec<WriteBatch>, Vec<u64>) {
    let (mut storage, _) = open(dir, big());
    let batches: Vec<WriteBatch> = (1..=10u64)
        .map(|i| batch([put(i, &[i as u8; 30]), set_meta("term", &[i as u8])]))
        .collect();
    let ends = write_one_by_one(&mut storage, &batches);
    assert!(ends.iter().all(|(s, _)| *s == 1), "all in segment 1");
    (batches, ends.into_iter().map(|(_, end)| end).collect())
}

#[test]
fn flipped_byte_in_a_middle_record_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ends) = ten_batches(dir.path());
    let record_4 = ends[2]; // record of batch 4 starts where batch 3's ends
    let path = dir.path().join(segment_name(1));
    flip_byte(&path, record_4 + 12);
    let damaged = fs::read(&path).unwrap();

    let message = open_err(dir.path());

    assert_eq!(
        fs::read(&path).unwrap(),
        damaged,
        "a refused WAL is left untouched"
    );

    assert!(message.contains(&segment_name(1)), "{message}");
    assert!(message.contains(&format!("offset {record_4}")), "{message}");
    assert!(
        message.contains("followed by an intact record"),
        "{message}"
    );
}

/// Regression (bug found in issue 20's storage-fault work): a checksum failure in the
/// last record was taken for a torn write and cut off — yet that record was synced
/// and acknowledged, so recovery silently lost an acknowledged batch, and truncated
/// good bytes on disk when the damage was only on the way back from the device. A
/// record with all its bytes present is damage, not a tear.
#[test]
fn a_flipped_byte_in_the_last_record_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ends) = ten_batches(dir.path());
    let path = dir.path().join(segment_name(1));
    flip_byte(&path, ends[8] + 20);
    let damaged = fs::read(&path).unwrap();

    let message = open_err(dir.path());

    assert!(message.contains(&segment_name(1)), "{message}");
    assert!(
        message.contains(&format!("offset {}", ends[8])),
        "{message}"
    );
    assert!(message.contains("all its bytes present"), "{message}");
    assert_eq!(fs::read(&path).unwrap(), damaged, "nothing was cut");
}

/// What a crash does leave: the last record's write cut short — the sectors from
/// some boundary on still zeros in the preallocated file, or, appending, the file
/// ending early. That is a torn tail, cut off; the nine acknowledged batches before
/// it are recovered.
#[test]
fn a_last_record_cut_short_is_a_torn_tail_and_is_cut_off() {
    for zero_filled in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (batches, ends) = ten_batches(dir.path());
        let path = dir.path().join(segment_name(1));
        let bytes = fs::read(&path).unwrap();
        let torn = if zero_filled {
            let sector = ends[8].next_multiple_of(SECTOR_BYTES);
            assert!(sector < ends[9], "record 10 crosses a sector boundary");
            zeroed_after(&bytes, sector as usize)
        } else {
            bytes[..ends[8] as usize + 20].to_vec()
        };
        fs::write(&path, torn).unwrap();

        let (_, recovered) = open(dir.path(), big());

        assert_eq!(
            recovered,
            mem_after(&batches[..9]),
            "zero-filled: {zero_filled}"
        );
        assert_eq!(file_len(&path), ends[8], "the torn record was cut off");
    }
}

/// Part of the same fix: zeros from inside the last record's last sector are no
/// crash's doing (that sector was written whole, or not at all) — damage, refused.
#[test]
fn zeros_from_inside_the_last_sector_of_the_last_record_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ends) = ten_batches(dir.path());
    let path = dir.path().join(segment_name(1));
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, zeroed_after(&bytes, ends[9] as usize - 10)).unwrap();

    let message = open_err(dir.path());

    assert!(
        message.contains(&format!("offset {}", ends[8])),
        "{message}"
    );
    assert!(message.contains("all its bytes present"), "{message}");
}

#[test]
fn flipped_length_making_an_impossible_record_is_corruption_even_at_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ends) = ten_batches(dir.path());
    flip_byte(&dir.path().join(segment_name(1)), ends[8] + 3); // high byte of the length

    let message = open_err(dir.path());

    assert!(message.contains("impossible record length"), "{message}");
    assert!(
        message.contains(&format!("offset {}", ends[8])),
        "{message}"
    );
}

#[test]
fn damage_in_a_segment_that_is_not_the_last_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), tiny());
    let batches: Vec<WriteBatch> = (1..=20u64).map(|i| batch([put(i, &[7; 40])])).collect();
    let ends = write_one_by_one(&mut storage, &batches);
    drop(storage);
    let (segment, end) = ends[0];
    assert!(
        ends.last().unwrap().0 > segment,
        "the batches span several segments"
    );
    // Damage the last record of segment 1: a torn tail if segment 1 were the last.
    flip_byte(&dir.path().join(segment_name(segment)), end - 1);

    let message = open_err(dir.path());

    assert!(message.contains(&segment_name(segment)), "{message}");
    assert!(message.contains("not the last"), "{message}");
}

#[test]
fn missing_segment_is_corruption_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), tiny());
    let batches: Vec<WriteBatch> = (1..=20u64).map(|i| batch([put(i, &[7; 40])])).collect();
    write_one_by_one(&mut storage, &batches);
    assert!(*storage.segments().end() >= 3);
    drop(storage);
    fs::remove_file(dir.path().join(segment_name(2))).unwrap();

    let message = open_err(dir.path());

    assert!(message.contains(&segment_name(2)), "{message}");
    assert!(message.contains("segment missing"), "{message}");
}

#[test]
fn zeros_after_the_last_record_end_the_log_and_later_writes_overwrite_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut batches, ends) = ten_batches(dir.path());
    let path = dir.path().join(segment_name(1));
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(ends[9] as usize);
    bytes.extend_from_slice(&[0u8; 100]); // a file system extended the file, data never landed
    fs::write(&path, bytes).unwrap();

    let (mut storage, recovered) = open(dir.path(), big());

    assert_eq!(recovered, mem_after(&batches));
    assert_eq!(file_len(&path), ends[9] + 100, "zeros are kept, not cut");
    let more = batch([put(11, &[11; 200])]);
    storage.write_batch(&more).unwrap();
    drop(storage);
    batches.push(more);
    assert_eq!(open(dir.path(), big()).1, mem_after(&batches));
    assert_eq!(
        record_ends(&fs::read(&path).unwrap()).len(),
        12,
        "the checkpoint and eleven batches, the last written over the zeros"
    );
}

#[test]
fn zeros_after_the_last_record_of_an_older_segment_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), tiny());
    let batches: Vec<WriteBatch> = (1..=20u64).map(|i| batch([put(i, &[7; 40])])).collect();
    write_one_by_one(&mut storage, &batches);
    drop(storage);
    let path = dir.path().join(segment_name(1));
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0u8; 64]);
    fs::write(&path, bytes).unwrap();

    let message = open_err(dir.path());

    assert!(message.contains(&segment_name(1)), "{message}");
    assert!(message.contains("not the last"), "{message}");
}

#[test]
fn preallocated_segments_are_zero_filled_and_older_ones_end_at_their_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions::new(4096).with_sync_mode(SyncMode::Never);
    let (mut storage, _) = open(dir.path(), options);
    let first = dir.path().join(segment_name(1));
    assert_eq!(
        file_len(&first),
        4096,
        "a new segment is filled to segment_bytes"
    );
    let batches: Vec<WriteBatch> = (1..=60u64).map(|i| batch([put(i, &[9; 200])])).collect();
    write_one_by_one(&mut storage, &batches);
    let last = *storage.segments().end();
    assert!(last >= 3, "the batches span several segments");

    for n in 1..last {
        let path = dir.path().join(segment_name(n));
        assert_eq!(
            file_len(&path),
            records_end(&path),
            "segment {n} was cut to its records"
        );
    }
    let newest = dir.path().join(segment_name(last));
    assert_eq!(file_len(&newest), 4096, "the newest segment keeps its fill");
    assert!(records_end(&newest) < 4096);
    drop(storage);
    assert_eq!(open(dir.path(), options).1, mem_after(&batches));
}

#[test]
fn the_next_segment_is_prepared_once_the_active_one_is_half_full_and_reopen_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions::new(4096).with_sync_mode(SyncMode::Never);
    let (mut storage, _) = open(dir.path(), options);
    let prepared = format!("{}.tmp", segment_name(2));
    storage.write_batch(&batch([put(1, &[1; 100])])).unwrap();
    drop(storage); // waits for a preparer, if one was started
    assert!(
        !names(dir.path()).contains(&prepared),
        "not before half full"
    );

    let (mut storage, _) = open(dir.path(), options);
    storage.write_batch(&batch([put(2, &[2; 2100])])).unwrap();
    // Dropping the storage would stop the fill; wait for it first (bounded).
    let prepared_path = dir.path().join(&prepared);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fs::metadata(&prepared_path).map_or(0, |m| m.len()) < 4096 {
        assert!(
            std::time::Instant::now() < deadline,
            "the fill never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(storage);
    assert_eq!(file_len(&prepared_path), 4096);

    let (mut storage, recovered) = open(dir.path(), options);
    assert!(
        !names(dir.path()).contains(&prepared),
        "a reopen removes it"
    );
    assert_eq!(recovered.log.len(), 2);
    // Roll: the prepared file (started again by this write) becomes segment 2.
    storage.write_batch(&batch([put(3, &[3; 100])])).unwrap();
    storage.write_batch(&batch([put(4, &[4; 2100])])).unwrap();
    assert_eq!(*storage.segments().end(), 2);
    assert_eq!(file_len(&dir.path().join(segment_name(2))), 4096);
    drop(storage);
    assert_eq!(open(dir.path(), options).1.log.len(), 4);
}

// ---------------------------------------------------------------------------------
// (3) fsync before acknowledge, and group commit.

#[derive(Clone, Debug, PartialEq, Eq)]
enum SyncEvent {
    /// A file sync: which file, and its length when synced.
    File(String, u64),
    Dir,
}

/// Records every sync, then really syncs. Optionally fails the n-th sync.
#[derive(Clone, Default)]
struct RecordingSyncer {
    events: Arc<Mutex<Vec<SyncEvent>>>,
    fail_at: Option<usize>,
}

impl RecordingSyncer {
    fn take(&self) -> Vec<SyncEvent> {
        std::mem::take(&mut self.events.lock().unwrap())
    }

    fn record(&mut self, event: SyncEvent) -> io::Result<()> {
        let mut events = self.events.lock().unwrap();
        if self.fail_at == Some(events.len()) {
            return Err(io::Error::other("injected sync failure"));
        }
        events.push(event);
        Ok(())
    }
}

impl Syncer for RecordingSyncer {
    fn sync_file(&mut self, file: &fs::File, path: &Path) -> io::Result<()> {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let len = if name.ends_with(".log") || name.ends_with(".log.tmp") {
            records_end(path)
        } else {
            file.metadata()?.len()
        };
        self.record(SyncEvent::File(name, len))?;
        file.sync_data()
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.record(SyncEvent::Dir)?;
        fs::File::open(dir)?.sync_all()
    }
}

/// Two storages on one directory would append to the same segment and delete each
/// other's files: the second open is refused, naming the directory, and succeeds once
/// the first storage is gone (a crash releases the lock the same way).
#[test]
fn a_second_storage_on_the_same_directory_is_refused_while_the_first_lives() {
    // init
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut first, _) = open(dir, big());
    first.write_batch(&batch([put(1, b"a")])).unwrap();

    // act
    let err = open_err(dir);

    // check
    assert!(err.contains("in use by another storage"), "{err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
    drop(first);
    let (_, recovered) = open(dir, big());
    assert_eq!(recovered.log.len(), 1, "the refused open changed nothing");
}

fn open_recording(dir: &Path, options: WalOptions) -> (FileStorage, RecordingSyncer) {
    let syncer = RecordingSyncer::default();
    let (storage, _) =
        FileStorage::open_with_syncer(dir, options, Box::new(syncer.clone())).unwrap();
    syncer.take();
    (storage, syncer)
}

#[test]
fn persist_returns_only_after_syncing_the_bytes_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, syncer) = open_recording(dir.path(), big());
    let segment = dir.path().join(segment_name(1));
    for i in 1..=5u64 {
        storage
            .write_batch(&batch([put(i, b"entry"), set_meta("term", &[i as u8])]))
            .unwrap();

        let len_now = records_end(&segment);
        assert_eq!(
            syncer.take(),
            vec![SyncEvent::File(segment_name(1), len_now)],
            "batch {i}"
        );
    }
}

#[test]
fn persist_all_of_many_batches_syncs_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, syncer) = open_recording(dir.path(), big());
    let group: Vec<WriteBatch> = (1..=32u64).map(|i| batch([put(i, &[1; 100])])).collect();

    storage.write_batches(&group).unwrap();

    let len_now = records_end(&dir.path().join(segment_name(1)));
    assert_eq!(
        syncer.take(),
        vec![SyncEvent::File(segment_name(1), len_now)]
    );
    assert_eq!(storage.read_back().unwrap(), mem_after(&group));
}

#[test]
fn a_group_that_rolls_syncs_the_full_segment_before_the_next_exists() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, syncer) = open_recording(dir.path(), WalOptions::new(600));
    let group: Vec<WriteBatch> = (1..=12u64).map(|i| batch([put(i, &[1; 100])])).collect();

    storage.write_batches(&group).unwrap();

    let events = syncer.take();
    let last = *storage.segments().end();
    assert!(last >= 2, "the group rolled");
    for n in 1..last {
        let full = SyncEvent::File(
            segment_name(n),
            records_end(&dir.path().join(segment_name(n))),
        );
        let synced = events
            .iter()
            .position(|e| *e == full)
            .expect("full segment synced");
        let next_tmp = format!("{}.tmp", segment_name(n + 1));
        let created = events
            .iter()
            .position(|e| matches!(e, SyncEvent::File(name, _) if *name == next_tmp))
            .expect("next segment created through a synced temporary file");
        assert!(
            synced < created,
            "segment {n} synced before segment {} created",
            n + 1
        );
        assert_eq!(events[created + 1], SyncEvent::Dir, "rename made durable");
    }
    let final_len = records_end(&dir.path().join(segment_name(last)));
    assert_eq!(
        events.last(),
        Some(&SyncEvent::File(segment_name(last), final_len))
    );
}

#[test]
fn storage_trait_persist_all_is_one_group_commit_and_load_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, syncer) = open_recording(dir.path(), big());
    let group: Vec<WriteBatch> = (1..=8u64)
        .map(|i| batch([put(i, b"e"), set_meta("term", &[1])]))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let loaded = runtime.block_on(async {
        Storage::persist_all(&mut storage, group.clone())
            .await
            .unwrap();
        Storage::persist(&mut storage, batch([put(9, b"e")]))
            .await
            .unwrap();
        Storage::load(&mut storage).await.unwrap()
    });

    let file_syncs = syncer
        .take()
        .iter()
        .filter(|e| matches!(e, SyncEvent::File(..)))
        .count();
    assert_eq!(file_syncs, 2, "one for the group, one for the single batch");
    let mut expected = group;
    expected.push(batch([put(9, b"e")]));
    assert_eq!(loaded, mem_after(&expected));
}

#[test]
fn a_failed_sync_stops_all_further_writes() {
    let dir = tempfile::tempdir().unwrap();
    let syncer = RecordingSyncer {
        fail_at: Some(2), // open syncs: temp segment, directory; the next one fails
        ..RecordingSyncer::default()
    };
    let (mut storage, _) =
        FileStorage::open_with_syncer(dir.path(), big(), Box::new(syncer)).unwrap();

    let first = storage.write_batch(&batch([put(1, b"a")]));
    let second = storage.write_batch(&batch([put(2, b"b")]));

    assert!(matches!(first, Err(StorageError::Io { .. })), "{first:?}");
    let second = second.unwrap_err().to_string();
    assert!(second.contains("earlier failure"), "{second}");
}

// ---------------------------------------------------------------------------------
// (4) Compaction deletes old segments; recovery afterwards still equals MemStorage.

#[test]
fn compaction_deletes_segments_whose_entries_are_all_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), WalOptions::new(TINY_SEGMENT_BYTES));
    let mut batches: Vec<WriteBatch> = (1..=60u64)
        .map(|i| batch([put(i, &[i as u8; 40]), set_meta("commit", &i.to_le_bytes())]))
        .collect();
    write_one_by_one(&mut storage, &batches);
    let before = storage.segments();
    assert!(
        before.end() - before.start() >= 10,
        "many segments: {before:?}"
    );

    let compact = batch([snapshot(1), StorageOp::CompactTo(50)]);
    storage.write_batch(&compact).unwrap();
    batches.push(compact);

    let after = storage.segments();
    assert!(
        after.start() > before.start(),
        "old segments deleted: {after:?}"
    );
    // The next segment may be half prepared by the background thread
    // (`wal-<n>.log.tmp`, removed on open); it holds no entries.
    let on_disk: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("wal-") && !n.ends_with(".tmp"))
        .collect();
    assert_eq!(on_disk, after.clone().map(segment_name).collect::<Vec<_>>());
    drop(storage);
    let (storage, recovered) = open(dir.path(), WalOptions::new(TINY_SEGMENT_BYTES));
    assert_eq!(recovered, mem_after(&batches));
    assert_eq!(recovered.log.keys().next(), Some(&51));
    assert_eq!(
        recovered.meta["commit"],
        60u64.to_le_bytes(),
        "meta survives via checkpoints"
    );
    assert_eq!(storage.segments(), after);
}

#[test]
fn an_entry_rewritten_below_the_compaction_point_keeps_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), tiny());
    // Entry 5 is written after compacting to 100: "all entries <= the compacted
    // index" would call segment 1 deletable, yet entry 5 is live.
    let mut batches = vec![batch([StorageOp::CompactTo(100), put(5, &[5; 60])])];
    batches.extend((0..30u64).map(|i| batch([put(200 + i, &[1; 60])])));
    batches.push(batch([StorageOp::TruncateFrom(200)]));
    write_one_by_one(&mut storage, &batches);

    assert!(
        *storage.segments().end() > 5,
        "the batches span many segments"
    );
    assert_eq!(*storage.segments().start(), 1, "entry 5 keeps segment 1");
    drop(storage);
    let recovered = open(dir.path(), tiny()).1;
    assert_eq!(recovered, mem_after(&batches));
    assert_eq!(recovered.log.get(&5), Some(&vec![5; 60]));
}

// ---------------------------------------------------------------------------------
// (5) Snapshots: atomic rename; stale temporary and orphan files from a crash.

#[test]
fn snapshot_survives_reopen_and_replaces_the_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), big());
    let batches = vec![
        batch([snapshot(1), set_meta("term", &[1])]),
        batch([put(1, b"a")]),
        batch([snapshot(2), StorageOp::CompactTo(1)]),
    ];
    write_one_by_one(&mut storage, &batches);

    assert_eq!(names(dir.path()), vec![snapshot_name(2), segment_name(1)]);
    drop(storage);
    let recovered = open(dir.path(), big()).1;
    assert_eq!(recovered, mem_after(&batches));
    assert_eq!(recovered.snapshot.unwrap().meta, vec![2]);
}

#[test]
fn stale_temporary_files_left_by_a_crash_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), big());
    let batches = vec![batch([snapshot(1)])];
    write_one_by_one(&mut storage, &batches);
    drop(storage);
    fs::write(
        dir.path().join(format!("{}.tmp", snapshot_name(2))),
        b"half a snapsh",
    )
    .unwrap();
    fs::write(
        dir.path().join(format!("{}.tmp", segment_name(2))),
        b"SYNODWAL",
    )
    .unwrap();

    let recovered = open(dir.path(), big()).1;

    assert_eq!(recovered, mem_after(&batches));
    assert_eq!(names(dir.path()), vec![snapshot_name(1), segment_name(1)]);
}

#[test]
fn snapshot_newer_than_the_log_is_discarded_with_its_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), big());
    let batches = vec![batch([snapshot(1)])];
    write_one_by_one(&mut storage, &batches);
    drop(storage);
    // A crash after renaming snapshot 2 into place, before its batch record was durable.
    fs::copy(
        dir.path().join(snapshot_name(1)),
        dir.path().join(snapshot_name(2)),
    )
    .unwrap();

    let (mut storage, recovered) = open(dir.path(), big());

    assert_eq!(recovered, mem_after(&batches));
    assert!(
        !dir.path().join(snapshot_name(2)).exists(),
        "orphan removed"
    );
    let next = batch([snapshot(3)]);
    storage.write_batch(&next).unwrap();
    drop(storage);
    assert_eq!(open(dir.path(), big()).1, mem_after([&batches[0], &next]));
}

/// A crash at every sync point of a batch that saves a snapshot, compacts and sets
/// meta: the restart sees the state before the batch or after it, never a mix, and
/// never loses the batch once `write_batch` returned.
#[test]
fn a_crash_at_any_sync_of_a_snapshot_batch_recovers_before_or_after_it() {
    let before = vec![
        batch([snapshot(1), set_meta("term", &[1])]),
        batch([put(1, b"a"), put(2, b"b"), put(3, b"c")]),
    ];
    let snapshot_batch = batch([snapshot(2), StorageOp::CompactTo(2), set_meta("term", &[2])]);
    let mut after = before.clone();
    after.push(snapshot_batch.clone());
    let mut crash_points = 0;
    for fail_at in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = open(dir.path(), big());
        storage.write_batches(&before).unwrap();
        drop(storage);
        let syncer = RecordingSyncer {
            fail_at: Some(fail_at),
            ..RecordingSyncer::default()
        };
        let Ok((mut storage, _)) =
            FileStorage::open_with_syncer(dir.path(), big(), Box::new(syncer))
        else {
            continue;
        };
        let acknowledged = storage.write_batch(&snapshot_batch).is_ok();
        drop(storage);

        let recovered = open(dir.path(), big()).1;

        if acknowledged {
            assert_eq!(recovered, mem_after(&after), "crash at sync {fail_at}");
            break;
        }
        crash_points += 1;
        assert!(
            recovered == mem_after(&before) || recovered == mem_after(&after),
            "crash at sync {fail_at}: {recovered:?}"
        );
    }
    assert!(
        crash_points >= 3,
        "snapshot file, directory and segment syncs each tried"
    );
}

#[test]
fn damaged_or_missing_snapshot_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), big());
    write_one_by_one(&mut storage, &[batch([snapshot(1)])]);
    drop(storage);
    let path = dir.path().join(snapshot_name(1));
    flip_byte(&path, 40);

    let message = open_err(dir.path());
    assert!(
        message.contains(&snapshot_name(1)) && message.contains("checksum"),
        "{message}"
    );

    fs::remove_file(&path).unwrap();
    let message = open_err(dir.path());
    assert!(
        message.contains(&snapshot_name(1)) && message.contains("missing"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------
// (6) Garbage, empty and odd directories: clear errors, never panics.

#[test]
fn empty_or_missing_directory_starts_fresh() {
    let dir = tempfile::tempdir().unwrap();
    assert!(open(dir.path(), big()).1.is_fresh());
    let nested: PathBuf = dir.path().join("a/b");
    assert!(open(&nested, big()).1.is_fresh());
    assert_eq!(names(&nested), vec![segment_name(1)]);
}

#[test]
fn unknown_files_are_refused_by_name() {
    for stray in [
        "notes.txt",
        "wal-12.log",
        "wal-0000000000000000000x.log",
        "snap-1.snap",
    ] {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), big());
        fs::write(dir.path().join(stray), b"hello").unwrap();

        let message = open_err(dir.path());

        assert!(
            message.contains(stray) && message.contains("unexpected entry"),
            "{message}"
        );
    }
}

#[test]
fn directory_named_like_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), big());
    fs::create_dir(dir.path().join(segment_name(2))).unwrap();
    let message = open_err(dir.path());
    assert!(message.contains("expected a regular file"), "{message}");
}

#[test]
fn garbage_segment_files_are_corruption_at_offset_zero() {
    let cases: [(&str, Vec<u8>); 3] = [
        ("shorter than its", Vec::new()),
        (
            "bad magic",
            b"this is not a WAL segment at all, just text".to_vec(),
        ),
        ("checksum", {
            let mut bytes = b"SYNODWAL".to_vec();
            bytes.extend_from_slice(&[0xff; 40]);
            bytes
        }),
    ];
    for (expected, content) in cases {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(segment_name(1)), &content).unwrap();

        let message = open_err(dir.path());

        assert!(message.contains(&segment_name(1)), "{message}");
        assert!(
            message.contains("offset 0") && message.contains(expected),
            "{message}"
        );
    }
}

#[test]
fn segment_renamed_to_another_number_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), big());
    fs::rename(
        dir.path().join(segment_name(1)),
        dir.path().join(segment_name(7)),
    )
    .unwrap();
    let message = open_err(dir.path());
    assert!(message.contains("header names segment 1"), "{message}");
}

#[test]
fn snapshot_without_any_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(snapshot_name(1)), b"x").unwrap();
    assert!(is_corrupt(dir.path()));
}

#[test]
fn a_regular_file_instead_of_a_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wal");
    fs::write(&file, b"").unwrap();
    let err = FileStorage::open(&file, big()).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert!(err.to_string().contains("wal"), "{err}");
}
