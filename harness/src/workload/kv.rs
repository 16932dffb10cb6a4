//! The KV operation generator: get/put/append/cas/delete over a key space with a
//! popularity distribution, and how each operation and result reads in the history.

use super::client::{Completion, Invocation, Ops};
use super::multi::{PerKeyBank, Txns};
use super::{WorkloadConfig, WorkloadName};
use crate::history::{OpName, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult};

/// How keys are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `s` (YCSB uses 0.99): a few hot keys.
    Zipf(f64),
}

/// The operation mix, as probabilities that sum to at most 1 (the rest are puts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mix {
    /// `get`.
    pub read: f64,
    /// `append`.
    pub append: f64,
    /// `cas`.
    pub cas: f64,
    /// `delete`.
    pub delete: f64,
}

/// The KV workloads' operations: keys by popularity, operations by the mix, written
/// values unique (`<client>.<n>`), which makes histories easy to check — and the
/// multi-key transactions of the bank and list-append workloads ([`super::multi`]).
#[derive(Debug)]
pub struct KvOps {
    pub(super) rng: ChaCha8Rng,
    pub(super) mix: Mix,
    pub(super) keys: Vec<String>,
    /// Cumulative weights for Zipf; empty for uniform.
    cdf: Vec<f64>,
    pub(super) counter: u64,
    value_len: usize,
    pub(super) txns: Txns,
    /// The per-key bank's state per client: its transfer's credit not yet sent, and
    /// the next account its heal-phase flush writes.
    pub(super) per_key: HashMap<ClientId, PerKeyBank>,
}

impl KvOps {
    /// A generator for `cfg` drawing from `seed`.
    pub fn new(cfg: &WorkloadConfig, seed: u64) -> KvOps {
        let (prefix, txns) = match cfg.name {
            WorkloadName::Bank if cfg.bank_per_key => ("acct", Txns::BankPerKey),
            WorkloadName::Bank => ("acct", Txns::Bank),
            WorkloadName::ListAppend => ("l", Txns::ListAppend),
            WorkloadName::Set => ("s", Txns::None),
            WorkloadName::Write if cfg.shards_per_txn > 0 => {
                ("k", Txns::Writes(cfg.shards_per_txn))
            }
            _ => ("k", Txns::None),
        };
        let keys: Vec<String> = (0..cfg.keys.max(1))
            .map(|i| format!("{prefix}{i}"))
            .collect();
        let cdf = match cfg.key_dist {
            KeyDist::Uniform => Vec::new(),
            KeyDist::Zipf(s) => {
                let mut acc = 0.0;
                let mut cdf: Vec<f64> = (1..=keys.len())
                    .map(|r| {
                        acc += 1.0 / (r as f64).powf(s);
                        acc
                    })
                    .collect();
                for c in &mut cdf {
                    *c /= acc;
                }
                cdf
            }
        };
        KvOps {
            rng: ChaCha8Rng::seed_from_u64(seed),
            mix: cfg.mix,
            value_len: cfg.value_len,
            keys,
            cdf,
            counter: 0,
            txns,
            per_key: HashMap::new(),
        }
    }

    /// A key's index, by popularity.
    pub(super) fn key_index(&mut self) -> usize {
        if self.cdf.is_empty() {
            self.rng.gen_range(0..self.keys.len())
        } else {
            let u: f64 = self.rng.gen();
            self.cdf
                .partition_point(|&c| c < u)
                .min(self.keys.len() - 1)
        }
    }

    fn key(&mut self) -> String {
        let i = self.key_index();
        self.keys[i].clone()
    }

    /// A value never written before: `<client>.<n>`, zero-padded on the left to
    /// `value_len` bytes (still unique).
    pub(super) fn fresh(&mut self, client: ClientId) -> String {
        self.counter += 1;
        let fresh = format!("{}.{}", client.0, self.counter);
        match fresh.len() < self.value_len {
            true => format!("{fresh:0>width$}", width = self.value_len),
            false => fresh,
        }
    }

    /// A uniform duration in `[0, max]`.
    pub fn think(&mut self, max: Duration) -> Duration {
        Duration::from_nanos(self.rng.gen_range(0..=max.as_nanos() as u64))
    }

    /// A random node index in `0..n`.
    pub fn node(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n)
    }

    /// The next operation for a client whose last observed values are `seen`.
    /// Written values are unique (`<client>.<n>`), which makes histories easy to check.
    pub fn next_op(&mut self, client: ClientId, seen: &HashMap<String, String>) -> KvOp {
        match self.txns {
            Txns::None => {}
            Txns::Bank => return self.bank_op(seen),
            Txns::BankPerKey => return self.bank_per_key_op(client),
            Txns::ListAppend => return self.list_append_op(),
            Txns::Writes(shards) => return self.writes_op(shards, client),
        }
        let key = self.key();
        let fresh = self.fresh(client);
        let u: f64 = self.rng.gen();
        let m = self.mix;
        if u < m.read {
            KvOp::Get { key }
        } else if u < m.read + m.append {
            KvOp::Append {
                key,
                value: format!("{fresh};"),
            }
        } else if u < m.read + m.append + m.cas {
            let expected = seen.get(&key).cloned().unwrap_or_default();
            KvOp::Cas {
                key,
                expected,
                new: fresh,
            }
        } else if u < m.read + m.append + m.cas + m.delete {
            KvOp::Delete { key }
        } else {
            KvOp::Put { key, value: fresh }
        }
    }
}

impl Ops for KvOps {
    type Op = KvOp;
    type Result = KvResult;
    /// The last value the client observed per key (a `cas` expects it).
    type Seen = HashMap<String, String>;

    fn new(cfg: &WorkloadConfig, seed: u64) -> KvOps {
        KvOps::new(cfg, seed)
    }
    fn node(&mut self, nodes: usize) -> usize {
        KvOps::node(self, nodes)
    }
    fn think(&mut self, max: Duration) -> Duration {
        KvOps::think(self, max)
    }
    fn next_op(&mut self, client: ClientId, seen: &Self::Seen) -> KvOp {
        KvOps::next_op(self, client, seen)
    }
    /// The bank reads every account after the heal: the final state.
    fn heal_op(&mut self, client: ClientId, seen: &Self::Seen) -> KvOp {
        match self.txns {
            Txns::Bank => self.read_all(),
            Txns::BankPerKey => self.bank_flush_op(client),
            _ => KvOps::next_op(self, client, seen),
        }
    }
    fn check(&self, op: &KvOp, result: &KvResult) -> Result<(), String> {
        self.check_bank(op, result)
    }
    fn invocation(&self, op: &KvOp) -> Invocation {
        Invocation {
            f: op_name(op),
            key: match op {
                KvOp::Txn { .. } => String::new(),
                op => op.key().to_owned(),
            },
            value: invoke_value(op),
        }
    }
    fn completion(&self, op: &KvOp, result: KvResult, seen: &mut Self::Seen) -> Completion {
        if let KvOp::Txn { ops } = op {
            if self.is_opening(ops) {
                seen.insert(super::multi::ANSWERED_OPEN.to_owned(), String::new());
            }
        }
        match (op, result) {
            (KvOp::Txn { ops }, KvResult::Txn(results)) => {
                Completion::Ok(Value::Txn(self.micro_ok(ops, &results)))
            }
            (KvOp::Txn { .. }, KvResult::Refused | KvResult::CasMismatch { .. }) => {
                Completion::Refused
            }
            // A one-operation transaction answered with that operation's result.
            (KvOp::Txn { ops }, result) => {
                Completion::Ok(Value::Txn(self.micro_ok(ops, &[result])))
            }
            (KvOp::Add { .. }, KvResult::Refused) => Completion::Refused,
            (KvOp::Get { key }, KvResult::Siblings(v)) => {
                seen.insert(key.clone(), v.first().cloned().unwrap_or_default());
                Completion::Ok(Value::Siblings(v))
            }
            (KvOp::Get { key }, KvResult::Value(v)) => {
                let v = v.unwrap_or_default();
                seen.insert(key.clone(), v.clone());
                Completion::Ok(Value::Str(v))
            }
            (KvOp::Cas { key, .. }, KvResult::CasMismatch { current }) => {
                seen.insert(key.clone(), current.unwrap_or_default());
                Completion::Refused
            }
            (op, _) => Completion::Ok(invoke_value(op)),
        }
    }
}

fn op_name(op: &KvOp) -> OpName {
    match op {
        KvOp::Get { .. } => OpName::Get,
        KvOp::Put { .. } => OpName::Put,
        KvOp::Append { .. } => OpName::Append,
        KvOp::Cas { .. } => OpName::Cas,
        KvOp::Delete { .. } => OpName::Delete,
        // A lone `add` is not in any workload; it reads as the write it is.
        KvOp::Add { .. } => OpName::Put,
        KvOp::Txn { .. } => OpName::Txn,
    }
}

fn invoke_value(op: &KvOp) -> Value {
    match op {
        KvOp::Get { .. } | KvOp::Delete { .. } => Value::Null,
        KvOp::Put { value, .. } | KvOp::Append { value, .. } => Value::Str(value.clone()),
        KvOp::Cas { expected, new, .. } => Value::Pair(expected.clone(), new.clone()),
        KvOp::Add { delta, .. } => Value::Str(delta.to_string()),
        KvOp::Txn { ops } => Value::Txn(KvOps::micro_invoke(ops)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkloadName;
    use std::collections::HashSet;

    /// `write` is puts only, of distinct 16-byte values, spread over many keys.
    #[test]
    fn the_write_workload_puts_distinct_16_byte_values() {
        let cfg = WorkloadConfig::named(WorkloadName::Write, 1);
        let mut g = KvOps::new(&cfg, 5);
        let (mut values, mut keys) = (HashSet::new(), HashSet::new());
        for _ in 0..2_000 {
            let KvOp::Put { key, value } = g.next_op(ClientId(7), &HashMap::new()) else {
                panic!("only puts");
            };
            assert_eq!(value.len(), 16, "{value}");
            assert!(values.insert(value), "values are distinct");
            keys.insert(key);
        }
        assert!(keys.len() > 800, "{} keys", keys.len());
    }

    #[test]
    fn zipf_prefers_low_ranks() {
        let mut cfg = WorkloadConfig::named(WorkloadName::YcsbA, 1);
        cfg.keys = 100;
        let mut g = KvOps::new(&cfg, 3);
        let mut hot = 0;
        for _ in 0..10_000 {
            if g.key() == "k0" {
                hot += 1;
            }
        }
        // Rank 1 of Zipf(0.99) over 100 keys has probability ~0.19; uniform would be 0.01.
        assert!((1500..2500).contains(&hot), "{hot}");
    }
}
