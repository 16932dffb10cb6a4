//! The accepting side: an accept loop and one reader task per admitted connection.

use super::stats::{bump, Counters};
use super::tls::{check_client_identity, TlsContext};
use super::wire::{Admission, Handshake, Rejection, HANDSHAKE_BYTES_MAX};
use super::PeerStream;
use serde::de::DeserializeOwned;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use synod_core::codec::{self, FrameDecoder, FRAME_HEADER_BYTES};
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
        let opened = timeout(self.io_timeout, self.open(tcp)).await;
        let result = match opened {
            Err(_) => Err(Closed::Rejected(Rejection::TimedOut)),
            Ok(Err(closed)) => Err(closed),
            Ok(Ok((stream, node))) => {
                bump(&self.counters.handshakes_accepted, 1);
                debug!(%from, %node, "peer connection admitted");
                Ok(self.read_messages(stream, node).await)
            }
        };
        match result {
            Ok(closed) | Err(closed) => self.log_close(from, closed),
        }
    }

    /// TLS (if configured), then the handshake frame and its admission.
    async fn open(&self, tcp: TcpStream) -> Result<(Box<dyn PeerStream>, NodeId), Closed> {
        // Only the TLS handshake is ever written on this side; Nagle would delay it.
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            let mut tcp = tcp;
            let hello = read_handshake(&mut tcp).await?;
            let node = self.admission.admit(&hello).map_err(Closed::Rejected)?;
            return Ok((Box::new(tcp), node));
        };
        let mut stream = tls
            .acceptor
            .accept(tcp)
            .await
            .map_err(|e| Closed::Rejected(Rejection::Tls(e.to_string())))?;
        let hello = read_handshake(&mut stream).await?;
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
    async fn read_messages(&self, mut stream: Box<dyn PeerStream>, node: NodeId) -> Closed {
        let mut decoder = FrameDecoder::new(self.frame_bytes_max);
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

/// Reads exactly the first frame and decodes it as a [`Handshake`]. The frame is read
/// byte-exactly, with its own small limit ([`HANDSHAKE_BYTES_MAX`]), so a peer that has
/// not identified itself cannot make this node buffer a `frame_bytes_max` frame.
async fn read_handshake<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Handshake, Closed> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    read_exactly(stream, &mut header, 0).await?;
    let len = u32::from_le_bytes(header) as usize;
    if len > HANDSHAKE_BYTES_MAX {
        return Err(Closed::BadFrame(CodecError::FrameTooLarge {
            len,
            max: HANDSHAKE_BYTES_MAX,
        }));
    }
    let mut body = vec![0u8; len];
    read_exactly(stream, &mut body, FRAME_HEADER_BYTES).await?;
    codec::decode(&body).map_err(Closed::BadFrame)
}

/// Fills `buf`; `already` bytes of the frame were read before, so only a stream ending
/// before any byte of a frame is a clean close.
async fn read_exactly<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    already: usize,
) -> Result<(), Closed> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) if already + filled == 0 => return Err(Closed::Gone(None)),
            Ok(0) => {
                return Err(Closed::Truncated {
                    buffered: already + filled,
                })
            }
            Ok(n) => filled += n,
            Err(e) => return Err(Closed::Gone(Some(e))),
        }
    }
    Ok(())
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
