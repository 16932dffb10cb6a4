//! The handshake frame and the rules for admitting a connection.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use synod_core::{codec, NodeId};

/// First bytes of every handshake body: "SYND".
pub const MAGIC: [u8; 4] = *b"SYND";
/// Version of the wire format; bumped on any incompatible change.
pub const WIRE_VERSION: u16 = 1;
/// Largest handshake body accepted or sent. Far below `frame_bytes_max`: it bounds what
/// a connection that has not yet identified itself can make this node buffer.
pub const HANDSHAKE_BYTES_MAX: usize = 1024;

/// The first frame on every connection, sent by the connecting side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    /// Always [`MAGIC`]; anything else is not a Synod peer.
    pub magic: [u8; 4],
    /// The sender's [`WIRE_VERSION`].
    pub version: u16,
    /// The sender's cluster.
    pub cluster_id: String,
    /// The protocol the sender speaks.
    pub protocol: String,
    /// The sender.
    pub node: NodeId,
}

impl Handshake {
    /// The handshake `node` sends, at this build's magic and version.
    pub fn new(cluster_id: &str, protocol: &str, node: NodeId) -> Handshake {
        Handshake {
            magic: MAGIC,
            version: WIRE_VERSION,
            cluster_id: cluster_id.to_owned(),
            protocol: protocol.to_owned(),
            node,
        }
    }

    /// Size of the encoded body (without the frame header).
    pub fn body_bytes(&self) -> usize {
        codec::encode(self).len()
    }
}

/// Why the accepting side refused a connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("bad magic {0:?}: not a Synod peer")]
    BadMagic([u8; 4]),
    #[error("wire version {got}, expected {WIRE_VERSION}")]
    Version { got: u16 },
    #[error("cluster {got:?}, expected {expected:?}")]
    Cluster { got: String, expected: String },
    #[error("protocol {got:?}, expected {expected:?}")]
    Protocol { got: String, expected: String },
    #[error("it claims to be this node {0}")]
    ItsMe(NodeId),
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("TLS certificate does not name {claimed}: {reason}")]
    CertificateIdentity { claimed: NodeId, reason: String },
    #[error("no handshake within the I/O timeout")]
    TimedOut,
}

/// What an accepted connection's handshake must match.
#[derive(Debug)]
pub(crate) struct Admission {
    pub(crate) cluster_id: String,
    pub(crate) protocol: String,
    pub(crate) me: NodeId,
    pub(crate) peers: BTreeMap<NodeId, SocketAddr>,
}

impl Admission {
    /// The node a handshake identifies, if it may talk to us.
    pub(crate) fn admit(&self, hello: &Handshake) -> Result<NodeId, Rejection> {
        if hello.magic != MAGIC {
            return Err(Rejection::BadMagic(hello.magic));
        }
        if hello.version != WIRE_VERSION {
            return Err(Rejection::Version { got: hello.version });
        }
        if hello.cluster_id != self.cluster_id {
            return Err(Rejection::Cluster {
                got: hello.cluster_id.clone(),
                expected: self.cluster_id.clone(),
            });
        }
        if hello.protocol != self.protocol {
            return Err(Rejection::Protocol {
                got: hello.protocol.clone(),
                expected: self.protocol.clone(),
            });
        }
        if hello.node == self.me {
            return Err(Rejection::ItsMe(hello.node));
        }
        if !self.peers.contains_key(&hello.node) {
            return Err(Rejection::UnknownNode(hello.node));
        }
        Ok(hello.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        Admission {
            cluster_id: "c".into(),
            protocol: "raft".into(),
            me: NodeId(1),
            peers: [(NodeId(2), addr)].into_iter().collect(),
        }
    }

    #[test]
    fn a_matching_handshake_from_a_known_peer_is_admitted() {
        let hello = Handshake::new("c", "raft", NodeId(2));
        assert_eq!(admission().admit(&hello), Ok(NodeId(2)));
    }

    #[test]
    fn each_mismatch_is_rejected_with_its_reason() {
        let a = admission();
        let mut bad_magic = Handshake::new("c", "raft", NodeId(2));
        bad_magic.magic = *b"HTTP";
        assert_eq!(a.admit(&bad_magic), Err(Rejection::BadMagic(*b"HTTP")));
        let mut bad_version = Handshake::new("c", "raft", NodeId(2));
        bad_version.version = WIRE_VERSION + 1;
        assert!(matches!(
            a.admit(&bad_version),
            Err(Rejection::Version { .. })
        ));
        assert!(matches!(
            a.admit(&Handshake::new("other", "raft", NodeId(2))),
            Err(Rejection::Cluster { .. })
        ));
        assert!(matches!(
            a.admit(&Handshake::new("c", "paxos", NodeId(2))),
            Err(Rejection::Protocol { .. })
        ));
        assert_eq!(
            a.admit(&Handshake::new("c", "raft", NodeId(1))),
            Err(Rejection::ItsMe(NodeId(1)))
        );
        assert_eq!(
            a.admit(&Handshake::new("c", "raft", NodeId(9))),
            Err(Rejection::UnknownNode(NodeId(9)))
        );
    }

    #[test]
    fn handshake_roundtrips_through_a_frame() {
        let hello = Handshake::new("c", "raft", NodeId(2));
        let mut frame = Vec::new();
        codec::encode_frame(&hello, 1024, &mut frame).unwrap();
        let mut decoder = codec::FrameDecoder::new(1024);
        decoder.push(&frame);
        assert_eq!(decoder.next_frame::<Handshake>(), Ok(Some(hello)));
    }
}
