//! Leader election: Raft §5.1, §5.2, §5.4.1 and Figure 2's persistent state, with the
//! thesis's pre-vote (§9.6), check-quorum (§6.2) and leadership transfer (§3.10).
//!
//! Each test names the rule it checks and is laid out init / act / check. The driver
//! also checks Election Safety after every input (see `common`).

mod common;

use common::*;
use synod_core::Outcome;
use synod_raft::{Message, RaftTimer, Request, Response, Term};

/// §5.2: "If a follower receives no communication over a period of time called the
/// election timeout, then it assumes there is no viable leader and begins an election
/// … A candidate wins an election if it receives votes from a majority … Once a
/// candidate wins an election, it becomes leader. It then sends heartbeat messages to
/// all of the other servers to establish its authority."
#[test]
fn raft_5_2_initial_election() {
    // init
    let mut c = Cluster::new(3);
    assert_eq!(c.leader(), None);

    // act: only time passes; whichever timer fires first starts the election
    c.run_for(ms(1000));

    // check
    let leader = c.leader().expect("a leader within a second");
    assert_eq!(
        c.leaders_by_term().len(),
        1,
        "a quiet network needs one election"
    );
    assert_eq!(
        c.node(leader).term(),
        Term(1),
        "pre-vote does not burn a term"
    );
    for id in c.ids() {
        assert_eq!(c.node(id).term(), Term(1), "n{id} agrees on the term");
        assert_eq!(
            c.node(id).leader(),
            Some(n(leader)),
            "n{id} follows the winner"
        );
    }
    let others_campaigned = (c.fired.iter())
        .filter(|((id, t), _)| id.0 != leader && *t == RaftTimer::Election)
        .count();
    assert_eq!(
        others_campaigned, 0,
        "heartbeats keep followers from timing out"
    );
}

/// §5.2: "To begin an election, a follower increments its current term and
/// transitions to candidate state. It then votes for itself and issues RequestVote
/// RPCs in parallel to each of the other servers" — after a pre-vote round (thesis
/// §9.6) that changes nobody's term.
#[test]
fn raft_5_2_timeout_starts_pre_vote_then_vote() {
    // init
    let mut c = Cluster::new(3);

    // act: n2 times out
    c.fire(2, RaftTimer::Election);

    // check: only pre-votes for term 1 are out, and n2 is still in term 0
    assert_eq!(c.node(2).term(), Term(0));
    let pre_votes = c
        .wire
        .iter()
        .filter(|(_, _, m)| kind(m) == "PreVote")
        .count();
    assert_eq!((pre_votes, c.wire.len()), (2, 2), "{:?}", c.wire);
    assert!(c.wire.iter().all(|(_, _, m)| m.term() == Term(1)));

    // act: the pre-votes are granted
    c.deliver_until(|c| c.node(2).term() == Term(1));

    // check: n2 campaigns in term 1 and asks both peers
    let votes = c
        .wire
        .iter()
        .filter(|(_, _, m)| kind(m) == "RequestVote")
        .count();
    assert_eq!(votes, 2);
    c.deliver_all();
    assert_eq!(c.leader(), Some(2));
    assert_eq!(c.node(1).leader(), Some(n(2)));
}

/// §5.2: "If the leader crashes … a new election": a follower that stops hearing from
/// the leader wins a higher term; the old leader follows it after the partition heals.
#[test]
fn raft_5_2_reelection_after_leader_loss() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    c.run_for(ms(300));
    let old_term = c.node(1).term();

    // act
    c.isolate(1);
    c.run_for(ms(1000));

    // check
    let new = c.leader().expect("the majority elects a new leader");
    assert_ne!(new, 1);
    assert!(c.node(new).term() > old_term);
    assert!(
        !c.node(1).is_leader(),
        "check-quorum deposes the isolated leader"
    );

    // act: heal
    c.heal();
    c.run_for(ms(500));

    // check: one leader, and the old one follows it in its term
    assert_eq!(c.leader(), Some(new));
    assert_eq!(c.node(1).term(), c.node(new).term());
    assert_eq!(c.node(1).leader(), Some(n(new)));
}

/// §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC from
/// another server claiming to be leader. If the leader's term … is at least as large
/// as the candidate's current term, then the candidate recognizes the leader as
/// legitimate and returns to follower state."
#[test]
fn raft_5_2_candidate_steps_down_on_append_from_current_leader() {
    // init: without pre-vote, n1 becomes a candidate of term 1 whose requests are lost
    let mut c = Cluster::build(3, 0, 1, |cfg| cfg.pre_vote = false);
    c.fire(1, RaftTimer::Election);
    assert_eq!(c.drop_all(|from, _, _| from == n(1)), 2);
    assert_eq!((c.node(1).term(), c.node(1).leader()), (Term(1), None));

    // act: n2 campaigns in the same term and wins with n3's vote; its AppendEntries
    // reaches candidate n1
    c.fire(2, RaftTimer::Election);
    c.deliver_all();

    // check: n1 refused to vote (it voted for itself) but accepted the leader of its term
    let refused = c.count(|from, to, m| {
        from == n(1) && to == n(2) && matches!(m, Message::Vote { granted: false, .. })
    });
    assert_eq!(refused, 1);
    assert_eq!(c.leader(), Some(2));
    assert_eq!(c.node(2).term(), Term(1));
    assert!(!c.node(1).is_leader());
    assert_eq!(c.node(1).term(), Term(1));
    assert_eq!(c.node(1).leader(), Some(n(2)));
    assert_eq!(c.node(1).log().last_index(), c.node(2).log().last_index());
    assert_eq!(
        c.count(|from, _, m| from == n(1) && kind(m) == "AppendOk"),
        1
    );
}

/// §5.2 with pre-vote (thesis §9.6): a pre-candidate that hears from the leader of its
/// term also returns to follower state, so a late pre-vote grant cannot make it
/// campaign and depose a healthy leader.
#[test]
fn raft_thesis_9_6_pre_candidate_steps_down_on_append_from_current_leader() {
    // init: without check-quorum, n2 grants any pre-vote for a newer term
    let mut c = Cluster::build(3, 0, 1, |cfg| cfg.check_quorum = false);
    c.elect(1);
    let term = c.node(1).term();
    c.fire(3, RaftTimer::Election); // n3 asks for pre-votes for the next term
    assert_eq!(c.wire.len(), 2);

    // act: the leader's heartbeat reaches n3 before any pre-vote answer
    c.fire(1, RaftTimer::Heartbeat);
    c.drop_all(|_, to, m| to == n(2) && kind(m) == "Heartbeat");
    let heartbeat = c
        .wire
        .iter()
        .position(|(_, to, m)| *to == n(3) && kind(m) == "Heartbeat");
    c.deliver_at(heartbeat.expect("a heartbeat to n3"));
    c.deliver_all();

    // check: n2's grant arrived, but n3 had gone back to following n1
    let granted = c.count(|from, to, m| {
        from == n(2)
            && to == n(3)
            && matches!(
                m,
                Message::Vote {
                    pre_vote: true,
                    granted: true,
                    ..
                }
            )
    });
    assert_eq!(granted, 1);
    assert_eq!(c.node(3).term(), term);
    assert_eq!(c.node(3).leader(), Some(n(1)));
    assert_eq!(c.leader(), Some(1));
    assert_eq!(c.node(1).term(), term);
}

/// §5.1: "If a server receives a request with a stale term number, it rejects the
/// request" — and "if a candidate or leader discovers that its term is out of date, it
/// immediately reverts to follower state."
#[test]
fn raft_5_1_stale_term_message_is_rejected() {
    // init: without check-quorum a partitioned leader keeps believing it leads
    let mut c = Cluster::build(3, 0, 1, |cfg| cfg.check_quorum = false);
    c.elect(1);
    c.isolate(1);
    c.elect(2);
    let (stale, current) = (c.node(1).term(), c.node(2).term());
    assert!(c.node(1).is_leader() && stale < current);
    let last = c.node(2).log().last_index();

    // act: the stale leader's AppendEntries reaches the others
    c.heal();
    let put = c.put(1, "x", "stale");
    c.deliver_all();

    // check: they refused it with their term; the stale leader stepped down
    let rejected = c.count(|from, to, m| {
        to == n(1) && from != n(1) && kind(m) == "AppendReject" && m.term() == current
    });
    assert_eq!(rejected, 2);
    assert_eq!(
        c.node(2).log().last_index(),
        last,
        "n2 appended nothing stale"
    );
    assert_eq!(
        c.node(3).log().last_index(),
        last,
        "n3 appended nothing stale"
    );
    assert!(!c.node(1).is_leader());
    assert_eq!(c.node(1).term(), current);
    assert_eq!(c.outcome(put), Some(&Outcome::Unknown));

    // act: a stale RequestVote
    let vote = Message::RequestVote {
        term: stale,
        last_log_index: last.next().next(),
        last_log_term: stale,
        pre_vote: false,
        transfer: false,
    };
    c.send(1, 3, vote);
    c.deliver_all();

    // check
    let answer = c.delivered.last().expect("n3 answered");
    assert_eq!((answer.0, answer.1), (n(3), n(1)));
    assert!(matches!(answer.2, Message::Vote { granted: false, term, .. } if term == current));
    assert_eq!(c.leader(), Some(2));
}

/// §5.4.1: "The RequestVote RPC implements this restriction: … the voter denies its
/// vote if its own log is more up-to-date than that of the candidate." A node that
/// missed committed entries cannot win, with or without pre-vote.
#[test]
fn raft_5_4_1_election_restriction() {
    for pre_vote in [false, true] {
        // init: n3 misses three committed entries. Without check-quorum, voters do not
        // ignore requests for having heard from a leader: only the log decides.
        let mut c = Cluster::build(3, 0, 1, |cfg| {
            cfg.pre_vote = pre_vote;
            cfg.check_quorum = false;
        });
        c.elect(1);
        c.isolate(3);
        for v in ["a", "b", "c"] {
            c.put(1, "k", v);
        }
        c.deliver_all();
        let committed = c.node(1).commit_index();
        assert!(committed > c.node(3).log().last_index());

        // act: the leader goes away; n3 times out first and campaigns
        c.heal();
        c.isolate(1);
        c.fire(3, RaftTimer::Election);
        c.deliver_all();

        // check: n2 refused, n3 lost; n2 can still win and keeps the committed entries
        let refusals = c.count(|from, to, m| {
            from == n(2) && to == n(3) && matches!(m, Message::Vote { granted: false, .. })
        });
        assert_eq!(refusals, 1, "pre_vote = {pre_vote}");
        assert!(!c.node(3).is_leader(), "pre_vote = {pre_vote}");
        c.elect(2);
        c.run_for(ms(100)); // a heartbeat tells n3 the new commit index
        assert!(c.node(2).commit_index() > committed);
        assert_eq!(c.node(3).state_machine().read("k"), Some("c"));
    }
}

/// Figure 2: currentTerm and votedFor are "persistent state on all servers, updated on
/// stable storage before responding to RPCs". A voter that crashes and restarts must
/// not vote a second time in the same term.
#[test]
fn raft_figure_2_term_and_vote_survive_restart() {
    // init: without pre-vote so that a real RequestVote reaches the restarted voter.
    // n1 wins term 1 with n2's vote; n3 hears nothing.
    let mut c = Cluster::build(3, 0, 1, |cfg| cfg.pre_vote = false);
    c.isolate(3);
    c.fire(1, RaftTimer::Election);
    c.deliver_until(|c| c.node(1).is_leader());
    assert_eq!(c.node(1).term(), Term(1));
    assert_eq!(c.node(3).term(), Term(0));

    // act: n2 crashes and restarts; n3 campaigns in term 1 while n1 is cut off
    c.crash(2);
    c.restart(2);
    c.heal();
    c.isolate(1);
    c.fire(3, RaftTimer::Election);
    assert_eq!(c.node(3).term(), Term(1));
    c.deliver_all();

    // check: n2 remembered term 1 and its vote for n1
    assert_eq!(c.node(2).term(), Term(1));
    let refused = c.count(|from, to, m| {
        from == n(2) && to == n(3) && matches!(m, Message::Vote { granted: false, .. })
    });
    assert_eq!(refused, 1);
    assert!(!c.node(3).is_leader(), "a second leader in term 1");
    // … but it may repeat its vote for the same candidate (a retransmission)
    let again = Message::RequestVote {
        term: Term(1),
        last_log_index: synod_raft::LogIndex(0),
        last_log_term: Term(0),
        pre_vote: false,
        transfer: false,
    };
    c.heal();
    c.send(1, 2, again);
    c.deliver_all();
    let answer = c
        .delivered
        .iter()
        .rev()
        .find(|(from, _, _)| *from == n(2))
        .unwrap();
    assert!(
        matches!(answer.2, Message::Vote { granted: true, .. }),
        "{answer:?}"
    );
}

/// Thesis §9.6: with pre-vote, "a server would first ask … whether its log was
/// up-to-date enough to get their vote", so a node that was partitioned and timed out
/// many times cannot force a new term when it rejoins.
#[test]
fn raft_thesis_9_6_partitioned_node_does_not_disrupt_on_rejoin() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    c.run_for(ms(300));
    let term = c.node(1).term();

    // act: n3 is cut off for 3 s, then rejoins
    c.isolate(3);
    c.run_for(ms(3000));
    let timeouts = c.fired[&(n(3), RaftTimer::Election)];
    c.heal();
    c.run_for(ms(1000));

    // check: n3 timed out many times, yet nobody's term moved and n1 still leads
    assert!(timeouts >= 10, "n3 timed out only {timeouts} times");
    assert_eq!(c.leader(), Some(1));
    for id in c.ids() {
        assert_eq!(c.node(id).term(), term, "n{id} changed term");
    }
    assert_eq!(c.node(3).leader(), Some(n(1)));
    assert_eq!(c.leaders_by_term().len(), 1);
}

/// Thesis §9.6, the other side: without pre-vote the rejoining node has inflated its
/// term and its answers depose the leader (§5.1) — which is what pre-vote prevents.
#[test]
fn raft_thesis_9_6_without_pre_vote_rejoin_forces_a_new_term() {
    // init
    let mut c = Cluster::build(3, 0, 1, |cfg| cfg.pre_vote = false);
    c.elect(1);
    c.run_for(ms(300));
    let term = c.node(1).term();

    // act
    c.isolate(3);
    c.run_for(ms(3000));
    c.heal();
    c.run_for(ms(1000));

    // check
    assert!(c.node(1).term() > term);
    assert_eq!(c.leaders_by_term().len(), 2, "{:?}", c.leaders_by_term());
}

/// Thesis §6.2: "a leader steps down if an election timeout elapses without a
/// successful round of heartbeats to a majority of its cluster" — and not while it
/// has one.
#[test]
fn raft_thesis_6_2_check_quorum_leader_steps_down_without_majority() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    let term = c.node(1).term();

    // act: losing one follower keeps a majority
    c.isolate(3);
    c.run_for(ms(1000));

    // check
    assert_eq!(c.leader(), Some(1));

    // act: losing both does not; a request is pending when it happens
    c.heal();
    c.run_for(ms(100));
    c.isolate(1);
    let pending = c.put(1, "x", "1");
    c.tick(ms(2 * 150));

    // check: within two check-quorum rounds n1 gave up, in its own term
    assert!(!c.node(1).is_leader());
    assert_eq!(c.node(1).term(), term);
    assert_eq!(c.node(1).leader(), None);
    assert_eq!(c.outcome(pending), Some(&Outcome::Unknown));
    let refused = c.put(1, "x", "2");
    assert_eq!(
        c.outcome(refused),
        Some(&Outcome::NotLeader { leader: None })
    );
}

/// Thesis §3.10: "the prior leader sends a TimeoutNow request to the target server
/// … the target server … starts a new election" and wins it, without waiting for an
/// election timeout; meanwhile the old leader stops accepting requests.
#[test]
fn raft_thesis_3_10_leadership_transfer() {
    // init: n2 lags a little behind
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(2);
    c.put(1, "x", "1");
    c.deliver_all();
    c.heal();
    let term = c.node(1).term();
    let now = c.now;

    // act
    let transfer = c.propose(1, Request::TransferLeader(n(2)));
    let during = c.put(1, "y", "1");
    c.run_for(ms(100));

    // check
    let started = Outcome::Done(Response::TransferStarted);
    assert_eq!(c.outcome(transfer), Some(&started));
    assert_eq!(c.outcome(during), Some(&Outcome::Unavailable));
    assert_eq!(c.count_kind("TimeoutNow"), 1);
    assert_eq!(c.leader(), Some(2));
    assert!(c.node(2).term() > term);
    assert_eq!(c.node(1).leader(), Some(n(2)));
    assert!(c.now - now < ms(150), "faster than any election timeout");
    assert_eq!(c.node(2).state_machine().read("x"), Some("1"));
}

/// Thesis §3.10: "If the transfer does not complete within an election timeout, the
/// prior leader aborts the transfer and resumes accepting client requests."
#[test]
fn raft_thesis_3_10_transfer_to_an_unreachable_target_is_aborted() {
    // init
    let mut c = Cluster::new(3);
    c.elect(1);
    c.put(1, "x", "1");
    c.isolate(2);
    c.run_for(ms(100));

    // act
    let transfer = c.propose(1, Request::TransferLeader(n(2)));
    let during = c.put(1, "y", "1");
    // past a check-quorum round (every 150 ms), short of the deadline (300 ms)
    c.run_for(ms(200));
    let still = c.put(1, "w", "1");
    c.run_for(ms(400));
    let after = c.put(1, "z", "1");
    c.run_for(ms(100));

    // check
    assert_eq!(
        c.outcome(transfer),
        Some(&Outcome::Done(Response::TransferStarted))
    );
    assert_eq!(c.outcome(during), Some(&Outcome::Unavailable));
    assert_eq!(
        c.outcome(still),
        Some(&Outcome::Unavailable),
        "aborted before an election timeout"
    );
    assert_eq!(c.leader(), Some(1));
    assert!(
        matches!(c.outcome(after), Some(Outcome::Done(_))),
        "{:?}",
        c.outcome(after)
    );
}

/// §5.2: "each server will vote for at most one candidate in a given term" — so a vote
/// counts only for the election of the term it was granted in. A granted vote of an
/// earlier campaign that arrives late (the candidate has since timed out and
/// campaigns again in a newer term) must not make it leader of the newer term.
#[test]
fn raft_5_2_vote_granted_in_an_earlier_term_is_not_counted_in_a_later_one() {
    // init: n1 campaigns in t; n2's vote is held, n3's lost.
    let mut c = Cluster::build(3, 0, 1, |cfg| cfg.pre_vote = false);
    c.fire(1, RaftTimer::Election);
    let t = c.node(1).term();
    let ask_n2 = c
        .wire
        .iter()
        .position(|(_, to, m)| to.0 == 2 && kind(m) == "RequestVote")
        .expect("n1 asks n2");
    c.deliver_at(ask_n2);
    let vote = c
        .drop_next(|from, to, m| (from.0, to.0) == (2, 1) && kind(m) == "Vote")
        .expect("n2 grants its vote in t");
    assert!(matches!(vote.2, Message::Vote { granted: true, .. }));
    c.wire.clear();

    // act: n1 times out and campaigns in t+1; everything but the old vote is lost.
    c.fire(1, RaftTimer::Election);
    assert!(c.node(1).term() > t);
    c.wire.clear();
    c.wire.push_back(vote);
    c.deliver_all();

    // check
    assert!(!c.node(1).is_leader(), "counted a vote of term {t}");
}

/// §5.2: "A candidate wins an election if it receives votes from a majority" — votes,
/// not answers: a refusal of the candidate's own term counts for nothing.
#[test]
fn raft_5_2_refused_vote_of_the_candidates_term_is_not_counted() {
    // init: n1 campaigns in t (no pre-vote); its requests are lost
    let mut c = Cluster::build(3, 0, 1, |cfg| cfg.pre_vote = false);
    c.fire(1, RaftTimer::Election);
    let term = c.node(1).term();
    c.wire.clear();

    // act: n2 answers no, in t
    let refusal = Message::Vote {
        term,
        granted: false,
        pre_vote: false,
    };
    c.send(2, 1, refusal);
    c.deliver_all();

    // check
    assert!(!c.node(1).is_leader(), "a refusal made n1 leader of {term}");
}

/// Thesis §9.6: a pre-vote asks "would you vote for me in a *newer* term?". One that
/// names the receiver's own term — a pre-candidate's late request, sent before the
/// receiver moved on to that term — is refused: votes in that term are the real
/// election's.
#[test]
fn raft_thesis_9_6_pre_vote_for_a_term_not_newer_is_refused() {
    // init: n1 leads in t; check-quorum off so no live-leader rule is involved
    let mut c = Cluster::build(3, 0, 1, |cfg| cfg.check_quorum = false);
    c.elect(1);
    c.deliver_all();
    let term = c.node(2).term();

    // act: n3's pre-vote for t (up to date), then for t+1
    for (asked, grant) in [(term, false), (term.next(), true)] {
        let ask = vote_request(asked, c.node(2).log(), true);
        c.send(3, 2, ask);
        c.deliver_all();
        // check
        let answer = c.last_sent(2, "PreVoteResponse");
        assert!(
            matches!(answer, Message::Vote { granted, .. } if *granted == grant),
            "pre-vote for {asked} at term {term}: {answer:?}"
        );
    }
}

/// Thesis §6.2 / §4.2.3: a server ignores vote requests "within the minimum election
/// timeout of hearing from a current leader" — strictly within: once the minimum
/// timeout has passed since the last contact it answers them again.
#[test]
fn raft_thesis_6_2_vote_requests_ignored_only_within_the_minimum_timeout() {
    // init: n1 leads; n2 heard from it at `contact`
    let mut c = Cluster::new(3);
    c.elect(1);
    c.deliver_all();
    let contact = c.now;
    let min = ms(150); // RaftConfig::lan's election_timeout_min
    let term = c.node(2).term();

    // act: n3's pre-vote reaches n2 just before and exactly at the minimum timeout,
    // with nothing else delivered in between
    for (at, grant) in [(min - ms(1), false), (min, true)] {
        let wait = contact + at - c.now;
        c.tick(wait);
        c.wire.clear();
        let ask = vote_request(term.next(), c.node(2).log(), true);
        c.send(3, 2, ask);
        c.deliver_all();
        // check
        let answer = c.last_sent(2, "PreVoteResponse");
        assert!(
            matches!(answer, Message::Vote { granted, .. } if *granted == grant),
            "{at:?} after the last contact: {answer:?}"
        );
    }
}

/// Figure 2: votedFor is "candidateId that received vote in current term" — it stays
/// for the rest of the term. A leader that steps down (check-quorum) keeps its vote
/// for itself, so a second candidate of the same term cannot collect it and become a
/// second leader of that term (§5.2 Election Safety).
#[test]
fn raft_5_2_leader_that_steps_down_keeps_its_vote_for_the_term() {
    // init: n1 leads in t, loses its followers and steps down, still in t
    let mut c = Cluster::new(3);
    c.elect(1);
    let term = c.node(1).term();
    c.isolate(1);
    c.tick(ms(400));
    assert!(!c.node(1).is_leader());
    assert_eq!(c.node(1).term(), term);
    c.heal();
    c.wire.clear();

    // act: a candidate of the same term, with an up-to-date log, asks n1
    let ask = vote_request(term, c.node(1).log(), false);
    c.send(3, 1, ask);
    c.deliver_all();

    // check
    let answer = c.last_sent(1, "Vote");
    assert!(
        matches!(answer, Message::Vote { granted: false, .. }),
        "n1 voted twice in {term}: {answer:?}"
    );
}

/// Thesis §3.10: TimeoutNow makes its receiver campaign at once — only a voter, and
/// only for a current leader: one from an earlier term (delayed, its sender since
/// deposed) or sent to a learner does nothing.
#[test]
fn raft_thesis_3_10_stale_or_learner_timeout_now_is_ignored() {
    // init: n1 leads a term after the first; n4 is a learner
    let mut c = Cluster::build(3, 1, 1, |_| {});
    c.elect(1);
    c.run_for(ms(100));
    c.propose(1, Request::AddLearner(n(4)));
    c.run_for(ms(100));
    assert!(c.node(4).membership().learners.contains(&n(4)));
    c.propose(1, Request::TransferLeader(n(2)));
    c.run_for(ms(100));
    assert_eq!(c.leader(), Some(2));
    let term = c.node(2).term();
    let stale = Term(term.0 - 1);

    // act
    c.send(1, 3, Message::TimeoutNow { term: stale });
    c.send(2, 4, Message::TimeoutNow { term });
    c.deliver_all();

    // check: nobody campaigned
    assert_eq!(c.leader(), Some(2));
    for id in c.ids() {
        assert_eq!(c.node(id).term(), term, "n{id} campaigned");
    }
}

/// §8: a new leader's state reflects every entry of an earlier term that will ever
/// commit only once it has applied its own term's first entry (the no-op) —
/// `leader_ready`, which an application composed on Raft waits for. Never before,
/// and never on a follower.
#[test]
fn raft_8_leader_ready_only_once_its_no_op_is_applied() {
    // init: n1 has just won; its no-op is not committed
    let mut c = Cluster::new(3);
    c.fire(1, RaftTimer::Election);
    c.deliver_until(|c| c.node(1).is_leader());
    assert!(!c.node(1).leader_ready(), "ready before its no-op applied");

    // act
    c.deliver_all();

    // check
    assert!(c.node(1).applied_index() >= c.node(1).log().first_index());
    assert!(c.node(1).leader_ready());
    assert!(!c.node(2).leader_ready() && !c.node(3).leader_ready());
}
