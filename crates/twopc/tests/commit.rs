//! Two-phase commit's rules, each driven through the event sequence that would break
//! it (Bernstein, Hadzilacos & Goodman, ch. 7; presumed abort: Mohan et al. 1986).

mod common;

use common::*;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use synod_core::NodeId;
use synod_twopc::{Message, OpResult};

static COMMITS: AtomicUsize = AtomicUsize::new(0);
static ABORTS: AtomicUsize = AtomicUsize::new(0);

fn is_decide(commit: bool) -> impl Fn(NodeId, NodeId, &Message) -> bool {
    move |_, _, m| matches!(m, Message::Decide { commit: c, .. } if *c == commit)
}

fn is_vote(_: NodeId, _: NodeId, m: &Message) -> bool {
    matches!(m, Message::Vote { .. })
}

/// Runs the two-shard transaction on the wire until both COMMITs are queued (the
/// decision is logged), then loses the one to `p`.
fn lose_the_commit_to(c: &mut Cluster, p: u64) {
    c.deliver_until(|c| c.count_queued(is_decide(true)) == 2);
    c.drop_all(|_, to, m| to == n(p) && matches!(m, Message::Decide { .. }));
}

/// The fault-free run: a transaction over two shards commits at both, with the
/// reads it made, in exactly 4 messages per participant (PREPARE, vote, COMMIT,
/// ACK: 4n), and leaves nothing locked or remembered at the coordinator.
#[test]
fn twopc_7_3_a_transaction_commits_at_every_shard_in_4n_messages() {
    let (mut c, _) = cluster(3);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let t = txn(
        &mut c,
        vec![write(&a, "1"), read(&b), write(&b, "2"), read(&a)],
    );
    c.run_for(ms(100));
    let results = committed(&c, t).expect("committed");
    assert_eq!(
        results,
        vec![
            OpResult::Done,
            OpResult::Value(None),
            OpResult::Done,
            OpResult::Value(Some("1".into()))
        ],
        "each read sees the transaction's own earlier writes"
    );
    assert_eq!(
        (value(&c, &a), value(&c, &b)),
        (Some("1".into()), Some("2".into()))
    );
    let messages = c.delivered.len();
    assert_eq!(messages, 4 * 2, "4n messages for n = 2 participants");
    assert_quiescent(&c);
    for id in [owner(&c, &a), owner(&c, &b)] {
        let p = participant(&c, id);
        let stats = p.doubt_stats();
        assert_eq!((stats.settled, stats.blocked), (1, 0), "n{id}: {stats:?}");
    }
}

/// Presumed abort: the coordinator crashes before deciding (votes in, nothing
/// logged). The prepared participants are in doubt; they ask; the restarted
/// coordinator has no record, so the transaction aborted — everywhere.
#[test]
fn twopc_presumed_abort_a_coordinator_crash_before_the_decision_aborts_everywhere() {
    let (mut c, _) = cluster(2);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let t = txn(&mut c, vec![write(&a, "x"), write(&b, "y")]);
    // Deliver the PREPAREs, hold the votes, crash the coordinator.
    c.deliver_until(|c| c.count_queued(is_vote) == 2);
    c.crash(COORDINATOR);
    c.drop_all(is_vote);
    c.restart(COORDINATOR);
    c.run_for(ms(1000));
    assert_eq!(
        c.outcome(t),
        None,
        "the client of a forgotten transaction hears nothing"
    );
    assert_eq!((value(&c, &a), value(&c, &b)), (None, None));
    assert_quiescent(&c);
}

/// The decision record: once the coordinator logged COMMIT, a crash before any COMMIT
/// was delivered still ends with the transaction committed at every shard (the
/// restarted coordinator resends the decision it logged).
#[test]
fn twopc_7_4_a_logged_decision_survives_a_coordinator_crash() {
    let (mut c, _) = cluster(2);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let t = txn(&mut c, vec![write(&a, "x"), write(&b, "y")]);
    c.deliver_until(|c| c.queued(is_decide(true)).is_some());
    c.crash(COORDINATOR);
    c.drop_all(is_decide(true));
    assert_eq!(
        (value(&c, &a), value(&c, &b)),
        (None, None),
        "not applied yet"
    );
    c.restart(COORDINATOR);
    c.run_for(ms(1000));
    assert_eq!(
        (value(&c, &a), value(&c, &b)),
        (Some("x".into()), Some("y".into()))
    );
    // The client's retry with the same seq gets the committed answer, not a rerun.
    let again = c.request(
        COORDINATOR,
        t.client,
        t.seq,
        synod_twopc::Txn { ops: vec![] },
    );
    c.deliver_all();
    assert!(committed(&c, again).is_some());
    assert_quiescent(&c);
}

/// The prepared record: a participant that voted YES and crashed before the COMMIT
/// recovers its staged writes, is in doubt, asks, and commits as decided.
#[test]
fn twopc_7_4_a_participant_that_voted_yes_recovers_in_doubt_and_ends_as_decided() {
    let (mut c, _) = cluster(2);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let p = owner(&c, &a);
    let t = txn(&mut c, vec![write(&a, "x"), write(&b, "y")]);
    c.deliver_until(|c| c.queued(is_decide(true)).is_some());
    c.crash(p);
    c.run_for(ms(30)); // the other shard commits; our COMMIT is lost with the crash
    c.restart(p);
    c.run_for(ms(1000));
    assert!(committed(&c, t).is_some());
    assert_eq!(
        value(&c, &a),
        Some("x".into()),
        "the prepared writes survived"
    );
    assert_quiescent(&c);
}

/// Cooperative termination: the coordinator is gone for good after the decision
/// reached one participant. The other, in doubt, asks its peer — which knows — and
/// commits without the coordinator.
#[test]
fn twopc_7_5_cooperative_termination_learns_the_outcome_from_a_peer() {
    let (mut c, _) = cluster(2);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let (pa, pb) = (owner(&c, &a), owner(&c, &b));
    txn(&mut c, vec![write(&a, "x"), write(&b, "y")]);
    lose_the_commit_to(&mut c, pb);
    c.crash(COORDINATOR);
    c.run_for(ms(2000));
    assert_eq!(
        value(&c, &b),
        Some("y".into()),
        "n{pb} learned the commit from n{pa}"
    );
}

/// ... and the blocking case: when the coordinator and every other participant that
/// voted are down, an in-doubt participant can do nothing but wait, holding its
/// locks. It ends as decided once the coordinator is back.
#[test]
fn twopc_7_5_an_in_doubt_participant_blocks_while_everyone_who_knows_is_down() {
    let (mut c, _) = cluster(2);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let (pa, pb) = (owner(&c, &a), owner(&c, &b));
    let t = txn(&mut c, vec![write(&a, "x"), write(&b, "y")]);
    lose_the_commit_to(&mut c, pb);
    c.deliver_all(); // n{pa} commits
    c.crash(COORDINATOR);
    c.crash(pa);
    c.run_for(ms(3000));
    let p = participant(&c, pb);
    assert_eq!(p.in_doubt().count(), 1, "blocked: in doubt");
    assert!(p.locked_keys() > 0, "and holding its locks");
    assert_eq!(value(&c, &b), None);
    c.restart(COORDINATOR);
    c.restart(pa);
    c.run_for(ms(1000));
    assert_eq!(value(&c, &b), Some("y".into()));
    assert!(committed(&c, t).is_some());
    assert_quiescent(&c);
    // The blocking, measured: in doubt for the whole outage.
    let p = participant(&c, pb);
    let stats = p.doubt_stats();
    assert_eq!((stats.settled, stats.blocked), (1, 1), "{stats:?}");
    assert!(stats.in_doubt_max >= ms(3000), "{stats:?}");
}

/// Wait-die resolves a deadlock: T1 (older) locks a first, T2 (younger) locks b
/// first; each then needs the other's key. At a's shard T2 meets the older holder
/// and dies; T1, waiting for b behind the younger T2, gets it once T2 aborts.
#[test]
fn twopc_wait_die_a_deadlock_is_resolved_by_aborting_the_younger() {
    let (mut c, _) = cluster(2);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let (pa, pb) = (owner(&c, &a), owner(&c, &b));
    let t1 = txn(&mut c, vec![write(&a, "1"), write(&b, "1")]);
    let t2 = txn(&mut c, vec![write(&b, "2"), write(&a, "2")]);
    // T1's PREPARE reaches a's shard first, T2's reaches b's shard first.
    let prepare = |txn_index: usize, to: u64| {
        move |c: &Cluster| {
            c.queued(|_, t, m| {
                t == n(to) && matches!(m, Message::Prepare { txn, .. } if (txn.0 & 0xffff_ffff) as usize == txn_index)
            })
        }
    };
    let i = prepare(1, pa)(&c).expect("T1 → a");
    c.deliver_at(i);
    let i = prepare(2, pb)(&c).expect("T2 → b");
    c.deliver_at(i);
    c.run_for(ms(500));
    assert!(committed(&c, t1).is_some(), "the older commits");
    assert!(aborted(&c, t2), "the younger dies");
    assert_eq!(
        (value(&c, &a), value(&c, &b)),
        (Some("1".into()), Some("1".into()))
    );
    assert_quiescent(&c);
}

/// A bank over 3 shards under loss, duplication, reordering, crashes and
/// partitions: atomicity after every step (the check), and money is conserved in
/// the final state once everything settles. Found on its first run: an in-doubt
/// participant asked a peer that had dropped its outcome record (below the
/// watermark) and was told "abort" for a committed transaction; and a late copy of a
/// YES answered with ABORT after the commit was forgotten.
#[test]
fn twopc_bank_conserves_money_under_chaos() {
    for_seeds(0..200, |seed| {
        // Odd seeds snapshot and compact every 8 journal records, across crashes.
        let every = if seed % 2 == 1 { 8 } else { 4096 };
        let (mut c, _) = cluster_with(3, move |cfg| {
            cfg.coordinator.snapshot_every = every;
            cfg.participant.snapshot_every = every;
        });
        let accounts: Vec<String> = (0..6).map(|i| format!("acct{i}")).collect();
        let seed_money = txn(&mut c, accounts.iter().map(|k| add(k, 100)).collect());
        c.run_for(ms(200));
        assert!(committed(&c, seed_money).is_some());
        let mut rng = synod_core::Prng::new(seed);
        let faults = Faults {
            drop: 5,
            duplicate: 5,
            propose: 10,
            crash: 2,
            timer: 10,
            partition: 2,
        };
        let accts = accounts.clone();
        c.chaos(&mut rng, 400, &faults, &move |c, rng, _| {
            let from = &accts[rng.below(accts.len() as u64) as usize];
            let to = &accts[rng.below(accts.len() as u64) as usize];
            let amount = 1 + rng.below(30) as i64;
            if c.is_up(COORDINATOR) {
                txn(c, vec![add(from, -amount), add(to, amount)]);
            }
        });
        for id in c.ids() {
            if !c.is_up(id) {
                c.restart(id);
            }
        }
        c.heal();
        c.run_for(ms(3000));
        let total: i64 = accounts
            .iter()
            .map(|k| value(&c, k).map_or(0, |v| v.parse::<i64>().expect("a number")))
            .sum();
        assert_eq!(total, 600, "seed {seed}: money conserved");
        assert_quiescent(&c);
        let done = |commit: bool| {
            (c.replies.iter())
                .filter(|(_, r)| match &r.outcome {
                    synod_core::Outcome::Done(synod_twopc::TxnOutcome::Committed(_)) => commit,
                    synod_core::Outcome::Done(synod_twopc::TxnOutcome::Aborted(_)) => !commit,
                    _ => false,
                })
                .count()
        };
        COMMITS.fetch_add(done(true), Relaxed);
        ABORTS.fetch_add(done(false), Relaxed);
    });
    let (commits, aborts) = (COMMITS.load(Relaxed), ABORTS.load(Relaxed));
    eprintln!("200 seeds: {commits} transactions committed, {aborts} aborted");
    assert!(
        commits > 1_000 && aborts > 200,
        "the chaos exercised both outcomes"
    );
}

/// Exactly once across a client's requests: an earlier request's attempt that times
/// out after the client's next request committed must not erase the record of that
/// commit, or the next request's retry runs it again (found by `synod check
/// --protocol twopc --faults all`, seed 635: an append applied twice).
#[test]
fn twopc_a_late_abort_of_an_earlier_request_does_not_rerun_a_committed_one() {
    let (mut c, _) = cluster(2);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let client = synod_core::ClientId(77);
    let append = |key: &str| synod_twopc::Txn {
        ops: vec![synod_twopc::Op::Append {
            key: key.into(),
            value: "x".into(),
        }],
    };
    c.request(COORDINATOR, client, 1, append(&a));
    assert!(c
        .drop_next(|_, _, m| matches!(m, Message::Prepare { .. }))
        .is_some());
    let second = c.request(COORDINATOR, client, 2, append(&b));
    c.deliver_all();
    assert!(committed(&c, second).is_some());
    c.run_for(ms(500)); // request 1's attempt times out and aborts
    let retry = c.request(COORDINATOR, client, 2, append(&b));
    c.run_for(ms(100));
    assert!(
        committed(&c, retry).is_some(),
        "the retry gets the committed answer"
    );
    assert_eq!(value(&c, &b), Some("x".into()), "applied once");
    assert_quiescent(&c);
}

/// 4n for every n: a transaction over n = 1..=4 shards costs exactly PREPARE, vote,
/// COMMIT and ACK per participant when nothing fails (the coordinator's decision
/// and the participants' records are disk writes, not messages).
#[test]
fn twopc_7_3_messages_per_transaction_are_4n_for_n_participants() {
    for shards in 1..=4u32 {
        let (mut c, _) = cluster(u64::from(shards));
        let ops: Vec<_> = (0..shards).map(|s| write(&key_on(&c, s, 0), "v")).collect();
        let t = txn(&mut c, ops);
        c.run_for(ms(100));
        assert!(committed(&c, t).is_some(), "n = {shards}");
        assert_eq!(c.delivered.len(), 4 * shards as usize, "n = {shards}");
        assert_quiescent(&c);
    }
}

fn is_prepare_to(to: u64) -> impl Fn(NodeId, NodeId, &Message) -> bool {
    move |_, t, m| t == n(to) && matches!(m, Message::Prepare { .. })
}

/// Strict 2PL across a restart: a participant that prepared a transaction which
/// *read* a key keeps that key locked (shared) after a crash — the transaction's
/// other shards may not have locked yet, so its lock point may still be ahead.
/// Without it, a younger writer slips in between the transaction's reads at two
/// shards (read skew; found by the 2PC review of 2026-12-03).
#[test]
fn twopc_strict_2pl_a_restarted_participant_keeps_its_read_locks() {
    a_prepared_reader_blocks_a_younger_writer(true);
}

/// The same without a crash: the prepared reader's lock at x holds while its other
/// shard has not voted, so the younger writer dies (wait-die) and x keeps the value
/// the reader saw.
#[test]
fn twopc_strict_2pl_a_prepared_reader_blocks_a_younger_writer() {
    a_prepared_reader_blocks_a_younger_writer(false);
}

/// T1 reads x and y and prepares at x's shard only (its PREPARE to y's shard held
/// back), x's participant restarting in between if `restart`; a younger transfer
/// must die on T1's read lock, and T1 commit a consistent snapshot.
fn a_prepared_reader_blocks_a_younger_writer(restart: bool) {
    let (mut c, _) = cluster(2);
    let (x, y) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let (px, py) = (owner(&c, &x), owner(&c, &y));
    txn(&mut c, vec![add(&x, 100), add(&y, 100)]);
    c.run_for(ms(50));
    let t1 = txn(&mut c, vec![read(&x), read(&y)]);
    let held = c
        .drop_next(is_prepare_to(py))
        .expect("T1's PREPARE to y's shard");
    c.deliver_until(|c| c.queued(is_prepare_to(px)).is_none());
    if restart {
        c.crash(px);
        c.restart(px);
    }
    let t2 = txn(&mut c, vec![add(&x, -10), add(&y, 10)]);
    c.deliver_all();
    assert!(
        aborted(&c, t2),
        "the younger writer dies on T1's read lock at x (restart: {restart})"
    );
    assert_eq!(value(&c, &x).as_deref(), Some("100"));
    c.send(held.0 .0, held.1 .0, held.2);
    c.run_for(ms(500));
    let reads = committed(&c, t1).expect("T1 commits");
    assert_eq!(
        reads,
        vec![
            OpResult::Value(Some("100".into())),
            OpResult::Value(Some("100".into()))
        ],
        "a consistent snapshot of both accounts"
    );
    assert_quiescent(&c);
}

/// A repeated YES repeats what was read, after a restart too: the reads are in the
/// prepared record (found by the 2PC review: a duplicate PREPARE after a restart
/// voted YES with no reads, and the committed read answered `Done`).
#[test]
fn twopc_a_vote_repeated_after_a_restart_carries_the_reads() {
    let (mut c, _) = cluster(1);
    let k = key_on(&c, 0, 0);
    let p = owner(&c, &k);
    txn(&mut c, vec![write(&k, "v")]);
    c.run_for(ms(50));
    let t = txn(&mut c, vec![read(&k)]);
    let i = c.queued(is_prepare_to(p)).expect("PREPARE");
    let duplicate = c.wire[i].clone();
    c.deliver_at(i);
    assert!(c.drop_next(is_vote).is_some(), "the first YES is lost");
    c.crash(p);
    c.restart(p);
    c.send(duplicate.0 .0, duplicate.1 .0, duplicate.2);
    c.deliver_all();
    assert_eq!(
        committed(&c, t),
        Some(vec![OpResult::Value(Some("v".into()))])
    );
}

/// A coordinator snapshot taken while a client's transaction was running, then a
/// crash: after the restart the transaction is gone (presumed abort), and the
/// client's retry runs it again instead of waiting forever for an answer (found by
/// the 2PC review of 2026-12-03).
#[test]
fn twopc_a_retry_of_a_transaction_lost_in_a_coordinator_crash_is_answered() {
    let (mut c, _) = cluster_with(2, |cfg| cfg.coordinator.snapshot_every = 1);
    let (a, b) = (key_on(&c, 0, 0), key_on(&c, 1, 0));
    let client = synod_core::ClientId(55);
    let op = synod_twopc::Txn {
        ops: vec![write(&a, "mine")],
    };
    c.request(COORDINATOR, client, 1, op.clone());
    assert!(c
        .drop_next(|_, _, m| matches!(m, Message::Prepare { .. }))
        .is_some());
    let other = txn(&mut c, vec![write(&b, "x")]); // its decision record: a snapshot
    c.deliver_all();
    assert!(committed(&c, other).is_some());
    c.crash(COORDINATOR);
    c.restart(COORDINATOR);
    let retry = c.request(COORDINATOR, client, 1, op);
    c.run_for(ms(200));
    assert!(committed(&c, retry).is_some(), "{:?}", c.outcome(retry));
    assert_eq!(value(&c, &a), Some("mine".into()));
}

/// Wait-die is starvation-free only if a transaction restarted after dying keeps
/// its first timestamp (Rosenkrantz, Stearns & Lewis 1978): otherwise every retry is
/// the youngest and can die forever behind newer transactions. Here client A's first
/// attempt dies behind H; C then takes the lock; A's retry — a newer id than C's,
/// but older by age — must wait for C, not die again, and then commit.
#[test]
fn twopc_wait_die_a_retried_transaction_keeps_its_age() {
    let (mut c, _) = cluster(1);
    let x = key_on(&c, 0, 0);
    let p = owner(&c, &x);
    let prepare_to_p = |c: &Cluster| {
        c.queued(|_, to, m| to == n(p) && matches!(m, Message::Prepare { .. }))
            .expect("a PREPARE queued for the shard")
    };
    let h = txn(&mut c, vec![write(&x, "h")]);
    c.deliver_at(prepare_to_p(&c)); // H locks x
    let a = synod_core::ClientId(77);
    let request = || synod_twopc::Txn {
        ops: vec![write(&x, "a")],
    };
    let first = c.request(COORDINATOR, a, 1, request());
    c.deliver_at(prepare_to_p(&c)); // A is younger than H: it dies
    c.deliver_all();
    assert!(committed(&c, h).is_some());
    assert!(aborted(&c, first), "A's first attempt died behind H");

    let late = txn(&mut c, vec![write(&x, "c")]);
    c.deliver_at(prepare_to_p(&c)); // C, started after A, locks x
    let retry = c.request(COORDINATOR, a, 1, request());
    c.deliver_at(prepare_to_p(&c));
    assert_eq!(
        participant(&c, p).waiting(),
        1,
        "A's retry is older than C by age: it waits"
    );
    assert_eq!(
        c.count_queued(|_, _, m| matches!(
            m,
            Message::Vote {
                vote: synod_twopc::Vote::No(_),
                ..
            }
        )),
        0,
        "nobody died"
    );
    c.run_for(ms(500));
    assert!(committed(&c, late).is_some());
    assert!(committed(&c, retry).is_some(), "A's retry commits after C");
    assert_eq!(value(&c, &x), Some("a".into()));
    assert_quiescent(&c);
}

/// The application's rule on `Add` at its boundary: a balance may reach zero, never
/// below — the transaction that would overdraw is refused (a final answer) and
/// changes nothing.
#[test]
fn twopc_refused_an_add_may_empty_an_account_but_never_overdraw_it() {
    use synod_core::Outcome;
    use synod_twopc::{AbortReason, TxnOutcome};
    let (mut c, _) = cluster(1);
    let k = key_on(&c, 0, 0);
    let deposit = txn(&mut c, vec![add(&k, 10)]);
    c.run_for(ms(100));
    assert!(committed(&c, deposit).is_some());
    let empty = txn(&mut c, vec![add(&k, -10)]);
    c.run_for(ms(100));
    assert!(committed(&c, empty).is_some(), "10 - 10 = 0 is allowed");
    assert_eq!(value(&c, &k).as_deref(), Some("0"));
    let overdraw = txn(&mut c, vec![add(&k, -1)]);
    c.run_for(ms(100));
    assert_eq!(
        c.outcome(overdraw),
        Some(&Outcome::Done(TxnOutcome::Aborted(AbortReason::Refused))),
        "0 - 1 would overdraw"
    );
    assert_eq!(value(&c, &k).as_deref(), Some("0"), "nothing of it applied");
    assert_quiescent(&c);
}

/// Exactly-once per client session: a retry of an answered request gets its answer
/// again and never runs again (an `add` run twice would show), a stale copy of an
/// earlier request is dropped unanswered, and the client's next request runs.
#[test]
fn twopc_exactly_once_a_retry_gets_the_answer_a_stale_copy_nothing_the_next_request_runs() {
    let (mut c, _) = cluster(1);
    let k = key_on(&c, 0, 0);
    let x = synod_core::ClientId(55);
    let deposit = |delta| synod_twopc::Txn {
        ops: vec![add(&k, delta)],
    };
    let prepares = |c: &Cluster| c.count_queued(|_, _, m| matches!(m, Message::Prepare { .. }));
    let replies = |c: &Cluster, seq: u64| {
        (c.replies.iter())
            .filter(|(_, r)| r.client == x && r.seq == seq)
            .count()
    };
    let first = c.request(COORDINATOR, x, 1, deposit(5));
    c.run_for(ms(100));
    assert!(committed(&c, first).is_some());
    assert_eq!(value(&c, &k).as_deref(), Some("5"));
    assert_eq!(replies(&c, 1), 1);

    c.request(COORDINATOR, x, 1, deposit(5));
    assert_eq!(prepares(&c), 0, "a retry of an answered request never runs");
    assert_eq!(replies(&c, 1), 2, "it gets the answer again");
    c.run_for(ms(100));
    assert_eq!(value(&c, &k).as_deref(), Some("5"));

    let next = c.request(COORDINATOR, x, 2, deposit(1));
    assert_eq!(prepares(&c), 1, "the next request runs");
    c.run_for(ms(100));
    assert!(committed(&c, next).is_some());
    assert_eq!(value(&c, &k).as_deref(), Some("6"));

    c.request(COORDINATOR, x, 1, deposit(5));
    assert_eq!(prepares(&c), 0, "a stale copy of request 1 never runs");
    assert_eq!(replies(&c, 1), 2, "and is not answered");
    c.run_for(ms(100));
    assert_eq!(value(&c, &k).as_deref(), Some("6"));
    assert_quiescent(&c);
}

/// Transaction ids from a durable incarnation: the coordinator coordinates in
/// epoch 1 first and one epoch more after every restart, and its transactions carry
/// it — a restarted coordinator never reuses an id a participant remembers.
#[test]
fn twopc_presumed_abort_every_restart_of_the_coordinator_is_a_later_epoch() {
    use synod_twopc::Role;
    let (mut c, _) = cluster(1);
    let k = key_on(&c, 0, 0);
    let epoch = |c: &Cluster| match c.node(COORDINATOR).role() {
        Role::Coordinator(k, _) => k.epoch(),
        Role::Participant(_) => unreachable!(),
    };
    let txn_epoch = |c: &Cluster| {
        c.wire.iter().find_map(|(_, _, m)| match m {
            Message::Prepare { txn, .. } => Some(txn.epoch()),
            _ => None,
        })
    };
    for incarnation in 1..=3 {
        assert_eq!(epoch(&c), Some(incarnation));
        let t = txn(&mut c, vec![add(&k, 1)]);
        assert_eq!(txn_epoch(&c), Some(incarnation), "ids carry the epoch");
        c.run_for(ms(100));
        assert!(committed(&c, t).is_some());
        c.crash(COORDINATOR);
        c.restart(COORDINATOR);
        c.run_for(ms(100));
    }
    assert_eq!(value(&c, &k).as_deref(), Some("3"));
}
