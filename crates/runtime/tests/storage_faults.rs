//! Storage faults (issue 20) on a real file system: each fault is injected under the
//! WAL's file operations by a [`FaultyDisk`] — or, where the machine allows it, comes
//! from a real full tmpfs (`full_file_system.rs`) — and each test states in its name what the storage (or the
//! node) does about it. The rules they check (module docs of `wal`, "Failures"):
//! a failed write path poisons the storage, nothing is retried, nothing after the
//! failure is acknowledged, and a restart recovers exactly what was acknowledged
//! (plus, at most, whole unacknowledged batches after it — `MemStorage`'s semantics).
//!
//! Each test is init / act / check.

mod storage_common;

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;
use storage_common::*;
use synod_core::{StorageError, StorageOp, WriteBatch};
use synod_runtime::wal::faults::{Fault, FaultyDisk};
use synod_runtime::wal::{FileStorage, SyncMode, WalOptions};

// ---------------------------------------------------------------------------------
// Torn write: a group's write cut short by a full disk, then a crash.

/// The group's bytes land only up to some byte, the write fails with ENOSPC, and the
/// process dies. The restart recovers every acknowledged batch and, of the group,
/// only records that landed whole — never part of a batch — and the WAL appends after
/// the cut. That holds for every prefix a crash can leave: one ending at a sector
/// boundary (or where the group began) over the zeros of a preallocated segment, or
/// any prefix of an appended file. Any other prefix over zeros is no crash's doing:
/// recovery may refuse it as corrupt, but never recovers a wrong state.
#[test]
fn a_group_write_torn_by_a_full_disk_then_a_crash_recovers_the_acknowledged_batches_and_whole_records_only(
) {
    let acknowledged: Vec<WriteBatch> = (1..=5).map(numbered).collect();
    // Records of ~430 bytes: the group crosses sector boundaries.
    let group: Vec<WriteBatch> = (6..=8)
        .map(|i| batch([set_meta("term", &[i as u8]), put(i, &[i as u8; 400])]))
        .collect();
    for preallocate in [true, false] {
        let options = options()
            .with_sync_mode(SyncMode::Never)
            .with_preallocation(preallocate);
        let group_start = {
            let dir = tempfile::tempdir().unwrap();
            let (mut storage, _) = open(dir.path(), options);
            storage.write_batches(&acknowledged).unwrap();
            *record_ends(&fs::read(dir.path().join(segment_name(1))).unwrap())
                .last()
                .unwrap()
        };
        let ends_on_sector = |written: u64| (group_start + written).is_multiple_of(SECTOR_BYTES);
        let mut previous = 0;
        let mut refused = 0;
        let mut seen = std::collections::BTreeSet::new();
        for written in (0..).filter(|&w| w % 11 == 0 || ends_on_sector(w)) {
            let dir = tempfile::tempdir().unwrap();
            let (mut storage, disk) = open_faulty(dir.path(), options);
            storage.write_batches(&acknowledged).unwrap();
            disk.arm(
                Fault::WriteNoSpace {
                    written: written as usize,
                },
                ".log",
                0,
            );

            let result = storage.write_batches(&group);
            assert_eq!(disk.struck(), 1);
            drop(storage); // the crash
            let crash_made = !preallocate || written == 0 || ends_on_sector(written);
            let reopened = FileStorage::open(dir.path(), options);

            let (message, source) = io_parts(result.as_ref().unwrap_err());
            assert_eq!(source.kind(), io::ErrorKind::StorageFull, "{message}");
            assert!(message.contains("writing to"), "{message}");
            assert!(message.contains(&segment_name(1)), "{message}");
            let (mut storage, recovered) = match reopened {
                Ok(opened) => opened,
                Err(StorageError::Corrupt(_)) if !crash_made => {
                    refused += 1;
                    continue;
                }
                Err(e) => panic!("{written} bytes landed: {e}"),
            };
            let k =
                group_prefix_recovered(&recovered, &acknowledged, &group).unwrap_or_else(|| {
                    panic!("{written} bytes landed: not a MemStorage state: {recovered:?}")
                });
            assert!(
                k >= previous,
                "more bytes landed, no fewer records recovered"
            );
            previous = k;
            seen.insert(k);
            let after = numbered(100);
            storage.write_batch(&after).unwrap();
            drop(storage);
            let expected = mem_after(acknowledged.iter().chain(&group[..k]).chain([&after]));
            assert_eq!(
                open(dir.path(), options).1,
                expected,
                "appends after the cut"
            );
            if k == group.len() {
                // `written` reached the group's end: every byte landed before the error
                // (never acknowledged, yet whole: MemStorage may keep it too).
                break;
            }
        }
        assert_eq!(
            seen.len(),
            group.len() + 1,
            "each record torn somewhere, then whole"
        );
        match preallocate {
            true => assert!(refused > 0, "zeros from inside a sector are refused"),
            false => assert_eq!(refused, 0, "an appended file's tear is always cut"),
        }
    }
}

// ---------------------------------------------------------------------------------
// Sync fails with EIO and the pages are lost.

/// fsyncgate: the sync of a batch fails with EIO and the kernel drops the batch's
/// pages, marking them clean, so that a second sync would succeed. The storage
/// reports the failure naming the file, then refuses every later write and read-back
/// with an error naming that first failure — it never syncs again and never writes
/// another byte — and a restart recovers exactly the batches acknowledged before.
#[test]
fn a_failed_sync_poisons_the_storage_and_is_never_retried() {
    // init
    let dir = tempfile::tempdir().unwrap();
    let segment = dir.path().join(segment_name(1));
    let (mut storage, disk) = open_faulty(dir.path(), options());
    let acknowledged: Vec<WriteBatch> = (1..=3).map(numbered).collect();
    storage.write_batches(&acknowledged).unwrap();
    let before = fs::read(&segment).unwrap();
    disk.arm(Fault::SyncEio, ".log", 0);

    // act
    let failed = storage.write_batch(&numbered(4));
    let after_failure = fs::read(&segment).unwrap();
    let refused_write = storage.write_batch(&numbered(5));
    let refused_group = storage.write_batches(&[numbered(6), numbered(7)]);
    let refused_read = storage.read_back();

    // check
    let (message, source) = io_parts(failed.as_ref().unwrap_err());
    assert_eq!(source.raw_os_error(), Some(EIO), "{message}");
    assert!(message.contains("syncing"), "{message}");
    assert!(message.contains(&segment_name(1)), "{message}");
    assert_eq!(disk.struck(), 1);
    assert_eq!(
        after_failure, before,
        "the batch's pages were lost with the sync"
    );
    for (what, refused) in [("write", refused_write), ("write", refused_group)] {
        let refused = refused.unwrap_err().to_string();
        assert!(
            refused.contains(&format!("refusing to {what} after an earlier failure")),
            "{refused}"
        );
        assert!(
            refused.contains(&message),
            "names the first failure: {refused}"
        );
    }
    let refused = refused_read.unwrap_err().to_string();
    assert!(refused.contains("refusing to read back"), "{refused}");
    assert!(refused.contains(&message), "{refused}");
    assert_eq!(
        fs::read(&segment).unwrap(),
        before,
        "nothing written after the failure"
    );
    drop(storage);
    assert_eq!(open(dir.path(), options()).1, mem_after(&acknowledged));
}

/// The same through the `Storage` trait a driver uses: `persist_all` fails, and so
/// does every later call, `load` included.
#[test]
fn a_failed_sync_fails_every_later_storage_call_including_load() {
    use synod_core::Storage;
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, disk) = open_faulty(dir.path(), options());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    disk.arm(Fault::SyncEio, ".log", 0);

    let (first, persist, load) = runtime.block_on(async {
        (
            storage.persist_all(vec![numbered(1), numbered(2)]).await,
            storage.persist(numbered(3)).await,
            storage.load().await,
        )
    });

    let message = first.unwrap_err().to_string();
    assert!(message.contains("syncing"), "{message}");
    assert!(persist.unwrap_err().to_string().contains(&message));
    assert!(load.unwrap_err().to_string().contains(&message));
    drop(storage);
    assert!(
        open(dir.path(), options()).1.is_fresh(),
        "nothing was acknowledged"
    );
}

// ---------------------------------------------------------------------------------
// ENOSPC on append, on rolling, and while saving a snapshot.

/// A full disk refuses the group's append: the error names the file and says the
/// disk is full (`StorageFull`, also on every refusal after), nothing acknowledged is
/// lost, and once space is freed a restart recovers and appends again.
#[test]
fn a_full_disk_on_append_loses_nothing_acknowledged_and_a_restart_with_space_appends_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, disk) = open_faulty(dir.path(), options());
    let mut acknowledged: Vec<WriteBatch> = (1..=4).map(numbered).collect();
    storage.write_batches(&acknowledged).unwrap();
    disk.arm(Fault::WriteNoSpace { written: 0 }, ".log", 0);

    let failed = storage.write_batches(&[numbered(5), numbered(6)]);
    let refused = storage.write_batch(&numbered(7));

    let (message, source) = io_parts(failed.as_ref().unwrap_err());
    assert_eq!(source.kind(), io::ErrorKind::StorageFull, "{message}");
    assert!(
        message.contains("writing to") && message.contains(&segment_name(1)),
        "{message}"
    );
    let (refusal, refused_source) = io_parts(refused.as_ref().unwrap_err());
    assert_eq!(
        refused_source.kind(),
        io::ErrorKind::StorageFull,
        "{refusal}"
    );
    drop(storage);
    // Space freed: the next open is on a disk without faults.
    let (mut storage, recovered) = open(dir.path(), options());
    assert_eq!(recovered, mem_after(&acknowledged));
    let more = numbered(8);
    storage.write_batch(&more).unwrap();
    drop(storage);
    acknowledged.push(more);
    assert_eq!(open(dir.path(), options()).1, mem_after(&acknowledged));
}

/// The disk fills while the next segment is being made — creating its temporary,
/// writing its header and checkpoint, or renaming it into place. The group fails;
/// the full segment before it was synced whole, so a restart recovers the
/// acknowledged batches and at most a prefix of the group, removes the temporary, and
/// rolls again when it must.
#[test]
fn a_full_disk_while_creating_the_next_segment_fails_the_group_and_recovers_a_prefix() {
    let options = WalOptions::new(512)
        .with_sync_mode(SyncMode::Never)
        .with_preallocation(false);
    let cases = [
        (Fault::CreateNoSpace, "creating"),
        (Fault::WriteNoSpace { written: 10 }, "writing to"),
        (Fault::RenameNoSpace, "renaming to"),
    ];
    for (fault, doing) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, disk) = open_faulty(dir.path(), options);
        let acknowledged: Vec<WriteBatch> = (1..=3).map(numbered).collect();
        storage.write_batches(&acknowledged).unwrap();
        assert_eq!(*storage.segments().end(), 1);
        disk.arm(fault, ".log.tmp", 0);
        let group: Vec<WriteBatch> = (4..=12).map(numbered).collect();

        let failed = storage.write_batches(&group);
        drop(storage);
        let (mut storage, recovered) = open(dir.path(), options);

        let message = failed.unwrap_err().to_string();
        assert!(message.contains(doing), "{fault:?}: {message}");
        assert!(
            message.contains(&format!("{}.tmp", segment_name(2))),
            "{message}"
        );
        let k = group_prefix_recovered(&recovered, &acknowledged, &group)
            .unwrap_or_else(|| panic!("{fault:?}: not a MemStorage state: {recovered:?}"));
        assert!(k < group.len(), "{fault:?}");
        assert_eq!(
            names(dir.path()),
            vec![segment_name(1)],
            "temporary removed"
        );
        let more: Vec<WriteBatch> = (13..=30).map(numbered).collect();
        storage.write_batches(&more).unwrap();
        assert!(*storage.segments().end() >= 2, "rolled this time");
        drop(storage);
        let expected = mem_after(acknowledged.iter().chain(&group[..k]).chain(&more));
        assert_eq!(open(dir.path(), options).1, expected, "{fault:?}");
    }
}

/// The disk fills while a `SaveSnapshot` op writes its file — creating the temporary,
/// writing it, or renaming it into place. The batch fails before its record is
/// written; a restart recovers the previous snapshot and log, removes the `.tmp`, and
/// the next snapshot is saved normally.
#[test]
fn a_full_disk_while_saving_a_snapshot_fails_the_batch_and_recovers_the_previous_snapshot() {
    let cases = [
        (Fault::CreateNoSpace, "creating"),
        (Fault::WriteNoSpace { written: 7 }, "writing to"),
        (Fault::RenameNoSpace, "renaming to"),
    ];
    for (fault, doing) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, disk) = open_faulty(dir.path(), options());
        let acknowledged = vec![
            batch([snapshot(1), set_meta("term", &[1])]),
            batch([put(1, b"a"), put(2, b"b"), put(3, b"c")]),
        ];
        storage.write_batches(&acknowledged).unwrap();
        disk.arm(fault, ".snap.tmp", 0);

        let failed = storage.write_batch(&batch([
            snapshot(2),
            StorageOp::CompactTo(2),
            set_meta("term", &[2]),
        ]));
        drop(storage);
        let (mut storage, recovered) = open(dir.path(), options());

        let message = failed.unwrap_err().to_string();
        assert!(message.contains(doing), "{fault:?}: {message}");
        assert!(
            message.contains(&format!("{}.tmp", snapshot_name(2))),
            "{message}"
        );
        assert_eq!(recovered, mem_after(&acknowledged), "{fault:?}");
        assert_eq!(recovered.snapshot.as_ref().unwrap().meta, vec![1]);
        assert_eq!(
            names(dir.path()),
            vec![snapshot_name(1), segment_name(1)],
            "{fault:?}: the temporary is removed"
        );
        let next = batch([snapshot(3)]);
        storage.write_batch(&next).unwrap();
        drop(storage);
        let recovered = open(dir.path(), options()).1;
        assert_eq!(recovered, mem_after(acknowledged.iter().chain([&next])));
        assert_eq!(recovered.snapshot.unwrap().meta, vec![3]);
    }
}

// ---------------------------------------------------------------------------------
// Read corruption, detected by checksums (on-disk flips: tests/wal.rs).

/// Ten acknowledged batches in segment 1; where each record ends.
fn ten_acknowledged(dir: &Path) -> (Vec<WriteBatch>, Vec<u64>) {
    let (mut storage, _) = open(dir, options());
    let batches: Vec<WriteBatch> = (1..=10).map(numbered).collect();
    for b in &batches {
        storage.write_batch(b).unwrap();
    }
    drop(storage);
    let ends = record_ends(&fs::read(dir.join(segment_name(1))).unwrap());
    assert_eq!(ends.len(), 11, "the checkpoint and ten batches");
    (batches, ends)
}

fn open_err_with(dir: &Path, disk: &FaultyDisk) -> StorageError {
    match FileStorage::open_with_disk(dir, options(), Box::new(disk.clone())) {
        Ok(_) => panic!("{} opened, expected an error", dir.display()),
        Err(e) => e,
    }
}

/// The device hands back a record with a flipped bit — in the middle of the log or in
/// its very last record. Open refuses with `Corrupt` naming the file and the record's
/// offset, and repairs nothing: the bytes on disk are fine, and a later open that
/// reads them right recovers every batch. (Before the fix of the last-record bug in
/// tests/wal.rs, the last record was taken for a torn write and cut off the disk.)
#[test]
fn a_corrupt_read_of_any_acknowledged_record_refuses_to_open_and_cuts_nothing() {
    for record in [4, 10] {
        let dir = tempfile::tempdir().unwrap();
        let (batches, ends) = ten_acknowledged(dir.path());
        let start = ends[record - 1]; // batch `record` starts where the one before ends
        let disk = FaultyDisk::new(SyncMode::Fsync);
        disk.arm(
            Fault::FlipOnRead {
                offset: start + 12,
                mask: 0x10,
            },
            ".log",
            0,
        );

        let error = open_err_with(dir.path(), &disk);

        let StorageError::Corrupt(message) = &error else {
            panic!("record {record}: expected corruption, got {error}");
        };
        assert!(message.contains(&segment_name(1)), "{message}");
        assert!(message.contains(&format!("offset {start}")), "{message}");
        assert_eq!(disk.struck(), 1);
        assert_eq!(
            open(dir.path(), options()).1,
            mem_after(&batches),
            "record {record}"
        );
    }
}

/// The snapshot file comes back damaged: open refuses, naming it; it was fine on disk.
#[test]
fn a_corrupt_read_of_the_snapshot_refuses_to_open_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), options());
    let batches = vec![batch([snapshot(1), put(1, b"a")])];
    storage.write_batches(&batches).unwrap();
    drop(storage);
    let disk = FaultyDisk::new(SyncMode::Fsync);
    disk.arm(
        Fault::FlipOnRead {
            offset: 40,
            mask: 1,
        },
        ".snap",
        0,
    );

    let error = open_err_with(dir.path(), &disk);

    let StorageError::Corrupt(message) = &error else {
        panic!("expected corruption, got {error}");
    };
    assert!(message.contains(&snapshot_name(1)), "{message}");
    assert!(message.contains("checksum"), "{message}");
    assert_eq!(open(dir.path(), options()).1, mem_after(&batches));
}

// ---------------------------------------------------------------------------------
// A node whose WAL sync fails.

/// A transport for a one-node cluster: nothing to send to, nothing ever arrives.
struct Alone;

#[async_trait::async_trait]
impl<M: Send + 'static> synod_core::Transport<M> for Alone {
    async fn send(
        &mut self,
        _to: synod_core::NodeId,
        _msg: M,
    ) -> Result<(), synod_core::TransportError> {
        Ok(())
    }

    async fn recv(&mut self) -> Result<(synod_core::NodeId, M), synod_core::TransportError> {
        std::future::pending().await
    }
}

/// Bound on every wait (a loaded 2-core machine); never a timed assertion.
const WAIT: Duration = Duration::from_secs(20);

/// A one-node Raft cluster on a file WAL whose next segment sync fails with EIO (and
/// loses its pages). The client write whose batch failed is never acknowledged — its
/// reply channel closes unanswered — the node stops, its join result is the storage
/// error naming "syncing" and the segment, and it stays down (takes no more
/// requests). A restart recovers the write acknowledged before, not the failed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_wal_sync_fails_stops_names_the_file_and_never_acknowledges_the_write() {
    use synod_core::{ClientId, ClientReply, ClientRequest, KvOp, KvResult, NodeId, Outcome};
    use synod_raft::{RaftConfig, RaftNode, Request, Response};
    use synod_runtime::driver::{self, DriverError, Submission};
    use tokio::sync::mpsc;

    let dir = tempfile::tempdir().unwrap();
    let (storage, disk) = open_faulty(dir.path(), options());
    let raft: RaftNode = RaftNode::new(RaftConfig::lan(NodeId(1), [NodeId(1)], 1));
    let handle = driver::spawn(raft, Alone, storage);
    let put = |value: &str| {
        Request::Command(KvOp::Put {
            key: "k".into(),
            value: value.into(),
        })
    };
    let submit = |seq: u64, op: Request| {
        let (reply_to, reply) = mpsc::unbounded_channel::<ClientReply<Response>>();
        let request = ClientRequest {
            client: ClientId(1),
            seq,
            op,
        };
        (Submission { request, reply_to }, reply)
    };
    // Until the node has elected itself, it answers NotLeader or Unavailable.
    let mut seq = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        seq += 1;
        let (submission, mut reply) = submit(seq, put("kept-value"));
        handle.requests().send(submission).await.unwrap();
        let answer = tokio::time::timeout(WAIT, reply.recv())
            .await
            .unwrap()
            .unwrap();
        match answer.outcome {
            Outcome::Done(Response::Output(KvResult::Written)) => break,
            other => assert!(other.definitely_not_applied(), "{other:?}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    disk.arm(Fault::SyncEio, ".log", 0);

    let (submission, mut reply) = submit(seq + 1, put("lost-value"));
    handle.requests().send(submission).await.unwrap();
    let answer = tokio::time::timeout(WAIT, reply.recv()).await.unwrap();
    let requests = handle.requests();
    let ended = tokio::time::timeout(WAIT, handle.join()).await.unwrap();

    assert!(
        answer.is_none(),
        "the failed write was answered: {answer:?}"
    );
    assert_eq!(disk.struck(), 1);
    let Err(DriverError::Storage(error)) = ended else {
        panic!("expected the storage error, got {ended:?}");
    };
    let (message, source) = io_parts(&error);
    assert_eq!(source.raw_os_error(), Some(EIO), "{message}");
    assert!(
        message.contains("syncing") && message.contains(&segment_name(1)),
        "{message}"
    );
    let (stays_down, _) = submit(seq + 2, put("after"));
    assert!(
        requests.send(stays_down).await.is_err(),
        "the node takes no more requests"
    );
    let recovered = open(dir.path(), options()).1;
    let holds = |needle: &[u8]| {
        recovered
            .log
            .values()
            .any(|entry| entry.windows(needle.len()).any(|w| w == needle))
    };
    assert!(holds(b"kept-value"), "the acknowledged write survives");
    assert!(!holds(b"lost-value"), "the failed write's pages were lost");
}
