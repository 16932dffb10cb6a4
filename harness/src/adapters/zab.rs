//! Zab in the simulator, with the properties of DSN 2011 §III and of the model
//! checking of ZooKeeper as online invariants, computed from every server's state
//! after every step:
//!
//! * **`one-established-leader-per-epoch`** — at most one server establishes each
//!   epoch (a quorum acknowledged its NEWLEADER);
//! * **`agreement`** (integrity, total order, agreement): a position committed on any
//!   server holds the same zxid on every server that commits it, so the committed
//!   log clients observe only grows, and no truncation ever removed a committed
//!   transaction;
//! * **`primary-integrity`** — a leader establishing epoch `e` holds every
//!   transaction of an earlier epoch committed before (the leader's history contains
//!   the whole committed log of its predecessors), which with agreement gives local
//!   and global primary order;
//! * **`committed-never-truncated`** — a server never loses, while it runs, a
//!   transaction it knew committed (no TRUNC or SNAP removes one; its commit point
//!   only grows);
//! * **`synced-follower-prefix`** — a follower that acknowledged NEWLEADER holds a
//!   prefix of its leader's history of that epoch, and the leader's history of an
//!   epoch, once fixed for synchronisation, only grows (local primary order).

use super::{pick, TUNING_STREAM};
use crate::protocol::{Invariant, SimProtocol};
use crate::sim::config::DiskLosses;
use std::collections::BTreeMap;
use std::time::Duration;
use synod_core::{KvOp, KvResult, NodeId, Prng, Time};
use synod_zab::{Epoch, Pos, Request, Response, ZabConfig, ZabNode, Zxid};

/// Zab replicating the KV: `ZabReads<false>` reads through the leader
/// (linearizable), `ZabReads<true>` at whichever server the client asks
/// (ZooKeeper's default). See the registry for their names.
pub struct ZabReads<const LOCAL: bool>;

/// Zab with leader-confirmed reads.
pub type Zab = ZabReads<false>;
/// Zab with ZooKeeper's local reads.
pub type ZabLocal = ZabReads<true>;

impl<const LOCAL: bool> SimProtocol for ZabReads<LOCAL> {
    /// Three election rounds: Fast Leader Election settles within the longest
    /// notification interval (800 ms) once the votes are exchanged, and a
    /// prospective leader that cannot establish itself gives up after
    /// `init_timeout` (1 s) — 1.8 s a round; three allow two failed rounds in a row.
    const RECOVERY: Duration = Duration::from_millis(3 * (800 + 1000));
    type Node = ZabNode;

    fn build(id: NodeId, members: &[NodeId], seed: u64) -> ZabNode {
        ZabNode::new(ZabConfig::lan(id, members.iter().copied(), seed))
    }

    fn build_varied(id: NodeId, members: &[NodeId], seed: u64) -> ZabNode {
        let mut cfg = ZabConfig::lan(id, members.iter().copied(), seed);
        let mut knobs = Prng::new(seed ^ TUNING_STREAM);
        cfg.batch_max = pick(&mut knobs, &[1, 2, 3, 512]);
        cfg.snapshot_threshold = pick(&mut knobs, &[4096, 64]) as u64;
        cfg.snapshot_trailing = pick(&mut knobs, &[256, 4, 0]) as u64;
        ZabNode::new(cfg)
    }

    fn request(op: KvOp) -> Request {
        Self::request_in(&mut 0, op)
    }

    /// A `get` is a leader-confirmed or a local read (with the client's `lastZxid`);
    /// every other operation a transaction.
    type Session = u64;

    /// A minority: a majority of intact disks holds every committed entry.
    fn disk_losses(n: usize) -> DiskLosses {
        DiskLosses::minority(n)
    }

    fn request_in(seen: &mut u64, op: KvOp) -> Request {
        let seen = *seen;
        match op {
            KvOp::Get { key } if LOCAL => Request::LocalQuery {
                query: key,
                after: Zxid::from_u64(seen),
            },
            KvOp::Get { key } => Request::Query(key),
            op => Request::Command(op),
        }
    }

    fn result(response: &Response) -> KvResult {
        match response {
            Response::Output { output, .. } => output.clone(),
            Response::QueryOutput { output, .. } => KvResult::Value(output.clone()),
        }
    }

    fn observe(seen: &mut u64, response: &Response) {
        *seen = (*seen).max(response.zxid().to_u64());
    }

    fn is_leader(node: &ZabNode) -> bool {
        node.is_leader()
    }

    fn invariants(_members: &[NodeId]) -> Vec<Box<dyn Invariant<ZabNode>>> {
        vec![
            Box::new(OneEstablishedLeaderPerEpoch::default()),
            Box::new(Agreement::default()),
            Box::new(PrimaryIntegrity::default()),
            Box::new(CommittedNeverTruncated::default()),
            Box::new(SyncedFollowerPrefix::default()),
        ]
    }
}

/// At most one established leader per epoch.
#[derive(Debug, Default)]
pub struct OneEstablishedLeaderPerEpoch {
    leaders: BTreeMap<Epoch, NodeId>,
}

impl Invariant<ZabNode> for OneEstablishedLeaderPerEpoch {
    fn name(&self) -> &'static str {
        "one-established-leader-per-epoch"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, z: &ZabNode) -> Result<(), String> {
        let Some(epoch) = z.established_epoch() else {
            return Ok(());
        };
        match *self.leaders.entry(epoch).or_insert(id) {
            first if first == id => Ok(()),
            first => Err(format!("{id} and {first} both established {epoch}")),
        }
    }
}

/// Every position committed anywhere holds one zxid (the committed log is one log).
#[derive(Debug, Default)]
pub struct Agreement {
    committed: BTreeMap<Pos, Zxid>,
    /// Per server, the last position already checked in its current incarnation.
    checked: BTreeMap<NodeId, Pos>,
}

impl Invariant<ZabNode> for Agreement {
    fn name(&self) -> &'static str {
        "agreement"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, z: &ZabNode) -> Result<(), String> {
        let log = z.log();
        let upto = log.pos_of(z.commit()).unwrap_or(log.base().0);
        let from = self
            .checked
            .get(&id)
            .copied()
            .unwrap_or_default()
            .max(log.base().0);
        let mut pos = from.next();
        while pos <= upto {
            let zxid = log.zxid_at(pos).expect("committed positions are held");
            let first = *self.committed.entry(pos).or_insert(zxid);
            if first != zxid {
                return Err(format!(
                    "{id} committed {zxid} at {pos}, another server {first}"
                ));
            }
            pos = pos.next();
        }
        self.checked.insert(id, upto);
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.checked.remove(&id);
    }
}

/// A leader establishing an epoch holds every transaction committed before.
#[derive(Debug, Default)]
pub struct PrimaryIntegrity {
    committed: BTreeMap<Pos, Zxid>,
    established: BTreeMap<NodeId, Epoch>,
}

impl Invariant<ZabNode> for PrimaryIntegrity {
    fn name(&self) -> &'static str {
        "primary-integrity"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, z: &ZabNode) -> Result<(), String> {
        if let Some(epoch) = z.established_epoch() {
            if self.established.insert(id, epoch) != Some(epoch) {
                let log = z.log();
                // Of earlier epochs (DSN 2011 §III, primary integrity): a late NEWLEADER
                // acknowledgement can establish an epoch after a later one committed.
                let earlier = self.committed.range(log.base().0.next()..);
                for (&pos, &zxid) in earlier.filter(|(_, z)| z.epoch < epoch) {
                    if log.zxid_at(pos) != Some(zxid) {
                        return Err(format!(
                            "{id} established {epoch} without committed {zxid} at {pos}"
                        ));
                    }
                }
            }
        }
        let log = z.log();
        let upto = log.pos_of(z.commit()).unwrap_or(log.base().0);
        let mut pos = log.base().0.next();
        while pos <= upto {
            let zxid = || log.zxid_at(pos).expect("committed positions are held");
            self.committed.entry(pos).or_insert_with(zxid);
            pos = pos.next();
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.established.remove(&id);
    }
}

/// A server keeps, while it runs, every transaction it knew committed.
#[derive(Debug, Default)]
pub struct CommittedNeverTruncated {
    /// Per server (this incarnation), the last committed position it held and its zxid.
    last: BTreeMap<NodeId, (Pos, Zxid)>,
}

impl Invariant<ZabNode> for CommittedNeverTruncated {
    fn name(&self) -> &'static str {
        "committed-never-truncated"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, z: &ZabNode) -> Result<(), String> {
        let log = z.log();
        if let Some(&(pos, zxid)) = self.last.get(&id) {
            if z.commit() < zxid {
                return Err(format!(
                    "{id}'s commit point fell from {zxid} to {}",
                    z.commit()
                ));
            }
            // Below the log's base the transaction is in the snapshot.
            if pos > log.base().0 && log.zxid_at(pos) != Some(zxid) {
                return Err(format!(
                    "{id} lost committed {zxid} at {pos} (now {:?})",
                    log.zxid_at(pos)
                ));
            }
        }
        if let Some(pos) = log.pos_of(z.commit()) {
            self.last.insert(id, (pos, z.commit()));
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.last.remove(&id);
    }
}

/// A synced follower's history is a prefix of its leader's, which only grows.
#[derive(Debug, Default)]
pub struct SyncedFollowerPrefix {
    /// Per epoch, its leader's history as seen since it was fixed: (first position
    /// recorded, zxids from there on).
    leaders: BTreeMap<Epoch, (Pos, Vec<Zxid>)>,
    /// Per synced follower, (epoch, last position checked) in its current sync.
    checked: BTreeMap<NodeId, (Epoch, Pos)>,
}

impl SyncedFollowerPrefix {
    fn record_leader(&mut self, id: NodeId, epoch: Epoch, z: &ZabNode) -> Result<(), String> {
        let log = z.log();
        let (start, zxids) = self
            .leaders
            .entry(epoch)
            .or_insert_with(|| (log.base().0.next(), Vec::new()));
        let mut pos = Pos(start.0 + zxids.len() as u64);
        // What it recorded last must still be there (it never truncates while leading).
        if let Some(&last) = zxids.last() {
            let at = pos.prev();
            if at > log.base().0 && log.zxid_at(at) != Some(last) {
                return Err(format!(
                    "{id}, leading {epoch}, no longer holds {last} at {at}"
                ));
            }
        }
        while let Some(zxid) = log.zxid_at(pos) {
            zxids.push(zxid);
            pos = pos.next();
        }
        Ok(())
    }

    fn check_follower(&mut self, id: NodeId, epoch: Epoch, z: &ZabNode) -> Result<(), String> {
        let log = z.log();
        let from = match self.checked.get(&id) {
            Some(&(e, pos)) if e == epoch => pos,
            _ => log.base().0,
        };
        let Some((start, zxids)) = self.leaders.get(&epoch) else {
            return Err(format!("{id} synced with {epoch}, which no leader fixed"));
        };
        let mut pos = from.next().max(*start);
        while let Some(zxid) = log.zxid_at(pos) {
            match zxids.get((pos.0 - start.0) as usize) {
                Some(&theirs) if theirs == zxid => {}
                theirs => {
                    let theirs = theirs.map_or("nothing".into(), |z| z.to_string());
                    return Err(format!(
                        "{id}, synced in {epoch}, holds {zxid} at {pos}; its leader {theirs}"
                    ));
                }
            }
            pos = pos.next();
        }
        self.checked.insert(id, (epoch, pos.prev()));
        Ok(())
    }
}

impl Invariant<ZabNode> for SyncedFollowerPrefix {
    fn name(&self) -> &'static str {
        "synced-follower-prefix"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, z: &ZabNode) -> Result<(), String> {
        if let Some(epoch) = z.syncing_epoch() {
            return self.record_leader(id, epoch, z);
        }
        match (z.is_synced_follower(), z.following_epoch()) {
            (true, Some(epoch)) => self.check_follower(id, epoch, z),
            _ => {
                self.checked.remove(&id);
                Ok(())
            }
        }
    }

    fn on_crash(&mut self, id: NodeId) {
        self.checked.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::check_linearizability;
    use crate::sim::config::{FaultSpec, SimConfig};
    use crate::sim::Simulator;

    /// The registry's promise for `zab-local` holds and is the weaker one: under
    /// faults every run passes the prefix-read check, and some run is caught by the
    /// linearizability check (a stale local read of a deposed leader or a follower
    /// cut off from it).
    #[test]
    fn zookeeper_local_reads_are_prefix_reads_and_not_linearizable() {
        let mut stale = Vec::new();
        for seed in 0..SEEDS {
            let mut cfg = SimConfig::standard(seed, FaultSpec::all(), 400);
            cfg.workload.clients = 6;
            let mut linear = Simulator::<ZabLocal>::new(cfg).run();
            assert!(
                linear.violation.is_none(),
                "seed {seed}: {:?}",
                linear.violation
            );
            // The prefix check's verdict itself: a timeout (`Unknown`) is no pass here.
            let moved = crate::history::reads_from_the_start(&linear.history);
            let history = crate::history::to_checker(&moved).expect("well-formed");
            let options = crate::checker::Options {
                timeout: Some(Duration::from_secs(20)),
                threads: std::num::NonZeroUsize::new(1),
            };
            let r = crate::checker::check(&history, crate::checker::Model::Kv, options).unwrap();
            assert_eq!(
                r.verdict,
                crate::checker::Verdict::Linearizable,
                "seed {seed}"
            );
            check_linearizability(&mut linear, Duration::from_secs(20));
            if linear.violation.is_some() {
                stale.push(seed);
            }
        }
        assert!(!stale.is_empty(), "no stale local read in {SEEDS} seeds");
        eprintln!("not linearizable: seeds {stale:?}");
    }

    const SEEDS: u64 = 40;
}
