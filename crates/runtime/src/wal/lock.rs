//! One [`FileStorage`](super::FileStorage) per directory: an exclusive advisory lock
//! (`flock`) on `wal.lock`, held for the storage's lifetime. A second storage on the
//! same directory — another `synod node` started on the same `--dir`, or a second
//! open in this process — would append to the same segment and delete files the
//! first still uses; it is refused with an error naming the directory instead. The
//! kernel drops the lock when the process dies, so a crash never leaves the
//! directory locked (the file itself stays, empty, and recovery ignores it).

use super::files::io_error;
use super::format::LOCK_FILE;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use synod_core::StorageError;

/// The held lock; released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the lock of WAL directory `dir`, or fails at once if someone holds it.
pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, StorageError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error("opening the lock file", &path, e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StorageError::Io {
            context: format!(
                "locking {}: the WAL directory {} is in use by another storage \
                 (is another node running on it?)",
                path.display(),
                dir.display()
            ),
            source: io::Error::from(rustix::io::Errno::WOULDBLOCK),
        }),
        Err(e) => Err(io_error("locking", &path, io::Error::from(e))),
    }
}
