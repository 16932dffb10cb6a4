//! Client histories in the JSON-lines format of `shared/design.md`
//! (Jepsen/Knossos conventions), as recorded by the workload. A transaction
//! (`f` = `txn`, the bank and list-append workloads) has no `key`; its `value` lists
//! its micro-operations in Jepsen's form, `[["append","l3",7],["r","l1",[2,5]]]`
//! (`docs/checkers.md`).

use serde::Serialize;
use std::io::{self, Write};

/// Event type of a history line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The client issued the operation.
    Invoke,
    /// It completed and took effect.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Unknown: it may take effect at any point after its invoke.
    Info,
}

/// Operation name (`f`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpName {
    /// kv read.
    Get,
    /// kv write.
    Put,
    /// kv append.
    Append,
    /// compare-and-set.
    Cas,
    /// kv delete.
    Delete,
    /// A multi-key transaction; its value lists its micro-operations.
    Txn,
}

/// The `value` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// `null` (an invoke of a read).
    Null,
    /// A string value.
    Str(String),
    /// `[expected, new]` of a cas.
    Pair(String, String),
    /// A transaction's micro-operations.
    Txn(Vec<Micro>),
    /// The siblings a read of a multi-valued store returned (vvsync): a JSON array
    /// of strings, empty for a missing key.
    Siblings(Vec<String>),
}

/// One micro-operation of a transaction: `[f, key, value]` — `["r", key, read]`
/// (`null` in an invoke), `["append", key, element]`, `["add", key, delta]`,
/// `["cas", key, [expected, new]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Micro(pub &'static str, pub String, pub MicroValue);

/// The value of a [`Micro`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MicroValue {
    /// Not known (a read's invoke) or missing (a balance never opened).
    Null,
    /// A balance read, an amount added, an element appended.
    Int(i64),
    /// A list read.
    List(Vec<i64>),
    /// A value that is not a number (a `put` in a transaction).
    Str(String),
    /// `[expected, new]` of a cas.
    Pair(String, String),
}

/// One history line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEvent {
    /// Logical client process; a process has at most one outstanding op.
    pub process: u64,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Operation.
    pub f: OpName,
    /// Key (empty, and left out, for a transaction).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Value (see the design's history format).
    pub value: Value,
    /// Virtual time in nanoseconds (extra field; checkers ignore it).
    pub time: u64,
}

/// Writes `events` as JSON lines.
pub fn write_jsonl(events: &[HistoryEvent], out: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::new(out);
    for e in events {
        serde_json::to_writer(&mut w, e)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

const NOT_SINGLE_KEY: &str =
    "recorded history holds transactions, which the single-key kv model cannot judge";

const SIBLINGS: &str = "recorded history holds reads that returned siblings (a multi-valued \
store): it is judged for convergence and lost updates, not by the single-value kv model";

/// `true` if the history records transactions (the bank and list-append workloads),
/// judged by their own checks instead of the single-key kv model.
pub fn is_transactional(events: &[HistoryEvent]) -> bool {
    events.first().is_some_and(|e| e.f == OpName::Txn)
}

/// Converts a recorded history into the checker's in-memory form (no JSON round trip).
pub fn to_checker(events: &[HistoryEvent]) -> Result<crate::checker::History, String> {
    use crate::checker::{Event, EventKind, Op, Value as V};
    let mut b = crate::checker::HistoryBuilder::new();
    for e in events {
        let kind = match e.kind {
            EventType::Invoke => EventKind::Invoke,
            EventType::Ok => EventKind::Ok,
            EventType::Fail => EventKind::Fail,
            EventType::Info => EventKind::Info,
        };
        let f = match e.f {
            OpName::Get => Op::Get,
            OpName::Put => Op::Put,
            OpName::Append => Op::Append,
            OpName::Cas => Op::Cas,
            OpName::Delete => Op::Delete,
            OpName::Txn => return Err(NOT_SINGLE_KEY.to_string()),
        };
        let value = match &e.value {
            Value::Null => V::Null,
            Value::Str(s) => V::from(s.as_str()),
            Value::Pair(a, b) => V::pair(a.as_str(), b.as_str()),
            Value::Txn(_) => return Err(NOT_SINGLE_KEY.to_string()),
            Value::Siblings(_) => return Err(SIBLINGS.to_string()),
        };
        b.push(Event::new(e.process, kind, f, value).with_key(e.key.as_str()))
            .map_err(|err| format!("recorded history is malformed: {err}"))?;
    }
    Ok(b.finish())
}

/// The history with every answered read's invocation moved to the very start, each
/// such read on a process of its own (numbered after every recorded one), and reads
/// that were never answered (`fail`/`info`) left out: a linearizability check of it
/// lets a read take effect at any instant before it returned (see
/// [`check_prefix_reads`](crate::runner::check_prefix_reads)).
pub fn reads_from_the_start(events: &[HistoryEvent]) -> Vec<HistoryEvent> {
    use std::collections::BTreeMap;
    let mut fresh = events.iter().map(|e| e.process).max().unwrap_or(0);
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut reads: Vec<HistoryEvent> = Vec::new();
    let mut rest = Vec::with_capacity(events.len());
    // Invoke event index of each read that was answered `ok`.
    let mut answered = vec![false; events.len()];
    for (i, e) in events.iter().enumerate() {
        match e.kind {
            EventType::Invoke => {
                open.insert(e.process, i);
            }
            _ => {
                if let Some(invoke) = open.remove(&e.process) {
                    answered[invoke] = e.kind == EventType::Ok;
                }
            }
        }
    }
    let mut renamed: BTreeMap<u64, u64> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.f != OpName::Get {
            rest.push(e.clone());
            continue;
        }
        match e.kind {
            EventType::Invoke if answered[i] => {
                fresh += 1;
                renamed.insert(e.process, fresh);
                reads.push(HistoryEvent {
                    process: fresh,
                    ..e.clone()
                });
            }
            EventType::Invoke => {}
            EventType::Ok => {
                let process = renamed
                    .remove(&e.process)
                    .expect("answered reads were invoked");
                rest.push(HistoryEvent {
                    process,
                    ..e.clone()
                });
            }
            EventType::Fail | EventType::Info => {}
        }
    }
    reads.extend(rest);
    reads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_design_format() {
        let e = HistoryEvent {
            process: 3,
            kind: EventType::Invoke,
            f: OpName::Cas,
            key: "k1".into(),
            value: Value::Pair("1".into(), "2".into()),
            time: 5,
        };
        let mut out = Vec::new();
        write_jsonl(&[e], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"process\":3,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"k1\",\"value\":[\"1\",\"2\"],\"time\":5}\n"
        );
    }

    fn event(process: u64, kind: EventType, f: OpName, value: Option<&str>) -> HistoryEvent {
        HistoryEvent {
            process,
            kind,
            f,
            key: "x".into(),
            value: value.map_or(Value::Null, |v| Value::Str(v.into())),
            time: 0,
        }
    }

    fn linearizable(events: &[HistoryEvent]) -> bool {
        let h = to_checker(events).unwrap();
        let r = crate::checker::check(&h, crate::checker::Model::Kv, Default::default()).unwrap();
        r.verdict == crate::checker::Verdict::Linearizable
    }

    /// A read that returns the value before an acknowledged write is stale — not
    /// linearizable — but a prefix read; a read of a value nobody wrote is neither;
    /// and an unanswered read constrains nothing.
    #[test]
    fn moving_reads_to_the_start_accepts_stale_reads_and_nothing_else() {
        use EventType::*;
        use OpName::*;
        let write = [
            event(1, Invoke, Put, Some("1")),
            event(1, Ok, Put, Some("1")),
        ];
        let stale: Vec<_> = (write.iter().cloned())
            .chain([event(2, Invoke, Get, None), event(2, Ok, Get, Some(""))])
            .chain([event(1, Invoke, Get, None), event(1, Info, Get, None)])
            .collect();
        assert!(!linearizable(&stale));
        let moved = reads_from_the_start(&stale);
        assert!(linearizable(&moved), "{moved:?}");
        assert_eq!(moved.len(), 4, "the unanswered read is left out");
        assert_eq!((moved[0].f, moved[0].kind), (Get, Invoke));
        assert!(moved[0].process > 2, "a process of its own");

        let invented: Vec<_> = (write.iter().cloned())
            .chain([event(2, Invoke, Get, None), event(2, Ok, Get, Some("7"))])
            .collect();
        assert!(!linearizable(&reads_from_the_start(&invented)));
    }
}
