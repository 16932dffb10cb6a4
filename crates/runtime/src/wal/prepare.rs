//! Zero-filling the next segment's file on a thread of its own, while the active
//! segment fills, so that a roll finds its successor already allocated.
//!
//! Why zeros: appending to a file makes every `fdatasync` also write the file's
//! inode (its size changed) and allocate blocks; overwriting blocks that already
//! hold zeros does neither, so each sync writes the data and nothing else. On the
//! reference VM three members syncing at once did 40–55 % more syncs per second on
//! zero-filled files (docs/performance.md, "Preallocated segments"). A file merely
//! `fallocate`d was slower than plain appends there: its blocks are "unwritten"
//! extents, and the first write to each converts it, which is again a metadata
//! write per sync.
//!
//! The prepared file is a temporary (`wal-<n>.log.tmp`), so a crash at any point
//! leaves nothing recovery must understand: temporaries are removed on open.

use super::disk::{Disk, OsDisk};
use super::durability::SyncMode;
use super::files;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use synod_core::StorageError;

/// Zeros written per `write` call while filling.
const FILL_CHUNK_BYTES: usize = 1 << 20;

/// The temporary name under which segment `path` is built before its rename.
pub(crate) fn temp_path(segment_path: &Path) -> PathBuf {
    segment_path.with_extension(format!("log{}", super::format::TEMP_SUFFIX))
}

/// Writes zeros over `file` from its start up to `bytes`.
pub(crate) fn zero_fill(
    disk: &mut dyn Disk,
    file: &File,
    path: &Path,
    bytes: u64,
    cancel: &AtomicBool,
) -> Result<(), StorageError> {
    let zeros = vec![0u8; FILL_CHUNK_BYTES];
    let mut offset = 0u64;
    while offset < bytes {
        if cancel.load(Ordering::Relaxed) {
            return Err(files::io_error(
                "zero-filling",
                path,
                std::io::Error::other("cancelled: the storage is closing"),
            ));
        }
        let chunk = (bytes - offset).min(FILL_CHUNK_BYTES as u64) as usize;
        files::write_all_at(disk, file, path, &zeros[..chunk], offset)?;
        offset += chunk as u64;
    }
    Ok(())
}

/// The next segment's temporary file, being zero-filled in the background.
#[derive(Debug)]
pub(crate) struct Preparer {
    number: u64,
    path: PathBuf,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<File, StorageError>>>,
}

impl Preparer {
    /// Starts filling the temporary file of segment `segment_path` (number `number`)
    /// with `bytes` zeros; with `sync`, the zeros are synced once written, so that the
    /// roll's own sync does not have to write them out. `None` if no thread could be
    /// started (the roll then fills the file itself).
    pub(crate) fn start(segment_path: &Path, number: u64, bytes: u64, sync: bool) -> Option<Self> {
        let path = temp_path(segment_path);
        let cancel = Arc::new(AtomicBool::new(false));
        let (thread_path, thread_cancel) = (path.clone(), cancel.clone());
        let spawned = std::thread::Builder::new()
            .name("synod-wal-prepare".into())
            .spawn(move || fill(&thread_path, bytes, sync, &thread_cancel));
        match spawned {
            Ok(handle) => Some(Preparer {
                number,
                path,
                cancel,
                handle: Some(handle),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the thread that preallocates WAL segments");
                None
            }
        }
    }

    /// The segment this file is for.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Waits for the file. `None` if filling failed: the failure is logged and the
    /// partial file removed, and the caller creates the segment the slow way (where
    /// the same fault, e.g. a full disk, then fails the write that needed the roll).
    pub(crate) fn finish(mut self) -> Option<File> {
        let handle = self.handle.take().expect("a preparer is finished once");
        let why = match handle.join() {
            Ok(Ok(file)) => return Some(file),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the thread panicked".to_owned(),
        };
        tracing::warn!(error = %why, "preallocating the next WAL segment failed");
        let _ = std::fs::remove_file(&self.path);
        None
    }
}

impl Drop for Preparer {
    /// Stops the fill between chunks and waits for the thread, so that it never
    /// writes into a directory the storage no longer holds the lock of. The partial
    /// file stays; the next open removes it with every other temporary.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.cancel.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// The preparer thread's work. It uses the file system directly, not the storage's
/// [`Disk`]: a fault injected there would strike at a moment no test controls, and a
/// real one (a full disk) only costs the preparation — the roll then creates the
/// segment itself, through the storage's disk, and meets the same fault there.
fn fill(path: &Path, bytes: u64, sync: bool, cancel: &AtomicBool) -> Result<File, StorageError> {
    let mut disk = OsDisk::new(if sync {
        SyncMode::Fsync
    } else {
        SyncMode::Never
    });
    let file = files::create_new(&mut disk, path)?;
    zero_fill(&mut disk, &file, path, bytes, cancel)?;
    files::sync_file(&mut disk, &file, path)?;
    Ok(file)
}
