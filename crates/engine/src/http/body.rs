//! The response body the proxy serves: a streamed upstream body (never buffered) that
//! records the response's outcome when the stream ends, or a short proxy-made body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::client::H1Lease;
use crate::resilience::RequestGuard;
use crate::stats::HttpStats;

pub(crate) enum ProxyBody {
    Empty,
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

impl ProxyBody {
    pub(crate) fn text(text: String) -> Self {
        ProxyBody::Full(Some(Bytes::from(text)))
    }
}

/// What to record for one response once its stream is over (per Linkerd: latency to the
/// response head, classification at the end so gRPC trailers count).
pub(crate) struct Outcome {
    stats: Arc<HttpStats>,
    status: u16,
    failure: bool,
    latency: Duration,
    /// The request's slot under its Service's `maxRequests`: in flight until the body ends.
    _request_slot: Option<RequestGuard>,
}

impl Outcome {
    pub(crate) fn new(
        stats: Arc<HttpStats>,
        status: u16,
        failure: bool,
        latency: Duration,
        request_slot: Option<RequestGuard>,
    ) -> Self {
        Self {
            stats,
            status,
            failure,
            latency,
            _request_slot: request_slot,
        }
    }

    pub(crate) fn record(self) {
        self.stats.response(self.status, self.failure, self.latency);
    }
}

/// True when a `grpc-status` header or trailer says anything but OK.
pub(crate) fn grpc_failed(headers: &HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() != b"0")
}

/// An upstream response body in flight: records the outcome when it ends (or is dropped)
/// and hands an HTTP/1 connection back to its pool once the body was read to the end.
pub(crate) struct UpstreamBody {
    inner: Incoming,
    outcome: Option<Outcome>,
    lease: Option<H1Lease>,
}

impl UpstreamBody {
    pub(crate) fn new(inner: Incoming, outcome: Outcome, lease: Option<H1Lease>) -> Self {
        Self {
            inner,
            outcome: Some(outcome),
            lease,
        }
    }

    /// A body nobody will see (the response of an attempt that is retried), read only so
    /// its HTTP/1 connection can go back to the pool; nothing is recorded.
    pub(crate) fn discarded(inner: Incoming, lease: Option<H1Lease>) -> Self {
        Self {
            inner,
            outcome: None,
            lease,
        }
    }

    /// `clean`: the stream reached its end; otherwise it failed (the upstream reset it).
    fn finish(&mut self, clean: bool) {
        if let Some(mut outcome) = self.outcome.take() {
            outcome.failure |= !clean;
            outcome.record();
        }
        if let Some(lease) = self.lease.take() {
            if clean {
                lease.release();
            }
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // hyper stops polling once `is_end_stream` says so (content-length reached, HEAD,
        // 204): that is a clean end. Otherwise the client went away mid-body: not the
        // upstream's failure, but the HTTP/1 connection is mid-message and cannot be reused.
        if self.inner.is_end_stream() {
            self.finish(true);
        } else {
            self.lease = None;
            if let Some(outcome) = self.outcome.take() {
                outcome.record();
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Full(data) => Poll::Ready(data.take().map(|bytes| Ok(Frame::data(bytes)))),
            ProxyBody::Upstream(body) => {
                let polled = match &mut body.lease {
                    // An HTTP/1 body comes out of the connection this task drives: only the
                    // driver feeds it, and the driver registers the waker with the socket.
                    Some(lease) => {
                        let mut nobody = Context::from_waker(Waker::noop());
                        match Pin::new(&mut body.inner).poll_frame(&mut nobody) {
                            Poll::Ready(polled) => polled,
                            Poll::Pending => {
                                // Ready means the connection ended, which also ends the body.
                                let _ = lease.poll_drive(cx);
                                ready!(Pin::new(&mut body.inner).poll_frame(&mut nobody))
                            }
                        }
                    }
                    None => ready!(Pin::new(&mut body.inner).poll_frame(cx)),
                };
                match &polled {
                    Some(Ok(frame)) => {
                        if let Some(trailers) = frame.trailers_ref() {
                            if grpc_failed(trailers) {
                                if let Some(outcome) = &mut body.outcome {
                                    outcome.failure = true;
                                }
                            }
                        }
                        if body.inner.is_end_stream() {
                            body.finish(true);
                        }
                    }
                    Some(Err(_)) => body.finish(false),
                    None => body.finish(true),
                }
                Poll::Ready(polled)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(data) => data.is_none(),
            ProxyBody::Upstream(body) => body.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            ProxyBody::Upstream(body) => body.inner.size_hint(),
        }
    }
}
