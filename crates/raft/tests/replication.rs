//! Log replication and commitment: Raft §5.3, §5.4.2 (Figure 8) and the durability of
//! Figure 2's persistent log.

mod common;

use common::*;
use synod_core::NodeId;
use synod_core::Outcome;
use synod_raft::{LogIndex, Message, RaftTimer, Request, Response, Term};

/// §5.3: "the leader … issues AppendEntries RPCs in parallel to each of the other
/// servers … When the entry has been safely replicated, the leader applies the entry
/// to its state machine and returns the result … to the client", and followers apply
/// it once they learn it is committed.
#[test]
fn raft_5_3_entries_are_replicated_committed_and_applied_everywhere() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);

    // act
    let put = c.put(1, "x", "1");
    c.deliver_all();

    // check: the leader answered once a majority stored the entry …
    let written = Outcome::Done(Response::Output(synod_core::KvResult::Written));
    assert_eq!(c.outcome(put), Some(&written));
    assert_eq!(c.node(1).commit_index(), LogIndex(2));
    // … and the followers apply it when the next message carries the commit index
    assert_eq!(c.node(2).state_machine().read("x"), None);
    c.run_for(ms(100));
    for id in c.ids() {
        assert_eq!(c.node(id).commit_index(), LogIndex(2), "n{id}");
        assert_eq!(c.node(id).state_machine().read("x"), Some("1"), "n{id}");
    }
}

/// §5.3 with batching (thesis §10.2): client commands that arrive together are
/// appended together and go to each follower in one AppendEntries, and each gets its
/// own answer once committed.
#[test]
fn raft_5_3_requests_that_arrive_together_share_one_append_per_follower() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    let appends_before = c.count_kind("Append");

    // act
    let puts = c.put_batch(1, &[("a", "1"), ("b", "2"), ("c", "3")]);
    c.deliver_all();

    // check: one AppendEntries per follower carried all three entries …
    let appends = c.delivered.iter().filter(|(_, _, m)| kind(m) == "Append");
    let sizes: Vec<usize> = appends
        .skip(appends_before)
        .map(|(_, _, m)| match m {
            Message::Append { entries, .. } => entries.len(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(sizes, vec![3, 3]);
    // … and every client got its own answer
    let written = Outcome::Done(Response::Output(synod_core::KvResult::Written));
    for t in puts {
        assert_eq!(c.outcome(t), Some(&written));
    }
    assert_eq!(c.node(1).commit_index(), LogIndex(4));
}

/// Thesis §10.2.1: "the leader can write to its disk in parallel with replicating to
/// the followers" — its AppendEntries leave before its own write is durable — but
/// then it may count itself toward a majority only for entries its storage has
/// confirmed. One follower's ack plus an unconfirmed leader write is not a majority
/// of durable copies; the confirmation completes it.
#[test]
fn raft_10_2_1_leader_replicates_while_writing_but_counts_itself_once_durable() {
    // init: n3 is unreachable; the leader's storage confirms nothing for now
    let mut c = Cluster::new(3);
    c.elect(1);
    // Nothing left early while the term's no-op was not durable: that write confirms
    // the term and vote the AppendEntries speak for.
    assert_eq!(c.early_sends(), vec![]);
    c.isolate(3);
    c.hold_notifications();

    // act
    let put = c.put(1, "x", "1");
    c.deliver_all();

    // check: the entry went out early and n2 stored it, but nothing is committed …
    let early_sends = c.early_sends();
    let early_appends = early_sends.iter().filter(|&&e| e == (1, 2, "Append"));
    assert_eq!(early_appends.count(), 1);
    assert_eq!(c.node(2).log().last_index(), LogIndex(2));
    assert_eq!(c.node(1).commit_index(), LogIndex(1));
    assert_eq!(c.outcome(put), None);
    // … until the leader's own write is confirmed
    c.release_notifications();
    let written = Outcome::Done(Response::Output(synod_core::KvResult::Written));
    assert_eq!(c.outcome(put), Some(&written));
    assert_eq!(c.node(1).commit_index(), LogIndex(2));

    // again, with the unreachable n3's match index (1) no longer at the commit index
    c.hold_notifications();
    let again = c.put(1, "y", "1");
    c.deliver_all();
    assert_eq!(c.outcome(again), None);
    c.release_notifications();
    assert_eq!(c.outcome(again), Some(&written));
    assert_eq!(c.node(1).commit_index(), LogIndex(3));
}

/// §5.3: "If followers crash or run slowly, or if network packets are lost, the leader
/// retries AppendEntries RPCs indefinitely (even after it has responded to the
/// client) until all followers eventually store all log entries." Also when the lost
/// AppendEntries filled the follower's whole pipelining window.
#[test]
fn raft_5_3_lost_appends_are_retried_until_followers_store_all_entries() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    c.run_for(ms(100));

    // act: the only AppendEntries carrying x to n3 is lost; the leader stays idle
    c.put(1, "x", "1");
    let to_n3 = |_, to, m: &Message| to == n(3) && kind(m) == "Append";
    assert!(c.drop_next(to_n3).is_some());
    c.run_for(ms(500));

    // check
    assert_eq!(c.node(3).log().last_index(), c.node(1).log().last_index());
    assert_eq!(c.node(3).state_machine().read("x"), Some("1"));

    // act: a whole window (inflight_max = 8) of AppendEntries to n3 is lost
    for i in 0..8 {
        c.put(1, "y", &i.to_string());
        assert!(c.drop_next(to_n3).is_some(), "put {i} went out at once");
    }
    c.run_for(ms(500));
    c.put(1, "y", "last");
    c.run_for(ms(500));

    // check
    assert_eq!(c.node(3).log().last_index(), c.node(1).log().last_index());
    assert_eq!(c.node(3).state_machine().read("y"), Some("last"));
}

/// §5.3: "the leader handles inconsistencies by forcing the followers' logs to
/// duplicate its own. This means that conflicting entries in follower logs will be
/// overwritten with entries from the leader's log" — including a longer conflicting
/// suffix, which is deleted.
#[test]
fn raft_5_3_follower_conflicting_suffix_is_overwritten() {
    // init: n1 leads term t1, is cut off and appends three entries nobody else has;
    // n2 leads the next term with n3 and commits one entry
    let mut c = Cluster::new(3);
    c.elect(1);
    let t1 = c.node(1).term();
    c.isolate(1);
    for v in ["a", "b", "c"] {
        c.put(1, "lost", v);
    }
    assert_eq!(c.node(1).log().last_index(), LogIndex(4));
    c.elect(2);
    c.put(2, "kept", "1");
    c.deliver_all();
    let t2 = c.node(2).term();
    assert_eq!(c.node(2).log().last_index(), LogIndex(3));

    // act
    c.heal();
    c.run_for(ms(500));

    // check: n1's entries 2..=4 of term t1 are gone, replaced by n2's 2..=3
    let (l1, l2) = (c.node(1).log(), c.node(2).log());
    assert_eq!(l1.last_index(), LogIndex(3));
    assert_eq!(l1.term_at(LogIndex(1)), Some(t1));
    for i in 2..=3 {
        assert_eq!(l1.term_at(LogIndex(i)), Some(t2), "index {i}");
        assert_eq!(l1.entry(LogIndex(i)), l2.entry(LogIndex(i)), "index {i}");
    }
    assert_eq!(c.node(1).state_machine().read("lost"), None);
    assert_eq!(c.node(1).state_machine().read("kept"), Some("1"));
    c.assert_converged();
}

/// §5.3 (end): "the follower can include the term of the conflicting entry and the
/// first index it stores for that term. With this information, the leader can
/// decrement nextIndex to bypass all of the conflicting entries in that term; one
/// AppendEntries RPC will be required for each term with conflicting entries, rather
/// than one RPC per entry."
#[test]
fn raft_5_3_fast_backtracking_over_a_long_divergent_log() {
    // init: n1 leads t1 and, cut off, appends 100 entries of t1 at 5..=104
    let mut c = Cluster::new(3);
    c.elect(1);
    for i in 0..3 {
        c.put(1, "k", &i.to_string());
    }
    c.deliver_all();
    c.isolate(1);
    for i in 0..100 {
        c.put(1, "stale", &i.to_string());
    }
    // n2 leads t2 and commits 60 entries at 5..=65 with n3, then hands over to n3,
    // whose first probe to n1 will land in the middle of n1's divergent entries
    c.elect(2);
    for i in 0..60 {
        c.put(2, "fresh", &i.to_string());
    }
    c.deliver_all();
    c.propose(2, Request::TransferLeader(n(3)));
    c.deliver_all();
    assert_eq!(c.leader(), Some(3));
    let t3 = c.node(3).term();
    assert_eq!(c.node(1).log().last_index(), LogIndex(104));
    assert_eq!(c.node(3).log().last_index(), LogIndex(66));

    // act
    c.heal();
    c.run_for(ms(500));

    // check: n1 converged after at most a few rejections, not ~60
    let rejections =
        c.count(|from, _, m| from == n(1) && kind(m) == "AppendReject" && m.term() == t3);
    assert!((1..=3).contains(&rejections), "{rejections} rejections");
    assert_eq!(c.node(1).log().last_index(), c.node(3).log().last_index());
    assert_eq!(c.node(1).state_machine().read("stale"), None);
    assert_eq!(c.node(1).state_machine().read("fresh"), Some("59"));
    c.assert_converged();
}

/// Figure 8 (a)–(c), five servers, one entry per AppendEntries so the steps can be
/// separated. Returns the cluster with n1 leading term t3, X (term t1) at index 2 on
/// n1, n2 and n3 — a majority — and t3's no-op at index 3 only on n1 and n2.
fn figure_8_c() -> Cluster {
    let mut c = Cluster::build(5, 0, 1, |cfg| cfg.batch_entries_max = 1);
    // (a) n1 leads t1 and replicates X at index 2 to n2 only
    c.elect(1);
    let t1 = c.node(1).term();
    c.partition(&[1, 2], &[3, 4, 5]);
    c.put(1, "x", "X");
    c.deliver_all();
    assert_eq!(c.node(2).log().term_at(LogIndex(2)), Some(t1));
    // (b) n1 crashes; n5 wins t2 with n3 and n4, appends its no-op at index 2, and
    // crashes before sending it
    c.crash(1);
    c.fire(5, RaftTimer::Election);
    c.deliver_until(|c| c.node(5).is_leader());
    let t2 = c.node(5).term();
    assert_eq!(c.node(5).log().term_at(LogIndex(2)), Some(t2));
    c.crash(5);
    c.drop_all(|from, _, _| from == n(5));
    // (c) n1 restarts and wins t3 with n2, n3 (and n4); the first try only teaches it t2
    c.heal();
    c.restart(1);
    c.fire(1, RaftTimer::Election);
    c.deliver_all();
    assert!(!c.node(1).is_leader());
    c.fire(1, RaftTimer::Election);
    c.deliver_until(|c| c.node(1).is_leader());
    let t3 = c.node(1).term();
    assert!(t1 < t2 && t2 < t3);
    // n1 brings n3 up to X, but the AppendEntries with its no-op to n3 is lost and n4
    // is cut off; n2 already has X and takes the no-op
    c.cut(1, 4);
    c.deliver_until(|c| c.node(3).log().last_index() == LogIndex(2));
    c.deliver_all_dropping(|from, to, m| from == n(1) && to == n(3) && kind(m) == "Append");
    for id in [1, 2, 3] {
        assert_eq!(
            c.node(id).log().term_at(LogIndex(2)),
            Some(t1),
            "X on n{id}"
        );
    }
    assert_eq!(c.node(2).log().term_at(LogIndex(3)), Some(t3));
    assert_eq!(c.node(3).log().last_index(), LogIndex(2));
    let acked_x = c
        .count(|from, to, m| from == n(3) && to == n(1) && kind(m) == "AppendOk" && m.term() == t3);
    assert_eq!(acked_x, 1, "n1 knows n3 stores X");
    c
}

/// §5.4.2: "a leader cannot immediately conclude that an entry from a previous term is
/// committed once it is stored on a majority of servers. Figure 8 illustrates a
/// situation where an old log entry is stored on a majority of servers, yet can still
/// be overwritten by a future leader."
#[test]
fn raft_5_4_2_figure_8_no_commit_by_counting_older_terms() {
    // init: Figure 8 (c)
    let mut c = figure_8_c();

    // check: X is on a majority and n1 knows it, yet n1 did not commit it
    assert!(c.node(1).commit_index() < LogIndex(2));

    // act: Figure 8 (d) — n1 crashes, n5 restarts and wins with n3 and n4, whose last
    // terms (t1) are older than n5's (t2)
    c.crash(1);
    c.heal();
    c.restart(5);
    c.elect(5);
    let t2 = c
        .node(5)
        .log()
        .term_at(LogIndex(2))
        .expect("n5's own entry");
    c.run_for(ms(300));

    // check: X was overwritten everywhere — safe only because nobody committed it
    // (the driver checks State Machine Safety after every step)
    for id in [2, 3, 4, 5] {
        assert_eq!(c.node(id).log().term_at(LogIndex(2)), Some(t2), "n{id}");
        assert_eq!(c.node(id).state_machine().read("x"), None, "n{id}");
    }
    assert!(c.node(5).commit_index() >= LogIndex(3));
}

/// §5.4.2: "Raft never commits log entries from previous terms by counting replicas.
/// Only log entries from the leader's current term are committed by counting
/// replicas; once an entry from the current term has been committed in this way,
/// then all prior entries are committed indirectly" — Figure 8 (e).
#[test]
fn raft_5_4_2_figure_8_current_term_entry_commits_older_ones() {
    // init: Figure 8 (c)
    let mut c = figure_8_c();
    let t3 = c.node(1).term();

    // act: the cut heals; n1's no-op of t3 reaches a majority
    c.heal();
    c.run_for(ms(300));

    // check: committing index 3 (t3) committed X at index 2 (t1) with it
    assert!(c.node(1).commit_index() >= LogIndex(3));
    assert_eq!(c.node(1).log().term_at(LogIndex(3)), Some(t3));
    assert_eq!(c.node(1).state_machine().read("x"), Some("X"));
    c.assert_converged();
}

/// Figure 2: the log is persistent state, "updated on stable storage before responding
/// to RPCs", so entries committed before every server crashed are still committed, in
/// the same order, after all of them restart.
#[test]
fn raft_figure_2_committed_entries_survive_full_cluster_restart() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    for i in 0..5 {
        c.put(1, &format!("k{i}"), &i.to_string());
    }
    c.run_for(ms(200));
    let before = c.committed_entries(1);
    assert_eq!(before.len(), 6);
    for id in [2, 3] {
        assert_eq!(c.committed_entries(id), before);
    }

    // act
    for id in 1..=3 {
        c.crash(id);
    }
    for id in 1..=3 {
        c.restart(id);
    }

    // check: logs and terms came back from storage (commit is volatile) …
    for id in 1..=3 {
        assert_eq!(c.node(id).log().last_index(), LogIndex(6), "n{id}");
        assert!(c.node(id).term() >= Term(1));
        assert_eq!(c.node(id).commit_index(), LogIndex(0));
    }
    // … and the next leader commits them again
    c.run_for(ms(1000));
    assert!(c.leader().is_some());
    for id in 1..=3 {
        assert_eq!(c.committed_entries(id)[..6], before[..], "n{id}");
        assert_eq!(c.node(id).state_machine().read("k4"), Some("4"), "n{id}");
    }
    c.assert_converged();
}

/// Figure 2, AppendEntries receiver rule 1 ("reply false if term < currentTerm") and
/// §5.3's backtracking: the rejection of a stale AppendEntries carries the follower's
/// newer term, which its sender may since have reached as leader again. It answers a
/// message of that earlier leadership and must not back the new one off (before the
/// fix it reset n1's probe to index 1 and resent the whole log).
#[test]
fn raft_5_3_rejection_of_an_earlier_terms_append_does_not_back_off_the_leader() {
    // init: n1 led term t with a few entries; it restarts and wins t' > t; its first
    // probe to n2 (at prev_index = its last entry) is still on the wire.
    let mut c = Cluster::new(3);
    c.elect(1);
    let t = c.node(1).term();
    for i in 0..3 {
        c.put(1, &format!("k{i}"), "v");
    }
    c.run_for(ms(100));
    let last = c.node(1).log().last_index();
    c.crash(1);
    c.restart(1);
    c.fire(1, RaftTimer::Election);
    c.deliver_until(|c| c.node(1).is_leader());
    assert!(c.node(1).term() > t);
    assert_eq!(c.node(2).term(), c.node(1).term());

    // act: an AppendEntries n1 sent in term t, at that same prev_index, reaches n2
    // now; n2 rejects it (rule 1) and the rejection reaches n1 first.
    let stale = Message::Append {
        term: t,
        prev_index: last,
        prev_term: t,
        entries: Vec::new(),
        commit: LogIndex(0),
    };
    c.send(1, 2, stale);
    let newest = c.wire.len() - 1;
    c.deliver_at(newest);
    let reject = c
        .wire
        .iter()
        .position(|(from, to, m)| (from.0, to.0) == (2, 1) && kind(m) == "AppendReject")
        .expect("n2 rejects the stale append");
    c.deliver_at(reject);

    // check: n1 did not fall back to resending its log from the start
    let from_start = |_: NodeId, to: NodeId, m: &Message| {
        to == n(2) && matches!(m, Message::Append { prev_index, .. } if *prev_index < last)
    };
    assert!(
        !c.wire.iter().any(|(a, b, m)| from_start(*a, *b, m)),
        "n1 backed off on an answer to an earlier term's message: {:?}",
        c.wire
    );
    let seen = c.delivered.len();
    c.deliver_all();
    let later = &c.delivered[seen..];
    assert!(!later.iter().any(|(a, b, m)| from_start(*a, *b, m)));
    assert_eq!(c.node(2).log().last_index(), c.node(1).log().last_index());
}

/// Figure 2, AppendEntries receiver rule 5: "If leaderCommit > commitIndex, set
/// commitIndex = min(leaderCommit, index of last new entry)" — AppendEntries alone
/// moves a follower's commit index forward (no heartbeat needed), and an old
/// AppendEntries delivered late, carrying an older leaderCommit, never moves it back.
#[test]
fn raft_figure_2_append_rule_5_advances_commit_and_never_lowers_it() {
    // init: heartbeats are lost throughout, so only AppendEntries carry the commit
    let mut c = Cluster::new(3);
    c.elect(1);
    let no_heartbeats = |_: NodeId, _: NodeId, m: &Message| kind(m) == "Heartbeat";
    c.deliver_all_dropping(no_heartbeats);
    c.put(1, "x", "1");
    let late = c
        .drop_next(|_, to, m| to == n(2) && kind(m) == "Append")
        .expect("x's AppendEntries to n2");
    c.deliver_all_dropping(no_heartbeats);

    // act: the next entry's AppendEntries carries x's commit
    c.put(1, "y", "1");
    c.deliver_all_dropping(no_heartbeats);

    // check
    assert_eq!(c.node(1).commit_index(), LogIndex(3));
    assert!(
        c.node(2).commit_index() >= LogIndex(2),
        "rule 5 not applied"
    );
    let commit = c.node(2).commit_index();

    // act: x's first AppendEntries (leaderCommit 1) arrives late
    c.wire.push_back(late);
    c.deliver_all_dropping(no_heartbeats);

    // check
    assert_eq!(c.node(2).commit_index(), commit, "commit index moved back");
}
