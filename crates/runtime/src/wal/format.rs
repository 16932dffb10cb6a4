//! The on-disk format: file names, segment headers and record framing (see the table in
//! the [module docs](super)). Pure functions over byte slices; no I/O here.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// First bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"SYNODWAL";
/// First bytes of every snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"SYNODSNP";
/// Version of the segment and snapshot formats written by this code.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Segment header: magic (8) + version (4) + segment number (8) + CRC32 (4).
pub(crate) const SEGMENT_HEADER_BYTES: usize = 24;
/// Record header: payload length (4) + CRC32 (4).
pub(crate) const RECORD_HEADER_BYTES: usize = 8;
/// Snapshot header: magic (8) + version (4) + generation (8) + payload length (8) + CRC32 (4).
pub(crate) const SNAPSHOT_HEADER_BYTES: usize = 32;
/// Largest record payload we write or accept. A longer length field can only be
/// corruption: refusing it keeps garbage from making recovery allocate gigabytes.
pub const RECORD_BYTES_MAX: usize = 256 << 20;

const _: () = assert!(RECORD_BYTES_MAX <= u32::MAX as usize);

const SEGMENT_PREFIX: &str = "wal-";
const SEGMENT_SUFFIX: &str = ".log";
const SNAPSHOT_PREFIX: &str = "snap-";
const SNAPSHOT_SUFFIX: &str = ".snap";
/// Suffix of files being written before their atomic rename.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
/// The directory lock's file (see `lock.rs`); empty.
pub(crate) const LOCK_FILE: &str = "wal.lock";

/// The name of segment `number`: fixed width, so names sort like numbers.
pub(crate) fn segment_file_name(number: u64) -> String {
    format!("{SEGMENT_PREFIX}{number:020}{SEGMENT_SUFFIX}")
}

/// The name of the snapshot file of generation `generation`.
pub(crate) fn snapshot_file_name(generation: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{generation:020}{SNAPSHOT_SUFFIX}")
}

/// What a directory entry's name says it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FileKind {
    /// `wal-<number>.log`.
    Segment(u64),
    /// `snap-<generation>.snap`.
    Snapshot(u64),
    /// `<anything>.tmp`: a file whose writer crashed before renaming it.
    Temp,
    /// `wal.lock`: the directory lock.
    Lock,
}

/// Classifies a file name, or `None` if it is not one this WAL writes.
pub(crate) fn classify_file_name(name: &str) -> Option<FileKind> {
    if name == LOCK_FILE {
        return Some(FileKind::Lock);
    }
    if name.ends_with(TEMP_SUFFIX)
        && (name.starts_with(SEGMENT_PREFIX) || name.starts_with(SNAPSHOT_PREFIX))
    {
        return Some(FileKind::Temp);
    }
    if let Some(n) = parse_numbered(name, SEGMENT_PREFIX, SEGMENT_SUFFIX) {
        return Some(FileKind::Segment(n));
    }
    parse_numbered(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX).map(FileKind::Snapshot)
}

/// Parses `<prefix><20 decimal digits><suffix>`; exactly the names we write.
fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header written at offset 0 of segment `number`.
pub(crate) fn encode_segment_header(number: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&number.to_le_bytes());
    let crc = crc32fast::hash(&header[0..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks a segment header; the error says what is wrong with it.
pub(crate) fn check_segment_header(bytes: &[u8], number: u64) -> Result<(), String> {
    if bytes.len() < SEGMENT_HEADER_BYTES {
        return Err(format!(
            "segment is {} bytes, shorter than its {SEGMENT_HEADER_BYTES}-byte header",
            bytes.len()
        ));
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err("not a WAL segment (bad magic)".to_owned());
    }
    if crc32fast::hash(&bytes[0..20]) != read_u32(bytes, 20) {
        return Err("segment header checksum mismatch".to_owned());
    }
    let version = read_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    let stored = read_u64(bytes, 12);
    if stored != number {
        return Err(format!(
            "header names segment {stored}, file name says {number}"
        ));
    }
    Ok(())
}

/// One WAL record: the unit that is recovered entirely or not at all.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) enum Record<'a> {
    /// First record of every segment: the state that older segments contributed
    /// besides log entries, so that they can be deleted once their entries are dead.
    Checkpoint(Checkpoint<'a>),
    /// One [`WriteBatch`](synod_core::WriteBatch), its snapshots replaced by references.
    Batch(Vec<LogOp<'a>>),
}

/// The meta map and snapshot reference in force at the start of a segment.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checkpoint<'a> {
    /// The whole meta map.
    pub(crate) meta: Cow<'a, BTreeMap<String, Vec<u8>>>,
    /// Generation of the current snapshot file, if any.
    pub(crate) snapshot: Option<u64>,
}

/// A [`StorageOp`](synod_core::StorageOp) as logged. Borrowed when encoding (no copy
/// of entries), owned when decoding.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) enum LogOp<'a> {
    /// `StorageOp::SetMeta`.
    SetMeta {
        /// Key.
        key: Cow<'a, str>,
        /// Value.
        value: Cow<'a, [u8]>,
    },
    /// `StorageOp::PutEntry`.
    PutEntry {
        /// Log index.
        index: u64,
        /// Entry bytes.
        entry: Cow<'a, [u8]>,
    },
    /// `StorageOp::TruncateFrom`.
    TruncateFrom(u64),
    /// `StorageOp::CompactTo`.
    CompactTo(u64),
    /// `StorageOp::SaveSnapshot`: the snapshot was written to the file of this
    /// generation before this record.
    SnapshotSaved(u64),
}

/// Appends one framed record to `out`. Fails only if the payload is too large.
pub(crate) fn encode_record(record: &Record<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    let encoded = postcard::to_io(record, &mut *out);
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(format!("cannot encode record: {e}"));
    }
    let payload_len = out.len() - start - RECORD_HEADER_BYTES;
    if payload_len == 0 || payload_len > RECORD_BYTES_MAX {
        out.truncate(start);
        return Err(format!(
            "record of {payload_len} bytes is outside 1..={RECORD_BYTES_MAX}"
        ));
    }
    let len_bytes = (payload_len as u32).to_le_bytes();
    let crc = record_crc(len_bytes, &out[start + RECORD_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// CRC32 over the length field followed by the payload, so a damaged length is caught
/// even when the bytes it then frames happen to be a plausible payload.
fn record_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// Why the bytes at some offset are not a valid record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum BadRecord {
    /// Fewer bytes remain than a record header, or than the header's length claims,
    /// or the checksum fails, or the length is zero: what a write cut short by a crash
    /// leaves behind (file systems may also zero-fill an extended tail).
    Torn(String),
    /// The length field exceeds [`RECORD_BYTES_MAX`]: no write of ours produced it.
    ImpossibleLength(u32),
    /// The checksum matches but the payload does not decode: not a torn write either.
    Undecodable(String),
}

/// A record read from `bytes`, with the offset just past it.
pub(crate) struct Framed<'b> {
    /// The checksummed payload.
    pub(crate) payload: &'b [u8],
    /// Offset of the next record.
    pub(crate) next: usize,
}

/// Reads the record framed at `offset` and checks its length and checksum.
pub(crate) fn read_framed(bytes: &[u8], offset: usize) -> Result<Framed<'_>, BadRecord> {
    let remaining = bytes.len() - offset;
    if remaining < RECORD_HEADER_BYTES {
        return Err(BadRecord::Torn(format!(
            "{remaining} bytes left, a record header needs {RECORD_HEADER_BYTES}"
        )));
    }
    let len = read_u32(bytes, offset);
    if len as usize > RECORD_BYTES_MAX {
        return Err(BadRecord::ImpossibleLength(len));
    }
    if len == 0 {
        return Err(BadRecord::Torn("zero record length".to_owned()));
    }
    let start = offset + RECORD_HEADER_BYTES;
    let end = start + len as usize;
    if end > bytes.len() {
        return Err(BadRecord::Torn(format!(
            "record of {len} bytes runs past the end of the file"
        )));
    }
    let payload = &bytes[start..end];
    if record_crc(len.to_le_bytes(), payload) != read_u32(bytes, offset + 4) {
        return Err(BadRecord::Torn("record checksum mismatch".to_owned()));
    }
    Ok(Framed { payload, next: end })
}

/// Decodes a checksummed payload.
pub(crate) fn decode_record(payload: &[u8]) -> Result<Record<'static>, BadRecord> {
    postcard::from_bytes(payload).map_err(|e| BadRecord::Undecodable(e.to_string()))
}

/// The first offset after `offset` at which a record with a valid length and checksum
/// starts, if any. Used to tell a torn tail (nothing valid follows the bad bytes) from
/// damage in the middle of the log (an intact record follows).
pub(crate) fn find_intact_record_after(bytes: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..bytes.len()).find(|&p| read_framed(bytes, p).is_ok())
}

/// The unit a storage device writes whole: after a crash, each 512-byte sector of a
/// write holds either its new bytes or its old ones (for a page cache cut short by a
/// killed process, each 4096-byte page — a multiple). A tear therefore starts at a
/// sector boundary, or where the write started (a sector it shares with older data
/// keeps that data and, after it, the old zeros).
pub(crate) const SECTOR_BYTES: usize = 512;

/// `true` if the damaged record at `offset` — the last thing in `bytes` but zeros —
/// looks like a write that a crash cut short: fewer bytes remain than its header or
/// its length claims, or a whole sector-aligned rest of it is zeros through the end
/// of the file (sectors that did not land in a zero-filled or extended file).
///
/// Anything else was damaged after it was written — on the device, or on the way
/// back from it — and may have been acknowledged, so it is corruption, not a tear: a
/// record failing its checksum with all its bytes there, or with zeros only from
/// inside its last sector on; a zero length with data after it (an out-of-order
/// write, refused like the other out-of-order cases).
///
/// What a tear cannot be told from: damage to a record whose own last bytes are
/// zeros across a sector boundary, or to a length so that it reaches past the file
/// or into the zero fill. Those are still cut as torn.
pub(crate) fn looks_torn(bytes: &[u8], offset: usize) -> bool {
    let remaining = bytes.len() - offset;
    if remaining < RECORD_HEADER_BYTES {
        return true;
    }
    let len = read_u32(bytes, offset) as usize;
    let end = offset + RECORD_HEADER_BYTES + len;
    if end > bytes.len() {
        return true;
    }
    let zeros_from = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    len != 0 && zeros_from.next_multiple_of(SECTOR_BYTES) < end
}

/// The snapshot file header for `generation` with a payload of `payload` bytes.
pub(crate) fn encode_snapshot_header(
    generation: u64,
    payload: &[u8],
) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&generation.to_le_bytes());
    header[20..28].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[0..28]);
    hasher.update(payload);
    header[28..32].copy_from_slice(&hasher.finalize().to_le_bytes());
    header
}

/// Checks a whole snapshot file and returns its payload.
pub(crate) fn check_snapshot_file(bytes: &[u8], generation: u64) -> Result<&[u8], String> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(format!(
            "snapshot file is {} bytes, shorter than its {SNAPSHOT_HEADER_BYTES}-byte header",
            bytes.len()
        ));
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err("not a snapshot file (bad magic)".to_owned());
    }
    let version = read_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported snapshot format version {version}"));
    }
    let payload = &bytes[SNAPSHOT_HEADER_BYTES..];
    if read_u64(bytes, 20) != payload.len() as u64 {
        return Err(format!(
            "header claims {} payload bytes, file holds {}",
            read_u64(bytes, 20),
            payload.len()
        ));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[0..28]);
    hasher.update(payload);
    if hasher.finalize() != read_u32(bytes, 28) {
        return Err("snapshot checksum mismatch".to_owned());
    }
    let stored = read_u64(bytes, 12);
    if stored != generation {
        return Err(format!(
            "header names generation {stored}, file name says {generation}"
        ));
    }
    Ok(payload)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_record() -> Record<'static> {
        Record::Batch(vec![
            LogOp::PutEntry {
                index: 7,
                entry: Cow::Owned(vec![1, 2, 3]),
            },
            LogOp::SetMeta {
                key: Cow::Owned("term".to_owned()),
                value: Cow::Owned(vec![9]),
            },
        ])
    }

    #[test]
    fn record_round_trips_and_every_single_byte_flip_is_detected() {
        let mut out = Vec::new();
        encode_record(&batch_record(), &mut out).unwrap();
        let framed = read_framed(&out, 0).unwrap();
        assert_eq!(framed.next, out.len());
        assert_eq!(decode_record(framed.payload).unwrap(), batch_record());
        for i in 0..out.len() {
            let mut damaged = out.clone();
            damaged[i] ^= 0x40;
            assert!(
                read_framed(&damaged, 0).is_err(),
                "flip at byte {i} undetected"
            );
        }
    }

    #[test]
    fn impossible_length_is_not_mistaken_for_a_torn_write() {
        let mut bytes = vec![0u8; 16];
        bytes[0..4].copy_from_slice(&(RECORD_BYTES_MAX as u32 + 1).to_le_bytes());
        assert!(matches!(
            read_framed(&bytes, 0),
            Err(BadRecord::ImpossibleLength(_))
        ));
    }

    #[test]
    fn only_the_names_we_write_are_recognised() {
        assert_eq!(
            classify_file_name(&segment_file_name(42)),
            Some(FileKind::Segment(42))
        );
        assert_eq!(
            classify_file_name(&snapshot_file_name(3)),
            Some(FileKind::Snapshot(3))
        );
        assert_eq!(
            classify_file_name("snap-00000000000000000003.snap.tmp"),
            Some(FileKind::Temp)
        );
        for bad in [
            "wal-1.log",
            "wal-0000000000000000000x.log",
            "notes.txt",
            "wal-.log",
        ] {
            assert_eq!(classify_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn segment_header_names_its_number() {
        let header = encode_segment_header(5);
        assert!(check_segment_header(&header, 5).is_ok());
        assert!(check_segment_header(&header, 6).is_err());
        assert!(check_segment_header(&header[..10], 5).is_err());
    }
}

#[cfg(test)]
#[path = "format_fuzz.rs"]
mod fuzz;
