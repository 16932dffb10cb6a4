//! The nemesis: a seeded generator of faults for the main phase of a run.
//!
//! It decides *what* goes wrong and for how long; the simulator carries it out and
//! undoes it when the fault ends or at the heal. The nemesis draws from its own
//! random stream, so its schedule for a seed does not shift when, say, a protocol
//! sends one more message.

use super::config::NemesisConfig;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::time::Duration;

/// One fault, as applied by the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Directed links `(from, to)` (node indices) that drop everything.
    Partition {
        /// Blocked directed links.
        blocked: Vec<(usize, usize)>,
        /// Human-readable description, e.g. `{0} | {1,2}`.
        label: String,
    },
    /// The node is down; it restarts from storage when the fault ends.
    Crash(usize),
    /// The node processes nothing; its inputs wait until it resumes.
    Pause(usize),
    /// The node's clock runs at `ppm` parts per million off real time.
    Drift {
        /// Node index.
        node: usize,
        /// Drift rate.
        ppm: i64,
    },
    /// The network loses messages at the configured fault rate.
    Loss,
    /// The network holds a fraction of messages for a long random time.
    Delay,
    /// The directed link holds messages until the fault ends.
    Clog {
        /// Sender index.
        from: usize,
        /// Receiver index.
        to: usize,
    },
}

impl Fault {
    /// `true` for faults that affect the links rather than a node.
    fn is_partition(&self) -> bool {
        matches!(self, Fault::Partition { .. })
    }

    /// The node this fault takes out of service, if any.
    fn node(&self) -> Option<usize> {
        match self {
            Fault::Crash(n) | Fault::Pause(n) | Fault::Drift { node: n, .. } => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { label, .. } => write!(f, "partition {label}"),
            Fault::Crash(n) => write!(f, "crash n{}", n + 1),
            Fault::Pause(n) => write!(f, "pause n{}", n + 1),
            Fault::Drift { node, ppm } => write!(f, "clock n{} {ppm:+}ppm", node + 1),
            Fault::Loss => write!(f, "lossy network"),
            Fault::Delay => write!(f, "delaying network"),
            Fault::Clog { from, to } => write!(f, "clog n{}->n{}", from + 1, to + 1),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Partition,
    Asymmetric,
    Loss,
    Clog,
    Delay,
    Crash,
    Pause,
    Clock,
    RestartAll,
}

/// The fault generator.
#[derive(Debug)]
pub struct Nemesis {
    cfg: NemesisConfig,
    rng: ChaCha8Rng,
    kinds: Vec<Kind>,
}

impl Nemesis {
    /// A nemesis for `cfg`, drawing from `seed`.
    pub fn new(cfg: NemesisConfig, seed: u64) -> Nemesis {
        let f = cfg.faults;
        let kinds = [
            (f.partition, Kind::Partition),
            (f.asymmetric, Kind::Asymmetric),
            (f.loss, Kind::Loss),
            (f.clog, Kind::Clog),
            (f.delay, Kind::Delay),
            (f.crash, Kind::Crash),
            (f.pause, Kind::Pause),
            (f.clock, Kind::Clock),
            (f.restart_all, Kind::RestartAll),
        ]
        .into_iter()
        .filter_map(|(on, k)| on.then_some(k))
        .collect();
        Nemesis {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(seed),
            kinds,
        }
    }

    /// `true` if the nemesis will ever inject anything.
    pub fn is_active(&self) -> bool {
        !self.kinds.is_empty()
    }

    /// Time until the next fault starts.
    pub fn next_gap(&mut self) -> Duration {
        uniform(&mut self.rng, self.cfg.gap_min, self.cfg.gap_max)
    }

    /// Picks faults compatible with the ones already `active` on a cluster of `n`
    /// nodes, each with its duration: one fault, or one crash per node for
    /// `restart-all`. Empty if the pick collides (the tick is skipped).
    pub fn pick(&mut self, n: usize, active: &[Fault]) -> Vec<(Fault, Duration)> {
        let Some(&kind) = self.kinds.choose(&mut self.rng) else {
            return Vec::new();
        };
        let duration = uniform(&mut self.rng, self.cfg.duration_min, self.cfg.duration_max);
        let busy = |i: usize| active.iter().any(|f| f.node() == Some(i));
        if let Kind::RestartAll = kind {
            if (0..n).any(busy) {
                return Vec::new();
            }
            // All go down now; each comes back after a delay of its own.
            return (0..n)
                .map(|node| {
                    let extra = uniform(&mut self.rng, Duration::ZERO, self.cfg.duration_max);
                    (Fault::Crash(node), duration + extra)
                })
                .collect();
        }
        self.pick_one(kind, n, active, busy)
            .map(|fault| vec![(fault, duration)])
            .unwrap_or_default()
    }

    /// One fault of `kind`, or `None` if it collides with `active` ones.
    fn pick_one(
        &mut self,
        kind: Kind,
        n: usize,
        active: &[Fault],
        busy: impl Fn(usize) -> bool,
    ) -> Option<Fault> {
        let fault = match kind {
            Kind::Partition | Kind::Asymmetric => {
                if n < 2 || active.iter().any(Fault::is_partition) {
                    return None;
                }
                self.partition(n, matches!(kind, Kind::Asymmetric))
            }
            Kind::Loss => {
                if active.contains(&Fault::Loss) {
                    return None;
                }
                Fault::Loss
            }
            Kind::Delay => {
                if active.contains(&Fault::Delay) {
                    return None;
                }
                Fault::Delay
            }
            Kind::Clog => {
                if n < 2 {
                    return None;
                }
                let from = self.rng.gen_range(0..n);
                let to = (from + self.rng.gen_range(1..n)) % n;
                let f = Fault::Clog { from, to };
                if active.contains(&f) {
                    return None;
                }
                f
            }
            Kind::Crash | Kind::Pause | Kind::Clock => {
                let node = self.rng.gen_range(0..n);
                if busy(node) {
                    return None;
                }
                match kind {
                    Kind::Crash => Fault::Crash(node),
                    Kind::Pause => Fault::Pause(node),
                    _ => {
                        let max = self.cfg.drift_ppm_max.max(1);
                        Fault::Drift {
                            node,
                            ppm: self.rng.gen_range(-max..=max),
                        }
                    }
                }
            }
            Kind::RestartAll => unreachable!("picked by `pick`"),
        };
        Some(fault)
    }

    fn partition(&mut self, n: usize, one_way: bool) -> Fault {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut self.rng);
        let cut = self.rng.gen_range(1..n);
        let (a, b) = order.split_at(cut);
        let mut blocked = Vec::new();
        for &x in a {
            for &y in b {
                blocked.push((x, y));
                if !one_way {
                    blocked.push((y, x));
                }
            }
        }
        let show = |g: &[usize]| {
            let mut g: Vec<usize> = g.iter().map(|i| i + 1).collect();
            g.sort_unstable();
            let names: Vec<String> = g.iter().map(|i| format!("n{i}")).collect();
            format!("{{{}}}", names.join(","))
        };
        let sep = if one_way { "-/->" } else { "|" };
        Fault::Partition {
            blocked,
            label: format!("{} {sep} {}", show(a), show(b)),
        }
    }
}

fn uniform(rng: &mut ChaCha8Rng, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_nanos() as u64;
    lo + Duration::from_nanos(rng.gen_range(0..=span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::{FaultSpec, SimConfig};

    fn nemesis(faults: &str, seed: u64) -> Nemesis {
        let mut cfg = SimConfig::standard(seed, FaultSpec::default(), 1).nemesis;
        cfg.faults = faults.parse().unwrap();
        Nemesis::new(cfg, seed)
    }

    #[test]
    fn never_two_partitions_or_two_faults_on_one_node() {
        let mut nem = nemesis("all", 5);
        let mut active: Vec<Fault> = Vec::new();
        for _ in 0..2000 {
            for (f, _) in nem.pick(3, &active) {
                active.push(f);
            }
            let parts = active.iter().filter(|f| f.is_partition()).count();
            assert!(parts <= 1);
            for i in 0..3 {
                assert!(active.iter().filter(|f| f.node() == Some(i)).count() <= 1);
            }
            if active.len() > 4 {
                active.remove(0);
            }
        }
    }

    #[test]
    fn asymmetric_partition_blocks_one_direction_only() {
        let mut nem = nemesis("asymmetric", 9);
        let (f, _) = nem.pick(5, &[]).pop().unwrap();
        let Fault::Partition { blocked, .. } = f else {
            panic!("expected a partition")
        };
        for &(a, b) in &blocked {
            assert!(!blocked.contains(&(b, a)));
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let run = |seed| {
            let mut nem = nemesis("all", seed);
            (0..50)
                .map(|_| (nem.next_gap(), nem.pick(3, &[])))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn restart_all_crashes_every_node_each_with_its_own_restart() {
        let mut nem = nemesis("restart-all", 3);
        let picked = nem.pick(5, &[]);
        let nodes: Vec<Option<usize>> = picked.iter().map(|(f, _)| f.node()).collect();
        assert_eq!(nodes, (0..5).map(Some).collect::<Vec<_>>());
        assert!(picked.iter().all(|(f, _)| matches!(f, Fault::Crash(_))));
        let mut restarts: Vec<Duration> = picked.iter().map(|(_, d)| *d).collect();
        restarts.sort_unstable();
        restarts.dedup();
        assert_eq!(restarts.len(), 5, "members come back one by one");
        // Not while any node is already down.
        assert!(nem.pick(5, &[Fault::Pause(2)]).is_empty());
    }
}
