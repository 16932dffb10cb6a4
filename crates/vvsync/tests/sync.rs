//! vvsync replicas on the shared test kit: concurrent writes on both sides of a
//! partition (Dynamo §4.4), read repair (§4.5), anti-entropy (§4.7) sending only what
//! differs, recovery from the journal, and a chaos property over many seeds — every
//! acknowledged write survives unless a later write's context covered it, and
//! replicas converge once faults end.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use synod_core::Node;
use synod_core::{ClientId, NodeId, Outcome, Time};
use synod_testkit::{for_seeds, ms, n, Cluster, Faults, Prng};
use synod_vvsync::*;

type Resp<C> = Response<<C as Causality>::Context>;

fn cluster<C: Causality>(size: u64, tune: impl Fn(&mut VvConfig) + 'static) -> Cluster<VvNode<C>> {
    let members: Vec<NodeId> = (1..=size).map(n).collect();
    Cluster::start(
        size,
        move |id| {
            let mut cfg = VvConfig::lan(id, &members, id.0);
            tune(&mut cfg);
            VvNode::new(cfg)
        },
        Vec::new(),
    )
}

fn put<C: Causality>(
    c: &mut Cluster<VvNode<C>>,
    at: u64,
    client: u64,
    key: &str,
    value: &str,
    context: C::Context,
) -> Resp<C> {
    let seq = c.replies.len() as u64 + 1;
    let req = Request::Put {
        key: key.into(),
        value: value.into(),
        context,
    };
    let t = c.request(at, ClientId(client), seq, req);
    c.deliver_all();
    match c.outcome(t) {
        Some(Outcome::Done(r)) => r.clone(),
        other => panic!("put {value} at n{at}: {other:?}"),
    }
}

fn get<C: Causality>(c: &mut Cluster<VvNode<C>>, at: u64, key: &str) -> Resp<C> {
    let seq = c.replies.len() as u64 + 1;
    let t = c.request(at, ClientId(99), seq, Request::Get { key: key.into() });
    c.deliver_all();
    match c.outcome(t) {
        Some(Outcome::Done(r)) => r.clone(),
        other => panic!("get at n{at}: {other:?}"),
    }
}

/// Every live replica holds the same state of every key.
fn converged<C: Causality>(c: &Cluster<VvNode<C>>) -> bool {
    let stores: Vec<Vec<(String, C)>> = c
        .live()
        .map(|node| {
            node.states()
                .map(|(k, s)| (k.to_owned(), s.clone()))
                .collect()
        })
        .collect();
    stores.windows(2).all(|w| w[0] == w[1])
}

/// Two clients write one key on either side of a partition.
fn partitioned_writes<C: Causality>() -> Cluster<VvNode<C>> {
    let mut c = cluster::<C>(3, |_| {});
    c.partition(&[1], &[2, 3]);
    put(&mut c, 1, 1, "cart", "milk", C::Context::default());
    put(&mut c, 2, 2, "cart", "eggs", C::Context::default());
    c.heal();
    c.run_for(ms(500));
    c
}

#[test]
fn dynamo_4_4_concurrent_writes_in_a_partition_become_siblings_and_a_context_resolves_them() {
    let mut c = partitioned_writes::<Dvv>();
    assert!(converged(&c), "anti-entropy merged both sides");
    let read = get(&mut c, 3, "cart");
    assert_eq!(read.siblings(), ["milk", "eggs"]);
    // The client merges the siblings (set union) and writes with the read's context.
    let cart = resolve::Set::union(read.siblings()).unwrap().to_string();
    assert_eq!(cart, "eggs,milk");
    let resolved = put(&mut c, 3, 3, "cart", &cart, read.context().clone());
    assert_eq!(resolved.siblings(), ["eggs,milk"]);
    c.run_for(ms(500));
    assert!(converged(&c));
    for id in 1..=3 {
        assert_eq!(c.node(id).state("cart").unwrap().siblings(), ["eggs,milk"]);
    }
}

#[test]
fn lww_concurrent_writes_in_a_partition_lose_one_silently() {
    let mut c = partitioned_writes::<Lww>();
    assert!(converged(&c));
    let read = get(&mut c, 3, "cart");
    assert_eq!(read.siblings().len(), 1, "one write survives: {read:?}");
    // Both writes were acknowledged; nothing tells the clients one is gone.
    assert_eq!(
        c.replies
            .iter()
            .filter(|(_, r)| matches!(r.outcome, Outcome::Done(Response::Written { .. })))
            .count(),
        2
    );
}

#[test]
fn vv_concurrent_writes_are_kept_too() {
    let mut c = partitioned_writes::<Vv>();
    assert!(converged(&c));
    assert_eq!(get(&mut c, 1, "cart").siblings().len(), 2);
}

#[test]
fn dynamo_4_5_a_read_of_r_replicas_repairs_the_ones_behind() {
    // No anti-entropy in this test: reads must do the repair.
    let mut c = cluster::<Dvv>(3, |cfg| {
        cfg.r = 3;
        cfg.anti_entropy_every = std::time::Duration::from_secs(3600);
    });
    c.cut(1, 3);
    put(&mut c, 1, 1, "k", "v1", VersionVector::new());
    assert!(c.node(3).state("k").is_none(), "n3 missed the write");
    c.heal();
    let read = get(&mut c, 2, "k");
    assert_eq!(read.siblings(), ["v1"]);
    assert_eq!(c.node(3).state("k").unwrap().siblings(), ["v1"], "repaired");
}

#[test]
fn quorum_writes_wait_for_w_durable_replicas_and_fail_as_unknown_without_them() {
    let mut c = cluster::<Dvv>(3, |cfg| cfg.w = 2);
    c.isolate(1);
    let t = c.request(
        1,
        ClientId(1),
        1,
        Request::Put {
            key: "k".into(),
            value: "v".into(),
            context: VersionVector::new(),
        },
    );
    c.deliver_all();
    assert!(c.outcome(t).is_none(), "one replica of W = 2 is not enough");
    c.tick(ms(250));
    assert_eq!(
        c.outcome(t),
        Some(&Outcome::Unknown),
        "durable at n1, may still spread"
    );
    c.heal();
    let w = put(&mut c, 2, 2, "k", "w", VersionVector::new());
    assert_eq!(w.siblings(), ["w"], "n2 had not seen v yet");
    c.run_for(ms(500));
    assert_eq!(get(&mut c, 3, "k").siblings(), ["v", "w"]);
}

#[test]
fn dynamo_4_7_anti_entropy_sends_only_the_keys_that_differ() {
    let mut c = cluster::<Dvv>(3, |_| {});
    for i in 0..200 {
        put(
            &mut c,
            1 + i % 3,
            1,
            &format!("k{i}"),
            &format!("v{i}"),
            VersionVector::new(),
        );
    }
    c.run_for(ms(500));
    assert!(converged(&c));
    let before: Vec<SyncStats> = (1..=3).map(|i| c.node(i).sync_stats()).collect();
    // One write reaches only n1.
    c.isolate(1);
    put(&mut c, 1, 1, "k7", "changed", VersionVector::new());
    c.heal();
    c.run_for(ms(500));
    assert!(converged(&c));
    let sent: u64 = (1..=3)
        .map(|i| c.node(i).sync_stats().keys_sent - before[i as usize - 1].keys_sent)
        .sum();
    assert!(
        (1..=4).contains(&sent),
        "only k7 travels (to n2 and n3, maybe back): {sent}"
    );
    let keys: usize = c.node(2).states().count();
    assert_eq!(keys, 200);
}

#[test]
fn a_replica_recovers_its_store_from_the_journal_and_snapshot() {
    let mut c = cluster::<Dvv>(3, |cfg| cfg.snapshot_every = 7);
    for i in 0..30 {
        put(
            &mut c,
            1,
            1,
            &format!("k{}", i % 11),
            &format!("v{i}"),
            VersionVector::new(),
        );
    }
    let before: Vec<(String, Dvv)> = c
        .node(1)
        .states()
        .map(|(k, s)| (k.into(), s.clone()))
        .collect();
    c.crash(1);
    c.restart(1);
    let after: Vec<(String, Dvv)> = c
        .node(1)
        .states()
        .map(|(k, s)| (k.into(), s.clone()))
        .collect();
    assert_eq!(before, after);
    assert!(
        c.disk(1).recover().snapshot.is_some(),
        "a snapshot was taken"
    );
    assert!(c.disk(1).log_len() < 30, "the journal was compacted");
}

#[test]
fn corrupt_storage_halts_the_replica_with_the_reason() {
    let members = [n(1), n(2), n(3)];
    let mut node = VvNode::<Dvv>::new(VvConfig::lan(n(1), &members, 1));
    let mut rec = synod_core::Recovered::default();
    rec.log.insert(1, vec![0xff, 0xff, 0xff]);
    node.on_start(Time::ZERO, rec, &mut synod_core::Effects::new());
    let reason = node.halted().expect("halted");
    assert!(reason.contains("record 1"), "{reason}");
}

/// The chaos property: clients read a key and write it with the read's context while
/// messages are lost, duplicated and reordered, nodes crash and restart and links are
/// cut. Afterwards (faults over, anti-entropy run) every replica holds the same
/// state, and a write's value is live exactly when no write's context covered it: DVV
/// loses no acknowledged write and keeps no sibling a client had replaced.
#[test]
fn dvv_chaos_converges_and_replaces_exactly_what_contexts_covered() {
    let total_collected = Cell::new(0u64);
    for_seeds(0..200, |seed| {
        let mut c = cluster::<Dvv>(3, |cfg| cfg.snapshot_every = 16);
        let mut rng = Prng::new(seed);
        let faults = Faults {
            drop: 8,
            duplicate: 5,
            propose: 15,
            crash: 3,
            timer: 10,
            partition: 3,
        };
        // Contexts clients hold per key (learnt from the answers so far), and the
        // context of every write attempted. A fresh client makes each request, the
        // k-th writing "v{k}".
        let contexts = Rc::new(RefCell::new(BTreeMap::<String, VersionVector>::new()));
        let writes = Rc::new(RefCell::new(Vec::<(String, VersionVector)>::new()));
        let written = Rc::new(RefCell::new(std::collections::BTreeSet::<String>::new()));
        let (cx, wr, wv) = (contexts.clone(), writes.clone(), written.clone());
        let seen = Cell::new(0usize);
        let counter = Cell::new(0u64);
        let propose = move |c: &mut Cluster<VvNode<Dvv>>, rng: &mut Prng, id: u64| {
            for (_, r) in &c.replies[seen.get()..] {
                if let Outcome::Done(resp) = &r.outcome {
                    cx.borrow_mut()
                        .insert(resp.key().to_owned(), resp.context().clone());
                }
            }
            seen.set(c.replies.len());
            counter.set(counter.get() + 1);
            let key = format!("k{}", rng.below(3));
            let context = cx.borrow().get(&key).cloned().unwrap_or_default();
            let op = match rng.below(8) {
                0 | 1 => Request::Get { key },
                2 => {
                    wr.borrow_mut().push((key.clone(), context.clone()));
                    Request::Delete { key, context }
                }
                _ => {
                    wr.borrow_mut().push((key.clone(), context.clone()));
                    let value = format!("v{}", counter.get());
                    wv.borrow_mut().insert(value.clone());
                    Request::Put {
                        key,
                        value,
                        context,
                    }
                }
            };
            c.propose(id, op);
        };
        c.chaos(&mut rng, 1500, &faults, &propose);
        c.settle(ms(2000));
        assert!(
            converged(&c),
            "seed {seed}: replicas differ after anti-entropy"
        );
        let covered = |key: &str, replica: NodeId, counter: u64| {
            let writes = writes.borrow();
            writes
                .iter()
                .any(|(k, ctx)| k == key && ctx.get(replica) >= counter)
        };
        // No lost update: an acknowledged write (its event is the coordinator's
        // counter in the answer's context) is live unless a context covered it.
        let node = c.node(1);
        let mut acked = 0;
        for (from, r) in &c.replies {
            let Outcome::Done(Response::Written { key, context, .. }) = &r.outcome else {
                continue;
            };
            acked += 1;
            let value = format!("v{}", r.client.0 - 1000);
            if !written.borrow().contains(&value) {
                continue; // a delete
            }
            let live = node.state(key).map(|s| s.siblings()).unwrap_or_default();
            assert!(
                covered(key, *from, context.get(*from)) || live.contains(&value),
                "seed {seed}: acknowledged {value} on {key} lost: {live:?}"
            );
        }
        assert!(acked > 0, "seed {seed}: no write was acknowledged");
        let collected: u64 = (1..=3).map(|i| c.node(i).gc_stats().collected).sum();
        total_collected.set(total_collected.get() + collected);
        // No stale sibling: nothing live was covered by a context.
        for (key, state) in node.states() {
            for e in state.entries() {
                for (i, v) in e.values.iter().enumerate() {
                    let counter = e.counter - i as u64;
                    assert!(
                        !covered(key, e.replica, counter),
                        "seed {seed}: {key}: {v:?} ({}:{counter}) was replaced, still live",
                        e.replica
                    );
                }
            }
        }
    });
    assert!(
        total_collected.get() > 50,
        "tombstones collected: {}",
        total_collected.get()
    );
}

fn delete<C: Causality>(c: &mut Cluster<VvNode<C>>, at: u64, key: &str, context: C::Context) {
    let seq = c.replies.len() as u64 + 1;
    let req = Request::Delete {
        key: key.into(),
        context,
    };
    let t = c.request(at, ClientId(7), seq, req);
    c.deliver_all();
    assert!(
        matches!(c.outcome(t), Some(Outcome::Done(_))),
        "delete at n{at}"
    );
}

/// Dynamo's deleted-item resurrection, prevented: a tombstone is collected only once
/// every replica holds it, and a message sent before that — a delayed replication of
/// the value the delete replaced — is refused afterwards instead of bringing it back.
#[test]
fn a_collected_tombstone_stays_deleted_when_old_messages_arrive_after_a_partition() {
    let mut c = cluster::<Dvv>(3, |_| {});
    put(&mut c, 3, 3, "k", "v", VersionVector::new());
    // n3's replication of v to n1, as a delayed packet would deliver it again.
    let old = (c.delivered.iter())
        .find(|(from, to, m)| {
            (*from, *to) == (n(3), n(1)) && matches!(&m.body, Body::Replicate { .. })
        })
        .map(|(_, _, m)| m.clone())
        .expect("n3 replicated v to n1");
    c.run_for(ms(300));
    // The delete while n3 is cut off: nobody may collect it yet.
    c.isolate(3);
    let read = get(&mut c, 1, "k");
    delete(&mut c, 1, "k", read.context().clone());
    c.run_for(ms(500));
    for id in [1, 2] {
        assert!(
            c.node(id).state("k").is_some_and(|s| s.is_deleted()),
            "n{id} keeps the tombstone"
        );
    }
    assert!(c.node(3).state("k").unwrap().siblings() == ["v"]);
    // Healed: n3 learns the delete, everyone shows everyone the tombstone, all collect.
    c.heal();
    c.run_for(ms(1000));
    for id in 1..=3 {
        assert!(
            c.node(id).state("k").is_none(),
            "n{id} collected the tombstone"
        );
        assert_eq!(c.node(id).gc_stats().collected, 1);
    }
    // The delayed packet arrives: refused, the key stays deleted everywhere.
    c.send(3, 1, old);
    c.deliver_all();
    assert_eq!(c.node(1).gc_stats().refused, 1);
    c.run_for(ms(500));
    for id in 1..=3 {
        assert!(
            c.node(id).state("k").is_none(),
            "n{id}: the deleted value came back"
        );
    }
    // A crash does not forget what is refused.
    c.crash(1);
    c.restart(1);
    assert!(c.node(1).state("k").is_none());
    // A new write of the key lives on as usual.
    put(&mut c, 1, 1, "k", "w", VersionVector::new());
    c.run_for(ms(500));
    assert!(converged(&c));
    assert_eq!(get(&mut c, 2, "k").siblings(), ["w"]);
}

/// After collecting a tombstone a replica numbers its next event of the key above
/// the counter it dropped: a replica still holding the tombstone would otherwise take
/// the new write for one the delete replaced, and lose it.
#[test]
fn a_write_after_collection_is_numbered_above_what_was_collected() {
    let me = n(1);
    let mut tombstone = Dvv::default();
    for i in 0..5 {
        let ctx = tombstone.context();
        tombstone.write(&ctx, Some(format!("v{i}")), me, Time::ZERO);
    }
    let ctx = tombstone.context();
    tombstone.write(&ctx, None, me, Time::ZERO);
    let floor = tombstone.counter_of(me);
    let write_after = |floor: u64| {
        let mut s = Dvv::default();
        s.write_above(
            &VersionVector::new(),
            Some("new".into()),
            me,
            Time::ZERO,
            floor,
        );
        let mut lingering = tombstone.clone();
        lingering.merge(&s);
        lingering.siblings()
    };
    assert_eq!(write_after(floor), ["new"]);
    assert!(
        write_after(0).is_empty(),
        "numbered from zero it would be lost"
    );
}

/// Found by the 10,000-seed sweep (seed 6955): after every replica collected a
/// tombstone, another replica re-created the key with a client's old context, so the
/// state reaching the collector already had an entry for it — below its floor, and
/// with no live value. Numbered from that entry, its next write reused an event an
/// old context still covered, and a client holding that context replaced it unseen.
/// The floor applies to every write, not only to a key the replica holds nothing of.
#[test]
fn a_key_recreated_from_an_old_context_is_numbered_above_the_collected_counter() {
    let (a, b) = (n(1), n(2));
    // b collected the key when its own counter was 11: its floor.
    let floor = 11;
    let old_context = VersionVector::from_pairs([(a, 15), (b, floor)]);
    // a re-creates the key with a context from before the collection (b at 10).
    let mut state = Dvv::default();
    let stale = VersionVector::from_pairs([(b, 10)]);
    state.write(&stale, Some("from-a".into()), a, Time::ZERO);
    let write_at_b = |floor: u64| {
        let mut s = state.clone();
        s.write_above(
            &VersionVector::new(),
            Some("new".into()),
            b,
            Time::ZERO,
            floor,
        );
        // A client that still holds the old context writes over what it saw.
        s.write(&old_context, Some("w".into()), a, Time::ZERO);
        s.siblings()
    };
    assert!(
        write_at_b(floor).contains(&"new".to_string()),
        "kept: never seen"
    );
    assert!(
        !write_at_b(0).contains(&"new".to_string()),
        "the bug: replaced unseen"
    );
}

/// Found by review (2026-12-04): a read that gathered replies from before a delete,
/// and finished after the delete reached its coordinator, repaired the replicas that
/// answered "nothing" with the old value — and one that had collected the tombstone
/// took it (the repair was sent after its coordinator had shown the tombstone, so it
/// was not refused): the deleted value came back. The read now merges what its
/// coordinator holds when it finishes, sends no tombstone to a replica that holds
/// nothing, and repairs nothing once its key was collected.
#[test]
fn a_read_that_finishes_after_a_delete_arrived_repairs_with_the_tombstone() {
    let mut c = cluster::<Dvv>(3, |cfg| {
        cfg.r = 3;
        cfg.anti_entropy_every = std::time::Duration::from_secs(3600);
    });
    c.isolate(3);
    put(&mut c, 1, 1, "k", "v", VersionVector::new());
    c.heal();
    // A read at n1 waiting for all three: n3 (which never got v) answers "nothing",
    // and its answer is held on the wire.
    let t = c.request(1, ClientId(5), 1, Request::Get { key: "k".into() });
    let held = |from: NodeId, to: NodeId, m: &Message<Dvv>| {
        (from, to) == (n(3), n(1)) && matches!(m.body, Body::ReadReply { .. })
    };
    let deliver_but_held = |c: &mut Cluster<VvNode<Dvv>>| {
        while let Some(i) = (0..c.wire.len()).find(|&i| {
            let (f, to, m) = &c.wire[i];
            !held(*f, *to, m)
        }) {
            c.deliver_at(i);
        }
    };
    deliver_but_held(&mut c);
    assert_eq!(c.count_queued(held), 1);
    // v is deleted at n2; the tombstone reaches n1 and n3.
    let context = c.node(2).state("k").unwrap().context();
    let d = c.request(
        2,
        ClientId(7),
        1,
        Request::Delete {
            key: "k".into(),
            context,
        },
    );
    deliver_but_held(&mut c);
    assert!(matches!(c.outcome(d), Some(Outcome::Done(_))));
    assert!(c.node(1).state("k").unwrap().is_deleted());
    assert!(c.outcome(t).is_none(), "the read still waits for n3");
    // n3's answer arrives: the read ends with the tombstone, and repairs n3 with
    // nothing live.
    let i = c.queued(held).unwrap();
    c.deliver_at(i);
    c.deliver_all();
    assert_eq!(
        c.outcome(t)
            .map(|o| matches!(o, Outcome::Done(r) if r.siblings().is_empty())),
        Some(true)
    );
    let live_repairs = c.count(|_, _, m| match &m.body {
        Body::Repair { state, .. } => !state.siblings().is_empty(),
        _ => false,
    });
    assert_eq!(live_repairs, 0, "a repair carried the deleted value");
}

/// Dynamo §4.5: a read repairs exactly the replicas that answered with less than
/// the merge — none when all agree, the one that missed a write otherwise — and
/// sends no tombstone to a replica that holds nothing of the key (it may have
/// collected it).
#[test]
fn dynamo_4_5_read_repair_goes_only_to_the_replicas_that_answered_with_less() {
    let mut c = cluster::<Dvv>(3, |cfg| {
        cfg.r = 3;
        cfg.anti_entropy_every = std::time::Duration::from_secs(3600);
    });
    let repairs = |c: &Cluster<VvNode<Dvv>>| -> Vec<(NodeId, NodeId)> {
        (c.delivered.iter())
            .filter(|(_, _, m)| matches!(m.body, Body::Repair { .. }))
            .map(|(from, to, _)| (*from, *to))
            .collect()
    };
    let v1 = put(&mut c, 1, 1, "k", "v1", VersionVector::new());
    assert_eq!(get(&mut c, 2, "k").siblings(), ["v1"]);
    assert_eq!(repairs(&c), [], "every replica held v1");
    c.cut(1, 3);
    put(&mut c, 1, 1, "k", "v2", v1.context().clone());
    c.heal();
    assert_eq!(get(&mut c, 2, "k").siblings(), ["v2"]);
    assert_eq!(repairs(&c), [(n(2), n(3))], "only n3 missed v2");
    // A tombstone n3 never heard of: n3 answers nothing and is not sent it.
    c.isolate(3);
    let t = put(&mut c, 1, 1, "t", "x", VersionVector::new());
    delete(&mut c, 1, "t", t.context().clone());
    c.heal();
    assert!(c.node(3).state("t").is_none());
    assert_eq!(get(&mut c, 1, "t").siblings(), Vec::<String>::new());
    assert_eq!(repairs(&c).len(), 1, "no repair for t");
    assert!(c.node(3).state("t").is_none());
}

/// Dynamo §4.7: anti-entropy alone brings a key to a replica that never heard of
/// it (the key list names it on one side only, so only one of the two directions
/// carries anything), and sends that key's state only.
#[test]
fn dynamo_4_7_anti_entropy_brings_a_key_to_a_replica_that_never_heard_of_it() {
    let mut c = cluster::<Dvv>(3, |_| {});
    put(&mut c, 1, 1, "a", "1", VersionVector::new());
    c.run_for(ms(300));
    c.isolate(3);
    put(&mut c, 1, 1, "k", "v", VersionVector::new());
    assert!(c.node(3).state("k").is_none());
    let before: u64 = (1..=3).map(|i| c.node(i).sync_stats().keys_sent).sum();
    c.heal();
    c.run_for(ms(500));
    assert!(converged(&c), "n3 got k by anti-entropy");
    assert_eq!(c.node(3).state("k").unwrap().siblings(), ["v"]);
    let sent: u64 = (1..=3).map(|i| c.node(i).sync_stats().keys_sent).sum();
    assert!(
        (1..=2).contains(&(sent - before)),
        "only k travels, to n3 (from n1 or n2, maybe both): {}",
        sent - before
    );
}

/// Placement over five members (`N` = 3): after writes on both sides of a partition
/// and the heal, each key's three replicas hold the same state and no other member
/// holds it; and an idle, converged cluster sends one digest per round and nothing
/// else (every pair of replicas agrees on every bucket it shares).
#[test]
fn dynamo_4_7_five_members_converge_per_key_and_idle_rounds_send_only_digests() {
    let mut c = cluster::<Dvv>(5, |_| {});
    let cfg = c.node(1).config().clone();
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    c.partition(&[1, 2], &[3, 4, 5]);
    // Each key written at its first replica, and every other key also at its last:
    // each write reaches only the replicas on its side.
    for (i, key) in keys.iter().enumerate() {
        let replicas: Vec<NodeId> = cfg.replicas_of(key).collect();
        put(&mut c, replicas[0].0, 1, key, "first", VersionVector::new());
        if i % 2 == 0 {
            put(&mut c, replicas[2].0, 2, key, "last", VersionVector::new());
        }
    }
    c.heal();
    c.run_for(ms(1000));
    for (i, key) in keys.iter().enumerate() {
        let replicas: Vec<NodeId> = cfg.replicas_of(key).collect();
        let states: Vec<Option<&Dvv>> = replicas.iter().map(|r| c.node(r.0).state(key)).collect();
        assert!(states.windows(2).all(|w| w[0] == w[1]), "{key}: {states:?}");
        // Two writes with empty contexts are concurrent: both kept.
        let expected: &[&str] = if i % 2 == 0 {
            &["last", "first"]
        } else {
            &["first"]
        };
        let siblings = states[0].expect("held").siblings();
        assert_eq!(siblings.len(), expected.len(), "{key}: {siblings:?}");
        assert!(
            expected.iter().all(|v| siblings.contains(&v.to_string())),
            "{key}: {siblings:?}"
        );
        for id in (1..=5).filter(|id| !replicas.contains(&n(*id))) {
            assert!(c.node(id).state(key).is_none(), "n{id} holds {key}");
        }
    }
    let beyond_digests =
        |c: &Cluster<VvNode<Dvv>>| c.count(|_, _, m| !matches!(m.body, Body::Digest { .. }));
    let digests =
        |c: &Cluster<VvNode<Dvv>>| c.count(|_, _, m| matches!(m.body, Body::Digest { .. }));
    let (sent_before, digests_before) = (beyond_digests(&c), digests(&c));
    c.run_for(ms(500));
    assert_eq!(
        beyond_digests(&c),
        sent_before,
        "an idle round sent more than its digest"
    );
    // Rounds every 37.5 to 62.5 ms: at least eight in 500 ms per replica.
    assert!(
        digests(&c) - digests_before >= 5 * 8,
        "every replica ran its rounds"
    );
}
