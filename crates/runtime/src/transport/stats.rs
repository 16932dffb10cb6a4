//! Counters the transport keeps, for operators and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a transport's counters, all monotonic since `bind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Message frames written and flushed to a peer's socket (handshakes excluded).
    /// Written is not delivered: a connection that fails afterwards loses them.
    pub frames_sent: u64,
    /// Batched writes: each one drains a peer's queue and ends with one flush.
    pub batches_written: u64,
    /// Message frames decoded from peers and handed to the receive queue.
    pub frames_received: u64,
    /// Messages dropped by `send` because the peer's queue (or, for messages to
    /// oneself, the receive queue) was full.
    pub dropped_queue_full: u64,
    /// Inbound connections refused at the handshake: TLS failure, wrong magic,
    /// version, cluster or protocol, unknown node, this node itself, a certificate
    /// that does not name the claimed node, or no handshake in time.
    pub handshakes_rejected: u64,
    /// Inbound connections admitted after their handshake.
    pub handshakes_accepted: u64,
    /// Inbound connections closed for a malformed, oversized or truncated frame.
    pub bad_frames: u64,
    /// Inbound connections closed on accept because `inbound_connections_max` were open.
    pub connections_refused: u64,
    /// Outbound connections established (TCP, TLS and handshake written).
    pub connections_established: u64,
    /// Outbound connections established to a peer that had been connected before.
    pub reconnects: u64,
    /// Outbound connection attempts that failed.
    pub connect_failures: u64,
}

/// The live counters behind [`TransportStats`], shared by every task of a transport.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_sent: AtomicU64,
    pub(crate) batches_written: AtomicU64,
    pub(crate) frames_received: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) handshakes_rejected: AtomicU64,
    pub(crate) handshakes_accepted: AtomicU64,
    pub(crate) bad_frames: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) connections_established: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
}

/// Adds `n` to a counter. Relaxed: counters order nothing, they are only read as a
/// snapshot.
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> TransportStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            frames_sent: read(&self.frames_sent),
            batches_written: read(&self.batches_written),
            frames_received: read(&self.frames_received),
            dropped_queue_full: read(&self.dropped_queue_full),
            handshakes_rejected: read(&self.handshakes_rejected),
            handshakes_accepted: read(&self.handshakes_accepted),
            bad_frames: read(&self.bad_frames),
            connections_refused: read(&self.connections_refused),
            connections_established: read(&self.connections_established),
            reconnects: read(&self.reconnects),
            connect_failures: read(&self.connect_failures),
        }
    }
}
