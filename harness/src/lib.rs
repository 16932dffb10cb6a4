//! # synod-harness
//!
//! The harness that runs *the same* workload, faults and checkers against every Synod
//! protocol, and the `synod` command-line tool.
//!
//! # Layout
//! - [`sim`] — the deterministic discrete-event simulator (network, disk, crashes,
//!   nemesis, trace digest, online invariants)
//! - [`workload`] — seeded closed-loop clients and operation mixes
//! - [`history`] — the JSON-lines history format the workload records
//! - [`checker`] — the linearizability checker (`synod check-history`)
//! - [`txn`] — the list-append serializability checker (`check-history --model list-append`)
//! - [`protocol`] — [`SimProtocol`](protocol::SimProtocol) adapters and
//!   [`Invariant`](protocol::Invariant)s
//! - [`adapters`] — the protocol crates as simulator protocols, with their invariants
//! - [`compose`] — protocols composed of two crates (`twopc-nb`: 2PC on Raft)
//! - [`fixture`] — a primary-backup KV used as a *test fixture* for the harness itself
//! - [`runner`] — running protocols by name
//! - [`compare`] — `synod compare`: every protocol × workload × fault profile
//! - [`cli`] — the `synod` command line

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adapters;
pub mod checker;
pub mod cli;
pub mod cli_real;
pub mod compare;
pub mod compose;
pub mod fixture;
pub mod history;
pub mod kv_client;
pub mod loadgen;
pub mod protocol;
pub mod registry;
pub mod runner;
pub mod sequence;
pub mod sim;
pub mod txn;
pub mod workload;
