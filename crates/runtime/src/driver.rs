//! The tokio driver: one task runs one sans-IO node for real.
//!
//! The task owns the node and feeds it inputs — peer messages from a
//! [`Transport`], client requests from a channel, timers from tokio's clock, and
//! persist completions — and carries out the [`Effects`](synod_core::Effects) each
//! input returns:
//!
//! * timers are armed and cancelled at once; a fired timer is disarmed, and none fires
//!   before its deadline;
//! * `early_sends` and `early_replies` go out at once (the protocol declared them
//!   independent of every batch not yet durable, e.g. the answer for an entry a
//!   quorum already holds);
//! * the write batch goes to storage through a [`GroupCommitQueue`]: a dedicated OS
//!   thread takes everything queued, persists it with one sync
//!   ([`Storage::persist_all`]) and reports the last durable batch;
//! * `sends`, `replies` and `persist_notify` wait in a [`Pipeline`] until every batch
//!   submitted up to their input is durable — **persist before send** — then go out
//!   in input order.
//!
//! Client requests that are queued together (up to 256) reach the node as one input,
//! [`Node::on_client_requests`], so a protocol may replicate them in one round.
//!
//! While a sync is in progress the node keeps processing inputs; their batches queue
//! up and the next sync covers all of them. That is group commit, and what makes many
//! concurrent clients cost few fsyncs.
//!
//! `now` is monotonic nanoseconds since the driver started ([`Time`]); a restarted
//! node starts from zero, which the protocols allow (they keep no absolute times in
//! storage).

use crate::pipeline::{Deferred, Pipeline};
use crate::wal::group_commit::GroupCommitQueue;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use synod_core::{
    ClientId, ClientReply, ClientRequest, Envelope, Node, NodeEffects, Recovered, Storage,
    StorageError, Time, TimerOp, Transport, TransportError,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Why a node task stopped with an error. Both kinds are fatal for the node: going on
/// after a failed write could acknowledge something that is not durable.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Storage failed to load or persist.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The transport closed or failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The storage thread ended unexpectedly (it panicked).
    #[error("the storage thread of the node stopped unexpectedly")]
    StorageThreadGone,
    /// The node halted itself: it found state it cannot trust (see
    /// [`Node::halted`](synod_core::Node::halted)).
    #[error("the node halted: {0}")]
    Halted(String),
}

/// Where the driver sends the reply to one client request.
pub type ReplyTo<N> = mpsc::UnboundedSender<ClientReply<<N as Node>::Response>>;

/// A client request handed to a node task, with where its reply goes.
pub struct Submission<N: Node> {
    /// The request.
    pub request: ClientRequest<N::Request>,
    /// Receives the node's reply. A retry of the same `(client, seq)` replaces an
    /// earlier destination.
    pub reply_to: ReplyTo<N>,
}

/// A running node task.
pub struct NodeHandle<N: Node> {
    requests: mpsc::Sender<Submission<N>>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), DriverError>>,
}

impl<N: Node> NodeHandle<N> {
    /// The channel client requests are submitted on. Bounded: a full channel slows
    /// the submitter down (back-pressure on the client connection).
    pub fn requests(&self) -> mpsc::Sender<Submission<N>> {
        self.requests.clone()
    }

    /// Asks the node to stop gracefully: it stops taking inputs, lets storage finish
    /// the batches already queued, sends what they released, and ends.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits for the node task to end, and reports why it did.
    pub async fn join(self) -> Result<(), DriverError> {
        joined(self.task.await)
    }

    /// Runs until `stop` flips (then stops gracefully) or the node fails.
    pub async fn run_until(mut self, mut stop: watch::Receiver<bool>) -> Result<(), DriverError> {
        tokio::select! {
            _ = stop.changed() => {
                self.stop();
                self.join().await
            }
            ended = &mut self.task => joined(ended),
        }
    }

    /// Whether the node task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// The result of a finished task: its own, a panic passed on, or `Ok` if the runtime
/// cancelled it while shutting down.
pub(crate) fn joined<E>(ended: Result<Result<(), E>, tokio::task::JoinError>) -> Result<(), E> {
    match ended {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Ok(()), // cancelled: the runtime is shutting down
    }
}

/// Depth of the client request channel of a node.
pub const REQUEST_QUEUE_DEPTH: usize = 4096;

/// Most client requests handed to the node as one input.
const REQUESTS_PER_INPUT: usize = 256;

/// Starts `node` on the current tokio runtime: loads its state from `storage`, then
/// runs it until [`NodeHandle::stop`] or a fatal error. `transport.recv()` must be
/// cancel-safe (the driver polls it alongside other inputs).
pub fn spawn<N, T, S>(node: N, transport: T, storage: S) -> NodeHandle<N>
where
    N: Node + Send + 'static,
    T: Transport<N::Message> + 'static,
    S: Storage + 'static,
{
    let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE_DEPTH);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let queue = Arc::new(GroupCommitQueue::new());
    let (durable_tx, durable) = mpsc::unbounded_channel();
    let (loaded_tx, loaded) = oneshot::channel();
    let (exited_tx, storage_exited) = oneshot::channel();
    let storage_thread = StorageThread {
        storage,
        queue: Arc::clone(&queue),
        durable: durable_tx,
        runtime: tokio::runtime::Handle::current(),
    };
    std::thread::Builder::new()
        .name(format!("synod-storage-{}", node.id()))
        .spawn(move || {
            // `run` consumes the thread's state: the storage (and its directory lock)
            // is dropped before the driver hears that the thread is gone.
            storage_thread.run(loaded_tx);
            let _ = exited_tx.send(());
        })
        .expect("the OS refused to start the storage thread");
    let driver = Driver {
        node,
        transport,
        requests,
        shutdown,
        queue,
        durable,
        storage_exited,
        start: Instant::now(),
        timers: BTreeMap::new(),
        pipeline: Pipeline::new(),
        notifies: VecDeque::new(),
        pending: BTreeMap::new(),
        submissions: Vec::new(),
        spare: NodeEffects::<N>::new(),
    };
    let task = tokio::spawn(driver.run(loaded));
    NodeHandle {
        requests: requests_tx,
        shutdown: shutdown_tx,
        task,
    }
}

/// Storage on its own OS thread, so a slow fsync never stalls the node's inputs.
struct StorageThread<S> {
    storage: S,
    queue: Arc<GroupCommitQueue>,
    durable: mpsc::UnboundedSender<Result<u64, StorageError>>,
    runtime: tokio::runtime::Handle,
}

impl<S: Storage> StorageThread<S> {
    fn run(mut self, loaded: oneshot::Sender<Result<Recovered, StorageError>>) {
        let recovered = self.runtime.block_on(self.storage.load());
        let failed = recovered.is_err();
        let _ = loaded.send(recovered);
        if failed {
            return;
        }
        while let Some((first, batches)) = self.queue.take_all() {
            // Pipeline numbering: the queue's first batch (0) is the pipeline's 1.
            let last = first + batches.len() as u64;
            let result = self.runtime.block_on(self.storage.persist_all(batches));
            let failed = result.is_err();
            let _ = self.durable.send(result.map(|()| last));
            if failed {
                return;
            }
        }
    }
}

type Parked<N> = Deferred<Envelope<<N as Node>::Message>, ClientReply<<N as Node>::Response>>;

struct Driver<N: Node, T> {
    node: N,
    transport: T,
    requests: mpsc::Receiver<Submission<N>>,
    shutdown: watch::Receiver<bool>,
    queue: Arc<GroupCommitQueue>,
    durable: mpsc::UnboundedReceiver<Result<u64, StorageError>>,
    /// Fires once the storage thread has ended and dropped the storage.
    storage_exited: oneshot::Receiver<()>,
    start: Instant,
    /// Armed timers and their deadlines.
    timers: BTreeMap<N::Timer, Instant>,
    pipeline: Pipeline<Envelope<N::Message>, ClientReply<N::Response>>,
    /// `on_persisted` tags released but not yet delivered.
    notifies: VecDeque<u64>,
    /// Where replies to outstanding client requests go.
    pending: BTreeMap<(ClientId, u64), ReplyTo<N>>,
    /// An empty effects buffer, reused across inputs.
    spare: NodeEffects<N>,
    /// Client requests taken from the queue for the next input (kept for its buffer).
    submissions: Vec<Submission<N>>,
}

impl<N, T> Driver<N, T>
where
    N: Node + Send + 'static,
    T: Transport<N::Message>,
{
    async fn run(
        mut self,
        loaded: oneshot::Receiver<Result<Recovered, StorageError>>,
    ) -> Result<(), DriverError> {
        let recovered = loaded.await.map_err(|_| DriverError::StorageThreadGone)??;
        let result = self.serve(recovered).await;
        self.queue.close();
        let result = match result {
            Ok(()) => self.drain().await,
            failed => failed,
        };
        // Free the node's ports and its storage before reporting that it stopped, so
        // that a new node can take both over at once (the storage holds the WAL
        // directory's lock until dropped). The queue is closed, so the thread ends
        // once its last sync returns.
        self.transport.shutdown().await;
        let _ = (&mut self.storage_exited).await;
        result
    }

    async fn serve(&mut self, recovered: Recovered) -> Result<(), DriverError> {
        let mut fx = self.take_effects();
        let now = self.now();
        self.node.on_start(now, recovered, &mut fx);
        self.process(fx).await?;
        let mut clients_open = true;
        loop {
            self.fire_due_timers().await?;
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => return Ok(()),
                durable = self.durable.recv() => {
                    let seq = durable.ok_or(DriverError::StorageThreadGone)??;
                    self.on_durable(seq).await?;
                }
                received = self.transport.recv() => {
                    let (from, msg) = received?;
                    let mut fx = self.take_effects();
                    let now = self.now();
                    self.node.on_message(now, from, msg, &mut fx);
                    self.process(fx).await?;
                }
                n = self.requests.recv_many(&mut self.submissions, REQUESTS_PER_INPUT), if clients_open => {
                    if n == 0 {
                        clients_open = false;
                    } else {
                        self.on_client_requests().await?;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// After a graceful stop: lets storage finish what is queued and sends what that
    /// releases, so a stopped node loses nothing it already decided.
    async fn drain(&mut self) -> Result<(), DriverError> {
        while self.pipeline.in_flight() > 0 {
            match self.durable.recv().await {
                Some(durable) => self.on_durable(durable?).await?,
                None => return Err(DriverError::StorageThreadGone),
            }
        }
        Ok(())
    }

    fn now(&self) -> Time {
        Time::from_nanos(self.start.elapsed().as_nanos() as u64)
    }

    fn instant(&self, at: Time) -> Instant {
        self.start + Duration::from_nanos(at.as_nanos())
    }

    fn take_effects(&mut self) -> NodeEffects<N> {
        std::mem::take(&mut self.spare)
    }

    /// The earliest armed deadline, or an hour from now when no timer is armed.
    fn next_deadline(&self) -> Instant {
        self.timers
            .values()
            .min()
            .copied()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    async fn fire_due_timers(&mut self) -> Result<(), DriverError> {
        let now_instant = Instant::now();
        let due: Vec<N::Timer> = self
            .timers
            .iter()
            .filter(|(_, &at)| at <= now_instant)
            .map(|(&timer, _)| timer)
            .collect();
        for timer in due {
            // An earlier timer's effects may have re-armed or cancelled this one.
            if self.timers.get(&timer).is_none_or(|&at| at > now_instant) {
                continue;
            }
            self.timers.remove(&timer);
            let mut fx = self.take_effects();
            let now = self.now();
            self.node.on_timer(now, timer, &mut fx);
            self.process(fx).await?;
        }
        Ok(())
    }

    /// The requests waiting in `submissions`, as one input
    /// ([`Node::on_client_requests`]: a protocol may replicate them together).
    async fn on_client_requests(&mut self) -> Result<(), DriverError> {
        let mut submissions = std::mem::take(&mut self.submissions);
        if self.pending.len() >= 4 * REQUEST_QUEUE_DEPTH {
            // Requests whose connection is gone will never be answered to anyone.
            self.pending.retain(|_, to| !to.is_closed());
        }
        let now = self.now();
        let mut fx = self.take_effects();
        let pending = &mut self.pending;
        let requests = submissions
            .drain(..)
            .map(|Submission { request, reply_to }| {
                pending.insert((request.client, request.seq), reply_to);
                request
            });
        self.node.on_client_requests(now, requests, &mut fx);
        self.submissions = submissions;
        self.process(fx).await
    }

    async fn on_durable(&mut self, seq: u64) -> Result<(), DriverError> {
        for deferred in self.pipeline.on_durable(seq) {
            self.release(deferred).await?;
        }
        self.deliver_notifies().await
    }

    /// Carries out the effects of one input, then of any `on_persisted` calls it
    /// released.
    async fn process(&mut self, fx: NodeEffects<N>) -> Result<(), DriverError> {
        if let Some(reason) = self.node.halted() {
            return Err(DriverError::Halted(reason.to_string()));
        }
        self.carry_out(fx).await?;
        self.deliver_notifies().await
    }

    async fn deliver_notifies(&mut self) -> Result<(), DriverError> {
        while let Some(tag) = self.notifies.pop_front() {
            let mut fx = self.take_effects();
            let now = self.now();
            self.node.on_persisted(now, tag, &mut fx);
            self.carry_out(fx).await?;
        }
        Ok(())
    }

    async fn carry_out(&mut self, mut fx: NodeEffects<N>) -> Result<(), DriverError> {
        for op in fx.timers.drain(..) {
            match op {
                TimerOp::Set { timer, at } => {
                    let at = self.instant(at);
                    self.timers.insert(timer, at);
                }
                TimerOp::Cancel(timer) => {
                    self.timers.remove(&timer);
                }
            }
        }
        for Envelope { to, msg } in fx.early_sends.drain(..) {
            self.send(to, msg).await?;
        }
        for reply in fx.early_replies.drain(..) {
            self.answer(reply);
        }
        let batch = if fx.persist.is_empty() {
            None
        } else {
            // The queue numbers batches from 0; the pipeline from 1 (0 = none yet).
            let seq = self.queue.push(fx.persist.take());
            Some(seq.map_err(|_| DriverError::StorageThreadGone)? + 1)
        };
        let deferred = Deferred {
            sends: std::mem::take(&mut fx.sends),
            replies: std::mem::take(&mut fx.replies),
            notify: fx.persist_notify.take(),
        };
        fx.clear();
        self.spare = fx;
        if let Some(ready) = self.pipeline.after_input(batch, deferred) {
            self.release(ready).await?;
        }
        Ok(())
    }

    async fn release(&mut self, deferred: Parked<N>) -> Result<(), DriverError> {
        for Envelope { to, msg } in deferred.sends {
            self.send(to, msg).await?;
        }
        for reply in deferred.replies {
            self.answer(reply);
        }
        self.notifies.extend(deferred.notify);
        Ok(())
    }

    /// Hands `reply` to the connection that asked.
    fn answer(&mut self, reply: ClientReply<N::Response>) {
        if let Some(to) = self.pending.remove(&(reply.client, reply.seq)) {
            // The client may have hung up; its retry will find the result.
            let _ = to.send(reply);
        }
    }

    async fn send(&mut self, to: synod_core::NodeId, msg: N::Message) -> Result<(), DriverError> {
        match self.transport.send(to, msg).await {
            Ok(()) => Ok(()),
            Err(TransportError::UnknownPeer(peer)) => {
                tracing::warn!(node = %self.node.id(), %peer, "dropping a message to an unknown peer");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
