//! `Binding*` config objects: the TypeScript compiler's output shape, converted to the
//! engine's `ProxyConfig`. Addresses arrive as strings and are parsed here, so a bad one
//! is reported with its field path.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mesh_engine::config::*;
use napi_derive::napi;

#[napi(object)]
pub struct BindingProxyConfig {
    /// Where this config came from (a file path, the control plane); echoed in /config.
    pub source: String,
    pub inbound: Vec<BindingInbound>,
    pub outbound: Option<BindingOutbound>,
    pub tcp_outbound: Vec<BindingTcpOutbound>,
    pub services: Vec<BindingService>,
    pub http_routes: Vec<BindingHttpRoute>,
    /// The AuthorizationPolicies of the local workload's Service, enforced on every
    /// inbound port; none means everything is allowed.
    pub authorization: Option<Vec<BindingAuthorizationPolicy>>,
    pub timeouts: Option<BindingTimeouts>,
}

/// Deny policies refuse what their rules match; when any allow policy exists, only what
/// one of their rules matches is allowed. A policy without rules matches nothing.
#[napi(object)]
pub struct BindingAuthorizationPolicy {
    pub name: String,
    pub namespace: String,
    #[napi(ts_type = "'allow' | 'deny'")]
    pub action: String,
    pub rules: Vec<BindingAuthorizationRule>,
}

/// Matches when a source and an operation match; an empty list matches anything.
#[napi(object)]
pub struct BindingAuthorizationRule {
    /// SPIFFE ids proven by mesh mTLS; a trailing `*` matches any suffix.
    pub from: Vec<String>,
    pub to: Vec<BindingAuthorizationOperation>,
}

#[napi(object)]
pub struct BindingAuthorizationOperation {
    /// Exact paths, `prefix*`, `*suffix` or `*`; empty means any.
    pub paths: Vec<String>,
    /// Upper-case methods; empty means any.
    pub methods: Vec<String>,
}

#[napi(object)]
pub struct BindingTimeouts {
    pub detect_ms: Option<u32>,
    pub connect_ms: Option<u32>,
    pub pool_idle_ms: Option<u32>,
}

#[napi(object)]
pub struct BindingInbound {
    /// `IP:PORT`; port 0 binds an ephemeral port.
    pub listen: String,
    pub forward_to: String,
    #[napi(ts_type = "'auto' | 'http1' | 'http2' | 'grpc' | 'tcp'")]
    pub protocol: String,
    /// Service name for metric labels.
    pub service: String,
    /// HTTP requests over it get 429; opaque TCP connections over it are closed.
    pub rate_limit: Option<BindingRateLimit>,
    /// Mesh mTLS on the port (default permissive: mTLS for TLS clients once the proxy
    /// holds an identity, plaintext for the rest). Ignored when `tls` is set.
    #[napi(ts_type = "'strict' | 'permissive' | 'off'")]
    pub mtls: Option<String>,
    /// Ingress TLS termination with a user-given certificate; plaintext is refused.
    pub tls: Option<BindingServerTls>,
}

/// PEM files of an ingress port's certificate (with its intermediates) and key, read by
/// the engine when the config is applied.
#[napi(object)]
pub struct BindingServerTls {
    pub certificate_file: String,
    pub key_file: String,
}

#[napi(object)]
pub struct BindingRateLimit {
    pub requests_per_second: f64,
    pub burst: u32,
}

impl BindingRateLimit {
    fn into_engine(self) -> RateLimitSpec {
        RateLimitSpec {
            requests_per_second: self.requests_per_second,
            burst: self.burst,
        }
    }
}

#[napi(object)]
pub struct BindingOutbound {
    pub listen: String,
    /// Forward requests for hosts that name no Service straight to them (default true).
    pub passthrough: Option<bool>,
}

#[napi(object)]
pub struct BindingTcpOutbound {
    pub listen: String,
    /// `namespace/name`.
    pub service: String,
}

#[napi(object)]
pub struct BindingService {
    pub name: String,
    pub namespace: String,
    pub port: u32,
    #[napi(ts_type = "'http' | 'http2' | 'grpc' | 'tcp'")]
    pub protocol: String,
    pub endpoints: Vec<BindingEndpoint>,
    #[napi(ts_type = "'ewma' | 'round_robin' | 'least_request' | 'random' | 'ring_hash'")]
    pub load_balancer: String,
    /// ring_hash only: hash this request header (else the client IP).
    pub hash_header: Option<String>,
    pub circuit_breaker: Option<BindingCircuitBreaker>,
}

#[napi(object)]
pub struct BindingCircuitBreaker {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    /// Failures in a row that eject an endpoint (0: no ejection).
    pub consecutive_failures: u32,
    /// Base ejection time, growing for endpoints ejected again.
    pub ejection_ms: u32,
    /// At most this share of the endpoints is ejected at once.
    pub max_ejection_percent: f64,
}

#[napi(object)]
pub struct BindingEndpoint {
    pub address: String,
    pub weight: u32,
    pub labels: Option<BTreeMap<String, String>>,
    /// The SPIFFE id the endpoint's proxy serves mTLS with (`spiffe://...`), if meshed.
    pub identity: Option<String>,
}

#[napi(object)]
pub struct BindingHttpRoute {
    pub name: String,
    pub namespace: String,
    /// `namespace/name` of each parent Service.
    pub parents: Vec<String>,
    pub rules: Vec<BindingHttpRule>,
}

#[napi(object)]
pub struct BindingHttpRule {
    pub matches: Vec<BindingHttpMatch>,
    pub backends: Vec<BindingBackendRef>,
    pub request_timeout_ms: Option<u32>,
    pub backend_request_timeout_ms: Option<u32>,
    pub faults: Option<BindingFaults>,
    pub rate_limit: Option<BindingRateLimit>,
    pub retry: Option<BindingRetry>,
}

#[napi(object)]
pub struct BindingRetry {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Response statuses that are retried.
    pub codes: Vec<u32>,
    pub backoff_ms: u32,
    /// Retries may add at most this percentage of the rule's requests...
    pub budget_percent: f64,
    /// ...plus this many per second.
    pub min_retries_per_second: u32,
    pub budget_window_ms: u32,
    /// Larger request bodies are not retried.
    pub max_request_bytes: u32,
    /// Also retry POST, PATCH and other non-idempotent methods.
    pub non_idempotent: bool,
}

#[napi(object)]
pub struct BindingFaults {
    pub delay: Option<BindingFaultDelay>,
    pub abort: Option<BindingFaultAbort>,
}

#[napi(object)]
pub struct BindingFaultDelay {
    /// Share of requests delayed, 0 to 100.
    pub percent: f64,
    pub fixed_ms: u32,
}

#[napi(object)]
pub struct BindingFaultAbort {
    /// Share of requests answered with `status` instead of forwarded, 0 to 100.
    pub percent: f64,
    /// HTTP status 200-599 (gRPC requests get its gRPC mapping, trailers-only).
    pub status: u32,
}

#[napi(object)]
pub struct BindingHttpMatch {
    pub path: Option<BindingPathMatch>,
    pub headers: Vec<BindingHeaderMatch>,
    pub method: Option<String>,
}

#[napi(object)]
pub struct BindingPathMatch {
    #[napi(ts_type = "'Exact' | 'PathPrefix' | 'RegularExpression'")]
    pub kind: String,
    pub value: String,
}

#[napi(object)]
pub struct BindingHeaderMatch {
    pub name: String,
    #[napi(ts_type = "'Exact' | 'RegularExpression'")]
    pub kind: String,
    pub value: String,
}

#[napi(object)]
pub struct BindingBackendRef {
    /// `namespace/name`.
    pub service: String,
    pub weight: u32,
}

fn addr(path: &str, value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("{path}: expected IP:PORT, got {value:?}"))
}

fn port(path: &str, value: u32) -> Result<u16, String> {
    u16::try_from(value).map_err(|_| format!("{path}: expected a port 0-65535, got {value}"))
}

impl BindingProxyConfig {
    pub fn into_engine(self) -> Result<ProxyConfig, String> {
        let defaults = GlobalTimeouts::default();
        let timeouts = match self.timeouts {
            None => defaults,
            Some(t) => GlobalTimeouts {
                detect_ms: t.detect_ms.map_or(defaults.detect_ms, u64::from),
                connect_ms: t.connect_ms.map_or(defaults.connect_ms, u64::from),
                pool_idle_ms: t.pool_idle_ms.map_or(defaults.pool_idle_ms, u64::from),
            },
        };
        let inbound = self
            .inbound
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let path = format!("inbound[{i}]");
                Ok(InboundListener {
                    listen: addr(&format!("{path}.listen"), &l.listen)?,
                    forward_to: addr(&format!("{path}.forwardTo"), &l.forward_to)?,
                    protocol: match l.protocol.as_str() {
                        "auto" => Protocol::Auto,
                        "http1" => Protocol::Http1,
                        "http2" => Protocol::Http2,
                        "grpc" => Protocol::Grpc,
                        "tcp" => Protocol::Tcp,
                        other => {
                            return Err(format!(
                                "{path}.protocol: expected auto, http1, http2, grpc or tcp, got {other:?}"
                            ))
                        }
                    },
                    service: l.service,
                    rate_limit: l.rate_limit.map(BindingRateLimit::into_engine),
                    mtls: match l.mtls.as_deref() {
                        None | Some("permissive") => MtlsMode::Permissive,
                        Some("strict") => MtlsMode::Strict,
                        Some("off") => MtlsMode::Off,
                        Some(other) => {
                            return Err(format!(
                                "{path}.mtls: expected strict, permissive or off, got {other:?}"
                            ))
                        }
                    },
                    tls: l.tls.map(|tls| ServerTlsSpec {
                        certificate: tls.certificate_file.into(),
                        key: tls.key_file.into(),
                    }),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let outbound = self
            .outbound
            .map(|o| {
                Ok::<_, String>(OutboundListener {
                    listen: addr("outbound.listen", &o.listen)?,
                    passthrough: o.passthrough.unwrap_or(true),
                })
            })
            .transpose()?;
        let tcp_outbound = self
            .tcp_outbound
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(TcpOutboundListener {
                    listen: addr(&format!("outbound.tcp[{i}].listen"), &t.listen)?,
                    service: t.service,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let services = self
            .services
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.into_engine(&format!("services[{i}]")))
            .collect::<Result<Vec<_>, String>>()?;
        let http_routes = self
            .http_routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.into_engine(&format!("httpRoutes[{i}]")))
            .collect::<Result<Vec<_>, String>>()?;
        let authorization = self
            .authorization
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.into_engine(&format!("authorization[{i}]")))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ProxyConfig {
            source: self.source,
            inbound,
            outbound,
            tcp_outbound,
            services,
            http_routes,
            authorization,
            timeouts,
        })
    }
}

impl BindingAuthorizationPolicy {
    fn into_engine(self, path: &str) -> Result<AuthorizationPolicySpec, String> {
        let action = match self.action.as_str() {
            "allow" => AuthorizationAction::Allow,
            "deny" => AuthorizationAction::Deny,
            other => {
                return Err(format!(
                    "{path}.action: expected allow or deny, got {other:?}"
                ))
            }
        };
        Ok(AuthorizationPolicySpec {
            name: format!("{}/{}", self.namespace, self.name),
            action,
            rules: self
                .rules
                .into_iter()
                .map(|rule| AuthorizationRuleSpec {
                    from: rule.from,
                    to: rule
                        .to
                        .into_iter()
                        .map(|op| AuthorizationOperationSpec {
                            paths: op.paths,
                            methods: op.methods,
                        })
                        .collect(),
                })
                .collect(),
        })
    }
}

impl BindingService {
    fn into_engine(self, path: &str) -> Result<ServiceSpec, String> {
        let protocol = match self.protocol.as_str() {
            "http" => ServiceProtocol::Http,
            "http2" => ServiceProtocol::Http2,
            "grpc" => ServiceProtocol::Grpc,
            "tcp" => ServiceProtocol::Tcp,
            other => {
                return Err(format!(
                    "{path}.protocol: expected http, http2, grpc or tcp, got {other:?}"
                ))
            }
        };
        let load_balancer = match self.load_balancer.as_str() {
            "ewma" => LoadBalancer::Ewma,
            "round_robin" => LoadBalancer::RoundRobin,
            "least_request" => LoadBalancer::LeastRequest,
            "random" => LoadBalancer::Random,
            "ring_hash" => LoadBalancer::RingHash { header: self.hash_header.map(|h| h.to_ascii_lowercase()) },
            other => {
                return Err(format!(
                    "{path}.loadBalancer: expected ewma, round_robin, least_request, random or ring_hash, got {other:?}"
                ))
            }
        };
        let endpoints = self
            .endpoints
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                Ok(EndpointSpec {
                    address: addr(&format!("{path}.endpoints[{i}].address"), &e.address)?,
                    weight: e.weight,
                    labels: e.labels.unwrap_or_default(),
                    identity: e.identity,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ServiceSpec {
            port: port(&format!("{path}.port"), self.port)?,
            name: self.name,
            namespace: self.namespace,
            protocol,
            endpoints,
            load_balancer,
            circuit_breaker: self.circuit_breaker.map(|b| CircuitBreakerSpec {
                max_connections: b.max_connections,
                max_pending_requests: b.max_pending_requests,
                max_requests: b.max_requests,
                consecutive_failures: b.consecutive_failures,
                ejection_ms: u64::from(b.ejection_ms),
                max_ejection_percent: b.max_ejection_percent,
            }),
        })
    }
}

impl BindingHttpRoute {
    fn into_engine(self, path: &str) -> Result<HttpRouteSpec, String> {
        let rules = self
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.into_engine(&format!("{path}.rules[{i}]")))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(HttpRouteSpec {
            name: self.name,
            namespace: self.namespace,
            parents: self.parents,
            rules,
        })
    }
}

impl BindingHttpRule {
    fn into_engine(self, path: &str) -> Result<HttpRuleSpec, String> {
        let matches = self
            .matches
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let path = format!("{path}.matches[{i}]");
                let path_match = match m.path {
                    None => None,
                    Some(p) => Some(match p.kind.as_str() {
                        "Exact" => PathMatch::Exact(p.value),
                        "PathPrefix" => PathMatch::Prefix(p.value),
                        "RegularExpression" => PathMatch::Regex(p.value),
                        other => {
                            return Err(format!(
                                "{path}.path.type: expected Exact, PathPrefix or RegularExpression, got {other:?}"
                            ))
                        }
                    }),
                };
                let headers = m
                    .headers
                    .into_iter()
                    .enumerate()
                    .map(|(j, h)| {
                        let value = match h.kind.as_str() {
                            "Exact" => HeaderValueMatch::Exact(h.value),
                            "RegularExpression" => HeaderValueMatch::Regex(h.value),
                            other => {
                                return Err(format!(
                                    "{path}.headers[{j}].type: expected Exact or RegularExpression, got {other:?}"
                                ))
                            }
                        };
                        Ok(HeaderMatch { name: h.name.to_ascii_lowercase(), value })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(HttpMatchSpec { path: path_match, headers, method: m.method.map(|s| s.to_ascii_uppercase()) })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(HttpRuleSpec {
            matches,
            backends: self
                .backends
                .into_iter()
                .map(|b| BackendRefSpec {
                    service: b.service,
                    weight: b.weight,
                })
                .collect(),
            request_timeout_ms: self.request_timeout_ms.map(u64::from),
            backend_request_timeout_ms: self.backend_request_timeout_ms.map(u64::from),
            faults: self.faults.map(|f| FaultSpec {
                delay: f.delay.map(|d| FaultDelaySpec {
                    percent: d.percent,
                    fixed_ms: u64::from(d.fixed_ms),
                }),
                abort: f.abort.map(|a| FaultAbortSpec {
                    percent: a.percent,
                    // Out-of-range values are refused by the engine's validation.
                    status: u16::try_from(a.status).unwrap_or(0),
                }),
            }),
            rate_limit: self.rate_limit.map(BindingRateLimit::into_engine),
            retry: self.retry.map(|r| RetrySpec {
                attempts: r.attempts,
                // Out-of-range values are refused by the engine's validation.
                codes: r
                    .codes
                    .into_iter()
                    .map(|c| u16::try_from(c).unwrap_or(0))
                    .collect(),
                backoff_ms: u64::from(r.backoff_ms),
                budget_percent: r.budget_percent,
                min_retries_per_second: r.min_retries_per_second,
                budget_window_ms: u64::from(r.budget_window_ms),
                max_request_bytes: u64::from(r.max_request_bytes),
                non_idempotent: r.non_idempotent,
            }),
        })
    }
}
