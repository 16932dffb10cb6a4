//! Two-phase commit in the simulator — classic (`twopc`) and with its coordinator
//! replicated by Raft (`twopc-nb`, [`crate::compose`]) — with the KV workload: each KV operation is a
//! one-operation transaction (a `cas` whose expectation fails is refused by its
//! shard), so the single-key histories are checked for linearizability; a
//! transaction aborted by a lock conflict or a timeout took no effect and is
//! retried (`SimProtocol::refused`). Online invariant:
//!
//! * **`atomicity`** (Bernstein et al. §7.2, AC1–AC2): no transaction is committed
//!   at one node and aborted at another, over every outcome any node ever held —
//!   the coordinator's durable commit decisions and every participant's outcomes.

use super::{pick, TUNING_STREAM};
use crate::compose::{nb_topology, NbNode, REPLICAS};
use crate::protocol::{Invariant, SimProtocol};
use std::collections::BTreeMap;
use std::time::Duration;
use synod_core::{KvOp, KvResult, NodeId, Prng, Time};
use synod_raft::RaftConfig;
use synod_twopc::{
    AbortReason, Op, OpResult, Role, Topology, TwoPcConfig, TwoPcNode, Txn, TxnId, TxnOutcome,
};

/// 2PC over KV shards (see the registry for its name): node 1 coordinates, every
/// other node owns one shard.
pub struct TwoPc;

impl SimProtocol for TwoPc {
    type Node = TwoPcNode;

    const MIN_NODES: usize = 2;

    fn build(id: NodeId, members: &[NodeId], _seed: u64) -> TwoPcNode {
        TwoPcNode::new(TwoPcConfig::lan(id, Topology::from_members(members)))
    }

    fn build_varied(id: NodeId, members: &[NodeId], seed: u64) -> TwoPcNode {
        let mut cfg = TwoPcConfig::lan(id, Topology::from_members(members));
        let mut knobs = Prng::new(seed ^ TUNING_STREAM);
        let every = pick(&mut knobs, &[4096, 8, 2]) as u64;
        cfg.coordinator.snapshot_every = every;
        cfg.participant.snapshot_every = every;
        TwoPcNode::new(cfg)
    }

    fn request(op: KvOp) -> Txn {
        txn_of(op)
    }

    fn result(response: &TxnOutcome) -> KvResult {
        result_of(response)
    }

    fn refused(response: &TxnOutcome) -> bool {
        retryable(response)
    }

    fn invariants(_members: &[NodeId]) -> Vec<Box<dyn Invariant<TwoPcNode>>> {
        vec![Box::new(Atomicity::default())]
    }

    fn is_leader(node: &TwoPcNode) -> bool {
        matches!(node.role(), Role::Coordinator(..))
    }
}

/// 2PC with its coordinator's decisions replicated by Raft (see the registry for
/// its name): nodes 1–3 are the coordinator's replicas, every other node owns one
/// shard.
pub struct TwoPcNb;

impl SimProtocol for TwoPcNb {
    type Node = NbNode;

    const MIN_NODES: usize = REPLICAS + 1;

    fn build(id: NodeId, members: &[NodeId], seed: u64) -> NbNode {
        NbNode::new(id, nb_topology(members), seed)
    }

    fn build_varied(id: NodeId, members: &[NodeId], seed: u64) -> NbNode {
        let topology = nb_topology(members);
        let mut twopc = TwoPcConfig::lan(id, topology.clone());
        let mut raft = RaftConfig::lan(id, topology.coordinators.iter().copied(), seed);
        let mut knobs = Prng::new(seed ^ TUNING_STREAM);
        let every = pick(&mut knobs, &[4096, 8, 2]) as u64;
        twopc.participant.snapshot_every = every;
        raft.snapshot_threshold = pick(&mut knobs, &[4096, 16]) as u64;
        raft.snapshot_trailing = pick(&mut knobs, &[256, 2]) as u64;
        raft.batch_entries_max = pick(&mut knobs, &[1, 512]);
        let timeout_ms = pick(&mut knobs, &[150, 400]) as u64;
        raft.election_timeout_min = Duration::from_millis(timeout_ms);
        raft.election_timeout_max = Duration::from_millis(2 * timeout_ms);
        NbNode::with(id, topology, raft, twopc)
    }

    fn request(op: KvOp) -> Txn {
        txn_of(op)
    }

    fn result(response: &TxnOutcome) -> KvResult {
        result_of(response)
    }

    fn refused(response: &TxnOutcome) -> bool {
        retryable(response)
    }

    fn invariants(_members: &[NodeId]) -> Vec<Box<dyn Invariant<NbNode>>> {
        vec![Box::new(Atomicity::default())]
    }

    fn is_leader(node: &NbNode) -> bool {
        node.raft().is_some_and(|r| r.is_leader())
    }
}

/// A KV operation as a one-operation transaction.
fn txn_of(op: KvOp) -> Txn {
    let op = match op {
        KvOp::Get { key } => Op::Read { key },
        KvOp::Put { key, value } => Op::Write { key, value },
        KvOp::Append { key, value } => Op::Append { key, value },
        KvOp::Cas { key, expected, new } => Op::Cas { key, expected, new },
        KvOp::Delete { key } => Op::Delete { key },
    };
    Txn { ops: vec![op] }
}

fn result_of(response: &TxnOutcome) -> KvResult {
    match response {
        TxnOutcome::Committed(results) => match results.first() {
            Some(OpResult::Value(v)) => KvResult::Value(v.clone()),
            _ => KvResult::Written,
        },
        // Only a `cas` is refused by the application here (`refused` covers the
        // other aborts); its current value is not reported.
        TxnOutcome::Aborted(_) => KvResult::CasMismatch { current: None },
    }
}

/// Aborted by a lock conflict or a timeout: nothing happened, try again.
fn retryable(response: &TxnOutcome) -> bool {
    matches!(
        response,
        TxnOutcome::Aborted(AbortReason::Conflict | AbortReason::Timeout)
    )
}

/// A 2PC member whose outcome records the atomicity check reads.
pub trait KnownOutcomes {
    /// The outcomes it holds, commit = `true`.
    fn known_outcomes(&self) -> Vec<(TxnId, bool)>;
}

impl KnownOutcomes for TwoPcNode {
    fn known_outcomes(&self) -> Vec<(TxnId, bool)> {
        TwoPcNode::known_outcomes(self)
    }
}

impl KnownOutcomes for NbNode {
    fn known_outcomes(&self) -> Vec<(TxnId, bool)> {
        NbNode::known_outcomes(self)
    }
}

/// No transaction both committed and aborted anywhere.
#[derive(Debug, Default)]
pub struct Atomicity {
    outcomes: BTreeMap<TxnId, (bool, NodeId)>,
}

impl<N: KnownOutcomes> Invariant<N> for Atomicity {
    fn name(&self) -> &'static str {
        "atomicity"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, node: &N) -> Result<(), String> {
        for (txn, commit) in node.known_outcomes() {
            let (first, by) = *self.outcomes.entry(txn).or_insert((commit, id));
            if first != commit {
                return Err(format!(
                    "{txn} is {} at {by} and {} at {id}",
                    verdict(first),
                    verdict(commit)
                ));
            }
        }
        Ok(())
    }
}

fn verdict(commit: bool) -> &'static str {
    match commit {
        true => "committed",
        false => "aborted",
    }
}
