//! Raft in the simulator, and Raft's safety properties (Figure 3) as online
//! invariants.

use crate::protocol::{Invariant, SimProtocol};
use crate::sim::digest::TraceDigest;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use synod_core::{KvOp, KvResult, NodeId, Time};
use synod_raft::{LogIndex, RaftConfig, RaftNode, Request, Response, Term};

/// Raft, registered as `raft`.
pub struct Raft;

impl SimProtocol for Raft {
    type Node = RaftNode;
    const NAME: &'static str = "raft";

    fn build(id: NodeId, members: &[NodeId], seed: u64) -> RaftNode {
        RaftNode::new(RaftConfig::lan(id, members.iter().copied(), seed))
    }

    fn request(op: KvOp) -> Request {
        Request::Kv(op)
    }

    fn result(response: &Response) -> KvResult {
        match response {
            Response::Kv(r) => r.clone(),
            Response::ConfigChanged(_) | Response::TransferStarted => KvResult::Written,
        }
    }

    fn invariants(_members: &[NodeId]) -> Vec<Box<dyn Invariant<RaftNode>>> {
        vec![
            Box::new(ElectionSafety::default()),
            Box::new(CommittedEntries::default()),
        ]
    }
}

/// Election Safety: at most one leader can be elected in a given term (§5.2).
#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<Term, NodeId>,
}

impl Invariant<RaftNode> for ElectionSafety {
    fn name(&self) -> &'static str {
        "election-safety"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, node: &RaftNode) -> Result<(), String> {
        if !node.is_leader() {
            return Ok(());
        }
        let leader = *self.leaders.entry(node.term()).or_insert(id);
        if leader != id {
            return Err(format!("two leaders in {}: {leader} and {id}", node.term()));
        }
        Ok(())
    }
}

/// Log Matching, Leader Completeness and State Machine Safety (Figure 3), checked
/// together through one record of every entry any node ever reported committed:
/// * whenever a node's commit index advances, the entries it now calls committed
///   must equal the recorded ones (same term, same content) — so no two nodes ever
///   commit (and hence apply) different entries at one index, even across crashes;
/// * Leader Completeness: a leader of term `T` must hold every recorded committed
///   entry that was known committed in a term below `T` (it may have compacted it).
///   The term in which an entry was first *seen* committed bounds the term in which
///   it was committed from above; a stale leader of an older term is not bound.
#[derive(Debug, Default)]
pub struct CommittedEntries {
    /// index → (entry term, content hash, term of the node that first reported it
    /// committed) of committed entries.
    committed: BTreeMap<LogIndex, (Term, u64, Term)>,
    /// Per node: commit index already checked in its current incarnation.
    checked: BTreeMap<NodeId, LogIndex>,
    /// Per node: the term in which its leadership was last checked. A leader only
    /// appends within its term (asserted in `synod-raft`), so checking once, when it
    /// wins, suffices.
    leader_checked: BTreeMap<NodeId, Term>,
}

fn entry_hash(e: &synod_raft::Entry) -> u64 {
    let mut h = TraceDigest::default();
    e.payload.hash(&mut h);
    h.finish()
}

impl Invariant<RaftNode> for CommittedEntries {
    fn name(&self) -> &'static str {
        "committed-entries"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, node: &RaftNode) -> Result<(), String> {
        let log = node.log();
        let from = self
            .checked
            .get(&id)
            .copied()
            .unwrap_or(LogIndex(0))
            .max(log.prev().index);
        let mut i = from.next();
        while i <= node.commit_index() {
            let e = log
                .entry(i)
                .ok_or_else(|| format!("{id} calls {i} committed but does not hold it"))?;
            let seen = (e.term, entry_hash(e));
            match self.committed.get(&i) {
                Some(&(term, hash, _)) if (term, hash) != seen => {
                    return Err(format!(
                        "state machine safety: {id} committed {i} with {} but {term} was committed before",
                        e.term
                    ))
                }
                Some(_) => {}
                None => {
                    self.committed.insert(i, (seen.0, seen.1, node.term()));
                }
            }
            i = i.next();
        }
        self.checked.insert(id, node.commit_index());
        if node.is_leader() && self.leader_checked.get(&id) != Some(&node.term()) {
            self.leader_checked.insert(id, node.term());
            let bound = node.term();
            for (&i, &(term, hash, seen_in)) in self.committed.range(log.first_index()..) {
                if seen_in >= bound {
                    continue;
                }
                let e = log.entry(i).ok_or_else(|| {
                    format!(
                        "leader completeness: leader {id} of {bound} ends at {} but {i} was committed by {seen_in}",
                        log.last_index()
                    )
                })?;
                if (e.term, entry_hash(e)) != (term, hash) {
                    return Err(format!(
                        "leader completeness: leader {id} of {bound} holds a different entry at committed {i}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.checked.remove(&id);
        self.leader_checked.remove(&id);
    }
}
