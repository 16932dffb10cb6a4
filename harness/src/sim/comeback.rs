//! The comeback schedule: an answer from an older leadership arriving late.
//!
//! A leader's outgoing messages stall for a while — held, not lost: a congested
//! link, a sender paused mid-write — and nothing reaches it, while its followers
//! cannot reach each other. It took writes the others lack, so when it hears again
//! only it can win, and it does, in a new term, while what it sent in the old one
//! is still arriving: a follower answers those late requests in the new term. Then
//! it is deposed — cut off, its clock at a tenth of real time — while the others,
//! now in touch, elect a new leader and commit writes. A leader that counts a late
//! answer for a request of its new leadership (a ReadIndex confirmation, thesis
//! §6.4; an acknowledgement of the wrong round) serves stale reads here.

use super::script::Action;
use std::time::Duration;

/// The random parts of one comeback schedule, drawn by the nemesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComebackPlan {
    /// How long the leader's sends are held and nothing reaches it, while the
    /// others are split from each other: long enough for it to notice it lost
    /// its majority and for the others to stop waiting for it.
    pub stall: Duration,
    /// How long the leader of the next leadership (the same node, nearly always)
    /// leads before it is deposed, while the stalled messages arrive.
    pub reign: Duration,
    /// How long it stays deposed.
    pub deposed: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Stall,
    AwaitLeader,
    Reign,
    Deposed,
    Done,
}

/// One comeback schedule in progress.
#[derive(Clone, Debug)]
pub(crate) struct Comeback {
    plan: ComebackPlan,
    stage: Stage,
    first: usize,
    again: usize,
}

impl Comeback {
    /// Starts the schedule on a cluster of `n` nodes led by `leader`.
    pub fn start(plan: ComebackPlan, leader: usize, n: usize) -> (Comeback, Vec<Action>) {
        let mut actions = vec![Action::Muffle(leader)];
        actions.extend((0..n).filter(|&i| i != leader).map(Action::Split));
        actions.push(Action::Wake(plan.stall));
        let run = Comeback {
            plan,
            stage: Stage::Stall,
            first: leader,
            again: leader,
        };
        (run, actions)
    }

    /// `true` while the schedule waits for a node to win.
    pub fn awaits_leader(&self) -> bool {
        self.stage == Stage::AwaitLeader
    }

    /// Node `node` (up) believes it leads.
    pub fn on_leader(&mut self, node: usize) -> Vec<Action> {
        if self.stage != Stage::AwaitLeader {
            return Vec::new();
        }
        self.again = node;
        self.stage = Stage::Reign;
        vec![Action::Wake(self.plan.reign)]
    }

    /// A wake asked for by the last `Action::Wake`.
    pub fn on_wake(&mut self) -> Vec<Action> {
        match self.stage {
            Stage::Stall => {
                // Still the leader of its old term, or stepped down: either way the
                // next leadership is the one to watch.
                self.stage = Stage::AwaitLeader;
                vec![Action::Rejoin(self.first)]
            }
            Stage::Reign => {
                self.stage = Stage::Deposed;
                vec![
                    Action::Unsplit,
                    Action::Depose(self.again),
                    Action::Wake(self.plan.deposed),
                ]
            }
            Stage::Deposed => {
                self.stage = Stage::Done;
                vec![Action::Rejoin(self.again), Action::Done]
            }
            Stage::AwaitLeader | Stage::Done => Vec::new(),
        }
    }

    /// What undoes the schedule at any point.
    pub fn undo(&self) -> Vec<Action> {
        vec![
            Action::Rejoin(self.first),
            Action::Rejoin(self.again),
            Action::Unsplit,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_then_the_comeback_then_the_deposition() {
        let ms = Duration::from_millis;
        let plan = ComebackPlan {
            stall: ms(900),
            reign: ms(400),
            deposed: ms(700),
        };
        let (mut c, a) = Comeback::start(plan, 1, 3);
        assert_eq!(
            a,
            [
                Action::Muffle(1),
                Action::Split(0),
                Action::Split(2),
                Action::Wake(ms(900))
            ]
        );
        assert!(c.on_leader(1).is_empty(), "not watching during the stall");
        assert_eq!(c.on_wake(), [Action::Rejoin(1)]);
        assert!(c.awaits_leader());
        assert_eq!(c.on_leader(1), [Action::Wake(ms(400))]);
        assert!(!c.awaits_leader());
        assert_eq!(
            c.on_wake(),
            [Action::Unsplit, Action::Depose(1), Action::Wake(ms(700))]
        );
        assert_eq!(c.on_wake(), [Action::Rejoin(1), Action::Done]);
        assert!(c.on_wake().is_empty());
    }
}
