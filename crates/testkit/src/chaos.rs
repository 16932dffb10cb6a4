//! Seeded fault injection and seed loops for the property and scenario tests.

use super::{Cluster, Node, Prng, Time};
use std::time::Duration;

/// Runs `run` for every seed in `seeds`; a failure names the seed that replays it.
pub fn for_seeds(seeds: std::ops::Range<u64>, run: impl Fn(u64)) {
    for seed in seeds {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed)));
        if outcome.is_err() {
            panic!("failed with seed {seed} (the panic message is above)");
        }
    }
}

/// Weights (out of 100 per step) of what [`Cluster::chaos`] does besides delivering a
/// random queued message (so delivery order is random): lose or duplicate a queued
/// message, ask a node to propose, crash or restart a node, fire a random armed timer
/// (out of time order, so others fire late), or isolate a random node / heal every
/// cut. On a quiet wire the earliest timer fires.
#[derive(Clone, Debug)]
pub struct Faults {
    pub drop: u64,
    pub duplicate: u64,
    pub propose: u64,
    pub crash: u64,
    pub timer: u64,
    pub partition: u64,
}

impl<N: Node> Cluster<N> {
    /// `steps` random steps drawn from `rng` by the weights of `faults`;
    /// `propose(cluster, rng, node)` makes a client request at a live node. Crashes
    /// keep a majority up.
    pub fn chaos(
        &mut self,
        rng: &mut Prng,
        steps: usize,
        faults: &Faults,
        propose: &dyn Fn(&mut Cluster<N>, &mut Prng, u64),
    ) {
        let ids = self.ids();
        let pick = |rng: &mut Prng, len: usize| rng.below(len as u64) as usize;
        let dup_below = faults.drop + faults.duplicate;
        let propose_below = dup_below + faults.propose;
        let crash_below = propose_below + faults.crash;
        let timer_below = crash_below + faults.timer;
        let partition_below = timer_below + faults.partition;
        for _ in 0..steps {
            let roll = rng.below(100);
            let queued = self.wire.len();
            if roll < faults.drop && queued > 0 {
                self.wire.remove(pick(rng, queued));
            } else if roll < dup_below && queued > 0 {
                let copy = self.wire[pick(rng, queued)].clone();
                self.wire.push_back(copy);
            } else if roll < propose_below {
                let id = ids[pick(rng, ids.len())];
                if self.is_up(id) {
                    propose(self, rng, id);
                }
            } else if roll < crash_below {
                let id = ids[pick(rng, ids.len())];
                let down = ids.iter().filter(|&&i| !self.is_up(i)).count();
                if !self.is_up(id) {
                    self.restart(id);
                } else if (down + 1) * 2 < ids.len() {
                    self.crash(id);
                }
            } else if roll < partition_below {
                match rng.below(2) {
                    0 => self.isolate(ids[pick(rng, ids.len())]),
                    _ => self.heal(),
                }
            } else if roll < timer_below || queued == 0 {
                let armed: Vec<(Time, u64, N::Timer)> = self.armed_timers().collect();
                if armed.is_empty() {
                    continue;
                }
                let (_, id, t) = match roll < timer_below {
                    true => armed[pick(rng, armed.len())],
                    false => *armed.iter().min().expect("not empty"),
                };
                self.fire(id, t);
            } else {
                self.deliver_at(pick(rng, queued));
            }
        }
    }

    /// Ends every fault (heals every cut, restarts every crashed node), then runs the
    /// network for `d`.
    pub fn settle(&mut self, d: Duration) {
        self.heal();
        for id in self.ids() {
            if !self.is_up(id) {
                self.restart(id);
            }
        }
        self.run_for(d);
    }
}
