//! The coordinator (transaction manager), with **presumed abort** (Mohan, Lindsay &
//! Obermarck 1986): it writes a durable **decision record** only for commits, before
//! any COMMIT leaves (otherwise a crash after sending could forget a commit some
//! participants applied); an abort is never logged — a transaction it has no record
//! of is aborted, which is what it answers to any inquiry after a crash. Once every
//! participant acknowledged the commit it forgets the transaction (a `Forget`
//! record; the journal is compacted behind a snapshot).

use crate::journal::Journal;
use crate::message::{Message, Vote};
use crate::node::{Fx, Timer};
use crate::types::{AbortReason, Op, OpResult, ShardId, Topology, TxnId, TxnOutcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use synod_core::{codec, ClientId, NodeId, Outcome, Recovered, Time};

const META_INCARNATION: &str = "twopc.incarnation";

/// A record of the coordinator's journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Record {
    /// Commit `txn` (written before any COMMIT is sent).
    Decision { txn: TxnId, decided: Decided },
    /// Every participant acknowledged: forget it.
    Forget { txn: TxnId },
}

/// A committed transaction whose acknowledgements are still coming.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Decided {
    participants: Vec<ShardId>,
    client: ClientId,
    seq: u64,
    results: Vec<OpResult>,
    #[serde(skip)]
    acked: BTreeSet<ShardId>,
    #[serde(skip)]
    sent: Time,
    /// The decision record is known durable (recovered ones are).
    #[serde(skip, default = "durable")]
    durable: bool,
}

fn durable() -> bool {
    true
}

/// A transaction collecting votes.
#[derive(Clone, Debug)]
struct Active {
    client: ClientId,
    seq: u64,
    ops: usize,
    shards: BTreeMap<ShardId, Vec<(u32, Op)>>,
    reads: BTreeMap<u32, OpResult>,
    yes: BTreeSet<ShardId>,
    started: Time,
}

#[derive(Serialize, Deserialize)]
struct Image {
    decided: BTreeMap<TxnId, Decided>,
    sessions: BTreeMap<ClientId, (u64, Session)>,
}

/// A client's latest transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Session {
    /// Collecting votes: a retry waits for the same answer.
    Running,
    /// Committed: a retry gets these results again (never a second run).
    Committed(Vec<OpResult>),
    /// Aborted: nothing of it happened, so a retry runs it again.
    Aborted,
}

/// Timing knobs of the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoordinatorTiming {
    /// A transaction not fully voted this long aborts.
    pub vote_timeout: Duration,
    /// Unacknowledged COMMITs are sent again this often.
    pub resend_every: Duration,
    /// Journal records between snapshots.
    pub snapshot_every: u64,
}

/// The transaction manager.
pub struct Coordinator {
    id: NodeId,
    topology: Topology,
    timing: CoordinatorTiming,
    incarnation: u64,
    next: u64,
    active: BTreeMap<TxnId, Active>,
    decided: BTreeMap<TxnId, Decided>,
    /// Per client, its latest transaction's seq and state (commits survive
    /// restarts: they are in the decision records).
    sessions: BTreeMap<ClientId, (u64, Session)>,
    journal: Journal,
    /// Decision records whose batch is not yet known durable, by persist tag.
    awaiting: BTreeMap<u64, Vec<TxnId>>,
    persist_tag: u64,
}

impl Coordinator {
    pub(crate) fn new(id: NodeId, topology: Topology, timing: CoordinatorTiming) -> Coordinator {
        Coordinator {
            id,
            topology,
            timing,
            incarnation: 0,
            next: 0,
            active: BTreeMap::new(),
            decided: BTreeMap::new(),
            sessions: BTreeMap::new(),
            journal: Journal::new(timing.snapshot_every),
            awaiting: BTreeMap::new(),
            persist_tag: 0,
        }
    }

    /// Transactions collecting votes.
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Committed transactions not yet acknowledged by every participant.
    pub fn unacknowledged(&self) -> impl Iterator<Item = TxnId> + '_ {
        self.decided.keys().copied()
    }

    /// The commit decisions whose record is known durable — the ones that count
    /// (a decision lost in a crash before its record landed was never sent).
    pub fn durable_decisions(&self) -> impl Iterator<Item = TxnId> + '_ {
        (self.decided.iter())
            .filter(|(_, d)| d.durable)
            .map(|(&t, _)| t)
    }

    /// The driver reports batch `tag` (and every earlier one) durable.
    pub(crate) fn on_persisted(&mut self, tag: u64) {
        let later = self.awaiting.split_off(&(tag + 1));
        for txn in std::mem::replace(&mut self.awaiting, later)
            .into_values()
            .flatten()
        {
            if let Some(d) = self.decided.get_mut(&txn) {
                d.durable = true;
            }
        }
    }

    /// `true` if this coordinator holds a commit decision for `txn`.
    pub fn decided_commit(&self, txn: TxnId) -> bool {
        self.decided.contains_key(&txn)
    }

    // ----- recovery -----------------------------------------------------------------

    pub(crate) fn recover(&mut self, rec: Recovered, out: &mut Fx) -> Result<(), String> {
        if let Some(b) = rec.meta.get(META_INCARNATION) {
            self.incarnation = codec::decode(b).map_err(|e| format!("corrupt incarnation: {e}"))?;
        }
        // A new incarnation numbers transactions above every earlier one; durable
        // before any PREPARE of it leaves (sends wait for the batch).
        self.incarnation += 1;
        out.persist
            .set_meta(META_INCARNATION, codec::encode(&self.incarnation));
        let (image, records) = self.journal.recover::<Image, Record>("coordinator", &rec)?;
        if let Some(image) = image {
            self.decided = image.decided;
            self.sessions = image.sessions;
            // What was running when the snapshot was taken died with the crash
            // (presumed abort): a retry must run it again, not wait for it forever
            // (found by the 2PC review of 2026-12-03).
            for (_, session) in self.sessions.values_mut() {
                if *session == Session::Running {
                    *session = Session::Aborted;
                }
            }
        }
        for record in records {
            match record {
                Record::Decision { txn, decided } => {
                    let session = Session::Committed(decided.results.clone());
                    let newer = |(s, _): &(u64, Session)| *s > decided.seq;
                    if !self.sessions.get(&decided.client).is_some_and(newer) {
                        self.sessions.insert(decided.client, (decided.seq, session));
                    }
                    self.decided.insert(txn, decided);
                }
                Record::Forget { txn } => {
                    self.decided.remove(&txn);
                }
            }
        }
        Ok(())
    }

    fn journal(&mut self, record: Record, out: &mut Fx) {
        self.journal.append(&record, &mut out.persist);
        if self.journal.snapshot_due() {
            let image = Image {
                decided: self.decided.clone(),
                sessions: self.sessions.clone(),
            };
            self.journal.snapshot(&image, &mut out.persist);
        }
    }

    fn oldest_active(&self, or: TxnId) -> TxnId {
        self.active.keys().next().copied().unwrap_or(or).min(or)
    }

    // ----- clients --------------------------------------------------------------------

    pub(crate) fn on_client_request(
        &mut self,
        now: Time,
        client: ClientId,
        seq: u64,
        ops: Vec<Op>,
        out: &mut Fx,
    ) {
        match self.sessions.get(&client) {
            Some((s, _)) if *s > seq => return, // a stale retry
            Some((s, Session::Committed(results))) if *s == seq => {
                let answer = TxnOutcome::Committed(results.clone());
                return out.reply(client, seq, Outcome::Done(answer));
            }
            Some((s, Session::Running)) if *s == seq => return, // answered when decided
            _ => {}
        }
        if ops.is_empty() {
            self.sessions
                .insert(client, (seq, Session::Committed(Vec::new())));
            let answer = TxnOutcome::Committed(Vec::new());
            return out.reply(client, seq, Outcome::Done(answer));
        }
        self.sessions.insert(client, (seq, Session::Running));
        self.next += 1;
        assert!(self.next < 1 << 32, "2^32 transactions in one incarnation");
        let txn = TxnId(self.incarnation << 32 | self.next);
        let mut shards: BTreeMap<ShardId, Vec<(u32, Op)>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            let shard = self.topology.shard_of(op.key());
            shards
                .entry(shard)
                .or_default()
                .push((i as u32, op.clone()));
        }
        let participants: Vec<ShardId> = shards.keys().copied().collect();
        let active_from = self.oldest_active(txn);
        for (&shard, shard_ops) in &shards {
            let prepare = Message::Prepare {
                txn,
                ops: shard_ops.clone(),
                participants: participants.clone(),
                active_from,
            };
            out.send(self.topology.node_of(shard), prepare);
        }
        let active = Active {
            client,
            seq,
            ops: ops.len(),
            shards,
            reads: BTreeMap::new(),
            yes: BTreeSet::new(),
            started: now,
        };
        self.active.insert(txn, active);
    }

    // ----- votes and the decision -------------------------------------------------------

    pub(crate) fn on_vote(
        &mut self,
        now: Time,
        from: NodeId,
        txn: TxnId,
        vote: Vote,
        out: &mut Fx,
    ) {
        let Some(shard) = self.topology.shard_owned_by(from) else {
            return;
        };
        let Some(active) = self.active.get_mut(&txn) else {
            // Decided already. Not answered: a late copy of a YES can arrive after
            // the commit was acknowledged and forgotten, where "no record" no longer
            // means aborted; a participant truly in doubt asks (`Inquire`).
            return;
        };
        match vote {
            Vote::No(reason) => self.abort(txn, reason, out),
            Vote::Yes(reads) => {
                if !active.shards.contains_key(&shard) {
                    return;
                }
                active.reads.extend(reads);
                active.yes.insert(shard);
                if active.yes.len() == active.shards.len() {
                    self.commit(now, txn, out);
                }
            }
        }
    }

    fn commit(&mut self, now: Time, txn: TxnId, out: &mut Fx) {
        let active = self.active.remove(&txn).expect("active");
        let results: Vec<OpResult> = (0..active.ops as u32)
            .map(|i| active.reads.get(&i).cloned().unwrap_or(OpResult::Done))
            .collect();
        let decided = Decided {
            participants: active.shards.keys().copied().collect(),
            client: active.client,
            seq: active.seq,
            results: results.clone(),
            acked: BTreeSet::new(),
            sent: now,
            durable: false,
        };
        let answer = TxnOutcome::Committed(results.clone());
        self.settle_session(active.client, active.seq, Session::Committed(results));
        for &shard in &decided.participants {
            // These wait for the decision record (persist before send).
            out.send(
                self.topology.node_of(shard),
                Message::Decide { txn, commit: true },
            );
        }
        out.reply(active.client, active.seq, Outcome::Done(answer));
        // In the table before the record, so a snapshot taken at it holds it.
        self.decided.insert(txn, decided.clone());
        self.journal(Record::Decision { txn, decided }, out);
        let tag = *out.persist_notify.get_or_insert_with(|| {
            self.persist_tag += 1;
            self.persist_tag
        });
        self.awaiting.entry(tag).or_default().push(txn);
    }

    /// Aborts an undecided transaction: no record (presumed abort).
    fn abort(&mut self, txn: TxnId, reason: AbortReason, out: &mut Fx) {
        let active = self.active.remove(&txn).expect("active");
        for &shard in active.shards.keys() {
            out.send(
                self.topology.node_of(shard),
                Message::Decide { txn, commit: false },
            );
        }
        let answer = TxnOutcome::Aborted(reason);
        self.settle_session(active.client, active.seq, Session::Aborted);
        out.reply(active.client, active.seq, Outcome::Done(answer));
    }

    /// Records how `(client, seq)` ended — unless the client has moved on to a later
    /// request: a late end of an earlier attempt must not replace the record of a
    /// later, committed one, or that one's retry would run it twice (found by
    /// `synod check --protocol twopc --faults all`, seed 635).
    fn settle_session(&mut self, client: ClientId, seq: u64, session: Session) {
        match self.sessions.get(&client) {
            Some((latest, _)) if *latest > seq => {}
            _ => {
                self.sessions.insert(client, (seq, session));
            }
        }
    }

    pub(crate) fn on_ack(&mut self, from: NodeId, txn: TxnId, out: &mut Fx) {
        let Some(shard) = self.topology.shard_owned_by(from) else {
            return;
        };
        let Some(decided) = self.decided.get_mut(&txn) else {
            return;
        };
        decided.acked.insert(shard);
        if decided.acked.len() == decided.participants.len() {
            self.decided.remove(&txn);
            self.journal(Record::Forget { txn }, out);
        }
    }

    pub(crate) fn on_inquire(&mut self, from: NodeId, txn: TxnId, out: &mut Fx) {
        if self.active.contains_key(&txn) {
            // Undecided: a participant in doubt long enough means something is slow
            // or gone; abort (allowed until the decision).
            self.abort(txn, AbortReason::Timeout, out);
        }
        let commit = self.decided.contains_key(&txn);
        out.send(
            from,
            Message::Known {
                txn,
                outcome: Some(commit),
            },
        );
    }

    pub(crate) fn on_start(&mut self, now: Time, out: &mut Fx) {
        for (&txn, d) in &mut self.decided {
            d.sent = now;
            for &shard in &d.participants {
                out.send(
                    self.topology.node_of(shard),
                    Message::Decide { txn, commit: true },
                );
            }
        }
        out.set_timer(Timer::Tick, now + self.timing.resend_every);
    }

    pub(crate) fn on_tick(&mut self, now: Time, out: &mut Fx) {
        let late: Vec<TxnId> = (self.active.iter())
            .filter(|(_, a)| now >= a.started + self.timing.vote_timeout)
            .map(|(&t, _)| t)
            .collect();
        for txn in late {
            self.abort(txn, AbortReason::Timeout, out);
        }
        for (&txn, d) in &mut self.decided {
            if now < d.sent + self.timing.resend_every {
                continue;
            }
            d.sent = now;
            for &shard in d.participants.iter().filter(|s| !d.acked.contains(s)) {
                out.send(
                    self.topology.node_of(shard),
                    Message::Decide { txn, commit: true },
                );
            }
        }
        out.set_timer(Timer::Tick, now + self.timing.resend_every);
        let _ = self.id;
    }
}
