//! The tokio driver carries out effects in the contract's order: early sends at once,
//! sends and replies only after every batch submitted up to their input is durable,
//! persist notifications after their batch, timers never early.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use synod_core::{
    ClientId, ClientReply, ClientRequest, Node, NodeEffects, NodeId, Outcome, Recovered, Storage,
    StorageError, Time, Transport, TransportError, WriteBatch,
};
use synod_runtime::driver::{self, Submission};
use tokio::sync::{mpsc, Semaphore};

/// What the test node is asked to do.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
enum Op {
    /// Persist a batch, send one message early and one normally, and reply.
    Write,
    /// No batch: just a message and a reply (like a vote reply that reveals state).
    Read,
    /// No batch: an answer about durable state (`reply_early`), like the result of
    /// a committed entry.
    Committed,
    /// Persist with a notification; the node replies when notified.
    Notify,
    /// Arm a timer `ms` from now; the node sends `Fired` when it fires.
    Timer { ms: u64 },
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
enum Msg {
    Early(u64),
    Late(u64),
    Fired(u64),
}

struct TestNode {
    pending_notify: Option<(ClientId, u64)>,
    /// How many requests each client-request input carried.
    request_inputs: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl Node for TestNode {
    type Message = Msg;
    type Timer = u64;
    type Request = Op;
    type Response = u64;

    fn id(&self) -> NodeId {
        NodeId(1)
    }

    fn on_start(&mut self, _now: Time, _recovered: Recovered, _out: &mut NodeEffects<Self>) {}

    fn on_message(&mut self, _: Time, _: NodeId, _: Msg, _: &mut NodeEffects<Self>) {}

    fn on_timer(&mut self, now: Time, timer: u64, out: &mut NodeEffects<Self>) {
        out.send(NodeId(2), Msg::Fired(now.as_nanos() / 1_000_000 - timer));
    }

    fn on_client_request(
        &mut self,
        now: Time,
        request: ClientRequest<Op>,
        out: &mut NodeEffects<Self>,
    ) {
        let ClientRequest { client, seq, op } = request;
        match op {
            Op::Write => {
                out.persist.set_meta("k", seq.to_le_bytes().to_vec());
                out.send_early(NodeId(2), Msg::Early(seq));
                out.send(NodeId(2), Msg::Late(seq));
                out.reply(client, seq, Outcome::Done(seq));
            }
            Op::Read => {
                out.send(NodeId(2), Msg::Late(seq));
                out.reply(client, seq, Outcome::Done(seq));
            }
            Op::Committed => out.reply_early(client, seq, Outcome::Done(seq)),
            Op::Notify => {
                out.persist.set_meta("k", seq.to_le_bytes().to_vec());
                out.persist_notify = Some(seq);
                self.pending_notify = Some((client, seq));
            }
            Op::Timer { ms } => {
                // The timer's id is its deadline in ms, so on_timer can report lateness.
                let at = now + Duration::from_millis(ms);
                out.set_timer(at.as_nanos() / 1_000_000, at);
            }
        }
    }

    fn on_client_requests(
        &mut self,
        now: Time,
        requests: impl IntoIterator<Item = ClientRequest<Op>>,
        out: &mut NodeEffects<Self>,
    ) {
        let requests: Vec<_> = requests.into_iter().collect();
        self.request_inputs.lock().unwrap().push(requests.len());
        for request in requests {
            self.on_client_request(now, request, out);
        }
    }

    fn on_persisted(&mut self, _now: Time, tag: u64, out: &mut NodeEffects<Self>) {
        if let Some((client, seq)) = self.pending_notify.take() {
            assert_eq!(seq, tag);
            out.reply(client, seq, Outcome::Done(seq));
        }
    }
}

/// Peer messages go to a channel the test reads.
struct Outbox(
    mpsc::UnboundedSender<Msg>,
    mpsc::UnboundedReceiver<(NodeId, Msg)>,
);

#[async_trait]
impl Transport<Msg> for Outbox {
    async fn send(&mut self, _to: NodeId, msg: Msg) -> Result<(), TransportError> {
        self.0.send(msg).map_err(|_| TransportError::Closed)
    }

    async fn recv(&mut self) -> Result<(NodeId, Msg), TransportError> {
        self.1.recv().await.ok_or(TransportError::Closed)
    }
}

/// Storage whose every group commit announces its size, then waits for a permit
/// from the test. Dropping it takes a while (as closing files can), then sets `dropped`.
struct GatedStorage {
    gate: Arc<Semaphore>,
    groups: Arc<AtomicU64>,
    entered: mpsc::UnboundedSender<usize>,
    dropped: Arc<AtomicBool>,
}

impl Drop for GatedStorage {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(50));
        self.dropped.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Storage for GatedStorage {
    async fn load(&mut self) -> Result<Recovered, StorageError> {
        Ok(Recovered::default())
    }

    async fn persist(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        self.persist_all(vec![batch]).await
    }

    async fn persist_all(&mut self, batches: Vec<WriteBatch>) -> Result<(), StorageError> {
        let _ = self.entered.send(batches.len());
        self.gate.acquire().await.expect("gate open").forget();
        self.groups.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Rig {
    handle: driver::NodeHandle<TestNode>,
    sent: mpsc::UnboundedReceiver<Msg>,
    replies_tx: mpsc::UnboundedSender<ClientReply<u64>>,
    replies: mpsc::UnboundedReceiver<ClientReply<u64>>,
    gate: Arc<Semaphore>,
    groups: Arc<AtomicU64>,
    /// Sizes of the groups storage started to sync, in order.
    entered: mpsc::UnboundedReceiver<usize>,
    request_inputs: Arc<std::sync::Mutex<Vec<usize>>>,
    storage_dropped: Arc<AtomicBool>,
    _inbox: mpsc::UnboundedSender<(NodeId, Msg)>,
}

fn rig() -> Rig {
    let (sent_tx, sent) = mpsc::unbounded_channel();
    let (inbox, inbox_rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let groups = Arc::new(AtomicU64::new(0));
    let (entered_tx, entered) = mpsc::unbounded_channel();
    let storage_dropped = Arc::new(AtomicBool::new(false));
    let storage = GatedStorage {
        gate: Arc::clone(&gate),
        groups: Arc::clone(&groups),
        entered: entered_tx,
        dropped: Arc::clone(&storage_dropped),
    };
    let request_inputs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let node = TestNode {
        pending_notify: None,
        request_inputs: Arc::clone(&request_inputs),
    };
    let handle = driver::spawn(node, Outbox(sent_tx, inbox_rx), storage);
    let (replies_tx, replies) = mpsc::unbounded_channel();
    Rig {
        handle,
        sent,
        replies_tx,
        replies,
        gate,
        groups,
        entered,
        request_inputs,
        storage_dropped,
        _inbox: inbox,
    }
}

impl Rig {
    async fn submit(&self, seq: u64, op: Op) {
        let request = ClientRequest {
            client: ClientId(7),
            seq,
            op,
        };
        let submission = Submission {
            request,
            reply_to: self.replies_tx.clone(),
        };
        self.handle
            .requests()
            .send(submission)
            .await
            .expect("node running");
    }
}

const QUIET: Duration = Duration::from_millis(150);
const LONG: Duration = Duration::from_secs(10);

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(LONG, rx.recv())
        .await
        .expect("in time")
        .expect("channel open")
}

async fn nothing<T: std::fmt::Debug>(rx: &mut mpsc::UnboundedReceiver<T>) {
    if let Ok(Some(x)) = tokio::time::timeout(QUIET, rx.recv()).await {
        panic!("released before its batch was durable: {x:?}");
    }
}

#[tokio::test]
async fn sends_and_replies_wait_for_durability_but_early_sends_do_not() {
    let mut r = rig();
    r.submit(1, Op::Write).await;
    assert_eq!(next(&mut r.sent).await, Msg::Early(1));
    nothing(&mut r.sent).await;
    nothing(&mut r.replies).await;
    r.gate.add_permits(1);
    assert_eq!(next(&mut r.sent).await, Msg::Late(1));
    assert_eq!(next(&mut r.replies).await.seq, 1);
    assert_eq!(r.groups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_input_without_a_batch_waits_for_earlier_batches() {
    let mut r = rig();
    r.submit(1, Op::Write).await;
    assert_eq!(next(&mut r.sent).await, Msg::Early(1));
    r.submit(2, Op::Read).await;
    // The read's reply may reveal the write's state: it must not overtake it.
    nothing(&mut r.replies).await;
    r.gate.add_permits(1);
    assert_eq!(next(&mut r.replies).await.seq, 1);
    assert_eq!(next(&mut r.replies).await.seq, 2);
    assert_eq!(next(&mut r.sent).await, Msg::Late(1));
    assert_eq!(next(&mut r.sent).await, Msg::Late(2));
}

#[tokio::test]
async fn requests_queued_together_reach_the_node_as_one_input() {
    let mut r = rig();
    for seq in 1..=3 {
        r.submit(seq, Op::Read).await;
    }
    for seq in 1..=3 {
        assert_eq!(next(&mut r.replies).await.seq, seq);
    }
    assert_eq!(*r.request_inputs.lock().unwrap(), vec![3]);
}

#[tokio::test]
async fn early_replies_do_not_wait_for_an_unrelated_write_in_flight() {
    let mut r = rig();
    r.submit(1, Op::Write).await;
    assert_eq!(next(&mut r.sent).await, Msg::Early(1));
    r.submit(2, Op::Committed).await;
    // The write is still syncing, yet the answer about durable state goes out.
    assert_eq!(next(&mut r.replies).await.seq, 2);
    nothing(&mut r.replies).await;
    r.gate.add_permits(1);
    assert_eq!(next(&mut r.replies).await.seq, 1);
}

#[tokio::test]
async fn batches_queued_during_a_sync_share_the_next_one() {
    let mut r = rig();
    r.submit(1, Op::Write).await;
    assert_eq!(next(&mut r.sent).await, Msg::Early(1));
    // Batch 1 is being synced alone ...
    assert_eq!(next(&mut r.entered).await, 1);
    for seq in 2..=20 {
        r.submit(seq, Op::Write).await;
        assert_eq!(next(&mut r.sent).await, Msg::Early(seq));
    }
    // ... and 2..=20, queued behind it, form the next group.
    r.gate.add_permits(2);
    assert_eq!(
        next(&mut r.entered).await,
        19,
        "group commit: one sync for 19 batches"
    );
    for seq in 1..=20 {
        assert_eq!(next(&mut r.replies).await.seq, seq);
    }
    assert_eq!(r.groups.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn persist_notification_comes_after_the_batch_is_durable() {
    let mut r = rig();
    r.submit(1, Op::Notify).await;
    nothing(&mut r.replies).await;
    r.gate.add_permits(1);
    assert_eq!(next(&mut r.replies).await.outcome, Outcome::Done(1));
}

#[tokio::test]
async fn timers_fire_at_their_deadline_not_before() {
    let mut r = rig();
    let started = tokio::time::Instant::now();
    r.submit(1, Op::Timer { ms: 80 }).await;
    let Msg::Fired(late_ms) = next(&mut r.sent).await else {
        panic!("expected the timer's message");
    };
    assert!(
        started.elapsed() >= Duration::from_millis(80),
        "fired early"
    );
    assert!(late_ms < 5_000, "fired {late_ms} ms late");
}

#[tokio::test]
async fn a_stopped_node_finishes_its_queued_batches_first() {
    let mut r = rig();
    r.submit(1, Op::Write).await;
    assert_eq!(next(&mut r.sent).await, Msg::Early(1));
    r.handle.stop();
    r.gate.add_permits(1);
    assert_eq!(
        next(&mut r.replies).await.seq,
        1,
        "the durable write is still answered"
    );
    tokio::time::timeout(LONG, r.handle.join())
        .await
        .expect("stops in time")
        .expect("clean stop");
}

/// A stopped node must have let go of its storage — for a file WAL, the directory
/// lock — so that a node restarted in the same process can open it at once.
#[tokio::test]
async fn a_stopped_node_has_dropped_its_storage_when_join_returns() {
    let r = rig();
    r.handle.stop();
    tokio::time::timeout(LONG, r.handle.join())
        .await
        .expect("stops in time")
        .expect("clean stop");
    assert!(r.storage_dropped.load(Ordering::SeqCst));
}
