//! What a [`TcpTransport`](super::TcpTransport) needs to know, and the checks that run
//! before it opens a socket.

use super::wire::{Handshake, HANDSHAKE_BYTES_MAX};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use synod_core::NodeId;

/// Default for [`TransportConfig::frame_bytes_max`]: 16 MiB, room for a large snapshot
/// chunk while still bounding what a corrupt length prefix can make us allocate.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 16 << 20;
/// Default for [`TransportConfig::send_queue_depth`] (messages per peer).
pub const SEND_QUEUE_DEPTH_DEFAULT: usize = 4096;
/// Default for [`TransportConfig::recv_queue_depth`] (messages, all peers together).
pub const RECV_QUEUE_DEPTH_DEFAULT: usize = 4096;
/// Default for [`TransportConfig::inbound_connections_max`].
pub const INBOUND_CONNECTIONS_MAX_DEFAULT: usize = 256;
/// Default for [`TransportConfig::backoff_min`].
pub const BACKOFF_MIN_DEFAULT: Duration = Duration::from_millis(50);
/// Default for [`TransportConfig::backoff_max`].
pub const BACKOFF_MAX_DEFAULT: Duration = Duration::from_secs(2);
/// Default for [`TransportConfig::io_timeout`].
pub const IO_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Configuration of one node's transport.
///
/// Fields are public so a caller can start from [`TransportConfig::new`] and adjust
/// limits; [`TransportConfig::validate`] (run by `bind`) rejects inconsistent values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// Name of the cluster; a connection from another cluster is refused.
    pub cluster_id: String,
    /// Name of the protocol spoken (e.g. `"raft"`); a connection speaking another
    /// protocol is refused, so two clusters sharing hosts cannot cross-talk.
    pub protocol: String,
    /// This node.
    pub me: NodeId,
    /// Address to accept peer connections on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The other members and their listen addresses. `me` may appear too (so every
    /// node can share one member map) but then only with the address `listen`.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Largest frame body, in bytes, accepted or sent.
    pub frame_bytes_max: usize,
    /// Messages queued per peer while its connection is slow or down; beyond this,
    /// `send` drops the message (see the module docs).
    pub send_queue_depth: usize,
    /// Messages received but not yet taken by `recv`; when full, connections stop
    /// being read, which pushes back on the senders through TCP.
    pub recv_queue_depth: usize,
    /// Simultaneous inbound connections; more are closed on accept.
    pub inbound_connections_max: usize,
    /// First reconnect delay after a peer's connection fails.
    pub backoff_min: Duration,
    /// Cap of the doubling reconnect delay.
    pub backoff_max: Duration,
    /// Bound on connecting (TCP, TLS and the Synod handshake) and on each batched
    /// write; a peer slower than this is treated as down.
    pub io_timeout: Duration,
    /// Mutual TLS, or `None` for plain TCP.
    pub tls: Option<TlsConfig>,
}

/// PEM files for mutual TLS. Every node's certificate must be signed by `ca_cert` and
/// name the node as described in the module docs (`node-<id>.synod`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// The cluster's certificate authority (one or more PEM certificates).
    pub ca_cert: PathBuf,
    /// This node's certificate chain, leaf first.
    pub cert: PathBuf,
    /// This node's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key: PathBuf,
}

/// Why a [`TransportConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A peer list named the same node twice.
    #[error("node {node} is listed twice in the peer list ({first} and {second})")]
    DuplicateNode {
        /// The repeated node.
        node: NodeId,
        /// Its first address.
        first: SocketAddr,
        /// Its second address.
        second: SocketAddr,
    },
    /// Two nodes share one address (counting this node's `listen`).
    #[error("nodes {first} and {second} share the address {addr}")]
    DuplicateAddress {
        /// The shared address.
        addr: SocketAddr,
        /// One node using it.
        first: NodeId,
        /// Another node using it.
        second: NodeId,
    },
    /// This node appears among its peers with an address other than `listen`.
    #[error("this node {me} listens on {listen} but the peer list gives it {listed}")]
    SelfAddressMismatch {
        /// This node.
        me: NodeId,
        /// Its configured listen address.
        listen: SocketAddr,
        /// The address the peer list gives it.
        listed: SocketAddr,
    },
    /// A peer address has port 0, which nobody can connect to.
    #[error("peer {node} has address {addr} with port 0")]
    PeerPortZero {
        /// The peer.
        node: NodeId,
        /// Its address.
        addr: SocketAddr,
    },
    /// A size, count or duration that must be positive is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The field's name.
        field: &'static str,
    },
    /// A name that must not be empty is.
    #[error("{field} must not be empty")]
    Empty {
        /// The field's name.
        field: &'static str,
    },
    /// `backoff_min > backoff_max`.
    #[error("backoff_min ({min:?}) is greater than backoff_max ({max:?})")]
    BackoffRange {
        /// Configured minimum.
        min: Duration,
        /// Configured maximum.
        max: Duration,
    },
    /// `frame_bytes_max` exceeds what the 4-byte length prefix can carry.
    #[error("frame_bytes_max {frame_bytes_max} exceeds the frame header's limit of {max}")]
    FrameBytesMax {
        /// Configured value.
        frame_bytes_max: usize,
        /// Largest length a frame header can carry.
        max: usize,
    },
    /// `cluster_id` and `protocol` are too long for a handshake frame.
    #[error(
        "cluster_id and protocol make a {bytes}-byte handshake, over the limit of {max} bytes"
    )]
    HandshakeTooLarge {
        /// Size of this node's handshake body.
        bytes: usize,
        /// [`HANDSHAKE_BYTES_MAX`].
        max: usize,
    },
}

impl TransportConfig {
    /// A configuration with the default limits (`*_DEFAULT` constants in this module)
    /// and plain TCP.
    pub fn new(
        cluster_id: impl Into<String>,
        protocol: impl Into<String>,
        me: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> TransportConfig {
        TransportConfig {
            cluster_id: cluster_id.into(),
            protocol: protocol.into(),
            me,
            listen,
            peers,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            send_queue_depth: SEND_QUEUE_DEPTH_DEFAULT,
            recv_queue_depth: RECV_QUEUE_DEPTH_DEFAULT,
            inbound_connections_max: INBOUND_CONNECTIONS_MAX_DEFAULT,
            backoff_min: BACKOFF_MIN_DEFAULT,
            backoff_max: BACKOFF_MAX_DEFAULT,
            io_timeout: IO_TIMEOUT_DEFAULT,
            tls: None,
        }
    }

    /// Checks every rule in [`ConfigError`]; `bind` calls it first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_names()?;
        self.validate_limits()?;
        self.validate_peers()
    }

    /// The peers this node connects to: `peers` without `me`.
    pub fn remote_peers(&self) -> impl Iterator<Item = (NodeId, SocketAddr)> + '_ {
        self.peers
            .iter()
            .filter(|(node, _)| **node != self.me)
            .map(|(node, addr)| (*node, *addr))
    }

    fn validate_names(&self) -> Result<(), ConfigError> {
        if self.cluster_id.is_empty() {
            return Err(ConfigError::Empty {
                field: "cluster_id",
            });
        }
        if self.protocol.is_empty() {
            return Err(ConfigError::Empty { field: "protocol" });
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let positive = [
            ("frame_bytes_max", self.frame_bytes_max),
            ("send_queue_depth", self.send_queue_depth),
            ("recv_queue_depth", self.recv_queue_depth),
            ("inbound_connections_max", self.inbound_connections_max),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        let durations = [
            ("backoff_min", self.backoff_min),
            ("backoff_max", self.backoff_max),
            ("io_timeout", self.io_timeout),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.backoff_min > self.backoff_max {
            return Err(ConfigError::BackoffRange {
                min: self.backoff_min,
                max: self.backoff_max,
            });
        }
        let max = u32::MAX as usize;
        if self.frame_bytes_max > max {
            return Err(ConfigError::FrameBytesMax {
                frame_bytes_max: self.frame_bytes_max,
                max,
            });
        }
        let bytes = Handshake::new(&self.cluster_id, &self.protocol, self.me).body_bytes();
        if bytes > HANDSHAKE_BYTES_MAX {
            return Err(ConfigError::HandshakeTooLarge {
                bytes,
                max: HANDSHAKE_BYTES_MAX,
            });
        }
        Ok(())
    }

    fn validate_peers(&self) -> Result<(), ConfigError> {
        if let Some(listed) = self.peers.get(&self.me) {
            if !same_listen_address(self.listen, *listed) {
                return Err(ConfigError::SelfAddressMismatch {
                    me: self.me,
                    listen: self.listen,
                    listed: *listed,
                });
            }
        }
        let mut owners: BTreeMap<SocketAddr, NodeId> = BTreeMap::new();
        owners.insert(self.listen, self.me);
        for (node, addr) in self.remote_peers() {
            if addr.port() == 0 {
                return Err(ConfigError::PeerPortZero { node, addr });
            }
            if let Some(first) = owners.insert(addr, node) {
                return Err(ConfigError::DuplicateAddress {
                    addr,
                    first,
                    second: node,
                });
            }
        }
        Ok(())
    }
}

/// Whether `listed` names the socket bound at `listen`. A wildcard listen address
/// (`0.0.0.0`, `::`) is reached through any of the host's addresses, so only the
/// port is compared then.
fn same_listen_address(listen: SocketAddr, listed: SocketAddr) -> bool {
    if listen.ip().is_unspecified() {
        listen.port() == listed.port()
    } else {
        listen == listed
    }
}

/// Builds a peer map from a list (e.g. parsed from a command line), rejecting a node
/// listed twice instead of silently keeping the last address as a map would.
pub fn peer_map(
    list: impl IntoIterator<Item = (NodeId, SocketAddr)>,
) -> Result<BTreeMap<NodeId, SocketAddr>, ConfigError> {
    let mut peers = BTreeMap::new();
    for (node, addr) in list {
        match peers.entry(node) {
            Entry::Vacant(slot) => {
                slot.insert(addr);
            }
            Entry::Occupied(slot) => {
                return Err(ConfigError::DuplicateNode {
                    node,
                    first: *slot.get(),
                    second: addr,
                });
            }
        }
    }
    Ok(peers)
}
