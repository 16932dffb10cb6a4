//! Traits the *drivers* implement to carry out [`Effects`](crate::Effects) for real.
//!
//! Protocol crates never use these; they only produce effects. The tokio runtime
//! provides a TCP [`Transport`] and a file-WAL [`Storage`]; [`MemStorage`] implements
//! [`Storage`] for tests and for measuring the cost of durability.

use crate::id::NodeId;
use crate::storage::{MemStorage, Recovered, WriteBatch};
use async_trait::async_trait;

/// A storage failure. Drivers treat it as fatal for the node: continuing after a
/// failed write could acknowledge something that is not durable.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O error, with what was being done.
    #[error("storage I/O error while {context}: {source}")]
    Io {
        /// What the storage was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Stored data failed validation (bad checksum, impossible record, …).
    #[error("storage corruption: {0}")]
    Corrupt(String),
}

/// Durable storage for one node.
#[async_trait]
pub trait Storage: Send {
    /// Everything durable so far; called once before the node starts.
    async fn load(&mut self) -> Result<Recovered, StorageError>;
    /// Makes `batch` durable, atomically, after all earlier batches. Returns only
    /// when a crash can no longer lose it.
    async fn persist(&mut self, batch: WriteBatch) -> Result<(), StorageError>;

    /// Group commit: makes every batch durable, in order, each one atomically, and
    /// returns when all of them are. Implementations should write them all and sync
    /// once; the default persists them one by one.
    async fn persist_all(&mut self, batches: Vec<WriteBatch>) -> Result<(), StorageError> {
        for batch in batches {
            self.persist(batch).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for MemStorage {
    async fn load(&mut self) -> Result<Recovered, StorageError> {
        Ok(self.recover())
    }

    async fn persist(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        MemStorage::persist(self, batch);
        Ok(())
    }
}

/// A transport failure.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The destination is not a configured peer.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The transport has been shut down.
    #[error("transport closed")]
    Closed,
    /// Any other failure, described.
    #[error("transport error: {0}")]
    Other(String),
}

/// Peer-to-peer messaging for one node. Delivery is best effort (messages may be lost,
/// duplicated or reordered, as the protocols assume); `send` must not block on a slow
/// peer beyond the transport's own bounded queue.
#[async_trait]
pub trait Transport<M: Send + 'static>: Send {
    /// Queues `msg` for `to`.
    async fn send(&mut self, to: NodeId, msg: M) -> Result<(), TransportError>;
    /// The next message from any peer.
    async fn recv(&mut self) -> Result<(NodeId, M), TransportError>;

    /// Stops the transport and releases what it holds; once this returns, its
    /// listening address is free for a restarted node. The default does nothing.
    async fn shutdown(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// Runs a future that never waits (the in-memory store's).
    fn ready<T>(f: impl Future<Output = T>) -> T {
        match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the in-memory store never waits"),
        }
    }

    fn batch(index: u64) -> WriteBatch {
        let mut b = WriteBatch::new();
        b.put_entry(index, vec![index as u8]);
        b.set_meta("last", vec![index as u8]);
        b
    }

    /// What the in-memory store persisted — one batch, or several through the
    /// default group commit, in order — is what it loads.
    #[test]
    fn the_memory_store_loads_what_it_persisted_in_order() {
        let mut store = MemStorage::default();
        ready(Storage::persist(&mut store, batch(1))).unwrap();
        ready(store.persist_all(vec![batch(2), batch(3)])).unwrap();
        let rec = ready(store.load()).unwrap();
        assert_eq!(rec.log.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(rec.meta["last"], [3], "batches applied in order");
    }
}
