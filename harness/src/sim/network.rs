//! The network: latency with an exponential tail, FIFO links, reordering, loss,
//! duplication, long delays, partitions (checked on send and on arrival) and clogs.

use super::spacetime::label_of;
use super::{uniform, Event, Msg, Simulator};
use crate::protocol::SimProtocol;
use rand::Rng;
use std::time::Duration;
use synod_core::{Envelope, Node, NodeId, Time};

impl<P: SimProtocol> Simulator<P> {
    pub(super) fn link(&self, from: usize, to: usize) -> usize {
        from * self.slots.len() + to
    }

    pub(super) fn index_of(&self, id: NodeId) -> usize {
        let i = usize::try_from(id.0)
            .ok()
            .and_then(|x| x.checked_sub(1))
            .filter(|&i| i < self.slots.len());
        match i {
            Some(i) => i,
            None => panic!("protocol addressed unknown node {id}"),
        }
    }

    /// One-way delay: the minimum plus an exponential tail. Returns the delay and
    /// whether the message was picked for reordering (an extra random delay that
    /// lets it overtake or be overtaken).
    pub(super) fn latency(&mut self) -> (Duration, bool) {
        let net = &self.cfg.network;
        let u: f64 = self.net_rng.gen();
        let tail = net.latency_tail_mean.as_secs_f64() * -(1.0 - u).ln();
        let tail = Duration::from_secs_f64(tail.min(net.latency_tail_max.as_secs_f64()));
        let mut d = net.latency_min + tail;
        let reordered = net.reorder > 0.0 && self.net_rng.gen_bool(net.reorder);
        if reordered {
            d += uniform(&mut self.net_rng, Duration::ZERO, net.reorder_delay_max);
        }
        (d, reordered)
    }

    /// When a peer message sent now on `link` arrives. Links are FIFO like the TCP
    /// connections the runtime uses — a message never overtakes an earlier one on the
    /// same link — except for messages picked for reordering, and duplicates.
    pub(super) fn arrival(&mut self, link: usize) -> Time {
        let (d, reordered) = self.latency();
        let at = self.now + d;
        if reordered || !self.cfg.network.fifo_links {
            return at;
        }
        let at = at.max(self.link_last[link]);
        self.link_last[link] = at;
        at
    }

    pub(super) fn transmit(&mut self, from: usize, env: Envelope<Msg<P>>) {
        let to = self.index_of(env.to);
        let label = self.tracing().is_some().then(|| label_of(&env.msg));
        let arrives = self.route(from, to, env.msg);
        if let Some(label) = label {
            self.trace_arrow(from + 1, to + 1, arrives, || label);
        }
    }

    /// Puts `msg` on the wire from `from` to `to`: when it arrives, or `None` if it
    /// is dropped or held back.
    fn route(&mut self, from: usize, to: usize, msg: Msg<P>) -> Option<Time> {
        self.stats.sent += 1;
        if self.cfg.measure_bytes {
            let size = postcard::experimental::serialized_size(&msg);
            self.stats.bytes_sent += size.map_or(0, |n| n as u64);
        }
        let link = self.link(from, to);
        if self.muffled[from] {
            self.stats.delayed += 1;
            self.stalled.push((from, to, msg));
            return None;
        }
        if self.cut(from, to) {
            self.stats.dropped_partition += 1;
            return None;
        }
        if self.clogged[link] {
            self.held.push((from, to, msg));
            return None;
        }
        let loss = if self.lossy {
            self.cfg.network.fault_loss
        } else {
            self.cfg.network.loss
        };
        if loss > 0.0 && self.net_rng.gen_bool(loss) {
            self.stats.dropped_loss += 1;
            return None;
        }
        let dup = self.cfg.network.duplicate;
        if dup > 0.0 && self.net_rng.gen_bool(dup) {
            self.stats.duplicated += 1;
            let (d, _) = self.latency();
            let msg = msg.clone();
            self.schedule(d, Event::Deliver { from, to, msg });
        }
        let at = match self.long_delay() {
            // Held far past the link's order: newer messages overtake it.
            Some(d) => self.now + d,
            None => self.arrival(link),
        };
        self.schedule_at(at, Event::Deliver { from, to, msg });
        Some(at)
    }

    /// During a "delay" fault, picks messages to hold back for a long time (up to
    /// several election timeouts) and returns how long. No random draw otherwise, so
    /// runs without the fault keep their network stream.
    pub(super) fn long_delay(&mut self) -> Option<Duration> {
        let net = &self.cfg.network;
        if !self.delaying || net.fault_delay <= 0.0 || !self.net_rng.gen_bool(net.fault_delay) {
            return None;
        }
        let (lo, hi) = (net.fault_delay_min, net.fault_delay_max);
        self.stats.delayed += 1;
        Some(uniform(&mut self.net_rng, lo, hi))
    }

    /// `true` if a partition or an isolation drops messages from `from` to `to`.
    pub(super) fn cut(&self, from: usize, to: usize) -> bool {
        self.blocked[self.link(from, to)]
            || self.isolated[from]
            || self.isolated[to]
            || self.muffled[to]
            || (self.split[from] && self.split[to])
            || self.across_split(from, to)
    }

    pub(super) fn deliver(&mut self, from: usize, to: usize, msg: Msg<P>) {
        if self.cut(from, to) {
            // The partition formed while the message was on the wire.
            self.stats.dropped_partition += 1;
            return;
        }
        if self.slots[to].node.is_none() {
            self.stats.dropped_down += 1;
            return;
        }
        self.stats.delivered += 1;
        let from_id = self.members[from];
        tracing::trace!(from = %from_id, ?msg, "deliver");
        self.step_node(to, |n, t, fx| n.on_message(t, from_id, msg, fx));
        if let Some((run, script)) = self.script.as_mut().filter(|(_, s)| s.counts_messages()) {
            let run = *run;
            let actions = script.on_delivered(to);
            self.script_act(run, actions);
        }
    }
}
