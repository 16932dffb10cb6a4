//! Paired comparison of the commit-throughput benches, for noisy machines: Synod
//! and its peer library take turns on the same workload, round after round, so a
//! slow spell of the machine (a shared VM's neighbours, frequency changes) hits
//! both sides of a round alike instead of one whole criterion benchmark.
//!
//! For each protocol and number of proposals in flight it builds both clusters
//! once, warms them up, then runs `ROUNDS` rounds of `ENTRIES` commits each, Synod
//! first in even rounds and the peer first in odd ones. It prints the median
//! throughput of each side and the per-round ratio Synod ÷ peer: median, lowest
//! and highest. The workload and drivers are those of the `raft` and `paxos`
//! criterion benches (`synod_benches::direct`, `raftrs_driver`, `omnipaxos_driver`),
//! plus `openraft_driver`, which has no criterion bench of its own.
//!
//! Run: `cargo bench -p synod-benches --bench paired` (all), or add `-- raft` /
//! `-- openraft` / `-- paxos` / `-- zab` / `-- vvsync` for one comparison. `raft`
//! pairs Synod's Raft with raft-rs, `openraft` with openraft 0.9 (async: its three
//! nodes run on a current-thread tokio runtime, see `openraft_driver`), both with
//! the same `ENTRIES`, `ROUNDS` and `WARM_UP`. Zab is paired with Synod's own Raft,
//! and so is vvsync with `W` = 2 (a write acknowledged by 2 of its 3 replicas, as a
//! commit is): what a write costs without consensus — and without batching, since
//! every vvsync write is its own replication round.

use std::time::Instant;
use synod_benches::direct::{paxos_cluster, raft_cluster, vvsync_cluster, zab_cluster};
use synod_benches::omnipaxos_driver::OmniPaxosCluster;
use synod_benches::openraft_driver::OpenRaftCluster;
use synod_benches::raftrs_driver::RaftRsCluster;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Commits per side per round (as in the criterion benches).
const ENTRIES: u64 = 20_000;
/// Rounds per configuration: odd, so the median is one round's figure.
const ROUNDS: usize = 21;
/// Commits each cluster runs before the first measured round.
const WARM_UP: u64 = 20_000;

/// Commits per second of one `run(ENTRIES, in_flight)`.
fn rate(run: &mut dyn FnMut(u64, u64), in_flight: u64) -> f64 {
    let start = Instant::now();
    run(ENTRIES, in_flight);
    ENTRIES as f64 / start.elapsed().as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs the rounds of one configuration and prints its line.
fn compare(
    protocol: &str,
    peer: &str,
    in_flight: u64,
    ours: &mut dyn FnMut(u64, u64),
    theirs: &mut dyn FnMut(u64, u64),
) {
    ours(WARM_UP, in_flight);
    theirs(WARM_UP, in_flight);
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (x, y) = if round % 2 == 0 {
            let x = rate(ours, in_flight);
            (x, rate(theirs, in_flight))
        } else {
            let y = rate(theirs, in_flight);
            (rate(ours, in_flight), y)
        };
        a.push(x);
        b.push(y);
        ratios.push(x / y);
    }
    let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = ratios.iter().copied().fold(0.0, f64::max);
    println!(
        "{protocol:<6} {in_flight:>5} in flight: synod {:>10.0}/s  {peer} {:>10.0}/s  \
         ratio median {:.2}x [{lowest:.2}–{highest:.2}] over {ROUNDS} rounds",
        median(a),
        median(b),
        median(ratios),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument selects protocols.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs = |protocol: &str| wanted.is_empty() || wanted.iter().any(|w| w == protocol);
    println!(
        "paired rounds: {ROUNDS} × {ENTRIES} commits per side, 3 nodes, in-memory, one thread"
    );
    for in_flight in [1u64, 64, 1024] {
        if runs("raft") {
            let (mut ours, mut theirs) = (raft_cluster(), RaftRsCluster::new());
            compare(
                "raft",
                "raft-rs",
                in_flight,
                &mut |n, k| ours.run(n, k),
                &mut |n, k| theirs.run(n, k),
            );
        }
        if runs("openraft") {
            let (mut ours, mut theirs) = (raft_cluster(), OpenRaftCluster::new());
            compare(
                "raft",
                "openraft",
                in_flight,
                &mut |n, k| ours.run(n, k),
                &mut |n, k| theirs.run(n, k),
            );
        }
        if runs("zab") {
            // Zab beside our own Raft: the same driver, workload and machine.
            let (mut ours, mut theirs) = (zab_cluster(), raft_cluster());
            compare(
                "zab",
                "synod-raft",
                in_flight,
                &mut |n, k| ours.run(n, k),
                &mut |n, k| theirs.run(n, k),
            );
        }
        if runs("vvsync") {
            // Acknowledged by 2 of the 3 replicas, like a commit.
            let (mut ours, mut theirs) = (vvsync_cluster(2), raft_cluster());
            compare(
                "vvsync",
                "synod-raft",
                in_flight,
                &mut |n, k| ours.run(n, k),
                &mut |n, k| theirs.run(n, k),
            );
        }
        if runs("paxos") {
            let (mut ours, mut theirs) = (paxos_cluster(), OmniPaxosCluster::new());
            compare(
                "paxos",
                "omnipaxos",
                in_flight,
                &mut |n, k| ours.run(n, k),
                &mut |n, k| theirs.run(n, k),
            );
        }
    }
}
