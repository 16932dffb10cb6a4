//! How a protocol plugs into the harness: an adapter from the shared workload to the
//! protocol's node type, and the online invariants it registers.

use crate::workload::Answer;
use crate::workload::WorkloadConfig;
use std::fmt::Debug;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult, Node, NodeId, Outcome, Time};

/// An invariant the simulator checks online, while the run proceeds.
///
/// Invariants observe nodes after every input they process; they may keep their own
/// state across steps (e.g. "every entry ever committed") to check properties over
/// time and across crashes.
pub trait Invariant<N>: Debug {
    /// A short name, e.g. `election-safety`.
    fn name(&self) -> &'static str;

    /// Called after node `id` processed one input at virtual time `now`.
    fn after_step(&mut self, now: Time, id: NodeId, node: &N) -> Result<(), String>;

    /// Called when node `id` crashed (its volatile state is gone).
    fn on_crash(&mut self, id: NodeId) {
        let _ = id;
    }

    /// Called once at the end of the run with every live node.
    fn at_end(&mut self, nodes: &[(NodeId, &N)]) -> Result<(), String> {
        let _ = nodes;
        Ok(())
    }

    /// What it measured over the run, reported beside the verdict (2PC's time in
    /// doubt): `(name, value)`; a name ending in `_max` is a maximum, any other a
    /// count or total (how `synod check` adds seeds up).
    fn metrics(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// What [`SimProtocol::judge`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The promise broken (a short name, e.g. `no-lost-updates`) and how.
    pub broken: Option<(&'static str, String)>,
    /// `(name, value)`, added up over seeds like [`Invariant::metrics`].
    pub metrics: Vec<(&'static str, u64)>,
}

/// A protocol the simulator can run with the shared KV workload.
pub trait SimProtocol: 'static {
    /// The node type.
    type Node: Node;

    /// The smallest cluster it runs in (`--nodes` below it is an error).
    const MIN_NODES: usize = 1;

    /// Builds node `id` of a cluster whose members are `members`, with its own seed
    /// for protocol randomness.
    fn build(id: NodeId, members: &[NodeId], seed: u64) -> Self::Node;

    /// Like [`build`](Self::build), with the protocol's performance knobs (batch
    /// sizes, windows, snapshot thresholds) drawn from `seed`. Every value drawn is
    /// one the protocol must be correct under, and small ones reach states the
    /// defaults almost never do — an AppendEntries carrying only part of an older
    /// term's tail, a snapshot in the middle of a catch-up. Sweeps under faults use
    /// it (`SimConfig::vary_tuning`); knobs are leader-local, so each node and each
    /// incarnation may draw its own.
    fn build_varied(id: NodeId, members: &[NodeId], seed: u64) -> Self::Node {
        Self::build(id, members, seed)
    }

    /// Translates a workload operation into the node's request type.
    fn request(op: KvOp) -> <Self::Node as Node>::Request;

    /// Translates the node's response into a KV result for the history.
    fn result(response: &<Self::Node as Node>::Response) -> KvResult;

    /// What a client remembers between its requests — `()` for most protocols;
    /// Zab's highest zxid seen (ZooKeeper's `lastZxid`); vvsync's context per key.
    /// The simulator and the real KV client keep one per client.
    type Session: Default + Debug + Send + 'static;

    /// Like [`request`](Self::request), for a client whose memory is `session`; it
    /// may note what it sends (vvsync's audit of its writes).
    fn request_in(session: &mut Self::Session, op: KvOp) -> <Self::Node as Node>::Request {
        let _ = session;
        Self::request(op)
    }

    /// Like [`request_in`](Self::request_in), knowing who asks and which operation
    /// of theirs it is (`seq`: a retry sends the same one again) — what vvsync's
    /// per-key bank needs to count each transfer once, in its client's own entry.
    fn request_as(
        session: &mut Self::Session,
        client: ClientId,
        seq: u64,
        op: KvOp,
    ) -> <Self::Node as Node>::Request {
        let _ = (client, seq);
        Self::request_in(session, op)
    }

    /// What an answer teaches its client (any answer that arrives, late ones too).
    fn observe(session: &mut Self::Session, response: &<Self::Node as Node>::Response) {
        let _ = (session, response);
    }

    /// The nodes of an `n`-node cluster whose disk may be lost for good (the
    /// `corrupt` fault) while the protocol keeps its promise and stays live: none by
    /// default — acknowledged data on one node only is lost with its disk.
    fn disk_losses(n: usize) -> crate::sim::config::DiskLosses {
        let _ = n;
        crate::sim::config::DiskLosses::default()
    }

    /// How long the cluster runs on after the heal phase, faults over and clients
    /// idle, before the end-of-run checks: the bound within which it must converge
    /// (vvsync's anti-entropy). Protocols that converge by answering keep zero.
    const SETTLE: Duration = Duration::ZERO;

    /// The longest the cluster may take, once every fault is healed, to serve
    /// clients again: elect a leader (split votes included), bring back what crashed,
    /// settle what was in doubt. With the clients' own timing it makes each run's
    /// liveness bound ([`liveness_bound`](crate::sim::liveness_bound)): a seed whose
    /// clients are not all served within it fails with its replay command. Each
    /// adapter derives its figure from the protocol's timers, and
    /// docs/reliability.md lists them beside the heal-to-live times measured.
    const RECOVERY: Duration;

    /// The protocol's own end-of-run judgement, from what its clients remember and the
    /// live nodes: a broken promise, and what it measured.
    fn judge(sessions: &[Self::Session], nodes: &[(NodeId, &Self::Node)]) -> Verdict {
        let _ = (sessions, nodes);
        Verdict::default()
    }

    /// Fits `workload` to the operations the protocol serves (vvsync: no `append`,
    /// no `cas`), or says why it cannot serve it.
    fn fit_workload(workload: &mut WorkloadConfig) -> Result<(), String> {
        let _ = workload;
        Ok(())
    }

    /// `true` if `response` says the request did not take effect and may be tried
    /// again (a 2PC transaction aborted by a lock conflict or a timeout): the client
    /// treats it as "unavailable" — a retry, or a definite `fail` in the history.
    fn refused(response: &<Self::Node as Node>::Response) -> bool {
        let _ = response;
        false
    }

    /// The online invariants for a cluster of `members`.
    fn invariants(members: &[NodeId]) -> Vec<Box<dyn Invariant<Self::Node>>>;

    /// `true` if `node` currently believes it leads. The nemesis aims some faults at
    /// the leader (crashes, pauses, partitions, crash storms), where most protocol
    /// bugs hide; protocols without a leader keep the default.
    fn is_leader(node: &Self::Node) -> bool {
        let _ = node;
        false
    }
}

/// A client's view of a node's `outcome` under protocol `P` — its result, a redirect
/// (`leader`: the node index of the hint), or a refusal (`SimProtocol::refused`).
/// The simulator's clients and the real load generator both read answers here.
pub fn answer_of<P: SimProtocol>(
    outcome: &Outcome<<P::Node as Node>::Response>,
    leader: impl FnOnce() -> Option<usize>,
) -> Answer {
    match outcome {
        Outcome::Done(response) if P::refused(response) => Answer::Unavailable,
        outcome => Answer::from_outcome(outcome, P::result, leader),
    }
}
