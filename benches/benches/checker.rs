//! Benchmarks of the linearizability checker on generated histories.
//!
//! Histories come from `synth::generate`: a seeded discrete-event simulation
//! of clients against a sequential model (SplitMix64 PRNG, no thread rng),
//! so every run checks the same histories. Each not-linearizable shape is
//! benched beside its linearizable twin: the same config and seed with one
//! fault planted (`synth::Fault`), which must not cost more than 10× the
//! twin (issue 14). Only the public API is used. Run:
//! `CARGO_BUILD_JOBS=1 cargo bench -p synod-benches --bench checker`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use synod_harness::checker::synth::{generate, Fault, Mix, SynthConfig};
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

/// The not-linearizable twin of `cfg`: `fault` planted, checked once
/// outside the timer (a violation with its explanation), then timed.
fn bench_fault(c: &mut Criterion, name: &str, cfg: &SynthConfig, fault: Fault) {
    let mut bad = cfg.clone();
    bad.fault = fault;
    let h = history(generate(&bad));
    let first = check(&h, cfg.model, Options::default()).expect("fits the model");
    assert_eq!(first.verdict, Verdict::NotLinearizable, "{name}");
    assert!(first.failure.is_some(), "{name}: explained");
    c.bench_function(name, |b| {
        b.iter(|| check(black_box(&h), cfg.model, Options::default()))
    });
}

/// A stale read planted half-way: with unique values, always a violation.
const STALE_READ: Fault = Fault::StaleRead { after: 1_000 };
/// A write lost half-way. At this concurrency most lost writes are
/// overwritten before anyone looks (invisible); the seeds of the cas
/// shapes are the first from 1 at which the loss is seen.
const LOST_WRITE: Fault = Fault::LostWrite { after: 1_000 };

/// (a) 10 keys x 50 concurrent clients x 10,000 kv ops; a stale read.
fn kv_10_keys(c: &mut Criterion) {
    let cfg = SynthConfig::new(Model::Kv, 10, 50, 10_000, 1);
    bench_check(c, "kv_10keys_50clients_10000ops", &cfg);
    let fault = Fault::StaleRead { after: 5_000 };
    bench_fault(c, "kv_10keys_50clients_10000ops_stale_read", &cfg, fault);
}

/// (b) one cas-register, 100 clients, 10,000 ops (unique values); a lost
/// write.
fn cas_100_clients(c: &mut Criterion) {
    let cfg = SynthConfig::new(Model::CasRegister, 0, 100, 10_000, 2);
    bench_check(c, "cas_register_1key_100clients_10000ops", &cfg);
    let fault = Fault::LostWrite { after: 5_000 };
    bench_fault(
        c,
        "cas_register_1key_100clients_10000ops_lost_write",
        &cfg,
        fault,
    );
}

/// (d) Porcupine's kv shape (issue 14): 10 keys, 50 or 100 clients, about
/// 2,000 ops, 65 % appends of growing values and gets that read them; and
/// the same on one key, where every client meets every other. A stale get.
fn kv_append_heavy(c: &mut Criterion) {
    for (keys, clients) in [(10, 50), (10, 100), (1, 50)] {
        let mut cfg = SynthConfig::new(Model::Kv, keys, clients, 2_000, 1);
        cfg.mix = Mix::AppendHeavy;
        let name = format!("kv_append_{keys}keys_{clients}clients_2000ops");
        bench_check(c, &name, &cfg);
        bench_fault(c, &format!("{name}_stale_read"), &cfg, STALE_READ);
    }
}

/// (f) Porcupine's kv mix proper: as (d) with one op in ten a put, so a
/// get reads a put's token and the appends after it. 10 keys; on one key
/// this mix is not decided within seconds (see docs/performance.md).
fn kv_append_put(c: &mut Criterion) {
    for clients in [50, 100] {
        let mut cfg = SynthConfig::new(Model::Kv, 10, clients, 2_000, 1);
        cfg.mix = Mix::AppendPut;
        let name = format!("kv_append_put_10keys_{clients}clients_2000ops");
        bench_check(c, &name, &cfg);
        bench_fault(c, &format!("{name}_stale_read"), &cfg, STALE_READ);
    }
}

/// (e) one cas-register at 50 and 100 clients, 2,000 ops; a lost write.
fn cas_lost_write(c: &mut Criterion) {
    for (clients, seed) in [(50, 8), (100, 3)] {
        let cfg = SynthConfig::new(Model::CasRegister, 0, clients, 2_000, seed);
        let name = format!("cas_register_1key_{clients}clients_2000ops");
        bench_check(c, &name, &cfg);
        bench_fault(c, &format!("{name}_lost_write"), &cfg, LOST_WRITE);
    }
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
    targets = kv_10_keys, cas_100_clients, etcd_like, parse_kv, kv_append_heavy, kv_append_put, cas_lost_write
}
criterion_main!(benches);
