//! Interning of JSON scalars to dense `u32` ids.
//!
//! Every value that appears in a history (written values, values read, cas
//! arguments, keys) is stored once and referred to by a `u32`. Model states
//! then become plain `u32`s: equality is an integer compare, hashing is one
//! multiply, and a cache entry of the search stays a few bytes.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::history::Value;

/// Id of JSON `null`, the initial state of a register. Pre-interned.
pub(crate) const NULL_ID: u32 = 0;
/// Id of the empty string `""`, the initial state of a kv key. Pre-interned.
pub(crate) const EMPTY_ID: u32 = 1;
/// Marker for "no value" in compact op records.
pub(crate) const NONE_ID: u32 = u32::MAX;

/// A table of distinct scalar values, addressed by dense `u32` ids.
pub(crate) struct Interner {
    values: Vec<Value>,
    // Stores ids only; the hash of an id is recomputed from `values`, so each
    // string is kept once (no second copy as a map key).
    index: HashTable<u32>,
    build: DefaultHashBuilder,
}

impl Interner {
    /// A table holding `null` (id 0) and `""` (id 1).
    pub(crate) fn new() -> Self {
        let mut me = Interner {
            values: Vec::new(),
            index: HashTable::new(),
            build: DefaultHashBuilder::default(),
        };
        // Ids of these two are fixed constants used as initial model states.
        let null = me.intern(Value::Null);
        let empty = me.intern(Value::Str(String::new()));
        debug_assert_eq!((null, empty), (Some(NULL_ID), Some(EMPTY_ID)));
        me
    }

    /// Number of distinct values stored.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The value behind an id. Ids come only from this table.
    pub(crate) fn get(&self, id: u32) -> &Value {
        &self.values[id as usize]
    }

    /// Returns the id of `v`, storing it if new; `None` once 2^32-1 distinct
    /// values exist (the id space is exhausted).
    pub(crate) fn intern(&mut self, v: Value) -> Option<u32> {
        let hash = self.hash_value(&v);
        let values = &self.values;
        if let Some(&id) = self.index.find(hash, |&id| values[id as usize] == v) {
            return Some(id);
        }
        let id = u32::try_from(self.values.len())
            .ok()
            .filter(|&id| id != NONE_ID)?;
        self.values.push(v);
        let (values, build) = (&self.values, &self.build);
        self.index
            .insert_unique(hash, id, |&i| hash_with(build, &values[i as usize]));
        Some(id)
    }

    fn hash_value(&self, v: &Value) -> u64 {
        hash_with(&self.build, v)
    }
}

/// Hashes a value.
fn hash_with(build: &DefaultHashBuilder, v: &Value) -> u64 {
    let mut h = build.build_hasher();
    feed(&mut h, v);
    h.finish()
}

fn feed(h: &mut impl Hasher, v: &Value) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            h.write_u8(u8::from(*b));
        }
        Value::Num(n) => {
            h.write_u8(2);
            n.hash(h);
        }
        Value::Str(s) => {
            h.write_u8(3);
            h.write(s.as_bytes());
        }
        // Pairs are never interned as a whole, but hashing them is harmless.
        Value::Pair(p) => {
            h.write_u8(4);
            feed(h, &p.0);
            feed(h, &p.1);
        }
    }
}
