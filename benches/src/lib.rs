//! Drivers shared by the criterion benches: each wires sans-IO nodes (or a peer
//! library's nodes) directly in one thread, with in-memory storage, so the benches
//! measure protocol code rather than I/O.

pub mod direct;
pub mod raftrs_driver;
