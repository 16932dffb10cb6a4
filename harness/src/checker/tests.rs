//! Hand-made histories with known verdicts, parse errors, reports, CLI.

use super::*;

/// One JSON line without a key.
fn j(p: u64, ty: &str, f: &str, v: &str) -> String {
    format!(r#"{{"process": {p}, "type": "{ty}", "f": "{f}", "value": {v}}}"#)
}

/// One JSON line with a key.
fn jk(p: u64, ty: &str, f: &str, key: &str, v: &str) -> String {
    format!(r#"{{"process": {p}, "type": "{ty}", "f": "{f}", "key": "{key}", "value": {v}}}"#)
}

fn run(model: Model, lines: &[String]) -> CheckResult {
    let h = History::parse_jsonl_str(&lines.join("\n")).expect("valid history");
    let r = check(&h, model, Options::default()).expect("fits the model");
    // Single-threaded must agree with parallel.
    let one = Options {
        threads: std::num::NonZeroUsize::new(1),
        ..Options::default()
    };
    assert_eq!(check(&h, model, one).expect("fits").verdict, r.verdict);
    r
}

fn verdict(model: Model, lines: &[String]) -> Verdict {
    run(model, lines).verdict
}

fn parse_err(lines: &[String]) -> HistoryError {
    match History::parse_jsonl_str(&lines.join("\n")) {
        Ok(_) => panic!("expected a parse error"),
        Err(e) => e,
    }
}

use Verdict::{Linearizable as LIN, NotLinearizable as NOT};

/// Asserts, for each `(read, want)`, the verdict of `base` closed by the
/// lines `close(read)` (the read of the value that decides it).
fn assert_closings(
    model: Model,
    base: &[String],
    close: impl Fn(&str) -> Vec<String>,
    cases: &[(&str, Verdict)],
) {
    for &(read, want) in cases {
        let mut h = base.to_vec();
        h.extend(close(read));
        assert_eq!(verdict(model, &h), want, "read {read}");
    }
}

// ---------------------------------------------------------------- register

#[test]
fn empty_history_is_linearizable() {
    for m in Model::ALL {
        assert_eq!(verdict(m, &[]), LIN);
    }
}

#[test]
fn sequential_write_then_read() {
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "ok", "write", "1"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "1"),
    ];
    assert_eq!(verdict(Model::Register, &h), LIN);
}

#[test]
fn stale_read_after_completed_write_is_not_linearizable() {
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "ok", "write", "1"),
        j(0, "invoke", "write", "2"),
        j(0, "ok", "write", "2"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "1"),
    ];
    let r = run(Model::Register, &h);
    assert_eq!(r.verdict, NOT);
    let f = r.failure.expect("failure details");
    assert_eq!(f.key, None);
    assert_eq!(f.linearized, 2);
    assert_eq!(f.state, Value::from(2i64));
    assert_eq!(f.unplaced.len(), 1);
    assert_eq!(f.unplaced[0].output, Some(Value::from(1i64)));
    assert_eq!((f.unplaced[0].invoke_line, f.last_line), (5, 6));
}

#[test]
fn never_written_register_reads_null() {
    let h = [j(0, "invoke", "read", "null"), j(0, "ok", "read", "null")];
    assert_eq!(verdict(Model::Register, &h), LIN);
}

#[test]
fn read_of_a_value_no_one_wrote() {
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "ok", "write", "1"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "7"),
    ];
    assert_eq!(verdict(Model::Register, &h), NOT);
    // Values compare exactly: the string "1" is not the number 1.
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "ok", "write", "1"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", r#""1""#),
    ];
    assert_eq!(verdict(Model::Register, &h), NOT);
}

#[test]
fn concurrent_writes_read_in_either_order() {
    let writes = [
        j(0, "invoke", "write", "1"),
        j(1, "invoke", "write", "2"),
        j(0, "ok", "write", "1"),
        j(1, "ok", "write", "2"),
    ];
    for (a, b) in [("1", "2"), ("2", "1")] {
        // One read after both: either value is fine.
        let mut h = writes.to_vec();
        h.extend([j(2, "invoke", "read", "null"), j(2, "ok", "read", a)]);
        assert_eq!(verdict(Model::Register, &h), LIN);
        // Reads concurrent with both writes may see both orders...
        let h = [
            j(0, "invoke", "write", "1"),
            j(1, "invoke", "write", "2"),
            j(2, "invoke", "read", "null"),
            j(2, "ok", "read", a),
            j(2, "invoke", "read", "null"),
            j(2, "ok", "read", b),
            j(0, "ok", "write", "1"),
            j(1, "ok", "write", "2"),
        ];
        assert_eq!(verdict(Model::Register, &h), LIN);
    }
    // ...but once both writes completed, the value cannot flip back.
    let mut h = writes.to_vec();
    h.extend([
        j(2, "invoke", "read", "null"),
        j(2, "ok", "read", "1"),
        j(2, "invoke", "read", "null"),
        j(2, "ok", "read", "2"),
    ]);
    assert_eq!(verdict(Model::Register, &h), NOT);
}

#[test]
fn failed_write_did_not_happen() {
    let base = [
        j(0, "invoke", "write", "1"),
        j(0, "fail", "write", "1"),
        j(1, "invoke", "read", "null"),
    ];
    let mut seen = base.to_vec();
    seen.push(j(1, "ok", "read", "1"));
    assert_eq!(verdict(Model::Register, &seen), NOT);
    let mut unseen = base.to_vec();
    unseen.push(j(1, "ok", "read", "null"));
    assert_eq!(verdict(Model::Register, &unseen), LIN);
}

#[test]
fn info_write_may_take_effect_late() {
    // The write crashed; one read misses it, a later read sees it.
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "info", "write", "1"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "null"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "1"),
    ];
    assert_eq!(verdict(Model::Register, &h), LIN);
    // Once seen it cannot be unseen.
    let mut h2 = h.to_vec();
    h2.extend([j(1, "invoke", "read", "null"), j(1, "ok", "read", "null")]);
    assert_eq!(verdict(Model::Register, &h2), NOT);
}

#[test]
fn info_write_may_never_take_effect() {
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "info", "write", "1"),
        j(1, "invoke", "write", "2"),
        j(1, "ok", "write", "2"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "2"),
    ];
    assert_eq!(verdict(Model::Register, &h), LIN);
}

#[test]
fn info_write_cannot_take_effect_before_its_invoke() {
    let h = [
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "1"),
        j(0, "invoke", "write", "1"),
        j(0, "info", "write", "1"),
    ];
    assert_eq!(verdict(Model::Register, &h), NOT);
}

#[test]
fn pending_invoke_counts_as_info() {
    let h = [
        j(0, "invoke", "write", "1"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "1"),
    ];
    assert_eq!(verdict(Model::Register, &h), LIN);
}

#[test]
fn info_and_failed_reads_constrain_nothing() {
    let h = [
        j(0, "invoke", "read", "null"),
        j(0, "info", "read", "null"),
        j(1, "invoke", "read", "null"),
        j(1, "fail", "read", "null"),
    ];
    assert_eq!(verdict(Model::Register, &h), LIN);
}

#[test]
fn process_may_invoke_again_after_info() {
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "info", "write", "1"),
        j(0, "invoke", "read", "null"),
        j(0, "ok", "read", "1"),
    ];
    assert_eq!(verdict(Model::Register, &h), LIN);
}

#[test]
fn keyed_registers_are_independent() {
    let h = [
        jk(0, "invoke", "write", "a", "1"),
        jk(0, "ok", "write", "a", "1"),
        jk(1, "invoke", "read", "b", "null"),
        jk(1, "ok", "read", "b", "1"),
    ];
    let r = run(Model::Register, &h);
    assert_eq!(r.verdict, NOT);
    assert_eq!(r.partitions, 2);
    assert_eq!(r.failure.expect("failure").key, Some(Value::from("b")));
}

// ------------------------------------------------------------ cas-register

#[test]
fn cas_that_applied() {
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "ok", "write", "1"),
        j(0, "invoke", "cas", "[1, 2]"),
        j(0, "ok", "cas", "[1, 2]"),
        j(1, "invoke", "read", "null"),
        j(1, "ok", "read", "2"),
    ];
    assert_eq!(verdict(Model::CasRegister, &h), LIN);
}

#[test]
fn ok_cas_with_wrong_expected_value() {
    let h = [
        j(0, "invoke", "write", "1"),
        j(0, "ok", "write", "1"),
        j(0, "invoke", "cas", "[3, 4]"),
        j(0, "ok", "cas", "[3, 4]"),
    ];
    assert_eq!(verdict(Model::CasRegister, &h), NOT);
}

#[test]
fn cas_that_failed_did_not_apply() {
    let base = [
        j(0, "invoke", "write", "1"),
        j(0, "ok", "write", "1"),
        j(0, "invoke", "cas", "[1, 2]"),
        j(0, "fail", "cas", "[1, 2]"),
    ];
    let close = |read: &str| vec![j(1, "invoke", "read", "null"), j(1, "ok", "read", read)];
    assert_closings(Model::CasRegister, &base, close, &[("1", LIN), ("2", NOT)]);
}

#[test]
fn info_cas_may_or_may_not_apply() {
    let base = [
        j(0, "invoke", "write", "1"),
        j(0, "ok", "write", "1"),
        j(0, "invoke", "cas", "[1, 2]"),
        j(0, "info", "cas", "[1, 2]"),
    ];
    let close = |read: &str| vec![j(1, "invoke", "read", "null"), j(1, "ok", "read", read)];
    assert_closings(
        Model::CasRegister,
        &base,
        close,
        &[("1", LIN), ("2", LIN), ("3", NOT)],
    );
}

#[test]
fn concurrent_cas_chain() {
    // Two concurrent cas ops only linearise as 0->1->2.
    let h = [
        j(0, "invoke", "write", "0"),
        j(0, "ok", "write", "0"),
        j(1, "invoke", "cas", "[1, 2]"),
        j(2, "invoke", "cas", "[0, 1]"),
        j(1, "ok", "cas", "[1, 2]"),
        j(2, "ok", "cas", "[0, 1]"),
        j(0, "invoke", "read", "null"),
        j(0, "ok", "read", "2"),
    ];
    assert_eq!(verdict(Model::CasRegister, &h), LIN);
}

#[test]
fn register_model_rejects_cas() {
    let h = History::parse_jsonl_str(
        &[j(0, "invoke", "cas", "[1, 2]"), j(0, "ok", "cas", "[1, 2]")].join("\n"),
    );
    let e = check(&h.expect("parses"), Model::Register, Options::default())
        .expect_err("cas is not a register op");
    assert_eq!(e.line, 1);
    assert!(matches!(
        e.kind,
        HistoryErrorKind::FNotInModel { f: Op::Cas, .. }
    ));
}

// ---------------------------------------------------------------------- kv

#[test]
fn kv_missing_key_reads_empty_string() {
    let h = [
        jk(0, "invoke", "get", "x", "null"),
        jk(0, "ok", "get", "x", r#""""#),
    ];
    assert_eq!(verdict(Model::Kv, &h), LIN);
    let h = [
        jk(0, "invoke", "get", "x", "null"),
        jk(0, "ok", "get", "x", r#""a""#),
    ];
    assert_eq!(verdict(Model::Kv, &h), NOT);
}

#[test]
fn kv_put_delete_get() {
    let h = [
        jk(0, "invoke", "put", "x", r#""a""#),
        jk(0, "ok", "put", "x", r#""a""#),
        jk(0, "invoke", "delete", "x", "null"),
        jk(0, "ok", "delete", "x", "null"),
        jk(1, "invoke", "get", "x", "null"),
        jk(1, "ok", "get", "x", r#""""#),
    ];
    assert_eq!(verdict(Model::Kv, &h), LIN);
}

#[test]
fn kv_append_concatenates() {
    let base = [
        jk(0, "invoke", "put", "x", r#""a""#),
        jk(0, "ok", "put", "x", r#""a""#),
        jk(0, "invoke", "append", "x", r#""b""#),
        jk(0, "ok", "append", "x", r#""b""#),
        jk(1, "invoke", "get", "x", "null"),
    ];
    let close = |read: &str| vec![jk(1, "ok", "get", "x", read)];
    assert_closings(
        Model::Kv,
        &base,
        close,
        &[(r#""ab""#, LIN), (r#""ba""#, NOT), (r#""a""#, NOT)],
    );
}

#[test]
fn kv_concurrent_appends_in_either_order() {
    let base = [
        jk(0, "invoke", "append", "x", r#""x""#),
        jk(1, "invoke", "append", "x", r#""y""#),
        jk(0, "ok", "append", "x", r#""x""#),
        jk(1, "ok", "append", "x", r#""y""#),
        jk(2, "invoke", "get", "x", "null"),
    ];
    let close = |read: &str| vec![jk(2, "ok", "get", "x", read)];
    assert_closings(
        Model::Kv,
        &base,
        close,
        &[
            (r#""xy""#, LIN),
            (r#""yx""#, LIN),
            (r#""x""#, NOT),
            (r#""xx""#, NOT),
        ],
    );
}

#[test]
fn kv_append_result_that_someone_also_wrote() {
    // "ab" is both written by put and produced by append: equal strings must
    // be equal states whichever way they were made.
    let h = [
        jk(0, "invoke", "put", "x", r#""a""#),
        jk(0, "ok", "put", "x", r#""a""#),
        jk(0, "invoke", "append", "x", r#""b""#),
        jk(0, "ok", "append", "x", r#""b""#),
        jk(0, "invoke", "cas", "x", r#"["ab", "c"]"#),
        jk(0, "ok", "cas", "x", r#"["ab", "c"]"#),
        jk(1, "invoke", "get", "x", "null"),
        jk(1, "ok", "get", "x", r#""c""#),
    ];
    assert_eq!(verdict(Model::Kv, &h), LIN);
}

#[test]
fn kv_stale_read_and_keys_independent() {
    let h = [
        jk(0, "invoke", "put", "x", r#""1""#),
        jk(0, "ok", "put", "x", r#""1""#),
        jk(0, "invoke", "put", "y", r#""2""#),
        jk(0, "ok", "put", "y", r#""2""#),
        jk(0, "invoke", "put", "x", r#""3""#),
        jk(0, "ok", "put", "x", r#""3""#),
        jk(1, "invoke", "get", "y", "null"),
        jk(1, "ok", "get", "y", r#""2""#),
        jk(1, "invoke", "get", "x", "null"),
        jk(1, "ok", "get", "x", r#""1""#),
    ];
    let r = run(Model::Kv, &h);
    assert_eq!(r.verdict, NOT);
    assert_eq!(r.partitions, 2);
    let f = r.failure.expect("failure");
    assert_eq!(f.key, Some(Value::from("x")));
    assert_eq!(f.state, Value::from("3"));
}

#[test]
fn kv_stale_read_of_appends_names_the_get_that_cannot_be_satisfied() {
    let h = [
        jk(0, "invoke", "append", "x", r#""a""#),
        jk(0, "ok", "append", "x", r#""a""#),
        jk(1, "invoke", "get", "x", "null"),
        jk(1, "ok", "get", "x", r#""a""#),
        jk(2, "invoke", "get", "x", "null"),
        jk(2, "ok", "get", "x", r#""""#),
    ];
    let r = run(Model::Kv, &h);
    assert_eq!(r.verdict, NOT);
    let f = r.failure.clone().expect("failure");
    assert_eq!((f.linearized, f.state.clone()), (2, Value::from("a")));
    let Some(Cause::Outgrown { get: stale }) = f.cause else {
        panic!("the stale get is named: {:?}", f.cause);
    };
    assert_eq!((stale.index, stale.output), (2, Some(Value::from(""))));
    assert!(f
        .window
        .iter()
        .any(|w| w.op.index == 2 && w.role == Role::Unplaced));
    assert!(
        r.explain().contains("can never be satisfied"),
        "{}",
        r.explain()
    );
}

#[test]
fn kv_get_out_of_append_reach_unless_a_put_can_come_first() {
    // State "a" is no prefix of "bc", but the put of "b" may run before the
    // get returns, so the get is still reachable: a, put b, append c, get.
    let h = |put_first: bool| {
        let mut h = vec![
            jk(0, "invoke", "append", "x", r#""a""#),
            jk(0, "ok", "append", "x", r#""a""#),
        ];
        let put = [
            jk(1, "invoke", "put", "x", r#""b""#),
            jk(1, "ok", "put", "x", r#""b""#),
        ];
        if put_first {
            h.push(put[0].clone());
        }
        h.extend([
            jk(3, "invoke", "append", "x", r#""c""#),
            jk(2, "invoke", "get", "x", "null"),
            jk(2, "ok", "get", "x", r#""bc""#),
        ]);
        if put_first {
            h.push(put[1].clone());
        } else {
            h.extend(put);
        }
        h.push(jk(3, "ok", "append", "x", r#""c""#));
        h
    };
    assert_eq!(verdict(Model::Kv, &h(true)), LIN);
    // Invoked after the get returned, the put cannot help it.
    assert_eq!(verdict(Model::Kv, &h(false)), NOT);
}

#[test]
fn kv_cas_fail_and_info() {
    let base = [
        jk(0, "invoke", "put", "x", r#""a""#),
        jk(0, "ok", "put", "x", r#""a""#),
        jk(0, "invoke", "cas", "x", r#"["a", "b"]"#),
        jk(0, "fail", "cas", "x", r#"["a", "b"]"#),
        jk(2, "invoke", "cas", "x", r#"["a", "c"]"#),
        jk(2, "info", "cas", "x", r#"["a", "c"]"#),
        jk(1, "invoke", "get", "x", "null"),
    ];
    let close = |read: &str| vec![jk(1, "ok", "get", "x", read)];
    assert_closings(
        Model::Kv,
        &base,
        close,
        &[(r#""a""#, LIN), (r#""c""#, LIN), (r#""b""#, NOT)],
    );
}

#[test]
fn kv_info_put_takes_effect_late() {
    let h = [
        jk(0, "invoke", "put", "x", r#""a""#),
        jk(0, "info", "put", "x", r#""a""#),
        jk(1, "invoke", "get", "x", "null"),
        jk(1, "ok", "get", "x", r#""""#),
        jk(1, "invoke", "get", "x", "null"),
        jk(1, "ok", "get", "x", r#""a""#),
    ];
    assert_eq!(verdict(Model::Kv, &h), LIN);
}

/// With appends, an info op whose effect a read shows must be kept: the get
/// of `"abc"` is linearisable only through the info append of `"b"`, the get
/// of `"zc"` only through the info put of `"z"`.
#[test]
fn kv_info_ops_a_read_shows_are_kept_with_appends() {
    let base = [
        jk(0, "invoke", "put", "x", r#""a""#),
        jk(0, "ok", "put", "x", r#""a""#),
        jk(2, "invoke", "append", "x", r#""b""#),
        jk(2, "info", "append", "x", r#""b""#),
        jk(3, "invoke", "put", "x", r#""z""#),
        jk(3, "info", "put", "x", r#""z""#),
        jk(0, "invoke", "append", "x", r#""c""#),
        jk(0, "ok", "append", "x", r#""c""#),
        jk(1, "invoke", "get", "x", "null"),
    ];
    let close = |read: &str| vec![jk(1, "ok", "get", "x", read)];
    assert_closings(
        Model::Kv,
        &base,
        close,
        &[
            (r#""abc""#, LIN),
            (r#""ac""#, LIN),
            (r#""acb""#, LIN),
            (r#""zc""#, LIN),
            (r#""zbc""#, LIN),
            (r#""bc""#, NOT),
            (r#""cb""#, NOT),
        ],
    );
}

/// The reduction that made a swarm seed's check fast (`synod sim --protocol raft
/// --seed 88 --swarm`: one key, 8 clients, appends and 8 info ops, 39 s before it,
/// 15 ms after): with appends, the info ops whose effect no read shows are dropped
/// before the search — a put or cas whose value no read starts with, an append
/// whose piece no read contains — and the others are kept.
#[test]
fn kv_info_ops_no_read_shows_are_dropped_with_appends() {
    let lines = [
        jk(0, "invoke", "put", "x", r#""a""#),
        jk(0, "ok", "put", "x", r#""a""#),
        jk(1, "invoke", "append", "x", r#""u""#), // op 1: no read holds "u"
        jk(1, "info", "append", "x", r#""u""#),
        jk(2, "invoke", "put", "x", r#""p""#), // op 2: no read starts with "p"
        jk(2, "info", "put", "x", r#""p""#),
        jk(3, "invoke", "cas", "x", r#"["a", "q"]"#), // op 3: nor with "q"
        jk(3, "info", "cas", "x", r#"["a", "q"]"#),
        jk(4, "invoke", "append", "x", r#""s""#), // op 4: read inside "asb"
        jk(4, "info", "append", "x", r#""s""#),
        jk(5, "invoke", "put", "x", r#""as""#), // op 5: "asb" starts with it
        jk(5, "info", "put", "x", r#""as""#),
        jk(6, "invoke", "append", "x", r#""b""#),
        jk(6, "ok", "append", "x", r#""b""#),
        jk(7, "invoke", "get", "x", "null"),
        jk(7, "ok", "get", "x", r#""asb""#),
    ];
    let h = History::parse_jsonl_str(&lines.join("\n")).expect("valid history");
    let parts = partition::split(&h);
    assert_eq!(parts.len(), 1);
    let init = Model::Kv.initial_state();
    let (ops, _) = partition::part_ops(&h, &parts[0], init);
    let kept: Vec<u32> = ops.iter().map(|o| o.op).collect();
    assert_eq!(kept, [0, 4, 5, 6, 7]);
    assert_eq!(verdict(Model::Kv, &lines), LIN);
}

#[test]
fn kv_validation_errors_name_lines() {
    let cases: [(Vec<String>, u64); 4] = [
        (vec![j(0, "invoke", "get", "null")], 1),
        (
            vec![
                jk(0, "invoke", "put", "x", r#""a""#),
                jk(0, "ok", "put", "x", r#""a""#),
                jk(0, "invoke", "put", "x", "5"),
            ],
            3,
        ),
        (
            vec![
                jk(0, "invoke", "get", "x", "null"),
                jk(0, "ok", "get", "x", "null"),
            ],
            2,
        ),
        (vec![jk(0, "invoke", "read", "x", "null")], 1),
    ];
    for (lines, line) in cases {
        let h = History::parse_jsonl_str(&lines.join("\n")).expect("parses");
        let e = check(&h, Model::Kv, Options::default()).expect_err("invalid for kv");
        assert_eq!(e.line, line, "{e}");
    }
}

// ------------------------------------------------------------ parse errors

/// Input lines, the line the error must name, and a test of its kind.
type ParseCase = (Vec<String>, u64, fn(&HistoryErrorKind) -> bool);

#[test]
fn parse_errors_name_the_line() {
    use HistoryErrorKind as K;
    let w = || j(0, "invoke", "write", "1");
    let cases: Vec<ParseCase> = vec![
        // serde_json's message, its column kept and its "line 1" cut
        (
            vec![w(), "{not json".into()],
            2,
            |k| matches!(k, K::Json(m) if m == "key must be a string (column 2)"),
        ),
        (vec!["[1, 2]".into()], 1, |k| matches!(k, K::Json(_))),
        (
            vec![j(0, "invoke", "frobnicate", "1")],
            1,
            |k| matches!(k, K::UnknownF(f) if f == "frobnicate"),
        ),
        (
            vec![j(0, "started", "write", "1")],
            1,
            |k| matches!(k, K::UnknownType(t) if t == "started"),
        ),
        (vec![w(), j(1, "ok", "write", "1")], 2, |k| {
            matches!(k, K::ReturnWithoutInvoke { process: 1 })
        }),
        (vec![w(), w()], 2, |k| {
            matches!(
                k,
                K::DoubleInvoke {
                    process: 0,
                    outstanding_line: 1
                }
            )
        }),
        (vec![w(), j(0, "ok", "read", "1")], 2, |k| {
            matches!(
                k,
                K::FMismatch {
                    invoked: Op::Write,
                    completed: Op::Read,
                    ..
                }
            )
        }),
        (vec![j(0, "invoke", "cas", "1")], 1, |k| {
            matches!(k, K::BadValue(_))
        }),
        (vec![j(0, "invoke", "cas", "[1, 2, 3]")], 1, |k| {
            matches!(k, K::BadValue(_))
        }),
        (vec![j(0, "invoke", "cas", "[[1], 2]")], 1, |k| {
            matches!(k, K::BadValue(_))
        }),
        (vec![j(0, "invoke", "write", "[1, 2]")], 1, |k| {
            matches!(k, K::BadValue(_))
        }),
        (vec![j(0, "invoke", "write", r#"{"a": 1}"#)], 1, |k| {
            matches!(k, K::BadValue(_))
        }),
        (
            vec![j(0, "invoke", "read", "null"), j(0, "ok", "read", "[1, 2]")],
            2,
            |k| matches!(k, K::BadValue(_)),
        ),
        (vec![w(), j(0, "ok", "write", "2")], 2, |k| {
            matches!(k, K::BadValue(_))
        }),
        (vec![j(0, "invoke", "delete", "1")], 1, |k| {
            matches!(k, K::BadValue(_))
        }),
        (vec![r#"{"type": "invoke", "f": "read"}"#.into()], 1, |k| {
            matches!(k, K::MissingField("process"))
        }),
        (vec![r#"{"process": 0, "f": "read"}"#.into()], 1, |k| {
            matches!(k, K::MissingField("type"))
        }),
        (vec![r#"{"process": 0, "type": "invoke"}"#.into()], 1, |k| {
            matches!(k, K::MissingField("f"))
        }),
        (
            vec![r#"{"process": "n", "type": "invoke", "f": "read"}"#.into()],
            1,
            |k| matches!(k, K::BadProcess(_)),
        ),
        (
            vec![r#"{"process": -3, "type": "invoke", "f": "read"}"#.into()],
            1,
            |k| matches!(k, K::BadProcess(_)),
        ),
        (
            vec![r#"{"process": 0, "type": 1, "f": "read"}"#.into()],
            1,
            |k| matches!(k, K::Json(_)),
        ),
        (
            vec![
                jk(0, "invoke", "write", "a", "1"),
                jk(0, "ok", "write", "b", "1"),
            ],
            2,
            |k| matches!(k, K::KeyMismatch { invoke_line: 1 }),
        ),
        (
            vec![r#"{"process": 0, "type": "invoke", "f": "read", "key": [1]}"#.into()],
            1,
            |k| matches!(k, K::BadKey(_)),
        ),
        // Blank lines are skipped but counted.
        (
            vec![w(), String::new(), "  ".into(), "oops".into()],
            4,
            |k| matches!(k, K::Json(_)),
        ),
    ];
    for (lines, line, want) in cases {
        let e = parse_err(&lines);
        assert_eq!(e.line, line, "{lines:?}: {e}");
        assert!(want(&e.kind), "{lines:?}: {e}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
    }
}

/// A read invoke with no `value` field at all.
fn read_without_value(p: u64) -> String {
    format!(r#"{{"process": {p}, "type": "invoke", "f": "read"}}"#)
}

#[test]
fn extra_fields_are_ignored_and_value_may_be_absent() {
    let h = [
        r#"{"process": 0, "type": "invoke", "f": "write", "value": 1, "time": 123, "index": 0}"#.to_string(),
        r#"{"process": 0, "type": "ok", "f": "write", "time": 125, "index": 1, "extra": {"x": [1]}}"#.to_string(),
        read_without_value(1),
        r#"{"process": 1, "type": "ok", "f": "read", "value": 1}"#.to_string(),
    ];
    assert_eq!(verdict(Model::Register, &h), LIN);
}

#[test]
fn in_memory_events_errors_name_positions() {
    let events = vec![
        Event::new(0, EventKind::Invoke, Op::Write, 1i64),
        Event::new(1, EventKind::Ok, Op::Write, 1i64),
    ];
    let e = History::from_events(events)
        .err()
        .expect("return without invoke");
    assert_eq!(e.line, 2);
}

#[test]
fn in_memory_kv_history() {
    let mut b = HistoryBuilder::new();
    let evs = [
        Event::new(0, EventKind::Invoke, Op::Put, "v").with_key("k"),
        Event::new(0, EventKind::Ok, Op::Put, "v").with_key("k"),
        Event::new(1, EventKind::Invoke, Op::Get, Value::Null).with_key("k"),
        Event::new(1, EventKind::Ok, Op::Get, "v").with_key("k"),
    ];
    for e in evs {
        b.push(e).expect("valid");
    }
    let h = b.finish();
    assert_eq!(h.len(), 2);
    let r = check(&h, Model::Kv, Options::default()).expect("fits");
    assert_eq!(r.verdict, LIN);
}

// ------------------------------------------------------------ model names

#[test]
fn model_from_str() {
    for m in Model::ALL {
        assert_eq!(m.as_str().parse::<Model>(), Ok(m));
    }
    let e = "etcd".parse::<Model>().expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "unknown model \"etcd\": expected one of register, cas-register, kv"
    );
}

/// The synthetic workloads issue what their mix says — every operation of the
/// model, only the two or three of an append mix — and write values that name one
/// write each: distinct, and in the append mixes none inside another (an append
/// history is read back by splitting strings, where `v1` would hide in `v12`).
#[test]
fn synthetic_mixes_issue_their_operations_with_distinct_values() {
    use std::collections::BTreeSet;
    use synth::{generate, Mix, SynthConfig};
    let cases = [
        (Model::Register, Mix::Standard, vec![Op::Read, Op::Write]),
        (
            Model::CasRegister,
            Mix::Standard,
            vec![Op::Read, Op::Write, Op::Cas],
        ),
        (
            Model::Kv,
            Mix::Standard,
            vec![Op::Get, Op::Put, Op::Append, Op::Delete, Op::Cas],
        ),
        (Model::Kv, Mix::AppendHeavy, vec![Op::Get, Op::Append]),
        (
            Model::Kv,
            Mix::AppendPut,
            vec![Op::Get, Op::Put, Op::Append],
        ),
        (Model::Register, Mix::AppendHeavy, vec![Op::Read, Op::Write]),
    ];
    for (model, mix, expected) in cases {
        let mut cfg = SynthConfig::new(model, 2, 4, 2_000, 11);
        cfg.mix = mix;
        let invokes: Vec<Event> = generate(&cfg)
            .into_iter()
            .filter(|e| e.kind == EventKind::Invoke)
            .collect();
        let ops: BTreeSet<&str> = invokes.iter().map(|e| e.f.as_str()).collect();
        let want: BTreeSet<&str> = expected.iter().map(|f| f.as_str()).collect();
        assert_eq!(ops, want, "{model:?} {mix:?}");
        let written: Vec<String> = invokes
            .iter()
            .filter(|e| matches!(e.f, Op::Write | Op::Put | Op::Append))
            .map(|e| e.value.to_json().to_string())
            .collect();
        let distinct: BTreeSet<&String> = written.iter().collect();
        assert_eq!(
            distinct.len(),
            written.len(),
            "{model:?} {mix:?}: a value written twice"
        );
        if mix != Mix::Standard && model == Model::Kv {
            for a in &written {
                let inside = written
                    .iter()
                    .find(|b| *b != a && b.contains(a.trim_matches('"')));
                assert!(inside.is_none(), "{mix:?}: {a} inside {inside:?}");
            }
        }
    }
}

/// Six sequential writes, then two concurrent writes of 7 and 8 read as 7, 8, 7 — not
/// linearizable; with `long`, a write of 0 by another process runs across all of it
/// (invoked first, returning last).
fn flip_flop(long: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if long {
        lines.push(j(4, "invoke", "write", "0"));
    }
    for v in 1..=6 {
        lines.push(j(0, "invoke", "write", &v.to_string()));
        lines.push(j(0, "ok", "write", &v.to_string()));
    }
    lines.push(j(1, "invoke", "write", "7"));
    lines.push(j(2, "invoke", "write", "8"));
    for v in ["7", "8", "7"] {
        lines.push(j(3, "invoke", "read", "null"));
        lines.push(j(3, "ok", "read", v));
    }
    lines.push(j(1, "ok", "write", "7"));
    lines.push(j(2, "ok", "write", "8"));
    if long {
        lines.push(j(4, "ok", "write", "0"));
    }
    lines
}

/// (op index, role) of each op of the failure's window.
fn window_of(lines: &[String]) -> Vec<(usize, Role)> {
    let failure = run(Model::Register, lines).failure.expect("a violation");
    failure
        .window
        .iter()
        .map(|w| (w.op.index, w.role))
        .collect()
}

/// A failure's window shows the ops around it — the first unplaced op, the ops
/// overlapping it and the linearised prefix's last `CONTEXT` (3) — and not the
/// writes that completed before all of them (ops 0–5 of `flip_flop`), but it does
/// show an op invoked before the window that runs across it.
#[test]
fn failure_window_shows_the_ops_that_meet_it_and_no_others() {
    use Role::{Linearized as L, Unplaced as U};
    assert_eq!(
        window_of(&flip_flop(false)),
        [(6, L), (7, L), (8, L), (9, U)]
    );
    let long = [(0, L), (7, L), (8, L), (9, L), (10, U)];
    assert_eq!(window_of(&flip_flop(true)), long);
    // An op whose outcome is unknown never returns, so it meets every later
    // window: it is shown only if invoked inside this one.
    let mut lines = vec![j(5, "invoke", "write", "8")];
    lines.extend(flip_flop(false));
    lines.insert(15, j(6, "invoke", "write", "8"));
    lines.push(j(5, "info", "write", "8"));
    lines.push(j(6, "info", "write", "8"));
    let info = [(7, L), (8, L), (9, Role::Concurrent), (10, L), (11, U)];
    assert_eq!(window_of(&lines), info, "op 0 invoked before, op 9 inside");
}
