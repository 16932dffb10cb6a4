//! Results that explain themselves: verdict, failing key, the longest
//! linearisable prefix, the ops that could not be placed, and the window of
//! the history around them, as text and as JSON.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;

use super::cause::{self, Cause};
use super::history::{History, Op, Status, Value, NO_LINE};
use super::model::Model;
use super::refute::Refutation;
use super::search::{BestPrefix, PartOp, INFINITY};
use super::states::States;

/// How many of the last linearised ops are shown for context.
const CONTEXT: usize = 3;
/// Upper bound on ops in a reported window (pathological concurrency).
const MAX_WINDOW: usize = 500;

/// The answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Some linearisation exists for every key.
    Linearizable,
    /// Some key has none.
    NotLinearizable,
    /// The search was stopped (timeout) before reaching an answer.
    Unknown,
}

impl Verdict {
    /// `linearizable`, `not-linearizable` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not-linearizable",
            Verdict::Unknown => "unknown",
        }
    }

    /// The CLI exit code: 0, 1 or 3 (2 is reserved for bad input).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Linearizable => 0,
            Verdict::NotLinearizable => 1,
            Verdict::Unknown => 3,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an operation ended, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpStatus {
    /// Completed and took effect.
    Ok,
    /// Did not take effect.
    Fail,
    /// Unknown outcome.
    Info,
    /// No completion in the history (treated as info).
    Pending,
}

/// One operation, for humans and JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpSummary {
    /// Position of the op among all invokes of the history (0-based).
    pub index: usize,
    /// Its process.
    pub process: u64,
    /// Its `f`.
    pub f: Op,
    /// Argument: write value, cas `[expected, new]`, `null` for reads.
    pub value: Value,
    /// For an `ok` read: the value it returned.
    pub output: Option<Value>,
    /// How it ended.
    pub status: OpStatus,
    /// Line of the invoke.
    pub invoke_line: u64,
    /// Line of the completion (for `info`, where it was reported; the op may
    /// still take effect later). `None` when there is no completion.
    pub return_line: Option<u64>,
}

impl OpSummary {
    pub(crate) fn of(h: &History, index: u32) -> OpSummary {
        let r = &h.ops[index as usize];
        let value = match r.f {
            Op::Read | Op::Get | Op::Delete => Value::Null,
            Op::Cas => Value::pair(h.value(r.arg[0]), h.value(r.arg[1])),
            Op::Write | Op::Put | Op::Append => h.value(r.arg[0]),
        };
        let status = match r.status {
            Status::Ok => OpStatus::Ok,
            Status::Fail => OpStatus::Fail,
            Status::Info => OpStatus::Info,
            Status::Pending => OpStatus::Pending,
        };
        let output = (r.f.is_read() && status == OpStatus::Ok).then(|| h.value(r.out));
        OpSummary {
            index: index as usize,
            process: r.process,
            f: r.f,
            value,
            output,
            status,
            invoke_line: r.invoke_line,
            return_line: (r.return_line != NO_LINE).then_some(r.return_line),
        }
    }

    /// Short label such as `write 3`, `read -> 3`, `cas [1,2]`.
    pub fn label(&self) -> String {
        match (&self.output, self.f) {
            (Some(v), f) => format!("{f} -> {v}"),
            (None, f) if f.is_read() || f == Op::Delete => f.to_string(),
            (None, f) => format!("{f} {}", self.value),
        }
    }
}

impl fmt::Display for OpSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} p{} {} ", self.index, self.process, self.label())?;
        match (self.status, self.return_line) {
            (OpStatus::Pending, _) | (_, None) => {
                write!(f, "[line {}-, never completed]", self.invoke_line)
            }
            (OpStatus::Info, Some(r)) => {
                write!(f, "[line {}-, info on line {r}]", self.invoke_line)
            }
            (s, Some(r)) => {
                let s = if s == OpStatus::Ok { "ok" } else { "fail" };
                write!(f, "[lines {}-{r}, {s}]", self.invoke_line)
            }
        }
    }
}

/// The part an op plays in a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// In the longest linearisable prefix.
    Linearized,
    /// Completed (ok) but could not be placed after that prefix.
    Unplaced,
    /// An info op not placed: it may simply never have taken effect.
    Concurrent,
}

/// An op of the failing window with its role.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowOp {
    /// The op.
    #[serde(flatten)]
    pub op: OpSummary,
    /// Its role.
    pub role: Role,
}

/// Why a key is not linearisable.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    /// The failing key (`None`: the single unkeyed register).
    pub key: Option<Value>,
    /// Ops searched for that key: fail ops, info reads, and info writes or
    /// cas ops whose value nobody observes are dropped before the search.
    pub key_ops: usize,
    /// Length of the longest linearisable prefix found.
    pub linearized: usize,
    /// Model state after that prefix.
    pub state: Value,
    /// The last ops of the prefix, in linearisation order.
    pub prefix_tail: Vec<OpSummary>,
    /// Ok ops pending after the prefix, none of which could be placed next;
    /// the first of them returned at `last_line`, so it had to be.
    pub unplaced: Vec<OpSummary>,
    /// The direct reason, when the checker has one (its ops are also in
    /// the window). With a refutation the verdict needs no search; the
    /// prefix then comes from a search bounded to a few steps per op, so it
    /// may stop short of the ops the cause names.
    pub cause: Option<Cause>,
    /// The ops overlapping lines `first_line..=last_line`, by invoke line.
    pub window: Vec<WindowOp>,
    /// True if the window was cut at its first `MAX_WINDOW` (500) ops.
    pub window_truncated: bool,
    /// First line of the window.
    pub first_line: u64,
    /// Last line of the window: the return of the op that could not wait.
    pub last_line: u64,
}

/// What a failing partition's check found.
pub(crate) struct Found<'a> {
    /// The deepest prefix the search reached.
    pub best: &'a BestPrefix,
    /// The refutation, if one was found before the search.
    pub refuted: Option<&'a Refutation>,
    /// The partition's initial state.
    pub init: u32,
}

/// Builds the failure report of one partition from the deepest prefix.
pub(crate) fn build_failure(
    h: &History,
    key: u32,
    ops: &[PartOp],
    found: &Found<'_>,
    states: &States<'_>,
) -> Failure {
    let best = found.best;
    let mut in_prefix = vec![false; ops.len()];
    for &i in &best.order {
        in_prefix[i as usize] = true;
    }
    let pending_ok = |i: usize| !in_prefix[i] && !ops[i].is_info();
    // The earliest return among unplaced ok ops: nothing can wait past it.
    let end = (0..ops.len())
        .filter(|&i| pending_ok(i))
        .map(|i| ops[i].ret)
        .min();
    let end = end.unwrap_or(INFINITY);
    let unplaced: Vec<usize> = (0..ops.len())
        .filter(|&i| pending_ok(i) && ops[i].call < end)
        .collect();
    let tail = &best.order[best.order.len().saturating_sub(CONTEXT)..];
    let start = unplaced
        .iter()
        .map(|&i| ops[i].call)
        .chain(tail.iter().map(|&i| ops[i as usize].call))
        .min()
        .unwrap_or(0);
    let (cause, named) = match (found.refuted, best.outgrown) {
        (Some(r), _) => (
            Some(cause::of_refutation(h, ops, r, found.init)),
            cause::ops_of(r),
        ),
        (None, Some(g)) => {
            let get = OpSummary::of(h, ops[g as usize].op);
            (Some(Cause::Outgrown { get }), vec![g])
        }
        (None, None) => (None, Vec::new()),
    };
    let shown = Shown {
        in_prefix: &in_prefix,
        tail,
        named: &named,
    };
    let window = window_ops(h, ops, &shown, (start, end));
    let summary = |i: usize| OpSummary::of(h, ops[i].op);
    Failure {
        key: h.key(key),
        key_ops: ops.len(),
        linearized: best.order.len(),
        state: states.describe(best.state),
        prefix_tail: tail.iter().map(|&i| summary(i as usize)).collect(),
        unplaced: unplaced.iter().map(|&i| summary(i)).collect(),
        cause,
        window_truncated: window.len() > MAX_WINDOW,
        window: window.into_iter().take(MAX_WINDOW).collect(),
        first_line: start,
        last_line: end,
    }
}

/// What the window must show besides the ops overlapping it.
struct Shown<'a> {
    in_prefix: &'a [bool],
    /// The context tail of the prefix.
    tail: &'a [u32],
    /// Ops the cause names, wherever they lie.
    named: &'a [u32],
}

/// Ops whose interval meets `[start, end]`. Info ops never return, so they
/// meet every later interval; only those invoked inside the window, or in
/// the context tail, are shown. Ops the cause names are always shown.
fn window_ops(
    h: &History,
    ops: &[PartOp],
    shown: &Shown<'_>,
    (start, end): (u64, u64),
) -> Vec<WindowOp> {
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let in_tail = shown.tail.contains(&(i as u32));
        let overlaps = op.call <= end && op.ret >= start && (!op.is_info() || op.call >= start);
        if !(overlaps || in_tail || shown.named.contains(&(i as u32))) {
            continue;
        }
        let role = match (shown.in_prefix[i], op.is_info()) {
            (true, _) => Role::Linearized,
            (false, false) => Role::Unplaced,
            (false, true) => Role::Concurrent,
        };
        out.push(WindowOp {
            op: OpSummary::of(h, op.op),
            role,
        });
    }
    out
}

/// The outcome of `check`.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    /// The verdict.
    pub verdict: Verdict,
    /// The model checked against.
    pub model: Model,
    /// Operations (invokes) in the history.
    pub ops: usize,
    /// Independent partitions (keys) searched.
    pub partitions: usize,
    /// Wall time of the check.
    pub elapsed: Duration,
    /// Details when `NotLinearizable`.
    pub failure: Option<Failure>,
    /// Why the verdict is `Unknown` (e.g. "timeout").
    pub unknown_reason: Option<String>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    verdict: Verdict,
    model: Model,
    ops: usize,
    partitions: usize,
    elapsed_ms: f64,
    unknown_reason: &'a Option<String>,
    failure: &'a Option<Failure>,
}

impl CheckResult {
    /// The result as one JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        let doc = JsonReport {
            verdict: self.verdict,
            model: self.model,
            ops: self.ops,
            partitions: self.partitions,
            elapsed_ms: self.elapsed.as_secs_f64() * 1e3,
            unknown_reason: &self.unknown_reason,
            failure: &self.failure,
        };
        serde_json::to_value(doc).unwrap_or(serde_json::Value::Null)
    }

    /// Human-readable lines: the verdict first, then the explanation.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        let ms = self.elapsed.as_secs_f64() * 1e3;
        let _ = writeln!(s, "{}", self.verdict);
        let _ = writeln!(
            s,
            "model {}: {} ops in {} partitions, checked in {ms:.3} ms",
            self.model, self.ops, self.partitions
        );
        if let Some(why) = &self.unknown_reason {
            let _ = writeln!(s, "no verdict: {why}");
        }
        if let Some(f) = &self.failure {
            explain_failure(&mut s, f);
        }
        s
    }
}

fn explain_failure(s: &mut String, f: &Failure) {
    let key = f
        .key
        .as_ref()
        .map_or("the unkeyed register".to_string(), |k| format!("key {k}"));
    let _ = writeln!(
        s,
        "{key}: longest linearisable prefix has {} of {} ops; state after it: {}",
        f.linearized, f.key_ops, f.state
    );
    let _ = writeln!(s, "  last ops of that prefix, in linearisation order:");
    if f.prefix_tail.is_empty() {
        let _ = writeln!(
            s,
            "    (none: the prefix is empty, state is the initial one)"
        );
    }
    for op in &f.prefix_tail {
        let _ = writeln!(s, "    {op}");
    }
    let _ = writeln!(
        s,
        "  could not be placed next (the first had to take effect by line {}):",
        f.last_line
    );
    for op in &f.unplaced {
        let _ = writeln!(s, "    {op}");
    }
    if let Some(c) = &f.cause {
        cause::explain(s, c);
    }
    let more = if f.window_truncated {
        " (truncated)"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "  failing window: lines {}-{}, {} ops{more}:",
        f.first_line,
        f.last_line,
        f.window.len()
    );
    for w in &f.window {
        let role = match w.role {
            Role::Linearized => "linearised",
            Role::Unplaced => "UNPLACED",
            Role::Concurrent => "maybe",
        };
        let _ = writeln!(s, "    {role:<10} {}", w.op);
    }
}
