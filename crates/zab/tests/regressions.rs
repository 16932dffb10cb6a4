//! One named test per ZooKeeper bug (and per Zab rule ZooKeeper had to learn): each
//! drives the event sequence of the bug on the deterministic cluster — crashes
//! between persistence steps, messages held back, reordered or lost — and asserts
//! the rule that keeps it from happening here. Every test is also checked online by
//! `ZabSafety` (one leader per epoch, agreement, primary integrity).

mod common;

use common::*;
use std::cell::RefCell;
use std::rc::Rc;
use synod_core::{codec, KvOp, NodeId, SessionCommand};
use synod_zab::message::Sync;
use synod_zab::{Epoch, Message, PeerState, Pos, ZabConfig, ZabNode, Zxid};

// ----- helpers ------------------------------------------------------------------------

/// Delivers the oldest queued message, or lets 10 ms pass on a quiet wire, until
/// `done` holds (one input at a time, so a test can stop right before a message).
fn step_until(c: &mut Cluster, what: &str, done: impl Fn(&Cluster) -> bool) {
    for _ in 0..100_000 {
        if done(c) {
            return;
        }
        if c.wire.is_empty() {
            c.tick(ms(10));
        } else {
            c.deliver_at(0);
        }
    }
    panic!("never happened: {what}");
}

/// Where the first queued message matching `f` is.
fn is_new_leader_to(l: u64, f: u64) -> impl Fn(NodeId, NodeId, &Message) -> bool {
    move |a, b, m| (a, b) == (n(l), n(f)) && matches!(m, Message::NewLeader { .. })
}

fn is_up_to_date_to(l: u64, f: u64) -> impl Fn(NodeId, NodeId, &Message) -> bool {
    move |a, b, m| (a, b) == (n(l), n(f)) && matches!(m, Message::UpToDate { .. })
}

fn is_propose(from: u64, to: u64) -> impl Fn(NodeId, NodeId, &Message) -> bool {
    move |a, b, m| (a, b) == (n(from), n(to)) && matches!(m, Message::Propose { .. })
}

/// The zxid of the last transaction on `id`'s disk: what a restart would recover.
fn disk_tail(c: &Cluster, id: u64) -> Zxid {
    let disk = c.disk(id).recover();
    match disk.log.last_key_value() {
        Some((_, bytes)) => {
            let (zxid, _): (Zxid, SessionCommand<KvOp>) =
                codec::decode(bytes).expect("a log entry");
            zxid
        }
        None => Zxid::ZERO,
    }
}

/// The zxids of `id`'s history, position by position.
fn zxids(c: &Cluster, id: u64) -> Vec<Zxid> {
    let log = c.node(id).log();
    let (base, _) = log.base();
    (base.0 + 1..=log.last_pos().0)
        .map(|p| log.zxid_at(Pos(p)).expect("held"))
        .collect()
}

/// The servers of `c` other than `ids`.
fn others(c: &Cluster, ids: &[u64]) -> Vec<u64> {
    c.ids().into_iter().filter(|i| !ids.contains(i)).collect()
}

/// Puts `k0..k{count}` through leader `l` and lets them commit everywhere.
fn commit_some(c: &mut Cluster, l: u64, count: usize) -> Vec<Ticket> {
    let tickets = (0..count)
        .map(|k| put(c, l, &format!("k{k}"), "v"))
        .collect();
    c.run_for(ms(100));
    tickets
}

fn assert_holds_committed(c: &Cluster, id: u64, count: usize) {
    let kv = c.node(id).state_machine();
    for k in 0..count {
        assert_eq!(kv.read(&format!("k{k}")), Some("v"), "n{id} lost k{k}");
    }
}

/// The leader `l` appends a transaction (`key`) that no other server receives: its
/// PROPOSALs are taken off the wire before delivery. Returns its zxid.
fn append_at_leader_only(c: &mut Cluster, l: u64, key: &str) -> Zxid {
    put(c, l, key, "uncommitted");
    let zxid = c.node(l).log().last_zxid();
    let lost = c.drop_all(|a, _, m| a == n(l) && matches!(m, Message::Propose { .. }));
    assert!(lost > 0, "proposals of {key} to lose");
    assert_eq!(disk_tail(c, l), zxid, "durable on n{l}");
    zxid
}

/// Checks after every input that server `id` never leads.
struct NeverLeads(u64);

impl Check<ZabNode> for NeverLeads {
    fn after_step(&mut self, id: NodeId, z: &ZabNode) {
        if id == n(self.0) {
            assert!(!z.is_leader(), "observer n{} leads", self.0);
        }
    }
}

/// Voters `1..=voters` and observers after them, every server knowing both sets.
fn cluster_with_observers(
    voters: u64,
    observers: u64,
    seed: u64,
) -> (Cluster, Rc<RefCell<ZabSafety>>) {
    let safety = Rc::new(RefCell::new(ZabSafety::default()));
    let build = move |id: NodeId| {
        let mut cfg = ZabConfig::lan(id, (1..=voters).map(n), seed * 1000 + id.0);
        cfg.observers = (voters + 1..=voters + observers).map(n).collect();
        ZabNode::new(cfg)
    };
    let mut checks: Vec<Box<dyn Check<ZabNode>>> = vec![Box::new(safety.clone())];
    for o in voters + 1..=voters + observers {
        checks.push(Box::new(NeverLeads(o)));
    }
    let c = Cluster::start(voters + observers, build, checks);
    (c, safety)
}

// ----- ZOOKEEPER-4685 -----------------------------------------------------------------

/// ZOOKEEPER-4685 ("Unnecessary system unavailability due to Leader shutdown when
/// follower sent ACK of PROPOSAL before sending ACK of NEWLEADER in log recovery"):
/// a ZooKeeper follower's sync thread logged a transaction and sent its ACK before
/// the QuorumPeer thread sent the ACK of NEWLEADER. The leader's `LearnerHandler`
/// expected the NEWLEADER ACK first, did not recognise the proposal ACK, never
/// collected its NEWLEADER quorum, shut down and forced a new election.
///
/// Here the NEWLEADER acknowledgement is a message type of its own
/// (`AckNewLeader`, naming its handshake) and a proposal ACK names a zxid: the
/// leader matches each by type. The sequence: the established leader syncs a
/// restarted follower (the third server then crashes, so commits need that
/// follower), proposes P while NEWLEADER is in flight, and the follower's ACK of P
/// reaches the leader *before* its NEWLEADER ACK. The rule: the proposal ACK is not
/// taken for the NEWLEADER ACK (no UPTODATE answers it, P does not commit on it), and
/// the NEWLEADER ACK that follows is still recognised — the follower is synced, the
/// leader keeps its epoch and P commits.
#[test]
fn zookeeper_4685_a_proposal_ack_overtaking_the_newleader_ack_is_not_taken_for_it() {
    let (mut c, _) = cluster(3, 21);
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    let epoch = c.node(l).established_epoch().expect("established");
    let [f, g] = others(&c, &[l])[..] else {
        unreachable!()
    };
    commit_some(&mut c, l, 3);
    c.crash(f);
    let t = put(&mut c, l, "while-f-was-down", "v");
    c.run_for(ms(100));
    assert_eq!(c.kv_outcome(t), Some(WRITTEN));

    // n{f} comes back and the leader sends it NEWLEADER (a DIFF).
    c.restart(f);
    step_until(&mut c, "NEWLEADER to the restarted follower", |c| {
        c.queued(is_new_leader_to(l, f)).is_some()
    });
    // From now on only n{f} can make a quorum with the leader.
    c.crash(g);
    let p = put(&mut c, l, "p", "v");
    let p_zxid = c.node(l).log().last_zxid();
    // n{f} takes NEWLEADER, then P: both acknowledgements are queued, in that order.
    let i = c.queued(is_new_leader_to(l, f)).expect("queued");
    c.deliver_at(i);
    let i = c.queued(is_propose(l, f)).expect("P to n{f}");
    c.deliver_at(i);
    let ack_nl = |a: NodeId, b: NodeId, m: &Message| {
        (a, b) == (n(f), n(l)) && matches!(m, Message::AckNewLeader { .. })
    };
    let ack_p = move |a: NodeId, b: NodeId, m: &Message| {
        (a, b) == (n(f), n(l)) && matches!(m, Message::Ack { zxid, .. } if *zxid == p_zxid)
    };
    assert!(c.queued(ack_nl).is_some() && c.queued(ack_p).is_some());

    // The ACK of P overtakes the NEWLEADER ACK.
    let i = c.queued(ack_p).expect("queued");
    c.deliver_at(i);
    assert!(
        c.queued(is_up_to_date_to(l, f)).is_none(),
        "a proposal ACK was taken for the NEWLEADER ACK (UPTODATE sent)"
    );
    assert!(
        c.node(l).commit() < p_zxid,
        "P committed on an unsynced follower's ACK"
    );
    assert_eq!(c.kv_outcome(p), None);

    // The NEWLEADER ACK is still recognised when it arrives.
    let i = c.queued(ack_nl).expect("queued");
    c.deliver_at(i);
    assert!(
        c.queued(is_up_to_date_to(l, f)).is_some(),
        "the NEWLEADER ACK after a proposal ACK was not recognised"
    );
    c.run_for(ms(300));
    assert_eq!(
        c.node(l).established_epoch(),
        Some(epoch),
        "the leader kept its epoch"
    );
    assert_eq!(
        c.kv_outcome(p),
        Some(WRITTEN),
        "P commits through the synced follower"
    );
    assert!(c.node(l).commit() >= p_zxid);

    c.restart(g);
    c.run_for(ms(1000));
    assert_converged(&c);
}

/// ZOOKEEPER-4685, the other direction (and the bug Synod's own chaos found, seed 100
/// of the test kit, before `Peer::synced_through`): a NEWLEADER acknowledgement
/// vouches for the history NEWLEADER carried, never for PROPOSALs the leader sent
/// after it. The sequence: as above, but P's PROPOSAL to the syncing follower is held
/// back while its NEWLEADER ACK arrives. The rule: with the third server down, P is
/// not committed until the follower acknowledges P itself.
#[test]
fn zookeeper_4685_a_newleader_ack_does_not_acknowledge_proposals_sent_after_newleader() {
    let (mut c, _) = cluster(3, 22);
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    let [f, g] = others(&c, &[l])[..] else {
        unreachable!()
    };
    commit_some(&mut c, l, 3);
    c.crash(f);
    commit_some(&mut c, l, 5);
    c.restart(f);
    step_until(&mut c, "NEWLEADER to the restarted follower", |c| {
        c.queued(is_new_leader_to(l, f)).is_some()
    });
    c.crash(g);
    let p = put(&mut c, l, "p", "v");
    let p_zxid = c.node(l).log().last_zxid();
    let (from, to, held) = c.drop_next(is_propose(l, f)).expect("P to n{f}, held back");

    let i = c.queued(is_new_leader_to(l, f)).expect("queued");
    c.deliver_at(i);
    assert!(c.node(f).is_synced_follower());
    assert!(c.node(f).log().last_zxid() < p_zxid, "n{f} lacks P");
    c.deliver_all(); // its NEWLEADER ACK (and nothing else: no time passes)
    assert!(
        c.count(|a, b, m| (a, b) == (n(f), n(l)) && matches!(m, Message::AckNewLeader { .. })) > 0
    );
    assert!(
        c.node(l).commit() < p_zxid,
        "P committed on a NEWLEADER ACK from a follower that does not hold it"
    );
    assert_eq!(c.kv_outcome(p), None);

    // P reaches n{f}; its own ACK commits it.
    c.send(from.0, to.0, held);
    c.deliver_all();
    assert_eq!(c.kv_outcome(p), Some(WRITTEN));
    assert_eq!(
        c.node(f)
            .log()
            .zxid_at(c.node(l).log().pos_of(p_zxid).expect("held")),
        Some(p_zxid)
    );

    c.restart(g);
    c.run_for(ms(1000));
    assert_converged(&c);
}

// ----- ZOOKEEPER-2845 -----------------------------------------------------------------

/// ZOOKEEPER-2845 ("Data inconsistency issue due to retain database in leader
/// election"): after ZOOKEEPER-2678 a server kept its in-memory database across
/// elections. Leader C logged T1 durably; followers A and B restarted before its
/// PROPOSAL reached them and formed a new quorum under B. C, looking again with its
/// retained database, synced with B advertising its last *processed* zxid T0 rather
/// than its log's T1, got an empty DIFF, and on its next restart replayed T1 from
/// its log: a transaction no one else had, applied on C only. (Only the
/// reproducing test of apache/zookeeper#310 was found in the stored material; this
/// trace follows the JIRA description from memory, not from its text.)
///
/// The rule: what a server advertises — its vote's zxid in election notifications,
/// its history in FOLLOWERINFO — is its durable log tail, so the leader's sync plan
/// sees (and truncates) T1. After a restart it advertises its durable tail again,
/// and nothing committed is lost.
#[test]
fn zookeeper_2845_a_server_advertises_its_durable_log_tail_and_its_uncommitted_tail_is_truncated() {
    let (mut c, _) = cluster(3, 23);
    c.run_for(ms(2000));
    let old = leader(&c).expect("a leader");
    let followers = others(&c, &[old]);
    commit_some(&mut c, old, 5);
    let t0 = c.node(old).log().last_zxid();
    let t1 = append_at_leader_only(&mut c, old, "lost");
    assert!(c.node(old).commit() < t1);

    // A and B restart and form a quorum without the old leader.
    c.isolate(old);
    for &id in &followers {
        c.crash(id);
    }
    for &id in &followers {
        c.restart(id);
    }
    c.run_for(ms(2000));
    let new = leader(&c).expect("a new leader");
    assert!(followers.contains(&new));
    assert!(c.node(new).established_epoch() > Some(t1.epoch));
    assert!(
        c.node(old).is_looking(),
        "the old leader lost its quorum and looks"
    );
    assert_eq!(c.node(old).log().last_zxid(), t1);
    assert!(c.node(old).commit() < t1, "T1 was never committed");

    // The old leader rejoins: it advertises T1, its durable tail, not T0.
    c.heal();
    let seen = c.delivered.len();
    step_until(&mut c, "FOLLOWERINFO from the old leader", |c| {
        c.queued(|a, _, m| a == n(old) && matches!(m, Message::FollowerInfo { .. }))
            .is_some()
    });
    assert_eq!(disk_tail(&c, old), t1);
    let i = c
        .queued(|a, _, m| a == n(old) && matches!(m, Message::FollowerInfo { .. }))
        .expect("queued");
    let Message::FollowerInfo { history, .. } = &c.wire[i].2 else {
        unreachable!()
    };
    assert_eq!(
        history.last(),
        t1,
        "FOLLOWERINFO advertises the durable tail"
    );
    for (a, _, m) in &c.delivered[seen..] {
        if let (true, Message::Notification(note)) = (*a == n(old), m) {
            if note.state == PeerState::Looking && note.vote.leader == n(old) {
                assert_eq!(note.vote.zxid, t1, "a vote advertises the durable tail");
            }
        }
    }
    // The leader's NEWLEADER truncates T1 (keeps T0).
    step_until(&mut c, "NEWLEADER to the old leader", |c| {
        c.queued(is_new_leader_to(new, old)).is_some()
    });
    let i = c.queued(is_new_leader_to(new, old)).expect("queued");
    let Message::NewLeader {
        sync: Sync::Diff { keep, .. },
        ..
    } = &c.wire[i].2
    else {
        panic!("a DIFF expected: {:?}", c.wire[i].2)
    };
    assert_eq!(*keep, t0, "TRUNC to T0");
    c.run_for(ms(1000));
    let t = put(&mut c, new, "after", "v");
    c.run_for(ms(200));
    assert_eq!(c.kv_outcome(t), Some(WRITTEN));
    assert_converged(&c);
    assert_eq!(zxids(&c, old), zxids(&c, new));
    assert_eq!(c.node(old).log().pos_of(t1), None, "T1 truncated");

    // Restarted, it holds neither T1 on disk nor in its state, and advertises its
    // (new) durable tail.
    c.crash(old);
    c.restart(old);
    assert_eq!(c.node(old).log().pos_of(t1), None);
    let tail = disk_tail(&c, old);
    assert_eq!(c.node(old).log().last_zxid(), tail);
    let votes: Vec<Zxid> = (c.wire.iter())
        .filter_map(|(a, _, m)| match m {
            Message::Notification(note) if *a == n(old) && note.vote.leader == n(old) => {
                Some(note.vote.zxid)
            }
            _ => None,
        })
        .collect();
    assert!(
        !votes.is_empty() && votes.iter().all(|&z| z == tail),
        "{votes:?} vs {tail}"
    );
    c.run_for(ms(2000));
    assert_converged(&c);
    for id in c.ids() {
        assert_eq!(
            c.node(id).state_machine().read("lost"),
            None,
            "n{id} applied T1"
        );
        assert_holds_committed(&c, id, 5);
        assert_eq!(c.node(id).state_machine().read("after"), Some("v"));
    }
}

// ----- ZOOKEEPER-335 ------------------------------------------------------------------

/// ZOOKEEPER-335 (and ZOOKEEPER-3608, which documents it): up to 3.3.3 a ZooKeeper
/// server kept its epoch only in its last zxid, and a prospective leader bumped it
/// before a quorum had followed it, so "an epoch tried" and "an epoch joined" were
/// one number (ZOOKEEPER-3608's summary: a "false leader" bumped its epoch, then
/// found followers of a smaller one and went back to FLE, in a loop), and a server
/// could enter an election with an epoch it never synced in. Zab 1.0 split it:
/// `acceptedEpoch` (the last LEADERINFO/NEWEPOCH acknowledged) and `currentEpoch`
/// (the last NEWLEADER acknowledged); elections compare `currentEpoch`.
///
/// The sequence: T1 is committed by the leader and one follower (A) only; the leader
/// crashes; A is elected, fixes epoch 2, and B acknowledges its LEADERINFO — but A's
/// NEWLEADER never comes (B's ACKEPOCH is lost and A crashes). The old leader
/// restarts and B and it elect. The rule: B's `acceptedEpoch` is 2 and its
/// `currentEpoch` still 1, and its votes carry 1 — so the old leader, which holds
/// the committed T1, wins, and B never leads (it sends no LEADERINFO). Presenting 2,
/// B's stale history would win the election; only the leader's give-up in
/// discovery (`try_start_sync`: the old leader's ACKEPOCH is ahead) would then keep
/// it from truncating T1, at the cost of another election (checked by making votes
/// carry `acceptedEpoch`) — hence the test asserts the votes and that B never leads.
#[test]
fn zookeeper_335_a_server_that_only_accepted_an_epoch_does_not_present_it_as_its_current_epoch() {
    let (mut c, safety) = cluster(3, 24);
    c.run_for(ms(2000));
    let old = leader(&c).expect("a leader");
    let e1 = c.node(old).established_epoch().expect("established");
    let [a, b] = others(&c, &[old])[..] else {
        unreachable!()
    };
    commit_some(&mut c, old, 5);
    // T1 reaches A only, and commits (the old leader and A are a quorum).
    let t = put(&mut c, old, "t1", "v");
    let t1 = c.node(old).log().last_zxid();
    c.drop_next(is_propose(old, b)).expect("T1 to B");
    c.deliver_all();
    assert_eq!(c.kv_outcome(t), Some(WRITTEN), "T1 committed");
    assert_eq!(c.node(b).log().pos_of(t1), None, "B lacks T1");
    c.crash(old);

    // A (holding T1) is elected; B accepts A's epoch, but its ACKEPOCH is lost.
    let ack_epoch = move |x: NodeId, y: NodeId, m: &Message| {
        (x, y) == (n(b), n(a)) && matches!(m, Message::AckEpoch { .. })
    };
    step_until(&mut c, "B's ACKEPOCH to A", |c| {
        c.queued(ack_epoch).is_some()
    });
    c.drop_next(ack_epoch).expect("queued");
    let e2 = c.node(b).accepted_epoch();
    assert!(e2 > e1);
    assert_eq!(c.node(a).accepted_epoch(), e2);
    c.crash(a);
    assert_eq!(
        c.node(b).current_epoch(),
        e1,
        "B never got NEWLEADER of {e2}"
    );
    // Both epochs are durable as they are: B restarts with acceptedEpoch 2 and
    // currentEpoch 1, and its first votes carry 1.
    let seen = c.delivered.len();
    c.crash(b);
    c.restart(b);
    let recovered = (c.node(b).accepted_epoch(), c.node(b).current_epoch());
    assert_eq!(recovered, (e2, e1), "B's (acceptedEpoch, currentEpoch)");
    let first: Vec<Epoch> = (c.wire.iter())
        .filter_map(|(x, _, m)| match m {
            Message::Notification(note) if *x == n(b) => Some(note.vote.peer_epoch),
            _ => None,
        })
        .collect();
    assert!(
        !first.is_empty() && first.iter().all(|&e| e == e1),
        "{first:?}"
    );

    // The old leader comes back; B and it elect.
    c.restart(old);
    c.run_for(ms(4000));
    for (x, _, m) in &c.delivered[seen..] {
        if let (true, Message::Notification(note)) = (*x == n(b), m) {
            if note.vote.leader == n(b) {
                assert_eq!(
                    note.vote.peer_epoch, e1,
                    "B presented an epoch it only accepted"
                );
            }
        }
    }
    let b_led = (c.delivered[seen..].iter())
        .any(|(x, _, m)| *x == n(b) && matches!(m, Message::LeaderInfo { .. }));
    assert!(!b_led, "B, with a stale history, was elected");
    assert_eq!(
        leader(&c),
        Some(old),
        "the server with the committed T1 leads"
    );
    let e3 = c.node(old).established_epoch().expect("established");
    assert!(e3 > e2, "a new epoch above every accepted one");
    assert_eq!(c.node(b).current_epoch(), e3);
    assert!(
        !safety.borrow().leaders.contains_key(&e2),
        "{e2} was never established"
    );
    c.restart(a);
    c.run_for(ms(2000));
    assert_converged(&c);
    for id in c.ids() {
        assert_eq!(
            c.node(id).state_machine().read("t1"),
            Some("v"),
            "n{id} lost T1"
        );
        assert_holds_committed(&c, id, 5);
    }
}

// ----- ZOOKEEPER-1154 -----------------------------------------------------------------

/// ZOOKEEPER-1154 ("Data inconsistency when the node(s) with the highest zxid is not
/// present at the time of leader election"): leader A logged 74 (epoch 7) and the
/// whole ensemble crashed before B and C logged it; B and C formed epoch 8 and
/// committed 81; A came back advertising 74, and since 71 ≤ 74 ≤ 81 (B's committed
/// log range) B sent it a DIFF of 81 — without the TRUNC to 73 that 74 needed. A kept
/// 74, a transaction nobody else had.
///
/// The rule: a follower whose history diverges from the leader's (here an
/// uncommitted suffix of an abandoned epoch) is truncated to the longest common
/// prefix, then diffed: NEWLEADER says "keep T0", and the follower ends with the
/// leader's history position by position (here the leader's epoch-2 transactions
/// outnumber the divergent suffix, so they land on the very positions it held).
#[test]
fn zookeeper_1154_a_follower_with_a_divergent_suffix_of_an_old_epoch_is_truncated_not_diffed() {
    let (mut c, _) = cluster(3, 25);
    c.run_for(ms(2000));
    let old = leader(&c).expect("a leader");
    commit_some(&mut c, old, 5);
    let t0 = c.node(old).log().last_zxid();
    append_at_leader_only(&mut c, old, "lost1");
    let suffix_end = append_at_leader_only(&mut c, old, "lost2");
    assert_eq!(
        c.node(old).log().pos_of(t0).map(|p| p.0 + 2),
        Some(c.node(old).log().last_pos().0)
    );

    // The whole ensemble crashes; the other two form a new epoch and commit in it.
    for id in c.ids() {
        c.crash(id);
    }
    for id in others(&c, &[old]) {
        c.restart(id);
    }
    c.run_for(ms(2000));
    let new = leader(&c).expect("a new leader");
    let epoch = c.node(new).established_epoch().expect("established");
    assert!(epoch > suffix_end.epoch);
    for k in 0..3 {
        let t = put(&mut c, new, &format!("new{k}"), "v");
        c.run_for(ms(100));
        assert_eq!(c.kv_outcome(t), Some(WRITTEN));
    }

    // The old leader comes back with T0, lost1, lost2 on disk.
    c.restart(old);
    assert_eq!(c.node(old).log().last_zxid(), suffix_end);
    step_until(&mut c, "NEWLEADER to the old leader", |c| {
        c.queued(is_new_leader_to(new, old)).is_some()
    });
    let i = c.queued(is_new_leader_to(new, old)).expect("queued");
    let Message::NewLeader {
        sync: Sync::Diff { keep, txns },
        ..
    } = &c.wire[i].2
    else {
        panic!("a DIFF expected: {:?}", c.wire[i].2)
    };
    assert_eq!(
        *keep, t0,
        "TRUNC to the common prefix T0, below its tail {suffix_end}"
    );
    let sent: Vec<Zxid> = txns.iter().map(|t| t.zxid).collect();
    let leaders: Vec<Zxid> = zxids(&c, new).into_iter().filter(|&z| z > t0).collect();
    assert_eq!(sent, leaders, "then the leader's transactions after T0");
    c.run_for(ms(1000));
    assert_converged(&c);
    assert_eq!(
        zxids(&c, old),
        zxids(&c, new),
        "the leader's history, position by position"
    );

    c.crash(old);
    c.restart(old);
    c.run_for(ms(2000));
    assert_converged(&c);
    for id in c.ids() {
        let kv = c.node(id).state_machine();
        assert_eq!((kv.read("lost1"), kv.read("lost2")), (None, None), "n{id}");
        assert_eq!(kv.read("new2"), Some("v"), "n{id}");
        assert_holds_committed(&c, id, 5);
    }
}

// ----- observers ----------------------------------------------------------------------

/// Observers (ZooKeeper 3.3's non-voting learners; also ZOOKEEPER-2959, where an
/// observer's accepted epoch and LEADERINFO ack were counted in discovery): an
/// observer learns every committed transaction and converges, but never counts
/// toward a quorum — in discovery, synchronisation or broadcast — and never leads.
///
/// The sequence: 3 voters and an observer commit; two voters crash; the leader
/// proposes P, which only the observer receives. The rule: P does not commit on
/// leader + observer, the leader gives the epoch up, the surviving voter and the
/// observer elect nobody (the observer, though it holds the longest history, never
/// leads — checked after every input); once the voters return a voter leads, P
/// (never committed) is truncated, and the observer converges with the rest.
#[test]
fn zab_observers_learn_every_commit_but_never_count_toward_a_quorum_nor_lead() {
    let (mut c, safety) = cluster_with_observers(3, 1, 26);
    let observer = 4;
    c.run_for(ms(2000));
    let l = leader(&c).expect("a leader");
    assert_ne!(l, observer);
    commit_some(&mut c, l, 5);
    assert_converged(&c);
    assert_holds_committed(&c, observer, 5);
    assert!(c.node(observer).is_synced_follower());

    // Two voters down: the leader and the observer are no quorum.
    let voters = others(&c, &[l, observer]);
    for &v in &voters {
        c.crash(v);
    }
    let p = put(&mut c, l, "p", "v");
    let p_zxid = c.node(l).log().last_zxid();
    c.deliver_all();
    assert_eq!(
        c.node(observer).log().last_zxid(),
        p_zxid,
        "the observer holds P"
    );
    assert!(
        c.node(l).commit() < p_zxid,
        "P committed on the leader and an observer"
    );
    c.run_for(ms(3000));
    assert_ne!(c.kv_outcome(p), Some(WRITTEN));
    assert_eq!(
        leader(&c),
        None,
        "one voter and an observer established an epoch"
    );
    let epochs = safety.borrow().leaders.len();

    // The leader goes too; the two voters come back and elect one of them.
    c.crash(l);
    for &v in &voters {
        c.restart(v);
    }
    c.run_for(ms(2000));
    let new = leader(&c).expect("a new leader");
    assert!(voters.contains(&new));
    assert_eq!(safety.borrow().leaders.len(), epochs + 1);
    c.restart(l);
    c.run_for(ms(2000));
    let t = put(&mut c, new, "after", "v");
    c.run_for(ms(200));
    assert_eq!(c.kv_outcome(t), Some(WRITTEN));
    assert_converged(&c);
    let kv = c.node(observer).state_machine();
    assert_eq!((kv.read("p"), kv.read("after")), (None, Some("v")));
    assert_holds_committed(&c, observer, 5);
    assert_eq!(zxids(&c, observer), zxids(&c, new));
}

// ----- the leader gives up if a follower is ahead -------------------------------------

/// The leader gives up if a follower of its discovery quorum is ahead (ZooKeeper's
/// `Leader.waitForEpochAck`: "Follower is ahead of the leader"; DSN 2011 §IV-A has the
/// leader adopt the most up-to-date history of its quorum instead). ZooKeeper's
/// leader never fetches histories, so a leader whose history is shorter than a
/// follower's — which may hold transactions the leader cannot tell are uncommitted —
/// must not TRUNC that follower; it steps down and lets FLE elect the better one.
/// (No JIRA thread for this rule turned up; it is from ZooKeeper's source.)
///
/// The sequence: the old leader appends T1 that nobody receives and crashes; the
/// other two elect one of them (B), whose discovery waits for an ACKEPOCH (A's is
/// lost). The old leader restarts and, hearing A and B settled on B, joins B — the
/// join path compares no zxids — and its ACKEPOCH (history through T1, same
/// `currentEpoch`) completes B's quorum. The rule: B gives up instead of syncing (no
/// epoch of B's is established), a new election follows, the server holding T1
/// leads, T1 is kept and committed, and nothing committed is lost.
#[test]
fn zab_discovery_a_leader_behind_a_follower_of_its_quorum_gives_up() {
    let (mut c, safety) = cluster(3, 27);
    c.run_for(ms(2000));
    let old = leader(&c).expect("a leader");
    commit_some(&mut c, old, 5);
    let t1 = append_at_leader_only(&mut c, old, "t1");
    c.crash(old);

    // The other two elect B; A's ACKEPOCH is lost, so B's discovery waits.
    let rest = others(&c, &[old]);
    let is_ack_epoch =
        |x: NodeId, _: NodeId, m: &Message| x != n(old) && matches!(m, Message::AckEpoch { .. });
    step_until(&mut c, "an ACKEPOCH to the new leader", |c| {
        c.queued(is_ack_epoch).is_some()
    });
    let (from, b_id, _) = c.drop_next(is_ack_epoch).expect("queued");
    let (a, b) = (from.0, b_id.0);
    assert!(rest.contains(&a) && rest.contains(&b));
    assert!(c.node(b).is_leader() && c.node(b).established_epoch().is_none());
    let e2 = c.node(b).accepted_epoch();
    assert_eq!(c.node(a).following_epoch(), Some(e2));

    // The old leader restarts and joins B's (settled) leadership.
    c.restart(old);
    let ahead = move |x: NodeId, y: NodeId, m: &Message| {
        (x, y) == (n(old), n(b)) && matches!(m, Message::AckEpoch { .. })
    };
    step_until(&mut c, "the old leader's ACKEPOCH to B", |c| {
        c.queued(ahead).is_some()
    });
    let i = c.queued(ahead).expect("queued");
    let Message::AckEpoch {
        history,
        current_epoch,
        ..
    } = &c.wire[i].2
    else {
        unreachable!()
    };
    assert_eq!(
        (history.last(), *current_epoch),
        (t1, c.node(b).current_epoch())
    );
    assert!(c.node(b).log().last_zxid() < t1, "B's history is shorter");
    c.deliver_at(i);
    assert!(
        c.node(b).is_looking(),
        "B gave up leading behind a follower"
    );
    assert!(
        !safety.borrow().leaders.contains_key(&e2),
        "{e2} established behind a follower"
    );

    // A new election: the server holding T1 leads, and T1 is kept.
    c.run_for(ms(4000));
    assert_eq!(leader(&c), Some(old));
    assert!(c.node(old).established_epoch() > Some(e2));
    assert_converged(&c);
    for id in c.ids() {
        assert!(c.node(id).log().pos_of(t1).is_some(), "n{id} lacks T1");
        assert_eq!(c.node(id).state_machine().read("t1"), Some("uncommitted"));
        assert_holds_committed(&c, id, 5);
    }
}
