//! The downstream example (`examples/counters.rs`) runs: three Multi-Paxos nodes over
//! TCP and file WALs replicate counters of the reader's own, through a full restart.

#[allow(dead_code)] // its `main` is for `cargo run --example counters`
#[path = "../examples/counters.rs"]
mod counters;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_example_keeps_every_count_through_a_full_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let counts = counters::run(dir.path()).await.expect("the example runs");
    // Adds i = 0..20 to page i % 3, by 1 + i % 2.
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..20i64 {
        *expected
            .entry(["home", "docs", "blog"][(i % 3) as usize].to_string())
            .or_insert(0) += 1 + i % 2;
    }
    assert_eq!(counts, expected);
}
