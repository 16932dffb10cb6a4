//! The coordinator (transaction manager), with **presumed abort** (Mohan, Lindsay &
//! Obermarck 1986): it makes a **decision record** durable only for commits, before
//! any COMMIT leaves (otherwise a crash after sending could forget a commit some
//! participants applied); no abort decision is logged — a transaction it has no
//! record of is aborted, which is what it answers to any inquiry. Once every participant
//! acknowledged the commit it forgets the transaction (a `Forget` record).
//!
//! Presumed abort covers the *participants*; a *client* needs more. An abort the
//! application refused (a `Cas` that found another value, an overdrawing `Add`) is
//! a final answer — the client does not retry it — so it is logged too, in the
//! client's session, before it is answered (a `Refuse` record): a delayed copy of
//! the same request, or a retry through another coordinator, gets the same answer
//! and never runs again. Without it a copy held by the network could commit a
//! request its client was told had failed (`synod check --protocol twopc-nb
//! --swarm`, seed 5011). Conflict and timeout aborts are answered at once: the
//! client retries them, so a later attempt committing is what it asked for.
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
    /// The application refused `txn`, an attempt at `client`'s request `seq`: that
    /// request's final answer (durable before it is given).
    Refuse {
        /// The aborted attempt.
        txn: TxnId,
        /// The client that asked.
        client: ClientId,
        /// Its request's sequence number.
        seq: u64,
    },
}

/// What applying a [`DecisionCmd`] did.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DecisionOutput {
    /// `txn` is committed.
    Committed(TxnId),
    /// Not committed: its client's request was already answered through another
    /// transaction (a retry run twice) — so this one aborts, and the client gets the
    /// first one's answer, its session's, carried here (a replicated log may apply
    /// later records before the caller reads the state).
    Duplicate(TxnId, TxnOutcome),
    /// `txn`'s refusal is its request's answer (recorded, or about a request its
    /// client has moved on from).
    Refused(TxnId),
    /// Forgotten (or never held).
    Forgotten(TxnId),
}

/// A client's latest answered request: what every copy of it is answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Session {
    /// The request's sequence number.
    pub seq: u64,
    /// Its answer: committed with results, or refused.
    pub answer: TxnOutcome,
}

/// The coordinator's durable state, as a [`StateMachine`] so a replicated log can
/// hold it: the commits not yet acknowledged by every participant, and per client
/// its latest request with a final answer — committed with its results, or refused
/// (a retry gets the answer again, never a second run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decisions {
    decided: BTreeMap<TxnId, Decided>,
    sessions: BTreeMap<ClientId, Session>,
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

    /// `client`'s latest request with a final answer.
    pub fn session(&self, client: ClientId) -> Option<&Session> {
        self.sessions.get(&client)
    }

    /// Records `answer` as `client`'s request `seq`'s, once: `Err` with the first
    /// answer if that request has one already (an attempt run twice). A request
    /// older than the session's is not recorded — a late end of an earlier attempt
    /// must not replace a later request's answer, or that one's retry would run
    /// twice (found by `synod check --protocol twopc`, seed 635).
    fn answer(
        &mut self,
        client: ClientId,
        seq: u64,
        answer: impl FnOnce() -> TxnOutcome,
    ) -> Result<(), TxnOutcome> {
        match self.sessions.get(&client) {
            Some(session) if session.seq > seq => {}
            Some(session) if session.seq == seq => return Err(session.answer.clone()),
            _ => {
                let answer = answer();
                self.sessions.insert(client, Session { seq, answer });
            }
        }
        Ok(())
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
                let answer = || TxnOutcome::Committed(decided.results.clone());
                if let Err(first) = self.answer(decided.client, decided.seq, answer) {
                    return DecisionOutput::Duplicate(*txn, first);
                }
                self.decided.insert(*txn, decided.clone());
                DecisionOutput::Committed(*txn)
            }
            DecisionCmd::Forget { txn } => {
                self.decided.remove(txn);
                DecisionOutput::Forgotten(*txn)
            }
            DecisionCmd::Refuse { txn, client, seq } => {
                let answer = || TxnOutcome::Aborted(AbortReason::Refused);
                match self.answer(*client, *seq, answer) {
                    Err(first) => DecisionOutput::Duplicate(*txn, first),
                    Ok(()) => DecisionOutput::Refused(*txn),
                }
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
    /// Refusals being logged (the transaction aborted, its client not yet answered):
    /// the client and its request's seq.
    refusing: BTreeMap<TxnId, (ClientId, u64)>,
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
            refusing: BTreeMap::new(),
            progress: BTreeMap::new(),
            latest: BTreeMap::new(),
            ages: BTreeMap::new(),
        }
    }

    /// The epoch it coordinates in, if it does.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// Transactions collecting votes, or whose commit or refusal is being logged.
    pub fn active(&self) -> usize {
        self.active.len() + self.deciding.len() + self.refusing.len()
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
        self.refusing.clear();
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
            Some(session) if session.seq > seq => return, // a stale retry
            Some(session) if session.seq == seq => {
                let answer = session.answer.clone();
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
            Vote::No(AbortReason::Refused) => self.refuse(now, txn, log, out),
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
            self.on_decided(now, output, out);
        }
    }

    /// The application refused `txn`: abort it at once (its participants need no
    /// record), and answer its client once the refusal is logged — the answer is
    /// final, so every later copy of the request must get it too.
    fn refuse(&mut self, now: Time, txn: TxnId, log: &mut impl DecisionLog, out: &mut Fx) {
        let active = self.abort_at_participants(txn, out);
        let (client, seq) = (active.client, active.seq);
        self.refusing.insert(txn, (client, seq));
        if let Some(output) = log.propose(DecisionCmd::Refuse { txn, client, seq }, out) {
            self.on_decided(now, output, out);
        }
    }

    /// The log applied a record proposed here (or, replicated, anywhere): tell the
    /// participants and the client. Everything sent waits for the record (persist
    /// before send; a replicated record is durable on a quorum already).
    pub fn on_decided(&mut self, now: Time, output: DecisionOutput, out: &mut Fx) {
        let (txn, answer) = match output {
            DecisionOutput::Committed(txn) => (txn, None),
            DecisionOutput::Duplicate(txn, answer) => (txn, Some(answer)),
            DecisionOutput::Refused(txn) => (txn, Some(TxnOutcome::Aborted(AbortReason::Refused))),
            DecisionOutput::Forgotten(_) => return,
        };
        if let Some((client, seq)) = self.refusing.remove(&txn) {
            // Aborted already; the answer is this refusal, or the commit of another
            // attempt logged first (a refusal about a request its client moved on
            // from is answered too: it no longer waits for it).
            self.settle_latest(client, seq);
            let answer = answer.expect("a refusal ends refused or as a duplicate");
            return out.reply(client, seq, Outcome::Done(answer));
        }
        let Some(decided) = self.deciding.remove(&txn) else {
            return;
        };
        let committed = answer.is_none();
        self.send_decisions(txn, committed, &decided.participants, out);
        self.settle_latest(decided.client, decided.seq);
        let answer = answer.unwrap_or(TxnOutcome::Committed(decided.results));
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
        let active = self.abort_at_participants(txn, out);
        if self.latest.get(&active.client) == Some(&(active.seq, true)) {
            self.latest.insert(active.client, (active.seq, false));
        }
        let answer = TxnOutcome::Aborted(reason);
        out.reply(active.client, active.seq, Outcome::Done(answer));
    }

    /// Ends an undecided transaction at its participants: ABORT to each, no record.
    fn abort_at_participants(&mut self, txn: TxnId, out: &mut Fx) -> Active {
        let active = self.active.remove(&txn).expect("active");
        let shards: Vec<ShardId> = active.shards.keys().copied().collect();
        self.send_decisions(txn, false, &shards, out);
        active
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

#[cfg(test)]
mod tests {
    use super::*;

    const C: ClientId = ClientId(1);

    fn commit(n: u64, seq: u64) -> DecisionCmd {
        let decided = Decided {
            participants: vec![ShardId(0)],
            client: C,
            seq,
            results: vec![OpResult::Done],
        };
        DecisionCmd::Commit {
            txn: TxnId::new(1, n),
            decided,
        }
    }

    fn refuse(n: u64, seq: u64) -> DecisionCmd {
        DecisionCmd::Refuse {
            txn: TxnId::new(1, n),
            client: C,
            seq,
        }
    }

    fn session(d: &Decisions) -> (u64, TxnOutcome) {
        let s = d.session(C).expect("a session");
        (s.seq, s.answer.clone())
    }

    const REFUSED: TxnOutcome = TxnOutcome::Aborted(AbortReason::Refused);

    fn done() -> TxnOutcome {
        TxnOutcome::Committed(vec![OpResult::Done])
    }

    /// Seed 5011's rule: a refusal is its request's answer; an attempt of the same
    /// request committing later is a duplicate — aborted, answered "refused".
    #[test]
    fn at_most_once_a_refused_request_never_commits_afterwards() {
        let mut d = Decisions::default();
        assert_eq!(
            d.apply(&refuse(1, 5)),
            DecisionOutput::Refused(TxnId::new(1, 1))
        );
        assert_eq!(session(&d), (5, REFUSED));
        let dup = DecisionOutput::Duplicate(TxnId::new(1, 2), REFUSED);
        assert_eq!(d.apply(&commit(2, 5)), dup);
        assert_eq!(
            d.commits().count(),
            0,
            "the duplicate is not held committed"
        );
        assert!(!d.query(&TxnId::new(1, 2)));
    }

    /// The other order: a committed request refused by a later attempt keeps its
    /// commit as the answer (the refusing attempt's client gets the results).
    #[test]
    fn at_most_once_a_committed_request_is_never_answered_refused() {
        let mut d = Decisions::default();
        assert_eq!(
            d.apply(&commit(1, 5)),
            DecisionOutput::Committed(TxnId::new(1, 1))
        );
        let dup = DecisionOutput::Duplicate(TxnId::new(1, 2), done());
        assert_eq!(d.apply(&refuse(2, 5)), dup);
        assert_eq!(session(&d), (5, done()));
        assert!(d.query(&TxnId::new(1, 1)));
        assert_eq!(d.decision(TxnId::new(1, 1)).map(|x| x.seq), Some(5));
    }

    /// A late record of an earlier request never replaces the session of a later
    /// one (seed 635's rule, now for refusals too): the later request's copies must
    /// keep getting its answer.
    #[test]
    fn sessions_a_late_record_of_an_earlier_request_keeps_the_later_answer() {
        let mut d = Decisions::default();
        d.apply(&commit(1, 6));
        assert_eq!(
            d.apply(&refuse(2, 5)),
            DecisionOutput::Refused(TxnId::new(1, 2))
        );
        assert_eq!(session(&d), (6, done()));
        d.apply(&refuse(3, 7));
        assert_eq!(
            d.apply(&commit(4, 6)),
            DecisionOutput::Committed(TxnId::new(1, 4))
        );
        assert_eq!(
            session(&d),
            (7, REFUSED),
            "a late commit of 6 after 7's answer"
        );
    }

    /// A later request's commit replaces an earlier one's session: its copies get
    /// the later answer, the earlier request's copies are stale.
    #[test]
    fn sessions_a_later_request_replaces_the_earlier_answer() {
        let mut d = Decisions::default();
        d.apply(&refuse(1, 5));
        assert_eq!(
            d.apply(&commit(2, 6)),
            DecisionOutput::Committed(TxnId::new(1, 2))
        );
        assert_eq!(session(&d), (6, done()));
        assert_eq!(
            d.apply(&refuse(3, 7)),
            DecisionOutput::Refused(TxnId::new(1, 3))
        );
        assert_eq!(session(&d), (7, REFUSED));
    }

    /// A commit record applied twice (a replicated log's retry) is one decision;
    /// `Forget` drops it but not the client's answer.
    #[test]
    fn presumed_abort_a_commit_is_held_once_until_forgotten() {
        let mut d = Decisions::default();
        let t = TxnId::new(1, 1);
        assert_eq!(d.apply(&commit(1, 5)), DecisionOutput::Committed(t));
        assert_eq!(d.apply(&commit(1, 5)), DecisionOutput::Committed(t));
        assert_eq!(d.commits().collect::<Vec<_>>(), vec![t]);
        assert_eq!(
            d.apply(&DecisionCmd::Forget { txn: t }),
            DecisionOutput::Forgotten(t)
        );
        assert_eq!(d.commits().count(), 0);
        assert!(!d.query(&t));
        assert_eq!(session(&d), (5, done()));
    }
}
