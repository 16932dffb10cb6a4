//! Reconnect delays: exponential with jitter.

use std::time::Duration;
use synod_core::{NodeId, Prng};

/// The delay schedule of one peer link: a step that starts at `min` and doubles up
/// to `max`, each delay drawn uniformly from `[step / 2, step]`.
///
/// Jitter keeps the members of a cluster from reconnecting to a restarted node in
/// lock-step. It needs no entropy, only decorrelation between links, so the generator
/// is seeded from the link's two node ids.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
    prng: Prng,
}

impl Backoff {
    /// Requires `min <= max` (checked by `TransportConfig::validate`).
    pub(crate) fn new(min: Duration, max: Duration, me: NodeId, peer: NodeId) -> Backoff {
        debug_assert!(min <= max, "backoff range is validated at bind");
        let seed = me.0.rotate_left(32) ^ peer.0 ^ 0x5EED_BAC0_FF00_0000;
        Backoff {
            min,
            max,
            step: min,
            prng: Prng::new(seed),
        }
    }

    /// The delay before the next attempt; advances the step.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.prng.duration_between(self.step / 2, self.step);
        self.step = (self.step * 2).min(self.max);
        delay
    }

    /// Back to `min`, after a connection proved the peer healthy.
    pub(crate) fn reset(&mut self) {
        self.step = self.min;
    }

    /// The largest delay this schedule produces.
    pub(crate) fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_with_jitter_and_reset() {
        let min = Duration::from_millis(10);
        let max = Duration::from_millis(100);
        let mut backoff = Backoff::new(min, max, NodeId(1), NodeId(2));
        let steps = [10, 20, 40, 80, 100, 100, 100];
        for step in steps.map(Duration::from_millis) {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for step {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }

    #[test]
    fn links_to_different_peers_draw_different_delays() {
        let range = (Duration::from_millis(10), Duration::from_secs(10));
        let mut a = Backoff::new(range.0, range.1, NodeId(1), NodeId(2));
        let mut b = Backoff::new(range.0, range.1, NodeId(1), NodeId(3));
        let a: Vec<_> = (0..8).map(|_| a.next_delay()).collect();
        let b: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        assert_ne!(a, b);
    }
}
