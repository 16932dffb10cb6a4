//! Whole nodes in one process over real loopback TCP and file WALs: they commit,
//! survive a full restart, and shrug off bad client input.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult, NodeId};
use synod_runtime::client::{
    self, ClientFrame, KvClient, ServerFrame, CLIENT_MAGIC, CLIENT_PROTOCOL_VERSION,
};
use synod_runtime::framed::FrameReader;
use synod_runtime::node::{self, parse_members, Member, NodeConfig, RunningNode, StorageChoice};
use synod_runtime::wal::SyncMode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("ephemeral port");
    listener.local_addr().expect("address")
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
        seed: id,
    }
}

async fn start_all(protocol: &str, members: &[Member], dir: &Path) -> Vec<RunningNode> {
    let mut nodes = Vec::new();
    for m in members {
        let node = node::start(config(protocol, m.id.0, members, dir))
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

async fn committed_writes_survive_a_full_restart(protocol: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let members = members(3);
    let addrs: Vec<SocketAddr> = members.iter().map(|m| m.client).collect();
    let nodes = start_all(protocol, &members, dir.path()).await;
    let mut c = KvClient::new(ClientId(1), addrs.clone());
    for i in 0..50 {
        let op = KvOp::Append {
            key: "log".into(),
            value: format!("{i},"),
        };
        assert_eq!(c.call(op, CALL).await.expect("append"), KvResult::Written);
    }
    stop_all(nodes).await;

    let nodes = start_all(protocol, &members, dir.path()).await;
    let mut c = KvClient::new(ClientId(2), addrs);
    let read = c
        .call(KvOp::Get { key: "log".into() }, CALL)
        .await
        .expect("read after restart");
    let expected: String = (0..50).map(|i| format!("{i},")).collect();
    assert_eq!(read, KvResult::Value(Some(expected)));
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_committed_writes_survive_a_full_restart() {
    committed_writes_survive_a_full_restart("raft").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paxos_committed_writes_survive_a_full_restart() {
    committed_writes_survive_a_full_restart("paxos").await;
}

/// Sends raw bytes to a client port and returns the error the node answers with
/// (after the welcome, if the bytes began with a valid hello).
async fn refusal(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let (read, _write) = stream.into_split();
    let mut frames = FrameReader::new(read, client::CLIENT_FRAME_BYTES_MAX);
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), frames.next::<ServerFrame>())
            .await
            .expect("answer in time");
        match next {
            Ok(Some(ServerFrame::Error { message })) => return message,
            Ok(Some(ServerFrame::Welcome { .. })) => continue,
            other => panic!("expected an error frame, got {other:?}"),
        }
    }
}

fn frame(value: &ClientFrame) -> Vec<u8> {
    let mut out = Vec::new();
    synod_core::codec::encode_frame(value, usize::MAX, &mut out).expect("encodable");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_input_gets_a_clear_error_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let members = members(1);
    let nodes = start_all("raft", &members, dir.path()).await;
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
        op: KvOp::Get { key: "k".into() },
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

    let mut c = KvClient::new(ClientId(1), vec![addr]);
    let op = KvOp::Put {
        key: "k".into(),
        value: "v".into(),
    };
    assert_eq!(
        c.call(op, CALL).await.expect("still serving"),
        KvResult::Written
    );
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
    let err = node::start(config("raft", 9, &members, dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("node n9 is not in the member list"),
        "{err}"
    );
    let err = node::start(config("zab-ish", 1, &members, dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("unknown protocol"), "{err}");
}
