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
//!   and global primary order.

use super::{pick, TUNING_STREAM};
use crate::protocol::{Invariant, SimProtocol};
use std::collections::BTreeMap;
use synod_core::{KvOp, KvResult, NodeId, Prng, Time};
use synod_zab::{Epoch, Pos, Request, Response, ZabConfig, ZabNode, Zxid};

/// Zab replicating the KV (see the registry for its name).
pub struct Zab;

impl SimProtocol for Zab {
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

    /// A `get` is a leader-confirmed read; every other operation a transaction.
    fn request(op: KvOp) -> Request {
        match op {
            KvOp::Get { key } => Request::Query(key),
            op => Request::Command(op),
        }
    }

    fn result(response: &Response) -> KvResult {
        match response {
            Response::Output(r) => r.clone(),
            Response::QueryOutput(value) => KvResult::Value(value.clone()),
        }
    }

    fn is_leader(node: &ZabNode) -> bool {
        node.is_leader()
    }

    fn invariants(_members: &[NodeId]) -> Vec<Box<dyn Invariant<ZabNode>>> {
        vec![
            Box::new(OneEstablishedLeaderPerEpoch::default()),
            Box::new(Agreement::default()),
            Box::new(PrimaryIntegrity::default()),
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
