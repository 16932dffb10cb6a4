//! `openraft` 0.9.25 beside Synod's Raft: three `Raft` nodes in one process, on one
//! thread, with an in-memory log store, an in-memory state machine applying the same
//! 16-byte `KvCommand` puts on one key to a `KvStateMachine`, and an in-process
//! network that hands every RPC straight to the target's `Raft` handle (no sockets,
//! no serialisation: requests and entries move by value, as on our side).
//!
//! # How it is driven
//!
//! openraft is not sans-IO: each `Raft` is a set of tokio tasks (its `RaftCore`,
//! one replication task per follower, a state-machine worker and a tick timer) that
//! talk over channels, and its storage and network are async traits it calls. The
//! cluster therefore owns a **current-thread** tokio runtime (one thread, like the
//! synchronous drivers), and [`OpenRaftCluster::run`] is one `block_on`:
//!
//! * the proposals due (the shared [`proposals_due`](crate::proposals_due) rule) go
//!   to the leader together, by `Raft::client_write_ff` — `client_write` without its
//!   final await: it queues the write on the leader's channel and returns the
//!   receiver of its response — so all of them are queued before the driver yields,
//!   like `DirectCluster` handing them over as one input;
//! * the driver then awaits the response receivers in a `FuturesUnordered`, counting
//!   a commit for every acknowledged write (openraft answers once the entry is
//!   applied to the leader's state machine, where the Synod driver counts its
//!   `Done` replies), takes every response already there, and tops up again;
//! * everything else — the leader appending each write, replication, the followers'
//!   appends, commits, applies — happens in openraft's own tasks, which the runtime
//!   polls on the same thread whenever the driver waits.
//!
//! The differences from the synchronous drivers are openraft's design, not the
//! bench's, and they cost it time that Synod and raft-rs do not spend: every step
//! is a task woken through a channel (a write crosses the client → core →
//! state-machine worker → core → client channels at the leader, and each
//! replication round trip is a replication task awaiting the follower's
//! `append_entries`, which itself goes through the follower's core channel), the
//! runtime schedules those tasks, and openraft reads the clock (`Instant::now`)
//! where Synod is given `now`. Each follower gets one AppendEntries in flight at a
//! time (openraft 0.9 does not pipeline) of at most `max_payload_entries` = 1024
//! entries (Synod's `batch_entries_max`); Synod pipelines 64. Log reads clone
//! entries (`RaftLogReader` returns owned entries): replication and applying each
//! copy a `KvCommand`, two `String`s.
//!
//! # Fairness choices
//!
//! * Storage is in memory: `append` reports the write flushed before it returns
//!   (persist before reply, as the Synod driver's `MemStorage`).
//! * No timer fires while measuring, as on our side: ticks are off
//!   (`enable_tick`, `enable_heartbeat` and `enable_elect` all false) and the
//!   heartbeat and election timeouts are an hour and more besides. `initialize` on
//!   node 1 makes it campaign at once (openraft's documented behaviour), so no
//!   timer is needed to elect it.
//! * Snapshots as Synod's bench configures them: one every 10,000 committed entries
//!   (`SnapshotPolicy::LogsSinceLast`), keeping 1,000 entries behind it
//!   (`max_in_snapshot_log_to_keep`), after which openraft purges the log. A
//!   snapshot is the encoded `KvStateMachine` (`Sessions::snapshot`), one small key.
//! * openraft's `tracing` instrumentation stays on, as Synod's does; the bench
//!   installs no subscriber for either.
//!
//! Correctness is checked on every applied entry: each node's state machine must
//! apply the commands in exactly the order they were proposed (`seq` 1, 2, 3, …),
//! and every acknowledged write must come back as `KvResult::Written`.

use futures::{FutureExt, StreamExt};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    Config, EmptyNode, Entry, EntryPayload, LogId, LogState, Raft, RaftLogReader,
    RaftSnapshotBuilder, ServerState, Snapshot, SnapshotMeta, SnapshotPolicy, StorageError,
    StoredMembership, Vote,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synod_core::{codec, ClientId, KvCommand, KvOp, KvResult, KvStateMachine};

openraft::declare_raft_types!(
    /// The bench's openraft types: our `KvCommand` by value as the log entry's data
    /// (openraft logs are generic over it, so nothing is encoded), the KV result as
    /// the response (`None` for openraft's own blank and membership entries), node
    /// ids 1..=3 with no address.
    pub BenchTypes:
        D = KvCommand,
        R = Option<KvResult>,
        NodeId = u64,
        Node = EmptyNode,
);

type NodeId = u64;
type BenchRaft = Raft<BenchTypes>;
type BenchEntry = Entry<BenchTypes>;

/// Nodes in the cluster (ids 1..=3).
const NODES: usize = 3;
/// Entries per AppendEntries: Synod's `batch_entries_max` in the bench.
const BATCH_ENTRIES_MAX: u64 = 1024;
/// A snapshot once this many entries were committed since the last one...
const SNAPSHOT_THRESHOLD: u64 = 10_000;
/// ...keeping this many entries in the log behind it (Synod's `snapshot_trailing`).
const SNAPSHOT_TRAILING: u64 = 1_000;
const _: () = assert!(SNAPSHOT_TRAILING < SNAPSHOT_THRESHOLD);
/// Heartbeat interval; ticks are off anyway, this only keeps `Config::validate`
/// (election timeout above the heartbeat) satisfied with no timer due in a run.
const HEARTBEAT_MS: u64 = 3_600_000;
const ELECTION_TIMEOUT_MIN_MS: u64 = 2 * HEARTBEAT_MS;
const ELECTION_TIMEOUT_MAX_MS: u64 = 3 * HEARTBEAT_MS;
/// How long setting up (and the test's quiescing) may wait for openraft's metrics.
const WAIT_MAX: Duration = Duration::from_secs(30);

/// Three openraft nodes on one current-thread runtime.
pub struct OpenRaftCluster {
    /// Drives every node's tasks and the driver; dropped last (see `Drop`).
    rt: tokio::runtime::Runtime,
    /// `rafts[i]` is node `i + 1`; node 1 leads.
    rafts: Vec<BenchRaft>,
    /// Each node's log and state machine, shared with its `Raft`, for the checks.
    logs: Vec<LogStore>,
    machines: Vec<MachineStore>,
    router: Router,
    next_seq: u64,
    value: String,
}

impl Default for OpenRaftCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenRaftCluster {
    /// Three nodes, node 1 initialised with all three as voters and elected, its
    /// first entries applied on every node.
    ///
    /// # Panics
    /// If the runtime cannot be built, openraft rejects the configuration, or node
    /// 1 is not leader with every node caught up within `WAIT_MAX`.
    pub fn new() -> OpenRaftCluster {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread tokio runtime");
        let config = Arc::new(
            Config {
                cluster_name: "synod-bench".to_string(),
                heartbeat_interval: HEARTBEAT_MS,
                election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
                election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
                enable_tick: false,
                enable_heartbeat: false,
                enable_elect: false,
                max_payload_entries: BATCH_ENTRIES_MAX,
                snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_THRESHOLD),
                max_in_snapshot_log_to_keep: SNAPSHOT_TRAILING,
                ..Config::default()
            }
            .validate()
            .expect("valid openraft config"),
        );
        let router = Router::default();
        let logs: Vec<LogStore> = (0..NODES).map(|_| LogStore::default()).collect();
        let machines: Vec<MachineStore> = (0..NODES).map(|_| MachineStore::default()).collect();
        let rafts: Vec<BenchRaft> = rt.block_on(async {
            let mut rafts = Vec::new();
            for i in 0..NODES {
                let raft = Raft::new(
                    Self::id(i),
                    config.clone(),
                    router.clone(),
                    logs[i].clone(),
                    machines[i].clone(),
                )
                .await
                .expect("openraft node starts");
                rafts.push(raft);
            }
            rafts
        });
        {
            let mut table = router.table.lock().expect("router lock");
            for (i, raft) in rafts.iter().enumerate() {
                table.insert(Self::id(i), raft.clone());
            }
        }
        let c = OpenRaftCluster {
            rt,
            rafts,
            logs,
            machines,
            router,
            next_seq: 0,
            value: "0123456789abcdef".to_string(), // 16-byte payload, as on our side
        };
        c.elect();
        c
    }

    fn id(i: usize) -> NodeId {
        i as NodeId + 1
    }

    /// Initialises node 1 with the three voters, which makes it campaign, and waits
    /// until it leads and every node has applied its first entries (the membership
    /// entry and the new leader's blank entry).
    fn elect(&self) {
        let voters: BTreeSet<NodeId> = (0..NODES).map(Self::id).collect();
        self.rt.block_on(async {
            self.rafts[0]
                .initialize(voters)
                .await
                .expect("initialize node 1");
            self.rafts[0]
                .wait(Some(WAIT_MAX))
                .state(ServerState::Leader, "node 1 leads")
                .await
                .expect("node 1 must win the first election");
            let blank = self.rafts[0].metrics().borrow().last_log_index;
            for raft in &self.rafts {
                raft.wait(Some(WAIT_MAX))
                    .applied_index_at_least(blank, "the leader's blank entry")
                    .await
                    .expect("every node applies the leader's first entries");
                raft.wait(Some(WAIT_MAX))
                    .current_leader(Self::id(0), "node 1 is known as leader")
                    .await
                    .expect("every node follows node 1");
            }
        });
    }

    /// Commits `entries` more commands keeping `in_flight` writes outstanding.
    ///
    /// # Panics
    /// If openraft fails a write, answers one other than `Written`, or a node
    /// applies commands out of proposal order.
    pub fn run(&mut self, entries: u64, in_flight: u64) {
        let leader = &self.rafts[0];
        let next_seq = &mut self.next_seq;
        let value = &self.value;
        self.rt.block_on(async {
            let mut pending = futures::stream::FuturesUnordered::new();
            let (mut proposed, mut committed) = (0, 0);
            while committed < entries {
                let due = crate::proposals_due(proposed - committed, in_flight, entries - proposed);
                for _ in 0..due {
                    *next_seq += 1;
                    let cmd = KvCommand {
                        client: ClientId(1),
                        seq: *next_seq,
                        op: KvOp::Put {
                            key: "k".to_string(),
                            value: value.clone(),
                        },
                    };
                    let response = leader
                        .client_write_ff(cmd)
                        .await
                        .expect("the leader takes the write");
                    pending.push(response);
                }
                proposed += due;
                let first = pending.next().await.expect("writes in flight");
                acknowledged(first);
                committed += 1;
                // Every response already there, before the next proposals.
                while let Some(Some(response)) = pending.next().now_or_never() {
                    acknowledged(response);
                    committed += 1;
                }
            }
        });
    }

    /// Waits until every node has applied all the leader has applied (test helper;
    /// the bench stops as soon as the leader has acknowledged its writes).
    ///
    /// # Panics
    /// If a node does not catch up within `WAIT_MAX`.
    pub fn quiesce(&self) {
        let applied = self.rafts[0].metrics().borrow().last_applied;
        let index = applied.map(|id| id.index);
        self.rt.block_on(async {
            for raft in &self.rafts {
                raft.wait(Some(WAIT_MAX))
                    .applied_index_at_least(index, "followers catch up")
                    .await
                    .expect("every node applies what the leader applied");
            }
        });
    }

    /// The last `seq` each node applied, and each node's state machine (cloned).
    pub fn applied(&self) -> (Vec<u64>, Vec<KvStateMachine>) {
        self.machines
            .iter()
            .map(|m| {
                let m = m.inner.lock().expect("state machine lock");
                (m.last_seq, m.kv.clone())
            })
            .unzip()
    }

    /// Entries currently held in node `i`'s log.
    pub fn log_len(&self, i: usize) -> usize {
        self.logs[i].inner.lock().expect("log lock").entries.len()
    }

    /// Snapshots node `i`'s state machine has built or installed.
    pub fn snapshots(&self, i: usize) -> u64 {
        self.machines[i]
            .inner
            .lock()
            .expect("state machine lock")
            .snapshots
    }
}

impl Drop for OpenRaftCluster {
    /// Stops every node, then breaks the router's references to them (each node's
    /// network holds the others' handles).
    fn drop(&mut self) {
        self.rt.block_on(async {
            for raft in &self.rafts {
                let _ = raft.shutdown().await;
            }
        });
        if let Ok(mut table) = self.router.table.lock() {
            table.clear();
        }
    }
}

/// Checks one acknowledged write.
fn acknowledged<E: Debug>(response: Result<openraft::raft::ClientWriteResult<BenchTypes>, E>) {
    let response = response
        .expect("openraft answers every write")
        .expect("openraft commits every write");
    assert_eq!(response.data, Some(KvResult::Written), "a put is written");
}

// ---------------------------------------------------------------------------
// Network: RPCs handed straight to the target node's `Raft`.

/// The in-process network: every node's `Raft` handle by id.
#[derive(Clone, Default)]
struct Router {
    table: Arc<Mutex<BTreeMap<NodeId, BenchRaft>>>,
}

impl RaftNetworkFactory<BenchTypes> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &EmptyNode) -> Connection {
        let raft = self.table.lock().expect("router lock")[&target].clone();
        Connection { target, raft }
    }
}

/// One node's connection to `target`: calls its `Raft` directly.
struct Connection {
    target: NodeId,
    raft: BenchRaft,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>>;

impl RaftNetwork<BenchTypes> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<BenchTypes>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let target = self.target;
        self.raft
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<BenchTypes>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let target = self.target;
        self.raft
            .install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let target = self.target;
        self.raft
            .vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }
}

// ---------------------------------------------------------------------------
// Log store: entries in a `VecDeque`, the vote, the purge point.

/// A node's in-memory log, shared by its `RaftCore` and replication tasks (which
/// read it through clones). A std `Mutex`: it is never held across an await.
#[derive(Clone, Default)]
struct LogStore {
    inner: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    /// The entries after `last_purged`, consecutive: `entries[0]` has index
    /// `last_purged.index + 1` (or 0 when nothing was purged).
    entries: VecDeque<BenchEntry>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

impl Log {
    /// Index of `entries[0]`.
    fn first_index(&self) -> u64 {
        self.last_purged.map_or(0, |id| id.index + 1)
    }

    /// Position in `entries` of log index `index`, clamped to the stored range.
    fn position(&self, index: u64) -> usize {
        (index.saturating_sub(self.first_index()) as usize).min(self.entries.len())
    }
}

impl RaftLogReader<BenchTypes> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<BenchEntry>, StorageError<NodeId>> {
        let log = self.inner.lock().expect("log lock");
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i + 1,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let (from, to) = (log.position(start), log.position(end));
        Ok(log.entries.range(from..to.max(from)).cloned().collect())
    }
}

impl RaftLogStorage<BenchTypes> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<BenchTypes>, StorageError<NodeId>> {
        let log = self.inner.lock().expect("log lock");
        let last = log.entries.back().map(|e| e.log_id).or(log.last_purged);
        Ok(LogState {
            last_purged_log_id: log.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.inner.lock().expect("log lock").vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().expect("log lock").vote)
    }

    /// Memory is the bench's disk: the entries are "flushed" before this returns.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<BenchTypes>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = BenchEntry> + Send,
        I::IntoIter: Send,
    {
        {
            let mut log = self.inner.lock().expect("log lock");
            for entry in entries {
                let expected = log.first_index() + log.entries.len() as u64;
                assert_eq!(entry.log_id.index, expected, "log appends leave no hole");
                log.entries.push_back(entry);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut log = self.inner.lock().expect("log lock");
        let at = log.position(log_id.index);
        log.entries.truncate(at);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut log = self.inner.lock().expect("log lock");
        let upto = log.position(log_id.index + 1);
        log.entries.drain(..upto);
        log.last_purged = Some(log_id);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// State machine: the KV, what was applied, the current snapshot.

/// A node's state machine, shared by its state-machine worker and the driver's
/// checks. A std `Mutex`, never held across an await.
#[derive(Clone, Default)]
struct MachineStore {
    inner: Arc<Mutex<Machine>>,
}

#[derive(Default)]
struct Machine {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, EmptyNode>,
    kv: KvStateMachine,
    /// `seq` of the last command applied: the proposal-order check.
    last_seq: u64,
    /// The current snapshot: its metadata and `(last_seq, kv)` encoded.
    snapshot: Option<(SnapshotMeta<NodeId, EmptyNode>, Vec<u8>)>,
    /// Snapshots built or installed so far (also their ids).
    snapshots: u64,
}

impl Machine {
    fn current_snapshot(&self) -> Option<Snapshot<BenchTypes>> {
        self.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        })
    }
}

impl RaftSnapshotBuilder<BenchTypes> for MachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<BenchTypes>, StorageError<NodeId>> {
        let mut m = self.inner.lock().expect("state machine lock");
        m.snapshots += 1;
        let meta = SnapshotMeta {
            last_log_id: m.last_applied,
            last_membership: m.membership.clone(),
            snapshot_id: m.snapshots.to_string(),
        };
        let data = codec::encode(&(m.last_seq, &m.kv));
        m.snapshot = Some((meta, data));
        Ok(m.current_snapshot().expect("just built"))
    }
}

impl RaftStateMachine<BenchTypes> for MachineStore {
    type SnapshotBuilder = MachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, EmptyNode>), StorageError<NodeId>>
    {
        let m = self.inner.lock().expect("state machine lock");
        Ok((m.last_applied, m.membership.clone()))
    }

    /// Applies committed entries, checking each command continues the proposal
    /// order exactly.
    ///
    /// # Panics
    /// If a command is not the one after the last applied (this stops the node's
    /// state-machine worker, and the driver's next write fails).
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Option<KvResult>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = BenchEntry> + Send,
        I::IntoIter: Send,
    {
        let mut m = self.inner.lock().expect("state machine lock");
        let entries = entries.into_iter();
        let mut results = Vec::with_capacity(entries.size_hint().0);
        for entry in entries {
            m.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => results.push(None),
                EntryPayload::Normal(cmd) => {
                    assert_eq!(
                        cmd.seq,
                        m.last_seq + 1,
                        "commands applied in proposal order"
                    );
                    m.last_seq = cmd.seq;
                    results.push(m.kv.apply(&cmd).into_result());
                }
                EntryPayload::Membership(membership) => {
                    m.membership = StoredMembership::new(Some(entry.log_id), membership);
                    results.push(None);
                }
            }
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> MachineStore {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, EmptyNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let (last_seq, kv): (u64, KvStateMachine) =
            codec::decode(&data).expect("a snapshot this driver encoded");
        let mut m = self.inner.lock().expect("state machine lock");
        m.last_applied = meta.last_log_id;
        m.membership = meta.last_membership.clone();
        m.last_seq = last_seq;
        m.kv = kv;
        m.snapshots += 1;
        m.snapshot = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<BenchTypes>>, StorageError<NodeId>> {
        Ok(self
            .inner
            .lock()
            .expect("state machine lock")
            .current_snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Init: three nodes, node 1 elected. Act: 500 writes with 1, then 64 in flight;
    /// then 12,000 with 1024 in flight, crossing the 10,000-entry snapshot. Check:
    /// every write was acknowledged as written (inside `run`), every node applied
    /// every command in proposal order (inside the state machine), the three state
    /// machines agree, and the snapshot let the log be purged.
    #[test]
    fn openraft_commits_every_write_and_all_nodes_apply_the_proposal_order() {
        let mut c = OpenRaftCluster::new();
        c.run(300, 1);
        c.run(200, 64);
        c.quiesce();
        let (seqs, kvs) = c.applied();
        assert_eq!(seqs, vec![500; NODES]);
        assert!(kvs.iter().all(|kv| kv == &kvs[0]));
        assert_eq!(kvs[0].read("k"), Some("0123456789abcdef"));

        c.run(12_000, 1024);
        c.quiesce();
        let (seqs, kvs) = c.applied();
        assert_eq!(seqs, vec![12_500; NODES]);
        assert!(kvs.iter().all(|kv| kv == &kvs[0]));
        for i in 0..NODES {
            assert!(c.snapshots(i) >= 1, "node {} built a snapshot", i + 1);
            assert!(
                c.log_len(i) < (SNAPSHOT_THRESHOLD + SNAPSHOT_TRAILING) as usize,
                "node {} keeps {} entries",
                i + 1,
                c.log_len(i)
            );
        }
    }
}
