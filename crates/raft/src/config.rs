//! Raft configuration. Every parameter is explicit: there is no `Default`, because
//! timeouts and the seed decide safety-relevant behaviour and must be chosen.

use crate::types::Membership;
use std::time::Duration;
use synod_core::NodeId;

/// Configuration of one Raft node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RaftConfig {
    /// This node.
    pub id: NodeId,
    /// The cluster's initial configuration, used on first boot (until a
    /// configuration entry or snapshot says otherwise). Every member must be given the
    /// same one.
    pub initial: Membership,
    /// Lower bound of the randomised election timeout (§5.2).
    pub election_timeout_min: Duration,
    /// Upper bound (exclusive) of the randomised election timeout.
    pub election_timeout_max: Duration,
    /// Leader heartbeat period; must be well below `election_timeout_min`.
    pub heartbeat_interval: Duration,
    /// Pre-vote (thesis §9.6): a node campaigns only if a majority would vote for it,
    /// so a partitioned node does not disrupt the cluster when it comes back.
    pub pre_vote: bool,
    /// Check-quorum (thesis §6.2): a leader that has not heard from a majority for an
    /// election timeout steps down; followers that heard from a leader within the
    /// minimum election timeout ignore vote requests.
    pub check_quorum: bool,
    /// AppendEntries messages in flight per follower when pipelining.
    pub inflight_max: usize,
    /// Entries per AppendEntries message, at most.
    pub batch_entries_max: usize,
    /// Take a snapshot once this many entries were applied since the last one.
    pub snapshot_threshold: u64,
    /// Entries kept behind a snapshot, so slightly lagging followers need no snapshot.
    pub snapshot_trailing: u64,
    /// Bytes per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// How close (in entries) a learner must be to the leader's log to be promoted.
    pub promote_lag_max: u64,
    /// Seed of the node's PRNG (election jitter).
    pub seed: u64,
}

impl RaftConfig {
    /// Checks the relationships between parameters; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.election_timeout_min >= self.election_timeout_max {
            return Err("election_timeout_min must be below election_timeout_max".into());
        }
        if self.heartbeat_interval * 2 > self.election_timeout_min {
            return Err("heartbeat_interval must be at most half of election_timeout_min".into());
        }
        if self.inflight_max == 0 || self.batch_entries_max == 0 || self.snapshot_chunk_bytes == 0 {
            return Err(
                "inflight_max, batch_entries_max and snapshot_chunk_bytes must be positive".into(),
            );
        }
        if self.snapshot_threshold == 0 {
            return Err("snapshot_threshold must be positive".into());
        }
        if !self.initial.contains(self.id) && !self.initial.voters.is_empty() {
            // A node may start outside the initial configuration only to be added
            // later as a learner; that is allowed, nothing to check.
        }
        Ok(())
    }

    /// A LAN-like configuration for `id` in a cluster of `voters`: 150–300 ms
    /// election timeouts, 50 ms heartbeats, pre-vote and check-quorum on.
    pub fn lan(id: NodeId, voters: impl IntoIterator<Item = NodeId>, seed: u64) -> RaftConfig {
        RaftConfig {
            id,
            initial: Membership::with_voters(voters),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            inflight_max: 8,
            batch_entries_max: 512,
            snapshot_threshold: 4096,
            snapshot_trailing: 256,
            snapshot_chunk_bytes: 64 * 1024,
            promote_lag_max: 64,
            seed,
        }
    }
}
