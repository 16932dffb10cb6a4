//! The node's side of the client protocol ([`crate::client`]): accepts client
//! connections, hands their requests to the node task and writes the replies back.
//!
//! A connection that breaks the protocol — garbage, a bad hello, an oversized or
//! malformed frame — gets an [`ServerFrame::Error`] naming the problem, is closed and
//! counted; the node and every other connection carry on.

use crate::client::{
    ClientFrame, Reply, ServerFrame, CLIENT_FRAME_BYTES_MAX, CLIENT_MAGIC, CLIENT_PROTOCOL_VERSION,
};
use crate::driver::Submission;
use crate::framed::{write_frames, FrameReader};
use crate::sync::atomic::AtomicU64;
use crate::transport::stats::bump;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use synod_core::{ClientReply, ClientRequest, Node, NodeId, Outcome};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// What the client server needs to know about the cluster.
#[derive(Clone, Debug)]
pub struct ClientServerConfig {
    /// This node.
    pub node: NodeId,
    /// The protocol's name, told to clients in the welcome.
    pub protocol: String,
    /// Client addresses of all members, for redirects.
    pub client_addrs: BTreeMap<NodeId, SocketAddr>,
}

/// Counters of the client server, for tests and logs. Bumped with the transport's
/// relaxed [`bump`], whose loom model (`transport/stats.rs`) covers these too.
#[derive(Debug, Default)]
pub struct ClientServerStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests handed to the node.
    pub requests: AtomicU64,
    /// Connections closed because the client broke the protocol.
    pub rejected: AtomicU64,
}

/// Accepts client connections on `listener` until `shutdown` flips, handing requests
/// to `requests` (the node task).
pub async fn serve_clients<N: Node + 'static>(
    listener: TcpListener,
    config: Arc<ClientServerConfig>,
    requests: mpsc::Sender<Submission<N>>,
    stats: Arc<ClientServerStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                bump(&stats.connections, 1);
                let connection = Connection::<N> {
                    config: Arc::clone(&config),
                    requests: requests.clone(),
                    stats: Arc::clone(&stats),
                    peer,
                };
                tokio::spawn(connection.run(stream));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a client connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

struct Connection<N: Node> {
    config: Arc<ClientServerConfig>,
    requests: mpsc::Sender<Submission<N>>,
    stats: Arc<ClientServerStats>,
    peer: SocketAddr,
}

impl<N: Node + 'static> Connection<N> {
    async fn run(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let mut out = BufWriter::new(write);
        let mut frames = FrameReader::new(read, CLIENT_FRAME_BYTES_MAX);
        let welcome = match read_hello::<N::Request>(&mut frames).await {
            Ok(true) => ServerFrame::Welcome {
                node: self.config.node,
                protocol: self.config.protocol.clone(),
            },
            Ok(false) => return,
            Err(problem) => return self.refuse(&mut out, problem).await,
        };
        let (replies_tx, replies) = mpsc::unbounded_channel();
        let (refuse_tx, refuse) = oneshot::channel();
        let writer = tokio::spawn(write_replies::<N>(
            out,
            welcome,
            Arc::clone(&self.config),
            replies,
            refuse,
        ));
        if let Err(problem) = self.read_requests(&mut frames, replies_tx).await {
            self.reject(&problem);
            let _ = refuse_tx.send(problem);
        }
        let _ = writer.await;
    }

    async fn refuse(&self, out: &mut BufWriter<OwnedWriteHalf>, problem: String) {
        self.reject(&problem);
        write_error(out, &mut Vec::new(), problem).await;
        let _ = out.shutdown().await;
    }

    /// Counts and logs a connection closed because the client broke the protocol.
    fn reject(&self, problem: &str) {
        bump(&self.stats.rejected, 1);
        tracing::warn!(client = %self.peer, %problem, "closing a client connection");
    }

    /// Reads requests until the client hangs up (`Ok`) or breaks the protocol (`Err`
    /// with what it did wrong).
    async fn read_requests(
        &self,
        frames: &mut FrameReader<OwnedReadHalf>,
        replies: mpsc::UnboundedSender<ClientReply<N::Response>>,
    ) -> Result<(), String> {
        loop {
            match frames.next::<ClientFrame<N::Request>>().await {
                Ok(Some(ClientFrame::Request { client, seq, op })) => {
                    let request = ClientRequest { client, seq, op };
                    let submission = Submission {
                        request,
                        reply_to: replies.clone(),
                    };
                    if self.requests.send(submission).await.is_err() {
                        return Ok(()); // the node is stopping
                    }
                    bump(&self.stats.requests, 1);
                }
                Ok(Some(ClientFrame::Hello { .. })) => {
                    return Err("a second hello on one connection".to_string())
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Reads the hello: `Ok(true)` if valid, `Ok(false)` if the client left without
/// one, `Err` naming what was wrong.
async fn read_hello<R: DeserializeOwned + std::fmt::Debug>(
    frames: &mut FrameReader<OwnedReadHalf>,
) -> Result<bool, String> {
    match frames.next::<ClientFrame<R>>().await {
        Ok(Some(ClientFrame::Hello { magic, version }))
            if magic == CLIENT_MAGIC && version == CLIENT_PROTOCOL_VERSION =>
        {
            Ok(true)
        }
        Ok(Some(ClientFrame::Hello { magic, version })) => Err(format!(
            "unsupported hello (magic {magic:#x}, version {version}); \
             expected magic {CLIENT_MAGIC:#x}, version {CLIENT_PROTOCOL_VERSION}"
        )),
        Ok(Some(other)) => Err(format!("expected a hello first, got {other:?}")),
        Ok(None) => Ok(false),
        Err(e) => Err(format!("{e} (before the hello)")),
    }
}

async fn write_replies<N: Node>(
    mut out: BufWriter<OwnedWriteHalf>,
    welcome: ServerFrame<N::Response>,
    config: Arc<ClientServerConfig>,
    mut replies: mpsc::UnboundedReceiver<ClientReply<N::Response>>,
    mut refuse: oneshot::Receiver<String>,
) {
    let mut buf = Vec::new();
    let mut batch = Vec::new();
    if write_frames(&mut out, [welcome], CLIENT_FRAME_BYTES_MAX, &mut buf)
        .await
        .is_err()
        || out.flush().await.is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            biased;
            n = replies.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    // The reader is done: it either hung up cleanly (the sender of
                    // `refuse` is dropped) or is about to say what was wrong.
                    if let Ok(message) = (&mut refuse).await {
                        write_error(&mut out, &mut buf, message).await;
                    }
                    break;
                }
                let frames = batch.drain(..).map(|r| frame_of::<N>(&config, r));
                if write_frames(&mut out, frames, CLIENT_FRAME_BYTES_MAX, &mut buf).await.is_err()
                    || out.flush().await.is_err()
                {
                    return;
                }
            }
            problem = &mut refuse => {
                if let Ok(message) = problem {
                    write_error(&mut out, &mut buf, message).await;
                }
                break;
            }
        }
    }
    let _ = out.shutdown().await;
}

/// Best effort: the connection is being closed anyway.
async fn write_error(out: &mut BufWriter<OwnedWriteHalf>, buf: &mut Vec<u8>, message: String) {
    let frame = ServerFrame::<()>::Error { message };
    let _ = write_frames(out, [frame], CLIENT_FRAME_BYTES_MAX, buf).await;
    let _ = out.flush().await;
}

fn frame_of<N: Node>(
    config: &ClientServerConfig,
    reply: ClientReply<N::Response>,
) -> ServerFrame<N::Response> {
    let leader_addr = match &reply.outcome {
        Outcome::NotLeader { leader: Some(l) } => config.client_addrs.get(l).copied(),
        _ => None,
    };
    ServerFrame::Reply(Reply {
        client: reply.client,
        seq: reply.seq,
        outcome: reply.outcome,
        leader_addr,
    })
}
