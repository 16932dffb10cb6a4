//! Hand-made histories, one per anomaly class (Elle §4 / Adya's definitions), and
//! the parser's errors. Each test is init (the history) / act (`check`) / check (the
//! exact class and cycle members).

use serde_json::{json, Value as Json};

use super::*;

/// A test history builder. Micro-ops are written in their `ok` form; the invoke gets
/// `null` for every read.
#[derive(Default)]
struct B {
    lines: Vec<String>,
}

fn invoke_form(ops: &Json) -> Json {
    let ops = ops.as_array().expect("a list of micro-ops");
    Json::Array(
        ops.iter()
            .map(|op| {
                let mut op = op.clone();
                if op[0] == "r" {
                    op[2] = Json::Null;
                }
                op
            })
            .collect(),
    )
}

impl B {
    fn event(&mut self, p: u64, kind: &str, value: Json) -> &mut B {
        let ev = json!({ "process": p, "type": kind, "f": "txn", "value": value });
        self.lines.push(ev.to_string());
        self
    }
    fn invoke(&mut self, p: u64, ops: Json) -> &mut B {
        self.event(p, "invoke", invoke_form(&ops))
    }
    fn ok(&mut self, p: u64, ops: Json) -> &mut B {
        self.invoke(p, ops.clone()).event(p, "ok", ops)
    }
    fn fail(&mut self, p: u64, ops: Json) -> &mut B {
        let v = invoke_form(&ops);
        self.invoke(p, ops).event(p, "fail", v)
    }
    fn info(&mut self, p: u64, ops: Json) -> &mut B {
        let v = invoke_form(&ops);
        self.invoke(p, ops).event(p, "info", v)
    }
    fn text(&self) -> String {
        self.lines.join("\n") + "\n"
    }
    fn check(&self) -> TxnReport {
        let h = TxnHistory::parse_str(&self.text()).expect("a well-formed test history");
        check(&h)
    }
}

fn t(ids: &[u32]) -> Vec<TxnId> {
    ids.iter().map(|&i| TxnId(i)).collect()
}

/// The report has exactly one anomaly, of `class`; returns it.
fn only(r: &TxnReport, class: AnomalyClass) -> &Anomaly {
    assert_eq!(r.verdict, TxnVerdict::Invalid, "{}", r.explain());
    assert_eq!(r.anomalies.len(), 1, "{}", r.explain());
    assert_eq!(r.anomalies[0].class(), class, "{}", r.explain());
    &r.anomalies[0]
}

fn members_sorted(a: &Anomaly) -> Vec<TxnId> {
    let mut m = a.cycle_members().expect("a cycle");
    m.sort();
    m
}

// ------------------------------------------------------------------ valid

#[test]
fn serial_history_is_serializable() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1]]))
        .ok(
            1,
            json!([["r", "x", [1]], ["append", "x", 2], ["r", "x", [1, 2]]]),
        )
        .ok(0, json!([["r", "x", [1, 2]], ["r", "y", []]]))
        .check();
    assert_eq!(r.verdict, TxnVerdict::Valid, "{}", r.explain());
    assert!(r.anomalies.is_empty());
    assert_eq!(r.counts.ok, 3);
    // ww T0→T1; wr T0→T1 (x=[1]), T1→T2; rw none (nothing after 2; y never appended).
    assert_eq!(r.counts.edges, [1, 2, 0]);
    assert!(r.explain().starts_with("serializable\n"), "{}", r.explain());
}

#[test]
fn info_transactions_and_empty_reads_are_serializable() {
    let r = B::default()
        .ok(0, json!([["r", "x", []], ["r", "y", []]]))
        // Unknown outcome, but observed below: it committed.
        .info(1, json!([["append", "x", 1], ["r", "y", null]]))
        // Unknown outcome, never observed: it may not have committed.
        .info(2, json!([["append", "y", 7]]))
        .fail(3, json!([["append", "x", 99]]))
        .ok(0, json!([["r", "x", [1]], ["append", "x", 2]]))
        .ok(4, json!([["r", "x", [1, 2]], ["r", "y", []]]))
        // Never completes: counts as info.
        .invoke(5, json!([["append", "y", 8]]))
        .check();
    assert_eq!(r.verdict, TxnVerdict::Valid, "{}", r.explain());
    assert_eq!((r.counts.ok, r.counts.info, r.counts.fail), (3, 3, 1));
    // rw T0→T1 (x=[] then 1), ww T1→T4, wr T1→T4, wr T4→T5.
    assert_eq!(r.counts.edges, [1, 2, 1]);
}

#[test]
fn a_reader_seeing_its_own_appends_is_serializable() {
    let r = B::default()
        .ok(
            0,
            json!([["append", "x", 1], ["append", "x", 2], ["r", "x", [1, 2]]]),
        )
        .ok(1, json!([["append", "x", 3], ["r", "x", [1, 2, 3]]]))
        .check();
    assert_eq!(r.verdict, TxnVerdict::Valid, "{}", r.explain());
}

#[test]
fn integer_and_string_keys_are_distinct() {
    // Key 1 and key "1" are different lists; elements 1 and "1" differ too.
    let r = B::default()
        .ok(0, json!([["append", 1, 1], ["append", "1", "1"]]))
        .ok(1, json!([["r", 1, [1]], ["r", "1", ["1"]]]))
        .check();
    assert_eq!(r.verdict, TxnVerdict::Valid, "{}", r.explain());
    let r = B::default()
        .ok(0, json!([["append", 1, 1]]))
        .ok(1, json!([["r", "1", [1]]]))
        .check();
    only(&r, AnomalyClass::NeverAppended);
}

// ------------------------------------------------------------------ G0

/// G0 (Adya: a cycle of write dependencies): T0 and T1 append to x and y in
/// opposite orders.
#[test]
fn g0_write_cycle() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1], ["append", "y", 20]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 10]]))
        .ok(2, json!([["r", "x", [1, 2]], ["r", "y", [10, 20]]]))
        .check();
    let a = only(&r, AnomalyClass::G0);
    assert_eq!(members_sorted(a), t(&[0, 1]));
    assert_eq!(a.to_string(), "G0: T0 -ww(x)-> T1 -ww(y)-> T0");
}

// ------------------------------------------------------------------ G1a

/// G1a (aborted read): an ok read sees an element of a failed transaction.
#[test]
fn g1a_aborted_read() {
    let r = B::default()
        .fail(0, json!([["append", "x", 1]]))
        .ok(1, json!([["r", "x", [1]]]))
        .check();
    let a = only(&r, AnomalyClass::G1a);
    assert_eq!(a.txns(), t(&[1, 0]));
    assert_eq!(
        a.to_string(),
        "G1a: T1 read x = [1]; 1 was appended by T0, which failed"
    );
}

// ------------------------------------------------------------------ G1b

/// G1b (intermediate read): T1 sees x end at 1, but T0 appended 2 after 1. The same
/// read also misses T0's 2 while seeing its 1, a G-single cycle.
#[test]
fn g1b_intermediate_read() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1], ["append", "x", 2]]))
        .ok(1, json!([["r", "x", [1]]]))
        .ok(2, json!([["r", "x", [1, 2]]]))
        .check();
    assert_eq!(r.strongest(), Some(AnomalyClass::G1b), "{}", r.explain());
    let classes: Vec<_> = r.anomalies.iter().map(Anomaly::class).collect();
    assert_eq!(classes, [AnomalyClass::G1b, AnomalyClass::GSingle]);
    match &r.anomalies[0] {
        Anomaly::IntermediateRead {
            read,
            writer,
            element,
            later,
        } => {
            assert_eq!((read.txn, *writer), (TxnId(1), TxnId(0)));
            assert_eq!((element, later), (&json!(1), &json!(2)));
        }
        other => panic!("not G1b: {other:?}"),
    }
    assert_eq!(members_sorted(&r.anomalies[1]), t(&[0, 1]));
}

// ------------------------------------------------------------------ G1c

/// G1c (circular information flow): each of T0, T1 reads the other's append.
#[test]
fn g1c_circular_information_flow() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1], ["r", "y", [10]]]))
        .ok(1, json!([["append", "y", 10], ["r", "x", [1]]]))
        .check();
    let a = only(&r, AnomalyClass::G1c);
    assert_eq!(members_sorted(a), t(&[0, 1]));
    let Anomaly::Cycle { steps, .. } = a else {
        unreachable!()
    };
    assert!(steps.iter().all(|s| s.kind == EdgeKind::Wr));
}

/// A G1c cycle mixing ww and wr, through three transactions.
#[test]
fn g1c_through_ww_and_wr() {
    let r = B::default()
        // T0 appends x first; T1 appends after it (ww T0→T1) and y; T2 reads y from
        // T1 (wr) and T0 read T2's z (wr T2→T0).
        .ok(0, json!([["append", "x", 1], ["r", "z", [5]]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 3]]))
        .ok(2, json!([["r", "y", [3]], ["append", "z", 5]]))
        .ok(3, json!([["r", "x", [1, 2]]]))
        .check();
    let a = only(&r, AnomalyClass::G1c);
    assert_eq!(members_sorted(a), t(&[0, 1, 2]));
    assert_eq!(a.to_string(), "G1c: T0 -ww(x)-> T1 -wr(y)-> T2 -wr(z)-> T0");
}

// ------------------------------------------------------------------ G-single

/// G-single (read skew): T1 sees T0's y but not T0's x.
#[test]
fn g_single_read_skew() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1], ["append", "y", 10]]))
        .ok(1, json!([["r", "x", []], ["r", "y", [10]]]))
        .ok(2, json!([["r", "x", [1]]]))
        .check();
    let a = only(&r, AnomalyClass::GSingle);
    assert_eq!(members_sorted(a), t(&[0, 1]));
    assert_eq!(a.to_string(), "G-single: T0 -wr(y)-> T1 -rw(x)-> T0");
}

/// G-single (lost update): both read x = [1] and append; T2's append follows T1's.
#[test]
fn g_single_lost_update() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1]]))
        .ok(1, json!([["r", "x", [1]], ["append", "x", 2]]))
        .ok(2, json!([["r", "x", [1]], ["append", "x", 3]]))
        .ok(3, json!([["r", "x", [1, 2, 3]]]))
        .check();
    let a = only(&r, AnomalyClass::GSingle);
    assert_eq!(members_sorted(a), t(&[1, 2]));
}

// ------------------------------------------------------------------ G2

/// G2 (write skew): each reads both keys empty and appends to one.
#[test]
fn g2_write_skew() {
    let r = B::default()
        .ok(
            0,
            json!([["r", "x", []], ["r", "y", []], ["append", "x", 1]]),
        )
        .ok(
            1,
            json!([["r", "x", []], ["r", "y", []], ["append", "y", 10]]),
        )
        .ok(2, json!([["r", "x", [1]], ["r", "y", [10]]]))
        .check();
    let a = only(&r, AnomalyClass::G2);
    assert_eq!(members_sorted(a), t(&[0, 1]));
    let Anomaly::Cycle { steps, .. } = a else {
        unreachable!()
    };
    assert!(steps.iter().all(|s| s.kind == EdgeKind::Rw));
}

/// A component holding both a G-single and a G2 cycle reports the G-single: T0 and T1
/// write-skew on x, y, and T0 also read T1's z.
#[test]
fn g_single_beats_g2_in_one_component() {
    let r = B::default()
        .ok(
            0,
            json!([
                ["r", "x", []],
                ["r", "y", []],
                ["append", "x", 1],
                ["r", "z", [100]]
            ]),
        )
        .ok(
            1,
            json!([
                ["r", "x", []],
                ["r", "y", []],
                ["append", "y", 10],
                ["append", "z", 100]
            ]),
        )
        .ok(2, json!([["r", "x", [1]], ["r", "y", [10]]]))
        .check();
    let a = only(&r, AnomalyClass::GSingle);
    assert_eq!(a.to_string(), "G-single: T0 -rw(y)-> T1 -wr(z)-> T0");
}

/// Separate components are reported separately, strongest class first.
#[test]
fn anomalies_are_ordered_strongest_first() {
    let r = B::default()
        .ok(
            0,
            json!([["r", "x", []], ["r", "y", []], ["append", "x", 1]]),
        )
        .ok(
            1,
            json!([["r", "x", []], ["r", "y", []], ["append", "y", 10]]),
        )
        .ok(2, json!([["r", "x", [1]], ["r", "y", [10]]]))
        .ok(3, json!([["append", "a", 1], ["append", "b", 20]]))
        .ok(4, json!([["append", "a", 2], ["append", "b", 10]]))
        .ok(5, json!([["r", "a", [1, 2]], ["r", "b", [10, 20]]]))
        .check();
    let classes: Vec<_> = r.anomalies.iter().map(Anomaly::class).collect();
    assert_eq!(classes, [AnomalyClass::G0, AnomalyClass::G2]);
    assert_eq!(members_sorted(&r.anomalies[0]), t(&[3, 4]));
    assert_eq!(members_sorted(&r.anomalies[1]), t(&[0, 1]));
    let text = r.explain();
    assert!(
        text.starts_with("not-serializable\nG0: T3 -ww(a)-> T4 -ww(b)-> T3\nG2: "),
        "{text}"
    );
}

// ------------------------------------------------------------------ named findings

#[test]
fn incompatible_order() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1]]))
        .ok(1, json!([["append", "x", 2]]))
        .ok(2, json!([["r", "x", [1, 2]]]))
        .ok(3, json!([["r", "x", [2]]]))
        .check();
    let a = only(&r, AnomalyClass::IncompatibleOrder);
    assert_eq!(a.txns(), t(&[3, 2]));
    assert_eq!(
        a.to_string(),
        "incompatible-order: T3 read x = [2] is not a prefix of T2 = [1,2]"
    );
}

#[test]
fn duplicate_elements() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1]]))
        .ok(1, json!([["r", "x", [1, 1]]]))
        .check();
    let a = only(&r, AnomalyClass::DuplicateElements);
    assert_eq!(a.txns(), t(&[1]));
}

#[test]
fn read_of_an_element_never_appended() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1]]))
        .ok(1, json!([["r", "x", [1, 5]]]))
        .check();
    let a = only(&r, AnomalyClass::NeverAppended);
    assert_eq!(
        a.to_string(),
        "never-appended: T1 read x = [1,5]; no transaction appended 5 to x"
    );
}

#[test]
fn cycle_class_comes_from_its_edges() {
    let step = |kind| Step {
        from: TxnId(0),
        kind,
        key: json!("x"),
        to: TxnId(0),
    };
    use EdgeKind::{Rw, Wr, Ww};
    let of =
        |ks: &[EdgeKind]| AnomalyClass::of_cycle(&ks.iter().map(|&k| step(k)).collect::<Vec<_>>());
    assert_eq!(of(&[Ww, Ww]), AnomalyClass::G0);
    assert_eq!(of(&[Ww, Wr]), AnomalyClass::G1c);
    assert_eq!(of(&[Rw, Wr, Ww]), AnomalyClass::GSingle);
    assert_eq!(of(&[Rw, Rw]), AnomalyClass::G2);
}

// ------------------------------------------------------------------ report

#[test]
fn json_report_names_the_cycle() {
    let r = B::default()
        .ok(0, json!([["append", "x", 1], ["append", "y", 10]]))
        .ok(1, json!([["r", "x", []], ["r", "y", [10]]]))
        .ok(2, json!([["r", "x", [1]]]))
        .check();
    let doc = r.to_json();
    assert_eq!(doc["verdict"], "not-serializable");
    assert_eq!(doc["model"], "list-append");
    assert_eq!(doc["strongest"], "G-single");
    let cycle = &doc["anomalies"][0]["cycle"];
    assert_eq!(
        cycle[0],
        json!({"from": 0, "kind": "wr", "key": "y", "to": 1})
    );
    assert_eq!(
        cycle[1],
        json!({"from": 1, "kind": "rw", "key": "x", "to": 0})
    );
    assert_eq!(doc["txns"][0]["invoke_line"], 1);
    assert_eq!(doc["txns"][1]["ops"][1], json!(["r", "y", [10]]));
    assert_eq!(doc["counts"]["ok"], 3);
}

#[test]
fn explain_caps_each_class() {
    let mut b = B::default();
    for i in 0..(EXPLAIN_CAP as u64 + 3) {
        b.ok(i, json!([["r", format!("k{i}"), [i]]]));
    }
    let r = b.check();
    assert_eq!(r.anomalies.len(), EXPLAIN_CAP + 3, "{}", r.explain());
    let text = r.explain();
    assert!(text.contains("never-appended: … and 3 more"), "{text}");
}

#[test]
fn explain_elides_long_lists() {
    let mut b = B::default();
    let all: Vec<u64> = (0..20).collect();
    for i in &all {
        b.ok(0, json!([["append", "x", i]]));
    }
    b.ok(0, json!([["r", "x", all], ["r", "y", [7]]]));
    let text = b.check().explain();
    assert!(
        text.contains(r#"T20 (lines 41-42, process 0, ok): ["r","x",[0,1,2,3,4,5,…8 more…,14,15,16,17,18,19]] ["r","y",[7]]"#),
        "{text}"
    );
}

const EXPLAIN_CAP: usize = report::EXPLAIN_PER_CLASS_MAX;

// ------------------------------------------------------------------ parse errors

fn parse_err(text: &str) -> TxnHistoryError {
    TxnHistory::parse_str(text).expect_err("bad input")
}

#[test]
fn bad_input_names_the_line() {
    let ok_line = r#"{"process":0,"type":"invoke","f":"txn","value":[["append","x",1]]}"#;
    let cases: &[(&str, u64, &str)] = &[
        ("{oops", 1, "malformed JSON"),
        (
            r#"{"process":0,"type":"invoke","f":"read","value":[]}"#,
            1,
            "unknown f \"read\"",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"txn","value":[["append","x"]]}"#,
            1,
            "micro-op 0",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"txn","value":[["w","x",1]]}"#,
            1,
            "micro-op 0",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"txn","value":[["r",null,null]]}"#,
            1,
            "key must be",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"txn","value":[["r","x",[1]]]}"#,
            1,
            "must be null",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"txn","value":{"x":1}}"#,
            1,
            "list of micro-ops",
        ),
        (
            r#"{"process":0,"type":"ok","f":"txn","value":[]}"#,
            1,
            "no outstanding invoke",
        ),
        (
            r#"{"process":-1,"type":"invoke","f":"txn","value":[]}"#,
            1,
            "non-negative",
        ),
        (
            r#"{"process":0,"type":"begin","f":"txn","value":[]}"#,
            1,
            "unknown type",
        ),
        (
            r#"{"type":"invoke","f":"txn","value":[]}"#,
            1,
            "missing field \"process\"",
        ),
    ];
    for (text, line, what) in cases {
        let e = parse_err(text);
        assert_eq!(e.line, *line, "{text}: {e}");
        assert!(e.kind.to_string().contains(what), "{text}: {e}");
    }
    let two = |second: &str| format!("{ok_line}\n\n{second}\n");
    let cases: &[(&str, &str)] = &[
        (
            r#"{"process":0,"type":"ok","f":"txn","value":[["append","x",1],["r","x",[1]]]}"#,
            "2 micro-ops, the invoke has 1",
        ),
        (
            r#"{"process":0,"type":"ok","f":"txn","value":[["append","x",2]]}"#,
            "differs from its invoke on line 1",
        ),
        (
            r#"{"process":0,"type":"ok","f":"txn","value":null}"#,
            "list of micro-ops",
        ),
        (
            r#"{"process":0,"type":"invoke","f":"txn","value":[]}"#,
            "invokes again",
        ),
        (
            r#"{"process":1,"type":"invoke","f":"txn","value":[["append","x",1]]}"#,
            "appended to key \"x\" again (first on line 1)",
        ),
    ];
    for (second, what) in cases {
        let e = parse_err(&two(second));
        assert_eq!(e.line, 3, "{second}: {e}");
        assert!(e.kind.to_string().contains(what), "{second}: {e}");
    }
    // An ok read whose value is not a list.
    let text = concat!(
        r#"{"process":0,"type":"invoke","f":"txn","value":[["r","x",null]]}"#,
        "\n",
        r#"{"process":0,"type":"ok","f":"txn","value":[["r","x",3]]}"#,
        "\n",
    );
    let e = parse_err(text);
    assert_eq!(e.line, 2);
    assert!(e.kind.to_string().contains("must be a list, got 3"), "{e}");
}

#[test]
fn fail_and_info_completions_may_omit_or_repeat_their_value() {
    let text = concat!(
        r#"{"process":0,"type":"invoke","f":"txn","value":[["r","x",null],["append","x",1]]}"#,
        "\n",
        r#"{"process":0,"type":"info","f":"txn","value":null}"#,
        "\n",
        r#"{"process":1,"type":"invoke","f":"txn","value":[["append","x",2]]}"#,
        "\n",
        r#"{"process":1,"type":"fail","f":"txn","value":[["append","x",2]],"error":"aborted"}"#,
        "\n",
        r#"{"process":2,"type":"invoke","f":"txn","value":[["r","x",null]],"time":5}"#,
        "\n",
        r#"{"process":2,"type":"ok","f":"txn","value":[["r","x",[1]]]}"#,
        "\n",
    );
    let h = TxnHistory::parse_str(text).expect("well-formed");
    assert_eq!(h.len(), 3);
    assert_eq!(h.txns[0].status, TxnStatus::Info);
    assert_eq!(h.txns[1].status, TxnStatus::Fail);
    assert_eq!(
        (h.txns[2].invoke_line, h.txns[2].complete_line),
        (5, Some(6))
    );
    assert_eq!(check(&h).verdict, TxnVerdict::Valid);
}
