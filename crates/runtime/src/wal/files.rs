//! File-system calls, through the storage's [`Disk`], with the context every
//! [`StorageError`] must carry: what we were doing and to which file.

use super::disk::Disk;
use std::fs::File;
use std::io;
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
pub(crate) fn read_all(disk: &mut dyn Disk, path: &Path) -> Result<Vec<u8>, StorageError> {
    disk.read(path).map_err(|e| io_error("reading", path, e))
}

/// Creates `path`, which must not exist yet, for writing.
pub(crate) fn create_new(disk: &mut dyn Disk, path: &Path) -> Result<File, StorageError> {
    disk.create_new(path)
        .map_err(|e| io_error("creating", path, e))
}

/// Opens the existing file `path` for writing (at explicit offsets).
pub(crate) fn open_write(disk: &mut dyn Disk, path: &Path) -> Result<File, StorageError> {
    disk.open_write(path)
        .map_err(|e| io_error("opening for writing", path, e))
}

/// Writes all of `bytes` to `file` (at `path`) starting at byte `offset`.
pub(crate) fn write_all_at(
    disk: &mut dyn Disk,
    file: &File,
    path: &Path,
    bytes: &[u8],
    offset: u64,
) -> Result<(), StorageError> {
    disk.write_at(file, path, bytes, offset)
        .map_err(|e| io_error("writing to", path, e))
}

/// Cuts `file` (at `path`) to `len` bytes; durable with the file's next sync.
pub(crate) fn set_len(
    disk: &mut dyn Disk,
    file: &File,
    path: &Path,
    len: u64,
) -> Result<(), StorageError> {
    disk.set_len(file, path, len)
        .map_err(|e| io_error("truncating", path, e))
}

/// Makes the data of `file` (at `path`) durable.
pub(crate) fn sync_file(disk: &mut dyn Disk, file: &File, path: &Path) -> Result<(), StorageError> {
    disk.sync_file(file, path)
        .map_err(|e| io_error("syncing", path, e))
}

/// Makes the entries of directory `dir` durable.
pub(crate) fn sync_dir(disk: &mut dyn Disk, dir: &Path) -> Result<(), StorageError> {
    disk.sync_dir(dir)
        .map_err(|e| io_error("syncing directory", dir, e))
}

/// Renames `from` to `to` (atomically replacing nothing: `to` must be a fresh name).
pub(crate) fn rename(disk: &mut dyn Disk, from: &Path, to: &Path) -> Result<(), StorageError> {
    disk.rename(from, to)
        .map_err(|e| io_error(&format!("renaming to {}", to.display()), from, e))
}

/// Removes the file `path`.
pub(crate) fn remove(disk: &mut dyn Disk, path: &Path) -> Result<(), StorageError> {
    disk.remove(path).map_err(|e| io_error("removing", path, e))
}

/// Cuts `path` back to `len` bytes and makes that durable.
pub(crate) fn truncate(disk: &mut dyn Disk, path: &Path, len: u64) -> Result<(), StorageError> {
    let file = disk
        .open_write(path)
        .map_err(|e| io_error("opening for truncation", path, e))?;
    set_len(disk, &file, path, len)?;
    sync_file(disk, &file, path)
}
