//! The `synod` command-line tool; see `synod --help`.

/// mimalloc rather than glibc's malloc: under a loaded cluster the node spent ~7% of
/// its CPU in glibc's malloc and free (`perf record`, 64 clients, 2026-11-27).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(synod_harness::cli::main());
}
