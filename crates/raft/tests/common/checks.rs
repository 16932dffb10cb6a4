//! The checks: Raft's Figure 3 guarantees after every input, and convergence.

use super::{Cluster, Entry, LogIndex, NodeId, RaftNode, Term};
use std::collections::BTreeMap;
use synod_testkit::Check;

impl Cluster {
    /// Every live node follows one leader, in its term, with its commit index and
    /// the same state machine.
    pub fn assert_converged(&self) {
        let lead = self.node(self.leader().expect("no leader"));
        for r in self.live() {
            let id = r.node_id();
            assert_eq!(r.term(), lead.term(), "{id} is in another term");
            assert_eq!(r.leader(), lead.leader(), "{id} follows another leader");
            assert_eq!(r.commit_index(), lead.commit_index(), "{id} commit");
            assert_eq!(r.applied_index(), r.commit_index(), "{id} has not applied");
            assert_eq!(
                r.state_machine(),
                lead.state_machine(),
                "{id} state machine"
            );
        }
    }
    /// Log Matching (§5.3): two logs holding an entry with the same index and term
    /// are identical in every entry up to it (as far as both still hold entries).
    pub fn assert_log_matching(&self) {
        let nodes: Vec<&RaftNode> = self.live().collect();
        for (k, a) in nodes.iter().enumerate() {
            for b in &nodes[k + 1..] {
                let (a, b) = (a.log(), b.log());
                let first = a.first_index().max(b.first_index());
                let mut i = a.last_index().min(b.last_index());
                while i >= first && a.term_at(i) != b.term_at(i) {
                    i = i.prev();
                }
                while i >= first {
                    assert_eq!(a.entry(i), b.entry(i), "Log Matching broken at {i}");
                    i = i.prev();
                }
            }
        }
    }
}

/// Raft's Figure 3 guarantees, checked after every input (see the module docs).
#[derive(Default)]
pub(super) struct Figure3 {
    pub(super) leaders: BTreeMap<Term, NodeId>,
    /// index → (entry, term of the node that first reported it committed).
    committed: BTreeMap<LogIndex, (Entry, Term)>,
    checked: BTreeMap<NodeId, LogIndex>,
    leader_checked: BTreeMap<NodeId, Term>,
}

impl Check<RaftNode> for Figure3 {
    fn after_step(&mut self, id: NodeId, r: &RaftNode) {
        let term = r.term();
        if r.is_leader() {
            let first = *self.leaders.entry(term).or_insert(id);
            assert_eq!(first, id, "Election Safety: two leaders in {term}");
        }
        let log = r.log();
        let checked = self.checked.get(&id).copied().unwrap_or_default();
        let mut i = checked.max(log.prev().index).next();
        while i <= r.commit_index() {
            let e = log
                .entry(i)
                .unwrap_or_else(|| panic!("{id} committed {i} without it"));
            let (first, _) = self.committed.entry(i).or_insert_with(|| (e.clone(), term));
            assert_eq!(
                &*first, e,
                "State Machine Safety: {id} committed another entry at {i}"
            );
            i = i.next();
        }
        self.checked.insert(id, r.commit_index());
        // A stale leader of an older term is not bound by entries committed later.
        if r.is_leader() && self.leader_checked.insert(id, term) != Some(term) {
            for (i, (e, seen_in)) in self.committed.range(log.first_index()..) {
                let lacks = *seen_in < term && log.entry(*i) != Some(e);
                assert!(
                    !lacks,
                    "Leader Completeness: {id} leads {term} without committed {i}"
                );
            }
        }
    }

    fn crashed(&mut self, id: NodeId) {
        self.checked.remove(&id);
        self.leader_checked.remove(&id);
    }
}
