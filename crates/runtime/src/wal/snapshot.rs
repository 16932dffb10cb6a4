//! Snapshot files: one file per snapshot generation, written whole to a temporary
//! name, synced, then renamed into place. See "Snapshots and crashes" in the
//! [module docs](super) for why this happens *before* the WAL record that refers to it.

use super::disk::Disk;
use super::files;
use super::format::{self, TEMP_SUFFIX};
use std::path::{Path, PathBuf};
use synod_core::{Snapshot, StorageError};

/// The path of the snapshot file of `generation` in `dir`.
pub(crate) fn snapshot_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format::snapshot_file_name(generation))
}

/// Writes `snapshot` as generation `generation`: temporary file, sync, rename,
/// directory sync. When this returns the file is durable under its final name.
pub(crate) fn write_snapshot(
    dir: &Path,
    generation: u64,
    snapshot: &Snapshot,
    disk: &mut dyn Disk,
) -> Result<(), StorageError> {
    let path = snapshot_path(dir, generation);
    let temp = path.with_extension(format!("snap{TEMP_SUFFIX}"));
    let payload = postcard::to_stdvec(snapshot).map_err(|e| {
        files::io_error(
            "encoding",
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        )
    })?;
    let header = format::encode_snapshot_header(generation, &payload);
    let file = files::create_new(disk, &temp)?;
    files::write_all_at(disk, &file, &temp, &header, 0)?;
    files::write_all_at(disk, &file, &temp, &payload, header.len() as u64)?;
    files::sync_file(disk, &file, &temp)?;
    drop(file);
    files::rename(disk, &temp, &path)?;
    files::sync_dir(disk, dir)
}

/// Reads and checks the snapshot of `generation`.
pub(crate) fn read_snapshot(
    dir: &Path,
    generation: u64,
    disk: &mut dyn Disk,
) -> Result<Snapshot, StorageError> {
    let path = snapshot_path(dir, generation);
    if !path.exists() {
        return Err(files::corrupt_file(
            &path,
            "the log refers to this snapshot but the file is missing",
        ));
    }
    let bytes = files::read_all(disk, &path)?;
    let payload = format::check_snapshot_file(&bytes, generation)
        .map_err(|what| files::corrupt_at(&path, 0, &what))?;
    postcard::from_bytes(payload).map_err(|e| {
        files::corrupt_at(
            &path,
            format::SNAPSHOT_HEADER_BYTES as u64,
            &format!("snapshot does not decode: {e}"),
        )
    })
}
