//! The coordinator's rules driven input by input, through its public API: client
//! sessions (exactly once), a log that decides later (a replicated one, as `twopc-nb`'s
//! Raft), stepping down, the vote timeout and the COMMIT resend cadence — and the
//! classic node's durability bookkeeping, driven through the `Node` trait with the
//! persist notifications in the test's hands. Each asserts what a cluster run cannot
//! tell apart: how many PREPAREs a retry started, what a duplicate is answered, which
//! batch made which decision durable.

use std::collections::VecDeque;
use std::time::Duration;
use synod_core::{ClientId, Node, NodeId, Outcome, Recovered, StateMachine, Time, TimerOp};
use synod_twopc::{
    AbortReason, Coordinator, CoordinatorTiming, Decided, DecisionCmd, DecisionLog, DecisionOutput,
    Decisions, Fx, Message, Op, OpResult, Role, ShardId, Timer, Topology, TwoPcConfig, TwoPcNode,
    Txn, TxnId, TxnOutcome, Vote,
};

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

const X: ClientId = ClientId(7);
const Y: ClientId = ClientId(8);

/// n1 coordinates; n2 owns shard 0, n3 shard 1 (keys `"0/…"` and `"1/…"`).
fn topology() -> Topology {
    Topology::from_members(&[n(1), n(2), n(3)])
}

const TIMING: CoordinatorTiming = CoordinatorTiming {
    vote_timeout: Duration::from_millis(200),
    resend_every: Duration::from_millis(50),
    snapshot_every: 4096,
};

fn write(key: &str, value: &str) -> Op {
    Op::Write {
        key: key.into(),
        value: value.into(),
    }
}

/// A decision log that applies a record when the test says so — a replicated log
/// whose entries commit later (`None` from `propose`); with `defer` off, at once, as
/// the classic coordinator's journal does.
#[derive(Default)]
struct TestLog {
    state: Decisions,
    defer: bool,
    pending: VecDeque<DecisionCmd>,
}

impl TestLog {
    fn deferred() -> TestLog {
        TestLog {
            defer: true,
            ..TestLog::default()
        }
    }

    /// Commits the oldest proposed record: its output, for `Coordinator::on_decided`.
    fn apply_next(&mut self) -> DecisionOutput {
        let cmd = self.pending.pop_front().expect("a proposed record");
        self.state.apply(&cmd)
    }
}

impl DecisionLog for TestLog {
    fn decisions(&self) -> &Decisions {
        &self.state
    }

    fn propose(&mut self, cmd: DecisionCmd, _out: &mut Fx) -> Option<DecisionOutput> {
        if self.defer {
            self.pending.push_back(cmd);
            return None;
        }
        Some(self.state.apply(&cmd))
    }
}

/// A coordinator leading epoch 1 from t = 0, and its log.
fn leading(log: TestLog) -> (Coordinator, TestLog) {
    let mut k = Coordinator::new(topology(), TIMING);
    k.lead(Time::ZERO, 1, &log.state, &mut Fx::new());
    (k, log)
}

fn request(
    k: &mut Coordinator,
    log: &TestLog,
    now: Time,
    client: ClientId,
    seq: u64,
    ops: Vec<Op>,
) -> Fx {
    let mut out = Fx::new();
    k.on_client_request(now, client, seq, ops, &log.state, &mut out);
    out
}

fn vote(k: &mut Coordinator, log: &mut TestLog, now: Time, from: u64, txn: TxnId, v: Vote) -> Fx {
    let mut out = Fx::new();
    k.on_vote(now, n(from), txn, v, log, &mut out);
    out
}

fn yes(k: &mut Coordinator, log: &mut TestLog, now: Time, from: u64, txn: TxnId) -> Fx {
    vote(k, log, now, from, txn, Vote::Yes(vec![]))
}

fn tick(k: &mut Coordinator, now: Time) -> Fx {
    let mut out = Fx::new();
    k.on_tick(now, &mut out);
    out
}

/// The transactions the effects PREPARE, once each.
fn prepared(out: &Fx) -> Vec<TxnId> {
    let mut txns: Vec<TxnId> = (out.sends.iter())
        .filter_map(|e| match e.msg {
            Message::Prepare { txn, .. } => Some(txn),
            _ => None,
        })
        .collect();
    txns.dedup();
    txns
}

/// The DECIDEs the effects send: (to, txn, commit).
fn decides(out: &Fx) -> Vec<(NodeId, TxnId, bool)> {
    (out.sends.iter())
        .filter_map(|e| match e.msg {
            Message::Decide { txn, commit } => Some((e.to, txn, commit)),
            _ => None,
        })
        .collect()
}

fn replies(out: &Fx) -> Vec<(ClientId, u64, Outcome<TxnOutcome>)> {
    (out.replies.iter())
        .map(|r| (r.client, r.seq, r.outcome.clone()))
        .collect()
}

fn done(answer: TxnOutcome) -> Outcome<TxnOutcome> {
    Outcome::Done(answer)
}

fn committed() -> TxnOutcome {
    TxnOutcome::Committed(vec![OpResult::Done])
}

/// The one transaction `out` prepares.
fn the_prepared(out: &Fx) -> TxnId {
    match prepared(out)[..] {
        [txn] => txn,
        ref other => panic!("expected one PREPARE'd transaction, got {other:?}"),
    }
}

/// Exactly once, at the coordinator: a retry or a delayed copy of a request never
/// starts a second attempt — not while the request runs, not while a later request
/// of the same client runs, not after its answer (a retry is answered again, a copy
/// of an earlier request is dropped). A second attempt would be harmless only while
/// the log turns it into a duplicate; each one here would be a PREPARE that locks
/// and may deadlock, and a stale copy of an answered request would run it again.
#[test]
fn twopc_exactly_once_retries_and_copies_never_start_a_second_attempt() {
    let (mut k, mut log) = leading(TestLog::default());
    let t0 = Time::ZERO;
    let x1 = the_prepared(&request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]));

    let retry = request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]);
    assert!(
        retry.is_empty(),
        "a retry of a running request: {:?}",
        retry.sends
    );

    // The client moved on (its first reply was lost; it timed out); request 1 runs.
    let x2 = the_prepared(&request(&mut k, &log, t0, X, 2, vec![write("0/b", "2")]));
    let copy = request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]);
    assert!(
        copy.is_empty(),
        "a copy of 1 while 2 runs: {:?}",
        copy.sends
    );

    // Request 1 commits; request 2 still runs: its retry starts nothing either.
    let out = yes(&mut k, &mut log, t0, 2, x1);
    assert_eq!(replies(&out), vec![(X, 1, done(committed()))]);
    let retry = request(&mut k, &log, t0, X, 2, vec![write("0/b", "2")]);
    assert!(
        retry.is_empty(),
        "a retry of 2 after 1 committed: {:?}",
        retry.sends
    );

    // Request 2 commits: a retry is answered again, from the session, and runs nothing.
    let out = yes(&mut k, &mut log, t0, 2, x2);
    assert_eq!(replies(&out), vec![(X, 2, done(committed()))]);
    let retry = request(&mut k, &log, t0, X, 2, vec![write("0/b", "2")]);
    assert_eq!(replies(&retry), vec![(X, 2, done(committed()))]);
    assert!(prepared(&retry).is_empty(), "answered, not run again");

    // A copy of request 1 is stale now: no answer (the client is past it), no run.
    let copy = request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]);
    assert!(
        copy.is_empty(),
        "a stale copy: {:?} {:?}",
        copy.sends,
        copy.replies
    );
    assert_eq!(k.active(), 0);
}

/// A retry after an abort the client may retry (a conflict, a timeout) runs again,
/// as a new attempt with the first attempt's age (wait-die's restart rule); a new
/// request starts with its own age.
#[test]
fn twopc_wait_die_a_retry_runs_again_with_its_first_attempts_age_a_new_request_its_own() {
    let (mut k, mut log) = leading(TestLog::default());
    let t0 = Time::ZERO;
    let first = the_prepared(&request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]));
    let out = vote(
        &mut k,
        &mut log,
        t0,
        2,
        first,
        Vote::No(AbortReason::Conflict),
    );
    let conflict = TxnOutcome::Aborted(AbortReason::Conflict);
    assert_eq!(replies(&out), vec![(X, 1, done(conflict))]);

    let age_of = |out: &Fx| match out.sends[..] {
        [ref e] => match e.msg {
            Message::Prepare { txn, age, .. } => (txn, age),
            ref m => panic!("not a PREPARE: {m:?}"),
        },
        ref s => panic!("expected one send, got {s:?}"),
    };
    let (again, age) = age_of(&request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]));
    assert!(again > first, "a new attempt");
    assert_eq!(age, first, "keeps its first attempt's age");
    let out = yes(&mut k, &mut log, t0, 2, again);
    assert_eq!(replies(&out), vec![(X, 1, done(committed()))]);

    let (next, age) = age_of(&request(&mut k, &log, t0, X, 2, vec![write("0/a", "2")]));
    assert_eq!(age, next, "a new request is as young as its first attempt");
}

/// A replicated log (`twopc-nb`): a decision being logged is still active, and if
/// another attempt of the same request was logged first, this one is a duplicate —
/// aborted at its participants, its client given the first attempt's answer, and
/// never resent as a COMMIT.
#[test]
fn twopc_nb_a_decision_being_logged_is_active_and_a_duplicate_is_never_resent_as_commit() {
    let (mut k, mut log) = leading(TestLog::deferred());
    let t0 = Time::ZERO;
    let ops = vec![write("0/a", "1"), write("1/b", "1")];
    let txn = the_prepared(&request(&mut k, &log, t0, X, 1, ops));
    assert_eq!(k.active(), 1, "collecting votes");
    yes(&mut k, &mut log, t0, 2, txn);
    let out = yes(&mut k, &mut log, t0, 3, txn);
    assert!(
        out.sends.is_empty() && out.replies.is_empty(),
        "nothing before the log decides"
    );
    assert_eq!(k.active(), 1, "being logged");

    // Another attempt of (X, 1) — through an earlier leader — was logged first.
    let first = vec![OpResult::Value(Some("first".into()))];
    let earlier = DecisionCmd::Commit {
        txn: TxnId::new(1, 99),
        decided: Decided {
            participants: vec![ShardId(0)],
            client: X,
            seq: 1,
            results: first.clone(),
        },
    };
    log.state.apply(&earlier);
    let output = log.apply_next();
    assert_eq!(
        output,
        DecisionOutput::Duplicate(txn, TxnOutcome::Committed(first.clone()))
    );
    let mut out = Fx::new();
    k.on_decided(t0, output, &mut out);
    assert_eq!(decides(&out), vec![(n(2), txn, false), (n(3), txn, false)]);
    assert_eq!(
        replies(&out),
        vec![(X, 1, done(TxnOutcome::Committed(first)))]
    );
    assert_eq!(k.active(), 0);
    assert_eq!(
        k.unacknowledged().count(),
        0,
        "an aborted duplicate awaits no ACK"
    );
    let out = tick(&mut k, t0 + TIMING.resend_every);
    assert!(
        decides(&out).is_empty(),
        "no COMMIT resent: {:?}",
        out.sends
    );
}

/// A refusal being logged (`twopc-nb`) is still active: its participants are told
/// ABORT at once (they need no record), its client only once the log holds the
/// refusal — the answer is final, so it must survive a change of leader.
#[test]
fn twopc_nb_a_refusal_is_answered_only_once_logged_and_is_active_until_then() {
    let (mut k, mut log) = leading(TestLog::deferred());
    let t0 = Time::ZERO;
    let txn = the_prepared(&request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]));
    let out = vote(&mut k, &mut log, t0, 2, txn, Vote::No(AbortReason::Refused));
    assert_eq!(
        decides(&out),
        vec![(n(2), txn, false)],
        "ABORT needs no record"
    );
    assert!(out.replies.is_empty(), "the client waits for the record");
    assert_eq!(k.active(), 1, "being logged");
    let output = log.apply_next();
    assert_eq!(output, DecisionOutput::Refused(txn));
    let mut out = Fx::new();
    k.on_decided(t0, output, &mut out);
    let refused = TxnOutcome::Aborted(AbortReason::Refused);
    assert_eq!(replies(&out), vec![(X, 1, done(refused.clone()))]);
    assert_eq!(k.active(), 0);
    let retry = request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]);
    assert_eq!(
        replies(&retry),
        vec![(X, 1, done(refused))],
        "from the session"
    );
    assert!(prepared(&retry).is_empty());
}

/// A deposed coordinator (its replica lost the Raft leadership) aborts what
/// collected votes with it, forgets what it was logging — the log decides that, and
/// whoever leads next answers it — and does not block a retry once it leads again.
/// Leading a later epoch, it answers an inquiry only about earlier epochs (presumed
/// abort) — never about a transaction of an epoch after its own.
#[test]
fn twopc_nb_a_deposed_coordinator_forgets_its_work_and_never_answers_for_a_later_epoch() {
    let (mut k, mut log) = leading(TestLog::deferred());
    let t0 = Time::ZERO;
    let x = the_prepared(&request(&mut k, &log, t0, X, 1, vec![write("0/a", "1")]));
    yes(&mut k, &mut log, t0, 2, x); // being logged
    let y = the_prepared(&request(&mut k, &log, t0, Y, 1, vec![write("1/b", "1")]));
    assert_eq!(k.active(), 2);

    let mut out = Fx::new();
    k.step_down(&mut out);
    assert_eq!(k.epoch(), None);
    assert_eq!(k.active(), 0, "nothing of it is this replica's to finish");
    let timeout = TxnOutcome::Aborted(AbortReason::Timeout);
    assert_eq!(replies(&out), vec![(Y, 1, done(timeout))]);
    assert_eq!(decides(&out), vec![(n(3), y, false)]);
    assert!(out.timers.contains(&TimerOp::Cancel(Timer::Tick)));

    // The log lost x's record (never committed); this replica leads again, later.
    log.pending.clear();
    k.lead(at(10), 2, &log.state, &mut Fx::new());
    let retry = request(&mut k, &log, at(10), X, 1, vec![write("0/a", "1")]);
    let again = the_prepared(&retry);
    assert_eq!(again.epoch(), 2);

    let ask = |k: &mut Coordinator, txn: TxnId| {
        let mut out = Fx::new();
        k.on_inquire(n(2), txn, &log.state, &mut out);
        (out.sends.iter())
            .map(|e| e.msg.clone())
            .collect::<Vec<Message>>()
    };
    let later = TxnId::new(3, 1);
    assert_eq!(ask(&mut k, later), vec![], "epoch 3 is not ours to answer");
    let forgotten = TxnId::new(1, 7);
    let known = Message::Known {
        txn: forgotten,
        outcome: Some(false),
    };
    assert_eq!(ask(&mut k, forgotten), vec![known], "presumed abort");
}

/// A vote that never comes aborts the transaction once `vote_timeout` passed — not
/// before; an unacknowledged COMMIT is sent again every `resend_every` from the last
/// send — also after a late tick — and not in between.
#[test]
fn twopc_7_4_votes_time_out_and_unacknowledged_commits_are_resent_every_resend_period() {
    let (mut k, mut log) = leading(TestLog::default());
    let lost = the_prepared(&request(
        &mut k,
        &log,
        Time::ZERO,
        X,
        1,
        vec![write("0/a", "1")],
    ));
    assert!(
        tick(&mut k, at(100)).replies.is_empty(),
        "within the vote timeout"
    );
    let out = tick(&mut k, at(200));
    let timeout = TxnOutcome::Aborted(AbortReason::Timeout);
    assert_eq!(replies(&out), vec![(X, 1, done(timeout))]);
    assert_eq!(decides(&out), vec![(n(2), lost, false)]);

    let t = 1_000;
    let ops = vec![write("0/a", "1"), write("1/b", "1")];
    let txn = the_prepared(&request(&mut k, &log, at(t), Y, 1, ops));
    yes(&mut k, &mut log, at(t), 2, txn);
    yes(&mut k, &mut log, at(t), 3, txn);
    let mut ack = Fx::new();
    k.on_ack(n(2), txn, &mut log, &mut ack);
    assert_eq!(k.unacknowledged().collect::<Vec<_>>(), vec![txn]);
    let resend = vec![(n(3), txn, true)];
    assert_eq!(decides(&tick(&mut k, at(t + 10))), vec![], "too soon");
    assert_eq!(decides(&tick(&mut k, at(t + 50))), resend, "one period on");
    assert_eq!(decides(&tick(&mut k, at(t + 60))), vec![], "too soon again");
    assert_eq!(decides(&tick(&mut k, at(t + 170))), resend, "a late tick");
    k.on_ack(n(3), txn, &mut log, &mut ack);
    assert_eq!(k.unacknowledged().count(), 0);
    assert_eq!(
        log.state.commits().count(),
        0,
        "forgotten once all acknowledged"
    );
}

// ----- the classic node -------------------------------------------------------------

fn node() -> TwoPcNode {
    let mut node = TwoPcNode::new(TwoPcConfig::lan(n(1), topology()));
    node.on_start(Time::ZERO, Recovered::default(), &mut Fx::new());
    node
}

/// Runs (client, 1) over both shards to its commit decision: the transaction and
/// the batch tag the node asked to hear about.
fn commit_on(node: &mut TwoPcNode, client: ClientId) -> (TxnId, u64) {
    let mut out = Fx::new();
    let txn = Txn {
        ops: vec![write("0/a", "1"), write("1/b", "1")],
    };
    let req = synod_core::ClientRequest {
        client,
        seq: 1,
        op: txn,
    };
    node.on_client_request(Time::ZERO, req, &mut out);
    let txn = the_prepared(&out);
    let mut out = Fx::new();
    for from in [2, 3] {
        let vote = Message::Vote {
            txn,
            vote: Vote::Yes(vec![]),
        };
        node.on_message(Time::ZERO, n(from), vote, &mut out);
    }
    assert_eq!(decides(&out).len(), 2, "COMMIT to both, behind the record");
    let tag = out
        .persist_notify
        .expect("the decision's batch is to be confirmed");
    (txn, tag)
}

fn outcomes(node: &TwoPcNode) -> Vec<(TxnId, bool)> {
    node.known_outcomes()
}

/// Atomicity counts only durable decisions: the classic coordinator reports a
/// commit as known once the batch holding its record is confirmed durable — each
/// batch by its own tag, every earlier one with it — and holds it, unacknowledged,
/// until every participant acknowledged.
#[test]
fn twopc_7_2_atomicity_a_decision_counts_once_its_own_batch_is_durable() {
    let mut node = node();
    let (t1, tag1) = commit_on(&mut node, X);
    assert_eq!(outcomes(&node), vec![], "not durable yet");
    let (t2, tag2) = commit_on(&mut node, Y);
    assert_ne!(tag1, tag2, "each batch is confirmed on its own");
    node.on_persisted(Time::ZERO, tag1, &mut Fx::new());
    assert_eq!(
        outcomes(&node),
        vec![(t1, true)],
        "only the first batch landed"
    );
    node.on_persisted(Time::ZERO, tag2, &mut Fx::new());
    assert_eq!(outcomes(&node), vec![(t1, true), (t2, true)]);

    let Role::Coordinator(k, _) = node.role() else {
        panic!("n1 coordinates")
    };
    assert_eq!(k.unacknowledged().collect::<Vec<_>>(), vec![t1, t2]);
    let mut out = Fx::new();
    for from in [2, 3] {
        node.on_message(Time::ZERO, n(from), Message::Ack { txn: t1 }, &mut out);
    }
    let Role::Coordinator(k, _) = node.role() else {
        panic!("n1 coordinates")
    };
    assert_eq!(k.unacknowledged().collect::<Vec<_>>(), vec![t2]);
    assert_eq!(outcomes(&node), vec![(t2, true)], "t1 forgotten");

    // A later confirmation of both at once (a driver may confirm batches together).
    let (t3, _) = commit_on(&mut node, ClientId(9));
    let (t4, tag4) = commit_on(&mut node, ClientId(10));
    node.on_persisted(Time::ZERO, tag4, &mut Fx::new());
    assert_eq!(outcomes(&node), vec![(t2, true), (t3, true), (t4, true)]);
}

/// A coordinator whose storage holds what it cannot read stops and says why: no
/// PREPARE, no persist — never a coordinator that forgot its incarnation and reuses
/// transaction ids.
#[test]
fn twopc_a_coordinator_with_unreadable_storage_halts() {
    let mut node = TwoPcNode::new(TwoPcConfig::lan(n(1), topology()));
    let mut recovered = Recovered::default();
    (recovered.meta).insert("twopc.incarnation".into(), vec![0xff; 3]);
    let mut out = Fx::new();
    node.on_start(Time::ZERO, recovered, &mut out);
    let reason = node.halted().expect("halted");
    assert!(reason.contains("incarnation"), "{reason}");
    assert!(out.sends.is_empty() && out.persist.is_empty());
    let req = synod_core::ClientRequest {
        client: X,
        seq: 1,
        op: Txn {
            ops: vec![write("0/a", "1")],
        },
    };
    let mut out = Fx::new();
    node.on_client_request(Time::ZERO, req, &mut out);
    assert!(out.is_empty(), "a halted node answers nothing");
}
