//! The ways a check ends before exhausting a search: refutations decide a
//! verdict without one (`refute.rs`), the explanation search of a refuted
//! key stops at its step budget, and a failing key cancels the others.
//! Each test asserts on what the checker returns, never on wall time; the
//! deadlines only turn a regression into a failure instead of a hang.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::model::Step;
use super::partition::{part_ops, run_all, split, PartResult, RunConfig};
use super::refute::{refute, Refutation};
use super::search::{search, Outcome, Stop, StopReason};
use super::states::States;
use super::synth::{generate, Mix, SynthConfig};
use super::*;

fn ev(p: u64, kind: EventKind, f: Op, v: impl Into<Value>) -> Event {
    Event::new(p, kind, f, v)
}

fn cas(from: u64, to: u64) -> Value {
    Value::pair(Value::from(from), Value::from(to))
}

fn keyed(mut e: Event, key: &str) -> Event {
    e.key = Some(Value::from(key));
    e
}

/// `n` writes of distinct values and `n` reads, one of each value, all
/// concurrent; then a write of `n` alone; then a read sees value 0 again.
/// Not linearisable (write `n` overwrote every 0 before the last read), and
/// a search must try the concurrent writes in about `n 2^(n-2)` orders
/// (subset placed, last value) before it can tell.
fn concurrent_writes_then_stale_read(n: u64) -> Vec<Event> {
    use EventKind::{Invoke, Ok};
    let mut h = Vec::new();
    for p in 0..n {
        h.push(ev(p, Invoke, Op::Write, p));
        h.push(ev(n + p, Invoke, Op::Read, Value::Null));
    }
    for p in 0..n {
        h.push(ev(p, Ok, Op::Write, p));
        h.push(ev(n + p, Ok, Op::Read, p));
    }
    h.push(ev(0, Invoke, Op::Write, n));
    h.push(ev(0, Ok, Op::Write, n));
    h.push(ev(1, Invoke, Op::Read, Value::Null));
    h.push(ev(1, Ok, Op::Read, 0u64));
    h
}

#[test]
fn stale_read_is_refuted_as_overwritten_without_a_search() {
    let h = History::from_events(concurrent_writes_then_stale_read(3)).expect("well formed");
    let init = Model::Register.initial_state();
    let parts = split(&h);
    let (ops, prep) = part_ops(&h, &parts[0], init);
    let Some(Refutation::Overwritten { producers, .. }) = refute(&ops, prep.track, init) else {
        panic!("a read of 0 after write 3 returned is refuted");
    };
    // The only producer of 0 is overwritten by the write of 3.
    assert_eq!(producers.len(), 1);
    let r = check(&h, Model::Register, Options::default()).expect("fits");
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    let f = r.failure.clone().expect("failure");
    assert!(matches!(f.cause, Some(Cause::Overwritten { .. })), "{f:?}");
    assert!(
        r.explain().contains("is overwritten before"),
        "{}",
        r.explain()
    );
}

#[test]
fn read_after_a_lost_cas_is_refuted_though_the_write_before_it_overlaps() {
    use EventKind::{Invoke, Ok};
    // The cas needs the write's 1, so it comes after it, but they overlap:
    // only the cas being the sole consumer of 1's sole source refutes this.
    let h = vec![
        ev(0, Invoke, Op::Write, 1u64),
        ev(1, Invoke, Op::Cas, cas(1, 2)),
        ev(1, Ok, Op::Cas, cas(1, 2)),
        ev(2, Invoke, Op::Read, Value::Null),
        ev(2, Ok, Op::Read, 1u64),
        ev(0, Ok, Op::Write, 1u64),
    ];
    let h = History::from_events(h).expect("well formed");
    let init = Model::CasRegister.initial_state();
    let (ops, prep) = part_ops(&h, &split(&h)[0], init);
    let Some(Refutation::Overwritten { producers, .. }) = refute(&ops, prep.track, init) else {
        panic!("the read of 1 after the cas from 1 returned is refuted");
    };
    assert_eq!(producers.len(), 1);
    let by = producers[0].1.expect("an op comes between");
    assert!(
        matches!(ops[by as usize].step, Step::Cas(..)),
        "the cas comes between"
    );
}

#[test]
fn two_cas_from_one_write_are_refuted_as_overdrawn() {
    use EventKind::{Invoke, Ok};
    let h = vec![
        ev(0, Invoke, Op::Write, 1u64),
        ev(0, Ok, Op::Write, 1u64),
        ev(1, Invoke, Op::Cas, cas(1, 2)),
        ev(2, Invoke, Op::Cas, cas(1, 3)),
        ev(1, Ok, Op::Cas, cas(1, 2)),
        ev(2, Ok, Op::Cas, cas(1, 3)),
    ];
    let r = check(
        &History::from_events(h).expect("well formed"),
        Model::CasRegister,
        Options::default(),
    )
    .expect("fits");
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    let f = r.failure.expect("failure");
    let Some(Cause::Overdrawn {
        consumers_total,
        producers_total,
        initial,
        ..
    }) = f.cause
    else {
        panic!("two consumers of one production: {:?}", f.cause);
    };
    assert_eq!((consumers_total, producers_total, initial), (2, 1, false));
}

#[test]
fn explanation_search_of_a_refuted_key_stops_at_its_budget() {
    let h = History::from_events(concurrent_writes_then_stale_read(22)).expect("well formed");
    let init = Model::Register.initial_state();
    let (ops, prep) = part_ops(&h, &split(&h)[0], init);
    assert!(refute(&ops, prep.track, init).is_some());
    let failed = AtomicBool::new(false);
    let stop = Stop {
        // 22 · 2^21 configurations would take far longer than this.
        deadline: Some(Instant::now() + Duration::from_secs(20)),
        failed: &failed,
        steps_max: Some(1 << 14),
    };
    let mut states = States::new(&h.values, ops.iter().map(|o| o.step));
    let Outcome::Unknown(why, best) = search(&ops, &prep, init, &mut states, &stop) else {
        panic!("the search cannot finish in 2^14 steps");
    };
    assert_eq!(why, StopReason::Budget);
    assert!(!best.order.is_empty(), "the deepest prefix so far is kept");
    // Through `check`, the budget comes from the key's size and the report
    // still has the refutation and a prefix.
    let r = check(&h, Model::Register, Options::default()).expect("fits");
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    let f = r.failure.expect("failure");
    assert!(matches!(f.cause, Some(Cause::Overwritten { .. })), "{f:?}");
    assert!(f.linearized > 0);
}

/// Key "k0": a linearisable append-heavy history with puts on one key, 50
/// clients at once, 2,000 ops (synth seed 1) — one this checker does not
/// finish within seconds (every client meets every other, and a put can
/// always run before a get, so the growth cut rarely applies). If it ever
/// becomes fast, the test below says so and needs a slower key.
fn slow_key() -> Vec<Event> {
    let mut cfg = SynthConfig::new(Model::Kv, 1, 50, 2_000, 1);
    cfg.mix = Mix::AppendPut;
    generate(&cfg)
}

#[test]
fn a_failing_key_cancels_a_larger_key_still_searching() {
    use EventKind::{Invoke, Ok};
    let mut events = slow_key();
    // Key "small": a get that misses a put that returned before it.
    events.extend([
        keyed(ev(1000, Invoke, Op::Put, "a"), "small"),
        keyed(ev(1000, Ok, Op::Put, "a"), "small"),
        keyed(ev(1000, Invoke, Op::Get, Value::Null), "small"),
        keyed(ev(1000, Ok, Op::Get, ""), "small"),
    ]);
    let h = History::from_events(events).expect("well formed");
    let parts = split(&h);
    assert_eq!(parts.len(), 2, "big is ranked first");
    // With two workers the big key is taken first and the small one beside
    // it; the deadline only guards against a cancellation that never comes.
    let cfg = RunConfig {
        threads: 2,
        deadline: Some(Instant::now() + Duration::from_secs(5)),
    };
    let results = run_all(&h, Model::Kv, &parts, &cfg);
    assert!(matches!(results[1], PartResult::Failed(_)));
    assert!(
        matches!(results[0], PartResult::Unknown(StopReason::Cancelled)),
        "the big key was not cancelled"
    );
    // Alone, the big key is linearisable (by construction) and slow: it
    // has not finished within a short deadline.
    let alone = History::from_events(slow_key()).expect("well formed");
    let opts = Options {
        timeout: Some(Duration::from_millis(200)),
        ..Options::default()
    };
    let r = check(&alone, Model::Kv, opts).expect("fits");
    assert_eq!(r.verdict, Verdict::Unknown, "the big key is no longer slow");
}

/// `n` concurrent appends, then a delete invoked while they run, then a
/// get reading the appends in the reverse of their call order; the delete
/// returns last. Linearisable (the delete, then the appends in reverse),
/// but a search that places appends first meets every order of every
/// subset of them before the delete: each a new string, and since the
/// delete sets "", a prefix of everything, the growth cut never applies.
fn appends_a_delete_overwrites(n: u64) -> Vec<Event> {
    use EventKind::{Invoke, Ok};
    let token = |p: u64| Value::Str(format!("{p},"));
    let mut h = Vec::new();
    for p in 0..n {
        h.push(keyed(ev(p, Invoke, Op::Append, token(p)), "k"));
    }
    h.push(keyed(ev(n, Invoke, Op::Delete, Value::Null), "k"));
    for p in 0..n {
        h.push(keyed(ev(p, Ok, Op::Append, token(p)), "k"));
    }
    let read: String = (0..n).rev().map(|p| format!("{p},")).collect();
    h.push(keyed(ev(0, Invoke, Op::Get, Value::Null), "k"));
    h.push(keyed(ev(0, Ok, Op::Get, read), "k"));
    h.push(keyed(ev(n, Ok, Op::Delete, Value::Null), "k"));
    h
}

#[test]
fn orders_of_appends_no_get_can_read_count_once() {
    // Before the delete, every string that is no prefix of the get's value
    // is unobservable (only the get can read before the delete returns), so
    // the search sees about 2^14 configurations there, not 14! orders.
    let h = History::from_events(appends_a_delete_overwrites(14)).expect("well formed");
    let opts = Options {
        timeout: Some(Duration::from_secs(20)),
        ..Options::default()
    };
    let r = check(&h, Model::Kv, opts).expect("fits");
    assert_eq!(r.verdict, Verdict::Linearizable);
}
