//! Responses the proxy makes itself. They carry `x-mesh-error` so a client (or a person
//! with curl) can tell a proxy failure from an application's own 5xx.

use std::fmt;

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::HeaderMap;
use http::{Response, StatusCode};

use super::body::ProxyBody;
use super::client::UpstreamError;
use crate::resilience::Limit;

pub(crate) static MESH_ERROR: HeaderName = HeaderName::from_static("x-mesh-error");

/// Why the proxy answered instead of the upstream; the `x-mesh-error` header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyError {
    /// 400: no authority to route by, or one that is not a valid `host[:port]`.
    BadRequest,
    /// 404: the authority names no Service and passthrough is off.
    NoService,
    /// 502: the upstream refused or the name did not resolve.
    ConnectFailed,
    /// 502: no TCP connection within the connect timeout.
    ConnectTimeout,
    /// 502: the upstream failed or reset before a response head.
    UpstreamReset,
    /// 502: passthrough would connect back to this proxy.
    Loop,
    /// 501: a request the proxy cannot relay (CONNECT over HTTP/2 inbound).
    NotImplemented,
    /// 503: the service has no endpoint to send to.
    NoEndpoint,
    /// 504: the route's request timeout elapsed before the response head.
    Timeout,
    /// 429: the rule's or the port's local rate limit is exhausted.
    RateLimited,
    /// 503: the Service's circuit breaker refused the request at this limit.
    CircuitOpen(Limit),
}

impl ProxyError {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            ProxyError::BadRequest => StatusCode::BAD_REQUEST,
            ProxyError::NoService => StatusCode::NOT_FOUND,
            ProxyError::ConnectFailed
            | ProxyError::ConnectTimeout
            | ProxyError::UpstreamReset
            | ProxyError::Loop => StatusCode::BAD_GATEWAY,
            ProxyError::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ProxyError::NoEndpoint | ProxyError::CircuitOpen(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            ProxyError::BadRequest => "bad-request",
            ProxyError::NoService => "no-service",
            ProxyError::ConnectFailed => "connect-failed",
            ProxyError::ConnectTimeout => "connect-timeout",
            ProxyError::UpstreamReset => "upstream-reset",
            ProxyError::Loop => "proxy-loop",
            ProxyError::NotImplemented => "not-implemented",
            ProxyError::NoEndpoint => "no-endpoint",
            ProxyError::Timeout => "timeout",
            ProxyError::RateLimited => "rate-limited",
            ProxyError::CircuitOpen(limit) => limit.reason(),
        }
    }

    pub(crate) fn of_upstream(error: &UpstreamError) -> Self {
        match error {
            UpstreamError::Connect(e) if e.is_timeout() => ProxyError::ConnectTimeout,
            UpstreamError::Connect(_) => ProxyError::ConnectFailed,
            UpstreamError::Exchange(_) => ProxyError::UpstreamReset,
            UpstreamError::Overflow(limit) => ProxyError::CircuitOpen(*limit),
        }
    }

    /// A short `text/plain` answer: `message` and a newline.
    pub(crate) fn response(self, message: impl fmt::Display) -> Response<ProxyBody> {
        let mut response = Response::new(ProxyBody::text(format!("{message}\n")));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(MESH_ERROR.clone(), HeaderValue::from_static(self.reason()));
        response
    }
}

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Is this a gRPC request (`application/grpc`, `application/grpc+proto`, ...)?
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// The answer to a request aborted by fault injection: `status` with `x-mesh-error:
/// fault-abort`, or for gRPC a trailers-only response.
pub(crate) fn injected_abort(status: StatusCode, grpc: bool) -> Response<ProxyBody> {
    let code = status.as_u16();
    let message = if grpc {
        format!("fault injected: HTTP {code}")
    } else {
        format!("fault injected: {code}")
    };
    answer(status, grpc, "fault-abort", &message)
}

/// 403 for a request an AuthorizationPolicy refused (`x-mesh-error: forbidden`); gRPC
/// clients get PERMISSION_DENIED.
pub(crate) fn forbidden(grpc: bool, message: &str) -> Response<ProxyBody> {
    answer(StatusCode::FORBIDDEN, grpc, "forbidden", message)
}

/// An answer in the upstream's place: `status` with `message` as a text body, or for gRPC
/// a trailers-only response (HTTP 200, `grpc-status` mapped from `status`, end of stream),
/// which is how a gRPC server reports an error without a message.
fn answer(
    status: StatusCode,
    grpc: bool,
    reason: &'static str,
    message: &str,
) -> Response<ProxyBody> {
    let reason = HeaderValue::from_static(reason);
    if !grpc {
        let mut response = Response::new(ProxyBody::text(format!("{message}\n")));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(MESH_ERROR.clone(), reason);
        return response;
    }
    let code = crate::resilience::grpc_status_of_http(status);
    let mut response = Response::new(ProxyBody::Empty);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(GRPC_STATUS.clone(), HeaderValue::from(u16::from(code)));
    if let Ok(message) = HeaderValue::from_str(&percent_encode_grpc_message(message)) {
        headers.insert(GRPC_MESSAGE.clone(), message);
    }
    headers.insert(MESH_ERROR.clone(), reason);
    response
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2): everything outside printable
/// ASCII, and `%` itself.
fn percent_encode_grpc_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// 429 from a local rate limit, with `Retry-After` (whole seconds until a token is back).
pub(crate) fn rate_limited(wait: std::time::Duration) -> Response<ProxyBody> {
    let seconds = crate::resilience::retry_after_seconds(wait);
    let mut response = ProxyError::RateLimited
        .response(format_args!("rate limit exceeded; retry after {seconds}s"));
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}
