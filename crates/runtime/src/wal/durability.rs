//! Where the WAL makes bytes durable: the seam between "written" and "survives a
//! power failure", kept behind a trait so that tests can count and check every sync.
//! It is the narrow half of the [`Disk`](super::Disk) seam: [`OsDisk`](super::OsDisk)
//! does the real file operations and syncs through a `Syncer`.

use std::fs::File;
use std::io;
use std::path::Path;

/// Whether the WAL makes writes durable before acknowledging them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SyncMode {
    /// `fdatasync` the segment before every acknowledgement and fsync the directory
    /// after creating, renaming or deleting files. The only mode that survives a
    /// power failure.
    #[default]
    Fsync,
    /// Never sync: a process crash loses nothing (the page cache survives it), a power
    /// failure may lose or tear anything. For measuring what durability costs.
    Never,
}

/// Makes written data durable. [`FileStorage`](super::FileStorage) (through
/// [`OsDisk`](super::OsDisk)) calls
/// [`sync_file`](Syncer::sync_file) after writing records and before acknowledging
/// them, and [`sync_dir`](Syncer::sync_dir) after every file creation, rename or
/// deletion in its directory.
pub trait Syncer: Send {
    /// Makes the data written to `file` (at `path`) durable.
    fn sync_file(&mut self, file: &File, path: &Path) -> io::Result<()>;
    /// Makes the directory entries of `dir` (created, renamed or removed files) durable.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
}

/// The real thing: `sync_data` on files, `sync_all` on the directory.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsyncSyncer;

impl Syncer for FsyncSyncer {
    fn sync_file(&mut self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        // On Linux a directory is synced through a read-only handle to it.
        File::open(dir)?.sync_all()
    }
}

/// Syncs nothing ([`SyncMode::Never`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSync;

impl Syncer for NoSync {
    fn sync_file(&mut self, _file: &File, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn sync_dir(&mut self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

impl SyncMode {
    /// The syncer that implements this mode.
    pub fn syncer(self) -> Box<dyn Syncer> {
        match self {
            SyncMode::Fsync => Box::new(FsyncSyncer),
            SyncMode::Never => Box::new(NoSync),
        }
    }
}
