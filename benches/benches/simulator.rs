//! Simulator speed: simulated message deliveries per second of wall time, for the
//! primary-backup test fixture on one core (history recording off). Deliveries count
//! every message the simulated network hands over: peer to peer, client to node and
//! node to client.
//!
//! Run: `cargo bench -p synod-benches --bench simulator`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use synod_harness::fixture::Fixture;
use synod_harness::sim::config::{FaultSpec, SimConfig};
use synod_harness::sim::Simulator;

fn config(ops: u64, faults: FaultSpec) -> SimConfig {
    let mut cfg = SimConfig::standard(1, faults, ops);
    cfg.workload.record_history = false;
    cfg
}

fn bench_deliveries(c: &mut Criterion) {
    let mut group = c.benchmark_group("simulator");
    group.sample_size(10);
    for (name, faults) in [
        ("fixture_no_faults", FaultSpec::default()),
        ("fixture_all_faults", FaultSpec::all()),
    ] {
        let ops = 20_000;
        // The run is deterministic, so one dry run gives the exact delivery count.
        let stats = Simulator::<Fixture>::new(config(ops, faults)).run().stats;
        let delivered = stats.delivered + stats.client_delivered;
        group.throughput(Throughput::Elements(delivered));
        group.bench_function(name, |b| {
            b.iter(|| {
                let o = Simulator::<Fixture>::new(config(ops, faults)).run();
                assert_eq!(o.stats.delivered + o.stats.client_delivered, delivered);
                o.stats.events
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_deliveries);
criterion_main!(benches);
