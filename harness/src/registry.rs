//! The protocol registry: the one place a protocol is named.
//!
//! Each [`Protocol`] entry says what `--protocol NAME` runs: a one-line description,
//! the consistency it promises (and so the checker that judges its runs), how to run
//! it in the simulator, the online invariants the simulator checks, and — for real
//! protocols — how to start it as a real node and how to drive a real cluster of it.
//! `synod sim`, `check`, `compare`, `node`, `cluster`, `bench` and `--help` all read
//! this table; nothing else in the harness spells a protocol's name.
//!
//! Adding a protocol is its crate, its adapter file in [`crate::adapters`] (the
//! [`SimProtocol`] impl: building nodes, the KV translation, the invariants) and one
//! entry here, built with [`Protocol::of`].
//!
//! Test fixtures (nodes built to exercise the simulator and the checker, e.g. one
//! that forgets what it persisted) are entries too, so they stay runnable by name,
//! but [`Protocol::fixture`] keeps them out of every list offered to users.

use crate::adapters::paxos::Paxos;
use crate::adapters::raft::Raft;
use crate::adapters::twopc::{TwoPc, TwoPcNb};
use crate::adapters::vvsync::{VvSyncDvv, VvSyncLww, VvSyncVv};
use crate::adapters::zab::{Zab, ZabLocal};
use crate::fixture::{AmnesiaFixture, Fixture};
use crate::kv_client::KvClient;
use crate::loadgen::{self, LoadConfig, LoadReport};
use crate::protocol::SimProtocol;
use crate::sequence::{Reached, Setup, Step};
use crate::sim::config::SimConfig;
use crate::sim::{RunOutcome, Simulator};
use crate::workload::WorkloadConfig;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use synod_core::{ClientId, NodeId};
use synod_runtime::node::{NodeConfig, NodeError, RunningNode};

/// What a protocol promises its clients: the model its histories are checked in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Every operation appears to take effect at one instant between its call and
    /// its return (Herlihy & Wing); checked against the `kv` model.
    Linearizable,
    /// ZooKeeper's default reads: writes are linearizable, and a read returns the
    /// state after some prefix of them that was current before it returned — it may
    /// be stale ([`check_prefix_reads`](crate::runner::check_prefix_reads)).
    PrefixReads,
    /// Multi-master with causality: replicas converge, a write is lost only if a
    /// client saw it before writing over it, concurrent writes stay as siblings (one
    /// per concurrent writer with DVVs, more with replica-id vectors) — judged at the
    /// end of each run ([`SimProtocol::judge`]).
    Convergent,
    /// Multi-master, last writer wins: replicas converge; of concurrent writes all
    /// but one are lost, and the judgement counts them.
    ConvergentLww,
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Consistency::Linearizable => "linearizable",
            Consistency::PrefixReads => "linearizable writes, prefix reads",
            Consistency::Convergent => "convergent, no lost updates (siblings)",
            Consistency::ConvergentLww => "convergent, last writer wins",
        })
    }
}

/// A boxed future, for the table's function pointers.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a protocol runs as real processes.
#[derive(Clone, Copy)]
pub struct Real {
    /// Starts member `config.id` of a real cluster (`synod node`), with `seed` for
    /// the node's randomness.
    pub start: fn(NodeConfig, u64) -> BoxFuture<'static, Result<RunningNode, NodeError>>,
    /// Drives a real cluster of this protocol with the KV workload (`synod bench`);
    /// the timed phase also ends when the future given completes.
    pub load: fn(LoadConfig, BoxFuture<'static, ()>) -> BoxFuture<'static, LoadReport>,
    /// A KV client session of a real cluster.
    pub kv_client: fn(ClientId, Vec<SocketAddr>) -> KvClient,
}

/// One registry entry.
#[derive(Clone, Copy)]
pub struct Protocol {
    /// The name on the command line (`--protocol NAME`).
    pub name: &'static str,
    /// One line for `--help` and reports.
    pub description: &'static str,
    /// What it promises, hence how its runs are checked.
    pub consistency: Consistency,
    /// A test fixture: runnable by name, never listed.
    pub fixture: bool,
    /// The smallest cluster it runs in.
    pub min_nodes: usize,
    /// Fits a workload to the operations it serves, or says why it cannot
    /// ([`SimProtocol::fit_workload`]).
    pub fit_workload: fn(&mut WorkloadConfig) -> Result<(), String>,
    /// Runs one seed in the simulator.
    pub simulate: fn(SimConfig) -> RunOutcome,
    /// The names of the invariants the simulator checks online.
    pub invariants: fn() -> Vec<&'static str>,
    /// Checks a finished run's history in [`Protocol::consistency`]'s model,
    /// recording a violation in the outcome; `Duration` bounds the check.
    pub check: fn(&mut RunOutcome, Duration),
    /// Runs a message-sequence script on its nodes ([`crate::sequence::run`]).
    pub sequence: fn(Setup, &[Step]) -> Result<Reached, String>,
    /// Real nodes, for protocols that run outside the simulator.
    pub real: Option<Real>,
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protocol")
            .field("name", &self.name)
            .field("consistency", &self.consistency)
            .field("fixture", &self.fixture)
            .field("real", &self.real.is_some())
            .finish()
    }
}

impl Protocol {
    /// The entry of the protocol adapted by `P`: simulated by `Simulator<P>`, its
    /// invariants `P::invariants`, run for real through `synod-runtime`.
    pub const fn of<P: SimProtocol>(
        name: &'static str,
        description: &'static str,
        consistency: Consistency,
    ) -> Protocol
    where
        P::Node: Send + 'static,
    {
        Protocol {
            name,
            description,
            consistency,
            fixture: false,
            min_nodes: P::MIN_NODES,
            fit_workload: P::fit_workload,
            simulate: simulate::<P>,
            invariants: invariant_names::<P>,
            check: check_for(consistency),
            sequence: crate::sequence::run::<P>,
            real: Some(Real {
                start: start_real::<P>,
                load: load_real::<P>,
                kv_client: crate::kv_client::kv_client::<P>,
            }),
        }
    }

    /// A test fixture adapted by `P`: simulator only, and unlisted.
    pub const fn fixture<P: SimProtocol>(
        name: &'static str,
        description: &'static str,
    ) -> Protocol {
        Protocol {
            name,
            description,
            consistency: Consistency::Linearizable,
            fixture: true,
            min_nodes: P::MIN_NODES,
            fit_workload: P::fit_workload,
            simulate: simulate::<P>,
            invariants: invariant_names::<P>,
            check: check_for(Consistency::Linearizable),
            sequence: crate::sequence::run::<P>,
            real: None,
        }
    }
}

/// Every protocol the harness knows, real ones first in the order reports list them.
pub const PROTOCOLS: &[Protocol] = &[
    Protocol::of::<Raft>(
        "raft",
        "Raft: pre-vote, check-quorum, pipelined replication, ReadIndex reads, snapshots, membership",
        Consistency::Linearizable,
    ),
    Protocol::of::<Paxos>(
        "paxos",
        "Multi-Paxos: stable leader, one phase 1 for all slots, pipelined and batched phase 2, read rounds",
        Consistency::Linearizable,
    ),
    Protocol::of::<Zab>(
        "zab",
        "Zab: Fast Leader Election, discovery, DIFF/TRUNC/SNAP sync, pipelined broadcast, leader-confirmed reads",
        Consistency::Linearizable,
    ),
    Protocol::of::<ZabLocal>(
        "zab-local",
        "Zab with ZooKeeper's default reads: answered by any up-to-date server, possibly stale",
        Consistency::PrefixReads,
    ),
    Protocol::of::<TwoPc>(
        "twopc",
        "two-phase commit over KV shards: presumed abort, strict 2PL (wait-die), cooperative termination",
        Consistency::Linearizable,
    ),
    Protocol::of::<TwoPcNb>(
        "twopc-nb",
        "2PC whose coordinator decisions are replicated by Raft: no blocking while a majority of its 3 replicas is up",
        Consistency::Linearizable,
    ),
    Protocol::of::<VvSyncDvv>(
        "vvsync",
        "multi-master sync, every replica takes writes: dotted version vector sets, read repair, anti-entropy",
        Consistency::Convergent,
    ),
    Protocol::of::<VvSyncVv>(
        "vvsync-vv",
        "vvsync with one version vector per key by replica id: nothing lost, siblings pile up",
        Consistency::Convergent,
    ),
    Protocol::of::<VvSyncLww>(
        "vvsync-lww",
        "vvsync with a version number and timestamp per key: the newer wins, concurrent writes are lost",
        Consistency::ConvergentLww,
    ),
    Protocol::fixture::<Fixture>(
        "fixture",
        "test fixture: a single sequencer the simulator and checker are tested with",
    ),
    Protocol::fixture::<AmnesiaFixture>(
        "fixture-amnesia",
        "test fixture: a sequencer that forgets what it persisted (must be caught)",
    ),
];

/// The entry named `name` (fixtures included), or an error listing the choices.
pub fn get(name: &str) -> Result<&'static Protocol, String> {
    PROTOCOLS.iter().find(|p| p.name == name).ok_or_else(|| {
        format!(
            "unknown protocol `{name}`; expected one of {}",
            names().join(", ")
        )
    })
}

/// The protocols offered to users (no fixtures).
pub fn listed() -> impl Iterator<Item = &'static Protocol> {
    PROTOCOLS.iter().filter(|p| !p.fixture)
}

/// The names offered to users (no fixtures).
pub fn names() -> Vec<&'static str> {
    listed().map(|p| p.name).collect()
}

/// The protocols that run as real nodes.
pub fn real() -> impl Iterator<Item = &'static Protocol> {
    listed().filter(|p| p.real.is_some())
}

/// A clap value parser for `--protocol`: every entry is accepted, fixtures are
/// hidden from `--help` and from the error's list of choices.
pub fn value_parser(real_only: bool) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(possible_values(real_only))
}

/// [`value_parser`] for a command that also takes `all` (every listed protocol).
pub fn value_parser_or_all() -> clap::builder::PossibleValuesParser {
    let all = clap::builder::PossibleValue::new("all")
        .help("every protocol and mode above, each seed a swarm draw (--swarm)");
    clap::builder::PossibleValuesParser::new(possible_values(false).chain([all]))
}

fn possible_values(real_only: bool) -> impl Iterator<Item = clap::builder::PossibleValue> {
    PROTOCOLS
        .iter()
        .filter(move |p| !real_only || p.real.is_some())
        .map(|p| {
            clap::builder::PossibleValue::new(p.name)
                .help(p.description)
                .hide(p.fixture)
        })
}

fn simulate<P: SimProtocol>(cfg: SimConfig) -> RunOutcome {
    Simulator::<P>::new(cfg).run()
}

fn invariant_names<P: SimProtocol>() -> Vec<&'static str> {
    let members: Vec<NodeId> = (1..=P::MIN_NODES.max(3) as u64).map(NodeId).collect();
    P::invariants(&members).iter().map(|i| i.name()).collect()
}

const fn check_for(consistency: Consistency) -> fn(&mut RunOutcome, Duration) {
    match consistency {
        Consistency::Linearizable => crate::runner::check_linearizability,
        Consistency::PrefixReads => crate::runner::check_prefix_reads,
        Consistency::Convergent | Consistency::ConvergentLww => crate::runner::judged_in_the_run,
    }
}

fn start_real<P: SimProtocol>(
    config: NodeConfig,
    seed: u64,
) -> BoxFuture<'static, Result<RunningNode, NodeError>>
where
    P::Node: Send + 'static,
{
    let members: Vec<NodeId> = config.members.iter().map(|m| m.id).collect();
    let node = P::build(config.id, &members, seed);
    Box::pin(synod_runtime::node::start(node, config))
}

fn load_real<P: SimProtocol>(
    config: LoadConfig,
    stop: BoxFuture<'static, ()>,
) -> BoxFuture<'static, LoadReport>
where
    P::Node: Send + 'static,
{
    Box::pin(loadgen::run_until::<P>(config, stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry per name; every listed protocol runs for real; fixtures are
    /// runnable by name but never listed.
    #[test]
    fn names_are_unique_and_fixtures_are_unlisted() {
        let mut names: Vec<&str> = PROTOCOLS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROTOCOLS.len(), "a name is registered twice");
        assert!(listed().all(|p| !p.fixture && p.real.is_some()));
        assert!(get("fixture").is_ok_and(|p| p.fixture));
        assert!(!self::names().contains(&"fixture"));
        let err = get("zab-ish").unwrap_err();
        assert!(
            err.contains("raft, paxos") && !err.contains("fixture"),
            "{err}"
        );
    }

    /// Each real protocol checks invariants online.
    #[test]
    fn every_protocol_names_its_invariants() {
        for p in listed() {
            assert!(
                !(p.invariants)().is_empty(),
                "{} checks no invariant",
                p.name
            );
        }
    }
}
