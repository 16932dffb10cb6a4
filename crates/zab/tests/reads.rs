//! Reads: ZooKeeper's default local reads are sequential but not linearizable; the
//! leader-confirmed ones are linearizable.

mod common;

use common::*;
use synod_zab::Request;

fn local_get(c: &mut Cluster, id: u64, key: &str) -> Ticket {
    c.propose(id, Request::LocalQuery(key.to_owned()))
}

/// A follower cut off from its leader keeps serving local reads until its tick
/// notices the silence: a read sent after a newer write was acknowledged returns the
/// older value (a stale read, so local reads are not linearizable), while the
/// leader-confirmed read at the same follower is refused and the one at the leader
/// sees the new value. ZooKeeper documents exactly this ("ZooKeeper does not
/// guarantee that every client sees the same view at the same time; use `sync`").
#[test]
fn zookeeper_local_reads_can_be_stale_and_leader_confirmed_reads_are_not() {
    let (mut c, _) = cluster(3, 11);
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    let f = c.ids().into_iter().find(|&i| i != l).expect("a follower");

    let first = put(&mut c, l, "k", "old");
    c.run_for(ms(50));
    assert_eq!(c.outcome(first), Some(&WRITTEN));
    let fresh = local_get(&mut c, f, "k");
    c.deliver_all();
    assert_eq!(c.outcome(fresh), Some(&read_ok(Some("old"))), "caught up");

    c.isolate(f);
    let second = put(&mut c, l, "k", "new");
    c.deliver_all();
    assert_eq!(c.outcome(second), Some(&WRITTEN), "committed without f");

    let stale = local_get(&mut c, f, "k");
    let refused = get(&mut c, f, "k");
    let confirmed = get(&mut c, l, "k");
    c.run_for(ms(20));
    assert_eq!(
        c.outcome(stale),
        Some(&read_ok(Some("old"))),
        "a local read misses the acknowledged write"
    );
    assert!(
        matches!(
            c.outcome(refused),
            Some(synod_core::Outcome::NotLeader { .. })
        ),
        "a follower never answers a linearizable read itself"
    );
    assert_eq!(c.outcome(confirmed), Some(&read_ok(Some("new"))));
}

/// Local reads are served only by a server that is up to date with an established
/// leader: one in an election sends the client elsewhere, so it never answers from
/// a history it may still truncate.
#[test]
fn zab_local_reads_are_refused_while_looking() {
    let (mut c, _) = cluster(3, 12);
    let early = local_get(&mut c, 1, "k");
    c.deliver_all();
    assert!(
        matches!(
            c.outcome(early),
            Some(synod_core::Outcome::NotLeader { leader: None })
        ),
        "{:?}",
        c.outcome(early)
    );
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    let t = put(&mut c, l, "k", "v");
    c.run_for(ms(50));
    assert_eq!(c.outcome(t), Some(&WRITTEN));
    for id in c.ids() {
        let r = local_get(&mut c, id, "k");
        c.deliver_all();
        assert_eq!(c.outcome(r), Some(&read_ok(Some("v"))), "n{id}");
    }
}
