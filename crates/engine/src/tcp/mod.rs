//! Opaque TCP: upstream connects (shared with HTTP) and byte-counting bidirectional copy.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::balance::PickContext;
use crate::http::client::MeshTarget;
use crate::listener::ListenerId;
use crate::shared::Shared;
use crate::snapshot::ServiceRuntime;
use crate::stats::TcpConnGuard;

#[cfg(test)]
mod tests;

/// Copy buffer per direction; larger than tokio's 8 KiB default to cut syscalls on bulk
/// transfers while staying small for many idle tunnels.
const COPY_BUFFER: usize = 16 * 1024;

/// Why an upstream TCP connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Timeout(Duration),
    Io(io::Error),
}

impl ConnectError {
    /// A copy for everyone who waited on the same failed attempt (`io::Error` is not `Clone`).
    pub(crate) fn duplicate(&self) -> ConnectError {
        match self {
            ConnectError::Timeout(after) => ConnectError::Timeout(*after),
            ConnectError::Io(e) => ConnectError::Io(io::Error::new(e.kind(), e.to_string())),
        }
    }

    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, ConnectError::Timeout(_))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Timeout(after) => {
                write!(f, "connect timed out after {}ms", after.as_millis())
            }
            ConnectError::Io(e) => e.fmt(f),
        }
    }
}

/// Connects with a deadline and disables Nagle (proxied request/response traffic is
/// latency-bound; the peers already batch their writes).
pub(crate) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ConnectError::Timeout(timeout)),
        Ok(Err(e)) => return Err(ConnectError::Io(e)),
        Ok(Ok(stream)) => stream,
    };
    // Best effort: a failure only costs latency.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Copies both ways until both sides have closed. Counting is the caller's: wrap the client
/// in [`Metered`].
pub(crate) async fn splice<C, U>(mut client: C, mut upstream: U) -> io::Result<(u64, u64)>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, COPY_BUFFER, COPY_BUFFER)
        .await
}

/// Connects to `target` and splices `client` to it. On a failed connect the client is closed.
/// Counting is the caller's (a [`Metered`] client), so the open counts whatever happens.
pub(crate) async fn forward<C>(client: C, target: SocketAddr, connect_timeout: Duration)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let upstream = match connect(target, connect_timeout).await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::debug!(%target, error = %e, "tcp forward: connect failed");
            return;
        }
    };
    if let Err(e) = splice(client, upstream).await {
        tracing::debug!(%target, error = %e, "tcp forward ended with an error");
    }
}

/// Serves one connection accepted on the `tcp_outbound` listener `id`.
pub(crate) async fn serve_outbound_connection(
    shared: Arc<Shared>,
    id: ListenerId,
    peer: SocketAddr,
    stream: TcpStream,
) {
    let Some(snapshot) = shared.snapshot.load_full() else {
        return;
    };
    let mut same_address = snapshot
        .tcp_outbound
        .iter()
        .filter(|listener| listener.listen == id.configured);
    let Some(listener) = same_address.nth(id.ordinal) else {
        return;
    };
    let Some(service) = snapshot.service(&listener.service) else {
        return;
    };
    let connect_timeout = Duration::from_millis(snapshot.timeouts.connect_ms);
    forward_to_service(&shared, service, stream, peer, connect_timeout).await;
}

/// Opaque forwarding to an endpoint of `service` picked by its balancer (ring_hash hashes
/// the client address). The endpoint's load counts the connect; a failed connect closes
/// the client.
pub(crate) async fn forward_to_service<C>(
    shared: &Shared,
    service: &ServiceRuntime,
    client: C,
    peer: SocketAddr,
    connect_timeout: Duration,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let context = PickContext {
        header_value: None,
        client_ip: Some(peer.ip()),
    };
    let Some(endpoint) = service.balancer.pick(&context) else {
        tracing::debug!(service = %service.key, "tcp: no endpoint available; closing the client connection");
        return;
    };
    let target = endpoint.addr;
    // A TCP Service's connection limit counts the proxied connections themselves.
    let _slot = match &service.breaker {
        None => None,
        Some(breaker) => match breaker.try_open_connection() {
            Some(slot) => Some(slot),
            None => {
                tracing::debug!(service = %service.key, "tcp: circuit breaker at maxConnections; closing the client connection");
                return;
            }
        },
    };
    // A meshed Service is mTLS or nothing: never plaintext to a proxy that expects mTLS.
    let mesh = match (service.identity_of(target), shared.identity.load_full()) {
        (None, _) => None,
        (Some(expected), Some(identity)) => Some(MeshTarget {
            identity,
            expected: expected.clone(),
        }),
        (Some(_), None) => {
            tracing::debug!(%target, service = %service.key, "tcp: no workload identity for mTLS; closing the client connection");
            return;
        }
    };
    let open = shared
        .endpoint_tcp_stats(service, target, mesh.is_some())
        .open();
    let client = Metered::new(client, Some(open), Peer::Client);
    let in_flight = endpoint.start();
    let upstream = match connect(target, connect_timeout).await {
        Ok(upstream) => upstream,
        Err(e) => {
            in_flight.finish(false);
            tracing::debug!(%target, service = %service.key, error = %e, "tcp: connect failed");
            return;
        }
    };
    let spliced = match &mesh {
        None => {
            in_flight.finish(true);
            splice(client, upstream).await
        }
        Some(mesh) => match crate::tls::connect_mesh(upstream, mesh, &[], connect_timeout).await {
            Ok(tls) => {
                in_flight.finish(true);
                splice(client, tls).await
            }
            Err(e) => {
                in_flight.finish(false);
                tracing::debug!(%target, service = %service.key, error = %e, "tcp: mTLS failed");
                return;
            }
        },
    };
    if let Err(e) = spliced {
        tracing::debug!(%target, error = %e, "tcp forward ended with an error");
    }
}

/// Which end of the proxy a [`Metered`] stream faces. TCP metrics take the proxy's view of
/// the client: `read` bytes came from the client (and go upstream), `write` bytes went to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// An accepted connection: reads are the client's bytes.
    Client,
    /// A connection the proxy opened: reads are bytes for the client, writes came from it.
    Upstream,
}

/// A stream that counts its open/close (the guard, dropped with the stream) and its bytes as
/// they flow, so a long-lived connection shows progress. Without a guard it counts nothing.
pub(crate) struct Metered<I> {
    inner: I,
    open: Option<TcpConnGuard>,
    peer: Peer,
}

impl<I> Metered<I> {
    pub(crate) fn new(inner: I, open: Option<TcpConnGuard>, peer: Peer) -> Self {
        Self { inner, open, peer }
    }

    /// Bytes read from the inner stream.
    fn count_read(&self, bytes: usize) {
        if let Some(open) = &self.open {
            match self.peer {
                Peer::Client => open.stats().add_read(bytes as u64),
                Peer::Upstream => open.stats().add_write(bytes as u64),
            }
        }
    }

    /// Bytes written to the inner stream.
    fn count_write(&self, bytes: usize) {
        if let Some(open) = &self.open {
            match self.peer {
                Peer::Client => open.stats().add_write(bytes as u64),
                Peer::Upstream => open.stats().add_read(bytes as u64),
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Metered<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.count_read(read);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Metered<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled {
            self.count_write(written);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = polled {
            self.count_write(written);
        }
        polled
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
