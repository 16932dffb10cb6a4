//! Random, type-correct message sequences to every registry protocol's nodes: never
//! a panic, a halt or a broken invariant (issue 20's node fuzzing, bounded for CI).
//! Each script of `synod_harness::sequence` reorders, loses, duplicates and
//! replays real messages, fires timers out of order, crashes and restarts nodes and
//! retries clients' requests at other nodes; proptest shrinks a failing one to the
//! few steps that break the rule, and the failure names the protocol.
//!
//! The runner is seeded, so CI runs the same scripts every time. A longer run with
//! fresh scripts: `PROPTEST_CASES=5000 FUZZ_SEED=$RANDOM cargo test --release -p
//! synod-harness --test fuzz_nodes`.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use synod_core::{Node, NodeEffects, NodeId, Recovered, Time};
use synod_harness::adapters::raft::Raft;
use synod_harness::protocol::{Invariant, SimProtocol};
use synod_harness::registry;
use synod_harness::sequence::{self, Reached, Setup, Step};
use synod_harness::workload::WorkloadConfig;

/// 256 scripts per protocol in CI; `PROPTEST_CASES` asks for more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn runner() -> TestRunner {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

/// Mostly deliveries and timers, so scripts get through elections and commits; the
/// faults are rarer, as in a real network.
fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => any::<usize>().prop_map(Step::Deliver),
        6 => (1u8..16).prop_map(Step::DeliverFront),
        1 => any::<usize>().prop_map(Step::Drop),
        1 => any::<usize>().prop_map(Step::Duplicate),
        1 => (0usize..64).prop_map(Step::Replay),
        4 => any::<usize>().prop_map(Step::Fire),
        3 => (0u16..600).prop_map(Step::Tick),
        2 => (0u16..1000).prop_map(Step::Settle),
        1 => any::<u8>().prop_map(Step::CrashOrRestart),
        4 => (any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(node, client, retry)| Step::Request { node, client, retry }),
    ]
}

fn script() -> impl Strategy<Value = (Setup, Vec<Step>)> {
    let setup = (3usize..=5, any::<u64>()).prop_map(|(nodes, seed)| Setup { nodes, seed });
    (setup, prop::collection::vec(step(), 1..600))
}

/// Runs `cases()` scripts through `run`: what they reached, added up, or the shrunk
/// failure.
fn fuzz(run: fn(Setup, &[Step]) -> Result<Reached, String>) -> Result<Reached, String> {
    let total = std::cell::Cell::new(Reached::default());
    let outcome = runner().run(&script(), |(setup, steps)| {
        let r = run(setup, &steps).map_err(TestCaseError::fail)?;
        let t = total.get();
        total.set(Reached {
            delivered: t.delivered + r.delivered,
            done: t.done + r.done,
            crashes: t.crashes + r.crashes,
        });
        Ok(())
    });
    match outcome {
        Ok(()) => Ok(total.get()),
        Err(TestError::Fail(why, (setup, steps))) => Err(format!(
            "{why}\n  minimal script: {setup:?}, {} steps: {steps:?}",
            steps.len()
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn every_protocols_nodes_keep_their_invariants_under_random_message_sequences() {
    let mut failed = Vec::new();
    for p in registry::listed() {
        match fuzz(p.sequence) {
            Ok(reached) => {
                println!("{}: {} scripts reached {reached:?}", p.name, cases());
                // The scripts get somewhere: commits answered, crashes taken.
                if reached.done == 0 || reached.crashes == 0 {
                    failed.push(format!("{}: the scripts reached only {reached:?}", p.name));
                }
            }
            Err(e) => failed.push(format!("{}: {e}", p.name)),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

// ----- the fuzz can fail --------------------------------------------------------------

/// Raft whose nodes forget their disk at every restart (term, vote and log): a
/// restarted node votes again in a term it voted in, so two leaders of one term
/// (election safety, §5.2) — the scripts must catch it.
struct AmnesiacRaft;

struct Amnesiac(<Raft as SimProtocol>::Node);

impl Node for Amnesiac {
    type Message = <<Raft as SimProtocol>::Node as Node>::Message;
    type Timer = <<Raft as SimProtocol>::Node as Node>::Timer;
    type Request = <<Raft as SimProtocol>::Node as Node>::Request;
    type Response = <<Raft as SimProtocol>::Node as Node>::Response;
    fn id(&self) -> NodeId {
        self.0.id()
    }
    fn on_start(&mut self, now: Time, _: Recovered, out: &mut NodeEffects<Self>) {
        self.0.on_start(now, Recovered::default(), out);
    }
    fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        m: Self::Message,
        out: &mut NodeEffects<Self>,
    ) {
        self.0.on_message(now, from, m, out);
    }
    fn on_timer(&mut self, now: Time, t: Self::Timer, out: &mut NodeEffects<Self>) {
        self.0.on_timer(now, t, out);
    }
    fn on_client_request(
        &mut self,
        now: Time,
        r: synod_core::ClientRequest<Self::Request>,
        out: &mut NodeEffects<Self>,
    ) {
        self.0.on_client_request(now, r, out);
    }
    fn on_persisted(&mut self, now: Time, tag: u64, out: &mut NodeEffects<Self>) {
        self.0.on_persisted(now, tag, out);
    }
    fn halted(&self) -> Option<&str> {
        self.0.halted()
    }
}

impl SimProtocol for AmnesiacRaft {
    type Node = Amnesiac;
    type Session = ();
    const RECOVERY: std::time::Duration = Raft::RECOVERY;
    fn build(id: NodeId, members: &[NodeId], seed: u64) -> Amnesiac {
        Amnesiac(Raft::build(id, members, seed))
    }
    fn request(op: synod_core::KvOp) -> <Amnesiac as Node>::Request {
        Raft::request(op)
    }
    fn result(r: &<Amnesiac as Node>::Response) -> synod_core::KvResult {
        Raft::result(r)
    }
    fn fit_workload(w: &mut WorkloadConfig) -> Result<(), String> {
        Raft::fit_workload(w)
    }
    fn invariants(members: &[NodeId]) -> Vec<Box<dyn Invariant<Amnesiac>>> {
        Raft::invariants(members)
            .into_iter()
            .map(|i| Box::new(Inner(i)) as _)
            .collect()
    }
}

/// Raft's invariant, looking at the wrapped node.
#[derive(Debug)]
struct Inner(Box<dyn Invariant<<Raft as SimProtocol>::Node>>);

impl Invariant<Amnesiac> for Inner {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn after_step(&mut self, now: Time, id: NodeId, node: &Amnesiac) -> Result<(), String> {
        self.0.after_step(now, id, &node.0)
    }
    fn on_crash(&mut self, id: NodeId) {
        self.0.on_crash(id)
    }
}

#[test]
fn raft_5_2_scripts_catch_a_node_that_forgets_its_vote_on_restart() {
    let found = fuzz(sequence::run::<AmnesiacRaft>).expect_err("an amnesiac Raft went unnoticed");
    println!("{found}");
    assert!(
        found.contains("election-safety") || found.contains("committed"),
        "{found}"
    );
}

// ----- what the scripts found, each kept as it shrank --------------------------------

/// A server whose acceptedEpoch is past the established leader's (it accepted a
/// NEWEPOCH of a prospective leader that never established, then restarted) joined
/// that leader, was refused (DSN 2011 §IV-A), looked, heard the ensemble's
/// notifications and joined again: messages in a loop with no timer in it, until
/// `deliver_all` gave up after 100,000 deliveries. Fixed by `Election::refuse`.
#[test]
fn zab_4_a_server_past_the_leaders_epoch_does_not_rejoin_it_in_a_loop() {
    use Step::*;
    let steps = vec![
        CrashOrRestart(17),
        CrashOrRestart(67),
        CrashOrRestart(17),
        CrashOrRestart(16),
        CrashOrRestart(20),
        CrashOrRestart(65),
        CrashOrRestart(54),
        CrashOrRestart(91),
        CrashOrRestart(54),
        CrashOrRestart(190),
        CrashOrRestart(39),
        CrashOrRestart(100),
        CrashOrRestart(169),
        CrashOrRestart(2),
        CrashOrRestart(137),
        CrashOrRestart(32),
        Deliver(0),
        Deliver(0),
        CrashOrRestart(140),
        Tick(425),
        Fire(9217945784388016320),
        Deliver(725584997974311155),
        CrashOrRestart(28),
        Deliver(0),
        Deliver(0),
        Replay(0),
        Fire(0),
        DeliverFront(8),
        CrashOrRestart(141),
        Deliver(0),
        Fire(6273265093625145171),
        Deliver(2070112297916785507),
        Tick(378),
        Fire(47011631118819415),
        Deliver(13598110889165264009),
        Deliver(0),
        Deliver(0),
        Tick(120),
        Settle(313),
        Tick(537),
        Fire(732895582889953447),
        DeliverFront(12),
        Tick(428),
        Tick(356),
        Tick(452),
        DeliverFront(3),
        Tick(196),
        Fire(1156151603500392266),
        CrashOrRestart(205),
        Settle(79),
        Settle(221),
    ];
    let setup = Setup {
        nodes: 3,
        seed: 1556960724765862710,
    };
    for name in ["zab", "zab-local"] {
        let p = registry::get(name).expect("registered");
        (p.sequence)(setup, &steps).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
