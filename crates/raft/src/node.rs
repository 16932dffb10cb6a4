//! The Raft node: state (Figure 2), the sans-IO input methods, and the transitions
//! shared by every role. Role-specific rules live in `election`, `replication`,
//! `read`, `snapshot` and `membership`.

use crate::config::RaftConfig;
use crate::log::{LogPrev, RaftLog, META_LOG_PREV};
use crate::membership::Edit;
use crate::message::{Message, SnapshotMeta};
use crate::progress::Progress;
use crate::types::{Command, Entry, LogIndex, Membership, Payload, Term};
use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use synod_core::{
    codec, ClientId, ClientRequest, DurableWaits, Kv, Node, NodeEffects, NodeId, Outcome, Prng,
    Recovered, SessionCommand, Sessions, StateMachine, Time,
};

/// Meta key of the current term.
pub const META_TERM: &str = "term";
/// Meta key of the vote in the current term.
pub const META_VOTE: &str = "vote";

/// Raft's timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum RaftTimer {
    /// Follower/candidate: start an election. Leader: check quorum.
    Election,
    /// Leader: send heartbeats.
    Heartbeat,
}

/// A client request to a Raft cluster: a command or query of the application `S`, or
/// an administrative request.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Request<S: StateMachine = Kv> {
    /// A command, replicated through the log and applied once (per `(client, seq)`).
    Command(S::Command),
    /// A read, served by ReadIndex without touching the log (thesis §6.4).
    Query(S::Query),
    /// Add a non-voting member (it catches up before it can be promoted).
    AddLearner(NodeId),
    /// Make a caught-up learner a voter.
    Promote(NodeId),
    /// Remove a member (voter or learner).
    Remove(NodeId),
    /// Hand leadership to this voter (thesis §3.10).
    TransferLeader(NodeId),
}

/// A successful answer.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Response<S: StateMachine = Kv> {
    /// What applying a [`Request::Command`] returned.
    Output(S::Output),
    /// What a [`Request::Query`] returned.
    QueryOutput(S::QueryOutput),
    /// The configuration change was committed at this index.
    ConfigChanged(LogIndex),
    /// The transfer target was told to campaign.
    TransferStarted,
}

/// A node's role (§5.1), with the state only that role has.
#[derive(Clone, Debug)]
pub(crate) enum Role<S: StateMachine> {
    Follower,
    /// Collecting pre-votes for `term + 1` without having changed term.
    PreCandidate {
        votes: BTreeSet<NodeId>,
    },
    Candidate {
        votes: BTreeSet<NodeId>,
    },
    Leader(Box<LeaderState<S>>),
}

/// A client waiting for its entry to be applied.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Waiter {
    pub client: ClientId,
    pub seq: u64,
}

/// A ReadIndex read waiting for its heartbeat round and for the state machine to
/// catch up (thesis §6.4).
#[derive(Clone, Debug)]
pub(crate) struct PendingRead<S: StateMachine> {
    pub ctx: u64,
    pub index: LogIndex,
    pub waiter: Waiter,
    pub query: S::Query,
}

/// Leader-only state.
#[derive(Clone, Debug)]
pub(crate) struct LeaderState<S: StateMachine> {
    pub progress: BTreeMap<NodeId, Progress>,
    /// Clients waiting for their entries, in log order (indices only grow).
    pub pending: VecDeque<(LogIndex, Waiter)>,
    pub reads: VecDeque<PendingRead<S>>,
    /// Last ReadIndex context issued.
    pub read_ctx: u64,
    /// Index of this term's first entry (the no-op): nothing of earlier terms is
    /// known committed until it is (§5.4.2, §8).
    pub term_start: LogIndex,
    /// Leadership transfer in progress: target and deadline.
    pub transfer: Option<(NodeId, Time)>,
    /// Index of an uncommitted configuration entry (one change at a time, §4.1).
    pub config_pending: Option<LogIndex>,
    /// Our own log is durable through this index. The leader writes its entries in
    /// parallel with sending them (thesis §10.2.1) and counts itself toward a
    /// majority only for what its storage confirmed (`on_persisted`). Starts at 0
    /// each term; the confirmation of the term's no-op covers everything before it.
    pub durable: LogIndex,
    /// Appends whose durability we asked to hear about, marked with the last index
    /// each input wrote.
    pub durable_waits: DurableWaits<LogIndex>,
}

impl<S: StateMachine> LeaderState<S> {
    /// Whether AppendEntries may leave before our own write is durable (§10.2.1).
    /// Not until this term's no-op is durable: that confirms every earlier batch,
    /// including the one holding the term and vote an AppendEntries speaks for (a
    /// lone voter wins in the very input that writes them).
    pub fn sends_early(&self) -> bool {
        self.durable >= self.term_start
    }
}

/// A snapshot being received in chunks.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Incoming {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// One Raft server, replicating the application `S` (by default the KV).
#[derive(Clone, Debug)]
pub struct RaftNode<S: StateMachine = Kv> {
    pub(crate) cfg: RaftConfig,
    pub(crate) rng: Prng,
    // Persistent state (Figure 2), written through `WriteBatch` before any message
    // that depends on it leaves.
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: RaftLog<S>,
    // Volatile state.
    pub(crate) role: Role<S>,
    pub(crate) leader: Option<NodeId>,
    pub(crate) membership: Membership,
    pub(crate) commit: LogIndex,
    pub(crate) applied: LogIndex,
    pub(crate) app: Sessions<S>,
    pub(crate) snapshot: Option<(SnapshotMeta, Arc<Vec<u8>>)>,
    pub(crate) incoming: Option<Incoming>,
    pub(crate) election_deadline: Time,
    /// When we last heard from a leader of the current term (for pre-vote and
    /// check-quorum stickiness).
    pub(crate) leader_contact: Option<Time>,
    /// Tag of the last `persist_notify` asked for. Volatile: a driver never reports
    /// an earlier incarnation's tags to a restarted node.
    pub(crate) persist_tag: u64,
    pub(crate) now: Time,
    /// Set when the node found state it cannot trust (see [`Node::halted`]); from
    /// then on it ignores every input.
    pub(crate) halted: Option<String>,
}

/// Effects of a Raft node.
pub type Fx<S = Kv> = NodeEffects<RaftNode<S>>;

impl<S: StateMachine> RaftNode<S> {
    /// A node with configuration `cfg`. Call [`Node::on_start`] before anything else.
    ///
    /// # Panics
    /// If the configuration is inconsistent (see [`RaftConfig::validate`]).
    pub fn new(cfg: RaftConfig) -> RaftNode<S> {
        if let Err(e) = cfg.validate() {
            panic!("invalid Raft configuration: {e}");
        }
        RaftNode {
            rng: Prng::new(cfg.seed),
            membership: cfg.initial.clone(),
            cfg,
            term: Term(0),
            vote: None,
            log: RaftLog::default(),
            role: Role::Follower,
            leader: None,
            commit: LogIndex(0),
            applied: LogIndex(0),
            app: Sessions::default(),
            snapshot: None,
            incoming: None,
            election_deadline: Time::ZERO,
            leader_contact: None,
            persist_tag: 0,
            now: Time::ZERO,
            halted: None,
        }
    }

    // ----- observers (for drivers, tests and the simulator's invariants) -----------

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.cfg.id
    }
    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// `true` if this node is the leader of its current term.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }
    /// `true` if this node leads and its state machine has applied its term's first
    /// entry: it then reflects every entry of an earlier term that will ever commit
    /// (§5.4.2, §8) — what an application composed on Raft (twopc-nb's coordinator)
    /// waits for before it answers from that state.
    pub fn leader_ready(&self) -> bool {
        matches!(&self.role, Role::Leader(l) if self.applied >= l.term_start)
    }
    /// The leader this node believes in, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// Commit index.
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }
    /// Last applied index.
    pub fn applied_index(&self) -> LogIndex {
        self.applied
    }
    /// The log.
    pub fn log(&self) -> &RaftLog<S> {
        &self.log
    }
    /// The current configuration.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    /// The replicated application, with its client sessions.
    pub fn state_machine(&self) -> &Sessions<S> {
        &self.app
    }
    /// The latest snapshot taken or installed.
    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref().map(|(m, _)| m)
    }

    // ----- shared transitions ------------------------------------------------------

    /// Persists term and vote (Figure 2: "updated on stable storage before
    /// responding to RPCs"). The batch goes out with this input's effects, and the
    /// driver sends nothing of this input before it is durable.
    pub(crate) fn persist_hard_state(&self, out: &mut Fx<S>) {
        out.persist.set_meta(META_TERM, codec::encode(&self.term));
        out.persist.set_meta(META_VOTE, codec::encode(&self.vote));
    }

    /// §5.1: on seeing a higher term, adopt it and become a follower.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>, out: &mut Fx<S>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.leader = None;
            self.persist_hard_state(out);
        }
        if let Role::Leader(state) = std::mem::replace(&mut self.role, Role::Follower) {
            self.abandon_leadership(*state, out);
            self.reset_election_timer(out);
        }
        if leader.is_some() {
            self.leader = leader;
        }
    }

    /// A deposed leader cannot tell whether its uncommitted entries will commit:
    /// their clients learn `Unknown` and retry with the same sequence number.
    fn abandon_leadership(&mut self, state: LeaderState<S>, out: &mut Fx<S>) {
        tracing::debug!(term = %self.term, "stepping down");
        for (_, w) in state.pending {
            out.reply(w.client, w.seq, Outcome::Unknown);
        }
        for r in state.reads {
            out.reply(
                r.waiter.client,
                r.waiter.seq,
                Outcome::NotLeader { leader: None },
            );
        }
        out.cancel_timer(RaftTimer::Heartbeat);
        self.leader = None;
    }

    /// Arms the election timer at a random point in `[min, max)` (§5.2).
    pub(crate) fn reset_election_timer(&mut self, out: &mut Fx<S>) {
        let timeout = self
            .rng
            .duration_between(self.cfg.election_timeout_min, self.cfg.election_timeout_max);
        self.election_deadline = self.now + timeout;
        out.set_timer(RaftTimer::Election, self.election_deadline);
    }

    /// Applies committed entries in order (§5.3 "apply log[lastApplied]"), answers
    /// the clients waiting for them, serves ready reads and snapshots if due.
    pub(crate) fn apply_committed(&mut self, out: &mut Fx<S>) {
        while self.applied < self.commit {
            let index = self.applied.next();
            let entry = self
                .log
                .entry(index)
                .unwrap_or_else(|| panic!("committed entry {index} is not in the log"));
            let is_config = matches!(entry.payload, Payload::Config(_));
            let result = match &entry.payload {
                Payload::Command(cmd) => self.app.apply(cmd).into_result().map(Response::Output),
                Payload::Config(_) => Some(Response::ConfigChanged(index)),
                Payload::Noop => None,
            };
            self.applied = index;
            if let Role::Leader(state) = &mut self.role {
                while state.pending.front().is_some_and(|(i, _)| *i < index) {
                    state.pending.pop_front(); // overwritten before this leadership
                }
                if state.pending.front().is_some_and(|(i, _)| *i == index) {
                    let (_, w) = state.pending.pop_front().expect("front exists");
                    if let Some(r) = result {
                        // Committed means durable on a majority (`advance_commit`
                        // counts only durable copies), so the answer need not wait
                        // for whatever write of ours is in flight.
                        out.reply_early(w.client, w.seq, Outcome::Done(r));
                    }
                }
                if state.config_pending.is_some_and(|i| i <= index) {
                    state.config_pending = None;
                }
            }
            if is_config {
                self.prune_progress();
            }
        }
        self.serve_reads(out);
        self.maybe_snapshot(out);
        // Thesis §4.2.2: a leader removed from the configuration steps down once the
        // change is committed.
        if self.is_leader()
            && !self.membership.is_voter(self.cfg.id)
            && self.commit >= self.config_index()
        {
            self.become_follower(self.term, None, out);
        }
    }

    /// Index of the latest configuration entry in the log (0 if none is held).
    pub(crate) fn config_index(&self) -> LogIndex {
        let mut i = self.log.last_index();
        while i >= self.log.first_index() {
            if matches!(
                self.log.entry(i).map(|e| &e.payload),
                Some(Payload::Config(_))
            ) {
                return i;
            }
            i = i.prev();
        }
        LogIndex(0)
    }

    /// Recomputes the configuration from the log: the latest configuration entry
    /// wins, whether committed or not (§6); else the snapshot's; else the initial one.
    pub(crate) fn refresh_membership(&mut self) {
        let from_log = self
            .log
            .entry(self.config_index())
            .and_then(|e| match &e.payload {
                Payload::Config(m) => Some(m.clone()),
                _ => None,
            });
        self.membership = from_log
            .or_else(|| self.snapshot.as_ref().map(|(m, _)| m.membership.clone()))
            .unwrap_or_else(|| self.cfg.initial.clone());
    }

    /// Appends a new entry as leader.
    pub(crate) fn leader_append(&mut self, payload: Payload<S>, out: &mut Fx<S>) -> LogIndex {
        let index = self.log.last_index().next();
        let entry = Entry {
            term: self.term,
            index,
            payload,
        };
        self.log.append(entry, &mut out.persist);
        // We count ourselves toward a majority only once this write is durable, which
        // the driver reports through `on_persisted` (§10.2.1).
        if let Role::Leader(state) = &mut self.role {
            let notify = &mut out.persist_notify;
            state
                .durable_waits
                .await_batch(index, &mut self.persist_tag, notify);
        }
        index
    }

    /// Rebuilds the persistent state from storage. Bytes that do not decode (a
    /// corrupt term, vote, snapshot or entry) are an error naming what is wrong: the
    /// node halts rather than run on state it cannot trust.
    fn recover(&mut self, recovered: Recovered) -> Result<(), String> {
        fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
            codec::decode(bytes).map_err(|e| format!("corrupt {what}: {e}"))
        }
        let meta = &recovered.meta;
        if let Some(b) = meta.get(META_TERM) {
            self.term = decode("term", b)?;
        }
        if let Some(b) = meta.get(META_VOTE) {
            self.vote = decode("vote", b)?;
        }
        if let Some(snap) = &recovered.snapshot {
            let m: SnapshotMeta = decode("snapshot meta", &snap.meta)?;
            self.app = Sessions::restore(&snap.data)
                .map_err(|e| format!("corrupt snapshot data at {}: {e}", m.index))?;
            self.commit = m.index;
            self.applied = m.index;
            self.snapshot = Some((m, Arc::new(snap.data.clone())));
        }
        let prev: LogPrev = match meta.get(META_LOG_PREV) {
            Some(b) => decode("log_prev", b)?,
            None => LogPrev::default(),
        };
        let entries = recovered
            .log
            .iter()
            .map(|(index, b)| {
                codec::decode::<Entry<S>>(b).map_err(|e| format!("corrupt log entry {index}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.log = RaftLog::recover(prev, entries);
        if let Some((m, _)) = &self.snapshot {
            assert!(
                self.log.prev().index <= m.index && m.index <= self.log.last_index(),
                "snapshot at {} does not meet the log ({}..={})",
                m.index,
                self.log.first_index(),
                self.log.last_index()
            );
        }
        self.refresh_membership();
        Ok(())
    }

    /// Handles a message's term before its role-specific rule (§5.1).
    fn observe_term(&mut self, from: NodeId, msg: &Message<S>, out: &mut Fx<S>) -> bool {
        let term = msg.term();
        if term <= self.term {
            return true;
        }
        match msg {
            // A pre-vote request must not change anyone's term, and a granted pre-vote
            // answer carries the term asked about, not the voter's.
            Message::RequestVote { pre_vote: true, .. } => true,
            Message::Vote {
                pre_vote: true,
                granted: true,
                ..
            } => true,
            Message::RequestVote { .. } if self.ignores_vote_request(msg) => false,
            Message::Append { .. }
            | Message::Heartbeat { .. }
            | Message::InstallSnapshot { .. }
            | Message::TimeoutNow { .. } => {
                self.become_follower(term, Some(from), out);
                true
            }
            _ => {
                self.become_follower(term, None, out);
                true
            }
        }
    }
}

impl<S: StateMachine> Node for RaftNode<S> {
    type Message = Message<S>;
    type Timer = RaftTimer;
    type Request = Request<S>;
    type Response = Response<S>;

    fn id(&self) -> NodeId {
        self.cfg.id
    }

    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut Fx<S>) {
        self.now = now;
        if let Err(reason) = self.recover(recovered) {
            tracing::error!(%reason, "halting: storage holds what this node cannot read");
            self.halted = Some(reason);
            return;
        }
        tracing::debug!(term = %self.term, last = %self.log.last_index(), commit = %self.commit, "recovered");
        self.reset_election_timer(out);
    }

    fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message<S>, out: &mut Fx<S>) {
        self.now = now;
        if self.halted.is_some() {
            return;
        }
        if !self.observe_term(from, &msg, out) {
            return;
        }
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote,
                transfer,
            } => self.on_request_vote(
                from,
                term,
                last_log_index,
                last_log_term,
                pre_vote,
                transfer,
                out,
            ),
            Message::Vote {
                term,
                granted,
                pre_vote,
            } => self.on_vote(from, term, granted, pre_vote, out),
            Message::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.on_append(from, term, prev_index, prev_term, entries, commit, out),
            Message::AppendResponse {
                answers, result, ..
            } => self.on_append_response(from, answers, result, out),
            Message::Heartbeat {
                term,
                commit,
                read_ctx,
            } => self.on_heartbeat(from, term, commit, read_ctx, out),
            Message::HeartbeatResponse {
                answers, read_ctx, ..
            } => self.on_heartbeat_response(from, answers, read_ctx, out),
            Message::InstallSnapshot {
                term,
                meta,
                offset,
                data,
                done,
            } => self.on_install_snapshot(from, term, meta, offset, &data, done, out),
            Message::SnapshotResponse {
                answers,
                next_offset,
                installed,
                ..
            } => self.on_snapshot_response(from, answers, next_offset, installed, out),
            Message::TimeoutNow { term } => self.on_timeout_now(term, out),
        }
    }

    fn on_timer(&mut self, now: Time, timer: RaftTimer, out: &mut Fx<S>) {
        self.now = now;
        if self.halted.is_some() {
            return;
        }
        match timer {
            RaftTimer::Election if now >= self.election_deadline => {
                if self.is_leader() {
                    self.check_quorum(out);
                } else {
                    self.on_election_timeout(out);
                }
            }
            RaftTimer::Election => {
                // Early firing (a driver whose clock jumped): the driver has dropped
                // this timer, so arm it again or the node would never campaign.
                out.set_timer(RaftTimer::Election, self.election_deadline);
            }
            RaftTimer::Heartbeat if self.is_leader() => self.on_heartbeat_timer(out),
            _ => {} // spurious or stale firing
        }
    }

    /// The batch tagged `tag` by `leader_append`, and every earlier one, is durable.
    /// Tags from an earlier leadership find nothing to confirm in this one's queue.
    fn on_persisted(&mut self, now: Time, tag: u64, out: &mut Fx<S>) {
        self.now = now;
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        let before = state.durable;
        if let Some(index) = state.durable_waits.confirm(tag) {
            state.durable = state.durable.max(index);
        }
        // Our copy completes a majority only if enough followers are past the commit
        // index already (learners counted too: an overestimate only costs a call).
        // Otherwise the acks still to come will count us: skip the quorum count.
        let commit = self.commit;
        let ahead = state.progress.values().filter(|p| p.match_index() > commit);
        if state.durable > before && ahead.count() + 1 >= self.membership.quorum() {
            self.advance_commit(out);
        }
    }

    fn on_client_request(&mut self, now: Time, req: ClientRequest<Request<S>>, out: &mut Fx<S>) {
        self.on_client_requests(now, [req], out);
    }

    /// Appends every command of the batch, then replicates them together: one round
    /// of AppendEntries (window permitting) and one persist notification for all.
    fn on_client_requests(
        &mut self,
        now: Time,
        requests: impl IntoIterator<Item = ClientRequest<Request<S>>>,
        out: &mut Fx<S>,
    ) {
        let mut appended = false;
        for req in requests {
            appended |= self.take_request(now, req, out);
        }
        if appended {
            self.broadcast_append(out);
        }
    }
}

impl<S: StateMachine> RaftNode<S> {
    /// Handles one client request. Returns `true` if it appended a command that is
    /// not sent yet: the caller replicates it (with the rest of its batch).
    fn take_request(&mut self, now: Time, req: ClientRequest<Request<S>>, out: &mut Fx<S>) -> bool {
        self.now = now;
        let waiter = Waiter {
            client: req.client,
            seq: req.seq,
        };
        let Role::Leader(state) = &self.role else {
            out.reply(
                req.client,
                req.seq,
                Outcome::NotLeader {
                    leader: self.leader,
                },
            );
            return false;
        };
        if state.transfer.is_some() {
            // Thesis §3.10: a leader stops accepting requests while it hands over.
            out.reply(req.client, req.seq, Outcome::Unavailable);
            return false;
        }
        match req.op {
            Request::Query(query) => self.read_index(waiter, query, out),
            Request::Command(op) => {
                let command = SessionCommand {
                    client: req.client,
                    seq: req.seq,
                    op,
                };
                // Where `propose` will append it: the entry is encoded once, here.
                let at = self.log.last_index().next();
                let cmd = Arc::new(Command::logged_at(self.term, at, command));
                self.append_proposal(Payload::Command(cmd), waiter, out);
                return true;
            }
            Request::AddLearner(id) => self.change_membership(
                waiter,
                |m| {
                    if m.contains(id) {
                        return Edit::AlreadyDone;
                    }
                    m.learners.insert(id);
                    Edit::Changed
                },
                out,
            ),
            Request::Promote(id) => self.promote(waiter, id, out),
            Request::Remove(id) => self.change_membership(
                waiter,
                |m| {
                    if !m.contains(id) {
                        return Edit::AlreadyDone;
                    }
                    m.voters.remove(&id);
                    m.learners.remove(&id);
                    if m.voters.is_empty() {
                        return Edit::Invalid;
                    }
                    Edit::Changed
                },
                out,
            ),
            Request::TransferLeader(target) => self.transfer_leadership(waiter, target, out),
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_core::{Effects, MemStorage, Snapshot, TimerOp, WriteBatch};

    /// Storage holding what does not decode — a snapshot the application cannot
    /// restore, a log entry of garbage — halts the node with a reason naming it: no
    /// panic, no timer, nothing sent, and every later input ignored.
    #[test]
    fn corrupt_storage_halts_the_node_with_its_reason() {
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let meta = SnapshotMeta {
            index: LogIndex(5),
            term: Term(1),
            membership: Membership::with_voters(ids),
        };
        let corrupt_snapshot = |b: &mut WriteBatch| {
            b.save_snapshot(Snapshot {
                meta: codec::encode(&meta),
                data: vec![0xff; 7],
            })
        };
        let corrupt_entry = |b: &mut WriteBatch| b.put_entry(1, vec![0xff, 0xff, 0xff]);
        for (corrupt, what) in [
            (
                &corrupt_snapshot as &dyn Fn(&mut WriteBatch),
                "snapshot data",
            ),
            (&corrupt_entry, "log entry 1"),
        ] {
            let mut disk = MemStorage::new();
            let mut batch = WriteBatch::new();
            corrupt(&mut batch);
            disk.persist(batch);
            let mut node: RaftNode = RaftNode::new(RaftConfig::lan(NodeId(1), ids, 1));
            let mut fx: Fx = Effects::new();
            node.on_start(Time::ZERO, disk.recover(), &mut fx);
            let reason = node.halted().expect("halted");
            assert!(reason.contains(what), "{reason:?} names {what}");
            assert!(fx.is_empty(), "a halted node arms nothing: {fx:?}");
            node.on_timer(Time::from_secs(10), RaftTimer::Election, &mut fx);
            let vote = Message::RequestVote {
                term: Term(9),
                last_log_index: LogIndex(9),
                last_log_term: Term(9),
                pre_vote: false,
                transfer: false,
            };
            node.on_message(Time::from_secs(10), NodeId(2), vote, &mut fx);
            assert!(fx.is_empty(), "a halted node ignores its inputs: {fx:?}");
            assert_eq!(node.term(), Term(0));
        }
    }

    /// Driver contract: a fired timer is disarmed. An election timer that fires
    /// before the node's deadline (a driver's clock jumped) must be re-armed, or the
    /// node would never campaign again.
    #[test]
    fn early_election_timer_is_rearmed_not_dropped() {
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let mut node = RaftNode::new(RaftConfig::lan(NodeId(1), ids, 1));
        let mut fx: Fx = Effects::new();
        node.on_start(Time::ZERO, Recovered::default(), &mut fx);
        let deadline = node.election_deadline;
        fx.clear();
        node.on_timer(Time::from_millis(1), RaftTimer::Election, &mut fx);
        assert_eq!(
            fx.timers,
            vec![TimerOp::Set {
                timer: RaftTimer::Election,
                at: deadline
            }]
        );
        assert!(
            matches!(node.role, Role::Follower),
            "no campaign before the deadline"
        );
    }
}
