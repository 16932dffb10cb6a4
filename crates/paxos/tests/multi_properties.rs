//! Multi-Paxos's guarantees under random faults, over many seeds: messages dropped,
//! duplicated and reordered, timers firing out of order and late, crashes and
//! restarts, partitions. The driver checks after every input that each slot has at
//! most one chosen value (computed from the acceptances), that every executed value
//! is the chosen one and that every replica executes the same command per slot;
//! these tests add convergence once healed, linearizable reads, and Flexible Paxos
//! quorums, and make sure the runs were not vacuous. A failure names its seed.

mod common;

use common::multi::*;
use common::*;
use std::cell::Cell;
use std::collections::BTreeMap;
use synod_core::{KvOp, Outcome, Prng};
use synod_paxos::{MultiPaxosConfig, Request, Response, Slot, Value};

const FAULTS: Faults = Faults {
    drop: 10,
    duplicate: 8,
    propose: 12,
    crash: 2,
    timer: 6,
    partition: 1,
};

/// One write, or — a third of the time — two to four arriving together, as one input
/// (a server that read several requests at once).
fn random_put(c: &mut MultiCluster, rng: &mut Prng, id: u64) {
    let together = if rng.below(3) == 0 {
        2 + rng.below(3)
    } else {
        1
    };
    let puts = (0..together)
        .map(|_| {
            Request::Command(KvOp::Put {
                key: format!("k{}", rng.below(5)),
                value: rng.next_u64().to_string(),
            })
        })
        .collect();
    c.propose_all(id, puts);
}

/// Heals, waits for a leader, gets one more command through, and checks that every
/// replica agrees; returns how many slots were chosen.
fn heal_and_converge(c: &mut MultiCluster) -> u64 {
    c.settle(ms(3_000));
    let leader = c.leader().expect("a leader after healing");
    let last = c.put(leader, "last", "1");
    c.run_for(ms(500));
    assert_eq!(c.outcome(last), Some(&WRITTEN));
    c.assert_converged();
    c.node(leader).first_unchosen().0 - 1
}

/// "Paxos Made Simple" §3: every server executes the same sequence of commands.
/// With snapshots every few slots and a small window on odd seeds (so catch-up,
/// snapshot transfer and batching run under the faults too).
#[test]
fn multipaxos_random_faults_every_replica_applies_the_same_command_per_slot() {
    let chosen = Cell::new(0);
    for_seeds(0..200, |seed| {
        // init
        let mut c = build(3 + 2 * (seed % 2), seed, move |cfg| {
            if seed % 2 == 1 {
                cfg.snapshot_threshold = 8 + seed % 16;
                cfg.snapshot_trailing = seed % 4;
                cfg.accept_inflight_max = 2;
                cfg.accept_batch_max = 3;
                cfg.catchup_batch_max = 5;
            }
        });
        let mut rng = Prng::new(seed);

        // act
        c.chaos(&mut rng, 1_500, &FAULTS, &random_put);

        // check
        chosen.set(chosen.get() + heal_and_converge(&mut c));
    });
    assert!(
        chosen.get() >= 200 * 20,
        "only {} slots chosen",
        chosen.get()
    );
}

/// Flexible Paxos (Howard, Malkhi, Spiegelman 2016): any phase-1 and phase-2 quorum
/// sizes are safe if they intersect (`q1 + q2 > n`); here 5 acceptors with 4/2 and
/// 2/4.
#[test]
fn multipaxos_flexible_quorums_stay_safe_under_random_faults() {
    let chosen = Cell::new(0);
    for_seeds(0..100, |seed| {
        // init
        let (q1, q2) = if seed % 2 == 0 { (4, 2) } else { (2, 4) };
        let mut c = build(5, seed, move |cfg: &mut MultiPaxosConfig| {
            cfg.phase1_quorum = q1;
            cfg.phase2_quorum = q2;
        });
        let mut rng = Prng::new(seed);

        // act
        c.chaos(&mut rng, 1_000, &FAULTS, &random_put);

        // check
        chosen.set(chosen.get() + heal_and_converge(&mut c));
    });
    assert!(
        chosen.get() >= 100 * 10,
        "only {} slots chosen",
        chosen.get()
    );
}

/// Reads by a quorum round are linearizable — also while leaders are partitioned
/// away and deposed without knowing it. Every answered read returns the value of a
/// chosen write that is no older, in slot order, than the last write to that key
/// acknowledged before the read was issued.
#[test]
fn multipaxos_reads_are_linearizable_under_random_faults() {
    let checked = Cell::new(0);
    for_seeds(0..100, |seed| {
        // init
        let mut c = build(3 + 2 * (seed % 2), seed, |_| {});
        let mut rng = Prng::new(seed);
        let mut reads = Vec::new();

        // act: every few steps, each node that believes it leads is asked for a key
        for _ in 0..300 {
            c.chaos(&mut rng, 10, &FAULTS, &random_put);
            for id in c.ids() {
                if c.is_up(id) && c.node(id).is_leader() {
                    let key = format!("k{}", rng.below(5));
                    reads.push((c.replies.len(), key.clone(), c.get(id, &key)));
                }
            }
        }
        heal_and_converge(&mut c);

        // check
        let leader = c.leader().expect("a leader after healing");
        checked.set(checked.get() + check_reads(&c, leader, &reads));
    });
    assert!(
        checked.get() >= 5_000,
        "only {} reads answered",
        checked.get()
    );
}

/// Checks each answered read of `reads` (replies count when issued, key, ticket)
/// against the chosen slots of `leader`; returns how many it checked.
fn check_reads(c: &MultiCluster, leader: u64, reads: &[(usize, String, Ticket)]) -> usize {
    // Where each chosen put sits, by client (one put per client) and by value.
    let log = c.node(leader).log();
    assert_eq!(log.start(), Slot(1), "no truncation in this test");
    let mut put_by_client = BTreeMap::new();
    let mut slot_of_value = BTreeMap::new();
    for s in 1..log.first_unchosen().0 {
        if let Some(Value::Command(cmd)) = log.chosen(Slot(s)) {
            if let KvOp::Put { key, value } = &cmd.op {
                put_by_client.insert(cmd.client, (key.clone(), s));
                slot_of_value.insert(value.clone(), s);
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
            .map(|(_, s)| *s)
            .max();
        let read = v
            .as_ref()
            .map(|v| *slot_of_value.get(v).expect("read an unchosen value"));
        assert!(
            read >= acked_before,
            "stale read of {key}: {read:?} < {acked_before:?}"
        );
        checked += 1;
    }
    checked
}
