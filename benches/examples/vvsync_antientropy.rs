//! What vvsync's anti-entropy sends to bring a replica up to date, against sending
//! every key's state: three replicas hold `K` keys; one is cut off while `M` keys
//! change on the others; after the heal, the bytes every replica's anti-entropy sent
//! until all three hold the same states (digests, key lists and states, each message
//! encoded as on the wire), per key that had to travel.
//!
//! ```text
//! cargo run --release -p synod-benches --example vvsync_antientropy
//! ```

use std::time::Duration;
use synod_core::{codec, ClientId, NodeId, Outcome};
use synod_testkit::{ms, n, Cluster};
use synod_vvsync::{Causality, Dvv, Request, VvConfig, VvNode};

type C = Cluster<VvNode<Dvv>>;

fn put(c: &mut C, at: u64, seq: &mut u64, key: String) {
    *seq += 1;
    let context = c
        .node(at)
        .state(&key)
        .map(|s| s.context())
        .unwrap_or_default();
    let value = format!("{:016}", *seq);
    let t = c.request(
        at,
        ClientId(1),
        *seq,
        Request::Put {
            key,
            value,
            context,
        },
    );
    c.deliver_all();
    assert!(matches!(c.outcome(t), Some(Outcome::Done(_))));
}

fn converged(c: &C) -> bool {
    let a: Vec<_> = c.node(1).states().collect();
    (2..=3).all(|i| c.node(i).states().collect::<Vec<_>>() == a)
}

fn sent(c: &C) -> (u64, u64) {
    (1..=3)
        .map(|i| c.node(i).sync_stats())
        .fold((0, 0), |(b, k), s| (b + s.bytes_sent, k + s.keys_sent))
}

fn main() {
    let keys = 10_000u64;
    println!("| keys held | keys changed | anti-entropy bytes | bytes per changed key | states sent | every state, bytes | ratio |");
    println!("|---|---|---|---|---|---|---|");
    for changed in [1u64, 10, 100, 1000] {
        let members = [n(1), n(2), n(3)];
        let mut c: C = Cluster::start(
            3,
            move |id: NodeId| VvNode::new(VvConfig::lan(id, &members, id.0)),
            Vec::new(),
        );
        let mut seq = 0;
        for k in 0..keys {
            put(&mut c, 1, &mut seq, format!("k{k}"));
        }
        c.run_for(ms(200));
        assert!(converged(&c));
        c.isolate(3);
        for k in 0..changed {
            put(&mut c, 1, &mut seq, format!("k{}", k * (keys / changed)));
        }
        c.heal();
        let before = sent(&c);
        let mut waited = Duration::ZERO;
        while !converged(&c) {
            c.run_for(ms(10));
            waited += ms(10);
            assert!(waited < Duration::from_secs(10), "no convergence");
        }
        let (bytes, states) = (sent(&c).0 - before.0, sent(&c).1 - before.1);
        let everything: u64 = (c.node(1).states())
            .map(|(k, s)| (codec::encode(&k).len() + codec::encode(s).len()) as u64)
            .sum();
        println!(
            "| {keys} | {changed} | {bytes} | {:.0} | {states} | {everything} | {:.1}x |",
            bytes as f64 / changed as f64,
            everything as f64 / bytes as f64
        );
        let _ = Causality::siblings(c.node(1).state("k0").unwrap());
    }
}
