//! The trace digest: a running hash over every event the simulator processes.
//!
//! Two runs with the same seed and configuration must print the same digest; any
//! divergence (a `HashMap` iteration order leaking in, a wall-clock read, a thread
//! RNG) shows up as a different digest. The hash is ours rather than `std`'s
//! `DefaultHasher` so that its output is a stable part of this crate.

use std::hash::Hasher;

/// A fast, word-oriented, non-cryptographic running hash.
#[derive(Clone, Debug)]
pub struct TraceDigest {
    state: u64,
    events: u64,
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Default for TraceDigest {
    fn default() -> Self {
        TraceDigest {
            state: 0x243F_6A88_85A3_08D3,
            events: 0,
        }
    }
}

impl TraceDigest {
    /// Marks the start of one event (so `[a][b]` and `[ab]` hash differently).
    pub fn begin_event(&mut self, tag: u8) {
        self.events += 1;
        self.mix(u64::from(tag) | (self.events << 8));
    }

    /// Number of events folded in.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The digest so far, as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.finish())
    }

    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = (self.state.rotate_left(23) ^ word).wrapping_mul(K);
    }
}

impl Hasher for TraceDigest {
    fn finish(&self) -> u64 {
        // SplitMix64 finaliser: spreads the last words over all output bits.
        let mut z = self.state ^ self.events;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    #[test]
    fn event_boundaries_and_order_matter() {
        let mut a = TraceDigest::default();
        a.begin_event(1);
        "ab".hash(&mut a);
        let mut b = TraceDigest::default();
        b.begin_event(1);
        "a".hash(&mut b);
        b.begin_event(1);
        "b".hash(&mut b);
        assert_ne!(a.finish(), b.finish());
        let mut c = TraceDigest::default();
        c.begin_event(1);
        "ab".hash(&mut c);
        assert_eq!(a.hex(), c.hex());
    }
}
