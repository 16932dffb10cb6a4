//! What a leader knows about each follower's log (thesis §3.5 / etcd `tracker`).
//!
//! Invariant: `match_index < next_index` — the follower is known to hold everything
//! up to `match_index`, and the next entry to send is `next_index`.

use crate::types::LogIndex;
use std::collections::VecDeque;
use synod_core::Time;

/// Replication mode for one follower.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Mode {
    /// Where the follower's log ends is unknown: send one AppendEntries at a time and
    /// wait for its answer (or the next heartbeat) before sending again.
    Probe {
        /// A probe is outstanding.
        sent: bool,
    },
    /// The follower is in sync: pipeline AppendEntries optimistically. `inflight` holds
    /// the last index of each unacknowledged message, oldest first; it never grows
    /// beyond the configured `inflight_max`.
    Replicate {
        /// Last index carried by each message in flight.
        inflight: VecDeque<LogIndex>,
    },
    /// The entries the follower needs are compacted: stream the snapshot.
    Snapshot {
        /// Index the snapshot being sent covers.
        index: LogIndex,
        /// Bytes acknowledged so far.
        offset: u64,
    },
}

/// Leader-side view of one follower.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Progress {
    match_index: LogIndex,
    next_index: LogIndex,
    /// Replication mode.
    pub mode: Mode,
    /// Heard from since the last check-quorum round (§6.2 / thesis §6.2).
    pub recent_active: bool,
    /// Highest ReadIndex context this follower has confirmed.
    pub read_ctx: u64,
    /// When the leader last sent this follower an AppendEntries (which carries the
    /// commit index, so a heartbeat right after it would say nothing new).
    pub append_sent_at: Option<Time>,
    /// An AppendEntries acknowledgement arrived since the last heartbeat round: the
    /// pipeline is moving, so a heartbeat answer showing the follower behind is no
    /// reason to resend.
    pub acked_since_heartbeat: bool,
}

impl Progress {
    /// A follower whose log is unknown: probe from just after the leader's last entry.
    pub fn new(leader_last: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: leader_last.next(),
            mode: Mode::Probe { sent: false },
            recent_active: false,
            read_ctx: 0,
            append_sent_at: None,
            acked_since_heartbeat: false,
        }
    }

    /// Highest index known replicated on the follower.
    pub fn match_index(&self) -> LogIndex {
        self.match_index
    }

    /// Next index to send.
    pub fn next_index(&self) -> LogIndex {
        self.next_index
    }

    /// The follower confirmed its log matches through `index`. Returns `true` if that
    /// is news.
    pub fn acknowledge(&mut self, index: LogIndex) -> bool {
        let news = index > self.match_index;
        if news {
            self.match_index = index;
        }
        self.acked_since_heartbeat = true;
        if self.next_index <= index {
            self.next_index = index.next();
        }
        match &mut self.mode {
            Mode::Probe { .. } => {
                self.mode = Mode::Replicate {
                    inflight: VecDeque::new(),
                }
            }
            Mode::Replicate { inflight } => {
                while inflight.front().is_some_and(|&i| i <= index) {
                    inflight.pop_front();
                }
            }
            Mode::Snapshot { .. } => {}
        }
        debug_assert!(self.match_index < self.next_index);
        news
    }

    /// Records that a message carrying entries up to `last` was sent.
    pub fn sent(&mut self, last: LogIndex) {
        match &mut self.mode {
            Mode::Probe { sent } => *sent = true,
            Mode::Replicate { inflight } => {
                inflight.push_back(last);
                self.next_index = last.next();
            }
            Mode::Snapshot { .. } => {}
        }
    }

    /// `true` if another AppendEntries may be sent now.
    pub fn can_send(&self, inflight_max: usize) -> bool {
        match &self.mode {
            Mode::Probe { sent } => !sent,
            Mode::Replicate { inflight } => inflight.len() < inflight_max,
            Mode::Snapshot { .. } => false,
        }
    }

    /// The follower rejected an AppendEntries whose `prev_index` was `rejected`;
    /// `hint` is where the leader should try next. Returns `false` for a stale
    /// rejection (one that predates what we already know), which must be ignored.
    pub fn reject(&mut self, rejected: LogIndex, hint: LogIndex) -> bool {
        match &self.mode {
            Mode::Replicate { .. } if rejected <= self.match_index => return false,
            Mode::Probe { .. } if rejected.next() != self.next_index => return false,
            Mode::Snapshot { .. } => return false,
            _ => {}
        }
        self.next_index = hint.min(rejected).max(self.match_index.next());
        self.mode = Mode::Probe { sent: false };
        true
    }

    /// A heartbeat answer arrived: a paused probe may be retried.
    pub fn unpause_probe(&mut self) {
        if let Mode::Probe { sent } = &mut self.mode {
            *sent = false;
        }
    }

    /// Switches to streaming the snapshot that covers `index`.
    pub fn start_snapshot(&mut self, index: LogIndex) {
        self.mode = Mode::Snapshot { index, offset: 0 };
    }

    /// The follower installed a snapshot covering `index`.
    pub fn snapshot_installed(&mut self, index: LogIndex) {
        self.match_index = self.match_index.max(index);
        self.next_index = self.match_index.next();
        self.mode = Mode::Probe { sent: false };
    }

    /// Message lost or follower restarted: fall back to probing from `match + 1`.
    pub fn reset_to_probe(&mut self) {
        self.next_index = self.match_index.next();
        self.mode = Mode::Probe { sent: false };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_is_bounded_by_the_window_and_acks_free_it() {
        let mut p = Progress::new(LogIndex(10));
        p.acknowledge(LogIndex(10));
        assert!(matches!(p.mode, Mode::Replicate { .. }));
        for last in [12, 14, 16] {
            assert!(p.can_send(3));
            p.sent(LogIndex(last));
        }
        assert!(!p.can_send(3), "window of 3 is full");
        p.acknowledge(LogIndex(14));
        assert!(p.can_send(3));
        assert_eq!(p.next_index(), LogIndex(17));
        assert_eq!(p.match_index(), LogIndex(14));
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = Progress::new(LogIndex(10));
        p.acknowledge(LogIndex(8));
        p.sent(LogIndex(12));
        assert!(!p.reject(LogIndex(7), LogIndex(1)), "below match: stale");
        assert!(p.reject(LogIndex(10), LogIndex(9)));
        assert_eq!(p.next_index(), LogIndex(9));
        assert!(
            !p.reject(LogIndex(11), LogIndex(1)),
            "probe expects rejected = next - 1"
        );
        assert!(p.reject(LogIndex(8), LogIndex(3)) || p.next_index() == LogIndex(9));
        assert!(p.next_index() > p.match_index(), "never below match + 1");
    }

    /// An acknowledgement is news only if it moves the match index; the leader
    /// recounts the commit index (and checks a pending transfer) only for news.
    #[test]
    fn repeated_acknowledgement_is_not_news() {
        let mut p = Progress::new(LogIndex(10));
        assert!(p.acknowledge(LogIndex(10)));
        assert!(!p.acknowledge(LogIndex(10)), "same index again");
        assert!(!p.acknowledge(LogIndex(9)), "an older one");
        assert!(p.acknowledge(LogIndex(11)));
        assert_eq!(p.match_index(), LogIndex(11));
    }

    /// §7: while a snapshot streams, AppendEntries rejections are leftovers from
    /// before it; they neither stop the stream nor move the next index.
    #[test]
    fn raft_7_rejection_during_a_snapshot_stream_is_ignored() {
        let mut p = Progress::new(LogIndex(10));
        p.acknowledge(LogIndex(2));
        p.start_snapshot(LogIndex(40));
        let next = p.next_index();
        assert!(!p.reject(LogIndex(2), LogIndex(1)));
        assert_eq!(
            p.mode,
            Mode::Snapshot {
                index: LogIndex(40),
                offset: 0
            }
        );
        assert_eq!(p.next_index(), next);
        assert!(
            !p.can_send(8),
            "no AppendEntries while the snapshot streams"
        );
    }
}
