//! Helpers shared by the transport test binaries: bounded waits and message shapes.

#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::time::Duration;
use synod_core::{NodeId, Transport};
use synod_runtime::transport::TcpTransport;
use tokio::time::{sleep, timeout, Instant};

/// Upper bound on any single wait; generous for a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(10);

/// A transport carrying plain numbers.
pub type Node = TcpTransport<u64>;

/// Awaits `future`, failing the test after [`WAIT`] with `what`.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

/// The next `n` messages `node` receives.
pub async fn recv_n(node: &mut Node, n: usize) -> Vec<(NodeId, u64)> {
    let mut got = Vec::with_capacity(n);
    within(&format!("receiving {n} messages"), async {
        while got.len() < n {
            got.push(node.recv().await.unwrap());
        }
    })
    .await;
    got
}

/// Polls `condition` until it holds, failing the test after [`WAIT`].
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?}: {what}"
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// Sends `values` from `node` to node `to`, in order.
pub async fn send_all(node: &mut Node, to: u64, values: impl IntoIterator<Item = u64>) {
    for value in values {
        node.send(NodeId(to), value).await.unwrap();
    }
}

/// `values` as received from node `node`.
pub fn from(node: u64, values: impl IntoIterator<Item = u64>) -> Vec<(NodeId, u64)> {
    values.into_iter().map(|v| (NodeId(node), v)).collect()
}
