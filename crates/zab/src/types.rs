//! Zab's identifiers: epochs, zxids and log positions.
//!
//! A **zxid** names a transaction: `(epoch, counter)`, the epoch of the leader that
//! proposed it and its rank among that leader's proposals, ordered lexicographically
//! (Junqueira, Reed & Serafini, "Zab", DSN 2011, §III: "a transaction identifier
//! zxid ... is a pair ⟨e, c⟩"). ZooKeeper packs it into one 64-bit number, epoch in
//! the high half; [`Zxid::to_u64`] does the same, so the order of the packed numbers
//! is the order of the pairs.
//!
//! Zxids are not dense — a new epoch restarts the counter at 1, and a truncated
//! suffix leaves a gap — so the log stores transactions at dense **positions**
//! ([`Pos`]) and keeps each one's zxid in the entry. synod-core's in-memory log and
//! the runtime's file WAL both index by position, and the two agree by construction.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A leader's epoch. `Epoch(0)` is the one before any leader was established.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch(pub u32);

impl Epoch {
    /// The epoch after this one.
    ///
    /// # Panics
    /// After 2^32 − 1 epochs (ZooKeeper forces a new election scheme there too).
    pub fn next(self) -> Epoch {
        Epoch(self.0.checked_add(1).expect("epoch space exhausted"))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// A transaction id: `(epoch, counter)`, ordered by epoch, then counter.
/// `Zxid::ZERO` precedes every transaction (an empty history).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Zxid {
    /// Epoch of the leader that proposed it.
    pub epoch: Epoch,
    /// Its rank among that leader's proposals, from 1.
    pub counter: u32,
}

impl Zxid {
    /// Before every transaction.
    pub const ZERO: Zxid = Zxid {
        epoch: Epoch(0),
        counter: 0,
    };

    /// `(epoch, counter)`.
    pub fn new(epoch: Epoch, counter: u32) -> Zxid {
        Zxid { epoch, counter }
    }

    /// The next zxid of the same leader.
    ///
    /// # Panics
    /// After 2^32 − 1 proposals in one epoch (ZooKeeper starts a new epoch there).
    pub fn next(self) -> Zxid {
        let counter = self.counter.checked_add(1).expect("zxid counter exhausted");
        Zxid { counter, ..self }
    }

    /// ZooKeeper's packed form: epoch in the high 32 bits, counter in the low.
    pub fn to_u64(self) -> u64 {
        (u64::from(self.epoch.0) << 32) | u64::from(self.counter)
    }

    /// The inverse of [`Zxid::to_u64`].
    pub fn from_u64(packed: u64) -> Zxid {
        Zxid {
            epoch: Epoch((packed >> 32) as u32),
            counter: packed as u32,
        }
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.to_u64())
    }
}

/// A dense position in the transaction log, from 1; `Pos(0)` is before the first.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Pos(pub u64);

impl Pos {
    /// The next position.
    pub fn next(self) -> Pos {
        Pos(self.0 + 1)
    }

    /// The previous position (`Pos(0)` stays).
    pub fn prev(self) -> Pos {
        Pos(self.0.saturating_sub(1))
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zab_3_zxids_order_by_epoch_then_counter() {
        let a = Zxid::new(Epoch(1), 900);
        let b = Zxid::new(Epoch(2), 1);
        assert!(a < b, "a later epoch wins whatever the counter");
        assert!(Zxid::ZERO < Zxid::new(Epoch(0), 1));
        assert!(a < a.next());
    }

    #[test]
    fn packed_zxids_keep_the_order_and_round_trip() {
        let zxids = [
            Zxid::ZERO,
            Zxid::new(Epoch(0), u32::MAX),
            Zxid::new(Epoch(1), 0),
            Zxid::new(Epoch(1), 7),
            Zxid::new(Epoch(u32::MAX), u32::MAX),
        ];
        for w in zxids.windows(2) {
            assert!(w[0] < w[1] && w[0].to_u64() < w[1].to_u64(), "{w:?}");
        }
        for z in zxids {
            assert_eq!(Zxid::from_u64(z.to_u64()), z);
        }
        assert_eq!(Zxid::new(Epoch(2), 5).to_string(), "0x200000005");
    }

    #[test]
    #[should_panic(expected = "zxid counter exhausted")]
    fn a_counter_never_wraps_into_the_next_epoch() {
        let _ = Zxid::new(Epoch(1), u32::MAX).next();
    }
}
