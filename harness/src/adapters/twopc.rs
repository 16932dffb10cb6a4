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
    AbortReason, Op, OpResult, Participant, Role, Topology, TwoPcConfig, TwoPcNode, Txn, TxnId,
    TxnOutcome,
};

/// 2PC over KV shards (see the registry for its name): node 1 coordinates, every
/// other node owns one shard.
pub struct TwoPc;

impl SimProtocol for TwoPc {
    type Node = TwoPcNode;
    type Session = ();

    /// The coordinator is back at the heal; then an inquiry (asked after 150 ms,
    /// checked every 75 ms) settles every transaction in doubt, a vote timeout
    /// (200 ms) aborts those still collecting votes, and their locks go: 1 s with
    /// margin for the lock waits (100 ms) of transactions queued behind them.
    const RECOVERY: Duration = Duration::from_secs(1);

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

    fn invariants(members: &[NodeId]) -> Vec<Box<dyn Invariant<TwoPcNode>>> {
        let coordinators = Topology::from_members(members).coordinators;
        vec![
            Box::new(Atomicity::default()),
            Box::new(Doubt::new(coordinators)),
        ]
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
    type Session = ();

    /// The coordinator's Raft group elects a leader — four rounds of at most the
    /// largest election timeout drawn (2 × 400 ms) — then an inquiry (at most
    /// 225 ms) settles what was in doubt and a vote timeout (200 ms) aborts what was
    /// still collecting votes.
    const RECOVERY: Duration = Duration::from_millis(4 * 800 + 225 + 200);

    const MIN_NODES: usize = REPLICAS + 1;

    /// One of the coordinator's Raft replicas (a majority of them keeps every
    /// decision); a shard is one node, whose data goes with its disk.
    fn disk_losses(_n: usize) -> crate::sim::config::DiskLosses {
        crate::sim::config::DiskLosses {
            max: (REPLICAS - 1) / 2,
            among: REPLICAS,
        }
    }

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

    fn invariants(members: &[NodeId]) -> Vec<Box<dyn Invariant<NbNode>>> {
        let coordinators = nb_topology(members).coordinators;
        vec![
            Box::new(Atomicity::default()),
            Box::new(Doubt::new(coordinators)),
        ]
    }

    fn is_leader(node: &NbNode) -> bool {
        node.raft().is_some_and(|r| r.is_leader())
    }
}

/// A KV operation as a one-operation transaction.
/// A KV operation as a transaction: a multi-key `txn` runs each of its operations
/// at the shard owning its key; any other operation is a transaction of one.
fn txn_of(op: KvOp) -> Txn {
    let mut ops = Vec::new();
    push_ops(op, &mut ops);
    Txn { ops }
}

/// Appends `op`'s operations to `ops` (a nested `txn`, which no workload makes, is
/// flattened).
fn push_ops(op: KvOp, ops: &mut Vec<Op>) {
    ops.push(match op {
        KvOp::Get { key } => Op::Read { key },
        KvOp::Put { key, value } => Op::Write { key, value },
        KvOp::Append { key, value } => Op::Append { key, value },
        KvOp::Cas { key, expected, new } => Op::Cas { key, expected, new },
        KvOp::Delete { key } => Op::Delete { key },
        KvOp::Add { key, delta } => Op::Add { key, delta },
        KvOp::Txn { ops: inner } => {
            for op in inner {
                push_ops(op, ops);
            }
            return;
        }
    });
}

/// A committed transaction of one operation reads as that operation's result, of
/// several as a `txn`'s (the workload takes either for a one-operation `txn`).
fn result_of(response: &TxnOutcome) -> KvResult {
    let one = |r: &OpResult| match r {
        OpResult::Value(v) => KvResult::Value(v.clone()),
        OpResult::Done => KvResult::Written,
    };
    match response {
        TxnOutcome::Committed(results) if results.len() == 1 => one(&results[0]),
        TxnOutcome::Committed(results) => KvResult::Txn(results.iter().map(one).collect()),
        // Refused by the application — a `cas` found another value, an `add` would
        // overdraw (`refused` covers the other aborts); the current value is not
        // reported.
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

/// A 2PC member as the checks see it.
pub trait KnownOutcomes {
    /// The outcomes it holds, commit = `true`.
    fn known_outcomes(&self) -> Vec<(TxnId, bool)>;
    /// Its participant, if it owns a shard.
    fn participant(&self) -> Option<&Participant>;
}

impl KnownOutcomes for TwoPcNode {
    fn known_outcomes(&self) -> Vec<(TxnId, bool)> {
        TwoPcNode::known_outcomes(self)
    }
    fn participant(&self) -> Option<&Participant> {
        match self.role() {
            Role::Participant(p) => Some(p),
            Role::Coordinator(..) => None,
        }
    }
}

impl KnownOutcomes for NbNode {
    fn known_outcomes(&self) -> Vec<(TxnId, bool)> {
        NbNode::known_outcomes(self)
    }
    fn participant(&self) -> Option<&Participant> {
        NbNode::participant(self).and_then(KnownOutcomes::participant)
    }
}

/// In doubt this long, a transaction counts as **blocked**: longer than any
/// termination that works takes — an inquiry (every 75–150 ms), a Raft election
/// and a round trip.
pub const BLOCKED_AFTER: Duration = Duration::from_secs(1);

/// Once a majority of the coordinator's nodes is up (and none crashes), an in-doubt
/// transaction must be settled within this: a restarted replica's election timeout
/// (at most 800 ms, the largest of `build_varied`'s), its pre-vote and vote rounds
/// and the no-op's commit (round trips of about a millisecond), then the next
/// inquiry (at most 225 ms: asked every 150 ms, checked every 75 ms) — 1.03 s, with
/// margin. A transaction in doubt through a longer stretch of quorum is blocked
/// with no excuse; `twopc-nb` must have none under crashes.
pub const QUORUM_BOUND: Duration = Duration::from_millis(1500);

/// 2PC's blocking, measured from outside (never a violation): how long prepared
/// transactions stay in doubt at their participants — voted YES, holding their
/// locks, not knowing the outcome. Time a participant spends crashed is not
/// counted (its in-doubt periods restart when it does). Each period is also
/// measured by its longest stretch during which a majority of the coordinator's
/// nodes was up (its one node, for classic 2PC) and none of them crashed — time
/// the protocol had no excuse to block for, crashes-wise (partitions and pauses
/// are not seen here).
#[derive(Debug)]
pub struct Doubt {
    coordinators: Vec<NodeId>,
    down: std::collections::BTreeSet<NodeId>,
    /// Since when a majority of the coordinator's nodes is up, if it is.
    quorum_since: Option<Time>,
    /// Per (participant, transaction): since when, and its longest stretch of
    /// quorum that ended.
    held: BTreeMap<(NodeId, TxnId), (Time, Duration)>,
    last: Time,
    settled: u64,
    total_us: u64,
    max_us: u64,
    blocked: u64,
    quorum_max_us: u64,
    blocked_quorum_up: u64,
    locks_max: u64,
    at_end: u64,
}

impl Doubt {
    /// Measures a cluster whose coordinator runs on `coordinators`.
    pub fn new(coordinators: Vec<NodeId>) -> Doubt {
        Doubt {
            coordinators,
            down: Default::default(),
            quorum_since: Some(Time::ZERO),
            held: BTreeMap::new(),
            last: Time::ZERO,
            settled: 0,
            total_us: 0,
            max_us: 0,
            blocked: 0,
            quorum_max_us: 0,
            blocked_quorum_up: 0,
            locks_max: 0,
            at_end: 0,
        }
    }

    fn quorum_up(&self) -> bool {
        let up = (self.coordinators.iter())
            .filter(|c| !self.down.contains(c))
            .count();
        2 * up > self.coordinators.len()
    }

    /// The stretch of quorum, up to `now`, of a period in doubt since `since`.
    fn stretch(&self, since: Time, now: Time) -> Duration {
        self.quorum_since
            .map_or(Duration::ZERO, |q| now.saturating_since(q.max(since)))
    }

    /// Node `id` is up (`true`) or crashed, at `now`.
    fn mark(&mut self, id: NodeId, up: bool, now: Time) {
        let changed = match up {
            true => self.down.remove(&id),
            false => self.down.insert(id),
        };
        if !changed || !self.coordinators.contains(&id) {
            return;
        }
        // A stretch starts when a quorum forms and ends at any replica's crash (a
        // crashed leader costs an election even if a quorum stays up).
        if !up && self.quorum_since.is_some() {
            let ended: Vec<_> = (self.held.iter())
                .map(|(&k, &(since, _))| (k, self.stretch(since, now)))
                .collect();
            for (k, stretch) in ended {
                let longest = &mut self.held.get_mut(&k).expect("held").1;
                *longest = (*longest).max(stretch);
            }
            self.quorum_since = None;
        }
        if self.quorum_since.is_none() && self.quorum_up() {
            self.quorum_since = Some(now);
        }
    }

    fn settle(&mut self, held: Duration, with_quorum: Duration) {
        let us = held.as_micros() as u64;
        self.settled += 1;
        self.total_us += us;
        self.max_us = self.max_us.max(us);
        self.blocked += u64::from(held > BLOCKED_AFTER);
        let quorum_us = with_quorum.as_micros() as u64;
        self.quorum_max_us = self.quorum_max_us.max(quorum_us);
        self.blocked_quorum_up += u64::from(with_quorum > QUORUM_BOUND);
    }
}

impl<N: KnownOutcomes> Invariant<N> for Doubt {
    fn name(&self) -> &'static str {
        "in-doubt (measured)"
    }

    fn after_step(&mut self, now: Time, id: NodeId, node: &N) -> Result<(), String> {
        self.last = self.last.max(now);
        self.mark(id, true, now);
        let Some(p) = node.participant() else {
            return Ok(());
        };
        let mut gone = Vec::new();
        let mine = (id, TxnId(0))..=(id, TxnId(u64::MAX));
        for (&(_, txn), &(since, longest)) in self.held.range(mine) {
            if !p.is_in_doubt(txn) {
                let with_quorum = longest.max(self.stretch(since, now));
                gone.push((txn, now.saturating_since(since), with_quorum));
            }
        }
        for (txn, held, with_quorum) in gone {
            self.held.remove(&(id, txn));
            self.settle(held, with_quorum);
        }
        for txn in p.in_doubt() {
            self.held.entry((id, txn)).or_insert((now, Duration::ZERO));
        }
        self.locks_max = self.locks_max.max(p.locked_keys() as u64);
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        // The crash happens after the last step seen.
        self.mark(id, false, self.last);
        self.held.retain(|&(n, _), _| n != id);
    }

    fn at_end(&mut self, _nodes: &[(NodeId, &N)]) -> Result<(), String> {
        self.at_end = self.held.len() as u64;
        Ok(())
    }

    fn metrics(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("in_doubt_settled", self.settled),
            ("in_doubt_total_us", self.total_us),
            ("in_doubt_us_max", self.max_us),
            ("blocked_over_1s", self.blocked),
            ("in_doubt_with_quorum_us_max", self.quorum_max_us),
            ("blocked_with_quorum_over_1500ms", self.blocked_quorum_up),
            ("in_doubt_at_end", self.at_end),
            ("locked_keys_max", self.locks_max),
        ]
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
