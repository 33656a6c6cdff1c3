//! Compiles and validates a `ProxyConfig` into the immutable runtime `Snapshot`.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::balance::{Balancer, LoadRegistry};
use crate::config::{
    GlobalTimeouts, InboundListener, OutboundListener, ProxyConfig, ServiceSpec,
    TcpOutboundListener,
};
use crate::route::Router;
use crate::stats::{HttpStats, StatsRegistry, TcpStats};

/// Why a config was refused; `path` names the field (`services[1].endpoints[0].address`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The immutable config in force. Requests hold an `Arc<Snapshot>` for their lifetime.
pub struct Snapshot {
    pub version: u64,
    pub source: String,
    pub timeouts: GlobalTimeouts,
    pub inbound: Vec<InboundPlan>,
    pub outbound: Option<OutboundListener>,
    pub tcp_outbound: Vec<TcpOutboundListener>,
    services: HashMap<String, Arc<ServiceRuntime>>,
    /// Lower-case `host:port` (every accepted spelling) -> service key.
    authorities: HashMap<String, String>,
}

pub struct InboundPlan {
    pub listener: InboundListener,
    /// direction inbound, authority = listen address, dst_service = listener.service, route "default".
    pub http_stats: Arc<HttpStats>,
    /// direction inbound, target_addr = forward_to.
    pub tcp_stats: Arc<TcpStats>,
}

pub struct ServiceRuntime {
    pub key: String,
    pub spec: ServiceSpec,
    pub balancer: Balancer,
    pub router: Router,
    /// One TCP stats handle per endpoint address (direction outbound).
    tcp_stats: HashMap<SocketAddr, Arc<TcpStats>>,
}

impl ServiceRuntime {
    pub fn tcp_stats(&self, endpoint: SocketAddr) -> Option<&Arc<TcpStats>> {
        self.tcp_stats.get(&endpoint)
    }
}

impl Snapshot {
    /// Validates everything (unknown service refs, duplicate listen addresses, bad regexes,
    /// duplicate services, zero-weight-only endpoint sets...) and builds the runtime state.
    pub fn compile(
        config: &ProxyConfig,
        version: u64,
        loads: &LoadRegistry,
        stats: &StatsRegistry,
    ) -> Result<Snapshot, ConfigError> {
        todo!()
    }

    pub fn service(&self, key: &str) -> Option<&Arc<ServiceRuntime>> {
        self.services.get(key)
    }

    /// Resolves what a client addressed (`orders`, `orders:80`, `orders.default`,
    /// `orders.default.svc.cluster.local:80`, case-insensitive) to a Service. A missing port
    /// means `default_port` (80 for http, 443 never: TLS origination is not ours here).
    pub fn resolve_authority(&self, authority: &str, default_port: u16) -> Option<&Arc<ServiceRuntime>> {
        todo!()
    }

    pub fn inbound_plan(&self, listen: SocketAddr) -> Option<&InboundPlan> {
        self.inbound.iter().find(|p| p.listener.listen == listen)
    }
}
