//! What clients see: redirects, exactly-once retries, `Unknown` from a deposed
//! leader, and linearizable reads by a quorum read round.

mod common;

use common::multi::*;
use common::*;
use synod_core::{ClientId, KvOp, Outcome};
use synod_paxos::{Message, Request, Slot};

fn append(key: &str, value: &str) -> Request {
    Request::Command(KvOp::Append {
        key: key.into(),
        value: value.into(),
    })
}

/// Only the leader proposes; any other node redirects with a hint.
#[test]
fn multipaxos_follower_redirects_to_the_leader() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);

    // act
    let t = c.put(2, "k", "v");

    // check
    assert_eq!(
        c.outcome(t),
        Some(&Outcome::NotLeader { leader: Some(n(1)) })
    );
    assert!(c.wire.is_empty(), "nothing was proposed");
}

/// Exactly-once: a client retries with the same `(client, seq)` — here at a new
/// leader after the first leader answered `Unknown`. Both attempts are chosen, in
/// two slots, and the KV dedup applies the command once.
#[test]
fn multipaxos_retried_command_is_applied_once() {
    // init: n1 gets the append chosen by n2 but is deposed before it learns it
    let mut c = multi_cluster(3);
    c.elect(1);
    let first = c.request(1, ClientId(7), 1, append("k", "x"));
    c.deliver_all_dropping(|_, _, m| kind(m) == "Accepted");
    c.isolate(1);
    c.now += ms(200);
    c.elect(2);
    c.heal();
    c.run_for(ms(300));
    assert_eq!(c.outcome(first), Some(&Outcome::Unknown));

    // act: the retry
    let retry = c.request(2, ClientId(7), 1, append("k", "x"));
    c.deliver_all();

    // check: slot 1 (re-proposed by n2) and slot 2 both hold it; applied once
    assert_eq!(c.outcome(retry), Some(&WRITTEN));
    assert_eq!(c.node(2).first_unchosen(), Slot(3));
    assert_eq!(c.node(2).state_machine().read("k"), Some("x"));
    c.run_for(ms(100));
    c.assert_converged();
}

/// A leader that steps down answers what it proposed with `Unknown` (it may still
/// be chosen) and what only waited in its queue with `NotLeader` (never proposed).
#[test]
fn multipaxos_deposed_leader_answers_unknown_for_proposals_and_not_leader_for_its_queue() {
    // init: a window of one accept
    let mut c = build(3, 1, |cfg| cfg.accept_inflight_max = 1);
    c.elect(1);
    let proposed = c.put(1, "k", "1");
    let queued = c.put(1, "k", "2");
    c.wire.clear();

    // act: a higher ballot's prepare reaches n1 once its quorum went quiet
    c.isolate(1);
    c.run_for(ms(1_000));

    // check
    assert!(!c.node(1).is_leader());
    assert_eq!(c.outcome(proposed), Some(&Outcome::Unknown));
    assert!(matches!(c.outcome(queued), Some(Outcome::NotLeader { .. })));
}

/// Reads are linearizable without the log: the leader confirms its ballot with a
/// heartbeat round after the read arrived, then answers from its state machine.
/// Nothing is written; without the round's answers, nothing is answered.
#[test]
fn multipaxos_reads_need_a_quorum_round_and_write_nothing() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    c.put(1, "k", "v");
    c.deliver_all();
    let durable = c.disk(1).recover();

    // act: the round's answers are lost
    let t = c.get(1, "k");
    c.deliver_all_dropping(|_, _, m| kind(m) == "HeartbeatAck");

    // check
    assert_eq!(c.outcome(t), None);
    let rounds =
        c.count(|_, _, m| matches!(m, Message::Heartbeat { read_ctx, .. } if *read_ctx > 0));
    assert_eq!(rounds, 2, "one round, to both peers");

    // act: a second read gets its round through, and serves both
    let t2 = c.get(1, "k");
    c.deliver_all();

    // check
    assert_eq!(c.outcome(t), Some(&read_ok(Some("v"))));
    assert_eq!(c.outcome(t2), Some(&read_ok(Some("v"))));
    assert_eq!(c.disk(1).recover(), durable, "reads write nothing");
}

/// A leader cut off from its quorum, deposed without knowing it, must not answer a
/// read from its stale state: the new leader's writes would be missed.
#[test]
fn multipaxos_deposed_leader_does_not_answer_reads() {
    // init: n1 deposed by n2, which writes a new value
    let mut c = multi_cluster(3);
    c.elect(1);
    c.put(1, "k", "old");
    c.deliver_all();
    c.isolate(1);
    c.now += ms(200);
    c.elect(2);
    c.put(2, "k", "new");
    c.deliver_all();
    assert!(c.node(1).is_leader(), "n1 does not know yet");

    // act
    let stale = c.get(1, "k");
    c.deliver_all();

    // check: not answered while cut off; redirected once it steps down
    assert_eq!(c.outcome(stale), None);
    c.run_for(ms(400));
    assert!(matches!(c.outcome(stale), Some(Outcome::NotLeader { .. })));
    c.heal();
    c.run_for(ms(300));
    let fresh = c.get(2, "k");
    c.deliver_all();
    assert_eq!(c.outcome(fresh), Some(&read_ok(Some("new"))));
}

/// A new leader's read waits for the slots it re-proposed at takeover: a write an
/// earlier leader had answered may sit there (here: chosen by n1 and n2 and
/// answered, but n2 was never told it was chosen).
#[test]
fn multipaxos_new_leader_reads_wait_for_the_takeover_slots() {
    // init: "v" is chosen at slot 1 (n1 and n2 accepted it); n1 answered and crashed
    let mut c = multi_cluster(3);
    c.elect(1);
    let w = c.put(1, "k", "v");
    c.deliver_all_dropping(|_, to, m| to == n(3) && kind(m) == "Accept");
    assert_eq!(c.outcome(w), Some(&WRITTEN));
    c.drop_all(|_, _, _| true);
    c.crash(1);
    assert_eq!(c.node(2).first_unchosen(), Slot(1), "n2 was not told");

    // act: n2 takes over and is asked at once; the read's round completes before
    // the takeover's accept is answered
    c.now += ms(200);
    elect_without_delivering_accepts(&mut c, 2);
    let r = c.get(2, "k");
    let round =
        |_, to, m: &Message| to == n(3) && matches!(m, Message::Heartbeat { read_ctx: 1, .. });
    let i = c
        .wire
        .iter()
        .position(|(f, t, m)| round(*f, *t, m))
        .unwrap();
    c.deliver_at(i);
    let ack = c
        .wire
        .iter()
        .position(|(_, _, m)| kind(m) == "HeartbeatAck")
        .unwrap();
    c.deliver_at(ack);

    // check: confirmed, but slot 1 is not executed yet
    assert_eq!(c.outcome(r), None);
    c.deliver_all();
    assert_eq!(c.outcome(r), Some(&read_ok(Some("v"))));
}

/// Fires `id`'s election timer and delivers until it leads; the takeover's accepts
/// stay queued, its first heartbeats are dropped (so a read's round is the only one
/// in flight).
fn elect_without_delivering_accepts(c: &mut MultiCluster, id: u64) {
    c.fire(id, synod_paxos::MultiPaxosTimer::Election);
    while !c.node(id).is_leader() {
        c.deliver_at(0);
    }
    c.drop_all(|_, _, m| kind(m) == "Heartbeat");
}
