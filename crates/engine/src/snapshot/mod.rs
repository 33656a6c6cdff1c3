//! Compiles and validates a `ProxyConfig` into the immutable runtime `Snapshot`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use mesh_identity::SpiffeId;

use crate::authz::Authorizer;
use crate::balance::{Balancer, LoadRegistry};
use crate::config::CircuitBreakerSpec;
use crate::config::{
    GlobalTimeouts, HttpRouteSpec, InboundListener, OutboundListener, ProxyConfig, ServiceSpec,
    TcpOutboundListener,
};
use crate::resilience::{RateLimiter, ResilienceRegistry, ServiceBreaker};
use crate::route::{self, Router};
use crate::stats::{
    Direction, HttpLabels, HttpStats, InboundPortLabels, StatsRegistry, TcpLabels, TcpStats,
    TlsRefusals,
};

mod validate;

#[cfg(test)]
mod tests;

pub use validate::MAX_DETECT_MS;

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
    /// The workload's AuthorizationPolicies, checked on every inbound port; `None`
    /// without policies (everything allowed).
    pub authorizer: Option<Arc<Authorizer>>,
    services: HashMap<String, Arc<ServiceRuntime>>,
    /// Lower-case host of every accepted spelling (`orders`, `orders.default`,
    /// `orders.default.svc`, `orders.default.svc.cluster.local`) -> (port, service).
    /// Keyed by host alone so a lookup needs no `host:port` string.
    authorities: HashMap<String, Vec<(u16, Arc<ServiceRuntime>)>>,
    /// Breaker limits this snapshot brings, applied by [`Snapshot::activate`].
    breaker_limits: Vec<(Arc<ServiceBreaker>, CircuitBreakerSpec, u32)>,
}

pub struct InboundPlan {
    pub listener: InboundListener,
    /// direction inbound, authority = listen address, dst_service = listener.service, route "default".
    pub http_stats: Arc<HttpStats>,
    /// direction inbound, target_addr = forward_to.
    pub tcp_stats: Arc<TcpStats>,
    /// The labels of `http_stats` and `tcp_stats`, for the per-client handles of mTLS
    /// connections (the same labels with `tls` and `client_id`).
    pub http_labels: HttpLabels,
    pub tcp_labels: TcpLabels,
    /// Connections the port refused before serving them.
    pub tls_refusals: Arc<TlsRefusals>,
    /// Ingress TLS: the user's certificate, read at compile.
    pub ingress_tls: Option<Arc<rustls::ServerConfig>>,
    /// The port's token bucket, if it has a rate limit.
    pub rate_limiter: Option<Arc<RateLimiter>>,
}

pub struct ServiceRuntime {
    pub key: String,
    pub spec: ServiceSpec,
    pub balancer: Balancer,
    /// Limits and outlier ejection, if the Service has a circuit breaker.
    pub breaker: Option<Arc<ServiceBreaker>>,
    pub router: Router,
    /// One TCP stats handle per endpoint address (direction outbound).
    tcp_stats: HashMap<SocketAddr, Arc<TcpStats>>,
    /// The SPIFFE id each endpoint must prove; empty unless every endpoint has one.
    identities: HashMap<SocketAddr, Arc<SpiffeId>>,
}

impl ServiceRuntime {
    pub fn tcp_stats(&self, endpoint: SocketAddr) -> Option<&Arc<TcpStats>> {
        self.tcp_stats.get(&endpoint)
    }

    /// Whether traffic to the Service is mesh mTLS (when this proxy holds an identity):
    /// every endpoint names the identity it serves with. A Service with endpoints outside
    /// the mesh is plaintext to all of them, so retries and balancing never mix the two.
    pub fn is_meshed(&self) -> bool {
        !self.identities.is_empty()
    }

    /// The SPIFFE id `endpoint` must prove, for a meshed Service.
    pub fn identity_of(&self, endpoint: SocketAddr) -> Option<&Arc<SpiffeId>> {
        self.identities.get(&endpoint)
    }
}

/// Every endpoint names the identity its proxy serves (see [`ServiceRuntime::is_meshed`]).
fn is_meshed(spec: &ServiceSpec) -> bool {
    !spec.endpoints.is_empty() && spec.endpoints.iter().all(|e| e.identity.is_some())
}

impl Snapshot {
    /// Validates everything (unknown service refs, duplicate listen addresses, bad regexes,
    /// duplicate services, weight overflows...) and builds the runtime state. The first
    /// problem in config order is returned. A service whose endpoints all have weight 0
    /// is valid: it answers 503, which is how an operator drains it.
    ///
    /// On success, load state of endpoints and services no config names any more is
    /// dropped from `loads` (see [`LoadRegistry::retain`]), and resilience state nothing
    /// uses from `resilience`.
    pub fn compile(
        config: &ProxyConfig,
        version: u64,
        loads: &LoadRegistry,
        stats: &StatsRegistry,
        resilience: &ResilienceRegistry,
    ) -> Result<Snapshot, ConfigError> {
        validate::timeouts(&config.timeouts)?;
        let service_index = validate::services(&config.services)?;
        let mut route_names = HashMap::new();
        for (i, route) in config.http_routes.iter().enumerate() {
            route::validate_route(i, route)?;
            validate::route_name_unique(i, route, &mut route_names)?;
            validate::route_refs(i, route, &config.services, &service_index)?;
        }
        validate::listeners(config, &service_index)?;
        let authorizer = Authorizer::compile(&config.authorization)?.map(Arc::new);

        let mut routes_by_parent: HashMap<&str, Vec<(usize, &HttpRouteSpec)>> = HashMap::new();
        for (i, route) in config.http_routes.iter().enumerate() {
            let mut parents: Vec<&str> = route.parents.iter().map(String::as_str).collect();
            parents.sort_unstable();
            parents.dedup();
            for parent in parents {
                routes_by_parent.entry(parent).or_default().push((i, route));
            }
        }

        // Traffic to these goes over mesh mTLS: their request metrics say tls="true".
        let meshed: HashSet<String> = config
            .services
            .iter()
            .filter(|spec| is_meshed(spec))
            .map(ServiceSpec::key)
            .collect();
        let mut services = HashMap::with_capacity(config.services.len());
        let mut ordered = Vec::with_capacity(config.services.len());
        let mut breaker_limits = Vec::new();
        for (index, spec) in config.services.iter().enumerate() {
            let key = spec.key();
            let routes = routes_by_parent
                .get(key.as_str())
                .map_or(&[][..], Vec::as_slice);
            let mut balancer = Balancer::new(&spec.load_balancer, &key, &spec.endpoints, loads);
            let breaker = match &spec.circuit_breaker {
                None => None,
                Some(limits) => {
                    let usable = u32::try_from(balancer.usable_count()).unwrap_or(u32::MAX);
                    let breaker = resilience.breaker(
                        &key,
                        &format!("services[{index}].circuitBreaker"),
                        limits,
                        usable,
                    )?;
                    breaker_limits.push((breaker.clone(), limits.clone(), usable));
                    if limits.consecutive_failures > 0 {
                        balancer = balancer.with_outlier_detection(breaker.clone(), |addr| {
                            resilience.endpoint_health(&breaker, addr)
                        });
                    }
                    Some(breaker)
                }
            };
            let mut identities = HashMap::new();
            for (j, endpoint) in spec.endpoints.iter().enumerate() {
                if let Some(id) = &endpoint.identity {
                    let parsed = SpiffeId::parse(id).map_err(|e| ConfigError {
                        path: format!("services[{index}].endpoints[{j}].identity"),
                        message: e.message().to_string(),
                    })?;
                    identities.insert(endpoint.address, Arc::new(parsed));
                }
            }
            if !is_meshed(spec) {
                identities.clear();
            }
            let runtime = Arc::new(ServiceRuntime {
                identities,
                balancer,
                breaker,
                router: Router::compile_meshed(spec, routes, stats, resilience, &|backend| {
                    meshed.contains(backend)
                })?,
                tcp_stats: spec
                    .endpoints
                    .iter()
                    .map(|e| {
                        let labels = TcpLabels {
                            direction: Direction::Outbound,
                            dst_service: key.clone(),
                            target_addr: e.address.to_string(),
                            tls: false,
                            client_id: String::new(),
                        };
                        (e.address, stats.tcp(labels))
                    })
                    .collect(),
                key: key.clone(),
                spec: spec.clone(),
            });
            ordered.push(Arc::clone(&runtime));
            services.insert(key, runtime);
        }

        let mut inbound = Vec::with_capacity(config.inbound.len());
        for (i, listener) in config.inbound.iter().enumerate() {
            let rate_limiter = match &listener.rate_limit {
                None => None,
                Some(spec) => Some(resilience.rate_limiter(
                    format!("inbound[{i}]:{}", listener.listen),
                    &format!("inbound[{i}].rateLimit"),
                    spec,
                )?),
            };
            let ingress_tls = match &listener.tls {
                None => None,
                Some(spec) => Some(crate::tls::ingress_server_config(
                    &spec.certificate,
                    &spec.key,
                    listener.protocol,
                    &format!("inbound[{i}].tls"),
                )?),
            };
            let http_labels = HttpLabels {
                direction: Direction::Inbound,
                authority: listener.listen.to_string(),
                dst_service: listener.service.clone(),
                route: route::DEFAULT_ROUTE.to_owned(),
                tls: false,
                client_id: String::new(),
            };
            let tcp_labels = TcpLabels {
                direction: Direction::Inbound,
                dst_service: listener.service.clone(),
                target_addr: listener.forward_to.to_string(),
                tls: false,
                client_id: String::new(),
            };
            inbound.push(InboundPlan {
                http_stats: stats.http(http_labels.clone()),
                tcp_stats: stats.tcp(tcp_labels.clone()),
                tls_refusals: stats.tls_refusals(InboundPortLabels {
                    authority: http_labels.authority.clone(),
                    dst_service: http_labels.dst_service.clone(),
                }),
                http_labels,
                tcp_labels,
                ingress_tls,
                rate_limiter,
                listener: listener.clone(),
            });
        }

        let addresses: HashSet<SocketAddr> = config
            .services
            .iter()
            .flat_map(|s| s.endpoints.iter().map(|e| e.address))
            .collect();
        loads.retain(&addresses);
        loads.retain_cursors(&services.keys().map(String::as_str).collect());
        resilience.retain_used();

        Ok(Snapshot {
            version,
            source: config.source.clone(),
            timeouts: config.timeouts.clone(),
            inbound,
            outbound: config.outbound.clone(),
            tcp_outbound: config.tcp_outbound.clone(),
            authorizer,
            authorities: authorities(&ordered),
            services,
            breaker_limits,
        })
    }

    /// Puts the snapshot's breaker limits in force; called as the snapshot is swapped in
    /// (breakers are shared with the snapshot in force until then).
    pub fn activate(&self) {
        for (breaker, limits, endpoints) in &self.breaker_limits {
            breaker.configure(limits, *endpoints);
        }
    }

    pub fn service(&self, key: &str) -> Option<&Arc<ServiceRuntime>> {
        self.services.get(key)
    }

    /// Every service, in no particular order.
    pub fn services(&self) -> impl Iterator<Item = &Arc<ServiceRuntime>> {
        self.services.values()
    }

    /// Resolves what a client addressed (`orders`, `orders:80`, `orders.default`,
    /// `orders.default.svc.cluster.local:80`, case-insensitive) to a Service. A missing port
    /// means `default_port` (80 for http, 443 never: TLS origination is not ours here).
    /// A trailing dot on the host (`orders.default.svc.cluster.local.`) is ignored; IP
    /// literals and malformed authorities resolve to nothing. Does not allocate.
    pub fn resolve_authority(
        &self,
        authority: &str,
        default_port: u16,
    ) -> Option<&Arc<ServiceRuntime>> {
        let (host, port) = split_authority(authority, default_port)?;
        let mut buffer = [0u8; MAX_HOST_LEN];
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            let lowered = buffer.get_mut(..host.len())?;
            lowered.copy_from_slice(host.as_bytes());
            lowered.make_ascii_lowercase();
            std::str::from_utf8(lowered).ok()?
        } else {
            host
        };
        let candidates = self.authorities.get(host)?;
        candidates
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, service)| service)
    }

    pub fn inbound_plan(&self, listen: SocketAddr) -> Option<&InboundPlan> {
        self.inbound.iter().find(|p| p.listener.listen == listen)
    }
}

/// Longest DNS name; longer hosts cannot name a service.
const MAX_HOST_LEN: usize = 253;

/// Splits `host[:port]` (userinfo dropped, trailing dot of the host dropped, missing or
/// empty port = `default_port`). `None` for IP-literal-looking or malformed input.
fn split_authority(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    if authority.starts_with('[') {
        // An IPv6 literal never names a service.
        return None;
    }
    let (host, port) = match authority.split_once(':') {
        None => (authority, default_port),
        Some((host, "")) => (host, default_port),
        Some((host, port)) => {
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                // Also catches unbracketed IPv6 (`::1`): a second ':' is not a digit.
                return None;
            }
            (host, port.parse().ok()?)
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return None;
    }
    Some((host, port))
}

/// Every spelling of every service. The short spellings (`name`) of services sharing a
/// name across namespaces collide: the one in namespace `default` wins, else the first
/// listed; the namespace-qualified spellings are always unique.
fn authorities(
    services: &[Arc<ServiceRuntime>],
) -> HashMap<String, Vec<(u16, Arc<ServiceRuntime>)>> {
    let mut ordered: Vec<&Arc<ServiceRuntime>> = services.iter().collect();
    ordered.sort_by_key(|s| s.spec.namespace != "default");
    let mut map: HashMap<String, Vec<(u16, Arc<ServiceRuntime>)>> =
        HashMap::with_capacity(services.len() * 4);
    for service in ordered {
        let name = service.spec.name.to_ascii_lowercase();
        let namespace = service.spec.namespace.to_ascii_lowercase();
        let port = service.spec.port;
        let spellings = [
            name.clone(),
            format!("{name}.{namespace}"),
            format!("{name}.{namespace}.svc"),
            format!("{name}.{namespace}.svc.cluster.local"),
        ];
        for host in spellings {
            let entries = map.entry(host).or_default();
            if !entries.iter().any(|(p, _)| *p == port) {
                entries.push((port, Arc::clone(service)));
            }
        }
    }
    map
}
