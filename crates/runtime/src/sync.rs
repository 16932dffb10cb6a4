//! The synchronisation primitives of the runtime's own concurrent structures: std's,
//! or loom's model-checked ones when the crate is built with `--features loom` (which
//! sets `cfg(loom)` for this crate alone: `build.rs`).
//!
//! Every structure the runtime shares between threads by hand takes its primitives
//! from here, and each has a `loom_tests` module beside it: the group-commit queue
//! (`wal/group_commit.rs`), the segment preparer's cancellable thread
//! (`wal/prepare.rs`), the transport's and the client server's counters
//! (`transport/stats.rs`) and the fault-injecting disk's shared plan
//! (`wal/faults.rs`). What crosses between tokio tasks goes through tokio's channels,
//! which tokio model-checks itself. `scripts/loom.sh` runs the models.

#[cfg(loom)]
pub(crate) use loom::{
    sync::{atomic, Arc, Condvar, Mutex, MutexGuard},
    thread,
};
#[cfg(not(loom))]
pub(crate) use std::{
    sync::{atomic, Arc, Condvar, Mutex, MutexGuard},
    thread,
};
