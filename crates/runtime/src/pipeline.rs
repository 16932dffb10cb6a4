//! Persist-before-send bookkeeping of the driver, kept free of I/O so it can be
//! tested on its own.
//!
//! Every input's [`Effects`](synod_core::Effects) may carry a write batch and the
//! messages, replies and persist notification that depend on it. The driver hands the
//! batch to storage at once (group commit merges it with its neighbours) and parks
//! the rest here. A parked item waits for *every batch submitted up to and including
//! its input* — also when its own batch was empty, because its messages may reveal
//! state that an earlier, still in-flight batch records (the contract in
//! `synod_core::node`). Items are released strictly in input order.

use std::collections::VecDeque;

/// Sequence number of a submitted write batch; batches become durable in order.
pub type BatchSeq = u64;

/// What an input produced that must wait for durability.
#[derive(Debug, PartialEq, Eq)]
pub struct Deferred<S, R> {
    /// Messages to peers.
    pub sends: Vec<S>,
    /// Replies to clients.
    pub replies: Vec<R>,
    /// Tag to pass to `Node::on_persisted` once the input's batch is durable.
    pub notify: Option<u64>,
}

impl<S, R> Deferred<S, R> {
    fn is_empty(&self) -> bool {
        self.sends.is_empty() && self.replies.is_empty() && self.notify.is_none()
    }
}

/// The queue of deferred effects, ordered by the batch each waits for.
#[derive(Debug)]
pub struct Pipeline<S, R> {
    submitted: BatchSeq,
    durable: BatchSeq,
    parked: VecDeque<(BatchSeq, Deferred<S, R>)>,
}

impl<S, R> Default for Pipeline<S, R> {
    fn default() -> Self {
        Pipeline {
            submitted: 0,
            durable: 0,
            parked: VecDeque::new(),
        }
    }
}

impl<S, R> Pipeline<S, R> {
    /// An empty pipeline: nothing submitted, nothing durable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the input's batch (if it had one) was submitted as `batch`, and
    /// returns its deferred effects if they may go out now (nothing is in flight),
    /// or parks them.
    pub fn after_input(
        &mut self,
        batch: Option<BatchSeq>,
        deferred: Deferred<S, R>,
    ) -> Option<Deferred<S, R>> {
        if let Some(seq) = batch {
            assert!(
                seq > self.submitted,
                "write batches must be submitted in order: {seq} after {}",
                self.submitted
            );
            self.submitted = seq;
        }
        if deferred.is_empty() {
            return None;
        }
        if self.durable >= self.submitted {
            return Some(deferred);
        }
        self.parked.push_back((self.submitted, deferred));
        None
    }

    /// Storage reports every batch up to `seq` durable: returns the deferred effects
    /// released by that, oldest first.
    pub fn on_durable(&mut self, seq: BatchSeq) -> Vec<Deferred<S, R>> {
        assert!(
            seq >= self.durable && seq <= self.submitted,
            "durability must advance through submitted batches: {seq} (durable {}, submitted {})",
            self.durable,
            self.submitted
        );
        self.durable = seq;
        let mut released = Vec::new();
        while let Some((waits_for, _)) = self.parked.front() {
            if *waits_for > seq {
                break;
            }
            if let Some((_, deferred)) = self.parked.pop_front() {
                released.push(deferred);
            }
        }
        released
    }

    /// Batches submitted but not yet durable.
    pub fn in_flight(&self) -> u64 {
        self.submitted - self.durable
    }

    /// Inputs whose effects are parked.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sends(ids: &[u32]) -> Deferred<u32, u32> {
        Deferred {
            sends: ids.to_vec(),
            replies: vec![],
            notify: None,
        }
    }

    #[test]
    fn nothing_in_flight_releases_at_once() {
        let mut p = Pipeline::new();
        assert_eq!(p.after_input(None, sends(&[1])), Some(sends(&[1])));
    }

    #[test]
    fn sends_wait_for_their_own_batch() {
        let mut p = Pipeline::new();
        assert_eq!(p.after_input(Some(1), sends(&[1])), None);
        assert_eq!(p.on_durable(1), vec![sends(&[1])]);
    }

    #[test]
    fn an_input_without_a_batch_waits_for_earlier_batches() {
        let mut p = Pipeline::new();
        assert_eq!(p.after_input(Some(1), sends(&[1])), None);
        // The vote reply of a later input may depend on the term in batch 1.
        assert_eq!(p.after_input(None, sends(&[2])), None);
        assert_eq!(p.on_durable(1), vec![sends(&[1]), sends(&[2])]);
    }

    #[test]
    fn group_durability_releases_only_what_it_covers() {
        let mut p = Pipeline::new();
        p.after_input(Some(1), sends(&[1]));
        p.after_input(Some(2), sends(&[2]));
        p.after_input(Some(3), sends(&[3]));
        assert_eq!(p.on_durable(2), vec![sends(&[1]), sends(&[2])]);
        assert_eq!(p.in_flight(), 1);
        assert_eq!(p.on_durable(3), vec![sends(&[3])]);
        assert_eq!(p.parked(), 0);
    }

    #[test]
    #[should_panic(expected = "durability must advance")]
    fn durability_beyond_submission_is_a_bug() {
        let mut p: Pipeline<u32, u32> = Pipeline::new();
        p.after_input(Some(1), sends(&[]));
        p.on_durable(2);
    }

    proptest! {
        /// Whatever the interleaving of inputs and completions, every send goes out
        /// exactly once, in input order, and never before every batch submitted up to
        /// its input is durable.
        #[test]
        fn releases_in_order_and_never_early(steps in proptest::collection::vec((any::<bool>(), 0u8..3), 1..60)) {
            let mut p = Pipeline::new();
            let mut next_batch = 1;
            let mut needs = Vec::new(); // per input: batches that must be durable first
            let mut out = Vec::new();
            let mut durable = 0;
            for (i, (has_batch, completions)) in steps.iter().enumerate() {
                let batch = has_batch.then(|| { next_batch += 1; next_batch - 1 });
                needs.push(next_batch - 1);
                if let Some(d) = p.after_input(batch, sends(&[i as u32])) {
                    out.extend(d.sends.iter().map(|&s| (s, durable)));
                }
                for _ in 0..*completions {
                    if durable + 1 < next_batch {
                        durable += 1;
                        for d in p.on_durable(durable) {
                            out.extend(d.sends.iter().map(|&s| (s, durable)));
                        }
                    }
                }
            }
            if next_batch > 1 {
                for d in p.on_durable(next_batch - 1) {
                    out.extend(d.sends.iter().map(|&s| (s, next_batch - 1)));
                }
            }
            let order: Vec<u32> = out.iter().map(|&(s, _)| s).collect();
            prop_assert_eq!(order, (0..steps.len() as u32).collect::<Vec<_>>());
            for (s, durable_at_release) in out {
                prop_assert!(durable_at_release >= needs[s as usize]);
            }
        }
    }
}
