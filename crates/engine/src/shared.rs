//! State shared by the engine facade and every connection task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use parking_lot::Mutex;

use crate::balance::LoadRegistry;
use crate::drain::Drain;
use crate::http::client::Pools;
use crate::resilience::ResilienceRegistry;
use crate::snapshot::{ServiceRuntime, Snapshot};
use crate::stats::{Direction, HttpLabels, HttpStats, StatsRegistry, TcpLabels, TcpStats};
use crate::tls::WorkloadTls;

/// Passthrough stats handles cached per authority; past this many distinct authorities the
/// cache starts over (the registry keeps the handles, this only saves the label building).
const PASSTHROUGH_CACHE_LIMIT: usize = 1024;

pub(crate) struct Shared {
    /// The config in force; `None` until the first successful apply.
    pub(crate) snapshot: ArcSwapOption<Snapshot>,
    pub(crate) loads: LoadRegistry,
    pub(crate) stats: StatsRegistry,
    pub(crate) resilience: ResilienceRegistry,
    pub(crate) pools: Pools,
    pub(crate) drain: Drain,
    /// The workload identity mesh mTLS is served with; `None` until one is installed.
    /// Swapped whole on renewal: a connection keeps the one it was accepted with.
    pub(crate) identity: ArcSwapOption<WorkloadTls>,
    /// Addresses our listeners are bound to; passthrough never connects back to them.
    pub(crate) bound: ArcSwap<Vec<SocketAddr>>,
    passthrough_http: Mutex<HashMap<(String, u16), Arc<HttpStats>>>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            snapshot: ArcSwapOption::empty(),
            loads: LoadRegistry::new(),
            stats: StatsRegistry::new(),
            resilience: ResilienceRegistry::new(),
            pools: Pools::new(),
            drain: Drain::new(),
            identity: ArcSwapOption::empty(),
            bound: ArcSwap::from_pointee(Vec::new()),
            passthrough_http: Mutex::new(HashMap::new()),
        }
    }

    /// Would connecting to `addr` reach one of our own listeners (a forwarding loop)?
    pub(crate) fn is_own_listener(&self, addr: SocketAddr) -> bool {
        self.bound.load().iter().any(|bound| {
            bound.port() == addr.port()
                && (bound.ip() == addr.ip()
                    || (bound.ip().is_unspecified() && addr.ip().is_loopback()))
        })
    }

    /// HTTP stats of requests passed through to `host:port` (no Service, route "default").
    pub(crate) fn passthrough_http_stats(&self, host: &str, port: u16) -> Arc<HttpStats> {
        let key = (host.to_owned(), port);
        let mut cache = self.passthrough_http.lock();
        if let Some(stats) = cache.get(&key) {
            return stats.clone();
        }
        let stats = self.stats.http(HttpLabels {
            direction: Direction::Outbound,
            authority: format_authority(host, port),
            dst_service: String::new(),
            route: "default".to_owned(),
            tls: false,
            client_id: String::new(),
        });
        if cache.len() >= PASSTHROUGH_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, stats.clone());
        stats
    }

    /// TCP stats of connections to `endpoint` of `service`: the snapshot's handle, or the
    /// registry's for an endpoint the snapshot has none for.
    /// With `tls` (mesh mTLS connections, rare: one per endpoint) the registry's handle
    /// with `tls="true"`.
    pub(crate) fn endpoint_tcp_stats(
        &self,
        service: &ServiceRuntime,
        endpoint: SocketAddr,
        tls: bool,
    ) -> Arc<TcpStats> {
        match service.tcp_stats(endpoint) {
            Some(stats) if !tls => stats.clone(),
            _ => self.stats.tcp(TcpLabels {
                direction: Direction::Outbound,
                dst_service: service.key.clone(),
                target_addr: endpoint.to_string(),
                tls,
                client_id: String::new(),
            }),
        }
    }

    /// TCP stats of passthrough connections (CONNECT tunnels, HTTP) to `target`.
    pub(crate) fn passthrough_tcp_stats(&self, target: SocketAddr) -> Arc<TcpStats> {
        self.stats.tcp(TcpLabels {
            direction: Direction::Outbound,
            dst_service: String::new(),
            target_addr: target.to_string(),
            tls: false,
            client_id: String::new(),
        })
    }
}

/// `host:port`, with an IPv6 host in brackets.
fn format_authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
