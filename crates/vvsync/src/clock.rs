//! Version vectors: per replica, how many of its events are known.
//!
//! A [`VersionVector`] is the *context* a vvsync client carries between a read and
//! the write that follows it (Dynamo's "context", Riak's vclock): it says which
//! writes the client had seen, so the write can replace exactly those.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use synod_core::NodeId;

/// A version vector: replica → the highest counter of it seen (absent = 0).
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionVector(BTreeMap<NodeId, u64>);

impl VersionVector {
    /// The empty vector: nothing seen.
    pub fn new() -> VersionVector {
        VersionVector::default()
    }

    /// A vector of `(replica, counter)` pairs (later pairs for the same replica win).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (NodeId, u64)>) -> VersionVector {
        let mut vv = VersionVector::new();
        for (r, n) in pairs {
            vv.set(r, n);
        }
        vv
    }

    /// What it knows of `replica`.
    pub fn get(&self, replica: NodeId) -> u64 {
        self.0.get(&replica).copied().unwrap_or(0)
    }

    /// Sets `replica`'s counter (0 removes it, so equal knowledge is equal vectors).
    pub fn set(&mut self, replica: NodeId, counter: u64) {
        if counter == 0 {
            self.0.remove(&replica);
        } else {
            self.0.insert(replica, counter);
        }
    }

    /// Counts one more event of `replica` and returns its number.
    pub fn bump(&mut self, replica: NodeId) -> u64 {
        let n = self.get(replica) + 1;
        self.0.insert(replica, n);
        n
    }

    /// `true` if this vector knows everything `other` knows (`other ≤ self`).
    pub fn descends(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(&r, &n)| self.get(r) >= n)
    }

    /// Takes the pointwise maximum with `other`.
    pub fn join(&mut self, other: &VersionVector) {
        for (&r, &n) in &other.0 {
            let mine = self.0.entry(r).or_insert(0);
            *mine = (*mine).max(n);
        }
    }

    /// `(replica, counter)` in replica order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.0.iter().map(|(&r, &n)| (r, n))
    }

    /// `true` if nothing is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (r, n)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}:{n}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descends_is_the_pointwise_order_and_join_its_least_upper_bound() {
        let a = VersionVector::from_pairs([(NodeId(1), 2), (NodeId(2), 1)]);
        let b = VersionVector::from_pairs([(NodeId(1), 1), (NodeId(3), 4)]);
        assert!(!a.descends(&b) && !b.descends(&a), "concurrent");
        let mut j = a.clone();
        j.join(&b);
        assert!(j.descends(&a) && j.descends(&b));
        assert_eq!(
            j,
            VersionVector::from_pairs([(NodeId(1), 2), (NodeId(2), 1), (NodeId(3), 4)])
        );
        assert!(a.descends(&VersionVector::new()));
        assert!(VersionVector::new().is_empty() && !a.is_empty());
        let mut zero = a.clone();
        zero.set(NodeId(2), 0);
        assert_eq!(zero, VersionVector::from_pairs([(NodeId(1), 2)]));
    }
}
