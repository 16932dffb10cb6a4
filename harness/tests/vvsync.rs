//! vvsync in the simulator, judged by what it promises (`adapters/vvsync.rs`): each
//! mode under every fault, the judgement catching broken modes, and availability on
//! both sides of a partition beside the consensus protocols.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use synod_core::{ClientId, KvOp, NodeId, Outcome, Time};
use synod_harness::adapters::paxos::Paxos;
use synod_harness::adapters::raft::Raft;
use synod_harness::adapters::vvsync::{Promise, VvSync, VvSyncDvv, VvSyncLww};
use synod_harness::adapters::zab::Zab;
use synod_harness::protocol::SimProtocol;
use synod_harness::registry;
use synod_harness::runner::run_protocol;
use synod_harness::sim::config::{FaultSpec, SimConfig};
use synod_harness::sim::{RunOutcome, Simulator, ViolationKind};
use synod_harness::workload::{WorkloadConfig, WorkloadName};
use synod_testkit::{ms, n, Cluster};
use synod_vvsync::{Causality, Dvv, Stored, VersionVector, VvNode};

const SEEDS: u64 = 12;

fn config(seed: u64) -> SimConfig {
    SimConfig::standard(seed, FaultSpec::all(), 600)
}

fn metric(outcome: &RunOutcome, name: &str) -> u64 {
    outcome
        .metrics
        .iter()
        .filter(|(m, _)| *m == name)
        .map(|(_, v)| v)
        .sum()
}

/// Sums `name` over the seeds of `protocol`, each run free of violations.
fn sweep(protocol: &str, names: &[&str]) -> Vec<u64> {
    let mut sums = vec![0; names.len()];
    for seed in 0..SEEDS {
        let outcome = run_protocol(protocol, config(seed)).unwrap();
        assert!(
            outcome.violation.is_none(),
            "{protocol} seed {seed}: {:?}",
            outcome.violation
        );
        for (sum, name) in sums.iter_mut().zip(names) {
            *sum += metric(&outcome, name);
        }
    }
    sums
}

#[test]
fn dvv_keeps_every_write_and_no_stale_sibling_under_every_fault() {
    let [lost, stale, effective] = sweep(
        "vvsync",
        &["lost_updates", "stale_siblings", "writes_effective"],
    )[..] else {
        unreachable!()
    };
    assert_eq!((lost, stale), (0, 0));
    assert!(effective > 1000, "{effective} writes took effect");
}

#[test]
fn replica_vectors_lose_nothing_but_keep_siblings_clients_wrote_over() {
    let [lost, stale] = sweep("vvsync-vv", &["lost_updates", "stale_siblings"])[..] else {
        unreachable!()
    };
    assert_eq!(lost, 0);
    assert!(stale > 0, "sibling explosion shows as stale siblings");
}

#[test]
fn lww_passes_convergence_and_counts_the_updates_it_lost() {
    let [lost, effective] = sweep("vvsync-lww", &["lost_updates", "writes_effective"])[..] else {
        unreachable!()
    };
    assert!(lost > effective / 10, "{lost} of {effective} writes lost");
}

/// List-append's multi-key transactions are refused with a reason (the bank is
/// served as per-key ledger writes instead: `tests/compare.rs`).
#[test]
fn vvsync_refuses_transactions_with_a_reason() {
    let mut cfg = config(0);
    cfg.workload = WorkloadConfig::named(WorkloadName::ListAppend, 100);
    let err = run_protocol("vvsync", cfg).unwrap_err();
    assert!(err.contains("get, put and delete"), "{err}");
    let entry = registry::get("vvsync").unwrap();
    assert_eq!(entry.consistency, registry::Consistency::Convergent);
}

// ----- the judgement catches broken modes ------------------------------------------

/// DVV with a broken rule, judged by DVV's promises.
macro_rules! broken_dvv {
    ($name:ident, $doc:literal, write: $write:expr, merge: $merge:expr) => {
        #[doc = $doc]
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        struct $name(Dvv);

        impl Causality for $name {
            type Context = VersionVector;
            const MODE: &'static str = stringify!($name);
            fn write_above(
                &mut self,
                ctx: &VersionVector,
                value: Stored,
                replica: NodeId,
                now: Time,
                floor: u64,
            ) {
                let write: fn(&mut Dvv, &VersionVector, Stored, NodeId, Time, u64) = $write;
                write(&mut self.0, ctx, value, replica, now, floor)
            }
            fn merge(&mut self, other: &Self) {
                let merge: fn(&mut Dvv, &Dvv) = $merge;
                merge(&mut self.0, &other.0)
            }
            fn context(&self) -> VersionVector {
                self.0.context()
            }
            fn stored(&self) -> Vec<&Stored> {
                self.0.stored()
            }
            fn counter_of(&self, replica: NodeId) -> u64 {
                self.0.counter_of(replica)
            }
        }

        impl Promise for $name {
            const NO_LOST_UPDATES: bool = true;
            const NO_STALE_SIBLINGS: bool = true;
        }
    };
}

fn total(d: &Dvv) -> u64 {
    d.context().iter().map(|(_, n)| n).sum()
}

broken_dvv!(
    KeepsTheLonger,
    "Merges by keeping whichever state counts more events: concurrent writes are lost.",
    write: |d, ctx, v, r, now, floor| d.write_above(ctx, v, r, now, floor),
    merge: |d, o| if total(o) > total(d) { *d = o.clone() }
);

broken_dvv!(
    IgnoresContexts,
    "Writes as if every context were empty: nothing a client saw is ever replaced.",
    write: |d, _ctx, v, r, now, floor| d.write_above(&VersionVector::new(), v, r, now, floor),
    merge: |d, o| d.merge(o)
);

broken_dvv!(
    NeverMerges,
    "Never merges another replica's state: replicas diverge.",
    write: |d, ctx, v, r, now, floor| d.write_above(ctx, v, r, now, floor),
    merge: |_d, _o| {}
);

/// The first violation over the seeds, with the protocol's own name for it.
fn first_violation<C: Promise>() -> Option<(ViolationKind, String)> {
    (0..SEEDS).find_map(|seed| {
        let outcome = Simulator::<VvSync<C>>::new(fitted(config(seed))).run();
        outcome.violation.map(|v| (v.kind, v.message))
    })
}

fn fitted(mut cfg: SimConfig) -> SimConfig {
    VvSyncDvv::fit_workload(&mut cfg.workload).unwrap();
    cfg
}

#[test]
fn the_judgement_catches_a_merge_that_loses_concurrent_writes() {
    let (kind, message) = first_violation::<KeepsTheLonger>().expect("caught");
    assert!(
        matches!(
            kind,
            ViolationKind::Invariant("no-lost-updates" | "replicas-only-move-forward")
        ),
        "{kind:?}: {message}"
    );
}

#[test]
fn the_judgement_catches_writes_that_keep_what_their_client_replaced() {
    // A delete is a write too: ignoring its context leaves the deleted
    // siblings live, which the judge may see first as a resurrection.
    let (kind, message) = first_violation::<IgnoresContexts>().expect("caught");
    assert!(
        matches!(
            kind,
            ViolationKind::Invariant("no-stale-siblings" | "no-resurrection")
        ),
        "{kind:?}: {message}"
    );
}

#[test]
fn the_judgement_catches_replicas_that_never_converge() {
    let (kind, message) = first_violation::<NeverMerges>().expect("caught");
    assert_eq!(kind, ViolationKind::Invariant("convergence"), "{message}");
}

// ----- availability on both sides of a partition -----------------------------------

/// Writes offered to each side of a `{n1} | {n2, n3}` partition, one every 10 ms at
/// each node for 2 s, and how many each side answered. A client stays on its side: it
/// follows a redirect only to a node there, and gives up on a write after 300 ms.
fn served_per_side<P: SimProtocol>() -> BTreeMap<&'static str, (u64, u64)> {
    let members = [n(1), n(2), n(3)];
    let mut c: Cluster<P::Node> =
        Cluster::start(3, move |id| P::build(id, &members, id.0), Vec::new());
    c.run_for(ms(2000)); // leaders elected, where there are leaders
    c.partition(&[1], &[2, 3]);
    let sides: [(&str, &[u64]); 2] = [("minority", &[1]), ("majority", &[2, 3])];
    let mut served = BTreeMap::new();
    let mut seq = 0;
    for round in 0..200u64 {
        for (side, nodes) in sides {
            for &node in nodes {
                seq += 1;
                let op = KvOp::Put {
                    key: format!("k{}", round % 8),
                    value: format!("{node}.{round}"),
                };
                let ok = write_within_side::<P>(&mut c, nodes, node, ClientId(seq), op);
                let e = served.entry(side).or_insert((0, 0));
                e.0 += 1;
                e.1 += u64::from(ok);
            }
        }
        c.run_for(ms(10));
    }
    served
}

fn write_within_side<P: SimProtocol>(
    c: &mut Cluster<P::Node>,
    side: &[u64],
    mut at: u64,
    client: ClientId,
    op: KvOp,
) -> bool {
    for attempt in 1..=3 {
        let request = P::request_in(&mut P::Session::default(), op.clone());
        let t = c.request(at, client, attempt, request);
        for _ in 0..30 {
            c.run_for(ms(10));
            match c.outcome(t) {
                Some(Outcome::Done(_)) => return true,
                Some(Outcome::NotLeader { leader: Some(l) }) if side.contains(&l.0) => {
                    at = l.0;
                    break;
                }
                Some(_) => return false,
                None => {}
            }
        }
        if c.outcome(t).is_none() {
            return false;
        }
    }
    false
}

#[test]
fn availability_under_partition_vvsync_serves_both_sides_consensus_only_the_majority() {
    let per = |name: &str, served: BTreeMap<&str, (u64, u64)>| {
        let (min, maj) = (served["minority"], served["majority"]);
        println!(
            "{name:>10}: minority {}/{} writes, majority {}/{}",
            min.1, min.0, maj.1, maj.0
        );
        (min, maj)
    };
    for (name, (min, maj)) in [
        ("vvsync", per("vvsync", served_per_side::<VvSyncDvv>())),
        (
            "vvsync-lww",
            per("vvsync-lww", served_per_side::<VvSyncLww>()),
        ),
    ] {
        assert_eq!(min.1, min.0, "{name}: every minority write answered");
        assert_eq!(maj.1, maj.0, "{name}: every majority write answered");
    }
    for (name, (min, maj)) in [
        ("raft", per("raft", served_per_side::<Raft>())),
        ("paxos", per("paxos", served_per_side::<Paxos>())),
        ("zab", per("zab", served_per_side::<Zab>())),
    ] {
        assert_eq!(min.1, 0, "{name}: the minority commits nothing");
        assert!(maj.1 * 2 >= maj.0, "{name}: the majority serves ({maj:?})");
    }
}

// ----- Jepsen's set --------------------------------------------------------------

fn set_sweep(protocol: &str) -> (u64, u64, u64) {
    let (mut acked, mut lost, mut unexpected) = (0, 0, 0);
    for seed in 0..SEEDS {
        let mut cfg = config(seed);
        cfg.workload = WorkloadConfig::named(WorkloadName::Set, 600);
        let outcome = run_protocol(protocol, cfg).unwrap();
        assert!(
            outcome.violation.is_none(),
            "{protocol} seed {seed}: {:?}",
            outcome.violation
        );
        acked += metric(&outcome, "set_acked");
        lost += metric(&outcome, "set_lost");
        unexpected += metric(&outcome, "set_unexpected");
    }
    (acked, lost, unexpected)
}

#[test]
fn set_adds_merged_by_union_are_never_lost_with_dvv_and_lost_with_lww() {
    let (acked, lost, unexpected) = set_sweep("vvsync");
    assert!(acked > 1000, "{acked} adds acknowledged");
    assert_eq!((lost, unexpected), (0, 0));
    let (acked, lost, unexpected) = set_sweep("vvsync-lww");
    println!("vvsync-lww lost {lost} of {acked} acknowledged adds");
    assert_eq!(unexpected, 0);
    assert!(
        lost * 5 > acked,
        "LWW drops concurrent adds: {lost} of {acked}"
    );
}

// ----- regressions ------------------------------------------------------------------

/// Found by the 10,000-seed swarm (`synod check --protocol vvsync --swarm`, seeds
/// 1679 and 9814, the per-key bank): a client's ledger entries of two accounts can
/// spell the same value (`5#:2;5+:4;5-:4` for both `acct4` and `acct5`). The write
/// to `acct4` took effect; the one to `acct5` went to a replica that crashed before
/// running it. The judgement kept "took effect" by value alone, so it found
/// `acct5`'s write effective, missing and unseen: a lost update that never was.
/// Effective writes are (key, value).
#[test]
fn no_lost_updates_judges_a_value_per_key_not_across_keys() {
    let members = [n(1), n(2), n(3)];
    let mut c: Cluster<VvNode<Dvv>> = Cluster::start(
        3,
        move |id| VvSyncDvv::build(id, &members, id.0),
        Vec::new(),
    );
    let mut audit = <VvSyncDvv as SimProtocol>::Session::default();
    let put = |key: &str| KvOp::Put {
        key: key.into(),
        value: "same".into(),
    };
    let t = c.request(
        1,
        ClientId(1),
        1,
        VvSyncDvv::request_in(&mut audit, put("a")),
    );
    c.run_for(ms(500));
    let Some(Outcome::Done(response)) = c.outcome(t).cloned() else {
        panic!("the write of a is answered: {:?}", c.outcome(t));
    };
    VvSyncDvv::observe(&mut audit, &response);
    // Sent, never delivered: the write of b did not take effect.
    let _ = VvSyncDvv::request_in(&mut audit, put("b"));
    let nodes: Vec<(NodeId, &VvNode<Dvv>)> = members.iter().map(|&id| (id, c.node(id.0))).collect();
    let verdict = VvSyncDvv::judge(std::slice::from_ref(&audit), &nodes);
    assert!(verdict.broken.is_none(), "{:?}", verdict.broken);
    let effective = verdict
        .metrics
        .iter()
        .find(|(m, _)| *m == "writes_effective");
    assert_eq!(effective, Some(&("writes_effective", 1)), "a=same only");
}
