//! A deliberately naive reference checker for tests: tries every order of
//! every subset of operations, straight from the definition. Exponential;
//! only for histories of a handful of ops.

use std::collections::{BTreeMap, HashMap};

use super::history::{Event, EventKind, Op, Value};
use super::model::Model;

/// One operation read straight off the events.
#[derive(Clone, Debug)]
struct BOp {
    f: Op,
    key: Option<String>,
    arg: Value,
    /// Value returned by an ok read.
    out: Option<Value>,
    call: usize,
    /// `None` for info / never completed: it may take effect any time, or never.
    ret: Option<usize>,
}

type State = BTreeMap<Option<String>, Value>;

/// True iff some order of the ok ops plus any subset of the info ops
/// respects real time and the sequential spec.
pub(crate) fn linearizable(model: Model, events: &[Event]) -> bool {
    let ops = pair(events);
    let mut placed = vec![false; ops.len()];
    dfs(model, &ops, &mut placed, &State::new())
}

fn pair(events: &[Event]) -> Vec<BOp> {
    let mut ops: Vec<(BOp, bool)> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for (t, e) in events.iter().enumerate() {
        let key = e.key.as_ref().map(|k| k.to_string());
        if e.kind == EventKind::Invoke {
            open.insert(e.process, ops.len());
            let op = BOp {
                f: e.f,
                key,
                arg: e.value.clone(),
                out: None,
                call: t,
                ret: None,
            };
            ops.push((op, false));
            continue;
        }
        let i = open
            .remove(&e.process)
            .expect("test histories are well formed");
        match e.kind {
            EventKind::Ok => {
                ops[i].0.ret = Some(t);
                if e.f == Op::Read || e.f == Op::Get {
                    ops[i].0.out = Some(e.value.clone());
                }
            }
            EventKind::Fail => ops[i].1 = true,
            _ => {}
        }
    }
    // A failed op did not happen.
    ops.into_iter()
        .filter(|(_, failed)| !failed)
        .map(|(op, _)| op)
        .collect()
}

fn dfs(model: Model, ops: &[BOp], placed: &mut [bool], state: &State) -> bool {
    let all_ok_placed = ops
        .iter()
        .zip(placed.iter())
        .all(|(o, &p)| p || o.ret.is_none());
    if all_ok_placed {
        return true;
    }
    for x in 0..ops.len() {
        if placed[x] {
            continue;
        }
        // x may come next only if no unplaced op returned before x was called.
        let blocked =
            (0..ops.len()).any(|y| !placed[y] && ops[y].ret.is_some_and(|r| r < ops[x].call));
        if blocked {
            continue;
        }
        if let Some(next) = step(model, state, &ops[x]) {
            placed[x] = true;
            if dfs(model, ops, placed, &next) {
                return true;
            }
            placed[x] = false;
        }
    }
    false
}

fn step(model: Model, state: &State, op: &BOp) -> Option<State> {
    let init = if model == Model::Kv {
        Value::from("")
    } else {
        Value::Null
    };
    let cur = state.get(&op.key).cloned().unwrap_or(init.clone());
    let mut next = state.clone();
    match op.f {
        Op::Read | Op::Get => match &op.out {
            Some(v) if *v != cur => return None,
            _ => {}
        },
        Op::Write | Op::Put => {
            next.insert(op.key.clone(), op.arg.clone());
        }
        Op::Delete => {
            next.insert(op.key.clone(), init);
        }
        Op::Append => {
            let (Value::Str(a), Value::Str(b)) = (&cur, &op.arg) else {
                return None;
            };
            next.insert(op.key.clone(), Value::Str(format!("{a}{b}")));
        }
        Op::Cas => {
            let Value::Pair(p) = &op.arg else { return None };
            if p.0 != cur {
                return None;
            }
            next.insert(op.key.clone(), p.1.clone());
        }
    }
    Some(next)
}
