//! Multi-Paxos configuration. Every parameter is explicit — there is no `Default`,
//! because timeouts, quorum sizes and the seed decide safety- and liveness-relevant
//! behaviour and must be chosen by the caller.

use std::collections::BTreeSet;
use std::time::Duration;
use synod_core::NodeId;

/// Configuration of one [`MultiPaxosNode`](crate::MultiPaxosNode).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MultiPaxosConfig {
    /// This node.
    pub id: NodeId,
    /// Every acceptor (each node is proposer, acceptor and learner). Fixed: this
    /// crate has no reconfiguration.
    pub members: BTreeSet<NodeId>,
    /// Promises a leader needs in phase 1. With `phase2_quorum` it must satisfy the
    /// Flexible Paxos condition (Howard, Malkhi, Spiegelman 2016): every phase-1
    /// quorum intersects every phase-2 quorum, i.e. `phase1 + phase2 > n`.
    pub phase1_quorum: usize,
    /// Acceptances that choose a value in phase 2.
    pub phase2_quorum: usize,
    /// Lower bound of the randomised timeout after which a follower that heard
    /// nothing from a leader starts phase 1. Also the leader-stickiness window: an
    /// acceptor that heard from a live leader this recently refuses other candidates.
    pub election_timeout_min: Duration,
    /// Upper bound (exclusive) of that timeout; also how long a leader waits for a
    /// quorum of answers before it steps down.
    pub election_timeout_max: Duration,
    /// Leader heartbeat period; also the retransmission period of unacknowledged
    /// accepts and the retry period of catch-up requests.
    pub heartbeat_interval: Duration,
    /// Accept messages (batches of consecutive slots) a leader keeps in flight before
    /// new commands wait in its queue.
    pub accept_inflight_max: usize,
    /// Commands per accept message, at most (also slots per retransmission).
    pub accept_batch_max: usize,
    /// Commands waiting for a free window slot; beyond it clients get `Unavailable`.
    pub proposal_queue_max: usize,
    /// Chosen values per catch-up answer.
    pub catchup_batch_max: usize,
    /// Take a snapshot once this many slots were executed since the last one.
    pub snapshot_threshold: u64,
    /// Chosen slots kept in the log behind a snapshot, so a slightly lagging replica
    /// catches up without a snapshot transfer.
    pub snapshot_trailing: u64,
    /// Seed of the node's PRNG (election jitter).
    pub seed: u64,
}

/// Members a configuration may have: a leader tracks who accepted a batch as one
/// bit per member.
pub const MEMBERS_MAX: usize = 64;

/// The smallest majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

impl MultiPaxosConfig {
    /// Checks the relationships between parameters; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.members.len();
        if n > MEMBERS_MAX {
            return Err(format!("at most {MEMBERS_MAX} members, got {n}"));
        }
        if !self.members.contains(&self.id) {
            return Err(format!("{} is not among the members", self.id));
        }
        let (q1, q2) = (self.phase1_quorum, self.phase2_quorum);
        if q1 == 0 || q2 == 0 || q1 > n || q2 > n {
            return Err(format!("quorums must be in 1..={n}, got {q1} and {q2}"));
        }
        if q1 + q2 <= n {
            return Err(format!(
                "phase-1 and phase-2 quorums must intersect: {q1} + {q2} <= {n}"
            ));
        }
        if self.election_timeout_min >= self.election_timeout_max {
            return Err("election_timeout_min must be below election_timeout_max".into());
        }
        if self.heartbeat_interval * 2 > self.election_timeout_min {
            return Err("heartbeat_interval must be at most half of election_timeout_min".into());
        }
        let bounds = [
            self.accept_inflight_max,
            self.accept_batch_max,
            self.proposal_queue_max,
            self.catchup_batch_max,
        ];
        if bounds.contains(&0) || self.snapshot_threshold == 0 {
            return Err(
                "window, batch, queue, catch-up and snapshot bounds must be positive".into(),
            );
        }
        Ok(())
    }

    /// `member`'s bit in a leader's acknowledgement sets: one bit per position in
    /// `members` (0 for a non-member).
    pub fn member_bit(&self, member: NodeId) -> u64 {
        self.members
            .iter()
            .position(|&m| m == member)
            .map_or(0, |k| 1 << k)
    }

    /// Acknowledgements of a ballot that prove no higher ballot completed phase 1:
    /// enough to intersect every phase-1 quorum (`n - phase1 + 1`). Used by reads.
    pub fn confirm_quorum(&self) -> usize {
        self.members.len() - self.phase1_quorum + 1
    }

    /// A LAN-like configuration for `id` among `members`: majority quorums,
    /// 150–300 ms election timeouts, 50 ms heartbeats, 8 accepts in flight of up to
    /// 64 commands, snapshots every 4096 slots keeping 256.
    pub fn lan(id: NodeId, members: impl IntoIterator<Item = NodeId>, seed: u64) -> Self {
        let members: BTreeSet<NodeId> = members.into_iter().collect();
        let q = majority(members.len());
        MultiPaxosConfig {
            id,
            members,
            phase1_quorum: q,
            phase2_quorum: q,
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            accept_inflight_max: 8,
            accept_batch_max: 64,
            proposal_queue_max: 4096,
            catchup_batch_max: 256,
            snapshot_threshold: 4096,
            snapshot_trailing: 256,
            seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five() -> MultiPaxosConfig {
        MultiPaxosConfig::lan(NodeId(1), (1..=5).map(NodeId), 0)
    }

    #[test]
    fn lan_is_valid_with_majorities() {
        let c = five();
        assert_eq!((c.phase1_quorum, c.phase2_quorum), (3, 3));
        assert_eq!(c.confirm_quorum(), 3);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn flexible_quorums_must_intersect() {
        let mut c = five();
        (c.phase1_quorum, c.phase2_quorum) = (4, 2);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.confirm_quorum(), 2);
        (c.phase1_quorum, c.phase2_quorum) = (3, 2);
        assert!(c.validate().unwrap_err().contains("intersect"));
        (c.phase1_quorum, c.phase2_quorum) = (6, 1);
        assert!(c.validate().is_err());
    }

    #[test]
    fn majority_is_the_smallest_strict_majority() {
        let got: Vec<usize> = (1..=7).map(majority).collect();
        assert_eq!(got, vec![1, 2, 2, 3, 3, 4, 4]);
    }

    #[test]
    fn member_bits_follow_member_order_and_non_members_have_none() {
        let c = five();
        let bits: Vec<u64> = (1..=5).map(|m| c.member_bit(NodeId(m))).collect();
        assert_eq!(bits, vec![1, 2, 4, 8, 16]);
        assert_eq!(c.member_bit(NodeId(6)), 0);
        let wide = MultiPaxosConfig::lan(NodeId(1), (1..=64).map(NodeId), 0);
        assert_eq!(wide.member_bit(NodeId(64)), 1 << 63);
    }

    /// Each check at its boundary: the last legal value passes, the first illegal
    /// one fails, so a check that is off by one or looks at the wrong field fails.
    #[test]
    fn every_check_holds_at_its_boundary() {
        let ok = |edit: &dyn Fn(&mut MultiPaxosConfig)| {
            let mut c = five();
            edit(&mut c);
            c.validate()
        };
        // Members: at most MEMBERS_MAX.
        let members = |n: u64| MultiPaxosConfig::lan(NodeId(1), (1..=n).map(NodeId), 0);
        assert_eq!(members(MEMBERS_MAX as u64).validate(), Ok(()));
        let err = members(MEMBERS_MAX as u64 + 1).validate().unwrap_err();
        assert!(err.contains("at most 64 members"), "{err}");
        // Quorums: each in 1..=n, and they intersect.
        for (q1, q2) in [(5, 1), (1, 5), (3, 3), (4, 2)] {
            assert_eq!(
                ok(&|c| (c.phase1_quorum, c.phase2_quorum) = (q1, q2)),
                Ok(())
            );
        }
        for (q1, q2) in [(0, 5), (5, 0), (6, 3), (3, 6)] {
            let err = ok(&|c| (c.phase1_quorum, c.phase2_quorum) = (q1, q2)).unwrap_err();
            assert!(err.contains("quorums must be in 1..=5"), "{q1} {q2}: {err}");
        }
        let err = ok(&|c| (c.phase1_quorum, c.phase2_quorum) = (2, 3)).unwrap_err();
        assert!(err.contains("2 + 3 <= 5"), "{err}");
        // Election timeouts: min strictly below max.
        let ns = Duration::from_nanos(1);
        assert_eq!(
            ok(&|c| c.election_timeout_max = c.election_timeout_min + ns),
            Ok(())
        );
        let err = ok(&|c| c.election_timeout_max = c.election_timeout_min).unwrap_err();
        assert!(err.contains("below election_timeout_max"), "{err}");
        // Heartbeats: at most half the minimum election timeout (150 ms here).
        assert_eq!(
            ok(&|c| c.heartbeat_interval = Duration::from_millis(75)),
            Ok(())
        );
        let err = ok(&|c| c.heartbeat_interval = Duration::from_millis(75) + ns).unwrap_err();
        assert!(err.contains("at most half"), "{err}");
        // Every bound positive, each on its own; snapshot_trailing may be 0.
        let zeroes: [&dyn Fn(&mut MultiPaxosConfig); 5] = [
            &|c| c.accept_inflight_max = 0,
            &|c| c.accept_batch_max = 0,
            &|c| c.proposal_queue_max = 0,
            &|c| c.catchup_batch_max = 0,
            &|c| c.snapshot_threshold = 0,
        ];
        for zero in zeroes {
            assert!(ok(zero).unwrap_err().contains("must be positive"));
        }
        assert_eq!(ok(&|c| c.snapshot_trailing = 0), Ok(()));
        let one = |c: &mut MultiPaxosConfig| {
            c.accept_inflight_max = 1;
            c.accept_batch_max = 1;
            c.proposal_queue_max = 1;
            c.catchup_batch_max = 1;
            c.snapshot_threshold = 1;
        };
        assert_eq!(ok(&one), Ok(()));
    }

    #[test]
    fn timing_and_bounds_are_checked() {
        let mut c = five();
        c.heartbeat_interval = c.election_timeout_min;
        assert!(c.validate().is_err());
        let mut c = five();
        c.accept_inflight_max = 0;
        assert!(c.validate().is_err());
        let mut c = five();
        c.id = NodeId(9);
        assert!(c.validate().is_err());
    }
}
