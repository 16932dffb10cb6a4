//! Time as the driver gives it: nanoseconds on a clock that never goes backwards.
//!
//! In the simulator this is virtual time; in the runtime it is a monotonic clock
//! measured from the process start. Protocols never read a clock themselves: every
//! input carries `now: Time`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in time, in nanoseconds since an arbitrary epoch fixed by the driver.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct Time(u64);

impl Time {
    /// The driver's epoch.
    pub const ZERO: Time = Time(0);
    /// A time later than any a run can reach; useful as "never".
    pub const MAX: Time = Time(u64::MAX);

    /// A time `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }

    /// A time `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Time {
        Time(micros * 1_000)
    }

    /// A time `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Time {
        Time(millis * 1_000_000)
    }

    /// A time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Time {
        Time(secs * 1_000_000_000)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is in the future.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`Time::MAX`] instead of overflowing.
    pub fn saturating_add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(duration_nanos(d)))
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Time {
    type Output = Time;
    /// Saturating: a timer set "very far away" must not wrap to the past.
    fn add(self, d: Duration) -> Time {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    /// Saturating: asking how long ago a future instant was gives zero.
    fn sub(self, earlier: Time) -> Duration {
        self.saturating_since(earlier)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let micros = (self.0 % 1_000_000_000) / 1_000;
        write!(f, "{secs}.{micros:06}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_saturates_instead_of_wrapping() {
        let t = Time::MAX + Duration::from_secs(1);
        assert_eq!(t, Time::MAX);
    }

    #[test]
    fn sub_is_saturating_and_exact() {
        let a = Time::from_millis(5);
        let b = Time::from_millis(7);
        assert_eq!(b - a, Duration::from_millis(2));
        assert_eq!(a - b, Duration::ZERO);
    }

    #[test]
    fn display_shows_seconds_and_micros() {
        assert_eq!(Time::from_nanos(1_234_567_890).to_string(), "1.234567s");
    }

    /// Every unit is the same nanosecond clock, and adding a duration is exact below
    /// the saturation point.
    #[test]
    fn units_agree_and_adding_is_exact() {
        assert_eq!(Time::from_secs(2).as_nanos(), 2_000_000_000);
        assert_eq!(Time::from_millis(2_000), Time::from_secs(2));
        assert_eq!(Time::from_micros(2_000_000), Time::from_secs(2));
        assert_eq!(Time::from_nanos(7).as_nanos(), 7);
        let mut t = Time::from_millis(5) + Duration::from_micros(1_500);
        assert_eq!(t, Time::from_micros(6_500));
        t += Duration::from_nanos(3);
        assert_eq!(t.as_nanos(), 6_500_003);
        assert_eq!(
            Time::ZERO + Duration::MAX,
            Time::MAX,
            "beyond u64 nanoseconds"
        );
    }
}
