use super::*;
use crate::config::{BackendRefSpec, HeaderMatch, LoadBalancer, ServiceProtocol};
use crate::resilience::ResilienceRegistry;

fn service() -> ServiceSpec {
    ServiceSpec {
        name: "orders".into(),
        namespace: "default".into(),
        port: 80,
        protocol: ServiceProtocol::Http,
        endpoints: vec![],
        load_balancer: LoadBalancer::Ewma,
        circuit_breaker: None,
    }
}

fn route(name: &str, rules: Vec<HttpRuleSpec>) -> HttpRouteSpec {
    HttpRouteSpec {
        name: name.into(),
        namespace: "default".into(),
        parents: vec!["default/orders".into()],
        rules,
    }
}

/// A rule with one match, sending to a backend named after `tag` so tests can tell rules apart.
fn rule(tag: &str, spec: HttpMatchSpec) -> HttpRuleSpec {
    HttpRuleSpec {
        matches: vec![spec],
        backends: vec![backend(tag, 1)],
        ..Default::default()
    }
}

fn backend(service: &str, weight: u32) -> BackendRefSpec {
    BackendRefSpec {
        service: service.into(),
        weight,
    }
}

fn path(path: PathMatch) -> HttpMatchSpec {
    HttpMatchSpec {
        path: Some(path),
        ..Default::default()
    }
}

fn exact(p: &str) -> HttpMatchSpec {
    path(PathMatch::Exact(p.into()))
}

fn prefix(p: &str) -> HttpMatchSpec {
    path(PathMatch::Prefix(p.into()))
}

fn regex(p: &str) -> HttpMatchSpec {
    path(PathMatch::Regex(p.into()))
}

fn header(name: &str, value: &str) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        value: HeaderValueMatch::Exact(value.into()),
    }
}

fn header_regex(name: &str, pattern: &str) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        value: HeaderValueMatch::Regex(pattern.into()),
    }
}

fn compile(routes: &[HttpRouteSpec]) -> Router {
    let refs: Vec<&HttpRouteSpec> = routes.iter().collect();
    Router::compile(
        &service(),
        &refs,
        &StatsRegistry::new(),
        &ResilienceRegistry::new(),
    )
    .expect("routes compile")
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

/// The backend service of the rule selected for a GET without headers, or "default".
fn target(router: &Router, uri: &str) -> String {
    target_of(router, &request("GET", uri, &[]))
}

fn target_of(router: &Router, parts: &http::request::Parts) -> String {
    let rule = router.select(parts);
    if rule.route_name == DEFAULT_ROUTE {
        "default".into()
    } else {
        rule.backends()[0].service.clone()
    }
}

#[test]
fn without_routes_everything_goes_to_the_service_itself() {
    let registry = StatsRegistry::new();
    let router = Router::compile(&service(), &[], &registry, &ResilienceRegistry::new()).unwrap();
    let rule = router.select(&request("POST", "/anything?x=1", &[]));
    assert_eq!(rule.route_name, "default");
    assert_eq!(
        (rule.request_timeout, rule.backend_request_timeout),
        (None, None)
    );
    let backend = rule.pick_backend().unwrap();
    assert_eq!(
        (backend.service.as_str(), backend.weight),
        ("default/orders", 1)
    );
    let labels = &registry.snapshot().http[0].labels;
    assert_eq!(labels.direction, Direction::Outbound);
    assert_eq!(labels.authority, "orders.default:80");
    assert_eq!(labels.dst_service, "default/orders");
    assert_eq!(labels.route, "default");
    assert!(!labels.tls);
}

#[test]
fn path_kinds_take_precedence_exact_then_longest_prefix_then_regex_then_none() {
    // Listed from least to most specific: order in config must not matter.
    let router = compile(&[
        route("catch-all", vec![rule("none", HttpMatchSpec::default())]),
        route("by-regex", vec![rule("regex", regex("/api/.*"))]),
        route("short", vec![rule("prefix-api", prefix("/api"))]),
        route("long", vec![rule("prefix-api-v1", prefix("/api/v1"))]),
        route("exact", vec![rule("exact", exact("/api/v1"))]),
    ]);
    assert_eq!(target(&router, "/api/v1"), "exact");
    assert_eq!(target(&router, "/api/v1/orders"), "prefix-api-v1");
    assert_eq!(target(&router, "/api/v2"), "prefix-api");
    assert_eq!(target(&router, "/other"), "none");
}

#[test]
fn regex_beats_a_match_without_path() {
    let router = compile(&[route(
        "r",
        vec![
            rule("none", HttpMatchSpec::default()),
            rule("regex", regex("/items/[0-9]+")),
        ],
    )]);
    assert_eq!(target(&router, "/items/42"), "regex");
    assert_eq!(target(&router, "/items/abc"), "none");
}

#[test]
fn more_header_matches_win_a_tie_on_path() {
    let one = HttpMatchSpec {
        headers: vec![header("x-a", "1")],
        ..prefix("/")
    };
    let two = HttpMatchSpec {
        headers: vec![header("x-a", "1"), header("x-b", "2")],
        ..prefix("/")
    };
    let router = compile(&[
        route("one", vec![rule("one", one)]),
        route("two", vec![rule("two", two)]),
    ]);
    assert_eq!(
        target_of(&router, &request("GET", "/", &[("x-a", "1"), ("x-b", "2")])),
        "two"
    );
    assert_eq!(
        target_of(&router, &request("GET", "/", &[("x-a", "1")])),
        "one"
    );
    assert_eq!(target_of(&router, &request("GET", "/", &[])), "default");
}

#[test]
fn a_method_match_wins_a_tie_on_path_and_headers() {
    let any = prefix("/api");
    let post = HttpMatchSpec {
        method: Some("POST".into()),
        ..prefix("/api")
    };
    let router = compile(&[
        route("any", vec![rule("any", any)]),
        route("post", vec![rule("post", post)]),
    ]);
    assert_eq!(target_of(&router, &request("POST", "/api", &[])), "post");
    assert_eq!(target_of(&router, &request("GET", "/api", &[])), "any");
}

#[test]
fn longer_prefix_beats_more_headers() {
    let short_with_header = HttpMatchSpec {
        headers: vec![header("x-a", "1")],
        ..prefix("/a")
    };
    let router = compile(&[
        route("short", vec![rule("short", short_with_header)]),
        route("long", vec![rule("long", prefix("/a/b"))]),
    ]);
    assert_eq!(
        target_of(&router, &request("GET", "/a/b", &[("x-a", "1")])),
        "long"
    );
}

#[test]
fn equal_matches_go_to_the_earlier_route_then_the_earlier_rule() {
    let router = compile(&[
        route(
            "first",
            vec![rule("first-a", prefix("/x")), rule("first-b", prefix("/x"))],
        ),
        route("second", vec![rule("second", prefix("/x"))]),
    ]);
    assert_eq!(target(&router, "/x"), "first-a");
    assert_eq!(
        router.select(&request("GET", "/x", &[])).route_name,
        "first"
    );
}

#[test]
fn a_rule_without_matches_matches_everything() {
    let catch_all = HttpRuleSpec {
        backends: vec![backend("everything", 1)],
        ..Default::default()
    };
    let router = compile(&[route("all", vec![catch_all])]);
    assert_eq!(
        target_of(&router, &request("DELETE", "/a/b?c", &[("x", "y")])),
        "everything"
    );
}

#[test]
fn any_one_match_selects_the_rule() {
    let either = HttpRuleSpec {
        matches: vec![exact("/a"), exact("/b")],
        backends: vec![backend("ab", 1)],
        ..Default::default()
    };
    let router = compile(&[route("r", vec![either])]);
    assert_eq!(target(&router, "/a"), "ab");
    assert_eq!(target(&router, "/b"), "ab");
    assert_eq!(target(&router, "/c"), "default");
}

#[test]
fn prefix_matches_whole_path_elements() {
    for configured in ["/api", "/api/"] {
        let router = compile(&[route("r", vec![rule("api", prefix(configured))])]);
        for hit in ["/api", "/api/", "/api/x", "/api/x/y", "/api?q=1"] {
            assert_eq!(
                target(&router, hit),
                "api",
                "{configured} should match {hit}"
            );
        }
        for miss in ["/apix", "/ap", "/", "/v1/api"] {
            assert_eq!(
                target(&router, miss),
                "default",
                "{configured} should not match {miss}"
            );
        }
    }
    let root = compile(&[route("r", vec![rule("root", prefix("/"))])]);
    for any in ["/", "/a", "/a/b"] {
        assert_eq!(target(&root, any), "root");
    }
}

#[test]
fn exact_ignores_the_query_but_not_a_trailing_slash() {
    let router = compile(&[route("r", vec![rule("exact", exact("/orders"))])]);
    assert_eq!(target(&router, "/orders?page=2"), "exact");
    assert_eq!(
        target(&router, "http://orders:80/orders?x"),
        "exact",
        "absolute-form"
    );
    assert_eq!(target(&router, "/orders/"), "default");
    assert_eq!(target(&router, "/ORDERS"), "default");
}

#[test]
fn regex_must_match_the_whole_path() {
    let router = compile(&[route("r", vec![rule("num", regex("/items/[0-9]+"))])]);
    assert_eq!(target(&router, "/items/123"), "num");
    assert_eq!(target(&router, "/items/123?x=abc"), "num");
    assert_eq!(target(&router, "/items/123/reviews"), "default");
    assert_eq!(target(&router, "/v1/items/123"), "default");
    let alternation = compile(&[route("r", vec![rule("ab", regex("/a|/b"))])]);
    assert_eq!(target(&alternation, "/b"), "ab");
    assert_eq!(
        target(&alternation, "/a/x"),
        "default",
        "anchoring applies to every alternative"
    );
}

#[test]
fn headers_match_by_case_insensitive_name_and_exact_or_whole_value() {
    let spec = HttpMatchSpec {
        headers: vec![header("X-Canary", "1"), header_regex("x-user", "u-[0-9]+")],
        ..Default::default()
    };
    let router = compile(&[route("r", vec![rule("canary", spec)])]);
    let check = |headers: &[(&str, &str)]| target_of(&router, &request("GET", "/", headers));
    assert_eq!(check(&[("x-canary", "1"), ("X-USER", "u-42")]), "canary");
    assert_eq!(
        check(&[("x-canary", "1")]),
        "default",
        "all headers must match"
    );
    assert_eq!(check(&[("x-canary", "2"), ("x-user", "u-42")]), "default");
    assert_eq!(
        check(&[("x-canary", "1"), ("x-user", "u-42x")]),
        "default",
        "regex matches the whole value"
    );
    assert_eq!(check(&[("x-canary", "1"), ("x-user", "xu-42")]), "default");
    assert_eq!(
        check(&[("x-canary", "1 "), ("x-user", "u-1")]),
        "default",
        "exact values are exact"
    );
    assert_eq!(
        check(&[("x-canary", "0"), ("x-canary", "1"), ("x-user", "u-1")]),
        "canary",
        "any repeated value"
    );
}

#[test]
fn method_matches_exactly() {
    let spec = HttpMatchSpec {
        method: Some("PUT".into()),
        ..Default::default()
    };
    let router = compile(&[route("r", vec![rule("put", spec)])]);
    assert_eq!(target_of(&router, &request("PUT", "/", &[])), "put");
    assert_eq!(target_of(&router, &request("POST", "/", &[])), "default");
}

#[test]
fn connect_requests_match_as_the_root_path() {
    let router = compile(&[route("r", vec![rule("root", exact("/"))])]);
    assert_eq!(
        target_of(&router, &request("CONNECT", "orders:80", &[])),
        "root"
    );
}

#[test]
fn weighted_backends_split_by_ratio() {
    let split = HttpRuleSpec {
        backends: vec![
            backend("default/v2", 10),
            backend("default/v1", 90),
            backend("default/off", 0),
        ],
        ..Default::default()
    };
    let router = compile(&[route("canary", vec![split])]);
    let rule = router.select(&request("GET", "/", &[]));
    let mut v2 = 0;
    for _ in 0..10_000 {
        match rule.pick_backend().unwrap().service.as_str() {
            "default/v2" => v2 += 1,
            "default/v1" => {}
            other => panic!("picked {other}"),
        }
    }
    // 10% of 10 000: the standard deviation is 30, so ±200 cannot fail by chance.
    assert!((800..=1_200).contains(&v2), "v2 got {v2} of 10000");
}

#[test]
fn all_zero_weights_pick_nothing() {
    let off = HttpRuleSpec {
        backends: vec![backend("default/a", 0), backend("default/b", 0)],
        ..Default::default()
    };
    let router = compile(&[route("off", vec![off])]);
    assert!(router
        .select(&request("GET", "/", &[]))
        .pick_backend()
        .is_none());
}

#[test]
fn a_rule_without_backends_sends_to_the_parent() {
    let rule_spec = HttpRuleSpec {
        matches: vec![prefix("/a")],
        request_timeout_ms: Some(2_000),
        ..Default::default()
    };
    let router = compile(&[route("timeouts", vec![rule_spec])]);
    let rule = router.select(&request("GET", "/a", &[]));
    assert_eq!(rule.route_name, "timeouts");
    assert_eq!(rule.backends().len(), 1);
    assert_eq!(rule.pick_backend().unwrap().service, "default/orders");
}

#[test]
fn timeouts_are_converted_and_zero_disables() {
    let spec = HttpRuleSpec {
        request_timeout_ms: Some(2_000),
        backend_request_timeout_ms: Some(0),
        ..Default::default()
    };
    let router = compile(&[route("t", vec![spec])]);
    let rule = router.select(&request("GET", "/", &[]));
    assert_eq!(rule.request_timeout, Some(Duration::from_secs(2)));
    assert_eq!(rule.backend_request_timeout, None);
}

#[test]
fn backend_stats_are_labelled_per_backend_and_route_and_reused() {
    let registry = StatsRegistry::new();
    let split = HttpRuleSpec {
        backends: vec![backend("default/v1", 1), backend("default/v2", 1)],
        ..Default::default()
    };
    let routes = [route("canary", vec![split])];
    let refs: Vec<&HttpRouteSpec> = routes.iter().collect();
    let first = Router::compile(&service(), &refs, &registry, &ResilienceRegistry::new()).unwrap();
    let second = Router::compile(&service(), &refs, &registry, &ResilienceRegistry::new()).unwrap();
    let a = &first.rules()[0].backends()[1];
    let b = &second.rules()[0].backends()[1];
    assert!(
        Arc::ptr_eq(&a.stats, &b.stats),
        "a recompiled router shares counters"
    );
    let labels: Vec<(String, String, String)> = registry
        .snapshot()
        .http
        .into_iter()
        .map(|e| (e.labels.authority, e.labels.dst_service, e.labels.route))
        .collect();
    assert_eq!(
        labels,
        vec![
            (
                "orders.default:80".into(),
                "default/orders".into(),
                "default".into()
            ),
            (
                "orders.default:80".into(),
                "default/v1".into(),
                "canary".into()
            ),
            (
                "orders.default:80".into(),
                "default/v2".into(),
                "canary".into()
            ),
        ]
    );
}

fn compile_error(index: usize, route: HttpRouteSpec) -> ConfigError {
    let via_router = Router::compile_indexed(
        &service(),
        &[(index, &route)],
        &StatsRegistry::new(),
        &ResilienceRegistry::new(),
    )
    .err()
    .expect("compile should fail");
    let via_validate = validate_route(index, &route).expect_err("validation should fail");
    assert_eq!(via_router, via_validate);
    assert!(
        !via_router.message.contains('\n'),
        "one line: {:?}",
        via_router.message
    );
    via_router
}

fn two_rules_then(bad: HttpMatchSpec) -> HttpRouteSpec {
    let good = HttpRuleSpec::default();
    let bad_rule = HttpRuleSpec {
        matches: vec![exact("/ok"), bad],
        ..Default::default()
    };
    route("r", vec![good, bad_rule])
}

#[test]
fn invalid_path_regex_names_its_field() {
    let e = compile_error(3, two_rules_then(regex("/items/(")));
    assert_eq!(e.path, "httpRoutes[3].rules[1].matches[1].path.value");
    assert!(
        e.message.starts_with("invalid regular expression"),
        "{}",
        e.message
    );
    // A pattern that would only be valid once wrapped must still be refused.
    let e = compile_error(0, two_rules_then(regex("/a)|(/b")));
    assert_eq!(e.path, "httpRoutes[0].rules[1].matches[1].path.value");
}

#[test]
fn invalid_header_regex_and_name_name_their_fields() {
    let bad_value = HttpMatchSpec {
        headers: vec![header("x-ok", "1"), header_regex("x-user", "[")],
        ..Default::default()
    };
    let e = compile_error(1, two_rules_then(bad_value));
    assert_eq!(e.path, "httpRoutes[1].rules[1].matches[1].headers[1].value");
    let bad_name = HttpMatchSpec {
        headers: vec![header("bad header", "1")],
        ..Default::default()
    };
    let e = compile_error(1, two_rules_then(bad_name));
    assert_eq!(e.path, "httpRoutes[1].rules[1].matches[1].headers[0].name");
}

#[test]
fn invalid_method_and_relative_paths_are_refused() {
    let e = compile_error(
        0,
        two_rules_then(HttpMatchSpec {
            method: Some("get".into()),
            ..Default::default()
        }),
    );
    assert_eq!(e.path, "httpRoutes[0].rules[1].matches[1].method");
    let e = compile_error(0, two_rules_then(prefix("api")));
    assert_eq!(e.path, "httpRoutes[0].rules[1].matches[1].path.value");
    let e = compile_error(0, two_rules_then(exact("")));
    assert_eq!(e.path, "httpRoutes[0].rules[1].matches[1].path.value");
}

#[test]
fn empty_route_name_is_refused() {
    let e = compile_error(4, route("", vec![]));
    assert_eq!(e.path, "httpRoutes[4].name");
}

#[test]
fn overflowing_backend_weights_are_refused() {
    let heavy = HttpRuleSpec {
        backends: vec![
            backend("default/a", u32::MAX - 1),
            backend("default/b", 1),
            backend("default/c", 1),
        ],
        ..Default::default()
    };
    let e = compile_error(2, route("r", vec![HttpRuleSpec::default(), heavy]));
    assert_eq!(e.path, "httpRoutes[2].rules[1].backends[2].weight");
    let just_fits = HttpRuleSpec {
        backends: vec![backend("default/a", u32::MAX - 1), backend("default/b", 1)],
        ..Default::default()
    };
    assert!(validate_route(0, &route("r", vec![just_fits])).is_ok());
}
