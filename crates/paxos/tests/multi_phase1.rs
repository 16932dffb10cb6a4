//! Multi-Paxos phase 1 and leader change: one phase 1 for every slot, the takeover
//! (P2c per slot, no-ops for holes), refusal of a deposed leader, and the liveness
//! machinery around leader election (randomised timeouts, stickiness, check-quorum).

mod common;

use common::multi::*;
use common::*;
use std::cell::Cell;
use synod_core::{KvOp, Outcome};
use synod_paxos::{Ballot, Message, MultiPaxosTimer, Request, Slot, Value};

fn value_at(c: &MultiCluster, id: u64, slot: u64) -> Option<Value> {
    c.node(id).log().chosen(Slot(slot)).cloned()
}

fn put_value(v: &Value) -> Option<&str> {
    match v {
        Value::Command(cmd) => match &cmd.op {
            KvOp::Put { value, .. } => Some(value),
            _ => None,
        },
        Value::Noop => None,
    }
}

/// Lets the stickiness window (`election_timeout_min`) pass without firing timers.
fn wait_out_leases(c: &mut MultiCluster) {
    c.now += ms(200);
}

/// "Paxos Made Simple" §3: the leader executes phase 1 "for infinitely many
/// instances" with one message — afterwards every command costs phase 2 only.
#[test]
fn multipaxos_one_phase1_covers_all_slots() {
    // init
    let mut c = multi_cluster(3);

    // act
    c.elect(1);
    for i in 0..20 {
        c.put(1, "k", &i.to_string());
        c.deliver_all();
    }

    // check: two prepares (one per peer) for twenty slots
    assert_eq!(c.count_kind("Prepare"), 2);
    assert_eq!(c.count_kind("Promise"), 2);
    assert_eq!(c.count_kind("Accept"), 40);
    assert_eq!(c.node(1).first_unchosen(), Slot(21));
    assert_eq!(c.node(1).state_machine().read("k"), Some("19"));
}

/// §3: "… the leader … proposes a special 'no-op' command that leaves the state
/// unchanged" for the holes it finds, so later commands can execute. Slots 1 and 3
/// were accepted by n2, slot 2 by the crashed leader alone: n2 takes over with the
/// accepted values at 1 and 3 and a no-op at 2.
#[test]
fn multipaxos_takeover_fills_holes_with_noops() {
    // init: n1 leads and proposes three commands; n2 gets the accepts for slots 1
    // and 3 only, n3 none; n1 crashes before it learns anything chosen
    let mut c = multi_cluster(3);
    c.elect(1);
    c.put(1, "a", "1");
    c.put(1, "b", "2");
    c.put(1, "c", "3");
    let lost = |_, to: synod_core::NodeId, m: &Message| match m {
        Message::Accept { first, .. } => to == n(3) || *first == Slot(2),
        Message::Accepted { .. } => true,
        _ => false,
    };
    c.deliver_all_dropping(lost);
    c.crash(1);

    // act
    wait_out_leases(&mut c);
    c.elect(2);
    c.run_for(ms(100)); // n3 learns what is chosen from the next heartbeat

    // check: one accept per peer re-proposes slots 1..=3 with the hole filled
    let takeover: Vec<usize> = c
        .delivered
        .iter()
        .filter_map(|(from, _, m)| match m {
            Message::Accept { values, .. } if from.0 == 2 => Some(values.len()),
            _ => None,
        })
        .collect();
    assert_eq!(takeover, vec![3]);
    for id in [2, 3] {
        assert_eq!(value_at(&c, id, 2), Some(Value::Noop), "n{id}");
        assert_eq!(value_at(&c, id, 1).as_ref().and_then(put_value), Some("1"));
        assert_eq!(value_at(&c, id, 3).as_ref().and_then(put_value), Some("3"));
    }
    let kv = c.node(2).state_machine();
    assert_eq!(
        (kv.read("a"), kv.read("b"), kv.read("c")),
        (Some("1"), None, Some("3"))
    );
}

/// P2c, slot by slot: when acceptors report different values for a slot, the new
/// leader proposes the one accepted in the highest ballot.
#[test]
fn multipaxos_takeover_reproposes_the_highest_accepted_value_per_slot() {
    // init: five nodes. n1 (first ballot) gets X accepted at slot 1 by n2 only.
    let mut c = multi_cluster(5);
    c.elect(1);
    c.put(1, "k", "X");
    let only_to = |dest: u64| {
        move |_, to: synod_core::NodeId, m: &Message| {
            (matches!(m, Message::Accept { .. }) && to != n(dest))
                || matches!(m, Message::Accepted { .. })
        }
    };
    c.deliver_all_dropping(only_to(2));
    c.crash(1);
    // n3 leads a higher ballot with n4 and n5 (n2 is cut off) and gets Y accepted at
    // slot 1 by n4 only.
    wait_out_leases(&mut c);
    c.isolate(2);
    c.elect(3);
    c.put(3, "k", "Y");
    c.deliver_all_dropping(only_to(4));
    c.crash(3);
    c.heal();

    // act: n5 leads with n2 and n4
    wait_out_leases(&mut c);
    c.elect(5);
    c.run_for(ms(100));

    // check
    assert!(c
        .node(2)
        .accepted_at(Slot(1))
        .is_some_and(|(b, _)| b.node == n(5)));
    for id in [2, 4, 5] {
        assert_eq!(
            value_at(&c, id, 1).as_ref().and_then(put_value),
            Some("Y"),
            "n{id}"
        );
        assert_eq!(c.node(id).state_machine().read("k"), Some("Y"), "n{id}");
    }
}

/// P1a for all slots: once an acceptor promised a higher ballot, it refuses the
/// accepts a deposed leader sends late, and tells it who leads; the deposed leader
/// steps down and, unable to vouch for its proposal, answers its client `Unknown`.
#[test]
fn multipaxos_deposed_leaders_late_accepts_are_rejected() {
    // init: n1 proposes "old"; its accepts are held up in the network
    let mut c = multi_cluster(3);
    c.elect(1);
    let t = c.put(1, "k", "old");
    let late: Vec<Wire<synod_paxos::MultiPaxosNode>> = c
        .wire
        .drain(..)
        .filter(|(_, _, m)| kind(m) == "Accept")
        .collect();
    assert_eq!(late.len(), 2);
    // n2 leads a higher ballot and chooses "new" at slot 1
    c.isolate(1);
    wait_out_leases(&mut c);
    c.elect(2);
    c.put(2, "k", "new");
    c.deliver_all();
    c.heal();

    // act: the late accepts arrive
    for (from, to, m) in late {
        c.send(from.0, to.0, m);
    }
    c.deliver_all();

    // check
    assert_eq!(
        c.count_kind("Accepted"),
        1,
        "only n2's accept (by n3) was acknowledged"
    );
    assert!(c.count_kind("Nack") >= 2);
    assert!(c
        .node(3)
        .accepted_at(Slot(1))
        .is_some_and(|(b, _)| b.node == n(2)));
    assert!(!c.node(1).is_leader());
    assert_eq!(c.node(1).leader(), Some(n(2)));
    assert_eq!(c.outcome(t), Some(&Outcome::Unknown));
    c.run_for(ms(300));
    c.assert_converged();
    assert_eq!(c.node(1).state_machine().read("k"), Some("new"));
}

/// An acceptor's promise and acceptances survive a restart ("Paxos Made Simple"
/// §2.3), slot by slot: it still refuses a lower ballot and still reports what it
/// accepted.
#[test]
fn multipaxos_acceptor_restart_keeps_its_promise_and_acceptances() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    c.put(1, "k", "v");
    c.deliver_all_dropping(|_, _, m| kind(m) == "Accepted");
    let promised = c.node(2).promised();

    // act
    c.crash(2);
    c.restart(2);
    let lower = Ballot {
        round: promised.round - 1,
        node: n(3),
    };
    c.send(3, 2, prepare(lower));
    c.deliver_all();

    // check
    assert_eq!(c.node(2).promised(), promised);
    assert!(c
        .node(2)
        .accepted_at(Slot(1))
        .is_some_and(|(b, _)| b == promised));
    assert!(c.count(|from, _, m| from == n(2) && kind(m) == "Nack") == 1);
}

/// §2.4: a distinguished proposer is elected "using randomness or real time": two
/// nodes that time out together both run phase 1; refusals make the loser back off
/// for a random election timeout, and one leader emerges. Over many seeds.
#[test]
fn multipaxos_dueling_candidates_converge_on_one_leader() {
    let contested = Cell::new(0);
    for_seeds(0..100, |seed| {
        // init
        let mut c = build(3 + 2 * (seed % 2), seed, |_| {});

        // act: two candidates at once, messages interleaved
        c.fire(1, MultiPaxosTimer::Election);
        c.fire(2, MultiPaxosTimer::Election);
        c.run_for(ms(2_000));

        // check
        let leaders: Vec<u64> = c
            .ids()
            .into_iter()
            .filter(|&id| c.node(id).is_leader())
            .collect();
        assert_eq!(leaders.len(), 1, "{leaders:?}");
        c.assert_converged();
        contested.set(contested.get() + usize::from(c.count_kind("Nack") > 0));
    });
    assert!(
        contested.get() >= 50,
        "only {} contested elections",
        contested.get()
    );
}

/// Stickiness: a node cut off from the cluster campaigns in vain and raises its own
/// promise; when it returns, its prepares are refused by acceptors that hear from a
/// live leader, and the leader runs phase 1 once more above the stray promise
/// (instead of losing leadership to the returning node).
#[test]
fn multipaxos_returning_node_does_not_depose_a_live_leader() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    c.isolate(3);
    c.run_for(ms(2_000));
    let stray = c.node(3).promised();
    assert!(
        stray.node == n(3) && stray > c.node(1).promised(),
        "n3 campaigned alone"
    );

    // act
    c.heal();
    c.run_for(ms(1_000));

    // check
    assert_eq!(c.leader(), Some(1));
    assert!(c.node(1).promised() > stray);
    c.assert_converged();
    let w = c.put(1, "k", "v");
    c.deliver_all();
    assert_eq!(c.outcome(w), Some(&WRITTEN));
}

/// Stickiness at the acceptor itself: a prepare above the promise, from a node
/// other than the live leader, is refused by the leader and by a follower that
/// heard from it within `election_timeout_min` — neither raises its promise. Once
/// the follower's window has passed without word from the leader it promises,
/// exactly `election_timeout_min` after the last word.
#[test]
fn multipaxos_stickiness_refuses_a_higher_prepare_while_the_leader_is_live() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    let led = c.node(1).promised();
    let higher = Ballot {
        round: led.round + 1,
        node: n(3),
    };
    let prepare = prepare(higher);

    // act
    c.send(3, 1, prepare.clone());
    c.send(3, 2, prepare.clone());
    c.deliver_all();

    // check
    for id in [1, 2] {
        assert_eq!(c.node(id).promised(), led, "n{id} raised its promise");
        let nacks = c.count_sent(id, 3, "Nack");
        assert_eq!(nacks, 1, "n{id} did not refuse");
    }
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(2).leader(), Some(n(1)));

    // act: the follower's window (`election_timeout_min`, half-open) has just
    // passed without word from the leader
    c.now += ms(150);
    c.send(3, 2, prepare);
    c.deliver_all();

    // check
    assert_eq!(c.node(2).promised(), higher);
    assert_eq!(c.node(2).leader(), None);
    let promises = c.count_sent(2, 3, "Promise");
    assert_eq!(promises, 1);
}

/// Phase 1(b) for a duplicate: a prepare of the very ballot the acceptor promised
/// (the network repeated it after the candidate won) gets the same promise again,
/// not a refusal, and the acceptor keeps following the leader of that ballot.
#[test]
fn multipaxos_duplicate_prepare_is_promised_again_and_keeps_the_leader() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    let (_, _, prepare) = c
        .delivered
        .iter()
        .find(|(f, t, m)| (*f, *t) == (n(1), n(2)) && kind(m) == "Prepare")
        .cloned()
        .expect("n1 prepared n2");
    let answers = |c: &MultiCluster, k: &str| c.count_sent(2, 1, k);
    assert_eq!((answers(&c, "Promise"), answers(&c, "Nack")), (1, 0));

    // act
    c.send(1, 2, prepare);
    c.deliver_all();

    // check
    assert_eq!((answers(&c, "Promise"), answers(&c, "Nack")), (2, 0));
    assert_eq!(
        c.node(2).leader(),
        Some(n(1)),
        "the duplicate unseated the leader"
    );
    assert!(c.node(1).is_leader());
    c.assert_converged();
}

/// A candidate's phase 1 ends at the first refusal that reports a higher promise
/// ("Paxos Made Simple" §2.3: the acceptor informs the proposer "so it can abandon
/// its proposal"), and its next ballot tops that promise. A refusal of an earlier
/// campaign of its own changes nothing.
#[test]
fn multipaxos_candidate_refused_for_a_higher_promise_gives_up_at_once() {
    // init: five nodes, so one refusal alone leaves a phase-1 quorum possible
    let mut c = multi_cluster(5);
    c.fire(1, MultiPaxosTimer::Election);
    c.wire.clear();
    let ballot = c.node(1).promised();
    let nack = |ballot: Ballot, round: u64| Message::Nack {
        ballot,
        promised: Ballot { round, node: n(2) },
        leader: None,
    };
    let earlier = Ballot {
        round: ballot.round - 1,
        node: n(1),
    };

    // act
    c.send(2, 1, nack(earlier, ballot.round + 4));
    c.deliver_all();

    // check
    assert!(
        c.node(1).is_candidate(),
        "a refusal of another campaign counted"
    );

    // act
    c.send(2, 1, nack(ballot, ballot.round + 5));
    c.deliver_all();

    // check
    assert!(!c.node(1).is_candidate() && !c.node(1).is_leader());
    c.wire.clear();
    c.fire(1, MultiPaxosTimer::Election);
    assert_eq!(c.node(1).promised().round, ballot.round + 6);
}

/// P1a for a candidate: promising another candidate's higher ballot ends its own
/// phase 1 — it may no longer act on promises for its lower ballot, which would
/// make it lead while its own promise forbids its ballot.
#[test]
fn multipaxos_candidate_that_promises_a_higher_ballot_abandons_its_phase1() {
    // init
    let mut c = multi_cluster(3);
    c.fire(1, MultiPaxosTimer::Election);
    c.wire.clear();
    let mine = c.node(1).promised();
    let higher = Ballot {
        round: mine.round + 4,
        node: n(2),
    };

    // act: n2's prepare reaches n1, then n3's promise for n1's ballot
    let prepare = prepare(higher);
    c.send(2, 1, prepare);
    c.deliver_all();
    let promise = Message::Promise {
        ballot: mine,
        first_unchosen: Slot(1),
        accepted: vec![],
    };
    c.send(3, 1, promise);
    c.deliver_all();

    // check
    assert_eq!(c.node(1).promised(), higher);
    assert!(!c.node(1).is_candidate() && !c.node(1).is_leader());
    let promised = c.count_sent(1, 2, "Promise");
    assert_eq!(promised, 1);
}

/// A candidate refused by acceptors that follow a live leader (their promise is
/// below its ballot) gives up once so many refused that no phase-1 quorum is left
/// — with five nodes and `phase1_quorum` 3, at the third distinct refusal, not
/// before — and then follows the leader they name.
#[test]
fn multipaxos_candidate_gives_up_when_refusals_leave_no_phase1_quorum() {
    // init
    let mut c = multi_cluster(5);
    c.fire(5, MultiPaxosTimer::Election);
    c.wire.clear();
    let ballot = c.node(5).promised();
    let sticky = Message::Nack {
        ballot,
        promised: Ballot::ZERO,
        leader: Some(n(1)),
    };
    let refuse = |c: &mut MultiCluster, from: u64| {
        c.send(from, 5, sticky.clone());
        c.deliver_all();
    };

    // act + check: two refusals, one of them twice, leave 3 acceptors
    refuse(&mut c, 1);
    refuse(&mut c, 2);
    refuse(&mut c, 2);
    assert!(
        c.node(5).is_candidate(),
        "gave up with a quorum still possible"
    );
    refuse(&mut c, 3);
    assert!(!c.node(5).is_candidate());
    assert_eq!(c.node(5).leader(), Some(n(1)));
    assert_eq!(c.node(5).promised(), ballot, "a refusal lowers no promise");
}

/// Check-quorum: a leader that hears from no phase-2 quorum for
/// `election_timeout_max` steps down, so its clients are redirected instead of
/// waiting; the majority elects a leader of its own.
#[test]
fn multipaxos_leader_without_a_quorum_steps_down() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);

    // act
    c.isolate(1);
    c.run_for(ms(1_000));

    // check
    assert!(!c.node(1).is_leader());
    let other = c.leader().expect("the majority elected a leader");
    assert_ne!(other, 1);
    let t = c.propose(1, Request::Query("k".into()));
    assert!(matches!(c.outcome(t), Some(Outcome::NotLeader { .. })));
}

/// Check-quorum at its boundary: the leader won at `t` (its promises are its
/// peers' last answers), is cut off at once, and leads through every beat before
/// `t + election_timeout_max` (300 ms); at the beat of exactly `t + 300 ms` neither
/// its term nor any answer is recent any more, and it steps down.
#[test]
fn multipaxos_check_quorum_steps_down_exactly_one_window_after_the_last_answer() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    let won = c.now;
    c.isolate(1);

    // act + check
    loop {
        c.fire(1, MultiPaxosTimer::Heartbeat);
        if c.now < won + ms(300) {
            assert!(c.node(1).is_leader(), "stepped down at {}", c.now);
        } else {
            assert_eq!(c.now, won + ms(300));
            assert!(!c.node(1).is_leader(), "still leads at {}", c.now);
            break;
        }
    }
}
