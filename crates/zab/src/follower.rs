//! The follower's side of an epoch (ZooKeeper's `Learner`/`Follower`; observers run
//! the same code and never acknowledge proposals).
//!
//! * **Discovery.** FOLLOWERINFO to the elected leader; on LEADERINFO it accepts the
//!   new epoch durably — never one below its `acceptedEpoch` (then it looks for
//!   another leader) — and answers ACKEPOCH with its current epoch and history.
//! * **Synchronisation.** NEWLEADER brings its history to the leader's (DIFF, TRUNC
//!   or SNAP); the synced history and `currentEpoch = epoch` go in one batch, and the
//!   acknowledgement leaves only once it is durable (persist before send). A
//!   truncation never removes a transaction it knows committed (`assert!`).
//!   UPTODATE: the epoch is established; it applies what is committed.
//! * **Broadcast.** A PROPOSAL is appended only right after the transaction it names
//!   (`prev`); it is acknowledged (cumulatively) once durable. A PROPOSAL from
//!   further ahead means one was lost or overtaken: the follower asks to be synced
//!   again (FOLLOWERINFO), which is what ZooKeeper does when its TCP connection
//!   breaks. Duplicates and ones it already holds are acknowledged again, nothing
//!   more. COMMIT and the commit point of PROPOSAL and PING raise its commit point
//!   within its own history, which after NEWLEADER is a prefix of the leader's.

use crate::message::{Message, Sync, Txn};
use crate::node::{Fx, Role, ZabNode, META_CURRENT, META_LOG_BASE};
use crate::types::{Epoch, Zxid};
use std::collections::BTreeMap;
use synod_core::{codec, ClientId, NodeId, Outcome, Sessions, Snapshot, StateMachine, Time};

/// Where a follower is with its leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Sent FOLLOWERINFO.
    Discovery,
    /// Acknowledged LEADERINFO; waiting for NEWLEADER.
    Sync,
    /// Acknowledged NEWLEADER; waiting for UPTODATE (proposals may come).
    Synced,
    /// Up to date.
    Broadcast,
}

pub(crate) struct Follower {
    pub(crate) leader: NodeId,
    /// The current handshake's number (0: none yet).
    pub(crate) session: u64,
    pub(crate) epoch: Option<Epoch>,
    pub(crate) phase: Phase,
    /// When the current handshake began (its first attempt) …
    pub(crate) began: Time,
    /// … and its latest attempt.
    pub(crate) since: Time,
    pub(crate) last_heard: Time,
    /// Clients whose command we forwarded to the leader: client → seq, answered when
    /// we apply it.
    pub(crate) forwarded: BTreeMap<ClientId, u64>,
}

impl Follower {
    pub(crate) fn new(leader: NodeId, now: Time) -> Follower {
        Follower {
            leader,
            session: 0,
            epoch: None,
            phase: Phase::Discovery,
            began: now,
            since: now,
            last_heard: now,
            forwarded: BTreeMap::new(),
        }
    }

    /// We stop following: whether the forwarded commands commit is unknown (their
    /// clients retry with the same seq).
    pub(crate) fn abandon<S: StateMachine>(self, out: &mut Fx<S>) {
        for (client, seq) in self.forwarded {
            out.reply(client, seq, Outcome::Unknown);
        }
    }

    /// Acknowledged NEWLEADER: our history is a prefix of the leader's.
    pub(crate) fn synced(&self) -> bool {
        self.phase >= Phase::Synced
    }

    /// UPTODATE arrived: it serves local reads.
    pub(crate) fn up_to_date(&self) -> bool {
        self.phase == Phase::Broadcast
    }
}

impl<S: StateMachine> ZabNode<S> {
    /// Our follower state, if `from` is our leader (and hearing from it).
    fn hearing_leader(&mut self, from: NodeId) -> Option<&mut Follower> {
        let now = self.now;
        match &mut self.role {
            Role::Following(f) if f.leader == from => {
                f.last_heard = now;
                Some(f)
            }
            _ => None,
        }
    }

    /// Starts (or restarts) the handshake with our leader.
    pub(crate) fn send_follower_info(&mut self, out: &mut Fx<S>) {
        let (accepted_epoch, history) = (self.accepted_epoch, self.log.summary());
        let observer = self.cfg.is_observer();
        // Strictly increasing, across restarts too: the durable incarnation number,
        // then a count within it.
        let session = self.last_session + 1;
        assert!(
            session >> 32 == self.incarnation,
            "2^32 handshakes in one run"
        );
        let Role::Following(f) = &mut self.role else {
            return;
        };
        self.last_session = session;
        if f.session == 0 || f.synced() {
            // A new handshake (the first with this leader, or after a lost
            // proposal), not a retry: it has `init_timeout` to finish.
            f.began = self.now;
        }
        f.phase = Phase::Discovery;
        f.epoch = None;
        f.since = self.now;
        f.session = session;
        let info = Message::FollowerInfo {
            session: f.session,
            accepted_epoch,
            history,
            observer,
        };
        out.send(f.leader, info);
    }

    pub(crate) fn on_leader_info(
        &mut self,
        from: NodeId,
        session: u64,
        epoch: Epoch,
        out: &mut Fx<S>,
    ) {
        let accepted = self.accepted_epoch;
        let Some(f) = self.hearing_leader(from) else {
            return;
        };
        if f.phase != Phase::Discovery || f.session != session {
            return; // a duplicate, or an answer to an earlier handshake
        }
        if epoch < accepted {
            // DSN 2011 §IV-A: a follower never acknowledges an epoch below the one it
            // accepted; that leader is stale, and stays so for us until it leads again.
            self.election.refuse(from, epoch);
            return self.look("LEADERINFO below our acceptedEpoch", out);
        }
        f.epoch = Some(epoch);
        f.phase = Phase::Sync;
        if epoch > accepted {
            self.accept_epoch(epoch, from, out);
        }
        let ack = Message::AckEpoch {
            session,
            epoch,
            promised: self.accepted_leader == Some(from),
            current_epoch: self.current_epoch,
            history: self.log.summary(),
        };
        out.send(from, ack); // after the accepted epoch is durable
    }

    pub(crate) fn on_new_leader(
        &mut self,
        from: NodeId,
        session: u64,
        epoch: Epoch,
        sync: Sync<S>,
        out: &mut Fx<S>,
    ) {
        let Some(f) = self.hearing_leader(from) else {
            return;
        };
        if f.phase != Phase::Sync || f.epoch != Some(epoch) || f.session != session {
            return;
        }
        let txns = match sync {
            Sync::Diff { keep, txns } => {
                let Some(pos) = self.log.pos_of(keep) else {
                    // Our history is not what the leader planned from: start over.
                    return self.send_follower_info(out);
                };
                // A committed transaction is in every later leader's history, so the
                // common prefix covers everything we know committed.
                assert!(
                    self.commit <= keep,
                    "NEWLEADER of {epoch} truncates to {keep}, below our commit {}",
                    self.commit
                );
                if self.log.truncate_after(pos) > 0 {
                    out.persist.truncate_from(pos.0 + 1);
                    tracing::debug!(%keep, "trunc");
                }
                txns
            }
            Sync::Snap { snapshot, txns } => {
                let Ok(app) = Sessions::<S>::restore(&snapshot.data) else {
                    tracing::warn!("the leader's snapshot does not decode: syncing again");
                    return self.send_follower_info(out);
                };
                assert!(
                    self.commit <= snapshot.zxid || txns.iter().any(|t| t.zxid == self.commit),
                    "SNAP of {epoch} at {} drops our commit {}",
                    snapshot.zxid,
                    self.commit
                );
                let old_first = self.log.base().0.next();
                out.persist.truncate_from(old_first.0);
                out.persist.save_snapshot(Snapshot {
                    meta: codec::encode(&(snapshot.pos, snapshot.zxid)),
                    data: snapshot.data.to_vec(),
                });
                out.persist.compact_to(snapshot.pos.0);
                let base = (snapshot.pos, snapshot.zxid);
                out.persist.set_meta(META_LOG_BASE, codec::encode(&base));
                self.log.reset_to(base);
                self.app = app;
                self.applied = snapshot.pos;
                self.commit = snapshot.zxid;
                self.snapshot = Some(snapshot);
                tracing::debug!(at = %base.1, "snap");
                txns
            }
        };
        for txn in &txns {
            self.append(txn, &mut out.persist);
        }
        // The synced history and our current epoch become durable together (one
        // batch), and only then does the acknowledgement leave.
        self.current_epoch = epoch;
        out.persist.set_meta(META_CURRENT, codec::encode(&epoch));
        if let Role::Following(f) = &mut self.role {
            f.phase = Phase::Synced;
        }
        out.send(from, Message::AckNewLeader { session, epoch });
    }

    pub(crate) fn on_up_to_date(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        commit: Zxid,
        out: &mut Fx<S>,
    ) {
        let Some(f) = self.hearing_leader(from) else {
            return;
        };
        if f.phase != Phase::Synced || f.epoch != Some(epoch) {
            return;
        }
        f.phase = Phase::Broadcast;
        self.commit_through(commit, out);
    }

    pub(crate) fn on_propose(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        prev: Zxid,
        txns: Vec<Txn<S>>,
        commit: Zxid,
        out: &mut Fx<S>,
    ) {
        let observer = self.cfg.is_observer();
        let Some(f) = self.hearing_leader(from) else {
            return;
        };
        if !f.synced() || f.epoch != Some(epoch) {
            return; // before NEWLEADER: it will be in the sync, or we resync
        }
        assert!(
            txns.iter().all(|t| t.zxid.epoch == epoch),
            "a proposal of {epoch} carries another epoch's transaction"
        );
        let last = self.log.last_zxid();
        let fresh: &[Txn<S>] = if prev == last {
            &txns
        } else if txns.last().is_none_or(|t| t.zxid <= last) {
            &[] // a duplicate, or already synced
        } else if let Some(i) = txns.iter().position(|t| t.zxid == last) {
            &txns[i + 1..] // overlaps what we hold
        } else {
            // Something before these was lost or overtaken.
            tracing::debug!(%prev, %last, "proposal gap: syncing again");
            return self.send_follower_info(out);
        };
        for txn in fresh {
            self.append(txn, &mut out.persist);
        }
        if !observer {
            let zxid = self.log.last_zxid();
            out.send(from, Message::Ack { epoch, zxid }); // once durable
        }
        self.commit_through(commit, out);
    }

    pub(crate) fn on_commit(&mut self, from: NodeId, epoch: Epoch, zxid: Zxid, out: &mut Fx<S>) {
        let Some(f) = self.hearing_leader(from) else {
            return;
        };
        if f.synced() && f.epoch == Some(epoch) {
            self.commit_through(zxid, out);
        }
    }

    pub(crate) fn on_ping(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        (commit, sent, established): (Zxid, Zxid, bool),
        read_ctx: u64,
        out: &mut Fx<S>,
    ) {
        let last = self.log.last_zxid();
        let Some(f) = self.hearing_leader(from) else {
            return;
        };
        if f.epoch != Some(epoch) {
            return;
        }
        let synced = f.synced();
        let session = f.session;
        if synced && sent > last {
            // A proposal to us was lost: nothing else would resend it.
            tracing::debug!(%sent, %last, "missing proposals: syncing again");
            return self.send_follower_info(out);
        }
        let ack = Message::PingAck {
            epoch,
            read_ctx,
            synced: synced.then_some(session),
            last,
        };
        if f.phase == Phase::Synced && established {
            f.phase = Phase::Broadcast; // our UPTODATE was lost
        }
        out.send(from, ack);
        if synced {
            self.commit_through(commit, out);
        }
    }

    /// Gives up on a leader not heard from in time: the sync timeout once synced,
    /// the (longer) init timeout while the leader is still establishing.
    pub(crate) fn on_follower_tick(&mut self, out: &mut Fx<S>) {
        let now = self.now;
        let Role::Following(f) = &self.role else {
            return;
        };
        let limit = match f.synced() {
            true => self.cfg.sync_timeout,
            false => self.cfg.init_timeout,
        };
        if now >= f.last_heard + limit {
            return self.look("the leader is silent", out);
        }
        if !f.synced() && now >= f.began + self.cfg.init_timeout {
            return self.look("the handshake with the leader did not finish", out);
        }
        if f.phase == Phase::Sync && now >= f.since + self.cfg.init_timeout / 2 {
            // Our ACKEPOCH or its NEWLEADER was lost: try once more. (Not sooner:
            // a NEWLEADER carrying a snapshot may take a while; ZooKeeper gives the
            // whole sync `initLimit`.)
            return self.send_follower_info(out);
        }
        if f.phase == Phase::Discovery {
            // The leader may not have been leading yet when our FOLLOWERINFO came
            // (ZooKeeper's follower retries its connection): send it again.
            let info = Message::FollowerInfo {
                session: f.session,
                accepted_epoch: self.accepted_epoch,
                history: self.log.summary(),
                observer: self.cfg.is_observer(),
            };
            out.send(f.leader, info);
        }
    }
}
