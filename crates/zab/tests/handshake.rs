//! The follower handshake (discovery and synchronisation) under the message patterns
//! that broke it: late answers of earlier handshakes, lost acknowledgements.

mod by_hand;
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
    assert_eq!(c.kv_outcome(t), Some(WRITTEN));
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

/// Two leaders can propose the same epoch (each picks one above the accepted epochs
/// of the FOLLOWERINFOs it heard, and they may have heard the same ones). A server
/// promises an epoch to one leader only: to the other it answers ACKEPOCH with
/// `promised: false`, which does not count toward that leader's discovery quorum
/// (ZooKeeper's ACKEPOCH of epoch -1). Otherwise it would help both establish the
/// epoch, and the second one's TRUNC would cut what the first committed. Found by
/// the paper review of 2026-12-03; never reached by the election-driven sweeps.
#[test]
fn zab_4_1_an_epoch_is_promised_to_one_leader_only() {
    use synod_core::{Effects, Node, Recovered, Time};
    use synod_zab::{Epoch, PeerState, ZabConfig, ZabNode, ZabTimer};
    type Fx = Effects<Message, ZabTimer, synod_zab::Response>;
    let mut x = ZabNode::<synod_core::Kv>::new(ZabConfig::lan(n(3), (1..=3).map(n), 1));
    let mut now = Time::ZERO;
    x.on_start(now, Recovered::default(), &mut Fx::new());
    // Follows `leader`, as the others report; returns its FOLLOWERINFO's session.
    let follow = |x: &mut ZabNode, now: Time, leader: u64, other: u64| -> u64 {
        let mut fx = Fx::new();
        for (from, state) in [(leader, PeerState::Leading), (other, PeerState::Following)] {
            x.on_message(now, n(from), by_hand::round_one(leader, state), &mut fx);
        }
        assert_eq!(x.leader(), Some(n(leader)));
        fx.sends
            .iter()
            .find_map(|e| match e.msg {
                Message::FollowerInfo { session, .. } if e.to == n(leader) => Some(session),
                _ => None,
            })
            .expect("a FOLLOWERINFO to the leader")
    };
    let ack_of = |fx: &Fx| {
        fx.sends.iter().find_map(|e| match e.msg {
            Message::AckEpoch { promised, .. } => Some(promised),
            _ => None,
        })
    };

    let s1 = follow(&mut x, now, 1, 2);
    let mut fx = Fx::new();
    let info = Message::LeaderInfo {
        session: s1,
        epoch: Epoch(1),
    };
    x.on_message(now, n(1), info, &mut fx);
    assert_eq!(ack_of(&fx), Some(true), "promised to n1");
    assert_eq!(x.accepted_epoch(), Epoch(1));

    // n1 goes silent; n2 leads, proposing the same epoch.
    now += ms(1500);
    x.on_timer(now, ZabTimer::Tick, &mut Fx::new());
    assert!(x.is_looking());
    let s2 = follow(&mut x, now, 2, 1);
    let mut fx = Fx::new();
    let info = Message::LeaderInfo {
        session: s2,
        epoch: Epoch(1),
    };
    x.on_message(now, n(2), info, &mut fx);
    assert_eq!(ack_of(&fx), Some(false), "already promised to n1");
    assert!(fx.persist.is_empty(), "nothing new accepted");
}

/// The leader's side of the rule above: an ACKEPOCH that promised the epoch to
/// another leader never completes the discovery quorum; a promise does.
#[test]
fn zab_4_1_only_promises_complete_the_discovery_quorum() {
    use synod_core::{Effects, Node, Recovered, Time};
    use synod_zab::{Epoch, HistorySummary, PeerState, ZabConfig, ZabNode, ZabTimer};
    type Fx = Effects<Message, ZabTimer, synod_zab::Response>;
    let mut l = ZabNode::<synod_core::Kv>::new(ZabConfig::lan(n(1), (1..=3).map(n), 1));
    let now = Time::ZERO;
    l.on_start(now, Recovered::default(), &mut Fx::new());
    let mut fx = Fx::new();
    for from in [2, 3] {
        let note = by_hand::round_one(1, PeerState::Looking);
        l.on_message(now, n(from), note, &mut fx);
    }
    l.on_timer(now, ZabTimer::Finalize, &mut fx);
    assert!(l.is_leader());

    let session = (1 << 32) | 1;
    let mut fx = Fx::new();
    for from in [2, 3] {
        let info = Message::FollowerInfo {
            session,
            accepted_epoch: Epoch(0),
            history: HistorySummary::default(),
            observer: false,
        };
        l.on_message(now, n(from), info, &mut fx);
    }
    let tag = fx
        .persist_notify
        .expect("the leader accepts the epoch durably");
    l.on_persisted(now, tag, &mut Fx::new());
    let ack = |promised| Message::AckEpoch {
        session,
        epoch: Epoch(1),
        promised,
        current_epoch: Epoch(0),
        history: HistorySummary::default(),
    };
    let new_leaders = |fx: &Fx| {
        (fx.sends.iter())
            .filter(|e| matches!(e.msg, Message::NewLeader { .. }))
            .count()
    };
    let mut fx = Fx::new();
    l.on_message(now, n(2), ack(false), &mut fx);
    assert_eq!(new_leaders(&fx), 0, "n2 promised epoch 1 to someone else");
    assert_eq!(l.current_epoch(), Epoch(0));
    let mut fx = Fx::new();
    l.on_message(now, n(3), ack(true), &mut fx);
    assert_eq!(new_leaders(&fx), 2, "a quorum of promises: both are synced");
    assert_eq!(l.current_epoch(), Epoch(1));
}

/// DSN 2011 §IV-A at node level: a follower whose acceptedEpoch (3) is past the
/// epoch a leader offers (2) refuses it — no ACKEPOCH, nothing written — goes back
/// to looking, and is not taken by that leadership's notifications again (it would
/// otherwise join, be refused and look in a loop with no timer in it; found by
/// `harness/tests/fuzz_nodes.rs`). A later leadership of the same server, in an
/// epoch past the refused one, takes it, and its epoch is accepted.
#[test]
fn zab_discovery_a_follower_past_the_leaders_epoch_refuses_it_and_rejoins_only_a_later_epoch() {
    use synod_core::{Effects, Node, Recovered, Time};
    use synod_zab::{Epoch, Notification, PeerState, Vote, ZabConfig, ZabNode, ZabTimer, Zxid};
    type Fx = Effects<Message, ZabTimer, synod_zab::Response>;
    let mut x = ZabNode::<synod_core::Kv>::new(ZabConfig::lan(n(3), (1..=3).map(n), 1));
    let mut now = Time::ZERO;
    x.on_start(now, Recovered::default(), &mut Fx::new());
    // The settled ensemble's notifications (`leader` leading epoch `peer_epoch` of
    // election round `round`, `other` following); returns what `x` sent.
    let hear = |x: &mut ZabNode, now: Time, leader: u64, other: u64, peer_epoch, round| {
        let vote = Vote {
            leader: n(leader),
            zxid: Zxid::ZERO,
            peer_epoch: Epoch(peer_epoch),
        };
        let mut fx = Fx::new();
        for (from, state) in [(leader, PeerState::Leading), (other, PeerState::Following)] {
            let note = Notification {
                vote,
                election_epoch: round,
                state,
            };
            x.on_message(now, n(from), Message::Notification(note), &mut fx);
        }
        fx
    };
    let follower_info = |fx: &Fx, leader: u64| {
        fx.sends.iter().find_map(|e| match e.msg {
            Message::FollowerInfo {
                session,
                accepted_epoch,
                ..
            } if e.to == n(leader) => Some((session, accepted_epoch)),
            _ => None,
        })
    };
    let ack_of = |fx: &Fx| {
        fx.sends.iter().find_map(|e| match e.msg {
            Message::AckEpoch { promised, .. } => Some(promised),
            _ => None,
        })
    };
    let leader_info = |x: &mut ZabNode, now: Time, from: u64, session, epoch| {
        let mut fx = Fx::new();
        let info = Message::LeaderInfo {
            session,
            epoch: Epoch(epoch),
        };
        x.on_message(now, n(from), info, &mut fx);
        fx
    };

    // n1 offers epoch 3, which x accepts — and then n1 never establishes it.
    let fx = hear(&mut x, now, 1, 2, 0, 1);
    let (s1, _) = follower_info(&fx, 1).expect("a FOLLOWERINFO to n1");
    let fx = leader_info(&mut x, now, 1, s1, 3);
    assert_eq!(ack_of(&fx), Some(true));
    assert_eq!(x.accepted_epoch(), Epoch(3));
    now += ms(1500);
    x.on_timer(now, ZabTimer::Tick, &mut Fx::new());
    assert!(x.is_looking(), "n1 went silent");

    // n2 leads epoch 2 (established without x): x says it accepted 3, and refuses.
    let fx = hear(&mut x, now, 2, 1, 2, 5);
    assert_eq!(x.leader(), Some(n(2)));
    let (s2, accepted) = follower_info(&fx, 2).expect("a FOLLOWERINFO to n2");
    assert_eq!(accepted, Epoch(3), "FOLLOWERINFO carries acceptedEpoch");
    let fx = leader_info(&mut x, now, 2, s2, 2);
    assert_eq!(
        ack_of(&fx),
        None,
        "no ACKEPOCH for an epoch below acceptedEpoch"
    );
    assert!(fx.persist.is_empty(), "nothing written");
    assert!(x.is_looking(), "back to looking");
    assert_eq!(x.accepted_epoch(), Epoch(3));

    // The same leadership's notifications again: they no longer take x.
    let fx = hear(&mut x, now, 2, 1, 2, 5);
    assert!(x.is_looking(), "not rejoined");
    assert_eq!(
        follower_info(&fx, 2),
        None,
        "no FOLLOWERINFO to the refused leader"
    );

    // A later leadership of n2, past the refused epoch, takes x; epoch 4 is accepted.
    now += ms(100);
    let fx = hear(&mut x, now, 2, 1, 3, 6);
    assert_eq!(x.leader(), Some(n(2)));
    let (s3, _) = follower_info(&fx, 2).expect("a FOLLOWERINFO to n2's later leadership");
    let fx = leader_info(&mut x, now, 2, s3, 4);
    assert_eq!(ack_of(&fx), Some(true));
    assert_eq!(x.accepted_epoch(), Epoch(4));
}
