//! The coordinator (transaction manager), with **presumed abort** (Mohan, Lindsay &
//! Obermarck 1986): it makes a **decision record** durable only for commits, before
//! any COMMIT leaves (otherwise a crash after sending could forget a commit some
//! participants applied); an abort is never logged — a transaction it has no record
//! of is aborted, which is what it answers to any inquiry. Once every participant
//! acknowledged the commit it forgets the transaction (a `Forget` record).
//!
//! Where the records go is a [`DecisionLog`]: the classic coordinator's own journal
//! ([`LocalLog`], `twopc`), or a replicated log (`twopc-nb`: the harness runs the
//! coordinator on Raft's replicas, its leader coordinating, and proposes the records
//! as commands of the [`Decisions`] state machine). The coordinator's rules are the
//! same for both; what changes is who may coordinate, in which **epoch**:
//!
//! * classic: the coordinator's durable incarnation, one more after every restart;
//! * replicated: the Raft term of a leader that has applied its term's first entry
//!   — every decision an earlier leader could still get committed is then in its
//!   state machine, so "no record and an older epoch" means aborted (Raft's Leader
//!   Completeness, §5.4), exactly as "no record" does after a classic restart.
//!
//! Transaction ids carry their epoch, so they never repeat across restarts or
//! leaders.

use crate::message::{Message, Vote};
use crate::node::{Fx, Timer};
use crate::types::{AbortReason, Op, OpResult, ShardId, Topology, TxnId, TxnOutcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use synod_core::Journal;
use synod_core::{codec, ClientId, NodeId, Outcome, Recovered, StateMachine, Time};

const META_INCARNATION: &str = "twopc.incarnation";

// ----- the durable state --------------------------------------------------------------

/// A commit decision: what the COMMITs and the client's answer need.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decided {
    /// The shards that voted YES.
    pub participants: Vec<ShardId>,
    /// The client that asked.
    pub client: ClientId,
    /// Its request's sequence number.
    pub seq: u64,
    /// What the transaction's operations returned.
    pub results: Vec<OpResult>,
}

/// A record of the coordinator's log: a command of [`Decisions`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DecisionCmd {
    /// Commit `txn` (durable before any COMMIT is sent).
    Commit {
        /// The transaction.
        txn: TxnId,
        /// Its decision.
        decided: Decided,
    },
    /// Every participant acknowledged: forget it.
    Forget {
        /// The transaction.
        txn: TxnId,
    },
}

/// What applying a [`DecisionCmd`] did.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DecisionOutput {
    /// `txn` is committed.
    Committed(TxnId),
    /// Not committed: its client's request was already committed by another
    /// transaction (a retry run twice) — so this one aborts, and the client gets the
    /// first one's results.
    Duplicate(TxnId),
    /// Forgotten (or never held).
    Forgotten(TxnId),
}

/// The coordinator's durable state, as a [`StateMachine`] so a replicated log can
/// hold it: the commits not yet acknowledged by every participant, and per client
/// its latest committed request with its results (a retry gets them again, never a
/// second run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decisions {
    decided: BTreeMap<TxnId, Decided>,
    sessions: BTreeMap<ClientId, (u64, Vec<OpResult>)>,
}

impl Decisions {
    /// The commit decision for `txn`, while it is held.
    pub fn decision(&self, txn: TxnId) -> Option<&Decided> {
        self.decided.get(&txn)
    }

    /// The commits held (not yet acknowledged by every participant).
    pub fn commits(&self) -> impl Iterator<Item = TxnId> + '_ {
        self.decided.keys().copied()
    }

    /// `client`'s latest committed request: its seq and results.
    pub fn session(&self, client: ClientId) -> Option<&(u64, Vec<OpResult>)> {
        self.sessions.get(&client)
    }
}

impl StateMachine for Decisions {
    type Command = DecisionCmd;
    type Output = DecisionOutput;
    type Query = TxnId;
    type QueryOutput = bool;

    fn apply(&mut self, cmd: &DecisionCmd) -> DecisionOutput {
        match cmd {
            DecisionCmd::Commit { txn, decided } => {
                if self.decided.contains_key(txn) {
                    return DecisionOutput::Committed(*txn);
                }
                match self.sessions.get(&decided.client) {
                    // A later request of this client committed: a late end of an
                    // earlier attempt must not replace it, or its retry would run
                    // twice (found by `synod check --protocol twopc`, seed 635).
                    Some((latest, _)) if *latest > decided.seq => {}
                    Some((latest, _)) if *latest == decided.seq => {
                        return DecisionOutput::Duplicate(*txn);
                    }
                    _ => {
                        let session = (decided.seq, decided.results.clone());
                        self.sessions.insert(decided.client, session);
                    }
                }
                self.decided.insert(*txn, decided.clone());
                DecisionOutput::Committed(*txn)
            }
            DecisionCmd::Forget { txn } => {
                self.decided.remove(txn);
                DecisionOutput::Forgotten(*txn)
            }
        }
    }

    /// Whether `txn` is held committed.
    fn query(&self, txn: &TxnId) -> bool {
        self.decided.contains_key(txn)
    }
}

/// Where the coordinator's records go.
pub trait DecisionLog {
    /// The records applied so far.
    fn decisions(&self) -> &Decisions;

    /// Makes `cmd` durable. `Some(output)` if it is applied at once — its record is
    /// in `out.persist`, so what the caller sends about it waits for that batch;
    /// `None` if the output comes later, through [`Coordinator::on_decided`], once
    /// the record is durable on a quorum.
    fn propose(&mut self, cmd: DecisionCmd, out: &mut Fx) -> Option<DecisionOutput>;
}

/// The classic coordinator's log: its own journal, behind snapshots of
/// [`Decisions`], and its durable incarnation.
pub struct LocalLog {
    state: Decisions,
    journal: Journal,
    incarnation: u64,
    /// Commit records whose batch is not yet known durable, by persist tag.
    awaiting: BTreeMap<u64, Vec<TxnId>>,
    not_durable: BTreeSet<TxnId>,
    persist_tag: u64,
}

impl LocalLog {
    pub(crate) fn new(snapshot_every: u64) -> LocalLog {
        LocalLog {
            state: Decisions::default(),
            journal: Journal::new(snapshot_every),
            incarnation: 0,
            awaiting: BTreeMap::new(),
            not_durable: BTreeSet::new(),
            persist_tag: 0,
        }
    }

    /// Rebuilds the state from storage and starts the next incarnation (durable
    /// before any PREPARE of it leaves: sends wait for the batch); returns it.
    pub(crate) fn recover(&mut self, rec: &Recovered, out: &mut Fx) -> Result<u64, String> {
        if let Some(b) = rec.meta.get(META_INCARNATION) {
            self.incarnation = codec::decode(b).map_err(|e| format!("corrupt incarnation: {e}"))?;
        }
        self.incarnation += 1;
        out.persist
            .set_meta(META_INCARNATION, codec::encode(&self.incarnation));
        let (image, records) =
            (self.journal).recover::<Decisions, DecisionCmd>("coordinator", rec)?;
        self.state = image.unwrap_or_default();
        for record in &records {
            self.state.apply(record);
        }
        Ok(self.incarnation)
    }

    /// The commit decisions whose record is known durable — the ones that count (a
    /// decision lost in a crash before its record landed was never sent).
    pub fn durable_decisions(&self) -> impl Iterator<Item = TxnId> + '_ {
        (self.state.commits()).filter(|t| !self.not_durable.contains(t))
    }

    /// The driver reports batch `tag` (and every earlier one) durable.
    pub(crate) fn on_persisted(&mut self, tag: u64) {
        let later = self.awaiting.split_off(&(tag + 1));
        for txn in std::mem::replace(&mut self.awaiting, later)
            .into_values()
            .flatten()
        {
            self.not_durable.remove(&txn);
        }
    }
}

impl DecisionLog for LocalLog {
    fn decisions(&self) -> &Decisions {
        &self.state
    }

    fn propose(&mut self, cmd: DecisionCmd, out: &mut Fx) -> Option<DecisionOutput> {
        let output = self.state.apply(&cmd);
        self.journal.append(&cmd, &mut out.persist);
        if let DecisionOutput::Committed(txn) = output {
            let tag = *out.persist_notify.get_or_insert_with(|| {
                self.persist_tag += 1;
                self.persist_tag
            });
            self.awaiting.entry(tag).or_default().push(txn);
            self.not_durable.insert(txn);
        }
        if self.journal.snapshot_due() {
            self.journal.snapshot(&self.state, &mut out.persist);
        }
        Some(output)
    }
}

// ----- the coordinator ------------------------------------------------------------------

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

/// A held commit's acknowledgements (not durable: after a restart or a new leader,
/// every participant is told again).
#[derive(Clone, Debug)]
struct Progress {
    participants: Vec<ShardId>,
    acked: BTreeSet<ShardId>,
    sent: Time,
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
    topology: Topology,
    timing: CoordinatorTiming,
    /// The epoch it coordinates in; `None` while it may not (a replica that is not
    /// the caught-up leader).
    epoch: Option<u64>,
    next: u64,
    active: BTreeMap<TxnId, Active>,
    /// Commit proposed to a replicated log, its output not known yet.
    deciding: BTreeMap<TxnId, Decided>,
    progress: BTreeMap<TxnId, Progress>,
    /// Per client, its latest request seen here and whether it is still running
    /// (`false`: aborted — a retry runs it again). Commits are in the log.
    latest: BTreeMap<ClientId, (u64, bool)>,
    /// Per client, its latest request and the id of that request's first attempt:
    /// the age every retry carries (`Message::Prepare::age`). Volatile: after a
    /// restart or a change of leader a retry starts young again, which costs
    /// fairness only.
    ages: BTreeMap<ClientId, (u64, TxnId)>,
}

impl Coordinator {
    /// A coordinator of `topology`, not yet coordinating (see [`Coordinator::lead`]).
    pub fn new(topology: Topology, timing: CoordinatorTiming) -> Coordinator {
        Coordinator {
            topology,
            timing,
            epoch: None,
            next: 0,
            active: BTreeMap::new(),
            deciding: BTreeMap::new(),
            progress: BTreeMap::new(),
            latest: BTreeMap::new(),
            ages: BTreeMap::new(),
        }
    }

    /// The epoch it coordinates in, if it does.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// Transactions collecting votes, or whose commit is being logged.
    pub fn active(&self) -> usize {
        self.active.len() + self.deciding.len()
    }

    /// Committed transactions not yet acknowledged by every participant.
    pub fn unacknowledged(&self) -> impl Iterator<Item = TxnId> + '_ {
        self.progress.keys().copied()
    }

    /// Starts coordinating in `epoch` (above every earlier one): tells every
    /// participant of a held commit again and arms the tick.
    pub fn lead(&mut self, now: Time, epoch: u64, decisions: &Decisions, out: &mut Fx) {
        assert!(
            self.epoch.is_none_or(|e| e < epoch),
            "epochs only grow: {epoch} after {:?}",
            self.epoch
        );
        self.epoch = Some(epoch);
        self.next = 0;
        self.progress.clear();
        for txn in decisions.commits() {
            let d = decisions.decision(txn).expect("held");
            self.progress.insert(
                txn,
                Progress {
                    participants: d.participants.clone(),
                    acked: BTreeSet::new(),
                    sent: now,
                },
            );
            self.send_decisions(txn, true, &d.participants, out);
        }
        out.set_timer(Timer::Tick, now + self.timing.resend_every);
    }

    /// Stops coordinating (a replica lost its leadership): what collected votes here
    /// aborts — never proposed, so it can never commit —; what is being logged ends
    /// as the log decides, answered to the participants by whoever leads next.
    pub fn step_down(&mut self, out: &mut Fx) {
        self.epoch = None;
        for txn in self.active.keys().copied().collect::<Vec<_>>() {
            self.abort(txn, AbortReason::Timeout, out);
        }
        self.deciding.clear();
        self.progress.clear();
        self.latest.retain(|_, (_, running)| !*running);
        out.cancel_timer(Timer::Tick);
    }

    fn oldest_active(&self, or: TxnId) -> TxnId {
        let active = self.active.keys().next().copied();
        let deciding = self.deciding.keys().next().copied();
        [active, deciding, Some(or)]
            .into_iter()
            .flatten()
            .min()
            .expect("or")
    }

    fn send_decisions(&self, txn: TxnId, commit: bool, shards: &[ShardId], out: &mut Fx) {
        for &shard in shards {
            out.send(
                self.topology.node_of(shard),
                Message::Decide { txn, commit },
            );
        }
    }

    // ----- clients --------------------------------------------------------------------

    /// A client's transaction.
    ///
    /// # Panics
    /// If it does not coordinate (the caller answers `NotLeader` instead).
    pub fn on_client_request(
        &mut self,
        now: Time,
        client: ClientId,
        seq: u64,
        ops: Vec<Op>,
        decisions: &Decisions,
        out: &mut Fx,
    ) {
        let epoch = self
            .epoch
            .expect("a client request reaches a coordinating node");
        match decisions.session(client) {
            Some((s, _)) if *s > seq => return, // a stale retry
            Some((s, results)) if *s == seq => {
                let answer = TxnOutcome::Committed(results.clone());
                return out.reply(client, seq, Outcome::Done(answer));
            }
            _ => {}
        }
        match self.latest.get(&client) {
            Some((s, _)) if *s > seq => return,
            Some((s, true)) if *s == seq => return, // answered when decided
            _ => {}
        }
        if ops.is_empty() {
            let answer = TxnOutcome::Committed(Vec::new());
            self.latest.insert(client, (seq, false));
            return out.reply(client, seq, Outcome::Done(answer));
        }
        self.latest.insert(client, (seq, true));
        self.next += 1;
        let txn = TxnId::new(epoch, self.next);
        let age = match self.ages.get(&client) {
            Some(&(s, age)) if s == seq => age, // a retry keeps its first attempt's age
            _ => txn,
        };
        self.ages.insert(client, (seq, age));
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
                age,
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

    /// A participant's vote.
    pub fn on_vote(
        &mut self,
        now: Time,
        from: NodeId,
        txn: TxnId,
        vote: Vote,
        log: &mut impl DecisionLog,
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
                    self.commit(now, txn, log, out);
                }
            }
        }
    }

    /// Every participant voted YES: log the decision, then tell them.
    fn commit(&mut self, now: Time, txn: TxnId, log: &mut impl DecisionLog, out: &mut Fx) {
        let active = self.active.remove(&txn).expect("active");
        let results: Vec<OpResult> = (0..active.ops as u32)
            .map(|i| active.reads.get(&i).cloned().unwrap_or(OpResult::Done))
            .collect();
        let decided = Decided {
            participants: active.shards.keys().copied().collect(),
            client: active.client,
            seq: active.seq,
            results,
        };
        self.deciding.insert(txn, decided.clone());
        if let Some(output) = log.propose(DecisionCmd::Commit { txn, decided }, out) {
            self.on_decided(now, output, log.decisions(), out);
        }
    }

    /// The log applied a record proposed here (or, replicated, anywhere): tell the
    /// participants and the client. Everything sent waits for the record (persist
    /// before send; a replicated record is durable on a quorum already).
    pub fn on_decided(
        &mut self,
        now: Time,
        output: DecisionOutput,
        decisions: &Decisions,
        out: &mut Fx,
    ) {
        let (txn, committed) = match output {
            DecisionOutput::Committed(txn) => (txn, true),
            DecisionOutput::Duplicate(txn) => (txn, false),
            DecisionOutput::Forgotten(_) => return,
        };
        let Some(decided) = self.deciding.remove(&txn) else {
            return;
        };
        self.send_decisions(txn, committed, &decided.participants, out);
        self.settle_latest(decided.client, decided.seq);
        let results = match committed {
            true => decided.results,
            false => {
                let (_, results) = decisions.session(decided.client).expect("a duplicate");
                results.clone()
            }
        };
        let answer = TxnOutcome::Committed(results);
        out.reply(decided.client, decided.seq, Outcome::Done(answer));
        if committed && self.epoch.is_some() {
            let progress = Progress {
                participants: decided.participants,
                acked: BTreeSet::new(),
                sent: now,
            };
            self.progress.insert(txn, progress);
        }
    }

    /// Aborts an undecided transaction: no record (presumed abort).
    fn abort(&mut self, txn: TxnId, reason: AbortReason, out: &mut Fx) {
        let active = self.active.remove(&txn).expect("active");
        let shards: Vec<ShardId> = active.shards.keys().copied().collect();
        self.send_decisions(txn, false, &shards, out);
        if self.latest.get(&active.client) == Some(&(active.seq, true)) {
            self.latest.insert(active.client, (active.seq, false));
        }
        let answer = TxnOutcome::Aborted(reason);
        out.reply(active.client, active.seq, Outcome::Done(answer));
    }

    /// `(client, seq)` ended in the log: no longer running here — unless the client
    /// moved on to a later request.
    fn settle_latest(&mut self, client: ClientId, seq: u64) {
        if self.latest.get(&client).is_some_and(|&(s, _)| s == seq) {
            self.latest.remove(&client);
        }
    }

    /// A participant applied the commit.
    pub fn on_ack(&mut self, from: NodeId, txn: TxnId, log: &mut impl DecisionLog, out: &mut Fx) {
        let Some(shard) = self.topology.shard_owned_by(from) else {
            return;
        };
        let Some(progress) = self.progress.get_mut(&txn) else {
            return;
        };
        progress.acked.insert(shard);
        if progress.acked.len() == progress.participants.len() {
            self.progress.remove(&txn);
            log.propose(DecisionCmd::Forget { txn }, out);
        }
    }

    /// An in-doubt participant asks.
    pub fn on_inquire(&mut self, from: NodeId, txn: TxnId, decisions: &Decisions, out: &mut Fx) {
        let outcome = if self.active.contains_key(&txn) {
            // Undecided: a participant in doubt long enough means something is slow
            // or gone; abort (allowed until the decision).
            self.abort(txn, AbortReason::Timeout, out);
            Some(false)
        } else if self.deciding.contains_key(&txn) {
            None // the log decides; the participants hear it then
        } else if decisions.decision(txn).is_some() {
            Some(true)
        } else if self.epoch.is_some_and(|e| txn.epoch() <= e) {
            // No record: never committed by an earlier epoch (all of whose commits
            // are in the log now), nor by this one (not running here): presumed
            // abort.
            Some(false)
        } else {
            None // not coordinating, or a later epoch's: not ours to answer
        };
        tracing::debug!(%txn, ?outcome, %from, epoch = ?self.epoch, "inquiry");
        if let Some(commit) = outcome {
            let outcome = Some(commit);
            out.send(from, Message::Known { txn, outcome });
        }
    }

    /// Times out votes, resends unacknowledged COMMITs.
    pub fn on_tick(&mut self, now: Time, out: &mut Fx) {
        if self.epoch.is_none() {
            return;
        }
        let late: Vec<TxnId> = (self.active.iter())
            .filter(|(_, a)| now >= a.started + self.timing.vote_timeout)
            .map(|(&t, _)| t)
            .collect();
        for txn in late {
            self.abort(txn, AbortReason::Timeout, out);
        }
        for (&txn, p) in &mut self.progress {
            if now < p.sent + self.timing.resend_every {
                continue;
            }
            p.sent = now;
            for &shard in p.participants.iter().filter(|s| !p.acked.contains(s)) {
                out.send(
                    self.topology.node_of(shard),
                    Message::Decide { txn, commit: true },
                );
            }
        }
        out.set_timer(Timer::Tick, now + self.timing.resend_every);
    }
}
