//! Committed commands per second of a 3-node in-memory Multi-Paxos cluster, one
//! thread, nodes wired directly (the same driver as Synod Raft's in `raft.rs`), with
//! 1, 64 and 1024 proposals in flight: Synod Multi-Paxos beside `omnipaxos` 0.2.4
//! (`benches/src/omnipaxos_driver.rs`) driven the same way in the same run.
//!
//! Run: `cargo bench -p synod-benches --bench paxos`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use synod_benches::direct::paxos_cluster;
use synod_benches::omnipaxos_driver::OmniPaxosCluster;
use synod_benches::time_runs;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENTRIES: u64 = 20_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("paxos_commit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(ENTRIES));
    for in_flight in [1u64, 64, 1024] {
        group.bench_with_input(BenchmarkId::new("synod", in_flight), &in_flight, |b, &k| {
            b.iter_custom(|iters| time_runs(iters, paxos_cluster, |c| c.run(ENTRIES, k)))
        });
        group.bench_with_input(
            BenchmarkId::new("omnipaxos", in_flight),
            &in_flight,
            |b, &k| {
                b.iter_custom(|iters| {
                    time_runs(iters, OmniPaxosCluster::new, |c| c.run(ENTRIES, k))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
