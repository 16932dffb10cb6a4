//! The `raft` bench's Synod workload (3 nodes, direct wiring, 16-byte puts) as a plain
//! binary, for instruction-count profiling:
//!
//! ```text
//! cargo build --release -p synod-benches --example raft_profile
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='raft_profile::measured' \
//!     target/release/examples/raft_profile 200000 1024
//! ```
//!
//! Only `measured` (the steady-state run after a warm-up) is counted, so the
//! instruction total divided by the entry count is the cost of one committed entry.

use synod_benches::direct::{raft_cluster, DirectCluster};
use synod_raft::RaftNode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[inline(never)]
fn measured(c: &mut DirectCluster<RaftNode>, entries: u64, in_flight: u64) {
    c.run(entries, in_flight);
}

fn main() {
    synod_benches::direct::profile(raft_cluster(), measured);
}
