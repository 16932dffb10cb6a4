//! `ZabConfig`: who votes, who observes, and the protocol's timing.

use std::collections::BTreeSet;
use std::time::Duration;
use synod_core::NodeId;

/// One server's configuration. Explicit: no defaults pull in time or entropy; use
/// [`ZabConfig::lan`] for a LAN ensemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZabConfig {
    /// This server.
    pub id: NodeId,
    /// The voting members (ZooKeeper's participants), this server included unless
    /// it observes.
    pub voters: BTreeSet<NodeId>,
    /// Non-voting replicas: they learn every committed transaction but never count
    /// toward a quorum and never lead.
    pub observers: BTreeSet<NodeId>,
    /// How long a server whose votes reached a quorum waits for a better vote
    /// before it decides (ZooKeeper's `finalizeWait`, 200 ms).
    pub finalize_wait: Duration,
    /// First interval between resent notifications while nothing is heard; it
    /// doubles up to `notification_max` (ZooKeeper's `notTimeout`).
    pub notification_min: Duration,
    /// Longest interval between resent notifications.
    pub notification_max: Duration,
    /// The leader's ping period, and the follower's and leader's liveness check
    /// period (ZooKeeper's `tickTime`).
    pub tick: Duration,
    /// A follower that hears nothing from its leader, or a leader that hears from
    /// no quorum, for this long gives up and looks for a leader (`syncLimit`).
    pub sync_timeout: Duration,
    /// A leader that has not established its epoch (a quorum acknowledged
    /// NEWLEADER) this long after its election gives up (`initLimit`).
    pub init_timeout: Duration,
    /// Most transactions in one PROPOSAL.
    pub batch_max: usize,
    /// Take a snapshot once this many transactions were applied since the last one.
    pub snapshot_threshold: u64,
    /// Transactions kept in the log behind a snapshot, so lagging followers get a
    /// DIFF rather than a SNAP.
    pub snapshot_trailing: u64,
    /// Seed of the server's PRNG (notification jitter).
    pub seed: u64,
}

impl ZabConfig {
    /// Checks the parameters; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.voters.is_empty() {
            return Err("an ensemble needs at least one voter".into());
        }
        if !self.voters.contains(&self.id) && !self.observers.contains(&self.id) {
            return Err(format!("{} is neither a voter nor an observer", self.id));
        }
        if let Some(both) = self.voters.intersection(&self.observers).next() {
            return Err(format!("{both} is both a voter and an observer"));
        }
        if self.notification_min.is_zero() || self.notification_min > self.notification_max {
            return Err("notification_min must be positive and at most notification_max".into());
        }
        if self.tick.is_zero() || self.tick * 2 > self.sync_timeout {
            return Err("tick must be positive and at most half of sync_timeout".into());
        }
        if self.init_timeout < self.sync_timeout {
            return Err("init_timeout must be at least sync_timeout".into());
        }
        if self.batch_max == 0 || self.snapshot_threshold == 0 {
            return Err("batch_max and snapshot_threshold must be positive".into());
        }
        Ok(())
    }

    /// A LAN ensemble of `voters`: 20 ms finalize wait, notifications resent from
    /// 50 ms to 800 ms, 50 ms ticks, a 250 ms sync timeout, 1 s to establish.
    pub fn lan(id: NodeId, voters: impl IntoIterator<Item = NodeId>, seed: u64) -> ZabConfig {
        ZabConfig {
            id,
            voters: voters.into_iter().collect(),
            observers: BTreeSet::new(),
            finalize_wait: Duration::from_millis(20),
            notification_min: Duration::from_millis(50),
            notification_max: Duration::from_millis(800),
            tick: Duration::from_millis(50),
            sync_timeout: Duration::from_millis(250),
            init_timeout: Duration::from_secs(1),
            batch_max: 512,
            snapshot_threshold: 4096,
            snapshot_trailing: 256,
            seed,
        }
    }

    /// `true` if this server observes (does not vote).
    pub fn is_observer(&self) -> bool {
        self.observers.contains(&self.id)
    }

    /// Every other server, voters and observers.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        (self.voters.iter().chain(&self.observers))
            .copied()
            .filter(move |&p| p != self.id)
    }

    /// `true` if the voters in `ids` are a majority of the voters.
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a NodeId>) -> bool {
        let votes = ids
            .into_iter()
            .filter(|id| self.voters.contains(id))
            .count();
        votes * 2 > self.voters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_validates_and_bad_timing_is_named() {
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let cfg = ZabConfig::lan(NodeId(1), ids, 1);
        assert_eq!(cfg.validate(), Ok(()));
        let mut bad = cfg.clone();
        bad.tick = bad.sync_timeout;
        assert!(bad.validate().unwrap_err().contains("tick"));
        let mut bad = cfg.clone();
        bad.observers.insert(NodeId(2));
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("both a voter and an observer"));
        let mut bad = cfg;
        bad.id = NodeId(9);
        assert!(bad.validate().unwrap_err().contains("neither"));
    }

    #[test]
    fn a_quorum_is_a_majority_of_voters_and_observers_do_not_count() {
        let mut cfg = ZabConfig::lan(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)], 1);
        cfg.observers.insert(NodeId(4));
        assert!(!cfg.is_quorum(&[NodeId(1), NodeId(4)]));
        assert!(cfg.is_quorum(&[NodeId(1), NodeId(3)]));
        let peers: Vec<NodeId> = cfg.peers().collect();
        assert_eq!(peers, vec![NodeId(2), NodeId(3), NodeId(4)]);
    }

    /// Zab §3 (quorums): any two quorums intersect, so a quorum is *more than* half
    /// of the voters — in an even ensemble half is not enough (two halves would each
    /// elect a leader) — and no more than a majority is needed.
    #[test]
    fn zab_3_a_quorum_is_more_than_half_of_the_voters_in_even_and_odd_ensembles() {
        let ensemble = |n: u64| ZabConfig::lan(NodeId(1), (1..=n).map(NodeId), 1);
        let first = |k: u64| (1..=k).map(NodeId).collect::<Vec<_>>();
        for (voters, majority) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)] {
            let cfg = ensemble(voters);
            assert!(cfg.is_quorum(&first(majority)), "{majority} of {voters}");
            assert!(
                !cfg.is_quorum(&first(majority - 1)),
                "{} of {voters}",
                majority - 1
            );
        }
    }

    /// Every timing rule is checked at its boundary: equal values are allowed where
    /// the rule says "at most" or "at least", and one nanosecond beyond is refused,
    /// each with its own message.
    #[test]
    fn validate_accepts_each_timing_boundary_and_refuses_one_beyond_it() {
        let base = ZabConfig::lan(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)], 1);
        let ns = Duration::from_nanos(1);
        let check = |tune: &dyn Fn(&mut ZabConfig), refused: Option<&str>| {
            let mut cfg = base.clone();
            tune(&mut cfg);
            match (cfg.validate(), refused) {
                (Ok(()), None) => {}
                (Err(e), Some(what)) => assert!(e.contains(what), "{e}"),
                (got, want) => panic!("{got:?}, expected {want:?}"),
            }
        };
        check(&|c| c.notification_min = c.notification_max, None);
        check(
            &|c| c.notification_min = c.notification_max + ns,
            Some("notification_min"),
        );
        check(
            &|c| c.notification_min = Duration::ZERO,
            Some("notification_min"),
        );
        check(&|c| c.tick = c.sync_timeout / 2, None);
        check(&|c| c.tick = c.sync_timeout / 2 + ns, Some("tick"));
        check(&|c| c.tick = Duration::ZERO, Some("tick"));
        check(&|c| c.init_timeout = c.sync_timeout, None);
        check(
            &|c| c.init_timeout = c.sync_timeout - ns,
            Some("init_timeout"),
        );
        check(&|c| c.batch_max = 0, Some("batch_max"));
        check(&|c| c.snapshot_threshold = 0, Some("snapshot_threshold"));
        check(&|c| c.voters.clear(), Some("at least one voter"));
    }

    /// An observer knows it observes; a voter knows it does not.
    #[test]
    fn zab_observers_know_they_do_not_vote() {
        let mut cfg = ZabConfig::lan(NodeId(4), [NodeId(1), NodeId(2), NodeId(3)], 1);
        cfg.observers.insert(NodeId(4));
        assert_eq!(cfg.validate(), Ok(()));
        assert!(cfg.is_observer());
        cfg.id = NodeId(1);
        assert!(!cfg.is_observer());
    }
}
