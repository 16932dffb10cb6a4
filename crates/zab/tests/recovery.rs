//! Recovery from storage (DSN 2011 §IV: `acceptedEpoch`, `currentEpoch` and the
//! history are durable), one server started by hand on hand-made storage.

mod by_hand;
use by_hand::*;
use synod_core::{codec, Node, NodeId, Recovered, Time};
use synod_testkit::{ms, n};
use synod_zab::{Epoch, PeerState, ZabConfig, ZabNode, Zxid};

/// Starts n1 of {n1, n2, n3} on `meta`; returns it and what it did.
fn start(meta: &[(&str, Vec<u8>)]) -> (ZabNode, Fx) {
    let mut rec = Recovered::default();
    for (k, v) in meta {
        rec.meta.insert((*k).to_owned(), v.clone());
    }
    let mut x = ZabNode::new(ZabConfig::lan(n(1), (1..=3).map(n), 1));
    let mut fx = Fx::new();
    x.on_start(Time::ZERO + ms(10), rec, &mut fx);
    (x, fx)
}

/// Storage the node cannot read, or that breaks Zab's invariants — here
/// `acceptedEpoch` below `currentEpoch`, which no run writes (a server accepts an
/// epoch before it acknowledges its NEWLEADER; ZOOKEEPER-335 kept them apart) —
/// halts the node loudly (`Node::halted` says why) instead of letting it vote
/// with a history or epoch it does not have. A halted node sends nothing, whatever
/// it hears.
#[test]
fn zab_recovery_storage_that_breaks_the_invariants_halts_the_node() {
    let (x, fx) = start(&[]);
    assert_eq!(x.halted(), None, "fresh storage is fine");
    assert!(!fx.sends.is_empty(), "it looks for a leader");

    let (mut x, fx) = start(&[("zab.current_epoch", vec![0xff, 0xff, 0xff])]);
    let why = x.halted().expect("halted");
    assert!(why.contains("currentEpoch"), "{why}");
    assert!(fx.sends.is_empty() && fx.timers.is_empty());
    let mut fx = Fx::new();
    let note = round_one(2, PeerState::Looking);
    x.on_message(Time::ZERO + ms(20), n(2), note, &mut fx);
    assert!(fx.sends.is_empty(), "a halted node does not answer");

    let accepted = codec::encode(&(Epoch(1), Some(NodeId(2))));
    let current = codec::encode(&Epoch(2));
    let (x, _) = start(&[
        ("zab.accepted_epoch", accepted),
        ("zab.current_epoch", current),
    ]);
    let why = x.halted().expect("halted");
    assert!(
        why.contains("acceptedEpoch e1 below currentEpoch e2"),
        "{why}"
    );
}

/// The history is dense: a log with a hole (an entry lost below later ones, which
/// the storage contract rules out) halts the node, naming the first missing
/// position and the last one before it — recovering around the hole would give
/// every later transaction the wrong position, and the leader's DIFFs and TRUNCs
/// would cut the wrong ones.
#[test]
fn zab_recovery_a_log_with_a_gap_halts_the_node_naming_it() {
    let entry = |c: u32| {
        let cmd = synod_core::SessionCommand {
            client: synod_core::ClientId(1),
            seq: u64::from(c),
            op: synod_core::KvOp::Put {
                key: "k".into(),
                value: "v".into(),
            },
        };
        codec::encode(&(Zxid::new(Epoch(1), c), cmd))
    };
    let mut rec = Recovered::default();
    rec.log.insert(1, entry(1));
    rec.log.insert(3, entry(3));
    let mut x = ZabNode::new(ZabConfig::lan(n(1), (1..=3).map(n), 1));
    x.on_start(Time::ZERO, rec.clone(), &mut Fx::new());
    assert_eq!(x.halted(), Some("log gap: position 3 after @1"));
    // Without the hole it recovers both.
    rec.log.insert(2, entry(2));
    let mut x = ZabNode::new(ZabConfig::lan(n(1), (1..=3).map(n), 1));
    x.on_start(Time::ZERO, rec, &mut Fx::new());
    assert_eq!(x.halted(), None);
    assert_eq!(x.log().last_zxid(), Zxid::new(Epoch(1), 3));
}
