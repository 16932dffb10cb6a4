//! The transaction log: transactions at dense positions, each with its zxid, and the
//! synchronisation plan a new leader makes for each follower from it.
//!
//! **The prefix property.** A zxid `(e, c)` is proposed once, by the one leader
//! established in epoch `e`, right after its proposals `(e, 1..c)` and its initial
//! history; every server receives a leader's transactions in order, and a sync sends
//! a whole suffix. So two histories holding the same zxid agree on everything before
//! it, and a history holds its epoch-`e` transactions as a contiguous run
//! `(e, 1..=c)` (the lower part maybe inside its snapshot). This is Zab's analogue of
//! Raft's Log Matching, and it is what [`sync_plan`] relies on.
//!
//! **Why a summary of epochs, not just the last zxid.** ZooKeeper chooses DIFF, TRUNC
//! or SNAP from the follower's last zxid alone. When that zxid is not in the leader's
//! log, "truncate to the leader's zxid just below it" can keep transactions the
//! leader does not have, or cut the follower below one it needs (the family of
//! ZOOKEEPER-1154). The follower reports instead its [`HistorySummary`]: its
//! snapshot's zxid and the last counter of every epoch it holds. With the prefix
//! property, the longest common prefix of the two histories follows from the two
//! summaries exactly, epoch by epoch.

use crate::types::{Epoch, Pos, Zxid};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Transactions from position `base.0 + 1`, in zxid order; everything up to `base` is
/// covered by the snapshot (or nothing, for `Pos(0)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnLog<T> {
    /// The last compacted position and its zxid.
    base: (Pos, Zxid),
    entries: VecDeque<(Zxid, T)>,
}

impl<T> Default for TxnLog<T> {
    fn default() -> Self {
        TxnLog {
            base: (Pos(0), Zxid::ZERO),
            entries: VecDeque::new(),
        }
    }
}

/// A server's history as a leader needs it to plan a sync: its snapshot's zxid and,
/// for every epoch it holds after it, that epoch's last counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HistorySummary {
    /// The last transaction its snapshot covers (`Zxid::ZERO` if none): committed.
    pub base: Zxid,
    /// `(epoch, last counter)` for each epoch it holds after `base`, ascending.
    pub epochs: Vec<(Epoch, u32)>,
}

impl HistorySummary {
    /// The last zxid of the history.
    pub fn last(&self) -> Zxid {
        self.epochs
            .last()
            .map_or(self.base, |&(e, c)| Zxid::new(e, c))
    }
}

/// How a leader brings one follower's history to its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPlan {
    /// The follower keeps its history through `keep` (its longest common prefix with
    /// the leader's), drops what follows (TRUNC, if anything does), and receives the
    /// leader's transactions after position `after` — where `keep` sits in the
    /// leader's log (DIFF).
    Diff {
        /// The last common transaction (`Zxid::ZERO`: none).
        keep: Zxid,
        /// Its position in the leader's log.
        after: Pos,
    },
    /// The common prefix lies in what the leader compacted: the follower replaces its
    /// state with the leader's snapshot and the log after it (SNAP).
    Snap,
}

impl<T> TxnLog<T> {
    /// A log whose snapshot ends at `base` and that holds `entries` after it.
    ///
    /// # Panics
    /// If the zxids do not strictly increase from `base.1`.
    pub fn recover(base: (Pos, Zxid), entries: impl IntoIterator<Item = (Zxid, T)>) -> Self {
        let mut log = TxnLog {
            base,
            entries: VecDeque::new(),
        };
        for (zxid, t) in entries {
            log.append(zxid, t);
        }
        log
    }

    /// The last compacted position and its zxid.
    pub fn base(&self) -> (Pos, Zxid) {
        self.base
    }

    /// The position of the last transaction.
    pub fn last_pos(&self) -> Pos {
        Pos(self.base.0 .0 + self.entries.len() as u64)
    }

    /// The zxid of the last transaction (the snapshot's if the log is empty).
    pub fn last_zxid(&self) -> Zxid {
        self.entries.back().map_or(self.base.1, |(z, _)| *z)
    }

    /// Number of transactions held (not counting the snapshot).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` if no transaction is held after the snapshot.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The transaction at `pos`, if held.
    pub fn get(&self, pos: Pos) -> Option<&(Zxid, T)> {
        let i = pos.0.checked_sub(self.base.0 .0 + 1)?;
        self.entries.get(usize::try_from(i).ok()?)
    }

    /// The zxid at `pos`: held, or the snapshot's.
    pub fn zxid_at(&self, pos: Pos) -> Option<Zxid> {
        match pos == self.base.0 {
            true => Some(self.base.1),
            false => self.get(pos).map(|(z, _)| *z),
        }
    }

    /// Appends a transaction at [`last_pos`](Self::last_pos)` + 1`.
    ///
    /// # Panics
    /// If `zxid` does not follow the last one (zxids strictly increase along a log).
    pub fn append(&mut self, zxid: Zxid, t: T) -> Pos {
        assert!(
            zxid > self.last_zxid(),
            "zxid {zxid} appended after {}",
            self.last_zxid()
        );
        self.entries.push_back((zxid, t));
        self.last_pos()
    }

    /// The position holding `zxid`: held, or the snapshot's last.
    pub fn pos_of(&self, zxid: Zxid) -> Option<Pos> {
        if zxid == self.base.1 {
            return Some(self.base.0);
        }
        let i = self.entries.binary_search_by_key(&zxid, |(z, _)| *z).ok()?;
        Some(Pos(self.base.0 .0 + 1 + i as u64))
    }

    /// The last transaction with a zxid at most `zxid`: its position and zxid.
    fn last_at_most(&self, zxid: Zxid) -> (Pos, Zxid) {
        let n = self.entries.partition_point(|(z, _)| *z <= zxid);
        match n {
            0 => self.base,
            n => (Pos(self.base.0 .0 + n as u64), self.entries[n - 1].0),
        }
    }

    /// The last counter of `epoch` among the held transactions, if any is held.
    pub fn last_counter_in(&self, epoch: Epoch) -> Option<u32> {
        let (_, z) = self.last_at_most(Zxid::new(epoch, u32::MAX));
        let held = z > self.base.1 && z.epoch == epoch;
        held.then_some(z.counter)
    }

    /// This log as a follower reports it ([`HistorySummary`]).
    pub fn summary(&self) -> HistorySummary {
        let mut epochs = Vec::new();
        let mut from = 0;
        while let Some(&(z, _)) = self.entries.get(from) {
            let end = self.entries.partition_point(|(x, _)| x.epoch <= z.epoch);
            epochs.push((z.epoch, self.entries[end - 1].0.counter));
            from = end;
        }
        HistorySummary {
            base: self.base.1,
            epochs,
        }
    }

    /// The transactions after `after`, at most `max`, in order.
    pub fn after(&self, after: Pos, max: usize) -> impl Iterator<Item = &(Zxid, T)> {
        let skip = after.0.saturating_sub(self.base.0 .0) as usize;
        self.entries.iter().skip(skip).take(max)
    }

    /// Drops every transaction after `pos` (a TRUNC). Returns how many.
    ///
    /// # Panics
    /// If `pos` is below the snapshot: compacted history is committed and never
    /// truncated.
    pub fn truncate_after(&mut self, pos: Pos) -> usize {
        assert!(
            pos >= self.base.0,
            "truncating to {pos}, below the snapshot at {}",
            self.base.0
        );
        let keep = (pos.0 - self.base.0 .0) as usize;
        let dropped = self.entries.len().saturating_sub(keep);
        self.entries.truncate(keep);
        dropped
    }

    /// Forgets the transactions through `pos` (a snapshot covers them).
    ///
    /// # Panics
    /// If `pos` is not held.
    pub fn compact_to(&mut self, pos: Pos) {
        if pos <= self.base.0 {
            return;
        }
        let zxid = self
            .zxid_at(pos)
            .expect("compacting to a position not held");
        let n = (pos.0 - self.base.0 .0) as usize;
        self.entries.drain(..n);
        self.base = (pos, zxid);
    }

    /// Replaces everything with a snapshot ending at `base` (a SNAP).
    pub fn reset_to(&mut self, base: (Pos, Zxid)) {
        self.entries.clear();
        self.base = base;
    }
}

/// The leader's plan to bring a follower whose history is `follower` to `leader`'s:
/// their longest common prefix, then DIFF (with a TRUNC if the follower holds more)
/// or, when that prefix lies in what the leader compacted, SNAP.
///
/// By the prefix property the longest common prefix ends at the latest zxid both
/// histories hold. For an epoch `e` the follower holds `(e, 1..=its counter)` and the
/// leader `(e, 1..=its counter)`, so both hold `(e, min of the two)`; the latest of
/// these over the follower's epochs (and the follower's snapshot, which is committed
/// and so in every later leader's history) is the prefix's end. An epoch the leader
/// compacted entirely gives nothing to compare, but anything common there lies below
/// the leader's snapshot, where only SNAP can help anyway.
pub fn sync_plan<T>(leader: &TxnLog<T>, follower: &HistorySummary) -> SyncPlan {
    let (_, base) = leader.base();
    let mut keep = follower.base;
    for &(epoch, counter) in &follower.epochs {
        let ours = match leader.last_counter_in(epoch) {
            Some(ours) => ours,
            // The snapshot ends inside this epoch and the log holds none after it.
            None if epoch == base.epoch => base.counter,
            // Compacted entirely, or never held.
            None => continue,
        };
        let both = Zxid::new(epoch, counter.min(ours));
        if both.counter > 0 {
            keep = keep.max(both);
        }
    }
    if keep < base {
        return SyncPlan::Snap;
    }
    let after = leader
        .pos_of(keep)
        .unwrap_or_else(|| panic!("common prefix {keep} is not in the leader's log (base {base})"));
    SyncPlan::Diff { keep, after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_core::Prng;

    fn z(e: u32, c: u32) -> Zxid {
        Zxid::new(Epoch(e), c)
    }

    fn log_of(zxids: &[Zxid]) -> TxnLog<()> {
        TxnLog::recover((Pos(0), Zxid::ZERO), zxids.iter().map(|&z| (z, ())))
    }

    #[test]
    fn positions_are_dense_while_zxids_jump() {
        let log = log_of(&[z(1, 1), z(1, 2), z(3, 1)]);
        assert_eq!(log.last_pos(), Pos(3));
        assert_eq!(log.pos_of(z(3, 1)), Some(Pos(3)));
        assert_eq!(log.pos_of(z(2, 1)), None);
        assert_eq!(log.last_counter_in(Epoch(1)), Some(2));
        assert_eq!(log.last_counter_in(Epoch(2)), None);
        let s = log.summary();
        assert_eq!(s.epochs, vec![(Epoch(1), 2), (Epoch(3), 1)]);
        assert_eq!(s.last(), z(3, 1));
    }

    #[test]
    #[should_panic(expected = "appended after")]
    fn zxids_strictly_increase_along_a_log() {
        let mut log = log_of(&[z(2, 1)]);
        log.append(z(1, 9), ());
    }

    /// `len`/`is_empty` count the transactions *held*, after the snapshot: positions
    /// stay dense across compaction, so `last_pos` is not a count. A caller sizing a
    /// DIFF or deciding whether anything is left to send relies on the difference.
    #[test]
    fn the_log_counts_the_transactions_held_after_its_snapshot() {
        let mut log = log_of(&[z(1, 1), z(1, 2), z(1, 3)]);
        assert_eq!((log.len(), log.is_empty()), (3, false));
        log.compact_to(Pos(2));
        assert_eq!(
            (log.len(), log.is_empty(), log.last_pos()),
            (1, false, Pos(3))
        );
        log.truncate_after(Pos(2));
        assert_eq!(
            (log.len(), log.is_empty(), log.last_pos()),
            (0, true, Pos(2))
        );
        // The snapshot's last transaction is not *held*: `sync_plan` takes the
        // snapshot's counter for that epoch itself.
        assert_eq!(log.last_counter_in(Epoch(1)), None);
    }

    /// TRUNC (DSN §IV-B, a follower's suffix the new leader does not hold) drops
    /// exactly the transactions after the common prefix, also in a log compacted
    /// behind a snapshot, where positions no longer start at 1. Keeping any of them
    /// would leave the follower holding a transaction of an abandoned epoch where the
    /// leader's history has another: the follower's copy would diverge.
    #[test]
    fn zab_4_2_trunc_in_a_compacted_log_drops_exactly_the_suffix() {
        let mut log = log_of(&[z(1, 1), z(1, 2), z(1, 3), z(2, 1), z(2, 2)]);
        log.compact_to(Pos(2));
        assert_eq!(log.truncate_after(Pos(3)), 2);
        assert_eq!((log.last_pos(), log.last_zxid()), (Pos(3), z(1, 3)));
        assert_eq!(log.zxid_at(Pos(4)), None);
        assert_eq!(log.summary().epochs, vec![(Epoch(1), 3)]);
    }

    /// Snapshots compact the log again and again (`maybe_snapshot`): each compaction
    /// forgets exactly the transactions through its position, counted from the
    /// previous snapshot, and SNAP replaces the whole history by the leader's
    /// snapshot. Forgetting more loses uncompacted, possibly uncommitted history a
    /// DIFF still needs; keeping the old entries after a SNAP would put the
    /// follower's divergent transactions behind the leader's snapshot.
    #[test]
    fn compaction_and_snap_forget_exactly_what_the_snapshot_covers() {
        let mut log = log_of(&[z(1, 1), z(1, 2), z(1, 3), z(1, 4), z(1, 5), z(1, 6)]);
        log.compact_to(Pos(2));
        log.compact_to(Pos(3));
        assert_eq!(log.base(), (Pos(3), z(1, 3)));
        assert_eq!(log.len(), 3);
        assert_eq!(log.zxid_at(Pos(4)), Some(z(1, 4)));
        log.reset_to((Pos(9), z(2, 4)));
        assert_eq!(log.base(), (Pos(9), z(2, 4)));
        assert!(log.is_empty());
        assert_eq!((log.last_pos(), log.last_zxid()), (Pos(9), z(2, 4)));
    }

    #[test]
    #[should_panic(expected = "below the snapshot")]
    fn compacted_history_is_never_truncated() {
        let mut log = log_of(&[z(1, 1), z(1, 2), z(1, 3)]);
        log.compact_to(Pos(2));
        log.truncate_after(Pos(1));
    }

    #[test]
    fn zookeeper_1154_a_follower_ahead_on_an_abandoned_epoch_is_truncated_not_diffed() {
        // The follower took (2,1) from a leader of epoch 2 that never committed it;
        // the leader of epoch 3 came from a history with (1,2) instead. The
        // follower's last zxid (2,1) is not in the leader's log: keeping "everything
        // up to the leader's zxid just below it", (1,2), would keep nothing the
        // leader lacks here but would skip (1,2) on the follower, which never had it.
        let leader = log_of(&[z(1, 1), z(1, 2), z(3, 1)]);
        let follower = log_of(&[z(1, 1), z(2, 1)]);
        let plan = sync_plan(&leader, &follower.summary());
        assert_eq!(
            plan,
            SyncPlan::Diff {
                keep: z(1, 1),
                after: Pos(1)
            },
            "keep (1,1), drop (2,1), send (1,2) and (3,1)"
        );
    }

    #[test]
    fn a_follower_behind_in_the_leaders_history_gets_a_plain_diff() {
        let leader = log_of(&[z(1, 1), z(1, 2), z(2, 1), z(2, 2)]);
        let follower = log_of(&[z(1, 1), z(1, 2), z(2, 1)]);
        let plan = sync_plan(&leader, &follower.summary());
        assert_eq!(
            plan,
            SyncPlan::Diff {
                keep: z(2, 1),
                after: Pos(3)
            }
        );
    }

    #[test]
    fn a_follower_whose_common_prefix_was_compacted_gets_a_snapshot() {
        let mut leader = log_of(&[z(1, 1), z(1, 2), z(3, 1), z(3, 2)]);
        leader.compact_to(Pos(3));
        // The follower diverged after (1,1): its (2,1) must go, and the leader no
        // longer holds (1,2) to send.
        let follower = log_of(&[z(1, 1), z(2, 1)]);
        assert_eq!(sync_plan(&leader, &follower.summary()), SyncPlan::Snap);
        // One that holds (1,2) as well diverges in epoch 2: the common prefix ends at
        // (1,2), below the snapshot at (3,1): still a snapshot.
        let follower = log_of(&[z(1, 1), z(1, 2), z(2, 1)]);
        assert_eq!(sync_plan(&leader, &follower.summary()), SyncPlan::Snap);
        // One that holds exactly the snapshot's prefix gets the rest by DIFF.
        let follower = log_of(&[z(1, 1), z(1, 2), z(3, 1)]);
        assert_eq!(
            sync_plan(&leader, &follower.summary()),
            SyncPlan::Diff {
                keep: z(3, 1),
                after: Pos(3)
            }
        );
    }

    /// Zab-like histories: each epoch's leader starts from a whole history of the
    /// pool and proposes a few transactions; every server holds a prefix of some
    /// leader's history that contains that leader's initial history (it synced, then
    /// received some proposals). Such histories have the prefix property.
    fn zab_histories(rng: &mut Prng) -> Vec<Vec<Zxid>> {
        let mut pool: Vec<Vec<Zxid>> = vec![Vec::new()];
        for epoch in 1..=(2 + rng.below(5) as u32) {
            let initial = pool[rng.below(pool.len() as u64) as usize].clone();
            let mut history = initial.clone();
            for c in 1..=rng.below(4) as u32 {
                history.push(z(epoch, c));
            }
            for _ in 0..3 {
                let len =
                    initial.len() + rng.below((history.len() - initial.len() + 1) as u64) as usize;
                pool.push(history[..len].to_vec());
            }
            pool.push(history);
        }
        pool
    }

    #[test]
    fn sync_plan_finds_the_longest_common_prefix_of_any_two_zab_histories() {
        let (mut diffs, mut truncs, mut snaps) = (0, 0, 0);
        for seed in 0..2_000 {
            let mut rng = Prng::new(seed);
            let pool = zab_histories(&mut rng);
            let pick = |rng: &mut Prng| pool[rng.below(pool.len() as u64) as usize].clone();
            let (l, f) = (pick(&mut rng), pick(&mut rng));
            let common = l.iter().zip(&f).take_while(|(a, b)| a == b).count();
            let truth = if common == 0 {
                Zxid::ZERO
            } else {
                l[common - 1]
            };
            let mut leader = log_of(&l);
            let mut follower = log_of(&f);
            // Compact at random: the leader anywhere in its history, the follower
            // only within what the two share (its snapshot holds committed
            // transactions, which every later leader's history holds).
            if rng.below(2) == 0 {
                leader.compact_to(Pos(rng.below(l.len() as u64 + 1)));
            }
            if rng.below(2) == 0 {
                follower.compact_to(Pos(rng.below(common as u64 + 1)));
            }
            match sync_plan(&leader, &follower.summary()) {
                SyncPlan::Diff { keep, after } => {
                    assert_eq!(keep, truth, "seed {seed}: {l:?} vs {f:?}");
                    assert_eq!(leader.zxid_at(after), Some(keep), "seed {seed}");
                    // Carried out, the plan leaves the follower with the leader's history.
                    let mut synced: Vec<Zxid> =
                        f.iter().copied().take_while(|&x| x <= keep).collect();
                    synced.extend(leader.after(after, usize::MAX).map(|(x, _)| *x));
                    assert_eq!(synced, l, "seed {seed}");
                    match keep < follower.last_zxid() {
                        true => truncs += 1,
                        false => diffs += 1,
                    }
                }
                SyncPlan::Snap => {
                    snaps += 1;
                    assert!(
                        truth < leader.base().1,
                        "seed {seed}: a snapshot although the log holds the common prefix {truth} ({:?}): {l:?} vs {f:?}",
                        leader.base()
                    );
                }
            }
        }
        // Every mode was exercised.
        assert!(
            diffs > 100 && truncs > 100 && snaps > 100,
            "{diffs} / {truncs} / {snaps}"
        );
    }
}
