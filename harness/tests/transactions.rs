//! The multi-key transaction workloads on every protocol of the registry, under
//! every fault: the bank (a transfer is one transaction; every committed read of
//! every account must show the money opened, judged as it is answered) and
//! list-append (the history must be serializable, judged by the Elle-style
//! checker when the run ends).

use std::time::Duration;
use synod_harness::history::{EventType, MicroValue, Value};
use synod_harness::registry;
use synod_harness::runner::run_protocol;
use synod_harness::sim::config::{FaultSpec, SimConfig};
use synod_harness::sim::{RunOutcome, ViolationKind};
use synod_harness::workload::{WorkloadConfig, WorkloadName};

const SEEDS: u64 = 6;

/// The protocols that run multi-key transactions: every one but vvsync's modes,
/// which serve single keys (and say so: `fit_workload` refuses list-append, and
/// turns the bank into per-key ledger writes — `tests/compare.rs` judges that).
fn transactional(workload: WorkloadName) -> Vec<&'static str> {
    let (serve, refuse): (Vec<&str>, Vec<&str>) = registry::names().into_iter().partition(|p| {
        let entry = registry::get(p).unwrap();
        let mut fitted = WorkloadConfig::named(workload, 400);
        (entry.fit_workload)(&mut fitted).is_ok() && !fitted.bank_per_key
    });
    assert!(
        refuse.iter().all(|p| p.starts_with("vvsync")),
        "{refuse:?} refuse {workload:?}"
    );
    serve
}

fn run(protocol: &str, workload: WorkloadName, seed: u64) -> RunOutcome {
    let entry = registry::get(protocol).unwrap();
    let mut cfg = SimConfig::standard(seed, FaultSpec::all(), 400);
    cfg.nodes = cfg.nodes.max(entry.min_nodes);
    cfg.workload = WorkloadConfig::named(workload, 400);
    let mut outcome = run_protocol(protocol, cfg).unwrap();
    (entry.check)(&mut outcome, Duration::from_secs(30));
    outcome
}

/// Committed transactions whose micro-operations satisfy `pred`.
fn committed(outcome: &RunOutcome, pred: impl Fn(&Value) -> bool) -> usize {
    outcome
        .history
        .iter()
        .filter(|e| e.kind == EventType::Ok && pred(&e.value))
        .count()
}

fn micros(v: &Value) -> &[synod_harness::history::Micro] {
    match v {
        Value::Txn(m) => m,
        other => panic!("not a transaction: {other:?}"),
    }
}

#[test]
fn every_protocol_conserves_the_bank_under_faults() {
    for protocol in transactional(WorkloadName::Bank) {
        for seed in 0..SEEDS {
            let outcome = run(protocol, WorkloadName::Bank, seed);
            let replay = format!("{protocol} seed {seed}");
            assert!(
                outcome.violation.is_none(),
                "{replay}: {:?}",
                outcome.violation
            );
            let transfers = committed(&outcome, |v| micros(v).iter().any(|m| m.0 == "add"));
            let funded_reads = committed(&outcome, |v| {
                let m = micros(v);
                m.iter().all(|m| m.0 == "r") && m.iter().all(|m| m.2 != MicroValue::Null)
            });
            assert!(transfers > 50, "{replay}: {transfers} transfers committed");
            assert!(
                funded_reads > 5,
                "{replay}: {funded_reads} reads of opened accounts"
            );
        }
    }
}

#[test]
fn every_protocol_keeps_list_append_serializable_under_faults() {
    for protocol in transactional(WorkloadName::ListAppend) {
        for seed in 0..SEEDS {
            let outcome = run(protocol, WorkloadName::ListAppend, seed);
            let replay = format!("{protocol} seed {seed}");
            assert!(
                outcome.violation.is_none(),
                "{replay}: {:?}",
                outcome.violation
            );
            // The reads saw appends: the checker had dependencies to infer.
            let long_reads = committed(&outcome, |v| {
                micros(v)
                    .iter()
                    .any(|m| matches!(&m.2, MicroValue::List(l) if l.len() >= 3))
            });
            assert!(
                long_reads > 20,
                "{replay}: {long_reads} reads of 3+ elements"
            );
        }
    }
}

/// The end-of-run check judges a transaction history by the list-append model:
/// a read that saw an append of a transaction that failed (G1a, aborted read) is
/// a serializability violation, whichever protocol's check runs it.
#[test]
fn an_aborted_read_in_a_recorded_history_is_a_serializability_violation() {
    let mut outcome = run("raft", WorkloadName::ListAppend, 0);
    assert!(outcome.violation.is_none());
    // Turn the first committed append of the run into a failed one: every read
    // that saw its element now read from an aborted transaction.
    let invoke = outcome
        .history
        .iter()
        .position(|e| e.kind == EventType::Ok && micros(&e.value).iter().any(|m| m.0 == "append"))
        .unwrap();
    outcome.history[invoke].kind = EventType::Fail;
    if let Value::Txn(m) = &mut outcome.history[invoke].value {
        for micro in m.iter_mut().filter(|m| m.0 == "r") {
            micro.2 = MicroValue::Null;
        }
    }
    for protocol in ["raft", "zab"] {
        let mut broken = outcome.clone();
        (registry::get(protocol).unwrap().check)(&mut broken, Duration::from_secs(30));
        let violation = broken.violation.expect("an aborted read is found");
        assert_eq!(violation.kind, ViolationKind::Serializability);
        assert!(violation.message.contains("G1a"), "{}", violation.message);
    }
}
