//! The Paxos tests' driver: `synod-testkit`'s deterministic [`Cluster`], with each
//! layer's node builder, message names and safety check (`synod.rs`, `multi.rs`),
//! so every test is also a safety test.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

pub mod multi;
pub mod synod;

pub use synod_testkit::*;
