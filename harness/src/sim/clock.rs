//! Per-node clocks with drift.
//!
//! A node's clock is monotonic but may run fast or slow relative to simulated real
//! time by `rate_ppm` parts per million. Changing the rate re-bases the clock at the
//! current instant so it never jumps backwards. Protocols that rely on clocks (leases)
//! must tolerate the configured maximum drift.

use synod_core::Time;

/// The largest drift the simulator will configure, in ppm. Keeps the rate positive
/// (a deposed leader's clock runs at a tenth of real time).
pub const DRIFT_PPM_LIMIT: i64 = 900_000;

/// A drifting monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NodeClock {
    base_global: u64,
    base_local: u64,
    rate_ppm: i64,
}

impl NodeClock {
    /// The node's reading at global time `t` (`t` must not precede the last re-base).
    pub fn local(&self, t: Time) -> Time {
        let dg = i128::from(t.as_nanos().saturating_sub(self.base_global));
        let dl = dg + dg * i128::from(self.rate_ppm) / 1_000_000;
        Time::from_nanos(self.base_local.saturating_add(dl.max(0) as u64))
    }

    /// The global time at which the node's clock reads `local` (never before `now`).
    pub fn global_at(&self, local: Time, now: Time) -> Time {
        let dl = i128::from(local.as_nanos().saturating_sub(self.base_local));
        let dg = dl * 1_000_000 / (1_000_000 + i128::from(self.rate_ppm));
        let t = u64::try_from(i128::from(self.base_global) + dg).unwrap_or(u64::MAX);
        Time::from_nanos(t).max(now)
    }

    /// Sets a new drift rate from global time `now` on.
    pub fn set_rate(&mut self, now: Time, rate_ppm: i64) {
        assert!(
            rate_ppm.abs() <= DRIFT_PPM_LIMIT,
            "drift {rate_ppm} ppm out of range"
        );
        self.base_local = self.local(now).as_nanos();
        self.base_global = now.as_nanos();
        self.rate_ppm = rate_ppm;
    }

    /// Current drift.
    pub fn rate_ppm(&self) -> i64 {
        self.rate_ppm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_monotonic_across_rate_changes_and_invertible() {
        let mut c = NodeClock::default();
        c.set_rate(Time::from_millis(10), 100_000); // 10% fast
        assert_eq!(c.local(Time::from_millis(20)), Time::from_millis(21));
        let before = c.local(Time::from_millis(30));
        c.set_rate(Time::from_millis(30), -100_000);
        assert_eq!(c.local(Time::from_millis(30)), before);
        assert!(c.local(Time::from_millis(40)) > before);
        let g = c.global_at(Time::from_millis(50), Time::ZERO);
        let back = c.local(g);
        assert!(back.as_nanos().abs_diff(Time::from_millis(50).as_nanos()) <= 2);
    }
}
