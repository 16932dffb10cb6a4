//! `--features loom` sets `cfg(loom)` for this crate only (`src/sync.rs`), so that a
//! loom run shares the build of every dependency with the normal one: a `--cfg loom`
//! in RUSTFLAGS would rebuild the whole graph, and switch tokio into its own loom mode.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
    if std::env::var_os("CARGO_FEATURE_LOOM").is_some() {
        println!("cargo::rustc-cfg=loom");
    }
}
