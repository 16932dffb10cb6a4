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
        // `id` need not be in `initial`: a node may start outside the initial
        // configuration, to be added later as a learner.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lan() -> RaftConfig {
        RaftConfig::lan(NodeId(1), [1, 2, 3].map(NodeId), 7)
    }

    /// `lan` is what its doc says, and valid.
    #[test]
    fn lan_matches_its_documentation() {
        let c = lan();
        assert_eq!(c.election_timeout_min, Duration::from_millis(150));
        assert_eq!(c.election_timeout_max, Duration::from_millis(300));
        assert_eq!(c.heartbeat_interval, Duration::from_millis(50));
        assert!(c.pre_vote && c.check_quorum);
        assert_eq!(c.snapshot_chunk_bytes, 65_536);
        assert_eq!(c.initial, Membership::with_voters([1, 2, 3].map(NodeId)));
        assert_eq!((c.id, c.seed), (NodeId(1), 7));
        assert_eq!(c.validate(), Ok(()));
    }

    /// Each rule of `validate` at its boundary: the last legal value passes, the first
    /// illegal one names the parameter.
    #[test]
    fn validate_rejects_each_bad_parameter_at_its_boundary() {
        let check = |edit: &dyn Fn(&mut RaftConfig), wrong: Option<&str>| {
            let mut c = lan();
            edit(&mut c);
            match (c.validate(), wrong) {
                (Ok(()), None) => {}
                (Err(e), Some(what)) => assert!(e.contains(what), "{e:?} names {what}"),
                (got, want) => panic!("validate gave {got:?}, expected an error naming {want:?}"),
            }
        };
        let ms = Duration::from_millis;
        check(&|c| c.election_timeout_max = ms(151), None);
        check(
            &|c| c.election_timeout_max = ms(150),
            Some("election_timeout_min"),
        );
        check(&|c| c.heartbeat_interval = ms(75), None);
        check(
            &|c| c.heartbeat_interval = ms(76),
            Some("heartbeat_interval"),
        );
        check(&|c| c.inflight_max = 0, Some("inflight_max"));
        check(&|c| c.batch_entries_max = 0, Some("batch_entries_max"));
        check(
            &|c| c.snapshot_chunk_bytes = 0,
            Some("snapshot_chunk_bytes"),
        );
        check(&|c| c.inflight_max = 1, None);
        check(&|c| c.batch_entries_max = 1, None);
        check(&|c| c.snapshot_chunk_bytes = 1, None);
        check(&|c| c.snapshot_threshold = 0, Some("snapshot_threshold"));
        check(&|c| c.snapshot_threshold = 1, None);
        // A spare that starts outside the configuration, to join as a learner.
        check(&|c| c.id = NodeId(9), None);
    }
}
