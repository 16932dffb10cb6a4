//! Reading length-prefixed postcard frames ([`synod_core::codec`]) from a tokio
//! stream, with the frame size capped.

use serde::de::DeserializeOwned;
use serde::Serialize;
use synod_core::codec::{self, CodecError, FrameDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid frame (bad encoding, oversized).
    #[error("bad frame: {0}")]
    Codec(#[from] CodecError),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame ({0} bytes buffered)")]
    Truncated(usize),
}

/// Reads frames from `R`.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    decoder: FrameDecoder,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames of at most `frame_bytes_max` payload bytes from `inner`.
    pub fn new(inner: R, frame_bytes_max: usize) -> Self {
        FrameReader {
            inner,
            decoder: FrameDecoder::new(frame_bytes_max),
            buf: vec![0; 64 * 1024],
        }
    }

    /// The next frame, or `None` when the peer closed the connection cleanly
    /// between frames. Cancel-safe: bytes already read stay buffered.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(Some(frame));
            }
            let n = self.inner.read(&mut self.buf).await?;
            if n == 0 {
                return match self.decoder.buffered() {
                    0 => Ok(None),
                    partial => Err(FrameError::Truncated(partial)),
                };
            }
            self.decoder.push(&self.buf[..n]);
        }
    }
}

/// Encodes `frames` into one buffer and writes it with a single `write_all`.
pub async fn write_frames<W, T>(
    out: &mut W,
    frames: impl IntoIterator<Item = T>,
    frame_bytes_max: usize,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    buf.clear();
    for frame in frames {
        codec::encode_frame(&frame, frame_bytes_max, buf)?;
    }
    out.write_all(buf).await?;
    Ok(())
}
