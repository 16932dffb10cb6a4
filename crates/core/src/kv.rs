//! The replicated key-value state machine shared by Paxos, Raft and Zab.
//!
//! String keys and values; operations `get`, `put`, `append`, `cas` and `delete`,
//! `add` on integer values, and `txn`: several of them applied atomically, all or
//! none (the bank and list-append workloads' transactions, one replicated command).
//! A missing key reads as absent (`None`) and compares equal to `""` in `cas`, which
//! matches the `kv` model of the history checker (a missing key reads `""`).
//!
//! [`Kv`] is an application of the contract in [`crate::app`]; protocols replicate
//! [`KvStateMachine`] = `Sessions<Kv>`, the KV with exactly-once client sessions
//! (every command carries `(client, seq)`; a retry gets the remembered result).

use crate::app::{SessionCommand, Sessions, StateMachine};
use crate::codec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A KV operation.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum KvOp {
    /// Read `key`.
    Get {
        /// Key to read.
        key: String,
    },
    /// Set `key` to `value`.
    Put {
        /// Key to write.
        key: String,
        /// New value.
        value: String,
    },
    /// Append `value` to the current value of `key` (`""` if missing).
    Append {
        /// Key to extend.
        key: String,
        /// Suffix.
        value: String,
    },
    /// Set `key` to `new` if its current value equals `expected` (missing ≡ `""`).
    Cas {
        /// Key to compare.
        key: String,
        /// Value required for the swap.
        expected: String,
        /// Value installed on success.
        new: String,
    },
    /// Remove `key`.
    Delete {
        /// Key to remove.
        key: String,
    },
    /// Add `delta` to the integer value of `key` (missing = 0). Refused, changing
    /// nothing, if the value is not an integer or the sum would be negative (an
    /// account cannot be overdrawn) or overflow.
    Add {
        /// Key to change.
        key: String,
        /// Amount (negative to subtract).
        delta: i64,
    },
    /// Apply `ops` in order as one atomic step: if any of them is refused (a `cas`
    /// whose expectation fails, a refused `add`, a nested `txn`), none takes effect.
    Txn {
        /// The operations.
        ops: Vec<KvOp>,
    },
}

impl KvOp {
    /// The key the operation touches (a transaction: its first operation's, `""`
    /// if empty).
    pub fn key(&self) -> &str {
        match self {
            KvOp::Get { key }
            | KvOp::Put { key, .. }
            | KvOp::Append { key, .. }
            | KvOp::Cas { key, .. }
            | KvOp::Delete { key }
            | KvOp::Add { key, .. } => key,
            KvOp::Txn { ops } => ops.first().map_or("", KvOp::key),
        }
    }

    /// `true` for operations that never change state (served by read paths that skip
    /// the log). A transaction goes through the log even if it only reads: it reads
    /// several keys at one point of the log.
    pub fn is_read_only(&self) -> bool {
        matches!(self, KvOp::Get { .. })
    }
}

/// The result of a KV operation.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum KvResult {
    /// Result of `get`: the value, or `None` if the key is missing.
    Value(Option<String>),
    /// `put`, `append`, `delete` or a successful `cas` applied.
    Written,
    /// A `cas` whose expectation did not hold; nothing changed.
    CasMismatch {
        /// The value found instead (`None` if missing).
        current: Option<String>,
    },
    /// An `add`, or a `txn` one of whose operations, was refused; nothing changed.
    Refused,
    /// A `txn` applied: one result per operation, in order.
    Txn(Vec<KvResult>),
    /// Result of `get` on a store that keeps concurrent writes (vvsync): every
    /// sibling, none if the key is missing or deleted.
    Siblings(Vec<String>),
}

/// A KV command as replicated through a log: one logical client request.
pub type KvCommand = SessionCommand<KvOp>;

impl SessionCommand<KvOp> {
    /// Appends `codec::encode(self)` to `out`, the command through [`Kv`]'s
    /// hand-written encoder (`Kv::encode_command`).
    #[inline]
    pub fn encode_into(&self, out: &mut impl codec::postcard_format::Sink) {
        self.encode_with::<Kv>(out);
    }

    /// Bytes [`encode_into`](SessionCommand::encode_into) writes.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        self.encoded_len_with::<Kv>()
    }
}

/// What [`KvStateMachine::apply`] did with a command.
pub type Applied = crate::app::Applied<KvResult>;

/// The KV application: string keys and values. Deterministic: the same commands in
/// the same order give the same state on every replica.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Kv {
    data: BTreeMap<String, String>,
}

impl StateMachine for Kv {
    type Command = KvOp;
    type Output = KvResult;
    /// A key.
    type Query = String;
    /// Its value, if present.
    type QueryOutput = Option<String>;

    // Always inline, with `execute`: `Sessions::apply` is instantiated in the
    // protocol's crate, and with either left out of line a Raft entry cost 2.8 %
    // more instructions (2,721 against 2,646, `raft_profile` under callgrind).
    #[inline(always)]
    fn apply(&mut self, op: &KvOp) -> KvResult {
        execute(&mut self.data, op)
    }

    fn query(&self, key: &String) -> Option<String> {
        self.data.get(key).cloned()
    }

    /// Written by hand: a replicated log encodes one command per entry, and
    /// postcard's serde path costs several times more. The match below stops the
    /// build if an operation is added without updating it;
    /// `command_encoding_matches_serde` checks the bytes.
    fn encode_command(op: &KvOp, out: &mut impl codec::postcard_format::Sink) {
        use codec::postcard_format::{put_str, put_varint};
        match op {
            KvOp::Get { key } => {
                put_varint(out, 0);
                put_str(out, key);
            }
            KvOp::Put { key, value } => {
                put_varint(out, 1);
                put_str(out, key);
                put_str(out, value);
            }
            KvOp::Append { key, value } => {
                put_varint(out, 2);
                put_str(out, key);
                put_str(out, value);
            }
            KvOp::Cas { key, expected, new } => {
                put_varint(out, 3);
                put_str(out, key);
                put_str(out, expected);
                put_str(out, new);
            }
            KvOp::Delete { key } => {
                put_varint(out, 4);
                put_str(out, key);
            }
            KvOp::Add { key, delta } => {
                put_varint(out, 5);
                put_str(out, key);
                put_varint(out, zigzag(*delta));
            }
            KvOp::Txn { ops } => {
                put_varint(out, 6);
                put_varint(out, ops.len() as u64);
                for op in ops {
                    Self::encode_command(op, out);
                }
            }
        }
    }

    fn encoded_command_len(op: &KvOp) -> usize {
        use codec::postcard_format::{str_len, varint_len};
        let op_len = match op {
            KvOp::Get { key } | KvOp::Delete { key } => str_len(key),
            KvOp::Put { key, value } | KvOp::Append { key, value } => str_len(key) + str_len(value),
            KvOp::Cas { key, expected, new } => str_len(key) + str_len(expected) + str_len(new),
            KvOp::Add { key, delta } => str_len(key) + varint_len(zigzag(*delta)),
            KvOp::Txn { ops } => {
                varint_len(ops.len() as u64)
                    + ops.iter().map(Self::encoded_command_len).sum::<usize>()
            }
        };
        // Variant indices are below 128: one byte.
        1 + op_len
    }
}

/// The replicated key-value state machine: [`Kv`] with exactly-once sessions.
pub type KvStateMachine = Sessions<Kv>;

impl Sessions<Kv> {
    /// An empty store.
    pub fn new() -> KvStateMachine {
        KvStateMachine::default()
    }

    /// Reads `key` without going through the log (for ReadIndex / read rounds,
    /// which establish linearizability by other means before calling this).
    pub fn read(&self, key: &str) -> Option<&str> {
        self.app().data.get(key).map(String::as_str)
    }

    /// Number of keys present.
    pub fn len(&self) -> usize {
        self.app().data.len()
    }

    /// `true` if no key is present.
    pub fn is_empty(&self) -> bool {
        self.app().data.is_empty()
    }
}

/// Carries out `op` on `data` (inlined into `Kv::apply`, see there).
#[inline(always)]
fn execute(data: &mut BTreeMap<String, String>, op: &KvOp) -> KvResult {
    match op {
        KvOp::Get { key } => KvResult::Value(data.get(key).cloned()),
        KvOp::Put { key, value } => {
            set(data, key, value);
            KvResult::Written
        }
        KvOp::Append { key, value } => {
            data.entry(key.clone()).or_default().push_str(value);
            KvResult::Written
        }
        KvOp::Cas { key, expected, new } => {
            let current = data.get(key);
            if current.map_or("", String::as_str) == expected {
                set(data, key, new);
                KvResult::Written
            } else {
                KvResult::CasMismatch {
                    current: current.cloned(),
                }
            }
        }
        KvOp::Delete { key } => {
            data.remove(key);
            KvResult::Written
        }
        KvOp::Add { key, delta } => match added(data.get(key), *delta) {
            Some(sum) => {
                set(data, key, &sum.to_string());
                KvResult::Written
            }
            None => KvResult::Refused,
        },
        KvOp::Txn { ops } => transact(data, ops),
    }
}

/// `value + delta` for an `add`, if the value is an integer (missing = 0) and the
/// sum is neither negative nor out of range.
fn added(value: Option<&String>, delta: i64) -> Option<i64> {
    let current: i64 = match value {
        None => 0,
        Some(v) => v.parse().ok()?,
    };
    current.checked_add(delta).filter(|&sum| sum >= 0)
}

/// Applies a transaction's operations in order, undoing the ones already applied if
/// a later one is refused. Out of line: the single-operation path stays small.
#[inline(never)]
fn transact(data: &mut BTreeMap<String, String>, ops: &[KvOp]) -> KvResult {
    let mut undo: Vec<(&str, Option<String>)> = Vec::new();
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let result = match op {
            KvOp::Txn { .. } => KvResult::Refused, // transactions do not nest
            KvOp::Get { .. } => execute(data, op),
            op => {
                undo.push((op.key(), data.get(op.key()).cloned()));
                execute(data, op)
            }
        };
        if matches!(result, KvResult::Refused | KvResult::CasMismatch { .. }) {
            for (key, old) in undo.into_iter().rev() {
                match old {
                    Some(value) => data.insert(key.to_owned(), value),
                    None => data.remove(key),
                };
            }
            return KvResult::Refused;
        }
        results.push(result);
    }
    KvResult::Txn(results)
}

/// postcard's encoding of an `i64`: zigzag, so small magnitudes are short varints.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// Sets `key` to `value`, reusing the existing allocations where it can.
fn set(data: &mut BTreeMap<String, String>, key: &str, value: &str) {
    match data.get_mut(key) {
        Some(v) => {
            v.clear();
            v.push_str(value);
        }
        None => {
            data.insert(key.to_owned(), value.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ClientId;
    use proptest::prelude::*;

    fn cmd(client: u64, seq: u64, op: KvOp) -> KvCommand {
        KvCommand {
            client: ClientId(client),
            seq,
            op,
        }
    }
    fn put(k: &str, v: &str) -> KvOp {
        KvOp::Put {
            key: k.into(),
            value: v.into(),
        }
    }
    fn get(k: &str) -> KvOp {
        KvOp::Get { key: k.into() }
    }

    #[test]
    fn every_operation_does_what_it_says() {
        let mut sm = KvStateMachine::new();
        let ap = |k: &str, v: &str| KvOp::Append {
            key: k.into(),
            value: v.into(),
        };
        let cas = |k: &str, e: &str, n: &str| KvOp::Cas {
            key: k.into(),
            expected: e.into(),
            new: n.into(),
        };
        assert_eq!(
            sm.apply(&cmd(1, 1, get("a"))),
            Applied::Fresh(KvResult::Value(None))
        );
        sm.apply(&cmd(1, 2, ap("a", "x")));
        sm.apply(&cmd(1, 3, ap("a", "y")));
        assert_eq!(sm.read("a"), Some("xy"));
        assert_eq!(
            sm.apply(&cmd(1, 4, cas("a", "zz", "q"))),
            Applied::Fresh(KvResult::CasMismatch {
                current: Some("xy".into())
            })
        );
        assert_eq!(
            sm.apply(&cmd(1, 5, cas("a", "xy", "q"))),
            Applied::Fresh(KvResult::Written)
        );
        assert_eq!(sm.read("a"), Some("q"));
        // A missing key compares equal to "" in cas, as in the checker's kv model.
        assert_eq!(
            sm.apply(&cmd(1, 6, cas("b", "", "1"))),
            Applied::Fresh(KvResult::Written)
        );
        sm.apply(&cmd(1, 7, KvOp::Delete { key: "a".into() }));
        assert_eq!(sm.read("a"), None);
        sm.apply(&cmd(1, 8, put("c", "v")));
        assert_eq!(sm.read("c"), Some("v"));
        assert_eq!(sm.applied_commands(), 8);
    }

    #[test]
    fn retry_of_latest_seq_is_not_applied_twice() {
        let mut sm = KvStateMachine::new();
        let ap = KvOp::Append {
            key: "k".into(),
            value: "x".into(),
        };
        assert_eq!(
            sm.apply(&cmd(7, 1, ap.clone())),
            Applied::Fresh(KvResult::Written)
        );
        assert_eq!(
            sm.apply(&cmd(7, 1, ap.clone())),
            Applied::Duplicate(KvResult::Written)
        );
        assert_eq!(sm.read("k"), Some("x"));
        // Another client's seq 1 is a different request.
        sm.apply(&cmd(8, 1, ap));
        assert_eq!(sm.read("k"), Some("xx"));
    }

    fn add(k: &str, delta: i64) -> KvOp {
        KvOp::Add {
            key: k.into(),
            delta,
        }
    }

    #[test]
    fn add_refuses_an_overdraft_and_a_non_integer() {
        let mut kv = Kv::default();
        assert_eq!(kv.apply(&add("a", 5)), KvResult::Written);
        assert_eq!(kv.apply(&add("a", -6)), KvResult::Refused);
        assert_eq!(kv.apply(&add("a", -5)), KvResult::Written);
        assert_eq!(kv.query(&"a".to_string()), Some("0".into()));
        assert_eq!(kv.apply(&add("a", i64::MAX)), KvResult::Written);
        assert_eq!(kv.apply(&add("a", 1)), KvResult::Refused, "overflow");
        kv.apply(&put("s", "x"));
        assert_eq!(kv.apply(&add("s", 1)), KvResult::Refused);
        assert_eq!(kv.query(&"s".to_string()), Some("x".into()));
    }

    /// A transaction is all or nothing: a refused operation anywhere in it undoes
    /// the ones before it, in reverse, back to the state before the transaction.
    #[test]
    fn a_transaction_applies_all_of_its_operations_or_none() {
        let mut kv = Kv::default();
        kv.apply(&put("a", "10"));
        let transfer = |from: &str, to: &str, n: i64| KvOp::Txn {
            ops: vec![add(from, -n), add(to, n)],
        };
        assert_eq!(
            kv.apply(&transfer("a", "b", 4)),
            KvResult::Txn(vec![KvResult::Written, KvResult::Written])
        );
        let before = kv.clone();
        // The debit applies, then the credit's cas fails: both undone.
        let refused = KvOp::Txn {
            ops: vec![
                add("a", -1),
                KvOp::Delete { key: "b".into() },
                put("c", "new"),
                KvOp::Cas {
                    key: "a".into(),
                    expected: "nope".into(),
                    new: "x".into(),
                },
            ],
        };
        assert_eq!(kv.apply(&refused), KvResult::Refused);
        assert_eq!(kv, before);
        assert_eq!(
            kv.apply(&transfer("b", "a", 5)),
            KvResult::Refused,
            "b holds 4"
        );
        assert_eq!(kv, before);
        let nested = KvOp::Txn {
            ops: vec![add("a", 1), KvOp::Txn { ops: vec![] }],
        };
        assert_eq!(
            kv.apply(&nested),
            KvResult::Refused,
            "transactions do not nest"
        );
        assert_eq!(kv, before);
        let reads = KvOp::Txn {
            ops: vec![get("a"), get("b"), get("z")],
        };
        assert_eq!(
            kv.apply(&reads),
            KvResult::Txn(vec![
                KvResult::Value(Some("6".into())),
                KvResult::Value(Some("4".into())),
                KvResult::Value(None),
            ])
        );
    }

    #[test]
    fn stale_seq_is_ignored() {
        let mut sm = KvStateMachine::new();
        sm.apply(&cmd(1, 5, put("k", "new")));
        assert_eq!(sm.apply(&cmd(1, 4, put("k", "old"))), Applied::Stale);
        assert_eq!(sm.read("k"), Some("new"));
        assert_eq!(sm.last_seq(ClientId(1)), Some(5));
    }

    #[test]
    fn restore_rejects_garbage() {
        assert!(KvStateMachine::restore(&[0xff, 0xff, 0xff]).is_err());
    }

    fn arb_op() -> impl Strategy<Value = KvOp> {
        let key = prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from);
        let val = prop::sample::select(vec!["", "1", "2", "xy"]).prop_map(String::from);
        prop_oneof![
            key.clone().prop_map(|key| KvOp::Get { key }),
            (key.clone(), val.clone()).prop_map(|(key, value)| KvOp::Put { key, value }),
            (key.clone(), val.clone()).prop_map(|(key, value)| KvOp::Append { key, value }),
            (key.clone(), val.clone(), val).prop_map(|(key, expected, new)| KvOp::Cas {
                key,
                expected,
                new
            }),
            key.clone().prop_map(|key| KvOp::Delete { key }),
            (key, -3i64..4).prop_map(|(key, delta)| KvOp::Add { key, delta }),
        ]
    }

    /// Single operations and transactions of them.
    fn arb_op_or_txn() -> impl Strategy<Value = KvOp> {
        prop_oneof![
            3 => arb_op(),
            1 => prop::collection::vec(arb_op(), 0..4).prop_map(|ops| KvOp::Txn { ops }),
        ]
    }

    /// Any operation with any strings (for encodings).
    fn arb_any_op() -> impl Strategy<Value = KvOp> {
        let s = || ".{0,200}";
        prop_oneof![
            s().prop_map(|key| KvOp::Get { key }),
            (s(), s()).prop_map(|(key, value)| KvOp::Put { key, value }),
            (s(), s()).prop_map(|(key, value)| KvOp::Append { key, value }),
            (s(), s(), s()).prop_map(|(key, expected, new)| KvOp::Cas { key, expected, new }),
            s().prop_map(|key| KvOp::Delete { key }),
            (s(), any::<i64>()).prop_map(|(key, delta)| KvOp::Add { key, delta }),
        ]
    }

    /// Any operation, or a transaction (possibly nested) of any.
    fn arb_any_op_or_txn() -> impl Strategy<Value = KvOp> {
        arb_any_op().prop_recursive(2, 16, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(|ops| KvOp::Txn { ops })
        })
    }

    /// (client, seq-delta, op): seq-delta 0 replays the client's latest seq (a retry).
    fn arb_cmds() -> impl Strategy<Value = Vec<(u64, u64, KvOp)>> {
        prop::collection::vec((0u64..3, 0u64..2, arb_op_or_txn()), 0..60)
    }

    proptest! {
        /// The hand-written encoding is postcard's, byte for byte.
        #[test]
        fn command_encoding_matches_serde(client in any::<u64>(), seq in any::<u64>(), op in arb_any_op_or_txn()) {
            let c = KvCommand { client: ClientId(client), seq, op };
            let mut out = vec![7]; // appends after what is there
            c.encode_into(&mut out);
            prop_assert_eq!(out.len() - 1, c.encoded_len());
            prop_assert_eq!(&out[1..], &codec::encode(&c)[..]);
            prop_assert_eq!(codec::decode::<KvCommand>(&out[1..]).unwrap(), c);
        }

        /// Snapshot then restore gives an identical machine that continues identically.
        #[test]
        fn snapshot_restore_roundtrip(cmds in arb_cmds(), split in 0usize..60) {
            let mut seqs = [0u64; 3];
            let mut all = Vec::new();
            for (c, d, op) in cmds {
                seqs[c as usize] += d;
                all.push(cmd(c, seqs[c as usize].max(1), op));
            }
            let split = split.min(all.len());
            let mut a = KvStateMachine::new();
            for c in &all[..split] { a.apply(c); }
            let mut b = KvStateMachine::restore(&a.snapshot()).unwrap();
            prop_assert_eq!(&a, &b);
            for c in &all[split..] {
                prop_assert_eq!(a.apply(c), b.apply(c));
            }
            prop_assert_eq!(a, b);
        }

        /// Dedup: replaying every command twice in a row gives the same state as once.
        #[test]
        fn duplicates_never_change_state(cmds in arb_cmds()) {
            let mut seqs = [0u64; 3];
            let mut once = KvStateMachine::new();
            let mut twice = KvStateMachine::new();
            for (c, _, op) in cmds {
                seqs[c as usize] += 1;
                let x = cmd(c, seqs[c as usize], op);
                let first = once.apply(&x);
                let t1 = twice.apply(&x);
                let t2 = twice.apply(&x);
                prop_assert_eq!(&first, &t1);
                prop_assert_eq!(t2, Applied::Duplicate(first.result().unwrap().clone()));
            }
            prop_assert_eq!(once, twice);
        }
    }

    /// Only a `Get` may skip the log; a write, and a transaction even if it only
    /// reads, goes through it.
    #[test]
    fn only_a_get_is_read_only() {
        assert!(get("a").is_read_only());
        assert!(!put("a", "1").is_read_only());
        let reads = KvOp::Txn {
            ops: vec![get("a"), get("b")],
        };
        assert!(
            !reads.is_read_only(),
            "a transaction reads at one point of the log"
        );
    }

    /// `len` counts the keys present: a put adds one, a put of the same key none, a
    /// delete removes it.
    #[test]
    fn len_counts_the_keys_present() {
        let mut sm = KvStateMachine::new();
        assert_eq!((sm.len(), sm.is_empty()), (0, true));
        sm.apply(&cmd(1, 1, put("a", "1")));
        sm.apply(&cmd(1, 2, put("b", "1")));
        sm.apply(&cmd(1, 3, put("a", "2")));
        assert_eq!((sm.len(), sm.is_empty()), (2, false));
        sm.apply(&cmd(1, 4, KvOp::Delete { key: "a".into() }));
        assert_eq!(sm.len(), 1);
    }
}
