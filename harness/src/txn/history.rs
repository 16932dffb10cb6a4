//! List-append transaction histories: transactions, micro-ops and the JSON-lines parser.
//!
//! One event per line, Jepsen/Elle conventions:
//! `{"process": 0, "type": "invoke", "f": "txn", "value": [["append", "x", 3], ["r", "y", null]]}`.
//! The `ok` completion repeats the micro-ops with each read's list filled in
//! (`["r", "y", [1, 2]]`); `fail` = did not commit; `info` (or no completion by the end
//! of the history) = unknown. Keys and elements are JSON scalars compared exactly
//! (`1` ≠ `"1"` ≠ `1.0`), interned to dense ids.

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

use serde_json::Value as Json;

/// A transaction: its position in invoke order (`T0`, `T1`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId(pub u32);

impl TxnId {
    /// The index into [`TxnHistory::txns`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

/// An interned key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

/// An interned element (ids are shared by all keys; uniqueness is per key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ElemId(pub u32);

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnStatus {
    /// Committed; its reads carry the lists read.
    Ok,
    /// Definitely did not commit.
    Fail,
    /// Unknown (an `info`, or no completion): may or may not have committed.
    Info,
}

impl TxnStatus {
    /// The Jepsen `type` name.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnStatus::Ok => "ok",
            TxnStatus::Fail => "fail",
            TxnStatus::Info => "info",
        }
    }
}

/// One micro-operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MicroOp {
    /// `["append", key, element]`.
    Append {
        /// The key.
        key: KeyId,
        /// The appended element.
        elem: ElemId,
    },
    /// `["r", key, list]`; the list is known only in an `ok` transaction.
    Read {
        /// The key.
        key: KeyId,
        /// The list read (`Some` exactly when the transaction is `ok`).
        list: Option<Vec<ElemId>>,
    },
}

/// One transaction: invoke paired with its completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// Position in invoke order.
    pub id: TxnId,
    /// The client process.
    pub process: u64,
    /// How it ended.
    pub status: TxnStatus,
    /// 1-based line of the invoke.
    pub invoke_line: u64,
    /// 1-based line of the completion (`None`: never completed, counted as info).
    pub complete_line: Option<u64>,
    /// The micro-ops, from the `ok` completion when there is one, else from the invoke.
    pub ops: Vec<MicroOp>,
}

/// A parsed list-append history.
#[derive(Clone, Debug, Default)]
pub struct TxnHistory {
    /// Transactions in invoke order; `txns[i].id == TxnId(i)`.
    pub txns: Vec<Txn>,
    keys: Scalars,
    elems: Scalars,
}

/// Interned JSON scalars, compared by their exact JSON text. Integers, the common
/// case, skip the text (an `i64` prints one way only).
#[derive(Clone, Debug, Default)]
struct Scalars {
    values: Vec<Json>,
    ints: HashMap<i64, u32>,
    ids: HashMap<String, u32>,
}

impl Scalars {
    fn intern(&mut self, v: &Json) -> Result<u32, TxnErrorKind> {
        let next = u32::try_from(self.values.len()).map_err(|_| TxnErrorKind::TooManyValues);
        if let Some(i) = v.as_i64() {
            if let Some(&id) = self.ints.get(&i) {
                return Ok(id);
            }
            let id = next?;
            self.values.push(v.clone());
            self.ints.insert(i, id);
            return Ok(id);
        }
        let text = v.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return Ok(id);
        }
        let id = next?;
        self.values.push(v.clone());
        self.ids.insert(text, id);
        Ok(id)
    }
}

impl TxnHistory {
    /// Parses JSON lines; blank lines are skipped but counted, so error lines match
    /// the file.
    pub fn parse_jsonl<R: BufRead>(reader: R) -> Result<TxnHistory, TxnHistoryError> {
        let mut p = Parser::default();
        let io = |line, e| TxnHistoryError {
            line,
            kind: TxnErrorKind::Io(e),
        };
        crate::checker::history::for_each_line(reader, io, |line, text| {
            p.event(line, text)
                .map_err(|kind| TxnHistoryError { line, kind })
        })?;
        Ok(p.finish())
    }

    /// Parses JSON lines from a string.
    pub fn parse_str(text: &str) -> Result<TxnHistory, TxnHistoryError> {
        TxnHistory::parse_jsonl(text.as_bytes())
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// True when there are no transactions.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Number of distinct keys.
    pub fn key_count(&self) -> usize {
        self.keys.values.len()
    }

    /// The JSON value of a key.
    pub fn key(&self, k: KeyId) -> &Json {
        &self.keys.values[k.0 as usize]
    }

    /// The JSON value of an element.
    pub fn elem(&self, e: ElemId) -> &Json {
        &self.elems.values[e.0 as usize]
    }

    /// The transaction `id`.
    pub fn txn(&self, id: TxnId) -> &Txn {
        &self.txns[id.index()]
    }

    /// A micro-op as JSON, the way the history writes it.
    pub fn op_json(&self, op: &MicroOp) -> Json {
        match op {
            MicroOp::Append { key, elem } => Json::Array(vec![
                "append".into(),
                self.key(*key).clone(),
                self.elem(*elem).clone(),
            ]),
            MicroOp::Read { key, list } => {
                let list = match list {
                    Some(l) => self.list_json(l),
                    None => Json::Null,
                };
                Json::Array(vec!["r".into(), self.key(*key).clone(), list])
            }
        }
    }

    /// A list of elements as JSON.
    pub fn list_json(&self, list: &[ElemId]) -> Json {
        Json::Array(list.iter().map(|&e| self.elem(e).clone()).collect())
    }
}

/// A bad input, naming the 1-based line where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnHistoryError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub kind: TxnErrorKind,
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnErrorKind {
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
    /// `f` is not `txn`.
    UnknownF(String),
    /// `value` is not a list of micro-ops.
    BadValue(String),
    /// Micro-op `index` (0-based) has the wrong shape.
    BadMicroOp {
        /// Position in the transaction.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// A completion whose micro-ops differ from its invoke's.
    Mismatch {
        /// Line of the invoke.
        invoke_line: u64,
        /// What differs.
        why: String,
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
    /// The same element appended to the same key twice: list-append inference needs
    /// unique elements per key.
    DuplicateAppend {
        /// The key, as JSON.
        key: String,
        /// The element, as JSON.
        elem: String,
        /// Line of the first append.
        first_line: u64,
    },
    /// More than 2^32-1 transactions, keys or elements.
    TooManyValues,
}

impl fmt::Display for TxnErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TxnErrorKind as K;
        match self {
            K::Io(e) => write!(f, "cannot read: {e}"),
            K::Json(e) => write!(f, "malformed JSON: {e}"),
            K::MissingField(x) => write!(f, "missing field \"{x}\""),
            K::BadProcess(p) => write!(f, "process must be a non-negative integer, got {p}"),
            K::UnknownType(t) => {
                write!(f, "unknown type \"{t}\" (expected invoke, ok, fail or info)")
            }
            K::UnknownF(x) => write!(f, "unknown f \"{x}\" (model list-append has only \"txn\")"),
            K::BadValue(v) => write!(f, "value must be a list of micro-ops, got {v}"),
            K::BadMicroOp { index, why } => write!(f, "micro-op {index}: {why}"),
            K::Mismatch { invoke_line, why } => {
                write!(f, "completion differs from its invoke on line {invoke_line}: {why}")
            }
            K::ReturnWithoutInvoke { process } => {
                write!(f, "completion for process {process}, which has no outstanding invoke")
            }
            K::DoubleInvoke { process, outstanding_line } => write!(
                f,
                "process {process} invokes again while its invoke on line {outstanding_line} is outstanding"
            ),
            K::DuplicateAppend { key, elem, first_line } => write!(
                f,
                "element {elem} appended to key {key} again (first on line {first_line}); \
                 list-append needs unique elements per key"
            ),
            K::TooManyValues => write!(f, "more than 2^32-1 transactions, keys or elements"),
        }
    }
}

impl fmt::Display for TxnHistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

impl std::error::Error for TxnHistoryError {}

/// Which event a micro-op list comes from: reads carry `null` in an invoke, a list in
/// an `ok`, either in a `fail`/`info` (ignored there).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Invoke,
    Ok,
    Other,
}

#[derive(Default)]
struct Parser {
    h: TxnHistory,
    /// process -> its outstanding transaction.
    outstanding: HashMap<u64, TxnId>,
    /// (key, element) -> line of its append, for the uniqueness rule.
    appended: HashMap<(KeyId, ElemId), u64>,
}

impl Parser {
    fn event(&mut self, line: u64, text: &str) -> Result<(), TxnErrorKind> {
        let v: Json = serde_json::from_str(text).map_err(|e| TxnErrorKind::Json(e.to_string()))?;
        let Json::Object(obj) = v else {
            return Err(TxnErrorKind::Json("not a JSON object".into()));
        };
        let field = |name: &'static str| obj.get(name).ok_or(TxnErrorKind::MissingField(name));
        let process = field("process")?;
        let process = process
            .as_u64()
            .ok_or_else(|| TxnErrorKind::BadProcess(process.to_string()))?;
        let kind = match field("type")? {
            Json::String(s) => s.as_str(),
            other => return Err(TxnErrorKind::UnknownType(other.to_string())),
        };
        match field("f")? {
            Json::String(s) if s == "txn" => {}
            Json::String(s) => return Err(TxnErrorKind::UnknownF(s.clone())),
            other => return Err(TxnErrorKind::UnknownF(other.to_string())),
        }
        let value = obj.get("value").unwrap_or(&Json::Null);
        match kind {
            "invoke" => self.invoke(line, process, value),
            "ok" => self.complete(line, process, TxnStatus::Ok, value),
            "fail" => self.complete(line, process, TxnStatus::Fail, value),
            "info" => self.complete(line, process, TxnStatus::Info, value),
            other => Err(TxnErrorKind::UnknownType(other.to_owned())),
        }
    }

    fn invoke(&mut self, line: u64, process: u64, value: &Json) -> Result<(), TxnErrorKind> {
        if let Some(&t) = self.outstanding.get(&process) {
            return Err(TxnErrorKind::DoubleInvoke {
                process,
                outstanding_line: self.h.txn(t).invoke_line,
            });
        }
        let ops = self.micro_ops(value, Phase::Invoke)?;
        for op in &ops {
            let MicroOp::Append { key, elem } = *op else {
                continue;
            };
            if let Some(&first_line) = self.appended.get(&(key, elem)) {
                return Err(TxnErrorKind::DuplicateAppend {
                    key: self.h.key(key).to_string(),
                    elem: self.h.elem(elem).to_string(),
                    first_line,
                });
            }
            self.appended.insert((key, elem), line);
        }
        let id = TxnId(u32::try_from(self.h.txns.len()).map_err(|_| TxnErrorKind::TooManyValues)?);
        self.h.txns.push(Txn {
            id,
            process,
            status: TxnStatus::Info,
            invoke_line: line,
            complete_line: None,
            ops,
        });
        self.outstanding.insert(process, id);
        Ok(())
    }

    fn complete(
        &mut self,
        line: u64,
        process: u64,
        status: TxnStatus,
        value: &Json,
    ) -> Result<(), TxnErrorKind> {
        let id = self
            .outstanding
            .remove(&process)
            .ok_or(TxnErrorKind::ReturnWithoutInvoke { process })?;
        let phase = if status == TxnStatus::Ok {
            Phase::Ok
        } else {
            Phase::Other
        };
        // A fail/info may omit its value; an ok must carry its reads.
        let ops = if value.is_null() && phase == Phase::Other {
            None
        } else {
            Some(self.micro_ops(value, phase)?)
        };
        let txn = &self.h.txns[id.index()];
        if let Some(ops) = &ops {
            same_shape(&txn.ops, ops).map_err(|why| TxnErrorKind::Mismatch {
                invoke_line: txn.invoke_line,
                why,
            })?;
        }
        let txn = &mut self.h.txns[id.index()];
        txn.status = status;
        txn.complete_line = Some(line);
        if let (TxnStatus::Ok, Some(ops)) = (status, ops) {
            txn.ops = ops;
        }
        Ok(())
    }

    fn micro_ops(&mut self, value: &Json, phase: Phase) -> Result<Vec<MicroOp>, TxnErrorKind> {
        let Json::Array(items) = value else {
            return Err(TxnErrorKind::BadValue(value.to_string()));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                self.micro_op(item, phase)
                    .map_err(|why| TxnErrorKind::BadMicroOp { index, why })
            })
            .collect()
    }

    fn micro_op(&mut self, item: &Json, phase: Phase) -> Result<MicroOp, String> {
        let shape =
            || format!("expected [\"append\", key, element] or [\"r\", key, list], got {item}");
        let Some([f, key, arg]) = item
            .as_array()
            .map(Vec::as_slice)
            .and_then(|a| <&[Json; 3]>::try_from(a).ok())
        else {
            return Err(shape());
        };
        if !(key.is_string() || key.is_number()) {
            return Err(format!("key must be a string or a number, got {key}"));
        }
        let key = KeyId(self.h.keys.intern(key).map_err(|e| e.to_string())?);
        match f.as_str() {
            Some("append") => {
                let elem = self.elem(arg)?;
                Ok(MicroOp::Append { key, elem })
            }
            Some("r") => {
                let list = match (phase, arg) {
                    (Phase::Invoke | Phase::Other, Json::Null) => None,
                    (Phase::Invoke, _) => {
                        return Err(format!(
                            "a read's value in an invoke must be null, got {arg}"
                        ))
                    }
                    (Phase::Ok | Phase::Other, Json::Array(xs)) => Some(
                        xs.iter()
                            .map(|x| self.elem(x))
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                    (Phase::Ok | Phase::Other, _) => {
                        return Err(format!(
                            "a read's value in a completion must be a list, got {arg}"
                        ))
                    }
                };
                // Reads of a fail/info tell nothing: they may be stale or never happened.
                let list = if phase == Phase::Ok { list } else { None };
                Ok(MicroOp::Read { key, list })
            }
            _ => Err(shape()),
        }
    }

    fn elem(&mut self, v: &Json) -> Result<ElemId, String> {
        if v.is_null() || v.is_array() || v.is_object() {
            return Err(format!(
                "an element must be a non-null JSON scalar, got {v}"
            ));
        }
        self.h
            .elems
            .intern(v)
            .map(ElemId)
            .map_err(|e| e.to_string())
    }

    fn finish(self) -> TxnHistory {
        // Invokes still outstanding stay `Info` with no completion line.
        self.h
    }
}

/// Checks that a completion repeats its invoke's micro-ops (reads may differ only in
/// the list read).
fn same_shape(invoked: &[MicroOp], completed: &[MicroOp]) -> Result<(), String> {
    if invoked.len() != completed.len() {
        return Err(format!(
            "{} micro-ops, the invoke has {}",
            completed.len(),
            invoked.len()
        ));
    }
    for (i, (a, b)) in invoked.iter().zip(completed).enumerate() {
        let same = match (a, b) {
            (MicroOp::Append { .. }, MicroOp::Append { .. }) => a == b,
            (MicroOp::Read { key: x, .. }, MicroOp::Read { key: y, .. }) => x == y,
            _ => false,
        };
        if !same {
            return Err(format!("micro-op {i} differs"));
        }
    }
    Ok(())
}
