//! synod-vvsync as a [`SimProtocol`], in each of its modes, with the checks of the
//! consistency it promises: convergence, no lost updates, no stale siblings.
//!
//! The checks rest on what clients saw, not on the protocol's own clocks: each
//! client's [`Audit`] keeps, per key, the siblings and context of its latest answer
//! and sends its next write of the key with that context; every write records the
//! siblings its client had seen. At the end (after [`SimProtocol::SETTLE`]) the
//! judgement ([`judge`]) takes the replicas' final states and asks:
//!
//! * **convergence** — every live replica of a key holds the same state;
//! * **no phantom** — every final sibling is a value some client wrote;
//! * **no lost update** — every write known to have taken effect (acknowledged, or
//!   seen by a client) is a final sibling or in the causal past of one (written by a
//!   client that had seen it, transitively), or of a delete;
//! * **no stale sibling** — no final sibling is in another's causal past (a client
//!   that saw it wrote over it, so DVV must have replaced it).
//!
//! What a mode promises decides which of these fail the run and which are counted
//! ([`Promise`]): `vvsync` (DVV) promises all four; `vvsync-vv` all but the last
//! (its siblings pile up: counted as `stale_siblings`); `vvsync-lww` only
//! convergence (its losses are counted as `lost_updates`).

use crate::protocol::{Invariant, SimProtocol, Verdict};
use crate::workload::{WorkloadConfig, WorkloadName};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::marker::PhantomData;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult, NodeId, Prng, Time};
use synod_vvsync::{resolve, Causality, Dvv, Lww, Request, Response, Vv, VvConfig, VvNode};

/// What a mode promises beyond convergence.
pub trait Promise: Causality {
    /// A write that took effect is never lost without a client having seen it.
    const NO_LOST_UPDATES: bool;
    /// A sibling a client saw and wrote over does not survive.
    const NO_STALE_SIBLINGS: bool;
}

impl Promise for Dvv {
    const NO_LOST_UPDATES: bool = true;
    const NO_STALE_SIBLINGS: bool = true;
}

impl Promise for Vv {
    const NO_LOST_UPDATES: bool = true;
    const NO_STALE_SIBLINGS: bool = false;
}

impl Promise for Lww {
    const NO_LOST_UPDATES: bool = false;
    const NO_STALE_SIBLINGS: bool = false;
}

/// vvsync in mode `C`.
pub struct VvSync<C>(PhantomData<C>);

/// `vvsync`: dotted version vector sets.
pub type VvSyncDvv = VvSync<Dvv>;
/// `vvsync-vv`: one version vector per key, by replica id.
pub type VvSyncVv = VvSync<Vv>;
/// `vvsync-lww`: last writer wins.
pub type VvSyncLww = VvSync<Lww>;

/// One write a client sent (each attempt of it).
#[derive(Clone, Debug)]
struct Sent {
    key: String,
    /// `None`: a delete.
    value: Option<String>,
    /// The siblings of the client's latest answer for the key when it sent this.
    seen: Vec<String>,
    /// The element it adds to the key's set (the `set` workload's `append`).
    adds: Option<String>,
    /// Answered: it took effect.
    acked: bool,
}

/// What one client remembers and what it did: the audit trail the judgement reads.
#[derive(Debug)]
pub struct Audit<X> {
    /// Per key, the siblings and context of the latest answer.
    known: BTreeMap<String, (Vec<String>, X)>,
    /// Every write attempt, in order.
    sent: Vec<Sent>,
    /// Writes known to have taken effect, as (key, value): acknowledged, or in an
    /// answer. Keyed, since one value may be written to two keys (a client's ledger
    /// entries of two accounts can spell the same) and take effect in only one.
    effective: BTreeSet<(String, String)>,
    /// The per-key bank: per account, this client's own entries of its ledger
    /// ([`ledger_write`]) — everything it meant to add.
    ledgers: BTreeMap<String, resolve::Counter>,
    /// The `seq` of the last ledger `add` counted (its retries are not counted again).
    counted: Option<u64>,
}

impl<X> Default for Audit<X> {
    fn default() -> Self {
        Audit {
            known: BTreeMap::new(),
            sent: Vec::new(),
            effective: BTreeSet::new(),
            ledgers: BTreeMap::new(),
            counted: None,
        }
    }
}

/// The per-key bank's account ledger, a PN counter over [`resolve::Counter`]: per
/// client `c`, `c+` counts what it credited, `c-` what it debited and `c#` its writes
/// (which makes every written value unique). The balance is the opening balance plus
/// the credits less the debits; siblings merge by the maximum per entry, so no
/// client's entry is lost as long as no sibling is (DVV) — and is, under last writer
/// wins, whenever a write replaces one it had not seen.
fn ledger_sum(ledger: &resolve::Counter) -> i64 {
    ledger
        .iter()
        .map(|(actor, n)| match actor.as_bytes().last() {
            Some(b'+') => n as i64,
            Some(b'-') => -(n as i64),
            _ => 0,
        })
        .sum()
}

/// A per-key bank `add` of `delta` to `key` by `client` (operation `seq`): counted in
/// the client's own entries once, whatever its retries, and written as the merge of
/// the siblings it last saw with its own entries, in the context of that answer.
fn ledger_write<X: Clone + Default>(
    audit: &mut Audit<X>,
    client: ClientId,
    seq: u64,
    key: String,
    delta: i64,
) -> Request<X> {
    let own = audit.ledgers.entry(key.clone()).or_default();
    if audit.counted != Some(seq) {
        audit.counted = Some(seq);
        own.increment(&format!("{}#", client.0), 1);
        match delta >= 0 {
            true => own.increment(&format!("{}+", client.0), delta as u64),
            false => own.increment(&format!("{}-", client.0), delta.unsigned_abs()),
        }
    }
    let own = own.to_string();
    let (seen, context) = audit.known.get(&key).cloned().unwrap_or_default();
    let value = resolve::Counter::merge(seen.iter().map(String::as_str).chain([own.as_str()]))
        .expect("the bank's accounts hold only ledgers")
        .to_string();
    audit.sent.push(Sent {
        key: key.clone(),
        value: Some(value.clone()),
        seen,
        adds: None,
        acked: false,
    });
    Request::Put {
        key,
        value,
        context,
    }
}

impl<C: Promise> SimProtocol for VvSync<C> {
    type Node = VvNode<C>;
    type Session = Audit<C::Context>;

    /// Anti-entropy rounds every 50 ms on average: 2 s is forty of them.
    const SETTLE: Duration = Duration::from_secs(2);

    /// No leader to elect: any replica coordinates a request, and one that waited
    /// for replicas gone in the faults gives up after `request_timeout` (200 ms) and
    /// is retried — two of them.
    const RECOVERY: Duration = Duration::from_millis(2 * 200);

    fn build(id: NodeId, members: &[NodeId], seed: u64) -> VvNode<C> {
        VvNode::new(VvConfig::lan(id, members, seed))
    }

    /// Per node and incarnation: how many replicas its reads and writes wait for
    /// (1 or 2), how often it starts anti-entropy, how often it snapshots. `N` and the
    /// buckets are the cluster's and stay.
    fn build_varied(id: NodeId, members: &[NodeId], seed: u64) -> VvNode<C> {
        let mut cfg = VvConfig::lan(id, members, seed);
        let mut knobs = Prng::new(seed ^ 0x7676_7379_6e63);
        cfg.r = 1 + knobs.below(cfg.n.min(2) as u64) as usize;
        cfg.w = 1 + knobs.below(cfg.n.min(2) as u64) as usize;
        cfg.anti_entropy_every = [10, 50, 200][knobs.below(3) as usize] * Duration::from_millis(1);
        cfg.snapshot_every = [4096, 8][knobs.below(2) as usize];
        VvNode::new(cfg)
    }

    fn request(op: KvOp) -> Request<C::Context> {
        Self::request_in(&mut Audit::default(), op)
    }

    fn request_in(audit: &mut Audit<C::Context>, op: KvOp) -> Request<C::Context> {
        let (seen, context) = match &op {
            KvOp::Get { .. } => Default::default(),
            op => audit.known.get(op.key()).cloned().unwrap_or_default(),
        };
        let (key, value, adds) = match op {
            KvOp::Get { key } => return Request::Get { key },
            KvOp::Put { key, value } => (key, Some(value), None),
            KvOp::Delete { key } => (key, None, None),
            // A set add, Dynamo's cart: the union of the siblings read, and the element.
            KvOp::Append { key, value } => {
                let mut set = resolve::Set::union(&seen).expect("set workload values are sets");
                set.insert(&value).expect("workload elements have no comma");
                (key, Some(set.to_string()), Some(value))
            }
            op => {
                panic!("vvsync serves get, put, delete and set adds; fit_workload keeps {op:?} out")
            }
        };
        audit.sent.push(Sent {
            key: key.clone(),
            value: value.clone(),
            seen,
            adds,
            acked: false,
        });
        match value {
            Some(value) => Request::Put {
                key,
                value,
                context,
            },
            None => Request::Delete { key, context },
        }
    }

    /// The per-key bank's `add` is a ledger write ([`ledger_write`]); the rest as
    /// [`request_in`](SimProtocol::request_in).
    fn request_as(
        audit: &mut Audit<C::Context>,
        client: ClientId,
        seq: u64,
        op: KvOp,
    ) -> Request<C::Context> {
        match op {
            KvOp::Add { key, delta } => ledger_write(audit, client, seq, key, delta),
            op => Self::request_in(audit, op),
        }
    }

    fn observe(audit: &mut Audit<C::Context>, response: &Response<C::Context>) {
        let siblings = response.siblings().to_vec();
        let key = response.key().to_owned();
        audit
            .effective
            .extend(siblings.iter().map(|v| (key.clone(), v.clone())));
        // The session learns only from answers to its request in flight: a write's
        // answer is its latest attempt's.
        if let (Response::Written { key, .. }, Some(last)) = (response, audit.sent.last_mut()) {
            if &last.key == key {
                last.acked = true;
            }
        }
        audit
            .known
            .insert(key, (siblings, response.context().clone()));
    }

    fn result(response: &Response<C::Context>) -> KvResult {
        match response {
            Response::Values { siblings, .. } => KvResult::Siblings(siblings.clone()),
            Response::Written { .. } => KvResult::Written,
        }
    }

    fn fit_workload(workload: &mut WorkloadConfig) -> Result<(), String> {
        if workload.name == WorkloadName::ListAppend || workload.shards_per_txn > 0 {
            return Err(format!(
                "serves get, put and delete, not the {:?} workload's transactions",
                workload.name
            ));
        }
        // The bank without transactions: per-key ledger writes, and after the heal
        // every client writes each account once more (and its pending credit).
        if workload.name == WorkloadName::Bank {
            workload.bank_per_key = true;
            workload.liveness_ops = workload.liveness_ops.max(workload.keys as u32 + 1);
        }
        // No cas, and `append` only as the set workload's add: their share goes to
        // puts (the rest of the mix).
        if workload.name != WorkloadName::Set {
            workload.mix.append = 0.0;
        }
        workload.mix.cas = 0.0;
        Ok(())
    }

    fn invariants(_members: &[NodeId]) -> Vec<Box<dyn Invariant<VvNode<C>>>> {
        vec![Box::new(ReplicasOnlyMoveForward::<C>::default())]
    }

    fn judge(sessions: &[Audit<C::Context>], nodes: &[(NodeId, &VvNode<C>)]) -> Verdict {
        judge::<C>(sessions, nodes)
    }
}

/// A replica's state of a key only ever grows: each new state descends the one
/// before (merging the old into it changes nothing). Durable state survives a crash;
/// what was not yet durable may be lost with it, so a crash resets the record, and a
/// collected tombstone ends it.
#[derive(Debug)]
pub struct ReplicasOnlyMoveForward<C> {
    last: BTreeMap<(NodeId, String), (u64, C)>,
}

impl<C> Default for ReplicasOnlyMoveForward<C> {
    fn default() -> Self {
        ReplicasOnlyMoveForward {
            last: BTreeMap::new(),
        }
    }
}

impl<C: Causality> Invariant<VvNode<C>> for ReplicasOnlyMoveForward<C> {
    fn name(&self) -> &'static str {
        "replicas-only-move-forward"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, node: &VvNode<C>) -> Result<(), String> {
        // A collected tombstone leaves the store; the key may start afresh.
        self.last
            .retain(|(n, key), _| *n != id || node.state(key).is_some());
        for (key, state, hash) in node.hashed_states() {
            let slot = (id, key.to_owned());
            match self.last.get(&slot) {
                Some((h, _)) if *h == hash => continue,
                Some((_, old)) => {
                    let mut joined = state.clone();
                    joined.merge(old);
                    if &joined != state {
                        return Err(format!(
                            "{id} moved {key} backwards: {old:?} became {state:?}"
                        ));
                    }
                }
                None => {}
            }
            self.last.insert(slot, (hash, state.clone()));
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.last.retain(|(n, _), _| *n != id);
    }
}

/// The end-of-run judgement (see the module docs).
pub fn judge<C: Promise>(
    sessions: &[Audit<C::Context>],
    nodes: &[(NodeId, &VvNode<C>)],
) -> Verdict {
    let mut verdict = Verdict::default();
    // Convergence: every live replica of a key holds the same state (a tombstone
    // and no state at all are alike: one replica may have collected it first), and
    // the final siblings of every key.
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    for (_, node) in nodes {
        keys.extend(node.states().map(|(k, _)| k));
    }
    let mut finals: BTreeMap<&str, &C> = BTreeMap::new();
    for &key in &keys {
        let mut first: Option<(NodeId, Option<&C>)> = None;
        for &(id, node) in nodes {
            if !node.config().replicas_of(key).any(|r| r == id) {
                continue;
            }
            let state = node.state(key).filter(|s| !s.is_deleted());
            match first {
                None => first = Some((id, state)),
                Some((_, theirs)) if theirs == state => {}
                Some((other, theirs)) => {
                    verdict.broken = Some((
                        "convergence",
                        format!(
                            "after {} s of anti-entropy {other} and {id} hold {key} differently: {theirs:?} and {state:?}",
                            VvSync::<C>::SETTLE.as_secs()
                        ),
                    ));
                    return verdict;
                }
            }
        }
        if let Some((_, Some(state))) = first {
            finals.insert(key, state);
        }
    }
    let tombstones: u64 = nodes.iter().map(|(_, n)| n.tombstones() as u64).sum();
    let collected: u64 = nodes.iter().map(|(_, n)| n.gc_stats().collected).sum();
    // What every write saw: the union over its attempts (any may have run) for the
    // lost-update closure, the intersection (what it surely saw) for stale siblings.
    let mut saw_any: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    let mut saw_surely: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    let mut deleted_over: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    // What each acknowledged delete saw: it replaced all of it.
    let mut deletes_acked: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut written: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut attempts: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for s in sessions.iter().flat_map(|a| &a.sent) {
        let seen: BTreeSet<&str> = s.seen.iter().map(String::as_str).collect();
        let Some(value) = &s.value else {
            if s.acked {
                deletes_acked.push((&s.key, seen.iter().copied().collect()));
            }
            deleted_over.entry(&s.key).or_default().extend(seen);
            continue;
        };
        let slot = (s.key.as_str(), value.as_str());
        written.insert(slot);
        *attempts.entry(slot).or_default() += 1;
        saw_any
            .entry(slot)
            .or_default()
            .extend(seen.iter().copied());
        saw_surely
            .entry(slot)
            .and_modify(|surely| surely.retain(|v| seen.contains(v)))
            .or_insert(seen);
    }
    let effective: BTreeSet<(&str, &str)> = sessions
        .iter()
        .flat_map(|a| a.effective.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let (mut lost, mut stale, mut siblings_max) = (Vec::new(), 0u64, 0u64);
    let mut resurrected = Vec::new();
    keys.extend(written.iter().map(|(k, _)| *k));
    for key in keys {
        let live: Vec<String> = finals.get(key).map(|s| s.siblings()).unwrap_or_default();
        siblings_max = siblings_max.max(live.len() as u64);
        for v in &live {
            if !written.contains(&(key, v.as_str())) {
                verdict.broken = Some((
                    "no-phantom-values",
                    format!("{key} holds {v:?}, which no client wrote"),
                ));
                return verdict;
            }
        }
        let mut from: Vec<&str> = live.iter().map(String::as_str).collect();
        from.extend(deleted_over.get(key).into_iter().flatten().copied());
        let mut covered = past(key, from, &saw_any);
        covered.extend(deleted_over.get(key).into_iter().flatten().copied());
        for &(k, v) in written.range((key, "")..) {
            if k != key {
                break;
            }
            if effective.contains(&(k, v)) && !live.iter().any(|l| l == v) && !covered.contains(v) {
                lost.push(format!("{key}={v}"));
            }
        }
        // A value an acknowledged delete saw (or that was in the past of what it saw)
        // is gone for good: live again, it came back (a value written once only: a
        // retry may live on as an event the delete did not cover).
        for (_, seen) in deletes_acked.iter().filter(|(k, _)| *k == key) {
            let mut gone = past(key, seen.clone(), &saw_surely);
            gone.extend(seen.iter().copied());
            for v in live.iter().filter(|v| gone.contains(v.as_str())) {
                if attempts.get(&(key, v.as_str())) == Some(&1) {
                    resurrected.push(format!("{key}={v}"));
                }
            }
        }
        for v in &live {
            let surely = past(key, vec![v.as_str()], &saw_surely);
            // A value written by more than one attempt may live on as another event
            // than the one its readers saw and replaced: not judged.
            let judged = |o: &&String| attempts.get(&(key, o.as_str())) == Some(&1);
            stale += live
                .iter()
                .filter(judged)
                .filter(|o| surely.contains(o.as_str()))
                .count() as u64;
        }
    }
    let set = set_check(sessions, &finals);
    let bank = bank_check(sessions, &finals);
    verdict.metrics = vec![
        ("lost_updates", lost.len() as u64),
        ("stale_siblings", stale),
        ("resurrected", resurrected.len() as u64),
        ("siblings_max", siblings_max),
        ("writes_effective", effective.len() as u64),
        ("tombstones_left", tombstones),
        ("tombstones_collected", collected),
    ];
    if let Some(set) = &set {
        verdict.metrics.extend([
            ("set_acked", set.acked),
            ("set_lost", set.lost.len() as u64),
            ("set_unexpected", set.unexpected.len() as u64),
            ("set_recovered", set.recovered),
        ]);
        if !set.unexpected.is_empty() {
            verdict.broken = Some((
                "set",
                format!(
                    "the final set holds elements never added: {:?}",
                    set.unexpected
                ),
            ));
            return verdict;
        }
    }
    if let Some(bank) = &bank {
        let off = bank.held - bank.meant;
        verdict.metrics.extend([
            ("bank_off", off.unsigned_abs()),
            ("bank_runs_off", u64::from(off != 0)),
        ]);
        if let Some(bad) = &bank.malformed {
            verdict.broken = Some(("bank", bad.clone()));
            return verdict;
        }
        if C::NO_LOST_UPDATES && off != 0 {
            verdict.broken = Some((
                "bank",
                format!(
                    "the accounts hold {:+} after every transfer, not the {:+} the clients' own entries add up to",
                    bank.held, bank.meant
                ),
            ));
            return verdict;
        }
    }
    if C::NO_LOST_UPDATES && !lost.is_empty() {
        verdict.broken = Some((
            "no-lost-updates",
            format!(
                "{} write(s) took effect and are gone although no client saw them before writing over them: {}",
                lost.len(),
                lost.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    } else if let Some(set) = set.filter(|s| C::NO_LOST_UPDATES && !s.lost.is_empty()) {
        verdict.broken = Some((
            "set",
            format!(
                "{} of {} acknowledged adds are not in the final set: {:?}",
                set.lost.len(),
                set.acked,
                set.lost.iter().take(5).collect::<Vec<_>>()
            ),
        ));
    } else if C::NO_STALE_SIBLINGS && !resurrected.is_empty() {
        verdict.broken = Some((
            "no-resurrection",
            format!(
                "{} deleted value(s) are live again: {}",
                resurrected.len(),
                resurrected
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    } else if C::NO_STALE_SIBLINGS && stale > 0 {
        verdict.broken = Some((
            "no-stale-siblings",
            format!("{stale} final sibling(s) were seen and written over by a client, yet survive"),
        ));
    }
    verdict
}

/// The values in the causal past of `from` on `key`: what their writers had seen,
/// transitively.
fn past<'a>(
    key: &'a str,
    mut from: Vec<&'a str>,
    saw: &BTreeMap<(&'a str, &'a str), BTreeSet<&'a str>>,
) -> BTreeSet<&'a str> {
    let mut reached = BTreeSet::new();
    while let Some(v) = from.pop() {
        for &s in saw.get(&(key, v)).into_iter().flatten() {
            if reached.insert(s) {
                from.push(s);
            }
        }
    }
    reached
}

/// Jepsen's set analysis of the keys clients added elements to.
struct SetCheck {
    /// Acknowledged adds.
    acked: u64,
    /// Acknowledged and not in the final set.
    lost: Vec<String>,
    /// In the final set, never added.
    unexpected: Vec<String>,
    /// Not acknowledged (failed or unknown) and in the final set.
    recovered: u64,
}

/// The per-key bank's money: what the clients' own ledger entries add up to (zero
/// once every transfer's credit is sent) and what the final states hold.
struct BankCheck {
    meant: i64,
    held: i64,
    /// A final sibling that is not a ledger.
    malformed: Option<String>,
}

fn bank_check<X, C: Causality>(
    sessions: &[Audit<X>],
    finals: &BTreeMap<&str, &C>,
) -> Option<BankCheck> {
    let accounts: BTreeSet<&str> = sessions
        .iter()
        .flat_map(|a| a.ledgers.keys().map(String::as_str))
        .collect();
    if accounts.is_empty() {
        return None;
    }
    let meant = sessions
        .iter()
        .flat_map(|a| a.ledgers.values())
        .map(ledger_sum)
        .sum();
    let mut check = BankCheck {
        meant,
        held: 0,
        malformed: None,
    };
    for key in accounts {
        let siblings = finals.get(key).map(|s| s.siblings()).unwrap_or_default();
        match resolve::Counter::merge(&siblings) {
            Ok(ledger) => check.held += ledger_sum(&ledger),
            Err(e) => check.malformed = Some(format!("account {key} holds {siblings:?}: {e}")),
        }
    }
    Some(check)
}

fn set_check<X, C: Causality>(
    sessions: &[Audit<X>],
    finals: &BTreeMap<&str, &C>,
) -> Option<SetCheck> {
    let adds: Vec<&Sent> = sessions
        .iter()
        .flat_map(|a| &a.sent)
        .filter(|s| s.adds.is_some())
        .collect();
    if adds.is_empty() {
        return None;
    }
    let mut check = SetCheck {
        acked: 0,
        lost: Vec::new(),
        unexpected: Vec::new(),
        recovered: 0,
    };
    let keys: BTreeSet<&str> = adds.iter().map(|s| s.key.as_str()).collect();
    for key in keys {
        let siblings = finals.get(key).map(|s| s.siblings()).unwrap_or_default();
        let Ok(final_set) = resolve::Set::union(&siblings) else {
            check
                .unexpected
                .push(format!("{key}: {siblings:?} is not a set"));
            continue;
        };
        let mine: Vec<&&Sent> = adds.iter().filter(|s| s.key == key).collect();
        let acked: BTreeSet<&str> = (mine.iter())
            .filter(|s| s.acked)
            .filter_map(|s| s.adds.as_deref())
            .collect();
        let attempted: BTreeSet<&str> = mine.iter().filter_map(|s| s.adds.as_deref()).collect();
        check.acked += acked.len() as u64;
        check.lost.extend(
            (acked.iter())
                .filter(|e| !final_set.contains(e))
                .map(|e| format!("{key}:{e}")),
        );
        check.unexpected.extend(
            (final_set.iter())
                .filter(|e| !attempted.contains(e))
                .map(|e| format!("{key}:{e}")),
        );
        check.recovered += (attempted.iter())
            .filter(|e| !acked.contains(*e) && final_set.contains(e))
            .count() as u64;
    }
    Some(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(key: &str, delta: i64) -> KvOp {
        KvOp::Add {
            key: key.into(),
            delta,
        }
    }

    fn value<X>(request: &Request<X>) -> &str {
        match request {
            Request::Put { value, .. } => value,
            _ => panic!("a ledger add is a put"),
        }
    }

    /// A retry of a ledger add (the same `seq`) counts nothing more — counting it
    /// twice would make money — and a later add keeps the other clients' entries it
    /// saw, by the maximum over the siblings.
    #[test]
    fn bank_ledger_add_counts_once_across_retries_and_keeps_what_it_saw() {
        let mut audit = Audit::default();
        let me = ClientId(3);
        let first = VvSyncDvv::request_as(&mut audit, me, 1, add("acct0", -4));
        let retry = VvSyncDvv::request_as(&mut audit, me, 1, add("acct0", -4));
        assert_eq!(value(&first), "3#:1;3-:4");
        assert_eq!(value(&retry), value(&first));
        let siblings = vec!["3#:1;3-:4;5#:2;5+:7".to_string(), "5#:1;5+:2".into()];
        audit
            .known
            .insert("acct0".into(), (siblings, Default::default()));
        let next = VvSyncDvv::request_as(&mut audit, me, 2, add("acct0", 1));
        assert_eq!(value(&next), "3#:2;3+:1;3-:4;5#:2;5+:7");
        let ledger = resolve::Counter::parse(value(&next)).unwrap();
        assert_eq!(ledger_sum(&ledger), 1 - 4 + 7);
        assert_eq!(
            ledger_sum(&audit.ledgers["acct0"]),
            1 - 4,
            "its own entries"
        );
    }
}
