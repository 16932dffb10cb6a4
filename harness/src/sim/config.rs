//! Simulation configuration: network, disk, faults, phases.
//!
//! Every field is explicit; [`SimConfig::standard`] gives the values the CLI uses,
//! chosen to look like a LAN cluster (sub-millisecond links, ~0.5 ms fsync).

use crate::workload::WorkloadConfig;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Network model. Latency is `latency_min` plus an exponential tail with mean
/// `latency_tail_mean` (capped at `latency_tail_max`). Peer links are FIFO unless
/// `fifo_links` is off; `reorder` picks messages that may overtake others.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Smallest one-way delay.
    pub latency_min: Duration,
    /// Mean of the exponential part of the delay.
    pub latency_tail_mean: Duration,
    /// Cap on the exponential part.
    pub latency_tail_max: Duration,
    /// Probability that a message is lost (outside of fault windows).
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back by an extra delay (reordering).
    pub reorder: f64,
    /// Extra delay of a reordered message, drawn uniformly up to this.
    pub reorder_delay_max: Duration,
    /// Loss probability during a "lossy network" fault.
    pub fault_loss: f64,
    /// During a "delay" fault, the probability that a peer message or a client reply
    /// is held back for a long time (a retransmission after a lost segment, a
    /// reconnect, a sender paused mid-write) and delivered late, out of order.
    pub fault_delay: f64,
    /// Shortest hold of a delayed message.
    pub fault_delay_min: Duration,
    /// Longest hold of a delayed message: several election timeouts, so a message of
    /// an earlier term or ballot arrives after the next leadership is established.
    pub fault_delay_max: Duration,
    /// Peer links deliver in order, like TCP connections (a message picked for
    /// `reorder` and a duplicate copy are the exceptions).
    pub fifo_links: bool,
}

/// Disk model: each batch takes a uniform time in `[write_min, write_max]`; a node's
/// batches complete one after another, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskConfig {
    /// Fastest write.
    pub write_min: Duration,
    /// Slowest write.
    pub write_max: Duration,
}

/// Which fault kinds the nemesis may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FaultSpec {
    /// Symmetric partitions (halves, an isolated node, a bridge).
    pub partition: bool,
    /// One-way partitions.
    pub asymmetric: bool,
    /// Bursts of message loss.
    pub loss: bool,
    /// Links that hold messages and release them later.
    pub clog: bool,
    /// A fraction of peer messages and client replies held for up to several
    /// election timeouts, then delivered (overtaking, or overtaken by, newer ones).
    pub delay: bool,
    /// Crash and restart from storage.
    pub crash: bool,
    /// Crash right after sending ahead of a write that is not durable yet, before
    /// the write lands (the window between a persist and the sends of its input).
    pub crash_in_write: bool,
    /// Crash storms: the leader crashes again and again, each back after a short
    /// downtime (Figure 8 style).
    pub storm: bool,
    /// Raft's Figure 8 as a schedule of three short leaderships (`figure8.rs`).
    pub figure8: bool,
    /// A leader that wins again while its earlier leadership's sends still
    /// arrive, and is then deposed (`comeback.rs`).
    pub comeback: bool,
    /// The leader cut off from its peers with its clock at a tenth of real time: a deposed
    /// leader that goes on believing it leads; half the time one other node is
    /// armed to crash in its next early-sent write (its part in the takeover).
    pub depose: bool,
    /// Pause and resume (a stopped process, a long GC).
    pub pause: bool,
    /// Clock drift.
    pub clock: bool,
    /// Every node crashes at once and each restarts from storage after its own
    /// delay (a power loss; Jepsen's "kill all"), so members come back one by one.
    /// Not part of `all`, which keeps the schedules `all` has always drawn.
    pub restart_all: bool,
    /// One scripted majority/minority split for availability charts: from
    /// [`SPLIT_AT`] for [`SPLIT_FOR`] the leader (node 1 if none leads) and the
    /// clients homed on it are cut off from the other nodes and their clients.
    /// Not part of `all`; pair it with `--duration` so the main phase lasts past it.
    pub split: bool,
    /// Torn writes: a crash while a write is in flight keeps a random prefix of the
    /// batches it covers (the WAL's torn tail, cut at a record boundary) instead of
    /// none. Not part of `all`; `storage` turns on this and the two below.
    pub torn: bool,
    /// A node's disk fails: its next append gets ENOSPC or its next sync EIO. The
    /// batch is lost, never acknowledged, and the node stops — it does not retry the
    /// sync ("fsyncgate") — and stays down until the fault ends (an operator fixing
    /// the disk restarts it from what was durable).
    pub disk: bool,
    /// A node's disk fails its checksums when it restarts: it refuses to start and
    /// stays down for good, the heal included — only on nodes whose loss the protocol
    /// tolerates ([`DiskLosses`]).
    pub corrupt: bool,
}

/// When the scripted split (`FaultSpec::split`) begins, in virtual time.
pub const SPLIT_AT: Duration = Duration::from_millis(1000);
/// How long the scripted split lasts.
pub const SPLIT_FOR: Duration = Duration::from_millis(1000);

impl FaultSpec {
    /// The names accepted in a fault spec, for error messages.
    pub const NAMES: &'static str =
        "none, all, net, crash, or a comma list of partition, asymmetric, loss, clog, delay, crash, crash-in-write, storm, figure-8, comeback, depose, pause, clock, restart-all, split, torn, disk, corrupt (not part of all; storage = the last three)";

    /// `true` if no fault is enabled.
    pub fn is_none(&self) -> bool {
        *self == FaultSpec::default()
    }

    /// Every fault kind.
    pub fn all() -> FaultSpec {
        FaultSpec {
            partition: true,
            asymmetric: true,
            loss: true,
            clog: true,
            delay: true,
            crash: true,
            crash_in_write: true,
            storm: true,
            figure8: true,
            comeback: true,
            depose: true,
            pause: true,
            clock: true,
            restart_all: false,
            split: false,
            torn: false,
            disk: false,
            corrupt: false,
        }
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultSpec, String> {
        let mut spec = FaultSpec::default();
        if s.trim().is_empty() {
            return Err(format!("empty fault spec; expected {}", FaultSpec::NAMES));
        }
        for part in s.split(',').map(str::trim) {
            match part {
                "none" => {}
                "all" => spec = FaultSpec::all(),
                "net" => {
                    spec.partition = true;
                    spec.asymmetric = true;
                    spec.loss = true;
                    spec.clog = true;
                    spec.delay = true;
                }
                "partition" => spec.partition = true,
                "asymmetric" => spec.asymmetric = true,
                "loss" => spec.loss = true,
                "clog" => spec.clog = true,
                "delay" => spec.delay = true,
                "crash" => spec.crash = true,
                "crash-in-write" => spec.crash_in_write = true,
                "storm" => spec.storm = true,
                "figure-8" => spec.figure8 = true,
                "comeback" => spec.comeback = true,
                "depose" => spec.depose = true,
                "pause" => spec.pause = true,
                "clock" => spec.clock = true,
                "restart-all" => spec.restart_all = true,
                "split" => spec.split = true,
                "storage" => {
                    spec.torn = true;
                    spec.disk = true;
                    spec.corrupt = true;
                }
                "torn" => spec.torn = true,
                "disk" => spec.disk = true,
                "corrupt" => spec.corrupt = true,
                other => {
                    return Err(format!(
                        "unknown fault kind `{other}`; expected {}",
                        FaultSpec::NAMES
                    ))
                }
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        if *self == FaultSpec::all() {
            return f.write_str("all");
        }
        let names = [
            (self.partition, "partition"),
            (self.asymmetric, "asymmetric"),
            (self.loss, "loss"),
            (self.clog, "clog"),
            (self.delay, "delay"),
            (self.crash, "crash"),
            (self.crash_in_write, "crash-in-write"),
            (self.storm, "storm"),
            (self.figure8, "figure-8"),
            (self.comeback, "comeback"),
            (self.depose, "depose"),
            (self.pause, "pause"),
            (self.clock, "clock"),
            (self.restart_all, "restart-all"),
            (self.split, "split"),
            (self.torn, "torn"),
            (self.disk, "disk"),
            (self.corrupt, "corrupt"),
        ];
        let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        f.write_str(&on.join(","))
    }
}

/// Nemesis timing.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisConfig {
    /// Which faults.
    pub faults: FaultSpec,
    /// Gap between fault starts, drawn uniformly in this range.
    pub gap_min: Duration,
    /// See `gap_min`.
    pub gap_max: Duration,
    /// Fault duration, drawn uniformly in this range.
    pub duration_min: Duration,
    /// See `duration_min`.
    pub duration_max: Duration,
    /// Largest clock drift the nemesis sets, in ppm.
    pub drift_ppm_max: i64,
    /// Probability that a crash, pause, clock or partition fault is aimed at the
    /// current leader rather than at a random node.
    pub leader_bias: f64,
    /// Gap between leader crashes during a crash storm, drawn uniformly.
    pub storm_gap_min: Duration,
    /// See `storm_gap_min`.
    pub storm_gap_max: Duration,
    /// Downtime of each crash of a storm, drawn uniformly.
    pub storm_down_min: Duration,
    /// See `storm_down_min`.
    pub storm_down_max: Duration,
    /// Which nodes the `corrupt` fault may take for good, and how many.
    pub disk_losses: DiskLosses,
}

/// The nodes whose disk a protocol can lose for good without breaking its promise:
/// at most `max` of the nodes with index below `among` (Raft, Paxos, Zab: a minority
/// of all; 2PC over Raft: one of its coordinator's replicas; a protocol that keeps
/// acknowledged data on one node: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DiskLosses {
    /// At most this many nodes.
    pub max: usize,
    /// Of the nodes with index `0..among`.
    pub among: usize,
}

impl DiskLosses {
    /// A minority of `n` nodes (consensus: a majority must survive).
    pub fn minority(n: usize) -> DiskLosses {
        DiskLosses {
            max: n.saturating_sub(1) / 2,
            among: n,
        }
    }
}

/// One simulation run's configuration. Together with the seed it decides the run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Master seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Links between nodes (and between clients and nodes).
    pub network: NetworkConfig,
    /// Node disks.
    pub disk: DiskConfig,
    /// Fault injection.
    pub nemesis: NemesisConfig,
    /// Client load.
    pub workload: WorkloadConfig,
    /// The main phase ends when the workload's op budget is spent or at this time,
    /// whichever is first. Faults are injected only in the main phase.
    pub main_phase_max: Duration,
    /// After the heal, every client must complete its liveness ops within this
    /// time; `None`: the protocol's liveness bound ([`liveness_bound`]).
    ///
    /// [`liveness_bound`]: crate::sim::liveness_bound
    pub heal_timeout: Option<Duration>,
    /// Hard cap on processed events, so a livelocked run still ends.
    pub events_max: u64,
    /// Build nodes with their performance knobs drawn per node and incarnation
    /// (`SimProtocol::build_varied`) instead of the defaults. On under faults, so
    /// sweeps also cover small batches and windows; off for measurements.
    pub vary_tuning: bool,
    /// Count the encoded bytes of every peer message ([`SimStats::bytes_sent`]):
    /// one encoding per send, so off unless a report asks for it.
    ///
    /// [`SimStats::bytes_sent`]: crate::sim::SimStats::bytes_sent
    pub measure_bytes: bool,
    /// Record the space-time diagram of the run until this virtual time
    /// ([`RunOutcome::space_time`](crate::sim::RunOutcome::space_time)).
    pub trace_until: Option<Duration>,
}

impl SimConfig {
    /// The configuration the CLI uses: a 3-node LAN-like cluster.
    pub fn standard(seed: u64, faults: FaultSpec, ops: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: 3,
            network: NetworkConfig {
                latency_min: Duration::from_micros(100),
                latency_tail_mean: Duration::from_micros(200),
                latency_tail_max: Duration::from_millis(5),
                loss: 0.0,
                duplicate: if faults.is_none() { 0.0 } else { 0.01 },
                reorder: if faults.is_none() { 0.0 } else { 0.02 },
                reorder_delay_max: Duration::from_millis(20),
                fault_loss: 0.3,
                fault_delay: 0.2,
                fault_delay_min: Duration::from_millis(200),
                fault_delay_max: Duration::from_millis(2500),
                fifo_links: true,
            },
            disk: DiskConfig {
                write_min: Duration::from_micros(100),
                write_max: Duration::from_micros(800),
            },
            nemesis: NemesisConfig {
                faults,
                gap_min: Duration::from_millis(50),
                gap_max: Duration::from_millis(600),
                duration_min: Duration::from_millis(50),
                duration_max: Duration::from_millis(1500),
                drift_ppm_max: 10_000,
                leader_bias: 0.5,
                storm_gap_min: Duration::from_millis(20),
                storm_gap_max: Duration::from_millis(250),
                storm_down_min: Duration::from_millis(10),
                storm_down_max: Duration::from_millis(400),
                disk_losses: DiskLosses::default(),
            },
            workload: WorkloadConfig::standard(ops),
            main_phase_max: Duration::from_secs(3600),
            heal_timeout: None,
            events_max: 50_000_000,
            vary_tuning: !faults.is_none(),
            measure_bytes: false,
            trace_until: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_spec_parses_names_and_rejects_unknown() {
        assert!("none".parse::<FaultSpec>().unwrap().is_none());
        assert_eq!("all".parse::<FaultSpec>().unwrap(), FaultSpec::all());
        let net: FaultSpec = "net".parse().unwrap();
        assert!(net.partition && net.loss && !net.crash);
        let some: FaultSpec = "crash, pause".parse().unwrap();
        assert!(some.crash && some.pause && !some.partition);
        assert_eq!(some.to_string(), "crash,pause");
        let err = "crash,meteor".parse::<FaultSpec>().unwrap_err();
        assert!(err.contains("meteor"), "{err}");
        assert!("".parse::<FaultSpec>().is_err());
    }
}
