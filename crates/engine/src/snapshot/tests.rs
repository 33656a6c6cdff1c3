use super::*;
use crate::config::{
    BackendRefSpec, EndpointSpec, HttpMatchSpec, HttpRuleSpec, LoadBalancer, MtlsMode, PathMatch,
    Protocol, ServiceProtocol,
};
use crate::resilience::ResilienceRegistry;
use std::collections::BTreeMap;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn service(namespace: &str, name: &str, port: u16, endpoints: &[&str]) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        namespace: namespace.into(),
        port,
        protocol: ServiceProtocol::Http,
        endpoints: endpoints
            .iter()
            .map(|a| EndpointSpec {
                address: addr(a),
                weight: 1,
                labels: BTreeMap::new(),
                identity: None,
            })
            .collect(),
        load_balancer: LoadBalancer::RoundRobin,
        circuit_breaker: None,
    }
}

fn tcp_service(namespace: &str, name: &str, port: u16) -> ServiceSpec {
    ServiceSpec {
        protocol: ServiceProtocol::Tcp,
        ..service(namespace, name, port, &["127.0.0.1:5432"])
    }
}

fn route(name: &str, parents: &[&str], rules: Vec<HttpRuleSpec>) -> HttpRouteSpec {
    HttpRouteSpec {
        name: name.into(),
        namespace: "default".into(),
        parents: parents.iter().map(|p| p.to_string()).collect(),
        rules,
    }
}

fn split(backends: &[(&str, u32)]) -> HttpRuleSpec {
    HttpRuleSpec {
        backends: backends
            .iter()
            .map(|(s, w)| BackendRefSpec {
                service: s.to_string(),
                weight: *w,
            })
            .collect(),
        ..Default::default()
    }
}

fn inbound(listen: &str, forward_to: &str) -> InboundListener {
    InboundListener {
        listen: addr(listen),
        forward_to: addr(forward_to),
        protocol: Protocol::Auto,
        service: "web".into(),
        rate_limit: None,
        mtls: MtlsMode::Permissive,
        tls: None,
    }
}

/// A valid config exercising every part: two HTTP services, a TCP service, a route,
/// an inbound, the outbound and a TCP outbound listener.
fn valid_config() -> ProxyConfig {
    ProxyConfig {
        source: "mesh.yaml".into(),
        inbound: vec![inbound("127.0.0.1:4143", "127.0.0.1:8080")],
        outbound: Some(OutboundListener {
            listen: addr("127.0.0.1:4140"),
            passthrough: true,
        }),
        tcp_outbound: vec![TcpOutboundListener {
            listen: addr("127.0.0.1:15432"),
            service: "db/postgres".into(),
        }],
        services: vec![
            service(
                "default",
                "orders",
                80,
                &["127.0.0.1:18080", "127.0.0.1:18081"],
            ),
            service("default", "orders-v2", 8080, &["127.0.0.1:18082"]),
            tcp_service("db", "postgres", 5432),
        ],
        http_routes: vec![route(
            "orders-canary",
            &["default/orders"],
            vec![split(&[("default/orders-v2", 10), ("default/orders", 90)])],
        )],
        authorization: Vec::new(),
        timeouts: GlobalTimeouts::default(),
    }
}

fn compile(config: &ProxyConfig) -> Result<Snapshot, ConfigError> {
    Snapshot::compile(
        config,
        1,
        &LoadRegistry::new(),
        &StatsRegistry::new(),
        &ResilienceRegistry::new(),
    )
}

fn error_of(config: &ProxyConfig) -> ConfigError {
    let e = compile(config).err().expect("config should be refused");
    assert!(
        !e.message.is_empty() && !e.message.contains('\n'),
        "one clear line: {e}"
    );
    e
}

#[test]
fn a_valid_config_compiles_into_runtime_state() {
    let loads = LoadRegistry::new();
    let stats = StatsRegistry::new();
    let resilience = ResilienceRegistry::new();
    let snapshot = Snapshot::compile(&valid_config(), 7, &loads, &stats, &resilience).unwrap();
    assert_eq!(snapshot.version, 7);
    assert_eq!(snapshot.source, "mesh.yaml");
    assert_eq!(snapshot.services().count(), 3);

    let orders = snapshot.service("default/orders").unwrap();
    assert_eq!(orders.key, "default/orders");
    assert_eq!(orders.balancer.endpoints().len(), 2);
    assert!(orders.tcp_stats(addr("127.0.0.1:18080")).is_some());
    assert!(orders.tcp_stats(addr("127.0.0.1:9")).is_none());
    let request = http::Request::get("/x").body(()).unwrap().into_parts().0;
    let rule = orders.router.select(&request);
    assert_eq!(rule.route_name, "orders-canary");
    assert_eq!(rule.backends().len(), 2);
    // Routes attach only to their parents.
    let v2 = snapshot.service("default/orders-v2").unwrap();
    assert_eq!(v2.router.select(&request).route_name, "default");

    assert_eq!(loads.endpoint_count(), 4);
    assert_eq!(snapshot.inbound.len(), 1);
    assert!(snapshot.inbound_plan(addr("127.0.0.1:4143")).is_some());
    assert_eq!(snapshot.tcp_outbound.len(), 1);
    assert!(snapshot.outbound.is_some());

    let snap = stats.snapshot();
    let inbound_http = snap
        .http
        .iter()
        .find(|e| e.labels.direction == Direction::Inbound)
        .unwrap();
    assert_eq!(
        inbound_http.labels,
        HttpLabels {
            direction: Direction::Inbound,
            authority: "127.0.0.1:4143".into(),
            dst_service: "web".into(),
            route: "default".into(),
            tls: false,
            client_id: String::new(),
        }
    );
    let tcp: Vec<(Direction, &str, &str)> = snap
        .tcp
        .iter()
        .map(|e| {
            (
                e.labels.direction,
                e.labels.dst_service.as_str(),
                e.labels.target_addr.as_str(),
            )
        })
        .collect();
    assert!(tcp.contains(&(Direction::Inbound, "web", "127.0.0.1:8080")));
    assert!(tcp.contains(&(Direction::Outbound, "default/orders", "127.0.0.1:18081")));
    assert!(tcp.contains(&(Direction::Outbound, "db/postgres", "127.0.0.1:5432")));
    let canary = snap
        .http
        .iter()
        .find(|e| e.labels.route == "orders-canary" && e.labels.dst_service == "default/orders-v2")
        .expect("backend stats");
    assert_eq!(canary.labels.authority, "orders.default:80");
}

#[test]
fn load_state_and_counters_survive_a_recompile() {
    let loads = LoadRegistry::new();
    let stats = StatsRegistry::new();
    let resilience = ResilienceRegistry::new();
    let first = Snapshot::compile(&valid_config(), 1, &loads, &stats, &resilience).unwrap();
    let endpoint = &first
        .service("default/orders")
        .unwrap()
        .balancer
        .endpoints()[0];
    let _in_flight = endpoint.load.start();
    first.inbound[0].http_stats.request();
    let second = Snapshot::compile(&valid_config(), 2, &loads, &stats, &resilience).unwrap();
    let again = &second
        .service("default/orders")
        .unwrap()
        .balancer
        .endpoints()[0];
    assert_eq!(again.load.in_flight(), 1);
    assert!(Arc::ptr_eq(
        &first.inbound[0].http_stats,
        &second.inbound[0].http_stats
    ));
}

#[test]
fn endpoints_no_config_names_are_forgotten_once_unused() {
    let loads = LoadRegistry::new();
    let stats = StatsRegistry::new();
    let resilience = ResilienceRegistry::new();
    let first = Snapshot::compile(&valid_config(), 1, &loads, &stats, &resilience).unwrap();
    let mut smaller = valid_config();
    smaller.services[0].endpoints.truncate(1);
    let second = Snapshot::compile(&smaller, 2, &loads, &stats, &resilience).unwrap();
    assert_eq!(
        loads.endpoint_count(),
        4,
        "the old snapshot still uses 127.0.0.1:18081"
    );
    drop(first);
    let _third = Snapshot::compile(&smaller, 3, &loads, &stats, &resilience).unwrap();
    assert_eq!(loads.endpoint_count(), 3);
    drop(second);
}

#[test]
fn resolves_every_spelling_case_insensitively() {
    let snapshot = compile(&valid_config()).unwrap();
    let key = |authority: &str| {
        snapshot
            .resolve_authority(authority, 80)
            .map(|s| s.key.as_str())
    };
    for spelling in [
        "orders",
        "orders:80",
        "orders.default",
        "orders.default:80",
        "orders.default.svc",
        "orders.default.svc:80",
        "orders.default.svc.cluster.local",
        "orders.default.svc.cluster.local:80",
        "ORDERS.Default.SVC.cluster.LOCAL:80",
        "orders.default.svc.cluster.local.",
        "orders.default.svc.cluster.local.:80",
        "Orders:",
    ] {
        assert_eq!(key(spelling), Some("default/orders"), "{spelling}");
    }
    for miss in [
        "orders:8080",
        "orders.other",
        "orders.default.svc.cluster",
        "other",
        "orders:http",
        "",
        ":80",
    ] {
        assert_eq!(key(miss), None, "{miss}");
    }
}

#[test]
fn a_port_other_than_80_must_be_spelled_out() {
    let snapshot = compile(&valid_config()).unwrap();
    let key = |authority: &str, default_port| {
        snapshot
            .resolve_authority(authority, default_port)
            .map(|s| s.key.clone())
    };
    assert_eq!(
        key("orders-v2:8080", 80).as_deref(),
        Some("default/orders-v2")
    );
    assert_eq!(
        key("orders-v2.default.svc.cluster.local:8080", 80).as_deref(),
        Some("default/orders-v2")
    );
    assert_eq!(key("orders-v2", 80), None);
    assert_eq!(key("orders-v2:80", 80), None);
    assert_eq!(
        key("orders-v2", 8080).as_deref(),
        Some("default/orders-v2"),
        "the caller's default port"
    );
}

#[test]
fn ip_literals_and_malformed_authorities_resolve_to_nothing() {
    let snapshot = compile(&valid_config()).unwrap();
    for authority in [
        "[::1]:80",
        "[::1]",
        "::1",
        "[orders]:80",
        "127.0.0.1:80",
        "orders:99999",
        "orders:8o",
        "a:b:80",
    ] {
        assert!(
            snapshot.resolve_authority(authority, 80).is_none(),
            "{authority}"
        );
    }
    let long = "a".repeat(300);
    assert!(snapshot.resolve_authority(&long, 80).is_none());
    assert!(snapshot
        .resolve_authority(&long.to_uppercase(), 80)
        .is_none());
    assert_eq!(
        snapshot
            .resolve_authority("user@orders:80", 80)
            .unwrap()
            .key,
        "default/orders"
    );
}

#[test]
fn short_names_shared_across_namespaces_prefer_default() {
    let mut config = valid_config();
    config
        .services
        .insert(0, service("prod", "orders", 80, &["127.0.0.1:19000"]));
    let snapshot = compile(&config).unwrap();
    assert_eq!(
        snapshot.resolve_authority("orders", 80).unwrap().key,
        "default/orders"
    );
    assert_eq!(
        snapshot.resolve_authority("orders.prod", 80).unwrap().key,
        "prod/orders"
    );
    assert_eq!(
        snapshot
            .resolve_authority("orders.prod.svc.cluster.local:80", 80)
            .unwrap()
            .key,
        "prod/orders"
    );
}

#[test]
fn duplicate_service_is_refused() {
    let mut config = valid_config();
    config.services.push(service("default", "orders", 81, &[]));
    let e = error_of(&config);
    assert_eq!(e.path, "services[3].name");
    assert!(
        e.message.contains("default/orders") && e.message.contains("services[0]"),
        "{e}"
    );
}

#[test]
fn service_port_zero_is_refused() {
    let mut config = valid_config();
    config.services[1].port = 0;
    assert_eq!(error_of(&config).path, "services[1].port");
}

#[test]
fn service_names_must_be_dns_labels() {
    for (bad, path) in [
        ("", "services[1].name"),
        ("Orders", "services[1].name"),
        ("a.b", "services[1].name"),
    ] {
        let mut config = valid_config();
        config.services[1].name = bad.into();
        assert_eq!(error_of(&config).path, path, "{bad:?}");
    }
    let mut config = valid_config();
    config.services[2].namespace = "-db".into();
    assert_eq!(error_of(&config).path, "services[2].namespace");
}

#[test]
fn bad_endpoints_are_refused_with_their_index() {
    let mut config = valid_config();
    config.services[0].endpoints[1].address = addr("127.0.0.1:18080");
    let e = error_of(&config);
    assert_eq!(e.path, "services[0].endpoints[1].address");
    assert!(e.message.contains("duplicate"), "{e}");

    let mut config = valid_config();
    config.services[1].endpoints[0].address = addr("127.0.0.1:0");
    assert_eq!(error_of(&config).path, "services[1].endpoints[0].address");

    let mut config = valid_config();
    config.services[1].endpoints[0].address = addr("0.0.0.0:80");
    assert_eq!(error_of(&config).path, "services[1].endpoints[0].address");
}

#[test]
fn endpoint_weight_overflow_is_refused() {
    let mut config = valid_config();
    config.services[0].endpoints[0].weight = u32::MAX;
    let e = error_of(&config);
    assert_eq!(e.path, "services[0].endpoints[1].weight");
}

#[test]
fn zero_weight_endpoints_are_valid_and_drain_the_service() {
    let mut config = valid_config();
    for endpoint in &mut config.services[0].endpoints {
        endpoint.weight = 0;
    }
    let snapshot = compile(&config).unwrap();
    let ctx = crate::balance::PickContext {
        header_value: None,
        client_ip: None,
    };
    assert!(snapshot
        .service("default/orders")
        .unwrap()
        .balancer
        .pick(&ctx)
        .is_none());
}

#[test]
fn invalid_ring_hash_header_is_refused() {
    let mut config = valid_config();
    config.services[1].load_balancer = LoadBalancer::RingHash {
        header: Some("x user".into()),
    };
    assert_eq!(error_of(&config).path, "services[1].loadBalancer.header");
}

#[test]
fn route_parent_must_be_a_known_http_service() {
    let mut config = valid_config();
    config.http_routes[0].parents.push("default/missing".into());
    let e = error_of(&config);
    assert_eq!(e.path, "httpRoutes[0].parents[1]");
    assert_eq!(e.message, "unknown service \"default/missing\"");

    let mut config = valid_config();
    config.http_routes[0].parents = vec!["db/postgres".into()];
    let e = error_of(&config);
    assert_eq!(e.path, "httpRoutes[0].parents[0]");
    assert!(e.message.contains("protocol tcp"), "{e}");
}

#[test]
fn route_backend_must_be_a_known_service() {
    let mut config = valid_config();
    config.http_routes.push(route(
        "second",
        &["default/orders-v2"],
        vec![
            split(&[("default/orders", 1)]),
            split(&[("default/orders", 1), ("default/nope", 1)]),
        ],
    ));
    let e = error_of(&config);
    assert_eq!(e.path, "httpRoutes[1].rules[1].backends[1].service");
    assert_eq!(e.message, "unknown service \"default/nope\"");
}

#[test]
fn route_errors_use_the_config_index_even_when_another_parent_comes_first() {
    let mut config = valid_config();
    let bad_regex = HttpRuleSpec {
        matches: vec![HttpMatchSpec {
            path: Some(PathMatch::Regex("/(".into())),
            ..Default::default()
        }],
        ..Default::default()
    };
    config
        .http_routes
        .push(route("ok", &["default/orders-v2"], vec![]));
    config.http_routes.push(route(
        "bad",
        &["default/orders"],
        vec![HttpRuleSpec::default(), bad_regex],
    ));
    let e = error_of(&config);
    assert_eq!(e.path, "httpRoutes[2].rules[1].matches[0].path.value");
    assert!(e.message.starts_with("invalid regular expression"), "{e}");
}

#[test]
fn empty_and_duplicate_route_names_are_refused() {
    let mut config = valid_config();
    config
        .http_routes
        .push(route("", &["default/orders"], vec![]));
    assert_eq!(error_of(&config).path, "httpRoutes[1].name");

    let mut config = valid_config();
    config
        .http_routes
        .push(route("orders-canary", &["default/orders-v2"], vec![]));
    let e = error_of(&config);
    assert_eq!(e.path, "httpRoutes[1].name");
    assert!(e.message.contains("httpRoutes[0]"), "{e}");
}

#[test]
fn route_weight_overflow_is_refused() {
    let mut config = valid_config();
    config.http_routes[0].rules[0] =
        split(&[("default/orders", u32::MAX), ("default/orders-v2", 1)]);
    assert_eq!(
        error_of(&config).path,
        "httpRoutes[0].rules[0].backends[1].weight"
    );
}

#[test]
fn tcp_outbound_must_name_a_known_service() {
    let mut config = valid_config();
    config.tcp_outbound.push(TcpOutboundListener {
        listen: addr("127.0.0.1:15433"),
        service: "db/mysql".into(),
    });
    let e = error_of(&config);
    assert_eq!(e.path, "outbound.tcp[1].service");
    assert_eq!(e.message, "unknown service \"db/mysql\"");
}

#[test]
fn listeners_on_the_same_address_are_refused() {
    let mut config = valid_config();
    config
        .inbound
        .push(inbound("127.0.0.1:4140", "127.0.0.1:8081"));
    let e = error_of(&config);
    assert_eq!(e.path, "outbound.listen");
    assert_eq!(
        e.message,
        "127.0.0.1:4140 is already used by inbound[1].listen"
    );

    let mut config = valid_config();
    config.tcp_outbound[0].listen = addr("127.0.0.1:4143");
    assert_eq!(error_of(&config).path, "outbound.tcp[0].listen");

    let mut config = valid_config();
    config
        .inbound
        .push(inbound("0.0.0.0:4143", "127.0.0.1:8081"));
    assert_eq!(
        error_of(&config).path,
        "inbound[1].listen",
        "a wildcard covers 127.0.0.1"
    );

    let mut config = valid_config();
    config.inbound.push(inbound("[::]:4140", "127.0.0.1:8081"));
    assert_eq!(
        error_of(&config).path,
        "outbound.listen",
        "[::] covers IPv4 on dual-stack hosts"
    );
}

#[test]
fn distinct_and_ephemeral_listen_addresses_are_fine() {
    let mut config = valid_config();
    config
        .inbound
        .push(inbound("127.0.0.1:0", "127.0.0.1:8081"));
    config
        .inbound
        .push(inbound("127.0.0.1:0", "127.0.0.1:8082"));
    config
        .inbound
        .push(inbound("127.0.0.2:4143", "127.0.0.1:8083"));
    config.inbound.push(inbound("[::1]:4143", "127.0.0.1:8084"));
    config.outbound.as_mut().unwrap().listen = addr("127.0.0.1:0");
    assert!(compile(&config).is_ok());
}

#[test]
fn inbound_forwarding_to_itself_is_refused() {
    let mut config = valid_config();
    config.inbound[0].forward_to = config.inbound[0].listen;
    let e = error_of(&config);
    assert_eq!(e.path, "inbound[0].forwardTo");

    let mut config = valid_config();
    config.inbound[0] = inbound("0.0.0.0:4143", "127.0.0.1:4143");
    assert_eq!(
        error_of(&config).path,
        "inbound[0].forwardTo",
        "a wildcard listener includes loopback"
    );

    let mut config = valid_config();
    config.inbound[0] = inbound("127.0.0.1:4143", "127.0.0.1:0");
    assert_eq!(error_of(&config).path, "inbound[0].forwardTo");
}

#[test]
fn global_timeouts_are_checked() {
    let mut config = valid_config();
    config.timeouts.detect_ms = MAX_DETECT_MS + 1;
    assert_eq!(error_of(&config).path, "timeouts.detectMs");
    let mut config = valid_config();
    config.timeouts.connect_ms = 0;
    assert_eq!(error_of(&config).path, "timeouts.connectMs");
}

#[test]
fn an_empty_config_is_valid() {
    let snapshot = compile(&ProxyConfig::default()).unwrap();
    assert_eq!(snapshot.services().count(), 0);
    assert!(snapshot.resolve_authority("orders", 80).is_none());
}

#[test]
fn config_error_displays_as_one_line_with_its_path() {
    let e = ConfigError {
        path: "services[0].port".into(),
        message: "must be between 1 and 65535, got 0".into(),
    };
    assert_eq!(
        e.to_string(),
        "services[0].port: must be between 1 and 65535, got 0"
    );
}

#[test]
fn a_service_is_meshed_only_when_every_endpoint_names_a_valid_identity() {
    let with_identities = |ids: &[Option<&str>]| {
        let endpoints: Vec<String> = (0..ids.len())
            .map(|i| format!("127.0.0.1:{}", 9000 + i))
            .collect();
        let refs: Vec<&str> = endpoints.iter().map(String::as_str).collect();
        let mut spec = service("default", "orders", 80, &refs);
        for (endpoint, id) in spec.endpoints.iter_mut().zip(ids) {
            endpoint.identity = id.map(str::to_owned);
        }
        ProxyConfig {
            services: vec![spec],
            ..ProxyConfig::default()
        }
    };
    let id = "spiffe://mesh.local/ns/default/sa/orders";

    let snapshot = compile(&with_identities(&[Some(id), Some(id)])).unwrap();
    let orders = snapshot.service("default/orders").unwrap();
    assert!(orders.is_meshed());
    assert_eq!(
        orders.identity_of(addr("127.0.0.1:9001")).unwrap().as_str(),
        id
    );

    let snapshot = compile(&with_identities(&[Some(id), None])).unwrap();
    let orders = snapshot.service("default/orders").unwrap();
    assert!(!orders.is_meshed());
    assert!(orders.identity_of(addr("127.0.0.1:9000")).is_none());

    let err = compile(&with_identities(&[Some(id), Some("http://not-spiffe")]))
        .err()
        .expect("a bad identity is refused");
    assert_eq!(err.path, "services[0].endpoints[1].identity");
}
