//! Test helpers shared by the adapters' message-economy tests.

use crate::protocol::SimProtocol;
use crate::sim::config::{FaultSpec, SimConfig};
use crate::sim::Simulator;
use crate::workload::{Mix, WorkloadConfig};
use std::time::Duration;

/// A healthy 3-node cluster whose clients (each doing `put`s only) start at 1 s, so
/// an election can be measured alone before any client traffic.
pub(crate) fn quiet_cluster<P: SimProtocol>(seed: u64, clients: usize, ops: u64) -> Simulator<P> {
    let mut cfg = SimConfig::standard(seed, FaultSpec::default(), ops);
    cfg.workload = WorkloadConfig::standard(ops);
    cfg.workload.clients = clients;
    cfg.workload.mix = Mix {
        read: 0.0,
        append: 0.0,
        cas: 0.0,
        delete: 0.0,
    };
    cfg.workload.start_after = Duration::from_secs(1);
    Simulator::new(cfg)
}

/// Runs `sim` in 100 µs steps until `done` holds (or fails after 10 virtual seconds).
pub(crate) fn step_until<P: SimProtocol>(
    sim: &mut Simulator<P>,
    mut done: impl FnMut(&Simulator<P>) -> bool,
) {
    let mut t = sim.now();
    for _ in 0..100_000 {
        if done(sim) {
            return;
        }
        t += Duration::from_micros(100);
        sim.run_until(t);
    }
    panic!("condition not reached by {t}");
}
