//! The memo of visited search configurations: (linearised set, state).
//!
//! Two ideas keep it fast and small:
//! - The linearised set carries a Zobrist hash (xor of a fixed random word
//!   per op), updated in O(1) when an op is lifted or unlifted, so probing
//!   the cache never rehashes the whole bitset as Porcupine does.
//! - A stored set is trimmed: ops are numbered in call order and the search
//!   linearises roughly in that order, so a set is a long run of full words,
//!   a short ragged frontier, then zeros. Only the count of leading full
//!   words and the ragged middle are stored, in one shared arena; an entry
//!   for a 10,000-op partition is a few dozen bytes instead of 1.25 KB.
//!
//! Membership is exact (hash, then full compare), so the cache never prunes
//! a configuration it has not really seen.

use hashbrown::HashTable;

/// The set of linearised ops of one partition.
pub(crate) struct Bitset {
    words: Vec<u64>,
    /// Every word below `lo` is all ones; `words[lo]` is not (or lo == len).
    lo: usize,
    /// Every word at or above `hi` is zero.
    hi: usize,
    zobrist: u64,
}

impl Bitset {
    /// An empty set over `n` ops.
    pub(crate) fn new(n: usize) -> Self {
        Bitset {
            words: vec![0; n.div_ceil(64)],
            lo: 0,
            hi: 0,
            zobrist: 0,
        }
    }

    /// Adds op `i` (must be absent).
    #[inline]
    pub(crate) fn insert(&mut self, i: usize) {
        let w = i / 64;
        self.words[w] |= 1 << (i % 64);
        self.zobrist ^= zobrist(i);
        self.hi = self.hi.max(w + 1);
        while self.lo < self.words.len() && self.words[self.lo] == u64::MAX {
            self.lo += 1;
        }
    }

    /// Removes op `i` (must be present).
    #[inline]
    pub(crate) fn remove(&mut self, i: usize) {
        let w = i / 64;
        self.words[w] &= !(1 << (i % 64));
        self.zobrist ^= zobrist(i);
        self.lo = self.lo.min(w);
        while self.hi > 0 && self.words[self.hi - 1] == 0 {
            self.hi -= 1;
        }
    }

    /// The canonical trimmed form: (leading full words, ragged middle).
    fn trimmed(&self) -> (usize, &[u64]) {
        let end = self.hi.max(self.lo);
        (self.lo, &self.words[self.lo..end])
    }
}

/// splitmix64 finaliser: a fixed pseudo-random word per input.
#[inline]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn zobrist(i: usize) -> u64 {
    mix(i as u64)
}

/// One visited configuration.
struct Entry {
    hash: u64,
    /// Start of the ragged middle in the arena.
    off: usize,
    lo: u32,
    len: u32,
    state: u32,
}

/// Exact set of visited (linearised set, state) pairs.
pub(crate) struct Cache {
    table: HashTable<Entry>,
    arena: Vec<u64>,
}

impl Cache {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        Cache {
            table: HashTable::new(),
            arena: Vec::new(),
        }
    }

    /// Records (`set`, `state`); false if it was already there.
    pub(crate) fn insert(&mut self, set: &Bitset, state: u32) -> bool {
        // A distinct constant keeps state 0 from hashing like "no state".
        let hash = set.zobrist ^ mix(u64::from(state) ^ 0x5EED_5EED_5EED_5EED);
        let (lo, mid) = set.trimmed();
        let arena = &self.arena;
        let seen = self.table.find(hash, |e| {
            e.hash == hash
                && e.state == state
                && e.lo as usize == lo
                && arena[e.off..e.off + e.len as usize] == *mid
        });
        if seen.is_some() {
            return false;
        }
        // Partitions have < 2^31 ops (checked by the search), so word
        // counts fit in u32.
        let entry = Entry {
            hash,
            off: self.arena.len(),
            lo: lo as u32,
            len: mid.len() as u32,
            state,
        };
        self.arena.extend_from_slice(mid);
        self.table.insert_unique(hash, entry, |e| e.hash);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize, ops: impl IntoIterator<Item = usize>) -> Bitset {
        let mut s = Bitset::new(n);
        ops.into_iter().for_each(|i| s.insert(i));
        s
    }

    /// The stored form is canonical: a set reached by another path — it grew into
    /// later words and shrank back, or filled its first word in another order — is
    /// the configuration already seen; the same set with another state is not.
    #[test]
    fn a_set_reached_by_another_path_is_the_same_configuration() {
        let mut cache = Cache::new();
        assert!(cache.insert(&set(200, [3]), 7));
        let mut grown = set(200, [3, 150]);
        grown.remove(150);
        assert!(!cache.insert(&grown, 7), "stored twice after growing back");
        assert!(
            cache.insert(&grown, 8),
            "another state is another configuration"
        );

        let full = set(200, (0..64).chain([70]));
        assert!(cache.insert(&full, 1));
        let mut other = set(200, (0..64).rev().chain([70, 130]));
        other.remove(130);
        assert!(!cache.insert(&other, 1), "full first word stored twice");
        other.remove(5);
        assert!(cache.insert(&other, 1), "a set without op 5 is new");
        other.insert(5);
        assert!(!cache.insert(&other, 1));
    }
}
