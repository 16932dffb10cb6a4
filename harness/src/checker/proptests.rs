//! Property tests: generated linearisable histories pass; on thousands of
//! small random, corrupted and fault-planted histories the fast checker
//! agrees with the brute-force one in `brute.rs`, and the prefix a failure
//! report shows is a real linearisable prefix.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use proptest::prelude::*;

use super::brute;
use super::model::Step;
use super::partition::{part_ops, split};
use super::refute::{refute, Refutation};
use super::search::{search, Outcome, Stop};
use super::states::States;
use super::synth::{generate, Fault, Mix, Rng, SynthConfig};
use super::*;

fn fast(model: Model, events: &[Event]) -> Verdict {
    let h = History::from_events(events.to_vec()).expect("generated histories are well formed");
    check(&h, model, Options::default())
        .expect("generated histories fit the model")
        .verdict
}

/// Searches each partition directly and checks every violation's prefix:
/// each step legal from the initial state and ending in the reported state,
/// no op outside the prefix returned before a prefix op was invoked (so it
/// is a prefix of some real-time order), and a named outgrown get is an
/// unplaced ok get the state is really no prefix of. Returns whether some
/// partition failed.
fn explained_prefixes_are_linearizable(model: Model, events: &[Event]) -> bool {
    let h = History::from_events(events.to_vec()).expect("well formed");
    let failed = AtomicBool::new(false);
    let stop = Stop {
        deadline: None,
        failed: &failed,
        steps_max: None,
    };
    let mut any = false;
    for p in split(&h) {
        let init = model.initial_state();
        let (ops, prep) = part_ops(&h, &p, init);
        let mut states = States::new(&h.values, ops.iter().map(|o| o.step));
        let Outcome::Violation(best) = search(&ops, &prep, init, &mut states, &stop) else {
            continue;
        };
        any = true;
        let mut placed = vec![false; ops.len()];
        let mut state = init;
        for &i in &best.order {
            let op = ops[i as usize];
            state = states
                .apply(state, op.step)
                .unwrap_or_else(|| panic!("prefix step {i} illegal: {events:#?}"));
            let jumped =
                (0..ops.len()).find(|&j| !placed[j] && j != i as usize && ops[j].ret < op.call);
            assert_eq!(
                jumped, None,
                "op {i} placed after one that returned before it: {events:#?}"
            );
            placed[i as usize] = true;
        }
        assert_eq!(state, best.state, "{events:#?}");
        if let Some(g) = best.outgrown {
            let op = ops[g as usize];
            assert!(!placed[g as usize] && !op.is_info(), "{events:#?}");
            let Step::Read(v) = op.step else {
                panic!("outgrown op {g} is no read: {events:#?}")
            };
            assert!(!states.is_prefix(state, v), "{events:#?}");
        }
    }
    any
}

/// The refutations (`refute.rs`) of the history's partitions.
fn refutations(model: Model, events: &[Event]) -> Vec<Refutation> {
    let h = History::from_events(events.to_vec()).expect("well formed");
    let init = model.initial_state();
    split(&h)
        .iter()
        .filter_map(|p| {
            let (ops, prep) = part_ops(&h, p, init);
            refute(&ops, prep.track, init)
        })
        .collect()
}

/// Small histories of every source the refutations must be sound on:
/// random ones (info ops, failed ops, repeated values, cas from any
/// value), planted lost writes and stale reads, and corrupted reads.
fn any_small(source: usize, m: usize, seed: u64, ops: usize) -> (Model, Vec<Event>) {
    let model = Model::ALL[m];
    match source {
        0 => (model, random_events(model, seed, ops as u64)),
        1 => {
            let shape = [2, 1, 4][m];
            let cfg = planted(
                shape,
                1 + (seed % 2) as usize,
                2 + (seed % 4) as usize,
                ops,
                seed,
                (seed % 5) as usize,
                (seed % 150) as u32,
            );
            (cfg.model, generate(&cfg))
        }
        _ => {
            let mut events = generate(&synth(
                model,
                (seed % 3) as usize,
                1 + (seed % 4) as usize,
                ops,
                seed,
            ));
            corrupt(model, &mut events, seed >> 8, seed ^ 0xABCD);
            (model, events)
        }
    }
}

fn reference(model: Model, events: &[Event]) -> Verdict {
    if brute::linearizable(model, events) {
        Verdict::Linearizable
    } else {
        Verdict::NotLinearizable
    }
}

/// A small random value of the model's type.
fn small_value(model: Model, rng: &mut Rng) -> Value {
    match model {
        Model::Kv => Value::from(["", "a", "b", "ab", "ba"][rng.below(5) as usize]),
        _ if rng.below(6) == 0 => Value::Null,
        _ => Value::from(rng.below(3)),
    }
}

fn random_op(model: Model, rng: &mut Rng) -> (Op, Value) {
    let r = rng.below(10);
    // Written values are drawn from a wider set than read ones, so some
    // writes are never observed (exercising the invisible-write reduction).
    let pick = |rng: &mut Rng| match model {
        Model::Kv => Value::from(["a", "b", "c", "d"][rng.below(4) as usize]),
        _ => Value::from(rng.below(5)),
    };
    if model == Model::Kv {
        return match r {
            0..=3 => (Op::Get, Value::Null),
            4..=5 => (Op::Put, pick(rng)),
            6..=7 => (Op::Append, pick(rng)),
            8 => (Op::Delete, Value::Null),
            _ => (Op::Cas, Value::pair(small_value(model, rng), pick(rng))),
        };
    }
    match r {
        0..=4 => (Op::Read, Value::Null),
        8..=9 if model == Model::CasRegister => {
            (Op::Cas, Value::pair(small_value(model, rng), pick(rng)))
        }
        _ => (Op::Write, pick(rng)),
    }
}

/// Arbitrary (mostly non-linearisable) well-formed histories of at most
/// `max_ops` ops, with ok / fail / info / missing completions.
fn random_events(model: Model, seed: u64, max_ops: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let procs = 1 + rng.below(3);
    let keyed = model == Model::Kv || rng.below(3) == 0;
    let mut open: Vec<Option<Event>> = vec![None; procs as usize];
    let mut pid: Vec<u64> = (0..procs).collect();
    let (mut issued, mut events) = (0, Vec::new());
    let mut guess = HashMap::new();
    for _ in 0..(4 * max_ops) {
        let p = rng.below(procs) as usize;
        match open[p].take() {
            None if issued < max_ops => {
                issued += 1;
                let (f, value) = random_op(model, &mut rng);
                let mut ev = Event::new(pid[p], EventKind::Invoke, f, value);
                ev.key = keyed.then(|| Value::Str(format!("k{}", rng.below(2))));
                guess_apply(model, &mut guess, &ev);
                events.push(ev.clone());
                open[p] = Some(ev);
            }
            None => {}
            Some(inv) => {
                let (kind, r) = match rng.below(10) {
                    0..=6 => (EventKind::Ok, rng.below(2)),
                    7 => (EventKind::Fail, 0),
                    8 => (EventKind::Info, rng.below(2)),
                    _ => {
                        open[p] = Some(inv); // still in flight
                        continue;
                    }
                };
                let mut done = inv.clone();
                done.kind = kind;
                done.value = match (kind, inv.f.is_read()) {
                    // Reads often see a plausible value, so that both
                    // verdicts are common.
                    (EventKind::Ok, true) if rng.below(3) > 0 => guess_of(model, &guess, &inv.key),
                    (EventKind::Ok, true) => small_value(model, &mut rng),
                    (EventKind::Ok, false) if r == 0 => Value::Null,
                    (EventKind::Ok, false) => inv.value,
                    _ => Value::Null,
                };
                events.push(done);
                if kind == EventKind::Info && r == 1 {
                    pid[p] += procs; // Jepsen's fresh process after a crash
                }
            }
        }
    }
    events
}

/// The value a key would have if ops took effect at their invokes.
fn guess_of(model: Model, guess: &HashMap<Option<Value>, Value>, key: &Option<Value>) -> Value {
    let init = if model == Model::Kv {
        Value::from("")
    } else {
        Value::Null
    };
    guess.get(key).cloned().unwrap_or(init)
}

fn guess_apply(model: Model, guess: &mut HashMap<Option<Value>, Value>, ev: &Event) {
    let cur = guess_of(model, guess, &ev.key);
    let next = match (ev.f, &ev.value, cur) {
        (Op::Write | Op::Put, v, _) => v.clone(),
        (Op::Delete, _, _) => Value::from(""),
        (Op::Append, Value::Str(b), Value::Str(a)) => Value::Str(a + b),
        (Op::Cas, Value::Pair(p), cur) if p.0 == cur => p.1.clone(),
        _ => return,
    };
    guess.insert(ev.key.clone(), next);
}

/// Replaces the value of the `pick`-th ok read (if any) with another one.
fn corrupt(model: Model, events: &mut [Event], pick: u64, seed: u64) -> bool {
    let reads: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].kind == EventKind::Ok && events[i].f.is_read())
        .collect();
    if reads.is_empty() {
        return false;
    }
    let i = reads[(pick % reads.len() as u64) as usize];
    let mut rng = Rng::new(seed);
    let old = events[i].value.clone();
    while events[i].value == old {
        events[i].value = match model {
            Model::Kv => Value::Str(format!("v{}", rng.below(4))),
            _ => Value::from(rng.below(4)),
        };
    }
    true
}

/// Shape `shape` of `planted_faults_agree_with_brute_force`, small.
fn planted(
    shape: usize,
    keys: usize,
    clients: usize,
    ops: usize,
    seed: u64,
    after: usize,
    info: u32,
) -> SynthConfig {
    let (model, mix, fault) = match shape {
        0 => (Model::Kv, Mix::AppendHeavy, Fault::StaleRead { after }),
        1 => (
            Model::CasRegister,
            Mix::Standard,
            Fault::LostWrite { after },
        ),
        2 => (Model::Register, Mix::Standard, Fault::LostWrite { after }),
        3 => (Model::Kv, Mix::AppendPut, Fault::StaleRead { after }),
        _ => (Model::Kv, Mix::Standard, Fault::StaleRead { after }),
    };
    let mut cfg = SynthConfig::new(model, keys, clients, ops, seed);
    cfg.mix = mix;
    cfg.fault = fault;
    cfg.max_latency = 20;
    cfg.info_per_mille = info;
    cfg
}

fn synth(model: Model, keys: usize, clients: usize, ops: usize, seed: u64) -> SynthConfig {
    let mut cfg = SynthConfig::new(model, keys, clients, ops, seed);
    cfg.values = Some(3);
    cfg.max_latency = 20;
    cfg.info_per_mille = 100;
    cfg.fail_per_mille = 100;
    cfg
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn generated_histories_are_linearizable(
        m in 0usize..3, keys in 0usize..4, clients in 1usize..10, ops in 0usize..300,
        seed in any::<u64>(), info in 0u32..100, fail in 0u32..100, domain in 2u32..6,
    ) {
        let model = Model::ALL[m];
        let mut cfg = synth(model, keys, clients, ops, seed);
        cfg.info_per_mille = info;
        cfg.fail_per_mille = fail;
        cfg.values = Some(domain);
        let events = generate(&cfg);
        let h = History::from_events(events).expect("well formed");
        // The timeout only turns a pathologically slow case into a visible
        // failure (Unknown) instead of a hung test run.
        let opts = Options { timeout: Some(std::time::Duration::from_secs(30)), ..Options::default() };
        let r = check(&h, model, opts).expect("fits the model");
        prop_assert_eq!(r.verdict, Verdict::Linearizable, "{:?}", cfg);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn fast_agrees_with_brute_force_on_random_histories(m in 0usize..3, seed in any::<u64>(), max_ops in 1u64..8) {
        let model = Model::ALL[m];
        let events = random_events(model, seed, max_ops);
        let want = reference(model, &events);
        prop_assert_eq!(fast(model, &events), want, "{:#?}", events);
        prop_assert_eq!(explained_prefixes_are_linearizable(model, &events), want == Verdict::NotLinearizable);
    }

    /// Small instances of the bench's not-linearisable shapes: append-heavy
    /// kv (with and without puts) with a stale read, registers with a lost
    /// write, and the standard kv mix with a stale read.
    #[test]
    fn planted_faults_agree_with_brute_force(
        shape in 0usize..5, keys in 1usize..3, clients in 2usize..6, ops in 2usize..9,
        seed in any::<u64>(), after in 0usize..6, info in 0u32..150,
    ) {
        let cfg = planted(shape, keys, clients, ops, seed, after, info);
        let events = generate(&cfg);
        let want = reference(cfg.model, &events);
        prop_assert_eq!(fast(cfg.model, &events), want, "{:?} {:#?}", cfg, events);
        prop_assert_eq!(explained_prefixes_are_linearizable(cfg.model, &events), want == Verdict::NotLinearizable);
        // A stale read with unique values is a violation by construction.
        let mut clean = cfg.clone();
        clean.fault = Fault::None;
        if matches!(cfg.fault, Fault::StaleRead { .. }) && events != generate(&clean) {
            prop_assert_eq!(want, Verdict::NotLinearizable, "{:?} {:#?}", cfg, events);
        }
    }

    /// A refutation is a proof: it never refutes a linearisable history.
    #[test]
    fn refutations_are_sound(source in 0usize..3, m in 0usize..3, seed in any::<u64>(), ops in 1usize..9) {
        let (model, events) = any_small(source, m, seed, ops);
        let found = refutations(model, &events);
        if !found.is_empty() {
            prop_assert_eq!(reference(model, &events), Verdict::NotLinearizable, "{:?} {:#?}", found, events);
        }
    }

    /// Appends with puts, crashes and a corrupted get: the growth cut's
    /// leading resets and the unobservable-string memo against brute force.
    #[test]
    fn append_put_histories_agree_with_brute_force(
        keys in 1usize..3, clients in 2usize..5, ops in 2usize..11,
        seed in any::<u64>(), info in 0u32..200, pick in any::<u64>(),
    ) {
        let mut cfg = SynthConfig::new(Model::Kv, keys, clients, ops, seed);
        cfg.mix = Mix::AppendPut;
        cfg.max_latency = 20;
        cfg.info_per_mille = info;
        let mut events = generate(&cfg);
        if pick % 2 == 0 {
            corrupt(Model::Kv, &mut events, pick >> 1, seed);
        }
        prop_assert_eq!(fast(Model::Kv, &events), reference(Model::Kv, &events), "{:#?}", events);
    }

    #[test]
    fn corrupted_reads_detected_unless_explainable(
        m in 0usize..3, keys in 0usize..3, clients in 1usize..5, ops in 1usize..9,
        seed in any::<u64>(), pick in any::<u64>(),
    ) {
        let model = Model::ALL[m];
        let mut events = generate(&synth(model, keys, clients, ops, seed));
        prop_assert_eq!(reference(model, &events), Verdict::Linearizable);
        if corrupt(model, &mut events, pick, seed ^ 0xABCD) {
            prop_assert_eq!(fast(model, &events), reference(model, &events), "{:#?}", events);
        }
    }
}

/// The planted-fault generators are not vacuous: faults get planted and
/// most planted ones are caught, for every shape.
#[test]
fn planted_faults_are_mostly_violations() {
    for shape in 0..5 {
        let (mut planted_n, mut caught) = (0, 0);
        for seed in 0..300u64 {
            let cfg = planted(shape, 1 + (seed % 2) as usize, 3, 10, seed, 2, 0);
            let events = generate(&cfg);
            let mut clean = cfg.clone();
            clean.fault = Fault::None;
            if events != generate(&clean) {
                planted_n += 1;
                caught += usize::from(reference(cfg.model, &events) == Verdict::NotLinearizable);
            }
        }
        eprintln!("shape {shape}: {caught}/{planted_n} planted faults are violations");
        assert!(
            planted_n >= 100,
            "shape {shape}: only {planted_n}/300 planted"
        );
        // Stale reads are always violations (and asserted so above); a lost
        // write is only when something reads around it.
        assert!(
            caught * 4 >= planted_n,
            "shape {shape}: {caught}/{planted_n} caught"
        );
    }
}

/// At the bench's scale (50+ clients, about 2,000 ops), every planted fault
/// is found and its linearisable twin passes, well inside a generous
/// timeout (the append-heavy one used to exhaust it).
#[test]
fn planted_faults_at_scale_are_found() {
    let opts = Options {
        timeout: Some(std::time::Duration::from_secs(20)),
        ..Options::default()
    };
    for (model, keys, clients, mix, fault) in [
        (
            Model::Kv,
            10,
            50,
            Mix::AppendHeavy,
            Fault::StaleRead { after: 1000 },
        ),
        (
            Model::Kv,
            1,
            50,
            Mix::AppendHeavy,
            Fault::StaleRead { after: 1000 },
        ),
        (
            Model::Kv,
            10,
            50,
            Mix::AppendPut,
            Fault::StaleRead { after: 1000 },
        ),
        (
            Model::Kv,
            10,
            100,
            Mix::AppendPut,
            Fault::StaleRead { after: 1000 },
        ),
        (
            Model::Kv,
            10,
            50,
            Mix::Standard,
            Fault::StaleRead { after: 1000 },
        ),
        (
            Model::CasRegister,
            0,
            100,
            Mix::Standard,
            Fault::LostWrite { after: 1000 },
        ),
    ] {
        for seed in 1..4 {
            let mut cfg = SynthConfig::new(model, keys, clients, 2_000, seed);
            cfg.mix = mix;
            let twin = History::from_events(generate(&cfg)).expect("well formed");
            let r = check(&twin, model, opts).expect("fits");
            assert_eq!(r.verdict, Verdict::Linearizable, "{cfg:?}");
            cfg.fault = fault;
            let bad = History::from_events(generate(&cfg)).expect("well formed");
            let r = check(&bad, model, opts).expect("fits");
            if matches!(fault, Fault::LostWrite { .. }) {
                // Not always observable; never Unknown.
                assert_ne!(r.verdict, Verdict::Unknown, "{cfg:?}");
            } else {
                assert_eq!(r.verdict, Verdict::NotLinearizable, "{cfg:?}");
                assert!(r.failure.is_some(), "{cfg:?}");
            }
        }
    }
}

#[test]
fn zero_timeout_is_unknown_never_wrong() {
    for seed in 0..200 {
        let model = Model::ALL[(seed % 3) as usize];
        let events = random_events(model, seed, 6);
        let h = History::from_events(events.clone()).expect("well formed");
        let opts = Options {
            timeout: Some(std::time::Duration::ZERO),
            ..Options::default()
        };
        let got = check(&h, model, opts).expect("fits").verdict;
        assert!(
            got == Verdict::Unknown || got == reference(model, &events),
            "seed {seed}"
        );
    }
}

/// `refutations_are_sound` is not vacuous: both kinds of refutation occur,
/// and they decide a fair share of the violations without a search.
#[test]
fn refutations_decide_many_violations() {
    let (mut violations, mut refuted) = (0, 0);
    let (mut overwritten, mut overdrawn) = (0, 0);
    for source in 0..3 {
        for m in 0..3 {
            for seed in 0..400u64 {
                let (model, events) = any_small(source, m, seed, 8);
                let found = refutations(model, &events);
                if reference(model, &events) == Verdict::NotLinearizable {
                    violations += 1;
                    refuted += usize::from(!found.is_empty());
                }
                for r in &found {
                    match r {
                        Refutation::Overwritten { .. } => overwritten += 1,
                        Refutation::Overdrawn { .. } => overdrawn += 1,
                    }
                }
            }
        }
    }
    eprintln!("refuted {refuted}/{violations} violations; overwritten {overwritten}, overdrawn {overdrawn}");
    assert!(refuted * 4 >= violations, "{refuted}/{violations}");
    assert!(
        overwritten >= 50 && overdrawn >= 20,
        "{overwritten} {overdrawn}"
    );
}

/// Guards the tests above against vacuity: the random histories must
/// produce both verdicts in fair numbers, and corruption must often be
/// detected.
#[test]
fn generators_produce_both_verdicts() {
    for model in Model::ALL {
        let (mut random_not, mut corrupted_not, mut corrupted) = (0, 0, 0);
        for seed in 0..600u64 {
            let events = random_events(model, seed, 7);
            random_not += usize::from(reference(model, &events) == Verdict::NotLinearizable);
            let mut events = generate(&synth(model, 2, 3, 8, seed));
            if corrupt(model, &mut events, seed, seed) {
                corrupted += 1;
                corrupted_not += usize::from(reference(model, &events) == Verdict::NotLinearizable);
            }
        }
        assert!(
            (60..540).contains(&random_not),
            "{model}: {random_not}/600 random histories fail"
        );
        assert!(
            corrupted_not * 4 > corrupted,
            "{model}: {corrupted_not}/{corrupted} corruptions caught"
        );
        eprintln!("{model}: random {random_not}/600 not linearizable; corrupted {corrupted_not}/{corrupted}");
    }
}
