//! TCP transport on loopback: delivery and order, handshake admission, hostile input,
//! reconnects, the drop policy, batching and configuration checks.
//!
//! Every wait is bounded by `common::WAIT`; conditions are polled, never slept on.

mod common;

use common::{from, recv_n, send_all, wait_until, within, Node};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use synod_core::codec::encode_frame;
use synod_core::{NodeId, Transport, TransportError};
use synod_runtime::transport::{peer_map, ConfigError, Handshake, TcpTransport, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

const CLUSTER: &str = "test-cluster";
const PROTOCOL: &str = "echo";
const FRAME_BYTES_MAX: usize = 4096;

fn config(me: u64, listen: SocketAddr, peers: &BTreeMap<NodeId, SocketAddr>) -> TransportConfig {
    let mut config = TransportConfig::new(CLUSTER, PROTOCOL, NodeId(me), listen, peers.clone());
    config.frame_bytes_max = FRAME_BYTES_MAX;
    config.backoff_min = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(200);
    config.io_timeout = Duration::from_secs(5);
    config
}

async fn loopback_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Nodes `1..=n`, each knowing every other. Listeners are bound first so that every
/// config can name every port.
async fn cluster(n: u64, adjust: impl Fn(&mut TransportConfig)) -> Vec<Node> {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(loopback_listener().await);
    }
    let members: BTreeMap<NodeId, SocketAddr> = (1..=n)
        .zip(&listeners)
        .map(|(id, l)| (NodeId(id), l.local_addr().unwrap()))
        .collect();
    let mut nodes = Vec::new();
    for (id, listener) in (1..=n).zip(listeners) {
        let mut config = config(id, members[&NodeId(id)], &members);
        adjust(&mut config);
        nodes.push(TcpTransport::start(config, listener).unwrap());
    }
    nodes
}

/// Node 1 sends to node 2 and node 2 receives exactly that: the transport still serves.
async fn assert_good_peer_delivers(nodes: &mut [Node], values: std::ops::RangeInclusive<u64>) {
    let count = values.clone().count();
    send_all(&mut nodes[0], 2, values.clone()).await;
    assert_eq!(recv_n(&mut nodes[1], count).await, from(1, values));
}

fn handshake_frame(cluster: &str, protocol: &str, node: u64) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_frame(
        &Handshake::new(cluster, protocol, NodeId(node)),
        FRAME_BYTES_MAX,
        &mut frame,
    )
    .unwrap();
    frame
}

fn message_frame(value: u64) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_frame(&value, FRAME_BYTES_MAX, &mut frame).unwrap();
    frame
}

/// Opens a raw connection, writes `bytes`, optionally ends the stream, and waits until
/// the transport closes the connection.
async fn raw_session(addr: SocketAddr, bytes: &[u8], end_stream: bool) {
    let mut stream = within("raw connect", TcpStream::connect(addr))
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    if end_stream {
        stream.shutdown().await.unwrap();
    }
    let mut sink = [0u8; 64];
    let read = within(
        "the transport closing a raw connection",
        stream.read(&mut sink),
    )
    .await;
    // A clean close reads 0 bytes; closing with our bytes unread resets the connection.
    assert!(matches!(read, Ok(0) | Err(_)), "unexpected {read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_messages_in_order() {
    let mut nodes = cluster(2, |_| {}).await;
    send_all(&mut nodes[0], 2, 1..=200).await;
    send_all(&mut nodes[1], 1, 1001..=1200).await;
    assert_eq!(recv_n(&mut nodes[1], 200).await, from(1, 1..=200));
    assert_eq!(recv_n(&mut nodes[0], 200).await, from(2, 1001..=1200));
    for node in &nodes {
        // Both counters are bumped after the frame moved on (written, or handed to
        // `recv`), so a message can be seen before its count: wait for both.
        wait_until("sent frames counted", || node.stats().frames_sent == 200).await;
        wait_until("received frames counted", || {
            node.stats().frames_received == 200
        })
        .await;
        assert_eq!(node.stats().dropped_queue_full, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_each_receive_every_peer_in_order() {
    let mut nodes = cluster(3, |_| {}).await;
    for (i, node) in nodes.iter_mut().enumerate() {
        let me = i as u64 + 1;
        for to in (1..=3).filter(|to| *to != me) {
            send_all(node, to, (1..=100).map(|seq| me * 1000 + seq)).await;
        }
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        let got = recv_n(node, 200).await;
        let mut per_sender: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
        for (sender, value) in got {
            per_sender.entry(sender).or_default().push(value);
        }
        let me = i as u64 + 1;
        let expected: BTreeMap<NodeId, Vec<u64>> = (1..=3)
            .filter(|peer| *peer != me)
            .map(|peer| {
                (
                    NodeId(peer),
                    (1..=100).map(|seq| peer * 1000 + seq).collect(),
                )
            })
            .collect();
        assert_eq!(per_sender, expected, "node {me}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_oneself_is_delivered_locally() {
    let mut nodes = cluster(2, |_| {}).await;
    nodes[0].send(NodeId(1), 7).await.unwrap();
    assert_eq!(recv_n(&mut nodes[0], 1).await, from(1, [7]));
    assert_eq!(nodes[0].stats().frames_sent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_from_another_cluster_protocol_unknown_node_or_itself_are_rejected() {
    let mut nodes = cluster(2, |_| {}).await;
    let addr = nodes[1].local_addr();
    let impostors = [
        handshake_frame("other-cluster", PROTOCOL, 1),
        handshake_frame(CLUSTER, "other-protocol", 1),
        handshake_frame(CLUSTER, PROTOCOL, 9),
        handshake_frame(CLUSTER, PROTOCOL, 2),
    ];
    for (i, hello) in impostors.iter().enumerate() {
        // A message right behind the refused handshake must never be delivered.
        let bytes = [hello.clone(), message_frame(999)].concat();
        raw_session(addr, &bytes, false).await;
        let rejected = i as u64 + 1;
        wait_until("rejection counted", || {
            nodes[1].stats().handshakes_rejected == rejected
        })
        .await;
    }
    let stats = nodes[1].stats();
    assert_eq!((stats.handshakes_rejected, stats.bad_frames), (4, 0));
    assert_good_peer_delivers(&mut nodes, 1..=3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_malformed_frames_close_only_their_connection() {
    let mut nodes = cluster(2, |_| {}).await;
    let addr = nodes[1].local_addr();
    // A length prefix of "GET " is far over the limit.
    raw_session(addr, b"GET / HTTP/1.1\r\n\r\n", false).await;
    // A well-sized first frame that is not a handshake.
    raw_session(addr, &[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff], false).await;
    // Within `frame_bytes_max`, but over the handshake's own, smaller limit.
    raw_session(addr, &2000u32.to_le_bytes(), false).await;
    // A good handshake, then a message body that is not a `u64`.
    let hello = handshake_frame(CLUSTER, PROTOCOL, 1);
    raw_session(addr, &[hello, vec![2, 0, 0, 0, 0xff, 0xff]].concat(), false).await;
    wait_until("bad frames counted", || nodes[1].stats().bad_frames == 4).await;
    assert_eq!(nodes[1].stats().handshakes_rejected, 0);
    assert_good_peer_delivers(&mut nodes, 1..=3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_after_the_handshake_closes_the_connection() {
    let mut nodes = cluster(2, |_| {}).await;
    let hello = handshake_frame(CLUSTER, PROTOCOL, 1);
    let oversized_header = (FRAME_BYTES_MAX as u32 + 1).to_le_bytes().to_vec();
    let bytes = [message_frame(5), oversized_header].concat();
    raw_session(nodes[1].local_addr(), &[hello, bytes].concat(), false).await;
    wait_until("bad frame counted", || nodes[1].stats().bad_frames == 1).await;
    // Frames before the bad one were delivered, in order.
    assert_eq!(recv_n(&mut nodes[1], 1).await, from(1, [5]));
    assert_good_peer_delivers(&mut nodes, 1..=3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ending_inside_a_frame_is_counted_as_truncated() {
    let mut nodes = cluster(2, |_| {}).await;
    let hello = handshake_frame(CLUSTER, PROTOCOL, 1);
    let partial = [100u32.to_le_bytes().to_vec(), vec![0u8; 10]].concat();
    raw_session(nodes[1].local_addr(), &[hello, partial].concat(), true).await;
    wait_until("truncated frame counted", || {
        nodes[1].stats().bad_frames == 1
    })
    .await;
    assert_good_peer_delivers(&mut nodes, 1..=3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_reconnects_when_its_peer_restarts_on_the_same_port() {
    let mut nodes = cluster(2, |_| {}).await;
    assert_good_peer_delivers(&mut nodes, 1..=1).await;
    let mut restarted_config = config(2, nodes[1].local_addr(), &BTreeMap::new());
    restarted_config
        .peers
        .insert(NodeId(1), nodes[0].local_addr());
    let mut old = nodes.pop().unwrap();
    old.shutdown().await;
    assert!(matches!(old.recv().await, Err(TransportError::Closed)));
    wait_until("node 1 notices node 2 is gone", || {
        nodes[0].stats().connect_failures >= 1
    })
    .await;
    // Queued while the peer is down: kept, and delivered once it is back.
    send_all(&mut nodes[0], 2, 2..=5).await;
    nodes.push(
        within("rebinding", Node::bind(restarted_config))
            .await
            .unwrap(),
    );
    assert_eq!(recv_n(&mut nodes[1], 4).await, from(1, 2..=5));
    wait_until("reconnect counted", || nodes[0].stats().reconnects >= 1).await;
    assert_good_peer_delivers(&mut nodes, 6..=8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_while_the_peer_is_down() {
    // A bound but not listening socket: the port stays ours and connects are refused.
    let reserved = TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead = reserved.local_addr().unwrap();
    let listener = loopback_listener().await;
    let mut config = config(1, listener.local_addr().unwrap(), &BTreeMap::new());
    config.peers.insert(NodeId(2), dead);
    config.send_queue_depth = 8;
    let mut node: Node = TcpTransport::start(config, listener).unwrap();
    let started = Instant::now();
    send_all(&mut node, 2, 0..100).await;
    assert!(started.elapsed() < Duration::from_secs(1), "send waited");
    assert_eq!(node.stats().dropped_queue_full, 92);
    wait_until("connect failures counted", || {
        node.stats().connect_failures >= 2
    })
    .await;
    assert_eq!(node.stats().frames_sent, 0);
}

/// A current-thread runtime: the link cannot run while the test enqueues, so the whole
/// burst is queued before the first write and the batching is deterministic.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_small_messages_is_written_in_few_batches() {
    let mut nodes = cluster(2, |_| {}).await;
    assert_good_peer_delivers(&mut nodes, 0..=0).await;
    send_all(&mut nodes[0], 2, 1..=2000).await;
    assert_eq!(recv_n(&mut nodes[1], 2000).await, from(1, 1..=2000));
    let stats = nodes[0].stats();
    assert_eq!(stats.frames_sent, 2001);
    // One write for the warm-up message, then batches of up to 1024 frames.
    assert!(
        stats.batches_written <= 4,
        "2001 frames took {} writes",
        stats.batches_written
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reports_unknown_peers_oversized_messages_and_shutdown() {
    let mut nodes = cluster(2, |_| {}).await;
    assert!(matches!(
        nodes[0].send(NodeId(9), 1).await,
        Err(TransportError::UnknownPeer(NodeId(9)))
    ));
    nodes[0].shutdown().await;
    assert!(matches!(
        nodes[0].send(NodeId(2), 1).await,
        Err(TransportError::Closed)
    ));
    assert!(matches!(nodes[0].recv().await, Err(TransportError::Closed)));

    let listener = loopback_listener().await;
    let mut config = config(1, listener.local_addr().unwrap(), &BTreeMap::new());
    config.peers.insert(NodeId(2), nodes[1].local_addr());
    let mut bulky: TcpTransport<Vec<u8>> = TcpTransport::start(config, listener).unwrap();
    let too_big = vec![0u8; FRAME_BYTES_MAX + 1];
    let err = bulky.send(NodeId(2), too_big).await.unwrap_err();
    assert!(err.to_string().contains("exceeds the maximum"), "{err}");
    let stats = bulky.stats();
    assert_eq!((stats.frames_sent, stats.dropped_queue_full), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_port_in_use_fails_with_the_address() {
    let taken = loopback_listener().await;
    let addr = taken.local_addr().unwrap();
    let err = Node::bind(config(1, addr, &BTreeMap::new()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn configuration_errors_are_specific() {
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let members: BTreeMap<NodeId, SocketAddr> =
        [(NodeId(1), addr(7001)), (NodeId(2), addr(7002))].into();
    let valid = config(1, addr(7001), &members);
    assert_eq!(valid.validate(), Ok(()));
    assert_eq!(
        valid.remote_peers().collect::<Vec<_>>(),
        [(NodeId(2), addr(7002))]
    );

    let check = |adjust: &dyn Fn(&mut TransportConfig), expected: ConfigError| {
        let mut config = valid.clone();
        adjust(&mut config);
        assert_eq!(config.validate(), Err(expected.clone()));
        assert!(!expected.to_string().is_empty());
    };
    check(
        &|c| {
            c.peers.insert(NodeId(3), addr(7002));
        },
        ConfigError::DuplicateAddress {
            addr: addr(7002),
            first: NodeId(2),
            second: NodeId(3),
        },
    );
    check(
        &|c| {
            c.peers.insert(NodeId(3), addr(7001));
        },
        ConfigError::DuplicateAddress {
            addr: addr(7001),
            first: NodeId(1),
            second: NodeId(3),
        },
    );
    check(
        &|c| {
            c.peers.insert(NodeId(1), addr(7009));
        },
        ConfigError::SelfAddressMismatch {
            me: NodeId(1),
            listen: addr(7001),
            listed: addr(7009),
        },
    );
    check(
        &|c| {
            c.peers.insert(NodeId(3), addr(0));
        },
        ConfigError::PeerPortZero {
            node: NodeId(3),
            addr: addr(0),
        },
    );
    for field in ["frame_bytes_max", "send_queue_depth", "recv_queue_depth"] {
        check(
            &|c| match field {
                "frame_bytes_max" => c.frame_bytes_max = 0,
                "send_queue_depth" => c.send_queue_depth = 0,
                _ => c.recv_queue_depth = 0,
            },
            ConfigError::Zero { field },
        );
    }
    check(
        &|c| c.inbound_connections_max = 0,
        ConfigError::Zero {
            field: "inbound_connections_max",
        },
    );
    check(
        &|c| c.io_timeout = Duration::ZERO,
        ConfigError::Zero {
            field: "io_timeout",
        },
    );
    check(
        &|c| c.backoff_min = Duration::from_secs(3),
        ConfigError::BackoffRange {
            min: Duration::from_secs(3),
            max: Duration::from_millis(200),
        },
    );
    check(
        &|c| c.cluster_id.clear(),
        ConfigError::Empty {
            field: "cluster_id",
        },
    );
    let mut verbose = valid.clone();
    verbose.cluster_id = "c".repeat(2000);
    assert!(matches!(
        verbose.validate(),
        Err(ConfigError::HandshakeTooLarge { bytes, max: 1024 }) if bytes > 2000
    ));
    // A wildcard listen address matches its own entry by port.
    let mut wildcard = valid.clone();
    wildcard.listen = "0.0.0.0:7001".parse().unwrap();
    assert_eq!(wildcard.validate(), Ok(()));
}

#[test]
fn a_peer_list_naming_a_node_twice_is_rejected() {
    let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    assert_eq!(
        peer_map([(NodeId(1), a), (NodeId(1), b)]),
        Err(ConfigError::DuplicateNode {
            node: NodeId(1),
            first: a,
            second: b,
        })
    );
    assert_eq!(peer_map([(NodeId(1), a)]).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_reports_an_invalid_configuration() {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = config(1, listen, &BTreeMap::new());
    config.backoff_min = Duration::from_secs(60);
    let err = Node::bind(config).await.unwrap_err();
    assert!(err.to_string().contains("backoff_min"), "{err}");
}
