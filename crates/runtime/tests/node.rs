//! Whole nodes in one process over real loopback TCP and file WALs: they commit,
//! survive a full restart, and shrug off bad client input.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult, Node, NodeId};
use synod_paxos::{MultiPaxosConfig, MultiPaxosNode};
use synod_raft::{RaftConfig, RaftNode};
use synod_runtime::client::{
    self, ClientFrame, ClientOf, ServerFrame, CLIENT_MAGIC, CLIENT_PROTOCOL_VERSION,
};
use synod_runtime::framed::FrameReader;
use synod_runtime::node::{self, parse_members, Member, NodeConfig, RunningNode, StorageChoice};
use synod_runtime::wal::SyncMode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A loopback address no other test of this binary was given: the tests run in
/// parallel, and the OS may hand a port just released by one test's probe to
/// another's before the first binds it for real.
fn free_addr() -> SocketAddr {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("ephemeral port");
        let addr = listener.local_addr().expect("address");
        let mut given = GIVEN.lock().expect("no panics under this lock");
        if !given.contains(&addr.port()) {
            given.push(addr.port());
            return addr;
        }
    }
}

fn members(n: u64) -> Vec<Member> {
    (1..=n)
        .map(|id| Member {
            id: NodeId(id),
            peer: free_addr(),
            client: free_addr(),
        })
        .collect()
}

/// A protocol under test: its name, how to build its node, how to talk KV to it.
trait Protocol: Node + Sized + Send + 'static {
    const NAME: &'static str;
    fn build(id: NodeId, members: &[NodeId]) -> Self;
    fn kv(op: KvOp) -> Self::Request;
    fn result(response: Self::Response) -> KvResult;
}

impl Protocol for RaftNode {
    const NAME: &'static str = "raft";
    fn build(id: NodeId, members: &[NodeId]) -> RaftNode {
        RaftNode::new(RaftConfig::lan(id, members.iter().copied(), id.0))
    }
    fn kv(op: KvOp) -> synod_raft::Request {
        match op {
            KvOp::Get { key } => synod_raft::Request::Query(key),
            op => synod_raft::Request::Command(op),
        }
    }
    fn result(response: synod_raft::Response) -> KvResult {
        match response {
            synod_raft::Response::Output(r) => r,
            synod_raft::Response::QueryOutput(v) => KvResult::Value(v),
            other => panic!("not a KV answer: {other:?}"),
        }
    }
}

impl Protocol for MultiPaxosNode {
    const NAME: &'static str = "paxos";
    fn build(id: NodeId, members: &[NodeId]) -> MultiPaxosNode {
        MultiPaxosNode::new(MultiPaxosConfig::lan(id, members.iter().copied(), id.0))
    }
    fn kv(op: KvOp) -> synod_paxos::Request {
        match op {
            KvOp::Get { key } => synod_paxos::Request::Query(key),
            op => synod_paxos::Request::Command(op),
        }
    }
    fn result(response: synod_paxos::Response) -> KvResult {
        match response {
            synod_paxos::Response::Output(r) => r,
            synod_paxos::Response::QueryOutput(v) => KvResult::Value(v),
        }
    }
}

/// A KV call through `P`'s own client.
async fn kv_call<P: Protocol>(c: &mut ClientOf<P>, op: KvOp) -> KvResult {
    P::result(c.call(P::kv(op), CALL).await.expect("answered"))
}

fn config(protocol: &str, id: u64, members: &[Member], dir: &Path) -> NodeConfig {
    NodeConfig {
        protocol: protocol.to_string(),
        id: NodeId(id),
        members: members.to_vec(),
        cluster_id: "test".into(),
        storage: StorageChoice::File {
            dir: dir.join(format!("node-{id}")),
            sync: SyncMode::Fsync,
        },
        tls: None,
    }
}

async fn start_all<P: Protocol>(members: &[Member], dir: &Path) -> Vec<RunningNode> {
    let ids: Vec<NodeId> = members.iter().map(|m| m.id).collect();
    let mut nodes = Vec::new();
    for m in members {
        let config = config(P::NAME, m.id.0, members, dir);
        let node = node::start(P::build(m.id, &ids), config)
            .await
            .expect("node starts");
        nodes.push(node);
    }
    nodes
}

async fn stop_all(nodes: Vec<RunningNode>) {
    for n in &nodes {
        n.stop();
    }
    for n in nodes {
        tokio::time::timeout(Duration::from_secs(10), n.wait())
            .await
            .expect("stops in time")
            .expect("clean stop");
    }
}

const CALL: Duration = Duration::from_secs(10);

async fn committed_writes_survive_a_full_restart<P: Protocol>() {
    let dir = tempfile::tempdir().expect("temp dir");
    let members = members(3);
    let addrs: Vec<SocketAddr> = members.iter().map(|m| m.client).collect();
    let nodes = start_all::<P>(&members, dir.path()).await;
    let mut c = ClientOf::<P>::new(ClientId(1), addrs.clone());
    for i in 0..50 {
        let op = KvOp::Append {
            key: "log".into(),
            value: format!("{i},"),
        };
        assert_eq!(kv_call::<P>(&mut c, op).await, KvResult::Written);
    }
    stop_all(nodes).await;

    let nodes = start_all::<P>(&members, dir.path()).await;
    let mut c = ClientOf::<P>::new(ClientId(2), addrs);
    let read = kv_call::<P>(&mut c, KvOp::Get { key: "log".into() }).await;
    let expected: String = (0..50).map(|i| format!("{i},")).collect();
    assert_eq!(read, KvResult::Value(Some(expected)));
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_committed_writes_survive_a_full_restart() {
    committed_writes_survive_a_full_restart::<RaftNode>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paxos_committed_writes_survive_a_full_restart() {
    committed_writes_survive_a_full_restart::<MultiPaxosNode>().await;
}

/// Sends raw bytes to a client port and returns the error the node answers with
/// (after the welcome, if the bytes began with a valid hello).
async fn refusal(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let (read, _write) = stream.into_split();
    let mut frames = FrameReader::new(read, client::CLIENT_FRAME_BYTES_MAX);
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), frames.next::<ServerFrame<()>>())
            .await
            .expect("answer in time");
        match next {
            Ok(Some(ServerFrame::Error { message })) => return message,
            Ok(Some(ServerFrame::Welcome { .. })) => continue,
            other => panic!("expected an error frame, got {other:?}"),
        }
    }
}

fn frame(value: &ClientFrame<synod_raft::Request>) -> Vec<u8> {
    let mut out = Vec::new();
    synod_core::codec::encode_frame(value, usize::MAX, &mut out).expect("encodable");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_input_gets_a_clear_error_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let members = members(1);
    let nodes = start_all::<RaftNode>(&members, dir.path()).await;
    let addr = members[0].client;

    let mut oversized = Vec::from((64u32 << 20).to_le_bytes());
    oversized.extend_from_slice(b"xxxx");
    let bad_magic = frame(&ClientFrame::Hello {
        magic: 0xdead,
        version: CLIENT_PROTOCOL_VERSION,
    });
    let no_hello = frame(&ClientFrame::Request {
        client: ClientId(1),
        seq: 1,
        op: synod_raft::Request::Query("k".into()),
    });
    let mut garbage_after_hello = frame(&ClientFrame::Hello {
        magic: CLIENT_MAGIC,
        version: CLIENT_PROTOCOL_VERSION,
    });
    garbage_after_hello.extend_from_slice(&[3, 0, 0, 0, 0xff, 0xff, 0xff]);
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "http garbage",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "bad frame",
        ),
        ("oversized frame", &oversized, "exceeds the maximum"),
        ("wrong magic", &bad_magic, "unsupported hello"),
        ("request before hello", &no_hello, "expected a hello first"),
        ("garbage after hello", &garbage_after_hello, "bad frame"),
    ];
    for (name, bytes, expected) in cases {
        let message = refusal(addr, bytes).await;
        assert!(
            message.contains(expected),
            "{name}: error `{message}` does not say `{expected}`"
        );
    }
    let rejected = nodes[0]
        .client_stats
        .rejected
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(rejected, 5, "every bad connection is counted");

    let mut c = ClientOf::<RaftNode>::new(ClientId(1), vec![addr]);
    let op = KvOp::Put {
        key: "k".into(),
        value: "v".into(),
    };
    assert_eq!(kv_call::<RaftNode>(&mut c, op).await, KvResult::Written);
    stop_all(nodes).await;
}

#[test]
fn a_member_list_naming_a_node_twice_is_refused() {
    let err = parse_members("1=127.0.0.1:7001/127.0.0.1:7101,1=127.0.0.1:7002/127.0.0.1:7102")
        .expect_err("duplicate id");
    assert!(
        err.contains("node n1 is listed twice") || err.contains("listed twice"),
        "{err}"
    );
    let err = parse_members("1=127.0.0.1:7001/127.0.0.1:7101,2=127.0.0.1:7001/127.0.0.1:7102")
        .expect_err("duplicate address");
    assert!(err.contains("127.0.0.1:7001 is used twice"), "{err}");
    let err = parse_members("1=127.0.0.1:7001").expect_err("no client address");
    assert!(err.contains("member 1"), "{err}");
    let err = parse_members("x=127.0.0.1:7001/127.0.0.1:7101").expect_err("bad id");
    assert!(err.contains("`x` is not a node id"), "{err}");
}

#[tokio::test]
async fn a_node_missing_from_its_member_list_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let members = members(3);
    let ids: Vec<NodeId> = members.iter().map(|m| m.id).collect();
    let node9 = RaftNode::build(NodeId(9), &ids);
    let err = node::start(node9, config("raft", 9, &members, dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("node n9 is not in the member list"),
        "{err}"
    );
    let node2 = RaftNode::build(NodeId(2), &ids);
    let err = node::start(node2, config("raft", 1, &members, dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("the node handed in is node n2"),
        "{err}"
    );
}

/// A WAL whose records are intact (checksums hold) but hold an entry the protocol
/// cannot decode: the node halts with the reason, and `wait` reports it — no panic,
/// no silent run on state it cannot trust.
#[tokio::test]
async fn a_node_whose_storage_it_cannot_read_halts_with_the_reason() {
    use synod_core::{Storage, WriteBatch};
    let dir = tempfile::tempdir().expect("temp dir");
    let members = members(1);
    let config = config("raft", 1, &members, dir.path());
    let StorageChoice::File { dir: wal_dir, .. } = &config.storage else {
        unreachable!("file storage")
    };
    let (mut wal, _) =
        synod_runtime::wal::FileStorage::open(wal_dir, Default::default()).expect("open the WAL");
    let mut batch = WriteBatch::new();
    batch.put_entry(1, vec![0xff, 0xff, 0xff]);
    wal.persist(batch).await.expect("persist");
    drop(wal);
    let node = RaftNode::build(NodeId(1), &[NodeId(1)]);
    let running = node::start(node, config).await.expect("starts");
    let err = tokio::time::timeout(Duration::from_secs(10), running.wait())
        .await
        .expect("stops in time")
        .expect_err("halted");
    assert!(
        err.to_string().contains("halted: corrupt log entry 1"),
        "{err}"
    );
}
