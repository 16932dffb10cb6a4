//! The client protocol, spoken on each node's client port, and a client for it.
//!
//! Frames are length-prefixed postcard ([`synod_core::codec`]), at most
//! [`CLIENT_FRAME_BYTES_MAX`] bytes:
//!
//! | direction | frame | meaning |
//! |---|---|---|
//! | client → node | [`ClientFrame::Hello`] | first frame: magic and version |
//! | node → client | [`ServerFrame::Welcome`] | the node's id and protocol |
//! | client → node | [`ClientFrame::Request`] | `(client, seq, op)`, pipelined freely; `op` is the protocol's request type |
//! | node → client | [`ServerFrame::Reply`] | the outcome, with the leader's client address on a redirect |
//! | node → client | [`ServerFrame::Error`] | the client sent something invalid; the node closes the connection |
//!
//! A request is identified by `(client, seq)`: a retry (to the same node or, after a
//! redirect, another) reuses them, and the replicated state machine applies it at
//! most once and answers the retry with the first result.
//!
//! The protocol is generic: requests carry the node's own request type
//! ([`Node::Request`](synod_core::Node::Request), e.g. `synod_raft::Request<S>` for
//! Raft replicating the application `S`) and replies its response type, postcard
//! encoded. A client that does not know which protocol a node runs reads it from the
//! welcome first ([`probe`]).

use crate::framed::{write_frames, FrameError, FrameReader};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;
use synod_core::{ClientId, NodeId, Outcome};
use tokio::io::BufWriter;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Magic number opening every client connection ("SYNK").
pub const CLIENT_MAGIC: u32 = 0x5359_4e4b;
/// Version of the client protocol (2: requests and replies are the protocol's own
/// types, no longer the KV's).
pub const CLIENT_PROTOCOL_VERSION: u16 = 2;
/// Largest client frame payload, in bytes.
pub const CLIENT_FRAME_BYTES_MAX: usize = 1 << 20;

/// A frame from a client to a node; `R` is the node's request type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame<R> {
    /// Opens the connection.
    Hello {
        /// Must be [`CLIENT_MAGIC`].
        magic: u32,
        /// Must be [`CLIENT_PROTOCOL_VERSION`].
        version: u16,
    },
    /// A request.
    Request {
        /// The client session.
        client: ClientId,
        /// Its request number; retries reuse it.
        seq: u64,
        /// The operation.
        op: R,
    },
}

/// A frame from a node to a client; `O` is the node's response type. The first
/// frame is always a welcome or an error, which decode whatever `O` is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame<O> {
    /// Answers the hello.
    Welcome {
        /// The node.
        node: NodeId,
        /// Its protocol (`raft`, `paxos`, …).
        protocol: String,
    },
    /// The answer to one request.
    Reply(Reply<O>),
    /// The client broke the protocol; the node closes the connection after this.
    Error {
        /// What was wrong.
        message: String,
    },
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply<O> {
    /// The client session.
    pub client: ClientId,
    /// The request number.
    pub seq: u64,
    /// What happened.
    pub outcome: Outcome<O>,
    /// On `NotLeader` with a known leader: its client address.
    pub leader_addr: Option<SocketAddr>,
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or talking to a node failed.
    #[error("{addr}: {source}")]
    Connection {
        /// The node's client address.
        addr: SocketAddr,
        /// What failed.
        source: FrameError,
    },
    /// The node answered something the protocol does not allow here.
    #[error("{addr}: protocol violation: {message}")]
    Protocol {
        /// The node's client address.
        addr: SocketAddr,
        /// What was wrong.
        message: String,
    },
    /// No node gave an answer in time.
    #[error("no answer for request {seq} within {timeout:?} (it may still take effect)")]
    Timeout {
        /// The request number.
        seq: u64,
        /// The time allowed.
        timeout: Duration,
    },
}

/// The sending half of a connection to one node's client port, sending requests of
/// type `R`.
#[derive(Debug)]
pub struct RequestSender<R> {
    addr: SocketAddr,
    out: BufWriter<OwnedWriteHalf>,
    buf: Vec<u8>,
    request: PhantomData<fn(R)>,
}

/// The receiving half of a connection to one node's client port, receiving replies
/// of type `O`.
#[derive(Debug)]
pub struct ReplyReceiver<O> {
    addr: SocketAddr,
    frames: FrameReader<OwnedReadHalf>,
    reply: PhantomData<fn() -> O>,
}

/// What a node says when a client connects: its id and the protocol it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The node.
    pub node: NodeId,
    /// Its protocol's name (`raft`, `paxos`, …).
    pub protocol: String,
}

/// Connects to `addr`, reads the welcome and hangs up: which node and protocol
/// serve there, before a client picks its request types.
pub async fn probe(addr: SocketAddr) -> Result<Welcome, ClientError> {
    let (welcome, _, _) = connect::<(), ()>(addr).await?;
    Ok(welcome)
}

/// Opens a client connection to `addr` and completes the hello. Returns the node's
/// welcome and the two halves, which may be used from different tasks. `R` and `O`
/// must be the request and response types of the protocol the node runs (see the
/// welcome's `protocol`): a node answers a request it cannot decode with an error and
/// closes the connection.
pub async fn connect<R: Serialize, O: DeserializeOwned>(
    addr: SocketAddr,
) -> Result<(Welcome, RequestSender<R>, ReplyReceiver<O>), ClientError> {
    let io = |source: std::io::Error| ClientError::Connection {
        addr,
        source: source.into(),
    };
    let stream = TcpStream::connect(addr).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let (read, write) = stream.into_split();
    let mut sender = RequestSender {
        addr,
        out: BufWriter::new(write),
        buf: Vec::new(),
        request: PhantomData,
    };
    let mut receiver = ReplyReceiver {
        addr,
        frames: FrameReader::new(read, CLIENT_FRAME_BYTES_MAX),
        reply: PhantomData,
    };
    sender
        .send_frames([ClientFrame::Hello {
            magic: CLIENT_MAGIC,
            version: CLIENT_PROTOCOL_VERSION,
        }])
        .await?;
    match receiver.next_frame().await? {
        ServerFrame::Welcome { node, protocol } => {
            Ok((Welcome { node, protocol }, sender, receiver))
        }
        ServerFrame::Error { message } => Err(ClientError::Protocol {
            addr,
            message: format!("the node refused the connection: {message}"),
        }),
        ServerFrame::Reply(reply) => Err(ClientError::Protocol {
            addr,
            message: format!("expected a welcome, got a reply to request {}", reply.seq),
        }),
    }
}

impl<R: Serialize> RequestSender<R> {
    /// Sends requests, all in one write.
    pub async fn send(
        &mut self,
        requests: impl IntoIterator<Item = (ClientId, u64, R)>,
    ) -> Result<(), ClientError> {
        self.send_frames(
            requests
                .into_iter()
                .map(|(client, seq, op)| ClientFrame::Request { client, seq, op }),
        )
        .await
    }

    async fn send_frames(
        &mut self,
        frames: impl IntoIterator<Item = ClientFrame<R>>,
    ) -> Result<(), ClientError> {
        let addr = self.addr;
        let fail = |source: FrameError| ClientError::Connection { addr, source };
        write_frames(&mut self.out, frames, CLIENT_FRAME_BYTES_MAX, &mut self.buf)
            .await
            .map_err(fail)?;
        tokio::io::AsyncWriteExt::flush(&mut self.out)
            .await
            .map_err(|e| fail(e.into()))
    }
}

impl<O: DeserializeOwned> ReplyReceiver<O> {
    /// The next reply.
    pub async fn recv(&mut self) -> Result<Reply<O>, ClientError> {
        match self.next_frame().await? {
            ServerFrame::Reply(reply) => Ok(reply),
            ServerFrame::Error { message } => Err(ClientError::Protocol {
                addr: self.addr,
                message: format!("the node refused: {message}"),
            }),
            ServerFrame::Welcome { node, .. } => Err(ClientError::Protocol {
                addr: self.addr,
                message: format!("expected a reply, got a second welcome (from node {node})"),
            }),
        }
    }

    async fn next_frame(&mut self) -> Result<ServerFrame<O>, ClientError> {
        let addr = self.addr;
        match self.frames.next().await {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => Err(ClientError::Connection {
                addr,
                source: FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()),
            }),
            Err(source) => Err(ClientError::Connection { addr, source }),
        }
    }
}

/// A simple blocking-style client: one request at a time, following redirects and
/// retrying on other nodes with the same `(client, seq)` until `timeout`. `R` and
/// `O` are the request and response types of the cluster's protocol.
#[derive(Debug)]
pub struct Client<R, O> {
    id: ClientId,
    seq: u64,
    nodes: Vec<SocketAddr>,
    target: usize,
    conn: Option<(RequestSender<R>, ReplyReceiver<O>)>,
    /// The node that answered the last request with a result.
    pub last_served_by: Option<SocketAddr>,
}

/// The client of a cluster of `N` nodes.
pub type ClientOf<N> = Client<<N as synod_core::Node>::Request, <N as synod_core::Node>::Response>;

/// How long a [`Client`] waits for one attempt before trying the next node.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

impl<R: Serialize + Clone, O: DeserializeOwned> Client<R, O> {
    /// A client session `id` for a cluster whose client addresses are `nodes`.
    pub fn new(id: ClientId, nodes: Vec<SocketAddr>) -> Client<R, O> {
        assert!(
            !nodes.is_empty(),
            "a client needs at least one node address"
        );
        Client {
            id,
            seq: 0,
            nodes,
            target: 0,
            conn: None,
            last_served_by: None,
        }
    }

    /// Runs `op` to completion: `Ok` once a node reports it done, an error if no node
    /// did within `timeout` (then the op may or may not have taken effect).
    pub async fn call(&mut self, op: R, timeout: Duration) -> Result<O, ClientError> {
        self.seq += 1;
        let seq = self.seq;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout { seq, timeout });
            }
            let attempt = tokio::time::timeout(left.min(ATTEMPT_TIMEOUT), self.attempt(seq, &op));
            match attempt.await {
                Ok(Ok(Outcome::Done(result))) => {
                    self.last_served_by = Some(self.nodes[self.target]);
                    return Ok(result);
                }
                Ok(Ok(Outcome::NotLeader {
                    leader: Some(_), ..
                })) => {} // `attempt` already switched to the leader
                Ok(Ok(_)) | Ok(Err(_)) | Err(_) => {
                    self.conn = None;
                    self.target = (self.target + 1) % self.nodes.len();
                    tokio::time::sleep(Duration::from_millis(20).min(left)).await;
                }
            }
        }
    }

    async fn attempt(&mut self, seq: u64, op: &R) -> Result<Outcome<O>, ClientError> {
        if self.conn.is_none() {
            let (_, tx, rx) = connect(self.nodes[self.target]).await?;
            self.conn = Some((tx, rx));
        }
        let Some((tx, rx)) = self.conn.as_mut() else {
            unreachable!("connected just above")
        };
        tx.send([(self.id, seq, op.clone())]).await?;
        loop {
            let reply = rx.recv().await?;
            if reply.seq != seq || reply.client != self.id {
                continue; // a late answer to an earlier request
            }
            if let Outcome::NotLeader { leader: Some(_) } = reply.outcome {
                match reply
                    .leader_addr
                    .and_then(|a| self.nodes.iter().position(|&n| n == a))
                {
                    Some(i) if i != self.target => {
                        self.target = i;
                        self.conn = None;
                    }
                    _ => return Ok(Outcome::Unavailable),
                }
            }
            return Ok(reply.outcome);
        }
    }
}
