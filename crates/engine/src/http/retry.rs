//! Retries of one request under its rule's policy: the attempt loop, what makes a failure
//! retryable, replay of the request body, the budget, backoff, and a fresh endpoint pick
//! for every retry.
//!
//! Only rules with a retry policy come here (see `forward::prepare_and_forward`); every
//! other request is sent exactly once without any of this.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{request, HeaderMap, Method, Request, Response, Uri, Version};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::body::{ProxyBody, UpstreamBody};
use super::client::{H1Lease, UpstreamError};
use super::error::is_grpc;
use super::forward::{failure_response, relay, send_attempt, Failure, PoolTimeouts, Target};
use super::replay::{Replay, ReplayedBody, RequestBody};
use super::HttpVersion;
use crate::balance::PickContext;
use crate::resilience::retry::GRPC_UNAVAILABLE;
use crate::resilience::RetryPolicy;
use crate::shared::Shared;
use crate::snapshot::ServiceRuntime;
use crate::stats::RetryResult;

/// A failed attempt's response body is read to its end (so its HTTP/1 connection can be
/// reused) only up to this size; larger ones close the connection.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// ...and for at least this long (or the backoff, if longer).
const DRAIN_TIME: Duration = Duration::from_millis(10);

/// What a retry needs beyond the first attempt's target.
pub(crate) struct RetryContext {
    pub(crate) policy: Arc<RetryPolicy>,
    /// The backend Service every retry picks a new endpoint from.
    pub(crate) service: Arc<ServiceRuntime>,
    pub(crate) client_ip: Option<IpAddr>,
    /// All attempts and backoffs together (the rule's `request` timeout).
    pub(crate) request_timeout: Option<Duration>,
    /// One attempt (the rule's `backendRequest` timeout).
    pub(crate) attempt_timeout: Option<Duration>,
}

/// How attempts after the first get a body.
enum Source {
    /// The request had none.
    Empty,
    /// Recorded while the first attempt streamed it.
    Recorded(Replay),
    /// Not replayable: too large, or the method may not be sent twice. Only an attempt
    /// that never left (a connect failure) is retried, with the request it got back.
    Unavailable,
}

/// The request head, kept for the attempts after the first.
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    fn of(parts: &request::Parts) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
        }
    }

    fn request(&self, body: RequestBody) -> Request<RequestBody> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// The outcome of one attempt, as far as retrying is concerned.
enum Attempt {
    /// A response to hand to the client.
    Done(Response<Incoming>, Option<H1Lease>),
    /// A response the policy retries (listed status, gRPC UNAVAILABLE).
    RetryableResponse(Response<Incoming>, Option<H1Lease>),
    /// No response head; `unsent` holds the request if none of it left.
    Failed(Failure, Option<Request<RequestBody>>),
}

/// Sends a prepared request with retries under `target.retry`'s policy. The client sees
/// one response: the first that is not retried, or the last failure when retries run out
/// (attempts, budget, replayability or the request timeout).
pub(crate) async fn forward_with_retries(
    shared: &Arc<Shared>,
    parts: request::Parts,
    body: Incoming,
    mut target: Target,
    downstream: HttpVersion,
    timeouts: PoolTimeouts,
) -> Response<ProxyBody> {
    let context = target
        .retry
        .take()
        .expect("only requests with a retry policy come here");
    let Target {
        mut addr,
        version,
        stats,
        mut in_flight,
        conn_stats,
        started,
        mut request_slot,
        ..
    } = target;
    let policy = &context.policy;
    policy.budget.deposit();
    stats.request();

    let grpc = is_grpc(&parts.headers);
    let method_allows = policy.allows_method(&parts.method, grpc);
    let (first_body, source) = if body.is_end_stream() {
        (RequestBody::Incoming(body), Source::Empty)
    } else if !method_allows || body.size_hint().lower() > policy.max_request_bytes() {
        (RequestBody::Incoming(body), Source::Unavailable)
    } else {
        let (body, replay) = Replay::record(body, policy.max_request_bytes());
        (body, Source::Recorded(replay))
    };
    // Only a replayable request needs its head again; others retry with what comes back.
    let head = match source {
        Source::Unavailable => None,
        _ => Some(Head::of(&parts)),
    };
    let deadline = context.request_timeout.map(|limit| started + limit);
    let mut next = Request::from_parts(parts, first_body);
    let mut retries = 0u32;

    loop {
        let limit = match attempt_limit(deadline, context.attempt_timeout) {
            Ok(limit) => limit,
            Err(()) => {
                drop(in_flight);
                return give_up_timeout(&source, &context, addr, &stats, started);
            }
        };
        let attempt =
            match send_attempt(shared, addr, version, next, timeouts, &conn_stats, limit).await {
                Ok((response, lease)) => {
                    let status = response.status();
                    if let Some(in_flight) = in_flight.take() {
                        in_flight.finish(!status.is_server_error());
                    }
                    if policy.retries_status(status) || (grpc && grpc_unavailable(&response)) {
                        Attempt::RetryableResponse(response, lease)
                    } else {
                        Attempt::Done(response, lease)
                    }
                }
                Err((failure, unsent)) => {
                    if let Some(in_flight) = in_flight.take() {
                        failure.settle(in_flight);
                    }
                    if let Failure::Upstream(UpstreamError::Overflow(_)) = failure {
                        // The proxy's own circuit breaker: another attempt only adds load.
                        discard(&source);
                        return failure_response(&failure, addr, &stats, started);
                    }
                    Attempt::Failed(failure, unsent)
                }
            };
        let (failed_response, failure, unsent) = match attempt {
            Attempt::Done(response, lease) => {
                discard(&source);
                return relay(
                    response,
                    lease,
                    stats,
                    started.elapsed(),
                    downstream,
                    false,
                    request_slot.take(),
                );
            }
            Attempt::RetryableResponse(response, lease) => (Some((response, lease)), None, None),
            Attempt::Failed(failure, unsent) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // The whole request's time is up, not just this attempt's.
                    return give_up_timeout(&source, &context, addr, &stats, started);
                }
                (None, Some(failure), unsent)
            }
        };
        let mut give_up = |result: RetryResult,
                           failed_response: Option<(Response<Incoming>, Option<H1Lease>)>,
                           failure: Option<Failure>| {
            stats.retry(result);
            discard(&source);
            match (failed_response, failure) {
                (Some((response, lease)), _) => relay(
                    response,
                    lease,
                    stats.clone(),
                    started.elapsed(),
                    downstream,
                    false,
                    request_slot.take(),
                ),
                (None, Some(failure)) => failure_response(&failure, addr, &stats, started),
                (None, None) => unreachable!("an attempt either answered or failed"),
            }
        };

        if retries >= policy.attempts() {
            return give_up(RetryResult::AttemptsExhausted, failed_response, failure);
        }
        // The request for the next attempt: the one that never left, or a replay.
        let retry_request = match unsent {
            Some(req) => Some(req),
            None if method_allows => match (&source, &head) {
                (Source::Empty, Some(head)) => {
                    Some(head.request(RequestBody::Replay(ReplayedBody::empty())))
                }
                (Source::Recorded(replay), Some(head)) => replay
                    .replay()
                    .map(|body| head.request(RequestBody::Replay(body))),
                _ => None,
            },
            None => None,
        };
        let Some(retry_request) = retry_request else {
            return give_up(RetryResult::NotReplayable, failed_response, failure);
        };
        let endpoint = {
            let balancer = &context.service.balancer;
            let header_value = balancer
                .hash_header()
                .and_then(|name| retry_request.headers().get(name))
                .map(|value| value.as_bytes());
            balancer
                .pick(&PickContext {
                    header_value,
                    client_ip: context.client_ip,
                })
                .cloned()
        };
        let Some(endpoint) = endpoint else {
            return give_up(RetryResult::NotReplayable, failed_response, failure);
        };
        if !policy.budget.try_withdraw() {
            return give_up(RetryResult::BudgetExhausted, failed_response, failure);
        }
        stats.retry(RetryResult::Retried);
        retries += 1;

        let backoff = bounded(policy.backoff(retries), deadline);
        match failed_response {
            Some((response, lease)) => {
                let drain = drain(response, lease);
                let drain_time = bounded(backoff.max(DRAIN_TIME), deadline);
                let _ = tokio::join!(
                    tokio::time::sleep(backoff),
                    tokio::time::timeout(drain_time, drain)
                );
            }
            None if !backoff.is_zero() => tokio::time::sleep(backoff).await,
            None => {}
        }
        addr = endpoint.addr;
        in_flight = Some(endpoint.start());
        next = retry_request;
    }
}

/// The time one attempt may take: the attempt timeout, cut to what is left of the
/// request timeout; `Err` when nothing is left.
fn attempt_limit(
    deadline: Option<Instant>,
    attempt_timeout: Option<Duration>,
) -> Result<Option<Duration>, ()> {
    let Some(deadline) = deadline else {
        return Ok(attempt_timeout);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(());
    }
    Ok(Some(attempt_timeout.map_or(left, |limit| limit.min(left))))
}

/// `wait`, cut to what is left before `deadline`.
fn bounded(wait: Duration, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(deadline) => wait.min(deadline.saturating_duration_since(Instant::now())),
        None => wait,
    }
}

/// 504 at the request timeout, whatever the attempt in flight was doing.
fn give_up_timeout(
    source: &Source,
    context: &RetryContext,
    addr: std::net::SocketAddr,
    stats: &crate::stats::HttpStats,
    started: Instant,
) -> Response<ProxyBody> {
    discard(source);
    let limit = context.request_timeout.unwrap_or_default();
    failure_response(&Failure::Timeout(limit), addr, stats, started)
}

fn discard(source: &Source) {
    if let Source::Recorded(replay) = source {
        replay.discard();
    }
}

/// A trailers-only gRPC response (the status in the headers) saying UNAVAILABLE.
fn grpc_unavailable(response: &Response<Incoming>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == GRPC_UNAVAILABLE)
}

/// Reads a retried attempt's response body to its end, so its HTTP/1 connection goes back
/// to the pool; HTTP/2 bodies and large ones are dropped (a stream reset, a closed
/// connection).
async fn drain(response: Response<Incoming>, lease: Option<H1Lease>) {
    let body = response.into_body();
    let Some(lease) = lease else {
        return;
    };
    if body
        .size_hint()
        .upper()
        .is_none_or(|upper| upper > DRAIN_LIMIT)
    {
        return;
    }
    let mut body = ProxyBody::Upstream(UpstreamBody::discarded(body, Some(lease)));
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return;
        }
    }
}
