//! Log compaction and InstallSnapshot: Raft §7 (Figures 12 and 13).

mod common;

use common::*;
use synod_raft::{LogIndex, Message, RaftTimer, SnapshotMeta, Term};

/// Small snapshots every 20 applied entries, keeping 2 behind, sent in 64-byte chunks.
fn compacting(voters: u64) -> Cluster {
    Cluster::build(voters, 0, 1, |cfg| {
        cfg.snapshot_threshold = 20;
        cfg.snapshot_trailing = 2;
        cfg.snapshot_chunk_bytes = 64;
    })
}

/// §7: "Each server takes snapshots independently, covering just the committed entries
/// in its log … Once a server completes writing a snapshot, it may delete all log
/// entries up through the last included index."
#[test]
fn raft_7_each_server_compacts_its_log_independently() {
    // init
    let mut c = compacting(3);
    c.elect(1);

    // act
    for i in 0..50 {
        c.put(1, &format!("k{i}"), "v");
    }
    c.run_for(ms(200));

    // check: every server snapshotted committed state and dropped the log below it
    for id in c.ids() {
        let r = c.node(id);
        let meta = r.snapshot_meta().expect("a snapshot").clone();
        assert!(
            meta.index >= LogIndex(40) && meta.index <= r.commit_index(),
            "n{id}"
        );
        assert_eq!(meta.term, r.log().term_at(meta.index).unwrap(), "n{id}");
        assert_eq!(r.log().prev().index, LogIndex(meta.index.0 - 2), "n{id}");
        assert_eq!(r.state_machine(), c.node(1).state_machine(), "n{id}");
    }
}

/// §7: "the leader must occasionally send snapshots to followers that lag behind …
/// when the leader has already discarded the next log entry that it needs to send to a
/// follower", in chunks (Figure 13); the follower "discard[s] the entire log" it has
/// and "reset[s] state machine using snapshot contents" — durably, so it restarts from
/// the snapshot.
#[test]
fn raft_7_snapshot_install_to_lagging_follower() {
    // init: n3 is cut off while 50 entries commit and the leader compacts past them
    let mut c = compacting(3);
    c.elect(1);
    c.isolate(3);
    for i in 0..50 {
        c.put(1, &format!("k{i}"), "some value of a few bytes");
    }
    c.run_for(ms(100));
    assert!(c.node(1).log().first_index() > c.node(3).log().last_index().next());
    assert_eq!(c.node(3).snapshot_meta(), None);

    // act: heal; a heartbeat round discovers that n3 needs the snapshot
    c.heal();
    c.fire(1, RaftTimer::Heartbeat);
    c.deliver_until(|c| c.node(3).snapshot_meta().is_some());

    // check: installed from several chunks, as the leader's snapshot
    let chunks = c.count(|_, to, m| to == n(3) && kind(m) == "InstallSnapshot");
    assert!(chunks >= 3, "{chunks} chunks");
    let meta = c.node(3).snapshot_meta().unwrap().clone();
    assert_eq!(Some(&meta), c.node(1).snapshot_meta());
    assert_eq!(c.node(3).applied_index(), meta.index);
    assert_eq!(c.node(3).log().prev().index, meta.index);
    assert!(c.node(3).state_machine().read("k30").is_some());
    let installed = c.node(3).state_machine().clone();

    // act: n3 crashes right after installing
    c.crash(3);
    c.restart(3);

    // check: it recovered the snapshot from its own storage
    assert_eq!(c.node(3).snapshot_meta(), Some(&meta));
    assert_eq!(c.node(3).applied_index(), meta.index);
    assert_eq!(c.node(3).state_machine(), &installed);

    // act / check: and catches up on the rest from the log
    c.run_for(ms(500));
    c.assert_converged();
    assert_eq!(
        c.node(3).state_machine().read("k49"),
        Some("some value of a few bytes")
    );
}

/// §7: a follower slightly behind, within the entries the leader kept after its
/// snapshot (`snapshot_trailing`), catches up from the log without a snapshot.
#[test]
fn raft_7_follower_within_the_kept_log_needs_no_snapshot() {
    // init: snapshots every 20 entries keeping 10 behind; n3 misses the last 5
    let mut c = Cluster::build(3, 0, 1, |cfg| {
        cfg.snapshot_threshold = 20;
        cfg.snapshot_trailing = 10;
    });
    c.elect(1);
    for i in 0..16 {
        c.put(1, "k", &i.to_string());
    }
    c.run_for(ms(100));
    c.isolate(3);
    for i in 16..21 {
        c.put(1, "k", &i.to_string());
    }
    c.run_for(ms(100));
    assert!(c.node(1).snapshot_meta().is_some());
    assert!(c.node(1).log().first_index() <= c.node(3).log().last_index());

    // act
    c.heal();
    c.run_for(ms(300));

    // check
    assert_eq!(c.count_kind("InstallSnapshot"), 0);
    assert_eq!(c.node(3).state_machine().read("k"), Some("20"));
    c.assert_converged();
}

/// §7 with thesis §4.2.1: a new server added as a learner after the log was compacted
/// catches up from the leader's snapshot, and learns its own membership from it.
#[test]
fn raft_7_new_learner_catches_up_from_a_snapshot() {
    // init: n4 starts outside the configuration; the leader compacts its log
    let mut c = Cluster::build(3, 1, 1, |cfg| {
        cfg.snapshot_threshold = 20;
        cfg.snapshot_trailing = 2;
        cfg.snapshot_chunk_bytes = 64;
    });
    c.elect(1);
    for i in 0..30 {
        c.put(1, &format!("k{i}"), "v");
    }
    c.run_for(ms(100));
    assert!(c.node(1).log().first_index() > LogIndex(1));

    // act
    let add = c.propose(1, synod_raft::Request::AddLearner(n(4)));
    c.run_for(ms(500));

    // check
    assert!(matches!(c.outcome(add), Some(synod_core::Outcome::Done(_))));
    assert!(c.count(|_, to, m| to == n(4) && kind(m) == "InstallSnapshot") > 0);
    assert!(c.node(4).membership().learners.contains(&n(4)));
    assert_eq!(c.node(4).state_machine(), c.node(1).state_machine());
    c.assert_converged();
}

/// §7: "servers take snapshots … when the log reaches a fixed size in bytes" — here a
/// fixed count: the first snapshot comes exactly when `snapshot_threshold` (20)
/// entries are applied, not one later.
#[test]
fn raft_7_snapshot_taken_exactly_at_the_threshold() {
    // init: the no-op is entry 1
    let mut c = compacting(3);
    c.elect(1);
    c.run_for(ms(100));

    // act / check
    for i in 2..=20 {
        assert_eq!(
            c.node(1).snapshot_meta(),
            None,
            "a snapshot before entry {i}"
        );
        c.put(1, &format!("k{i}"), "v");
        c.run_for(ms(10));
    }
    assert_eq!(c.node(1).applied_index(), LogIndex(20));
    let meta = c.node(1).snapshot_meta().expect("a snapshot at 20");
    assert_eq!(meta.index, LogIndex(20));
}

/// Figure 13, receiver rule 1: "Reply immediately if term < currentTerm" — a chunk of
/// a deposed leader arriving late is answered with the current term (so its sender
/// steps down) and changes nothing.
#[test]
fn raft_7_install_snapshot_of_an_older_term_is_answered_with_the_current_term() {
    // init: n2 leads a term after n1's
    let mut c = compacting(3);
    c.elect(1);
    c.run_for(ms(100));
    c.propose(1, synod_raft::Request::TransferLeader(n(2)));
    c.run_for(ms(100));
    assert_eq!(c.leader(), Some(2));
    let term = c.node(3).term();
    let old = Term(term.0 - 1);

    // act
    let chunk = install(old, meta(50, old, &c), 0, b"stale", true);
    c.send(1, 3, chunk);
    c.deliver_all();

    // check
    let answer = c.last_sent(3, "SnapshotResponse");
    assert!(
        matches!(answer, Message::SnapshotResponse { term: t, installed: None, .. } if *t == term),
        "{answer:?}"
    );
    assert_eq!(c.node(3).snapshot_meta(), None);
    assert_eq!(c.leader(), Some(2));
}

/// Figure 13, rules 2–4: chunks after the first must continue the snapshot being
/// assembled; a chunk of another snapshot (a newer leader's, say) at a later offset
/// cannot be appended to it, and the receiver asks for that snapshot from offset 0.
#[test]
fn raft_7_chunk_of_a_different_snapshot_restarts_the_transfer() {
    // init: n3 holds the first 8 bytes of a snapshot at index 50
    let mut c = compacting(3);
    c.elect(1);
    c.run_for(ms(100));
    let term = c.node(3).term();
    let chunk = install(term, meta(50, term, &c), 0, b"01234567", false);
    c.send(1, 3, chunk);
    c.deliver_all();

    // act: the next chunk names a snapshot at index 60
    let chunk = install(term, meta(60, term, &c), 8, b"89abcdef", false);
    c.send(1, 3, chunk);
    c.deliver_all();

    // check
    let answers: Vec<u64> = (c.delivered.iter())
        .filter_map(|(f, _, m)| match m {
            Message::SnapshotResponse { next_offset, .. } if f.0 == 3 => Some(*next_offset),
            _ => None,
        })
        .collect();
    assert_eq!(answers, vec![8, 0], "n3's answers (next offsets)");
    assert_eq!(c.node(3).snapshot_meta(), None);
}

fn meta(index: u64, term: Term, c: &Cluster) -> SnapshotMeta {
    SnapshotMeta {
        index: LogIndex(index),
        term,
        membership: c.node(1).membership().clone(),
    }
}

fn install(term: Term, meta: SnapshotMeta, offset: u64, data: &[u8], done: bool) -> Message {
    Message::InstallSnapshot {
        term,
        meta,
        offset,
        data: std::sync::Arc::new(data.to_vec()),
        done,
    }
}
