//! Multi-Paxos in the simulator, with Paxos's safety properties as online
//! invariants: one value chosen per slot (computed from every acceptor's
//! acceptances, not from what the nodes believe), and one command executed per slot
//! on every replica.

use super::{pick, TUNING_STREAM};
use crate::protocol::{Invariant, SimProtocol};
use crate::sim::config::DiskLosses;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use synod_core::{KvOp, KvResult, NodeId, Prng, Time};
use synod_paxos::multi::majority;
use synod_paxos::{Ballot, MultiPaxosConfig, MultiPaxosNode, Request, Response, Slot, Value};

/// Multi-Paxos replicating the KV (see the registry for its name).
pub struct Paxos;

impl SimProtocol for Paxos {
    /// Four election rounds: a round is at most the largest election timeout
    /// (300 ms), then phase 1 and the re-proposal of the open slots (round trips of
    /// about a millisecond); four allow three contested phase 1s in a row.
    const RECOVERY: Duration = Duration::from_millis(4 * 300);
    type Node = MultiPaxosNode;
    type Session = ();

    /// A minority: a majority of intact disks holds every committed entry.
    fn disk_losses(n: usize) -> DiskLosses {
        DiskLosses::minority(n)
    }

    fn build(id: NodeId, members: &[NodeId], seed: u64) -> MultiPaxosNode {
        MultiPaxosNode::new(MultiPaxosConfig::lan(id, members.iter().copied(), seed))
    }

    fn build_varied(id: NodeId, members: &[NodeId], seed: u64) -> MultiPaxosNode {
        let mut cfg = MultiPaxosConfig::lan(id, members.iter().copied(), seed);
        let mut knobs = Prng::new(seed ^ TUNING_STREAM);
        cfg.accept_batch_max = pick(&mut knobs, &[1, 2, 3, 512]);
        cfg.accept_inflight_max = pick(&mut knobs, &[1, 2, 8]);
        cfg.catchup_batch_max = pick(&mut knobs, &[2, 256]);
        cfg.snapshot_threshold = pick(&mut knobs, &[4096, 64]) as u64;
        cfg.snapshot_trailing = pick(&mut knobs, &[256, 4]) as u64;
        MultiPaxosNode::new(cfg)
    }

    /// A `get` is a query (a read round, no slot); every other operation a command.
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

    fn is_leader(node: &MultiPaxosNode) -> bool {
        node.is_leader()
    }

    fn invariants(members: &[NodeId]) -> Vec<Box<dyn Invariant<MultiPaxosNode>>> {
        vec![
            Box::new(OneValuePerSlot::new(majority(members.len()))),
            Box::new(SameCommandPerSlot::default()),
        ]
    }
}

/// "Paxos Made Simple" §2.1 safety, per slot: "only a single value is chosen". A
/// value is chosen at a slot when a phase-2 quorum of acceptors accepted it in the
/// same ballot; acceptances are taken from each node's step journal as they happen,
/// so the check does not trust any node's own idea of what is chosen. It also checks
/// the stronger P2b — once a value is chosen, every acceptance in a higher ballot is
/// of that value — which catches a wrong proposal at its first acceptance; one value
/// per `(slot, ballot)` (a leader proposes once per slot per ballot); and that every
/// executed value is the chosen one.
///
/// Crashes: an acceptance is real once durable. The simulator observes a node
/// before its batch is written, so a crash may take back an acceptance the
/// invariant saw. When a node restarts, every acceptance it made in its previous
/// incarnation is checked against its recovered state and withdrawn if storage
/// lost it. Batches become durable in order, so an acceptance is kept when the
/// recovered node holds it, a later acceptance of the slot, or knows the slot
/// chosen.
#[derive(Debug)]
pub struct OneValuePerSlot {
    quorum: usize,
    votes: BTreeMap<Slot, BTreeMap<Ballot, (Value, BTreeSet<NodeId>)>>,
    chosen: BTreeMap<Slot, (Ballot, Value)>,
    /// Acceptances of each node's current incarnation (checked when it restarts).
    incarnation: BTreeMap<NodeId, Vec<(Slot, Ballot)>>,
    restarting: BTreeSet<NodeId>,
}

impl OneValuePerSlot {
    /// The check for phase-2 quorums of `quorum` acceptors.
    pub fn new(quorum: usize) -> OneValuePerSlot {
        OneValuePerSlot {
            quorum,
            votes: BTreeMap::new(),
            chosen: BTreeMap::new(),
            incarnation: BTreeMap::new(),
            restarting: BTreeSet::new(),
        }
    }

    /// Withdraws the acceptances of `id`'s last incarnation that did not survive.
    fn withdraw_lost(&mut self, id: NodeId, node: &MultiPaxosNode) {
        for (slot, ballot) in self.incarnation.remove(&id).unwrap_or_default() {
            let durable = slot < node.first_unchosen()
                || node.accepted_at(slot).is_some_and(|(b, _)| b >= ballot);
            if durable {
                continue;
            }
            if let Some((_, voters)) = self
                .votes
                .get_mut(&slot)
                .and_then(|per| per.get_mut(&ballot))
            {
                voters.remove(&id);
            }
            self.recompute(slot);
        }
    }

    fn recompute(&mut self, slot: Slot) {
        let quorum = self.quorum;
        let first = self.votes.get(&slot).and_then(|per| {
            per.iter()
                .find(|(_, (_, voters))| voters.len() >= quorum)
                .map(|(b, (v, _))| (*b, v.clone()))
        });
        match first {
            Some(c) => {
                self.chosen.insert(slot, c);
            }
            None => {
                self.chosen.remove(&slot);
            }
        }
    }

    fn record(
        &mut self,
        id: NodeId,
        slot: Slot,
        ballot: Ballot,
        value: &Value,
    ) -> Result<(), String> {
        let per = self.votes.entry(slot).or_default();
        let (v, voters) = per
            .entry(ballot)
            .or_insert_with(|| (value.clone(), BTreeSet::new()));
        if v != value {
            return Err(format!("{id} accepted another value at {slot} in {ballot}"));
        }
        voters.insert(id);
        let quorum = voters.len() >= self.quorum;
        self.incarnation.entry(id).or_default().push((slot, ballot));
        if quorum {
            match self.chosen.get(&slot) {
                Some((b, c)) if c != value => {
                    return Err(format!(
                        "two values chosen at {slot}: {c:?} in {b} and {value:?} in {ballot}"
                    ))
                }
                Some((b, _)) if *b <= ballot => {}
                _ => {
                    self.chosen.insert(slot, (ballot, value.clone()));
                }
            }
        }
        self.check_p2b(slot)
    }

    /// P2b ("Paxos Made Simple" §2.2): "if a proposal with value v is chosen, then
    /// every higher-numbered proposal issued by any proposer has value v". Checked
    /// on every acceptance, so a wrong proposal is caught at its first acceptance,
    /// before it could be chosen.
    fn check_p2b(&self, slot: Slot) -> Result<(), String> {
        let Some((chosen_in, chosen)) = self.chosen.get(&slot) else {
            return Ok(());
        };
        let later = self.votes[&slot].range(chosen_in..);
        match later.into_iter().find(|(_, (v, _))| v != chosen) {
            Some((b, (v, voters))) => Err(format!(
                "P2b: {chosen:?} was chosen at {slot} in {chosen_in}, but {voters:?} accepted {v:?} in {b}"
            )),
            None => Ok(()),
        }
    }
}

impl Invariant<MultiPaxosNode> for OneValuePerSlot {
    fn name(&self) -> &'static str {
        "one-value-per-slot"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, node: &MultiPaxosNode) -> Result<(), String> {
        if self.restarting.remove(&id) {
            self.withdraw_lost(id, node);
        }
        let journal = node.journal();
        for (slot, ballot, value) in &journal.accepted {
            self.record(id, *slot, *ballot, value)?;
        }
        for (slot, value) in &journal.executed {
            match self.chosen.get(slot) {
                Some((_, c)) if c == value => {}
                Some((b, c)) => {
                    return Err(format!(
                        "{id} executed {value:?} at {slot}, but {c:?} was chosen in {b}"
                    ))
                }
                None => return Err(format!("{id} executed {slot}, which no quorum accepted")),
            }
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.restarting.insert(id);
    }
}

/// State machine safety: every replica executes the same command at each slot
/// ("Paxos Made Simple" §3: servers execute the chosen commands in slot order).
///
/// As for acceptances, only what was durable counts: a node may execute a slot it
/// chose on its own acceptance (a phase-2 quorum of one) and crash before that
/// acceptance is written — no client saw the result. When a node restarts, its
/// executions at or above its recovered first unchosen slot are withdrawn.
#[derive(Debug, Default)]
pub struct SameCommandPerSlot {
    executed: BTreeMap<Slot, BTreeMap<NodeId, Value>>,
    restarting: BTreeSet<NodeId>,
}

impl Invariant<MultiPaxosNode> for SameCommandPerSlot {
    fn name(&self) -> &'static str {
        "same-command-per-slot"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, node: &MultiPaxosNode) -> Result<(), String> {
        if self.restarting.remove(&id) {
            for (_, by) in self.executed.range_mut(node.first_unchosen()..) {
                by.remove(&id);
            }
        }
        for (slot, value) in &node.journal().executed {
            let by = self.executed.entry(*slot).or_default();
            if let Some((other, v)) = by.iter().find(|(_, v)| *v != value) {
                return Err(format!(
                    "{id} executed {value:?} at {slot}, {other} executed {v:?}"
                ));
            }
            by.insert(id, value.clone());
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.restarting.insert(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::testing::{quiet_cluster, step_until};
    use crate::runner::check_linearizability;
    use crate::sim::config::{FaultSpec, SimConfig};
    use crate::sim::Simulator;
    use synod_core::{Effects, Node, Recovered};

    fn ballot(round: u64, node: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(node),
        }
    }

    fn put(v: &str) -> Value {
        Value::Command(std::sync::Arc::new(synod_core::KvCommand {
            client: synod_core::ClientId(1),
            seq: 1,
            op: KvOp::Put {
                key: "k".into(),
                value: v.into(),
            },
        }))
    }

    /// The invariant itself catches a higher ballot proposing another value than
    /// the chosen one (P2b), a second chosen value, and two values in one ballot.
    #[test]
    fn one_value_per_slot_reports_p2b_second_chosen_values_and_split_ballots() {
        let s = Slot(1);
        let mut inv = OneValuePerSlot::new(2);
        inv.record(NodeId(1), s, ballot(1, 1), &put("a")).unwrap();
        inv.record(NodeId(2), s, ballot(1, 1), &put("a")).unwrap();
        let err = inv
            .record(NodeId(2), s, ballot(2, 2), &put("b"))
            .unwrap_err();
        assert!(err.contains("P2b"), "{err}");

        let mut inv = OneValuePerSlot::new(2);
        inv.record(NodeId(1), s, ballot(3, 1), &put("a")).unwrap();
        inv.record(NodeId(2), s, ballot(3, 1), &put("a")).unwrap();
        inv.record(NodeId(2), s, ballot(2, 2), &put("b")).unwrap();
        let err = inv
            .record(NodeId(3), s, ballot(2, 2), &put("b"))
            .unwrap_err();
        assert!(err.contains("two values chosen"), "{err}");

        let mut inv = OneValuePerSlot::new(2);
        inv.record(NodeId(1), s, ballot(1, 1), &put("a")).unwrap();
        let err = inv
            .record(NodeId(3), s, ballot(1, 1), &put("c"))
            .unwrap_err();
        assert!(err.contains("another value"), "{err}");
    }

    /// An acceptance a crash took back (it was never durable) does not count.
    #[test]
    fn one_value_per_slot_withdraws_acceptances_lost_in_a_crash() {
        let mut inv = OneValuePerSlot::new(2);
        let s = Slot(1);
        inv.record(NodeId(1), s, ballot(1, 1), &put("a")).unwrap();
        inv.record(NodeId(2), s, ballot(1, 1), &put("a")).unwrap();
        // n1 restarts with nothing durable: its acceptance is withdrawn …
        inv.on_crash(NodeId(1));
        let members = [NodeId(1), NodeId(2), NodeId(3)];
        let mut fresh = Paxos::build(NodeId(1), &members, 0);
        fresh.on_start(Time::ZERO, Recovered::default(), &mut Effects::new());
        inv.after_step(Time::ZERO, NodeId(1), &fresh).unwrap();
        // … so a quorum for another value in a higher ballot is no conflict.
        inv.record(NodeId(1), s, ballot(2, 3), &put("b")).unwrap();
        inv.record(NodeId(3), s, ballot(2, 3), &put("b")).unwrap();
        assert_eq!(inv.chosen[&s], (ballot(2, 3), put("b")));
    }

    /// Multi-Paxos with snapshots every 16 slots (keeping 4) and a small window, so
    /// that catch-up, snapshot transfer and batching run under the nemesis.
    struct TightPaxos;

    impl SimProtocol for TightPaxos {
        type Node = MultiPaxosNode;
        type Session = ();
        const RECOVERY: Duration = Paxos::RECOVERY;
        fn build(id: NodeId, members: &[NodeId], seed: u64) -> MultiPaxosNode {
            let mut cfg = synod_paxos::MultiPaxosConfig::lan(id, members.iter().copied(), seed);
            cfg.snapshot_threshold = 16;
            cfg.snapshot_trailing = 4;
            cfg.accept_inflight_max = 2;
            cfg.accept_batch_max = 4;
            cfg.catchup_batch_max = 8;
            MultiPaxosNode::new(cfg)
        }
        fn request(op: KvOp) -> Request {
            Paxos::request(op)
        }
        fn result(response: &Response) -> KvResult {
            Paxos::result(response)
        }
        fn invariants(members: &[NodeId]) -> Vec<Box<dyn Invariant<MultiPaxosNode>>> {
            Paxos::invariants(members)
        }
    }

    #[test]
    fn snapshots_and_small_windows_stay_safe_linearizable_and_live_under_faults() {
        for seed in 0..24 {
            let mut cfg = SimConfig::standard(seed, FaultSpec::all(), 600);
            cfg.nodes = 3 + 2 * (seed as usize % 2);
            cfg.workload.clients = 8;
            let mut outcome = Simulator::<TightPaxos>::new(cfg).run();
            check_linearizability(&mut outcome, Duration::from_secs(20));
            assert!(
                outcome.violation.is_none(),
                "seed {seed}: {:?}",
                outcome.violation
            );
        }
    }

    /// Message economy of a leader change: one phase 1 (a prepare and a promise per
    /// peer, 4 messages) makes a leader for every slot; with nothing to re-propose
    /// there is no no-op round, and the first heartbeats announce it (≤ 8 more with
    /// their answers).
    #[test]
    fn paxos_election_costs_one_phase_1_round() {
        for seed in 0..20 {
            let mut sim = quiet_cluster::<Paxos>(seed, 0, 1);
            step_until(&mut sim, |s| {
                (0..3).any(|i| s.node(i).is_some_and(|n| n.is_leader()))
            });
            let sent = sim.stats().sent;
            assert!(sent <= 12, "seed {seed}: election took {sent} messages");
        }
    }

    /// Message economy of phase 2: 10 commands one after another cost an accept and
    /// its answer per follower each (~40), as in Raft; followers learn the decided
    /// slot from the next accept or heartbeat.
    #[test]
    fn paxos_ten_sequential_commands_cost_about_40_messages() {
        for seed in 0..20 {
            let mut sim = quiet_cluster::<Paxos>(seed, 1, 10);
            sim.run_until(Time::from_secs(1));
            let before = sim.stats().sent;
            step_until(&mut sim, |s| s.client_stats().ok >= 10);
            let sent = sim.stats().sent - before;
            assert!(sent <= 44, "seed {seed}: 10 commands took {sent} messages");
        }
    }
}
