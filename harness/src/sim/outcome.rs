//! What a run produced: its counters, its violations, its outcome.

use crate::history::HistoryEvent;
use crate::workload::ClientStats;
use synod_core::Time;

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A protocol invariant (named) was broken.
    Invariant(&'static str),
    /// The cluster did not serve every client after the heal.
    Liveness,
    /// The run hit the event cap (a livelock or an unbounded loop).
    EventLimit,
    /// A node panicked (a protocol `assert!`).
    Panic,
    /// A node stopped itself on state it cannot trust (`Node::halted`).
    Halted,
    /// The history is not linearizable.
    Linearizability,
    /// A transaction history is not serializable (list-append, [`crate::txn`]).
    Serializability,
    /// A committed answer broke the workload's own invariant (the bank's total,
    /// [`Ops::check`](crate::workload::Ops::check)).
    Workload,
}

/// A failed check, with when it was detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What failed.
    pub kind: ViolationKind,
    /// Virtual time of detection.
    pub at: Time,
    /// Explanation.
    pub message: String,
}

/// Counters over one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events processed.
    pub events: u64,
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered to a running node.
    pub delivered: u64,
    /// Client requests delivered to a running node and replies delivered to clients.
    pub client_delivered: u64,
    /// Inputs that handed a node two or more client requests together (those that
    /// queued up while it was paused).
    pub client_batches: u64,
    /// Dropped by a partition.
    pub dropped_partition: u64,
    /// Dropped by loss.
    pub dropped_loss: u64,
    /// Arrived at a crashed node.
    pub dropped_down: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Peer messages and client replies held back by a "delay" fault.
    pub delayed: u64,
    /// Timer firings delivered.
    pub timers_fired: u64,
    /// Batches written (one per input that persisted something: the durable writes).
    pub persists: u64,
    /// Disk writes (each one sync covering every batch staged since the last).
    pub syncs: u64,
    /// Encoded size of the peer messages handed to the network (postcard, the
    /// runtime's wire encoding without its frame header), when
    /// [`SimConfig::measure_bytes`](super::config::SimConfig::measure_bytes) is on.
    pub bytes_sent: u64,
    /// Per loss of a leader (a crash of a node that believed it led, or the scripted
    /// split cutting it off): nanoseconds until an operation asked after the loss
    /// completed `ok`.
    pub recoveries_ns: Vec<u64>,
    /// The scripted split (`--faults split`), if it happened.
    pub split: Option<SplitRecord>,
    /// Node crashes.
    pub crashes: u64,
    /// Crashes that tore a write: a prefix of its batches durable, the rest lost.
    pub torn_writes: u64,
    /// Nodes stopped by a failed append or sync.
    pub disk_failures: u64,
    /// From the heal until every client completed its liveness operations.
    pub heal_to_live_ns: u64,
    /// The run's liveness bound ([`liveness_bound`](crate::sim::liveness_bound)).
    pub liveness_bound_ns: u64,
    /// Faults injected, as `time: description`.
    pub faults: Vec<String>,
}

/// When the scripted split (`--faults split`) cut the cluster, and where.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitRecord {
    /// Virtual time the split began, in nanoseconds.
    pub start_ns: u64,
    /// Virtual time it healed.
    pub end_ns: u64,
    /// `minority[i]`: node `i` was on the minority side. Client `c`'s side is the
    /// side of its home node, `c % nodes`.
    pub minority: Vec<bool>,
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// Master seed.
    pub seed: u64,
    /// Trace digest (16 hex digits).
    pub digest: String,
    /// Virtual time at the end.
    pub end: Time,
    /// Virtual time when the main phase ended (the heal began).
    pub main_end: Time,
    /// Simulator counters.
    pub stats: SimStats,
    /// Client-side measurements.
    pub clients: ClientStats,
    /// The recorded history (empty if recording was off).
    pub history: Vec<HistoryEvent>,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// What the invariants measured ([`Invariant::metrics`](crate::protocol::Invariant::metrics)).
    pub metrics: Vec<(&'static str, u64)>,
    /// The space-time diagram, if `SimConfig::trace_until` asked for one.
    pub space_time: Option<super::spacetime::SpaceTime>,
}

/// Adds `more` into `into` by name: maxima (`_max`) by maximum, the rest by sum.
pub fn add_metrics(into: &mut Vec<(&'static str, u64)>, more: &[(&'static str, u64)]) {
    for &(name, value) in more {
        match into.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) if name.ends_with("_max") => *v = (*v).max(value),
            Some((_, v)) => *v += value,
            None => into.push((name, value)),
        }
    }
}
