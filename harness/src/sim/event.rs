//! The event queue: what can happen, the heap entry that orders it by (time, seq),
//! and the slab that holds pending events.

use super::digest::TraceDigest;
use super::{Msg, Req, Resp, TimerOf};
use crate::protocol::SimProtocol;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use synod_core::{ClientReply, ClientRequest, Time};

pub(super) enum Event<P: SimProtocol> {
    Deliver {
        from: usize,
        to: usize,
        msg: Msg<P>,
    },
    Timer {
        node: usize,
        timer: TimerOf<P>,
        generation: u64,
    },
    PersistDone {
        node: usize,
        incarnation: u32,
        batches: usize,
    },
    ToNode {
        node: usize,
        request: ClientRequest<Req<P>>,
    },
    ToClient {
        client: usize,
        reply: ClientReply<Resp<P>>,
    },
    ClientWake {
        client: usize,
        token: u64,
    },
    ClientTimeout {
        client: usize,
    },
    NemesisTick,
    FaultEnd {
        id: u64,
    },
    MainDeadline,
    HealDeadline,
    /// A step of the scripted fault numbered `run`.
    ScriptWake {
        run: u64,
    },
    /// The scripted split (`--faults split`) begins, or heals.
    Split {
        on: bool,
    },
}

impl<P: SimProtocol> Event<P> {
    /// The node this event is an input to, if any (those wait while it is paused).
    pub(super) fn target_node(&self) -> Option<usize> {
        match self {
            Event::Deliver { to, .. } => Some(*to),
            Event::Timer { node, .. }
            | Event::PersistDone { node, .. }
            | Event::ToNode { node, .. } => Some(*node),
            _ => None,
        }
    }

    pub(super) fn fold_into(&self, at: Time, d: &mut TraceDigest) {
        let tag = match self {
            Event::Deliver { .. } => 1,
            Event::Timer { .. } => 2,
            Event::PersistDone { .. } => 3,
            Event::ToNode { .. } => 4,
            Event::ToClient { .. } => 5,
            Event::ClientWake { .. } => 6,
            Event::NemesisTick => 7,
            Event::FaultEnd { .. } => 8,
            Event::MainDeadline => 9,
            Event::HealDeadline => 10,
            Event::ClientTimeout { .. } => 11,
            Event::ScriptWake { .. } => 12,
            Event::Split { .. } => 13,
        };
        d.begin_event(tag);
        d.write_u64(at.as_nanos());
        match self {
            Event::Deliver { from, to, msg } => {
                d.write_usize(*from);
                d.write_usize(*to);
                msg.hash(d);
            }
            Event::Timer { node, timer, .. } => {
                d.write_usize(*node);
                timer.hash(d);
            }
            Event::PersistDone { node, .. } => d.write_usize(*node),
            Event::ToNode { node, request } => {
                d.write_usize(*node);
                request.hash(d);
            }
            Event::ToClient { client, reply } => {
                d.write_usize(*client);
                reply.hash(d);
            }
            Event::ClientWake { client, token } => {
                d.write_usize(*client);
                d.write_u64(*token);
            }
            Event::FaultEnd { id } => d.write_u64(*id),
            Event::ClientTimeout { client } => d.write_usize(*client),
            Event::ScriptWake { run } => d.write_u64(*run),
            Event::Split { on } => d.write_u64(u64::from(*on)),
            Event::NemesisTick | Event::MainDeadline | Event::HealDeadline => {}
        }
    }
}

/// A queue entry: the event itself lives in the simulator's slab, so the heap moves
/// only these 24 bytes around while it sifts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Scheduled {
    pub(super) at: Time,
    pub(super) seq: u64,
    pub(super) slot: u32,
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed so that `BinaryHeap` (a max-heap) pops the earliest event first;
    /// `seq` breaks ties in scheduling order, which keeps runs deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Storage for scheduled events, indexed by [`Scheduled::slot`]; freed slots are reused
/// so the slab's size follows the number of pending events, not the run length.
pub(super) struct EventSlab<P: SimProtocol> {
    pub(super) events: Vec<Option<Event<P>>>,
    pub(super) free: Vec<u32>,
}

impl<P: SimProtocol> EventSlab<P> {
    pub(super) fn insert(&mut self, event: Event<P>) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.events[slot as usize] = Some(event);
                slot
            }
            None => {
                let slot =
                    u32::try_from(self.events.len()).expect("fewer than 2^32 pending events");
                self.events.push(Some(event));
                slot
            }
        }
    }

    pub(super) fn take(&mut self, slot: u32) -> Event<P> {
        self.free.push(slot);
        self.events[slot as usize]
            .take()
            .expect("every queued slot holds an event")
    }
}
