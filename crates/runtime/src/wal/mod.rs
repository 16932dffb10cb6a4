//! Segmented, checksummed, fsync'd file WAL: [`FileStorage`] implements
//! [`synod_core::Storage`] with exactly the semantics of
//! [`MemStorage`](synod_core::MemStorage) — after a crash, a restart recovers every
//! acknowledged [`WriteBatch`](synod_core::WriteBatch), each one entirely or not at all,
//! and nothing else.
//!
//! # Layout
//!
//! * `storage` — the public [`FileStorage`] and [`WalOptions`]: group commit,
//!   segment rolling, deletion of dead segments.
//! * `format` — file names, headers, record framing (pure functions).
//! * `recovery` — listing, replay, torn-tail cutting, snapshot lookup.
//! * `state` — what the writer remembers between batches (meta map, snapshot
//!   generation, which segment holds each live entry) and the replay of ops.
//! * `segment`, `snapshot`, `files` — the file operations.
//! * `prepare` — zero-filling the next segment on a background thread.
//! * [`durability`] — [`SyncMode`] and the [`Syncer`] seam where bytes become durable.
//! * [`group_commit`] — the queue between a node's driver and the WAL thread.
//!
//! # Files
//!
//! A WAL owns its directory, which holds nothing else (recovery refuses unknown files):
//!
//! | name | content |
//! |---|---|
//! | `wal-<20-digit number>.log` | a segment; numbers are dense from the oldest kept to the newest |
//! | `snap-<20-digit generation>.snap` | a snapshot, referred to by the log |
//! | `*.tmp` | a file being written before its atomic rename (or the next segment, being zero-filled); removed on open |
//! | `wal.lock` | empty; an open storage holds an exclusive `flock` on it, so a second storage on the directory is refused (`lock.rs`) |
//!
//! # Segment format
//!
//! All integers little-endian. A segment starts with a header:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 8 | magic `SYNODWAL` |
//! | 8 | 4 | format version (1) |
//! | 12 | 8 | segment number (must match the file name) |
//! | 20 | 4 | CRC32 of bytes 0..20 |
//!
//! followed by records, each framed as:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | payload length `n`, `1..=`[`RECORD_BYTES_MAX`] (256 MiB) |
//! | 4 | 4 | CRC32 (crc32fast) of the 4 length bytes followed by the payload |
//! | 8 | `n` | payload: a postcard-encoded record |
//!
//! The first record of every segment is a *checkpoint* — the whole meta map and the
//! current snapshot generation — and every later one is a *batch*: one
//! `WriteBatch`, its ops in order, with each `SaveSnapshot` replaced by the generation
//! of the snapshot file holding it. One batch is one record, so a batch is recovered
//! entirely or not at all.
//!
//! A snapshot file is a header — magic `SYNODSNP` (8), version (4), generation (8),
//! payload length (8), CRC32 of those 28 bytes and the payload (4) — followed by the
//! postcard-encoded [`Snapshot`](synod_core::Snapshot).
//!
//! # Preallocation
//!
//! With [`WalOptions::preallocate`] (the default) a segment is created zero-filled to
//! `segment_bytes`, and records overwrite the zeros: an `fdatasync` then writes the
//! data alone, not the inode whose size would change with every append (on the
//! reference VM, 40–55 % more syncs per second with three members syncing at once). The
//! records of a segment end at the first zero length; the newest segment's all-zero
//! rest is simply unused space. When a segment rolls, its unused fill is cut off
//! before it is synced for the last time, so every older segment ends exactly at its
//! last record, and zeros there are damage like any other. The next segment is
//! zero-filled by a background thread (`wal-<n>.log.tmp`) once the active one is half
//! full, so a roll does not wait for it.
//!
//! # Writing
//!
//! [`FileStorage::write_batches`] (and `persist_all`) is group commit: it appends one
//! record per batch, then syncs once (`fdatasync`), then returns. A segment *rolls*
//! when the next record would take it past [`WalOptions::segment_bytes`]: the full
//! segment is synced, and the next one is created whole — header and checkpoint
//! written to a `.tmp` file, synced, renamed, directory synced. Because a segment is
//! complete and synced before its successor exists, only the newest segment can ever
//! end in a torn record.
//!
//! Old segments matter only for the log entries last written in them: their meta and
//! snapshot changes live on in every later checkpoint. Once no live entry was last
//! written in the oldest segments (typically because `CompactTo` passed them) they
//! are deleted, oldest first, each deletion followed by a directory sync, and only
//! after the record that killed their entries is durable.
//!
//! # Snapshots and crashes
//!
//! A `SaveSnapshot` op writes its snapshot to `snap-<g>.snap.tmp`, syncs it, renames it
//! to `snap-<g>.snap` and syncs the directory — all *before* the batch record naming
//! generation `g` is appended. After that record is durable, older snapshot files are
//! deleted. A crash at any point therefore recovers a state `MemStorage` could have:
//!
//! * before the rename: a `.tmp` file, removed on open; the batch is lost (it was not
//!   acknowledged);
//! * after the rename, before the record is durable: a snapshot newer than the log
//!   refers to; recovery uses the generation the log names and deletes the newer file,
//!   so the batch is lost *entirely* — never its snapshot without its other ops;
//! * after the record is durable: the new snapshot, with the rest of its batch; the
//!   older file, if not yet deleted, is deleted on open.
//!
//! The snapshot a log refers to is never deleted while the log refers to it, so a
//! missing referenced snapshot is corruption.
//!
//! # Recovery
//!
//! Segments are replayed oldest to newest; every checkpoint after the first must agree
//! with the state replayed before it. The newest segment's records end where nothing
//! but zeros follows (its preallocated rest, kept for appending). A damaged record
//! (short, zero-length or failing its checksum) at the end of the newest segment, with
//! no intact record anywhere after it, is a *torn tail*: a write a crash cut short,
//! which was never acknowledged because its sync had not returned. It is cut off (`tracing::warn!` names file and
//! offset). Any other damage — a damaged record followed by an intact one, any damage
//! in an older segment or a checkpoint, a length above [`RECORD_BYTES_MAX`], a missing
//! segment, an unknown file — may hide acknowledged writes, so [`FileStorage::open`]
//! refuses with [`StorageError::Corrupt`](synod_core::StorageError::Corrupt) naming the
//! file and byte offset. (A crash that persists a group's pages out of order can leave
//! a damaged record before an intact one of the same unacknowledged group; we refuse
//! then too — the safe side — and an operator can cut the file at the named offset.)
//!
//! # Model checking
//!
//! [`group_commit`], the preparer's cancellable thread and the fault-injecting disk's
//! shared plan are checked with loom, with the rest of the runtime's concurrent
//! structures (`src/sync.rs` lists them). `--features loom` turns `cfg(loom)` on for
//! this crate only, so tokio keeps its normal build (its own loom mode drops
//! `tokio::net`, which the transport needs); `scripts/loom.sh` runs exactly this:
//!
//! ```text
//! cargo test -p synod-runtime --release --features loom --lib loom_tests
//! ```

pub mod disk;
pub mod durability;
pub mod faults;
mod files;
mod format;
pub mod group_commit;
mod lock;
mod prepare;
mod recovery;
mod segment;
mod snapshot;
mod state;
mod storage;

pub use disk::{Disk, OsDisk};
pub use durability::{FsyncSyncer, NoSync, SyncMode, Syncer};
pub use format::RECORD_BYTES_MAX;
pub use group_commit::GroupCommitQueue;
pub use storage::{FileStorage, WalOptions};
