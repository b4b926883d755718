//! Bodies between our [`ByteStream`] and the SDK's: streamed parts, streamed responses, and
//! a reader that cuts a stream into parts of an exact size.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream as SdkStream;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body::{Body, Frame, SizeHint};

use crate::store::ByteStream;

/// A request body streamed from a [`ByteStream`] of known length: never buffered whole,
/// and (as it cannot be replayed) never retried by the SDK.
pub(super) struct StreamedBody {
    // The SDK wants a `Sync` body; the mutex is never contended (`poll_frame` has `&mut`).
    stream: Mutex<ByteStream>,
    size: u64,
}

impl StreamedBody {
    pub(super) fn sdk_stream(stream: ByteStream, size: u64) -> SdkStream {
        SdkStream::from_body_1_x(Self {
            stream: Mutex::new(stream),
            size,
        })
    }
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let stream = self
            .get_mut()
            .stream
            .get_mut()
            .unwrap_or_else(|p| p.into_inner());
        stream
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.size)
    }
}

/// A response body as our stream.
pub(super) fn from_sdk(body: SdkStream) -> ByteStream {
    Box::pin(futures::stream::unfold(body, |mut body| async move {
        body.next()
            .await
            .map(|item| (item.map_err(io::Error::other), body))
    }))
}

/// Cuts a stream into pieces of exactly `size` bytes (the last may be shorter).
pub(super) struct PartReader {
    stream: ByteStream,
    leftover: Bytes,
    done: bool,
}

impl PartReader {
    pub(super) fn new(stream: ByteStream) -> Self {
        Self {
            stream,
            leftover: Bytes::new(),
            done: false,
        }
    }

    /// The next `size` bytes, fewer at the end of the stream, `None` after it.
    pub(super) async fn next_part(&mut self, size: usize) -> io::Result<Option<Bytes>> {
        let mut buf = BytesMut::new();
        loop {
            if !self.leftover.is_empty() {
                let take = self.leftover.len().min(size - buf.len());
                buf.extend_from_slice(&self.leftover.split_to(take));
            }
            if buf.len() == size {
                return Ok(Some(buf.freeze()));
            }
            if self.done {
                break;
            }
            match self.stream.next().await.transpose()? {
                Some(chunk) if buf.is_empty() && chunk.len() == size => return Ok(Some(chunk)),
                Some(chunk) => self.leftover = chunk,
                None => self.done = true,
            }
        }
        Ok((!buf.is_empty()).then(|| buf.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: &[&'static [u8]]) -> ByteStream {
        let items: Vec<io::Result<Bytes>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Box::pin(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn parts_have_the_exact_size_whatever_the_chunks() {
        let mut r = PartReader::new(stream(&[b"ab", b"", b"cdefg", b"h", b"ijk"]));
        let mut parts = Vec::new();
        while let Some(p) = r.next_part(3).await.expect("read") {
            parts.push(p);
        }
        assert_eq!(parts, [&b"abc"[..], b"def", b"ghi", b"jk"]);
        assert_eq!(r.next_part(3).await.expect("read"), None);
    }

    #[tokio::test]
    async fn an_empty_stream_has_no_parts() {
        let mut r = PartReader::new(stream(&[]));
        assert_eq!(r.next_part(3).await.expect("read"), None);
    }
}
