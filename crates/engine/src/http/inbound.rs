//! Inbound: traffic to the local workload. One listener forwards to one `forward_to`
//! address, as opaque TCP or as HTTP in the version the client spoke.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpStream;

use super::body::ProxyBody;
use super::error::ProxyError;
use super::forward::{
    prepare_and_forward, refuse, refuse_rate_limited, ConnStats, PoolTimeouts, Target,
};
use super::headers::upgrade_requested;
use super::{serve, Handler, HttpVersion};
use crate::config::Protocol;
use crate::detect::{self, Detected, Rewind};
use crate::listener::ListenerId;
use crate::shared::Shared;
use crate::snapshot::{InboundPlan, Snapshot};
use crate::tcp::{self, Metered, Peer};

/// The plan of the inbound listener `id` in `snapshot`.
fn plan_of(snapshot: &Snapshot, id: ListenerId) -> Option<&InboundPlan> {
    snapshot
        .inbound
        .iter()
        .filter(|plan| plan.listener.listen == id.configured)
        .nth(id.ordinal)
}

/// An accepted inbound connection, counted on its listener's TCP stats whatever its protocol.
type InboundStream = Metered<TcpStream>;

/// Serves one connection accepted on the inbound listener `id`.
pub(crate) async fn serve_connection(shared: Arc<Shared>, id: ListenerId, stream: TcpStream) {
    let listen = id.configured;
    let Some(snapshot) = shared.snapshot.load_full() else {
        return;
    };
    let Some(plan) = plan_of(&snapshot, id) else {
        return;
    };
    // Counted from the first byte, detection included, until the connection closes.
    let mut stream = Metered::new(stream, Some(plan.tcp_stats.open()), Peer::Client);
    let forward_to = plan.listener.forward_to;
    let connect_timeout = Duration::from_millis(snapshot.timeouts.connect_ms);
    let version = match plan.listener.protocol {
        Protocol::Tcp => {
            if admit_connection(plan) {
                tcp::forward(stream, forward_to, connect_timeout).await;
            }
            return;
        }
        Protocol::Http1 => HttpVersion::Http1,
        Protocol::Http2 | Protocol::Grpc => HttpVersion::Http2,
        Protocol::Auto => {
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
                    if admit_connection(plan) {
                        let stream = Rewind::new(prefix, stream);
                        tcp::forward(stream, forward_to, connect_timeout).await;
                    }
                    return;
                }
            };
            let io = Rewind::new(prefix, stream);
            return serve_http(shared, snapshot, id, io, version).await;
        }
    };
    serve_http(shared, snapshot, id, Rewind::plain(stream), version).await;
}

/// An opaque TCP connection takes one token of the port's rate limit; without one it is
/// closed before anything is forwarded (TCP has no way to say "later").
fn admit_connection(plan: &InboundPlan) -> bool {
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

async fn serve_http(
    shared: Arc<Shared>,
    accepted: Arc<Snapshot>,
    id: ListenerId,
    io: Rewind<InboundStream>,
    version: HttpVersion,
) {
    let handler = Arc::new(InboundHandler {
        shared: shared.clone(),
        accepted,
        id,
        version,
    });
    serve(&shared, io, version, handler).await;
}

struct InboundHandler {
    shared: Arc<Shared>,
    /// The snapshot in force at accept; used if a later one no longer names this listener
    /// (its accept loop stopped, but open connections keep working).
    accepted: Arc<Snapshot>,
    id: ListenerId,
    /// The downstream version, kept upstream.
    version: HttpVersion,
}

impl Handler for InboundHandler {
    /// Inbound clients come from the network: a head must arrive within this (hyper's default).
    const HEADER_READ_TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

    async fn handle(self: Arc<Self>, mut req: Request<Incoming>) -> Response<ProxyBody> {
        let (target, timeouts) = {
            let current = self.shared.snapshot.load();
            let snapshot = match current.as_ref() {
                Some(snapshot) if plan_of(snapshot, self.id).is_some() => snapshot,
                _ => &self.accepted,
            };
            let Some(plan) = plan_of(snapshot, self.id) else {
                return ProxyError::NoService.response("this listener is no longer configured");
            };
            if let Some(limiter) = &plan.rate_limiter {
                if let Err(wait) = limiter.acquire() {
                    return refuse_rate_limited(&plan.http_stats, wait);
                }
            }
            let target = Target {
                addr: plan.listener.forward_to,
                version: self.version,
                response_timeout: None,
                stats: plan.http_stats.clone(),
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
