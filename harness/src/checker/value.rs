//! The values carried by events: JSON scalars and cas pairs.

use std::fmt;

use serde::{Serialize, Serializer};

/// A value carried by an event: a JSON scalar, or the `[expected, new]` pair
/// of a `cas`. Scalars compare exactly: `1` and `"1"` differ, as do `1` and
/// `1.0` (they are distinct JSON numbers).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// JSON `null`; also what a register never written reads.
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// A JSON number, kept in serde_json's exact representation.
    Num(serde_json::Number),
    /// A JSON string.
    Str(String),
    /// The `[expected, new]` argument of a `cas`; both halves are scalars.
    Pair(Box<(Value, Value)>),
}

impl Value {
    /// The `[expected, new]` value of a cas.
    pub fn pair(expected: impl Into<Value>, new: impl Into<Value>) -> Value {
        Value::Pair(Box::new((expected.into(), new.into())))
    }

    /// True for everything but a pair.
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Value::Pair(_))
    }

    /// Converts parsed JSON, rejecting objects and arrays other than a pair
    /// of scalars. The error text describes the offending shape.
    pub fn from_json(v: serde_json::Value) -> Result<Value, String> {
        use serde_json::Value as J;
        match v {
            J::Null => Ok(Value::Null),
            J::Bool(b) => Ok(Value::Bool(b)),
            J::Number(n) => Ok(Value::Num(n)),
            J::String(s) => Ok(Value::Str(s)),
            J::Array(items) if items.len() == 2 => {
                let mut it = items.into_iter().map(Value::from_json);
                match (it.next(), it.next()) {
                    (Some(Ok(a)), Some(Ok(b))) if a.is_scalar() && b.is_scalar() => {
                        Ok(Value::pair(a, b))
                    }
                    _ => Err("a pair must hold two JSON scalars".into()),
                }
            }
            J::Array(items) => Err(format!(
                "expected a scalar or a two-element array, got an array of {}",
                items.len()
            )),
            J::Object(_) => Err("expected a scalar or a two-element array, got an object".into()),
        }
    }

    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Num(n) => J::Number(n.clone()),
            Value::Str(s) => J::String(s.clone()),
            Value::Pair(p) => J::Array(vec![p.0.to_json(), p.1.to_json()]),
        }
    }
}

impl fmt::Display for Value {
    /// Renders as compact JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Num(n.into())
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Num(n.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
