//! What the checker finds: dependency kinds, anomaly classes and the anomalies.
//!
//! Class names follow Adya's generalized isolation levels as Elle reports them
//! (Kingsbury & Alvaro, VLDB 2020, §2 and §4): G0 (write cycle), G1a (aborted read),
//! G1b (intermediate read), G1c (circular information flow), G-single (read skew: a
//! cycle with exactly one anti-dependency), G2 (a cycle with several). The three
//! named findings that are not cycles say the lists themselves are impossible.

use std::fmt;

use serde_json::{json, Value as Json};

use super::history::TxnId;

/// A dependency between two transactions, on one key (Elle §4.2, list-append).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Write-write: `to` appended the element right after `from`'s in the key's order.
    Ww,
    /// Write-read: `to` read a list whose last element `from` appended.
    Wr,
    /// Read-write (anti-dependency): `from` read a list and `to` appended the next
    /// element after the last one `from` saw.
    Rw,
}

impl EdgeKind {
    /// Every kind.
    pub const ALL: [EdgeKind; 3] = [EdgeKind::Ww, EdgeKind::Wr, EdgeKind::Rw];

    /// The short name (`ww`, `wr`, `rw`).
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Ww => "ww",
            EdgeKind::Wr => "wr",
            EdgeKind::Rw => "rw",
        }
    }

    /// This kind as a bit of an edge-kind mask.
    pub(crate) fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// One edge of a reported cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Source transaction.
    pub from: TxnId,
    /// The dependency.
    pub kind: EdgeKind,
    /// The key it is on (JSON).
    pub key: Json,
    /// Target transaction.
    pub to: TxnId,
}

/// The class of an anomaly, in report order: strongest (most severe) first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyClass {
    /// A cycle of ww edges only (dirty write).
    G0,
    /// An ok read saw an element appended by a transaction that failed.
    G1a,
    /// A read saw a list ending at an element that is not its writer's last append to
    /// that key.
    G1b,
    /// A cycle of ww and wr edges, with at least one wr.
    G1c,
    /// A cycle with exactly one rw edge.
    GSingle,
    /// A cycle with two or more rw edges.
    G2,
    /// Two reads of a key, neither a prefix of the other: no single version order.
    IncompatibleOrder,
    /// A read list containing the same element twice.
    DuplicateElements,
    /// A read list containing an element no transaction appended to that key.
    NeverAppended,
}

impl AnomalyClass {
    /// The name reported (Elle's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyClass::G0 => "G0",
            AnomalyClass::G1a => "G1a",
            AnomalyClass::G1b => "G1b",
            AnomalyClass::G1c => "G1c",
            AnomalyClass::GSingle => "G-single",
            AnomalyClass::G2 => "G2",
            AnomalyClass::IncompatibleOrder => "incompatible-order",
            AnomalyClass::DuplicateElements => "duplicate-elements",
            AnomalyClass::NeverAppended => "never-appended",
        }
    }

    /// The class of a cycle, from its edges: no rw and only ww is G0, no rw is G1c,
    /// one rw is G-single, more is G2.
    pub fn of_cycle(steps: &[Step]) -> AnomalyClass {
        let rw = steps.iter().filter(|s| s.kind == EdgeKind::Rw).count();
        let wr = steps.iter().filter(|s| s.kind == EdgeKind::Wr).count();
        match (rw, wr) {
            (0, 0) => AnomalyClass::G0,
            (0, _) => AnomalyClass::G1c,
            (1, _) => AnomalyClass::GSingle,
            _ => AnomalyClass::G2,
        }
    }
}

impl fmt::Display for AnomalyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One read, for findings about what it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadSeen {
    /// The reading (ok) transaction.
    pub txn: TxnId,
    /// The key (JSON).
    pub key: Json,
    /// The list it read (JSON array).
    pub list: Json,
}

/// One anomaly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// A dependency cycle (G0, G1c, G-single or G2); `steps[0].from` is
    /// `steps.last().to`.
    Cycle {
        /// Its class (from [`AnomalyClass::of_cycle`]).
        class: AnomalyClass,
        /// The edges, in order.
        steps: Vec<Step>,
    },
    /// G1a: `read` contains `element`, appended by `writer`, which failed.
    AbortedRead {
        /// The read.
        read: ReadSeen,
        /// The failed transaction.
        writer: TxnId,
        /// The element it appended.
        element: Json,
    },
    /// G1b: `read` ends at `element`, but `writer` appended `later` to the key after it.
    IntermediateRead {
        /// The read.
        read: ReadSeen,
        /// The writer.
        writer: TxnId,
        /// The last element read.
        element: Json,
        /// The writer's final append to that key.
        later: Json,
    },
    /// `read` is not a prefix of `longest`, the longest read of the key.
    IncompatibleOrder {
        /// The read that does not fit.
        read: ReadSeen,
        /// The longest read of the same key.
        longest: ReadSeen,
    },
    /// `read` contains `element` more than once.
    DuplicateElements {
        /// The read.
        read: ReadSeen,
        /// The repeated element.
        element: Json,
    },
    /// `read` contains `element`, which no transaction appended to that key.
    NeverAppended {
        /// The read.
        read: ReadSeen,
        /// The element.
        element: Json,
    },
}

impl Anomaly {
    /// Its class.
    pub fn class(&self) -> AnomalyClass {
        match self {
            Anomaly::Cycle { class, .. } => *class,
            Anomaly::AbortedRead { .. } => AnomalyClass::G1a,
            Anomaly::IntermediateRead { .. } => AnomalyClass::G1b,
            Anomaly::IncompatibleOrder { .. } => AnomalyClass::IncompatibleOrder,
            Anomaly::DuplicateElements { .. } => AnomalyClass::DuplicateElements,
            Anomaly::NeverAppended { .. } => AnomalyClass::NeverAppended,
        }
    }

    /// The transactions it involves, in order of first mention.
    pub fn txns(&self) -> Vec<TxnId> {
        let mut out = Vec::new();
        let mut add = |t: TxnId| {
            if !out.contains(&t) {
                out.push(t);
            }
        };
        match self {
            Anomaly::Cycle { steps, .. } => steps.iter().for_each(|s| add(s.from)),
            Anomaly::AbortedRead { read, writer, .. }
            | Anomaly::IntermediateRead { read, writer, .. } => {
                add(read.txn);
                add(*writer);
            }
            Anomaly::IncompatibleOrder { read, longest } => {
                add(read.txn);
                add(longest.txn);
            }
            Anomaly::DuplicateElements { read, .. } | Anomaly::NeverAppended { read, .. } => {
                add(read.txn)
            }
        }
        out
    }

    /// The cycle's transactions, if it is one.
    pub fn cycle_members(&self) -> Option<Vec<TxnId>> {
        match self {
            Anomaly::Cycle { steps, .. } => Some(steps.iter().map(|s| s.from).collect()),
            _ => None,
        }
    }

    /// As JSON (keys and elements as they appear in the history).
    pub fn to_json(&self) -> Json {
        let read = |r: &ReadSeen| json!({ "txn": r.txn.0, "key": r.key, "list": r.list });
        let class = self.class().as_str();
        match self {
            Anomaly::Cycle { steps, .. } => json!({
                "class": class,
                "text": self.to_string(),
                "cycle": steps.iter().map(|s| json!({
                    "from": s.from.0, "kind": s.kind.as_str(), "key": s.key, "to": s.to.0,
                })).collect::<Vec<_>>(),
            }),
            Anomaly::AbortedRead {
                read: r,
                writer,
                element,
            } => json!({
                "class": class, "text": self.to_string(), "read": read(r),
                "writer": writer.0, "element": element,
            }),
            Anomaly::IntermediateRead {
                read: r,
                writer,
                element,
                later,
            } => json!({
                "class": class, "text": self.to_string(), "read": read(r),
                "writer": writer.0, "element": element, "later": later,
            }),
            Anomaly::IncompatibleOrder { read: r, longest } => json!({
                "class": class, "text": self.to_string(), "read": read(r), "longest": read(longest),
            }),
            Anomaly::DuplicateElements { read: r, element }
            | Anomaly::NeverAppended { read: r, element } => json!({
                "class": class, "text": self.to_string(), "read": read(r), "element": element,
            }),
        }
    }
}

/// A key as an edge label: strings bare (`x`), other scalars as JSON (`3`).
pub(crate) fn key_label(key: &Json) -> String {
    match key {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How many elements of a list the text shows: the first and last few.
const LIST_SHOWN_MAX: usize = 12;

/// A list for the text report, elided in the middle when long (JSON has it whole).
pub(crate) fn list_label(list: &Json) -> String {
    let Some(xs) = list.as_array().filter(|xs| xs.len() > LIST_SHOWN_MAX) else {
        return list.to_string();
    };
    let show = |xs: &[Json]| xs.iter().map(Json::to_string).collect::<Vec<_>>().join(",");
    let half = LIST_SHOWN_MAX / 2;
    format!(
        "[{},…{} more…,{}]",
        show(&xs[..half]),
        xs.len() - 2 * half,
        show(&xs[xs.len() - half..])
    )
}

/// One line, e.g. `G-single: T3 -rw(x)-> T7 -wr(y)-> T3`.
impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.class())?;
        let seen = |r: &ReadSeen| {
            format!(
                "{} read {} = {}",
                r.txn,
                key_label(&r.key),
                list_label(&r.list)
            )
        };
        match self {
            Anomaly::Cycle { steps, .. } => {
                if let Some(first) = steps.first() {
                    write!(f, "{}", first.from)?;
                }
                for s in steps {
                    write!(f, " -{}({})-> {}", s.kind.as_str(), key_label(&s.key), s.to)?;
                }
                Ok(())
            }
            Anomaly::AbortedRead { read, writer, element } => write!(
                f,
                "{}; {element} was appended by {writer}, which failed",
                seen(read)
            ),
            Anomaly::IntermediateRead { read, writer, element, later } => write!(
                f,
                "{}; {element} is an intermediate append of {writer}, which appended {later} after it",
                seen(read)
            ),
            Anomaly::IncompatibleOrder { read, longest } => write!(
                f,
                "{} is not a prefix of {} = {}",
                seen(read),
                longest.txn,
                list_label(&longest.list)
            ),
            Anomaly::DuplicateElements { read, element } => {
                write!(f, "{}; {element} appears more than once", seen(read))
            }
            Anomaly::NeverAppended { read, element } => write!(
                f,
                "{}; no transaction appended {element} to {}",
                seen(read),
                key_label(&read.key)
            ),
        }
    }
}
