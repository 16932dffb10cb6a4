//! Model states of one partition, and the strings `append` builds.
//!
//! A state is one interned value id (`u32`). History values keep their
//! global ids; a string that only `append` produces gets a local id above
//! them. Such a string is never materialised: it is a rope node (the state
//! it extends, the value appended) with its length and a polynomial hash,
//! so an append costs O(1), not a copy of the whole string (an append-heavy
//! key grows to kilobytes, and the search creates a state per lift).
//!
//! Ids are canonical — equal strings, equal ids — because reads compare
//! states by id and the search memo keys on them. A new concatenation is
//! looked up by (length, hash) among the partition's own string values and
//! earlier concatenations; a match is confirmed by comparing the text, so
//! equality is exact, never a hash guess. That comparison (the only O(len)
//! step) happens once per (state, appended value) pair that lands on an
//! existing string, since results are memoised.

use std::borrow::Cow;
use std::collections::HashMap;

use hashbrown::HashTable;

use super::cache::mix;
use super::history::Value;
use super::intern::{Interner, NONE_ID};
use super::model::Step;

/// The Mersenne prime 2^61 - 1: the hash is a polynomial modulo it.
const MODULUS: u64 = (1 << 61) - 1;
/// The polynomial's base (any fixed value in 2..MODULUS).
const BASE: u64 = 0x1F3D_5B79_A2C4_E681 % MODULUS;

/// `BASE^i` for i in 0..=8, to hash eight bytes per step.
const POWERS: [u64; 9] = {
    let mut p = [1u64; 9];
    let mut i = 1;
    while i < 9 {
        p[i] = mul_mod(p[i - 1], BASE);
        i += 1;
    }
    p
};

const fn mul_mod(a: u64, b: u64) -> u64 {
    // `as` because `From` is not const; u64 -> u128 is lossless.
    let p = a as u128 * b as u128;
    let r = (p as u64 & MODULUS) + (p >> 61) as u64;
    if r >= MODULUS {
        r - MODULUS
    } else {
        r
    }
}

const fn add_mod(a: u64, b: u64) -> u64 {
    let r = a + b;
    if r >= MODULUS {
        r - MODULUS
    } else {
        r
    }
}

/// Length, hash and `BASE^len` of a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meta {
    len: usize,
    hash: u64,
    pow: u64,
}

impl Meta {
    /// Horner's rule, eight bytes at a time: the eight products of a chunk
    /// are independent, so only one multiplication per chunk is serial.
    fn of(s: &str) -> Meta {
        let mut m = Meta {
            len: s.len(),
            hash: 0,
            pow: 1,
        };
        let chunks = s.as_bytes().chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            let mut part = 0;
            for (k, &b) in c.iter().enumerate() {
                part = add_mod(part, mul_mod(u64::from(b), POWERS[7 - k]));
            }
            m.hash = add_mod(mul_mod(m.hash, POWERS[8]), part);
            m.pow = mul_mod(m.pow, POWERS[8]);
        }
        for &b in rest {
            m.hash = add_mod(mul_mod(m.hash, BASE), u64::from(b));
            m.pow = mul_mod(m.pow, BASE);
        }
        m
    }

    /// The meta of `self` followed by `tail`.
    fn concat(self, tail: Meta) -> Meta {
        Meta {
            len: self.len + tail.len,
            hash: add_mod(mul_mod(self.hash, tail.pow), tail.hash),
            pow: mul_mod(self.pow, tail.pow),
        }
    }

    fn key(self) -> u64 {
        mix(self.hash ^ (self.len as u64).rotate_left(61))
    }
}

/// A string made by `append`: `parent`'s string followed by value `tail`.
struct Node {
    parent: u32,
    tail: u32,
    meta: Meta,
}

/// Applies steps to the states of one partition.
pub(crate) struct States<'h> {
    global: &'h Interner,
    /// Meta of the partition's string values (only with appends).
    global_meta: HashMap<u32, Meta>,
    local: Vec<Node>,
    /// Every id with a meta (global and local), by `Meta::key`.
    by_meta: HashTable<u32>,
    /// (state, appended value) -> result.
    appended: HashMap<(u32, u32), u32>,
    /// (state, string value) -> whether the state is a prefix of it.
    prefixes: HashMap<(u32, u32), bool>,
}

impl<'h> States<'h> {
    /// States over a history's value table, for a partition whose ops take
    /// `steps`. Every string value of the partition is registered, so an
    /// appended string equal to one of them gets that value's id.
    pub(crate) fn new(global: &'h Interner, steps: impl Iterator<Item = Step> + Clone) -> Self {
        let mut me = States {
            global,
            global_meta: HashMap::new(),
            local: Vec::new(),
            by_meta: HashTable::new(),
            appended: HashMap::new(),
            prefixes: HashMap::new(),
        };
        if !steps.clone().any(|s| matches!(s, Step::Append(_))) {
            return me;
        }
        me.register(super::intern::EMPTY_ID);
        for s in steps {
            match s {
                Step::Read(v) | Step::Write(v) | Step::Append(v) => me.register(v),
                Step::Cas(e, n) => {
                    me.register(e);
                    me.register(n);
                }
            }
        }
        me
    }

    fn register(&mut self, id: u32) {
        let Value::Str(s) = self.global.get(id) else {
            return;
        };
        if self.global_meta.contains_key(&id) {
            return;
        }
        let m = Meta::of(s);
        self.global_meta.insert(id, m);
        self.index(id, m);
    }

    /// Adds `id` (whose meta is known) to `by_meta`.
    fn index(&mut self, id: u32, m: Meta) {
        let (base, local, gm) = (self.global.len(), &self.local, &self.global_meta);
        self.by_meta.insert_unique(m.key(), id, |&i| {
            meta_of(base, local, gm, i).map_or(0, Meta::key)
        });
    }

    /// The state after `step`, or `None` if the step is illegal in `state`.
    #[inline]
    pub(crate) fn apply(&mut self, state: u32, step: Step) -> Option<u32> {
        match step {
            Step::Read(v) => (state == v).then_some(state),
            Step::Write(v) => Some(v),
            Step::Cas(expected, new) => (state == expected).then_some(new),
            Step::Append(v) => self.append(state, v),
        }
    }

    /// The value a state stands for.
    pub(crate) fn describe(&self, state: u32) -> Value {
        match self.local_index(state) {
            Some(_) => Value::Str(self.text(state).map(Cow::into_owned).unwrap_or_default()),
            None => self.global.get(state).clone(),
        }
    }

    /// Whether string `v` ends with string `suffix` (false for non-strings).
    pub(crate) fn ends_with(&self, v: u32, suffix: u32) -> bool {
        match (self.text(v), self.text(suffix)) {
            (Some(v), Some(s)) => v.ends_with(&*s),
            _ => false,
        }
    }

    /// Whether string `prefix` (a state) is a prefix of string value `v`
    /// (false for non-strings). Walks `prefix`'s rope up to an ancestor
    /// already known to be a prefix of `v`, comparing only the appended
    /// pieces, and memoises the answer; along a search path that is one
    /// piece per new state.
    pub(crate) fn is_prefix(&mut self, prefix: u32, v: u32) -> bool {
        if prefix == v {
            return true;
        }
        if let Some(&known) = self.prefixes.get(&(prefix, v)) {
            return known;
        }
        let answer = self.prefix_walk(prefix, v);
        self.prefixes.insert((prefix, v), answer);
        answer
    }

    fn prefix_walk(&self, prefix: u32, v: u32) -> bool {
        let Some(text) = self.text(v) else {
            return false;
        };
        let mut pieces = Vec::new();
        let mut cur = prefix;
        let base_ok = loop {
            match self.prefixes.get(&(cur, v)) {
                _ if cur == v => break true,
                Some(&known) if !known => return false,
                Some(_) => break true,
                None => {}
            }
            match self.local_index(cur) {
                Some(i) => {
                    let node = &self.local[i];
                    if node.meta.len > text.len() {
                        return false;
                    }
                    pieces.push(i);
                    cur = node.parent;
                }
                None => match self.text(cur) {
                    Some(root) => break text.starts_with(&*root),
                    None => return false,
                },
            }
        };
        base_ok
            && pieces.iter().all(|&i| {
                let node = &self.local[i];
                let start = node.meta.len - self.meta(node.tail).map_or(0, |m| m.len);
                match self.text(node.tail) {
                    Some(tail) => text.get(start..node.meta.len) == Some(&*tail),
                    None => false,
                }
            })
    }

    fn local_index(&self, id: u32) -> Option<usize> {
        (id as usize).checked_sub(self.global.len())
    }

    fn meta(&self, id: u32) -> Option<Meta> {
        meta_of(self.global.len(), &self.local, &self.global_meta, id)
    }

    /// The text of a string id (materialised for local ids).
    fn text(&self, id: u32) -> Option<Cow<'_, str>> {
        if self.local_index(id).is_none() {
            return match self.global.get(id) {
                Value::Str(s) => Some(Cow::Borrowed(s.as_str())),
                _ => None,
            };
        }
        let mut out = String::new();
        self.materialise(id, &mut out);
        Some(Cow::Owned(out))
    }

    /// Appends the text of string id `id` to `out`.
    fn materialise(&self, id: u32, out: &mut String) {
        let mut tails = Vec::new();
        let mut cur = id;
        while let Some(i) = self.local_index(cur) {
            tails.push(self.local[i].tail);
            cur = self.local[i].parent;
        }
        for id in std::iter::once(cur).chain(tails.into_iter().rev()) {
            if let Value::Str(s) = self.global.get(id) {
                out.push_str(s);
            }
        }
    }

    fn append(&mut self, state: u32, v: u32) -> Option<u32> {
        if let Some(&r) = self.appended.get(&(state, v)) {
            return Some(r);
        }
        let meta = self.meta(state)?.concat(self.meta(v)?);
        let id = match self.find(meta, state, v) {
            Some(id) => id,
            None => self.add_local(state, v, meta)?,
        };
        self.appended.insert((state, v), id);
        Some(id)
    }

    /// The id of the string `state` + `v` (with meta `meta`), if it exists.
    fn find(&self, meta: Meta, state: u32, v: u32) -> Option<u32> {
        let mut joined: Option<String> = None;
        let mut other = String::new();
        self.by_meta
            .find(meta.key(), |&id| {
                if self.meta(id) != Some(meta) {
                    return false;
                }
                // Same length and hash: confirm on the text.
                let joined = joined.get_or_insert_with(|| {
                    let mut s = String::with_capacity(meta.len);
                    self.materialise(state, &mut s);
                    self.materialise(v, &mut s);
                    s
                });
                other.clear();
                self.materialise(id, &mut other);
                *joined == other
            })
            .copied()
    }

    fn add_local(&mut self, parent: u32, tail: u32, meta: Meta) -> Option<u32> {
        let id = u32::try_from(self.global.len() + self.local.len())
            .ok()
            .filter(|&id| id != NONE_ID)?;
        self.local.push(Node { parent, tail, meta });
        self.index(id, meta);
        Some(id)
    }
}

/// Meta of a local id, or of a registered global one (`base`: number of
/// global ids).
fn meta_of(base: usize, local: &[Node], global: &HashMap<u32, Meta>, id: u32) -> Option<Meta> {
    match (id as usize).checked_sub(base) {
        Some(i) => local.get(i).map(|n| n.meta),
        None => global.get(&id).copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::intern::EMPTY_ID;

    fn interner(values: &[&str]) -> (Interner, Vec<u32>) {
        let mut t = Interner::new();
        let ids = values
            .iter()
            .map(|v| t.intern(Value::from(*v)).expect("few values"))
            .collect();
        (t, ids)
    }

    #[test]
    fn concatenated_meta_is_the_meta_of_the_concatenation() {
        let text: String = (0..100u8).map(|i| char::from(b'!' + i % 90)).collect();
        for cut in [0, 1, 7, 8, 9, 16, 63, 99, 100] {
            let (a, b) = text.split_at(cut);
            assert_eq!(
                Meta::of(a).concat(Meta::of(b)),
                Meta::of(&text),
                "cut {cut}"
            );
        }
        assert_ne!(Meta::of("ab").hash, Meta::of("ba").hash);
    }

    #[test]
    fn equal_strings_get_equal_ids_whatever_the_path() {
        let (t, ids) = interner(&["ab", "c", "a", "bc", "abc"]);
        let (ab, c, a, bc, abc) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
        let steps = [
            Step::Append(ab),
            Step::Append(c),
            Step::Append(a),
            Step::Append(bc),
        ];
        // "abc" is read in the partition: appends that make it get its id.
        let mut s = States::new(&t, steps.iter().copied().chain([Step::Read(abc)]));
        let via_ab = s.append(EMPTY_ID, ab).and_then(|st| s.append(st, c));
        let via_a = s.append(EMPTY_ID, a).and_then(|st| s.append(st, bc));
        assert_eq!((via_ab, via_a), (Some(abc), Some(abc)));
        assert_eq!(s.apply(EMPTY_ID, Step::Append(ab)), Some(ab));
        // Not read anywhere: a local id, still one per string.
        let mut s = States::new(&t, steps.iter().copied());
        let abc_ab = s.append(EMPTY_ID, ab).and_then(|st| s.append(st, c));
        let abc_a = s.append(EMPTY_ID, a).and_then(|st| s.append(st, bc));
        let cab = s.append(EMPTY_ID, c).and_then(|st| s.append(st, ab));
        assert_eq!(abc_ab, abc_a);
        assert_ne!(abc_ab, cab);
        assert!(abc_ab.is_some_and(|id| id as usize >= t.len()));
        assert_eq!(abc_ab.map(|id| s.describe(id)), Some(Value::from("abc")));
        assert_eq!(cab.map(|id| s.describe(id)), Some(Value::from("cab")));
    }

    #[test]
    fn prefix_of_a_read_value_through_the_rope() {
        let (t, ids) = interner(&["x 1 y", "x 2 y", "x 1 yx 2 yx 3 y", "x 3 y"]);
        let (x1, x2, read, x3) = (ids[0], ids[1], ids[2], ids[3]);
        let steps = [Step::Append(x1), Step::Append(x2), Step::Append(x3)];
        let mut s = States::new(&t, steps.into_iter().chain([Step::Read(read)]));
        let one = s.append(EMPTY_ID, x1).expect("string");
        let one_two = s.append(one, x2).expect("string");
        let two = s.append(EMPTY_ID, x2).expect("string");
        let two_one = s.append(two, x1).expect("string");
        assert!(s.is_prefix(EMPTY_ID, read));
        assert!(s.is_prefix(one, read));
        assert!(s.is_prefix(one_two, read));
        assert!(!s.is_prefix(two, read));
        assert!(!s.is_prefix(two_one, read));
        // Memoised answers agree with fresh walks, in either order.
        let full = s.append(one_two, x3).expect("string");
        assert_eq!(full, read);
        assert!(s.is_prefix(full, read));
        let over = s.append(full, x1).expect("string");
        assert!(!s.is_prefix(over, read));
        let wrong = s.append(two_one, x3).expect("string");
        assert!(!s.is_prefix(wrong, read));
    }
}
