//! Scripted faults: schedules of several steps that react to who leads, for event
//! patterns independent random faults almost never line up. Each schedule decides
//! nothing at random itself (the nemesis draws its plan from its own stream); it
//! returns [`Action`]s for the simulator to carry out.
//!
//! * [`Figure8`] (`figure8.rs`): Raft's Figure 8, three short leaderships;
//! * [`Comeback`] (`comeback.rs`): a leader wins again while what it sent in its
//!   earlier leadership is still arriving, and is then deposed.

use std::time::Duration;

pub(crate) use super::comeback::Comeback;
pub use super::comeback::ComebackPlan;
pub(crate) use super::figure8::Figure8;
pub use super::figure8::Figure8Plan;

/// What the simulator does for a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Cut the node off from every peer in both directions (messages on the wire
    /// included); clients still reach it.
    Isolate(usize),
    /// Like `Isolate`, except that what the node sends is held, not lost: when
    /// it rejoins, each message arrives at a random time within 0.8 s, out of
    /// order and overtaken by newer traffic (a stalled link flushing).
    Muffle(usize),
    /// Like `Isolate`, and the node's clock runs at a tenth of real time, so it
    /// goes on believing it leads for seconds.
    Depose(usize),
    /// Undo `Isolate`, `Muffle` and `Depose`.
    Rejoin(usize),
    /// Cut the node off from every other node marked `Split` (messages on the
    /// wire included); it still reaches the others.
    Split(usize),
    /// Undo every `Split`.
    Unsplit,
    /// Crash the node.
    Crash(usize),
    /// Restart the node from its storage (nothing if it is up).
    Restart(usize),
    /// Call [`Script::on_wake`] after this long.
    Wake(Duration),
    /// The schedule is over.
    Done,
}

/// A schedule in progress.
#[derive(Clone, Debug)]
pub(crate) enum Script {
    Figure8(Figure8),
    Comeback(Comeback),
}

impl Script {
    /// `true` while the schedule waits for a node to win.
    pub fn awaits_leader(&self) -> bool {
        match self {
            Script::Figure8(f) => f.awaits_leader(),
            Script::Comeback(c) => c.awaits_leader(),
        }
    }

    /// Node `node` (up) believes it leads.
    pub fn on_leader(&mut self, node: usize) -> Vec<Action> {
        match self {
            Script::Figure8(f) => f.on_leader(node),
            Script::Comeback(c) => c.on_leader(node),
        }
    }

    /// A wake asked for by the last `Action::Wake`.
    pub fn on_wake(&mut self) -> Vec<Action> {
        match self {
            Script::Figure8(f) => f.on_wake(),
            Script::Comeback(c) => c.on_wake(),
        }
    }

    /// `true` while the schedule wants [`Script::on_delivered`] calls.
    pub fn counts_messages(&self) -> bool {
        matches!(self, Script::Figure8(f) if f.counts_messages())
    }

    /// Node `to` handled a message from a peer.
    pub fn on_delivered(&mut self, to: usize) -> Vec<Action> {
        match self {
            Script::Figure8(f) => f.on_delivered(to),
            Script::Comeback(_) => Vec::new(),
        }
    }

    /// What undoes the schedule at any point (the fault's end, the heal).
    pub fn undo(&self) -> Vec<Action> {
        match self {
            Script::Figure8(f) => f.undo(),
            Script::Comeback(c) => c.undo(),
        }
    }
}
