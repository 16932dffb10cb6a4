//! `synod compare`'s report: the same plan gives the same bytes, and the shapes the
//! protocols' designs predict show in its numbers (small runs of the real thing).

use std::time::Duration;
use synod_harness::compare::{self, Cell, Plan, Profile, Report};
use synod_harness::registry;
use synod_harness::sim::config::{SPLIT_AT, SPLIT_FOR};
use synod_harness::workload::{WorkloadName, TIMELINE_BUCKET};

fn plan(protocols: &[&str], profiles: &[Profile], seeds: u64, secs: f64) -> Plan {
    Plan {
        protocols: protocols
            .iter()
            .map(|p| registry::get(p).unwrap())
            .collect(),
        workloads: vec![WorkloadName::Kv],
        profiles: profiles.to_vec(),
        seeds,
        duration: Duration::from_secs_f64(secs),
        clients: 6,
        nodes: 3,
        fan_out: Vec::new(),
    }
}

fn run(plan: Plan) -> Report {
    compare::run(plan, 2, &|| {}).unwrap()
}

fn cell<'r>(report: &'r Report, protocol: &str, profile: Profile) -> &'r Cell {
    (report.cells.iter())
        .find(|c| c.protocol == protocol && c.profile == profile)
        .unwrap_or_else(|| panic!("{protocol} {profile} was run"))
}

#[test]
fn compare_json_is_byte_identical_for_the_same_plan() {
    let p = || {
        plan(
            &["raft", "twopc", "vvsync-lww"],
            &[Profile::All, Profile::Partition],
            2,
            0.5,
        )
    };
    let a = serde_json::to_string(&run(p()).json()).unwrap();
    let b = serde_json::to_string(&run(p()).json()).unwrap();
    assert!(a.len() > 1000 && a.contains("\"availability\""), "{a}");
    assert_eq!(a, b, "same arguments, same bytes");
}

/// In the steady state Raft, Multi-Paxos and Zab each send one round of
/// accept/append and its answers per command, plus heartbeats: about the same.
#[test]
fn shape_consensus_protocols_send_about_the_same_messages_per_op() {
    let report = run(plan(&["raft", "paxos", "zab"], &[Profile::None], 2, 0.5));
    let per_op: Vec<f64> = ["raft", "paxos", "zab"]
        .iter()
        .map(|p| {
            let c = cell(&report, p, Profile::None);
            c.per_op(c.messages)
        })
        .collect();
    let (lo, hi) = per_op
        .iter()
        .fold((f64::MAX, 0f64), |(l, h), &x| (l.min(x), h.max(x)));
    println!("messages per op, raft / paxos / zab: {per_op:?}");
    assert!(
        lo > 2.0,
        "a replicated op costs at least a round: {per_op:?}"
    );
    assert!(hi / lo < 1.5, "within 1.5× of each other: {per_op:?}");
}

/// Under the scripted split, vvsync answers on both sides; consensus serves only
/// the majority side (after electing a leader there, if the leader was cut off).
#[test]
fn shape_vvsync_serves_both_sides_of_the_split_consensus_only_the_majority() {
    let protocols = ["raft", "paxos", "zab", "vvsync", "vvsync-lww"];
    let report = run(plan(&protocols, &[Profile::Partition], 2, 3.0));
    let bucket = TIMELINE_BUCKET.as_millis() as usize;
    // Whole buckets of the split, after 800 ms: leases ran out, elections are over.
    let late = (SPLIT_AT.as_millis() as usize + 800) / bucket;
    let inside = late..((SPLIT_AT + SPLIT_FOR).as_millis() as usize / bucket);
    for p in protocols {
        let [minority, majority] = cell(&report, p, Profile::Partition)
            .sides
            .clone()
            .expect("the split happened");
        let (min, maj) = (
            minority.mean_served(inside.clone()),
            majority.mean_served(inside.clone()),
        );
        println!("{p}: served {min:.2} on the minority side, {maj:.2} on the majority side");
        assert!(maj > 0.5, "{p}: the majority side serves ({maj:.2})");
        match p.starts_with("vvsync") {
            true => assert!(min > 0.9, "{p}: the minority side serves ({min:.2})"),
            false => assert_eq!(minority.ok[inside.clone()].iter().sum::<u64>(), 0, "{p}"),
        }
    }
}

/// The bank on one workload: a transfer is one replicated command on Raft,
/// Multi-Paxos and Zab, a cross-shard transaction on 2PC, two ledger writes on
/// vvsync. Every read of all accounts and the final state add up to what was opened
/// — except under last writer wins, where a write replaces ledger entries it had
/// not seen, and money appears or vanishes.
#[test]
fn shape_bank_totals_are_conserved_by_every_protocol_except_lww() {
    let protocols = ["raft", "paxos", "zab", "twopc", "vvsync", "vvsync-lww"];
    let mut p = plan(&protocols, &[Profile::All], 3, 0.5);
    p.workloads = vec![WorkloadName::Bank];
    let report = run(p);
    assert!(
        report.not_run.is_empty(),
        "all serve the bank: {:?}",
        report.not_run
    );
    for name in protocols {
        let c = cell(&report, name, Profile::All);
        let (runs_off, by) = c.money_off().expect("a bank cell");
        println!("{name}: {runs_off} of {} runs off (by {by:?})", c.runs);
        match name {
            "vvsync-lww" => assert!(runs_off > 0 && by > Some(0), "lww loses money"),
            _ => {
                assert_eq!(runs_off, 0, "{name} conserves money: {:?}", c.violations);
                assert!(c.ok > 100, "{name} ran transfers");
            }
        }
    }
}

/// A transaction over n shards: classic 2PC sends PREPARE, a vote, COMMIT and an
/// ACK per participant — 4n; twopc-nb adds the Raft rounds replicating its two
/// records (4n + 8); a consensus protocol replicates the whole transaction as one
/// command, whatever it spans.
#[test]
fn shape_2pc_messages_per_transaction_grow_4n_with_participants() {
    let mut p = plan(&["raft", "twopc", "twopc-nb"], &[], 1, 0.5);
    p.workloads = Vec::new();
    p.fan_out = vec![1, 2, 4];
    let report = run(p);
    let at = |protocol: &str, n: u64| {
        (report.fan_out.iter())
            .find(|f| f.protocol == protocol && f.participants == n)
            .unwrap_or_else(|| panic!("{protocol} with {n} shards ran"))
            .messages_per_txn
    };
    for n in [1, 2, 4] {
        let (classic, nb) = (at("twopc", n), at("twopc-nb", n));
        println!(
            "n = {n}: twopc {classic:.2}, twopc-nb {nb:.2}, raft {:.2}",
            at("raft", n)
        );
        let four_n = 4.0 * n as f64;
        assert!(
            (classic - four_n).abs() < 0.05 * four_n,
            "twopc: {classic} for 4n = {four_n}"
        );
        assert!(
            (nb - four_n - 8.0).abs() < 0.05 * (four_n + 8.0),
            "twopc-nb: {nb}"
        );
    }
    let (one, four) = (at("raft", 1), at("raft", 4));
    assert!(
        four / one < 1.3,
        "raft's cost does not grow with shards: {one} → {four}"
    );
}
