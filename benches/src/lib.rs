//! Drivers shared by the criterion benches: each wires sans-IO nodes (or a peer
//! library's nodes) directly in one thread, with in-memory storage, so the benches
//! measure protocol code rather than I/O.

pub mod direct;
pub mod omnipaxos_driver;
pub mod openraft_driver;
pub mod raftrs_driver;

/// How many new proposals a closed-loop driver hands the leader now: enough to
/// bring `outstanding` back to `in_flight`, without passing the `remaining` ones.
/// Every commit-throughput driver proposes by this rule, all due ones together.
pub fn proposals_due(outstanding: u64, in_flight: u64, remaining: u64) -> u64 {
    in_flight.saturating_sub(outstanding).min(remaining)
}

/// Times `iters` runs of `run` on one cluster built by `make` (building is not
/// timed): the body of every commit-throughput bench's `iter_custom`.
pub fn time_runs<C>(
    iters: u64,
    make: impl FnOnce() -> C,
    mut run: impl FnMut(&mut C),
) -> std::time::Duration {
    let mut cluster = make();
    let start = std::time::Instant::now();
    for _ in 0..iters {
        run(&mut cluster);
    }
    start.elapsed()
}
