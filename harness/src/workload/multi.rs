//! The multi-key transaction workloads. Each transaction is one [`KvOp::Txn`]: one
//! replicated command on Raft, Multi-Paxos and Zab (applied atomically by
//! [`synod_core::Kv`]), one cross-shard transaction on 2PC.
//!
//! * **bank** — accounts `acct0…` that each client first asks to open with
//!   [`OPENING_BALANCE`] until it is answered (one transaction of `cas "" → 100` on
//!   every account, so only the first to commit opens them, the others are refused,
//!   and a retry can never reset them), then
//!   transfers of 1–[`TRANSFER_MAX`] between two accounts drawn by the key
//!   distribution (an `add` each way; an overdraft refuses the transfer), and
//!   reads of every account. [`KvOps::check`](super::KvOps) judges every committed
//!   read online: no account opened yet, or every account open, none negative, and
//!   the total exactly what was opened. After the heal every client reads every
//!   account, so the final state is judged the same way.
//! * **list-append** — Elle's workload (Kingsbury & Alvaro, VLDB 2020): 2–4
//!   micro-operations per transaction, each an append of a unique element to a
//!   list `l0…` or a read of a whole list. The history is judged by the
//!   serializability checker ([`crate::txn`]).
//!
//! In the history both are `f` = `txn` lines whose micro-operations are
//! `["r", key, read]`, `["append", key, element]`, `["add", key, delta]` and
//! `["cas", key, [expected, new]]` (`docs/checkers.md`).

use super::kv::KvOps;
use crate::history::{Micro, MicroValue};
use rand::Rng;
use std::collections::HashMap;
use synod_core::{ClientId, KvOp, KvResult};

/// What a client remembers: the last value seen per key (see `KvOps`).
type Seen = HashMap<String, String>;

/// The entry of a client's `Seen` that says its request to open the accounts was
/// answered (committed, or refused because they were open). Not a key any
/// workload uses.
pub(super) const ANSWERED_OPEN: &str = "";

/// What each account is opened with.
pub const OPENING_BALANCE: i64 = 100;

/// The largest amount one transfer moves.
pub const TRANSFER_MAX: i64 = 5;

/// Which transactions a [`KvOps`] generator makes, if any.
#[derive(Debug)]
pub(super) enum Txns {
    /// Single-key operations only.
    None,
    /// The bank.
    Bank,
    /// The bank as single-key writes ([`WorkloadConfig::bank_per_key`](super::WorkloadConfig::bank_per_key)).
    BankPerKey,
    /// Elle's list-append.
    ListAppend,
    /// `write` with this many puts per transaction, one per shard.
    Writes(usize),
}

/// One client's place in the per-key bank.
#[derive(Debug, Default)]
pub(super) struct PerKeyBank {
    /// The credit of the transfer whose debit was the client's last operation.
    credit: Option<KvOp>,
    /// The account the client's next heal-phase flush writes.
    flushed: usize,
}

impl KvOps {
    /// The per-key bank's next operation for `client`: the credit of its transfer if
    /// the debit was its last, else a read of one account or a new transfer's debit.
    pub(super) fn bank_per_key_op(&mut self, client: ClientId) -> KvOp {
        if let Some(credit) = self.per_key.entry(client).or_default().credit.take() {
            return credit;
        }
        if self.rng.gen::<f64>() < self.mix.read || self.keys.len() < 2 {
            let i = self.key_index();
            return KvOp::Get {
                key: self.keys[i].clone(),
            };
        }
        let (from, to, amount) = self.transfer();
        self.per_key.entry(client).or_default().credit = Some(KvOp::Add {
            key: self.keys[to].clone(),
            delta: amount,
        });
        KvOp::Add {
            key: self.keys[from].clone(),
            delta: -amount,
        }
    }

    /// After the heal: the pending credit first, then an `add` of nothing to every
    /// account in turn — a write of the client's whole entry, so that whatever of its
    /// own it wrote and the replicas lost or never got is written again.
    pub(super) fn bank_flush_op(&mut self, client: ClientId) -> KvOp {
        let n = self.keys.len();
        let state = self.per_key.entry(client).or_default();
        if let Some(credit) = state.credit.take() {
            return credit;
        }
        state.flushed += 1;
        KvOp::Add {
            key: self.keys[(state.flushed - 1) % n].clone(),
            delta: 0,
        }
    }

    /// A transfer's two accounts (different, drawn by popularity) and its amount.
    fn transfer(&mut self) -> (usize, usize, i64) {
        let from = self.key_index();
        // Any other account, by popularity: redraw, then step past `from`.
        let mut to = self.key_index();
        if to == from {
            to = (from + self.rng.gen_range(1..self.keys.len())) % self.keys.len();
        }
        (from, to, self.rng.gen_range(1..=TRANSFER_MAX))
    }

    /// The bank's next transaction for a client that has seen `seen`.
    pub(super) fn bank_op(&mut self, seen: &Seen) -> KvOp {
        if !seen.contains_key(ANSWERED_OPEN) {
            let ops = self
                .keys
                .iter()
                .map(|key| KvOp::Cas {
                    key: key.clone(),
                    expected: String::new(),
                    new: OPENING_BALANCE.to_string(),
                })
                .collect();
            return KvOp::Txn { ops };
        }
        if self.rng.gen::<f64>() < self.mix.read || self.keys.len() < 2 {
            return self.read_all();
        }
        let (from, to, amount) = self.transfer();
        KvOp::Txn {
            ops: vec![
                KvOp::Add {
                    key: self.keys[from].clone(),
                    delta: -amount,
                },
                KvOp::Add {
                    key: self.keys[to].clone(),
                    delta: amount,
                },
            ],
        }
    }

    /// A read of every account, in one transaction.
    pub(super) fn read_all(&self) -> KvOp {
        let ops = self
            .keys
            .iter()
            .map(|key| KvOp::Get { key: key.clone() })
            .collect();
        KvOp::Txn { ops }
    }

    /// The next list-append transaction: 2–4 reads or appends of unique elements.
    pub(super) fn list_append_op(&mut self) -> KvOp {
        let n = self.rng.gen_range(2..=4);
        let ops = (0..n)
            .map(|_| {
                let i = self.key_index();
                let key = self.keys[i].clone();
                if self.rng.gen::<f64>() < self.mix.read {
                    KvOp::Get { key }
                } else {
                    self.counter += 1;
                    KvOp::Append {
                        key,
                        value: format!("{};", self.counter),
                    }
                }
            })
            .collect();
        KvOp::Txn { ops }
    }

    /// `shards` puts of fresh values in one transaction, the `i`-th on a key placed
    /// on shard `i` (`"<i>/k<n>"`).
    pub(super) fn writes_op(&mut self, shards: usize, client: synod_core::ClientId) -> KvOp {
        let ops = (0..shards)
            .map(|i| {
                let n = self.key_index();
                KvOp::Put {
                    key: format!("{i}/{}", self.keys[n]),
                    value: self.fresh(client),
                }
            })
            .collect();
        KvOp::Txn { ops }
    }

    /// A transaction's micro-operations as its invoke records them.
    pub(super) fn micro_invoke(ops: &[KvOp]) -> Vec<Micro> {
        ops.iter().map(|op| micro(op, MicroValue::Null)).collect()
    }

    /// A committed transaction's micro-operations, each read with what it saw.
    /// `results` is `None` for a protocol that answers a one-operation transaction
    /// with that operation's own result.
    pub(super) fn micro_ok(&self, ops: &[KvOp], results: &[KvResult]) -> Vec<Micro> {
        ops.iter()
            .zip(results)
            .map(|(op, result)| match (op, result) {
                (KvOp::Get { .. }, KvResult::Value(v)) => micro(op, self.read_value(v.as_deref())),
                (op, _) => micro(op, MicroValue::Null),
            })
            .collect()
    }

    /// What a read saw: a list in list-append (a missing list is empty), a balance
    /// in the bank (`null` if not opened).
    fn read_value(&self, value: Option<&str>) -> MicroValue {
        match (&self.txns, value) {
            (Txns::ListAppend, v) => {
                let v = v.unwrap_or("");
                // Anything but our own `e;` elements is shown as read, for the
                // checker to refuse.
                elements(v).map_or(MicroValue::Str(v.to_owned()), MicroValue::List)
            }
            (_, None) => MicroValue::Null,
            (_, Some(v)) => v
                .parse()
                .map_or(MicroValue::Str(v.to_owned()), MicroValue::Int),
        }
    }

    /// `true` if `ops` are the bank's request to open the accounts.
    pub(super) fn is_opening(&self, ops: &[KvOp]) -> bool {
        matches!(self.txns, Txns::Bank) && matches!(ops.first(), Some(KvOp::Cas { .. }))
    }

    /// The bank's check of a committed read of every account.
    pub(super) fn check_bank(&self, op: &KvOp, result: &KvResult) -> Result<(), String> {
        let (Txns::Bank, KvOp::Txn { ops }, KvResult::Txn(results)) = (&self.txns, op, result)
        else {
            return Ok(());
        };
        if !ops.iter().all(|op| matches!(op, KvOp::Get { .. })) {
            return Ok(());
        }
        let balances: Vec<Option<&str>> = results
            .iter()
            .map(|r| match r {
                KvResult::Value(v) => v.as_deref(),
                _ => None,
            })
            .collect();
        if balances.iter().all(Option::is_none) {
            return Ok(()); // before the accounts were opened
        }
        let shown = || {
            let pairs: Vec<String> = ops
                .iter()
                .zip(&balances)
                .map(|(op, b)| format!("{}={}", op.key(), b.unwrap_or("missing")))
                .collect();
            pairs.join(" ")
        };
        let mut total: i64 = 0;
        for balance in &balances {
            match balance.map(str::parse::<i64>) {
                Some(Ok(n)) if n >= 0 => total += n,
                _ => return Err(format!("bank: a read of every account saw {}", shown())),
            }
        }
        let opened = OPENING_BALANCE * ops.len() as i64;
        if total != opened {
            return Err(format!(
                "bank: the total is {total}, not the {opened} opened: {}",
                shown()
            ));
        }
        Ok(())
    }
}

/// `[f, key, value]` for one operation of a transaction.
fn micro(op: &KvOp, read: MicroValue) -> Micro {
    let key = op.key().to_owned();
    match op {
        KvOp::Get { .. } => Micro("r", key, read),
        KvOp::Append { value, .. } => {
            let element = elements(value).and_then(|e| e.first().copied());
            Micro(
                "append",
                key,
                element.map_or(MicroValue::Str(value.clone()), MicroValue::Int),
            )
        }
        KvOp::Add { delta, .. } => Micro("add", key, MicroValue::Int(*delta)),
        KvOp::Cas { expected, new, .. } => {
            Micro("cas", key, MicroValue::Pair(expected.clone(), new.clone()))
        }
        KvOp::Put { value, .. } => Micro("w", key, MicroValue::Str(value.clone())),
        KvOp::Delete { .. } => Micro("delete", key, MicroValue::Null),
        KvOp::Txn { .. } => Micro("txn", key, MicroValue::Null),
    }
}

/// The elements of a list as the KV stores it (`"3;8;"`); `None` if it is not one.
fn elements(list: &str) -> Option<Vec<i64>> {
    if !(list.is_empty() || list.ends_with(';')) {
        return None;
    }
    list.split_terminator(';').map(|e| e.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{write_jsonl, EventType, Value};
    use crate::workload::{Answer, ClientStep, Phase, Workload, WorkloadConfig, WorkloadName};
    use synod_core::Time;

    fn workload(name: WorkloadName, ops: u64) -> Workload {
        let mut cfg = WorkloadConfig::named(name, ops);
        cfg.clients = 1;
        cfg.attempts_max = 1;
        Workload::new(cfg, 3, 7)
    }

    /// The op client 0 sends next, and its seq.
    fn next(w: &mut Workload) -> (u64, KvOp) {
        let t = w.token(0);
        match w.on_wake(0, t, Time::ZERO, Phase::Main) {
            ClientStep::Send { seq, op, .. } => (seq, op),
            other => panic!("expected a send, got {other:?}"),
        }
    }

    fn ops(op: &KvOp) -> &[KvOp] {
        match op {
            KvOp::Txn { ops } => ops,
            other => panic!("expected a transaction, got {other:?}"),
        }
    }

    fn read_all_answer(balances: &[Option<&str>]) -> Answer {
        let results = balances
            .iter()
            .map(|b| KvResult::Value(b.map(str::to_owned)))
            .collect();
        Answer::Done(KvResult::Txn(results))
    }

    /// The per-key bank: every debit is followed by its credit, of the same amount
    /// to another account, and after the heal the pending credit goes first, then an
    /// `add` of nothing to every account in turn.
    #[test]
    fn a_per_key_bank_client_credits_what_it_debited_and_flushes_every_account() {
        let mut cfg = WorkloadConfig::named(WorkloadName::Bank, 400);
        cfg.bank_per_key = true;
        let mut ops = KvOps::new(&cfg, 11);
        let me = ClientId(1);
        let (mut debits, mut credits, mut reads) = (0, 0, 0);
        for _ in 0..200 {
            match ops.bank_per_key_op(me) {
                KvOp::Add { key, delta } if delta < 0 => {
                    debits += 1;
                    match ops.bank_per_key_op(me) {
                        KvOp::Add { key: to, delta: d } => {
                            assert_eq!(d, -delta, "the credit moves what the debit took");
                            assert_ne!(to, key, "between two accounts");
                            credits += 1;
                        }
                        other => panic!("a debit's next op is its credit, not {other:?}"),
                    }
                }
                KvOp::Get { .. } => reads += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            debits > 100 && reads > 10,
            "{debits} transfers, {reads} reads"
        );
        assert_eq!(debits, credits);
        // A debit pending at the end of the main phase: its credit leads the heal.
        while !matches!(ops.bank_per_key_op(me), KvOp::Add { delta, .. } if delta < 0) {}
        assert!(matches!(ops.bank_flush_op(me), KvOp::Add { delta, .. } if delta > 0));
        let flushed: Vec<KvOp> = (0..cfg.keys).map(|_| ops.bank_flush_op(me)).collect();
        for (i, op) in flushed.iter().enumerate() {
            assert_eq!(
                op,
                &KvOp::Add {
                    key: format!("acct{i}"),
                    delta: 0
                }
            );
        }
    }

    /// Until its request to open the accounts is answered, a client asks again;
    /// an answer (here: refused, they were open) ends it, and transfers between two
    /// different accounts and reads of all eight follow.
    #[test]
    fn a_bank_client_asks_to_open_the_accounts_until_answered() {
        let mut w = workload(WorkloadName::Bank, 200);
        for _ in 0..3 {
            let (seq, op) = next(&mut w);
            let opening = ops(&op);
            assert_eq!(opening.len(), 8);
            assert!(opening.iter().all(
                |o| matches!(o, KvOp::Cas { expected, new, .. } if expected.is_empty() && new == "100")
            ));
            // Unavailable, out of attempts: a definite fail, and it asks again.
            w.on_answer(0, seq, Answer::Unavailable, Time::ZERO);
        }
        let (seq, _) = next(&mut w);
        w.on_answer(0, seq, Answer::Done(KvResult::Refused), Time::ZERO);
        let (mut transfers, mut reads) = (0, 0);
        for _ in 0..100 {
            let (seq, op) = next(&mut w);
            let o = ops(&op);
            match o {
                [KvOp::Add { key: a, delta: d }, KvOp::Add { key: b, delta: c }] => {
                    assert_ne!(a, b);
                    assert!((1..=TRANSFER_MAX).contains(c) && *d == -c, "{o:?}");
                    transfers += 1;
                }
                reads_all if reads_all.iter().all(|o| matches!(o, KvOp::Get { .. })) => {
                    assert_eq!(reads_all.len(), 8);
                    reads += 1;
                }
                other => panic!("neither a transfer nor a read of every account: {other:?}"),
            }
            w.on_answer(0, seq, Answer::Done(KvResult::Txn(vec![])), Time::ZERO);
        }
        assert!(
            transfers > 60 && reads > 5,
            "{transfers} transfers, {reads} reads"
        );
        assert!(w.take_violation().is_none());
    }

    /// Every committed read of every account is judged as it is answered: none
    /// opened, or all open, none negative, summing to what was opened.
    #[test]
    fn the_bank_judges_every_read_of_every_account() {
        let open = ["100"; 8].map(Some);
        let moved = ["95", "105", "100", "100", "100", "100", "100", "100"].map(Some);
        let mut lost = moved;
        lost[1] = Some("100"); // a transfer half applied
        let mut half_open = open;
        half_open[7] = None;
        let mut negative = open;
        negative[0] = Some("-5");
        negative[1] = Some("205");
        let cases: [(&[Option<&str>], bool); 6] = [
            (&[None; 8], true),
            (&open, true),
            (&moved, true),
            (&lost, false),
            (&half_open, false),
            (&negative, false),
        ];
        for (balances, valid) in cases {
            let mut w = workload(WorkloadName::Bank, 200);
            let (seq, _) = next(&mut w);
            w.on_answer(0, seq, Answer::Done(KvResult::Refused), Time::ZERO);
            // Draw until a read of every account comes up.
            let seq = loop {
                let (seq, op) = next(&mut w);
                if matches!(ops(&op)[0], KvOp::Get { .. }) {
                    break seq;
                }
                w.on_answer(0, seq, Answer::Done(KvResult::Refused), Time::ZERO);
            };
            w.on_answer(0, seq, read_all_answer(balances), Time::ZERO);
            let verdict = w.take_violation();
            assert_eq!(verdict.is_none(), valid, "{balances:?}: {verdict:?}");
        }
    }

    /// List-append transactions have 2–4 micro-operations, append elements unique
    /// to their list, and read as Jepsen's JSON lines, which the serializability
    /// checker parses back.
    #[test]
    fn list_append_transactions_read_as_elle_histories() {
        let mut w = workload(WorkloadName::ListAppend, 50);
        let mut lists: HashMap<String, String> = HashMap::new();
        for _ in 0..50 {
            let (seq, op) = next(&mut w);
            let o = ops(&op);
            assert!((2..=4).contains(&o.len()), "{o:?}");
            // Apply it to a model of the store, and answer with what it read.
            let results = o
                .iter()
                .map(|op| match op {
                    KvOp::Get { key } => KvResult::Value(lists.get(key).cloned()),
                    KvOp::Append { key, value } => {
                        lists.entry(key.clone()).or_default().push_str(value);
                        KvResult::Written
                    }
                    other => panic!("not a list-append micro-operation: {other:?}"),
                })
                .collect();
            w.on_answer(0, seq, Answer::Done(KvResult::Txn(results)), Time::ZERO);
        }
        let h = w.take_history();
        assert_eq!(h[0].kind, EventType::Invoke);
        let Value::Txn(micros) = &h[1].value else {
            panic!("{:?}", h[1]);
        };
        assert!(micros.iter().all(|m| matches!(
            (m.0, &m.2),
            ("r", MicroValue::List(_)) | ("append", MicroValue::Int(_))
        )));
        let mut text = Vec::new();
        write_jsonl(&h, &mut text).unwrap();
        let first = String::from_utf8_lossy(&text)
            .lines()
            .next()
            .unwrap()
            .to_owned();
        assert!(
            first.starts_with(r#"{"process":0,"type":"invoke","f":"txn","value":[["#),
            "{first}"
        );
        assert!(!first.contains("\"key\""), "{first}");
        let parsed = crate::txn::TxnHistory::parse_jsonl(&text[..]).expect("parses");
        assert_eq!(parsed.len(), 50);
        let report = crate::txn::check(&parsed);
        assert_eq!(
            report.verdict,
            crate::txn::TxnVerdict::Valid,
            "{}",
            report.explain()
        );
    }
}
