//! Committed commands per second of a 3-node in-memory Multi-Paxos cluster, one
//! thread, nodes wired directly (the same driver as Synod Raft's in `raft.rs`), with
//! 1, 64 and 1024 proposals in flight: Synod Multi-Paxos beside `omnipaxos` 0.2.4
//! (`benches/src/omnipaxos_driver.rs`) driven the same way in the same run.
//!
//! Run: `cargo bench -p synod-benches --bench paxos`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use synod_benches::direct::DirectCluster;
use synod_benches::omnipaxos_driver::OmniPaxosCluster;
use synod_benches::time_runs;
use synod_core::{Node, NodeId};
use synod_paxos::{MultiPaxosConfig, MultiPaxosNode, MultiPaxosTimer, Request};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENTRIES: u64 = 20_000;

/// Three Synod Multi-Paxos nodes, node 1 leading; `MultiPaxosConfig::lan` (8 accept
/// messages of up to 64 commands in flight), snapshots every 10,000 slots keeping 1,000.
fn synod_cluster() -> DirectCluster<MultiPaxosNode> {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let nodes = ids
        .iter()
        .map(|&id| {
            let mut cfg = MultiPaxosConfig::lan(id, ids, id.0);
            cfg.snapshot_threshold = 10_000;
            cfg.snapshot_trailing = 1_000;
            MultiPaxosNode::new(cfg)
        })
        .collect();
    let c = DirectCluster::new(
        nodes,
        |n, now, fx| n.on_timer(now, MultiPaxosTimer::Election, fx),
        Request::Kv,
    );
    assert!(c.node(0).is_leader(), "node 1 must win phase 1");
    c
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("paxos_commit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(ENTRIES));
    for in_flight in [1u64, 64, 1024] {
        group.bench_with_input(BenchmarkId::new("synod", in_flight), &in_flight, |b, &k| {
            b.iter_custom(|iters| time_runs(iters, synod_cluster, |c| c.run(ENTRIES, k)))
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
