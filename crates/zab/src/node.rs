//! `ZabNode`: one server's durable state, its inputs, the election, applying
//! committed transactions, snapshots and recovery. The leader's side of the three
//! phases is in `leader.rs`, the follower's in `follower.rs`.
//!
//! Durable state (DSN 2011 §IV, Fig. 1): `acceptedEpoch` (the last LEADERINFO
//! acknowledged), `currentEpoch` (the last NEWLEADER acknowledged) and the history —
//! transactions at dense positions, each with its zxid — behind an optional snapshot.
//! A follower makes a synced history and its `currentEpoch` durable in **one batch**
//! (atomic in synod-core's storage model) before its NEWLEADER acknowledgement leaves:
//! neither ZOOKEEPER-3911's "ack before the DIFF is durable" nor ZOOKEEPER-4643's
//! "currentEpoch before the history" can happen by construction.

use crate::config::ZabConfig;
use crate::election::{Election, Notification, PeerState, Step, To, Vote};
use crate::follower::Follower;
use crate::leader::Leader;
use crate::log::TxnLog;
use crate::message::{Cmd, Logged, Message, SnapshotImage, Txn};
use crate::types::{Epoch, Pos, Zxid};
use derive_where::derive_where;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use synod_core::{
    codec, ClientId, ClientRequest, Effects, EntryBytes, Kv, Node, NodeId, Outcome, Prng,
    Recovered, SessionCommand, Sessions, Snapshot, StateMachine, Time, WriteBatch,
};

pub(crate) const META_ACCEPTED: &str = "zab.accepted_epoch";
pub(crate) const META_CURRENT: &str = "zab.current_epoch";
const META_INCARNATION: &str = "zab.incarnation";
/// The log's compaction point `(Pos, Zxid)`.
pub(crate) const META_LOG_BASE: &str = "zab.log_base";

/// A client request.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Request<S: StateMachine = Kv> {
    /// A command of the application: a transaction, broadcast and applied once (per
    /// `(client, seq)`).
    Command(S::Command),
    /// A linearizable read, served by the leader once a quorum confirmed it still
    /// leads (no transaction).
    Query(S::Query),
    /// ZooKeeper's default read: answered at once by whichever server receives it
    /// (an up-to-date follower, an observer, or an established leader) from the
    /// transactions it has applied. Writes stay linearizable and a read sees a
    /// committed prefix of them, but it may miss transactions committed elsewhere
    /// before it was sent — not linearizable (`tests/reads.rs` shows a stale one).
    ///
    /// `after` is the client's `lastZxid`, the latest zxid any answer gave it: a
    /// server that has not applied that far sends the client to its leader instead
    /// of answering, so a client never sees an older state than one it saw or wrote
    /// (ZooKeeper's sessions; `Zxid::ZERO` for a client that saw nothing).
    LocalQuery {
        /// What to read.
        query: S::Query,
        /// The client's `lastZxid`.
        after: Zxid,
    },
}

/// A successful answer.
#[derive(Clone, Debug)]
#[derive_where(PartialEq, Eq, Hash)]
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Response<S: StateMachine = Kv> {
    /// What applying a [`Request::Command`] returned, and its transaction's zxid.
    Output {
        /// The application's answer.
        output: S::Output,
        /// The transaction (the client's `lastZxid` from now on).
        zxid: Zxid,
    },
    /// What a [`Request::Query`] or [`Request::LocalQuery`] returned, and the zxid of
    /// the last transaction in the state it read.
    QueryOutput {
        /// The application's answer.
        output: S::QueryOutput,
        /// The state read: everything through this transaction.
        zxid: Zxid,
    },
}

impl<S: StateMachine> Response<S> {
    /// The zxid this answer tells the client about (its new `lastZxid`, if later).
    pub fn zxid(&self) -> Zxid {
        match self {
            Response::Output { zxid, .. } | Response::QueryOutput { zxid, .. } => *zxid,
        }
    }
}

/// Zab's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ZabTimer {
    /// Looking: resend our notification (nothing decided for a while).
    Notify,
    /// Looking: the finalize wait after our proposal reached a quorum.
    Finalize,
    /// Leading or following: ping, and check that the other side is alive.
    Tick,
}

/// A client waiting for an answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Waiter {
    pub client: ClientId,
    pub seq: u64,
}

pub(crate) type Fx<S> = Effects<Message<S>, ZabTimer, Response<S>>;

/// What the server is doing.
pub(crate) enum Role<S: StateMachine> {
    /// In an election.
    Looking {
        /// Our proposal reached a quorum: decide it when the finalize wait ends.
        finalizing: Option<Vote>,
        /// Current interval between resent notifications.
        backoff: Duration,
    },
    /// Following (or observing) a leader.
    Following(Follower),
    /// Leading.
    Leading(Box<Leader<S>>),
}

/// One Zab server.
pub struct ZabNode<S: StateMachine = Kv> {
    pub(crate) cfg: ZabConfig,
    pub(crate) now: Time,
    pub(crate) rng: Prng,
    /// Durable: the last epoch this server acknowledged a LEADERINFO of …
    pub(crate) accepted_epoch: Epoch,
    /// … and the leader it promised that epoch to (two leaders can propose one
    /// epoch; only the first is promised it, see `on_leader_info`).
    pub(crate) accepted_leader: Option<NodeId>,
    /// Durable: the last epoch this server acknowledged a NEWLEADER of.
    pub(crate) current_epoch: Epoch,
    /// Durable: the history.
    pub(crate) log: TxnLog<Cmd<S>>,
    /// The latest snapshot (durable), at or after the log's base.
    pub(crate) snapshot: Option<SnapshotImage>,
    pub(crate) app: Sessions<S>,
    /// Last position applied to `app`.
    pub(crate) applied: Pos,
    /// Highest zxid known committed (through our own history).
    pub(crate) commit: Zxid,
    pub(crate) role: Role<S>,
    pub(crate) election: Election,
    /// The vote this server settled on and its round (answers to looking servers).
    pub(crate) settled: Option<(Vote, u64)>,
    pub(crate) persist_tag: u64,
    /// The number of our latest handshake with a leader (see `FollowerInfo`).
    pub(crate) last_session: u64,
    /// Durable: how many times this server started (numbers its handshakes, so
    /// the leader can tell a restarted follower's FOLLOWERINFO from a late copy of
    /// an earlier one — the clock of a real process starts again at zero).
    pub(crate) incarnation: u64,
    pub(crate) halted: Option<String>,
}

impl<S: StateMachine> ZabNode<S> {
    /// A server of `cfg`'s ensemble.
    ///
    /// # Panics
    /// If `cfg` does not validate.
    pub fn new(cfg: ZabConfig) -> ZabNode<S> {
        if let Err(e) = cfg.validate() {
            panic!("invalid ZabConfig: {e}");
        }
        let election = Election::new(cfg.id, cfg.voters.iter().copied());
        ZabNode {
            rng: Prng::new(cfg.seed),
            now: Time::ZERO,
            accepted_epoch: Epoch(0),
            accepted_leader: None,
            current_epoch: Epoch(0),
            log: TxnLog::default(),
            snapshot: None,
            app: Sessions::default(),
            applied: Pos(0),
            commit: Zxid::ZERO,
            role: Role::Looking {
                finalizing: None,
                backoff: cfg.notification_min,
            },
            election,
            settled: None,
            persist_tag: 0,
            last_session: 0,
            incarnation: 0,
            halted: None,
            cfg,
        }
    }

    // ----- observers -----------------------------------------------------------------

    /// This server's id.
    pub fn node_id(&self) -> NodeId {
        self.cfg.id
    }
    /// Its configuration.
    pub fn config(&self) -> &ZabConfig {
        &self.cfg
    }
    /// `acceptedEpoch`.
    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted_epoch
    }
    /// `currentEpoch`.
    pub fn current_epoch(&self) -> Epoch {
        self.current_epoch
    }
    /// The history.
    pub fn log(&self) -> &TxnLog<Cmd<S>> {
        &self.log
    }
    /// The highest zxid this server knows committed.
    pub fn commit(&self) -> Zxid {
        self.commit
    }
    /// The last position applied.
    pub fn applied(&self) -> Pos {
        self.applied
    }
    /// The replicated application.
    pub fn state_machine(&self) -> &Sessions<S> {
        &self.app
    }
    /// `true` while in an election.
    pub fn is_looking(&self) -> bool {
        matches!(self.role, Role::Looking { .. })
    }
    /// `true` if this server leads (established or not).
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leading(_))
    }
    /// The epoch this server leads and has **established** (a quorum acknowledged
    /// its NEWLEADER), if any.
    pub fn established_epoch(&self) -> Option<Epoch> {
        match &self.role {
            Role::Leading(l) => l.established.then_some(l.epoch?),
            _ => None,
        }
    }
    /// The epoch this server leads once its initial history is fixed: it persisted
    /// `currentEpoch` and began synchronisation (NEWLEADERs may be out). From then on
    /// its history only grows while it leads.
    pub fn syncing_epoch(&self) -> Option<Epoch> {
        match &self.role {
            Role::Leading(l) => l.own_current.is_some().then_some(l.epoch?),
            _ => None,
        }
    }
    /// The leader this server follows or is, if it settled on one.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            Role::Looking { .. } => None,
            Role::Following(f) => Some(f.leader),
            Role::Leading(_) => Some(self.cfg.id),
        }
    }
    /// `true` if this follower acknowledged its leader's NEWLEADER (its history is a
    /// prefix of the leader's).
    pub fn is_synced_follower(&self) -> bool {
        matches!(&self.role, Role::Following(f) if f.synced())
    }
    /// The epoch of the leader this server follows, once it acknowledged LEADERINFO.
    pub fn following_epoch(&self) -> Option<Epoch> {
        match &self.role {
            Role::Following(f) => f.epoch,
            _ => None,
        }
    }

    // ----- the election ------------------------------------------------------------

    /// Our vote for ourselves: our durable history's last zxid and our current epoch.
    /// (What we advertise is durable by the time anyone reads it: notifications are
    /// ordinary sends, which wait for every earlier batch — ZOOKEEPER-2845.)
    fn own_vote(&self) -> Vote {
        Vote {
            leader: self.cfg.id,
            zxid: self.log.last_zxid(),
            peer_epoch: self.current_epoch,
        }
    }

    /// Gives up whatever role we have and starts an election.
    pub(crate) fn look(&mut self, why: &str, out: &mut Fx<S>) {
        tracing::debug!(why, "looking");
        let was = std::mem::replace(
            &mut self.role,
            Role::Looking {
                finalizing: None,
                backoff: self.cfg.notification_min,
            },
        );
        match was {
            Role::Leading(leader) => leader.abandon(out),
            Role::Following(follower) => follower.abandon(out),
            Role::Looking { .. } => {}
        }
        self.settled = None;
        out.cancel_timer(ZabTimer::Tick);
        out.cancel_timer(ZabTimer::Finalize);
        let own = self.own_vote();
        let mut sends = Vec::new();
        self.election.begin(own, &mut |to, n| sends.push((to, n)));
        self.send_notifications(sends, out);
        let first = self.jitter(self.cfg.notification_min);
        out.set_timer(ZabTimer::Notify, self.now + first);
        if self.cfg.voters.len() == 1 && self.cfg.voters.contains(&self.cfg.id) {
            // Alone: no one to hear from or to wait for.
            self.settle(own, out);
        }
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        let extra = self.rng.below(d.as_micros() as u64 / 2 + 1);
        d + Duration::from_micros(extra)
    }

    fn send_notifications(&self, sends: Vec<(To, Notification)>, out: &mut Fx<S>) {
        for (to, n) in sends {
            match to {
                To::All => {
                    for p in self.cfg.peers() {
                        out.send(p, Message::Notification(n));
                    }
                }
                To::One(p) => out.send(p, Message::Notification(n)),
            }
        }
    }

    fn on_notification(&mut self, from: NodeId, n: Notification, out: &mut Fx<S>) {
        let Role::Looking { finalizing, .. } = &mut self.role else {
            // Settled: a looking server learns whom we follow, and in which round.
            if n.state == PeerState::Looking {
                if let Some((mut vote, round)) = self.settled {
                    // Name the epoch we lead or follow once it is known, so every
                    // member of one leadership answers alike, whenever it joined.
                    let state = match (&self.role, self.cfg.is_observer()) {
                        (Role::Leading(l), _) => {
                            vote.peer_epoch = l.epoch.unwrap_or(vote.peer_epoch);
                            PeerState::Leading
                        }
                        (Role::Following(f), observer) => {
                            vote.peer_epoch = f.epoch.unwrap_or(vote.peer_epoch);
                            match observer {
                                true => PeerState::Observing,
                                false => PeerState::Following,
                            }
                        }
                        (Role::Looking { .. }, _) => unreachable!("settled"),
                    };
                    let answer = Notification {
                        vote,
                        election_epoch: round,
                        state,
                    };
                    out.send(from, Message::Notification(answer));
                }
            }
            return;
        };
        let own = Vote {
            leader: self.cfg.id,
            zxid: self.log.last_zxid(),
            peer_epoch: self.current_epoch,
        };
        let mut sends = Vec::new();
        let step = self
            .election
            .on_notification(from, n, own, &mut |to, n| sends.push((to, n)));
        match step {
            Step::Continue => {}
            Step::Quorum(vote) => {
                if *finalizing != Some(vote) {
                    *finalizing = Some(vote);
                    out.set_timer(ZabTimer::Finalize, self.now + self.cfg.finalize_wait);
                }
            }
            Step::Decided(vote) => {
                self.send_notifications(sends, out);
                return self.settle(vote, out);
            }
        }
        self.send_notifications(sends, out);
    }

    fn on_finalize_timer(&mut self, out: &mut Fx<S>) {
        let Role::Looking { finalizing, .. } = &mut self.role else {
            return;
        };
        let Some(expected) = finalizing.take() else {
            return;
        };
        if let Some(vote) = self.election.finalize(expected) {
            self.settle(vote, out);
        }
    }

    fn on_notify_timer(&mut self, out: &mut Fx<S>) {
        let Role::Looking { backoff, .. } = &mut self.role else {
            return;
        };
        *backoff = (*backoff * 2).min(self.cfg.notification_max);
        let next = *backoff;
        let mut sends = Vec::new();
        self.election.resend(&mut |to, n| sends.push((to, n)));
        self.send_notifications(sends, out);
        let next = self.jitter(next);
        out.set_timer(ZabTimer::Notify, self.now + next);
    }

    /// The election decided `vote`: lead, or follow its leader.
    fn settle(&mut self, vote: Vote, out: &mut Fx<S>) {
        tracing::debug!(leader = %vote.leader, round = self.election.round(), "decided");
        out.cancel_timer(ZabTimer::Notify);
        out.cancel_timer(ZabTimer::Finalize);
        self.settled = Some((vote, self.election.round()));
        if vote.leader == self.cfg.id && !self.cfg.is_observer() {
            self.role = Role::Leading(Box::new(Leader::new(self)));
            self.try_new_epoch(out);
        } else {
            self.role = Role::Following(Follower::new(vote.leader, self.now));
            self.send_follower_info(out);
        }
        out.set_timer(ZabTimer::Tick, self.now + self.cfg.tick);
    }

    // ----- applying ----------------------------------------------------------------

    /// Raises the commit point to `zxid` (clipped to our history) and applies.
    pub(crate) fn commit_through(&mut self, zxid: Zxid, out: &mut Fx<S>) {
        let zxid = zxid.min(self.log.last_zxid());
        if zxid > self.commit {
            self.commit = zxid;
        }
        self.apply_committed(out);
    }

    /// Applies every held transaction through the commit point, in order; the
    /// leader answers the clients waiting for them.
    pub(crate) fn apply_committed(&mut self, out: &mut Fx<S>) {
        loop {
            let next = self.applied.next();
            let Some((zxid, cmd)) = self.log.get(next) else {
                break;
            };
            if *zxid > self.commit {
                break;
            }
            let (zxid, cmd) = (*zxid, cmd.clone());
            let result = self.app.apply(cmd.command()).into_result();
            self.applied = next;
            match &mut self.role {
                Role::Leading(leader) => leader.applied(zxid, result, out),
                Role::Following(f) if !f.forwarded.is_empty() => {
                    let (client, seq) = (cmd.command().client, cmd.command().seq);
                    if f.forwarded.get(&client) == Some(&seq) {
                        f.forwarded.remove(&client);
                        if let Some(output) = result {
                            let answer = Response::Output { output, zxid };
                            out.reply_early(client, seq, Outcome::Done(answer));
                        }
                    }
                }
                _ => {}
            }
        }
        if let Role::Leading(_) = &self.role {
            self.serve_reads(out);
        }
        self.maybe_snapshot(out);
    }

    /// Takes a snapshot once enough was applied since the last one, and compacts the
    /// log behind it (keeping `snapshot_trailing` transactions for DIFFs).
    fn maybe_snapshot(&mut self, out: &mut Fx<S>) {
        let last = self.snapshot.as_ref().map_or(Pos(0), |s| s.pos);
        if self.applied.0 < last.0 + self.cfg.snapshot_threshold {
            return;
        }
        let pos = self.applied;
        let zxid = self
            .log
            .zxid_at(pos)
            .expect("applied transactions are held");
        let data = self.app.snapshot();
        out.persist.save_snapshot(Snapshot {
            meta: codec::encode(&(pos, zxid)),
            data: data.clone(),
        });
        self.snapshot = Some(SnapshotImage {
            pos,
            zxid,
            data: Arc::new(data),
        });
        let keep_from = Pos(pos.0.saturating_sub(self.cfg.snapshot_trailing));
        if keep_from > self.log.base().0 {
            self.log.compact_to(keep_from);
            out.persist.compact_to(keep_from.0);
            out.persist
                .set_meta(META_LOG_BASE, codec::encode(&self.log.base()));
        }
    }

    /// A [`Request::LocalQuery`]: answered from what we applied if we serve clients
    /// (ZooKeeper's followers do once UPTODATE arrived); a server in an election
    /// sends the client elsewhere, one still syncing asks it to retry.
    fn read_locally(&mut self, waiter: Waiter, query: &S::Query, after: Zxid, out: &mut Fx<S>) {
        let serving = match &self.role {
            Role::Looking { .. } => {
                let outcome = Outcome::NotLeader { leader: None };
                return out.reply(waiter.client, waiter.seq, outcome);
            }
            Role::Following(f) => f.up_to_date(),
            Role::Leading(l) => l.established,
        };
        let applied = self.log.zxid_at(self.applied).unwrap_or(Zxid::ZERO);
        let outcome = match serving {
            // The client saw a later state than ours: our leader has it (if we lead,
            // we were deposed — somebody else has it).
            true if applied < after => Outcome::NotLeader {
                leader: self.leader().filter(|&l| l != self.cfg.id),
            },
            true => Outcome::Done(Response::QueryOutput {
                output: self.app.app().query(query),
                zxid: applied,
            }),
            false => Outcome::Unavailable,
        };
        out.reply(waiter.client, waiter.seq, outcome);
    }

    // ----- persistence ----------------------------------------------------------------

    /// Appends `txn` to the history and to this input's batch.
    pub(crate) fn append(&mut self, txn: &Txn<S>, batch: &mut WriteBatch) {
        let pos = self.log.append(txn.zxid, txn.cmd.clone());
        batch.put_entry(pos.0, EntryBytes::shared(txn.cmd.clone()));
    }

    /// Promises `epoch` to `leader` (durably, in this input's batch).
    pub(crate) fn accept_epoch(&mut self, epoch: Epoch, leader: NodeId, out: &mut Fx<S>) {
        assert!(epoch > self.accepted_epoch, "an epoch is promised once");
        self.accepted_epoch = epoch;
        self.accepted_leader = Some(leader);
        let promise = (epoch, Some(leader));
        out.persist.set_meta(META_ACCEPTED, codec::encode(&promise));
    }

    /// The persist notification of this input, allocating one if needed.
    pub(crate) fn notify_tag(&mut self, out: &mut Fx<S>) -> u64 {
        match out.persist_notify {
            Some(tag) => tag,
            None => {
                self.persist_tag += 1;
                out.persist_notify = Some(self.persist_tag);
                self.persist_tag
            }
        }
    }

    /// Rebuilds the durable state; bytes that do not decode are an error naming
    /// what is wrong (the node halts).
    fn recover(&mut self, rec: Recovered) -> Result<(), String> {
        fn decode<T: serde::de::DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, String> {
            codec::decode(b).map_err(|e| format!("corrupt {what}: {e}"))
        }
        if let Some(b) = rec.meta.get(META_ACCEPTED) {
            // Written before promises named their leader: a bare epoch, promised to
            // nobody we could recognise.
            let bare = || codec::decode::<Epoch>(b).map(|e| (e, None));
            (self.accepted_epoch, self.accepted_leader) =
                decode("acceptedEpoch", b).or_else(|e| bare().map_err(|_| e))?;
        }
        if let Some(b) = rec.meta.get(META_CURRENT) {
            self.current_epoch = decode("currentEpoch", b)?;
        }
        if let Some(b) = rec.meta.get(META_INCARNATION) {
            self.incarnation = decode("incarnation", b)?;
        }
        let base: (Pos, Zxid) = match rec.meta.get(META_LOG_BASE) {
            Some(b) => decode("log base", b)?,
            None => (Pos(0), Zxid::ZERO),
        };
        if let Some(snap) = &rec.snapshot {
            let (pos, zxid): (Pos, Zxid) = decode("snapshot meta", &snap.meta)?;
            self.app = Sessions::restore(&snap.data)
                .map_err(|e| format!("corrupt snapshot data at {pos}: {e}"))?;
            self.applied = pos;
            self.commit = zxid;
            self.snapshot = Some(SnapshotImage {
                pos,
                zxid,
                data: Arc::new(snap.data.clone()),
            });
        }
        let mut txns = Vec::new();
        let mut expected = base.0.next();
        for (&pos, bytes) in rec.log.range(base.0 .0 + 1..) {
            if pos != expected.0 {
                return Err(format!("log gap: position {pos} after {}", expected.prev()));
            }
            let (zxid, cmd): (Zxid, SessionCommand<S::Command>) =
                decode(&format!("log entry {pos}"), bytes)?;
            txns.push((zxid, Arc::new(Logged::with_bytes(zxid, cmd, bytes.clone()))));
            expected = expected.next();
        }
        let mut last = base.1;
        for (zxid, _) in &txns {
            if *zxid <= last {
                return Err(format!("log out of order: {zxid} after {last}"));
            }
            last = *zxid;
        }
        self.log = TxnLog::recover(base, txns);
        if self.accepted_epoch < self.current_epoch {
            return Err(format!(
                "acceptedEpoch {} below currentEpoch {}",
                self.accepted_epoch, self.current_epoch
            ));
        }
        Ok(())
    }
}

impl<S: StateMachine> Node for ZabNode<S> {
    type Message = Message<S>;
    type Timer = ZabTimer;
    type Request = Request<S>;
    type Response = Response<S>;

    fn id(&self) -> NodeId {
        self.cfg.id
    }

    fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut Fx<S>) {
        self.now = now;
        if let Err(reason) = self.recover(recovered) {
            tracing::error!(%reason, "halting: storage holds what this node cannot read");
            self.halted = Some(reason);
            return;
        }
        // Durable before anything of this incarnation is sent (sends wait for it).
        self.incarnation += 1;
        self.last_session = self.incarnation << 32;
        out.persist
            .set_meta(META_INCARNATION, codec::encode(&self.incarnation));
        self.look("started", out);
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message<S>, out: &mut Fx<S>) {
        self.now = now;
        if self.halted.is_some() {
            return;
        }
        match msg {
            Message::Notification(n) => self.on_notification(from, n, out),
            Message::FollowerInfo {
                session,
                accepted_epoch,
                history,
                observer,
            } => self.on_follower_info(from, session, accepted_epoch, history, observer, out),
            Message::AckEpoch {
                session,
                epoch,
                promised,
                current_epoch,
                history,
            } => {
                let ack = (promised, current_epoch, history);
                self.on_ack_epoch(from, session, epoch, ack, out)
            }
            Message::AckNewLeader { session, epoch } => {
                self.on_ack_new_leader(from, session, epoch, out)
            }
            Message::Ack { epoch, zxid } => self.on_ack(from, epoch, zxid, out),
            Message::PingAck {
                epoch,
                read_ctx,
                synced,
                last,
            } => self.on_ping_ack(from, epoch, read_ctx, (synced, last), out),
            Message::LeaderInfo { session, epoch } => {
                self.on_leader_info(from, session, epoch, out)
            }
            Message::NewLeader {
                session,
                epoch,
                sync,
            } => self.on_new_leader(from, session, epoch, sync, out),
            Message::UpToDate { epoch, commit } => self.on_up_to_date(from, epoch, commit, out),
            Message::Propose {
                epoch,
                prev,
                txns,
                commit,
            } => self.on_propose(from, epoch, prev, txns, commit, out),
            Message::Commit { epoch, zxid } => self.on_commit(from, epoch, zxid, out),
            Message::Forward { cmds } => self.on_forward(cmds, out),
            Message::Ping {
                epoch,
                commit,
                read_ctx,
                sent,
                established,
            } => self.on_ping(from, epoch, (commit, sent, established), read_ctx, out),
        }
    }

    fn on_timer(&mut self, now: Time, timer: ZabTimer, out: &mut Fx<S>) {
        self.now = now;
        if self.halted.is_some() {
            return;
        }
        match timer {
            ZabTimer::Notify => self.on_notify_timer(out),
            ZabTimer::Finalize => self.on_finalize_timer(out),
            ZabTimer::Tick => {
                match &self.role {
                    Role::Leading(_) => self.on_leader_tick(out),
                    Role::Following(_) => self.on_follower_tick(out),
                    Role::Looking { .. } => return,
                }
                if !self.is_looking() {
                    out.set_timer(ZabTimer::Tick, self.now + self.cfg.tick);
                }
            }
        }
    }

    fn on_client_request(&mut self, now: Time, req: ClientRequest<Request<S>>, out: &mut Fx<S>) {
        self.on_client_requests(now, [req], out);
    }

    fn on_client_requests(
        &mut self,
        now: Time,
        requests: impl IntoIterator<Item = ClientRequest<Request<S>>>,
        out: &mut Fx<S>,
    ) {
        self.now = now;
        if self.halted.is_some() {
            return;
        }
        let mut proposed = false;
        let mut forward = Vec::new();
        for req in requests {
            let waiter = Waiter {
                client: req.client,
                seq: req.seq,
            };
            let refusal = match (&mut self.role, req.op) {
                (_, Request::LocalQuery { query, after }) => {
                    self.read_locally(waiter, &query, after, out);
                    continue;
                }
                (Role::Looking { .. }, _) => Outcome::NotLeader { leader: None },
                (Role::Following(f), Request::Command(op)) if f.up_to_date() => {
                    // ZooKeeper's followers pass writes on to the leader.
                    // A late copy of an earlier attempt does not replace a later one.
                    let seq = f.forwarded.entry(req.client).or_insert(req.seq);
                    *seq = (*seq).max(req.seq);
                    forward.push(SessionCommand {
                        client: req.client,
                        seq: req.seq,
                        op,
                    });
                    continue;
                }
                (Role::Following(f), _) => Outcome::NotLeader {
                    leader: Some(f.leader),
                },
                (Role::Leading(l), _) if !l.established => Outcome::Unavailable,
                (Role::Leading(_), Request::Command(op)) => {
                    let cmd = SessionCommand {
                        client: req.client,
                        seq: req.seq,
                        op,
                    };
                    self.propose(Some(waiter), cmd, out);
                    proposed = true;
                    continue;
                }
                (Role::Leading(_), Request::Query(query)) => {
                    self.read(waiter, query, out);
                    continue;
                }
            };
            out.reply(req.client, req.seq, refusal);
        }
        if !forward.is_empty() {
            let leader = self.leader().expect("forwarding followers follow");
            out.send(leader, Message::Forward { cmds: forward });
        }
        if proposed {
            self.broadcast_proposals(out);
        }
    }

    fn on_persisted(&mut self, now: Time, tag: u64, out: &mut Fx<S>) {
        self.now = now;
        if self.halted.is_some() {
            return;
        }
        if let Role::Leading(_) = &self.role {
            self.on_own_write_durable(tag, out);
        }
    }
}
