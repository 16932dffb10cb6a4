//! The format's decoders fed random bytes (issue 20's decoder fuzzing, bounded for
//! CI): every one returns an error or a value, never panics, and a checksummed
//! record that decodes replays into a state whose invariants hold. Whole directories
//! of damaged files: `tests/wal_fuzz.rs`.
//!
//! A longer run: `PROPTEST_CASES=200000 cargo test -p synod-runtime --release --lib
//! wal::format::fuzz`.

use super::*;
use crate::wal::state::{apply_to_log, WalState};
use proptest::prelude::*;

/// 2,000 cases each in CI; `PROPTEST_CASES` asks for more.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that mostly decode as postcard tags and short varints, so that the search
/// reaches past the first field of each type; half of them open like a record (its
/// tag, then a short op count or meta length).
fn payload_bytes() -> impl Strategy<Value = Vec<u8>> {
    let small = prop::collection::vec(prop_oneof![3 => 0u8..6, 1 => any::<u8>()], 1..256);
    let record_like = (0u8..2, 0u8..6, small.clone()).prop_map(|(tag, count, rest)| {
        let mut bytes = vec![tag, count];
        bytes.extend(rest);
        bytes
    });
    prop_oneof![small, record_like]
}

/// `payload` framed with a correct length and checksum, as `encode_record` frames.
fn framed(payload: &[u8]) -> Vec<u8> {
    let len_bytes = (payload.len() as u32).to_le_bytes();
    let mut out = len_bytes.to_vec();
    out.extend_from_slice(&record_crc(len_bytes, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn framing_and_header_checks_never_panic_on_random_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        at in any::<prop::sample::Index>(),
        number in 0u64..4,
    ) {
        let offset = at.index(bytes.len() + 1);
        let _ = check_segment_header(&bytes, number);
        let _ = check_snapshot_file(&bytes, number);
        let framed = read_framed(&bytes, offset);
        if let Ok(framed) = &framed {
            prop_assert!(framed.next <= bytes.len());
            let _ = decode_record(framed.payload);
        }
        if framed.is_err() {
            let _ = looks_torn(&bytes, offset);
        }
        if let Some(next) = find_intact_record_after(&bytes, offset) {
            prop_assert!(next > offset && read_framed(&bytes, next).is_ok());
        }
        let _ = classify_file_name(&String::from_utf8_lossy(&bytes));
    }

    /// Past the checksum (as damage that happens to match it, or a bug in a writer,
    /// would get): the payload decodes or is `Undecodable`, and a batch that decodes
    /// replays into a log and a liveness index that agree — recovery asserts that.
    #[test]
    fn a_checksummed_random_payload_is_refused_or_replays_with_its_invariants(
        payload in payload_bytes(),
        checkpoint_first in any::<bool>(),
    ) {
        let bytes = framed(&payload);
        let record = read_framed(&bytes, 0).expect("framed with a valid checksum");
        prop_assert_eq!(record.next, bytes.len());
        let mut state = WalState::default();
        let mut log = std::collections::BTreeMap::new();
        if checkpoint_first {
            state = WalState::from_checkpoint(Checkpoint::default());
        }
        match decode_record(record.payload) {
            Err(BadRecord::Undecodable(_)) => {}
            Err(other) => prop_assert!(false, "decoding can only fail as Undecodable: {:?}", other),
            Ok(Record::Checkpoint(checkpoint)) => {
                let from = WalState::from_checkpoint(checkpoint.clone());
                prop_assert!(from.agrees_with(&checkpoint));
            }
            Ok(Record::Batch(ops)) => {
                let mut again = Vec::new();
                encode_record(&Record::Batch(ops.clone()), &mut again).unwrap();
                let reread = read_framed(&again, 0).unwrap();
                prop_assert_eq!(decode_record(reread.payload).unwrap(), Record::Batch(ops.clone()));
                for op in ops {
                    state.apply(&op, 1);
                    apply_to_log(&mut log, op);
                }
                prop_assert_eq!(state.liveness.live_len(), log.len());
            }
        }
    }
}
