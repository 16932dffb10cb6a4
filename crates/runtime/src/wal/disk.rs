//! The one seam between the WAL and the file system: every file the WAL creates,
//! writes, syncs, renames, removes or reads goes through a [`Disk`], so that a test
//! can put a fault under any of those calls ([`FaultyDisk`](super::faults::FaultyDisk))
//! and see what the storage does about it.
//!
//! The real path costs one dynamic call per file operation, next to a system call
//! (and, for syncs, next to an `fdatasync` that takes milliseconds).
//!
//! What does not go through a `Disk`: listing the directory, creating it, taking its
//! lock (`lock.rs`), and the background thread that zero-fills the next segment
//! (`prepare.rs`) — it only ever writes a temporary file whose failure is logged and
//! redone in the foreground, through the disk, by the roll that needs it.

use super::durability::{SyncMode, Syncer};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The file operations of a [`FileStorage`](super::FileStorage). Each returns the
/// plain `io::Error`; the storage adds what it was doing and to which file.
///
/// Implementations other than [`OsDisk`] are for tests: they must behave like a file
/// system (a write that returns `Ok` wrote every byte), or fail like one.
pub trait Disk: Send {
    /// Creates `path`, which must not exist yet, for writing.
    fn create_new(&mut self, path: &Path) -> io::Result<File>;
    /// Opens the existing file `path` for writing at explicit offsets.
    fn open_write(&mut self, path: &Path) -> io::Result<File>;
    /// The whole content of `path`.
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    /// Writes all of `bytes` to `file` (at `path`) from byte `offset` on.
    fn write_at(&mut self, file: &File, path: &Path, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// Sets the length of `file` (at `path`) to `len` bytes.
    fn set_len(&mut self, file: &File, path: &Path, len: u64) -> io::Result<()>;
    /// Makes the data written to `file` (at `path`) durable.
    fn sync_file(&mut self, file: &File, path: &Path) -> io::Result<()>;
    /// Makes the entries of directory `dir` (created, renamed or removed files) durable.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
    /// Renames `from` to `to`.
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove(&mut self, path: &Path) -> io::Result<()>;
}

/// The real file system, syncing through a [`Syncer`].
pub struct OsDisk {
    syncer: Box<dyn Syncer>,
}

impl OsDisk {
    /// The file system, syncing as `mode` says.
    pub fn new(mode: SyncMode) -> OsDisk {
        OsDisk::with_syncer(mode.syncer())
    }

    /// The file system, syncing through `syncer` (tests pass one that records syncs).
    pub fn with_syncer(syncer: Box<dyn Syncer>) -> OsDisk {
        OsDisk { syncer }
    }
}

impl std::fmt::Debug for OsDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsDisk").finish_non_exhaustive()
    }
}

impl Disk for OsDisk {
    fn create_new(&mut self, path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).open(path)
    }

    fn open_write(&mut self, path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).open(path)
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn write_at(&mut self, file: &File, _path: &Path, bytes: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(bytes, offset)
    }

    fn set_len(&mut self, file: &File, _path: &Path, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn sync_file(&mut self, file: &File, path: &Path) -> io::Result<()> {
        self.syncer.sync_file(file, path)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.syncer.sync_dir(dir)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}
