//! Dependency inference for list-append (Elle §4.2, "Inferring version orders" and
//! "Inferring dependencies"), and the findings that need no cycle.
//!
//! Because elements are unique per key and a list records every append before it,
//! each `ok` read is a *prefix* of the key's version order, and the longest read of a
//! key is the longest known prefix. Every other read must be a prefix of it; one that
//! is not is an `incompatible-order` finding. From that order:
//! - ww: the writer of element *i* → the writer of element *i + 1*;
//! - wr: the writer of a read's last element → the reader;
//! - rw: the reader → the writer of the element right after the last one it read
//!   (after none: the first element).
//!
//! Nodes are all transactions; edges touch only `ok` and *observed* `info` ones (an
//! element read is in the order, so its writer committed). `fail`ed writers get no
//! edges: seeing their elements is G1a. Self-edges (a transaction reading its own
//! appends) are dropped.

use std::collections::{HashMap, HashSet};

use super::anomaly::{Anomaly, EdgeKind, ReadSeen};
use super::history::{ElemId, KeyId, MicroOp, TxnHistory, TxnId, TxnStatus};

/// An out-edge of the dependency graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    /// Target node (transaction index).
    pub to: u32,
    /// The dependency.
    pub kind: EdgeKind,
    /// The key it is on.
    pub key: KeyId,
}

/// The dependency graph: `out[t]` are the edges from transaction `t`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Graph {
    pub out: Vec<Vec<Edge>>,
}

impl Graph {
    fn new(nodes: usize) -> Graph {
        Graph {
            out: vec![Vec::new(); nodes],
        }
    }

    fn add(&mut self, from: TxnId, to: TxnId, kind: EdgeKind, key: KeyId) {
        if from != to {
            self.out[from.index()].push(Edge {
                to: to.0,
                kind,
                key,
            });
        }
    }

    /// Edge counts by kind (ww, wr, rw).
    pub fn counts(&self) -> [usize; 3] {
        let mut c = [0; 3];
        for e in self.out.iter().flatten() {
            c[e.kind as usize] += 1;
        }
        c
    }
}

/// Who appended an element to a key.
#[derive(Clone, Copy)]
struct Writer {
    txn: TxnId,
    /// The writer's final append to this key (G1b needs the writer's last element).
    last: ElemId,
}

/// One `ok` read: transaction and micro-op position.
#[derive(Clone, Copy)]
struct ReadAt {
    txn: TxnId,
    op: usize,
}

/// The graph and the findings that are not cycles.
pub(crate) struct Inference {
    pub graph: Graph,
    pub findings: Vec<Anomaly>,
}

/// Infers the dependency graph of `h`.
pub(crate) fn infer(h: &TxnHistory) -> Inference {
    let writers = writers(h);
    let reads = reads_by_key(h);
    let mut graph = Graph::new(h.len());
    let mut findings = Vec::new();
    for (k, reads) in reads.iter().enumerate() {
        let key = KeyId(k as u32);
        let order = version_order(h, reads);
        let pos: HashMap<ElemId, usize> = order
            .iter()
            .enumerate()
            .rev() // the first occurrence wins if the longest read repeats an element
            .map(|(i, &e)| (e, i))
            .collect();
        let writer_of = |e: ElemId| writers.get(&(key, e)).copied();
        check_reads(h, key, reads, order, &writer_of, &mut findings);
        // ww: consecutive elements of the version order.
        for pair in order.windows(2) {
            if let (Some(a), Some(b)) = (writer_of(pair[0]), writer_of(pair[1])) {
                if committed(h, a.txn) && committed(h, b.txn) {
                    graph.add(a.txn, b.txn, EdgeKind::Ww, key);
                }
            }
        }
        for r in reads {
            let list = read_list(h, *r);
            // wr: the writer of the last element read.
            let last = list.last().and_then(|&e| writer_of(e));
            if let Some(w) = last.filter(|w| committed(h, w.txn)) {
                graph.add(w.txn, r.txn, EdgeKind::Wr, key);
            }
            // rw: the writer of the next element in the order. For an incompatible
            // read, the element after its last one in the order (none if absent).
            let next = if order.starts_with(list) {
                Some(list.len())
            } else {
                list.last().and_then(|e| pos.get(e)).map(|p| p + 1)
            };
            let next = next.and_then(|i| order.get(i)).and_then(|&e| writer_of(e));
            if let Some(w) = next.filter(|w| committed(h, w.txn)) {
                graph.add(r.txn, w.txn, EdgeKind::Rw, key);
            }
        }
    }
    Inference { graph, findings }
}

/// Whether a transaction may carry edges: not a failed one.
fn committed(h: &TxnHistory, t: TxnId) -> bool {
    h.txn(t).status != TxnStatus::Fail
}

/// (key, element) → its writer, over every transaction (the parser guarantees one
/// append per key and element).
fn writers(h: &TxnHistory) -> HashMap<(KeyId, ElemId), Writer> {
    let mut out = HashMap::new();
    for t in &h.txns {
        let mut last: HashMap<KeyId, ElemId> = HashMap::new();
        for op in &t.ops {
            if let MicroOp::Append { key, elem } = *op {
                last.insert(key, elem);
            }
        }
        for op in &t.ops {
            if let MicroOp::Append { key, elem } = *op {
                let w = Writer {
                    txn: t.id,
                    last: last[&key],
                };
                out.insert((key, elem), w);
            }
        }
    }
    out
}

/// Every `ok` read, grouped by key id.
fn reads_by_key(h: &TxnHistory) -> Vec<Vec<ReadAt>> {
    let mut out = vec![Vec::new(); h.key_count()];
    for t in h.txns.iter().filter(|t| t.status == TxnStatus::Ok) {
        for (i, op) in t.ops.iter().enumerate() {
            if let MicroOp::Read { key, list: Some(_) } = op {
                out[key.0 as usize].push(ReadAt { txn: t.id, op: i });
            }
        }
    }
    out
}

fn read_list(h: &TxnHistory, r: ReadAt) -> &[ElemId] {
    match &h.txn(r.txn).ops[r.op] {
        MicroOp::Read { list: Some(l), .. } => l,
        _ => unreachable!("reads_by_key keeps ok reads only"),
    }
}

/// The longest read of a key (the first of equal length): its known version order.
fn version_order<'h>(h: &'h TxnHistory, reads: &[ReadAt]) -> &'h [ElemId] {
    let mut best: &[ElemId] = &[];
    for r in reads {
        let l = read_list(h, *r);
        if l.len() > best.len() {
            best = l;
        }
    }
    best
}

/// Findings about single reads: G1a, G1b, duplicate and never-appended elements, and
/// reads that are not a prefix of the version order.
fn check_reads(
    h: &TxnHistory,
    key: KeyId,
    reads: &[ReadAt],
    order: &[ElemId],
    writer_of: &dyn Fn(ElemId) -> Option<Writer>,
    findings: &mut Vec<Anomaly>,
) {
    let seen = |r: ReadAt| ReadSeen {
        txn: r.txn,
        key: h.key(key).clone(),
        list: h.list_json(read_list(h, r)),
    };
    let longest = reads
        .iter()
        .find(|r| read_list(h, **r).len() == order.len());
    let mut dup = HashSet::new();
    for &r in reads {
        let list = read_list(h, r);
        if !order.starts_with(list) {
            let longest = *longest.expect("a non-empty read exists if one is no prefix");
            findings.push(Anomaly::IncompatibleOrder {
                read: seen(r),
                longest: seen(longest),
            });
        }
        dup.clear();
        for &e in list {
            if !dup.insert(e) {
                findings.push(Anomaly::DuplicateElements {
                    read: seen(r),
                    element: h.elem(e).clone(),
                });
                continue;
            }
            match writer_of(e) {
                None => findings.push(Anomaly::NeverAppended {
                    read: seen(r),
                    element: h.elem(e).clone(),
                }),
                Some(w) if h.txn(w.txn).status == TxnStatus::Fail => {
                    findings.push(Anomaly::AbortedRead {
                        read: seen(r),
                        writer: w.txn,
                        element: h.elem(e).clone(),
                    })
                }
                Some(_) => {}
            }
        }
        // G1b: the last element is one its (other) writer later overwrote in the txn.
        if let Some(w) = list.last().and_then(|&e| writer_of(e).map(|w| (e, w))) {
            let (e, w) = w;
            if w.txn != r.txn && w.last != e && h.txn(w.txn).status != TxnStatus::Fail {
                findings.push(Anomaly::IntermediateRead {
                    read: seen(r),
                    writer: w.txn,
                    element: h.elem(e).clone(),
                    later: h.elem(w.last).clone(),
                });
            }
        }
    }
}
