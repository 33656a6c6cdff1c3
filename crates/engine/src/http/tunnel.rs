//! The inside of a CONNECT tunnel to a Service.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::uri::Authority;
use tokio::io::{AsyncRead, AsyncWrite};

use super::outbound::{OutboundHandler, TunnelTimeouts};
use super::{serve, HttpVersion};
use crate::config::ServiceProtocol;
use crate::detect::{self, Detected, Rewind};
use crate::shared::Shared;
use crate::snapshot::ServiceRuntime;
use crate::tcp;

/// The bytes of a CONNECT tunnel to a Service: opaque for a tcp Service, else detected
/// (HTTP/1, HTTP/2, or opaque when neither).
///
/// Boxed: the tunnel serves an `OutboundHandler`, whose CONNECT handling spawns tunnels, so
/// the future type would otherwise contain itself.
pub(super) fn to_service<I>(
    shared: Arc<Shared>,
    io: I,
    peer: SocketAddr,
    authority: Authority,
    service: Arc<ServiceRuntime>,
    timeouts: TunnelTimeouts,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(serve_tunnel(shared, io, peer, authority, service, timeouts))
}

async fn serve_tunnel<I>(
    shared: Arc<Shared>,
    mut io: I,
    peer: SocketAddr,
    authority: Authority,
    service: Arc<ServiceRuntime>,
    timeouts: TunnelTimeouts,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if service.spec.protocol == ServiceProtocol::Tcp {
        return tcp::forward_to_service(&shared, &service, io, peer, timeouts.connect).await;
    }
    let (detected, prefix) = match detect::detect(&mut io, timeouts.detect).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(%authority, error = %e, "CONNECT tunnel closed during detection");
            return;
        }
    };
    let io = Rewind::new(prefix, io);
    let version = match detected {
        Detected::Http1 => HttpVersion::Http1,
        Detected::Http2 => HttpVersion::Http2,
        Detected::Opaque => {
            return tcp::forward_to_service(&shared, &service, io, peer, timeouts.connect).await
        }
    };
    let handler = Arc::new(OutboundHandler {
        shared: shared.clone(),
        peer,
        version,
        tunnel: Some(authority),
    });
    serve(&shared, io, version, handler).await;
}
