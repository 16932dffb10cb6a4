//! Single-decree helpers and the check of "Paxos Made Simple" §2.1 safety.

use super::{n, Check, Cluster};
use std::collections::{BTreeMap, BTreeSet};
use synod_core::NodeId;
use synod_paxos::single::{SynodConfig, SynodMessage, SynodNode};
use synod_paxos::Ballot;

pub type Synod = SynodNode<String>;

/// `size` Synod nodes with `SynodConfig::lan`, checked after every input.
pub fn synod_cluster(size: u64, seed: u64) -> Cluster<Synod> {
    let build = move |id: NodeId| {
        SynodNode::new(SynodConfig::lan(id, (1..=size).map(n), seed * 1000 + id.0))
    };
    let check = OneValueChosen {
        quorum: size as usize / 2 + 1,
        votes: BTreeMap::new(),
        chosen: None,
    };
    Cluster::start(size, build, vec![Box::new(check)])
}

/// Names a message by kind.
pub fn kind(m: &SynodMessage<String>) -> &'static str {
    match m {
        SynodMessage::Prepare { .. } => "Prepare",
        SynodMessage::Promise { .. } => "Promise",
        SynodMessage::Refuse { .. } => "Refuse",
        SynodMessage::Accept { .. } => "Accept",
        SynodMessage::Accepted { .. } => "Accepted",
    }
}

/// §2.1: "Only a single value is chosen" and "a process never learns that a value
/// has been chosen unless it actually has been". Chosen is computed from the
/// acceptors' durable state after every input — a majority accepted the value in
/// one ballot — independently of what the learners believe. (The driver persists
/// each batch before the next input, so what a node holds is what it persisted.)
struct OneValueChosen {
    quorum: usize,
    votes: BTreeMap<Ballot, (String, BTreeSet<NodeId>)>,
    chosen: Option<String>,
}

impl Check<Synod> for OneValueChosen {
    fn after_step(&mut self, id: NodeId, node: &Synod) {
        if let Some((ballot, value)) = node.accepted() {
            let (v, voters) = self
                .votes
                .entry(*ballot)
                .or_insert_with(|| (value.clone(), BTreeSet::new()));
            assert_eq!(v, value, "two values accepted in {ballot}");
            voters.insert(id);
            if voters.len() >= self.quorum {
                let chosen = self.chosen.get_or_insert_with(|| value.clone());
                assert_eq!(chosen, value, "two values chosen");
            }
        }
        if let Some(learned) = node.chosen() {
            assert_eq!(
                self.chosen.as_ref(),
                Some(learned),
                "{id} learned a value that was not chosen"
            );
        }
    }
}
