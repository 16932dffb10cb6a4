//! The participant's rules driven input by input through the `Node` trait, its disk
//! kept by the test (so a restart recovers exactly what it made durable): unilateral
//! abort and what it leaves on disk, the inquiry schedule of an in-doubt participant,
//! wait-die's waiting queue, outcome pruning, compaction, and where it sends a
//! client (Bernstein, Hadzilacos & Goodman, ch. 7).

use std::time::Duration;
use synod_core::{
    ClientId, ClientRequest, Node, NodeId, Outcome, Recovered, StorageOp, Time, TimerOp,
};
use synod_twopc::{
    AbortReason, Fx, Message, Op, OpResult, Participant, Role, ShardId, Timer, Topology,
    TwoPcConfig, TwoPcNode, Txn, TxnId, Vote,
};

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

fn t(k: u64) -> TxnId {
    TxnId::new(1, k)
}

const COORDINATOR: NodeId = NodeId(1);
const PEER: NodeId = NodeId(3);

/// n2 of {n1 coordinates, n2 owns shard 0, n3 shard 1}, with the disk it wrote.
struct Part {
    cfg: TwoPcConfig,
    node: TwoPcNode,
    disk: Recovered,
}

impl Part {
    fn start() -> Part {
        Part::start_with(|_| {})
    }

    fn start_with(tune: impl Fn(&mut TwoPcConfig)) -> Part {
        let mut cfg = TwoPcConfig::lan(n(2), Topology::from_members(&[n(1), n(2), n(3)]));
        tune(&mut cfg);
        let mut p = Part {
            node: TwoPcNode::new(cfg.clone()),
            cfg,
            disk: Recovered::default(),
        };
        p.boot(Time::ZERO);
        p
    }

    /// Starts the node from its disk; the effects of the start.
    fn boot(&mut self, now: Time) -> Fx {
        self.node = TwoPcNode::new(self.cfg.clone());
        let mut out = Fx::new();
        self.node.on_start(now, self.disk.clone(), &mut out);
        self.disk.apply(&out.persist);
        out
    }

    /// A crash (volatile state gone) and a restart from what is on disk.
    fn restart(&mut self, now: Time) {
        self.boot(now);
    }

    fn deliver(&mut self, now: Time, from: NodeId, msg: Message) -> Fx {
        let mut out = Fx::new();
        self.node.on_message(now, from, msg, &mut out);
        self.disk.apply(&out.persist);
        out
    }

    fn tick(&mut self, now: Time) -> Fx {
        let mut out = Fx::new();
        self.node.on_timer(now, Timer::Tick, &mut out);
        self.disk.apply(&out.persist);
        out
    }

    fn p(&self) -> &Participant {
        match self.node.role() {
            Role::Participant(p) => p,
            Role::Coordinator(..) => panic!("a participant"),
        }
    }

    /// The coordinator's PREPARE of `txn` (age `age`) with `ops` on shard 0 (and
    /// shard 1 as the other participant), everything before `active_from` decided.
    fn prepare(
        &mut self,
        now: Time,
        txn: TxnId,
        age: TxnId,
        ops: Vec<Op>,
        active_from: TxnId,
    ) -> Fx {
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| (i as u32, op))
            .collect();
        let prepare = Message::Prepare {
            txn,
            age,
            ops,
            participants: vec![ShardId(0), ShardId(1)],
            active_from,
        };
        self.deliver(now, COORDINATOR, prepare)
    }

    fn decide(&mut self, now: Time, txn: TxnId, commit: bool) -> Fx {
        self.deliver(now, COORDINATOR, Message::Decide { txn, commit })
    }
}

fn write(key: &str, value: &str) -> Op {
    Op::Write {
        key: key.into(),
        value: value.into(),
    }
}

/// What the effects send: (to, message).
fn sent(out: &Fx) -> Vec<(NodeId, Message)> {
    (out.sends.iter()).map(|e| (e.to, e.msg.clone())).collect()
}

fn votes(out: &Fx) -> Vec<(TxnId, Vote)> {
    (out.sends.iter())
        .filter_map(|e| match &e.msg {
            Message::Vote { txn, vote } => Some((*txn, vote.clone())),
            _ => None,
        })
        .collect()
}

fn inquired(out: &Fx) -> Vec<NodeId> {
    (out.sends.iter())
        .filter(|e| matches!(e.msg, Message::Inquire { .. }))
        .map(|e| e.to)
        .collect()
}

fn known(txn: TxnId, outcome: Option<bool>) -> Message {
    Message::Known { txn, outcome }
}

const NO: Vote = Vote::No(AbortReason::Timeout);

/// Cooperative termination's abort path (BHG §7.5): a participant asked about a
/// transaction it never voted on aborts it there and then — allowed before voting —
/// so the coordinator can never collect its YES, and answers "aborted". That abort is
/// on disk before the answer leaves: after a restart, the late PREPARE gets NO, as
/// does a late PREPARE of a transaction the coordinator aborted before this
/// participant ever saw it. A committed one's late PREPARE gets nothing.
#[test]
fn twopc_7_5_a_participant_that_never_voted_aborts_when_asked_and_remembers_it_across_a_restart() {
    let mut p = Part::start();
    let out = p.prepare(Time::ZERO, t(2), t(2), vec![write("0/x", "1")], t(1));
    assert_eq!(votes(&out), vec![(t(2), Vote::Yes(vec![]))]);
    assert!(p.p().is_in_doubt(t(2)));

    // t1 is the coordinator's oldest undecided transaction (the watermark), t3 one
    // it has not sent here yet: this participant never voted on either.
    for txn in [t(1), t(3)] {
        let out = p.deliver(at(1), PEER, Message::Inquire { txn });
        assert_eq!(sent(&out), vec![(PEER, known(txn, Some(false)))]);
        assert!(
            !out.persist.is_empty(),
            "the abort is on disk before the answer"
        );
    }
    let out = p.decide(at(2), t(4), false); // aborted before its PREPARE came
    assert!(
        !out.persist.is_empty(),
        "remembered: a late PREPARE must get NO"
    );
    let out = p.decide(at(2), t(2), true);
    assert_eq!(sent(&out), vec![(COORDINATOR, Message::Ack { txn: t(2) })]);
    assert!(!p.p().is_in_doubt(t(2)));
    let mut outcomes: Vec<_> = p.p().outcomes().collect();
    outcomes.sort();
    let expected = vec![(t(1), false), (t(2), true), (t(3), false), (t(4), false)];
    assert_eq!(outcomes, expected);

    p.restart(at(10));
    for txn in [t(3), t(4)] {
        let out = p.prepare(at(11), txn, txn, vec![write("0/y", "1")], t(1));
        assert_eq!(votes(&out), vec![(txn, NO)], "{txn} aborted here before");
        assert!(!p.p().is_in_doubt(txn));
    }
    let out = p.prepare(at(12), t(2), t(2), vec![write("0/x", "1")], t(1));
    assert!(
        out.sends.is_empty(),
        "a committed one's very late PREPARE: {:?}",
        out.sends
    );
    assert_eq!(p.p().data().get("0/x").map(String::as_str), Some("1"));
}

/// In doubt, a participant asks the coordinator once `inquire_after` passed, its
/// peers too once twice that passed, and again every `inquire_after` from its last
/// question — also after a tick that came late — and not in between. Its tick runs
/// every `inquire_after / 2`.
#[test]
fn twopc_7_5_an_in_doubt_participant_asks_the_coordinator_then_its_peers_and_keeps_asking() {
    let mut p = Part::start();
    let boot = p.boot(Time::ZERO);
    let tick_at = TimerOp::Set {
        timer: Timer::Tick,
        at: at(75),
    };
    assert!(boot.timers.contains(&tick_at), "{:?}", boot.timers);
    p.prepare(Time::ZERO, t(1), t(1), vec![write("0/x", "1")], t(1));
    assert_eq!(inquired(&p.tick(at(149))), vec![]);
    assert_eq!(
        inquired(&p.tick(at(150))),
        vec![COORDINATOR],
        "inquire_after on"
    );
    assert_eq!(inquired(&p.tick(at(225))), vec![], "asked 75 ms ago");
    assert_eq!(
        inquired(&p.tick(at(300))),
        vec![COORDINATOR, PEER],
        "and the peers"
    );
    assert_eq!(
        inquired(&p.tick(at(700))),
        vec![COORDINATOR, PEER],
        "a late tick"
    );
    assert_eq!(inquired(&p.tick(at(799))), vec![]);
    let out = p.deliver(at(800), COORDINATOR, known(t(1), Some(false)));
    assert!(!p.p().is_in_doubt(t(1)), "settled: {:?}", out.sends);
    assert_eq!(inquired(&p.tick(at(2000))), vec![], "nothing left to ask");
}

/// Wait-die: an older transaction waits for a younger lock holder — queued once,
/// however often its PREPARE is repeated — and votes NO once it waited
/// `lock_wait_max`, not before.
#[test]
fn twopc_wait_die_an_older_prepare_waits_once_and_at_most_lock_wait_max() {
    let mut p = Part::start();
    let young = p.prepare(Time::ZERO, t(2), t(2), vec![write("0/x", "y")], t(1));
    assert_eq!(votes(&young), vec![(t(2), Vote::Yes(vec![]))]);
    for _ in 0..2 {
        let old = p.prepare(Time::ZERO, t(1), t(1), vec![write("0/x", "o")], t(1));
        assert_eq!(votes(&old), vec![], "the older waits");
        assert_eq!(p.p().waiting(), 1, "queued once");
    }
    assert_eq!(votes(&p.tick(at(50))), vec![], "within lock_wait_max");
    assert_eq!(
        votes(&p.tick(at(100))),
        vec![(t(1), NO)],
        "waited long enough"
    );
    assert_eq!(p.p().waiting(), 0);
}

/// Wait-die's restart rule at the participant: a retry holding a lock is as old as
/// its first attempt, so a transaction younger than that first attempt dies at once
/// rather than wait behind what it takes for a young holder.
#[test]
fn twopc_wait_die_a_retry_holding_a_lock_is_as_old_as_its_first_attempt() {
    let mut p = Part::start();
    let retry = p.prepare(Time::ZERO, t(5), t(1), vec![write("0/x", "r")], t(1));
    assert_eq!(votes(&retry), vec![(t(5), Vote::Yes(vec![]))]);
    let younger = p.prepare(Time::ZERO, t(3), t(3), vec![write("0/x", "y")], t(1));
    let conflict = Vote::No(AbortReason::Conflict);
    assert_eq!(
        votes(&younger),
        vec![(t(3), conflict)],
        "younger than t5's age dies"
    );
    assert_eq!(p.p().waiting(), 0);
}

/// Presumed abort bounds the participant's memory: once the coordinator says
/// everything before T is decided (`active_from`), the outcome records below T are
/// dropped — nobody can ask for them with a PREPARE any more — and those from T on
/// are kept.
#[test]
fn twopc_presumed_abort_outcome_records_below_the_coordinators_watermark_are_dropped() {
    let mut p = Part::start();
    for k in [1, 2, 3] {
        p.decide(Time::ZERO, t(k), false);
    }
    assert_eq!(p.p().outcomes().count(), 3);
    p.prepare(at(1), t(5), t(5), vec![write("0/x", "1")], t(3));
    assert_eq!(p.p().outcomes().collect::<Vec<_>>(), vec![(t(3), false)]);
}

/// A `Cas` votes NO (refused) unless the value is the expected one — a missing key
/// counts as `""` — and a transaction's reads see its own earlier writes.
#[test]
fn twopc_a_cas_is_refused_unless_it_finds_the_expected_value() {
    let mut p = Part::start();
    let cas = |expected: &str, new: &str| Op::Cas {
        key: "0/x".into(),
        expected: expected.into(),
        new: new.into(),
    };
    let refused = Vote::No(AbortReason::Refused);
    assert_eq!(
        votes(&p.prepare(Time::ZERO, t(1), t(1), vec![cas("a", "b")], t(1))),
        vec![(t(1), refused.clone())]
    );
    let ops = vec![cas("", "a"), cas("a", "b"), Op::Read { key: "0/x".into() }];
    let read = Vote::Yes(vec![(2, OpResult::Value(Some("b".into())))]);
    assert_eq!(
        votes(&p.prepare(Time::ZERO, t(2), t(2), ops, t(2))),
        vec![(t(2), read)]
    );
    p.decide(at(1), t(2), true);
    assert_eq!(
        votes(&p.prepare(at(2), t(3), t(3), vec![cas("a", "c")], t(3))),
        vec![(t(3), refused)]
    );
    assert_eq!(p.p().data().get("0/x").map(String::as_str), Some("b"));
}

/// `DoubtStats::blocked` counts a transaction in doubt *longer* than twice
/// `inquire_after` (asking everyone did not settle it at once) — not one settled
/// right at that mark.
#[test]
fn twopc_7_5_blocked_counts_only_doubt_longer_than_asking_everyone_takes() {
    let mut p = Part::start();
    p.prepare(Time::ZERO, t(1), t(1), vec![write("0/x", "1")], t(1));
    p.prepare(Time::ZERO, t(2), t(2), vec![write("0/y", "1")], t(1));
    p.decide(at(300), t(1), true);
    p.decide(at(301), t(2), true);
    let stats = p.p().doubt_stats();
    assert_eq!((stats.settled, stats.blocked), (2, 1), "{stats:?}");
    assert_eq!(stats.in_doubt_max, Duration::from_millis(301));
}

fn snapshots(out: &Fx) -> usize {
    (out.persist.ops().iter())
        .filter(|op| matches!(op, StorageOp::SaveSnapshot(_)))
        .count()
}

/// The journal is compacted into a snapshot every `snapshot_every` records — not
/// more often — and a restart from the snapshot has the data, the prepared
/// transactions (still in doubt, with their locks) and the outcomes.
#[test]
fn twopc_7_4_a_participant_restarted_from_its_snapshot_has_its_data_prepared_and_outcomes() {
    let mut quiet = Part::start();
    let mut written = 0;
    for k in 1..=4 {
        quiet.prepare(
            Time::ZERO,
            t(k),
            t(k),
            vec![write(&format!("0/k{k}"), "v")],
            t(1),
        );
        written += snapshots(&quiet.decide(Time::ZERO, t(k), true));
    }
    assert_eq!(written, 0, "4 settles, 8 records: none due at 4096");

    let mut p = Part::start_with(|cfg| cfg.participant.snapshot_every = 2);
    p.prepare(Time::ZERO, t(1), t(1), vec![write("0/x", "1")], t(1));
    let out = p.decide(Time::ZERO, t(1), true);
    assert_eq!(snapshots(&out), 1, "2 records: a snapshot is due");
    p.decide(at(1), t(2), false);
    p.prepare(at(1), t(3), t(3), vec![write("0/y", "2")], t(1));
    p.restart(at(2));
    assert_eq!(p.p().data().get("0/x").map(String::as_str), Some("1"));
    assert!(
        p.p().is_in_doubt(t(3)),
        "prepared, in doubt after the restart"
    );
    assert!(p.p().locked_keys() > 0);
    let mut outcomes: Vec<_> = p.p().outcomes().collect();
    outcomes.sort();
    assert_eq!(outcomes, vec![(t(1), true), (t(2), false)]);
    p.decide(at(3), t(3), true);
    assert_eq!(p.p().data().get("0/y").map(String::as_str), Some("2"));
}

/// With a replicated coordinator (`twopc-nb`), a participant sends a client to the
/// replica it just heard a PREPARE from — the one coordinating now — not round the
/// replicas.
#[test]
fn twopc_nb_a_participant_sends_clients_to_the_replica_it_just_heard_from() {
    let members: Vec<NodeId> = (1..=5).map(n).collect();
    let cfg = TwoPcConfig::lan(n(4), Topology::replicated(&members, 3));
    let mut node = TwoPcNode::new(cfg);
    node.on_start(Time::ZERO, Recovered::default(), &mut Fx::new());
    let prepare = Message::Prepare {
        txn: t(1),
        age: t(1),
        ops: vec![(0, write("0/x", "1"))],
        participants: vec![ShardId(0)],
        active_from: t(1),
    };
    node.on_message(Time::ZERO, n(3), prepare, &mut Fx::new());
    for now in [10, 20, 150] {
        let mut out = Fx::new();
        let req = ClientRequest {
            client: ClientId(9),
            seq: 1,
            op: Txn { ops: vec![] },
        };
        node.on_client_request(at(now), req, &mut out);
        let hint = Outcome::NotLeader { leader: Some(n(3)) };
        assert_eq!(out.replies[0].outcome, hint, "at {now} ms");
    }
}
