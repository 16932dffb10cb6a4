//! One peer link: the task that owns the outbound connection to one peer.
//!
//! The link connects (TCP, then TLS if configured, then the handshake frame), then
//! alternates between draining its queue into one batched write and noticing that the
//! peer closed the connection. On any failure it drops the connection and reconnects
//! after a back-off delay; messages queued meanwhile wait in the bounded queue.

use super::backoff::Backoff;
use super::stats::{bump, Counters};
use super::tls::{server_name_of, TlsContext};
use super::PeerStream;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use synod_core::NodeId;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};
use tracing::{debug, warn};

/// Most frames one batched write takes from the queue. Bounds the time between two
/// checks for a closed connection and the memory held by one batch.
pub(crate) const BATCH_FRAMES_MAX: usize = 1024;
/// Capacity of the write buffer: a batch of small frames up to this size costs one
/// `write` system call.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Read buffer for noticing that the peer closed the connection; peers never send
/// data on it, so it stays small.
const CLOSE_PROBE_BYTES: usize = 64;

/// Everything a peer link needs besides its queue.
#[derive(Debug)]
pub(crate) struct PeerLink {
    pub(crate) peer: NodeId,
    pub(crate) addr: SocketAddr,
    /// This node's handshake, already framed.
    pub(crate) hello_frame: Arc<Vec<u8>>,
    pub(crate) tls: Option<TlsContext>,
    pub(crate) io_timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) counters: Arc<Counters>,
}

/// How a connection ended.
enum LinkEnd {
    /// The transport dropped the queue: stop.
    QueueClosed,
    /// The connection failed; reconnect.
    Lost(io::Error),
}

impl PeerLink {
    /// Runs until the queue's sender is dropped (or the task is aborted).
    pub(crate) async fn run(mut self, mut queue: mpsc::Receiver<Vec<u8>>) {
        let mut connected_before = false;
        loop {
            match self.connect().await {
                Ok(stream) => {
                    self.count_connection(connected_before);
                    connected_before = true;
                    let opened = Instant::now();
                    match self.serve(stream, &mut queue).await {
                        LinkEnd::QueueClosed => return,
                        LinkEnd::Lost(e) => self.connection_lost(&e, opened.elapsed()),
                    }
                }
                Err(e) => {
                    bump(&self.counters.connect_failures, 1);
                    debug!(peer = %self.peer, addr = %self.addr, error = %e, "connect failed");
                }
            }
            sleep(self.backoff.next_delay()).await;
        }
    }

    fn count_connection(&self, connected_before: bool) {
        bump(&self.counters.connections_established, 1);
        if connected_before {
            bump(&self.counters.reconnects, 1);
        }
        debug!(peer = %self.peer, addr = %self.addr, "connected");
    }

    /// A connection that lived at least the longest back-off step proved the peer
    /// healthy, so the schedule restarts from `backoff_min`; one that died sooner (e.g.
    /// refused at the handshake) keeps backing off, which bounds reconnect storms.
    fn connection_lost(&mut self, error: &io::Error, lifetime: Duration) {
        warn!(peer = %self.peer, addr = %self.addr, %error, "connection lost; reconnecting");
        if lifetime >= self.backoff.max() {
            self.backoff.reset();
        }
    }

    /// TCP connect, TLS, handshake frame, all within `io_timeout`.
    async fn connect(&self) -> io::Result<Box<dyn PeerStream>> {
        let attempt = async {
            let tcp = TcpStream::connect(self.addr).await?;
            // Frames are batched here; Nagle would only add latency.
            tcp.set_nodelay(true)?;
            let mut stream: Box<dyn PeerStream> = match &self.tls {
                None => Box::new(tcp),
                Some(tls) => {
                    let name = server_name_of(self.peer).map_err(io::Error::other)?;
                    Box::new(tls.connector.connect(name, tcp).await?)
                }
            };
            stream.write_all(&self.hello_frame).await?;
            stream.flush().await?;
            Ok(stream)
        };
        timeout(self.io_timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(timed_out("connecting")))
    }

    /// Writes queued frames until the connection fails or the queue closes.
    async fn serve(
        &self,
        stream: Box<dyn PeerStream>,
        queue: &mut mpsc::Receiver<Vec<u8>>,
    ) -> LinkEnd {
        let (mut reader, writer) = tokio::io::split(stream);
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, writer);
        let mut batch = Vec::with_capacity(BATCH_FRAMES_MAX);
        let mut probe = [0u8; CLOSE_PROBE_BYTES];
        loop {
            tokio::select! {
                taken = queue.recv_many(&mut batch, BATCH_FRAMES_MAX) => {
                    if taken == 0 {
                        return LinkEnd::QueueClosed;
                    }
                    if let Err(e) = self.write_batch(&mut writer, &batch).await {
                        return LinkEnd::Lost(e);
                    }
                    batch.clear();
                }
                // The accepting side never sends on this connection, so a completed
                // read means it closed (or broke the protocol): reconnect now rather
                // than losing the next batch into a dead socket.
                read = reader.read(&mut probe) => {
                    return LinkEnd::Lost(match read {
                        Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "closed by peer"),
                        Ok(_) => io::Error::new(io::ErrorKind::InvalidData, "peer sent data on an outbound link"),
                        Err(e) => e,
                    });
                }
            }
        }
    }

    /// One batch: every frame into the buffer, one flush, within `io_timeout`.
    async fn write_batch<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut BufWriter<W>,
        batch: &[Vec<u8>],
    ) -> io::Result<()> {
        let write = async {
            for frame in batch {
                writer.write_all(frame).await?;
            }
            writer.flush().await
        };
        timeout(self.io_timeout, write)
            .await
            .unwrap_or_else(|_| Err(timed_out("writing")))?;
        bump(&self.counters.frames_sent, batch.len() as u64);
        bump(&self.counters.batches_written, 1);
        Ok(())
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} took longer than io_timeout"),
    )
}
