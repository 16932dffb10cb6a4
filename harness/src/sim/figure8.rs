//! The Figure 8 schedule: Raft's §5.4.2 scenario, carried out by the simulator
//! against any protocol that names its leader.
//!
//! Figure 8 of the Raft paper is a sequence of three short leaderships: the first
//! leader takes entries no one else sees and dies; a second leader, elected
//! without them, writes a conflicting entry of a later term that also reaches no
//! one and dies; the first comes back, wins again and starts bringing followers up
//! to date with its older entries — and dies while doing so, after some followers
//! took part of them and before its own new entry spread. Now the second can win
//! again (its last term is higher) and overwrite what the followers took. A leader
//! that committed those older entries by counting replicas has lost a committed
//! entry; Paxos's equivalent is a leader that fails to adopt the highest accepted
//! value. Random crashes almost never line these steps up: the third crash must
//! land within the few round trips of a catch-up. This module lines them up.
//!
//! It decides nothing at random itself: the nemesis draws a [`Figure8Plan`] with
//! its own stream, and the run reacts to what it observes (who leads, what the
//! third leader handles) by returning [`Action`]s for the simulator to carry out
//! (`script.rs`).

use super::script::Action;
use std::time::Duration;

/// The random parts of one Figure 8 schedule, drawn by the nemesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figure8Plan {
    /// How long the first leader is cut off from its peers — clients still reach
    /// it, so it takes writes no one else sees — before it crashes. What it sends
    /// meanwhile is not lost but held and delivered 0.2–2.5 s late, into the
    /// leaderships that follow.
    pub hold_first: Duration,
    /// How long the second leader is cut off, from the moment it wins (its first
    /// messages are lost on the wire), before it crashes.
    pub hold_second: Duration,
    /// How many messages from its peers the third leader handles after it wins
    /// before it crashes — cut off first, so what it sent in answer to the last
    /// one is lost on the wire: it dies in its first exchanges, while it is still
    /// bringing followers up to date. Counting messages rather than time puts the
    /// crash in that window whatever the latencies and disk times.
    pub strike_after: u32,
    /// How long the third leader stays down, so the second can win without it.
    pub down_third: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The first leader is cut off, taking writes alone.
    HoldFirst,
    /// Waiting for the rest to elect a second leader.
    AwaitSecond,
    /// The second leader is cut off since it won.
    HoldSecond,
    /// The first is back; waiting for the third leadership.
    AwaitThird,
    /// The third leader is catching followers up; it crashes after
    /// `strike_after` messages (`handled` so far).
    Strike {
        handled: u32,
    },
    /// The third leader is down, the second back.
    DownThird,
    Done,
}

/// One Figure 8 schedule in progress.
#[derive(Clone, Debug)]
pub(crate) struct Figure8 {
    plan: Figure8Plan,
    stage: Stage,
    first: usize,
    second: usize,
    third: usize,
}

impl Figure8 {
    /// Starts the schedule with `leader` as the first leader.
    pub fn start(plan: Figure8Plan, leader: usize) -> (Figure8, Vec<Action>) {
        let actions = vec![Action::Muffle(leader), Action::Wake(plan.hold_first)];
        let run = Figure8 {
            plan,
            stage: Stage::HoldFirst,
            first: leader,
            second: leader,
            third: leader,
        };
        (run, actions)
    }

    /// `true` while the schedule waits for a node to win.
    pub fn awaits_leader(&self) -> bool {
        matches!(self.stage, Stage::AwaitSecond | Stage::AwaitThird)
    }

    /// Node `node` (up) believes it leads.
    pub fn on_leader(&mut self, node: usize) -> Vec<Action> {
        match self.stage {
            Stage::AwaitSecond if node != self.first => {
                self.second = node;
                self.stage = Stage::HoldSecond;
                vec![Action::Isolate(node), Action::Wake(self.plan.hold_second)]
            }
            Stage::AwaitThird if node != self.second => {
                self.third = node;
                self.stage = Stage::Strike { handled: 0 };
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// A wake asked for by the last `Action::Wake`.
    pub fn on_wake(&mut self) -> Vec<Action> {
        match self.stage {
            Stage::HoldFirst => {
                self.stage = Stage::AwaitSecond;
                vec![Action::Crash(self.first), Action::Rejoin(self.first)]
            }
            Stage::HoldSecond => {
                self.stage = Stage::AwaitThird;
                vec![
                    Action::Crash(self.second),
                    Action::Rejoin(self.second),
                    Action::Restart(self.first),
                ]
            }
            Stage::DownThird => {
                self.stage = Stage::Done;
                vec![
                    Action::Rejoin(self.third),
                    Action::Restart(self.third),
                    Action::Done,
                ]
            }
            Stage::AwaitSecond | Stage::AwaitThird | Stage::Strike { .. } | Stage::Done => {
                Vec::new()
            }
        }
    }

    /// Node `to` handled a message from a peer.
    pub fn on_delivered(&mut self, to: usize) -> Vec<Action> {
        let Stage::Strike { handled } = &mut self.stage else {
            return Vec::new();
        };
        if to != self.third {
            return Vec::new();
        }
        *handled += 1;
        if *handled < self.plan.strike_after {
            return Vec::new();
        }
        self.stage = Stage::DownThird;
        // It stays cut off while down, so nothing it sent reaches anyone late.
        vec![
            Action::Isolate(self.third),
            Action::Crash(self.third),
            Action::Restart(self.second),
            Action::Wake(self.plan.down_third),
        ]
    }

    /// `true` while the schedule counts the third leader's messages.
    pub fn counts_messages(&self) -> bool {
        matches!(self.stage, Stage::Strike { .. })
    }

    /// What undoes the schedule at any point (the fault's end, the heal): every
    /// node it cut off rejoins and every node it crashed restarts (restarting a
    /// node that is up does nothing).
    pub fn undo(&self) -> Vec<Action> {
        let mut nodes = vec![self.first, self.second, self.third];
        nodes.sort_unstable();
        nodes.dedup();
        nodes
            .into_iter()
            .flat_map(|n| [Action::Rejoin(n), Action::Restart(n)])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Figure8Plan {
        let ms = Duration::from_millis;
        Figure8Plan {
            hold_first: ms(10),
            hold_second: ms(20),
            strike_after: 2,
            down_third: ms(500),
        }
    }

    #[test]
    fn the_three_leaderships_of_figure_8_in_order() {
        let (mut f, a) = Figure8::start(plan(), 0);
        assert_eq!(
            a,
            [Action::Muffle(0), Action::Wake(Duration::from_millis(10))]
        );
        assert!(!f.awaits_leader());
        assert_eq!(f.on_wake(), [Action::Crash(0), Action::Rejoin(0)]);
        assert!(f.awaits_leader());
        assert!(f.on_leader(0).is_empty(), "the first does not count twice");
        assert_eq!(
            f.on_leader(2),
            [Action::Isolate(2), Action::Wake(Duration::from_millis(20))]
        );
        assert_eq!(
            f.on_wake(),
            [Action::Crash(2), Action::Rejoin(2), Action::Restart(0)]
        );
        assert!(f.on_leader(2).is_empty(), "the second is not the third");
        assert!(f.on_leader(0).is_empty());
        assert!(!f.awaits_leader() && f.counts_messages());
        assert!(
            f.on_wake().is_empty(),
            "the strike counts messages, not time"
        );
        assert!(
            f.on_delivered(1).is_empty(),
            "only the third's messages count"
        );
        assert!(f.on_delivered(0).is_empty());
        assert_eq!(
            f.on_delivered(0),
            [
                Action::Isolate(0),
                Action::Crash(0),
                Action::Restart(2),
                Action::Wake(Duration::from_millis(500))
            ]
        );
        assert!(f.on_delivered(0).is_empty());
        assert_eq!(
            f.on_wake(),
            [Action::Rejoin(0), Action::Restart(0), Action::Done]
        );
        assert!(f.on_wake().is_empty());
        let undo = f.undo();
        assert_eq!(
            undo,
            [
                Action::Rejoin(0),
                Action::Restart(0),
                Action::Rejoin(2),
                Action::Restart(2)
            ]
        );
    }
}
