//! The test kit's own contract, on a toy protocol: persist before send, crashes lose
//! only volatile state, held notifications, halting fails loudly, chaos replays.

use synod_core::{ClientRequest, Node, NodeEffects, NodeId, Outcome, Prng, Recovered, Time};
use synod_testkit::{n, Cluster, Faults};

/// Counts requests durably; each request is announced to every peer and answered
/// (with the count) once its batch is durable. Request `u64::MAX` halts the node.
struct Counter {
    id: NodeId,
    peers: Vec<NodeId>,
    count: u64,
    waiting: Vec<(ClientRequest<u64>, u64)>,
    halted: Option<String>,
}

impl Counter {
    fn new(id: NodeId) -> Counter {
        let peers = (1..=3).map(n).filter(|&p| p != id).collect();
        let (count, waiting, halted) = (0, Vec::new(), None);
        Counter {
            id,
            peers,
            count,
            waiting,
            halted,
        }
    }
}

impl Node for Counter {
    type Message = u64;
    type Timer = ();
    type Request = u64;
    type Response = u64;

    fn id(&self) -> NodeId {
        self.id
    }
    fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }
    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut NodeEffects<Self>) {
        let count = recovered.meta.get("count").map(|b| b.as_slice());
        self.count = count.map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        out.set_timer((), now + std::time::Duration::from_millis(10));
    }
    fn on_message(&mut self, _: Time, _: NodeId, _: u64, _: &mut NodeEffects<Self>) {}
    fn on_timer(&mut self, now: Time, _: (), out: &mut NodeEffects<Self>) {
        out.set_timer((), now + std::time::Duration::from_millis(10));
    }
    fn on_client_request(
        &mut self,
        _: Time,
        request: ClientRequest<u64>,
        out: &mut NodeEffects<Self>,
    ) {
        if request.op == u64::MAX {
            self.halted = Some("asked to".into());
            return;
        }
        self.count += 1;
        out.persist
            .set_meta("count", self.count.to_le_bytes().to_vec());
        out.broadcast(&self.peers, &self.count);
        self.waiting.push((request, self.count));
        out.persist_notify = Some(self.count);
    }
    fn on_persisted(&mut self, _: Time, tag: u64, out: &mut NodeEffects<Self>) {
        let (done, rest) = self.waiting.drain(..).partition(|(_, c)| *c <= tag);
        self.waiting = rest;
        for (r, c) in done {
            out.reply(r.client, r.seq, Outcome::Done(c));
        }
    }
}

fn durable_count(c: &Cluster<Counter>, id: u64) -> Option<u64> {
    let bytes = c.disk(id).meta("count")?;
    Some(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
}

#[test]
fn a_batch_is_durable_before_its_messages_are_on_the_wire() {
    let mut c = Cluster::start(3, Counter::new, Vec::new());
    let t = c.propose(1, 7);
    assert_eq!(c.wire.len(), 2, "announced to both peers");
    for (from, _, count) in &c.wire {
        assert_eq!(durable_count(&c, from.0), Some(*count));
    }
    assert_eq!(c.outcome(t), Some(&Outcome::Done(1)));
}

#[test]
fn a_crash_loses_volatile_state_queued_messages_and_held_notifications_only() {
    let mut c = Cluster::start(3, Counter::new, Vec::new());
    c.hold_notifications();
    let t = c.propose(1, 7);
    c.propose(2, 7);
    assert_eq!(c.outcome(t), None, "the notification is held");
    c.crash(1);
    assert_eq!(c.wire.iter().filter(|(_, to, _)| *to == n(1)).count(), 0);
    assert_eq!(c.armed(1, ()), None, "a crashed node's timers are gone");
    c.release_notifications();
    assert_eq!(c.outcome(t), None, "the old incarnation's answer is lost");
    assert_eq!(c.replies.len(), 1, "n2's answer arrived");
    c.restart(1);
    assert_eq!(c.node(1).count, 1, "what was persisted survives");
    assert!(c.armed(1, ()).is_some());
}

#[test]
#[should_panic(expected = "n1 halted: asked to")]
fn a_node_that_halts_fails_the_test_with_its_reason() {
    let mut c = Cluster::start(3, Counter::new, Vec::new());
    c.propose(1, u64::MAX);
}

#[test]
fn chaos_replays_bit_for_bit_from_its_seed() {
    let faults = Faults {
        drop: 10,
        duplicate: 10,
        propose: 20,
        crash: 5,
        timer: 10,
        partition: 5,
    };
    let run = |seed: u64| {
        let mut c = Cluster::start(3, Counter::new, Vec::new());
        let mut rng = Prng::new(seed);
        let propose = |c: &mut Cluster<Counter>, rng: &mut Prng, id: u64| {
            c.propose(id, rng.below(10));
        };
        c.chaos(&mut rng, 500, &faults, &propose);
        let replies: Vec<_> = c.replies.iter().map(|(id, r)| (*id, r.seq)).collect();
        (c.delivered, replies, c.now)
    };
    let first = run(7);
    assert!(first.0.len() > 50, "chaos delivers: {}", first.0.len());
    assert_eq!(first, run(7));
    assert_ne!(first.0, run(8).0);
}
