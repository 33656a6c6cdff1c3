//! Retries of one request under its rule's policy: the attempt loop, what makes a failure
//! retryable, replay of the request body, the budget, backoff, and a fresh endpoint pick
//! for every retry.
//!
//! Only rules with a retry policy come here (see `forward::prepare_and_forward`): their
//! first attempt runs in the ordinary forwarding path with a [`RetryState`] beside it, and
//! [`resume`] takes over when that attempt's outcome is retried. Every other request is
//! sent exactly once without any of this.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{request, Method, Request, Response, Uri, Version};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::body::{ProxyBody, UpstreamBody};
use super::client::{H1Lease, UpstreamError};
use super::error::is_grpc;
use super::forward::{failure_response, relay, send_attempt, ConnStats, Failure, PoolTimeouts};
use super::replay::{Replay, ReplayedBody, RequestBody};
use super::HttpVersion;
use crate::balance::{nanos_of, PickContext};
use crate::resilience::retry::GRPC_UNAVAILABLE;
use crate::resilience::{RequestGuard, RetryPolicy};
use crate::shared::Shared;
use crate::snapshot::ServiceRuntime;
use crate::stats::{HttpStats, RetryResult};

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

/// The request head, kept for the attempts after the first: the URI and every header
/// copied into one buffer of length-prefixed fields. A plain clone would share the
/// downstream connection's read buffer (header values are slices of it), which then could
/// not be reused for the next request: every retried rule's request would cost a fresh
/// read buffer instead of one small copy.
pub(super) struct Head {
    method: Method,
    version: Version,
    /// `len uri`, then `len name len value` per header; lengths are u32 little-endian,
    /// a value's with the top bit set when the value is sensitive (never HPACK-indexed).
    fields: Bytes,
    headers: usize,
}

impl Head {
    pub(super) fn of(parts: &request::Parts) -> Self {
        let size = 64
            + parts
                .headers
                .iter()
                .map(|(name, value)| 8 + name.as_str().len() + value.len())
                .sum::<usize>();
        let mut fields = Vec::with_capacity(size);
        // The URI is written in place (its Display), its length patched in after.
        fields.extend_from_slice(&[0; 4]);
        let _ = write!(fields, "{}", parts.uri);
        let uri_len = (fields.len() - 4) as u32;
        fields[..4].copy_from_slice(&uri_len.to_le_bytes());
        for (name, value) in &parts.headers {
            push_field(&mut fields, name.as_str().as_bytes(), false);
            push_field(&mut fields, value.as_bytes(), value.is_sensitive());
        }
        Self {
            method: parts.method.clone(),
            version: parts.version,
            fields: Bytes::from(fields),
            headers: parts.headers.len(),
        }
    }

    /// The request again, with `body`. The fields were valid when copied, so parsing them
    /// back cannot fail; a field that somehow did not parse is left out.
    pub(super) fn request(&self, body: RequestBody) -> Request<RequestBody> {
        let mut fields = Fields {
            bytes: &self.fields,
            at: 0,
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.version_mut() = self.version;
        if let Some(uri) = fields
            .next()
            .and_then(|(uri, _)| Uri::from_maybe_shared(uri).ok())
        {
            *req.uri_mut() = uri;
        }
        let headers = req.headers_mut();
        headers.reserve(self.headers);
        while let (Some((name, _)), Some((value, sensitive))) = (fields.next(), fields.next()) {
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(&name),
                HeaderValue::from_maybe_shared(value),
            ) {
                value.set_sensitive(sensitive);
                headers.append(name, value);
            }
        }
        req
    }
}

const SENSITIVE: u32 = 1 << 31;

fn push_field(buffer: &mut Vec<u8>, field: &[u8], sensitive: bool) {
    let flag = if sensitive { SENSITIVE } else { 0 };
    buffer.extend_from_slice(&(field.len() as u32 | flag).to_le_bytes());
    buffer.extend_from_slice(field);
}

/// Reads back the fields [`push_field`] wrote, as slices of the shared buffer.
struct Fields<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Iterator for Fields<'_> {
    /// The field and whether it was marked sensitive.
    type Item = (Bytes, bool);

    fn next(&mut self) -> Option<(Bytes, bool)> {
        let start = self.at.checked_add(4)?;
        let prefix = u32::from_le_bytes(self.bytes.get(self.at..start)?.try_into().ok()?);
        let end = start.checked_add((prefix & !SENSITIVE) as usize)?;
        if end > self.bytes.len() {
            return None;
        }
        self.at = end;
        Some((self.bytes.slice(start..end), prefix & SENSITIVE != 0))
    }
}

/// The outcome of an attempt that may be retried.
pub(crate) enum Attempt {
    /// A response to hand to the client.
    Done(Response<Incoming>, Option<H1Lease>),
    /// A response the policy retries (listed status, gRPC UNAVAILABLE).
    RetryableResponse(Response<Incoming>, Option<H1Lease>),
    /// No response head; `unsent` holds the request if none of it left.
    Failed(Failure, Option<Box<Request<RequestBody>>>),
}

/// What a request with a retry policy carries beyond its first attempt. Boxed (a small
/// allocation) so the first attempt runs in the ordinary forwarding future.
pub(crate) struct RetryState {
    context: RetryContext,
    grpc: bool,
    /// The method may be sent again after the request may have reached the upstream.
    method_allows: bool,
    source: Source,
    /// Only a replayable request keeps its head; others retry with what comes back.
    head: Option<Head>,
    deadline: Option<Instant>,
}

/// Where the retries of a request go and how they are counted and answered.
pub(crate) struct Continuation {
    pub(crate) addr: SocketAddr,
    pub(crate) version: HttpVersion,
    pub(crate) stats: Arc<HttpStats>,
    pub(crate) conn_stats: ConnStats,
    pub(crate) started: Instant,
    pub(crate) request_slot: Option<RequestGuard>,
    pub(crate) downstream: HttpVersion,
    pub(crate) timeouts: PoolTimeouts,
}

impl RetryState {
    /// The retry state of a request routed to a rule with a retry policy (one small
    /// allocation, carried in its `Target`).
    pub(crate) fn new(context: RetryContext) -> Box<RetryState> {
        Box::new(RetryState {
            context,
            grpc: false,
            method_allows: false,
            source: Source::Unavailable,
            head: None,
            deadline: None,
        })
    }

    /// Sets up the retries of the prepared request: deposits into the budget, decides how
    /// later attempts get a body and returns the body for the first attempt.
    pub(crate) fn begin(
        &mut self,
        parts: &request::Parts,
        body: Incoming,
        started: Instant,
    ) -> RequestBody {
        let policy = &self.context.policy;
        policy.budget.deposit_at(nanos_of(started));
        self.grpc = is_grpc(&parts.headers);
        self.method_allows = policy.allows_method(&parts.method, self.grpc);
        let first_body = if body.is_end_stream() {
            self.source = Source::Empty;
            RequestBody::Incoming(body)
        } else if !self.method_allows || body.size_hint().lower() > policy.max_request_bytes() {
            self.source = Source::Unavailable;
            RequestBody::Incoming(body)
        } else {
            let (body, replay) = Replay::record(body, policy.max_request_bytes());
            self.source = Source::Recorded(replay);
            body
        };
        self.head = match self.source {
            Source::Unavailable => None,
            _ => Some(Head::of(parts)),
        };
        self.deadline = self.context.request_timeout.map(|limit| started + limit);
        first_body
    }

    /// Whether the policy retries this response (a listed status, gRPC UNAVAILABLE).
    pub(crate) fn retries_response(&self, response: &Response<Incoming>) -> bool {
        self.context.policy.retries_status(response.status())
            || (self.grpc && grpc_unavailable(response))
    }

    /// Whether a failed attempt may lead to another: not when the proxy's own circuit
    /// breaker stopped it (another attempt would only add load).
    pub(crate) fn may_retry_failure(&self, failure: &Failure) -> bool {
        !matches!(failure, Failure::Upstream(UpstreamError::Overflow(_)))
    }

    /// No more attempts: stop keeping the body.
    pub(crate) fn finish(&self) {
        if let Source::Recorded(replay) = &self.source {
            replay.discard();
        }
    }

    /// The request for the next attempt: the one that never left, or a replay.
    fn next_request(
        &self,
        unsent: Option<Box<Request<RequestBody>>>,
    ) -> Option<Request<RequestBody>> {
        if let Some(req) = unsent {
            return Some(*req);
        }
        if !self.method_allows {
            return None;
        }
        match (&self.source, &self.head) {
            (Source::Empty, Some(head)) => {
                Some(head.request(RequestBody::Replay(Box::new(ReplayedBody::empty()))))
            }
            (Source::Recorded(replay), Some(head)) => replay
                .replay()
                .map(|body| head.request(RequestBody::Replay(Box::new(body)))),
            _ => None,
        }
    }

    fn timed_out(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// 504 at the request timeout, whatever the attempt in flight was doing.
    fn timeout_response(&self, to: &Continuation) -> Response<ProxyBody> {
        self.finish();
        let limit = self.context.request_timeout.unwrap_or_default();
        failure_response(&Failure::Timeout(limit), to.addr, &to.stats, to.started)
    }
}

/// Continues a request whose first attempt came back retryable: retries (each on a
/// freshly picked endpoint, after a backoff) until one is not retried, or the attempts,
/// the budget, replayability or the request timeout run out; the client sees the last
/// outcome.
pub(crate) async fn resume(
    shared: &Arc<Shared>,
    state: Box<RetryState>,
    first: Attempt,
    mut to: Continuation,
) -> Response<ProxyBody> {
    let policy = Arc::clone(&state.context.policy);
    let mut attempt = first;
    let mut retries = 0u32;
    loop {
        let (failed_response, failure, unsent) = match attempt {
            Attempt::Done(response, lease) => {
                state.finish();
                return relay(
                    response,
                    lease,
                    to.stats,
                    to.started.elapsed(),
                    to.downstream,
                    false,
                    to.request_slot,
                );
            }
            Attempt::RetryableResponse(response, lease) => (Some((response, lease)), None, None),
            Attempt::Failed(failure, unsent) => {
                if state.timed_out() {
                    // The whole request's time is up, not just this attempt's.
                    return state.timeout_response(&to);
                }
                (None, Some(failure), unsent)
            }
        };
        let give_up = |result: RetryResult,
                       failed_response: Option<(Response<Incoming>, Option<H1Lease>)>,
                       failure: Option<Failure>,
                       to: Continuation| {
            to.stats.retry(result);
            state.finish();
            match (failed_response, failure) {
                (Some((response, lease)), _) => relay(
                    response,
                    lease,
                    to.stats,
                    to.started.elapsed(),
                    to.downstream,
                    false,
                    to.request_slot,
                ),
                (None, Some(failure)) => failure_response(&failure, to.addr, &to.stats, to.started),
                (None, None) => unreachable!("an attempt either answered or failed"),
            }
        };

        if retries >= policy.attempts() {
            return give_up(RetryResult::AttemptsExhausted, failed_response, failure, to);
        }
        let Some(retry_request) = state.next_request(unsent) else {
            return give_up(RetryResult::NotReplayable, failed_response, failure, to);
        };
        let endpoint = {
            let balancer = &state.context.service.balancer;
            let header_value = balancer
                .hash_header()
                .and_then(|name| retry_request.headers().get(name))
                .map(|value| value.as_bytes());
            balancer
                .pick(&PickContext {
                    header_value,
                    client_ip: state.context.client_ip,
                })
                .cloned()
        };
        let Some(endpoint) = endpoint else {
            return give_up(RetryResult::NotReplayable, failed_response, failure, to);
        };
        if !policy.budget.try_withdraw() {
            return give_up(RetryResult::BudgetExhausted, failed_response, failure, to);
        }
        to.stats.retry(RetryResult::Retried);
        retries += 1;

        let backoff = bounded(policy.backoff(retries), state.deadline);
        match failed_response {
            Some((response, lease)) => {
                let drain = drain(response, lease);
                let drain_time = bounded(backoff.max(DRAIN_TIME), state.deadline);
                let _ = tokio::join!(
                    tokio::time::sleep(backoff),
                    tokio::time::timeout(drain_time, drain)
                );
            }
            None if !backoff.is_zero() => tokio::time::sleep(backoff).await,
            None => {}
        }

        to.addr = endpoint.addr;
        let Ok(limit) = attempt_limit(state.deadline, state.context.attempt_timeout) else {
            // Out of time before this attempt left: the endpoint saw nothing.
            return state.timeout_response(&to);
        };
        let in_flight = endpoint.start();
        attempt = match send_attempt(
            shared,
            to.addr,
            to.version,
            retry_request,
            to.timeouts,
            &to.conn_stats,
            limit,
        )
        .await
        {
            Ok((response, lease)) => {
                in_flight.finish(!response.status().is_server_error());
                if state.retries_response(&response) {
                    Attempt::RetryableResponse(response, lease)
                } else {
                    Attempt::Done(response, lease)
                }
            }
            Err((failure, unsent)) => {
                failure.settle(in_flight);
                if !state.may_retry_failure(&failure) {
                    state.finish();
                    return failure_response(&failure, to.addr, &to.stats, to.started);
                }
                Attempt::Failed(failure, unsent)
            }
        };
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
