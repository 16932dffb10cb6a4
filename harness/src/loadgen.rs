//! `synod bench`: the simulator's closed-loop workload ([`Workload`]) run in real
//! time against a real cluster over the client protocol.
//!
//! The same state machine decides what each client does next — retries with the
//! same `(client, seq)`, redirects, back-off, Jepsen's ok/fail/info — so a history
//! recorded here means exactly what a simulated one means and `check-history` reads
//! it. One task runs the workload; one link task per node owns the connection to it
//! (connecting, reconnecting, batching requests into one write).

use crate::history::HistoryEvent;
use crate::protocol::SimProtocol;
use crate::workload::{Answer, ClientStep, Phase, Workload, WorkloadConfig};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;
use synod_core::{ClientId, Node, Outcome, Time};
use synod_runtime::client::{self, Reply};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Client addresses of the cluster's nodes.
    pub addrs: Vec<SocketAddr>,
    /// Workload (clients, mix, keys, timeouts); `ops` is ignored, the run is timed.
    pub workload: WorkloadConfig,
    /// How long clients start new operations.
    pub duration: Duration,
    /// Seed of the operation generator.
    pub seed: u64,
}

/// What a run measured.
#[derive(Debug)]
pub struct LoadReport {
    /// Operations completed `ok`.
    pub ok: u64,
    /// Operations that definitely failed.
    pub fail: u64,
    /// Operations with an unknown outcome.
    pub info: u64,
    /// The `fail` operations the cluster answered: `cas` with a stale expected value,
    /// committed and applied without effect.
    pub cas_mismatch: u64,
    /// Attempts sent, retries included.
    pub attempts: u64,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Latency of answered operations (`ok` and `cas_mismatch`), microseconds.
    pub latency_us: hdrhistogram::Histogram<u64>,
    /// The recorded history (empty unless recording was on).
    pub history: Vec<HistoryEvent>,
    /// The first answer that broke the workload's own check (the bank's total,
    /// [`Ops::check`](crate::workload::Ops::check)).
    pub violation: Option<String>,
}

impl LoadReport {
    /// Operations the cluster answered (`ok` and `cas_mismatch`: both went through
    /// the log and the state machine) per second.
    pub fn throughput(&self) -> f64 {
        (self.ok + self.cas_mismatch) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// `ok` operations per second.
    pub fn ok_throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// After the timed phase, how long outstanding operations may still finish.
const DRAIN_GRACE: Duration = Duration::from_secs(3);

type Request<P> = <<P as SimProtocol>::Node as Node>::Request;
type Response<P> = <<P as SimProtocol>::Node as Node>::Response;

enum Event<P: SimProtocol> {
    Reply(Reply<Response<P>>),
}

/// Runs the load against a cluster of `P` for `config.duration` and returns what it
/// measured. Requests are the workload's KV operations in `P`'s request type, made
/// with each client's [`SimProtocol::Session`].
pub async fn run<P: SimProtocol>(config: LoadConfig) -> LoadReport {
    run_until::<P>(config, std::future::pending()).await
}

/// Like [`run`], but the timed phase also ends when `stop` completes.
pub async fn run_until<P: SimProtocol>(
    config: LoadConfig,
    stop: impl std::future::Future<Output = ()>,
) -> LoadReport {
    tokio::pin!(stop);
    let mut stopped = false;
    let nodes = config.addrs.len();
    let mut workload: Workload = Workload::new(config.workload.clone(), nodes, config.seed);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut sessions: Vec<P::Session> = (0..workload.len()).map(|_| Default::default()).collect();
    let links: Vec<mpsc::UnboundedSender<(ClientId, u64, Request<P>)>> = config
        .addrs
        .iter()
        .map(|&addr| spawn_link::<P>(addr, events_tx.clone()))
        .collect();
    drop(events_tx);
    let start = Instant::now();
    let now = || Time::from_nanos(start.elapsed().as_nanos() as u64);
    let mut wakeups: BinaryHeap<Reverse<(Instant, usize, u64)>> = BinaryHeap::new();
    let mut phase = Phase::Main;
    let mut measured = config.duration;
    let mut steps = Vec::new();
    let mut violation = None;
    for i in 0..workload.len() {
        steps.push((i, workload.start_next(i, now(), phase)));
    }
    loop {
        while let Some((i, step)) = steps.pop() {
            match step {
                // No think time: start the next operation now rather than after a
                // timer tick (tokio's timer has millisecond granularity).
                ClientStep::Sleep(d) if d.is_zero() => {
                    let token = workload.token(i);
                    steps.push((i, workload.on_wake(i, token, now(), phase)));
                }
                ClientStep::Send {
                    node,
                    seq,
                    op,
                    timeout,
                } => {
                    let request = P::request_as(&mut sessions[i], workload.client_id(i), seq, op);
                    let _ = links[node].send((workload.client_id(i), seq, request));
                    wakeups.push(Reverse((Instant::now() + timeout, i, workload.token(i))));
                }
                ClientStep::Sleep(d) => {
                    wakeups.push(Reverse((Instant::now() + d, i, workload.token(i))));
                }
                ClientStep::Idle => {}
            }
        }
        if phase == Phase::Main && (stopped || start.elapsed() >= config.duration) {
            phase = Phase::Done;
            measured = start.elapsed();
        }
        if phase == Phase::Done
            && (workload.all_idle() || start.elapsed() >= measured + DRAIN_GRACE)
        {
            break;
        }
        let next_wake = wakeups.peek().map(|Reverse((at, _, _))| *at);
        let phase_end = start + config.duration;
        let deadline = next_wake
            .unwrap_or(phase_end)
            .min(phase_end.max(Instant::now()));
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Reply(reply)) => {
                    let Some(i) = workload.index_of(reply.client) else { continue };
                    if let Outcome::Done(response) = &reply.outcome {
                        if workload.takes(i, reply.seq) {
                            P::observe(&mut sessions[i], response);
                        }
                    }
                    let answer = answer_of::<P>(&reply, &config.addrs);
                    steps.push((i, workload.on_answer(i, reply.seq, answer, now())));
                    if let Some(broken) = workload.take_violation() {
                        violation.get_or_insert(broken);
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => {}
            _ = &mut stop, if !stopped => stopped = true,
        }
        let t = Instant::now();
        while let Some(Reverse((at, i, token))) = wakeups.peek().copied() {
            if at > t {
                break;
            }
            wakeups.pop();
            steps.push((i, workload.on_wake(i, token, now(), phase)));
        }
    }
    LoadReport {
        ok: workload.stats.ok,
        fail: workload.stats.fail,
        info: workload.stats.info,
        cas_mismatch: workload.stats.cas_mismatch,
        attempts: workload.stats.attempts,
        elapsed: measured,
        latency_us: workload.stats.latency_us.clone(),
        history: workload.take_history(),
        violation,
    }
}

fn answer_of<P: SimProtocol>(reply: &Reply<Response<P>>, addrs: &[SocketAddr]) -> Answer {
    crate::protocol::answer_of::<P>(&reply.outcome, || {
        let leader = reply.leader_addr?;
        addrs.iter().position(|&n| n == leader)
    })
}

/// The connection to one node: requests in, replies out to `events`. While the node
/// is unreachable requests are dropped; their clients time out and retry elsewhere.
fn spawn_link<P: SimProtocol>(
    addr: SocketAddr,
    events: mpsc::UnboundedSender<Event<P>>,
) -> mpsc::UnboundedSender<(ClientId, u64, Request<P>)> {
    let (tx, mut requests) = mpsc::unbounded_channel::<(ClientId, u64, Request<P>)>();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        loop {
            let connect = client::connect::<Request<P>, Response<P>>(addr);
            let connected = tokio::time::timeout(Duration::from_millis(500), connect);
            let (mut sender, mut receiver) = match connected.await {
                Ok(Ok((_, sender, receiver))) => (sender, receiver),
                _ => {
                    // Drop what piled up while the node was unreachable, then retry.
                    while requests.try_recv().is_ok() {}
                    if events.is_closed() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let events = events.clone();
            let reader = tokio::spawn(async move {
                while let Ok(reply) = receiver.recv().await {
                    if events.send(Event::Reply(reply)).is_err() {
                        return;
                    }
                }
            });
            loop {
                if requests.recv_many(&mut batch, 1024).await == 0 {
                    reader.abort();
                    return;
                }
                if reader.is_finished() {
                    batch.clear();
                    break;
                }
                let batched = batch.drain(..);
                if sender.send(batched).await.is_err() {
                    break; // the drain emptied the batch
                }
            }
            reader.abort();
        }
    });
    tx
}
