//! Bad bytes get an error, never a panic (issue 20's decoder fuzzing, bounded for
//! CI): random byte strings — biased towards small values, so that enum tags and
//! varint lengths decode and the search reaches deep into each type — and the
//! encodings of real values with a byte flipped, cut short or extended, fed to the
//! decoder of everything a node reads from the network: every protocol's peer
//! messages, client frames and reply frames, and the transport's handshake.
//!
//! A longer run: `PROPTEST_CASES=200000 cargo test --release -p synod-harness --test
//! fuzz_decoders`.

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use synod_core::{codec, Node, NodeId};
use synod_harness::adapters::twopc::{TwoPc, TwoPcNb};
use synod_harness::adapters::zab::{Zab, ZabLocal};
use synod_harness::adapters::{paxos::Paxos, raft::Raft, vvsync};
use synod_harness::protocol::SimProtocol;
use synod_runtime::client::{ClientFrame, ServerFrame};
use synod_runtime::transport::{Handshake, MAGIC, WIRE_VERSION};

/// Decodes `bytes` as `T`; an `Ok` must encode back to a value that decodes the same
/// (a decoder that accepts garbage must at least accept it consistently).
fn decode_never_panics<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) {
    if let Ok(value) = codec::decode::<T>(bytes) {
        let again: T = codec::decode(&codec::encode(&value)).expect("re-encoding decodes");
        assert_eq!(again, value);
    }
}

/// Decodes `bytes` as every wire type of protocol `P`.
fn every_wire_type<P: SimProtocol>(bytes: &[u8]) {
    type N<P> = <P as SimProtocol>::Node;
    let _ = codec::decode::<<N<P> as Node>::Message>(bytes);
    let _ = codec::decode::<ClientFrame<<N<P> as Node>::Request>>(bytes);
    let _ = codec::decode::<ServerFrame<<N<P> as Node>::Response>>(bytes);
}

/// Every protocol and mode of the registry (`synod_harness::registry::PROTOCOLS`;
/// modes that share a node type decode the same types, and are listed anyway).
fn all_protocols(bytes: &[u8]) {
    every_wire_type::<Raft>(bytes);
    every_wire_type::<Paxos>(bytes);
    every_wire_type::<Zab>(bytes);
    every_wire_type::<ZabLocal>(bytes);
    every_wire_type::<TwoPc>(bytes);
    every_wire_type::<TwoPcNb>(bytes);
    every_wire_type::<vvsync::VvSyncDvv>(bytes);
    every_wire_type::<vvsync::VvSyncVv>(bytes);
    every_wire_type::<vvsync::VvSyncLww>(bytes);
    decode_never_panics::<Handshake>(bytes);
}

/// Bytes that mostly decode as tags and short lengths.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![3 => 0u8..8, 1 => any::<u8>()], 0..512)
}

/// A real handshake's encoding, mutated.
fn mutated_handshake() -> impl Strategy<Value = Vec<u8>> {
    let real = codec::encode(&Handshake {
        magic: MAGIC,
        version: WIRE_VERSION,
        cluster_id: "test".into(),
        protocol: "raft".into(),
        node: NodeId(2),
    });
    let len = real.len();
    (0..len, any::<u8>(), 0..=len, wire_bytes()).prop_map(move |(at, b, cut, tail)| {
        let mut m = real.clone();
        m[at] ^= b;
        m.truncate(cut.max(1));
        m.extend(tail.iter().take(8));
        m
    })
}

/// 2,000 cases each in CI; `PROPTEST_CASES` asks for more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn every_decoder_answers_random_bytes_with_an_error_not_a_panic(bytes in wire_bytes()) {
        all_protocols(&bytes);
    }

    #[test]
    fn a_mutated_handshake_is_refused_or_read_consistently(bytes in mutated_handshake()) {
        decode_never_panics::<Handshake>(&bytes);
    }
}

/// The decoders do accept what they are fed well-formed: a real value round-trips
/// (so the fuzzing above exercises decoders that work, not ones that refuse all).
#[test]
fn a_real_client_frame_decodes() {
    let frame: ClientFrame<<<Raft as SimProtocol>::Node as Node>::Request> = ClientFrame::Hello {
        magic: 7,
        version: 1,
    };
    let bytes = codec::encode(&frame);
    assert_eq!(codec::decode::<ClientFrame<_>>(&bytes).ok(), Some(frame));
}

/// Pieces of history lines (Jepsen's JSON-lines conventions): joined at random they
/// make lines that are well-formed JSON more often than random bytes would, with
/// wrong types, missing fields, duplicate keys and broken syntax among them.
const HISTORY_PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"process\"",
    "\"type\"",
    "\"f\"",
    "\"key\"",
    "\"value\"",
    "\"time\"",
    "\"invoke\"",
    "\"ok\"",
    "\"fail\"",
    "\"info\"",
    "\"put\"",
    "\"get\"",
    "\"cas\"",
    "\"append\"",
    "\"txn\"",
    "\"r\"",
    "\"k1\"",
    "null",
    "0",
    "1",
    "-1",
    "18446744073709551616",
    "1.5",
    "true",
    "\"\"",
    "[\"r\",\"l0\",null]",
    "[\"append\",\"l0\",3]",
    "\n",
    " ",
    "\"\\u0000\"",
];

fn history_text() -> impl Strategy<Value = String> {
    let piece = (0..HISTORY_PIECES.len()).prop_map(|i| HISTORY_PIECES[i]);
    prop::collection::vec(piece, 0..80).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// `synod check-history`'s readers: a malformed file is an error naming the
    /// line, never a panic.
    #[test]
    fn history_readers_answer_malformed_files_with_an_error(text in history_text()) {
        let _ = synod_harness::checker::History::parse_jsonl(text.as_bytes());
        let _ = synod_harness::txn::TxnHistory::parse_str(&text);
    }
}
