//! The `paxos` bench's workloads (3 nodes, direct wiring, 16-byte puts) as a plain
//! binary, for instruction-count profiling of Synod Multi-Paxos and, for reference,
//! of omnipaxos driven the same way:
//!
//! ```text
//! cargo build --release -p synod-benches --example paxos_profile
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='paxos_profile::measured*' \
//!     target/release/examples/paxos_profile synod 200000 1024
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='paxos_profile::measured*' \
//!     target/release/examples/paxos_profile omnipaxos 200000 1024
//! ```
//!
//! Only `measured_*` (the steady-state run after a warm-up) is counted, so the
//! instruction total divided by the command count is the cost of one committed
//! command, everything included (driver, three nodes, three state machines).

use synod_benches::direct::{paxos_cluster, DirectCluster};
use synod_benches::omnipaxos_driver::OmniPaxosCluster;
use synod_paxos::MultiPaxosNode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[inline(never)]
fn measured_synod(c: &mut DirectCluster<MultiPaxosNode>, commands: u64, in_flight: u64) {
    c.run(commands, in_flight);
}

#[inline(never)]
fn measured_omnipaxos(c: &mut OmniPaxosCluster, commands: u64, in_flight: u64) {
    c.run(commands, in_flight);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "synod".into());
    let commands: u64 = args
        .next()
        .map_or(200_000, |a| a.parse().expect("commands"));
    let in_flight: u64 = args.next().map_or(1024, |a| a.parse().expect("in flight"));
    let start;
    match which.as_str() {
        "synod" => {
            let mut c = paxos_cluster();
            c.run(20_000, in_flight); // warm-up: buffers, log and state machine at steady size
            start = std::time::Instant::now();
            measured_synod(&mut c, commands, in_flight);
        }
        "omnipaxos" => {
            let mut c = OmniPaxosCluster::new();
            c.run(20_000, in_flight);
            start = std::time::Instant::now();
            measured_omnipaxos(&mut c, commands, in_flight);
        }
        other => panic!("unknown implementation {other:?}: synod or omnipaxos"),
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{which}: {commands} commands, {in_flight} in flight: {:.0} commands/s",
        commands as f64 / secs
    );
}
