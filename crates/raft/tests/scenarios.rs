//! Whole-cluster scenarios in the spirit of MIT 6.824's Raft lab tests (2A/2B/2C):
//! each runs the cluster through faults, then checks agreement, and that every write
//! a client was told succeeded is in every replica's state machine.

mod common;

use common::*;
use synod_core::{KvResult, Outcome, Prng};
use synod_raft::Response;

const WRITTEN: Outcome<Response> = Outcome::Done(Response::Output(KvResult::Written));

/// Every write acknowledged to a client is applied on every live node (the session
/// table records each client's applied request).
fn assert_acknowledged_writes_applied(c: &Cluster) {
    for (_, reply) in c.replies.iter().filter(|(_, r)| r.outcome == WRITTEN) {
        for r in c.live() {
            let seq = r.state_machine().last_seq(reply.client);
            assert_eq!(
                seq,
                Some(reply.seq),
                "{} lost {}'s write",
                r.node_id(),
                reply.client
            );
        }
    }
}

/// 6.824 "no agreement if too many followers disconnect": with three of five servers
/// cut off, nothing is committed; once they return, the cluster agrees again.
#[test]
fn scenario_no_agreement_without_majority() {
    // init
    let mut c = Cluster::new(5);
    c.elect(1);
    c.put(1, "x", "1");
    c.run_for(ms(100));
    let committed = c.node(1).commit_index();

    // act
    for id in [2, 3, 4] {
        c.isolate(id);
    }
    let lonely = c.put(1, "x", "2");
    c.run_for(ms(1000));

    // check
    for id in c.ids() {
        assert!(
            c.node(id).commit_index() <= committed,
            "n{id} committed without a majority"
        );
        assert_eq!(c.node(id).state_machine().read("x"), Some("1"), "n{id}");
    }
    assert_eq!(c.outcome(lonely), Some(&Outcome::Unknown));
    assert_eq!(c.leader(), None);

    // act
    c.heal();
    c.run_for(ms(1000));
    let leader = c.leader().expect("a leader again");
    let again = c.put(leader, "y", "1");
    c.run_for(ms(100));

    // check
    assert_eq!(c.outcome(again), Some(&WRITTEN));
    c.assert_converged();
}

/// 6.824 "rejoin of partitioned leader": a leader cut off with uncommitted entries
/// rejoins; its entries are discarded in favour of what the majority committed, and
/// the cluster keeps working when the next leader is cut off in turn.
#[test]
fn scenario_partitioned_leader_rejoins() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    c.put(1, "x", "101");
    c.run_for(ms(100));

    // act: n1 cut off takes three writes; the others elect a leader and write
    c.isolate(1);
    let lost: Vec<Ticket> = ["102", "103", "104"]
        .iter()
        .map(|v| c.put(1, "x", v))
        .collect();
    c.run_for(ms(1000));
    let second = c.leader().expect("the majority elects a leader");
    assert_ne!(second, 1);
    c.put(second, "x", "103b");
    c.run_for(ms(100));
    // the new leader is cut off and the old one comes back
    c.heal();
    c.isolate(second);
    c.run_for(ms(1000));
    let third = c.leader().expect("n1 and the other server elect a leader");
    assert_ne!(third, second);
    assert_ne!(third, 1, "n1's log is behind: it cannot win (§5.4.1)");
    let last = c.put(third, "x", "104b");
    c.run_for(ms(100));
    c.heal();
    c.run_for(ms(500));

    // check
    assert_eq!(c.outcome(last), Some(&WRITTEN));
    for t in lost {
        assert_eq!(c.outcome(t), Some(&Outcome::Unknown));
        assert!(c
            .live()
            .all(|r| r.state_machine().last_seq(t.client).is_none()));
    }
    assert_eq!(c.node(1).state_machine().read("x"), Some("104b"));
    c.assert_converged();
    assert_acknowledged_writes_applied(&c);
}

/// 6.824 "agreement despite unreliable network" (Figure8Unreliable): random drops,
/// duplicates and reordering while clients write; once the network is reliable again
/// the cluster agrees and no acknowledged write is lost.
#[test]
fn scenario_agreement_despite_unreliable_network() {
    for_seeds(0..24, |seed| {
        // init
        let mut c = Cluster::build(5, 0, seed, |_| {});
        let mut rng = Prng::new(seed);
        let faults = Faults {
            drop: 10,
            duplicate: 10,
            propose: 10,
            crash: 0,
            timer: 2,
            partition: 0,
        };

        // act
        c.chaos(&mut rng, 3000, &faults);
        c.settle(ms(2000));
        let leader = c.leader().expect("a leader on a reliable network");
        let last = c.put(leader, "last", "1");
        c.run_for(ms(200));

        // check
        assert_eq!(c.outcome(last), Some(&WRITTEN));
        c.assert_converged();
        c.assert_log_matching();
        assert_acknowledged_writes_applied(&c);
    });
}

/// 6.824 churn (Figure8 / 2C persistence): servers crash and restart at random (a
/// minority at a time), messages are lost, duplicated and reordered, logs are
/// compacted; then everything heals and every live server converges to the same
/// committed log and state machine, without losing an acknowledged write.
#[test]
fn scenario_churn_with_crashes_and_restarts() {
    for_seeds(0..24, |seed| {
        // init
        let mut c = Cluster::build(5, 0, seed, |cfg| {
            cfg.snapshot_threshold = 24;
            cfg.snapshot_trailing = 4;
            cfg.snapshot_chunk_bytes = 128;
        });
        let mut rng = Prng::new(seed);
        let faults = Faults {
            drop: 5,
            duplicate: 5,
            propose: 10,
            crash: 3,
            timer: 2,
            partition: 0,
        };

        // act
        c.chaos(&mut rng, 4000, &faults);
        c.settle(ms(2000));
        let leader = c.leader().expect("a leader after healing");
        let last = c.put(leader, "last", "1");
        c.run_for(ms(300));

        // check
        assert_eq!(c.outcome(last), Some(&WRITTEN));
        c.assert_converged();
        c.assert_log_matching();
        assert_acknowledged_writes_applied(&c);
    });
}
