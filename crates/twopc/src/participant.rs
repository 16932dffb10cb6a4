//! A participant (resource manager): owns one shard. Strict two-phase locking with
//! the **wait-die** policy (Rosenkrantz, Stearns & Lewis 1978): a transaction that
//! conflicts with an older holder dies (votes NO); one that conflicts only with
//! younger holders waits — waits only ever go from older to younger, so no deadlock
//! can form. Locks are held until the decision (strict 2PL), so committed
//! transactions are serializable in lock order.
//!
//! Logging rules (each prevents one failure):
//! * the **prepared record** (the staged writes) is durable before a YES vote leaves
//!   — otherwise a crash after voting would lose writes the coordinator may commit;
//! * a unilateral abort is durable before anyone hears of it — otherwise, after a
//!   crash, a late PREPARE could get a YES for a transaction a peer was told aborted;
//! * the commit is applied durably (data and outcome, one batch) before the ACK —
//!   the coordinator forgets the transaction on the ACK.
//!
//! A prepared participant is **in doubt**: it may not decide alone. It asks the
//! coordinator, and then the other participants (cooperative termination): one that
//! knows the outcome says so; one that never voted aborts and says so. If the
//! coordinator and every participant that voted are down or in doubt, it blocks,
//! holding its locks — 2PC's known weakness, which the harness measures.

use crate::message::{Message, Vote};
use crate::node::{Fx, Timer};
use crate::types::{AbortReason, Op, OpResult, ShardId, Topology, TxnId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use synod_core::Journal;
use synod_core::{NodeId, Recovered, Time};

/// A durable record of the participant's journal (the storage log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Record {
    /// Voted YES: these writes apply if the transaction commits; the keys it read
    /// (locked shared until the decision, after a restart too) and what it read (a
    /// repeated vote repeats them).
    Prepared {
        txn: TxnId,
        participants: Vec<ShardId>,
        writes: Vec<(String, Option<String>)>,
        read_keys: Vec<String>,
        reads: Vec<(u32, OpResult)>,
    },
    /// The transaction's outcome here (a commit applies the prepared writes).
    Outcome { txn: TxnId, commit: bool },
}

/// A prepared transaction, in doubt until the decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Prepared {
    participants: Vec<ShardId>,
    /// Per key, its new value (`None`: removed).
    writes: Vec<(String, Option<String>)>,
    /// Keys it holds shared locks on.
    read_keys: Vec<String>,
    reads: Vec<(u32, OpResult)>,
    #[serde(skip)]
    since: Time,
    #[serde(skip)]
    asked: Option<Time>,
}

/// A PREPARE waiting for locks held by younger transactions.
#[derive(Clone, Debug)]
struct Waiting {
    txn: TxnId,
    /// Its age for wait-die (`Message::Prepare::age`).
    age: TxnId,
    /// Who sent the PREPARE: the vote goes there.
    coordinator: NodeId,
    ops: Vec<(u32, Op)>,
    participants: Vec<ShardId>,
    since: Time,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Lock {
    exclusive: Option<TxnId>,
    shared: BTreeSet<TxnId>,
}

/// What a snapshot holds: the data, the prepared transactions, the outcomes still
/// needed, the watermark.
#[derive(Serialize, Deserialize)]
struct Image {
    data: BTreeMap<String, String>,
    prepared: BTreeMap<TxnId, Prepared>,
    outcomes: BTreeMap<TxnId, bool>,
    watermark: TxnId,
}

/// What a participant's prepared transactions cost it: how long they were in doubt
/// (voted YES, holding their locks, not knowing the outcome). 2PC's blocking, as
/// numbers: time in doubt only grows while the coordinator (and whoever knows) is
/// unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DoubtStats {
    /// Prepared transactions settled here.
    pub settled: u64,
    /// Their total time in doubt (since the vote, or since the restart that found
    /// them prepared).
    pub in_doubt_total: Duration,
    /// The longest.
    pub in_doubt_max: Duration,
    /// How many were in doubt longer than twice `inquire_after` — long enough that
    /// asking the coordinator and the peers did not settle them at once (blocked).
    pub blocked: u64,
}

/// Timing knobs of a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParticipantTiming {
    /// A PREPARE waiting for locks this long aborts (votes NO).
    pub lock_wait_max: Duration,
    /// In doubt this long: ask the coordinator; twice this long: ask the peers too.
    pub inquire_after: Duration,
    /// Journal records between snapshots.
    pub snapshot_every: u64,
}

/// One shard's resource manager.
pub struct Participant {
    pub(crate) id: NodeId,
    pub(crate) topology: Topology,
    timing: ParticipantTiming,
    /// Committed data.
    pub(crate) data: BTreeMap<String, String>,
    locks: BTreeMap<String, Lock>,
    /// The age (`Message::Prepare::age`) of each transaction holding locks here
    /// whose age is not its id. Volatile: a prepared transaction restored after a
    /// restart is as old as its id, and since it waits for nothing it can close no
    /// cycle of waits.
    ages: BTreeMap<TxnId, TxnId>,
    pub(crate) prepared: BTreeMap<TxnId, Prepared>,
    waiting: Vec<Waiting>,
    /// Outcomes known here, kept while a late message could still need them.
    pub(crate) outcomes: BTreeMap<TxnId, bool>,
    /// Every transaction below this is decided at the coordinator.
    watermark: TxnId,
    journal: Journal,
    stats: DoubtStats,
    /// The coordinator replica whose PREPARE or DECIDE arrived last, and when: the
    /// one likeliest to coordinate now, named to clients that ask a participant.
    /// Volatile, a hint only.
    coordinator_seen: Option<(NodeId, Time)>,
    /// The coordinator replica named next once the one seen has gone quiet.
    hint_turn: usize,
}

impl Participant {
    pub(crate) fn new(id: NodeId, topology: Topology, timing: ParticipantTiming) -> Participant {
        Participant {
            id,
            topology,
            timing,
            data: BTreeMap::new(),
            locks: BTreeMap::new(),
            ages: BTreeMap::new(),
            prepared: BTreeMap::new(),
            waiting: Vec::new(),
            outcomes: BTreeMap::new(),
            watermark: TxnId(0),
            journal: Journal::new(timing.snapshot_every),
            stats: DoubtStats::default(),
            coordinator_seen: None,
            hint_turn: 0,
        }
    }

    /// Where a client that asked this participant should go: the coordinator replica
    /// heard from last, while it was heard from within `inquire_after`; otherwise
    /// each replica in turn, one per answer. With replicated coordinators
    /// (`twopc-nb`) any one may be down for good, and a client only ever asks where
    /// it is sent: naming always the same replica — the topology's first, or the one
    /// that coordinated before it crashed — would keep every client away from the
    /// new coordinator for good. In turn, a client's retries reach every replica,
    /// and a live one names its leader.
    pub fn coordinator_hint(&mut self, now: Time) -> Option<NodeId> {
        let replicas = &self.topology.coordinators;
        match self.coordinator_seen {
            Some((seen, at)) if now.saturating_since(at) <= self.timing.inquire_after => Some(seen),
            _ if replicas.is_empty() => None,
            _ => {
                self.hint_turn = (self.hint_turn + 1) % replicas.len();
                Some(replicas[self.hint_turn])
            }
        }
    }

    /// A PREPARE or DECIDE from `from`: if a coordinator replica, it coordinates now.
    fn heard_from(&mut self, now: Time, from: NodeId) {
        if self.topology.coordinators.contains(&from) {
            self.coordinator_seen = Some((from, now));
        }
    }

    /// The transactions holding locks here (prepared) — in doubt until decided.
    pub fn in_doubt(&self) -> impl Iterator<Item = TxnId> + '_ {
        self.prepared.keys().copied()
    }

    /// Whether `txn` is prepared here, in doubt.
    pub fn is_in_doubt(&self, txn: TxnId) -> bool {
        self.prepared.contains_key(&txn)
    }

    /// Keys locked right now.
    pub fn locked_keys(&self) -> usize {
        self.locks.len()
    }

    /// The committed data of this shard.
    pub fn data(&self) -> &BTreeMap<String, String> {
        &self.data
    }

    /// The outcomes this participant holds (commit = `true`), for the transactions
    /// a late message could still ask about.
    pub fn outcomes(&self) -> impl Iterator<Item = (TxnId, bool)> + '_ {
        self.outcomes.iter().map(|(&t, &c)| (t, c))
    }

    /// Time in doubt of the transactions settled here.
    pub fn doubt_stats(&self) -> DoubtStats {
        self.stats
    }

    /// PREPAREs waiting for locks.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    // ----- recovery -----------------------------------------------------------------

    pub(crate) fn recover(&mut self, now: Time, rec: Recovered) -> Result<(), String> {
        let (image, records) = self.journal.recover::<Image, Record>("participant", &rec)?;
        if let Some(image) = image {
            self.data = image.data;
            self.prepared = image.prepared;
            self.outcomes = image.outcomes;
            self.watermark = image.watermark;
        }
        for record in records {
            self.replay(record);
        }
        // In doubt again: re-take the locks of every prepared transaction — the
        // shared ones too: its other shards may not have locked yet, so its lock
        // point may still be ahead (found by the 2PC review of 2026-12-03).
        for (&txn, p) in &mut self.prepared {
            for (key, _) in &p.writes {
                self.locks.entry(key.clone()).or_default().exclusive = Some(txn);
            }
            for key in &p.read_keys {
                let lock = self.locks.entry(key.clone()).or_default();
                if lock.exclusive != Some(txn) {
                    lock.shared.insert(txn);
                }
            }
            p.since = now;
            p.asked = None;
        }
        Ok(())
    }

    fn replay(&mut self, record: Record) {
        match record {
            Record::Prepared {
                txn,
                participants,
                writes,
                read_keys,
                reads,
            } => {
                let p = Prepared {
                    participants,
                    writes,
                    read_keys,
                    reads,
                    since: Time::ZERO,
                    asked: None,
                };
                self.prepared.insert(txn, p);
            }
            Record::Outcome { txn, commit } => {
                if let Some(p) = self.prepared.remove(&txn) {
                    if commit {
                        self.apply(p.writes);
                    }
                }
                self.outcomes.insert(txn, commit);
            }
        }
    }

    fn journal(&mut self, record: Record, out: &mut Fx) {
        self.journal.append(&record, &mut out.persist);
    }

    fn maybe_snapshot(&mut self, out: &mut Fx) {
        if !self.journal.snapshot_due() {
            return;
        }
        let image = Image {
            data: self.data.clone(),
            prepared: self.prepared.clone(),
            outcomes: self.outcomes.clone(),
            watermark: self.watermark,
        };
        self.journal.snapshot(&image, &mut out.persist);
    }

    // ----- phase 1 --------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_prepare(
        &mut self,
        now: Time,
        coordinator: NodeId,
        (txn, age): (TxnId, TxnId),
        ops: Vec<(u32, Op)>,
        participants: Vec<ShardId>,
        active_from: TxnId,
        out: &mut Fx,
    ) {
        self.heard_from(now, coordinator);
        self.advance_watermark(active_from);
        if let Some(p) = self.prepared.get(&txn) {
            // A duplicate: the same vote again.
            let vote = Vote::Yes(p.reads.clone());
            return out.send(coordinator, Message::Vote { txn, vote });
        }
        if let Some(&commit) = self.outcomes.get(&txn) {
            if !commit {
                let vote = Vote::No(AbortReason::Timeout);
                return out.send(coordinator, Message::Vote { txn, vote });
            }
            return; // committed: a very late duplicate
        }
        if txn < self.watermark || self.waiting.iter().any(|w| w.txn == txn) {
            return; // decided already, or queued
        }
        self.try_prepare(
            now,
            Waiting {
                txn,
                age,
                coordinator,
                ops,
                participants,
                since: now,
            },
            out,
        );
    }

    /// Locks (or waits, or dies), runs the operations, and votes.
    fn try_prepare(&mut self, now: Time, w: Waiting, out: &mut Fx) {
        match self.lock_all(w.txn, w.age, &w.ops) {
            Locking::Conflict => {
                return self.vote_no(w.txn, w.coordinator, AbortReason::Conflict, out)
            }
            Locking::Wait => return self.waiting.push(w),
            Locking::Granted => {}
        }
        match self.execute(&w.ops) {
            Err(reason) => {
                self.release(w.txn);
                self.vote_no(w.txn, w.coordinator, reason, out);
            }
            Ok((writes, reads)) => {
                let read_keys: Vec<String> = (w.ops.iter())
                    .filter(|(_, op)| op.is_read())
                    .map(|(_, op)| op.key().to_owned())
                    .collect();
                self.journal(
                    Record::Prepared {
                        txn: w.txn,
                        participants: w.participants.clone(),
                        writes: writes.clone(),
                        read_keys: read_keys.clone(),
                        reads: reads.clone(),
                    },
                    out,
                );
                let p = Prepared {
                    participants: w.participants,
                    writes,
                    read_keys,
                    reads: reads.clone(),
                    since: now,
                    asked: None,
                };
                self.prepared.insert(w.txn, p);
                let vote = Message::Vote {
                    txn: w.txn,
                    vote: Vote::Yes(reads),
                };
                out.send(w.coordinator, vote); // after the record is durable
            }
        }
    }

    /// A unilateral abort: durable before anyone hears of it.
    fn vote_no(&mut self, txn: TxnId, to: NodeId, reason: AbortReason, out: &mut Fx) {
        self.journal(Record::Outcome { txn, commit: false }, out);
        self.outcomes.insert(txn, false);
        let vote = Vote::No(reason);
        out.send(to, Message::Vote { txn, vote });
    }

    /// Wait-die by age, ties broken by id: an older transaction waits for a
    /// younger holder, a younger one dies.
    fn lock_all(&mut self, txn: TxnId, age: TxnId, ops: &[(u32, Op)]) -> Locking {
        let mut wanted: BTreeMap<&str, bool> = BTreeMap::new(); // key → exclusive
        for (_, op) in ops {
            *wanted.entry(op.key()).or_default() |= !op.is_read();
        }
        let mut wait = false;
        for (&key, &exclusive) in &wanted {
            let Some(lock) = self.locks.get(key) else {
                continue;
            };
            let holders = lock.exclusive.into_iter().chain(match exclusive {
                true => lock.shared.iter().copied().collect::<Vec<_>>(),
                false => Vec::new(),
            });
            for holder in holders.filter(|&h| h != txn) {
                let holder_age = self.ages.get(&holder).copied().unwrap_or(holder);
                match (age, txn) < (holder_age, holder) {
                    true => wait = true,               // older waits for younger
                    false => return Locking::Conflict, // younger dies
                }
            }
        }
        if wait {
            return Locking::Wait;
        }
        if age != txn {
            self.ages.insert(txn, age);
        }
        for (key, exclusive) in wanted {
            let lock = self.locks.entry(key.to_owned()).or_default();
            match exclusive {
                true => {
                    lock.shared.remove(&txn);
                    lock.exclusive = Some(txn);
                }
                false if lock.exclusive != Some(txn) => {
                    lock.shared.insert(txn);
                }
                false => {}
            }
        }
        Locking::Granted
    }

    fn apply(&mut self, writes: Vec<(String, Option<String>)>) {
        for (key, value) in writes {
            match value {
                Some(v) => self.data.insert(key, v),
                None => self.data.remove(&key),
            };
        }
    }

    fn release(&mut self, txn: TxnId) {
        self.ages.remove(&txn);
        self.locks.retain(|_, lock| {
            if lock.exclusive == Some(txn) {
                lock.exclusive = None;
            }
            lock.shared.remove(&txn);
            lock.exclusive.is_some() || !lock.shared.is_empty()
        });
    }

    /// Runs `ops` against the committed data plus its own earlier writes.
    #[allow(clippy::type_complexity)]
    fn execute(
        &self,
        ops: &[(u32, Op)],
    ) -> Result<(Vec<(String, Option<String>)>, Vec<(u32, OpResult)>), AbortReason> {
        let mut staged: BTreeMap<&str, Option<String>> = BTreeMap::new();
        let mut reads = Vec::new();
        for (i, op) in ops {
            let current = |staged: &BTreeMap<&str, Option<String>>| match staged.get(op.key()) {
                Some(v) => v.clone(),
                None => self.data.get(op.key()).cloned(),
            };
            match op {
                Op::Read { .. } => reads.push((*i, OpResult::Value(current(&staged)))),
                Op::Write { key, value } => {
                    staged.insert(key, Some(value.clone()));
                }
                Op::Append { key, value } => {
                    let mut v = current(&staged).unwrap_or_default();
                    v.push_str(value);
                    staged.insert(key, Some(v));
                }
                Op::Cas { key, expected, new } => {
                    if current(&staged).unwrap_or_default() != *expected {
                        return Err(AbortReason::Refused);
                    }
                    staged.insert(key, Some(new.clone()));
                }
                Op::Delete { key } => {
                    staged.insert(key, None);
                }
                Op::Add { key, delta } => {
                    let balance: i64 = match current(&staged) {
                        None => 0,
                        Some(v) => v.parse().map_err(|_| AbortReason::Refused)?,
                    };
                    let after = balance.checked_add(*delta).ok_or(AbortReason::Refused)?;
                    if after < 0 {
                        return Err(AbortReason::Refused);
                    }
                    staged.insert(key, Some(after.to_string()));
                }
            }
        }
        let writes = staged.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Ok((writes, reads))
    }

    // ----- phase 2 --------------------------------------------------------------------

    pub(crate) fn on_decide(
        &mut self,
        now: Time,
        from: NodeId,
        txn: TxnId,
        commit: bool,
        out: &mut Fx,
    ) {
        self.heard_from(now, from);
        self.settle(now, txn, commit, out);
        if commit {
            out.send(from, Message::Ack { txn }); // after the batch
        }
    }

    /// Records `txn`'s outcome (applying a commit), releases its locks, and lets the
    /// waiting PREPAREs try again.
    fn settle(&mut self, now: Time, txn: TxnId, commit: bool, out: &mut Fx) {
        self.waiting.retain(|w| w.txn != txn);
        if let Some(p) = self.prepared.get(&txn) {
            let doubt = now.saturating_since(p.since);
            self.stats.settled += 1;
            self.stats.in_doubt_total += doubt;
            self.stats.in_doubt_max = self.stats.in_doubt_max.max(doubt);
            if doubt > 2 * self.timing.inquire_after {
                self.stats.blocked += 1;
            }
        }
        match (self.prepared.remove(&txn), commit) {
            (Some(p), true) => {
                self.journal(Record::Outcome { txn, commit }, out);
                self.apply(p.writes);
            }
            (Some(_), false) => self.journal(Record::Outcome { txn, commit }, out),
            (None, true) => {
                // Settled before (a duplicate COMMIT): the ACK is all that is missing.
                assert!(
                    self.outcomes.get(&txn) != Some(&false),
                    "{} told to commit {txn}, which it aborted",
                    self.id
                );
                return;
            }
            (None, false) => {
                assert!(
                    self.outcomes.get(&txn) != Some(&true),
                    "{} told to abort {txn}, which it committed",
                    self.id
                );
                if !self.outcomes.contains_key(&txn) {
                    // Never prepared here: remember, so a late PREPARE votes NO.
                    self.journal(Record::Outcome { txn, commit }, out);
                }
            }
        }
        self.outcomes.insert(txn, commit);
        self.release(txn);
        self.retry_waiting(now, out);
        self.maybe_snapshot(out);
    }

    fn retry_waiting(&mut self, now: Time, out: &mut Fx) {
        let waiting = std::mem::take(&mut self.waiting);
        for w in waiting {
            self.try_prepare(now, w, out);
        }
    }

    fn advance_watermark(&mut self, active_from: TxnId) {
        if active_from > self.watermark {
            self.watermark = active_from;
            // Outcomes below it can no longer be asked for by a PREPARE; peers in
            // doubt below it are answered by the coordinator.
            let keep = self.outcomes.split_off(&active_from);
            self.outcomes = keep;
        }
    }

    // ----- termination ----------------------------------------------------------------

    pub(crate) fn on_inquire(&mut self, now: Time, from: NodeId, txn: TxnId, out: &mut Fx) {
        let outcome = match (self.outcomes.get(&txn), self.prepared.contains_key(&txn)) {
            (Some(&commit), _) => Some(commit),
            (None, true) => None, // in doubt ourselves
            // Decided at the coordinator, and our record of it dropped: we cannot
            // tell — and must not abort it (found by the chaos test: a COMMIT lost
            // to one participant, the other had pruned its outcome).
            (None, false) if txn < self.watermark => None,
            (None, false) => {
                // Never voted: abort it ourselves (allowed before voting), so the
                // coordinator can never collect our YES.
                self.settle(now, txn, false, out);
                Some(false)
            }
        };
        out.send(from, Message::Known { txn, outcome }); // after the abort is durable
    }

    pub(crate) fn on_known(&mut self, now: Time, txn: TxnId, outcome: Option<bool>, out: &mut Fx) {
        if let (Some(commit), true) = (outcome, self.prepared.contains_key(&txn)) {
            self.settle(now, txn, commit, out);
            if commit {
                for &c in &self.topology.coordinators {
                    out.send(c, Message::Ack { txn });
                }
            }
        }
    }

    pub(crate) fn on_tick(&mut self, now: Time, out: &mut Fx) {
        // Waiting too long for locks: abort unilaterally.
        let (expired, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| now >= w.since + self.timing.lock_wait_max);
        self.waiting = waiting;
        for w in expired {
            self.vote_no(w.txn, w.coordinator, AbortReason::Timeout, out);
        }
        // In doubt: ask the coordinator, then the peers too.
        let ask = self.timing.inquire_after;
        let mut asks = Vec::new();
        for (&txn, p) in &mut self.prepared {
            if now < p.since + ask || p.asked.is_some_and(|t| now < t + ask) {
                continue;
            }
            p.asked = Some(now);
            asks.extend(self.topology.coordinators.iter().map(|&c| (txn, c)));
            if now >= p.since + 2 * ask {
                for &s in &p.participants {
                    let peer = self.topology.node_of(s);
                    if peer != self.id {
                        asks.push((txn, peer));
                    }
                }
            }
        }
        for (txn, to) in asks {
            out.send(to, Message::Inquire { txn });
        }
        out.set_timer(Timer::Tick, now + self.timing.inquire_after / 2);
    }
}

enum Locking {
    Granted,
    Wait,
    Conflict,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nb_participant() -> Participant {
        let members: Vec<NodeId> = (1..=5).map(NodeId).collect();
        let timing = ParticipantTiming {
            lock_wait_max: Duration::from_millis(100),
            inquire_after: Duration::from_millis(150),
            snapshot_every: 4096,
        };
        Participant::new(NodeId(4), Topology::replicated(&members, 3), timing)
    }

    fn at(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    /// Heard from no coordinator replica: a client is sent to each in turn, so its
    /// retries reach every one (a dead one is never named twice in a row).
    #[test]
    fn hint_names_every_coordinator_replica_in_turn() {
        let mut p = nb_participant();
        let hints: Vec<_> = (0..6).map(|_| p.coordinator_hint(at(0))).collect();
        let [a, b, c] = [1, 2, 3].map(|i| Some(NodeId(i)));
        assert_eq!(hints, vec![b, c, a, b, c, a]);
    }

    /// Heard from a replica (its PREPARE or DECIDE): it is named while it was heard
    /// from within `inquire_after` — that long inclusive —, then the turn resumes.
    /// A message from a shard is no sign of who coordinates.
    #[test]
    fn hint_names_the_replica_heard_from_only_while_it_is_heard_from() {
        let mut p = nb_participant();
        p.heard_from(at(1000), NodeId(3));
        p.heard_from(at(1100), NodeId(5)); // a shard, not a replica
        assert_eq!(p.coordinator_hint(at(1000)), Some(NodeId(3)));
        assert_eq!(p.coordinator_hint(at(1150)), Some(NodeId(3)), "inclusive");
        assert_eq!(p.coordinator_hint(at(1151)), Some(NodeId(2)), "went quiet");
        assert_eq!(p.coordinator_hint(at(1152)), Some(NodeId(3)));
        p.heard_from(at(2000), NodeId(1));
        assert_eq!(p.coordinator_hint(at(2010)), Some(NodeId(1)));
    }
}
