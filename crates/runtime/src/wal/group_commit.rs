//! The queue between a node's driver and the thread that owns its [`FileStorage`]:
//! the driver pushes each input's [`WriteBatch`] without waiting, and the WAL thread
//! takes everything pending in one go and makes it durable with a single sync
//! ([`FileStorage::write_batches`]) — group commit.
//!
//! Batches get dense sequence numbers in push order, so the WAL thread can report
//! "durable through sequence *s*" and the driver can release the messages and replies
//! that waited for those batches (persist-before-send).
//!
//! A std [`Mutex`](std::sync::Mutex) and [`Condvar`](std::sync::Condvar) suffice: the
//! critical sections only move a `Vec`, and the consumer is a dedicated OS thread that
//! may block. Under `cfg(loom)` they are loom's, and `loom_tests` model-check the
//! queue with two producers and a consumer.
//!
//! The queue has no bound of its own (pushing never blocks a protocol's event loop);
//! the driver bounds it with its limit on batches in flight.
//!
//! [`FileStorage`]: super::FileStorage
//! [`FileStorage::write_batches`]: super::FileStorage::write_batches

use crate::sync::{Condvar, Mutex, MutexGuard};
use std::sync::PoisonError;
use synod_core::WriteBatch;

/// A multi-producer, single-consumer queue of [`WriteBatch`]es for group commit.
#[derive(Debug, Default)]
pub struct GroupCommitQueue {
    pending: Mutex<Pending>,
    /// Signalled when a batch is pushed or the queue closes.
    consumer_wakeup: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    /// Batches pushed and not yet taken, in push order.
    batches: Vec<WriteBatch>,
    /// Sequence number of `batches[0]` (or of the next push, if empty). Invariant:
    /// every number below it was handed to the consumer exactly once.
    first_seq: u64,
    /// Set by [`GroupCommitQueue::close`]; never cleared.
    closed: bool,
    /// The consumer is blocked in `take_all` (or about to be: it sets this under the
    /// lock that `wait` releases). Only then does a push signal the condvar: while the
    /// consumer is busy syncing, pushes skip the wake-up system call.
    consumer_waiting: bool,
}

/// [`GroupCommitQueue::push`] after [`close`](GroupCommitQueue::close): the batch is
/// handed back, not queued, so that no batch is silently dropped.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("group commit queue closed")]
pub struct QueueClosed(pub WriteBatch);

impl GroupCommitQueue {
    /// An empty, open queue; the first batch pushed gets sequence number 0.
    pub fn new() -> GroupCommitQueue {
        GroupCommitQueue::default()
    }

    /// Queues `batch` and returns its sequence number. Never blocks (beyond the short
    /// critical section). Fails, handing the batch back, once the queue is closed.
    pub fn push(&self, batch: WriteBatch) -> Result<u64, QueueClosed> {
        let mut pending = self.lock();
        if pending.closed {
            return Err(QueueClosed(batch));
        }
        let seq = pending.first_seq + pending.batches.len() as u64;
        pending.batches.push(batch);
        let wake = pending.consumer_waiting;
        drop(pending);
        if wake {
            self.consumer_wakeup.notify_one();
        }
        Ok(seq)
    }

    /// Takes every pending batch, with the sequence number of the first; blocks while
    /// none is pending and the queue is open. After [`close`](Self::close) it still
    /// returns what is pending, then `None`. For the one consumer thread.
    pub fn take_all(&self) -> Option<(u64, Vec<WriteBatch>)> {
        let mut pending = self.lock();
        while pending.batches.is_empty() && !pending.closed {
            pending.consumer_waiting = true;
            pending = self
                .consumer_wakeup
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
            pending.consumer_waiting = false;
        }
        if pending.batches.is_empty() {
            return None;
        }
        let first_seq = pending.first_seq;
        let batches = std::mem::take(&mut pending.batches);
        pending.first_seq += batches.len() as u64;
        Some((first_seq, batches))
    }

    /// Refuses further pushes and wakes the consumer, which drains what is pending and
    /// then gets `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.consumer_wakeup.notify_all();
    }

    /// Number of batches pushed and not yet taken.
    pub fn pending_len(&self) -> usize {
        self.lock().batches.len()
    }

    /// `true` once [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The state, even if another thread panicked while holding the lock: every
    /// critical section leaves `Pending` consistent (they only push, take or set a
    /// flag), so poisoning cannot expose a half-done update.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    fn tagged(producer: u8, n: u32) -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.set_meta("tag", [&[producer][..], &n.to_le_bytes()].concat());
        batch
    }

    fn tag_of(batch: &WriteBatch) -> (u8, u32) {
        match &batch.ops()[0] {
            synod_core::StorageOp::SetMeta { value, .. } => (
                value[0],
                u32::from_le_bytes([value[1], value[2], value[3], value[4]]),
            ),
            other => panic!("unexpected op {other:?}"),
        }
    }

    #[test]
    fn concurrent_pushes_are_taken_once_in_producer_order_with_dense_sequence_numbers() {
        const PRODUCERS: u8 = 4;
        const PUSHES: u32 = 2_000;
        let queue = Arc::new(GroupCommitQueue::new());
        let consumer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut taken = Vec::new();
                while let Some((first_seq, batches)) = queue.take_all() {
                    assert_eq!(first_seq, taken.len() as u64, "sequence numbers are dense");
                    taken.extend(batches.iter().map(tag_of));
                }
                taken
            })
        };
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    (0..PUSHES)
                        .map(|n| queue.push(tagged(p, n)).expect("queue open"))
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let seqs: Vec<Vec<u64>> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        queue.close();
        let taken = consumer.join().unwrap();

        assert_eq!(taken.len(), PRODUCERS as usize * PUSHES as usize);
        for (p, seqs) in seqs.iter().enumerate() {
            for (n, &seq) in seqs.iter().enumerate() {
                assert_eq!(
                    taken[seq as usize],
                    (p as u8, n as u32),
                    "push returned seq {seq}"
                );
            }
        }
    }

    #[test]
    fn close_wakes_a_waiting_consumer_and_refuses_later_pushes() {
        let queue = Arc::new(GroupCommitQueue::new());
        let consumer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.take_all())
        };
        thread::sleep(std::time::Duration::from_millis(20));
        queue.close();
        assert_eq!(consumer.join().unwrap(), None);
        assert!(queue.is_closed());
        let refused = queue.push(tagged(1, 1));
        assert_eq!(
            refused,
            Err(QueueClosed(tagged(1, 1))),
            "the batch is handed back"
        );
    }

    #[test]
    fn close_keeps_pending_batches_for_the_consumer() {
        let queue = GroupCommitQueue::new();
        assert_eq!(queue.push(tagged(0, 0)), Ok(0));
        assert_eq!(queue.push(tagged(0, 1)), Ok(1));
        queue.close();
        assert_eq!(queue.pending_len(), 2);
        let (first_seq, batches) = queue.take_all().expect("pending batches survive close");
        assert_eq!((first_seq, batches.len()), (0, 2));
        assert_eq!(queue.take_all(), None);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model-checked with loom: every interleaving of two producers and a consumer
    //! (the main thread), up to [`PREEMPTIONS_DEFAULT`] preemptions unless
    //! `LOOM_MAX_PREEMPTIONS` says otherwise. The command is in the `wal` module
    //! docs ("Model checking").

    use super::*;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    /// Preemption bound: 3 explores every interleaving of this queue's few critical
    /// sections that needs at most three forced switches, in seconds.
    const PREEMPTIONS_DEFAULT: usize = 3;

    fn check(model: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = builder.preemption_bound.or(Some(PREEMPTIONS_DEFAULT));
        builder.check(model);
    }

    fn tagged(producer: u8, n: u8) -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.set_meta("tag", vec![producer, n]);
        batch
    }

    fn tag_of(batch: &WriteBatch) -> (u8, u8) {
        match &batch.ops()[0] {
            synod_core::StorageOp::SetMeta { value, .. } => (value[0], value[1]),
            other => panic!("unexpected op {other:?}"),
        }
    }

    /// Consumer loop: every group taken, flattened, checking that the first sequence
    /// number of each group continues the previous one.
    fn drain(queue: &GroupCommitQueue) -> Vec<(u8, u8)> {
        let mut taken = Vec::new();
        while let Some((first_seq, batches)) = queue.take_all() {
            assert!(!batches.is_empty(), "take_all never returns an empty group");
            assert_eq!(first_seq, taken.len() as u64, "sequence numbers are dense");
            taken.extend(batches.iter().map(tag_of));
        }
        taken
    }

    /// Two producers push two batches each while the consumer takes; the last producer
    /// to finish closes the queue. Every batch is taken exactly once, at the sequence
    /// number its push returned (so in per-producer push order), and the consumer ends.
    #[test]
    fn two_producers_batches_taken_once_in_order_and_close_ends_the_consumer() {
        check(|| {
            let queue = Arc::new(GroupCommitQueue::new());
            let running = Arc::new(AtomicUsize::new(2));
            let producers: Vec<_> = (0..2u8)
                .map(|p| {
                    let (queue, running) = (Arc::clone(&queue), Arc::clone(&running));
                    thread::spawn(move || {
                        let first = queue.push(tagged(p, 0)).expect("open");
                        let second = queue.push(tagged(p, 1)).expect("open");
                        if running.fetch_sub(1, Ordering::AcqRel) == 1 {
                            queue.close();
                        }
                        [first, second]
                    })
                })
                .collect();

            let taken = drain(&queue);

            let seqs: Vec<[u64; 2]> = producers.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(taken.len(), 4, "every batch taken exactly once");
            for (p, seqs) in seqs.iter().enumerate() {
                assert!(seqs[0] < seqs[1], "a producer's pushes keep their order");
                for (n, &seq) in seqs.iter().enumerate() {
                    assert_eq!(taken[seq as usize], (p as u8, n as u8));
                }
            }
        });
    }

    /// A push alone (no close) wakes a consumer that waits: the producer closes the
    /// queue only after the consumer took its batch, so a push that skipped the
    /// signal while the consumer slept would hang the model (push signals only when
    /// `consumer_waiting`, which this checks in every interleaving).
    #[test]
    fn a_push_wakes_a_waiting_consumer_without_help_from_close() {
        check(|| {
            let queue = Arc::new(GroupCommitQueue::new());
            let taken = Arc::new(AtomicUsize::new(0));
            let consumer = {
                let (queue, taken) = (Arc::clone(&queue), Arc::clone(&taken));
                thread::spawn(move || {
                    while let Some((_, batches)) = queue.take_all() {
                        taken.fetch_add(batches.len(), Ordering::AcqRel);
                    }
                })
            };
            queue.push(tagged(0, 0)).expect("open");
            while taken.load(Ordering::Acquire) == 0 {
                thread::yield_now();
            }
            queue.close();
            consumer.join().unwrap();
        });
    }

    /// Producer 0 pushes and then closes, racing producer 1's push: whatever push
    /// accepted is taken (at its sequence number), whatever it refused is handed back,
    /// and the consumer ends.
    #[test]
    fn close_racing_a_push_never_loses_a_batch_nor_hangs() {
        check(|| {
            let queue = Arc::new(GroupCommitQueue::new());
            let producers: Vec<_> = (0..2u8)
                .map(|p| {
                    let queue = Arc::clone(&queue);
                    thread::spawn(move || {
                        let accepted = match queue.push(tagged(p, 0)) {
                            Ok(seq) => Some(seq),
                            Err(QueueClosed(batch)) => {
                                assert_eq!(tag_of(&batch), (p, 0), "refused batch handed back");
                                None
                            }
                        };
                        if p == 0 {
                            queue.close();
                        }
                        accepted
                    })
                })
                .collect();

            let taken = drain(&queue);

            let accepted: Vec<Option<u64>> =
                producers.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(accepted[0].is_some(), "producer 0 pushed before closing");
            assert_eq!(
                taken.len(),
                accepted.iter().flatten().count(),
                "accepted = taken"
            );
            for (p, seq) in accepted.iter().enumerate() {
                if let Some(seq) = seq {
                    assert_eq!(taken[*seq as usize], (p as u8, 0));
                }
            }
        });
    }
}
