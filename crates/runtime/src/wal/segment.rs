//! The segment being appended to, and the creation of new segments.

use super::disk::Disk;
use super::files;
use super::format::{self, Checkpoint, Record};
use super::prepare::{temp_path, zero_fill};
use crate::sync::atomic::AtomicBool;
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
    /// Bytes of records in the file, all of them valid (or written but not yet
    /// synced); the next record goes here.
    len: u64,
    /// `true` once a batch record follows the checkpoint. A segment never rolls
    /// before holding one batch, so even a batch larger than `segment_bytes` (or a
    /// checkpoint that is) makes progress.
    has_batches: bool,
}

impl ActiveSegment {
    /// Creates segment `number` opening with `checkpoint`, atomically: header and
    /// checkpoint are written to a temporary file zero-filled to `fill_to` bytes
    /// (`prepared`, if a [`Preparer`](super::prepare::Preparer) made it, else made
    /// here), synced, and renamed into place, then the directory is synced. A segment
    /// file therefore always starts with a complete header and checkpoint, and damage
    /// to them is corruption, never a torn write.
    pub(crate) fn create(
        dir: &Path,
        number: u64,
        checkpoint: Checkpoint<'_>,
        fill_to: u64,
        prepared: Option<File>,
        disk: &mut dyn Disk,
    ) -> Result<ActiveSegment, StorageError> {
        let path = segment_path(dir, number);
        let temp = temp_path(&path);
        let mut bytes = format::encode_segment_header(number).to_vec();
        format::encode_record(&Record::Checkpoint(checkpoint), &mut bytes)
            .map_err(|what| invalid_input(&path, what))?;
        let file = match prepared {
            Some(file) => file,
            None => {
                let file = files::create_new(disk, &temp)?;
                zero_fill(disk, &file, &temp, fill_to, &AtomicBool::new(false))?;
                file
            }
        };
        files::write_all_at(disk, &file, &temp, &bytes, 0)?;
        files::sync_file(disk, &file, &temp)?;
        files::rename(disk, &temp, &path)?;
        files::sync_dir(disk, dir)?;
        Ok(ActiveSegment {
            number,
            path,
            file,
            len: bytes.len() as u64,
            has_batches: false,
        })
    }

    /// Reopens the existing segment `number`, whose records end at byte `len`, for
    /// appending.
    pub(crate) fn reopen(
        dir: &Path,
        number: u64,
        len: u64,
        has_batches: bool,
        disk: &mut dyn Disk,
    ) -> Result<ActiveSegment, StorageError> {
        let path = segment_path(dir, number);
        let file = files::open_write(disk, &path)?;
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

    /// Bytes of records in the segment.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// `true` once the segment holds a batch.
    pub(crate) fn has_batches(&self) -> bool {
        self.has_batches
    }

    /// Appends encoded batch records after the last one (not durable until
    /// [`sync`](Self::sync)).
    pub(crate) fn append_batches(
        &mut self,
        records: &[u8],
        disk: &mut dyn Disk,
    ) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        files::write_all_at(disk, &self.file, &self.path, records, self.len)?;
        self.len += records.len() as u64;
        self.has_batches = true;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self, disk: &mut dyn Disk) -> Result<(), StorageError> {
        files::sync_file(disk, &self.file, &self.path)
    }

    /// Closes the segment for good before its successor is created: cuts the unused
    /// zero fill (if any: a segment recovered after a torn tail, or written without
    /// preallocation, already ends at its last record), so that every segment but the
    /// newest ends exactly at its last record, and makes that and every record
    /// durable (one sync).
    pub(crate) fn finish(&mut self, disk: &mut dyn Disk) -> Result<(), StorageError> {
        files::set_len(disk, &self.file, &self.path, self.len)?;
        self.sync(disk)
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
