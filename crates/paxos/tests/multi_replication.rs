//! Multi-Paxos phase 2 for a stream of slots: choosing, executing in slot order,
//! the pipelined and batched window, retransmission, and durability.

mod common;

use common::multi::*;
use common::*;
use synod_core::{ClientId, KvOp, Outcome};
use synod_paxos::{Ballot, Message, MultiPaxosTimer, Request, Slot};

fn accept_sizes_to(c: &MultiCluster, dest: u64) -> Vec<usize> {
    c.delivered
        .iter()
        .filter_map(|(_, to, m)| match m {
            Message::Accept { values, .. } if *to == n(dest) => Some(values.len()),
            _ => None,
        })
        .collect()
}

/// "Paxos Made Simple" §2.2/§3: a command is chosen once a majority accepted it in
/// the leader's ballot; the leader executes it and answers; followers learn it is
/// chosen from the leader's next message (`decided`) and execute it too.
#[test]
fn multipaxos_commands_are_chosen_executed_and_answered() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);

    // act
    let t = c.put(1, "x", "1");
    c.deliver_all();

    // check: the leader answered after one accept round
    assert_eq!(c.outcome(t), Some(&WRITTEN));
    assert_eq!(c.node(1).first_unchosen(), Slot(2));
    assert_eq!(c.node(2).first_unexecuted(), Slot(1), "not yet told");
    c.run_for(ms(100));
    for id in c.ids() {
        assert_eq!(c.node(id).state_machine().read("x"), Some("1"), "n{id}");
    }
    c.assert_converged();
}

/// The leader writes its own acceptance while the accept travels (the Paxos twin of
/// Raft thesis §10.2.1): an acceptance is real once durable, so the leader counts
/// itself toward the majority of "Paxos Made Simple" §2.2 only when its storage
/// confirmed the write — and sends accepts ahead of its batch only once its ballot's
/// promise is known durable (a ballot must never be reused after a crash).
#[test]
fn multipaxos_leader_accepts_while_writing_but_counts_itself_once_durable() {
    // init: the leader's storage confirms nothing, not even its promise
    let mut c = multi_cluster(3);
    c.hold_notifications();
    c.elect(1);

    // act
    let first = c.put(1, "x", "1");
    c.deliver_all();

    // check: the accepts waited for the leader's batch; n2 and n3 chose without it
    assert!(c.early_sent.is_empty(), "{:?}", c.early_sends());
    assert_eq!(c.outcome(first), Some(&WRITTEN));

    // init: the promise is confirmed; n3 becomes unreachable
    c.release_notifications();
    c.isolate(3);
    c.hold_notifications();
    let slot = c.node(1).first_unchosen();

    // act
    let second = c.put(1, "x", "2");
    c.deliver_all();

    // check: the accept left early and n2 accepted it, but one durable acceptance
    // is no majority …
    assert_eq!(c.early_sends(), vec![(1, 2), (1, 3)]);
    let ballot = c.node(1).promised();
    assert_eq!(c.node(2).accepted_at(slot).map(|(b, _)| b), Some(ballot));
    assert_eq!(c.node(1).first_unchosen(), slot);
    assert_eq!(c.outcome(second), None);
    // … until the leader's own write is confirmed
    c.release_notifications();
    assert_eq!(c.outcome(second), Some(&WRITTEN));
    assert_eq!(c.node(1).first_unchosen(), slot.next());
}

/// Pipelining and batching ("Paxos Made Live" §5; PMMC's concurrent commanders):
/// at most `accept_inflight_max` accepts are in flight; a command goes out alone
/// only while at most half of that window is in use, and commands arriving
/// meanwhile wait and leave together, `accept_batch_max` per accept, as batches
/// complete and the window frees up.
#[test]
fn multipaxos_window_bounds_accepts_in_flight_and_batches_when_full() {
    // init: a window of 4 accepts of up to 4 commands
    let mut c = build(3, 1, |cfg| {
        cfg.accept_inflight_max = 4;
        cfg.accept_batch_max = 4;
    });
    c.elect(1);

    // act: eighteen commands arrive at once
    let tickets: Vec<Ticket> = (0..18).map(|i| c.put(1, "k", &i.to_string())).collect();

    // check: two lone accepts per peer (half the window) went out; sixteen wait
    assert_eq!(c.node(1).pipeline(), Some((2, 16)));
    let accepts = |c: &MultiCluster| {
        c.wire
            .iter()
            .filter(|(_, _, m)| kind(m) == "Accept")
            .count()
    };
    assert_eq!(accepts(&c), 4);

    // act: n2 accepts the first command and its answer reaches the leader
    assert_eq!((kind(&c.wire[0].2), c.wire[0].1), ("Accept", n(2)));
    c.deliver_at(0);
    let answer = c
        .wire
        .iter()
        .position(|(_, _, m)| kind(m) == "Accepted")
        .expect("n2 answered");
    c.deliver_at(answer);

    // check: the queue filled the window (4 in flight) in batches of 4; 4 still wait
    assert_eq!(c.node(1).pipeline(), Some((4, 4)));
    c.deliver_all();
    assert_eq!(accept_sizes_to(&c, 2), vec![1, 1, 4, 4, 4, 4]);
    assert!(tickets.iter().all(|t| c.outcome(*t) == Some(&WRITTEN)));
    assert_eq!(c.node(1).state_machine().read("k"), Some("17"));
    assert_eq!(c.node(1).pipeline(), Some((0, 0)));
}

/// Accepts lost on the way (or their answers) are sent again every heartbeat
/// interval until a phase-2 quorum acknowledged them; a follower that missed a slot
/// chosen without it learns the value by catch-up instead.
#[test]
fn multipaxos_lost_accepts_are_retransmitted() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);

    // act: both accepts are lost
    let t = c.put(1, "k", "v");
    c.deliver_all_dropping(|_, _, m| kind(m) == "Accept");
    assert_eq!(c.outcome(t), None);
    c.run_for(ms(60));

    // check: retransmitted once, chosen, answered
    assert_eq!(c.outcome(t), Some(&WRITTEN));
    assert_eq!(c.count_kind("Accept"), 2);
    assert!(c.node(3).accepted_at(Slot(1)).is_some());

    // act: n3 misses the next accept; n2 makes it chosen
    c.put(1, "k", "w");
    c.deliver_all_dropping(|_, to, m| to == n(3) && kind(m) == "Accept");
    c.run_for(ms(100));

    // check: no retransmission to n3 of a chosen slot; it fetched the value
    assert_eq!(c.count(|_, to, m| to == n(3) && kind(m) == "Accept"), 1);
    assert!(c.count_kind("Chosen") >= 1);
    assert_eq!(c.node(3).state_machine().read("k"), Some("w"));
    c.assert_converged();
}

/// §3: a server "can execute command i only after it has learned commands 1 through
/// i": a follower that got the accepts for slots 2 and 3 but not 1 executes nothing
/// until it has fetched slot 1, then all three in order.
#[test]
fn multipaxos_execution_follows_slot_order() {
    // init: three writes to one key; n3 misses the accept of slot 1 and every
    // retransmission of it
    let mut c = multi_cluster(3);
    c.elect(1);
    for v in ["1", "2", "3"] {
        c.put(1, "k", v);
    }
    let slot1_to_n3 = |_, to, m: &Message| {
        to == n(3) && matches!(m, Message::Accept { first, .. } if *first == Slot(1))
    };
    c.deliver_all_dropping(slot1_to_n3);
    assert!(c.node(3).accepted_at(Slot(3)).is_some());

    // act: the next heartbeat says slots 1..=3 are chosen
    c.drop_all(slot1_to_n3);
    c.tick(ms(50));
    c.deliver_all_dropping(slot1_to_n3);

    // check: n3 fetched slot 1 (catch-up) and executed in order
    assert!(c.count_kind("CatchUp") >= 1);
    assert_eq!(c.node(3).first_unexecuted(), Slot(4));
    assert_eq!(c.node(3).state_machine().read("k"), Some("3"));
}

/// "Paxos Made Simple" §2.3: acceptors remember what they accepted across
/// restarts, so nothing chosen is lost when every node restarts. The leader saved
/// its chosen prefix on its last heartbeat and executes the commands again from its
/// own log; followers had learned the last decisions from a heartbeat, which writes
/// nothing, so they recover less (`FRONTIER_LAG_MAX`) — whichever node leads next
/// finds the rest accepted and chooses the same values again.
#[test]
fn multipaxos_full_cluster_restart_keeps_chosen_commands() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    for i in 0..5 {
        c.put(1, "k", &i.to_string());
    }
    c.deliver_all();
    c.run_for(ms(100));

    // act
    for id in c.ids() {
        c.crash(id);
    }
    for id in c.ids() {
        c.restart(id);
    }

    // check: the old leader rebuilt its state machine alone
    assert_eq!(c.node(1).first_unexecuted(), Slot(6));
    assert_eq!(c.node(1).state_machine().read("k"), Some("4"));
    // … and a new leader continues after slot 5, with every command kept
    c.run_for(ms(1_000));
    let leader = c.leader().expect("a leader");
    let t = c.put(leader, "k", "5");
    c.deliver_all();
    assert_eq!(c.outcome(t), Some(&WRITTEN));
    assert_eq!(c.node(leader).first_unchosen(), Slot(7));
    c.run_for(ms(100));
    c.assert_converged();
    assert_eq!(c.node(2).state_machine().read("k"), Some("5"));
}

/// Persist before send, on the acceptor side: an acceptance is on the acceptor's
/// disk when its `Accepted` leaves (the driver persists each input's batch first);
/// a crash right after answering loses nothing the leader counted.
#[test]
fn multipaxos_acceptance_is_durable_before_it_is_acknowledged() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    c.put(1, "k", "v");

    // act: n2 accepts and answers, then crashes before anything else
    let i = c
        .wire
        .iter()
        .position(|(_, to, m)| *to == n(2) && kind(m) == "Accept")
        .unwrap();
    c.deliver_at(i);
    assert!(c
        .wire
        .iter()
        .any(|(from, _, m)| *from == n(2) && kind(m) == "Accepted"));
    c.crash(2);
    c.restart(2);

    // check
    assert!(c.node(2).accepted_at(Slot(1)).is_some());
    assert_eq!(c.disk(2).log_len(), 1);
}

/// Batching of commands that arrive together (PML §5: the leader batches requests):
/// the writes of one client input — a server that read several requests at once —
/// share one accept per peer, up to `accept_batch_max` slots, instead of the first
/// few leaving alone; the rest wait for the window.
#[test]
fn multipaxos_writes_that_arrive_together_share_one_accept() {
    // init: a window of 2 accepts of up to 4 commands
    let mut c = build(3, 1, |cfg| {
        cfg.accept_inflight_max = 2;
        cfg.accept_batch_max = 4;
    });
    c.elect(1);
    let put = |i: u64| {
        Request::Command(KvOp::Put {
            key: "k".into(),
            value: i.to_string(),
        })
    };

    // act: six writes in one input
    let tickets = c.propose_all(1, (0..6).map(put).collect());

    // check: one accept of four slots per peer; two writes wait
    assert_eq!(c.node(1).pipeline(), Some((1, 2)));
    let sizes: Vec<usize> = c
        .wire
        .iter()
        .filter_map(|(_, _, m)| match m {
            Message::Accept { values, .. } => Some(values.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![4, 4]);
    c.deliver_all();
    assert!(tickets.iter().all(|t| c.outcome(*t) == Some(&WRITTEN)));
    assert_eq!(accept_sizes_to(&c, 2), vec![4, 2]);
}

/// The leader's queue is bounded (`proposal_queue_max`): beyond it a command is
/// refused with `Unavailable`, which promises it was not proposed.
#[test]
fn multipaxos_full_queue_refuses_with_unavailable() {
    // init
    let mut c = build(3, 1, |cfg| {
        cfg.accept_inflight_max = 1;
        cfg.proposal_queue_max = 2;
    });
    c.elect(1);

    // act
    let ts: Vec<Ticket> = (0..4)
        .map(|i| {
            let op = Request::Command(KvOp::Put {
                key: "k".into(),
                value: i.to_string(),
            });
            c.request(1, ClientId(10 + i), 1, op)
        })
        .collect();

    // check
    assert_eq!(c.outcome(ts[3]), Some(&Outcome::Unavailable));
    c.deliver_all();
    assert!(ts[..3].iter().all(|t| c.outcome(*t) == Some(&WRITTEN)));
}

/// "Paxos Made Simple" §2.2: a value is chosen when a majority accepted *the same
/// proposal*. The leader tracks acceptances per accept batch of its ballot, so an
/// `Accepted` from an earlier ballot — even its own — never completes the batch
/// that re-proposes those slots after a ballot change.
#[test]
fn multipaxos_acceptances_of_an_earlier_ballot_do_not_count_after_a_ballot_change() {
    // init: n1 leads b1; n2 accepts slot 1 in b1 but its answer is held back
    let mut c = multi_cluster(3);
    c.elect(1);
    let b1 = c.node(1).promised();
    c.put(1, "x", "1");
    let i = c
        .wire
        .iter()
        .position(|(_, to, m)| *to == n(2) && kind(m) == "Accept")
        .expect("an accept to n2");
    c.deliver_at(i);
    let (from, to, stale) = c
        .drop_next(|_, to, m| to == n(1) && kind(m) == "Accepted")
        .expect("n2 answered");
    c.drop_all(|_, _, _| true);

    // act: n1 hears of a higher ballot, steps down, and wins phase 1 again
    let higher = Ballot {
        round: b1.round + 1,
        node: n(3),
    };
    let beat = Message::Heartbeat {
        ballot: higher,
        decided: Slot(1),
        read_ctx: 0,
    };
    c.send(3, 1, beat);
    c.deliver_all();
    assert!(!c.node(1).is_leader());
    c.fire(1, MultiPaxosTimer::Election);
    while !c.node(1).is_leader() {
        c.deliver_at(0);
    }
    let b3 = c.node(1).promised();
    assert!(b3 > higher);
    assert_eq!(c.node(1).next_slot(), Some(Slot(2)), "slot 1 re-proposed");
    c.send(from.0, to.0, stale);
    let last = c.wire.len() - 1;
    c.deliver_at(last);

    // check: the b1 acceptance did not choose the b3 batch; b3's own answers do
    assert_eq!(c.node(1).decided(), Some(Slot(1)));
    c.deliver_all();
    assert_eq!(c.node(1).decided(), Some(Slot(2)));
    assert_eq!(c.node(1).state_machine().read("x"), Some("1"));
}

/// The step journal — what `SlotSafety` here and the simulator's invariants read —
/// lists what each input accepted and executed, and only that input's: a journal
/// that stayed empty would make every per-slot check pass unseen.
#[test]
fn multipaxos_journal_reports_each_inputs_acceptances_and_executions() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    let ballot = c.node(1).promised();

    // act: the accept reaches n2
    c.put(1, "k", "v");
    c.deliver_until(|c| c.count(|_, to, m| to == n(2) && kind(m) == "Accept") == 1);

    // check
    let j = c.node(2).journal();
    assert_eq!(j.accepted.len(), 1);
    let (slot, b, value) = j.accepted[0].clone();
    assert_eq!((slot, b), (Slot(1), ballot));
    assert!(j.executed.is_empty());

    // act: n2 learns slot 1 chosen
    c.deliver_all();
    let beat = Message::Heartbeat {
        ballot,
        decided: Slot(2),
        read_ctx: 0,
    };
    c.send(1, 2, beat);
    c.deliver_all();

    // check
    let j = c.node(2).journal();
    assert!(j.accepted.is_empty());
    assert_eq!(j.executed, vec![(Slot(1), value.clone())]);
    assert_eq!(c.node(1).log().chosen(Slot(1)), Some(&value));
}

/// "Paxos Made Simple" §2.3 needs the promise and the acceptances back after a
/// restart: storage that does not decode (a corrupt promise, log run or snapshot)
/// halts the node with a reason naming what is wrong, and a halted node ignores
/// every input — it never answers on state it cannot trust.
#[test]
fn multipaxos_unreadable_storage_halts_the_node_and_it_ignores_inputs() {
    use synod_core::{Effects, Node, Recovered, Snapshot, Time};
    use synod_paxos::multi::META_PROMISED;
    use synod_paxos::{MultiPaxosConfig, MultiPaxosNode};
    let garbage = vec![0xff];
    let corrupt_promise = |r: &mut Recovered| {
        r.meta.insert(META_PROMISED.into(), garbage.clone());
    };
    let corrupt_run = |r: &mut Recovered| {
        r.log.insert(1, garbage.clone());
    };
    let corrupt_snapshot = |r: &mut Recovered| {
        r.snapshot = Some(Snapshot {
            meta: garbage.clone(),
            data: vec![],
        });
    };
    type Corrupt<'a> = &'a dyn Fn(&mut Recovered);
    let cases: [(Corrupt, &str); 3] = [
        (&corrupt_promise, "corrupt promised"),
        (&corrupt_run, "corrupt log run 1"),
        (&corrupt_snapshot, "corrupt snapshot meta"),
    ];
    for (corrupt, reason) in cases {
        // init
        let mut node: MultiPaxosNode =
            MultiPaxosNode::new(MultiPaxosConfig::lan(n(1), [n(1), n(2), n(3)], 1));
        let mut rec = Recovered::default();
        corrupt(&mut rec);
        let mut fx = Effects::new();
        node.on_start(Time::ZERO, rec, &mut fx);

        // check
        let halted = node
            .halted()
            .unwrap_or_else(|| panic!("{reason}: not halted"));
        assert!(halted.contains(reason), "{halted}");

        // act: a prepare and a timer
        let ballot = Ballot {
            round: 1,
            node: n(2),
        };
        node.on_message(Time::ZERO, n(2), prepare(ballot), &mut fx);
        node.on_timer(Time::ZERO, MultiPaxosTimer::Election, &mut fx);

        // check
        assert!(
            fx.sends.is_empty() && fx.persist.is_empty() && fx.timers.is_empty(),
            "{reason}"
        );
        assert_eq!(node.promised(), Ballot::ZERO);
    }
}

/// n1 leads with a durable ballot (one write chosen, so its accepts leave ahead of
/// its own write) and n3 is cut off: every slot needs n1's own acceptance.
fn lead_with_n3_cut_off(c: &mut MultiCluster) {
    c.elect(1);
    let first = c.put(1, "x", "0");
    c.deliver_all();
    assert_eq!(c.outcome(first), Some(&WRITTEN));
    c.isolate(3);
}

/// The leader's own acceptance counts toward a phase-2 quorum ("Paxos Made Simple"
/// §2.2) only for the batches its storage confirmed: a notification covers the
/// batches written up to it, never one proposed after it.
#[test]
fn multipaxos_leader_counts_itself_only_for_the_batches_its_storage_confirmed() {
    // init
    let mut c = multi_cluster(3);
    lead_with_n3_cut_off(&mut c);
    c.hold_notifications();
    let slot = c.node(1).first_unchosen();

    // act: two writes in two inputs, each its own batch; n2 accepts both
    let a = c.put(1, "x", "1");
    let b = c.put(1, "x", "2");
    c.deliver_all();
    assert_eq!((c.outcome(a), c.outcome(b)), (None, None));
    c.release_next_notification();

    // check: only the first batch is the leader's durable acceptance
    assert_eq!(c.outcome(a), Some(&WRITTEN));
    assert_eq!(
        c.outcome(b),
        None,
        "counted itself for a batch not yet durable"
    );
    assert_eq!(c.node(1).first_unchosen(), slot.next());
    c.release_notifications();
    assert_eq!(c.outcome(b), Some(&WRITTEN));
    assert_eq!(c.node(1).pipeline(), Some((0, 0)));
}

/// A batch completed by the leader's own durable acceptance frees its place in the
/// window ("Paxos Made Live" §5's pipelining) just as one completed by a peer's
/// answer: a window of 2 (1 lone accept) takes write after write.
#[test]
fn multipaxos_batches_chosen_by_the_leaders_own_write_free_the_window() {
    // init
    let mut c = build(3, 1, |cfg| cfg.accept_inflight_max = 2);
    lead_with_n3_cut_off(&mut c);

    for i in 1..=4 {
        // act: n2's answer arrives before the leader's own write is confirmed
        c.hold_notifications();
        let t = c.put(1, "x", &i.to_string());
        c.deliver_all();
        assert_eq!(c.outcome(t), None, "write {i}");
        c.release_notifications();

        // check
        assert_eq!(c.outcome(t), Some(&WRITTEN), "write {i}");
        assert_eq!(c.node(1).pipeline(), Some((0, 0)), "write {i}");
    }
}

/// An answer that completes no batch changes nothing: while the leader's own write
/// is unconfirmed, n2's answer to the first lone accept is one acceptance of two,
/// and the commands queued behind the half-full window keep waiting.
#[test]
fn multipaxos_an_answer_that_completes_no_batch_leaves_the_queue_waiting() {
    // init: a window of 4 accepts (2 lone ones) of up to 4 commands
    let mut c = build(3, 1, |cfg| {
        cfg.accept_inflight_max = 4;
        cfg.accept_batch_max = 4;
    });
    lead_with_n3_cut_off(&mut c);
    c.hold_notifications();

    // act: ten commands at once; n2 accepts the first and answers
    for i in 0..10 {
        c.put(1, "k", &i.to_string());
    }
    assert_eq!(c.node(1).pipeline(), Some((2, 8)));
    c.deliver_at(0);
    c.deliver_all();

    // check
    assert_eq!(c.node(1).pipeline(), Some((2, 8)));
    c.release_notifications();
    c.deliver_all();
    assert_eq!(c.node(1).pipeline(), Some((0, 0)));
}

/// Heartbeats go only to peers not sent anything within the last interval: an
/// accept 20 ms before the beat stands for it, and the next beat, a full interval
/// after the accept, reaches the peer again.
#[test]
fn multipaxos_heartbeat_skips_a_peer_sent_an_accept_within_the_interval() {
    // init: a beat, then a write 30 ms later (20 ms before the next beat)
    let mut c = multi_cluster(3);
    c.elect(1);
    c.fire(1, MultiPaxosTimer::Heartbeat);
    c.deliver_all();
    c.tick(ms(30));
    c.put(1, "x", "1");
    c.deliver_all();
    let before = c.count_sent(1, 2, "Heartbeat");

    // act + check
    c.fire(1, MultiPaxosTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.count_sent(1, 2, "Heartbeat"), before, "beat after 20 ms");
    c.fire(1, MultiPaxosTimer::Heartbeat);
    c.deliver_all();
    assert_eq!(
        c.count_sent(1, 2, "Heartbeat"),
        before + 1,
        "beat after 70 ms"
    );
}
