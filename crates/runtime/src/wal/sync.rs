//! The synchronisation primitives of [`group_commit`](super::group_commit): std's, or
//! loom's model-checked ones when the crate is built with `--cfg loom`.

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
