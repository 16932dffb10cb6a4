//! The Multi-Paxos node: state, the sans-IO inputs, and the transitions every role
//! shares (following a leader, stepping down, executing chosen slots, recovery).
//! Role rules live in `election` (phase 1), `acceptor`, `replication` (phase 2),
//! `learner` (catch-up, snapshots) and `read`.

use super::config::MultiPaxosConfig;
use super::journal::{JournalFacts, StepJournal};
use super::log::{LogRun, SlotLog, META_FIRST_UNCHOSEN, META_LOG_START, META_RUN_FLOOR};
use super::message::Message;
use crate::types::{Ballot, Slot, Value};
use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use synod_core::{
    codec, ClientId, ClientRequest, DurableWaits, Kv, Node, NodeEffects, NodeId, Outcome, Prng,
    Recovered, SessionCommand, Sessions, StateMachine, Time,
};

/// Meta key of the acceptor's promised ballot.
pub const META_PROMISED: &str = "promised";

/// Multi-Paxos timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum MultiPaxosTimer {
    /// Follower: no leader heard from, start phase 1. Candidate: phase 1 took too
    /// long, start again with a higher ballot.
    Election,
    /// Leader: heartbeats, retransmission, check-quorum.
    Heartbeat,
}

/// A client request.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Request<S: StateMachine = Kv> {
    /// A command of the application, chosen in a slot and executed once (per
    /// `(client, seq)`).
    Command(S::Command),
    /// A read of the application: a read round, no slot (see `read`).
    Query(S::Query),
}

/// A successful answer.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Response<S: StateMachine = Kv> {
    /// What executing a [`Request::Command`] returned.
    Output(S::Output),
    /// What a [`Request::Query`] returned.
    QueryOutput(S::QueryOutput),
}

/// A client waiting for an answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Waiter {
    pub client: ClientId,
    pub seq: u64,
}

impl Waiter {
    /// Answers this client about chosen state, at once
    /// ([`synod_core::Effects::early_replies`]): a slot counts as chosen only once a
    /// phase-2 quorum holds it durably — a peer's `Accepted` follows its write, and
    /// our own acceptance counts once `on_persisted` confirmed it — so the answer
    /// depends on no batch still being written.
    pub(crate) fn answer<S: StateMachine>(self, outcome: Outcome<Response<S>>, out: &mut Fx<S>) {
        out.reply_early(self.client, self.seq, outcome);
    }
}

/// What a promise told a candidate.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
pub(crate) struct Report<S: StateMachine> {
    pub first_unchosen: Slot,
    pub accepted: Vec<super::message::AcceptedSlot<S>>,
}

/// A candidate's phase 1 in progress.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
pub(crate) struct Phase1<S: StateMachine> {
    pub ballot: Ballot,
    pub promises: BTreeMap<NodeId, Report<S>>,
    pub refusals: BTreeSet<NodeId>,
}

/// Acceptors as bits, one per member (its position in `MultiPaxosConfig::members`;
/// the configuration allows at most 64 members).
pub(crate) type AckSet = u64;

/// One accept message's run of consecutive slots `first..=last`, proposed in the
/// leader's ballot — the unit the leader tracks phase 2 by. Every accept the leader
/// sends (first transmission or retransmission) carries exactly one batch, so an
/// `Accepted` for it says the acceptor accepted every slot of it in our ballot.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Batch {
    pub first: Slot,
    pub last: Slot,
    /// Acceptors that accepted the batch in our ballot, the leader included.
    pub acks: AckSet,
    /// Chosen: a phase-2 quorum accepted it.
    pub chosen: bool,
    pub sent_at: Time,
}
/// The leader's view of one peer.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub(crate) struct Peer {
    /// The peer's bit in an [`AckSet`].
    pub bit: AckSet,
    pub last_ack: Option<Time>,
    /// The highest read round the peer acknowledged in our ballot.
    pub read_ctx: u64,
    /// The peer's first slot not known chosen, as its latest answer reported it —
    /// not the highest it ever reported: what a peer knows chosen beyond its saved
    /// frontier does not survive its restart, and a leader's catch-up must not keep
    /// asking a peer for slots it no longer knows (`leader_catch_up`).
    pub first_unchosen: Slot,
    /// Last accept or heartbeat sent (a heartbeat right after an accept says nothing new).
    pub sent_at: Option<Time>,
}

/// A read waiting for its confirmation round and for execution to reach `index`.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
pub(crate) struct PendingRead<S: StateMachine> {
    pub ctx: u64,
    pub index: Slot,
    pub waiter: Waiter,
    pub query: S::Query,
}

/// Leader-only state. Invariants: `batches` are consecutive runs covering exactly
/// `decided..next_slot`, the first of them not chosen (chosen ones are retired from
/// the front); `unchosen` counts those not chosen; `waiters` are in slot order,
/// at or above the execution index.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
pub(crate) struct LeaderState<S: StateMachine> {
    /// First slot of this ballot's takeover: below it, everything was chosen
    /// before we led (we may still have to fetch those values).
    pub start: Slot,
    pub next_slot: Slot,
    /// Accept batches from `decided` on, in slot order.
    pub batches: VecDeque<Batch>,
    /// Batches not chosen yet: the accept window in use.
    pub unchosen: usize,
    pub queue: VecDeque<(Waiter, Arc<SessionCommand<S::Command>>)>,
    /// Clients waiting for the slots we proposed their commands in.
    pub waiters: VecDeque<(Slot, Waiter)>,
    /// First slot not known chosen.
    pub decided: Slot,
    /// End of the slots re-proposed at takeover: reads wait until they are executed.
    pub takeover_end: Slot,
    pub peers: BTreeMap<NodeId, Peer>,
    pub reads: VecDeque<PendingRead<S>>,
    pub read_ctx: u64,
    pub since: Time,
    pub heartbeat_at: Time,
    /// Our own acceptances waiting to be durable, marked with `next_slot` after each
    /// input: once the driver confirms a batch (`Node::on_persisted`), we hold every
    /// slot we proposed below its mark durably and count ourselves toward its
    /// phase-2 quorum.
    pub durable_waits: DurableWaits<Slot>,
    /// Our ballot's promise is durable (the driver confirmed a batch written since
    /// we became leader): from then on accepts leave while our own acceptance is
    /// still being written (the Paxos twin of Raft thesis §10.2.1).
    pub ballot_durable: bool,
}

/// A node's role.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
pub(crate) enum Role<S: StateMachine> {
    Follower,
    Candidate(Box<Phase1<S>>),
    Leader(Box<LeaderState<S>>),
}

/// One Multi-Paxos replica: proposer (leader), acceptor and learner at once.
#[derive(Clone, Debug)]
pub struct MultiPaxosNode<S: StateMachine = Kv> {
    pub(crate) cfg: MultiPaxosConfig,
    pub(crate) rng: Prng,
    // Durable: the promise and the slot log (written through each input's batch).
    pub(crate) promised: Ballot,
    pub(crate) log: SlotLog<S>,
    // Volatile.
    pub(crate) role: Role<S>,
    pub(crate) leader: Option<NodeId>,
    pub(crate) leader_contact: Option<Time>,
    /// When we start phase 1 unless a leader is heard from before.
    pub(crate) election_deadline: Time,
    /// The randomised timeout drawn when the election timer was last reset; hearing
    /// from the leader moves the deadline to `now` plus it.
    pub(crate) election_timeout: Duration,
    /// When the armed election timer fires, if armed: at or before the deadline,
    /// so moving the deadline later needs no new timer (see `follow`).
    pub(crate) election_armed: Option<Time>,
    pub(crate) first_unexecuted: Slot,
    pub(crate) app: Sessions<S>,
    pub(crate) snapshot: Option<(Slot, Arc<Vec<u8>>)>,
    /// The outstanding catch-up request: when it was sent and the slot it asked
    /// from, which its answer echoes (see `learner`).
    pub(crate) catchup_asked: Option<(Time, Slot)>,
    /// The highest round seen anywhere, so our next ballot tops it.
    pub(crate) round_seen: u64,
    /// What the current input accepted and executed (see `journal`).
    pub(crate) facts: JournalFacts<S>,
    pub(crate) now: Time,
    /// Tag of the latest persist notification asked for (volatile: the driver's
    /// notifications do not outlive the process).
    pub(crate) persist_tag: u64,
    /// Set when the node found state it cannot trust (see [`Node::halted`]); from
    /// then on it ignores every input.
    pub(crate) halted: Option<String>,
}

/// Effects of a Multi-Paxos node.
pub type Fx<S = Kv> = NodeEffects<MultiPaxosNode<S>>;

impl<S: StateMachine> MultiPaxosNode<S> {
    /// A node with configuration `cfg`. Call [`Node::on_start`] before anything else.
    ///
    /// # Panics
    /// If the configuration is inconsistent (see [`MultiPaxosConfig::validate`]).
    pub fn new(cfg: MultiPaxosConfig) -> MultiPaxosNode<S> {
        if let Err(e) = cfg.validate() {
            panic!("invalid Multi-Paxos configuration: {e}");
        }
        MultiPaxosNode {
            rng: Prng::new(cfg.seed),
            cfg,
            promised: Ballot::ZERO,
            log: SlotLog::default(),
            role: Role::Follower,
            leader: None,
            leader_contact: None,
            election_deadline: Time::ZERO,
            election_timeout: Duration::ZERO,
            election_armed: None,
            first_unexecuted: Slot::FIRST,
            app: Sessions::default(),
            snapshot: None,
            catchup_asked: None,
            round_seen: 0,
            facts: JournalFacts::default(),
            now: Time::ZERO,
            persist_tag: 0,
            halted: None,
        }
    }

    // ----- observers (drivers, tests, the simulator's invariants) ------------------

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.cfg.id
    }
    /// The configuration.
    pub fn config(&self) -> &MultiPaxosConfig {
        &self.cfg
    }
    /// The acceptor's promise (for a leader or candidate: its own ballot).
    pub fn promised(&self) -> Ballot {
        self.promised
    }
    /// `true` if this node completed phase 1 and leads its ballot.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }
    /// `true` while phase 1 is in progress.
    pub fn is_candidate(&self) -> bool {
        matches!(self.role, Role::Candidate(_))
    }
    /// The leader this node follows (itself when leading), if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// First slot not known chosen; everything below is chosen and held or snapshotted.
    pub fn first_unchosen(&self) -> Slot {
        self.log.first_unchosen()
    }
    /// The execution index: the next slot to apply.
    pub fn first_unexecuted(&self) -> Slot {
        self.first_unexecuted
    }
    /// For a leader: the first slot it does not know chosen (what it tells followers).
    pub fn decided(&self) -> Option<Slot> {
        match &self.role {
            Role::Leader(st) => Some(st.decided),
            _ => None,
        }
    }
    /// For a leader: the next slot it will assign.
    pub fn next_slot(&self) -> Option<Slot> {
        match &self.role {
            Role::Leader(st) => Some(st.next_slot),
            _ => None,
        }
    }
    /// For a leader: accept batches in flight (not chosen yet) and commands queued
    /// behind them.
    pub fn pipeline(&self) -> Option<(usize, usize)> {
        match &self.role {
            Role::Leader(st) => Some((st.unchosen, st.queue.len())),
            _ => None,
        }
    }
    /// The slot log.
    pub fn log(&self) -> &SlotLog<S> {
        &self.log
    }
    /// What the acceptor accepted at `slot`, if it holds an acceptance there.
    pub fn accepted_at(&self, slot: Slot) -> Option<(Ballot, &Value<S>)> {
        self.log.accepted(slot)
    }
    /// The replicated state machine.
    pub fn state_machine(&self) -> &Sessions<S> {
        &self.app
    }
    /// The first slot the latest snapshot does not cover, if there is one.
    pub fn snapshot_below(&self) -> Option<Slot> {
        self.snapshot.as_ref().map(|(s, _)| *s)
    }
    /// What the last input accepted and executed.
    pub fn journal(&self) -> &StepJournal<S> {
        self.facts.view(&self.log)
    }

    // ----- shared transitions --------------------------------------------------------

    /// Persists the promise: "Paxos Made Simple" §2.3, an acceptor must remember its
    /// promise "even if it fails and is then restarted". Every message that depends
    /// on it leaves after this input's batch is durable.
    pub(crate) fn persist_promised(&self, out: &mut Fx<S>) {
        out.persist
            .set_meta(META_PROMISED, codec::encode(&self.promised));
    }

    /// Raises the promise to `ballot` (an accept or prepare for a higher ballot). A
    /// leader or candidate of a lower ballot is thereby deposed.
    pub(crate) fn raise_promise(&mut self, ballot: Ballot, out: &mut Fx<S>) {
        assert!(ballot >= self.promised, "promise going down");
        self.note_round(ballot);
        if ballot == self.promised {
            return;
        }
        self.promised = ballot;
        self.persist_promised(out);
        if !matches!(self.role, Role::Follower) {
            self.step_down(None, out);
        }
    }

    pub(crate) fn note_round(&mut self, ballot: Ballot) {
        self.round_seen = self.round_seen.max(ballot.round);
    }

    /// A valid message from the leader: follow it, stay quiet (push the election
    /// deadline back). The timer already armed fires at or before the new deadline
    /// and is re-armed then (`on_election_timer`), so the steady stream of accepts
    /// costs no timer operation each.
    pub(crate) fn follow(&mut self, leader: NodeId, out: &mut Fx<S>) {
        if !matches!(self.role, Role::Follower) {
            self.step_down(Some(leader), out);
        }
        self.leader = Some(leader);
        self.leader_contact = Some(self.now);
        self.election_deadline = self.now + self.election_timeout;
        if self.election_armed.is_none() {
            self.arm_election_timer(out);
        }
    }

    /// Leaves the leader or candidate role. A deposed leader cannot tell whether its
    /// proposals will be chosen: their clients learn `Unknown` (and retry with the
    /// same sequence number, which the session layer's dedup makes safe). Queued commands and
    /// reads never left this node: `NotLeader`.
    pub(crate) fn step_down(&mut self, hint: Option<NodeId>, out: &mut Fx<S>) {
        let old = std::mem::replace(&mut self.role, Role::Follower);
        self.leader = hint.filter(|&l| l != self.cfg.id);
        if let Role::Leader(st) = old {
            tracing::debug!(ballot = %self.promised, "stepping down");
            for (_, w) in st.waiters {
                out.reply(w.client, w.seq, Outcome::Unknown);
            }
            let not_leader = Outcome::NotLeader {
                leader: self.leader,
            };
            for (w, _) in st.queue {
                out.reply(w.client, w.seq, not_leader.clone());
            }
            for r in st.reads {
                out.reply(r.waiter.client, r.waiter.seq, not_leader.clone());
            }
            out.cancel_timer(MultiPaxosTimer::Heartbeat);
        }
        self.reset_election_timer(out);
    }

    /// Arms the election timer at a random point of `[min, max)`.
    pub(crate) fn reset_election_timer(&mut self, out: &mut Fx<S>) {
        self.election_timeout = self
            .rng
            .duration_between(self.cfg.election_timeout_min, self.cfg.election_timeout_max);
        self.election_deadline = self.now + self.election_timeout;
        self.arm_election_timer(out);
    }

    fn arm_election_timer(&mut self, out: &mut Fx<S>) {
        self.election_armed = Some(self.election_deadline);
        out.set_timer(MultiPaxosTimer::Election, self.election_deadline);
    }

    /// The election timer fired: start phase 1 if the deadline passed (and we do
    /// not lead), else wait for the deadline, which hearing from the leader moved.
    fn on_election_timer(&mut self, out: &mut Fx<S>) {
        self.election_armed = None;
        if self.is_leader() {
            return; // stepping down re-arms it
        }
        if self.now >= self.election_deadline {
            self.campaign(out);
        } else {
            self.arm_election_timer(out);
        }
    }

    /// Executes chosen slots in order ("Paxos Made Simple" §3: a server "can execute
    /// command i only after it has learned commands 1 through i"), answers the
    /// clients waiting on them, serves ready reads and snapshots if due.
    pub(crate) fn execute_chosen(&mut self, out: &mut Fx<S>) {
        while self.first_unexecuted < self.log.first_unchosen() {
            let slot = self.first_unexecuted;
            let value = self
                .log
                .chosen(slot)
                .unwrap_or_else(|| panic!("chosen {slot} is not in the log"));
            let result = match value {
                Value::Noop => None,
                Value::Command(cmd) => self.app.apply(cmd).into_result(),
            };
            self.first_unexecuted = slot.next();
            if let Role::Leader(st) = &mut self.role {
                if let Some(&(s, w)) = st.waiters.front() {
                    assert!(s >= slot, "{s} executed before its client was answered");
                    if s == slot {
                        st.waiters.pop_front();
                        // We proposed this slot in our ballot, so it chose our command.
                        assert_eq!(
                            value.request_id(),
                            Some((w.client, w.seq)),
                            "{slot} chose another value than its leader proposed"
                        );
                        if let Some(r) = result {
                            w.answer(Outcome::Done(Response::Output(r)), out);
                        }
                    }
                }
            }
            self.facts.executed(slot);
        }
        self.serve_reads(out);
        self.maybe_snapshot(out);
    }

    /// Rebuilds the durable state. Bytes that do not decode (a corrupt promise,
    /// snapshot or log run) are an error naming what is wrong: the node halts
    /// rather than run on state it cannot trust.
    fn recover(&mut self, rec: Recovered) -> Result<(), String> {
        self.promised = meta(&rec, META_PROMISED)?.unwrap_or(Ballot::ZERO);
        self.round_seen = self.promised.round;
        let start: Slot = meta(&rec, META_LOG_START)?.unwrap_or(Slot::FIRST);
        let first_unchosen: Slot = meta(&rec, META_FIRST_UNCHOSEN)?.unwrap_or(Slot::FIRST);
        if let Some(snap) = &rec.snapshot {
            let below: Slot =
                codec::decode(&snap.meta).map_err(|e| format!("corrupt snapshot meta: {e}"))?;
            self.app = Sessions::restore(&snap.data)
                .map_err(|e| format!("corrupt snapshot data below {below}: {e}"))?;
            assert!(
                below >= start,
                "snapshot below {below} leaves a gap to log start {start}"
            );
            self.first_unexecuted = below;
            self.snapshot = Some((below, Arc::new(snap.data.clone())));
        }
        let run_floor: u64 = meta(&rec, META_RUN_FLOOR)?.unwrap_or(1);
        let runs = rec
            .log
            .iter()
            .map(|(i, b)| match codec::decode::<LogRun<S>>(b) {
                Ok(run) => Ok((*i, run)),
                Err(e) => Err(format!("corrupt log run {i}: {e}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.log = SlotLog::recover(start, first_unchosen, run_floor, runs);
        assert!(
            self.first_unexecuted <= self.log.first_unchosen(),
            "snapshot beyond the chosen prefix"
        );
        Ok(())
    }

    fn begin_input(&mut self, now: Time) {
        self.now = now;
        self.facts.clear();
    }

    /// Queues a client write at the leader, or refuses it when the queue is full
    /// even after proposing what the window takes (nothing was proposed). Returns
    /// `true` if it queued it.
    fn queue_write(&mut self, waiter: Waiter, op: S::Command, out: &mut Fx<S>) -> bool {
        let max = self.cfg.proposal_queue_max;
        if matches!(&self.role, Role::Leader(st) if st.queue.len() >= max) {
            self.propose_queued(out);
        }
        let Role::Leader(st) = &mut self.role else {
            unreachable!("only a leader takes writes");
        };
        if st.queue.len() >= max {
            out.reply(waiter.client, waiter.seq, Outcome::Unavailable);
            return false;
        }
        let cmd = Arc::new(SessionCommand {
            client: waiter.client,
            seq: waiter.seq,
            op,
        });
        st.queue.push_back((waiter, cmd));
        true
    }
}

/// Decodes meta `key`, if set; an error naming the key if its bytes do not decode.
fn meta<T: serde::de::DeserializeOwned>(rec: &Recovered, key: &str) -> Result<Option<T>, String> {
    rec.meta
        .get(key)
        .map(|b| codec::decode(b).map_err(|e| format!("corrupt {key}: {e}")))
        .transpose()
}

impl<S: StateMachine> Node for MultiPaxosNode<S> {
    type Message = Message<S>;
    type Timer = MultiPaxosTimer;
    type Request = Request<S>;
    type Response = Response<S>;

    fn id(&self) -> NodeId {
        self.cfg.id
    }

    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut Fx<S>) {
        self.now = now;
        self.facts.clear();
        if let Err(reason) = self.recover(recovered) {
            tracing::error!(%reason, "halting: storage holds what this node cannot read");
            self.halted = Some(reason);
            return;
        }
        tracing::debug!(promised = %self.promised, first_unchosen = %self.log.first_unchosen(), "recovered");
        self.execute_chosen(out);
        self.reset_election_timer(out);
    }

    fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message<S>, out: &mut Fx<S>) {
        self.begin_input(now);
        if self.halted.is_some() {
            return;
        }
        self.dispatch(from, msg, out);
        self.log.save_frontier(&mut out.persist, false);
    }

    fn on_timer(&mut self, now: Time, timer: MultiPaxosTimer, out: &mut Fx<S>) {
        self.begin_input(now);
        if self.halted.is_some() {
            return;
        }
        match timer {
            MultiPaxosTimer::Election => self.on_election_timer(out),
            MultiPaxosTimer::Heartbeat => {
                let due = matches!(&self.role, Role::Leader(st) if now >= st.heartbeat_at);
                if due {
                    self.on_heartbeat_timer(out);
                }
            }
        }
        self.log.save_frontier(&mut out.persist, false);
    }

    fn on_client_request(&mut self, now: Time, req: ClientRequest<Request<S>>, out: &mut Fx<S>) {
        self.on_client_requests(now, [req], out);
    }

    /// Queues every write of the input, then proposes: writes that arrive together
    /// share one accept (window permitting) instead of the first few leaving alone.
    fn on_client_requests(
        &mut self,
        now: Time,
        requests: impl IntoIterator<Item = ClientRequest<Request<S>>>,
        out: &mut Fx<S>,
    ) {
        self.begin_input(now);
        let mut wrote = false;
        for req in requests {
            let waiter = Waiter {
                client: req.client,
                seq: req.seq,
            };
            if !self.is_leader() {
                let leader = self.leader.filter(|&l| l != self.cfg.id);
                out.reply(req.client, req.seq, Outcome::NotLeader { leader });
                continue;
            }
            match req.op {
                Request::Query(query) => self.read(waiter, query, out),
                Request::Command(op) => wrote |= self.queue_write(waiter, op, out),
            }
        }
        if wrote {
            self.propose_queued(out);
        }
        self.log.save_frontier(&mut out.persist, false);
    }

    fn on_persisted(&mut self, now: Time, tag: u64, out: &mut Fx<S>) {
        self.begin_input(now);
        self.on_own_acceptances_durable(tag, out);
        self.log.save_frontier(&mut out.persist, false);
    }
}

impl<S: StateMachine> MultiPaxosNode<S> {
    fn dispatch(&mut self, from: NodeId, msg: Message<S>, out: &mut Fx<S>) {
        match msg {
            Message::Prepare {
                ballot,
                first_unchosen,
            } => self.on_prepare(from, ballot, first_unchosen, out),
            Message::Promise {
                ballot,
                first_unchosen,
                accepted,
            } => self.on_promise(from, ballot, first_unchosen, accepted, out),
            Message::Nack {
                ballot,
                promised,
                leader,
            } => self.on_nack(from, ballot, promised, leader, out),
            Message::Accept {
                ballot,
                first,
                values,
                decided,
                encoded,
            } => self.on_accept(from, ballot, first, (values, encoded), decided, out),
            Message::Accepted {
                ballot,
                first,
                last,
                first_unchosen,
            } => self.on_accepted(from, ballot, first, last, first_unchosen, out),
            Message::Heartbeat {
                ballot,
                decided,
                read_ctx,
            } => self.on_heartbeat(from, ballot, decided, read_ctx, out),
            Message::HeartbeatAck {
                ballot,
                read_ctx,
                first_unchosen,
            } => self.on_heartbeat_ack(from, ballot, read_ctx, first_unchosen, out),
            Message::CatchUp { first_unchosen } => self.on_catch_up(from, first_unchosen, out),
            Message::Chosen {
                first,
                values,
                decided,
            } => self.on_chosen(from, first, values, decided, out),
            Message::Snapshot { below, data } => self.on_snapshot(from, below, data, out),
        }
    }
}
