//! Client-side resolution: what an application does with a read that returned
//! several siblings, before it writes back with the read's context (which then
//! replaces all of them).
//!
//! * [`pick`] — keep one sibling by the application's own order (a last-writer-wins
//!   the application chose, with its own notion of "last");
//! * [`Set`] — a set encoded as its sorted, comma-separated elements, merged by union:
//!   Dynamo's shopping cart (§4.4), where an added item is never lost (a removed one
//!   may come back — the paper's caveat; a removal needs a tombstone per element);
//! * [`Counter`] — a grow-only counter CRDT (Shapiro et al., 2011): a count per actor,
//!   merged by the maximum per actor, its value the sum — increments on both sides of
//!   a partition all count.
//!
//! ```
//! use synod_vvsync::resolve::{Counter, Set};
//!
//! // Two siblings of a cart, written on either side of a partition.
//! let cart = Set::union(["eggs,milk", "bread,milk"]).unwrap();
//! assert_eq!(cart.to_string(), "bread,eggs,milk");
//!
//! // Two siblings of a counter: actor a counted 3 on one side, b counted 2 on the other.
//! let mut total = Counter::merge(["a:3", "a:1;b:2"]).unwrap();
//! assert_eq!(total.value(), 5);
//! total.increment("b", 1);
//! assert_eq!(total.to_string(), "a:3;b:3");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The sibling that is greatest by `key` (the first of equals), if any.
pub fn pick<K: Ord>(siblings: &[String], mut key: impl FnMut(&str) -> K) -> Option<&str> {
    let mut best: Option<(&str, K)> = None;
    for s in siblings {
        let k = key(s);
        if best.as_ref().is_none_or(|(_, b)| k > *b) {
            best = Some((s, k));
        }
    }
    best.map(|(s, _)| s)
}

/// A set of strings encoded as `a,b,c` (sorted; the empty string is the empty set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set(BTreeSet<String>);

impl Set {
    /// Decodes `encoded`; an empty element (`a,,b`) is an error naming its position.
    pub fn parse(encoded: &str) -> Result<Set, String> {
        if encoded.is_empty() {
            return Ok(Set::default());
        }
        let mut set = BTreeSet::new();
        for (i, e) in encoded.split(',').enumerate() {
            if e.is_empty() {
                return Err(format!("empty element {i} in set {encoded:?}"));
            }
            set.insert(e.to_owned());
        }
        Ok(Set(set))
    }

    /// The union of every sibling, each decoded as a set.
    pub fn union<S: AsRef<str>>(siblings: impl IntoIterator<Item = S>) -> Result<Set, String> {
        let mut all = Set::default();
        for s in siblings {
            all.0.extend(Set::parse(s.as_ref())?.0);
        }
        Ok(all)
    }

    /// Adds `element` (which must not contain `,` or be empty).
    pub fn insert(&mut self, element: &str) -> Result<(), String> {
        if element.is_empty() || element.contains(',') {
            return Err(format!(
                "{element:?} cannot be a set element (empty or with a comma)"
            ));
        }
        self.0.insert(element.to_owned());
        Ok(())
    }

    /// `true` if `element` is in the set.
    pub fn contains(&self, element: &str) -> bool {
        self.0.contains(element)
    }

    /// The elements, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` if empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(e)?;
        }
        Ok(())
    }
}

/// A grow-only counter encoded as `actor:count;actor:count` (sorted by actor).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counter(BTreeMap<String, u64>);

impl Counter {
    /// Decodes `encoded` (the empty string is zero); a malformed part is an error
    /// naming it.
    pub fn parse(encoded: &str) -> Result<Counter, String> {
        let mut counts = BTreeMap::new();
        for part in encoded.split(';').filter(|p| !p.is_empty()) {
            let (actor, n) = part
                .split_once(':')
                .ok_or_else(|| format!("counter part {part:?} is not actor:count"))?;
            let n: u64 = n
                .parse()
                .map_err(|e| format!("counter part {part:?}: count {n:?}: {e}"))?;
            counts.insert(actor.to_owned(), n);
        }
        Ok(Counter(counts))
    }

    /// The merge of every sibling: per actor, the highest count any of them holds.
    pub fn merge<S: AsRef<str>>(siblings: impl IntoIterator<Item = S>) -> Result<Counter, String> {
        let mut all = Counter::default();
        for s in siblings {
            for (actor, n) in Counter::parse(s.as_ref())?.0 {
                let mine = all.0.entry(actor).or_insert(0);
                *mine = (*mine).max(n);
            }
        }
        Ok(all)
    }

    /// Counts `by` more for `actor` (each actor counts only its own increments).
    pub fn increment(&mut self, actor: &str, by: u64) {
        *self.0.entry(actor.to_owned()).or_insert(0) += by;
    }

    /// Each actor's count, by actor.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(actor, &n)| (actor.as_str(), n))
    }

    /// The total.
    pub fn value(&self) -> u64 {
        self.0.values().sum()
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (actor, n)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{actor}:{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_keeps_the_greatest_and_the_first_of_equals() {
        let s = vec!["b:2".to_string(), "a:9".into(), "c:9".into()];
        let by_count = |v: &str| v.split(':').nth(1).unwrap().parse::<u32>().unwrap();
        assert_eq!(pick(&s, by_count), Some("a:9"));
        assert_eq!(pick(&[], by_count), None);
    }

    #[test]
    fn malformed_values_are_errors_naming_the_part() {
        assert!(Set::parse("a,,b").unwrap_err().contains("element 1"));
        assert!(Counter::parse("a:1;b").unwrap_err().contains("\"b\""));
        assert!(Counter::parse("a:x").unwrap_err().contains("count \"x\""));
        assert!(Set::default().insert("a,b").is_err());
    }

    #[test]
    fn set_union_and_counter_merge_are_order_free_and_idempotent() {
        let a = Set::union(["x,y", "z"]).unwrap();
        let b = Set::union(["z", "x,y", "y"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(Set::parse(&a.to_string()).unwrap(), a);
        let c = Counter::merge(["p:2;q:1", "q:4"]).unwrap();
        assert_eq!(c, Counter::merge(["q:4", "p:2;q:1", "q:4"]).unwrap());
        assert_eq!(c.value(), 6);
    }

    /// The set's view: membership, sorted elements, size — what a client merging
    /// siblings (the `set` workload) reads its answer from.
    #[test]
    fn a_set_reports_its_elements_sorted_and_its_size() {
        let mut s = Set::union(["b,a", "c"]).unwrap();
        assert!(s.contains("a") && !s.contains("d"));
        assert_eq!(s.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!((s.len(), s.is_empty()), (3, false));
        s.insert("d").unwrap();
        assert_eq!(s.len(), 4);
        assert!(Set::default().is_empty());
        assert_eq!(Set::default().len(), 0);
    }

    /// A grow-only counter: an actor's increment adds to its own count only, and
    /// survives a merge with a sibling that has an older count of it.
    #[test]
    fn a_counter_increment_adds_to_its_actors_count_only() {
        let mut c = Counter::parse("p:2;q:1").unwrap();
        c.increment("q", 3);
        c.increment("r", 2);
        assert_eq!(c.iter().collect::<Vec<_>>(), [("p", 2), ("q", 4), ("r", 2)]);
        assert_eq!(c.value(), 8);
        let merged = Counter::merge([c.to_string(), "q:1".into()]).unwrap();
        assert_eq!(merged, c);
        assert_eq!(Counter::default().iter().count(), 0);
    }
}
