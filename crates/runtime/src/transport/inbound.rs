//! The accepting side: an accept loop and one reader task per admitted connection.

use super::stats::{bump, Counters};
use super::tls::{check_client_identity, TlsContext};
use super::wire::{Admission, Handshake, Rejection};
use super::PeerStream;
use serde::de::DeserializeOwned;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use synod_core::codec::FrameDecoder;
use synod_core::{CodecError, NodeId};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tracing::{debug, warn};

/// Read buffer per connection.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What every reader task of one transport shares.
#[derive(Debug)]
pub(crate) struct Inbound<M> {
    pub(crate) admission: Admission,
    pub(crate) tls: Option<TlsContext>,
    pub(crate) frame_bytes_max: usize,
    pub(crate) io_timeout: Duration,
    pub(crate) deliver: mpsc::Sender<(NodeId, M)>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) connections: Arc<Semaphore>,
}

/// Why a connection was closed before or after its handshake.
enum Closed {
    /// The peer went away cleanly (EOF on a frame boundary) or the socket failed.
    Gone(Option<io::Error>),
    /// The handshake was refused.
    Rejected(Rejection),
    /// A frame could not be decoded (or its length is over the limit).
    BadFrame(CodecError),
    /// The stream ended inside a frame.
    Truncated { buffered: usize },
    /// The transport is shutting down (nobody takes messages any more).
    Stopping,
}

impl<M: DeserializeOwned + Send + 'static> Inbound<M> {
    /// Accepts connections until aborted; dropping this future aborts every reader.
    pub(crate) async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let mut readers = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, from)) => self.clone().start_reader(tcp, from, &mut readers),
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        sleep(ACCEPT_RETRY_PAUSE).await;
                    }
                },
                // Reap finished readers so the set does not grow with every connection.
                Some(_) = readers.join_next(), if !readers.is_empty() => {}
            }
        }
    }

    fn start_reader(self: Arc<Self>, tcp: TcpStream, from: SocketAddr, readers: &mut JoinSet<()>) {
        let Ok(permit) = self.connections.clone().try_acquire_owned() else {
            bump(&self.counters.connections_refused, 1);
            warn!(%from, "too many inbound connections; closing the new one");
            return;
        };
        readers.spawn(self.serve_connection(tcp, from, permit));
    }

    /// Admits the connection, then delivers its frames until it ends; logs and counts
    /// how it ended. Holding `_permit` is what counts the connection as open.
    async fn serve_connection(
        self: Arc<Self>,
        tcp: TcpStream,
        from: SocketAddr,
        _permit: OwnedSemaphorePermit,
    ) {
        let mut decoder = FrameDecoder::new(self.frame_bytes_max);
        let opened = timeout(self.io_timeout, self.open(tcp, &mut decoder)).await;
        let result = match opened {
            Err(_) => Err(Closed::Rejected(Rejection::TimedOut)),
            Ok(Err(closed)) => Err(closed),
            Ok(Ok((stream, node))) => {
                bump(&self.counters.handshakes_accepted, 1);
                debug!(%from, %node, "peer connection admitted");
                Ok(self.read_messages(stream, node, decoder).await)
            }
        };
        match result {
            Ok(closed) | Err(closed) => self.log_close(from, closed),
        }
    }

    /// TLS (if configured), then the handshake frame and its admission.
    async fn open(
        &self,
        tcp: TcpStream,
        decoder: &mut FrameDecoder,
    ) -> Result<(Box<dyn PeerStream>, NodeId), Closed> {
        // Delivery is batched by the sender; replies do not exist on this side.
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            let mut tcp = tcp;
            let hello = read_handshake(&mut tcp, decoder).await?;
            let node = self.admission.admit(&hello).map_err(Closed::Rejected)?;
            return Ok((Box::new(tcp), node));
        };
        let mut stream = tls
            .acceptor
            .accept(tcp)
            .await
            .map_err(|e| Closed::Rejected(Rejection::Tls(e.to_string())))?;
        let hello = read_handshake(&mut stream, decoder).await?;
        let node = self.admission.admit(&hello).map_err(Closed::Rejected)?;
        check_client_identity(stream.get_ref().1, node).map_err(|reason| {
            Closed::Rejected(Rejection::CertificateIdentity {
                claimed: node,
                reason,
            })
        })?;
        Ok((Box::new(stream), node))
    }

    /// Decodes frames in order into the receive queue until the connection ends.
    async fn read_messages(
        &self,
        mut stream: Box<dyn PeerStream>,
        node: NodeId,
        mut decoder: FrameDecoder,
    ) -> Closed {
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        loop {
            loop {
                match decoder.next_frame::<M>() {
                    Ok(Some(msg)) => {
                        // Waiting here when the queue is full is the back-pressure:
                        // this connection is not read until `recv` catches up.
                        if self.deliver.send((node, msg)).await.is_err() {
                            return Closed::Stopping;
                        }
                        bump(&self.counters.frames_received, 1);
                    }
                    Ok(None) => break,
                    Err(e) => return Closed::BadFrame(e),
                }
            }
            if let Err(closed) = fill(&mut stream, &mut decoder, &mut buf).await {
                return closed;
            }
        }
    }

    fn log_close(&self, from: SocketAddr, closed: Closed) {
        match closed {
            Closed::Gone(None) | Closed::Stopping => debug!(%from, "peer connection closed"),
            Closed::Gone(Some(error)) => debug!(%from, %error, "peer connection failed"),
            Closed::Rejected(reason) => {
                bump(&self.counters.handshakes_rejected, 1);
                warn!(%from, %reason, "handshake rejected; closing the connection");
            }
            Closed::BadFrame(error) => {
                bump(&self.counters.bad_frames, 1);
                warn!(%from, %error, "bad frame; closing the connection");
            }
            Closed::Truncated { buffered } => {
                bump(&self.counters.bad_frames, 1);
                warn!(%from, buffered, "connection ended inside a frame; closing it");
            }
        }
    }
}

/// Reads until the first frame decodes as a [`Handshake`].
async fn read_handshake<S: AsyncRead + Unpin>(
    stream: &mut S,
    decoder: &mut FrameDecoder,
) -> Result<Handshake, Closed> {
    let mut buf = [0u8; 512];
    loop {
        if let Some(hello) = decoder
            .next_frame::<Handshake>()
            .map_err(Closed::BadFrame)?
        {
            return Ok(hello);
        }
        fill(stream, decoder, &mut buf).await?;
    }
}

/// One read into the decoder; end of stream is an error, telling a clean close (on a
/// frame boundary) from a truncated frame.
async fn fill<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    decoder: &mut FrameDecoder,
    buf: &mut [u8],
) -> Result<(), Closed> {
    match stream.read(buf).await {
        Ok(0) if decoder.buffered() == 0 => Err(Closed::Gone(None)),
        Ok(0) => Err(Closed::Truncated {
            buffered: decoder.buffered(),
        }),
        Ok(n) => {
            decoder.push(&buf[..n]);
            Ok(())
        }
        Err(e) => Err(Closed::Gone(Some(e))),
    }
}
