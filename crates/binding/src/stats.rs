//! Stats snapshots as plain JS objects. Counters are f64 so JS reads numbers exactly up to 2^53.

use mesh_engine::stats::{
    AuthzProtocol, Direction, RetryResult, StatsSnapshot, LATENCY_BUCKETS_MS,
};
use napi_derive::napi;

#[napi(object)]
pub struct BindingStats {
    /// Upper bounds of the latency buckets in ms; each histogram has one more (+Inf) bucket.
    pub latency_buckets_ms: Vec<f64>,
    pub http: Vec<BindingHttpStats>,
    pub tcp: Vec<BindingTcpStats>,
    pub circuit_breakers: Vec<BindingCircuitBreakerStats>,
    pub endpoint_health: Vec<BindingEndpointHealthStats>,
    pub tls_refusals: Vec<BindingTlsRefusalStats>,
    pub authz_denials: Vec<BindingAuthzDenialStats>,
}

/// Requests (`inbound_http_authz_deny_total`) and opaque TCP connections
/// (`inbound_tcp_authz_deny_total`) an AuthorizationPolicy refused.
#[napi(object)]
pub struct BindingAuthzDenialStats {
    #[napi(ts_type = "'http' | 'tcp'")]
    pub protocol: String,
    /// The port's listen address, as in its HTTP metrics.
    pub authority: String,
    pub dst_service: String,
    /// `namespace/name` of the deny policy that matched; "" when no allow policy did.
    pub policy: String,
    pub tls: bool,
    pub client_id: String,
    pub count: f64,
}

/// Connections an inbound port closed before serving them (`inbound_tls_refused_total`).
#[napi(object)]
pub struct BindingTlsRefusalStats {
    /// The port's listen address, as in its HTTP metrics.
    pub authority: String,
    pub dst_service: String,
    #[napi(ts_type = "'plaintext' | 'no_identity' | 'handshake'")]
    pub reason: String,
    pub count: f64,
}

/// One Service's circuit breaker.
#[napi(object)]
pub struct BindingCircuitBreakerStats {
    pub dst_service: String,
    /// Whether each limit is reached right now (`circuit_open`).
    pub connections_open: bool,
    pub pending_requests_open: bool,
    pub requests_open: bool,
    /// Requests refused by each limit so far.
    pub connections_overflow: f64,
    pub pending_requests_overflow: f64,
    pub requests_overflow: f64,
    /// Upstream connections open and requests in flight now.
    pub connections: f64,
    pub requests: f64,
}

/// Outlier ejection of one endpoint of a Service.
#[napi(object)]
pub struct BindingEndpointHealthStats {
    pub dst_service: String,
    pub target_addr: String,
    pub ejected: bool,
    pub ejections_total: f64,
}

#[napi(object)]
pub struct BindingHttpStats {
    #[napi(ts_type = "'inbound' | 'outbound'")]
    pub direction: String,
    pub authority: String,
    pub dst_service: String,
    pub route: String,
    pub tls: bool,
    /// Inbound over mTLS: the client's SPIFFE id; "" otherwise.
    pub client_id: String,
    pub requests: f64,
    pub responses: Vec<BindingResponseStats>,
    pub retries: BindingRetryStats,
}

/// `retry_total` by result: retries sent, and retries wanted but not made (and why).
#[napi(object)]
pub struct BindingRetryStats {
    pub retried: f64,
    pub budget_exhausted: f64,
    pub not_replayable: f64,
    pub attempts_exhausted: f64,
}

fn retry_stats(counts: &[(RetryResult, u64)]) -> BindingRetryStats {
    let of = |wanted: RetryResult| {
        counts
            .iter()
            .find(|(result, _)| *result == wanted)
            .map_or(0.0, |(_, n)| *n as f64)
    };
    BindingRetryStats {
        retried: of(RetryResult::Retried),
        budget_exhausted: of(RetryResult::BudgetExhausted),
        not_replayable: of(RetryResult::NotReplayable),
        attempts_exhausted: of(RetryResult::AttemptsExhausted),
    }
}

#[napi(object)]
pub struct BindingResponseStats {
    pub status_code: u32,
    #[napi(ts_type = "'success' | 'failure'")]
    pub classification: String,
    pub count: f64,
    /// Non-cumulative counts per bucket (last is +Inf).
    pub latency_buckets: Vec<f64>,
    pub latency_sum_ms: f64,
}

#[napi(object)]
pub struct BindingTcpStats {
    #[napi(ts_type = "'inbound' | 'outbound'")]
    pub direction: String,
    pub dst_service: String,
    pub target_addr: String,
    pub tls: bool,
    /// Inbound over mTLS: the client's SPIFFE id; "" otherwise.
    pub client_id: String,
    pub open_total: f64,
    pub open_connections: f64,
    pub close_total: f64,
    pub read_bytes: f64,
    pub write_bytes: f64,
}

fn direction(d: Direction) -> String {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
    .to_string()
}

impl BindingStats {
    pub fn from_engine(s: StatsSnapshot) -> Self {
        BindingStats {
            latency_buckets_ms: LATENCY_BUCKETS_MS.to_vec(),
            http: s
                .http
                .into_iter()
                .map(|h| BindingHttpStats {
                    direction: direction(h.labels.direction),
                    authority: h.labels.authority,
                    dst_service: h.labels.dst_service,
                    route: h.labels.route,
                    tls: h.labels.tls,
                    client_id: h.labels.client_id,
                    requests: h.requests as f64,
                    retries: retry_stats(&h.retries),
                    responses: h
                        .responses
                        .into_iter()
                        .map(|r| BindingResponseStats {
                            status_code: u32::from(r.status_code),
                            classification: if r.failure { "failure" } else { "success" }
                                .to_string(),
                            count: r.count as f64,
                            latency_buckets: r
                                .latency_buckets
                                .into_iter()
                                .map(|b| b as f64)
                                .collect(),
                            latency_sum_ms: r.latency_sum_ms,
                        })
                        .collect(),
                })
                .collect(),
            tcp: s
                .tcp
                .into_iter()
                .map(|t| BindingTcpStats {
                    direction: direction(t.labels.direction),
                    dst_service: t.labels.dst_service,
                    target_addr: t.labels.target_addr,
                    tls: t.labels.tls,
                    client_id: t.labels.client_id,
                    open_total: t.open_total as f64,
                    open_connections: t.open_connections as f64,
                    close_total: t.close_total as f64,
                    read_bytes: t.read_bytes as f64,
                    write_bytes: t.write_bytes as f64,
                })
                .collect(),
            circuit_breakers: s
                .breakers
                .into_iter()
                .map(|b| BindingCircuitBreakerStats {
                    dst_service: b.service,
                    connections_open: b.open[0],
                    pending_requests_open: b.open[1],
                    requests_open: b.open[2],
                    connections_overflow: b.overflows[0] as f64,
                    pending_requests_overflow: b.overflows[1] as f64,
                    requests_overflow: b.overflows[2] as f64,
                    connections: b.connections as f64,
                    requests: b.requests as f64,
                })
                .collect(),
            endpoint_health: s
                .endpoint_health
                .into_iter()
                .map(|h| BindingEndpointHealthStats {
                    dst_service: h.service,
                    target_addr: h.addr.to_string(),
                    ejected: h.ejected,
                    ejections_total: h.ejections_total as f64,
                })
                .collect(),
            tls_refusals: s
                .tls_refusals
                .into_iter()
                .map(|r| BindingTlsRefusalStats {
                    authority: r.labels.authority,
                    dst_service: r.labels.dst_service,
                    reason: r.reason.as_str().to_string(),
                    count: r.count as f64,
                })
                .collect(),
            authz_denials: s
                .authz_denials
                .into_iter()
                .map(|d| BindingAuthzDenialStats {
                    protocol: match d.labels.protocol {
                        AuthzProtocol::Http => "http",
                        AuthzProtocol::Tcp => "tcp",
                    }
                    .to_string(),
                    authority: d.labels.authority,
                    dst_service: d.labels.dst_service,
                    policy: d.labels.policy,
                    tls: d.labels.tls,
                    client_id: d.labels.client_id,
                    count: d.count as f64,
                })
                .collect(),
        }
    }
}
