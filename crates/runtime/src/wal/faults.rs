//! Test support: a [`Disk`] that does the real file operations but can be armed to
//! fail one of them the way a failing device does, so that tests can check what the
//! WAL — and a node above it — does then (module docs, "Failures").
//!
//! It is compiled into the crate, not hidden behind a feature: it is small, does
//! nothing unless a test builds one, and other crates' tests (the harness's) can use
//! it without a build of their own.
//!
//! ```
//! use synod_runtime::wal::faults::{Fault, FaultyDisk};
//! use synod_runtime::wal::{FileStorage, SyncMode, WalOptions};
//! use synod_core::WriteBatch;
//!
//! let dir = tempfile::tempdir()?;
//! let disk = FaultyDisk::new(SyncMode::Fsync);
//! let (mut wal, _) = FileStorage::open_with_disk(dir.path(), WalOptions::new(1 << 20), Box::new(disk.clone()))?;
//! disk.arm(Fault::SyncEio, ".log", 0); // the next sync of a segment fails
//! let mut batch = WriteBatch::new();
//! batch.set_meta("term", vec![1]);
//! let err = wal.write_batch(&batch).unwrap_err();
//! assert!(err.to_string().contains("syncing"), "{err}");
//! assert_eq!(disk.struck(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::disk::{Disk, OsDisk};
use super::durability::SyncMode;
use crate::sync::{Arc, Mutex, MutexGuard};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One fault, striking one file operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// A write fails with `ENOSPC` after writing its first `written` bytes (all of
    /// them if fewer): a full disk, and a short write that leaves a torn record.
    WriteNoSpace {
        /// Bytes of the write that land before the failure.
        written: usize,
    },
    /// A file sync fails with `EIO`, and the file loses every byte written to it since
    /// its last successful sync: it is put back as it was then, as Linux drops the
    /// dirty pages it could not write. They are also marked clean, so the next sync of
    /// the file succeeds — a storage that retried would be told all is well.
    SyncEio,
    /// A rename fails with `ENOSPC` (a directory that needs a new block); nothing is
    /// renamed. Matched on the name being renamed.
    RenameNoSpace,
    /// Creating a file fails with `ENOSPC`; nothing is created.
    CreateNoSpace,
    /// A read returns the file with the byte at `offset` XORed with `mask` (if the
    /// file is that long): a corrupt read. The file itself is left intact.
    FlipOnRead {
        /// The byte to damage.
        offset: u64,
        /// Bits to flip in it.
        mask: u8,
    },
}

/// The real file system, with armed [`Fault`]s. Clones share one plan: a test keeps
/// a clone to arm faults and to count them after handing another to the storage.
///
/// What is not modelled: directory entries are durable at once (a `sync_dir` never
/// fails and never loses a rename), and a failed sync restores the file's bytes
/// immediately — on ext4 the page cache may go on showing the lost bytes until they
/// are evicted, which is why a failed storage must not read back either.
#[derive(Clone)]
pub struct FaultyDisk {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    os: OsDisk,
    armed: Vec<Armed>,
    /// Content of each file written since its last successful sync, as it was at that
    /// sync (empty for a file created since): what a failed sync puts back.
    unsynced: HashMap<PathBuf, Vec<u8>>,
    /// How many armed faults have struck.
    struck: usize,
}

struct Armed {
    fault: Fault,
    /// Name suffix of the files it applies to (`""`: any).
    suffix: String,
    /// Matching operations still to let through before it strikes.
    skip: u64,
}

/// The kind of operation a fault strikes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    SyncFile,
    Rename,
    Create,
    Read,
}

impl Fault {
    fn op(self) -> Op {
        match self {
            Fault::WriteNoSpace { .. } => Op::Write,
            Fault::SyncEio => Op::SyncFile,
            Fault::RenameNoSpace => Op::Rename,
            Fault::CreateNoSpace => Op::Create,
            Fault::FlipOnRead { .. } => Op::Read,
        }
    }
}

impl FaultyDisk {
    /// The file system, syncing as `mode` says, with nothing armed.
    pub fn new(mode: SyncMode) -> FaultyDisk {
        FaultyDisk {
            shared: Arc::new(Mutex::new(Shared {
                os: OsDisk::new(mode),
                armed: Vec::new(),
                unsynced: HashMap::new(),
                struck: 0,
            })),
        }
    }

    /// Arms `fault` to strike the `nth` operation of its kind (0: the next one) on a
    /// file whose name ends with `suffix` (`""`: any file; `".log"`: a segment, not
    /// its `.log.tmp`). Each armed fault strikes once.
    pub fn arm(&self, fault: Fault, suffix: &str, nth: u64) {
        self.lock().armed.push(Armed {
            fault,
            suffix: suffix.to_owned(),
            skip: nth,
        });
    }

    /// How many armed faults have struck so far.
    pub fn struck(&self) -> usize {
        self.lock().struck
    }

    /// Disarms every fault that has not struck yet.
    pub fn disarm(&self) {
        self.lock().armed.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panicking test thread must not hide the state from the others.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for FaultyDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = self.lock();
        f.debug_struct("FaultyDisk")
            .field(
                "armed",
                &shared.armed.iter().map(|a| a.fault).collect::<Vec<_>>(),
            )
            .field("struck", &shared.struck)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The fault striking this `op` on `path` now, if any (and counts it as struck).
    fn strike(&mut self, op: Op, path: &Path) -> Option<Fault> {
        let name = path.file_name()?.to_string_lossy();
        let mut hit = None;
        for (i, armed) in self.armed.iter_mut().enumerate() {
            if armed.fault.op() != op || !name.ends_with(armed.suffix.as_str()) {
                continue;
            }
            match armed.skip {
                0 => hit = hit.or(Some(i)),
                _ => armed.skip -= 1,
            }
        }
        let fault = self.armed.remove(hit?).fault;
        self.struck += 1;
        Some(fault)
    }

    /// Remembers what `path` holds before its first change since its last sync.
    fn before_change(&mut self, path: &Path) {
        if !self.unsynced.contains_key(path) {
            let content = fs::read(path).unwrap_or_default();
            self.unsynced.insert(path.to_path_buf(), content);
        }
    }
}

fn no_space() -> io::Error {
    io::Error::from(rustix::io::Errno::NOSPC)
}

impl Disk for FaultyDisk {
    fn create_new(&mut self, path: &Path) -> io::Result<File> {
        let mut shared = self.lock();
        if shared.strike(Op::Create, path).is_some() {
            return Err(no_space());
        }
        let file = shared.os.create_new(path)?;
        shared.unsynced.insert(path.to_path_buf(), Vec::new());
        Ok(file)
    }

    fn open_write(&mut self, path: &Path) -> io::Result<File> {
        self.lock().os.open_write(path)
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let mut shared = self.lock();
        let mut bytes = shared.os.read(path)?;
        if let Some(Fault::FlipOnRead { offset, mask }) = shared.strike(Op::Read, path) {
            if let Some(byte) = bytes.get_mut(offset as usize) {
                *byte ^= mask;
            }
        }
        Ok(bytes)
    }

    fn write_at(&mut self, file: &File, path: &Path, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut shared = self.lock();
        shared.before_change(path);
        if let Some(Fault::WriteNoSpace { written }) = shared.strike(Op::Write, path) {
            let landed = &bytes[..written.min(bytes.len())];
            shared.os.write_at(file, path, landed, offset)?;
            return Err(no_space());
        }
        shared.os.write_at(file, path, bytes, offset)
    }

    fn set_len(&mut self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let mut shared = self.lock();
        shared.before_change(path);
        shared.os.set_len(file, path, len)
    }

    fn sync_file(&mut self, file: &File, path: &Path) -> io::Result<()> {
        let mut shared = self.lock();
        if shared.strike(Op::SyncFile, path).is_some() {
            // The dirty pages are gone (and no longer dirty): the file is what the
            // last successful sync left.
            if let Some(synced) = shared.unsynced.remove(path) {
                file.set_len(synced.len() as u64)?;
                file.write_all_at(&synced, 0)?;
            }
            return Err(io::Error::from(rustix::io::Errno::IO));
        }
        shared.os.sync_file(file, path)?;
        shared.unsynced.remove(path);
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.lock().os.sync_dir(dir)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let mut shared = self.lock();
        if shared.strike(Op::Rename, from).is_some() {
            return Err(no_space());
        }
        shared.os.rename(from, to)?;
        if let Some(synced) = shared.unsynced.remove(from) {
            shared.unsynced.insert(to.to_path_buf(), synced);
        }
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let mut shared = self.lock();
        shared.os.remove(path)?;
        shared.unsynced.remove(path);
        Ok(())
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model-checked with loom (`scripts/loom.sh`): one plan shared by the storage's
    //! thread and a test thread, as in the runtime's storage-fault tests (the test
    //! arms and counts while the node's storage thread writes).

    use super::*;
    use crate::sync::thread;

    /// Two threads each write once to a file of their own while a `WriteNoSpace` for
    /// any file is armed: in every interleaving exactly one write fails, the count
    /// says one fault struck, and nothing is left armed. (A plan that matched the
    /// fault under one lock and removed it under another would let both writes take
    /// it.)
    #[test]
    fn an_armed_fault_strikes_exactly_once_among_concurrent_writers() {
        loom::model(|| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let disk = FaultyDisk::new(SyncMode::Never);
            disk.arm(Fault::WriteNoSpace { written: 0 }, "", 0);
            let writers: Vec<_> = (0..2)
                .map(|w| {
                    let mut disk = disk.clone();
                    let path = dir.path().join(format!("w{w}.log"));
                    thread::spawn(move || {
                        let file = disk.create_new(&path).expect("create");
                        disk.write_at(&file, &path, b"record", 0).is_err()
                    })
                })
                .collect();
            let failed = writers
                .into_iter()
                .map(|w| w.join().unwrap())
                .filter(|&failed| failed)
                .count();
            assert_eq!(failed, 1, "one write took the fault");
            assert_eq!(disk.struck(), 1);
            assert!(disk.lock().armed.is_empty(), "the fault is spent");
        });
    }

    /// A test thread arms a fault while the storage's thread writes twice: the fault
    /// strikes at most once, and a write fails exactly when it struck.
    #[test]
    fn arming_while_the_storage_writes_strikes_at_most_once() {
        loom::model(|| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let disk = FaultyDisk::new(SyncMode::Never);
            let writer = {
                let mut disk = disk.clone();
                let path = dir.path().join("w.log");
                thread::spawn(move || {
                    let file = disk.create_new(&path).expect("create");
                    (0..2u64)
                        .filter(|&n| disk.write_at(&file, &path, b"record", n * 6).is_err())
                        .count()
                })
            };
            disk.arm(Fault::WriteNoSpace { written: 0 }, ".log", 0);
            let failed = writer.join().unwrap();
            assert!(failed <= 1);
            assert_eq!(failed, disk.struck());
        });
    }
}
