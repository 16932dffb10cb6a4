//! The sequential specifications: register, cas-register and kv.
//!
//! After P-compositional splitting every partition is a single register
//! (one key), so a model state is one interned value id (`u32`). The kv
//! model is a register of strings whose initial value is `""`; `delete`
//! writes `""`, and `append` concatenates. Appended strings are new values
//! no one wrote; `states.rs` gives them ids per partition, on demand.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::history::{History, HistoryError, HistoryErrorKind, Op, OpRecord, Value, NO_KEY};
use super::intern::{EMPTY_ID, NONE_ID, NULL_ID};

/// The data type a history is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// read / write; one register per key (or a single one without keys).
    Register,
    /// read / write / cas.
    CasRegister,
    /// get / put / append / delete / cas on independent string keys.
    Kv,
}

impl Model {
    /// Every model, in CLI order.
    pub const ALL: [Model; 3] = [Model::Register, Model::CasRegister, Model::Kv];

    /// The CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Register => "register",
            Model::CasRegister => "cas-register",
            Model::Kv => "kv",
        }
    }

    /// Whether `f` is an operation of this model.
    pub fn allows(self, f: Op) -> bool {
        match self {
            Model::Register => matches!(f, Op::Read | Op::Write),
            Model::CasRegister => matches!(f, Op::Read | Op::Write | Op::Cas),
            Model::Kv => matches!(f, Op::Get | Op::Put | Op::Append | Op::Delete | Op::Cas),
        }
    }

    /// The state every partition starts in.
    pub(crate) fn initial_state(self) -> u32 {
        match self {
            Model::Register | Model::CasRegister => NULL_ID,
            Model::Kv => EMPTY_ID,
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Model {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Error of `Model::from_str`: names the bad input and the valid choices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseModelError(pub String);

impl fmt::Display for ParseModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown model \"{}\": expected one of register, cas-register, kv",
            self.0
        )
    }
}

impl std::error::Error for ParseModelError {}

impl FromStr for Model {
    type Err = ParseModelError;
    fn from_str(s: &str) -> Result<Model, ParseModelError> {
        Model::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ParseModelError(s.to_owned()))
    }
}

/// Checks that every op belongs to `model` and carries values it accepts.
pub(crate) fn validate(h: &History, model: Model) -> Result<(), HistoryError> {
    for op in &h.ops {
        validate_op(h, model, op)?;
    }
    Ok(())
}

fn validate_op(h: &History, model: Model, op: &OpRecord) -> Result<(), HistoryError> {
    let at = |line, kind| Err(HistoryError { line, kind });
    if !model.allows(op.f) {
        return at(
            op.invoke_line,
            HistoryErrorKind::FNotInModel {
                f: op.f,
                model: model.as_str(),
            },
        );
    }
    if model != Model::Kv {
        return Ok(());
    }
    if op.key == NO_KEY {
        return at(op.invoke_line, HistoryErrorKind::MissingKey);
    }
    let is_str = |id: u32| id == NONE_ID || matches!(h.values.get(id), Value::Str(_));
    if let Some(&bad) = op.arg.iter().find(|&&id| !is_str(id)) {
        let msg = format!("kv values are strings, got {}", h.values.get(bad));
        return at(op.invoke_line, HistoryErrorKind::BadValue(msg));
    }
    if !is_str(op.out) {
        let msg = format!("kv values are strings, got {}", h.values.get(op.out));
        return at(op.return_line, HistoryErrorKind::BadValue(msg));
    }
    Ok(())
}

/// One operation as the search sees it: a transition on a single register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Legal iff the state equals the value read.
    Read(u32),
    /// Sets the state (also `delete`, which writes `""`).
    Write(u32),
    /// Legal iff the state equals `.0`; sets it to `.1`.
    Cas(u32, u32),
    /// Concatenates to the (string) state.
    Append(u32),
}

impl Step {
    /// The transition of an op record. Reads use their `ok` value; callers
    /// drop reads without one (info reads constrain nothing).
    pub(crate) fn of(op: &OpRecord) -> Step {
        match op.f {
            Op::Read | Op::Get => Step::Read(op.out),
            Op::Write | Op::Put => Step::Write(op.arg[0]),
            Op::Delete => Step::Write(EMPTY_ID),
            Op::Cas => Step::Cas(op.arg[0], op.arg[1]),
            Op::Append => Step::Append(op.arg[0]),
        }
    }
}
