//! Catch-up of lagging and restarted replicas, snapshots and log truncation, and
//! snapshot transfer ("Paxos Made Live" §5.5).

mod common;

use common::multi::*;
use common::*;
use synod_paxos::{Message, MultiPaxosConfig, MultiPaxosTimer, Slot};

/// Many writes while one replica is cut off, a few per delivery round.
fn write_many(c: &mut MultiCluster, leader: u64, count: usize) {
    for i in 0..count {
        c.put(leader, &format!("k{}", i % 7), &i.to_string());
        if i % 10 == 9 {
            c.deliver_all();
        }
    }
    c.deliver_all();
}

/// A replica partitioned away while 300 commands were chosen catches up when it
/// returns: the leader's heartbeat tells it what is decided, and it pulls the
/// chosen values in batches (`catchup_batch_max`), then executes them in order.
#[test]
fn multipaxos_catch_up_after_long_partition() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    c.isolate(3);
    write_many(&mut c, 1, 300);
    assert_eq!(c.node(3).first_unchosen(), Slot(1));

    // act
    c.heal();
    c.run_for(ms(500));

    // check: two requests, two answers (256 + 44 slots), no snapshot — the node
    // stops asking once it knows as much as the leader said is decided
    c.assert_converged();
    assert_eq!(c.node(3).first_unexecuted(), Slot(301));
    assert_eq!(c.count(|_, to, m| to == n(3) && kind(m) == "Chosen"), 2);
    assert_eq!(
        c.count(|from, _, m| from == n(3) && kind(m) == "CatchUp"),
        2
    );
    assert_eq!(c.count_kind("Snapshot"), 0);
}

/// A replica that restarts after missing commands recovers what it had from its
/// own log, then catches up the rest.
#[test]
fn multipaxos_restarted_replica_catches_up() {
    // init
    let mut c = multi_cluster(3);
    c.elect(1);
    write_many(&mut c, 1, 20);
    c.run_for(ms(100));
    c.crash(3);
    write_many(&mut c, 1, 30);

    // act
    c.restart(3);
    // It executes from its own log as far as it had saved the chosen prefix
    // (saved lazily, every `FRONTIER_LAG_MAX` slots: here not yet).
    let own = c.node(3).first_unexecuted();
    assert!(own <= Slot(21), "{own}");
    c.run_for(ms(300));

    // check: its own acceptances (in the leader's ballot) cover slots 1..=20, so
    // only the 30 slots it missed are fetched
    c.assert_converged();
    assert_eq!(c.node(3).first_unexecuted(), Slot(51));
    let fetched: usize = c
        .delivered
        .iter()
        .filter_map(|(_, to, m)| match m {
            Message::Chosen { values, .. } if *to == n(3) => Some(values.len()),
            _ => None,
        })
        .sum();
    assert_eq!(fetched, 30);
}

/// "Paxos Made Live" §5.5: each replica snapshots its state machine on its own and
/// truncates its log; only chosen (executed) slots are truncated, and a few are
/// kept (`snapshot_trailing`) so a slightly lagging replica needs no snapshot.
#[test]
fn multipaxos_each_replica_snapshots_and_truncates_its_log() {
    // init
    let mut c = build(3, 1, |cfg| {
        cfg.snapshot_threshold = 16;
        cfg.snapshot_trailing = 4;
    });
    c.elect(1);

    // act
    write_many(&mut c, 1, 100);
    c.run_for(ms(100));

    // check
    for id in c.ids() {
        let node = c.node(id);
        // Each at its own point: followers execute in the steps they learn in.
        let below = node.snapshot_below().expect("a snapshot");
        assert!(below >= Slot(85), "n{id} snapshot below {below}");
        assert_eq!(node.log().start(), Slot(below.0 - 4), "n{id}");
        assert!(
            c.disk(id).log_len() <= 4 + 16,
            "n{id} keeps {}",
            c.disk(id).log_len()
        );
    }
    // A restart rebuilds from snapshot plus log.
    let before = c.node(2).state_machine().clone();
    c.crash(2);
    c.restart(2);
    assert_eq!(c.node(2).state_machine(), &before);
    assert_eq!(c.node(2).first_unexecuted(), Slot(101));
}

/// A snapshot is taken as soon as `snapshot_threshold` slots were executed since
/// the last one — at exactly that many, not one later.
#[test]
fn multipaxos_snapshot_taken_exactly_at_the_threshold() {
    // init
    let mut c = build(3, 1, |cfg| cfg.snapshot_threshold = 16);
    c.elect(1);

    // act: 15 commands, one at a time, then the 16th
    for i in 0..15 {
        c.put(1, "k", &i.to_string());
        c.deliver_all();
    }
    assert_eq!(c.node(1).first_unexecuted(), Slot(16));
    assert_eq!(c.node(1).snapshot_below(), None);
    c.put(1, "k", "15");
    c.deliver_all();

    // check
    assert_eq!(c.node(1).first_unexecuted(), Slot(17));
    assert_eq!(c.node(1).snapshot_below(), Some(Slot(17)));
}

/// n1 leads and chooses `writes` commands while n3 is cut off, every replica
/// snapshotting every 16 slots and keeping 4 behind (n3 stays cut off).
fn n3_behind_snapshots(writes: usize) -> MultiCluster {
    let mut c = build(3, 1, |cfg| {
        cfg.snapshot_threshold = 16;
        cfg.snapshot_trailing = 4;
    });
    c.elect(1);
    c.isolate(3);
    write_many(&mut c, 1, writes);
    c
}

/// A replica behind the leader's truncation point cannot be caught up from the log:
/// the leader sends its snapshot, the replica installs it, then fetches the slots
/// after it.
#[test]
fn multipaxos_snapshot_transfer() {
    // init
    let mut c = n3_behind_snapshots(100);
    assert!(c.node(1).log().start() > Slot(1));

    // act
    c.heal();
    c.run_for(ms(500));

    // check
    assert_eq!(c.count(|_, to, m| to == n(3) && kind(m) == "Snapshot"), 1);
    assert_eq!(c.node(3).snapshot_below(), c.node(1).snapshot_below());
    assert!(c.node(3).log().start() > Slot(1));
    c.assert_converged();
    // The installed snapshot is durable: a restart starts from it.
    c.crash(3);
    c.restart(3);
    assert_eq!(c.node(3).first_unexecuted(), Slot(101));
    assert_eq!(c.node(3).state_machine(), c.node(1).state_machine());
}

/// Catch-up pacing across a snapshot: the snapshot answers the outstanding request
/// (it covers the slot asked), so the request for the slots after it leaves in the
/// same input; a second copy of that snapshot answers nothing outstanding, and the
/// next request still waits out its heartbeat interval.
#[test]
fn multipaxos_a_snapshot_answer_releases_the_next_request_and_its_copy_does_not() {
    // init: n1 snapshotted below the last 5 of the commands n3 missed
    let mut c = n3_behind_snapshots(105);
    c.heal();
    let below = c.node(1).snapshot_below().expect("n1 snapshotted");
    assert!(below < c.node(1).first_unchosen());
    let asks = |c: &MultiCluster| {
        let ask = |m: &Message| matches!(m, Message::CatchUp { first_unchosen } if *first_unchosen == below);
        c.count_queued(|f, _, m| f == n(3) && ask(m))
    };

    // act: a heartbeat tells n3 what is decided; it asks, and n1 answers with the
    // snapshot
    c.fire(1, MultiPaxosTimer::Heartbeat);
    c.deliver_until(|c| c.node(3).snapshot_below() == Some(below));

    // check: the next request left with the install
    assert_eq!(asks(&c), 1, "the snapshot did not release the next request");

    // act: that request is lost; a copy of the snapshot arrives, then a heartbeat
    c.wire.clear();
    let copy = c
        .delivered
        .iter()
        .rev()
        .find(|(_, to, m)| *to == n(3) && kind(m) == "Snapshot");
    let copy = copy.expect("delivered").2.clone();
    let beat = Message::Heartbeat {
        ballot: c.node(1).promised(),
        decided: c.node(1).first_unchosen(),
        read_ctx: 0,
    };
    for msg in [copy, beat] {
        c.send(1, 3, msg);
        c.deliver_at(c.wire.len() - 1);
    }

    // check: the request is still outstanding, so not asked again yet
    assert_eq!(asks(&c), 0, "the copy released a second request");
}

/// A node that was cut off becomes leader with a peer that knows more chosen slots:
/// its phase 1 starts where the quorum's knowledge ends (it never re-proposes a
/// chosen slot), and it fetches the slots it lacks before executing on.
#[test]
fn multipaxos_new_leader_behind_its_quorum_fetches_chosen_values() {
    // init: n3 misses 20 commands; then n1 crashes
    let mut c = multi_cluster(3);
    c.elect(1);
    c.isolate(3);
    write_many(&mut c, 1, 20);
    c.run_for(ms(100));
    c.crash(1);
    c.heal();

    // act
    c.now += ms(200);
    c.elect(3);
    let t = c.put(3, "after", "1");
    c.run_for(ms(300));

    // check: n3 proposed from slot 21 on and fetched 1..=20 from n2
    assert_eq!(c.outcome(t), Some(&WRITTEN));
    assert!(c.count(|_, to, m| to == n(3) && kind(m) == "Chosen") >= 1);
    assert_eq!(c.node(3).first_unexecuted(), Slot(22));
    c.assert_converged();
}

/// A new leader behind its quorum whose takeover re-proposals are chosen before the
/// catch-up answer for the slots below them arrives: they were decided while its
/// chosen prefix still had a hole, and no later decision of its own names them again,
/// so filling the hole must also learn them — else it never executes past the hole
/// and every read waits forever. (Found by a full restart of a real 3-node cluster
/// whose members came back ~100 ms apart: the read after the restart hung.)
#[test]
fn multipaxos_leader_learns_its_takeover_slots_once_catch_up_fills_the_gap_below() {
    // init: n3 misses 20 chosen commands; slot 21 is accepted by n2 alone, and n1
    // crashes before hearing back, so no one knows it chosen
    let mut c = multi_cluster(3);
    c.elect(1);
    c.isolate(3);
    write_many(&mut c, 1, 20);
    c.run_for(ms(100));
    c.put(1, "k", "21");
    c.deliver_all_dropping(|_, to, _| to == n(1));
    c.crash(1);
    c.heal();

    // act: n3 takes over (slot 21 re-proposed and chosen at once), then catches up
    // 1..=20 from n2 at its first heartbeat; then a read
    c.now += ms(200);
    c.elect(3);
    c.run_for(ms(300));
    let t = c.get(3, "k");
    c.run_for(ms(300));

    // check
    assert_eq!(c.outcome(t), Some(&read_ok(Some("21"))));
    assert_eq!(c.node(3).first_unexecuted(), Slot(22));
    c.assert_converged();
}

/// n1 leads, n3 misses `writes` commands (n2 executes them, snapshotting per
/// `tweak`), then n1 crashes: n3 stands for election with n2's promise its only
/// one, and so takes over behind its quorum.
fn leader_behind_its_quorum(
    writes: usize,
    tweak: impl Fn(&mut MultiPaxosConfig) + 'static,
) -> MultiCluster {
    let mut c = build(3, 1, tweak);
    c.elect(1);
    c.isolate(3);
    write_many(&mut c, 1, writes);
    c.run_for(ms(100));
    c.crash(1);
    c.heal();
    c.now += ms(200);
    c
}

/// A new leader behind its quorum fetches the chosen slots below its takeover start
/// in the very input it wins: the promises it won with say who knows more and
/// count as answers, so it does not wait for a heartbeat round to ask.
#[test]
fn multipaxos_new_leader_asks_for_the_slots_below_its_start_as_it_wins() {
    // init
    let mut c = leader_behind_its_quorum(20, |_| {});

    // act
    c.fire(3, MultiPaxosTimer::Election);
    c.deliver_until(|c| c.node(3).is_leader());

    // check
    let asked = c.count_queued(|f, t, m| (f, t) == (n(3), n(2)) && kind(m) == "CatchUp");
    assert_eq!(asked, 1, "no catch-up request left with the takeover");
    c.run_for(ms(300));
    assert_eq!(c.node(3).first_unexecuted(), Slot(21));
    c.assert_converged();
}

/// "Paxos Made Live" §5.5 snapshots, received by a leader behind its quorum: a
/// snapshot that covers no slot of the leader's own ballot (it ends at or below the
/// takeover start) is installed and the leader keeps leading; only one reaching
/// past the start would depose it (it could not answer those slots' clients).
#[test]
fn multipaxos_leader_installs_a_snapshot_below_its_start_and_keeps_leading() {
    // n2 snapshots below slot 21 (after 20 commands) and keeps 4 slots behind it.
    // After 20 commands the takeover starts at 21 (the snapshot ends at the start),
    // after 25 at 26 (the snapshot ends below it).
    for (writes, start) in [(20, 21), (25, 26)] {
        // init
        let mut c = leader_behind_its_quorum(writes, |cfg| {
            cfg.snapshot_threshold = 20;
            cfg.snapshot_trailing = 4;
        });
        assert_eq!(c.node(2).snapshot_below(), Some(Slot(21)));

        // act
        c.elect(3);
        c.run_for(ms(300));

        // check
        assert_eq!(c.count(|_, to, m| to == n(3) && kind(m) == "Snapshot"), 1);
        assert_eq!(c.node(3).snapshot_below(), Some(Slot(21)));
        assert!(
            c.node(3).is_leader(),
            "{writes} writes: deposed by the snapshot"
        );
        assert_eq!(c.node(3).decided().map(|d| d >= Slot(start)), Some(true));
        let t = c.put(3, "after", "1");
        c.run_for(ms(100));
        assert_eq!(c.outcome(t), Some(&WRITTEN), "{writes} writes");
        c.assert_converged();
    }
}

/// Catch-up requests are paced: while one is unanswered, the next leaves only once
/// a heartbeat interval (50 ms) has passed since it — exactly then, not before.
#[test]
fn multipaxos_unanswered_catch_up_is_asked_again_after_one_heartbeat_interval() {
    // init: n3 missed 5 chosen commands
    let mut c = multi_cluster(3);
    c.elect(1);
    c.isolate(3);
    write_many(&mut c, 1, 5);
    c.heal();
    let beat = Message::Heartbeat {
        ballot: c.node(1).promised(),
        decided: Slot(6),
        read_ctx: 0,
    };
    let asked = |c: &mut MultiCluster, after: u64| {
        c.now += ms(after);
        c.send(1, 3, beat.clone());
        let Some(i) = c.queued(|f, t, _| (f, t) == (n(1), n(3))) else {
            unreachable!("just sent")
        };
        c.deliver_at(i);
        let asks = c.count_queued(|f, _, m| f == n(3) && kind(m) == "CatchUp");
        c.wire.clear(); // the request is lost
        asks
    };

    // act + check
    assert_eq!(asked(&mut c, 0), 1, "the first heartbeat asks");
    assert_eq!(asked(&mut c, 49), 0, "49 ms later: still outstanding");
    assert_eq!(asked(&mut c, 1), 1, "50 ms later: asked again");
}

/// A leader behind its takeover start whose only source for the slots below it
/// dies: the quorum that elected it held the one node that knew those slots chosen
/// (the other never heard the last decision), and that node crashes for good right
/// after its promise. The survivors are a majority and must make progress: the
/// leader, with no live peer able to supply the slots, runs phase 1 again, and the
/// new quorum's reports re-propose what it accepted there ("Paxos Made Simple" §3).
#[test]
fn multipaxos_leader_whose_only_source_below_its_start_dies_runs_phase1_again() {
    // init: n1 chose 20 commands with n2 (n3 cut off); the last decision never
    // reaches n2, and n1 loses its quorum and steps down
    let mut c = multi_cluster(3);
    c.elect(1);
    c.isolate(3);
    write_many(&mut c, 1, 20);
    c.cut(1, 2);
    c.run_for(ms(400));
    assert!(!c.node(1).is_leader());
    assert_eq!(c.node(1).first_unchosen(), Slot(21));
    assert!(c.node(2).first_unchosen() < Slot(21));
    c.heal();

    // act: n3 wins with n1's promise (n1 knows 1..=20 chosen, so n3 starts at 21),
    // and n1 crashes before n3's catch-up request reaches it, never to return
    for _ in 0..3 {
        c.fire(3, MultiPaxosTimer::Election);
        while !c.node(3).is_leader() && !c.wire.is_empty() {
            c.deliver_at(0);
        }
        if c.node(3).is_leader() {
            break;
        }
    }
    assert!(c.node(3).is_leader(), "n3 did not win phase 1");
    let (won, ballot) = (c.now, c.node(3).promised());
    c.crash(1);

    // check: n1 counts as live (asked again) until exactly one election timeout
    // (300 ms) after its promise; from that beat on n3 fetches what n2 knows …
    c.run_for(ms(250));
    assert_eq!(c.node(3).first_unchosen(), Slot(1));
    c.run_for(ms(50));
    assert_eq!(c.now, won + ms(300));
    assert_eq!(c.node(3).first_unchosen(), c.node(2).first_unchosen());
    assert_eq!(c.node(3).promised(), ballot);
    // … and at the next beat, with nobody live ahead of it, runs phase 1 again
    c.run_for(ms(50));
    assert!(c.node(3).promised() > ballot, "no second phase 1");
    c.run_for(ms(1000));
    let t = c.put(c.leader().expect("a leader"), "after", "1");
    c.run_for(ms(1000));

    // check: the write is answered and every chosen command executed on both
    assert_eq!(c.outcome(t), Some(&WRITTEN));
    for id in [2, 3] {
        assert_eq!(c.node(id).state_machine().read("k5"), Some("19"), "n{id}");
    }
    c.assert_converged();
}
