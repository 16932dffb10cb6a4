//! Membership changes one server at a time, with learners (thesis chapter 4; the paper's
//! §6 describes the joint-consensus variant, which synod-raft does not implement).

mod common;

use common::*;
use std::collections::BTreeSet;
use synod_core::{NodeId, Outcome};
use synod_raft::{LogIndex, RaftTimer, Request, Response};

fn ids(v: &[u64]) -> BTreeSet<NodeId> {
    v.iter().map(|&i| n(i)).collect()
}

fn changed(c: &Cluster, t: Ticket) -> bool {
    matches!(
        c.outcome(t),
        Some(Outcome::Done(Response::ConfigChanged(_)))
    )
}

/// A cluster of voters 1..=3 (plus `spares`) led by n1, with a few committed entries.
fn led_by_1(spares: u64) -> Cluster {
    let mut c = Cluster::build(3, spares, 1, |_| {});
    c.elect(1);
    for i in 0..5 {
        c.put(1, "k", &i.to_string());
    }
    c.run_for(ms(100));
    c
}

/// Thesis §4.2.1: "the new server joins the cluster as a non-voting member. The leader
/// will replicate log entries to it, but it is not yet counted towards majorities";
/// once caught up it is promoted, and from then on majorities include it.
#[test]
fn raft_thesis_4_2_1_learner_catches_up_then_promotion_counts_for_quorum() {
    // init: n4 runs outside the configuration and never campaigns
    let mut c = led_by_1(1);
    assert!(c.fired[&(n(4), RaftTimer::Election)] > 0);
    assert_eq!(
        c.count(|from, _, _| from == n(4)),
        0,
        "n4 asked nobody for votes"
    );

    // act
    let add = c.propose(1, Request::AddLearner(n(4)));
    c.run_for(ms(300));

    // check: a learner everywhere, with the whole log and state machine
    assert!(changed(&c, add));
    for id in 1..=4 {
        let m = c.node(id).membership();
        assert_eq!(
            (&m.voters, &m.learners),
            (&ids(&[1, 2, 3]), &ids(&[4])),
            "n{id}"
        );
    }
    assert_eq!(c.node(4).log().last_index(), c.node(1).log().last_index());
    assert_eq!(c.node(4).state_machine(), c.node(1).state_machine());

    // act: only the learner is reachable
    c.partition(&[1, 4], &[2, 3]);
    let write = c.put(1, "w", "1");
    let read = c.get(1, "k");
    let before = c.node(1).commit_index();
    c.deliver_all();

    // check: its acknowledgements make neither a commit nor a read quorum
    assert_eq!(c.node(4).log().last_index(), c.node(1).log().last_index());
    assert_eq!(c.node(1).commit_index(), before);
    assert_eq!((c.outcome(write), c.outcome(read)), (None, None));
    c.heal();
    c.run_for(ms(100));
    assert!(matches!(c.outcome(write), Some(Outcome::Done(_))));

    // act
    let promote = c.propose(1, Request::Promote(n(4)));
    c.run_for(ms(300));

    // check
    assert!(changed(&c, promote));
    for id in 1..=4 {
        assert_eq!(c.node(id).membership().voters, ids(&[1, 2, 3, 4]), "n{id}");
    }

    // act: with four voters, n1 and n2 alone are no longer a majority …
    c.partition(&[1, 2], &[3, 4]);
    let minority = c.put(1, "q", "1");
    c.deliver_all();
    let stuck_at = c.node(1).commit_index();
    assert_eq!(c.outcome(minority), None);
    // … but with n4's acknowledgement they are
    c.heal();
    c.partition(&[1, 2, 4], &[3]);
    c.fire(1, RaftTimer::Heartbeat);
    c.deliver_all();

    // check
    assert!(c.node(1).commit_index() > stuck_at);
    assert!(matches!(c.outcome(minority), Some(Outcome::Done(_))));
}

/// Thesis §4.2.1: a learner is promoted only once "the new server's log [is] close to
/// the leader's", so that it does not stall commitment while it catches up.
#[test]
fn raft_thesis_4_2_1_promotion_waits_for_the_learner_to_catch_up() {
    // init: a log longer than promote_lag_max (64) that n4 does not have
    let mut c = led_by_1(1);
    for i in 0..80 {
        c.put(1, "bulk", &i.to_string());
    }
    c.run_for(ms(100));
    c.isolate(4);
    let add = c.propose(1, Request::AddLearner(n(4)));
    c.run_for(ms(100));
    assert!(changed(&c, add), "adding a learner needs no quorum of it");

    // act / check: refused while n4 lags
    let early = c.propose(1, Request::Promote(n(4)));
    assert_eq!(c.outcome(early), Some(&Outcome::Unavailable));
    assert!(c.node(1).membership().learners.contains(&n(4)));

    // act / check: accepted once it caught up
    c.heal();
    c.run_for(ms(300));
    let late = c.propose(1, Request::Promote(n(4)));
    c.run_for(ms(100));
    assert!(changed(&c, late));
    assert!(c.node(4).membership().voters.contains(&n(4)));
}

/// Thesis §4.1: removing a server is one configuration change; from then on
/// majorities are counted without it, and it does not disturb the cluster.
#[test]
fn raft_thesis_4_1_remove_follower() {
    // init
    let mut c = led_by_1(0);
    let term = c.node(1).term();

    // act
    let remove = c.propose(1, Request::Remove(n(3)));
    c.run_for(ms(100));

    // check
    assert!(changed(&c, remove));
    for id in [1, 2] {
        assert_eq!(c.node(id).membership().voters, ids(&[1, 2]), "n{id}");
    }
    // n1 and n3 were a majority of the old configuration, not of the new one
    c.partition(&[1, 3], &[2]);
    let put = c.put(1, "x", "1");
    c.deliver_all();
    assert_eq!(c.outcome(put), None);
    c.heal();
    c.run_for(ms(100));
    assert!(matches!(c.outcome(put), Some(Outcome::Done(_))));
    // n3 is no longer replicated to, and does not disturb the cluster (thesis §4.2.3)
    let replicated = |c: &Cluster| {
        c.count(|_, to, m| to == n(3) && m.term() == term && kind(m) != "PreVoteResponse")
    };
    let before = replicated(&c);
    c.run_for(ms(2000));
    assert_eq!(replicated(&c), before);
    assert_eq!(c.leader(), Some(1));
    assert_eq!((c.node(1).term(), c.node(2).term()), (term, term));
}

/// Thesis §4.2.2: "the leader … steps down (returns to follower state) once the
/// Cnew entry is committed", and the rest elect a leader among themselves.
#[test]
fn raft_thesis_4_2_2_removed_leader_steps_down() {
    // init
    let mut c = led_by_1(0);
    let term = c.node(1).term();

    // act
    let remove = c.propose(1, Request::Remove(n(1)));
    c.deliver_all();

    // check: committed by n2 and n3 (the new majority), then n1 stepped down
    assert!(changed(&c, remove));
    assert!(!c.node(1).is_leader());
    let n1_asked = |c: &Cluster| c.count(|from, _, m| from == n(1) && kind(m) == "PreVote");
    let asked = n1_asked(&c);

    // act
    c.run_for(ms(2000));

    // check
    let leader = c.leader().expect("n2 or n3 leads");
    assert!([2, 3].contains(&leader));
    assert!(c.node(leader).term() > term);
    assert_eq!(c.node(leader).membership().voters, ids(&[2, 3]));
    assert_eq!(c.leaders_by_term().len(), 2, "n1 never came back");
    // Its removal is committed and it knows it (commit == the entry's index), so it
    // does not even ask (§4.2.2 "should still start new elections" ends there).
    assert_eq!(c.node(1).commit_index(), c.node(1).log().last_index());
    assert_eq!(
        n1_asked(&c),
        asked,
        "removed n1 campaigned after its removal committed"
    );
}

/// Thesis §4.2.2: until the configuration that removes it is committed, a removed
/// server still takes part — the leader that appended it keeps leading to commit it.
/// With two voters, if the leader removing itself crashes before the other stores the
/// entry, the other cannot win without its vote (and is refused: its log is shorter),
/// so the removed server must be able to campaign to commit its removal.
#[test]
fn raft_thesis_4_2_2_leader_removing_itself_crashes_before_replicating() {
    // init: two voters; n1 leads and appends its own removal, which n2 never receives
    let mut c = Cluster::build(2, 0, 1, |_| {});
    c.elect(1);
    c.run_for(ms(100));
    c.propose(1, Request::Remove(n(1)));
    assert_eq!(c.drop_all(|_, to, _| to == n(2)), 1);
    c.crash(1);
    c.restart(1);
    assert_eq!(c.node(1).membership().voters, ids(&[2]));
    assert_eq!(c.node(2).membership().voters, ids(&[1, 2]));

    // act
    c.run_for(ms(3000));

    // check: n1 led again to commit its removal, stepped down, and n2 leads alone
    assert_eq!(c.leader(), Some(2));
    assert_eq!(c.node(2).membership().voters, ids(&[2]));
    assert!(c.leaders_by_term().values().filter(|&&l| l == n(1)).count() >= 2);
    assert!(
        c.node(1).commit_index() >= LogIndex(2),
        "n1 knows its removal committed"
    );

    // act / check: … so it no longer campaigns
    let (term, quiet) = (c.node(2).term(), c.count_kind("PreVote"));
    c.run_for(ms(2000));
    assert_eq!((c.leader(), c.node(2).term()), (Some(2), term));
    assert_eq!(c.count_kind("PreVote"), quiet);
}

/// The fix for the single-server change bug (Ongaro, raft-dev, 2015): "a leader may
/// not append a new configuration entry until it has committed an entry from its
/// current term". Before its no-op commits, a new leader refuses changes.
#[test]
fn raft_thesis_4_1_change_refused_before_leader_commits_an_entry_of_its_term() {
    // init: n1 has just won; its no-op is not committed
    let mut c = Cluster::build(3, 1, 1, |_| {});
    c.fire(1, RaftTimer::Election);
    c.deliver_until(|c| c.node(1).is_leader());
    assert_eq!(c.node(1).commit_index(), LogIndex(0));

    // act / check
    let early = c.propose(1, Request::AddLearner(n(4)));
    assert_eq!(c.outcome(early), Some(&Outcome::Unavailable));
    assert_eq!(c.node(1).membership().learners, ids(&[]));

    // act / check: after the no-op commits, the same change is accepted
    c.deliver_all();
    let late = c.propose(1, Request::AddLearner(n(4)));
    c.deliver_all();
    assert!(changed(&c, late));
}

/// Thesis §4.1: "The leader … does not start a new configuration change until the
/// previous one has committed."
#[test]
fn raft_thesis_4_1_one_change_at_a_time() {
    // init
    let mut c = led_by_1(2);

    // act: a second change while the first is uncommitted
    let first = c.propose(1, Request::AddLearner(n(4)));
    let second = c.propose(1, Request::AddLearner(n(5)));

    // check: refused, and not appended
    assert_eq!(c.outcome(second), Some(&Outcome::Unavailable));
    assert!(!c.node(1).membership().learners.contains(&n(5)));
    c.deliver_all();
    assert!(changed(&c, first));

    // act / check: once the first committed, the second is accepted
    let again = c.propose(1, Request::AddLearner(n(5)));
    c.deliver_all();
    assert!(changed(&c, again));
    assert_eq!(c.node(1).membership().learners, ids(&[4, 5]));
}

/// §6 / thesis §4.1: "a server always uses the latest configuration in its log,
/// regardless of whether the entry is committed" — so when a new leader overwrites an
/// uncommitted configuration entry, the server must fall back to the configuration
/// that is now latest in its log.
#[test]
fn raft_thesis_4_1_overwritten_configuration_entry_is_rolled_back() {
    // init: n1 removes n5, but only n2 stores the change
    let mut c = Cluster::build(5, 0, 1, |_| {});
    c.elect(1);
    c.partition(&[1, 2], &[3, 4, 5]);
    let remove = c.propose(1, Request::Remove(n(5)));
    c.deliver_all();
    assert_eq!(c.node(2).membership().voters, ids(&[1, 2, 3, 4]));
    // the other side elects n3, which writes more entries than n1 and n2 hold
    c.elect(3);
    for i in 0..3 {
        c.put(3, "k", &i.to_string());
    }
    c.deliver_all();

    // act
    c.heal();
    c.run_for(ms(500));

    // check: the removal is gone from every log, and from every configuration
    assert_eq!(c.outcome(remove), Some(&Outcome::Unknown));
    c.assert_converged();
    for id in 1..=5 {
        let m = c.node(id).membership();
        assert_eq!(
            m.voters,
            ids(&[1, 2, 3, 4, 5]),
            "n{id} uses a configuration it no longer has"
        );
    }
}

/// Thesis §4.2.1: a learner is promoted only once it "has caught up" — here within
/// `promote_lag_max` (64) entries of the leader's log. One that fell further behind is
/// refused, and the configuration does not change.
#[test]
fn raft_thesis_4_2_1_learner_too_far_behind_is_not_promoted() {
    // init: n4 joins as a learner and catches up, then is cut off while the leader
    // appends 70 more entries
    let mut c = led_by_1(1);
    let add = c.propose(1, Request::AddLearner(n(4)));
    c.run_for(ms(300));
    assert!(changed(&c, add));
    let caught_up = c.node(4).log().last_index();
    c.isolate(4);
    for i in 0..70 {
        c.put(1, "k", &i.to_string());
    }
    c.run_for(ms(100));
    let last = c.node(1).log().last_index();
    assert!(
        caught_up.0 + 64 < last.0,
        "n4 is {} behind",
        last.0 - caught_up.0
    );

    // act
    let promote = c.propose(1, Request::Promote(n(4)));
    c.run_for(ms(300));

    // check
    assert_eq!(c.outcome(promote), Some(&Outcome::Unavailable));
    assert_eq!(c.node(1).membership().voters, ids(&[1, 2, 3]));
    assert_eq!(c.node(1).membership().learners, ids(&[4]));
}
