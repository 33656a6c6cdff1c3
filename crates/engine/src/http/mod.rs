//! HTTP/1.1 and HTTP/2 proxying: the server side of accepted connections, the upstream
//! pools, and the request forwarding in between.

pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod error;
mod forward;
pub(crate) mod headers;
pub(crate) mod inbound;
pub(crate) mod outbound;
pub(crate) mod replay;
pub(crate) mod retry;
mod tunnel;

#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use self::body::ProxyBody;
use crate::shared::Shared;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum HttpVersion {
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (h2c).
    Http2,
}

/// Handles the requests of one downstream connection.
pub(crate) trait Handler: Send + Sync + 'static {
    /// How long an HTTP/1 client may take to send a request head (a slowloris guard), or
    /// `None` for clients the proxy trusts: the guard costs a timer per request.
    const HEADER_READ_TIMEOUT: Option<Duration>;

    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> impl std::future::Future<Output = Response<ProxyBody>> + Send;
}

/// Serves one downstream connection until it closes. When the engine drains, HTTP/1
/// finishes the request in flight and closes; HTTP/2 sends GOAWAY and lets open streams end.
pub(crate) async fn serve<I, H>(shared: &Shared, io: I, version: HttpVersion, handler: Arc<H>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let io = TokioIo::new(io);
    let service = service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler.handle(req).await) }
    });
    let result = match version {
        HttpVersion::Http1 => {
            let mut builder = http1::Builder::new();
            if let Some(timeout) = H::HEADER_READ_TIMEOUT {
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(timeout);
            }
            let mut connection = pin!(builder.serve_connection(io, service).with_upgrades());
            tokio::select! {
                // The connection first: it is what wakes this task nearly every time.
                biased;
                result = connection.as_mut() => result,
                _ = shared.drain.signaled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        }
        HttpVersion::Http2 => {
            let mut connection = pin!(http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .serve_connection(io, service));
            tokio::select! {
                biased;
                result = connection.as_mut() => result,
                _ = shared.drain.signaled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "downstream connection ended with an error");
    }
}
