//! The follower handshake (discovery and synchronisation) under the message patterns
//! that broke it: late answers of earlier handshakes, lost acknowledgements.

mod common;

use common::*;
use synod_core::NodeId;
use synod_zab::Message;

fn is_ack_epoch(from: u64, to: u64) -> impl Fn(NodeId, NodeId, &Message) -> bool {
    move |a, b, m| (a, b) == (n(from), n(to)) && matches!(m, Message::AckEpoch { .. })
}

fn is_propose_to(to: u64) -> impl Fn(NodeId, NodeId, &Message) -> bool {
    move |_, b, m| b == n(to) && matches!(m, Message::Propose { .. })
}

/// Makes follower `f` miss a proposal: the next one shows it the gap and it starts a
/// new handshake (FOLLOWERINFO with a new session).
fn force_resync(c: &mut Cluster, leader: u64, f: u64) {
    put(c, leader, "gap", "a");
    assert!(
        c.drop_next(is_propose_to(f)).is_some(),
        "a proposal to n{f} to lose"
    );
    put(c, leader, "gap", "b");
}

/// Found by `synod check --protocol zab --faults all` (the `delay` fault, seed 1625 of
/// the register workload): an ACKEPOCH held back for seconds reached the leader after
/// the follower had synced again, received and committed more, and begun a third
/// handshake. The leader took the old history for the new handshake, planned a TRUNC
/// from it, and the follower's NEWLEADER would have cut committed transactions (the
/// follower's `assert!` stopped it). ACKEPOCH names its handshake now, and a late one
/// is ignored.
#[test]
fn zab_4_a_late_ackepoch_of_an_earlier_handshake_is_not_taken_for_the_current_one() {
    let (mut c, _) = cluster(3, 7);
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    let f = c.ids().into_iter().find(|&i| i != l).expect("a follower");
    for k in 0..5 {
        put(&mut c, l, &format!("k{k}"), "v");
    }
    c.run_for(ms(100));

    // Handshake 1: hold its ACKEPOCH back.
    force_resync(&mut c, l, f);
    while !c.wire.iter().any(|(a, b, m)| is_ack_epoch(f, l)(*a, *b, m)) {
        c.deliver_at(0);
    }
    let (from, to, stale) = c.drop_next(is_ack_epoch(f, l)).expect("held back");
    // The follower starts over, syncs, and commits more.
    c.run_for(ms(600));
    assert!(c.node(f).is_synced_follower(), "synced again");
    for k in 0..20 {
        put(&mut c, l, &format!("more{k}"), "v");
    }
    c.run_for(ms(100));
    let committed = c.node(f).commit();
    assert!(
        committed
            > c.node(f)
                .log()
                .zxid_at(synod_zab::Pos(6))
                .unwrap_or_default()
    );

    // Handshake 3: the old ACKEPOCH arrives first.
    force_resync(&mut c, l, f);
    while !c
        .wire
        .iter()
        .any(|(a, b, m)| (*a, *b) == (n(l), n(f)) && matches!(m, Message::LeaderInfo { .. }))
    {
        c.deliver_at(0);
    }
    c.send(from.0, to.0, stale);
    c.run_for(ms(600));

    assert!(c.node(f).commit() >= committed, "nothing committed was cut");
    let t = put(&mut c, l, "after", "x");
    c.run_for(ms(200));
    assert_eq!(c.outcome(t), Some(&WRITTEN));
    assert_converged(&c);
}

/// ZOOKEEPER-3911 / ZOOKEEPER-4646 (a follower acknowledged NEWLEADER before the
/// transactions of its DIFF were durable; a quorum crash then lost a committed one)
/// and ZOOKEEPER-4643 (`currentEpoch` durable before the synced history; the stale
/// server then won an election and truncated a committed transaction). The rule: by
/// the time a follower's NEWLEADER acknowledgement is on the wire, its storage holds
/// the whole synced history *and* the new `currentEpoch` — here one batch — so a crash
/// right after the acknowledgement loses neither.
#[test]
fn zookeeper_3911_4643_newleader_is_acknowledged_only_once_history_and_epoch_are_durable() {
    let (mut c, _) = cluster(3, 11);
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    let f = c.ids().into_iter().find(|&i| i != l).expect("a follower");
    c.crash(f);
    for k in 0..10 {
        put(&mut c, l, &format!("k{k}"), "v");
    }
    c.run_for(ms(100));
    let leader_last = c.node(l).log().last_zxid();
    let epoch = c.node(l).established_epoch().expect("established");
    c.restart(f);
    let acked = |a: NodeId, b: NodeId, m: &Message| {
        (a, b) == (n(f), n(l)) && matches!(m, Message::AckNewLeader { .. })
    };
    for _ in 0..10_000 {
        if c.wire.iter().any(|(a, b, m)| acked(*a, *b, m)) {
            break;
        }
        if c.wire.is_empty() {
            c.tick(ms(10));
        } else {
            c.deliver_at(0);
        }
    }
    assert!(
        c.wire.iter().any(|(a, b, m)| acked(*a, *b, m)),
        "n{f} acked NEWLEADER"
    );
    // What the acknowledgement vouches for is on n{f}'s disk already.
    let disk = c.disk(f).recover();
    let current: synod_zab::Epoch =
        synod_core::codec::decode(&disk.meta["zab.current_epoch"]).expect("currentEpoch");
    assert_eq!(current, epoch);
    let (&pos, bytes) = disk.log.last_key_value().expect("a synced history");
    let (last, _): (
        synod_zab::Zxid,
        synod_core::SessionCommand<synod_core::KvOp>,
    ) = synod_core::codec::decode(bytes).expect("an entry");
    assert_eq!(last, leader_last, "the whole DIFF, through position {pos}");
    // Crashing right after the acknowledgement loses nothing.
    c.crash(f);
    c.restart(f);
    assert_eq!(c.node(f).log().last_zxid(), leader_last);
    assert_eq!(c.node(f).current_epoch(), epoch);
    c.run_for(ms(1000));
    assert_converged(&c);
}
