//! The nodes: boot and restart from storage, one input at a time with the invariants
//! checked after it, its effects carried out, crashes and pauses.

use super::clock::NodeClock;
use super::{
    derive_seed, Event, Pending, Simulator, TimerOf, Violation, ViolationKind, STREAM_NODES,
};
use crate::protocol::SimProtocol;
use rand::Rng;
use std::collections::{BTreeMap, VecDeque};
use synod_core::{MemStorage, Node, NodeEffects, NodeId, Time, TimerOp};

pub(super) struct Slot<P: SimProtocol> {
    pub(super) id: NodeId,
    pub(super) node: Option<P::Node>,
    pub(super) paused: bool,
    pub(super) inbox: Vec<Event<P>>,
    pub(super) storage: MemStorage,
    pub(super) incarnation: u32,
    /// Armed timers: generation (to recognise stale queue entries) and deadline on
    /// the node's own clock.
    pub(super) timers: BTreeMap<TimerOf<P>, (u64, Time)>,
    pub(super) pending: VecDeque<Pending<P>>,
    /// A write is in progress; batches staged meanwhile go in the next one.
    pub(super) disk_busy: bool,
    /// Batches covered by the write in progress (a torn write keeps a prefix).
    pub(super) writing: usize,
    /// A disk fault waits for this node's next write: `Some(true)` fails its sync
    /// with EIO, `Some(false)` its append with ENOSPC.
    pub(super) disk_fail: Option<bool>,
    /// The node's disk failed: it stays down until fixed (`Down::UntilFixed`) or
    /// for good (`Down::ForGood`: its disk failed its checksums).
    pub(super) down: Option<Down>,
    /// A "crash in write" fault waits for this node's next early send.
    pub(super) crash_armed: bool,
    pub(super) clock: NodeClock,
}

/// Why a node whose disk failed is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Down {
    /// Stopped on a failed append or sync; an operator restarts it when its fault
    /// ends (or at the heal).
    UntilFixed,
    /// Its disk fails its checksums: it refuses to start, ever.
    ForGood,
}

impl<P: SimProtocol> Simulator<P> {
    pub(super) fn boot(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let seed = derive_seed(
            derive_seed(self.cfg.seed, STREAM_NODES),
            (index as u64) << 32 | u64::from(slot.incarnation),
        );
        slot.node = Some(if self.cfg.vary_tuning {
            P::build_varied(slot.id, &self.members, seed)
        } else {
            P::build(slot.id, &self.members, seed)
        });
        let recovered = slot.storage.recover();
        tracing::debug!(node = %slot.id, incarnation = slot.incarnation, "start");
        let restarted = slot.incarnation > 0;
        if restarted {
            self.trace_mark(index, super::spacetime::MarkKind::Restart);
        }
        self.step_node(index, |n, t, fx| n.on_start(t, recovered, fx));
    }

    /// Feeds one input to node `index`, checks invariants, carries out the effects.
    pub(super) fn step_node(
        &mut self,
        index: usize,
        input: impl FnOnce(&mut P::Node, Time, &mut NodeEffects<P::Node>),
    ) {
        let slot = &mut self.slots[index];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let local = slot.clock.local(self.now);
        {
            let span = tracing::debug_span!("node", id = %slot.id, t = %self.now);
            let _entered = span.enter();
            input(node, local, &mut self.fx);
        }
        if let Some(reason) = node.halted() {
            // It found state it cannot trust in its own storage: the run is wrong
            // (the simulator's disks never corrupt what they hold, yet).
            if self.violation.is_none() {
                let message = format!("{} stopped itself: {reason}", slot.id);
                tracing::error!(%message, "node halted");
                self.violation = Some(Violation {
                    kind: ViolationKind::Halted,
                    at: self.now,
                    message,
                });
            }
        }
        for inv in &mut self.invariants {
            if let Err(message) = inv.after_step(self.now, slot.id, node) {
                if self.violation.is_none() {
                    tracing::error!(invariant = inv.name(), %message, "invariant violated");
                    self.violation = Some(Violation {
                        kind: ViolationKind::Invariant(inv.name()),
                        at: self.now,
                        message,
                    });
                }
            }
        }
        self.apply_effects(index);
        if self.trace.is_some() {
            self.trace_leadership(index);
        }
        if let Some((run, script)) = self.script.as_mut().filter(|(_, s)| s.awaits_leader()) {
            let run = *run;
            if self.slots[index].node.as_ref().is_some_and(P::is_leader) {
                let actions = script.on_leader(index);
                self.script_act(run, actions);
            }
        }
    }

    pub(super) fn apply_effects(&mut self, index: usize) {
        let mut fx = std::mem::take(&mut self.fx);
        for op in fx.timers.drain(..) {
            self.timer_op(index, op);
        }
        let sent_ahead = !fx.early_sends.is_empty() || !fx.early_replies.is_empty();
        let armed_hit = self.slots[index].crash_armed && sent_ahead && !fx.persist.is_empty();
        for env in fx.early_sends.drain(..) {
            self.transmit(index, env);
        }
        for reply in fx.early_replies.drain(..) {
            self.reply(index, reply);
        }
        let slot = &mut self.slots[index];
        if !fx.persist.is_empty() || fx.persist_notify.is_some() {
            self.stats.persists += 1;
            slot.storage.stage(fx.persist.take());
            slot.pending.push_back(Pending {
                owns_batch: true,
                sends: std::mem::take(&mut fx.sends),
                replies: std::mem::take(&mut fx.replies),
                notify: fx.persist_notify.take(),
            });
            if !slot.disk_busy {
                self.start_write(index);
            }
        } else if !slot.pending.is_empty() {
            // Nothing to write, but an earlier batch is in flight: whatever this input
            // sends may depend on it, so it waits in line.
            if !fx.sends.is_empty() || !fx.replies.is_empty() {
                slot.pending.push_back(Pending {
                    owns_batch: false,
                    sends: std::mem::take(&mut fx.sends),
                    replies: std::mem::take(&mut fx.replies),
                    notify: None,
                });
            }
        } else {
            for env in fx.sends.drain(..) {
                self.transmit(index, env);
            }
            for reply in fx.replies.drain(..) {
                self.reply(index, reply);
            }
        }
        self.fx = fx;
        if armed_hit {
            // The early sends are on the wire, the batch is staged: crash before it
            // is durable (a write takes at least `write_min`, so nothing lands first).
            tracing::debug!(node = %self.slots[index].id, "crash in write");
            self.slots[index].crash_armed = false;
            self.crash(index);
        }
    }

    pub(super) fn timer_op(&mut self, index: usize, op: TimerOp<TimerOf<P>>) {
        match op {
            TimerOp::Set { timer, at } => {
                self.next_generation += 1;
                let generation = self.next_generation;
                let slot = &mut self.slots[index];
                slot.timers.insert(timer, (generation, at));
                let at = slot.clock.global_at(at, self.now);
                self.schedule_at(
                    at,
                    Event::Timer {
                        node: index,
                        timer,
                        generation,
                    },
                );
            }
            TimerOp::Cancel(timer) => {
                self.slots[index].timers.remove(&timer);
            }
        }
    }

    pub(super) fn crash(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let Some(node) = slot.node.take() else {
            return;
        };
        if P::is_leader(&node) {
            self.leader_lost_at.get_or_insert(self.now);
        }
        self.trace_mark(index, super::spacetime::MarkKind::Crash);
        let slot = &mut self.slots[index];
        // A torn write: the crash cut the write in progress after some of its
        // batches' records (each record whole or not at all, as the WAL recovers).
        if self.cfg.nemesis.faults.torn && slot.disk_busy && slot.writing > 0 {
            let keep = self.disk_rng.gen_range(0..=slot.writing);
            for _ in 0..keep {
                slot.storage.flush_one();
            }
            self.stats.torn_writes += u64::from(keep > 0);
        }
        let slot = &mut self.slots[index];
        let lost = slot.storage.crash();
        slot.pending.clear();
        slot.timers.clear();
        slot.inbox.clear();
        slot.paused = false;
        slot.incarnation += 1;
        slot.disk_busy = false;
        slot.writing = 0;
        slot.disk_fail = None;
        self.stats.crashes += 1;
        tracing::debug!(node = %slot.id, lost_batches = lost, "crash");
        let id = slot.id;
        for inv in &mut self.invariants {
            inv.on_crash(id);
        }
    }

    pub(super) fn restart(&mut self, index: usize) {
        if self.slots[index].node.is_none() && self.slots[index].down.is_none() {
            self.boot(index);
        }
    }

    pub(super) fn resume(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.paused = false;
        let inbox = std::mem::take(&mut slot.inbox);
        for event in inbox {
            self.schedule_at(self.now, event);
        }
    }
}
