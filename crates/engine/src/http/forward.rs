//! One request to one upstream: dispatch over the pools, timeouts, error statuses, load and
//! stats bookkeeping, and relaying HTTP/1 upgrades (WebSocket, CONNECT).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{request, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::{grpc_failed, Outcome, ProxyBody, UpstreamBody};
use super::client::{H1Lease, MeshTarget, SendError, UpstreamError};
use super::error::ProxyError;
use super::headers::{prepare_request, prepare_response};
use super::replay::RequestBody;
use super::retry::{self, Attempt, Continuation, RetryState};
use super::HttpVersion;
use crate::balance::InFlight;
use crate::config::ServiceProtocol;
use crate::resilience::{RequestGuard, ServiceBreaker};
use crate::shared::Shared;
use crate::snapshot::ServiceRuntime;
use crate::stats::{HttpStats, TcpStats};
use crate::tcp::ConnectError;

/// Where and how one request goes, decided from the snapshot before any await.
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) version: HttpVersion,
    /// Until the response head; the route's request / backendRequest timeout.
    pub(crate) response_timeout: Option<Duration>,
    pub(crate) stats: Arc<HttpStats>,
    /// Balancer load of the picked endpoint (none for inbound and passthrough).
    pub(crate) in_flight: Option<InFlight>,
    /// Where a connection opened for this request counts.
    pub(crate) conn_stats: ConnStats,
    /// When the proxy took the request on (latency counts from here, injected delays included).
    pub(crate) started: Instant,
    /// The rule's retry policy with what a retry needs; `None` sends exactly once.
    pub(crate) retry: Option<Box<RetryState>>,
    /// The request's slot under its Service's `maxRequests`, held until the response ends.
    pub(crate) request_slot: Option<RequestGuard>,
}

/// Whose TCP metrics count an upstream connection opened for a request; looked up only
/// when one is opened (most requests reuse one).
pub(crate) enum ConnStats {
    /// Inbound: the accepted connection counts instead.
    Uncounted,
    /// The picked endpoint of this backend service.
    Endpoint(Arc<ServiceRuntime>),
    /// A passthrough target.
    Passthrough,
    /// The picked endpoint of this meshed backend service, over mTLS (see
    /// [`ServiceRuntime::is_meshed`]): HTTP/2 to the endpoint's proxy, which must prove
    /// the endpoint's SPIFFE id.
    MeshEndpoint(Arc<ServiceRuntime>),
}

impl ConnStats {
    /// The circuit breaker of the Service the request goes to, if it has one.
    pub(crate) fn breaker(&self) -> Option<&Arc<ServiceBreaker>> {
        match self {
            ConnStats::Endpoint(service) | ConnStats::MeshEndpoint(service) => {
                service.breaker.as_ref()
            }
            ConnStats::Uncounted | ConnStats::Passthrough => None,
        }
    }

    fn resolve(&self, shared: &Shared, addr: SocketAddr) -> Option<Arc<TcpStats>> {
        match self {
            ConnStats::Uncounted => None,
            ConnStats::Endpoint(service) => Some(shared.endpoint_tcp_stats(service, addr, false)),
            ConnStats::MeshEndpoint(service) => {
                Some(shared.endpoint_tcp_stats(service, addr, true))
            }
            ConnStats::Passthrough => Some(shared.passthrough_tcp_stats(addr)),
        }
    }
}

/// Pool timeouts from the snapshot in force when the request started.
#[derive(Clone, Copy)]
pub(crate) struct PoolTimeouts {
    pub(crate) connect: Duration,
    pub(crate) idle: Duration,
}

/// Why an attempt got no response head.
pub(crate) enum Failure {
    Upstream(UpstreamError),
    Timeout(Duration),
}

/// Rewrites the request for the upstream hop (hop-by-hop headers, URI form, Host or
/// `:authority`, with `fallback` when the request names no authority) and forwards it; a
/// Host that is not a valid authority is refused with 400.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn prepare_and_forward<F>(
    shared: &Arc<Shared>,
    mut parts: request::Parts,
    body: Incoming,
    target: Target,
    downstream: HttpVersion,
    timeouts: PoolTimeouts,
    upgrade: Option<OnUpgrade>,
    fallback: F,
) -> Response<ProxyBody>
where
    F: FnOnce() -> Option<Authority>,
{
    if prepare_request(&mut parts, target.version, fallback, upgrade.is_some()).is_err() {
        return refuse(
            Some(&target.stats),
            ProxyError::BadRequest,
            "invalid Host header",
        );
    }
    if let ConnStats::MeshEndpoint(service) = &target.conn_stats {
        if service.spec.protocol == ServiceProtocol::Http && target.version == HttpVersion::Http2 {
            // Carried over HTTP/2 between the proxies; the server proxy gives the
            // workload HTTP/1 back.
            parts.headers.insert(
                super::inbound::ORIG_PROTO,
                HeaderValue::from_static(super::inbound::ORIG_PROTO_HTTP1),
            );
        }
    }
    let mut target = target;
    let (body, retry) = match target.retry.take() {
        // Upgrades are relayed once: their bytes cannot be replayed.
        Some(mut state) if upgrade.is_none() => {
            let body = state.begin(&parts, body, target.started);
            (body, Some(state))
        }
        _ => (RequestBody::Incoming(body), None),
    };
    let req = Request::from_parts(parts, body);
    forward(shared, req, target, downstream, timeouts, upgrade, retry).await
}

/// Sends the (already prepared) request and turns the outcome into the downstream response.
/// `upgrade` is the downstream half of an upgrade the client asked for; when the upstream
/// agrees (101, or 2xx to CONNECT) both halves are spliced in a tracked task. With a
/// `retry` state, an outcome its policy retries continues in `retry::resume` (boxed: only
/// requests that are retried pay for the retry loop); everything else is answered here.
pub(crate) async fn forward(
    shared: &Arc<Shared>,
    req: Request<RequestBody>,
    target: Target,
    downstream: HttpVersion,
    timeouts: PoolTimeouts,
    upgrade: Option<OnUpgrade>,
    retry: Option<Box<RetryState>>,
) -> Response<ProxyBody> {
    let Target {
        addr,
        version,
        response_timeout,
        stats,
        in_flight,
        conn_stats,
        started,
        retry: _,
        request_slot,
    } = target;
    let is_connect = req.method() == Method::CONNECT;
    stats.request();
    let result = send_attempt(
        shared,
        addr,
        version,
        req,
        timeouts,
        &conn_stats,
        response_timeout,
    )
    .await;

    // Settle the attempt, then decide: answer, fail, or hand over to the retry loop.
    let next = match result {
        Err((failure, unsent)) => {
            if let Some(in_flight) = in_flight {
                failure.settle(in_flight);
            }
            match retry {
                Some(state) if state.may_retry_failure(&failure) => {
                    Next::Retry(state, Attempt::Failed(failure, unsent))
                }
                other => {
                    other.inspect(|state| state.finish());
                    Next::Fail(failure)
                }
            }
        }
        Ok((response, lease)) => {
            if let Some(in_flight) = in_flight {
                in_flight.finish(!response.status().is_server_error());
            }
            match retry {
                Some(state) if state.retries_response(&response) => {
                    Next::Retry(state, Attempt::RetryableResponse(response, lease))
                }
                other => {
                    other.inspect(|state| state.finish());
                    Next::Respond(response, lease)
                }
            }
        }
    };
    let (mut response, lease) = match next {
        Next::Respond(response, lease) => (response, lease),
        Next::Fail(failure) => return failure_response(&failure, addr, &stats, started),
        Next::Retry(state, attempt) => {
            let context = Continuation {
                addr,
                version,
                stats,
                conn_stats,
                started,
                request_slot,
                downstream,
                timeouts,
            };
            return Box::pin(retry::resume(shared, state, attempt, context)).await;
        }
    };
    let status = response.status();
    let latency = started.elapsed();
    let (upgraded, lease) = match upgrade {
        Some(downstream_half)
            if status == StatusCode::SWITCHING_PROTOCOLS || (is_connect && status.is_success()) =>
        {
            let upstream_half = hyper::upgrade::on(&mut response);
            // An upgraded connection belongs to the tunnel now, never to the pool.
            let mut upstream_conn = lease.map(H1Lease::into_conn);
            shared.drain.spawn(async move {
                // The connection hands its socket over once its driver has seen the 101
                // (or 2xx to CONNECT) through.
                if let Some(conn) = &mut upstream_conn {
                    poll_fn(|cx| conn.poll_drive(cx)).await;
                }
                match tokio::try_join!(downstream_half, upstream_half) {
                    Ok((down, up)) => {
                        let _ = tokio::io::copy_bidirectional(
                            &mut TokioIo::new(down),
                            &mut TokioIo::new(up),
                        )
                        .await;
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
            (true, None)
        }
        _ => (false, lease),
    };
    relay(
        response,
        lease,
        stats,
        latency,
        downstream,
        upgraded,
        request_slot,
    )
}

/// What becomes of a request after its first attempt.
enum Next {
    Respond(Response<Incoming>, Option<H1Lease>),
    Fail(Failure),
    /// The retry policy takes it from here.
    Retry(Box<RetryState>, Attempt),
}

/// The proxy's answer when an attempt got no response head, counted on `stats`.
pub(crate) fn failure_response(
    failure: &Failure,
    addr: SocketAddr,
    stats: &HttpStats,
    started: Instant,
) -> Response<ProxyBody> {
    let (error, message) = match failure {
        Failure::Timeout(limit) => (
            ProxyError::Timeout,
            format!("no response from {addr} within {}ms", limit.as_millis()),
        ),
        Failure::Upstream(e @ UpstreamError::Connect(cause)) => (
            ProxyError::of_upstream(e),
            format!("cannot connect to {addr}: {cause}"),
        ),
        Failure::Upstream(e @ UpstreamError::Exchange(cause)) => (
            ProxyError::of_upstream(e),
            format!("upstream {addr} failed before responding: {cause}"),
        ),
        Failure::Upstream(e @ UpstreamError::Overflow(limit)) => (
            ProxyError::of_upstream(e),
            format!(
                "circuit breaker open: {} reached for {addr}'s service",
                limit.reason()
            ),
        ),
    };
    stats.response(error.status().as_u16(), true, started.elapsed());
    error.response(message)
}

impl Failure {
    /// Records an attempt that got no response on its endpoint's load and health: a
    /// failure, unless the proxy's own circuit breaker stopped it before it left.
    pub(crate) fn settle(&self, in_flight: InFlight) {
        match self {
            Failure::Upstream(UpstreamError::Overflow(_)) => in_flight.cancel(),
            _ => in_flight.finish(false),
        }
    }
}

/// Hands an upstream response to the downstream: hop-by-hop headers stripped, the body
/// streamed, the outcome recorded on `stats` when the body ends (gRPC trailers count),
/// `request_slot` given back then.
pub(crate) fn relay(
    response: Response<Incoming>,
    lease: Option<H1Lease>,
    stats: Arc<HttpStats>,
    latency: Duration,
    downstream: HttpVersion,
    upgraded: bool,
    request_slot: Option<RequestGuard>,
) -> Response<ProxyBody> {
    let status = response.status();
    let failure = status.is_server_error() || grpc_failed(response.headers());
    let (mut parts, body) = response.into_parts();
    prepare_response(&mut parts, downstream, upgraded);
    let outcome = Outcome::new(stats, status.as_u16(), failure, latency, request_slot);
    Response::from_parts(
        parts,
        ProxyBody::Upstream(UpstreamBody::new(body, outcome, lease)),
    )
}

/// Sends one attempt to `addr`, bounded by `limit`; a connection opened for it counts
/// on `conn_stats`.
pub(crate) async fn send_attempt(
    shared: &Shared,
    addr: SocketAddr,
    version: HttpVersion,
    req: Request<RequestBody>,
    timeouts: PoolTimeouts,
    conn_stats: &ConnStats,
    limit: Option<Duration>,
) -> Result<(Response<Incoming>, Option<H1Lease>), (Failure, Option<Box<Request<RequestBody>>>)> {
    let tcp_stats = || conn_stats.resolve(shared, addr);
    let mesh = match conn_stats {
        ConnStats::MeshEndpoint(service) => {
            let identity = shared.identity.load_full();
            match (identity, service.identity_of(addr)) {
                (Some(identity), Some(expected)) => Some(MeshTarget {
                    identity,
                    expected: expected.clone(),
                }),
                // The identity went away after the request was routed (or the endpoint
                // has none): never fall back to plaintext for a meshed Service.
                _ => {
                    let error = std::io::Error::other(format!(
                        "no mTLS to {addr}: this proxy holds no workload identity"
                    ));
                    return Err((
                        Failure::Upstream(UpstreamError::Connect(ConnectError::Io(error))),
                        None,
                    ));
                }
            }
        }
        _ => None,
    };
    let breaker = conn_stats.breaker();
    let sent = async {
        match mesh {
            None => {
                shared
                    .pools
                    .send(addr, version, req, timeouts, &tcp_stats, breaker)
                    .await
            }
            Some(mesh) => {
                shared
                    .pools
                    .send_mesh(addr, version, req, timeouts, &tcp_stats, breaker, mesh)
                    .await
            }
        }
    };
    let split = |e: SendError| (Failure::Upstream(e.error), e.unsent);
    match limit {
        Some(limit) => match tokio::time::timeout(limit, sent).await {
            Ok(result) => result.map_err(split),
            Err(_) => Err((Failure::Timeout(limit), None)),
        },
        None => sent.await.map_err(split),
    }
}

/// Answers without contacting an upstream, counting the request against `stats` if any.
pub(crate) fn refuse(
    stats: Option<&HttpStats>,
    error: ProxyError,
    message: impl std::fmt::Display,
) -> Response<ProxyBody> {
    if let Some(stats) = stats {
        stats.request();
        stats.response(error.status().as_u16(), true, Duration::ZERO);
    }
    error.response(message)
}

/// A request refused by a local rate limit: 429 with `Retry-After`, counted on `stats`.
pub(crate) fn refuse_rate_limited(stats: &HttpStats, wait: Duration) -> Response<ProxyBody> {
    stats.request();
    stats.response(
        StatusCode::TOO_MANY_REQUESTS.as_u16(),
        false,
        Duration::ZERO,
    );
    super::error::rate_limited(wait)
}
