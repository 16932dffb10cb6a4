//! Raft's guarantees under random faults, over many seeds: messages dropped,
//! duplicated and reordered, timers firing out of order and late, crashes and
//! restarts, partitions. The driver checks Election Safety, State Machine Safety and
//! Leader Completeness after every input; these tests add Log Matching, linearizable
//! reads and membership changes, and make sure the runs were not vacuous. A failure
//! names the seed that replays it.

mod common;

use common::*;
use std::cell::Cell;
use std::collections::BTreeMap;
use synod_core::{KvOp, KvResult, Outcome, Prng};
use synod_raft::{Payload, Request, Response};

const WRITTEN: Outcome<Response> = Outcome::Done(Response::Output(KvResult::Written));

/// §5.2, Election Safety: "at most one leader can be elected in a given term" — with
/// and without pre-vote and check-quorum, in clusters of three to five, with crashes.
#[test]
fn raft_5_2_election_safety_under_random_faults() {
    let elections = Cell::new(0);
    for_seeds(0..256, |seed| {
        // init
        let mut c = Cluster::build(3 + seed % 3, 0, seed, |cfg| {
            cfg.pre_vote = seed % 2 == 0;
            cfg.check_quorum = seed % 4 < 2;
        });
        let mut rng = Prng::new(seed);
        let faults = Faults {
            drop: 15,
            duplicate: 10,
            propose: 3,
            crash: 2,
            timer: 15,
            partition: 0,
        };

        // act (the driver asserts one leader per term after every step)
        c.chaos(&mut rng, 1000, &faults);

        // check
        elections.set(elections.get() + c.leaders_by_term().len());
    });
    assert!(
        elections.get() >= 3 * 256,
        "only {} elections won",
        elections.get()
    );
}

/// §5.3, Log Matching: "if two logs contain an entry with the same index and term,
/// then the logs are identical in all entries up through the given index" — with
/// crashes, restarts and, on odd seeds, snapshots every 16 entries.
#[test]
fn raft_5_3_log_matching_under_random_faults() {
    let committed = Cell::new(0);
    for_seeds(0..200, |seed| {
        // init
        let mut c = Cluster::build(5, 0, seed, |cfg| {
            if seed % 2 == 1 {
                cfg.snapshot_threshold = 16;
                cfg.snapshot_trailing = 4;
                cfg.snapshot_chunk_bytes = 256;
            }
        });
        let mut rng = Prng::new(seed);
        let faults = Faults {
            drop: 10,
            duplicate: 5,
            propose: 10,
            crash: 2,
            timer: 2,
            partition: 0,
        };

        for _ in 0..10 {
            // act
            c.chaos(&mut rng, 200, &faults);

            // check
            c.assert_log_matching();
        }
        let most = c.live().map(|r| r.commit_index().0).max().unwrap_or(0);
        committed.set(committed.get() + most);
    });
    assert!(
        committed.get() >= 200 * 10,
        "only {} entries committed",
        committed.get()
    );
}

/// Thesis §6.4: ReadIndex reads are linearizable — also while leaders are partitioned
/// away and deposed without knowing it. Every answered read returns the value of a
/// committed write that is no older, in log order, than the last write to that key
/// acknowledged before the read was issued.
#[test]
fn raft_thesis_6_4_reads_are_linearizable_under_random_faults() {
    let checked = Cell::new(0);
    for_seeds(0..128, |seed| {
        // init
        let mut c = Cluster::build(3 + 2 * (seed % 2), 0, seed, |cfg| {
            cfg.check_quorum = seed % 3 != 0;
        });
        let mut rng = Prng::new(seed);
        let faults = Faults {
            drop: 8,
            duplicate: 8,
            propose: 12,
            crash: 3,
            timer: 4,
            partition: 1,
        };
        let mut reads = Vec::new();

        // act: every few steps, each node that believes it leads is asked for a key
        for _ in 0..300 {
            c.chaos(&mut rng, 10, &faults);
            for id in c.ids() {
                if c.is_up(id) && c.node(id).is_leader() {
                    let key = format!("k{}", rng.below(5));
                    reads.push((c.replies.len(), key.clone(), c.get(id, &key)));
                }
            }
        }
        c.settle(ms(2000));

        // check
        let leader = c.leader().expect("a leader after healing");
        checked.set(checked.get() + check_reads(&c, leader, &reads));
    });
    assert!(
        checked.get() >= 10_000,
        "only {} reads answered",
        checked.get()
    );
}

/// Checks each answered read of `reads` (replies count when issued, key, ticket)
/// against the committed log of `leader`; returns how many it checked.
fn check_reads(c: &Cluster, leader: u64, reads: &[(usize, String, Ticket)]) -> usize {
    // Where each committed put sits in the log, by client and by (unique) value.
    let mut put_by_client = BTreeMap::new();
    let mut index_of_value = BTreeMap::new();
    for e in c.committed_entries(leader) {
        if let Payload::Command(cmd) = &e.payload {
            if let KvOp::Put { key, value } = &cmd.op {
                put_by_client.insert(cmd.client, (key.clone(), e.index));
                index_of_value.insert(value.clone(), e.index);
            }
        }
    }
    let mut checked = 0;
    for (issued_at, key, t) in reads {
        let Some(Outcome::Done(Response::QueryOutput(v))) = c.outcome(*t) else {
            continue;
        };
        let acked_before = (c.replies[..*issued_at].iter())
            .filter(|(_, r)| r.outcome == WRITTEN)
            .filter_map(|(_, r)| put_by_client.get(&r.client))
            .filter(|(k, _)| k == key)
            .map(|(_, i)| *i)
            .max();
        let read = v.as_ref().map(|v| {
            index_of_value
                .get(v)
                .copied()
                .expect("read an uncommitted value")
        });
        assert!(
            read >= acked_before,
            "stale read of {key}: {read:?} < {acked_before:?}"
        );
        checked += 1;
    }
    checked
}

/// Thesis chapter 4: single-server changes proposed at random (add a learner, promote,
/// remove) while messages are lost, duplicated and reordered and servers crash. The
/// driver's safety checks hold throughout; once healed, the members agree on the
/// configuration, the commit index and the state machine. Pre-vote or check-quorum is
/// on: with both off, a server removed without learning it disrupts the cluster
/// forever (thesis §4.2.3).
#[test]
fn raft_thesis_4_membership_changes_under_random_faults() {
    let changes = Cell::new(0);
    for_seeds(0..64, |seed| {
        // init: voters 1..=3, spares 4 and 5
        let mut c = Cluster::build(3, 2, seed, |cfg| {
            cfg.pre_vote = seed % 3 != 0;
            cfg.check_quorum = seed % 3 != 1;
            if seed % 2 == 0 {
                cfg.snapshot_threshold = 10 + seed % 20;
                cfg.snapshot_trailing = seed % 6;
                cfg.snapshot_chunk_bytes = 64;
            }
        });
        let mut rng = Prng::new(seed);
        let faults = Faults {
            drop: 8,
            duplicate: 8,
            propose: 12,
            crash: 3,
            timer: 4,
            partition: 0,
        };

        // act
        for _ in 0..40 {
            c.chaos(&mut rng, 100, &faults);
            if let Some(leader) = c.leader() {
                let target = n(1 + rng.below(5));
                let change = match rng.below(3) {
                    0 => Request::AddLearner(target),
                    1 => Request::Promote(target),
                    _ => Request::Remove(target),
                };
                c.propose(leader, change);
            }
            c.assert_log_matching();
        }
        c.settle(ms(3000));
        let leader = c.leader().expect("a leader after healing");
        let last = c.put(leader, "last", "1");
        c.run_for(ms(500));

        // check
        assert_eq!(c.outcome(last), Some(&WRITTEN));
        let lead = c.node(leader);
        for id in lead.membership().members() {
            let r = c.node(id.0);
            assert_eq!(r.membership(), lead.membership(), "{id}");
            assert_eq!(r.commit_index(), lead.commit_index(), "{id}");
            assert_eq!(r.state_machine(), lead.state_machine(), "{id}");
        }
        let done = |(_, r): &&(_, synod_core::ClientReply<Response>)| {
            matches!(r.outcome, Outcome::Done(Response::ConfigChanged(_)))
        };
        changes.set(changes.get() + c.replies.iter().filter(done).count());
    });
    assert!(changes.get() >= 3 * 64, "only {} changes", changes.get());
}
