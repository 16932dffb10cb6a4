//! Property tests: serial executions are serializable, and each injected anomaly is
//! found. A serial execution applies random transactions one at a time to an
//! in-memory list store and records what each `ok` read saw.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value as Json};

use super::*;

/// How a generated transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Fail,
    /// Unknown outcome, but it did apply.
    InfoApplied,
    /// Unknown outcome, and it did not apply.
    InfoLost,
}

/// A transaction to execute: outcome and micro-ops (is-append, key).
type PlanTxn = (Outcome, Vec<(bool, u8)>);

#[derive(Clone, Debug)]
enum Op {
    Append(u8, i64),
    /// The list read, known only in an ok transaction.
    Read(u8, Option<Vec<i64>>),
}

#[derive(Clone, Debug)]
struct Rec {
    outcome: Outcome,
    ops: Vec<Op>,
}

/// Runs `plan` serially; with `final_read`, ends with an ok transaction reading every key.
fn execute(keys: u8, plan: &[PlanTxn], final_read: bool) -> Vec<Rec> {
    let mut store: Vec<Vec<i64>> = vec![Vec::new(); keys as usize];
    let mut next = 1i64;
    let mut out = Vec::new();
    for (outcome, ops) in plan {
        let applies = matches!(outcome, Outcome::Ok | Outcome::InfoApplied);
        let mut rec = Rec {
            outcome: *outcome,
            ops: Vec::new(),
        };
        for &(append, k) in ops {
            if append {
                if applies {
                    store[k as usize].push(next);
                }
                rec.ops.push(Op::Append(k, next));
                next += 1;
            } else {
                let seen = (*outcome == Outcome::Ok).then(|| store[k as usize].clone());
                rec.ops.push(Op::Read(k, seen));
            }
        }
        out.push(rec);
    }
    if final_read {
        let ops = (0..keys)
            .map(|k| Op::Read(k, Some(store[k as usize].clone())))
            .collect();
        out.push(Rec {
            outcome: Outcome::Ok,
            ops,
        });
    }
    out
}

fn key_json(k: u8) -> Json {
    // Alternate string and integer keys: both are JSON scalars compared exactly.
    if k & 1 == 0 {
        json!(format!("k{k}"))
    } else {
        json!(k)
    }
}

fn ops_json(ops: &[Op], with_reads: bool) -> Json {
    Json::Array(
        ops.iter()
            .map(|op| match op {
                Op::Append(k, e) => json!(["append", key_json(*k), e]),
                Op::Read(k, l) if with_reads => json!(["r", key_json(*k), l]),
                Op::Read(k, _) => json!(["r", key_json(*k), null]),
            })
            .collect(),
    )
}

/// JSON lines; each transaction on its own process, invokes overlapping the previous
/// completion; every other info is left without completion.
fn render(recs: &[Rec]) -> String {
    let line = |p: usize, kind: &str, v: Json| {
        json!({ "process": p, "type": kind, "f": "txn", "value": v }).to_string() + "\n"
    };
    let mut s = String::new();
    let complete = |s: &mut String, i: usize, r: &Rec| match r.outcome {
        Outcome::Ok => s.push_str(&line(i, "ok", ops_json(&r.ops, true))),
        Outcome::Fail => s.push_str(&line(i, "fail", ops_json(&r.ops, false))),
        _ if i & 1 == 0 => {}
        _ => s.push_str(&line(i, "info", ops_json(&r.ops, false))),
    };
    for (i, r) in recs.iter().enumerate() {
        s.push_str(&line(i, "invoke", ops_json(&r.ops, false)));
        if i > 0 {
            complete(&mut s, i - 1, &recs[i - 1]);
        }
    }
    if let Some(last) = recs.last() {
        complete(&mut s, recs.len() - 1, last);
    }
    s
}

fn check_recs(recs: &[Rec]) -> TxnReport {
    let text = render(recs);
    let h = TxnHistory::parse_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    check(&h)
}

#[derive(Clone, Copy, Debug)]
enum Inject {
    /// The final read sees an element of an added failed transaction.
    AbortedRead,
    /// Two adjacent elements swapped in a read before the final one.
    Swap,
    /// A read that some transaction then appended after loses its last element
    /// (written by another): the reader's append then follows a write it did not see.
    LostUpdate,
    /// The final read sees an element no one appended.
    NeverAppended,
    /// The final read repeats its last element.
    Duplicate,
}

/// Injects one anomaly (falling back to `AbortedRead` where `kind` has no site) and
/// returns what must be found.
fn inject(recs: &mut Vec<Rec>, keys: u8, kind: Inject, pick: usize) -> AnomalyClass {
    let fresh = 1_000_000;
    let last = recs.len() - 1;
    let k = (pick % keys as usize) as u8;
    match kind {
        Inject::NeverAppended => {
            final_read(recs, k).push(fresh);
            return AnomalyClass::NeverAppended;
        }
        Inject::Duplicate => {
            let l = final_read(recs, k);
            if let Some(&e) = l.last() {
                l.push(e);
                return AnomalyClass::DuplicateElements;
            }
        }
        Inject::Swap => {
            let sites: Vec<(usize, usize)> = sites(
                recs,
                |_, _, op| matches!(op, Op::Read(_, Some(l)) if l.len() >= 2),
            );
            if let Some(&(t, o)) = sites.get(pick % sites.len().max(1)) {
                if let Op::Read(_, Some(l)) = &mut recs[t].ops[o] {
                    let j = pick % (l.len() - 1);
                    l.swap(j, j + 1);
                }
                return AnomalyClass::IncompatibleOrder;
            }
        }
        Inject::LostUpdate => {
            let writer = writers(recs);
            let sites = sites(recs, |t, o, op| match op {
                Op::Read(k, Some(l)) => {
                    l.last().is_some_and(|e| writer[e] != t)
                        && recs[t].ops[o..]
                            .iter()
                            .any(|x| matches!(x, Op::Append(k2, _) if k2 == k))
                }
                _ => false,
            });
            if let Some(&(t, o)) = sites.get(pick % sites.len().max(1)) {
                if let Op::Read(_, Some(l)) = &mut recs[t].ops[o] {
                    l.pop();
                }
                return AnomalyClass::GSingle;
            }
        }
        Inject::AbortedRead => {}
    }
    recs.insert(
        last,
        Rec {
            outcome: Outcome::Fail,
            ops: vec![Op::Append(k, fresh)],
        },
    );
    final_read(recs, k).push(fresh);
    AnomalyClass::G1a
}

/// The final transaction's read of `k` (it reads every key, in order).
fn final_read(recs: &mut [Rec], k: u8) -> &mut Vec<i64> {
    let last = recs.len() - 1;
    match &mut recs[last].ops[k as usize] {
        Op::Read(_, Some(l)) => l,
        _ => unreachable!("the final read reads every key in order"),
    }
}

/// (txn, op) of ok micro-ops before the final transaction satisfying `want`.
fn sites(recs: &[Rec], want: impl Fn(usize, usize, &Op) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (t, r) in recs[..recs.len() - 1].iter().enumerate() {
        for (o, op) in r.ops.iter().enumerate() {
            if r.outcome == Outcome::Ok && want(t, o, op) {
                out.push((t, o));
            }
        }
    }
    out
}

fn writers(recs: &[Rec]) -> std::collections::HashMap<i64, usize> {
    let mut out = std::collections::HashMap::new();
    for (t, r) in recs.iter().enumerate() {
        for op in &r.ops {
            if let Op::Append(_, e) = op {
                out.insert(*e, t);
            }
        }
    }
    out
}

fn plan(keys: u8, txns_max: usize) -> impl Strategy<Value = Vec<PlanTxn>> {
    let outcome = prop_oneof![
        8 => Just(Outcome::Ok),
        1 => Just(Outcome::Fail),
        1 => Just(Outcome::InfoApplied),
        1 => Just(Outcome::InfoLost),
    ];
    let op = (any::<bool>(), 0..keys);
    prop::collection::vec((outcome, prop::collection::vec(op, 1..6)), 1..txns_max)
}

fn keys_and_plan() -> impl Strategy<Value = (u8, Vec<PlanTxn>)> {
    (1u8..=4).prop_flat_map(|keys| (Just(keys), plan(keys, 40)))
}

fn inject_kind() -> impl Strategy<Value = Inject> {
    prop_oneof![
        Just(Inject::AbortedRead),
        Just(Inject::Swap),
        Just(Inject::LostUpdate),
        Just(Inject::NeverAppended),
        Just(Inject::Duplicate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any serial execution is serializable (with or without a final read of every key).
    #[test]
    fn serial_executions_are_serializable((keys, plan) in keys_and_plan(), final_read: bool) {
        let recs = execute(keys, &plan, final_read);
        let r = check_recs(&recs);
        prop_assert_eq!(r.verdict, TxnVerdict::Valid, "{}", r.explain());
    }

    /// One injected anomaly is always found; a lost update always as a cycle with at
    /// most one rw edge (so never reported as G2 alone).
    #[test]
    fn an_injected_anomaly_is_found(
        (keys, plan) in keys_and_plan(),
        kind in inject_kind(),
        pick in any::<usize>(),
    ) {
        let mut recs = execute(keys, &plan, true);
        let want = inject(&mut recs, keys, kind, pick);
        let r = check_recs(&recs);
        prop_assert_eq!(r.verdict, TxnVerdict::Invalid, "{:?}\n{}", kind, render(&recs));
        if want == AnomalyClass::GSingle {
            let strong_cycle = r.anomalies.iter().any(|a| {
                matches!(a.class(), AnomalyClass::G0 | AnomalyClass::G1c | AnomalyClass::GSingle)
            });
            prop_assert!(strong_cycle, "{}\n{}", r.explain(), render(&recs));
        } else {
            prop_assert!(r.has(want), "want {}: {}\n{}", want, r.explain(), render(&recs));
        }
    }
}

/// A seeded serial execution of `txns` transactions over `keys` keys.
fn big(txns: usize, keys: u8, seed: u64) -> Vec<Rec> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plan: Vec<PlanTxn> = (0..txns)
        .map(|_| {
            let outcome = match rng.gen_range(0..20) {
                0 => Outcome::Fail,
                1 => Outcome::InfoApplied,
                2 => Outcome::InfoLost,
                _ => Outcome::Ok,
            };
            let n = rng.gen_range(1..=6);
            (
                outcome,
                (0..n)
                    .map(|_| (rng.gen_bool(0.5), rng.gen_range(0..keys)))
                    .collect(),
            )
        })
        .collect();
    execute(keys, &plan, true)
}

/// 10,000 transactions check in well under a second in release builds (printed with
/// `--nocapture`), valid and with a lost update.
#[test]
fn ten_thousand_transactions_are_fast() {
    for (name, kind) in [("valid", None), ("lost update", Some(Inject::LostUpdate))] {
        let mut recs = big(10_000, 50, 7);
        if let Some(kind) = kind {
            inject(&mut recs, 50, kind, 12345);
        }
        let text = render(&recs);
        let start = std::time::Instant::now();
        let h = TxnHistory::parse_str(&text).expect("well-formed");
        let parsed = start.elapsed();
        let r = check(&h);
        let total = start.elapsed();
        eprintln!(
            "{name}: {} txns, {} lines: parse {parsed:?}, check {:?}, {:?}",
            h.len(),
            text.lines().count(),
            r.elapsed,
            r.strongest()
        );
        assert_eq!(
            r.verdict == TxnVerdict::Valid,
            kind.is_none(),
            "{}",
            r.explain()
        );
        assert!(total < std::time::Duration::from_secs(10), "{total:?}");
    }
}
