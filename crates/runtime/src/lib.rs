//! # synod-runtime
//!
//! Runs the same sans-IO protocol nodes that the simulator runs, for real: a tokio
//! driver that carries out [`Effects`](synod_core::Effects) with the persist-before-send
//! rule, a TCP transport with optional mutual TLS, and a segmented, checksummed,
//! fsync'd file WAL.
//!
//! * [`wal`] — crash-safe file storage implementing [`synod_core::Storage`].
//! * [`transport`] — TCP peer transport implementing [`synod_core::Transport`].
//! * [`driver`] — the node task: inputs in, effects out, persist before send.
//! * [`client`] / [`server`] — the client protocol on each node's client port.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod driver;
pub mod framed;
pub mod node;
pub mod pipeline;
pub mod server;
pub mod transport;
pub mod wal;

pub use synod_core;
