//! Client histories in the JSON-lines format of `shared/design.md`
//! (Jepsen/Knossos conventions), as recorded by the workload.

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
    /// Key.
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
        };
        let value = match &e.value {
            Value::Null => V::Null,
            Value::Str(s) => V::from(s.as_str()),
            Value::Pair(a, b) => V::pair(a.as_str(), b.as_str()),
        };
        b.push(Event::new(e.process, kind, f, value).with_key(e.key.as_str()))
            .map_err(|err| format!("recorded history is malformed: {err}"))?;
    }
    Ok(b.finish())
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
}
