//! The Zab tests' driver: `synod-testkit`'s deterministic cluster of `ZabNode`s,
//! with the paper's safety properties checked after every input (`ZabSafety`).

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use synod_core::{KvOp, KvResult, NodeId, Outcome, Prng};
pub use synod_testkit::{for_seeds, ms, n, Check, Faults, Ticket};
use synod_zab::{Epoch, Pos, Request, Response, ZabConfig, ZabNode, Zxid};

pub type Cluster = synod_testkit::Cluster<ZabNode>;

/// DSN 2011 §III's properties, from every server's state after every input:
/// * **at most one established leader per epoch**;
/// * **agreement / total order**: a position committed anywhere holds one zxid
///   everywhere it is committed (positions coincide along common prefixes);
/// * **primary integrity**: a leader establishing epoch `e` holds every transaction
///   committed before (the leader's history contains the whole committed log).
#[derive(Default)]
pub struct ZabSafety {
    pub leaders: BTreeMap<Epoch, NodeId>,
    pub committed: BTreeMap<Pos, Zxid>,
}

impl Check<ZabNode> for ZabSafety {
    fn after_step(&mut self, id: NodeId, z: &ZabNode) {
        if let Some(epoch) = z.established_epoch() {
            if let Some(&first) = self.leaders.get(&epoch) {
                assert_eq!(first, id, "two established leaders in {epoch}");
                return self.check_committed(id, z);
            }
            self.leaders.insert(epoch, id);
            // Checked when it establishes: a deposed leader of an older epoch keeps
            // thinking it is established for a while, without committing anything.
            for (&pos, &zxid) in self.committed.iter().filter(|(_, z)| z.epoch < epoch) {
                if pos > z.log().base().0 {
                    assert_eq!(
                        z.log().zxid_at(pos),
                        Some(zxid),
                        "primary integrity: {id} leads {epoch} without committed {zxid} at {pos}"
                    );
                }
            }
        }
        self.check_committed(id, z);
    }
}

impl ZabSafety {
    fn check_committed(&mut self, id: NodeId, z: &ZabNode) {
        let log = z.log();
        let upto = log.pos_of(z.commit()).unwrap_or(log.base().0);
        let mut pos = log.base().0.next();
        while pos <= upto {
            let zxid = log.zxid_at(pos).expect("held");
            let first = *self.committed.entry(pos).or_insert(zxid);
            assert_eq!(
                first, zxid,
                "agreement: {id} committed {zxid} at {pos}, another server {first}"
            );
            pos = pos.next();
        }
    }
}

/// `size` voters with `ZabConfig::lan`, checked after every input; the check's
/// handle is returned too.
pub fn cluster(size: u64, seed: u64) -> (Cluster, Rc<RefCell<ZabSafety>>) {
    let safety = Rc::new(RefCell::new(ZabSafety::default()));
    let build =
        move |id: NodeId| ZabNode::new(ZabConfig::lan(id, (1..=size).map(n), seed * 1000 + id.0));
    let c = Cluster::start(size, build, vec![Box::new(safety.clone())]);
    (c, safety)
}

/// The live server leading an established epoch, the highest if several think so.
pub fn leader(c: &Cluster) -> Option<u64> {
    let leaders = c
        .live()
        .filter_map(|z| z.established_epoch().map(|e| (e, z.node_id())));
    leaders.max().map(|(_, id)| id.0)
}

pub fn put(c: &mut Cluster, id: u64, key: &str, value: &str) -> Ticket {
    let (key, value) = (key.to_owned(), value.to_owned());
    c.propose(id, Request::Command(KvOp::Put { key, value }))
}

pub fn get(c: &mut Cluster, id: u64, key: &str) -> Ticket {
    c.propose(id, Request::Query(key.to_owned()))
}

pub const WRITTEN: Outcome<KvResult> = Outcome::Done(KvResult::Written);

pub fn read_ok(v: Option<&str>) -> Outcome<KvResult> {
    Outcome::Done(KvResult::Value(v.map(str::to_owned)))
}

/// A ticket's outcome with the zxid of the answer left out, as a KV result.
pub trait KvOutcome {
    fn kv_outcome(&self, t: Ticket) -> Option<Outcome<KvResult>>;
}

impl KvOutcome for Cluster {
    fn kv_outcome(&self, t: Ticket) -> Option<Outcome<KvResult>> {
        let outcome = self.outcome(t)?;
        Some(match outcome {
            Outcome::Done(Response::Output { output, .. }) => Outcome::Done(output.clone()),
            Outcome::Done(Response::QueryOutput { output, .. }) => {
                Outcome::Done(KvResult::Value(output.clone()))
            }
            Outcome::NotLeader { leader } => Outcome::NotLeader { leader: *leader },
            Outcome::Unavailable => Outcome::Unavailable,
            Outcome::Unknown => Outcome::Unknown,
        })
    }
}

/// Every live server follows the one leader, has applied everything it committed
/// and holds the same state machine.
pub fn assert_converged(c: &Cluster) {
    let l = c.node(leader(c).expect("a leader"));
    for z in c.live() {
        assert_eq!(
            z.leader(),
            Some(l.node_id()),
            "{} follows another leader",
            z.node_id()
        );
        assert_eq!(z.commit(), l.commit(), "{} commit", z.node_id());
        assert_eq!(
            z.state_machine(),
            l.state_machine(),
            "{} state",
            z.node_id()
        );
    }
}
