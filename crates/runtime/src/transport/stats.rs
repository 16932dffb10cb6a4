//! Counters the transport keeps, for operators and tests.

use crate::sync::atomic::{AtomicU64, Ordering};

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

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model-checked with loom (`scripts/loom.sh`): the counters bumped from two tasks'
    //! threads while a third takes snapshots, as `Transport::stats` does.

    use super::*;
    use crate::sync::{thread, Arc};

    /// Task 0 bumps `frames_sent` by 1 twice; task 1 bumps it by 10 and `bad_frames`
    /// by 1. Every snapshot shows a sum of some of those bumps (none lost, none torn),
    /// a later snapshot never shows less than an earlier one, and once the tasks are
    /// joined the snapshot holds every bump. A bump written as a load and a store
    /// loses one of them in some interleaving and fails the last check.
    #[test]
    fn concurrent_bumps_are_never_lost_and_snapshots_never_go_back() {
        loom::model(|| {
            let counters = Arc::new(Counters::default());
            let tasks: Vec<_> = (0..2)
                .map(|task| {
                    let counters = Arc::clone(&counters);
                    thread::spawn(move || {
                        if task == 0 {
                            bump(&counters.frames_sent, 1);
                            bump(&counters.frames_sent, 1);
                        } else {
                            bump(&counters.frames_sent, 10);
                            bump(&counters.bad_frames, 1);
                        }
                    })
                })
                .collect();

            let first = counters.snapshot();
            let second = counters.snapshot();
            for seen in [first, second] {
                assert!(
                    [0, 1, 2, 10, 11, 12].contains(&seen.frames_sent),
                    "{seen:?}"
                );
                assert!(seen.bad_frames <= 1, "{seen:?}");
            }
            assert!(second.frames_sent >= first.frames_sent);
            assert!(second.bad_frames >= first.bad_frames);

            for task in tasks {
                task.join().unwrap();
            }
            let last = counters.snapshot();
            assert_eq!((last.frames_sent, last.bad_frames), (12, 1));
            assert_eq!(last.frames_received, 0, "an untouched counter stays 0");
        });
    }
}
