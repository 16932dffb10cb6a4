//! Histories: the event types, the in-memory builder and the JSON-lines parser.
//!
//! A history is kept as one compact record per operation (invoke paired with
//! its completion), with keys and values interned to `u32` ids, so a
//! million-operation history costs tens of megabytes, not gigabytes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::intern::{Interner, NONE_ID};
pub use super::value::Value;

/// The `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The operation starts.
    Invoke,
    /// It completed and took effect; a read carries the value read.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Unknown: it may take effect at any time after its invoke, or never.
    Info,
}

impl EventKind {
    /// The Jepsen `type` name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Invoke => "invoke",
            EventKind::Ok => "ok",
            EventKind::Fail => "fail",
            EventKind::Info => "info",
        }
    }

    /// Parses a Jepsen `type`.
    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "invoke" => EventKind::Invoke,
            "ok" => EventKind::Ok,
            "fail" => EventKind::Fail,
            "info" => EventKind::Info,
            _ => return None,
        })
    }
}

/// The `f` of an event. Which ones a model accepts is `Model::allows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Register read.
    Read,
    /// Register write.
    Write,
    /// Compare-and-set, value `[expected, new]` (cas-register and kv).
    Cas,
    /// Kv read of a key.
    Get,
    /// Kv write of a key.
    Put,
    /// Kv append to a key's string.
    Append,
    /// Kv delete of a key (it then reads `""`).
    Delete,
}

impl Op {
    /// Parses an `f` name.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "read" => Op::Read,
            "write" => Op::Write,
            "cas" => Op::Cas,
            "get" => Op::Get,
            "put" => Op::Put,
            "append" => Op::Append,
            "delete" => Op::Delete,
            _ => return None,
        })
    }

    /// The `f` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Cas => "cas",
            Op::Get => "get",
            Op::Put => "put",
            Op::Append => "append",
            Op::Delete => "delete",
        }
    }

    /// Reads observe state; they are the ops whose `ok` carries a result.
    pub fn is_read(self) -> bool {
        matches!(self, Op::Read | Op::Get)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One history event, constructible without JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The client process; one outstanding operation per process.
    pub process: u64,
    /// invoke / ok / fail / info.
    pub kind: EventKind,
    /// The operation.
    pub f: Op,
    /// The key (kv always; registers optionally, one register per key).
    pub key: Option<Value>,
    /// Write value, cas pair, or (on a read's `ok`) the value read.
    pub value: Value,
}

impl Event {
    /// An event with no key.
    pub fn new(process: u64, kind: EventKind, f: Op, value: impl Into<Value>) -> Event {
        let value = value.into();
        Event {
            process,
            kind,
            f,
            key: None,
            value,
        }
    }

    /// The same event on `key`.
    pub fn with_key(mut self, key: impl Into<Value>) -> Event {
        self.key = Some(key.into());
        self
    }

    /// The event as one JSON-lines object (the format `parse_jsonl` reads),
    /// e.g. for dumping a simulator history to a file.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("process".into(), self.process.into());
        m.insert("type".into(), self.kind.as_str().into());
        m.insert("f".into(), self.f.as_str().into());
        if let Some(k) = &self.key {
            m.insert("key".into(), k.to_json());
        }
        m.insert("value".into(), self.value.to_json());
        serde_json::Value::Object(m)
    }
}

/// What is wrong with an input line or event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryErrorKind {
    /// The line could not be read (I/O error or invalid UTF-8).
    Io(String),
    /// Not valid JSON, or not a JSON object.
    Json(String),
    /// A required field is absent.
    MissingField(&'static str),
    /// `process` is not a non-negative integer.
    BadProcess(String),
    /// `type` is not invoke/ok/fail/info.
    UnknownType(String),
    /// `f` is not a known operation.
    UnknownF(String),
    /// `f` exists but the chosen model does not have it.
    FNotInModel {
        /// The operation.
        f: Op,
        /// The model name.
        model: &'static str,
    },
    /// A completion for a process with no outstanding invoke.
    ReturnWithoutInvoke {
        /// The process.
        process: u64,
    },
    /// An invoke while the same process still has one outstanding.
    DoubleInvoke {
        /// The process.
        process: u64,
        /// Line of the outstanding invoke.
        outstanding_line: u64,
    },
    /// A completion whose `f` differs from its invoke's.
    FMismatch {
        /// `f` of the invoke.
        invoked: Op,
        /// `f` of the completion.
        completed: Op,
        /// Line of the invoke.
        invoke_line: u64,
    },
    /// A completion whose `key` differs from its invoke's.
    KeyMismatch {
        /// Line of the invoke.
        invoke_line: u64,
    },
    /// `key` is not a string or number.
    BadKey(String),
    /// A kv operation without a key.
    MissingKey,
    /// A value of the wrong shape for the operation.
    BadValue(String),
    /// More than 2^32-1 distinct values or keys.
    TooManyValues,
}

/// A bad input, naming the 1-based line (or, for in-memory events, the
/// 1-based position of the event) where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryError {
    /// 1-based line number (event position for in-memory histories).
    pub line: u64,
    /// What is wrong.
    pub kind: HistoryErrorKind,
}

impl fmt::Display for HistoryErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HistoryErrorKind as K;
        match self {
            K::Io(e) => write!(f, "cannot read: {e}"),
            K::Json(e) => write!(f, "malformed JSON: {e}"),
            K::MissingField(x) => write!(f, "missing field \"{x}\""),
            K::BadProcess(p) => write!(f, "process must be a non-negative integer, got {p}"),
            K::UnknownType(t) => {
                write!(f, "unknown type \"{t}\" (expected invoke, ok, fail or info)")
            }
            K::UnknownF(x) => write!(f, "unknown f \"{x}\""),
            K::FNotInModel { f: op, model } => {
                write!(f, "f \"{op}\" is not an operation of model {model}")
            }
            K::ReturnWithoutInvoke { process } => {
                write!(f, "completion for process {process}, which has no outstanding invoke")
            }
            K::DoubleInvoke { process, outstanding_line } => write!(
                f,
                "process {process} invokes again while its invoke on line {outstanding_line} is outstanding"
            ),
            K::FMismatch { invoked, completed, invoke_line } => write!(
                f,
                "completion f \"{completed}\" differs from f \"{invoked}\" of its invoke on line {invoke_line}"
            ),
            K::KeyMismatch { invoke_line } => {
                write!(f, "completion key differs from the key of its invoke on line {invoke_line}")
            }
            K::BadKey(k) => write!(f, "key must be a string or a number, got {k}"),
            K::MissingKey => write!(f, "kv operations need a \"key\""),
            K::BadValue(e) => write!(f, "bad value: {e}"),
            K::TooManyValues => write!(f, "more than 2^32-1 distinct values or keys"),
        }
    }
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

impl std::error::Error for HistoryError {}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// No completion by the end of the history (counts as info).
    Pending,
    Ok,
    Fail,
    Info,
}

/// Marker for "no such line" (an operation that never completed).
pub(crate) const NO_LINE: u64 = u64::MAX;
/// Marker for "no key".
pub(crate) const NO_KEY: u32 = u32::MAX;

/// One operation: an invoke paired with its completion, values interned.
#[derive(Clone, Debug)]
pub(crate) struct OpRecord {
    pub process: u64,
    pub invoke_line: u64,
    /// Line of the completion (also of an `info`), `NO_LINE` if none.
    pub return_line: u64,
    pub key: u32,
    /// Write/put/append value, or cas `[expected, new]`; `NONE_ID` if unused.
    pub arg: [u32; 2],
    /// Value read by an `ok` read, else `NONE_ID`.
    pub out: u32,
    pub f: Op,
    pub status: Status,
}

/// A parsed history: operations in invoke order with interned values.
pub struct History {
    pub(crate) ops: Vec<OpRecord>,
    pub(crate) values: Interner,
    pub(crate) keys: Interner,
}

impl History {
    /// Builds a history from in-memory events in real-time order. Errors name
    /// the 1-based position of the offending event.
    pub fn from_events<I: IntoIterator<Item = Event>>(events: I) -> Result<History, HistoryError> {
        let mut b = HistoryBuilder::new();
        for e in events {
            b.push(e)?;
        }
        Ok(b.finish())
    }

    /// Parses JSON lines. Blank lines are skipped but still counted, so
    /// error line numbers match the file.
    pub fn parse_jsonl<R: BufRead>(reader: R) -> Result<History, HistoryError> {
        let mut b = HistoryBuilder::new();
        let io = |line, e| HistoryError {
            line,
            kind: HistoryErrorKind::Io(e),
        };
        for_each_line(reader, io, |line, text| {
            let ev = parse_event(text).map_err(|kind| HistoryError { line, kind })?;
            b.push_at(line, ev)
        })?;
        Ok(b.finish())
    }

    /// Parses JSON lines from a string.
    pub fn parse_jsonl_str(text: &str) -> Result<History, HistoryError> {
        History::parse_jsonl(text.as_bytes())
    }

    /// Number of operations (invocations).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub(crate) fn value(&self, id: u32) -> Value {
        if id == NONE_ID {
            Value::Null
        } else {
            self.values.get(id).clone()
        }
    }

    pub(crate) fn key(&self, id: u32) -> Option<Value> {
        (id != NO_KEY).then(|| self.keys.get(id).clone())
    }
}

/// Builds a [`History`] one event at a time, checking each event as it
/// arrives; cheap enough to record a simulator run directly.
pub struct HistoryBuilder {
    ops: Vec<OpRecord>,
    values: Interner,
    keys: Interner,
    /// process -> index of its outstanding op.
    outstanding: HashMap<u64, usize>,
    last_line: u64,
}

impl Default for HistoryBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HistoryBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        HistoryBuilder {
            ops: Vec::new(),
            values: Interner::new(),
            keys: Interner::new(),
            outstanding: HashMap::new(),
            last_line: 0,
        }
    }

    /// Appends the next event (real-time order). Errors name its position.
    pub fn push(&mut self, event: Event) -> Result<(), HistoryError> {
        self.push_at(self.last_line + 1, event)
    }

    /// Appends an event found on `line`; lines must increase, as they are
    /// the real-time order the search relies on.
    fn push_at(&mut self, line: u64, ev: Event) -> Result<(), HistoryError> {
        debug_assert!(line > self.last_line);
        self.last_line = line;
        let r = match ev.kind {
            EventKind::Invoke => self.invoke(line, ev),
            _ => self.complete(line, ev),
        };
        r.map_err(|kind| HistoryError { line, kind })
    }

    /// Finishes; ops still outstanding stay `Pending` (treated as info).
    pub fn finish(self) -> History {
        History {
            ops: self.ops,
            values: self.values,
            keys: self.keys,
        }
    }

    fn invoke(&mut self, line: u64, ev: Event) -> Result<(), HistoryErrorKind> {
        if let Some(&i) = self.outstanding.get(&ev.process) {
            let outstanding_line = self.ops[i].invoke_line;
            return Err(HistoryErrorKind::DoubleInvoke {
                process: ev.process,
                outstanding_line,
            });
        }
        let key = match ev.key {
            None => NO_KEY,
            Some(k) => self.intern_key(k)?,
        };
        let arg = self.invoke_arg(ev.f, ev.value)?;
        self.outstanding.insert(ev.process, self.ops.len());
        self.ops.push(OpRecord {
            process: ev.process,
            invoke_line: line,
            return_line: NO_LINE,
            key,
            arg,
            out: NONE_ID,
            f: ev.f,
            status: Status::Pending,
        });
        Ok(())
    }

    fn intern_key(&mut self, k: Value) -> Result<u32, HistoryErrorKind> {
        match k {
            Value::Str(_) | Value::Num(_) => {
                self.keys.intern(k).ok_or(HistoryErrorKind::TooManyValues)
            }
            other => Err(HistoryErrorKind::BadKey(other.to_string())),
        }
    }

    fn intern(&mut self, v: Value) -> Result<u32, HistoryErrorKind> {
        self.values.intern(v).ok_or(HistoryErrorKind::TooManyValues)
    }

    /// Interned arguments of an invoke, checking the value's shape.
    fn invoke_arg(&mut self, f: Op, v: Value) -> Result<[u32; 2], HistoryErrorKind> {
        let bad = |msg: &str, v: &Value| HistoryErrorKind::BadValue(format!("{msg}, got {v}"));
        match f {
            // A read's invoke value carries nothing (Jepsen sends null).
            Op::Read | Op::Get => Ok([NONE_ID; 2]),
            Op::Write | Op::Put | Op::Append if v.is_scalar() => Ok([self.intern(v)?, NONE_ID]),
            Op::Write | Op::Put | Op::Append => Err(bad("expected a scalar", &v)),
            Op::Delete if v == Value::Null => Ok([NONE_ID; 2]),
            Op::Delete => Err(bad("delete takes no value", &v)),
            Op::Cas => match v {
                Value::Pair(p) => {
                    let (a, b) = *p;
                    Ok([self.intern(a)?, self.intern(b)?])
                }
                other => Err(bad("cas expects [expected, new]", &other)),
            },
        }
    }

    fn complete(&mut self, line: u64, ev: Event) -> Result<(), HistoryErrorKind> {
        let process = ev.process;
        let idx = self
            .outstanding
            .remove(&process)
            .ok_or(HistoryErrorKind::ReturnWithoutInvoke { process })?;
        let (f, key, invoke_line) = {
            let op = &self.ops[idx];
            (op.f, op.key, op.invoke_line)
        };
        if f != ev.f {
            return Err(HistoryErrorKind::FMismatch {
                invoked: f,
                completed: ev.f,
                invoke_line,
            });
        }
        if let Some(k) = ev.key {
            if self.intern_key(k)? != key {
                return Err(HistoryErrorKind::KeyMismatch { invoke_line });
            }
        }
        let (status, out) = match ev.kind {
            EventKind::Ok if f.is_read() && ev.value.is_scalar() => {
                (Status::Ok, self.intern(ev.value)?)
            }
            EventKind::Ok if f.is_read() => {
                let msg = format!("a read returns a scalar, got {}", ev.value);
                return Err(HistoryErrorKind::BadValue(msg));
            }
            EventKind::Ok => {
                self.check_echo(idx, ev.value)?;
                (Status::Ok, NONE_ID)
            }
            EventKind::Fail => (Status::Fail, NONE_ID),
            _ => (Status::Info, NONE_ID),
        };
        let op = &mut self.ops[idx];
        op.status = status;
        op.out = out;
        op.return_line = line;
        Ok(())
    }

    /// The `ok` of a write-like op may repeat the invoked value (Jepsen does)
    /// or omit it; anything else means the history is confused.
    fn check_echo(&mut self, idx: usize, v: Value) -> Result<(), HistoryErrorKind> {
        if v == Value::Null {
            return Ok(());
        }
        let arg = self.ops[idx].arg;
        let echoed = match v {
            Value::Pair(p) => [self.intern(p.0)?, self.intern(p.1)?],
            s => [self.intern(s)?, NONE_ID],
        };
        if echoed == arg {
            Ok(())
        } else {
            let msg = "the completion's value differs from its invoke's value".to_string();
            Err(HistoryErrorKind::BadValue(msg))
        }
    }
}

/// The fields we read from a JSON line; others ("time", "index", ...) are
/// ignored by serde's default.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(default)]
    process: Option<serde_json::Value>,
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    f: Option<Cow<'a, str>>,
    #[serde(default)]
    key: Option<serde_json::Value>,
    #[serde(default)]
    value: Option<serde_json::Value>,
}

/// Parses one non-blank line into an event.
fn parse_event(text: &str) -> Result<Event, HistoryErrorKind> {
    use HistoryErrorKind as K;
    let raw: RawEvent<'_> = serde_json::from_str(text).map_err(|e| K::Json(json_msg(&e)))?;
    let process = match raw.process {
        None => return Err(K::MissingField("process")),
        Some(p) => p.as_u64().ok_or_else(|| K::BadProcess(p.to_string()))?,
    };
    let ty = raw.ty.ok_or(K::MissingField("type"))?;
    let kind = EventKind::parse(&ty).ok_or_else(|| K::UnknownType(ty.into_owned()))?;
    let f = raw.f.ok_or(K::MissingField("f"))?;
    let f = Op::parse(&f).ok_or_else(|| K::UnknownF(f.into_owned()))?;
    let key = match raw.key {
        None => None,
        Some(k @ (serde_json::Value::String(_) | serde_json::Value::Number(_))) => {
            Some(Value::from_json(k).map_err(K::BadKey)?)
        }
        Some(other) => return Err(K::BadKey(other.to_string())),
    };
    let value = match raw.value {
        None => Value::Null,
        Some(v) => Value::from_json(v).map_err(K::BadValue)?,
    };
    Ok(Event {
        process,
        kind,
        f,
        key,
        value,
    })
}

/// serde_json's message without its "at line 1 column N" suffix (the line is
/// always 1 within a single line); the column is kept.
fn json_msg(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let msg = match full.rfind(" at line ") {
        Some(i) => &full[..i],
        None => full.as_str(),
    };
    format!("{msg} (column {})", e.column())
}

/// Calls `each(line, text)` for every non-blank line of `reader` (trimmed), numbered
/// from 1 with blank lines counted, so error line numbers match the file; a read
/// error becomes `io(line, message)`. Both history formats are read through it.
pub(crate) fn for_each_line<R: BufRead, E>(
    mut reader: R,
    io: impl Fn(u64, String) -> E,
    mut each: impl FnMut(u64, &str) -> Result<(), E>,
) -> Result<(), E> {
    let mut buf = String::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        line += 1;
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| io(line, e.to_string()))?;
        if n == 0 {
            return Ok(());
        }
        let text = buf.trim();
        if !text.is_empty() {
            each(line, text)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the simulator dumps with `Event::to_json` reads back as the same
    /// event: every type, every operation, with and without a key, each kind of
    /// value.
    #[test]
    fn every_event_written_as_json_parses_back_the_same() {
        let kinds = [
            EventKind::Invoke,
            EventKind::Ok,
            EventKind::Fail,
            EventKind::Info,
        ];
        let ops = [
            (Op::Read, Value::Null),
            (Op::Write, Value::from(7i64)),
            (Op::Cas, Value::pair(1i64, 2i64)),
            (Op::Get, Value::from("v")),
            (Op::Put, Value::from("v")),
            (Op::Append, Value::from("x")),
            (Op::Delete, Value::from(true)),
        ];
        for kind in kinds {
            for (f, value) in &ops {
                let plain = Event::new(3, kind, *f, value.clone());
                for e in [plain.clone(), plain.with_key("k")] {
                    let line = e.to_json().to_string();
                    assert_eq!(parse_event(&line), Ok(e), "{line}");
                }
            }
        }
    }
}
