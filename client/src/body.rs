//! A streamed request body with a declared length: it reports that length to hyper (so
//! the request carries `Content-Length`, never chunked encoding) and fails the request
//! when the stream gives more or fewer bytes, or fails itself. The reason is also left
//! in a shared slot, so the caller can tell a body failure from a network one.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;
use http_body::{Body, Frame, SizeHint};

/// Where a failed body leaves its reason.
pub(crate) type FailureSlot = Arc<Mutex<Option<String>>>;

/// `stream` held to exactly `remaining` bytes.
pub(crate) struct Checked<S> {
    stream: Pin<Box<S>>,
    declared: u64,
    remaining: u64,
    done: bool,
    failed: FailureSlot,
}

impl<S> Checked<S> {
    pub(crate) fn new(stream: S, length: u64, failed: FailureSlot) -> Self {
        Self {
            stream: Box::pin(stream),
            declared: length,
            remaining: length,
            done: false,
            failed,
        }
    }

    fn fail(
        &mut self,
        kind: io::ErrorKind,
        reason: String,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.done = true;
        if let Ok(mut slot) = self.failed.lock() {
            slot.get_or_insert_with(|| reason.clone());
        }
        Poll::Ready(Some(Err(io::Error::new(kind, reason))))
    }
}

impl<S> Body for Checked<S>
where
    S: Stream<Item = Result<Bytes, io::Error>>,
{
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(this.stream.as_mut().poll_next(cx)) {
            Some(Ok(chunk)) => {
                let len = chunk.len() as u64;
                if len > this.remaining {
                    let declared = this.declared;
                    return this.fail(
                        io::ErrorKind::InvalidData,
                        format!("the stream gave more than the declared {declared} bytes"),
                    );
                }
                this.remaining -= len;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(e)) => this.fail(e.kind(), format!("the stream failed: {e}")),
            None if this.remaining > 0 => {
                let (short, declared) = (this.remaining, this.declared);
                this.fail(
                    io::ErrorKind::UnexpectedEof,
                    format!("the stream ended {short} bytes short of the declared {declared}"),
                )
            }
            None => {
                this.done = true;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> + use<> {
        let v: Vec<Result<Bytes, io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(v)
    }

    async fn collect(
        parts: &[&'static [u8]],
        length: u64,
    ) -> (Result<Bytes, io::Error>, Option<String>) {
        let slot = FailureSlot::default();
        let body = Checked::new(chunks(parts), length, slot.clone());
        assert_eq!(body.size_hint().exact(), Some(length));
        let got = body.collect().await.map(|c| c.to_bytes());
        let reason = slot.lock().expect("slot").clone();
        (got, reason)
    }

    #[tokio::test]
    async fn the_declared_length_is_enforced() {
        let (ok, none) = collect(&[b"abc", b"de"], 5).await;
        assert_eq!(ok.expect("exact"), Bytes::from_static(b"abcde"));
        assert_eq!(none, None);
        let (long, reason) = collect(&[b"abc", b"def"], 5).await;
        assert!(long.is_err());
        assert!(reason.expect("reason").contains("more than the declared 5"));
        let (short, reason) = collect(&[b"abc"], 5).await;
        assert!(short.is_err());
        assert!(reason.expect("reason").contains("2 bytes short"));
        let (empty, none) = collect(&[], 0).await;
        assert!(empty.expect("empty").is_empty() && none.is_none());
    }

    #[tokio::test]
    async fn a_stream_error_is_recorded() {
        let slot = FailureSlot::default();
        let s = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(io::Error::other("disk on fire")),
        ]);
        let got = Checked::new(s, 4, slot.clone()).collect().await;
        assert!(got.is_err());
        let reason = slot.lock().expect("slot").clone().expect("reason");
        assert!(reason.contains("disk on fire"), "{reason}");
    }
}
