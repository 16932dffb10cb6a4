//! The segment being appended to, and the creation of new segments.

use super::durability::Syncer;
use super::files;
use super::format::{self, Checkpoint, Record, TEMP_SUFFIX};
use std::fs::File;
use std::path::{Path, PathBuf};
use synod_core::StorageError;

/// The path of segment `number` in `dir`.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format::segment_file_name(number))
}

/// The last segment of the WAL, open for appending.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    number: u64,
    path: PathBuf,
    file: File,
    /// Bytes in the file, all of them valid records (or written but not yet synced).
    len: u64,
    /// `true` once a batch record follows the checkpoint. A segment never rolls
    /// before holding one batch, so even a batch larger than `segment_bytes` (or a
    /// checkpoint that is) makes progress.
    has_batches: bool,
}

impl ActiveSegment {
    /// Creates segment `number` opening with `checkpoint`, atomically: header and
    /// checkpoint are written to a temporary file, synced, and renamed into place,
    /// then the directory is synced. A segment file therefore always starts with a
    /// complete header and checkpoint, and damage to them is corruption, never a torn
    /// write.
    pub(crate) fn create(
        dir: &Path,
        number: u64,
        checkpoint: Checkpoint<'_>,
        syncer: &mut dyn Syncer,
    ) -> Result<ActiveSegment, StorageError> {
        let path = segment_path(dir, number);
        let temp = path.with_extension(format!("log{TEMP_SUFFIX}"));
        let mut bytes = format::encode_segment_header(number).to_vec();
        format::encode_record(&Record::Checkpoint(checkpoint), &mut bytes)
            .map_err(|what| invalid_input(&path, what))?;
        let mut file = files::create_new(&temp)?;
        files::write_all(&mut file, &temp, &bytes)?;
        files::sync_file(syncer, &file, &temp)?;
        files::rename(&temp, &path)?;
        files::sync_dir(syncer, dir)?;
        Ok(ActiveSegment {
            number,
            path,
            file,
            len: bytes.len() as u64,
            has_batches: false,
        })
    }

    /// Reopens the existing segment `number` of `len` valid bytes for appending.
    pub(crate) fn reopen(
        dir: &Path,
        number: u64,
        len: u64,
        has_batches: bool,
    ) -> Result<ActiveSegment, StorageError> {
        let path = segment_path(dir, number);
        let file = files::open_append(&path)?;
        Ok(ActiveSegment {
            number,
            path,
            file,
            len,
            has_batches,
        })
    }

    /// The segment's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Bytes in the segment.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// `true` once the segment holds a batch.
    pub(crate) fn has_batches(&self) -> bool {
        self.has_batches
    }

    /// Appends encoded batch records (not durable until [`sync`](Self::sync)).
    pub(crate) fn append_batches(&mut self, records: &[u8]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        files::write_all(&mut self.file, &self.path, records)?;
        self.len += records.len() as u64;
        self.has_batches = true;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self, syncer: &mut dyn Syncer) -> Result<(), StorageError> {
        files::sync_file(syncer, &self.file, &self.path)
    }
}

/// A batch or checkpoint that cannot be framed (larger than the record bound).
pub(crate) fn invalid_input(path: &Path, what: String) -> StorageError {
    files::io_error(
        "encoding a record for",
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, what),
    )
}
