//! Reads: ZooKeeper's default local reads are sequential but not linearizable; the
//! leader-confirmed ones are linearizable.

mod common;

use common::*;
use synod_zab::{Request, Zxid};

fn local_get(c: &mut Cluster, id: u64, key: &str) -> Ticket {
    local_get_after(c, id, key, Zxid::ZERO)
}

fn local_get_after(c: &mut Cluster, id: u64, key: &str, after: Zxid) -> Ticket {
    let query = key.to_owned();
    c.propose(id, Request::LocalQuery { query, after })
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
    assert_eq!(c.kv_outcome(first), Some(WRITTEN));
    let fresh = local_get(&mut c, f, "k");
    c.deliver_all();
    assert_eq!(c.kv_outcome(fresh), Some(read_ok(Some("old"))), "caught up");

    c.isolate(f);
    let second = put(&mut c, l, "k", "new");
    c.deliver_all();
    assert_eq!(c.kv_outcome(second), Some(WRITTEN), "committed without f");

    let stale = local_get(&mut c, f, "k");
    let refused = get(&mut c, f, "k");
    let confirmed = get(&mut c, l, "k");
    c.run_for(ms(20));
    assert_eq!(
        c.kv_outcome(stale),
        Some(read_ok(Some("old"))),
        "a local read misses the acknowledged write"
    );
    assert!(
        matches!(
            c.kv_outcome(refused),
            Some(synod_core::Outcome::NotLeader { .. })
        ),
        "a follower never answers a linearizable read itself"
    );
    assert_eq!(c.kv_outcome(confirmed), Some(read_ok(Some("new"))));
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
            c.kv_outcome(early),
            Some(synod_core::Outcome::NotLeader { leader: None })
        ),
        "{:?}",
        c.kv_outcome(early)
    );
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    let t = put(&mut c, l, "k", "v");
    c.run_for(ms(50));
    assert_eq!(c.kv_outcome(t), Some(WRITTEN));
    for id in c.ids() {
        let r = local_get(&mut c, id, "k");
        c.deliver_all();
        assert_eq!(c.kv_outcome(r), Some(read_ok(Some("v"))), "n{id}");
    }
}

/// ZooKeeper's session guarantee, which makes its local reads sequentially
/// consistent: every answer carries a zxid, the client sends the latest it has seen
/// (`lastZxid`) with each local read, and a server that has not applied that far
/// sends it to the leader instead of answering from an older state. Here the client
/// wrote through the leader and then asks a follower cut off from it: refused, where
/// the read without `lastZxid` above was answered stale.
#[test]
fn zookeeper_a_client_never_reads_a_state_older_than_its_last_zxid() {
    let (mut c, _) = cluster(3, 13);
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    let f = c.ids().into_iter().find(|&i| i != l).expect("a follower");
    put(&mut c, l, "k", "old");
    c.run_for(ms(50));

    c.isolate(f);
    let write = put(&mut c, l, "k", "new");
    c.deliver_all();
    let Some(synod_core::Outcome::Done(answer)) = c.outcome(write) else {
        panic!("committed without f: {:?}", c.outcome(write));
    };
    let last = answer.zxid();
    assert!(last > Zxid::ZERO);

    let behind = local_get_after(&mut c, f, "k", last);
    c.run_for(ms(20));
    assert!(
        matches!(
            c.kv_outcome(behind),
            Some(synod_core::Outcome::NotLeader { leader: Some(_) })
        ),
        "a server behind the client's lastZxid does not answer: {:?}",
        c.kv_outcome(behind)
    );
    let at_leader = local_get_after(&mut c, l, "k", last);
    c.deliver_all();
    assert_eq!(c.kv_outcome(at_leader), Some(read_ok(Some("new"))));
    let Some(synod_core::Outcome::Done(answer)) = c.outcome(at_leader) else {
        unreachable!()
    };
    assert!(
        answer.zxid() >= last,
        "the state read includes the client's write"
    );
}
