//! The paired bench's Zab workload (3 nodes, direct wiring, 16-byte puts) as a plain
//! binary, for instruction-count profiling:
//!
//! ```text
//! cargo build --release -p synod-benches --example zab_profile
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='zab_profile::measured' \
//!     target/release/examples/zab_profile 200000 1024
//! ```
//!
//! Only `measured` (the steady-state run after a warm-up) is counted, so the
//! instruction total divided by the entry count is the cost of one committed entry.

use synod_benches::direct::{zab_cluster, DirectCluster};
use synod_zab::ZabNode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[inline(never)]
fn measured(c: &mut DirectCluster<ZabNode>, entries: u64, in_flight: u64) {
    c.run(entries, in_flight);
}

fn main() {
    synod_benches::direct::profile(zab_cluster(), measured);
}
