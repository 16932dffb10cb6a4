//! `twopc-nb` (2PC whose coordinator decisions are replicated by Raft,
//! `synod_harness::compose`) against classic 2PC on the events that make classic
//! 2PC block: the coordinator crashing while participants are in doubt (Gray &
//! Lamport, "Consensus on Transaction Commit", §1 and §5). Driven by the test kit:
//! n1–n3 replicate the coordinator, n4 and n5 own a shard each.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use synod_core::{ClientId, NodeId, Outcome};
use synod_harness::compose::{nb_topology, NbMessage, NbNode};
use synod_testkit::{ms, n, Check, Cluster, Ticket};
use synod_twopc::{
    AbortReason, Message, Op, Role, Topology, TwoPcConfig, TwoPcNode, Txn, TxnId, TxnOutcome,
};

const MEMBERS: u64 = 5;
const SHARDS: [u64; 2] = [4, 5];

/// Atomicity over every outcome any node ever held.
#[derive(Default)]
struct Atomicity(BTreeMap<TxnId, bool>);

impl Check<NbNode> for Atomicity {
    fn after_step(&mut self, id: NodeId, node: &NbNode) {
        for (txn, commit) in node.known_outcomes() {
            let first = *self.0.entry(txn).or_insert(commit);
            assert_eq!(first, commit, "atomicity: {txn} differs at {id}");
        }
    }
}

fn members() -> Vec<NodeId> {
    (1..=MEMBERS).map(n).collect()
}

fn nb_cluster() -> Cluster<NbNode> {
    let topology = nb_topology(&members());
    let check = Rc::new(RefCell::new(Atomicity::default()));
    struct Shared(Rc<RefCell<Atomicity>>);
    impl Check<NbNode> for Shared {
        fn after_step(&mut self, id: NodeId, node: &NbNode) {
            self.0.borrow_mut().after_step(id, node);
        }
    }
    let mut c = Cluster::start(
        MEMBERS,
        move |id| NbNode::new(id, topology.clone(), id.0),
        vec![Box::new(Shared(check))],
    );
    c.run_for(ms(1000)); // elect a leader, commit its no-op
    c
}

/// The replica that coordinates.
fn coordinating(c: &Cluster<NbNode>) -> u64 {
    let leaders: Vec<u64> = (1..=3)
        .filter(|&id| c.is_up(id))
        .filter(|&id| {
            c.node(id)
                .coordinator()
                .is_some_and(|k| k.epoch().is_some())
        })
        .collect();
    assert_eq!(leaders.len(), 1, "one coordinating replica: {leaders:?}");
    leaders[0]
}

/// A key of shard `i` (0 or 1).
fn key_on(topology: &Topology, i: u32) -> String {
    (0..)
        .map(|j| format!("k{j}"))
        .find(|k| topology.shard_of(k).0 == i)
        .expect("some key")
}

/// A write to each shard.
fn two_shard_txn(topology: &Topology) -> Txn {
    let op = |i| Op::Write {
        key: key_on(topology, i),
        value: "v".into(),
    };
    Txn {
        ops: vec![op(0), op(1)],
    }
}

fn nb_in_doubt(c: &Cluster<NbNode>, id: u64) -> usize {
    let p = c.node(id).participant().expect("a participant");
    match p.role() {
        Role::Participant(p) => p.in_doubt().count(),
        Role::Coordinator(..) => unreachable!(),
    }
}

fn nb_data(c: &Cluster<NbNode>, id: u64) -> usize {
    match c.node(id).participant().expect("a participant").role() {
        Role::Participant(p) => p.data().len(),
        Role::Coordinator(..) => unreachable!(),
    }
}

fn is_decide(m: &NbMessage) -> bool {
    matches!(m, NbMessage::Commit(Message::Decide { .. }))
}

fn is_vote(m: &NbMessage) -> bool {
    matches!(m, NbMessage::Commit(Message::Vote { .. }))
}

fn committed<N: synod_core::Node<Response = TxnOutcome>>(c: &Cluster<N>, t: Ticket) -> bool {
    matches!(c.outcome(t), Some(Outcome::Done(TxnOutcome::Committed(_))))
}

/// Paxos Commit §5's claim for a replicated coordinator: the coordinator's leader
/// crashes after its commit decision is replicated but before any participant
/// hears it; the next leader tells them (from the replicated decision) within an
/// election, so nobody stays in doubt while a majority of the replicas is up.
#[test]
fn nb_leader_crash_after_the_decision_commits_without_blocking() {
    let mut c = nb_cluster();
    let topology = nb_topology(&members());
    let leader = coordinating(&c);
    let t = c.propose(leader, two_shard_txn(&topology));
    // Everything flows except the COMMITs: the decision is applied by Raft, the
    // client answered, the participants in doubt.
    c.deliver_all_dropping(|_, _, m| is_decide(m));
    assert!(committed(&c, t), "answered once Raft applied the decision");
    for id in SHARDS {
        assert_eq!(nb_in_doubt(&c, id), 1, "n{id} voted YES and is in doubt");
    }
    c.crash(leader);
    c.run_for(ms(1000));
    for id in SHARDS {
        assert_eq!(nb_in_doubt(&c, id), 0, "n{id} settled by the next leader");
        assert_eq!(nb_data(&c, id), 1, "n{id} applied the commit");
    }
    assert_ne!(coordinating(&c), leader);
}

/// The leader crashes before it could decide (the votes never reached it): the
/// next leader answers the in-doubt participants "aborted" — no record of an
/// earlier term's transaction in its applied state means no commit can exist.
#[test]
fn nb_leader_crash_before_the_decision_aborts_without_blocking() {
    let mut c = nb_cluster();
    let topology = nb_topology(&members());
    let leader = coordinating(&c);
    c.propose(leader, two_shard_txn(&topology));
    c.deliver_all_dropping(|_, _, m| is_vote(m));
    for id in SHARDS {
        assert_eq!(nb_in_doubt(&c, id), 1, "n{id} voted YES and is in doubt");
    }
    c.crash(leader);
    c.run_for(ms(1000));
    for id in SHARDS {
        assert_eq!(nb_in_doubt(&c, id), 0, "n{id} settled by the next leader");
        assert_eq!(nb_data(&c, id), 0, "n{id} aborted: nothing applied");
    }
}

/// A participant asked by a client names the replica that coordinates now — the one
/// whose PREPARE it saw last — not the first replica of the topology, which may be
/// down for good. Found by the 10,000-seed swarm sweep (`synod sim --protocol
/// twopc-nb --seed 7281 --faults none --ops 1000 --workload kv --clients 5 --nodes 3
/// --swarm`): n1's disk failed for good, n4 kept sending clients there, and one
/// client spent every attempt of its liveness ops on timeouts at n1.
#[test]
fn nb_a_participant_points_clients_at_the_replica_that_coordinates() {
    let mut c = nb_cluster();
    let topology = nb_topology(&members());
    // n1, the topology's first replica, goes down for good: a participant that
    // always named it would send every client to a replica that is down.
    c.crash(1);
    c.run_for(ms(1000));
    let now = coordinating(&c);
    let t = c.propose(now, two_shard_txn(&topology));
    c.run_for(ms(200));
    assert!(committed(&c, t), "the new coordinator commits");
    for id in SHARDS {
        let asked = c.propose(id, two_shard_txn(&topology));
        c.run_for(ms(10));
        assert_eq!(
            c.outcome(asked),
            Some(&Outcome::NotLeader {
                leader: Some(n(now))
            }),
            "n{id} names the coordinating replica"
        );
    }
}

/// Found by the 10,000-seed swarm (`synod check --protocol twopc-nb --swarm`, 143
/// seeds, e.g. 9852): the coordinating replica committed, then went down for good
/// with nothing in flight. No new coordinator sent a participant anything, so each
/// kept naming the replica it had heard from last — down — and every client, sent
/// only where it is told, asked a participant and the dead replica in turn for
/// good. A participant names the replica it heard from only while it hears from it;
/// after that the replicas in turn, so a client following the hints reaches a live
/// one, which names its leader.
#[test]
fn nb_a_participant_stops_naming_a_coordinator_that_went_quiet() {
    let mut c = nb_cluster();
    let topology = nb_topology(&members());
    let was = coordinating(&c);
    let t = c.propose(was, two_shard_txn(&topology));
    c.run_for(ms(200));
    assert!(committed(&c, t), "n{was} commits");
    c.crash(was);
    c.run_for(ms(2000)); // a new coordinator, which has nothing to tell the shards
    let now = coordinating(&c);
    // A client that asks a participant and follows every hint, one attempt each.
    let mut at = SHARDS[0];
    let mut dead_ends = 0;
    for _attempt in 0..2 * topology.coordinators.len() + 2 {
        if at == was {
            // Sent to the crashed replica: the client times out and asks a
            // participant again.
            dead_ends += 1;
            at = SHARDS[0];
            continue;
        }
        let asked = c.propose(at, two_shard_txn(&topology));
        c.run_for(ms(200));
        match c.outcome(asked) {
            Some(Outcome::Done(TxnOutcome::Committed(_))) => {
                assert_eq!(at, now, "committed by the coordinating replica");
                assert!(dead_ends <= 1, "sent to n{was} {dead_ends} times");
                return;
            }
            Some(Outcome::NotLeader { leader: Some(l) }) => at = l.0,
            other => panic!("n{at} answered {other:?}"),
        }
    }
    panic!("a client following the hints never reached n{now}, the new coordinator");
}

/// One operation as a transaction.
fn one(op: Op) -> Txn {
    Txn { ops: vec![op] }
}

/// A client whose id the test kit never hands out (its fresh ones start at 1001).
const LATE_CLIENT: ClientId = ClientId(7);

/// Runs the pattern of `synod check --protocol twopc-nb --swarm`, seed 5011, on the
/// cluster: a client's `cas k "" -> "b"` is refused (k holds "a"), so the client
/// reports "cas failed" and moves on; k is then deleted, and a copy of the refused
/// request — held by the network, or a retry sent before the answer came — reaches
/// the coordinator `between` returns, after it ran. `seq` numbers the request. The copy must get the same answer, and k must
/// stay deleted: the refusal is the request's final answer. Before the fix the copy
/// ran as a new transaction and committed a request its client was told had failed
/// (a linearizability violation).
fn a_late_copy_of_a_refused_request<N>(
    c: &mut Cluster<N>,
    coordinator: u64,
    shard: u64,
    key: &str,
    seq: u64,
    data: impl Fn(&Cluster<N>) -> Option<String>,
    between: impl FnOnce(&mut Cluster<N>) -> u64,
) where
    N: synod_core::Node<Request = Txn, Response = TxnOutcome>,
{
    let write = one(Op::Write {
        key: key.into(),
        value: "a".into(),
    });
    let t = c.propose(coordinator, write);
    c.run_for(ms(200));
    assert!(committed(c, t), "k = a");
    let cas = one(Op::Cas {
        key: key.into(),
        expected: String::new(),
        new: "b".into(),
    });
    let refused = Some(Outcome::Done(TxnOutcome::Aborted(AbortReason::Refused)));
    let first = c.request(coordinator, LATE_CLIENT, seq, cas.clone());
    c.run_for(ms(200));
    assert_eq!(c.outcome(first).cloned(), refused, "k holds a: refused");
    let t = c.propose(coordinator, one(Op::Delete { key: key.into() }));
    c.run_for(ms(200));
    assert!(committed(c, t), "k deleted");
    let to = between(c);
    let copy = c.request(to, LATE_CLIENT, seq, cas);
    c.run_for(ms(200));
    assert_eq!(
        c.outcome(copy).cloned(),
        refused,
        "the copy at n{to} gets the request's answer again"
    );
    assert_eq!(data(c), None, "n{shard}: the refused cas never ran");
}

/// Found by the 10,000-seed swarm (`synod sim --protocol twopc-nb --seed 5011
/// --faults none --ops 1000 --workload kv --clients 5 --nodes 3 --swarm`): a copy of
/// a refused request reached the coordinating replica after its client had been
/// answered, and committed. The refusal is logged in the client's session through
/// Raft before it is answered, so the copy is refused again — by the same leader,
/// and by the next one after it crashed.
#[test]
fn nb_a_late_copy_of_a_refused_request_is_refused_again_never_run() {
    let mut c = nb_cluster();
    let topology = nb_topology(&members());
    let key = key_on(&topology, 0);
    let leader = coordinating(&c);
    let shard = SHARDS[0];
    let data = |c: &Cluster<NbNode>| match c.node(shard).participant().map(|p| p.role()) {
        Some(Role::Participant(p)) => p.data().get(&key_on(&topology, 0)).cloned(),
        _ => unreachable!(),
    };
    // The same leader gets the copy (the seed's pattern).
    a_late_copy_of_a_refused_request(&mut c, leader, shard, &key, 1, data, |_| leader);
    // A new leader gets it: the refusal is in the replicated session.
    a_late_copy_of_a_refused_request(&mut c, leader, shard, &key, 2, data, |c| {
        c.crash(leader);
        c.run_for(ms(2000));
        coordinating(c)
    });
}

/// Classic 2PC, same pattern: the refusal is in the coordinator's journal before
/// it is answered, so a copy reaching it after a restart is refused again.
#[test]
fn classic_a_late_copy_of_a_refused_request_is_refused_again_after_a_restart() {
    let members: Vec<NodeId> = (1..=3).map(n).collect();
    let topology = Topology::from_members(&members);
    let build = {
        let topology = topology.clone();
        move |id| TwoPcNode::new(TwoPcConfig::lan(id, topology.clone()))
    };
    let key = key_on(&topology, 0);
    let shard = topology.node_of(topology.shard_of(&key)).0;
    let data = |c: &Cluster<TwoPcNode>| match c.node(shard).role() {
        Role::Participant(p) => p.data().get(&key).cloned(),
        Role::Coordinator(..) => unreachable!(),
    };
    let mut c = Cluster::start(3, build, vec![]);
    a_late_copy_of_a_refused_request(&mut c, 1, shard, &key, 1, data, |_| 1);
    a_late_copy_of_a_refused_request(&mut c, 1, shard, &key, 2, data, |c| {
        c.crash(1);
        c.restart(1);
        c.run_for(ms(500));
        1
    });
}

/// The same crash blocks classic 2PC for as long as its coordinator is down (here
/// 3 s): the participants ask it and each other, and nobody knows. Once it is back,
/// its recovery answers (presumed abort).
#[test]
fn classic_2pc_blocks_while_its_coordinator_is_down() {
    let members: Vec<NodeId> = (1..=3).map(n).collect();
    let topology = Topology::from_members(&members);
    let build = {
        let topology = topology.clone();
        move |id| TwoPcNode::new(TwoPcConfig::lan(id, topology.clone()))
    };
    let mut c = Cluster::start(3, build, vec![]);
    c.propose(1, two_shard_txn(&topology));
    c.deliver_all_dropping(|_, _, m| matches!(m, Message::Vote { .. }));
    c.crash(1);
    c.run_for(ms(3000));
    let in_doubt = |c: &Cluster<TwoPcNode>, id| match c.node(id).role() {
        Role::Participant(p) => p.in_doubt().count(),
        Role::Coordinator(..) => unreachable!(),
    };
    for id in [2, 3] {
        assert_eq!(in_doubt(&c, id), 1, "n{id} blocked: in doubt after 3 s");
    }
    c.restart(1);
    c.run_for(ms(1000));
    for id in [2, 3] {
        assert_eq!(
            in_doubt(&c, id),
            0,
            "n{id} settled once the coordinator is back"
        );
    }
}

/// Messages per transaction without faults: classic 2PC's 4n (PREPARE, vote,
/// COMMIT, ACK per participant) plus Raft's replication of the two records (commit
/// decision, forget): an AppendEntries to each of the 2 other replicas and its
/// answer, per record — 4n + 8.
#[test]
fn nb_messages_per_transaction_are_4n_plus_two_raft_rounds() {
    let mut c = nb_cluster();
    let topology = nb_topology(&members());
    let leader = coordinating(&c);
    for (participants, txn) in [
        (
            1,
            Txn {
                ops: vec![Op::Write {
                    key: key_on(&topology, 0),
                    value: "1".into(),
                }],
            },
        ),
        (2, two_shard_txn(&topology)),
    ] {
        c.deliver_all();
        let before = c.delivered.len();
        let t = c.propose(leader, txn);
        c.deliver_all();
        assert!(committed(&c, t));
        let sent = c.delivered.len() - before;
        assert_eq!(sent, 4 * participants + 8, "n = {participants}");
    }
}

/// 2PC's liveness exception and the variant without it, over seeds of the
/// simulator's crash faults (Gray & Lamport §1): classic 2PC's prepared
/// transactions stay in doubt past 1 s while its one coordinator is down — the
/// expected exception, measured and never a violation — while twopc-nb's never stay
/// in doubt through 1.5 s during which a majority of its coordinator's replicas was
/// up (`QUORUM_BOUND`). Both must still be live after the heal within their bound.
#[test]
fn gray_lamport_1_classic_blocks_on_its_coordinator_nb_never_with_a_majority_up() {
    use synod_harness::runner::run_protocol;
    use synod_harness::sim::config::{FaultSpec, SimConfig};
    let metric = |o: &synod_harness::sim::RunOutcome, name: &str| -> u64 {
        (o.metrics.iter())
            .filter(|(m, _)| *m == name)
            .map(|(_, v)| v)
            .sum()
    };
    let (mut classic_blocked, mut nb_settled) = (0, 0);
    for seed in 0..16 {
        for (protocol, nodes) in [("twopc", 3), ("twopc-nb", 5)] {
            let mut cfg = SimConfig::standard(seed, "crash".parse::<FaultSpec>().unwrap(), 400);
            cfg.nodes = nodes;
            let o = run_protocol(protocol, cfg).unwrap();
            assert!(
                o.violation.is_none(),
                "{protocol} seed {seed}: {:?}",
                o.violation
            );
            match protocol {
                "twopc" => classic_blocked += metric(&o, "blocked_over_1s"),
                _ => {
                    nb_settled += metric(&o, "in_doubt_settled");
                    let over = metric(&o, "blocked_with_quorum_over_1500ms");
                    assert_eq!(over, 0, "twopc-nb seed {seed}: blocked with a majority up");
                }
            }
        }
    }
    assert!(
        classic_blocked > 0,
        "classic 2PC never blocked: the crashes missed it"
    );
    assert!(nb_settled > 0, "twopc-nb prepared nothing");
}
