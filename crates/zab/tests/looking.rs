//! A looking server's side of Fast Leader Election at the node level (ZooKeeper's
//! `FastLeaderElection.lookForLeader`): its notification timer, driven by hand.

mod by_hand;
use by_hand::*;
use std::collections::BTreeSet;
use synod_core::{Node, Recovered, Time, TimerOp};
use synod_testkit::{ms, n};
use synod_zab::{Message, ZabConfig, ZabNode, ZabTimer};

/// When `fx` arms `timer`.
fn armed(fx: &Fx, timer: ZabTimer) -> Option<Time> {
    fx.timers.iter().rev().find_map(|op| match op {
        TimerOp::Set { timer: t, at } if *t == timer => Some(*at),
        _ => None,
    })
}

/// A looking server resends its notification after `notification_min` plus a
/// jitter of up to half of it, drawn from its seeded PRNG (deterministic per seed,
/// different across servers): servers that started together must not resend in
/// lock-step, or their notifications keep crossing and elections take longer
/// (ZooKeeper randomises nothing here, but backs off; Synod does both).
#[test]
fn fle_notification_resends_are_jittered_by_up_to_half_the_interval() {
    let t0 = Time::ZERO + ms(1000);
    let mut seen = BTreeSet::new();
    for seed in 0..20 {
        let mut x = ZabNode::<synod_core::Kv>::new(ZabConfig::lan(n(1), (1..=3).map(n), seed));
        let mut fx = Fx::new();
        x.on_start(t0, Recovered::default(), &mut fx);
        let at = armed(&fx, ZabTimer::Notify).expect("a Notify timer");
        assert!(
            at >= t0 + ms(50) && at <= t0 + ms(75),
            "seed {seed}: {at:?} outside [50 ms, 75 ms]"
        );
        seen.insert(at);
    }
    assert!(
        seen.len() > 10,
        "jittered: {} distinct deadlines of 20",
        seen.len()
    );
}

/// While nothing is decided, the interval between resent notifications doubles
/// (ZooKeeper's `notTimeout` backoff) up to `notification_max` (800 ms), each with
/// its jitter: an ensemble that cannot decide (a partition, no quorum up) does not
/// flood the network, and one that can still hears from everyone soon.
#[test]
fn fle_resent_notifications_back_off_to_the_maximum_interval() {
    let mut x = ZabNode::<synod_core::Kv>::new(ZabConfig::lan(n(1), (1..=3).map(n), 7));
    let mut fx = Fx::new();
    x.on_start(Time::ZERO, Recovered::default(), &mut fx);
    let mut at = armed(&fx, ZabTimer::Notify).expect("a Notify timer");
    let mut intervals = Vec::new();
    for _ in 0..6 {
        let mut fx = Fx::new();
        x.on_timer(at, ZabTimer::Notify, &mut fx);
        assert!(
            fx.sends
                .iter()
                .any(|e| matches!(e.msg, Message::Notification(_))),
            "resent"
        );
        let next = armed(&fx, ZabTimer::Notify).expect("re-armed");
        intervals.push((next - at).as_millis());
        at = next;
    }
    // 100, 200, 400, 800, 800, 800 ms, each plus up to half of it.
    let base = [100, 200, 400, 800, 800, 800];
    for (got, base) in intervals.iter().zip(base) {
        assert!(
            *got >= base && *got <= base * 3 / 2,
            "{intervals:?} against {base} ms"
        );
    }
}
