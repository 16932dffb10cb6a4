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
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{thread, Arc};
use std::fs::File;
use std::path::{Path, PathBuf};
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
    fill: Cancellable<File>,
}

impl Preparer {
    /// Starts filling the temporary file of segment `segment_path` (number `number`)
    /// with `bytes` zeros; with `sync`, the zeros are synced once written, so that the
    /// roll's own sync does not have to write them out. `None` if no thread could be
    /// started (the roll then fills the file itself).
    pub(crate) fn start(segment_path: &Path, number: u64, bytes: u64, sync: bool) -> Option<Self> {
        let path = temp_path(segment_path);
        let thread_path = path.clone();
        let spawned = Cancellable::spawn("synod-wal-prepare", move |cancel| {
            fill(&thread_path, bytes, sync, cancel)
        });
        match spawned {
            Ok(fill) => Some(Preparer { number, path, fill }),
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
    ///
    /// Dropping a preparer instead stops the fill between chunks and waits for the
    /// thread, so that it never writes into a directory the storage no longer holds
    /// the lock of. The partial file stays; the next open removes it with every other
    /// temporary.
    pub(crate) fn finish(self) -> Option<File> {
        let why = match self.fill.join() {
            Ok(file) => return Some(file),
            Err(why) => why,
        };
        tracing::warn!(error = %why, "preallocating the next WAL segment failed");
        let _ = std::fs::remove_file(&self.path);
        None
    }
}

/// A thread doing one job that checks a cancel flag between its steps. Dropping it
/// raises the flag and waits for the thread: once the drop returns, the job has ended
/// and takes no further step (the loom models below check exactly that).
struct Cancellable<T> {
    cancel: Arc<AtomicBool>,
    /// `None` once joined.
    handle: Option<thread::JoinHandle<Result<T, StorageError>>>,
}

impl<T: Send + 'static> Cancellable<T> {
    /// Runs `job` on a new thread named `name`, handing it the cancel flag.
    fn spawn(
        name: &str,
        job: impl FnOnce(&AtomicBool) -> Result<T, StorageError> + Send + 'static,
    ) -> std::io::Result<Self> {
        let cancel = Arc::new(AtomicBool::new(false));
        let thread_cancel = Arc::clone(&cancel);
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || job(&thread_cancel))?;
        Ok(Cancellable {
            cancel,
            handle: Some(handle),
        })
    }

    /// Waits for the job's result; `Err` says why there is none.
    fn join(mut self) -> Result<T, String> {
        let handle = self.handle.take().expect("joined once: join consumes");
        match handle.join() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the thread panicked".to_owned()),
        }
    }
}

impl<T> Drop for Cancellable<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // Relaxed: the flag only hurries the job along; `join` is what orders the
            // job's last step before the end of the drop.
            self.cancel.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

impl<T> std::fmt::Debug for Cancellable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellable")
            .field("running", &self.handle.is_some())
            .finish_non_exhaustive()
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

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model-checked with loom (`scripts/loom.sh`): the preparer's thread against its
    //! owner, which either waits for the result or drops it half-way.

    use super::*;
    use loom::sync::atomic::AtomicUsize;

    /// Steps of the model job (chunks of zeros, in the real one).
    const STEPS: usize = 3;

    /// A job of [`STEPS`] steps that stops at a raised cancel flag, counting its steps
    /// in `steps` and raising `ended` as its very last act.
    fn job(
        steps: Arc<AtomicUsize>,
        ended: Arc<AtomicBool>,
    ) -> impl FnOnce(&AtomicBool) -> Result<usize, StorageError> + Send + 'static {
        move |cancel| {
            let mut done = 0;
            let result = loop {
                if done == STEPS {
                    break Ok(done);
                }
                if cancel.load(Ordering::Relaxed) {
                    break Err(StorageError::Corrupt("cancelled".into()));
                }
                steps.fetch_add(1, Ordering::Relaxed);
                done += 1;
            };
            ended.store(true, Ordering::Relaxed);
            result
        }
    }

    /// Dropping the preparer part-way (a storage closing while the next segment
    /// fills): in every interleaving the job has ended when the drop returns, so no
    /// step comes after it — the fill never writes into a directory whose lock the
    /// storage has let go. (A drop that only raised the flag fails this at once.)
    #[test]
    fn a_dropped_preparer_has_stopped_its_thread_when_the_drop_returns() {
        loom::model(|| {
            let steps = Arc::new(AtomicUsize::new(0));
            let ended = Arc::new(AtomicBool::new(false));
            let fill = Cancellable::spawn("fill", job(Arc::clone(&steps), Arc::clone(&ended)))
                .expect("loom spawns");
            drop(fill);
            assert!(
                ended.load(Ordering::Relaxed),
                "the job ended before the drop returned"
            );
            assert!(steps.load(Ordering::Relaxed) <= STEPS);
        });
    }

    /// Waiting for the preparer (a roll that needs the file) gets the whole job's
    /// result in every interleaving: nothing cancels a job that is waited for.
    #[test]
    fn a_joined_preparer_returns_the_finished_job() {
        loom::model(|| {
            let steps = Arc::new(AtomicUsize::new(0));
            let ended = Arc::new(AtomicBool::new(false));
            let fill = Cancellable::spawn("fill", job(Arc::clone(&steps), Arc::clone(&ended)))
                .expect("loom spawns");
            assert_eq!(fill.join(), Ok(STEPS));
            assert_eq!(steps.load(Ordering::Relaxed), STEPS);
        });
    }
}
