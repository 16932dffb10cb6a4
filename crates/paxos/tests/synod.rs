//! Single-decree Paxos, "Paxos Made Simple" §2: each test focuses on a sentence of
//! the paper. The driver checks after every input that at most one value is chosen
//! (computed from the acceptors' state) and that learners learn only chosen values.

mod common;

use common::synod::{kind, synod_cluster, Synod};
use common::*;
use std::cell::Cell;
use synod_core::{ClientId, NodeId, Outcome, Prng};
use synod_paxos::single::{Phase, SynodConfig, SynodMessage, SynodTimer};
use synod_paxos::Ballot;

fn b(round: u64, node: u64) -> Ballot {
    Ballot {
        round,
        node: NodeId(node),
    }
}

fn accept(ballot: Ballot, value: &str) -> SynodMessage<String> {
    SynodMessage::Accept {
        ballot,
        value: value.to_owned(),
    }
}

fn prepare(ballot: Ballot) -> SynodMessage<String> {
    SynodMessage::Prepare { ballot }
}

/// §2.2 P1: "An acceptor must accept the first proposal that it receives" — even
/// with no prepare before it — and (§2.3) tells every learner.
#[test]
fn paxos_p1_acceptor_accepts_first_proposal() {
    // init
    let mut c = synod_cluster(3, 1);

    // act
    c.send(1, 2, accept(b(1, 1), "x"));
    c.deliver_at(0);

    // check
    assert_eq!(c.node(2).accepted(), Some(&(b(1, 1), "x".to_owned())));
    let told: Vec<u64> = c
        .wire
        .iter()
        .filter(|(_, _, m)| kind(m) == "Accepted")
        .map(|(_, to, _)| to.0)
        .collect();
    assert_eq!(
        told,
        vec![1, 3],
        "every other learner hears of it (n2 told itself)"
    );
    assert_eq!(
        c.disk(2).recover().meta.len(),
        2,
        "promise and acceptance are durable"
    );
}

/// §2.2 P1a: "An acceptor can accept a proposal numbered n iff it has not responded
/// to a prepare request having a number greater than n" — and Phase 1(b)'s promise
/// "not to accept any more proposals numbered less than n".
#[test]
fn paxos_p1a_acceptor_refuses_proposals_below_its_promise() {
    // init: n2 promised b2.3
    let mut c = synod_cluster(3, 1);
    c.send(3, 2, prepare(b(2, 3)));
    c.deliver_all();
    assert_eq!(c.node(2).promised(), b(2, 3));

    // act: a proposal numbered lower arrives, then a prepare numbered lower
    c.send(1, 2, accept(b(1, 1), "x"));
    c.send(1, 2, prepare(b(1, 1)));
    c.deliver_at(0);
    c.deliver_at(0);

    // check
    assert_eq!(c.node(2).accepted(), None);
    let refusals = c
        .wire
        .iter()
        .filter(|(_, to, m)| to.0 == 1 && kind(m) == "Refuse")
        .count();
    assert_eq!(refusals, 2);
    assert!(c.wire.iter().all(|(_, _, m)| match m {
        SynodMessage::Refuse { promised, .. } => *promised == b(2, 3),
        _ => true,
    }));
}

/// §2.2 Phase 1(b): the promise carries "the highest-numbered proposal (if any) that
/// it has accepted".
#[test]
fn paxos_phase_1b_promise_reports_the_accepted_proposal() {
    // init
    let mut c = synod_cluster(3, 1);
    c.send(1, 2, accept(b(1, 1), "x"));
    c.deliver_at(0);
    c.wire.clear();

    // act
    c.send(3, 2, prepare(b(2, 3)));
    c.deliver_at(0);

    // check
    let promise = c
        .wire
        .iter()
        .find(|(_, _, m)| kind(m) == "Promise")
        .map(|(_, _, m)| m.clone());
    assert_eq!(
        promise,
        Some(SynodMessage::Promise {
            ballot: b(2, 3),
            accepted: Some((b(1, 1), "x".to_owned()))
        })
    );
}

/// §2.2 P2c, Phase 2(a): the proposer proposes "the value of the highest-numbered
/// proposal among the responses" — here another client's value, not its own.
#[test]
fn paxos_p2c_proposer_adopts_highest_accepted_value() {
    // init: of five acceptors, n2 accepted "old" in b1.1 and n3 "newer" in b2.1; no
    // majority accepted either, so nothing is chosen. n1 and n4 are cut off from n5.
    let mut c = synod_cluster(5, 1);
    c.send(1, 2, accept(b(1, 1), "old"));
    c.send(1, 3, accept(b(2, 1), "newer"));
    c.deliver_all_dropping(|_, _, m| kind(m) == "Accepted");
    c.partition(&[5], &[1, 4]);

    // act: a client asks n5 to propose "mine" (its first ballot, b1.5, is below
    // n3's b2.1 and refused; it backs off and tries b3.5)
    let t = c.propose(5, "mine".to_owned());
    c.run_for(ms(500));

    // check: n5's majority {n2, n3, n5} reported both; the higher one wins
    let accepts: Vec<&String> = c
        .delivered
        .iter()
        .filter_map(|(from, _, m)| match m {
            SynodMessage::Accept { value, .. } if from.0 == 5 => Some(value),
            _ => None,
        })
        .collect();
    assert!(
        !accepts.is_empty() && accepts.iter().all(|v| *v == "newer"),
        "{accepts:?}"
    );
    assert_eq!(c.outcome(t), Some(&Outcome::Done("newer".to_owned())));
    assert_eq!(c.node(5).chosen(), Some(&"newer".to_owned()));
}

/// §2.2: "a value is chosen when a single proposal with that value has been accepted
/// by a majority of the acceptors" — the same value in two ballots, each accepted by
/// a minority, is not chosen.
#[test]
fn paxos_learner_needs_a_majority_in_one_ballot() {
    // init
    let mut c = synod_cluster(5, 1);

    // act: "x" accepted by n2, n3 in b1.1 and by n4 in b2.1
    c.send(1, 2, accept(b(1, 1), "x"));
    c.send(1, 3, accept(b(1, 1), "x"));
    c.send(1, 4, accept(b(2, 1), "x"));
    c.deliver_all();

    // check: 3 acceptances of "x", but no ballot has 3
    for id in c.ids() {
        assert_eq!(c.node(id).chosen(), None, "n{id}");
    }

    // act: n5 accepts in b1.1 as well
    c.send(1, 5, accept(b(1, 1), "x"));
    c.deliver_all();

    // check
    for id in c.ids() {
        assert_eq!(c.node(id).chosen(), Some(&"x".to_owned()), "n{id}");
    }
}

/// §2.3: "an acceptor must remember this information even if it fails and then
/// restarts" — the promise and the accepted proposal survive a crash, and the
/// restarted acceptor still refuses what it promised not to accept.
#[test]
fn paxos_acceptor_restart_keeps_its_promise() {
    // init: n2 accepted b1.1 "x", then promised b3.3
    let mut c = synod_cluster(3, 1);
    c.send(1, 2, accept(b(1, 1), "x"));
    c.deliver_at(0);
    c.send(3, 2, prepare(b(3, 3)));
    c.deliver_at(c.wire.len() - 1);
    assert_eq!(c.node(2).promised(), b(3, 3));

    // act
    c.crash(2);
    c.restart(2);
    c.wire.clear();
    c.send(1, 2, accept(b(2, 1), "y"));
    c.send(3, 2, prepare(b(3, 3)));
    c.deliver_at(0);
    c.deliver_at(0);

    // check: still promised b3.3, still holding b1.1 "x", and it says so
    assert_eq!(c.node(2).promised(), b(3, 3));
    assert_eq!(c.node(2).accepted(), Some(&(b(1, 1), "x".to_owned())));
    let kinds: Vec<&str> = c.wire.iter().map(|(_, _, m)| kind(m)).collect();
    assert_eq!(kinds, vec!["Refuse", "Promise"]);
}

/// §2.5: "each proposer remembers (in stable storage) the highest-numbered proposal
/// it has tried to issue, and begins phase 1 with a higher proposal number than any
/// it has already used" — even when no acceptor answered before it crashed.
#[test]
fn paxos_proposer_restart_issues_a_higher_ballot() {
    // init: n1 prepares b1.1; every prepare is lost, n1 crashes
    let mut c = synod_cluster(3, 1);
    c.propose(1, "a".to_owned());
    c.wire.clear();
    c.crash(1);

    // act
    c.restart(1);
    c.propose(1, "b".to_owned());

    // check
    let prepares: Vec<Ballot> = c
        .wire
        .iter()
        .filter_map(|(_, _, m)| match m {
            SynodMessage::Prepare { ballot } => Some(*ballot),
            _ => None,
        })
        .collect();
    assert!(
        !prepares.is_empty() && prepares.iter().all(|p| *p == b(2, 1)),
        "{prepares:?}"
    );
}

/// Phase 2(a): "If the proposer receives a response to its prepare requests
/// (numbered n) from a majority of acceptors, then it sends an accept request" — the
/// responses to *its* prepare numbered n. Promises and refusals echo the prepare's
/// ballot, and a proposer counts only those of its current attempt: answers to an
/// attempt it gave up on, or made before it restarted (§2.5: it never reuses that
/// number), arrive late and count for nothing — neither toward the majority of
/// promises (which would let it pick a value from too few reports) nor toward the
/// refusals that abandon an attempt.
#[test]
fn paxos_made_simple_phase2a_counts_only_answers_to_this_prepare() {
    // init: n4 promised b1.5; n1 prepares b1.1: n2 and n3 promise, n4 and n5 refuse,
    // and every answer is held up
    let mut c = synod_cluster(5, 1);
    c.propose(5, "z".to_owned());
    c.deliver_all_dropping(|_, to, _| to != NodeId(4));
    c.wire.clear();
    assert_eq!(c.node(4).promised(), b(1, 5));
    c.propose(1, "a".to_owned());
    let mut late = Vec::new();
    c.deliver_all_dropping(|from, to, m| {
        let answer = to == NodeId(1);
        if answer {
            late.push((from, to, m.clone()));
        }
        answer
    });
    let kinds: Vec<&str> = late.iter().map(|(_, _, m)| kind(m)).collect();
    assert_eq!(kinds, vec!["Promise", "Promise", "Refuse", "Refuse"]);
    let only_own_promise = |c: &Cluster<Synod>, ballot: Ballot| match c.node(1).proposer_phase() {
        Phase::Preparing {
            ballot: mine,
            promises,
            refusals,
            ..
        } => *mine == ballot && promises.len() == 1 && refusals.is_empty(),
        _ => false,
    };

    // act: n1 retries with b2.1 (its prepares lost); the b1.1 answers arrive
    c.fire(1, synod_paxos::single::SynodTimer::Retry);
    c.wire.clear();
    for (from, to, m) in late.clone() {
        c.send(from.0, to.0, m);
    }
    c.deliver_all();

    // check: no accept request, no back-off: still collecting for b2.1
    assert_eq!(c.count(|_, _, m| kind(m) == "Accept"), 0);
    assert!(
        only_own_promise(&c, b(2, 1)),
        "{:?}",
        c.node(1).proposer_phase()
    );

    // act: n1 restarts and prepares b3.1 (prepares lost); the b1.1 answers arrive again
    c.crash(1);
    c.restart(1);
    c.propose(1, "a".to_owned());
    let fresh: Vec<_> = c.wire.drain(..).collect();
    for (from, to, m) in late {
        c.send(from.0, to.0, m);
    }
    c.deliver_all();

    // check
    assert_eq!(c.count(|_, _, m| kind(m) == "Accept"), 0);
    assert!(
        only_own_promise(&c, b(3, 1)),
        "{:?}",
        c.node(1).proposer_phase()
    );
    c.wire.extend(fresh);
    c.deliver_all();
    assert_eq!(c.node(1).chosen(), Some(&"a".to_owned()));
}

/// §2.1 safety once chosen: a value stays chosen — a later proposal with another
/// value, after every process restarted, gets the chosen value back.
#[test]
fn paxos_chosen_value_survives_full_cluster_restart() {
    // init
    let mut c = synod_cluster(3, 1);
    let first = c.propose(1, "x".to_owned());
    c.deliver_all();
    assert_eq!(c.outcome(first), Some(&Outcome::Done("x".to_owned())));

    // act
    for id in c.ids() {
        c.crash(id);
    }
    for id in c.ids() {
        c.restart(id);
    }
    let second = c.propose(2, "y".to_owned());
    c.deliver_all();

    // check: n2 had learned it, and answers at once
    assert_eq!(c.outcome(second), Some(&Outcome::Done("x".to_owned())));
}

/// Messages may be lost (§2.1 "messages … can be lost"): an attempt whose accepts
/// were all lost is retried after `retry_timeout` with a higher ballot, and P2c makes
/// the retry propose the value already accepted.
#[test]
fn paxos_attempt_whose_messages_were_lost_is_retried() {
    // init: n1's accept reaches only n2, and n2's acceptance reaches no learner
    let mut c = synod_cluster(3, 1);
    let t = c.propose(1, "x".to_owned());
    c.deliver_all_dropping(|from, to, m| {
        (kind(m) == "Accept" && to.0 == 3) || (kind(m) == "Accepted" && from.0 != 1)
    });
    assert_eq!(c.outcome(t), None);

    // act
    c.run_for(ms(150));

    // check
    assert_eq!(c.outcome(t), Some(&Outcome::Done("x".to_owned())));
    assert!(matches!(c.node(1).proposer_phase(), Phase::Idle));
    assert_eq!(c.node(1).round(), 2);
}

/// A network adversary for §2.4's livelock: every message takes one round of
/// `latency`, except accept requests, which take two; within a round, prepares are
/// delivered first. So a proposer refused in phase 2 hears of it a round before its
/// rival's accepts land — time enough for a new prepare to overtake them, when the
/// rival started its prepare two rounds later.
struct Adversary {
    /// Accepts sent last round, delivered this round.
    slow: Vec<Wire<Synod>>,
}

impl Adversary {
    fn new() -> Adversary {
        Adversary { slow: Vec::new() }
    }

    fn round(&mut self, c: &mut Cluster<Synod>, latency: std::time::Duration) {
        let fresh: Vec<Wire<Synod>> = c.wire.drain(..).collect();
        let (accepts, others): (Vec<_>, Vec<_>) =
            fresh.into_iter().partition(|(_, _, m)| kind(m) == "Accept");
        let mut now: Vec<Wire<Synod>> = std::mem::replace(&mut self.slow, accepts);
        now.extend(others);
        now.sort_by_key(|(_, _, m)| kind(m) != "Prepare");
        let k = now.len();
        c.wire.extend(now);
        for _ in 0..k {
            c.deliver_at(0);
        }
        c.tick(latency);
    }
}

/// §2.4: "it's easy to construct a scenario in which two proposers each keep issuing
/// a sequence of proposals with increasing numbers, none of which are ever chosen" —
/// here, under the [`Adversary`] above, each proposer's new prepare lands just
/// before the other's accepts. A proposer that retried right after a refusal would
/// preempt the other forever; the randomised back-off, its window doubling per
/// failure, lets one through. Over many seeds.
#[test]
fn paxos_dueling_proposers_converge() {
    let duels = Cell::new(0);
    for_seeds(0..100, |seed| {
        // init
        let mut c = synod_cluster(3, seed);
        let mut net = Adversary::new();
        let t1 = c.request(1, ClientId(1), 1, "one".to_owned());
        net.round(&mut c, ms(10));
        net.round(&mut c, ms(10));
        let t2 = c.request(2, ClientId(2), 1, "two".to_owned());

        // act
        for _ in 0..500 {
            if c.outcome(t1).is_some() && c.outcome(t2).is_some() {
                break;
            }
            net.round(&mut c, ms(10));
        }

        // check: both learned the same value, which one of them proposed
        let (a, b) = (c.outcome(t1).cloned(), c.outcome(t2).cloned());
        assert!(a.is_some() && a == b, "{a:?} / {b:?} by {}", c.now);
        let refused = c.count(|_, _, m| kind(m) == "Refuse");
        duels.set(duels.get() + usize::from(refused >= 4));
    });
    assert!(duels.get() >= 50, "only {} of 100 runs dueled", duels.get());
}

/// §2.1 safety under every fault the model allows ("messages can take arbitrarily
/// long to be delivered, can be duplicated, and can be lost"; processes "may fail by
/// stopping, and may restart"): over many seeds, at most one value is chosen (the
/// driver checks after every input), every learner that learns learns it, it is
/// one of the proposed values, and once faults end every process learns it.
#[test]
fn paxos_at_most_one_value_chosen_per_instance() {
    let chosen_runs = Cell::new(0);
    for_seeds(0..300, |seed| {
        // init
        let mut c = synod_cluster(3 + 2 * (seed % 2), seed);
        let mut rng = Prng::new(seed);
        let faults = Faults {
            drop: 15,
            duplicate: 10,
            propose: 4,
            crash: 3,
            timer: 10,
            partition: 2,
        };
        let propose = |c: &mut Cluster<Synod>, rng: &mut Prng, id: u64| {
            let v = format!("v{}", rng.below(1000));
            c.propose(id, v);
        };

        // act
        c.chaos(&mut rng, 400, &faults, &propose);
        c.settle(ms(5_000));
        let chosen_in_chaos = c.live().any(|p| p.chosen().is_some());
        // A process that missed the acceptances learns by proposing (P2c hands it
        // the chosen value).
        for id in c.ids() {
            c.propose(id, "late".to_owned());
        }
        c.run_for(ms(5_000));

        // check
        let learned: Vec<Option<&String>> = c.live().map(|p| p.chosen()).collect();
        assert!(
            learned[0].is_some() && learned.windows(2).all(|w| w[0] == w[1]),
            "{learned:?}"
        );
        if chosen_in_chaos {
            chosen_runs.set(chosen_runs.get() + 1);
            assert!(learned[0].unwrap().starts_with('v'), "{learned:?}");
        }
    });
    assert!(
        chosen_runs.get() >= 250,
        "only {} runs chose a value",
        chosen_runs.get()
    );
}

/// The configuration names what is wrong with it, at each boundary: the node among
/// the members, `0 < backoff_min <= backoff_max` (equal is legal), a retry timeout.
#[test]
fn synod_config_rejects_each_bad_parameter_and_accepts_the_boundaries() {
    let good = SynodConfig::lan(n(1), [n(1), n(2), n(3)], 7);
    assert_eq!(good.validate(), Ok(()));
    let check = |edit: &dyn Fn(&mut SynodConfig)| {
        let mut cfg = good.clone();
        edit(&mut cfg);
        cfg.validate()
    };
    let equal = check(&|c| c.backoff_max = c.backoff_min);
    assert_eq!(equal, Ok(()), "backoff_min == backoff_max is legal");
    let not_member = check(&|c| c.id = n(4)).unwrap_err();
    assert!(not_member.contains("n4"), "{not_member}");
    let above = check(&|c| c.backoff_min = c.backoff_max + ms(1)).unwrap_err();
    assert!(above.contains("backoff_min <= backoff_max"), "{above}");
    let zero = check(&|c| c.backoff_min = ms(0)).unwrap_err();
    assert!(zero.contains("0 < backoff_min"), "{zero}");
    let retry = check(&|c| c.retry_timeout = ms(0)).unwrap_err();
    assert!(retry.contains("retry_timeout"), "{retry}");
}

/// Prepares n1 has queued and not yet delivered.
fn n1_prepares_queued(c: &Cluster<Synod>) -> usize {
    c.count_queued(|f, _, m| f == n(1) && kind(m) == "Prepare")
}

/// The retry timer retries only when due (§2.1's lost messages): a stale expiry
/// before the deadline, or one after the value is chosen, starts no attempt; one
/// that fires late (a slow clock, a busy runtime) still retries.
#[test]
fn paxos_retry_timer_retries_only_when_due_and_also_when_late() {
    // init: n1's prepares are lost
    let mut c = synod_cluster(3, 1);
    let t = c.propose(1, "x".to_owned());
    c.drop_all(|_, _, _| true);

    // act + check: early
    c.fire_spurious(1, SynodTimer::Retry);
    assert_eq!(n1_prepares_queued(&c), 0, "retried before the deadline");
    assert_eq!(c.node(1).round(), 1);

    // act + check: late
    c.now += ms(500);
    c.fire(1, SynodTimer::Retry);
    assert_eq!(
        n1_prepares_queued(&c),
        2,
        "no retry when the timer fired late"
    );
    assert_eq!(c.node(1).round(), 2);

    // act + check: after the value is chosen
    c.deliver_all();
    assert_eq!(c.outcome(t), Some(&Outcome::Done("x".to_owned())));
    c.fire_spurious(1, SynodTimer::Retry);
    assert_eq!(n1_prepares_queued(&c), 0, "retried a chosen value");
}

/// n3 holds a promise of n2 and n3 for round 1; n1's attempt of round 1 is refused
/// by both and backs off.
fn n1_refused_and_backing_off() -> Cluster<Synod> {
    let mut c = synod_cluster(3, 1);
    c.propose(3, "a".to_owned());
    c.deliver_all_dropping(|_, to, m| to == n(1) || kind(m) != "Prepare");
    c.propose(1, "b".to_owned());
    c.deliver_all();
    assert_eq!(c.node(1).proposer_phase(), &Phase::Idle);
    assert!(c.armed(1, SynodTimer::Retry).is_some(), "no back-off armed");
    c
}

/// §2.4's back-off holds for new requests too: a client request that reaches a
/// proposer backing off after a refusal waits for the retry, not a fresh attempt
/// at once — else every new request would cut the back-off short.
#[test]
fn paxos_a_request_during_back_off_waits_for_the_retry() {
    // init
    let mut c = n1_refused_and_backing_off();
    let round = c.node(1).round();

    // act
    c.propose(1, "c".to_owned());

    // check
    assert_eq!(
        n1_prepares_queued(&c),
        0,
        "attempt started during the back-off"
    );
    c.fire(1, SynodTimer::Retry);
    assert_eq!(n1_prepares_queued(&c), 2);
    assert_eq!(c.node(1).round(), round + 1);
}

/// A refusal counts only for the attempt it answers: a late refusal of an earlier
/// ballot neither abandons the current attempt nor reschedules its retry.
#[test]
fn paxos_a_refusal_of_an_earlier_attempt_changes_nothing() {
    // init: n1's first attempt was refused; its retry (round 2) is in flight
    let mut c = n1_refused_and_backing_off();
    c.fire(1, SynodTimer::Retry);
    let ballot = b(c.node(1).round(), 1);
    let retry = c.armed(1, SynodTimer::Retry);

    // act
    let stale = SynodMessage::Refuse {
        ballot: b(ballot.round - 1, 1),
        promised: b(1, 3),
    };
    c.send(2, 1, stale);
    let at = c.queued(|f, t, m| (f, t) == (n(2), n(1)) && kind(m) == "Refuse");
    c.deliver_at(at.expect("queued"));

    // check
    assert!(
        matches!(c.node(1).proposer_phase(), Phase::Preparing { ballot: b, .. } if *b == ballot)
    );
    assert_eq!(c.armed(1, SynodTimer::Retry), retry, "retry rescheduled");
}
