//! Outbound: traffic from the local workload, routed by the authority it addresses
//! (`:authority`, an absolute-form URI, or Host), plus CONNECT tunnels whose bytes are
//! detected and routed like any other outbound connection to that service.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{request, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::ProxyBody;
use super::error::{injected_abort, is_grpc, ProxyError};
use super::forward::{
    prepare_and_forward, refuse, refuse_rate_limited, ConnStats, PoolTimeouts, Target,
};
use super::headers::{request_authority, upgrade_requested};
use super::retry::{RetryContext, RetryState};
use super::{serve, tunnel, Handler, HttpVersion};
use crate::balance::{nanos_of, Endpoint, PickContext};
use crate::config::ServiceProtocol;
use crate::detect::{self, Detected, Rewind};
use crate::resilience::{Faults, Limit};
use crate::shared::Shared;
use crate::snapshot::Snapshot;
use crate::stats::HttpStats;
use crate::tcp::{self, Metered, Peer};

/// Authorities without a port address port 80 (plain HTTP; TLS origination is not ours).
const DEFAULT_PORT: u16 = 80;
const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one connection accepted on the outbound listener: HTTP/2 if it starts with the
/// preface, else HTTP/1 (hyper answers 400 to bytes that are not HTTP).
pub(crate) async fn serve_connection(shared: Arc<Shared>, peer: SocketAddr, mut stream: TcpStream) {
    let detect_timeout = shared
        .snapshot
        .load()
        .as_ref()
        .map_or(DEFAULT_DETECT_TIMEOUT, |snapshot| {
            Duration::from_millis(snapshot.timeouts.detect_ms)
        });
    let (version, prefix) = match detect::detect(&mut stream, detect_timeout).await {
        Ok((Detected::Http2, prefix)) => (HttpVersion::Http2, prefix),
        Ok((_, prefix)) => (HttpVersion::Http1, prefix),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "outbound: connection closed during detection");
            return;
        }
    };
    let handler = Arc::new(OutboundHandler {
        shared: shared.clone(),
        peer,
        version,
        tunnel: None,
    });
    serve(&shared, Rewind::new(prefix, stream), version, handler).await;
}

pub(super) struct OutboundHandler {
    pub(super) shared: Arc<Shared>,
    pub(super) peer: SocketAddr,
    pub(super) version: HttpVersion,
    /// Inside a CONNECT tunnel: its target, the authority of requests that carry none.
    pub(super) tunnel: Option<Authority>,
}

/// What the snapshot says to do with one request.
enum Decision {
    Forward(Target),
    /// Fault injection: forward the target after the delay, then start counting on the
    /// endpoint (boxed: rare, and it would enlarge every decision).
    Delay(Box<(Target, Endpoint, Duration)>),
    /// Fault injection: answer with `status` (after `delay`) instead of forwarding.
    Abort {
        stats: Arc<HttpStats>,
        status: StatusCode,
        delay: Option<Duration>,
    },
    Passthrough {
        host: String,
        port: u16,
    },
    Refuse {
        stats: Option<Arc<HttpStats>>,
        error: ProxyError,
        message: String,
    },
    /// The rule's rate limit: 429, a token is back after `wait`.
    RateLimited {
        stats: Arc<HttpStats>,
        wait: Duration,
    },
}

impl OutboundHandler {
    /// Forwards a routed request to its target. Upgrades are relayed HTTP/1 to HTTP/1 only.
    async fn forward(
        &self,
        parts: request::Parts,
        body: Incoming,
        target: Target,
        timeouts: PoolTimeouts,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Response<ProxyBody> {
        let upgrade = upgrade.filter(|_| target.version == HttpVersion::Http1);
        let tunnel = &self.tunnel;
        prepare_and_forward(
            &self.shared,
            parts,
            body,
            target,
            self.version,
            timeouts,
            upgrade,
            || tunnel.clone(),
        )
        .await
    }
}

impl Handler for OutboundHandler {
    /// None: the client is the local workload, and this listener is on the per-request hot
    /// path of every call it makes.
    const HEADER_READ_TIMEOUT: Option<Duration> = None;

    async fn handle(self: Arc<Self>, mut req: Request<Incoming>) -> Response<ProxyBody> {
        // CONNECT and passthrough are boxed: rare, and their futures would otherwise
        // make every routed request's future (moved around by value) much larger.
        if req.method() == Method::CONNECT {
            return Box::pin(self.connect(req)).await;
        }
        let upgrade = if upgrade_requested(&req) {
            Some(hyper::upgrade::on(&mut req))
        } else {
            None
        };
        let (parts, body) = req.into_parts();
        let (decision, timeouts) = {
            let current = self.shared.snapshot.load();
            let Some(snapshot) = current.as_ref() else {
                return ProxyError::NoService.response("no configuration in force");
            };
            (
                self.decide(snapshot, &parts, upgrade.is_some()),
                pool_timeouts(snapshot),
            )
        };
        match decision {
            Decision::Forward(target) => self.forward(parts, body, target, timeouts, upgrade).await,
            Decision::Delay(delayed) => {
                let (mut target, endpoint, delay) = *delayed;
                Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    target.in_flight = Some(endpoint.start());
                    self.forward(parts, body, target, timeouts, upgrade).await
                })
                .await
            }
            Decision::Abort {
                stats,
                status,
                delay,
            } => Box::pin(abort(stats, status, delay, &parts)).await,
            Decision::Passthrough { host, port } => {
                Box::pin(self.passthrough(
                    Request::from_parts(parts, body),
                    host,
                    port,
                    upgrade,
                    timeouts,
                ))
                .await
            }
            Decision::Refuse {
                stats,
                error,
                message,
            } => refuse(stats.as_deref(), error, message),
            Decision::RateLimited { stats, wait } => refuse_rate_limited(&stats, wait),
        }
    }
}

impl OutboundHandler {
    /// Route, backend, endpoint: everything that reads the snapshot, without awaiting.
    /// `upgrading`: the client asked for a protocol upgrade (WebSocket), which only
    /// HTTP/1 carries, so such a request goes over mesh mTLS as HTTP/1.
    fn decide(&self, snapshot: &Snapshot, parts: &request::Parts, upgrading: bool) -> Decision {
        // One clock read per request: latency, the rate limit and the retry budget share it.
        let started = Instant::now();
        let Some(authority) =
            request_authority(parts).or(self.tunnel.as_ref().map(Authority::as_str))
        else {
            return Decision::Refuse {
                stats: None,
                error: ProxyError::BadRequest,
                message: "no Host header".into(),
            };
        };
        let Some(service) = snapshot.resolve_authority(authority, DEFAULT_PORT) else {
            let passthrough = snapshot
                .outbound
                .as_ref()
                .is_some_and(|outbound| outbound.passthrough);
            if !passthrough {
                return Decision::Refuse {
                    stats: None,
                    error: ProxyError::NoService,
                    message: format!("no service for authority {authority}"),
                };
            }
            return match split_authority(authority) {
                Some((host, port)) => Decision::Passthrough { host, port },
                None => Decision::Refuse {
                    stats: None,
                    error: ProxyError::BadRequest,
                    message: format!("invalid authority {authority}"),
                },
            };
        };
        let rule = service.router.select(parts);
        let Some(backend) = rule.pick_backend() else {
            return Decision::Refuse {
                stats: None,
                error: ProxyError::NoEndpoint,
                message: format!("no backend with a non-zero weight for {}", service.key),
            };
        };
        if let Some(limiter) = &rule.rate_limiter {
            if let Err(wait) = limiter.acquire_at(nanos_of(started)) {
                return Decision::RateLimited {
                    stats: backend.stats.clone(),
                    wait,
                };
            }
        }
        let injected = rule.faults.as_ref().map(Faults::draw).unwrap_or_default();
        if let Some(status) = injected.abort {
            return Decision::Abort {
                stats: backend.stats.clone(),
                status,
                delay: injected.delay,
            };
        }
        let no_endpoint = || Decision::Refuse {
            stats: Some(backend.stats.clone()),
            error: ProxyError::NoEndpoint,
            message: format!("no endpoint available for {}", backend.service),
        };
        let Some(backend_service) = snapshot.service(&backend.service) else {
            return no_endpoint();
        };
        let request_slot = match &backend_service.breaker {
            None => None,
            Some(breaker) => match breaker.try_start_request() {
                Some(slot) => Some(slot),
                None => {
                    return Decision::Refuse {
                        stats: Some(backend.stats.clone()),
                        error: ProxyError::CircuitOpen(Limit::Requests),
                        message: format!(
                            "circuit breaker open: {} requests in flight to {}",
                            breaker.max_requests(),
                            backend.service
                        ),
                    }
                }
            },
        };
        let balancer = &backend_service.balancer;
        let header_value = balancer
            .hash_header()
            .and_then(|name| parts.headers.get(name))
            .map(|v| v.as_bytes());
        let context = PickContext {
            header_value,
            client_ip: Some(self.peer.ip()),
        };
        let Some(endpoint) = balancer.pick(&context) else {
            return no_endpoint();
        };
        let response_timeout = match (rule.request_timeout, rule.backend_request_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let retry = rule.retry.as_ref().map(|policy| {
            RetryState::new(RetryContext {
                policy: policy.clone(),
                service: backend_service.clone(),
                client_ip: Some(self.peer.ip()),
                request_timeout: rule.request_timeout,
                attempt_timeout: rule.backend_request_timeout,
            })
        });
        // Meshed: mTLS to the endpoint's proxy, over HTTP/2 whatever the Service speaks,
        // or HTTP/1 for upgrades (only HTTP/1 carries them); a 502 while this proxy holds
        // no identity: never plaintext to the mesh.
        let (version, conn_stats) = if backend_service.is_meshed() {
            let version = if upgrading {
                HttpVersion::Http1
            } else {
                HttpVersion::Http2
            };
            (version, ConnStats::MeshEndpoint(backend_service.clone()))
        } else {
            (
                upstream_version(backend_service.spec.protocol),
                ConnStats::Endpoint(backend_service.clone()),
            )
        };
        let mut target = Target {
            addr: endpoint.addr,
            version,
            response_timeout,
            stats: backend.stats.clone(),
            in_flight: None,
            conn_stats,
            started,
            retry,
            request_slot,
        };
        match injected.delay {
            // The endpoint's load counts from when the request really leaves.
            Some(delay) => Decision::Delay(Box::new((target, endpoint.clone(), delay))),
            None => {
                target.in_flight = Some(endpoint.start());
                Decision::Forward(target)
            }
        }
    }

    /// An authority that names no Service: straight to host:port, in the client's version.
    async fn passthrough(
        &self,
        req: Request<Incoming>,
        host: String,
        port: u16,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
        timeouts: PoolTimeouts,
    ) -> Response<ProxyBody> {
        let stats = self.shared.passthrough_http_stats(&host, port);
        let addr = match self.resolve_target(&host, port).await {
            Ok(addr) => addr,
            Err((error, message)) => return refuse(Some(&stats), error, message),
        };
        let upgrade = upgrade.filter(|_| self.version == HttpVersion::Http1);
        let (parts, body) = req.into_parts();
        let target = Target {
            addr,
            version: self.version,
            response_timeout: None,
            stats,
            in_flight: None,
            conn_stats: ConnStats::Passthrough,
            started: Instant::now(),
            retry: None,
            request_slot: None,
        };
        let tunnel = &self.tunnel;
        prepare_and_forward(
            &self.shared,
            parts,
            body,
            target,
            self.version,
            timeouts,
            upgrade,
            || tunnel.clone(),
        )
        .await
    }

    /// Resolves a passthrough target and refuses addresses that would loop back to us.
    async fn resolve_target(
        &self,
        host: &str,
        port: u16,
    ) -> Result<SocketAddr, (ProxyError, String)> {
        let addr = resolve(host, port).await.map_err(|e| {
            (
                ProxyError::ConnectFailed,
                format!("cannot resolve {host}: {e}"),
            )
        })?;
        if self.shared.is_own_listener(addr) {
            return Err((ProxyError::Loop, format!("{host}:{port} is this proxy")));
        }
        Ok(addr)
    }

    /// CONNECT: a tunnel to a Service (its bytes routed like an outbound connection) or,
    /// with passthrough, to host:port as is.
    async fn connect(&self, mut req: Request<Incoming>) -> Response<ProxyBody> {
        let Some(authority) = req.uri().authority().cloned() else {
            return ProxyError::BadRequest.response("CONNECT needs a host:port target");
        };
        let (service, passthrough, timeouts) = {
            let current = self.shared.snapshot.load();
            let Some(snapshot) = current.as_ref() else {
                return ProxyError::NoService.response("no configuration in force");
            };
            let service = snapshot
                .resolve_authority(authority.as_str(), DEFAULT_PORT)
                .cloned();
            let passthrough = snapshot
                .outbound
                .as_ref()
                .is_some_and(|outbound| outbound.passthrough);
            (service, passthrough, tunnel_timeouts(snapshot))
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        if let Some(service) = service {
            let shared = self.shared.clone();
            let peer = self.peer;
            self.shared.drain.spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        tunnel::to_service(
                            shared,
                            TokioIo::new(upgraded),
                            peer,
                            authority,
                            service,
                            timeouts,
                        )
                        .await
                    }
                    Err(e) => tracing::debug!(error = %e, "CONNECT: upgrade failed"),
                }
            });
            return Response::new(ProxyBody::Empty);
        }
        if !passthrough {
            return ProxyError::NoService
                .response(format_args!("no service for authority {authority}"));
        }
        let Some((host, port)) = split_authority(authority.as_str()) else {
            return ProxyError::BadRequest
                .response(format_args!("invalid CONNECT target {authority}"));
        };
        let addr = match self.resolve_target(&host, port).await {
            Ok(addr) => addr,
            Err((error, message)) => return error.response(message),
        };
        // Connect before answering, so a dead target is a 502 rather than a dead tunnel.
        let upstream = match tcp::connect(addr, timeouts.connect).await {
            Ok(upstream) => upstream,
            Err(e) => {
                let error = if e.is_timeout() {
                    ProxyError::ConnectTimeout
                } else {
                    ProxyError::ConnectFailed
                };
                return error.response(format_args!("cannot connect to {addr}: {e}"));
            }
        };
        let open = self.shared.passthrough_tcp_stats(addr).open();
        self.shared.drain.spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let client = Metered::new(TokioIo::new(upgraded), Some(open), Peer::Client);
                    if let Err(e) = tcp::splice(client, upstream).await {
                        tracing::debug!(%addr, error = %e, "CONNECT tunnel ended with an error");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "CONNECT: upgrade failed"),
            }
        });
        Response::new(ProxyBody::Empty)
    }
}

/// A request aborted by fault injection: answered with `status` after `delay`, counted
/// like any other response of its backend (latency includes the delay).
async fn abort(
    stats: Arc<HttpStats>,
    status: StatusCode,
    delay: Option<Duration>,
    parts: &request::Parts,
) -> Response<ProxyBody> {
    let started = Instant::now();
    stats.request();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let grpc = is_grpc(&parts.headers);
    let (recorded_status, failure) = if grpc {
        (200, true)
    } else {
        (status.as_u16(), status.is_server_error())
    };
    stats.response(recorded_status, failure, started.elapsed());
    injected_abort(status, grpc)
}

#[derive(Clone, Copy)]
pub(super) struct TunnelTimeouts {
    pub(super) detect: Duration,
    pub(super) connect: Duration,
}

fn tunnel_timeouts(snapshot: &Snapshot) -> TunnelTimeouts {
    TunnelTimeouts {
        detect: Duration::from_millis(snapshot.timeouts.detect_ms),
        connect: Duration::from_millis(snapshot.timeouts.connect_ms),
    }
}

fn pool_timeouts(snapshot: &Snapshot) -> PoolTimeouts {
    PoolTimeouts {
        connect: Duration::from_millis(snapshot.timeouts.connect_ms),
        idle: Duration::from_millis(snapshot.timeouts.pool_idle_ms),
    }
}

fn upstream_version(protocol: ServiceProtocol) -> HttpVersion {
    match protocol {
        ServiceProtocol::Http2 | ServiceProtocol::Grpc => HttpVersion::Http2,
        // An HTTP request to a tcp Service still goes out as HTTP/1.
        ServiceProtocol::Http | ServiceProtocol::Tcp => HttpVersion::Http1,
    }
}

/// `host[:port]` (IPv6 in brackets) into a host without brackets and a port (80 if absent).
pub(crate) fn split_authority(authority: &str) -> Option<(String, u16)> {
    let parsed = Authority::try_from(authority).ok()?;
    let host = parsed.host().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((
        host.to_ascii_lowercase(),
        parsed.port_u16().unwrap_or(DEFAULT_PORT),
    ))
}

/// An IP literal as is; a name through the system resolver, IPv4 first (local servers
/// usually listen on 0.0.0.0 or 127.0.0.1, and `localhost` often lists ::1 first).
async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}
