//! Client interaction: Raft §8 (redirects, exactly-once commands) and the thesis's
//! ReadIndex reads (§6.4), which do not touch the log.

mod common;

use common::*;
use synod_core::{ClientId, KvOp, KvResult, NodeId, Outcome};
use synod_raft::{Message, Payload, RaftTimer, Request, Response};

fn value(v: Option<&str>) -> Outcome<Response> {
    Outcome::Done(Response::QueryOutput(v.map(str::to_owned)))
}

/// §8: "If the client's first choice is not the leader, that server will reject the
/// client's request and supply information about the most recent leader it has heard
/// from."
#[test]
fn raft_8_follower_answers_not_leader_with_the_leader_hint() {
    // init: no leader yet
    let mut c = Cluster::new(3);

    // act / check: no hint to give
    let early = c.put(2, "x", "1");
    assert_eq!(c.outcome(early), Some(&Outcome::NotLeader { leader: None }));

    // act: after an election, writes and reads at followers
    c.elect(1);
    c.run_for(ms(100));
    let last = c.node(2).log().last_index();
    let put = c.put(2, "x", "1");
    let get = c.get(3, "x");

    // check: both redirected to n1, and nothing was appended
    let hint = Outcome::NotLeader { leader: Some(n(1)) };
    assert_eq!(c.outcome(put), Some(&hint));
    assert_eq!(c.outcome(get), Some(&hint));
    assert_eq!(c.node(2).log().last_index(), last);
    assert!(c.wire.is_empty(), "a follower does not forward requests");
}

/// §8: "clients … assign unique serial numbers to every command. Then, the state
/// machine tracks the latest serial number processed for each client … If it receives
/// a command whose serial number has already been executed, it responds immediately
/// without re-executing the request." Here the retry follows a leader change that left
/// the client not knowing whether its command took effect.
#[test]
fn raft_8_retried_command_is_applied_once() {
    // init: n1's AppendEntries with the client's append reaches both followers, but
    // their answers are lost and n1 is cut off
    let mut c = Cluster::new(3);
    c.elect(1);
    c.run_for(ms(100));
    let append = Request::Command(KvOp::Append {
        key: "log".into(),
        value: "a".into(),
    });
    let first = c.request(1, ClientId(7), 1, append.clone());
    let last = c.node(1).log().last_index();
    c.deliver_until(|c| (2..=3).all(|id| c.node(id).log().last_index() == last));
    c.drop_all(|_, to, _| to == n(1));
    c.isolate(1);
    c.run_for(ms(1000));
    let leader = c.leader().expect("n2 or n3 took over");
    assert_ne!(leader, 1);
    assert_eq!(
        c.outcome(first),
        Some(&Outcome::Unknown),
        "n1 could not tell"
    );

    // act: the client retries with the same serial number at the new leader
    let retry = c.request(leader, ClientId(7), 1, append);
    c.heal();
    c.run_for(ms(500));

    // check: two copies in the log, one effect, and the retry got the result
    let done = Outcome::Done(Response::Output(KvResult::Written));
    assert_eq!(c.outcome(retry), Some(&done));
    let copies = c
        .committed_entries(leader)
        .iter()
        .filter(|e| matches!(&e.payload, Payload::Command(cmd) if cmd.client == ClientId(7)))
        .count();
    assert_eq!(copies, 2);
    for id in c.ids() {
        assert_eq!(c.node(id).state_machine().read("log"), Some("a"), "n{id}");
    }
    c.assert_converged();
}

/// Thesis §6.4: "the leader records its current commit index … as the readIndex …
/// sends a new round of heartbeats, and waits for their acknowledgments from a
/// majority of the cluster … waits for its state machine to advance at least as far as
/// the readIndex … [then] responds to the client", appending nothing to the log.
#[test]
fn raft_thesis_6_4_read_index_needs_a_heartbeat_majority_and_no_log_entry() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    c.put(1, "x", "1");
    c.run_for(ms(100));
    let last = c.node(1).log().last_index();
    let appends = c.count_kind("Append");

    // act
    let read = c.get(1, "x");

    // check: not answered yet; a heartbeat round is out
    assert_eq!(c.outcome(read), None);
    assert_eq!(
        c.wire
            .iter()
            .filter(|(_, _, m)| kind(m) == "Heartbeat")
            .count(),
        2
    );

    // act: only n2 answers — with the leader, a majority
    c.drop_next(|_, to, _| to == n(3)).expect("heartbeat to n3");
    c.deliver_all();

    // check
    assert_eq!(c.outcome(read), Some(&value(Some("1"))));
    assert_eq!(
        c.node(1).log().last_index(),
        last,
        "no log entry for a read"
    );
    assert_eq!(
        c.count_kind("Append"),
        appends,
        "no AppendEntries for a read"
    );
}

/// Thesis §6.4: a new leader "doesn't know which entries are committed" until it has
/// committed an entry of its own term, so a read waits for the leader's no-op even
/// when a majority already confirmed the heartbeat round.
#[test]
fn raft_thesis_6_4_new_leader_reads_after_committing_its_no_op() {
    // init: n1 commits x = 1 and crashes before the followers learn it is committed
    let mut c = Cluster::new(3);
    c.elect(1);
    c.put(1, "x", "1");
    c.deliver_all();
    assert_eq!(c.node(2).state_machine().read("x"), None);
    c.crash(1);
    c.fire(2, RaftTimer::Election);
    c.deliver_until(|c| c.node(2).is_leader());

    // act: read at n2 while its no-op is held back; the heartbeat round succeeds
    let read = c.get(2, "x");
    c.deliver_all_dropping(|_, _, m| kind(m) == "Append");

    // check: no stale answer
    assert!(
        c.count(|from, to, m| from == n(3) && to == n(2) && kind(m) == "HeartbeatResponse") > 0
    );
    assert_eq!(c.outcome(read), None);

    // act: the no-op commits
    c.run_for(ms(200));

    // check
    assert_eq!(c.outcome(read), Some(&value(Some("1"))));
}

/// Thesis §6.4: "the leader must check whether it has been deposed before processing
/// a read-only request": a partitioned leader whose majority elected a successor that
/// wrote since must never answer with its stale state, and tells the client to go
/// elsewhere once check-quorum deposes it.
#[test]
fn raft_thesis_6_4_deposed_leader_does_not_answer_reads() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    c.put(1, "x", "old");
    c.run_for(ms(100));
    c.isolate(1);
    c.elect(2);
    c.put(2, "x", "new");
    c.deliver_all();
    assert!(c.node(1).is_leader(), "n1 has not noticed yet");

    // act
    let read = c.get(1, "x");
    c.deliver_all();

    // check: no answer while it cannot confirm its leadership
    assert_eq!(c.outcome(read), None);
    assert_eq!(
        c.node(1).state_machine().read("x"),
        Some("old"),
        "it would be stale"
    );

    // act: check-quorum fires
    c.tick(ms(300));

    // check
    assert!(!c.node(1).is_leader());
    assert!(matches!(c.outcome(read), Some(Outcome::NotLeader { .. })));
}

/// Thesis §6.4 step 2: the leader "exchanges heartbeats with a majority of the cluster"
/// *after* it recorded the read index. An answer to a heartbeat of an earlier
/// leadership — even one of the same leader, answered by a follower that has since
/// moved to the leader's new term — was not sent after the read and proves nothing.
///
/// The sequence (issue 14): n1 leads term t and its heartbeat (read context 1) to n2 is
/// delayed; n1 crashes, restarts and leads again in t' (n2 at t'); the stale heartbeat
/// reaches n2, which answers it in t' with context 1, delayed too; n2 and n3 elect n3
/// in t'+1 and commit a write; n1, cut off, registers a read with context 1 in t' — its
/// new leadership restarted contexts at 0 — and the old answer arrives. Before the
/// fix, n1 counted it as n2 confirming this read and answered without the write.
#[test]
fn raft_thesis_6_4_heartbeat_answer_from_an_earlier_leadership_confirms_no_read() {
    // init: n1 leads term t; a read's heartbeat to n2 is held on the wire.
    let mut c = Cluster::new(3);
    c.elect(1);
    let t = c.node(1).term();
    let first = c.get(1, "x");
    let stale_heartbeat = c
        .drop_next(|from, to, m| from == n(1) && to == n(2) && kind(m) == "Heartbeat")
        .expect("the read's heartbeat to n2");
    c.deliver_all();
    assert_eq!(
        c.outcome(first),
        Some(&value(None)),
        "n3's answer confirms it"
    );

    // n1 restarts and leads again in t' > t; "old" commits in t'.
    c.crash(1);
    c.restart(1);
    c.elect(1);
    let t_new = c.node(1).term();
    assert!(t_new > t);
    c.put(1, "x", "old");
    c.deliver_all();
    assert_eq!(c.node(2).term(), t_new);

    // The stale heartbeat reaches n2, which answers it at t'; the answer is held.
    c.wire.push_back(stale_heartbeat);
    let last = c.wire.len() - 1;
    c.deliver_at(last);
    let stale_answer = c
        .drop_next(|from, to, m| from == n(2) && to == n(1) && kind(m) == "HeartbeatResponse")
        .unwrap_or_else(|| panic!("n2 answers the stale heartbeat: {:?}", c.wire));

    // n2 and n3, cut off from n1, elect n3 in t'+1 and commit "new".
    let to_or_from_n1 = |from: NodeId, to: NodeId, _: &Message| from == n(1) || to == n(1);
    c.drop_all(to_or_from_n1);
    c.fire(3, RaftTimer::Election);
    c.deliver_all_dropping(to_or_from_n1);
    if !c.node(3).is_leader() {
        c.fire(3, RaftTimer::Election);
        c.deliver_all_dropping(to_or_from_n1);
    }
    assert!(c.node(3).is_leader() && c.node(3).term() > t_new);
    let write = c.put(3, "x", "new");
    c.deliver_all_dropping(to_or_from_n1);
    assert!(matches!(c.outcome(write), Some(Outcome::Done(_))));

    // act: n1, still leader of t' as far as it knows, registers a read; its own
    // heartbeats are lost; the stale answer arrives.
    assert!(c.node(1).is_leader() && c.node(1).term() == t_new);
    let read = c.get(1, "x");
    c.drop_all(to_or_from_n1);
    c.wire.push_back(stale_answer);
    c.deliver_all();

    // check: the read is not answered with the state from before "new".
    assert_ne!(c.outcome(read), Some(&value(Some("old"))), "a stale read");
    assert_eq!(c.outcome(read), None, "nothing confirmed this read");
}

/// §8: a new leader appends its no-op first; commands it takes before that no-op
/// commits queue behind it and are answered once they commit — applying the no-op,
/// which nobody waits for, drops no waiter.
#[test]
fn raft_8_commands_taken_before_the_no_op_commits_are_answered() {
    // init: n1 has just won; its no-op is not committed
    let mut c = Cluster::new(3);
    c.fire(1, RaftTimer::Election);
    c.deliver_until(|c| c.node(1).is_leader());
    assert_eq!(c.node(1).commit_index().0, 0);

    // act
    let puts = c.put_batch(1, &[("x", "1"), ("y", "2")]);
    let last = c.put(1, "z", "3");
    c.deliver_all();

    // check
    let written = Outcome::Done(Response::Output(KvResult::Written));
    for t in puts.into_iter().chain([last]) {
        assert_eq!(c.outcome(t), Some(&written), "{t:?}");
    }
}
