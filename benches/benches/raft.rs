//! Committed entries per second of a 3-node in-memory Raft cluster, one thread, nodes
//! wired directly, with 1, 64 and 1024 proposals in flight: Synod Raft beside raft-rs
//! (tikv `raft` 0.7) driven the same way in the same run.
//!
//! Run: `cargo bench -p synod-benches --bench raft`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use synod_benches::direct::raft_cluster;
use synod_benches::raftrs_driver::RaftRsCluster;
use synod_benches::time_runs;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENTRIES: u64 = 20_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft_commit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(ENTRIES));
    for in_flight in [1u64, 64, 1024] {
        group.bench_with_input(BenchmarkId::new("synod", in_flight), &in_flight, |b, &k| {
            b.iter_custom(|iters| time_runs(iters, raft_cluster, |c| c.run(ENTRIES, k)))
        });
        group.bench_with_input(
            BenchmarkId::new("raft-rs", in_flight),
            &in_flight,
            |b, &k| {
                b.iter_custom(|iters| time_runs(iters, RaftRsCluster::new, |c| c.run(ENTRIES, k)))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
