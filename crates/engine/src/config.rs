//! The engine's input: a plain-data description of everything the proxy should do.
//!
//! TypeScript compiles user resources into this shape (through the binding's
//! `Binding*` mirror types); [`crate::snapshot::Snapshot::compile`] validates it fully
//! and turns it into the immutable runtime snapshot. Nothing here holds runtime state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the proxy does, as one versionless document. The engine assigns the version.
#[derive(Clone, Debug, Default)]
pub struct ProxyConfig {
    /// Free-form description of where this came from (file path, control plane), echoed back.
    pub source: String,
    pub inbound: Vec<InboundListener>,
    pub outbound: Option<OutboundListener>,
    pub tcp_outbound: Vec<TcpOutboundListener>,
    pub services: Vec<ServiceSpec>,
    pub http_routes: Vec<HttpRouteSpec>,
    /// Who may call the local workload: enforced on every inbound port.
    pub authorization: Vec<AuthorizationPolicySpec>,
    pub timeouts: GlobalTimeouts,
}

#[derive(Clone, Debug)]
pub struct GlobalTimeouts {
    /// How long `auto` waits for the first client bytes before treating the connection as opaque TCP.
    pub detect_ms: u64,
    /// Upstream TCP connect timeout; a timeout or refusal answers 502.
    pub connect_ms: u64,
    /// Idle upstream HTTP/1 connections are closed after this.
    pub pool_idle_ms: u64,
}

impl Default for GlobalTimeouts {
    fn default() -> Self {
        Self {
            detect_ms: 1000,
            connect_ms: 1000,
            pool_idle_ms: 90_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Sniff: HTTP/1 request line, the HTTP/2 preface, else opaque TCP (also when the client is silent).
    Auto,
    Http1,
    Http2,
    Grpc,
    Tcp,
}

/// Traffic to the local workload.
#[derive(Clone, Debug)]
pub struct InboundListener {
    /// Where the proxy listens. Port 0 binds an ephemeral port (reported by `Engine::listeners`).
    pub listen: SocketAddr,
    pub forward_to: SocketAddr,
    pub protocol: Protocol,
    /// Service name used in metric labels (`dst_service`) for inbound traffic.
    pub service: String,
    /// Local rate limit of the port: HTTP requests over it get 429, opaque TCP
    /// connections over it are closed.
    pub rate_limit: Option<RateLimitSpec>,
    /// Mesh mTLS on the port (ignored when `tls` is set).
    pub mtls: MtlsMode,
    /// Ingress TLS: the port terminates TLS with this certificate for clients from outside
    /// the mesh (no client certificate asked), and refuses plaintext.
    pub tls: Option<ServerTlsSpec>,
}

/// What an inbound port does with mesh mTLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MtlsMode {
    /// Only mTLS with a client certificate the trust bundle verifies; plaintext is refused,
    /// and so is every connection while the proxy holds no identity.
    Strict,
    /// A TLS ClientHello gets mTLS (when the proxy holds an identity), anything else is
    /// served as plaintext.
    #[default]
    Permissive,
    /// Plaintext only.
    Off,
}

/// A user-given server certificate, read by the engine when the config is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsSpec {
    /// PEM: the certificate, then its intermediates.
    pub certificate: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Traffic from the local workload: HTTP routed by authority, absolute-form and CONNECT.
#[derive(Clone, Debug)]
pub struct OutboundListener {
    pub listen: SocketAddr,
    /// Requests for an authority that names no Service go straight to that host:port.
    pub passthrough: bool,
}

/// An opaque local port that forwards every connection to one Service.
#[derive(Clone, Debug)]
pub struct TcpOutboundListener {
    pub listen: SocketAddr,
    /// `namespace/name` of a Service in `services`.
    pub service: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceProtocol {
    /// HTTP/1.1 to the endpoints.
    Http,
    /// HTTP/2 with prior knowledge (h2c) to the endpoints.
    Http2,
    /// HTTP/2 to the endpoints; failures classified by grpc-status too.
    Grpc,
    Tcp,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LoadBalancer {
    /// Peak-EWMA latency with power-of-two-choices (the default).
    Ewma,
    RoundRobin,
    /// Fewest in-flight requests of two random choices.
    LeastRequest,
    Random,
    /// Consistent hash of a request header, or of the client IP when the header is absent/unset.
    RingHash {
        header: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct ServiceSpec {
    pub name: String,
    pub namespace: String,
    /// The port clients address (`orders:80`).
    pub port: u16,
    pub protocol: ServiceProtocol,
    pub endpoints: Vec<EndpointSpec>,
    pub load_balancer: LoadBalancer,
    /// Limits on what the proxy puts on the Service, and outlier ejection; none when absent.
    pub circuit_breaker: Option<CircuitBreakerSpec>,
}

/// Circuit breaking and outlier ejection of one Service.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreakerSpec {
    /// Upstream connections open to the Service's endpoints at once.
    pub max_connections: u32,
    /// Requests waiting for a connection (at `max_connections`) at once.
    pub max_pending_requests: u32,
    /// Requests in flight to the Service at once.
    pub max_requests: u32,
    /// Failures in a row (5xx, connect failures, resets, timeouts) that eject an
    /// endpoint; 0 turns ejection off.
    pub consecutive_failures: u32,
    /// Base ejection time, multiplied by how often the endpoint was ejected recently.
    pub ejection_ms: u64,
    /// At most this share of the Service's endpoints is ejected at once.
    pub max_ejection_percent: f64,
}

impl Default for CircuitBreakerSpec {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            consecutive_failures: 5,
            ejection_ms: 30_000,
            max_ejection_percent: 50.0,
        }
    }
}

impl ServiceSpec {
    /// `namespace/name`: how routes and listeners refer to a service.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Debug)]
pub struct EndpointSpec {
    pub address: SocketAddr,
    pub weight: u32,
    pub labels: BTreeMap<String, String>,
    /// The SPIFFE id the endpoint's proxy serves mTLS with. When every endpoint of a
    /// Service has one and this proxy holds an identity, traffic to it is mTLS (HTTP over
    /// one multiplexed HTTP/2 connection per endpoint), and the server must prove this id.
    pub identity: Option<String>,
}

#[derive(Clone, Debug)]
pub struct HttpRouteSpec {
    pub name: String,
    pub namespace: String,
    /// `namespace/name` keys of the Services whose traffic this route handles.
    pub parents: Vec<String>,
    pub rules: Vec<HttpRuleSpec>,
}

#[derive(Clone, Debug, Default)]
pub struct HttpRuleSpec {
    /// Any one match selects the rule; empty means "match everything".
    pub matches: Vec<HttpMatchSpec>,
    /// Empty means "the parent service itself".
    pub backends: Vec<BackendRefSpec>,
    /// Whole request, all attempts; 504 when exceeded.
    pub request_timeout_ms: Option<u64>,
    /// One attempt to one endpoint; 504 when exceeded.
    pub backend_request_timeout_ms: Option<u64>,
    /// Injected delays and aborts (chaos testing); none when absent.
    pub faults: Option<FaultSpec>,
    /// Local rate limit of the rule (per parent Service); 429 when exceeded.
    pub rate_limit: Option<RateLimitSpec>,
    /// Retries of failed attempts; none when absent.
    pub retry: Option<RetrySpec>,
}

/// When and how often a rule's failed attempts are sent again.
///
/// Retried: connect failures (always: nothing was sent), and for requests whose method
/// allows it and whose body is replayable, the listed response statuses, resets before
/// a response, per-attempt (backendRequest) timeouts and, for gRPC, trailers-only
/// responses with grpc-status UNAVAILABLE.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySpec {
    /// Retries after the first attempt (1 to 100).
    pub attempts: u32,
    /// Response statuses that are retried.
    pub codes: Vec<u16>,
    /// Wait before the first retry; doubled per retry up to 1 s (or this, if longer), jittered.
    pub backoff_ms: u64,
    /// Retries may add at most this percentage of the rule's requests (over the window)...
    pub budget_percent: f64,
    /// ...plus this many retries per second whatever the traffic.
    pub min_retries_per_second: u32,
    /// The window the budget is computed over (1 s to 60 s).
    pub budget_window_ms: u64,
    /// Requests with larger bodies (or bodies still streaming when a retry is due) are not
    /// retried; up to this many bytes are kept for replay.
    pub max_request_bytes: u64,
    /// Also retry methods that are not idempotent (POST, PATCH, ...).
    pub non_idempotent: bool,
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            attempts: 1,
            codes: vec![502, 503, 504],
            backoff_ms: 25,
            budget_percent: 20.0,
            min_retries_per_second: 10,
            budget_window_ms: 10_000,
            max_request_bytes: 64 * 1024,
            non_idempotent: false,
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `requests_per_second`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitSpec {
    pub requests_per_second: f64,
    pub burst: u32,
}

/// Fault injection of one rule: a delay, an abort, or both (the delay comes first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    pub delay: Option<FaultDelaySpec>,
    pub abort: Option<FaultAbortSpec>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FaultDelaySpec {
    /// Share of requests delayed, 0 to 100.
    pub percent: f64,
    /// How long each delayed request waits before it is forwarded (at least 1 ms).
    pub fixed_ms: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FaultAbortSpec {
    /// Share of requests answered by the proxy instead of the upstream, 0 to 100.
    pub percent: f64,
    /// The HTTP status of the answer (200 to 599). gRPC requests get a trailers-only
    /// answer whose `grpc-status` is the gRPC mapping of this status.
    pub status: u16,
}

#[derive(Clone, Debug, Default)]
pub struct HttpMatchSpec {
    pub path: Option<PathMatch>,
    /// All must match.
    pub headers: Vec<HeaderMatch>,
    /// Upper-case method name.
    pub method: Option<String>,
}

#[derive(Clone, Debug)]
pub enum PathMatch {
    Exact(String),
    /// Gateway API semantics: element-wise prefix (`/api` matches `/api` and `/api/x`, not `/apix`).
    Prefix(String),
    /// Must match the whole path.
    Regex(String),
}

#[derive(Clone, Debug)]
pub struct HeaderMatch {
    /// Lower-case header name.
    pub name: String,
    pub value: HeaderValueMatch,
}

#[derive(Clone, Debug)]
pub enum HeaderValueMatch {
    Exact(String),
    /// Must match the whole value.
    Regex(String),
}

#[derive(Clone, Debug)]
pub struct BackendRefSpec {
    /// `namespace/name` of a Service.
    pub service: String,
    pub weight: u32,
}

/// One AuthorizationPolicy of the local workload's Service.
///
/// A request (or an opaque TCP connection) is denied when a rule of a `Deny` policy
/// matches it; otherwise, when the workload has any `Allow` policy, it is allowed only
/// if a rule of one of them matches. Without policies everything is allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthorizationPolicySpec {
    /// `namespace/name`: the `policy` label of denials, and errors.
    pub name: String,
    pub action: AuthorizationAction,
    /// A policy without rules matches nothing (an `Allow` one then denies everything).
    pub rules: Vec<AuthorizationRuleSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationAction {
    Allow,
    Deny,
}

/// Matches when a source matches (or `from` is empty) and an operation matches (or `to`
/// is empty).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthorizationRuleSpec {
    /// SPIFFE ids of clients proven by mTLS; a trailing `*` matches any suffix. Clients
    /// without a mesh certificate match only rules with no `from`.
    pub from: Vec<String>,
    /// Opaque TCP connections have no operation: a `Deny` rule is then decided by `from`
    /// alone, an `Allow` rule with operations never matches them.
    pub to: Vec<AuthorizationOperationSpec>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthorizationOperationSpec {
    /// Exact paths, `prefix*`, `*suffix` or `*`, matched against the normalised path
    /// (percent-decoded unreserved characters, dot segments resolved, slashes merged).
    /// Empty means any.
    pub paths: Vec<String>,
    /// Upper-case method names; empty means any.
    pub methods: Vec<String>,
}
