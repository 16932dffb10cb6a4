//! [`FileStorage`]: the WAL's public face, synchronous at heart.

use super::disk::{Disk, OsDisk};
use super::durability::{SyncMode, Syncer};
use super::files;
use super::format::{self, LogOp, Record};
use super::lock::{lock_dir, DirLock};
use super::prepare::Preparer;
use super::recovery;
use super::segment::{invalid_input, segment_path, ActiveSegment};
use super::snapshot::{snapshot_path, write_snapshot};
use super::state::WalState;
use async_trait::async_trait;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use synod_core::{Recovered, Storage, StorageError, StorageOp, WriteBatch};

/// How a [`FileStorage`] lays out and syncs its files.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WalOptions {
    /// A segment rolls over to a new file once the next record would take it past
    /// this many bytes (every segment holds at least one batch, so a larger batch
    /// gets a segment of its own). Smaller segments let compaction free space sooner;
    /// each roll costs two file syncs and a directory sync.
    pub segment_bytes: u64,
    /// Whether to sync before acknowledging.
    pub sync_mode: SyncMode,
    /// Whether segments are created zero-filled to `segment_bytes`, so that appends
    /// overwrite zeros instead of growing the file (each sync then writes no inode);
    /// the next segment is filled on a background thread once the active one is half
    /// full. Costs `segment_bytes` of disk per node up front (two segments' worth
    /// near a roll).
    pub preallocate: bool,
}

impl WalOptions {
    /// The default segment size, 64 MiB.
    pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;

    /// Segments of `segment_bytes`, with [`SyncMode::Fsync`].
    pub fn new(segment_bytes: u64) -> WalOptions {
        WalOptions {
            segment_bytes,
            sync_mode: SyncMode::Fsync,
            preallocate: true,
        }
    }

    /// The same options with `sync_mode`.
    pub fn with_sync_mode(self, sync_mode: SyncMode) -> WalOptions {
        WalOptions { sync_mode, ..self }
    }

    /// The same options with segment preallocation on or off.
    pub fn with_preallocation(self, preallocate: bool) -> WalOptions {
        WalOptions {
            preallocate,
            ..self
        }
    }

    /// Bytes a new segment is zero-filled to.
    fn fill_bytes(&self) -> u64 {
        if self.preallocate {
            self.segment_bytes
        } else {
            0
        }
    }
}

impl Default for WalOptions {
    /// 64 MiB preallocated segments, [`SyncMode::Fsync`].
    fn default() -> WalOptions {
        WalOptions::new(WalOptions::SEGMENT_BYTES_DEFAULT)
    }
}

/// A node's durable storage in a directory of its own: a segmented, checksummed,
/// fsync'd write-ahead log plus snapshot files (format in the [module docs](super)).
///
/// The API is synchronous — a driver runs it on a dedicated OS thread and feeds it
/// groups of batches — and [`Storage`] is implemented on top by calling the same code
/// (which blocks the calling task; fine for tests and single-node tools).
///
/// Only one `FileStorage` uses a directory at a time: opening takes an exclusive lock
/// on it (`wal.lock`, released on drop or when the process dies) and fails with an
/// error naming the directory if another storage holds it.
///
/// **Fail-stop.** After any failed write, sync, rename, create or removal, every later
/// [`write_batches`](Self::write_batches), [`write_batch`](Self::write_batch) and
/// [`read_back`](Self::read_back) fails too, with an error naming that first failure.
/// The files' state is then unknown: a failed `fsync` may have dropped the dirty pages
/// it could not write and marked them clean, so a retried sync would succeed without
/// writing them, and a read could return bytes that are not on the device (the
/// "fsyncgate" lesson: PostgreSQL 2018; Rebello et al., "Can Applications Recover from
/// fsync Failures?", ATC 2020). Nothing is retried; the node must stop, and only a
/// restart — which recovers from what the device really holds — may go on.
pub struct FileStorage {
    dir: PathBuf,
    options: WalOptions,
    disk: Box<dyn Disk>,
    /// Oldest segment still needed. Invariant: segments `first_segment..=active`
    /// all exist, and every older one has been deleted.
    first_segment: u64,
    active: ActiveSegment,
    state: WalState,
    /// Snapshot generations with a file in `dir`.
    snapshot_files: BTreeSet<u64>,
    next_snapshot_generation: u64,
    /// The first failure of a write path, if there was one: from then on the storage
    /// refuses everything (see the type's docs).
    failed: Option<Failure>,
    /// Encoded records of the group being written, not yet handed to the file.
    pending: Vec<u8>,
    /// The next segment's file, being zero-filled (with `options.preallocate`).
    /// Declared before `_lock`: dropping it waits for its thread, which must not
    /// outlive the lock.
    next_segment: Option<Preparer>,
    /// Held while the storage lives.
    _lock: DirLock,
}

impl FileStorage {
    /// Opens (or creates) the WAL in `dir` and recovers it, syncing as
    /// `options.sync_mode` says. See [`open_with_disk`](Self::open_with_disk).
    pub fn open(
        dir: impl AsRef<Path>,
        options: WalOptions,
    ) -> Result<(FileStorage, Recovered), StorageError> {
        FileStorage::open_with_disk(dir, options, Box::new(OsDisk::new(options.sync_mode)))
    }

    /// Opens (or creates) the WAL in `dir` on the real file system, syncing through
    /// `syncer` (which replaces `options.sync_mode`; tests pass one that counts syncs).
    /// See [`open_with_disk`](Self::open_with_disk).
    pub fn open_with_syncer(
        dir: impl AsRef<Path>,
        options: WalOptions,
        syncer: Box<dyn Syncer>,
    ) -> Result<(FileStorage, Recovered), StorageError> {
        FileStorage::open_with_disk(dir, options, Box::new(OsDisk::with_syncer(syncer)))
    }

    /// Opens (or creates) the WAL in `dir`, doing every file operation through `disk`
    /// (which replaces `options.sync_mode`; tests pass a
    /// [`FaultyDisk`](super::faults::FaultyDisk)).
    ///
    /// Recovery cuts a torn tail (a record that a crash cut short at the very end of
    /// the log, logged with `tracing::warn!`), removes temporary and unreferenced
    /// files, and refuses to start with [`StorageError::Corrupt`] — naming the file
    /// and byte offset — on any other damage: a bad record with an intact one after
    /// it, a bad record in an older segment, an impossible length, a missing segment,
    /// or a file it does not recognise.
    pub fn open_with_disk(
        dir: impl AsRef<Path>,
        options: WalOptions,
        mut disk: Box<dyn Disk>,
    ) -> Result<(FileStorage, Recovered), StorageError> {
        let dir = dir.as_ref().to_path_buf();
        ensure_dir(&dir, &mut *disk)?;
        // Before recovery, which removes files a running storage may still use.
        let lock = lock_dir(&dir)?;
        let outcome = recovery::recover(&dir, &mut *disk, true)?;
        let (first_segment, active) = match outcome.segments {
            Some(span) => (
                span.first,
                ActiveSegment::reopen(
                    &dir,
                    span.last,
                    span.last_len,
                    span.last_has_batches,
                    &mut *disk,
                )?,
            ),
            None => (
                1,
                ActiveSegment::create(
                    &dir,
                    1,
                    outcome.state.checkpoint(),
                    options.fill_bytes(),
                    None,
                    &mut *disk,
                )?,
            ),
        };
        let mut storage = FileStorage {
            dir,
            options,
            disk,
            first_segment,
            active,
            state: outcome.state,
            snapshot_files: outcome.snapshot_files,
            next_snapshot_generation: outcome.next_snapshot_generation,
            failed: None,
            pending: Vec::new(),
            next_segment: None,
            _lock: lock,
        };
        storage.remove_dead_segments()?;
        Ok((storage, outcome.recovered))
    }

    /// Group commit: appends one record per batch, in order, syncs once, and returns
    /// when all of them are durable. A batch with a snapshot also writes and syncs the
    /// snapshot file first, and a group that fills a segment syncs it before rolling
    /// to the next; otherwise the whole group costs exactly one file sync.
    ///
    /// Any failure — including a batch whose record would exceed
    /// [`RECORD_BYTES_MAX`](super::RECORD_BYTES_MAX) — is fatal for this instance (see
    /// the type's docs): some of the group may be on disk and some not, and none of
    /// it counts as acknowledged.
    pub fn write_batches(&mut self, batches: &[WriteBatch]) -> Result<(), StorageError> {
        self.refuse_if_failed("write")?;
        let result = self.write_group(batches);
        if let Err(e) = &result {
            self.failed = Some(Failure::of(e));
        }
        result
    }

    /// Makes one batch durable: [`write_batches`](Self::write_batches) of one.
    pub fn write_batch(&mut self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.write_batches(std::slice::from_ref(batch))
    }

    /// Everything durable so far, read back from the directory (what a restart would
    /// recover, without repairing anything). Refused after a failed write: what the
    /// files then show may not be what the device holds (see the type's docs).
    pub fn read_back(&mut self) -> Result<Recovered, StorageError> {
        self.refuse_if_failed("read back")?;
        recovery::recover(&self.dir, &mut *self.disk, false).map(|outcome| outcome.recovered)
    }

    /// The error for anything asked of a storage whose writes failed, naming the first
    /// failure (and keeping its kind: a full disk stays `StorageFull`).
    fn refuse_if_failed(&self, what: &str) -> Result<(), StorageError> {
        match &self.failed {
            None => Ok(()),
            Some(first) => Err(files::io_error(
                &format!("refusing to {what} after an earlier failure in"),
                &self.dir,
                std::io::Error::new(first.kind, first.message.clone()),
            )),
        }
    }

    /// The directory this WAL lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> WalOptions {
        self.options
    }

    /// Numbers of the segment files currently in use, oldest to newest.
    pub fn segments(&self) -> RangeInclusive<u64> {
        self.first_segment..=self.active.number()
    }

    fn write_group(&mut self, batches: &[WriteBatch]) -> Result<(), StorageError> {
        if batches.is_empty() {
            return Ok(());
        }
        self.pending.clear();
        let mut record_bytes = Vec::new();
        for batch in batches {
            let record = Record::Batch(self.log_ops(batch)?);
            record_bytes.clear();
            format::encode_record(&record, &mut record_bytes).map_err(|what| {
                invalid_input(&segment_path(&self.dir, self.active.number()), what)
            })?;
            if self.must_roll(record_bytes.len()) {
                self.roll()?;
            }
            self.pending.extend_from_slice(&record_bytes);
            if let Record::Batch(ops) = &record {
                for op in ops {
                    self.state.apply(op, self.active.number());
                }
            }
        }
        self.active.append_batches(&self.pending, &mut *self.disk)?;
        self.pending.clear();
        self.active.sync(&mut *self.disk)?;
        self.remove_unreferenced_snapshots()?;
        self.remove_dead_segments()?;
        self.prepare_next_segment();
        Ok(())
    }

    /// The batch as logged. Its snapshots are written to their files now, before the
    /// record that refers to them (see "Snapshots and crashes" in the module docs).
    fn log_ops<'b>(&mut self, batch: &'b WriteBatch) -> Result<Vec<LogOp<'b>>, StorageError> {
        let mut ops = Vec::with_capacity(batch.len());
        for op in batch.ops() {
            ops.push(match op {
                StorageOp::SetMeta { key, value } => LogOp::SetMeta {
                    key: Cow::Borrowed(key),
                    value: Cow::Borrowed(value),
                },
                StorageOp::PutEntry { index, entry } => LogOp::PutEntry {
                    index: *index,
                    entry: Cow::Borrowed(entry),
                },
                StorageOp::TruncateFrom(index) => LogOp::TruncateFrom(*index),
                StorageOp::CompactTo(index) => LogOp::CompactTo(*index),
                StorageOp::SaveSnapshot(snapshot) => {
                    let generation = self.next_snapshot_generation;
                    self.next_snapshot_generation += 1;
                    write_snapshot(&self.dir, generation, snapshot, &mut *self.disk)?;
                    self.snapshot_files.insert(generation);
                    LogOp::SnapshotSaved(generation)
                }
            });
        }
        Ok(ops)
    }

    /// `true` if a record of `record_len` bytes must go to a new segment.
    fn must_roll(&self, record_len: usize) -> bool {
        let holds_batch = self.active.has_batches() || !self.pending.is_empty();
        let len_after = self.active.len() + (self.pending.len() + record_len) as u64;
        holds_batch && len_after > self.options.segment_bytes
    }

    /// Finishes the active segment — writes and syncs what is pending, so that only
    /// the newest segment can ever have a torn tail — and starts the next one with a
    /// checkpoint of the current state.
    fn roll(&mut self) -> Result<(), StorageError> {
        self.active.append_batches(&self.pending, &mut *self.disk)?;
        self.pending.clear();
        self.active.finish(&mut *self.disk)?;
        let next = self.active.number() + 1;
        let prepared = self
            .next_segment
            .take()
            .filter(|p| p.number() == next)
            .and_then(Preparer::finish);
        self.active = ActiveSegment::create(
            &self.dir,
            next,
            self.state.checkpoint(),
            self.options.fill_bytes(),
            prepared,
            &mut *self.disk,
        )?;
        Ok(())
    }

    /// Starts zero-filling the next segment once the active one is half full, so the
    /// file is ready when the roll comes (and a short-lived storage never makes one).
    fn prepare_next_segment(&mut self) {
        let half_full = self.active.len() >= self.options.segment_bytes / 2;
        if !self.options.preallocate || self.next_segment.is_some() || !half_full {
            return;
        }
        let next = self.active.number() + 1;
        self.next_segment = Preparer::start(
            &segment_path(&self.dir, next),
            next,
            self.options.segment_bytes,
            self.options.sync_mode == SyncMode::Fsync,
        );
    }

    /// Deletes snapshot files other than the current one. Runs only after the record
    /// naming the current one is durable.
    fn remove_unreferenced_snapshots(&mut self) -> Result<(), StorageError> {
        let current = self.state.snapshot;
        let stale: Vec<u64> = self
            .snapshot_files
            .iter()
            .copied()
            .filter(|g| Some(*g) != current)
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        for generation in stale {
            files::remove(&mut *self.disk, &snapshot_path(&self.dir, generation))?;
            self.snapshot_files.remove(&generation);
        }
        files::sync_dir(&mut *self.disk, &self.dir)
    }

    /// Deletes the oldest segments while none of their entries is live. Runs only after
    /// the records that killed those entries are durable, and deletes oldest first,
    /// syncing the directory after each, so a crash never leaves a gap in the sequence.
    fn remove_dead_segments(&mut self) -> Result<(), StorageError> {
        while self.first_segment < self.active.number()
            && self.state.liveness.is_dead(self.first_segment)
        {
            files::remove(
                &mut *self.disk,
                &segment_path(&self.dir, self.first_segment),
            )?;
            files::sync_dir(&mut *self.disk, &self.dir)?;
            self.first_segment += 1;
        }
        Ok(())
    }
}

/// Creates `dir` if it does not exist, durably (its parent is synced).
fn ensure_dir(dir: &Path, disk: &mut dyn Disk) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| files::io_error("creating directory", dir, e))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => files::sync_dir(disk, parent),
        _ => Ok(()),
    }
}

/// The first failure of a storage's write path.
#[derive(Clone, Debug)]
struct Failure {
    /// The error as it was reported (it names the operation and the file).
    message: String,
    /// Its I/O kind, if it was an I/O error (`StorageFull` for a full disk).
    kind: std::io::ErrorKind,
}

impl Failure {
    fn of(error: &StorageError) -> Failure {
        let kind = match error {
            StorageError::Io { source, .. } => source.kind(),
            StorageError::Corrupt(_) => std::io::ErrorKind::InvalidData,
        };
        Failure {
            message: error.to_string(),
            kind,
        }
    }
}

impl fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .field("segments", &self.segments())
            .field("snapshot", &self.state.snapshot)
            .field("failed", &self.failed.as_ref().map(|f| &f.message))
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Storage for FileStorage {
    /// Reads the directory back ([`FileStorage::read_back`]).
    async fn load(&mut self) -> Result<Recovered, StorageError> {
        self.read_back()
    }

    /// [`FileStorage::write_batch`]; blocks the calling task until durable.
    async fn persist(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        self.write_batch(&batch)
    }

    /// [`FileStorage::write_batches`]: one sync for the whole group.
    async fn persist_all(&mut self, batches: Vec<WriteBatch>) -> Result<(), StorageError> {
        self.write_batches(&batches)
    }
}
