//! # synod-runtime
//!
//! Placeholder: the tokio driver, TCP transport and file WAL arrive with their own
//! issue. The crate exists so the workspace layout is complete.

#![forbid(unsafe_code)]

pub use synod_core;
