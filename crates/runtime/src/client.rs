//! The client protocol, spoken on each node's client port, and a client for it.
//!
//! Frames are length-prefixed postcard ([`synod_core::codec`]), at most
//! [`CLIENT_FRAME_BYTES_MAX`] bytes:
//!
//! | direction | frame | meaning |
//! |---|---|---|
//! | client → node | [`ClientFrame::Hello`] | first frame: magic and version |
//! | node → client | [`ServerFrame::Welcome`] | the node's id and protocol |
//! | client → node | [`ClientFrame::Request`] | `(client, seq, op)`, pipelined freely |
//! | node → client | [`ServerFrame::Reply`] | the outcome, with the leader's client address on a redirect |
//! | node → client | [`ServerFrame::Error`] | the client sent something invalid; the node closes the connection |
//!
//! A request is identified by `(client, seq)`: a retry (to the same node or, after a
//! redirect, another) reuses them, and the replicated state machine applies it at
//! most once and answers the retry with the first result.

use crate::framed::{write_frames, FrameError, FrameReader};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult, NodeId, Outcome};
use tokio::io::BufWriter;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Magic number opening every client connection ("SYNK").
pub const CLIENT_MAGIC: u32 = 0x5359_4e4b;
/// Version of the client protocol.
pub const CLIENT_PROTOCOL_VERSION: u16 = 1;
/// Largest client frame payload, in bytes.
pub const CLIENT_FRAME_BYTES_MAX: usize = 1 << 20;

/// A frame from a client to a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// Opens the connection.
    Hello {
        /// Must be [`CLIENT_MAGIC`].
        magic: u32,
        /// Must be [`CLIENT_PROTOCOL_VERSION`].
        version: u16,
    },
    /// A KV operation.
    Request {
        /// The client session.
        client: ClientId,
        /// Its request number; retries reuse it.
        seq: u64,
        /// The operation.
        op: KvOp,
    },
}

/// A frame from a node to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// Answers the hello.
    Welcome {
        /// The node.
        node: NodeId,
        /// Its protocol (`raft`, `paxos`, …).
        protocol: String,
    },
    /// The answer to one request.
    Reply(KvReply),
    /// The client broke the protocol; the node closes the connection after this.
    Error {
        /// What was wrong.
        message: String,
    },
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvReply {
    /// The client session.
    pub client: ClientId,
    /// The request number.
    pub seq: u64,
    /// What happened.
    pub outcome: Outcome<KvResult>,
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

/// The sending half of a connection to one node's client port.
#[derive(Debug)]
pub struct RequestSender {
    addr: SocketAddr,
    out: BufWriter<OwnedWriteHalf>,
    buf: Vec<u8>,
}

/// The receiving half of a connection to one node's client port.
#[derive(Debug)]
pub struct ReplyReceiver {
    addr: SocketAddr,
    frames: FrameReader<OwnedReadHalf>,
}

/// Opens a client connection to `addr` and completes the hello. Returns the node's
/// id and the two halves, which may be used from different tasks.
pub async fn connect(
    addr: SocketAddr,
) -> Result<(NodeId, RequestSender, ReplyReceiver), ClientError> {
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
    };
    let mut receiver = ReplyReceiver {
        addr,
        frames: FrameReader::new(read, CLIENT_FRAME_BYTES_MAX),
    };
    sender
        .send_frames([ClientFrame::Hello {
            magic: CLIENT_MAGIC,
            version: CLIENT_PROTOCOL_VERSION,
        }])
        .await?;
    match receiver.next_frame().await? {
        ServerFrame::Welcome { node, .. } => Ok((node, sender, receiver)),
        other => Err(ClientError::Protocol {
            addr,
            message: format!("expected a welcome, got {other:?}"),
        }),
    }
}

impl RequestSender {
    /// Sends requests, all in one write.
    pub async fn send(
        &mut self,
        requests: impl IntoIterator<Item = (ClientId, u64, KvOp)>,
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
        frames: impl IntoIterator<Item = ClientFrame>,
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

impl ReplyReceiver {
    /// The next reply.
    pub async fn recv(&mut self) -> Result<KvReply, ClientError> {
        match self.next_frame().await? {
            ServerFrame::Reply(reply) => Ok(reply),
            ServerFrame::Error { message } => Err(ClientError::Protocol {
                addr: self.addr,
                message: format!("the node refused: {message}"),
            }),
            other => Err(ClientError::Protocol {
                addr: self.addr,
                message: format!("expected a reply, got {other:?}"),
            }),
        }
    }

    async fn next_frame(&mut self) -> Result<ServerFrame, ClientError> {
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
/// retrying on other nodes with the same `(client, seq)` until `timeout`.
#[derive(Debug)]
pub struct KvClient {
    id: ClientId,
    seq: u64,
    nodes: Vec<SocketAddr>,
    target: usize,
    conn: Option<(RequestSender, ReplyReceiver)>,
    /// The node that answered the last request with a result.
    pub last_served_by: Option<SocketAddr>,
}

/// How long a [`KvClient`] waits for one attempt before trying the next node.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

impl KvClient {
    /// A client session `id` for a cluster whose client addresses are `nodes`.
    pub fn new(id: ClientId, nodes: Vec<SocketAddr>) -> KvClient {
        assert!(
            !nodes.is_empty(),
            "a client needs at least one node address"
        );
        KvClient {
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
    pub async fn call(&mut self, op: KvOp, timeout: Duration) -> Result<KvResult, ClientError> {
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

    async fn attempt(&mut self, seq: u64, op: &KvOp) -> Result<Outcome<KvResult>, ClientError> {
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
