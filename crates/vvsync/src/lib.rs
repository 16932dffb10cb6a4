//! # synod-vvsync
//!
//! Placeholder: this crate compiles so the workspace layout of `docs/ARCHITECTURE.md`
//! is complete, and is filled in by its own issue. Like every Synod protocol crate it
//! will be sans-IO: no sockets, clocks, threads or entropy — only inputs and
//! [`synod_core::Effects`].

#![forbid(unsafe_code)]

pub use synod_core;
