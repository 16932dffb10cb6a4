//! The leader's side of an epoch (DSN 2011 §IV; ZooKeeper's `Leader` and
//! `LearnerHandler`):
//!
//! 1. **Discovery.** FOLLOWERINFO from a quorum (itself included) fixes the new
//!    epoch above every `acceptedEpoch` it heard of; it accepts the epoch itself
//!    (durably) and sends LEADERINFO. A quorum of ACKEPOCH (its own counted once its
//!    `acceptedEpoch` is durable) ends discovery — unless a follower's history is
//!    ahead of its own (a later `currentEpoch`, or the same and a later zxid): then
//!    it was not the right leader and it gives up, as ZooKeeper does.
//! 2. **Synchronisation.** It persists `currentEpoch`, then sends each follower a
//!    NEWLEADER carrying that follower's [`sync_plan`] (DIFF, TRUNC+DIFF or SNAP).
//!    Once a quorum acknowledged NEWLEADER (itself once its `currentEpoch` is
//!    durable), the epoch is **established**: its whole initial history is committed,
//!    and UPTODATE tells the synced followers so.
//! 3. **Broadcast.** Client commands become transactions `(epoch, 1..)`, sent as
//!    pipelined, batched PROPOSALs while the leader writes its own copy (early sends;
//!    it counts itself once the write is confirmed, `DurableWaits`); a transaction is
//!    committed once a quorum holds it durably (cumulative ACKs), and COMMIT says so.
//!
//! Followers arriving later go through the same handshake against the established
//! epoch. Linearizable reads: the leader notes its commit point, confirms it still
//! leads by a quorum of PINGACKs of a round started after the read arrived, and
//! answers once it has applied that point (Raft's ReadIndex, thesis §6.4).

use crate::log::{sync_plan, HistorySummary, SyncPlan};
use crate::message::{Message, Sync, Txn};
use crate::node::{Fx, Response, Role, Waiter, ZabNode, META_CURRENT};
use crate::types::{Epoch, Pos, Zxid};
use std::collections::{BTreeMap, VecDeque};
use synod_core::{codec, DurableWaits, NodeId, Outcome, SessionCommand, StateMachine, Time};

/// Where a follower is in the handshake with this leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Sent FOLLOWERINFO.
    Info,
    /// Acknowledged the new epoch.
    EpochAcked,
    /// Sent NEWLEADER; proposals after it follow it.
    NewLeaderSent,
    /// Acknowledged NEWLEADER: its history is a prefix of ours.
    Synced,
}

pub(crate) struct Peer {
    session: u64,
    stage: Stage,
    observer: bool,
    accepted_epoch: Epoch,
    /// Its ACKEPOCH promised us the epoch (counts toward the discovery quorum).
    promised: bool,
    current_epoch: Epoch,
    history: HistorySummary,
    /// Last position sent to it (in NEWLEADER or a PROPOSAL).
    sent_through: Pos,
    /// Last position its NEWLEADER carried: what its acknowledgement vouches for
    /// (proposals sent after it are acknowledged on their own).
    synced_through: Pos,
    /// Cumulative: it holds everything through this durably.
    acked: Zxid,
    read_ctx: u64,
    last_heard: Time,
    /// When this handshake began (its FOLLOWERINFO).
    began: Time,
}

pub(crate) struct PendingRead<S: StateMachine> {
    ctx: u64,
    index: Zxid,
    waiter: Waiter,
    query: S::Query,
}

pub(crate) struct Leader<S: StateMachine> {
    /// The epoch being established, once a quorum's FOLLOWERINFO fixed it.
    pub(crate) epoch: Option<Epoch>,
    /// A quorum acknowledged NEWLEADER: broadcasting.
    pub(crate) established: bool,
    since: Time,
    peers: BTreeMap<NodeId, Peer>,
    /// Our `acceptedEpoch` write is durable (tag of its batch until then).
    own_epoch: Result<(), u64>,
    /// Sync started: our `currentEpoch` write is durable (tag until then).
    pub(crate) own_current: Option<Result<(), u64>>,
    next_counter: u32,
    /// Our own copy of the log is durable through this.
    durable: Zxid,
    waits: DurableWaits<Zxid>,
    /// Clients waiting for their transactions, in zxid order.
    pending: VecDeque<(Zxid, Waiter)>,
    reads: VecDeque<PendingRead<S>>,
    read_ctx: u64,
}

impl<S: StateMachine> Leader<S> {
    pub(crate) fn new(node: &ZabNode<S>) -> Leader<S> {
        Leader {
            epoch: None,
            established: false,
            since: node.now,
            peers: BTreeMap::new(),
            own_epoch: Err(0),
            own_current: None,
            next_counter: 1,
            durable: Zxid::ZERO,
            waits: DurableWaits::default(),
            pending: VecDeque::new(),
            reads: VecDeque::new(),
            read_ctx: 0,
        }
    }

    /// We stop leading: nobody can tell whether our uncommitted transactions will
    /// commit (their clients learn `Unknown` and retry with the same seq), and our
    /// reads are not confirmed.
    pub(crate) fn abandon(self, out: &mut Fx<S>) {
        for (_, w) in self.pending {
            out.reply(w.client, w.seq, Outcome::Unknown);
        }
        for r in self.reads {
            let (client, seq) = (r.waiter.client, r.waiter.seq);
            out.reply(client, seq, Outcome::NotLeader { leader: None });
        }
    }

    /// Transaction `zxid` was applied with `result`: answer its client.
    pub(crate) fn applied(&mut self, zxid: Zxid, result: Option<S::Output>, out: &mut Fx<S>) {
        while self.pending.front().is_some_and(|(z, _)| *z < zxid) {
            self.pending.pop_front(); // not ours (cannot happen: we answer in order)
        }
        if self.pending.front().is_some_and(|(z, _)| *z == zxid) {
            let (_, w) = self.pending.pop_front().expect("front exists");
            if let Some(output) = result {
                // Committed means durable on a quorum: the answer need not wait for
                // whatever write of ours is in flight.
                let answer = Response::Output { output, zxid };
                out.reply_early(w.client, w.seq, Outcome::Done(answer));
            }
        }
    }
}

impl<S: StateMachine> ZabNode<S> {
    fn leading(&mut self) -> Option<&mut Leader<S>> {
        match &mut self.role {
            Role::Leading(l) => Some(l),
            _ => None,
        }
    }

    // ----- discovery -----------------------------------------------------------------

    pub(crate) fn on_follower_info(
        &mut self,
        from: NodeId,
        session: u64,
        accepted_epoch: Epoch,
        history: HistorySummary,
        observer: bool,
        out: &mut Fx<S>,
    ) {
        let now = self.now;
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        match leader.peers.get_mut(&from) {
            Some(p) if p.session > session => return, // a late copy of an earlier one
            Some(p) if p.session == session => {
                // Sent again: it has not heard our LEADERINFO (if it had, it would
                // ignore this one; a follower that starts over numbers it anew).
                p.last_heard = now;
                if let Some(epoch) = leader.epoch {
                    out.send(from, Message::LeaderInfo { session, epoch });
                }
                return;
            }
            _ => {}
        }
        tracing::debug!(%from, %accepted_epoch, session, "followerinfo");
        leader.peers.insert(
            from,
            Peer {
                session,
                stage: Stage::Info,
                observer,
                accepted_epoch,
                promised: false,
                current_epoch: Epoch(0),
                history,
                sent_through: Pos(0),
                synced_through: Pos(0),
                acked: Zxid::ZERO,
                read_ctx: 0,
                last_heard: now,
                began: now,
            },
        );
        match leader.epoch {
            Some(epoch) => out.send(from, Message::LeaderInfo { session, epoch }),
            None => self.try_new_epoch(out),
        }
    }

    /// With FOLLOWERINFO from a quorum, fixes the new epoch above every accepted one
    /// and accepts it ourselves.
    pub(crate) fn try_new_epoch(&mut self, out: &mut Fx<S>) {
        let (me, accepted) = (self.cfg.id, self.accepted_epoch);
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.epoch.is_some() {
            return;
        }
        let voters = leader.peers.iter().filter(|(_, p)| !p.observer);
        let infos: Vec<NodeId> = voters.map(|(&id, _)| id).chain([me]).collect();
        if !self.cfg.is_quorum(&infos) {
            return;
        }
        let leader = self.leading().expect("leading");
        let highest = (leader.peers.values())
            .filter(|p| !p.observer)
            .map(|p| p.accepted_epoch)
            .fold(accepted, Epoch::max);
        let epoch = highest.next();
        leader.epoch = Some(epoch);
        let targets: Vec<(NodeId, u64)> = leader
            .peers
            .iter()
            .map(|(&id, p)| (id, p.session))
            .collect();
        tracing::debug!(%epoch, "proposing epoch");
        self.accept_epoch(epoch, me, out);
        let tag = self.notify_tag(out);
        self.leading().expect("leading").own_epoch = Err(tag);
        for (peer, session) in targets {
            out.send(peer, Message::LeaderInfo { session, epoch });
        }
    }

    pub(crate) fn on_ack_epoch(
        &mut self,
        from: NodeId,
        session: u64,
        epoch: Epoch,
        (promised, current_epoch, history): (bool, Epoch, HistorySummary),
        out: &mut Fx<S>,
    ) {
        let now = self.now;
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.epoch != Some(epoch) {
            return;
        }
        let syncing = leader.own_current.is_some();
        let Some(peer) = leader.peers.get_mut(&from) else {
            return;
        };
        if peer.stage != Stage::Info || peer.session != session {
            // A duplicate, or a late answer of an earlier handshake: its history is
            // stale, and a plan made from it could truncate what the follower has
            // since committed.
            return;
        }
        peer.stage = Stage::EpochAcked;
        peer.promised = promised;
        peer.current_epoch = current_epoch;
        peer.history = history;
        peer.last_heard = now;
        match syncing {
            true => self.send_new_leader(from, out),
            false => self.try_start_sync(out),
        }
    }

    /// With ACKEPOCH from a quorum (ours once our accepted epoch is durable): give up
    /// if a follower is ahead of us, else persist `currentEpoch` and sync everyone.
    fn try_start_sync(&mut self, out: &mut Fx<S>) {
        let (me, own) = (self.cfg.id, (self.current_epoch, self.log.last_zxid()));
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.own_epoch.is_err() || leader.own_current.is_some() {
            return;
        }
        let acked = leader
            .peers
            .iter()
            .filter(|(_, p)| p.stage >= Stage::EpochAcked);
        let voters: Vec<(NodeId, bool, (Epoch, Zxid))> = acked
            .filter(|(_, p)| !p.observer)
            .map(|(&id, p)| (id, p.promised, (p.current_epoch, p.history.last())))
            .collect();
        // Only promises count: a server promises an epoch to one leader, so two
        // leaders proposing the same epoch cannot both gather a quorum.
        let promises = voters.iter().filter(|(_, promised, _)| *promised);
        let ids: Vec<NodeId> = promises.map(|(id, ..)| *id).chain([me]).collect();
        if !self.cfg.is_quorum(&ids) {
            return;
        }
        if let Some((ahead, _, theirs)) = voters.iter().find(|(.., h)| *h > own) {
            let why = format!("{ahead} is ahead of the leader ({theirs:?} > {own:?})");
            tracing::warn!(%why, "giving up leadership");
            return self.look(&why, out);
        }
        let epoch = leader.epoch.expect("fixed before any ACKEPOCH");
        let targets: Vec<NodeId> = (leader.peers.iter())
            .filter(|(_, p)| p.stage == Stage::EpochAcked)
            .map(|(&id, _)| id)
            .collect();
        self.current_epoch = epoch;
        out.persist.set_meta(META_CURRENT, codec::encode(&epoch));
        let tag = self.notify_tag(out);
        self.leading().expect("leading").own_current = Some(Err(tag));
        for peer in targets {
            self.send_new_leader(peer, out);
        }
    }

    // ----- synchronisation -------------------------------------------------------------

    fn send_new_leader(&mut self, to: NodeId, out: &mut Fx<S>) {
        let last = self.log.last_pos();
        let txns_after = |node: &ZabNode<S>, after: Pos| -> Vec<Txn<S>> {
            let txns = node.log.after(after, usize::MAX);
            txns.map(|(zxid, cmd)| Txn {
                zxid: *zxid,
                cmd: cmd.clone(),
            })
            .collect()
        };
        let Some(Role::Leading(leader)) = Some(&self.role) else {
            return;
        };
        let Some(peer) = leader.peers.get(&to) else {
            return;
        };
        let epoch = leader.epoch.expect("syncing");
        let sync = match sync_plan(&self.log, &peer.history) {
            SyncPlan::Diff { keep, after } => Sync::Diff {
                keep,
                txns: txns_after(self, after),
            },
            SyncPlan::Snap => {
                let snapshot = self
                    .snapshot
                    .clone()
                    .expect("a compacted log has a snapshot");
                let txns = txns_after(self, snapshot.pos);
                Sync::Snap { snapshot, txns }
            }
        };
        tracing::debug!(%to, %epoch, mode = sync_mode(&sync), "newleader");
        let peer = self
            .leading()
            .expect("leading")
            .peers
            .get_mut(&to)
            .expect("peer");
        peer.stage = Stage::NewLeaderSent;
        peer.sent_through = last;
        peer.synced_through = last;
        let session = peer.session;
        out.send(
            to,
            Message::NewLeader {
                session,
                epoch,
                sync,
            },
        );
    }

    pub(crate) fn on_ack_new_leader(
        &mut self,
        from: NodeId,
        session: u64,
        epoch: Epoch,
        out: &mut Fx<S>,
    ) {
        let (now, commit) = (self.now, self.commit);
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.epoch != Some(epoch) {
            return;
        }
        let established = leader.established;
        let Some(peer) = leader.peers.get_mut(&from) else {
            return;
        };
        if peer.stage != Stage::NewLeaderSent || peer.session != session {
            return; // a duplicate, or the answer to an earlier handshake
        }
        peer.stage = Stage::Synced;
        peer.last_heard = now;
        // Its history is now a prefix of ours through what NEWLEADER carried.
        let through = self.log.zxid_at(peer.synced_through);
        let peer = self
            .leading()
            .expect("leading")
            .peers
            .get_mut(&from)
            .expect("peer");
        peer.acked = through.unwrap_or(Zxid::ZERO);
        if established {
            out.send(from, Message::UpToDate { epoch, commit });
            // Proposals made while it synced.
            self.send_proposals_to(from, out);
            self.advance_commit(out);
        } else {
            self.try_establish(out);
        }
    }

    /// With NEWLEADER acknowledged by a quorum (ours once our `currentEpoch` is
    /// durable): the epoch is established and our whole history committed.
    fn try_establish(&mut self, out: &mut Fx<S>) {
        let (me, last) = (self.cfg.id, self.log.last_zxid());
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.established || leader.own_current != Some(Ok(())) {
            return;
        }
        let synced = leader
            .peers
            .iter()
            .filter(|(_, p)| p.stage == Stage::Synced);
        let ids: Vec<NodeId> = synced.map(|(&id, _)| id).chain([me]).collect();
        if !self.cfg.is_quorum(&ids) {
            return;
        }
        let leader = self.leading().expect("leading");
        leader.established = true;
        leader.durable = last;
        let epoch = leader.epoch.expect("established epoch");
        tracing::debug!(%epoch, %last, "established");
        self.commit_through(last, out);
        let commit = self.commit;
        assert_eq!(commit, last, "an established leader's history is committed");
        let leader = self.leading().expect("leading");
        for (&id, p) in &leader.peers {
            if p.stage == Stage::Synced {
                out.send(id, Message::UpToDate { epoch, commit });
            }
        }
    }

    pub(crate) fn on_own_write_durable(&mut self, tag: u64, out: &mut Fx<S>) {
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.own_epoch.is_err_and(|t| tag >= t) {
            leader.own_epoch = Ok(());
            self.try_start_sync(out);
        }
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader
            .own_current
            .is_some_and(|c| c.is_err_and(|t| tag >= t))
        {
            leader.own_current = Some(Ok(()));
            self.try_establish(out);
        }
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if let Some(through) = leader.waits.confirm(tag) {
            leader.durable = leader.durable.max(through);
            self.advance_commit(out);
        }
    }

    // ----- broadcast ---------------------------------------------------------------

    /// Appends a client's command as the next transaction of our epoch (sent by
    /// [`broadcast_proposals`](Self::broadcast_proposals) with the rest of its input).
    pub(crate) fn propose(
        &mut self,
        waiter: Option<Waiter>,
        cmd: SessionCommand<S::Command>,
        out: &mut Fx<S>,
    ) {
        let leader = self.leading().expect("only an established leader proposes");
        let epoch = leader.epoch.expect("established");
        let zxid = Zxid::new(epoch, leader.next_counter);
        leader.next_counter += 1;
        if let Some(waiter) = waiter {
            leader.pending.push_back((zxid, waiter));
        }
        let txn = Txn::new(zxid, cmd);
        self.append(&txn, &mut out.persist);
        let Role::Leading(leader) = &mut self.role else {
            unreachable!("leading");
        };
        let notify = &mut out.persist_notify;
        leader
            .waits
            .await_batch(zxid, &mut self.persist_tag, notify);
    }

    /// Commands a follower's clients sent: proposed as ours, answered by the
    /// follower. Dropped unless we broadcast (the clients time out and retry).
    pub(crate) fn on_forward(&mut self, cmds: Vec<SessionCommand<S::Command>>, out: &mut Fx<S>) {
        if !matches!(&self.role, Role::Leading(l) if l.established) {
            return;
        }
        for cmd in cmds {
            self.propose(None, cmd, out);
        }
        self.broadcast_proposals(out);
    }

    /// Sends every synced (or syncing) follower the transactions it has not been
    /// sent, as PROPOSALs of at most `batch_max`.
    pub(crate) fn broadcast_proposals(&mut self, out: &mut Fx<S>) {
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        let targets: Vec<NodeId> = (leader.peers.iter())
            .filter(|(_, p)| p.stage >= Stage::NewLeaderSent)
            .map(|(&id, _)| id)
            .collect();
        for to in targets {
            self.send_proposals_to(to, out);
        }
    }

    fn send_proposals_to(&mut self, to: NodeId, out: &mut Fx<S>) {
        let (commit, batch_max, last) = (self.commit, self.cfg.batch_max, self.log.last_pos());
        let log = &self.log;
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        let epoch = leader.epoch.expect("broadcasting");
        let Some(peer) = leader.peers.get_mut(&to) else {
            return;
        };
        while peer.sent_through < last {
            let prev = log
                .zxid_at(peer.sent_through)
                .expect("sent positions are held");
            let txns: Vec<Txn<S>> = (log.after(peer.sent_through, batch_max))
                .map(|(zxid, cmd)| Txn {
                    zxid: *zxid,
                    cmd: cmd.clone(),
                })
                .collect();
            assert!(
                txns.iter().all(|t| t.zxid.epoch == epoch),
                "a proposal of another epoch than {epoch}"
            );
            peer.sent_through = Pos(peer.sent_through.0 + txns.len() as u64);
            let msg = Message::Propose {
                epoch,
                prev,
                txns,
                commit,
            };
            // Our own write of these proceeds in parallel: we count ourselves once
            // it is confirmed. A follower still syncing gets them after NEWLEADER.
            match peer.stage {
                Stage::Synced => out.send_early(to, msg),
                _ => out.send(to, msg),
            }
        }
    }

    pub(crate) fn on_ack(&mut self, from: NodeId, epoch: Epoch, zxid: Zxid, out: &mut Fx<S>) {
        let (now, last) = (self.now, self.log.last_zxid());
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.epoch != Some(epoch) {
            return;
        }
        let Some(peer) = leader.peers.get_mut(&from) else {
            return;
        };
        if peer.stage != Stage::Synced || peer.observer {
            return;
        }
        // We sent it only transactions of our log, which only grows while we lead.
        assert!(
            zxid <= last,
            "{from} acknowledged {zxid}, past our last {last}"
        );
        peer.last_heard = now;
        if zxid > peer.acked {
            peer.acked = zxid;
            self.advance_commit(out);
        }
    }

    /// Commits the highest transaction of our epoch a quorum holds durably.
    fn advance_commit(&mut self, out: &mut Fx<S>) {
        let (me, n) = (self.cfg.id, self.cfg.voters.len());
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if !leader.established {
            return;
        }
        let epoch = leader.epoch.expect("established");
        let mut acked: Vec<Zxid> = (self.cfg.voters.iter())
            .map(|v| match *v == me {
                true => leader.durable,
                false => leader
                    .peers
                    .get(v)
                    .filter(|p| p.stage == Stage::Synced)
                    .map_or(Zxid::ZERO, |p| p.acked),
            })
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = acked[n / 2];
        if candidate <= self.commit || candidate.epoch != epoch {
            return;
        }
        self.commit_through(candidate, out);
        let (commit, leader) = (self.commit, self.leading().expect("leading"));
        for (&id, p) in &leader.peers {
            if p.stage == Stage::Synced {
                out.send(
                    id,
                    Message::Commit {
                        epoch,
                        zxid: commit,
                    },
                );
            }
        }
    }

    // ----- reads, pings, liveness --------------------------------------------------------

    pub(crate) fn read(&mut self, waiter: Waiter, query: S::Query, out: &mut Fx<S>) {
        let commit = self.commit;
        let leader = self.leading().expect("only an established leader reads");
        leader.read_ctx += 1;
        let ctx = leader.read_ctx;
        leader.reads.push_back(PendingRead {
            ctx,
            index: commit,
            waiter,
            query,
        });
        self.ping(out);
        self.serve_reads(out);
    }

    /// Answers the reads a quorum confirmed whose commit point is applied.
    pub(crate) fn serve_reads(&mut self, out: &mut Fx<S>) {
        let me = self.cfg.id;
        let applied = self.log.zxid_at(self.applied).unwrap_or(Zxid::ZERO);
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.reads.is_empty() {
            return;
        }
        let mut ctxs: Vec<u64> = (self.cfg.voters.iter())
            .map(|v| match *v == me {
                true => u64::MAX,
                false => leader.peers.get(v).map_or(0, |p| p.read_ctx),
            })
            .collect();
        ctxs.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = ctxs[self.cfg.voters.len() / 2];
        while let Some(read) = leader.reads.front() {
            if read.ctx > confirmed || read.index > applied {
                break;
            }
            let read = leader.reads.pop_front().expect("front exists");
            let output = self.app.app().query(&read.query);
            let (client, seq) = (read.waiter.client, read.waiter.seq);
            let answer = Response::QueryOutput {
                output,
                zxid: applied,
            };
            out.reply_early(client, seq, Outcome::Done(answer));
        }
    }

    fn ping(&mut self, out: &mut Fx<S>) {
        let commit = self.commit;
        let log = &self.log;
        let Role::Leading(leader) = &self.role else {
            return;
        };
        let (Some(epoch), read_ctx) = (leader.epoch, leader.read_ctx) else {
            return;
        };
        let established = leader.established;
        for (&id, p) in &leader.peers {
            let sent = match p.stage >= Stage::NewLeaderSent {
                true => log.zxid_at(p.sent_through).unwrap_or(Zxid::ZERO),
                false => Zxid::ZERO,
            };
            let ping = Message::Ping {
                epoch,
                commit,
                read_ctx,
                sent,
                established,
            };
            out.send(id, ping);
        }
    }

    pub(crate) fn on_ping_ack(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        read_ctx: u64,
        (synced, last): (Option<u64>, Zxid),
        out: &mut Fx<S>,
    ) {
        let now = self.now;
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if leader.epoch != Some(epoch) {
            return;
        }
        let Some(peer) = leader.peers.get_mut(&from) else {
            return;
        };
        peer.last_heard = now;
        peer.read_ctx = peer.read_ctx.max(read_ctx);
        let (stage, session) = (peer.stage, peer.session);
        if synced == Some(session) {
            if stage == Stage::NewLeaderSent {
                // It acknowledged this handshake's NEWLEADER; that answer was lost.
                self.on_ack_new_leader(from, session, epoch, out);
            } else if stage == Stage::Synced {
                self.on_ack(from, epoch, last, out);
            }
        }
        self.serve_reads(out);
    }

    /// Pings, and gives up leading if no quorum was heard from within the sync
    /// timeout, or the epoch is not established within the init timeout.
    pub(crate) fn on_leader_tick(&mut self, out: &mut Fx<S>) {
        let (me, now) = (self.cfg.id, self.now);
        let (sync_timeout, init_timeout) = (self.cfg.sync_timeout, self.cfg.init_timeout);
        let Role::Leading(leader) = &mut self.role else {
            return;
        };
        if !leader.established && now >= leader.since + init_timeout {
            return self.look("epoch not established in time", out);
        }
        // ZooKeeper's `syncedAckSet`: followers in sync keep us leading, and ones in a
        // handshake for at most `init_timeout` (a follower that starts over after a
        // lost proposal must not depose us; one stuck in handshakes cannot help
        // commit anything — ZooKeeper gives a new learner initLimit + syncLimit).
        let recent = |t: Time| now < t + sync_timeout;
        let counts = |p: &Peer| p.stage == Stage::Synced || now < p.began + init_timeout;
        let heard =
            (leader.peers.iter()).filter(|(_, p)| !p.observer && counts(p) && recent(p.last_heard));
        let ids: Vec<NodeId> = heard.map(|(&id, _)| id).chain([me]).collect();
        let Role::Leading(leader) = &self.role else {
            return;
        };
        if leader.established && !self.cfg.is_quorum(&ids) && now >= leader.since + sync_timeout {
            return self.look("lost the quorum", out);
        }
        self.ping(out);
    }
}

fn sync_mode<S: StateMachine>(sync: &Sync<S>) -> &'static str {
    match sync {
        Sync::Diff { txns, .. } if txns.is_empty() => "diff (empty)",
        Sync::Diff { .. } => "diff",
        Sync::Snap { .. } => "snap",
    }
}
