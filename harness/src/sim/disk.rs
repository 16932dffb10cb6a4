//! Each node's disk: batches written one after another, each taking a random time,
//! and **persist before send** — an input's messages and replies leave only once its
//! batch (and every earlier one) is durable.

use super::{uniform, Event, Msg, Resp, Simulator};
use crate::protocol::SimProtocol;
use synod_core::{ClientReply, Envelope, Node};

/// Output of one input waiting for the disk.
pub(super) struct Pending<P: SimProtocol> {
    /// `true` if this entry has its own batch in the disk queue.
    pub(super) owns_batch: bool,
    pub(super) sends: Vec<Envelope<Msg<P>>>,
    pub(super) replies: Vec<ClientReply<Resp<P>>>,
    pub(super) notify: Option<u64>,
}

impl<P: SimProtocol> Simulator<P> {
    /// Starts one disk write covering every staged batch (group commit: batches
    /// staged while a write is in progress wait for the next one).
    pub(super) fn start_write(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let batches = slot.storage.staged_len();
        if batches == 0 {
            return;
        }
        if slot.disk_fail == Some(false) {
            // ENOSPC on the append: the batch never reaches the disk; the node stops.
            return self.disk_failed(index, "ENOSPC on append");
        }
        slot.disk_busy = true;
        slot.writing = batches;
        self.stats.syncs += 1;
        let incarnation = slot.incarnation;
        let write = uniform(
            &mut self.disk_rng,
            self.cfg.disk.write_min,
            self.cfg.disk.write_max,
        );
        self.trace_write(index, self.now + write);
        self.schedule(
            write,
            Event::PersistDone {
                node: index,
                incarnation,
                batches,
            },
        );
    }

    pub(super) fn persist_done(&mut self, index: usize, incarnation: u32, batches: usize) {
        let slot = &mut self.slots[index];
        if slot.incarnation != incarnation || slot.node.is_none() {
            return; // the write was lost in a crash
        }
        if slot.disk_fail == Some(true) {
            // EIO on the sync: what it covered may not be on the disk, and a second
            // sync could succeed without it ("fsyncgate"): stop, never retry.
            return self.disk_failed(index, "EIO on sync");
        }
        slot.disk_busy = false;
        slot.writing = 0;
        let mut notify = Vec::new();
        for _ in 0..batches {
            let slot = &mut self.slots[index];
            assert!(
                slot.storage.flush_one(),
                "persist completion without a staged batch"
            );
            let done = slot
                .pending
                .pop_front()
                .expect("a staged batch always has its pending entry");
            assert!(
                done.owns_batch,
                "disk completions must match batches in order"
            );
            notify.extend(done.notify);
            self.release(index, done);
            while self.slots[index]
                .pending
                .front()
                .is_some_and(|p| !p.owns_batch)
            {
                let next = self.slots[index].pending.pop_front().expect("front exists");
                self.release(index, next);
            }
        }
        self.start_write(index);
        for tag in notify {
            self.step_node(index, |n, t, fx| n.on_persisted(t, tag, fx));
        }
    }

    /// Node `index`'s write failed: it stops — the batches of the write and every
    /// later one lost, unacknowledged — and stays down until its fault ends.
    fn disk_failed(&mut self, index: usize, what: &str) {
        let slot = &mut self.slots[index];
        slot.disk_busy = false; // no torn prefix: the failed write made nothing durable
        slot.writing = 0;
        let id = slot.id;
        self.stats
            .faults
            .push(format!("{}: {id} stopped: {what}", self.now));
        self.crash(index);
        self.slots[index].down = Some(super::nodes::Down::UntilFixed);
        self.stats.disk_failures += 1;
    }

    pub(super) fn release(&mut self, index: usize, p: Pending<P>) {
        for env in p.sends {
            self.transmit(index, env);
        }
        for reply in p.replies {
            self.reply(index, reply);
        }
    }
}
