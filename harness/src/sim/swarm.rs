//! Swarm testing (Groce, Zhang, Eide, Chen and Regehr, "Swarm Testing", ISSTA 2012):
//! each seed also draws *which* fault kinds are on, their rates, the cluster size,
//! message sizes and the workload mix, instead of every run facing all faults at
//! once. A configuration that leaves some kinds out reaches states the full mix
//! crowds out (a crash storm on a 7-node cluster with no partitions to interrupt it;
//! a lossy network with 16 KiB values and no crashes).
//!
//! The draw comes from its own stream of the seed, so `synod sim --seed S --swarm`
//! replays exactly what `synod check --seeds N --swarm` ran for seed S; the flags
//! given beside `--swarm` are the base the draw changes.
//!
//! What is drawn:
//!
//! * each fault kind of `all`, `restart-all` and the storage faults (`torn`, `disk`,
//!   `corrupt`), on with probability one half (the paper's choice);
//! * the background duplication and reordering rates, the loss rate of a lossy
//!   network, the share of messages a delay fault holds;
//! * how often faults start and how long they last (halved, as given, or doubled);
//! * the cluster size: 3, 5 or 7 (at least the protocol's smallest cluster);
//! * 1 to 8 clients, values of 0 B to 16 KiB — except where reads return every
//!   value appended to a key: `set` and `list-append` elements stay at most 64 B,
//!   and a `kv` mix with 16 KiB values does no appends (a read of a key grown by
//!   hundreds of 16 KiB appends is megabytes, and the run's history gigabytes);
//! * the workload — the `kv` mix with random shares of reads, appends, cas and
//!   deletes over 1 to 64 keys, uniform or Zipfian, or `register`, `set`, `bank`,
//!   `list-append` — among those the protocol serves;
//! * node knobs — batch sizes, windows, snapshot intervals and election timeouts
//!   within their legal ranges — are drawn per node and incarnation as in every
//!   faulty run (`SimProtocol::build_varied`).

use super::config::{FaultSpec, SimConfig};
use super::derive_seed;
use crate::registry::Protocol;
use crate::workload::{KeyDist, Mix, WorkloadConfig, WorkloadName};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::time::Duration;

/// The stream the swarm draws from (beside the simulator's own, `sim/mod.rs`).
const STREAM_SWARM: u64 = 6;

/// The largest value drawn: large messages for puts, cas and register writes.
const LARGE_VALUE: usize = 16 * 1024;
/// The largest element of a workload whose reads return every element appended
/// so far (`set`, `list-append`).
const MAX_ELEMENT: usize = 64;

/// One seed's swarm choices.
#[derive(Clone, Debug, PartialEq)]
pub struct Swarm {
    /// Fault kinds on.
    pub faults: FaultSpec,
    /// Cluster size.
    pub nodes: usize,
    /// Closed-loop clients.
    pub clients: usize,
    /// Written values are padded to this many bytes.
    pub value_len: usize,
    /// The workload, fitted to the protocol.
    pub workload: WorkloadName,
    /// Distinct keys (`kv` only).
    pub keys: usize,
    /// Key popularity (`kv` only).
    pub key_dist: KeyDist,
    /// Operation mix (`kv` only).
    pub mix: Mix,
    /// Background duplication probability.
    pub duplicate: f64,
    /// Background reordering probability.
    pub reorder: f64,
    /// Loss probability while a lossy-network fault lasts.
    pub fault_loss: f64,
    /// Share of messages a delay fault holds.
    pub fault_delay: f64,
    /// Factor on the gaps between faults and on their durations.
    pub tempo: f64,
}

impl Swarm {
    /// The choices for `seed` under `protocol` (its smallest cluster, the workloads
    /// it serves).
    pub fn draw(seed: u64, protocol: &Protocol) -> Swarm {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, STREAM_SWARM));
        let mut coin = || rng.gen_bool(0.5);
        let faults = FaultSpec {
            partition: coin(),
            asymmetric: coin(),
            loss: coin(),
            clog: coin(),
            delay: coin(),
            crash: coin(),
            crash_in_write: coin(),
            storm: coin(),
            figure8: coin(),
            comeback: coin(),
            depose: coin(),
            pause: coin(),
            clock: coin(),
            restart_all: coin(),
            split: false,
            torn: coin(),
            disk: coin(),
            corrupt: coin(),
        };
        let sizes: Vec<usize> = [3, 5, 7]
            .into_iter()
            .map(|n: usize| n.max(protocol.min_nodes))
            .collect();
        let nodes = *sizes.choose(&mut rng).expect("three sizes");
        let served: Vec<WorkloadName> = [
            WorkloadName::Kv,
            WorkloadName::Kv,
            WorkloadName::Kv,
            WorkloadName::Register,
            WorkloadName::Set,
            WorkloadName::Bank,
            WorkloadName::ListAppend,
        ]
        .into_iter()
        .filter(|&w| (protocol.fit_workload)(&mut WorkloadConfig::named(w, 1)).is_ok())
        .collect();
        let workload = *served.choose(&mut rng).expect("every protocol serves kv");
        let (read, append, cas, delete) = (
            rng.gen_range(0.0..0.8),
            rng.gen_range(0.0..0.3),
            rng.gen_range(0.0..0.3),
            rng.gen_range(0.0..0.15),
        );
        // Shares drawn independently, scaled to leave room for puts.
        let total: f64 = read + append + cas + delete;
        let scale = if total > 0.95 { 0.95 / total } else { 1.0 };
        let clients = rng.gen_range(1..=8);
        let value_len = *[0, 0, 64, 1024, LARGE_VALUE]
            .choose(&mut rng)
            .expect("sizes");
        let (value_len, append) = match workload {
            WorkloadName::Set | WorkloadName::ListAppend => (value_len.min(MAX_ELEMENT), append),
            _ if value_len == LARGE_VALUE => (value_len, 0.0),
            _ => (value_len, append),
        };
        Swarm {
            faults,
            nodes,
            clients,
            value_len,
            workload,
            keys: *[1, 2, 8, 64].choose(&mut rng).expect("key counts"),
            key_dist: match coin_of(&mut rng) {
                true => KeyDist::Uniform,
                false => KeyDist::Zipf(0.99),
            },
            mix: Mix {
                read: read * scale,
                append: append * scale,
                cas: cas * scale,
                delete: delete * scale,
            },
            duplicate: *[0.0, 0.01, 0.05].choose(&mut rng).expect("rates"),
            reorder: *[0.0, 0.02, 0.1].choose(&mut rng).expect("rates"),
            fault_loss: *[0.1, 0.3, 0.7].choose(&mut rng).expect("rates"),
            fault_delay: *[0.05, 0.2, 0.5].choose(&mut rng).expect("rates"),
            tempo: *[0.5, 1.0, 2.0].choose(&mut rng).expect("factors"),
        }
    }

    /// Applies the choices to `cfg`, built from the command's flags for this seed.
    pub fn apply(&self, cfg: &mut SimConfig) {
        cfg.nodes = self.nodes;
        cfg.vary_tuning = true;
        let ops = cfg.workload.ops;
        let base = std::mem::replace(&mut cfg.workload, WorkloadConfig::named(self.workload, ops));
        let w = &mut cfg.workload;
        w.record_history = base.record_history;
        w.clients = self.clients;
        w.value_len = self.value_len;
        if self.workload == WorkloadName::Kv {
            w.keys = self.keys;
            w.key_dist = self.key_dist;
            w.mix = self.mix;
        }
        let net = &mut cfg.network;
        net.duplicate = self.duplicate;
        net.reorder = self.reorder;
        net.fault_loss = self.fault_loss;
        net.fault_delay = self.fault_delay;
        let nemesis = &mut cfg.nemesis;
        nemesis.faults = self.faults;
        let scaled = |d: Duration| d.mul_f64(self.tempo);
        nemesis.gap_min = scaled(nemesis.gap_min);
        nemesis.gap_max = scaled(nemesis.gap_max);
        nemesis.duration_min = scaled(nemesis.duration_min);
        nemesis.duration_max = scaled(nemesis.duration_max);
    }
}

fn coin_of(rng: &mut ChaCha8Rng) -> bool {
    rng.gen_bool(0.5)
}

impl fmt::Display for Swarm {
    /// One line: what a failing seed's report shows of its draw.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "swarm: faults {}; {} nodes, {} clients, {} B values; workload {}",
            self.faults, self.nodes, self.clients, self.value_len, self.workload
        )?;
        if self.workload == WorkloadName::Kv {
            let dist = match self.key_dist {
                KeyDist::Uniform => "uniform".to_string(),
                KeyDist::Zipf(s) => format!("zipf {s}"),
            };
            write!(
                f,
                " ({} keys {dist}; read {:.2} append {:.2} cas {:.2} delete {:.2})",
                self.keys, self.mix.read, self.mix.append, self.mix.cas, self.mix.delete
            )?;
        }
        write!(
            f,
            "; duplicate {} reorder {} fault loss {} fault delay {}; fault tempo x{}",
            self.duplicate, self.reorder, self.fault_loss, self.fault_delay, self.tempo
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    /// The same seed draws the same swarm; over many seeds every choice is reached
    /// and each fault kind is on about half the time.
    #[test]
    fn swarm_draws_are_replayable_and_cover_every_choice() {
        let raft = registry::get("raft").unwrap();
        assert_eq!(Swarm::draw(42, raft), Swarm::draw(42, raft));
        let draws: Vec<Swarm> = (0..2000).map(|s| Swarm::draw(s, raft)).collect();
        for n in [3, 5, 7] {
            assert!(draws.iter().any(|d| d.nodes == n), "no {n}-node cluster");
        }
        for w in [
            WorkloadName::Kv,
            WorkloadName::Register,
            WorkloadName::Set,
            WorkloadName::Bank,
            WorkloadName::ListAppend,
        ] {
            assert!(draws.iter().any(|d| d.workload == w), "never {w}");
        }
        let on = |pick: fn(&FaultSpec) -> bool| draws.iter().filter(|d| pick(&d.faults)).count();
        for (name, count) in [
            ("crash", on(|f| f.crash)),
            ("partition", on(|f| f.partition)),
            ("torn", on(|f| f.torn)),
            ("corrupt", on(|f| f.corrupt)),
        ] {
            assert!((800..1200).contains(&count), "{name} on in {count} of 2000");
        }
        let kinds = |f: &FaultSpec| f.to_string().split(',').count();
        assert!(
            draws.iter().any(|d| kinds(&d.faults) <= 3),
            "no sparse draw"
        );
        assert!(draws.iter().all(|d| !d.faults.split));
        assert!(draws.iter().any(|d| d.value_len == LARGE_VALUE));
    }

    /// No draw grows a key by large appends: set and list-append elements are
    /// small, and a kv mix with the largest values only puts them.
    #[test]
    fn swarm_never_appends_large_values() {
        let raft = registry::get("raft").unwrap();
        for seed in 0..2000 {
            let d = Swarm::draw(seed, raft);
            match d.workload {
                WorkloadName::Set | WorkloadName::ListAppend => {
                    assert!(d.value_len <= MAX_ELEMENT, "seed {seed}: {d}")
                }
                _ if d.value_len == LARGE_VALUE => assert_eq!(d.mix.append, 0.0, "seed {seed}"),
                _ => {}
            }
        }
    }

    /// The draw respects what the protocol runs: 2PC over Raft's smallest cluster,
    /// vvsync's workloads.
    #[test]
    fn swarm_fits_the_protocol() {
        let nb = registry::get("twopc-nb").unwrap();
        let vv = registry::get("vvsync").unwrap();
        for seed in 0..500 {
            assert!(Swarm::draw(seed, nb).nodes >= nb.min_nodes);
            assert_ne!(Swarm::draw(seed, vv).workload, WorkloadName::ListAppend);
        }
    }

    /// Applying a draw sets what it drew and keeps the command's op budget and
    /// history setting.
    #[test]
    fn swarm_apply_overrides_the_base_config() {
        let raft = registry::get("raft").unwrap();
        let swarm = (0..100)
            .map(|s| Swarm::draw(s, raft))
            .find(|d| d.nodes == 7 && d.workload == WorkloadName::Kv)
            .expect("a 7-node kv draw");
        let mut cfg = SimConfig::standard(9, FaultSpec::all(), 321);
        cfg.workload.record_history = false;
        swarm.apply(&mut cfg);
        assert_eq!(cfg.nodes, 7);
        assert_eq!(cfg.nemesis.faults, swarm.faults);
        assert_eq!(cfg.workload.ops, 321);
        assert!(!cfg.workload.record_history);
        assert_eq!(cfg.workload.keys, swarm.keys);
        assert_eq!(cfg.workload.clients, swarm.clients);
        assert!(cfg.vary_tuning);
    }
}
