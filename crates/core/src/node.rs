//! The sans-IO node contract shared by every protocol and every driver.
//!
//! # The contract
//!
//! A protocol node is a deterministic state machine. It owns no socket, clock, thread
//! or random source. A *driver* (the simulator in `synod-harness`, the tokio runtime
//! in `synod-runtime`, or your own) calls one input method at a time and then drains
//! the [`Effects`] the node wrote:
//!
//! * **Inputs** — [`Node::on_start`] (exactly once per incarnation, first),
//!   [`Node::on_message`], [`Node::on_timer`], [`Node::on_client_request`] and
//!   [`Node::on_persisted`]. Each carries `now`, which never goes backwards across
//!   calls to the same node.
//! * **Outputs** — after each input the driver takes the [`Effects`] and carries them
//!   out in this order:
//!   1. [`Effects::early_sends`] may be sent and [`Effects::early_replies`]
//!      delivered at once (the protocol marks them as not depending on any batch
//!      that is not durable yet, e.g. a Raft leader's AppendEntries sent while its
//!      own write is in flight, thesis §10.2.1, or the answer to a client whose
//!      entry a quorum already holds durably);
//!   2. the [`WriteBatch`] is made durable, atomically, after every earlier batch of
//!      the same node;
//!   3. only then are [`Effects::sends`] and [`Effects::replies`] delivered
//!      (**persist before send**). This holds even when the input's own batch is
//!      empty: its sends wait until every earlier batch of the node is durable, so
//!      a node may promise anything its in-memory state says. A crash before step 2
//!      completes loses the batch *and* these sends, never the batch alone;
//!   4. if [`Effects::persist_notify`] is set, the driver calls
//!      [`Node::on_persisted`] with that tag once the batch is durable;
//!   5. timer operations take effect immediately.
//! * **Timers** are named by the protocol's own closed `Timer` enum. Setting a timer
//!   that is already set re-arms it; cancelling an unset timer is a no-op. A driver
//!   never fires a timer before its deadline as measured by the `now` it passes in,
//!   but may deliver a firing late, or even after a cancel raced with it: a node must
//!   treat a spurious firing as a no-op (check its own deadline). A fired timer is
//!   disarmed; a node that wants it again sets it again.
//! * **Crash** — the driver drops the node value; a restart builds a new one and
//!   calls `on_start` with everything that had been made durable ([`Recovered`]).
//!
//! Because every input is explicit, the same node code runs under the simulator with
//! virtual time and under the runtime with real sockets, and any simulator run is
//! replayed bit for bit from its seed.

use crate::id::{ClientId, NodeId};
use crate::storage::{Recovered, WriteBatch};
use crate::time::Time;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

/// A request from a client, tagged with its session and sequence number so a retry
/// (same `client`, same `seq`) is recognised as the same logical request.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ClientRequest<R> {
    /// The client session.
    pub client: ClientId,
    /// Per-client sequence number, starting at 1 and increasing by one per new request.
    pub seq: u64,
    /// The operation.
    pub op: R,
}

/// The answer to a [`ClientRequest`].
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ClientReply<R> {
    /// The session that asked.
    pub client: ClientId,
    /// The sequence number of the request answered.
    pub seq: u64,
    /// What happened.
    pub outcome: Outcome<R>,
}

/// What happened to a client request. The variants are chosen so that a client (and
/// the history checker) knows whether the request may have taken effect.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Outcome<R> {
    /// The request took effect exactly once; here is its result.
    Done(R),
    /// This node is not the one to ask and did not act on the request. `leader` is a
    /// hint (possibly stale) of whom to ask instead.
    NotLeader {
        /// Best guess of the current leader, if any.
        leader: Option<NodeId>,
    },
    /// The node could not accept the request now (no quorum, reconfiguring, overload)
    /// and did not act on it. Retry later.
    Unavailable,
    /// The node accepted the request but cannot tell whether it will take effect
    /// (e.g. it lost leadership with the request uncommitted). Retry with the same
    /// `seq`: deduplication makes the retry safe.
    Unknown,
}

impl<R> Outcome<R> {
    /// `true` if the request certainly did not take effect through this attempt.
    pub fn definitely_not_applied(&self) -> bool {
        matches!(self, Outcome::NotLeader { .. } | Outcome::Unavailable)
    }
}

/// A message addressed to a peer.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Envelope<M> {
    /// Destination.
    pub to: NodeId,
    /// Payload.
    pub msg: M,
}

/// A timer request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TimerOp<T> {
    /// Fire `timer` at `at` (re-arming it if already set).
    Set {
        /// Which timer.
        timer: T,
        /// Deadline on the node's clock.
        at: Time,
    },
    /// Disarm `timer`.
    Cancel(T),
}

/// Everything a node asks its driver to do after one input. See the module docs for
/// the order in which a driver must carry them out.
///
/// Drivers keep one `Effects` per node and reuse it, so the vectors keep their
/// capacity across inputs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Effects<M, T, R> {
    /// Durable changes, applied atomically before `sends` and `replies` go out.
    pub persist: WriteBatch,
    /// Messages that depend on `persist` (the default, safe kind).
    pub sends: Vec<Envelope<M>>,
    /// Messages the protocol declares independent of `persist`; a driver may send
    /// them before the batch is durable. Use only where the paper allows it.
    pub early_sends: Vec<Envelope<M>>,
    /// Client answers; like `sends`, they wait for `persist` (and every earlier batch).
    pub replies: Vec<ClientReply<R>>,
    /// Client answers the protocol declares independent of every batch that is not
    /// durable yet: they report only what a quorum already holds durably, such as the
    /// result of a committed entry. A driver may deliver them at once, so an answer
    /// does not wait for an unrelated write that happens to be in flight. Use only
    /// where the commit rule itself counted durable copies alone.
    pub early_replies: Vec<ClientReply<R>>,
    /// Timer operations, effective immediately.
    pub timers: Vec<TimerOp<T>>,
    /// If set, call [`Node::on_persisted`] with this tag once `persist` is durable.
    pub persist_notify: Option<u64>,
}

impl<M, T, R> Default for Effects<M, T, R> {
    fn default() -> Self {
        Effects {
            persist: WriteBatch::new(),
            sends: Vec::new(),
            early_sends: Vec::new(),
            replies: Vec::new(),
            early_replies: Vec::new(),
            timers: Vec::new(),
            persist_notify: None,
        }
    }
}

impl<M, T, R> Effects<M, T, R> {
    /// Empty effects.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` if there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.sends.is_empty()
            && self.early_sends.is_empty()
            && self.replies.is_empty()
            && self.early_replies.is_empty()
            && self.timers.is_empty()
            && self.persist_notify.is_none()
    }

    /// Queues `msg` to `to`, to go out after this input's batch is durable.
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.sends.push(Envelope { to, msg });
    }

    /// Queues `msg` to `to` as independent of this input's batch (see [`Effects::early_sends`]).
    pub fn send_early(&mut self, to: NodeId, msg: M) {
        self.early_sends.push(Envelope { to, msg });
    }

    /// Answers a client, after this input's batch is durable.
    pub fn reply(&mut self, client: ClientId, seq: u64, outcome: Outcome<R>) {
        self.replies.push(ClientReply {
            client,
            seq,
            outcome,
        });
    }

    /// Answers a client at once, independent of this input's batch (see
    /// [`Effects::early_replies`]).
    pub fn reply_early(&mut self, client: ClientId, seq: u64, outcome: Outcome<R>) {
        self.early_replies.push(ClientReply {
            client,
            seq,
            outcome,
        });
    }

    /// Arms (or re-arms) `timer` to fire at `at`.
    pub fn set_timer(&mut self, timer: T, at: Time) {
        self.timers.push(TimerOp::Set { timer, at });
    }

    /// Disarms `timer`.
    pub fn cancel_timer(&mut self, timer: T) {
        self.timers.push(TimerOp::Cancel(timer));
    }

    /// Clears everything, keeping allocated capacity.
    pub fn clear(&mut self) {
        self.persist.clear();
        self.sends.clear();
        self.early_sends.clear();
        self.replies.clear();
        self.early_replies.clear();
        self.timers.clear();
        self.persist_notify = None;
    }
}

impl<M: Clone, T, R> Effects<M, T, R> {
    /// Queues `msg` to every node in `peers` (after the batch).
    pub fn broadcast<'a>(&mut self, peers: impl IntoIterator<Item = &'a NodeId>, msg: &M) {
        for &to in peers {
            self.send(to, msg.clone());
        }
    }
}

/// The effects type of node `N`.
pub type NodeEffects<N> = Effects<<N as Node>::Message, <N as Node>::Timer, <N as Node>::Response>;

/// A sans-IO protocol node. See the [module docs](self) for the driver contract.
///
/// Construction is protocol-specific (each crate has an explicit config without
/// silent defaults); everything after construction goes through these methods.
pub trait Node {
    /// Peer-to-peer message. `Hash` lets the simulator fold deliveries into its trace
    /// digest; serde lets the runtime put it on the wire.
    type Message: Clone + Debug + Hash + Serialize + DeserializeOwned + Send + 'static;
    /// The protocol's closed set of named timers.
    type Timer: Copy + Eq + Hash + Ord + Debug + Send + 'static;
    /// Client operation.
    type Request: Clone + Debug + Hash + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Client result (inside [`Outcome::Done`]).
    type Response: Clone + Debug + Hash + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// This node's id.
    fn id(&self) -> NodeId;

    /// Why the node stopped itself, if it did: it found state it cannot trust (bytes
    /// in its storage that do not decode, a snapshot its application cannot
    /// restore). A halted node ignores its inputs and sends nothing; a driver that
    /// sees it stops the node and reports the reason (the simulator as a violation,
    /// the runtime as the node's exit error). Stopping beats corrupting.
    fn halted(&self) -> Option<&str> {
        None
    }

    /// First input of every incarnation: rebuild volatile state from `recovered`
    /// (empty on the first boot) and arm the initial timers.
    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut NodeEffects<Self>);

    /// A message from peer `from`.
    fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: Self::Message,
        out: &mut NodeEffects<Self>,
    );

    /// `timer` fired. May be spurious (see the module docs).
    fn on_timer(&mut self, now: Time, timer: Self::Timer, out: &mut NodeEffects<Self>);

    /// A client request arrived at this node.
    fn on_client_request(
        &mut self,
        now: Time,
        request: ClientRequest<Self::Request>,
        out: &mut NodeEffects<Self>,
    );

    /// Client requests that arrived together, in order, as **one input** (one
    /// `Effects`, one batch). The default hands them to
    /// [`on_client_request`](Node::on_client_request) one by one; a protocol may
    /// override it to batch them, e.g. one replication round for all. Drivers that
    /// read several requests at once (a socket buffer, a queue) call this.
    fn on_client_requests(
        &mut self,
        now: Time,
        requests: impl IntoIterator<Item = ClientRequest<Self::Request>>,
        out: &mut NodeEffects<Self>,
    ) where
        Self: Sized,
    {
        for request in requests {
            self.on_client_request(now, request, out);
        }
    }

    /// The batch tagged `tag` through [`Effects::persist_notify`] is durable.
    /// Protocols that never set the tag keep the default no-op.
    fn on_persisted(&mut self, now: Time, tag: u64, out: &mut NodeEffects<Self>) {
        let _ = (now, tag, out);
    }
}

/// A protocol's own writes waiting to be confirmed durable, for a leader that writes
/// in parallel with sending and counts itself only for what its storage confirmed
/// (Raft thesis §10.2.1, and its Multi-Paxos twin). Each wait is the input's
/// [`Effects::persist_notify`] tag and a mark (how far that input's batch reaches);
/// [`Node::on_persisted`] hands the tag back. Batches become durable in order, so a
/// tag confirms every wait up to it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DurableWaits<M> {
    waits: std::collections::VecDeque<(u64, M)>,
}

impl<M> Default for DurableWaits<M> {
    fn default() -> DurableWaits<M> {
        DurableWaits {
            waits: std::collections::VecDeque::new(),
        }
    }
}

impl<M: Copy> DurableWaits<M> {
    /// Asks to hear when this input's batch is durable, which reaches `mark`:
    /// sets `notify` (the input's [`Effects::persist_notify`]). A second call in the
    /// same input only moves the mark: one notification covers the input.
    /// `last_tag` numbers the node's notifications; keep it across leaderships, so a
    /// late notification of an earlier one matches no new wait.
    pub fn await_batch(&mut self, mark: M, last_tag: &mut u64, notify: &mut Option<u64>) {
        match self.waits.back_mut() {
            Some((tag, m)) if *notify == Some(*tag) => *m = mark,
            _ => {
                *last_tag += 1;
                self.waits.push_back((*last_tag, mark));
                *notify = Some(*last_tag);
            }
        }
    }

    /// The batch tagged `tag` is durable, and every batch before it: drops the waits
    /// it covers and returns the mark of the latest, or `None` if it covers none.
    pub fn confirm(&mut self, tag: u64) -> Option<M> {
        let mut through = None;
        while let Some(&(t, mark)) = self.waits.front() {
            if t > tag {
                break;
            }
            self.waits.pop_front();
            through = Some(mark);
        }
        through
    }
}

#[cfg(test)]
mod tests {
    use super::DurableWaits;

    /// One notification per input, whatever it wrote; a tag confirms every wait up to
    /// it and reports the latest mark; a tag below every wait confirms nothing.
    #[test]
    fn durable_waits_coalesce_per_input_and_confirm_in_order() {
        let (mut waits, mut last_tag) = (DurableWaits::default(), 0);
        let mut input = |waits: &mut DurableWaits<u64>, marks: &[u64]| {
            let mut notify = None;
            for &m in marks {
                waits.await_batch(m, &mut last_tag, &mut notify);
            }
            notify
        };
        assert_eq!(input(&mut waits, &[3, 5]), Some(1));
        assert_eq!(input(&mut waits, &[8]), Some(2));
        assert_eq!(input(&mut waits, &[9]), Some(3));
        assert_eq!(waits.confirm(0), None);
        assert_eq!(waits.confirm(2), Some(8));
        assert_eq!(waits.confirm(2), None, "already confirmed");
        assert_eq!(waits.confirm(7), Some(9));
    }

    use super::*;

    #[test]
    fn clear_empties_but_keeps_capacity() {
        let mut e: Effects<u8, u8, u8> = Effects::new();
        e.send(NodeId(1), 1);
        e.reply(ClientId(1), 1, Outcome::Done(3));
        e.set_timer(0, Time::ZERO);
        e.persist.set_meta("x", vec![]);
        assert!(!e.is_empty());
        let cap = e.sends.capacity();
        e.clear();
        assert!(e.is_empty());
        assert_eq!(e.sends.capacity(), cap);
    }

    #[test]
    fn only_not_leader_and_unavailable_are_definite_failures() {
        assert!(Outcome::<()>::NotLeader { leader: None }.definitely_not_applied());
        assert!(Outcome::<()>::Unavailable.definitely_not_applied());
        assert!(!Outcome::<()>::Unknown.definitely_not_applied());
        assert!(!Outcome::Done(()).definitely_not_applied());
    }

    /// Each effect lands in its own list, in order — a driver treats them differently
    /// (early sends and replies need not wait for the batch) — and any one of them
    /// alone makes the effects non-empty.
    #[test]
    fn each_effect_lands_in_its_own_list_and_any_one_is_something_to_do() {
        type Fx = Effects<u8, u8, u8>;
        let alone: [fn(&mut Fx); 7] = [
            |e| e.persist.set_meta("x", vec![]),
            |e| e.send(NodeId(2), 1),
            |e| e.send_early(NodeId(2), 1),
            |e| e.reply(ClientId(1), 1, Outcome::Done(1)),
            |e| e.reply_early(ClientId(1), 1, Outcome::Done(1)),
            |e| e.cancel_timer(0),
            |e| e.persist_notify = Some(1),
        ];
        for (i, make) in alone.iter().enumerate() {
            let mut e = Fx::new();
            make(&mut e);
            assert!(!e.is_empty(), "effect {i} alone");
        }
        let mut e = Fx::new();
        e.send(NodeId(2), 1);
        e.send_early(NodeId(3), 2);
        e.broadcast(&[NodeId(4), NodeId(5)], &3);
        e.reply(ClientId(1), 1, Outcome::Done(4));
        e.reply_early(ClientId(2), 7, Outcome::Unknown);
        e.set_timer(9, Time::from_millis(5));
        e.cancel_timer(8);
        let to = |v: &[Envelope<u8>]| v.iter().map(|x| (x.to, x.msg)).collect::<Vec<_>>();
        assert_eq!(
            to(&e.sends),
            [(NodeId(2), 1), (NodeId(4), 3), (NodeId(5), 3)]
        );
        assert_eq!(to(&e.early_sends), [(NodeId(3), 2)]);
        let replies = |v: &[ClientReply<u8>]| {
            (v.iter())
                .map(|r| (r.client, r.seq, r.outcome.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(replies(&e.replies), [(ClientId(1), 1, Outcome::Done(4))]);
        assert_eq!(
            replies(&e.early_replies),
            [(ClientId(2), 7, Outcome::Unknown)]
        );
        let timers = [
            TimerOp::Set {
                timer: 9,
                at: Time::from_millis(5),
            },
            TimerOp::Cancel(8),
        ];
        assert_eq!(e.timers, timers);
    }

    /// A node that counts the requests handed to it, to see the trait's defaults.
    struct Counter {
        seen: Vec<u64>,
    }

    impl Node for Counter {
        type Message = ();
        type Timer = ();
        type Request = u64;
        type Response = u64;
        fn id(&self) -> NodeId {
            NodeId(1)
        }
        fn on_start(&mut self, _: Time, _: Recovered, _: &mut NodeEffects<Self>) {}
        fn on_message(&mut self, _: Time, _: NodeId, _: (), _: &mut NodeEffects<Self>) {}
        fn on_timer(&mut self, _: Time, _: (), _: &mut NodeEffects<Self>) {}
        fn on_client_request(
            &mut self,
            _: Time,
            request: ClientRequest<u64>,
            out: &mut NodeEffects<Self>,
        ) {
            self.seen.push(request.op);
            out.reply(request.client, request.seq, Outcome::Done(request.op));
        }
    }

    /// The defaults: a node is not halted, and requests read together are handed
    /// over one by one, in order, into the one input's effects.
    #[test]
    fn by_default_a_node_runs_and_takes_requests_read_together_one_by_one() {
        let mut node = Counter { seen: Vec::new() };
        assert_eq!(node.halted(), None);
        let requests = (1..=3).map(|op| ClientRequest {
            client: ClientId(op),
            seq: 1,
            op: op * 10,
        });
        let mut out = NodeEffects::<Counter>::new();
        node.on_client_requests(Time::ZERO, requests, &mut out);
        assert_eq!(node.seen, [10, 20, 30]);
        assert_eq!(out.replies.len(), 3, "one input, one effects");
    }
}
