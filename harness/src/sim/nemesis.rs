//! The nemesis: a seeded generator of faults for the main phase of a run.
//!
//! It decides *what* goes wrong and for how long; the simulator carries it out and
//! undoes it when the fault ends or at the heal. The nemesis draws from its own
//! random stream, so its schedule for a seed does not shift when, say, a protocol
//! sends one more message.

use super::config::NemesisConfig;
use super::script::{ComebackPlan, Figure8Plan};
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
    /// The node crashes the first time it has sent messages or replies ahead of a
    /// write that is not durable yet (the protocol marked them as not depending on
    /// it), before that write lands; it restarts from storage when the fault ends.
    /// This is the "crash between a persist and its sends" a random crash almost
    /// never hits: the window is one disk write long.
    CrashInWrite(usize),
    /// A crash storm (the style of the Figure 8 tests): while it lasts, the nemesis
    /// crashes whoever leads every few tens of milliseconds, each back after a short
    /// downtime, so leaderships are cut off right after they start replicating.
    Storm,
    /// Raft's Figure 8 as a schedule (`figure8.rs`): three short leaderships, the
    /// last cut down while it brings followers up to date. It runs alone: while it
    /// lasts no other node fault or partition starts.
    Figure8(Figure8Plan),
    /// A leader's sends held for a while and nothing reaching it, while the others
    /// cannot reach each other; it wins again while those sends still arrive, and
    /// is then deposed (`comeback.rs`): an answer from an older leadership
    /// arriving late. It runs alone, like `Figure8`.
    Comeback(ComebackPlan),
    /// The leader is cut off from every peer (clients still reach it) and its
    /// clock runs at a tenth of real time, so it goes on believing it leads well after the
    /// others elected a new one: the deposed leader that has not noticed, which
    /// must not answer a read from its own state. If `armed`, that node crashes in
    /// its next early-sent write, as `CrashInWrite` does — with the leader cut off,
    /// usually its part in the takeover (a promise, a vote); it is back at the end.
    Depose {
        /// The leader.
        leader: usize,
        /// A node armed to crash in its next early-sent write.
        armed: Option<usize>,
    },
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
    /// The node's disk fails at its next write — ENOSPC on the append, or EIO on
    /// the sync — so that batch is lost unacknowledged and the node stops; it stays
    /// down until the fault ends (an operator fixing the disk restarts it from what
    /// was durable).
    DiskFail {
        /// Node index.
        node: usize,
        /// EIO on the sync (else ENOSPC on the append).
        eio: bool,
    },
    /// The node crashes and finds its disk failing its checksums at restart: it
    /// refuses to start and stays down for good.
    DiskCorrupt(usize),
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

    /// `true` if this fault takes node `i` out of service or may crash it.
    fn touches(&self, i: usize) -> bool {
        self.node() == Some(i) || matches!(self, Fault::Depose { armed: Some(a), .. } if *a == i)
    }

    /// `true` for the scripted faults (`script.rs`).
    pub(crate) fn is_script(&self) -> bool {
        matches!(self, Fault::Figure8(_) | Fault::Comeback(_))
    }

    /// `true` for a fault that lasts for good, whatever its duration.
    pub(crate) fn is_for_good(&self) -> bool {
        matches!(self, Fault::DiskCorrupt(_))
    }

    /// The node this fault takes out of service, if any.
    fn node(&self) -> Option<usize> {
        match self {
            Fault::DiskFail { node: n, .. } | Fault::DiskCorrupt(n) => Some(*n),
            Fault::Crash(n)
            | Fault::CrashInWrite(n)
            | Fault::Depose { leader: n, .. }
            | Fault::Pause(n)
            | Fault::Drift { node: n, .. } => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { label, .. } => write!(f, "partition {label}"),
            Fault::Crash(n) => write!(f, "crash n{}", n + 1),
            Fault::CrashInWrite(n) => write!(f, "crash n{} in its next early-sent write", n + 1),
            Fault::Storm => write!(f, "crash storm"),
            Fault::Figure8(p) => write!(
                f,
                "figure 8 (first leader alone {}, second {}, third crashed after {} messages)",
                millis(p.hold_first),
                millis(p.hold_second),
                p.strike_after
            ),
            Fault::Comeback(p) => write!(
                f,
                "comeback (leader stalled {}, leads again {}, deposed {})",
                millis(p.stall),
                millis(p.reign),
                millis(p.deposed)
            ),
            Fault::Depose { leader, armed } => {
                write!(
                    f,
                    "depose n{} (cut off, clock at a tenth of real time)",
                    leader + 1
                )?;
                match armed {
                    Some(a) => write!(f, ", n{} crashes in its next early-sent write", a + 1),
                    None => Ok(()),
                }
            }
            Fault::Pause(n) => write!(f, "pause n{}", n + 1),
            Fault::Drift { node, ppm } => write!(f, "clock n{} {ppm:+}ppm", node + 1),
            Fault::Loss => write!(f, "lossy network"),
            Fault::Delay => write!(f, "delaying network"),
            Fault::DiskFail { node, eio: true } => {
                write!(
                    f,
                    "disk n{}: EIO on its next sync (stops until the fault ends)",
                    node + 1
                )
            }
            Fault::DiskFail { node, eio: false } => write!(
                f,
                "disk n{}: ENOSPC on its next append (stops until the fault ends)",
                node + 1
            ),
            Fault::DiskCorrupt(n) => write!(
                f,
                "crash n{}, its disk failing its checksums at restart (down for good)",
                n + 1
            ),
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
    CrashInWrite,
    Storm,
    Figure8,
    Comeback,
    Depose,
    Pause,
    Clock,
    RestartAll,
    Disk,
    Corrupt,
}

/// The fault generator.
#[derive(Debug)]
pub struct Nemesis {
    cfg: NemesisConfig,
    rng: ChaCha8Rng,
    kinds: Vec<Kind>,
    /// Nodes taken for good by `DiskCorrupt` so far.
    lost: usize,
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
            (f.crash_in_write, Kind::CrashInWrite),
            (f.storm, Kind::Storm),
            (f.figure8, Kind::Figure8),
            (f.comeback, Kind::Comeback),
            (f.depose, Kind::Depose),
            (f.pause, Kind::Pause),
            (f.clock, Kind::Clock),
            (f.restart_all, Kind::RestartAll),
            (f.disk, Kind::Disk),
            (f.corrupt && cfg.disk_losses.max > 0, Kind::Corrupt),
        ]
        .into_iter()
        .filter_map(|(on, k)| on.then_some(k))
        .collect();
        Nemesis {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(seed),
            kinds,
            lost: 0,
        }
    }

    /// `true` if the nemesis will ever inject anything.
    pub fn is_active(&self) -> bool {
        !self.kinds.is_empty()
    }

    /// Time until the next fault starts: shorter during a crash storm.
    pub fn next_gap(&mut self, active: &[Fault]) -> Duration {
        if active.contains(&Fault::Storm) {
            return uniform(
                &mut self.rng,
                self.cfg.storm_gap_min,
                self.cfg.storm_gap_max,
            );
        }
        uniform(&mut self.rng, self.cfg.gap_min, self.cfg.gap_max)
    }

    /// Picks faults compatible with the ones already `active` on a cluster of `n`
    /// nodes whose current leader (if the protocol has one and it is up) is `leader`,
    /// each with its duration: one fault, or one crash per node for `restart-all`.
    /// Empty if the pick collides (the tick is skipped). During a crash storm every
    /// tick crashes the leader instead, for a short downtime, as long as a majority
    /// stays up.
    pub fn pick(
        &mut self,
        n: usize,
        leader: Option<usize>,
        active: &[Fault],
    ) -> Vec<(Fault, Duration)> {
        // A Figure 8 schedule crashes and cuts off nodes of its own choosing.
        let scripted = active.iter().any(Fault::is_script);
        let busy = |i: usize| scripted || active.iter().any(|f| f.touches(i));
        if active.contains(&Fault::Storm) {
            let down = active.iter().filter(|f| f.node().is_some()).count();
            let Some(leader) = leader.filter(|&l| !busy(l) && down < (n - 1) / 2) else {
                return Vec::new();
            };
            let downtime = uniform(
                &mut self.rng,
                self.cfg.storm_down_min,
                self.cfg.storm_down_max,
            );
            return vec![(Fault::Crash(leader), downtime)];
        }
        let Some(&kind) = self.kinds.choose(&mut self.rng) else {
            return Vec::new();
        };
        let duration = uniform(&mut self.rng, self.cfg.duration_min, self.cfg.duration_max);
        // Aim node faults at the leader this often (when there is one to aim at).
        let at_leader = leader.filter(|_| self.rng.gen_bool(self.cfg.leader_bias));
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
        if let Kind::Storm = kind {
            if scripted || active.iter().any(|f| f.node().is_some()) {
                return Vec::new(); // a storm starts from a cluster with everyone up
            }
            return vec![(Fault::Storm, duration)];
        }
        if let Kind::Figure8 | Kind::Comeback = kind {
            // From a cluster with everyone up and connected, and a leader to start
            // from; it ends itself (the duration only bounds a schedule that stalls).
            let calm = !scripted
                && !active
                    .iter()
                    .any(|f| f.node().is_some() || f.is_partition());
            if leader
                .filter(|_| calm && !active.contains(&Fault::Storm))
                .is_none()
            {
                return Vec::new();
            }
            let fault = match kind {
                Kind::Figure8 => Fault::Figure8(self.figure8_plan()),
                _ => Fault::Comeback(self.comeback_plan()),
            };
            return vec![(fault, SCRIPT_MAX)];
        }
        self.pick_one(kind, n, (leader, at_leader), active, busy)
            .map(|fault| vec![(fault, duration)])
            .unwrap_or_default()
    }

    /// One fault of `kind`, or `None` if it collides with `active` ones; `leader`
    /// is the current leader and `at_leader` the same if this fault is aimed at it.
    fn pick_one(
        &mut self,
        kind: Kind,
        n: usize,
        (leader, at_leader): (Option<usize>, Option<usize>),
        active: &[Fault],
        busy: impl Fn(usize) -> bool,
    ) -> Option<Fault> {
        let fault = match kind {
            Kind::Partition | Kind::Asymmetric => {
                if n < 2 || active.iter().any(|f| f.is_partition() || f.is_script()) {
                    return None;
                }
                self.partition(n, at_leader, matches!(kind, Kind::Asymmetric))
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
            Kind::Crash | Kind::CrashInWrite | Kind::Pause | Kind::Clock => {
                let node = at_leader.unwrap_or_else(|| self.rng.gen_range(0..n));
                if busy(node) {
                    return None;
                }
                match kind {
                    Kind::Crash => Fault::Crash(node),
                    Kind::CrashInWrite => Fault::CrashInWrite(node),
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
            Kind::Disk => {
                let node = at_leader.unwrap_or_else(|| self.rng.gen_range(0..n));
                if busy(node) {
                    return None;
                }
                Fault::DiskFail {
                    node,
                    eio: self.rng.gen_bool(0.5),
                }
            }
            Kind::Corrupt => {
                let among = self.cfg.disk_losses.among.min(n);
                if self.lost >= self.cfg.disk_losses.max || among == 0 {
                    return None;
                }
                let node = at_leader
                    .filter(|&l| l < among)
                    .unwrap_or_else(|| self.rng.gen_range(0..among));
                if busy(node) {
                    return None;
                }
                self.lost += 1;
                Fault::DiskCorrupt(node)
            }
            Kind::Depose => {
                // Always the leader: deposing anyone else is a plain partition.
                let leader = leader?;
                let armed = (n > 1 && self.rng.gen_bool(0.5))
                    .then(|| (leader + self.rng.gen_range(1..n)) % n)
                    .filter(|&a| !busy(a));
                if busy(leader) {
                    return None;
                }
                Fault::Depose { leader, armed }
            }
            Kind::RestartAll | Kind::Storm | Kind::Figure8 | Kind::Comeback => {
                unreachable!("picked by `pick`")
            }
        };
        Some(fault)
    }

    /// A random split of the cluster in two; aimed at `leader`, it puts the leader
    /// on the minority side (alone or with fewer than half the others), so a new
    /// leadership forms while the old one may not know it yet.
    fn partition(&mut self, n: usize, leader: Option<usize>, one_way: bool) -> Fault {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut self.rng);
        let cut = match leader {
            Some(l) => {
                let at = order.iter().position(|&i| i == l).expect("a member");
                order.swap(0, at);
                self.rng.gen_range(1..=((n - 1) / 2).max(1))
            }
            None => self.rng.gen_range(1..n),
        };
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

    /// The random parts of a Figure 8 schedule. The third leader dies after one
    /// to four messages: its first exchanges with a follower it brings up to date
    /// (a rejected probe, then the first batches).
    fn figure8_plan(&mut self) -> Figure8Plan {
        let ms = Duration::from_millis;
        Figure8Plan {
            hold_first: uniform(&mut self.rng, ms(2), ms(80)),
            hold_second: uniform(&mut self.rng, ms(2), ms(80)),
            strike_after: self.rng.gen_range(1..=4),
            down_third: uniform(&mut self.rng, ms(400), ms(1200)),
        }
    }

    /// The random parts of a comeback schedule. The stall outlasts two election
    /// timeouts of the leader's (check-quorum steps it down within two) and is
    /// shorter than the longest hold, so sends of its old leadership arrive in
    /// the next; the reign lets them arrive and clients find it again.
    fn comeback_plan(&mut self) -> ComebackPlan {
        let ms = Duration::from_millis;
        ComebackPlan {
            stall: uniform(&mut self.rng, ms(300), ms(1200)),
            reign: uniform(&mut self.rng, ms(50), ms(300)),
            deposed: uniform(&mut self.rng, ms(300), ms(1200)),
        }
    }
}

/// Bounds a scripted fault that stalls (a leader that never emerges).
const SCRIPT_MAX: Duration = Duration::from_secs(8);

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1e3)
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
            for (f, _) in nem.pick(3, None, &active) {
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
        let (f, _) = nem.pick(5, None, &[]).pop().unwrap();
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
                .map(|_| (nem.next_gap(&[]), nem.pick(3, Some(0), &[])))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn leader_aimed_partitions_put_the_leader_in_the_minority() {
        let mut nem = nemesis("partition", 4);
        nem.cfg.leader_bias = 1.0;
        for _ in 0..200 {
            let (f, _) = nem.pick(5, Some(3), &[]).pop().unwrap();
            let Fault::Partition { blocked, .. } = f else {
                panic!("expected a partition")
            };
            let cut_from_leader = blocked.iter().filter(|&&(a, _)| a == 3).count();
            assert!(
                cut_from_leader >= 3,
                "the leader keeps at most one other: {blocked:?}"
            );
        }
        let mut crashes = nemesis("crash", 4);
        crashes.cfg.leader_bias = 1.0;
        let picked = crashes.pick(5, Some(2), &[]);
        assert_eq!(picked[0].0, Fault::Crash(2));
    }

    #[test]
    fn a_storm_crashes_the_leader_while_a_majority_stays_up() {
        let mut nem = nemesis("storm", 6);
        let (storm, _) = nem.pick(3, Some(0), &[]).pop().unwrap();
        assert_eq!(storm, Fault::Storm);
        assert!(
            nem.pick(3, Some(0), &[Fault::Crash(1)]).is_empty(),
            "starts with all up"
        );
        let mut active = vec![Fault::Storm];
        let picked = nem.pick(5, Some(4), &active);
        let (crash, downtime) = picked[0].clone();
        assert_eq!(crash, Fault::Crash(4));
        assert!(downtime <= nem.cfg.storm_down_max);
        assert!(nem.next_gap(&active) <= nem.cfg.storm_gap_max);
        active.push(crash);
        assert_eq!(nem.pick(5, Some(1), &active)[0].0, Fault::Crash(1));
        active.push(Fault::Crash(1));
        assert!(
            nem.pick(5, Some(2), &active).is_empty(),
            "two of five down: no more"
        );
        assert!(
            nem.pick(5, None, &[Fault::Storm]).is_empty(),
            "no leader, no crash"
        );
    }

    #[test]
    fn restart_all_crashes_every_node_each_with_its_own_restart() {
        let mut nem = nemesis("restart-all", 3);
        let picked = nem.pick(5, None, &[]);
        let nodes: Vec<Option<usize>> = picked.iter().map(|(f, _)| f.node()).collect();
        assert_eq!(nodes, (0..5).map(Some).collect::<Vec<_>>());
        assert!(picked.iter().all(|(f, _)| matches!(f, Fault::Crash(_))));
        let mut restarts: Vec<Duration> = picked.iter().map(|(_, d)| *d).collect();
        restarts.sort_unstable();
        restarts.dedup();
        assert_eq!(restarts.len(), 5, "members come back one by one");
        // Not while any node is already down.
        assert!(nem.pick(5, None, &[Fault::Pause(2)]).is_empty());
    }

    #[test]
    fn figure_8_starts_from_a_calm_cluster_with_a_leader_and_runs_alone() {
        let mut nem = nemesis("figure-8", 12);
        assert!(nem.pick(3, None, &[]).is_empty(), "needs a leader");
        assert!(nem.pick(3, Some(1), &[Fault::Crash(2)]).is_empty());
        let split = nem.partition(3, None, false);
        assert!(nem.pick(3, Some(1), &[split]).is_empty());
        let (f8, _) = nem.pick(3, Some(1), &[]).pop().unwrap();
        let Fault::Figure8(plan) = &f8 else {
            panic!("expected figure 8, got {f8}")
        };
        assert!((1..=4).contains(&plan.strike_after));
        let mut all = nemesis("all", 12);
        for _ in 0..500 {
            for (f, _) in all.pick(3, Some(0), std::slice::from_ref(&f8)) {
                assert!(
                    f.node().is_none() && !f.is_partition() && !f.is_script(),
                    "{f} picked during a Figure 8 schedule"
                );
            }
        }
    }

    #[test]
    fn depose_is_always_aimed_at_the_leader() {
        let mut nem = nemesis("depose", 13);
        assert!(
            nem.pick(3, None, &[]).is_empty(),
            "no leader, nothing to depose"
        );
        for _ in 0..50 {
            let (f, _) = nem.pick(5, Some(3), &[]).pop().unwrap();
            let Fault::Depose { leader, armed } = f else {
                panic!("expected depose, got {f}")
            };
            assert_eq!(leader, 3);
            assert_ne!(armed, Some(3), "the armed node is another");
        }
        assert!(nem.pick(5, Some(3), &[Fault::Pause(3)]).is_empty());
        let armed = Fault::Depose {
            leader: 3,
            armed: Some(1),
        };
        let mut crash = nemesis("crash", 13);
        for _ in 0..50 {
            for (f, _) in crash.pick(5, None, std::slice::from_ref(&armed)) {
                assert!(!f.touches(1) && !f.touches(3), "{f} on a node of {armed}");
            }
        }
    }
}
