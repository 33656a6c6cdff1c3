//! Whole-config checks that need more than one resource: references between services,
//! routes and listeners, and listen-address conflicts. Each returns the first problem in
//! config order, with the path of the offending field.

use std::collections::HashMap;
use std::net::SocketAddr;

use http::header::HeaderName;

use super::ConfigError;
use crate::config::{
    GlobalTimeouts, HttpRouteSpec, LoadBalancer, ProxyConfig, ServiceProtocol, ServiceSpec,
};

/// Longest accepted protocol detection timeout.
pub const MAX_DETECT_MS: u64 = 10_000;

fn error(path: String, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path,
        message: message.into(),
    }
}

pub(super) fn timeouts(timeouts: &GlobalTimeouts) -> Result<(), ConfigError> {
    if timeouts.detect_ms > MAX_DETECT_MS {
        return Err(error(
            "timeouts.detectMs".into(),
            format!(
                "must be at most {MAX_DETECT_MS} ms, got {}",
                timeouts.detect_ms
            ),
        ));
    }
    if timeouts.connect_ms == 0 {
        return Err(error("timeouts.connectMs".into(), "must be greater than 0"));
    }
    Ok(())
}

/// Checks every service on its own and against the others; returns key -> index.
pub(super) fn services(services: &[ServiceSpec]) -> Result<HashMap<String, usize>, ConfigError> {
    let mut by_key: HashMap<String, usize> = HashMap::with_capacity(services.len());
    for (i, service) in services.iter().enumerate() {
        dns_label(format!("services[{i}].name"), &service.name)?;
        dns_label(format!("services[{i}].namespace"), &service.namespace)?;
        let key = service.key();
        if let Some(first) = by_key.get(&key) {
            return Err(error(
                format!("services[{i}].name"),
                format!("duplicate service \"{key}\" (already defined by services[{first}])"),
            ));
        }
        if service.port == 0 {
            return Err(error(
                format!("services[{i}].port"),
                "must be between 1 and 65535, got 0",
            ));
        }
        endpoints(i, service)?;
        if let Some(limits) = &service.circuit_breaker {
            crate::resilience::ServiceBreaker::validate(
                &format!("services[{i}].circuitBreaker"),
                limits,
            )?;
        }
        if let LoadBalancer::RingHash {
            header: Some(header),
        } = &service.load_balancer
        {
            if HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(error(
                    format!("services[{i}].loadBalancer.header"),
                    format!("{header:?} is not a valid header name"),
                ));
            }
        }
        by_key.insert(key, i);
    }
    Ok(by_key)
}

fn endpoints(index: usize, service: &ServiceSpec) -> Result<(), ConfigError> {
    let mut seen: HashMap<SocketAddr, usize> = HashMap::with_capacity(service.endpoints.len());
    let mut total_weight: u32 = 0;
    for (k, endpoint) in service.endpoints.iter().enumerate() {
        let path = format!("services[{index}].endpoints[{k}]");
        let addr = endpoint.address;
        if addr.port() == 0 {
            return Err(error(
                format!("{path}.address"),
                format!("port must not be 0 in {addr}"),
            ));
        }
        if addr.ip().is_unspecified() {
            return Err(error(
                format!("{path}.address"),
                format!("{addr} is not a connectable address"),
            ));
        }
        if let Some(first) = seen.insert(addr, k) {
            return Err(error(
                format!("{path}.address"),
                format!("duplicate endpoint {addr} (already listed as endpoints[{first}])"),
            ));
        }
        total_weight = total_weight.checked_add(endpoint.weight).ok_or_else(|| {
            error(
                format!("{path}.weight"),
                format!("endpoint weights add up to more than {}", u32::MAX),
            )
        })?;
    }
    Ok(())
}

/// Kubernetes' DNS-1035-style label rule (lower-case letters, digits, '-'), which keeps
/// every authority spelling (`name.namespace.svc...`) unambiguous.
fn dns_label(path: String, value: &str) -> Result<(), ConfigError> {
    let bytes = value.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if valid {
        Ok(())
    } else {
        Err(error(
            path,
            format!(
                "expected a DNS label (up to 63 lower-case letters, digits and '-', \
                 starting and ending with a letter or digit), got {value:?}"
            ),
        ))
    }
}

/// References of one route: parents and backends must name known, non-TCP services.
pub(super) fn route_refs(
    index: usize,
    route: &HttpRouteSpec,
    services: &[ServiceSpec],
    by_key: &HashMap<String, usize>,
) -> Result<(), ConfigError> {
    for (p, parent) in route.parents.iter().enumerate() {
        http_service(
            format!("httpRoutes[{index}].parents[{p}]"),
            parent,
            services,
            by_key,
        )?;
    }
    for (r, rule) in route.rules.iter().enumerate() {
        for (b, backend) in rule.backends.iter().enumerate() {
            let path = format!("httpRoutes[{index}].rules[{r}].backends[{b}].service");
            http_service(path, &backend.service, services, by_key)?;
        }
    }
    Ok(())
}

fn http_service(
    path: String,
    key: &str,
    services: &[ServiceSpec],
    by_key: &HashMap<String, usize>,
) -> Result<(), ConfigError> {
    let Some(&i) = by_key.get(key) else {
        return Err(error(path, format!("unknown service \"{key}\"")));
    };
    if services[i].protocol == ServiceProtocol::Tcp {
        return Err(error(
            path,
            format!("service \"{key}\" has protocol tcp; HTTPRoutes apply only to HTTP services"),
        ));
    }
    Ok(())
}

/// Listen addresses must not collide, inbound listeners must not forward to themselves,
/// and TCP outbound ports must name a known service.
pub(super) fn listeners(
    config: &ProxyConfig,
    by_key: &HashMap<String, usize>,
) -> Result<(), ConfigError> {
    let mut bound: Vec<(String, SocketAddr)> = Vec::new();
    let mut claim = |path: String, addr: SocketAddr| -> Result<(), ConfigError> {
        if addr.port() != 0 {
            if let Some((other, _)) = bound.iter().find(|(_, taken)| overlaps(*taken, addr)) {
                return Err(error(path, format!("{addr} is already used by {other}")));
            }
        }
        bound.push((path, addr));
        Ok(())
    };
    for (i, inbound) in config.inbound.iter().enumerate() {
        claim(format!("inbound[{i}].listen"), inbound.listen)?;
        let forward_to = inbound.forward_to;
        if forward_to.port() == 0 {
            return Err(error(
                format!("inbound[{i}].forwardTo"),
                format!("port must not be 0 in {forward_to}"),
            ));
        }
        if forwards_to_itself(inbound.listen, forward_to) {
            return Err(error(
                format!("inbound[{i}].forwardTo"),
                format!(
                    "{forward_to} is this listener's own address ({}); it would loop",
                    inbound.listen
                ),
            ));
        }
    }
    if let Some(outbound) = &config.outbound {
        claim("outbound.listen".into(), outbound.listen)?;
    }
    for (k, tcp) in config.tcp_outbound.iter().enumerate() {
        claim(format!("outbound.tcp[{k}].listen"), tcp.listen)?;
        if !by_key.contains_key(&tcp.service) {
            return Err(error(
                format!("outbound.tcp[{k}].service"),
                format!("unknown service \"{}\"", tcp.service),
            ));
        }
    }
    Ok(())
}

/// Whether two listen addresses with the same non-zero port cannot both be bound: equal
/// addresses, or one wildcard covering the other (`[::]` also covers IPv4 on dual-stack hosts).
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() {
        return false;
    }
    let covers = |wide: SocketAddr, other: SocketAddr| {
        wide.ip().is_unspecified() && (wide.is_ipv6() || wide.is_ipv4() == other.is_ipv4())
    };
    a.ip() == b.ip() || covers(a, b) || covers(b, a)
}

/// Forwarding to the listen address itself, or to a local address a wildcard listen
/// address also covers, would send the proxy its own traffic.
fn forwards_to_itself(listen: SocketAddr, forward_to: SocketAddr) -> bool {
    if listen.port() == 0 || listen.port() != forward_to.port() {
        return false;
    }
    listen.ip() == forward_to.ip()
        || (listen.ip().is_unspecified()
            && (forward_to.ip().is_loopback() || forward_to.ip().is_unspecified()))
}

/// Duplicate HTTPRoutes (same namespace and name) are refused like duplicate services.
/// `seen` maps (namespace, name) to the index of the first route seen with them.
pub(super) fn route_name_unique<'a>(
    index: usize,
    route: &'a HttpRouteSpec,
    seen: &mut HashMap<(&'a str, &'a str), usize>,
) -> Result<(), ConfigError> {
    if let Some(first) = seen.get(&(route.namespace.as_str(), route.name.as_str())) {
        return Err(error(
            format!("httpRoutes[{index}].name"),
            format!(
                "duplicate HTTPRoute \"{}/{}\" (already defined by httpRoutes[{first}])",
                route.namespace, route.name
            ),
        ));
    }
    seen.insert((route.namespace.as_str(), route.name.as_str()), index);
    Ok(())
}
