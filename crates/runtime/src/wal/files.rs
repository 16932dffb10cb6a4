//! File-system calls with the context every [`StorageError`] must carry: what we were
//! doing and to which file.

use super::durability::Syncer;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use synod_core::StorageError;

/// An I/O error while `doing` something to `path`.
pub(crate) fn io_error(doing: &str, path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        context: format!("{doing} {}", path.display()),
        source,
    }
}

/// Corruption found in `path` at byte `offset`.
pub(crate) fn corrupt_at(path: &Path, offset: u64, what: &str) -> StorageError {
    StorageError::Corrupt(format!(
        "{} at byte offset {offset}: {what}",
        path.display()
    ))
}

/// Corruption of the directory as a whole (a missing or unexpected file).
pub(crate) fn corrupt_file(path: &Path, what: &str) -> StorageError {
    StorageError::Corrupt(format!("{}: {what}", path.display()))
}

/// The whole content of `path`.
pub(crate) fn read_all(path: &Path) -> Result<Vec<u8>, StorageError> {
    fs::read(path).map_err(|e| io_error("reading", path, e))
}

/// Creates `path`, which must not exist yet, for writing.
pub(crate) fn create_new(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error("creating", path, e))
}

/// Opens the existing file `path` for writing (at explicit offsets).
pub(crate) fn open_write(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_error("opening for writing", path, e))
}

/// Writes all of `bytes` to `file` (at `path`).
pub(crate) fn write_all(file: &mut File, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    file.write_all(bytes)
        .map_err(|e| io_error("writing to", path, e))
}

/// Writes all of `bytes` to `file` (at `path`) starting at byte `offset`.
pub(crate) fn write_all_at(
    file: &File,
    path: &Path,
    bytes: &[u8],
    offset: u64,
) -> Result<(), StorageError> {
    file.write_all_at(bytes, offset)
        .map_err(|e| io_error("writing to", path, e))
}

/// Cuts `file` (at `path`) to `len` bytes; durable with the file's next sync.
pub(crate) fn set_len(file: &File, path: &Path, len: u64) -> Result<(), StorageError> {
    file.set_len(len)
        .map_err(|e| io_error("truncating", path, e))
}

/// Makes the data of `file` (at `path`) durable.
pub(crate) fn sync_file(
    syncer: &mut dyn Syncer,
    file: &File,
    path: &Path,
) -> Result<(), StorageError> {
    syncer
        .sync_file(file, path)
        .map_err(|e| io_error("syncing", path, e))
}

/// Makes the entries of directory `dir` durable.
pub(crate) fn sync_dir(syncer: &mut dyn Syncer, dir: &Path) -> Result<(), StorageError> {
    syncer
        .sync_dir(dir)
        .map_err(|e| io_error("syncing directory", dir, e))
}

/// Renames `from` to `to` (atomically replacing nothing: `to` must be a fresh name).
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    fs::rename(from, to).map_err(|e| io_error(&format!("renaming to {}", to.display()), from, e))
}

/// Removes the file `path`.
pub(crate) fn remove(path: &Path) -> Result<(), StorageError> {
    fs::remove_file(path).map_err(|e| io_error("removing", path, e))
}

/// Cuts `path` back to `len` bytes and makes that durable.
pub(crate) fn truncate(syncer: &mut dyn Syncer, path: &Path, len: u64) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_error("opening for truncation", path, e))?;
    file.set_len(len)
        .map_err(|e| io_error("truncating", path, e))?;
    sync_file(syncer, &file, path)
}
