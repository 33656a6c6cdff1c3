//! Protocol detection on a fresh connection: the HTTP/2 preface, an HTTP/1 request line,
//! or anything else (opaque TCP). The bytes read to decide are replayed by [`Rewind`], so
//! whatever handles the connection next sees the stream from its first byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Instant;

#[cfg(test)]
mod tests;

/// The client connection preface of HTTP/2 with prior knowledge (RFC 9113 §3.4).
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Request methods that identify HTTP/1 by the first bytes. A fixed list rather than "any
/// token then a space": text protocols such as Redis (`SET k v`) also start that way.
const HTTP1_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Enough for the longest marker (the 24-byte preface); a first read may bring more.
const DETECT_BUFFER: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detected {
    Http1,
    Http2,
    /// Not HTTP, or the client said nothing within the detection timeout (server-first
    /// protocols such as SMTP or MySQL wait for the server to speak).
    Opaque,
}

/// Decides from the bytes seen so far; `None` means "could still be either, read more".
pub(crate) fn classify(prefix: &[u8]) -> Option<Detected> {
    if prefix.is_empty() {
        return None;
    }
    if prefix.len() >= H2_PREFACE.len() {
        if prefix.starts_with(H2_PREFACE) {
            return Some(Detected::Http2);
        }
    } else if H2_PREFACE.starts_with(prefix) {
        return None;
    }
    let mut undecided = false;
    for method in HTTP1_METHODS {
        if prefix.starts_with(method) {
            return Some(Detected::Http1);
        }
        if method.starts_with(prefix) {
            undecided = true;
        }
    }
    if undecided {
        None
    } else {
        Some(Detected::Opaque)
    }
}

/// Reads from `io` until the protocol is known, `timeout` elapses or the client closes.
/// Returns the verdict and the bytes consumed (to be replayed with [`Rewind`]). A silent
/// client, a close after some bytes, or a timeout with an undecided prefix all mean opaque.
pub(crate) async fn detect<I>(io: &mut I, timeout: Duration) -> io::Result<(Detected, Bytes)>
where
    I: AsyncRead + Unpin,
{
    let deadline = Instant::now() + timeout;
    let mut buf = BytesMut::with_capacity(DETECT_BUFFER);
    loop {
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Err(_elapsed) => return Ok((Detected::Opaque, buf.freeze())),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(0)) => {
                if buf.is_empty() {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                return Ok((Detected::Opaque, buf.freeze()));
            }
            Ok(Ok(_)) => {
                if let Some(detected) = classify(&buf) {
                    return Ok((detected, buf.freeze()));
                }
                if buf.len() >= DETECT_BUFFER {
                    // Unreachable with the markers above, but never read unbounded.
                    return Ok((Detected::Opaque, buf.freeze()));
                }
            }
        }
    }
}

/// A stream that first yields `prefix` (bytes already read during detection), then reads
/// from the inner stream. Writes go straight through.
pub(crate) struct Rewind<I> {
    prefix: Bytes,
    inner: I,
}

impl<I> Rewind<I> {
    pub(crate) fn new(prefix: Bytes, inner: I) -> Self {
        Self { prefix, inner }
    }

    /// A stream with nothing to replay.
    pub(crate) fn plain(inner: I) -> Self {
        Self {
            prefix: Bytes::new(),
            inner,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
