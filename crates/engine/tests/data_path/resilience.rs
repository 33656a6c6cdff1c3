//! Resilience on the data path: fault injection, rate limits, retries, circuit breaking.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::Request;
use mesh_engine::config::{
    FaultAbortSpec, FaultDelaySpec, FaultSpec, HttpRuleSpec, Protocol, ProxyConfig, RateLimitSpec,
    ServiceProtocol,
};
use mesh_engine::ListenerKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn faults(delay: Option<(f64, u64)>, abort: Option<(f64, u16)>) -> HttpRuleSpec {
    HttpRuleSpec {
        faults: Some(FaultSpec {
            delay: delay.map(|(percent, fixed_ms)| FaultDelaySpec { percent, fixed_ms }),
            abort: abort.map(|(percent, status)| FaultAbortSpec { percent, status }),
        }),
        ..HttpRuleSpec::default()
    }
}

#[tokio::test]
async fn an_injected_abort_answers_without_contacting_the_upstream() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    let mut config = outbound_config(vec![service("orders", ServiceProtocol::Http, &[app.addr])]);
    config.http_routes.push(one_rule_route(
        "orders-chaos",
        "default/orders",
        faults(None, Some((100.0, 503))),
    ));
    engine.apply(config).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    for _ in 0..3 {
        let reply = client.get("orders", "/").await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.headers["x-mesh-error"], "fault-abort");
    }
    assert_eq!(app.connections.load(Ordering::SeqCst), 0);
    let stats = http_stats(
        &engine,
        "orders.default:80",
        "default/orders",
        "orders-chaos",
    )
    .unwrap();
    assert_eq!(stats.requests, 3);
    assert_eq!(responses(&stats, 503, true), 3);
}

#[tokio::test]
async fn a_grpc_request_is_aborted_with_a_trailers_only_grpc_status() {
    let app = App::start("greeter", AppProtocol::Http2).await;
    let engine = engine();
    let mut config = outbound_config(vec![service("greeter", ServiceProtocol::Grpc, &[app.addr])]);
    config.http_routes.push(one_rule_route(
        "greeter-chaos",
        "default/greeter",
        faults(None, Some((100.0, 404))),
    ));
    engine.apply(config).unwrap();
    let mut client = H2Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let req = Request::post("http://greeter/pkg.Greeter/Hello")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(full("\0\0\0\0\0"))
        .unwrap();
    let response = client.send(req).await;
    assert!(
        http_body::Body::is_end_stream(response.body()),
        "trailers-only: the headers end the stream"
    );
    let reply = read_reply(response).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers["grpc-status"], "12",
        "404 maps to UNIMPLEMENTED"
    );
    assert_eq!(reply.headers["content-type"], "application/grpc");
    assert_eq!(reply.body, "");
    let stats = http_stats(
        &engine,
        "greeter.default:80",
        "default/greeter",
        "greeter-chaos",
    )
    .unwrap();
    assert_eq!(responses(&stats, 200, true), 1, "a gRPC error is a failure");
}

#[tokio::test]
async fn an_injected_delay_holds_the_request_then_forwards_it() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    let mut config = outbound_config(vec![service("orders", ServiceProtocol::Http, &[app.addr])]);
    config.http_routes.push(one_rule_route(
        "orders-slow",
        "default/orders",
        faults(Some((100.0, 150)), None),
    ));
    engine.apply(config).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let started = Instant::now();
    let reply = client.get("orders", "/x").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "orders GET /x host=orders");
    let stats = http_stats(
        &engine,
        "orders.default:80",
        "default/orders",
        "orders-slow",
    )
    .unwrap();
    let ok = stats
        .responses
        .iter()
        .find(|r| r.status_code == 200)
        .unwrap();
    assert!(
        ok.latency_sum_ms >= 150.0,
        "latency includes the injected delay: {}",
        ok.latency_sum_ms
    );
}

#[tokio::test]
async fn abort_shares_hold_within_tolerance() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    let mut config = outbound_config(vec![service("orders", ServiceProtocol::Http, &[app.addr])]);
    config.http_routes.push(one_rule_route(
        "orders-flaky",
        "default/orders",
        faults(None, Some((25.0, 500))),
    ));
    engine.apply(config).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let total = 800;
    let mut aborted = 0;
    for _ in 0..total {
        match client.get("orders", "/").await.status.as_u16() {
            500 => aborted += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // Binomial(800, 0.25): sigma ~ 12.2; 5 sigma.
    assert!(
        (200 - 61..=200 + 61).contains(&aborted),
        "{aborted} of {total}"
    );
}

// ===== rate limits =====

fn rate_limit(requests_per_second: f64, burst: u32) -> Option<RateLimitSpec> {
    Some(RateLimitSpec {
        requests_per_second,
        burst,
    })
}

#[tokio::test]
async fn a_rule_over_its_rate_limit_answers_429_with_retry_after() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    let mut config = outbound_config(vec![service("orders", ServiceProtocol::Http, &[app.addr])]);
    config.http_routes.push(one_rule_route(
        "orders-limited",
        "default/orders",
        HttpRuleSpec {
            rate_limit: rate_limit(0.5, 3),
            ..HttpRuleSpec::default()
        },
    ));
    engine.apply(config.clone()).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    for _ in 0..2 {
        assert_eq!(client.get("orders", "/").await.status, 200);
    }
    // A new snapshot with the same limit keeps the bucket: one token left, not three.
    engine.apply(config).unwrap();
    assert_eq!(client.get("orders", "/").await.status, 200);
    let reply = client.get("orders", "/").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers["x-mesh-error"], "rate-limited");
    assert_eq!(reply.headers["retry-after"], "2");
    let stats = http_stats(
        &engine,
        "orders.default:80",
        "default/orders",
        "orders-limited",
    )
    .unwrap();
    assert_eq!(stats.requests, 4);
    assert_eq!(responses(&stats, 200, false), 3);
    assert_eq!(responses(&stats, 429, false), 1);
}

#[tokio::test]
async fn an_inbound_port_over_its_rate_limit_answers_429_to_http() {
    let app = App::start("app", AppProtocol::Http1).await;
    let engine = engine();
    let mut listener = inbound(app.addr, Protocol::Auto);
    listener.rate_limit = rate_limit(1.0, 2);
    engine
        .apply(ProxyConfig {
            inbound: vec![listener],
            ..ProxyConfig::default()
        })
        .unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Inbound)).await;
    assert_eq!(client.get("app", "/").await.status, 200);
    assert_eq!(client.get("app", "/").await.status, 200);
    let reply = client.get("app", "/").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers["retry-after"], "1");
}

#[tokio::test]
async fn an_inbound_tcp_port_over_its_rate_limit_closes_connections() {
    let echo = echo_server().await;
    let engine = engine();
    let mut listener = inbound(echo, Protocol::Tcp);
    listener.rate_limit = rate_limit(0.1, 1);
    engine
        .apply(ProxyConfig {
            inbound: vec![listener],
            ..ProxyConfig::default()
        })
        .unwrap();
    let proxy = bound(&engine, ListenerKind::Inbound);

    let mut first = TcpStream::connect(proxy).await.unwrap();
    first.write_all(b"ping").await.unwrap();
    assert_eq!(
        read_exactly(&mut first, 4, Duration::from_secs(5)).await,
        b"ping"
    );

    let mut second = TcpStream::connect(proxy).await.unwrap();
    let _ = second.write_all(b"ping").await;
    let mut buf = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without an echo: {read:?}"
    );
}
