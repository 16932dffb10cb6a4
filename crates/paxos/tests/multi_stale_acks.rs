//! Stale acknowledgements: every answer that counts toward a quorum or confirms
//! something must be tied to the request it answers, so that an answer to an old
//! request — an earlier ballot, an earlier round of the same ballot, a request from
//! before a restart, a duplicate or a long-delayed message — is never counted for a
//! new one. One test per acknowledgement kind; the audit is in
//! `docs/protocols/paxos.md`, "Stale acknowledgements (audit)".

mod common;

use common::multi::*;
use common::*;
use synod_core::{NodeId, Outcome};
use synod_paxos::{Ballot, Message, MultiPaxosNode, MultiPaxosTimer, Slot};

/// Keeps every queued message matching `f` off the wire and returns it.
fn hold(
    c: &mut MultiCluster,
    f: impl Fn(NodeId, NodeId, &Message) -> bool,
) -> Vec<Wire<MultiPaxosNode>> {
    let mut held = Vec::new();
    while let Some(w) = c.drop_next(&f) {
        held.push(w);
    }
    held
}

/// Puts `msg` back on the wire and delivers it alone.
fn deliver_late(c: &mut MultiCluster, (from, to, msg): Wire<MultiPaxosNode>) {
    c.send(from.0, to.0, msg);
    c.deliver_at(c.wire.len() - 1);
}

/// `count` writes handed to `leader` (not delivered yet).
fn puts(c: &mut MultiCluster, leader: u64, count: usize) -> Vec<Ticket> {
    (0..count)
        .map(|i| c.put(leader, &format!("k{i}"), &i.to_string()))
        .collect()
}

/// Phase 2(a) needs "a response to its prepare requests (numbered n) from a majority
/// of acceptors" ("Paxos Made Simple" §2.2): a `Promise` echoes the prepare's ballot,
/// and a candidate counts only promises for the ballot it is campaigning with.
/// Promises for an earlier campaign of the same node — one it gave up on, or one from
/// before it restarted (its promise is durable before a prepare leaves, so it never
/// campaigns with that ballot again) — arrive late and are not counted.
#[test]
fn multipaxos_phase1b_counts_only_promises_for_this_campaigns_ballot() {
    // init: n1 campaigns; both promises are held up
    let mut c = multi_cluster(3);
    c.fire(1, MultiPaxosTimer::Election);
    let first = c.node(1).promised();
    let mut late = Vec::new();
    c.deliver_all_dropping(|from, to, m| {
        let promise = kind(m) == "Promise";
        if promise {
            late.push((from, to, m.clone()));
        }
        promise
    });
    assert_eq!(late.len(), 2);

    // act: n1 gives up and campaigns again (its prepares lost), then the old
    // promises arrive
    c.fire(1, MultiPaxosTimer::Election);
    let second = c.node(1).promised();
    assert!(second > first);
    c.drop_all(|_, _, _| true);
    for w in late.clone() {
        deliver_late(&mut c, w);
    }

    // check
    assert!(
        c.node(1).is_candidate(),
        "promises for {first} elected {second}"
    );

    // act: n1 restarts and campaigns a third time; the first promises arrive again
    c.crash(1);
    c.restart(1);
    assert_eq!(
        c.node(1).promised(),
        second,
        "the campaign's promise is durable"
    );
    c.fire(1, MultiPaxosTimer::Election);
    let third = c.node(1).promised();
    assert!(third > second);
    let fresh: Vec<_> = c.wire.drain(..).collect();
    for w in late {
        deliver_late(&mut c, w);
    }

    // check: still a candidate; its own campaign's promises elect it
    assert!(c.node(1).is_candidate());
    c.wire.extend(fresh);
    c.deliver_all();
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(1).promised(), third);
}

/// A refusal (`Nack`) echoes the ballot it refuses, and only a refusal of the
/// ballot a candidate or leader is running makes it give up: a late refusal of an
/// earlier campaign of the same node — its promise above that ballot is stale news
/// for the next one — neither ends the current phase 1 nor deposes the leader it
/// elected.
#[test]
fn multipaxos_refusals_count_only_for_the_refused_ballot() {
    // init: n3's phase 1 reaches n2 only; n1 campaigns below it and both refuse,
    // their refusals held up
    let mut c = multi_cluster(3);
    c.fire(3, MultiPaxosTimer::Election);
    let rival = c.node(3).promised();
    c.deliver_all_dropping(|_, to, _| to != n(2));
    assert_eq!(c.node(2).promised(), rival);
    c.fire(1, MultiPaxosTimer::Election);
    let first = c.node(1).promised();
    assert!(first < rival);
    let mut late = Vec::new();
    c.deliver_all_dropping(|from, to, m| {
        let nack = kind(m) == "Nack";
        if nack {
            late.push((from, to, m.clone()));
        }
        nack
    });
    assert_eq!(late.len(), 2);

    // act: n1 campaigns again above the rival; the old refusals arrive first
    c.fire(1, MultiPaxosTimer::Election);
    let second = c.node(1).promised();
    assert!(second > rival);
    let fresh: Vec<_> = c.wire.drain(..).collect();
    for w in late.clone() {
        deliver_late(&mut c, w);
    }

    // check: still campaigning with `second`, and it wins
    assert!(
        c.node(1).is_candidate(),
        "refusals of {first} ended {second}"
    );
    c.wire.extend(fresh);
    c.deliver_all();
    assert!(c.node(1).is_leader());

    // act: the old refusals arrive again, at the leader
    for w in late {
        deliver_late(&mut c, w);
    }

    // check
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(1).promised(), second);
}

/// "Paxos Made Simple" §2.2: a value is chosen when a majority accepted *the same
/// proposal*, so an `Accepted` echoes the ballot and slots of the accept it answers
/// and the leader counts only answers of its current ballot. n1 proposes at slot 1
/// in b1, crashes before n2's acceptance reaches it, restarts, and takes over in a
/// higher ballot (its promise of b1 is durable) re-proposing slot 1: the b1 answer,
/// arriving now, must not complete the new ballot's batch with n1's own acceptance.
/// (`multipaxos_acceptances_of_an_earlier_ballot_do_not_count_after_a_ballot_change`
/// drives the same shape with a step-down instead of a restart.)
#[test]
fn multipaxos_phase2b_counts_only_answers_to_this_ballot_after_a_leader_restart() {
    // init: n2 accepts slot 1 in b1; its answer is held, n1 crashes
    let mut c = multi_cluster(3);
    c.elect(1);
    let b1 = c.node(1).promised();
    c.put(1, "x", "1");
    let mut late = None;
    c.deliver_all_dropping(|from, to, m| {
        if from == n(2) && kind(m) == "Accepted" {
            late = Some((from, to, m.clone()));
        }
        to == n(1) || to == n(3)
    });
    let late = late.expect("n2 accepted slot 1");
    c.crash(1);
    c.restart(1);
    assert_eq!(c.node(1).promised(), b1);

    // act: n1 leads a higher ballot with n2's promise (slot 1 re-proposed); the b1
    // answer arrives before any answer of the new ballot
    c.now += ms(200);
    c.fire(1, MultiPaxosTimer::Election);
    while !c.node(1).is_leader() {
        c.deliver_at(0);
    }
    assert!(c.node(1).promised() > b1);
    assert_eq!(c.node(1).next_slot(), Some(Slot(2)), "slot 1 re-proposed");
    deliver_late(&mut c, late);

    // check: not chosen by it; the new ballot's own answers choose it
    assert_eq!(c.node(1).decided(), Some(Slot(1)));
    c.deliver_all();
    assert_eq!(c.node(1).decided(), Some(Slot(2)));
    assert_eq!(c.node(1).state_machine().read("x"), Some("1"));
}

/// A read is served once a heartbeat round sent *after* it arrived was acknowledged
/// by enough acceptors to meet every phase-1 quorum (`read.rs`; the ReadIndex rule of
/// Raft thesis §6.4). A `HeartbeatAck` echoes both the heartbeat's ballot and its
/// read round, an acceptor refuses (never acknowledges) a heartbeat below its
/// promise, and the leader counts only acks of its own ballot whose round is at least
/// the read's. This drives the sequence behind Raft's stale ReadIndex read (issue
/// 14): n1 leads b1 and sends a read round's heartbeat to n2 that is held up;
/// n1 leads again in b3; the stale heartbeat reaches n2, whose answer is held up
/// too; n2 and n3 elect n3 and choose a write; n1, cut off, registers a read; then
/// every stale answer arrives — n2's refusal of the b1 heartbeat, n2's ack of that
/// round from b1, and n2's ack of an earlier (round 0) heartbeat of b3. None may
/// confirm the read, which would miss the write.
#[test]
fn multipaxos_read_round_counts_only_acks_of_this_ballot_sent_after_the_read() {
    // init: n1 leads b1; a read round's heartbeat to n2 is duplicated and held,
    // and n2's ack of it is held (n3's serves the read)
    let mut c = multi_cluster(3);
    c.elect(1);
    let b1 = c.node(1).promised();
    c.put(1, "x", "old");
    c.deliver_all();
    let r = c.get(1, "x");
    let (mut stale_beat, mut late) = (None, Vec::new());
    c.deliver_all_dropping(|from, to, m| {
        if to == n(2) && matches!(m, Message::Heartbeat { read_ctx: 1, .. }) {
            stale_beat = Some((from, to, m.clone()));
        }
        let ack = from == n(2) && kind(m) == "HeartbeatAck";
        if ack {
            late.push((from, to, m.clone()));
        }
        ack
    });
    assert_eq!(c.outcome(r), Some(&read_ok(Some("old"))));
    let stale_beat = stale_beat.expect("a read round to n2");

    // n1 is deposed by n2 (b2), then leads again (b3); n2 accepts in b3
    c.isolate(1);
    c.now += ms(200);
    c.elect(2);
    c.heal();
    c.run_for(ms(60));
    assert!(!c.node(1).is_leader());
    c.now += ms(200);
    c.elect(1);
    let b3 = c.node(1).promised();
    c.put(1, "x", "mid");
    c.deliver_all();
    assert_eq!(c.node(2).promised(), b3);
    // a round-0 heartbeat of b3: n2's ack is held
    c.tick(ms(50));
    c.deliver_all_dropping(|from, to, m| {
        let ack = from == n(2) && kind(m) == "HeartbeatAck";
        if ack {
            late.push((from, to, m.clone()));
        }
        ack
    });
    let acks: Vec<(Ballot, u64)> = (late.iter())
        .filter_map(|(_, _, m)| match m {
            Message::HeartbeatAck {
                ballot, read_ctx, ..
            } => Some((*ballot, *read_ctx)),
            _ => None,
        })
        .collect();
    assert_eq!(acks, vec![(b1, 1), (b3, 0)]);
    // the stale b1 heartbeat reaches n2 (which refuses it): its answer is held
    deliver_late(&mut c, stale_beat);
    let answer = hold(&mut c, |from, _, _| from == n(2));
    assert_eq!(answer.len(), 1);
    late.extend(answer);

    // n2 and n3 elect n3 (b4), which chooses "new"
    c.isolate(1);
    c.now += ms(200);
    c.elect(3);
    let w = c.put(3, "x", "new");
    c.deliver_all();
    assert_eq!(c.outcome(w), Some(&WRITTEN));
    assert!(c.node(1).is_leader(), "n1 does not know yet");
    c.heal();

    // act: n1 registers a read (its round's heartbeats lost); the stale answers arrive
    let stale = c.get(1, "x");
    c.wire.clear();
    for w in late {
        deliver_late(&mut c, w);
    }

    // check: not served (it would read "mid"); once n1 steps down, redirected
    assert_eq!(c.outcome(stale), None);
    c.isolate(1);
    c.run_for(ms(400));
    assert!(matches!(c.outcome(stale), Some(Outcome::NotLeader { .. })));
}

/// A leader's catch-up ("Paxos Made Live" §5.5, a new leader fetching the chosen
/// slots below its takeover start) goes to the peer that says it knows the most.
/// What a peer knows chosen is volatile beyond its last saved frontier, so after the
/// peer restarts, its answers from before the restart overstate it: the leader must
/// go by the peer's latest report, not the highest it ever made. Here n2 said it
/// knew slots 1..=7 chosen and restarted knowing none of them chosen; a leader that
/// kept the highest report asked n2 at every heartbeat (still at slot 1 after 5 s)
/// and never n1, which does know 1..=5: nothing executed again.
#[test]
fn multipaxos_leader_catch_up_goes_by_each_peers_latest_frontier() {
    // init: n1 leads; slots 1..=5 chosen by n1 and n2 while n3 is cut off; n2 knows
    // them chosen only in memory (its frontier is saved lazily), n1 durably
    let mut c = multi_cluster(3);
    c.elect(1);
    c.isolate(3);
    puts(&mut c, 1, 5);
    c.run_for(ms(100));
    assert_eq!(c.node(2).first_unchosen(), Slot(6));
    c.crash(1);
    c.restart(1);
    c.heal();
    c.now += ms(200);

    // n3 takes over with n1's promise (start 6, holding nothing below); the prepare
    // to n2 is lost, so n2 never saves its frontier for a promise
    c.fire(3, MultiPaxosTimer::Election);
    c.drop_all(|_, to, m| to == n(2) && kind(m) == "Prepare");
    let no_catch_up = |from: NodeId, to: NodeId, m: &Message| {
        (from == n(3) && kind(m) == "CatchUp") || (to == n(1) && kind(m) == "Accept")
    };
    c.deliver_all_dropping(no_catch_up);
    assert!(c.node(3).is_leader());
    assert_eq!(c.node(3).first_unchosen(), Slot(1));
    // n3 and n2 choose slots 6 and 7 (n1 misses the accepts); n2 now reports 8,
    // n1 reports 6; n3's catch-up requests are lost
    let late = puts(&mut c, 3, 2);
    c.deliver_all_dropping(no_catch_up);
    for _ in 0..4 {
        c.tick(ms(50));
        c.deliver_all_dropping(no_catch_up);
    }
    assert_eq!(c.node(2).first_unchosen(), Slot(8));
    assert_eq!(c.node(1).first_unchosen(), Slot(6));

    // act: n2 restarts, knowing chosen only what it had saved
    c.crash(2);
    c.restart(2);
    assert_eq!(c.node(2).first_unchosen(), Slot(1));
    c.run_for(ms(500));

    // check: n3 fetched 1..=5 from n1, executed everything and answered
    assert_eq!(c.node(3).first_unexecuted(), Slot(8));
    for t in late {
        assert_eq!(c.outcome(t), Some(&WRITTEN));
    }
    c.assert_converged();
}

/// Catch-up is paced: one request outstanding at a time, the next sent when the
/// answer comes. A `Chosen` answer echoes the slot it was asked from (`first`), and
/// only the answer to the outstanding request releases the next one. A duplicated or
/// late answer to an earlier request must not: else each such answer started a
/// second request chain, which then ran beside the first until the replica caught
/// up (k stale answers, k + 1 chains).
#[test]
fn multipaxos_catch_up_only_the_answer_to_the_outstanding_request_releases_the_next() {
    // init: n3 misses 300 chosen slots; it asks from 1, gets 1..=256, asks from 257;
    // that request is held, and the first answer was duplicated on the wire
    let mut c = multi_cluster(3);
    c.elect(1);
    c.isolate(3);
    puts(&mut c, 1, 300);
    c.deliver_all();
    c.heal();
    c.tick(ms(50));
    let mut first_answer = None;
    let mut second_ask = None;
    c.deliver_all_dropping(|from, to, m| {
        if to == n(3) && matches!(m, Message::Chosen { first: Slot(1), .. }) {
            first_answer = Some((from, to, m.clone()));
        }
        let ask = matches!(
            m,
            Message::CatchUp {
                first_unchosen: Slot(257)
            }
        );
        if ask {
            second_ask = Some((from, to, m.clone()));
        }
        ask
    });
    assert_eq!(c.node(3).first_unchosen(), Slot(257));
    let (from, to, duplicate) = first_answer.expect("n1 answered the first request");

    // act: the duplicate of the first answer arrives
    c.send(from.0, to.0, duplicate);
    c.deliver_all();

    // check: it released no second request for 257
    let asks = c.count(|from, _, m| from == n(3) && kind(m) == "CatchUp");
    assert_eq!(asks, 1, "only the first request was delivered");
    assert!(c.wire.is_empty(), "{:?}", c.wire);

    // act: the outstanding request goes through
    let (from, to, ask) = second_ask.expect("n3 asked from 257");
    c.send(from.0, to.0, ask);
    c.deliver_all();

    // check
    assert_eq!(c.node(3).first_unchosen(), Slot(301));
    c.run_for(ms(100));
    c.assert_converged();
}
