//! The downstream example (`examples/bank.rs`) runs: three Raft nodes over TCP and
//! file WALs replicate a ledger of the reader's own, and the money is conserved.

#[allow(dead_code)] // its `main` is for `cargo run --example bank`
#[path = "../examples/bank.rs"]
mod bank;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bank_example_commits_transfers_through_three_replicas_and_reads_them_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let balances = bank::run(dir.path()).await.expect("the example runs");
    assert_eq!(balances.len(), 3, "{balances:?}");
    assert_eq!(
        balances.values().sum::<u64>(),
        300,
        "money is conserved: {balances:?}"
    );
    assert_ne!(
        balances["alice"], 100,
        "the transfers took effect: {balances:?}"
    );
    for i in 1..=3 {
        let wal = dir.path().join(format!("node-{i}"));
        assert!(
            wal.read_dir().expect("a WAL directory").next().is_some(),
            "{wal:?} is empty"
        );
    }
}
