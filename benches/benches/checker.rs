//! Benchmarks of the linearizability checker on generated histories.
//!
//! Histories come from `synth::generate`: a seeded discrete-event simulation
//! of clients against a sequential model (SplitMix64 PRNG, no thread rng),
//! so every run checks the same linearizable histories. Only the public API
//! is used. Run: `CARGO_BUILD_JOBS=1 cargo bench --bench checker`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use synod_harness::checker::synth::{generate, SynthConfig};
use synod_harness::checker::{check, Event, History, Model, Options, Verdict};

fn history(events: Vec<Event>) -> History {
    History::from_events(events).expect("generated histories are well formed")
}

/// Checks once outside the timer, so a wrong verdict fails loudly.
fn bench_check(c: &mut Criterion, name: &str, cfg: &SynthConfig) {
    let h = history(generate(cfg));
    let first = check(&h, cfg.model, Options::default()).expect("fits the model");
    assert_eq!(first.verdict, Verdict::Linearizable, "{name}");
    eprintln!("{name}: {} ops, {} partitions", first.ops, first.partitions);
    c.bench_function(name, |b| {
        b.iter(|| check(black_box(&h), cfg.model, Options::default()))
    });
}

/// (a) 10 keys x 50 concurrent clients x 10,000 kv ops.
fn kv_10_keys(c: &mut Criterion) {
    let cfg = SynthConfig::new(Model::Kv, 10, 50, 10_000, 1);
    bench_check(c, "kv_10keys_50clients_10000ops", &cfg);
}

/// (b) one cas-register, 100 clients, 10,000 ops (unique values).
fn cas_100_clients(c: &mut Criterion) {
    let cfg = SynthConfig::new(Model::CasRegister, 0, 100, 10_000, 2);
    bench_check(c, "cas_register_1key_100clients_10000ops", &cfg);
}

/// (c) an etcd-like Jepsen history: one cas-register, 10 clients, values
/// drawn from 0..5 (duplicates, as Jepsen's `rand-int 5`), 2% crashes.
fn etcd_like(c: &mut Criterion) {
    let mut cfg = SynthConfig::new(Model::CasRegister, 0, 10, 1_000, 3);
    cfg.values = Some(5);
    cfg.info_per_mille = 20;
    bench_check(c, "cas_register_etcd_like_10clients_1000ops", &cfg);
}

/// Parsing cost: the 10,000-op kv history of (a) as JSON lines.
fn parse_kv(c: &mut Criterion) {
    let events = generate(&SynthConfig::new(Model::Kv, 10, 50, 10_000, 1));
    let text: String = events
        .iter()
        .map(|e| format!("{}\n", e.to_json()))
        .collect();
    c.bench_function("parse_jsonl_kv_10000ops", |b| {
        b.iter(|| History::parse_jsonl_str(black_box(&text)).map(|h| h.len()))
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = kv_10_keys, cas_100_clients, etcd_like, parse_kv
}
criterion_main!(benches);
