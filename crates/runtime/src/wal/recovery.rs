//! Reading a WAL directory back: list and check the files, replay every segment in
//! order, cut a torn tail, and load the snapshot the log refers to.

use super::disk::Disk;
use super::files;
use super::format::{self, BadRecord, FileKind, Record, SEGMENT_HEADER_BYTES};
use super::segment::segment_path;
use super::snapshot::{read_snapshot, snapshot_path};
use super::state::{apply_to_log, WalState};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use synod_core::{Recovered, StorageError};

/// What recovery found.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The state to hand to the node.
    pub(crate) recovered: Recovered,
    /// The writer's view of the same state.
    pub(crate) state: WalState,
    /// The surviving segments, or `None` for a directory without any (a fresh WAL).
    pub(crate) segments: Option<SegmentSpan>,
    /// Snapshot generations whose files remain in the directory.
    pub(crate) snapshot_files: BTreeSet<u64>,
    /// A generation no snapshot file has used yet.
    pub(crate) next_snapshot_generation: u64,
}

/// The dense run of segment files `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentSpan {
    /// Oldest segment.
    pub(crate) first: u64,
    /// Newest segment, the one to append to.
    pub(crate) last: u64,
    /// Valid bytes in the newest segment (after cutting a torn tail).
    pub(crate) last_len: u64,
    /// Whether the newest segment holds a batch record.
    pub(crate) last_has_batches: bool,
}

/// The WAL files in a directory, by kind.
#[derive(Debug, Default)]
struct Listing {
    segments: Vec<u64>,
    snapshots: Vec<u64>,
    temps: Vec<PathBuf>,
}

/// Recovers the WAL in `dir`, reading through `disk`. With `repair`, also makes the
/// directory clean for appending — cuts a torn tail, removes temporary files and
/// unreferenced snapshots; without it, only reads. Nothing is changed on disk unless
/// the whole directory checks out.
pub(crate) fn recover(
    dir: &Path,
    disk: &mut dyn Disk,
    repair: bool,
) -> Result<Outcome, StorageError> {
    let listing = list(dir)?;
    let Some((first, last)) = check_dense(dir, &listing.segments)? else {
        let outcome = fresh(dir, &listing)?;
        if repair {
            remove_temps(dir, &listing.temps, disk)?;
        }
        return Ok(outcome);
    };
    let mut replay = Replay::default();
    let mut last_end = SegmentEnd::default();
    for number in first..=last {
        let segment = SegmentFile {
            path: segment_path(dir, number),
            number,
            is_first: number == first,
            is_last: number == last,
        };
        let bytes = files::read_all(disk, &segment.path)?;
        last_end = replay_segment(&segment, &bytes, &mut replay)?;
    }
    assert_eq!(
        replay.state.liveness.live_len(),
        replay.log.len(),
        "the writer's liveness index tracks exactly the recovered log"
    );
    let referenced = replay.state.snapshot;
    let snapshot = referenced
        .map(|g| read_snapshot(dir, g, disk))
        .transpose()?;
    let mut snapshot_files: BTreeSet<u64> = listing.snapshots.iter().copied().collect();
    if let Some(torn) = &last_end.torn {
        warn_torn_tail(&segment_path(dir, last), last_end.valid_len, torn);
    }
    if repair {
        if last_end.torn.is_some() {
            files::truncate(disk, &segment_path(dir, last), last_end.valid_len)?;
        }
        remove_temps(dir, &listing.temps, disk)?;
        remove_unreferenced_snapshots(dir, &mut snapshot_files, referenced, disk)?;
    }
    let newest = listing.snapshots.iter().copied().chain(referenced).max();
    Ok(Outcome {
        recovered: Recovered {
            meta: replay.state.meta.clone(),
            log: replay.log,
            snapshot,
        },
        state: replay.state,
        segments: Some(SegmentSpan {
            first,
            last,
            last_len: last_end.valid_len,
            last_has_batches: last_end.has_batches,
        }),
        snapshot_files,
        next_snapshot_generation: newest.map_or(1, |g| g + 1),
    })
}

/// A directory without segments: fresh, unless snapshot files claim otherwise.
fn fresh(dir: &Path, listing: &Listing) -> Result<Outcome, StorageError> {
    if let Some(&generation) = listing.snapshots.first() {
        return Err(files::corrupt_file(
            &snapshot_path(dir, generation),
            "snapshot file in a WAL directory without any segment",
        ));
    }
    Ok(Outcome {
        recovered: Recovered::default(),
        state: WalState::default(),
        segments: None,
        snapshot_files: BTreeSet::new(),
        next_snapshot_generation: 1,
    })
}

/// Lists `dir`, refusing anything this WAL does not write: a stray file means the
/// directory is shared or is not a WAL, and guessing would risk someone's data.
fn list(dir: &Path) -> Result<Listing, StorageError> {
    let mut listing = Listing::default();
    let entries = fs::read_dir(dir).map_err(|e| files::io_error("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| files::io_error("listing", dir, e))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| files::io_error("inspecting", &path, e))?;
        let kind = entry
            .file_name()
            .to_str()
            .and_then(format::classify_file_name);
        match kind {
            Some(_) if !file_type.is_file() => {
                return Err(files::corrupt_file(&path, "expected a regular file"));
            }
            Some(FileKind::Segment(n)) => listing.segments.push(n),
            Some(FileKind::Snapshot(g)) => listing.snapshots.push(g),
            Some(FileKind::Temp) => listing.temps.push(path),
            Some(FileKind::Lock) => {}
            None => {
                return Err(files::corrupt_file(
                    &path,
                    "unexpected entry in the WAL directory (not a segment `wal-<20 digits>.log`, \
                     snapshot `snap-<20 digits>.snap`, `.tmp` file or `wal.lock` this WAL \
                     writes)",
                ));
            }
        }
    }
    listing.segments.sort_unstable();
    listing.snapshots.sort_unstable();
    Ok(listing)
}

/// The first and last segment numbers, checking that none is missing in between.
fn check_dense(dir: &Path, segments: &[u64]) -> Result<Option<(u64, u64)>, StorageError> {
    for pair in segments.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(files::corrupt_file(
                &segment_path(dir, pair[0] + 1),
                &format!(
                    "segment missing: segments {} and {} exist but not the ones between",
                    pair[0], pair[1]
                ),
            ));
        }
    }
    Ok(segments.first().zip(segments.last()).map(|(f, l)| (*f, *l)))
}

/// The state rebuilt so far.
#[derive(Debug, Default)]
struct Replay {
    state: WalState,
    log: BTreeMap<u64, Vec<u8>>,
}

/// One segment file and its place in the run.
struct SegmentFile {
    path: PathBuf,
    number: u64,
    is_first: bool,
    is_last: bool,
}

/// Where a segment's valid records end.
#[derive(Debug, Default)]
struct SegmentEnd {
    valid_len: u64,
    has_batches: bool,
    /// Why the bytes after `valid_len` are a torn tail, if there are any.
    torn: Option<String>,
}

/// Replays one segment into `replay`.
fn replay_segment(
    segment: &SegmentFile,
    bytes: &[u8],
    replay: &mut Replay,
) -> Result<SegmentEnd, StorageError> {
    let path = &segment.path;
    format::check_segment_header(bytes, segment.number)
        .map_err(|w| files::corrupt_at(path, 0, &w))?;
    let mut offset = replay_checkpoint(segment, bytes, replay)?;
    let mut end = SegmentEnd::default();
    while offset < bytes.len() {
        match format::read_framed(bytes, offset) {
            Ok(framed) => {
                replay_batch(path, offset, framed.payload, segment.number, replay)?;
                end.has_batches = true;
                offset = framed.next;
            }
            Err(BadRecord::Torn(_)) if segment.is_last && is_zero_fill(&bytes[offset..]) => {
                // The preallocated rest of the newest segment: the log ends here.
                break;
            }
            Err(BadRecord::Torn(why)) => {
                check_torn_tail(segment, bytes, offset, &why)?;
                end.torn = Some(why);
                break;
            }
            Err(bad) => return Err(files::corrupt_at(path, offset as u64, &describe(&bad))),
        }
    }
    end.valid_len = offset as u64;
    Ok(end)
}

/// Reads the checkpoint that opens every segment; returns the offset after it. The
/// first segment's checkpoint is the starting state; every later one must agree with
/// the state replayed so far (it was written from that state).
fn replay_checkpoint(
    segment: &SegmentFile,
    bytes: &[u8],
    replay: &mut Replay,
) -> Result<usize, StorageError> {
    let offset = SEGMENT_HEADER_BYTES;
    let at = |what: &str| files::corrupt_at(&segment.path, offset as u64, what);
    let framed = format::read_framed(bytes, offset)
        .map_err(|bad| at(&format!("segment checkpoint: {}", describe(&bad))))?;
    let checkpoint = match format::decode_record(framed.payload) {
        Ok(Record::Checkpoint(checkpoint)) => checkpoint,
        Ok(Record::Batch(_)) => return Err(at("segment does not open with a checkpoint")),
        Err(bad) => return Err(at(&describe(&bad))),
    };
    if segment.is_first {
        replay.state = WalState::from_checkpoint(checkpoint);
    } else if !replay.state.agrees_with(&checkpoint) {
        return Err(at(
            "checkpoint disagrees with the state replayed from the previous segments",
        ));
    }
    Ok(framed.next)
}

/// Applies one checksummed batch record.
fn replay_batch(
    path: &Path,
    offset: usize,
    payload: &[u8],
    segment: u64,
    replay: &mut Replay,
) -> Result<(), StorageError> {
    let ops = match format::decode_record(payload) {
        Ok(Record::Batch(ops)) => ops,
        Ok(Record::Checkpoint(_)) => {
            return Err(files::corrupt_at(
                path,
                offset as u64,
                "checkpoint in the middle of a segment",
            ))
        }
        Err(bad) => return Err(files::corrupt_at(path, offset as u64, &describe(&bad))),
    };
    for op in ops {
        replay.state.apply(&op, segment);
        apply_to_log(&mut replay.log, op);
    }
    Ok(())
}

/// `true` if `rest` is nothing but zeros: the unused part of a preallocated segment
/// (a record never starts with a zero length).
fn is_zero_fill(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == 0)
}

/// A damaged record is a torn tail only at the end of the last segment, with no intact
/// record after it, and only if it looks cut short ([`format::looks_torn`]); anything
/// else may hide or be an acknowledged write, so we refuse.
fn check_torn_tail(
    segment: &SegmentFile,
    bytes: &[u8],
    offset: usize,
    why: &str,
) -> Result<(), StorageError> {
    let at = |what: String| files::corrupt_at(&segment.path, offset as u64, &what);
    if !segment.is_last {
        return Err(at(format!(
            "damaged record ({why}) in a segment that is not the last"
        )));
    }
    if let Some(intact) = format::find_intact_record_after(bytes, offset) {
        return Err(at(format!(
            "damaged record ({why}) followed by an intact record at byte offset {intact}"
        )));
    }
    if !format::looks_torn(bytes, offset) {
        return Err(at(format!(
            "damaged record ({why}) at the end of the log with all its bytes present \
             (not cut short at a sector boundary): damage to a written record, not a \
             torn write"
        )));
    }
    Ok(())
}

/// Logs the torn tail that recovery discards.
fn warn_torn_tail(path: &Path, valid_len: u64, why: &str) {
    tracing::warn!(
        file = %path.display(),
        offset = valid_len,
        reason = why,
        "WAL ends with a torn record (a write cut short by a crash); discarding it"
    );
}

/// Removes snapshot files other than `referenced`: older ones are superseded, newer
/// ones were written by a batch whose record never became durable.
fn remove_unreferenced_snapshots(
    dir: &Path,
    snapshot_files: &mut BTreeSet<u64>,
    referenced: Option<u64>,
    disk: &mut dyn Disk,
) -> Result<(), StorageError> {
    let unreferenced: Vec<u64> = snapshot_files
        .iter()
        .copied()
        .filter(|g| Some(*g) != referenced)
        .collect();
    for generation in &unreferenced {
        let path = snapshot_path(dir, *generation);
        tracing::info!(file = %path.display(), "removing a snapshot the log does not refer to");
        files::remove(disk, &path)?;
        snapshot_files.remove(generation);
    }
    if unreferenced.is_empty() {
        return Ok(());
    }
    files::sync_dir(disk, dir)
}

/// Removes the temporary files of writes that a crash interrupted before their rename.
fn remove_temps(dir: &Path, temps: &[PathBuf], disk: &mut dyn Disk) -> Result<(), StorageError> {
    for temp in temps {
        tracing::info!(file = %temp.display(), "removing a temporary file left by a crash");
        files::remove(disk, temp)?;
    }
    if temps.is_empty() {
        return Ok(());
    }
    files::sync_dir(disk, dir)
}

fn describe(bad: &BadRecord) -> String {
    match bad {
        BadRecord::Torn(why) => why.clone(),
        BadRecord::ImpossibleLength(len) => format!(
            "impossible record length {len} (at most {} bytes)",
            format::RECORD_BYTES_MAX
        ),
        BadRecord::Undecodable(why) => format!("checksummed record does not decode: {why}"),
    }
}
