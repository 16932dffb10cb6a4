//! Seeded, protocol-independent client workloads, in two halves:
//!
//! * [`client`] — the closed-loop client state machine, the same for every workload:
//!   clients issue one operation at a time, send it to the node they believe leads,
//!   wait for the answer or a timeout, follow redirects and retry — always with the
//!   same `(client, seq)`, so the protocol's dedup makes a retry safe — and record
//!   every invoke and completion in the history format of `shared/design.md`:
//!   * `ok` when an attempt returns [`Outcome::Done`](synod_core::Outcome::Done);
//!   * `fail` when the client gives up and *no* attempt could have taken effect
//!     (every answer was a definite refusal), or the application refused the
//!     operation itself (a `cas` whose expected value did not match);
//!   * `info` when it gives up after an attempt that may have taken effect (a
//!     timeout or [`Outcome::Unknown`](synod_core::Outcome::Unknown)). As in
//!     Jepsen, the process is then retired and the client continues as a fresh
//!     process id.
//! * [`kv`] — what the clients ask: the KV operation generator ([`KvOps`]: keys,
//!   popularity, the op mix), one implementation of [`Ops`], which also makes the
//!   multi-key transactions of the bank and list-append workloads ([`multi`]).

pub mod client;
pub mod kv;
pub mod multi;

pub use client::{
    Answer, ClientStats, ClientStep, ClientTimeline, Completion, Invocation, Ops, Phase, Workload,
    TIMELINE_BUCKET,
};
pub use kv::{KeyDist, KvOps, Mix};

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Named workloads, identical across protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadName {
    /// Mixed KV for linearizability: get/put/append/cas/delete on 8 uniform keys.
    Kv,
    /// YCSB A-like: 50% reads, 50% puts, Zipf over 1000 keys.
    YcsbA,
    /// YCSB B-like: 95% reads.
    YcsbB,
    /// YCSB C-like: reads only (keys preloaded by the first ops of each client).
    YcsbC,
    /// Register/CAS on 3 hot keys: reads, writes and compare-and-sets.
    Register,
    /// Puts only, 16-byte values, uniform over 1000 keys: the write path alone, as a
    /// ZooKeeper `setData` or etcd `put` benchmark drives it.
    Write,
    /// Transfers between 8 accounts and reads of all of them, each one transaction;
    /// the total is checked in every read ([`multi`]).
    Bank,
    /// Elle's list-append transactions over 8 lists, checked for serializability
    /// ([`multi`], [`crate::txn`]).
    ListAppend,
    /// Jepsen's set: clients add unique elements to one key (`append`; vvsync adds
    /// to the union of the siblings it read) and read it; after the heal every
    /// acknowledged element must be there (`lost`), nothing never added
    /// (`unexpected`), and unacknowledged ones found are `recovered`.
    Set,
}

impl WorkloadName {
    /// Accepted names, for error messages.
    pub const NAMES: &'static str =
        "kv, ycsb-a, ycsb-b, ycsb-c, register, write, bank, list-append, set";

    /// `true` for the workloads of multi-key transactions.
    pub fn is_transactional(self) -> bool {
        matches!(self, WorkloadName::Bank | WorkloadName::ListAppend)
    }
}

impl FromStr for WorkloadName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "kv" => WorkloadName::Kv,
            "ycsb-a" => WorkloadName::YcsbA,
            "ycsb-b" => WorkloadName::YcsbB,
            "ycsb-c" => WorkloadName::YcsbC,
            "register" => WorkloadName::Register,
            "write" => WorkloadName::Write,
            "bank" => WorkloadName::Bank,
            "list-append" => WorkloadName::ListAppend,
            "set" => WorkloadName::Set,
            other => {
                return Err(format!(
                    "unknown workload `{other}`; expected one of {}",
                    WorkloadName::NAMES
                ))
            }
        })
    }
}

impl fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadName::Kv => "kv",
            WorkloadName::YcsbA => "ycsb-a",
            WorkloadName::YcsbB => "ycsb-b",
            WorkloadName::YcsbC => "ycsb-c",
            WorkloadName::Register => "register",
            WorkloadName::Write => "write",
            WorkloadName::Bank => "bank",
            WorkloadName::ListAppend => "list-append",
            WorkloadName::Set => "set",
        })
    }
}

/// Client load configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Which workload.
    pub name: WorkloadName,
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// Operations to invoke in the main phase (across all clients).
    pub ops: u64,
    /// Number of distinct keys.
    pub keys: usize,
    /// Key popularity.
    pub key_dist: KeyDist,
    /// Written values are padded to at least this many bytes (0: as generated).
    pub value_len: usize,
    /// Operation mix.
    pub mix: Mix,
    /// How long one attempt waits for an answer.
    pub attempt_timeout: Duration,
    /// Attempts per operation in the main phase before giving up.
    pub attempts_max: u32,
    /// Pause before retrying after a refusal.
    pub retry_backoff: Duration,
    /// Think time between operations, uniform in `[0, think_max]`.
    pub think_max: Duration,
    /// Operations each client must complete `ok` after the heal (the liveness check).
    pub liveness_ops: u32,
    /// With the `write` workload: each operation is one transaction of this many
    /// puts, on keys placed on shards 0, 1, … (`"<i>/k<n>"`, which 2PC routes to
    /// shard `i`); 0 = single puts.
    pub shards_per_txn: usize,
    /// With the `bank` workload: each transfer is two single-key writes, a debit
    /// and then a credit, each an `add` to the client's own entry of the account's
    /// ledger (a protocol without transactions: vvsync); reads are of one account,
    /// and after the heal each client writes every account once more (with its
    /// pending credit first), so that everything it meant reaches the replicas.
    pub bank_per_key: bool,
    /// Record the history (off for benchmarks, to keep memory flat).
    pub record_history: bool,
    /// Clients start issuing operations after this much virtual time.
    pub start_after: Duration,
    /// Client `i` is `ClientId(client_id_base + i + 1)`. A real cluster remembers
    /// client sessions across runs, so each run against one needs fresh ids.
    pub client_id_base: u64,
}

impl WorkloadConfig {
    /// The `kv` workload with `ops` operations and 5 clients.
    pub fn standard(ops: u64) -> WorkloadConfig {
        WorkloadConfig::named(WorkloadName::Kv, ops)
    }

    /// A named workload with `ops` operations.
    pub fn named(name: WorkloadName, ops: u64) -> WorkloadConfig {
        let (keys, key_dist, mix) = match name {
            WorkloadName::Kv => (
                8,
                KeyDist::Uniform,
                Mix {
                    read: 0.4,
                    append: 0.2,
                    cas: 0.1,
                    delete: 0.05,
                },
            ),
            WorkloadName::YcsbA => (1000, KeyDist::Zipf(0.99), reads(0.5)),
            WorkloadName::YcsbB => (1000, KeyDist::Zipf(0.99), reads(0.95)),
            WorkloadName::YcsbC => (1000, KeyDist::Zipf(0.99), reads(1.0)),
            WorkloadName::Write => (1000, KeyDist::Uniform, reads(0.0)),
            // The share of reads of every account; the rest are transfers.
            WorkloadName::Bank => (8, KeyDist::Uniform, reads(0.2)),
            // The share of reads among micro-operations; the rest are appends.
            WorkloadName::ListAppend => (8, KeyDist::Uniform, reads(0.5)),
            WorkloadName::Set => (
                1,
                KeyDist::Uniform,
                Mix {
                    read: 0.3,
                    append: 0.7,
                    cas: 0.0,
                    delete: 0.0,
                },
            ),
            WorkloadName::Register => (
                3,
                KeyDist::Uniform,
                Mix {
                    read: 0.5,
                    append: 0.0,
                    cas: 0.25,
                    delete: 0.0,
                },
            ),
        };
        WorkloadConfig {
            name,
            clients: 5,
            ops,
            keys,
            key_dist,
            value_len: match name {
                WorkloadName::Write => 16,
                _ => 0,
            },
            mix,
            attempt_timeout: Duration::from_millis(500),
            attempts_max: 8,
            retry_backoff: Duration::from_millis(20),
            think_max: Duration::ZERO,
            liveness_ops: 3,
            shards_per_txn: 0,
            bank_per_key: false,
            record_history: true,
            start_after: Duration::ZERO,
            client_id_base: 0,
        }
    }
}

fn reads(read: f64) -> Mix {
    Mix {
        read,
        append: 0.0,
        cas: 0.0,
        delete: 0.0,
    }
}
