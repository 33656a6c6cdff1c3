//! Inbound: traffic to the local workload. One listener forwards to one `forward_to`
//! address, as opaque TCP or as HTTP in the version the client spoke.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::uri::Authority;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

use super::body::ProxyBody;
use super::error::{forbidden, is_grpc, ProxyError};
use super::forward::{
    prepare_and_forward, refuse, refuse_rate_limited, ConnStats, PoolTimeouts, Target,
};
use super::headers::upgrade_requested;
use super::{serve, Handler, HttpVersion};
use crate::authz::{Decision, Operation};
use crate::config::{MtlsMode, Protocol};
use crate::detect::{self, Detected, Rewind};
use crate::listener::ListenerId;
use crate::shared::Shared;
use crate::snapshot::{InboundPlan, Snapshot};
use crate::stats::{AuthzDenyLabels, AuthzProtocol, HttpLabels, HttpStats, TcpLabels, TlsRefusal};
use crate::tcp::{self, Metered, Peer};

/// The plan of the inbound listener `id` in `snapshot`.
fn plan_of(snapshot: &Snapshot, id: ListenerId) -> Option<&InboundPlan> {
    snapshot
        .inbound
        .iter()
        .filter(|plan| plan.listener.listen == id.configured)
        .nth(id.ordinal)
}

/// Set by the client's proxy on an HTTP/1 request it carries over the multiplexed HTTP/2
/// mTLS connection between proxies: the version to give the workload back. Honoured only
/// from mesh peers (verified client certificates) on ports that do not name a protocol.
pub(crate) const ORIG_PROTO: &str = "x-mesh-orig-proto";
/// The one value of [`ORIG_PROTO`] there is so far.
pub(crate) const ORIG_PROTO_HTTP1: &str = "HTTP/1.1";

/// How long a TLS handshake may take once the ClientHello began.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection accepted on the inbound listener `id`: TLS or plaintext as the
/// port's `tls`/`mtls` and the first bytes say, then HTTP or opaque TCP.
pub(crate) async fn serve_connection(shared: Arc<Shared>, id: ListenerId, mut stream: TcpStream) {
    let listen = id.configured;
    let Some(snapshot) = shared.snapshot.load_full() else {
        return;
    };
    let Some(plan) = plan_of(&snapshot, id) else {
        return;
    };
    let detect_timeout = Duration::from_millis(snapshot.timeouts.detect_ms);
    let (tls_config, mesh) = match (&plan.ingress_tls, plan.listener.mtls) {
        (Some(config), _) => (config.clone(), None),
        (None, MtlsMode::Off) => {
            return serve_plaintext(shared, snapshot, id, Rewind::plain(stream), None).await;
        }
        (None, MtlsMode::Strict | MtlsMode::Permissive) => {
            let Some(identity) = shared.identity.load_full() else {
                if plan.listener.mtls == MtlsMode::Strict {
                    // Never plaintext on a strict port, not even before the identity arrives.
                    plan.tls_refusals.record(TlsRefusal::NoIdentity);
                    return;
                }
                // Permissive without an identity: nothing to terminate, so no reason to
                // wait for the client's first bytes (server-first protocols go at once).
                return serve_plaintext(shared, snapshot, id, Rewind::plain(stream), None).await;
            };
            (identity.server_config().clone(), Some(identity))
        }
    };
    let (client_hello, prefix) = match read_record_start(&mut stream, detect_timeout).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(%listen, error = %e, "inbound: connection closed before its first bytes");
            return;
        }
    };
    let permissive = mesh.is_some() && plan.listener.mtls == MtlsMode::Permissive;
    let (prefix, passthrough) = match &mesh {
        // A permissive port terminates only the mesh's ClientHellos (by SNI); the
        // workload's own TLS clients go through as they came.
        Some(identity) if client_hello && permissive => {
            let deadline = tokio::time::Instant::now() + detect_timeout;
            match crate::tls::read_server_name(&mut stream, prefix, deadline).await {
                Ok((sni, prefix)) => (prefix, !identity.is_mesh_server_name(sni.as_deref())),
                Err(e) => {
                    tracing::debug!(%listen, error = %e, "inbound: connection closed inside its ClientHello");
                    return;
                }
            }
        }
        _ => (prefix, false),
    };
    let io = Rewind::new(prefix, stream);
    if !client_hello || passthrough {
        if permissive {
            return serve_plaintext(shared, snapshot, id, io, None).await;
        }
        tracing::debug!(%listen, "inbound: plaintext on a TLS-only port refused");
        plan.tls_refusals.record(TlsRefusal::Plaintext);
        return;
    }
    let accept = tokio_rustls::TlsAcceptor::from(tls_config).accept(io);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%listen, error = %e, "inbound: TLS handshake failed");
            plan.tls_refusals.record(TlsRefusal::Handshake);
            return;
        }
        Err(_) => {
            tracing::debug!(%listen, "inbound: TLS handshake timed out");
            plan.tls_refusals.record(TlsRefusal::Handshake);
            return;
        }
    };
    let (_, session) = tls.get_ref();
    let alpn = match session.alpn_protocol() {
        Some(crate::tls::ALPN_H2) => Some(HttpVersion::Http2),
        Some(crate::tls::ALPN_HTTP1) => Some(HttpVersion::Http1),
        _ => None,
    };
    let client_id = if mesh.is_some() {
        crate::tls::peer_spiffe_id(session.peer_certificates())
    } else {
        String::new()
    };
    let peer = TlsPeer { client_id, alpn };
    serve_plaintext(shared, snapshot, id, tls, Some(peer)).await;
}

/// What a TLS handshake established about the client.
struct TlsPeer {
    /// The client's SPIFFE id (mesh mTLS), "" for ingress TLS.
    client_id: String,
    /// The HTTP version ALPN settled, if any.
    alpn: Option<HttpVersion>,
}

/// Reads until the first bytes tell whether the client opened with a TLS ClientHello. A
/// client silent until `timeout` (server-first protocols) did not. Returns the bytes read,
/// to be replayed.
async fn read_record_start(
    stream: &mut TcpStream,
    timeout: Duration,
) -> std::io::Result<(bool, Bytes)> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = BytesMut::with_capacity(512);
    loop {
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Err(_elapsed) => return Ok((false, buf.freeze())),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(0)) if buf.is_empty() => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(Ok(0)) => return Ok((false, buf.freeze())),
            Ok(Ok(_)) => {
                if let Some(client_hello) = crate::tls::is_client_hello(&buf) {
                    return Ok((client_hello, buf.freeze()));
                }
            }
        }
    }
}

/// Serves a connection whose bytes are now plaintext (decrypted for TLS `peer`s) as the
/// port's protocol says: opaque TCP, HTTP/1 or HTTP/2 (ALPN first), or detected.
async fn serve_plaintext<I>(
    shared: Arc<Shared>,
    snapshot: Arc<Snapshot>,
    id: ListenerId,
    io: I,
    peer: Option<TlsPeer>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let listen = id.configured;
    let Some(plan) = plan_of(&snapshot, id) else {
        return;
    };
    // Counted from the first byte, detection included, until the connection closes.
    let tcp_stats = match &peer {
        None => plan.tcp_stats.clone(),
        Some(peer) => shared.stats.tcp(TcpLabels {
            tls: true,
            client_id: peer.client_id.clone(),
            ..plan.tcp_labels.clone()
        }),
    };
    let mut stream = Metered::new(io, Some(tcp_stats.open()), Peer::Client);
    let client_id = peer.as_ref().map(|peer| peer.client_id.as_str());
    let forward_to = plan.listener.forward_to;
    let connect_timeout = Duration::from_millis(snapshot.timeouts.connect_ms);
    let upstream = match plan.listener.protocol {
        Protocol::Tcp => {
            if admit_connection(&shared, &snapshot, plan, client_id) {
                tcp::forward(stream, forward_to, connect_timeout).await;
            }
            return;
        }
        Protocol::Http1 => Some(HttpVersion::Http1),
        Protocol::Http2 | Protocol::Grpc => Some(HttpVersion::Http2),
        Protocol::Auto => None,
    };
    let negotiated = peer.as_ref().and_then(|peer| peer.alpn);
    let downstream = match negotiated.or(upstream) {
        Some(version) => version,
        None => {
            let detect_timeout = Duration::from_millis(snapshot.timeouts.detect_ms);
            let (detected, prefix) = match detect::detect(&mut stream, detect_timeout).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(%listen, error = %e, "inbound: connection closed during detection");
                    return;
                }
            };
            let version = match detected {
                Detected::Http1 => HttpVersion::Http1,
                Detected::Http2 => HttpVersion::Http2,
                Detected::Opaque => {
                    if admit_connection(&shared, &snapshot, plan, client_id) {
                        let stream = Rewind::new(prefix, stream);
                        tcp::forward(stream, forward_to, connect_timeout).await;
                    }
                    return;
                }
            };
            let io = Rewind::new(prefix, stream);
            return serve_http(shared, snapshot, id, io, version, None, peer).await;
        }
    };
    serve_http(
        shared,
        snapshot,
        id,
        Rewind::plain(stream),
        downstream,
        upstream,
        peer,
    )
    .await;
}

/// An opaque TCP connection must be authorized for its client (`client_id`: the TLS
/// peer's SPIFFE id, "" for ingress TLS, `None` for plaintext) and take one token of the
/// port's rate limit; otherwise it is closed before anything is forwarded (TCP has no
/// way to say "forbidden" or "later").
fn admit_connection(
    shared: &Shared,
    snapshot: &Snapshot,
    plan: &InboundPlan,
    client_id: Option<&str>,
) -> bool {
    let tls = client_id.is_some();
    let client_id = client_id.filter(|id| !id.is_empty());
    if let Some(authorizer) = &snapshot.authorizer {
        let decision = authorizer.decide(client_id, Operation::Tcp);
        if decision != Decision::Allow {
            tracing::debug!(
                listen = %plan.listener.listen,
                client = client_id.unwrap_or("(no mesh identity)"),
                policy = decision.policy(),
                "inbound: connection refused by authorization policy"
            );
            let labels = denial_labels(plan, AuthzProtocol::Tcp, &decision, tls, client_id);
            shared.stats.authz_denied(labels);
            return false;
        }
    }
    match &plan.rate_limiter {
        Some(limiter) => {
            let admitted = limiter.acquire().is_ok();
            if !admitted {
                tracing::debug!(listen = %plan.listener.listen, "inbound: connection over the rate limit closed");
            }
            admitted
        }
        None => true,
    }
}

/// The labels a request or connection an AuthorizationPolicy refused counts under.
fn denial_labels(
    plan: &InboundPlan,
    protocol: AuthzProtocol,
    decision: &Decision,
    tls: bool,
    client_id: Option<&str>,
) -> AuthzDenyLabels {
    AuthzDenyLabels {
        protocol,
        authority: plan.http_labels.authority.clone(),
        dst_service: plan.http_labels.dst_service.clone(),
        policy: decision.policy().to_owned(),
        tls,
        client_id: client_id.unwrap_or_default().to_owned(),
    }
}

async fn serve_http<I>(
    shared: Arc<Shared>,
    accepted: Arc<Snapshot>,
    id: ListenerId,
    io: Rewind<I>,
    version: HttpVersion,
    port_protocol: Option<HttpVersion>,
    peer: Option<TlsPeer>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let honor_orig_proto = port_protocol.is_none()
        && version == HttpVersion::Http2
        && peer.as_ref().is_some_and(|peer| !peer.client_id.is_empty());
    let client_id = peer
        .as_ref()
        .map(|peer| peer.client_id.clone())
        .filter(|id| !id.is_empty());
    let tls_stats = peer.map(|peer| {
        let plan = plan_of(&accepted, id).expect("the plan of an accepted connection");
        Mutex::new(ClientStats::new(&shared, plan, peer.client_id))
    });
    let handler = Arc::new(InboundHandler {
        shared: shared.clone(),
        accepted,
        id,
        version,
        upstream: port_protocol.unwrap_or(version),
        honor_orig_proto,
        client_id,
        tls_stats,
    });
    serve(&shared, io, version, handler).await;
}

/// HTTP stats of one TLS client: the port's labels with `tls` and `client_id`, looked up
/// again only when a new config changes the port's labels.
struct ClientStats {
    client_id: String,
    /// The port's plaintext handle these were derived from.
    base: Arc<HttpStats>,
    stats: Arc<HttpStats>,
}

impl ClientStats {
    fn new(shared: &Shared, plan: &InboundPlan, client_id: String) -> Self {
        let stats = shared.stats.http(HttpLabels {
            tls: true,
            client_id: client_id.clone(),
            ..plan.http_labels.clone()
        });
        Self {
            client_id,
            base: plan.http_stats.clone(),
            stats,
        }
    }

    fn for_plan(&mut self, shared: &Shared, plan: &InboundPlan) -> Arc<HttpStats> {
        if !Arc::ptr_eq(&self.base, &plan.http_stats) {
            *self = Self::new(shared, plan, std::mem::take(&mut self.client_id));
        }
        self.stats.clone()
    }
}

struct InboundHandler {
    shared: Arc<Shared>,
    /// The snapshot in force at accept; used if a later one no longer names this listener
    /// (its accept loop stopped, but open connections keep working).
    accepted: Arc<Snapshot>,
    id: ListenerId,
    /// The client's HTTP version.
    version: HttpVersion,
    /// The workload's: the port's protocol when it names one, else the client's.
    upstream: HttpVersion,
    /// Whether requests may carry [`ORIG_PROTO`].
    honor_orig_proto: bool,
    /// The SPIFFE id the client proved with its mesh certificate, what authorization
    /// policies judge by.
    client_id: Option<String>,
    /// TLS connections count under their own labels.
    tls_stats: Option<Mutex<ClientStats>>,
}

impl InboundHandler {
    /// Answers a request an AuthorizationPolicy refused (403, or PERMISSION_DENIED for
    /// gRPC) and counts it.
    fn forbid(
        &self,
        plan: &InboundPlan,
        stats: &HttpStats,
        req: &Request<Incoming>,
        decision: &Decision,
    ) -> Response<ProxyBody> {
        let client_id = self.client_id.as_deref();
        let client = client_id.unwrap_or("a client without a mesh identity");
        let message = match decision {
            Decision::DeniedByPolicy(policy) => {
                format!("forbidden: AuthorizationPolicy \"{policy}\" denies {client}")
            }
            _ => format!(
                "forbidden: no AuthorizationPolicy of {} allows {client} to {} {}",
                plan.listener.service,
                req.method(),
                req.uri().path()
            ),
        };
        tracing::debug!(listen = %plan.listener.listen, %message, "inbound: request refused");
        let tls = self.tls_stats.is_some();
        let labels = denial_labels(plan, AuthzProtocol::Http, decision, tls, client_id);
        self.shared.stats.authz_denied(labels);
        let grpc = is_grpc(req.headers());
        let response = forbidden(grpc, &message);
        stats.request();
        // Counted as sent (gRPC: 200 with an error status, always a failure); a 403 is the
        // client's failure, not the workload's.
        stats.response(response.status().as_u16(), grpc, Duration::ZERO);
        response
    }
}

impl Handler for InboundHandler {
    /// Inbound clients come from the network: a head must arrive within this (hyper's default).
    const HEADER_READ_TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

    async fn handle(self: Arc<Self>, mut req: Request<Incoming>) -> Response<ProxyBody> {
        let (mut target, timeouts) = {
            let current = self.shared.snapshot.load();
            let snapshot = match current.as_ref() {
                Some(snapshot) if plan_of(snapshot, self.id).is_some() => snapshot,
                _ => &self.accepted,
            };
            let Some(plan) = plan_of(snapshot, self.id) else {
                return ProxyError::NoService.response("this listener is no longer configured");
            };
            let stats = match &self.tls_stats {
                None => plan.http_stats.clone(),
                Some(client) => client.lock().for_plan(&self.shared, plan),
            };
            if let Some(authorizer) = &snapshot.authorizer {
                let operation = Operation::Http {
                    method: req.method(),
                    path: req.uri().path(),
                };
                let decision = authorizer.decide(self.client_id.as_deref(), operation);
                if decision != Decision::Allow {
                    return self.forbid(plan, &stats, &req, &decision);
                }
            }
            if let Some(limiter) = &plan.rate_limiter {
                if let Err(wait) = limiter.acquire() {
                    return refuse_rate_limited(&stats, wait);
                }
            }
            let target = Target {
                addr: plan.listener.forward_to,
                version: self.upstream,
                response_timeout: None,
                stats,
                in_flight: None,
                conn_stats: ConnStats::Uncounted,
                started: Instant::now(),
                retry: None,
                request_slot: None,
            };
            let timeouts = PoolTimeouts {
                connect: Duration::from_millis(snapshot.timeouts.connect_ms),
                idle: Duration::from_millis(snapshot.timeouts.pool_idle_ms),
            };
            (target, timeouts)
        };
        if self.version == HttpVersion::Http2 && req.method() == Method::CONNECT {
            return refuse(
                Some(&target.stats),
                ProxyError::NotImplemented,
                "CONNECT over HTTP/2 is not supported inbound",
            );
        }
        let upgrade = if upgrade_requested(&req) {
            Some(hyper::upgrade::on(&mut req))
        } else {
            None
        };
        if self.honor_orig_proto {
            if let Some(orig) = req.headers_mut().remove(ORIG_PROTO) {
                if orig == ORIG_PROTO_HTTP1 {
                    target.version = HttpVersion::Http1;
                }
            }
        }
        let (parts, body) = req.into_parts();
        // A request that names no authority at all (HTTP/1.0 without Host) addresses the workload.
        let forward_to = target.addr;
        let fallback = || Authority::try_from(forward_to.to_string().as_str()).ok();
        prepare_and_forward(
            &self.shared,
            parts,
            body,
            target,
            self.version,
            timeouts,
            upgrade,
            fallback,
        )
        .await
    }
}
