//! TCP peer transport, with optional mutual TLS: [`TcpTransport`] implements
//! [`synod_core::Transport`] for any serde message type.
//!
//! # Connections
//!
//! Each node accepts connections from its peers and opens *one* outbound connection to
//! each peer; a connection carries messages in one direction only, from the side that
//! opened it. So between two nodes there are two connections, and per-connection
//! order is per-sender order: messages from one node to another are delivered in the
//! order they were sent, unless some are lost.
//!
//! # Wire format
//!
//! A connection is a sequence of frames (see [`synod_core::codec`]):
//!
//! | bytes | content                                                    |
//! |-------|------------------------------------------------------------|
//! | 4     | body length `n`, `u32` little-endian                        |
//! | `n`   | body: one postcard-encoded value                            |
//!
//! The first frame's body is a [`Handshake`] of at most [`HANDSHAKE_BYTES_MAX`] bytes;
//! every later body is one message `M` of at most `frame_bytes_max` bytes:
//!
//! | handshake field | postcard type | meaning                                   |
//! |-----------------|---------------|-------------------------------------------|
//! | `magic`         | 4 raw bytes   | `b"SYND"` ([`MAGIC`])                      |
//! | `version`       | varint `u16`  | [`WIRE_VERSION`]                           |
//! | `cluster_id`    | string        | must equal the acceptor's `cluster_id`     |
//! | `protocol`      | string        | must equal the acceptor's `protocol`       |
//! | `node`          | varint `u64`  | the sender; a configured peer, not the acceptor |
//!
//! The accepting side closes the connection — logging a `tracing` warning and
//! counting it in [`TransportStats`] — on a handshake that does not match, on a frame
//! that does not decode or announces more than `frame_bytes_max` bytes, and on a stream
//! that ends inside a frame. Nothing a peer sends can panic the transport or affect
//! other connections. With TLS, all of this runs inside the TLS session.
//!
//! # Back-pressure and loss
//!
//! Consensus protocols tolerate lost messages (they retransmit on timeouts), but a
//! node must never stall because one peer is slow or down. Therefore:
//!
//! * `send` never waits. Each peer has a queue of `send_queue_depth` encoded frames.
//!   When it is full the new message is **dropped** (the queued ones are kept) and
//!   counted in [`TransportStats::dropped_queue_full`].
//! * While a peer is unreachable its link retries with exponential back-off
//!   (`backoff_min` doubling to `backoff_max`, each delay jittered down to half) and the
//!   queue keeps what was sent meanwhile, up to its bound.
//! * A link drains its whole queue (up to 1024 frames) into one buffered write and one
//!   flush, so a burst of small messages costs one system call.
//! * A write that does not finish within `io_timeout` drops the connection; frames
//!   written to a connection that then fails are lost.
//! * Received messages go into one queue of `recv_queue_depth` for [`Transport::recv`];
//!   when it is full, connections are not read until it drains, which pushes back on
//!   the senders through TCP (and so, eventually, into their drop policy).
//! * A message sent to this node itself is put straight into the receive queue
//!   (dropped and counted if that is full).
//!
//! # Mutual TLS
//!
//! With [`TransportConfig::tls`] set, both sides present certificates signed by the
//! cluster CA. Node `n`'s certificate must carry the DNS name `node-<n>.synod`
//! ([`node_server_name`]): the connecting side checks the server's certificate names
//! the peer it dialled, and the accepting side checks the client's certificate names
//! the node its handshake claims. See the [`tls`](self::tls) module.
//!
//! # Layout
//! - `config` — [`TransportConfig`], [`TlsConfig`], validation
//! - `wire` — [`Handshake`] and the admission rules
//! - `outbound` — one task per peer: queue, reconnects, batched writes
//! - `inbound` — accept loop and one reader task per connection
//! - `backoff` — reconnect delays
//! - `tls` — loading PEM files, identity checks
//! - `stats` — [`TransportStats`]

mod backoff;
mod config;
mod inbound;
mod outbound;
pub(crate) mod stats;
pub mod tls;
mod wire;

pub use config::{
    peer_map, ConfigError, TlsConfig, TransportConfig, BACKOFF_MAX_DEFAULT, BACKOFF_MIN_DEFAULT,
    FRAME_BYTES_MAX_DEFAULT, INBOUND_CONNECTIONS_MAX_DEFAULT, IO_TIMEOUT_DEFAULT,
    RECV_QUEUE_DEPTH_DEFAULT, SEND_QUEUE_DEPTH_DEFAULT,
};
pub use stats::TransportStats;
pub use tls::{node_server_name, TlsError};
pub use wire::{Handshake, HANDSHAKE_BYTES_MAX, MAGIC, WIRE_VERSION};

use async_trait::async_trait;
use backoff::Backoff;
use inbound::Inbound;
use outbound::PeerLink;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stats::{bump, Counters};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use synod_core::codec::{encode_frame, CodecError};
use synod_core::{NodeId, Transport, TransportError};
use tls::TlsContext;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use wire::Admission;

/// Backlog of the listening socket.
const LISTEN_BACKLOG: u32 = 1024;

/// A byte stream to or from a peer: plain TCP or TLS over TCP.
pub(crate) trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

/// The TCP transport of one node. See the [module docs](self) for the wire format and
/// the drop policy.
///
/// All its tasks (accept loop, readers, one link per peer) stop on
/// [`TcpTransport::shutdown`] or when it is dropped.
#[derive(Debug)]
pub struct TcpTransport<M> {
    me: NodeId,
    local_addr: SocketAddr,
    frame_bytes_max: usize,
    /// Queue of encoded frames to each remote peer; its task owns the connection.
    links: BTreeMap<NodeId, mpsc::Sender<Vec<u8>>>,
    /// Sender side of `inbox`, for messages to oneself.
    loopback: mpsc::Sender<(NodeId, M)>,
    inbox: mpsc::Receiver<(NodeId, M)>,
    counters: Arc<Counters>,
    tasks: JoinSet<()>,
    closed: bool,
}

impl<M> TcpTransport<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    /// Validates `config`, loads TLS files if any, listens on `config.listen` and starts
    /// connecting to the peers. Must be called inside a tokio runtime.
    ///
    /// Errors ([`TransportError::Other`]) name the invalid setting, the unreadable
    /// TLS file or the address that could not be bound.
    pub async fn bind(config: TransportConfig) -> Result<TcpTransport<M>, TransportError> {
        config.validate().map_err(config_error)?;
        let listener = listen(config.listen)?;
        Self::start(config, listener)
    }

    /// Like [`bind`](Self::bind) but on a listener the caller bound already (e.g. to
    /// learn every node's port before building the peer maps). `config.listen` must be
    /// the listener's local address.
    pub fn start(
        config: TransportConfig,
        listener: TcpListener,
    ) -> Result<TcpTransport<M>, TransportError> {
        config.validate().map_err(config_error)?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| TransportError::Other(format!("listener address: {e}")))?;
        if config.listen.port() != 0 && local_addr != config.listen {
            return Err(TransportError::Other(format!(
                "listener is bound to {local_addr} but config.listen is {}",
                config.listen
            )));
        }
        let tls = match &config.tls {
            None => None,
            Some(files) => Some(
                TlsContext::load(files, config.me)
                    .map_err(|e| TransportError::Other(e.to_string()))?,
            ),
        };
        Ok(Self::spawn_tasks(config, listener, local_addr, tls))
    }

    fn spawn_tasks(
        config: TransportConfig,
        listener: TcpListener,
        local_addr: SocketAddr,
        tls: Option<TlsContext>,
    ) -> TcpTransport<M> {
        let counters = Arc::new(Counters::default());
        let mut tasks = JoinSet::new();
        let (loopback, inbox) = mpsc::channel(config.recv_queue_depth);
        let hello = Handshake::new(&config.cluster_id, &config.protocol, config.me);
        let mut hello_frame = Vec::new();
        encode_frame(&hello, HANDSHAKE_BYTES_MAX, &mut hello_frame)
            .expect("validate() checked that the handshake fits HANDSHAKE_BYTES_MAX");
        let hello_frame = Arc::new(hello_frame);
        let mut links = BTreeMap::new();
        for (peer, addr) in config.remote_peers() {
            let (queue, queued) = mpsc::channel(config.send_queue_depth);
            let link = PeerLink {
                peer,
                addr,
                hello_frame: hello_frame.clone(),
                tls: tls.clone(),
                io_timeout: config.io_timeout,
                backoff: Backoff::new(config.backoff_min, config.backoff_max, config.me, peer),
                counters: counters.clone(),
            };
            tasks.spawn(link.run(queued));
            links.insert(peer, queue);
        }
        let inbound = Arc::new(Inbound {
            admission: Admission {
                cluster_id: config.cluster_id.clone(),
                protocol: config.protocol.clone(),
                me: config.me,
                peers: config.remote_peers().collect(),
            },
            tls,
            frame_bytes_max: config.frame_bytes_max,
            io_timeout: config.io_timeout,
            deliver: loopback.clone(),
            counters: counters.clone(),
            connections: Arc::new(Semaphore::new(config.inbound_connections_max)),
        });
        tasks.spawn(inbound.accept_loop(listener));
        TcpTransport {
            me: config.me,
            local_addr,
            frame_bytes_max: config.frame_bytes_max,
            links,
            loopback,
            inbox,
            counters,
            tasks,
            closed: false,
        }
    }

    /// Queues `msg` for `to` without waiting; see the module docs for when it is
    /// dropped instead.
    ///
    /// Errors: [`TransportError::UnknownPeer`] for a node not in the configuration,
    /// [`TransportError::Closed`] after shutdown, and [`TransportError::Other`] for a
    /// message whose encoding exceeds `frame_bytes_max` (no peer would accept it).
    pub fn enqueue(&self, to: NodeId, msg: M) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        if to == self.me {
            return self.deliver_to_self(msg);
        }
        let link = self.links.get(&to).ok_or(TransportError::UnknownPeer(to))?;
        let mut frame = Vec::new();
        encode_frame(&msg, self.frame_bytes_max, &mut frame).map_err(|e| oversized(to, e))?;
        match link.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                bump(&self.counters.dropped_queue_full, 1);
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(TransportError::Closed),
        }
    }

    fn deliver_to_self(&self, msg: M) -> Result<(), TransportError> {
        match self.loopback.try_send((self.me, msg)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                bump(&self.counters.dropped_queue_full, 1);
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(TransportError::Closed),
        }
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The address peers connect to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        self.counters.snapshot()
    }

    /// Stops every task and waits until they have stopped, so the listening port is
    /// free again when this returns. Later `send`/`recv` return
    /// [`TransportError::Closed`]; queued messages are discarded.
    pub async fn shutdown(&mut self) {
        self.closed = true;
        self.links.clear();
        self.inbox.close();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

#[async_trait]
impl<M> Transport<M> for TcpTransport<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    async fn send(&mut self, to: NodeId, msg: M) -> Result<(), TransportError> {
        self.enqueue(to, msg)
    }

    async fn recv(&mut self) -> Result<(NodeId, M), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        self.inbox.recv().await.ok_or(TransportError::Closed)
    }

    async fn shutdown(&mut self) {
        TcpTransport::shutdown(self).await;
    }
}

/// A listening socket with `SO_REUSEADDR`, so a restarted node can bind its port again
/// while connections of its previous incarnation linger in `TIME_WAIT`.
fn listen(addr: SocketAddr) -> Result<TcpListener, TransportError> {
    let cannot = |e: std::io::Error| TransportError::Other(format!("cannot listen on {addr}: {e}"));
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(cannot)?;
    socket.set_reuseaddr(true).map_err(cannot)?;
    socket.bind(addr).map_err(cannot)?;
    socket.listen(LISTEN_BACKLOG).map_err(cannot)
}

fn config_error(e: ConfigError) -> TransportError {
    TransportError::Other(format!("invalid transport configuration: {e}"))
}

fn oversized(to: NodeId, e: CodecError) -> TransportError {
    TransportError::Other(format!("message to {to} not sent: {e}"))
}
