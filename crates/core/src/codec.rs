//! Message and storage codecs on postcard, plus length-prefixed framing for streams.
//!
//! Frames are a 4-byte little-endian length followed by that many postcard bytes.
//! Every decoder enforces a maximum frame size so a corrupt or hostile length prefix
//! cannot make a node allocate without bound.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Errors from decoding bytes that did not come from a matching encoder.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A frame's length prefix exceeds the allowed maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
}

/// Encodes `value` with postcard.
///
/// # Panics
/// Only if `T`'s `Serialize` impl itself fails, which derived impls of the types in
/// this workspace never do (postcard has no unsupported-type cases for them).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Start with room for a typical small message or log entry: growing a Vec from
    // zero byte by byte costs several reallocations per value.
    let mut out = Vec::with_capacity(ENCODE_CAPACITY_HINT);
    encode_into(value, &mut out);
    out
}

/// Appends the postcard encoding of `value` to `out` (the bytes [`encode`] returns),
/// so a caller can reuse one buffer for many values.
///
/// # Panics
/// As [`encode`].
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    encode_to_sink(value, out);
}

/// Appends the postcard encoding of `value` to any [`postcard_format::Sink`] (the
/// default of `StateMachine::encode_command`).
///
/// # Panics
/// As [`encode`].
pub fn encode_to_sink<T: Serialize + ?Sized>(value: &T, out: &mut impl postcard_format::Sink) {
    postcard::serialize_with_flavor::<T, SinkTail<'_, _>, ()>(value, SinkTail(out))
        .expect("postcard encoding of an in-memory value cannot fail");
}

/// A postcard output that appends to a [`postcard_format::Sink`] (for a `Vec`, with
/// `extend_from_slice`: postcard's own `to_extend` goes through `Extend<u8>` one byte
/// at a time, which made encoding dominate the cost of a replicated log entry).
struct SinkTail<'a, W: postcard_format::Sink>(&'a mut W);

impl<W: postcard_format::Sink> postcard::ser_flavors::Flavor for SinkTail<'_, W> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.put_byte(byte);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.put_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Hand-written encoders for the hottest types (a replicated command is encoded for
/// every log entry) write postcard's format with these, byte for byte what the serde
/// encoder writes; each such encoder has a test comparing it with [`encode`].
pub mod postcard_format {
    /// Where hand-written encoders write: a `Vec`, or a caller's fixed buffer.
    pub trait Sink {
        /// Appends one byte.
        fn put_byte(&mut self, byte: u8);
        /// Appends `bytes`.
        fn put_slice(&mut self, bytes: &[u8]);
    }

    impl Sink for Vec<u8> {
        #[inline]
        fn put_byte(&mut self, byte: u8) {
            self.push(byte);
        }
        #[inline]
        fn put_slice(&mut self, bytes: &[u8]) {
            self.extend_from_slice(bytes);
        }
    }

    /// A `u64`, `u32`, `usize` or enum variant index: LEB128 varint.
    #[inline]
    pub fn put_varint(out: &mut impl Sink, mut value: u64) {
        while value >= 0x80 {
            out.put_byte(value as u8 | 0x80);
            value >>= 7;
        }
        out.put_byte(value as u8);
    }

    /// Bytes [`put_varint`] writes for `value`.
    #[inline]
    pub fn varint_len(value: u64) -> usize {
        (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
    }

    /// A string: its length as a varint, then its bytes.
    #[inline]
    pub fn put_str(out: &mut impl Sink, s: &str) {
        put_varint(out, s.len() as u64);
        out.put_slice(s.as_bytes());
    }

    /// Bytes [`put_str`] writes for `s`.
    #[inline]
    pub fn str_len(s: &str) -> usize {
        varint_len(s.len() as u64) + s.len()
    }
}

/// Initial buffer size for [`encode`].
const ENCODE_CAPACITY_HINT: usize = 64;

/// Decodes a value that [`encode`] produced. Trailing bytes are an error: a message
/// that does not end where its type says is corrupt.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// Length of the frame header.
pub const FRAME_HEADER_BYTES: usize = 4;

/// Appends one frame (`u32` LE length, then the postcard bytes) to `out`.
///
/// Returns [`CodecError::FrameTooLarge`] instead of writing a frame the peer would reject.
pub fn encode_frame<T: Serialize + ?Sized>(
    value: &T,
    frame_bytes_max: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    // Encode in place behind a placeholder header, then fill the header in (or take
    // the frame back out if it is too large), rather than encoding into a temporary.
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    encode_into(value, out);
    let len = out.len() - start - FRAME_HEADER_BYTES;
    if len > frame_bytes_max || u32::try_from(len).is_err() {
        out.truncate(start);
        return Err(CodecError::FrameTooLarge {
            len,
            max: frame_bytes_max,
        });
    }
    out[start..start + FRAME_HEADER_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Incremental frame decoder for a byte stream: push what the socket gave, pop whole
/// frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    frame_bytes_max: usize,
}

impl FrameDecoder {
    /// A decoder that rejects frames longer than `frame_bytes_max`.
    pub fn new(frame_bytes_max: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            frame_bytes_max,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet consumed as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame decoded as `T`, `Ok(None)` if more bytes are needed.
    ///
    /// After an error the stream is out of sync and must be closed.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, CodecError> {
        if self.buf.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let mut header = [0u8; FRAME_HEADER_BYTES];
        header.copy_from_slice(&self.buf[..FRAME_HEADER_BYTES]);
        let len = u32::from_le_bytes(header) as usize;
        if len > self.frame_bytes_max {
            return Err(CodecError::FrameTooLarge {
                len,
                max: self.frame_bytes_max,
            });
        }
        if self.buf.len() < FRAME_HEADER_BYTES + len {
            return Ok(None);
        }
        let value = decode(&self.buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len]);
        self.buf.drain(..FRAME_HEADER_BYTES + len);
        value.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&7u32);
        bytes.push(0);
        assert!(matches!(
            decode::<u32>(&bytes),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_frame_is_rejected_on_both_sides() {
        let mut out = Vec::new();
        let big = vec![0u8; 100];
        assert!(matches!(
            encode_frame(&big, 10, &mut out),
            Err(CodecError::FrameTooLarge { .. })
        ));
        assert!(out.is_empty());
        let mut d = FrameDecoder::new(10);
        d.push(&1000u32.to_le_bytes());
        assert_eq!(
            d.next_frame::<Vec<u8>>(),
            Err(CodecError::FrameTooLarge { len: 1000, max: 10 })
        );
    }

    proptest! {
        /// The hand-written primitives write what postcard's serde encoder writes.
        #[test]
        fn postcard_format_matches_serde(n in any::<u64>(), s in ".{0,300}") {
            let mut out = Vec::new();
            postcard_format::put_varint(&mut out, n);
            postcard_format::put_str(&mut out, &s);
            prop_assert_eq!(out.len(), postcard_format::varint_len(n) + postcard_format::str_len(&s));
            prop_assert_eq!(out, encode(&(n, s)));
        }

        /// Frames survive any split of the stream into chunks.
        #[test]
        fn frames_roundtrip_across_arbitrary_chunking(
            msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..10),
            cut in 1usize..17,
        ) {
            let mut stream = Vec::new();
            for m in &msgs { encode_frame(m, 1024, &mut stream).unwrap(); }
            let mut d = FrameDecoder::new(1024);
            let mut got: Vec<Vec<u8>> = Vec::new();
            for chunk in stream.chunks(cut) {
                d.push(chunk);
                while let Some(m) = d.next_frame().unwrap() { got.push(m); }
            }
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(d.buffered(), 0);
        }
    }

    /// A frame of exactly `frame_bytes_max` bytes is written and read; one byte more
    /// is refused on both sides, and the refused frame leaves nothing behind in the
    /// output. `buffered` counts what is not yet consumed.
    #[test]
    fn a_frame_of_exactly_the_limit_passes_one_byte_more_is_refused() {
        let value = vec![7u8; 10]; // postcard: 1 length byte + 10 bytes
        let len = encode(&value).len();
        let mut out = vec![0xaa];
        encode_frame(&value, len, &mut out).expect("exactly the limit");
        assert_eq!(out.len(), 1 + FRAME_HEADER_BYTES + len);
        let err = encode_frame(&value, len - 1, &mut out).unwrap_err();
        assert!(matches!(err, CodecError::FrameTooLarge { .. }), "{err:?}");
        assert_eq!(
            out.len(),
            1 + FRAME_HEADER_BYTES + len,
            "nothing of it written"
        );

        let mut at_limit = FrameDecoder::new(len);
        at_limit.push(&out[1..]);
        at_limit.push(&[1, 2]);
        assert_eq!(at_limit.buffered(), FRAME_HEADER_BYTES + len + 2);
        assert_eq!(at_limit.next_frame::<Vec<u8>>().unwrap(), Some(value));
        assert_eq!(at_limit.buffered(), 2, "the next frame's first bytes");
        let mut below = FrameDecoder::new(len - 1);
        below.push(&out[1..]);
        let err = below.next_frame::<Vec<u8>>().unwrap_err();
        assert!(matches!(err, CodecError::FrameTooLarge { .. }), "{err:?}");
    }
}
