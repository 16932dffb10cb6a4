//! Zab's phases end to end on the deterministic cluster: election, discovery,
//! synchronisation and broadcast, with crashes and recovery.

mod common;

use common::*;
use synod_zab::Epoch;

#[test]
fn zab_4_a_quorum_establishes_one_leader_and_commits_through_it() {
    let (mut c, _) = cluster(3, 1);
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader within 2 s");
    assert_eq!(c.live().filter(|z| z.is_leader()).count(), 1);
    let t = put(&mut c, l, "x", "1");
    c.run_for(ms(100));
    assert_eq!(c.kv_outcome(t), Some(WRITTEN));
    let r = get(&mut c, l, "x");
    c.run_for(ms(100));
    assert_eq!(c.kv_outcome(r), Some(read_ok(Some("1"))));
    assert_converged(&c);
}

#[test]
fn zab_4_a_new_leader_of_a_later_epoch_keeps_every_committed_transaction() {
    let (mut c, _) = cluster(3, 2);
    c.run_for(ms(2000));
    let first = leader(&c).expect("a leader");
    let epoch = c.node(first).established_epoch().expect("established");
    for k in 0..5 {
        put(&mut c, first, &format!("k{k}"), "v");
    }
    c.run_for(ms(100));
    c.crash(first);
    c.run_for(ms(3000));
    let second = leader(&c).expect("a new leader");
    assert_ne!(second, first);
    assert!(c.node(second).established_epoch().expect("established") > epoch);
    let t = put(&mut c, second, "after", "crash");
    c.run_for(ms(100));
    assert_eq!(c.kv_outcome(t), Some(WRITTEN));
    c.restart(first);
    c.run_for(ms(3000));
    assert_converged(&c);
    let kv = c.node(first).state_machine();
    for k in 0..5 {
        assert_eq!(kv.read(&format!("k{k}")), Some("v"), "k{k} lost");
    }
    assert_eq!(kv.read("after"), Some("crash"));
}

#[test]
fn zab_4_every_fault_keeps_the_properties_and_the_ensemble_recovers() {
    for_seeds(0..1000, |seed| {
        let (mut c, safety) = cluster(3 + 2 * (seed % 2), seed);
        let mut rng = synod_core::Prng::new(seed);
        c.run_for(ms(1500));
        let faults = Faults {
            drop: 5,
            duplicate: 5,
            propose: 15,
            crash: 3,
            timer: 10,
            partition: 3,
        };
        let propose = |c: &mut Cluster, rng: &mut synod_core::Prng, id: u64| {
            let key = format!("k{}", rng.below(4));
            put(c, id, &key, &rng.next_u64().to_string());
        };
        c.chaos(&mut rng, 3000, &faults, &propose);
        c.settle(ms(5000));
        let l = leader(&c).unwrap_or_else(|| panic!("seed {seed}: no leader after the heal"));
        let t = put(&mut c, l, "final", "write");
        c.run_for(ms(500));
        assert_eq!(c.kv_outcome(t), Some(WRITTEN), "seed {seed}");
        assert_converged(&c);
        assert!(!safety.borrow().leaders.is_empty());
        let _ = Epoch(0);
    });
}
