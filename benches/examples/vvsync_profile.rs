//! The paired bench's vvsync workload (3 replicas, `W` = 2, direct wiring, 16-byte
//! puts over 4,096 keys) as a plain binary, for instruction-count profiling:
//!
//! ```text
//! cargo build --release -p synod-benches --example vvsync_profile
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='vvsync_profile::measured' \
//!     target/release/examples/vvsync_profile 200000 64
//! ```

use synod_benches::direct::{vvsync_cluster, DirectCluster};
use synod_vvsync::{Dvv, VvNode};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[inline(never)]
fn measured(c: &mut DirectCluster<VvNode<Dvv>>, entries: u64, in_flight: u64) {
    c.run(entries, in_flight);
}

fn main() {
    synod_benches::direct::profile(vvsync_cluster(2), measured);
}
