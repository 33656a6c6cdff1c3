//! Resilience on the data path: fault injection, rate limits, retries, circuit breaking.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_engine::config::{
    CircuitBreakerSpec, FaultAbortSpec, FaultDelaySpec, FaultSpec, HttpRuleSpec, Protocol,
    ProxyConfig, RateLimitSpec, RetrySpec, ServiceProtocol,
};
use mesh_engine::stats::RetryResult;
use mesh_engine::{Engine, ListenerKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

// ===== retries =====

/// What a scripted upstream answers to its `n`th request (counting from 0).
#[derive(Clone, Copy)]
enum Answer {
    /// 200 with `<name> <body received>`.
    Ok,
    Status(u16),
    /// 200 after this many milliseconds.
    Slow(u64),
    /// A trailers-only gRPC response with this grpc-status.
    GrpcTrailersOnly(u16),
}

struct Scripted {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

/// An upstream whose answers follow `script(n)`; counts the requests it got.
async fn scripted(
    name: &'static str,
    protocol: AppProtocol,
    script: fn(usize) -> Answer,
) -> Scripted {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    let body = req.into_body().collect().await.map(|b| b.to_bytes());
                    let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                    let response = match script(n) {
                        Answer::Ok => Response::new(full_string(format!("{name} {body}"))),
                        Answer::Status(code) => {
                            let mut response = Response::new(full_string(format!("{name} failed")));
                            *response.status_mut() = StatusCode::from_u16(code).unwrap();
                            response
                        }
                        Answer::Slow(ms) => {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            Response::new(full_string(format!("{name} slow")))
                        }
                        Answer::GrpcTrailersOnly(code) => Response::builder()
                            .header("content-type", "application/grpc")
                            .header("grpc-status", code.to_string())
                            .body(empty())
                            .unwrap(),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let io = TokioIo::new(stream);
            tokio::spawn(async move {
                let _ = match protocol {
                    AppProtocol::Http1 => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await
                    }
                    AppProtocol::Http2 => {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await
                    }
                };
            });
        }
    });
    Scripted { addr, hits }
}

fn full_string(text: String) -> TestBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}

fn retrying(spec: RetrySpec) -> HttpRuleSpec {
    HttpRuleSpec {
        retry: Some(spec),
        ..HttpRuleSpec::default()
    }
}

fn retries(engine: &Engine, route: &str, result: RetryResult) -> u64 {
    http_stats(engine, "orders.default:80", "default/orders", route).map_or(0, |entry| {
        entry
            .retries
            .iter()
            .find(|(r, _)| *r == result)
            .map_or(0, |(_, n)| *n)
    })
}

async fn retry_setup(
    endpoints: &[SocketAddr],
    protocol: ServiceProtocol,
    spec: RetrySpec,
) -> Engine {
    let engine = engine();
    let mut config = outbound_config(vec![service("orders", protocol, endpoints)]);
    config.http_routes.push(one_rule_route(
        "orders-retry",
        "default/orders",
        retrying(spec),
    ));
    engine.apply(config).unwrap();
    engine
}

#[tokio::test]
async fn a_flaky_upstream_is_made_whole_by_retries() {
    // 503 on every other request.
    let flaky = scripted("flaky", AppProtocol::Http1, |n| {
        if n % 2 == 0 {
            Answer::Status(503)
        } else {
            Answer::Ok
        }
    })
    .await;
    let engine = retry_setup(&[flaky.addr], ServiceProtocol::Http, RetrySpec::default()).await;
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    for _ in 0..20 {
        let reply = client.get("orders", "/").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body, "flaky ");
    }
    assert_eq!(flaky.hits.load(Ordering::SeqCst), 40);
    assert_eq!(retries(&engine, "orders-retry", RetryResult::Retried), 20);
    let stats = http_stats(
        &engine,
        "orders.default:80",
        "default/orders",
        "orders-retry",
    )
    .unwrap();
    assert_eq!(stats.requests, 20, "a retried request counts once");
    assert_eq!(responses(&stats, 200, false), 20);
}

#[tokio::test]
async fn a_request_body_is_replayed_on_retry_only_for_retryable_methods() {
    let flaky = scripted("flaky", AppProtocol::Http1, |n| {
        if n % 2 == 0 {
            Answer::Status(503)
        } else {
            Answer::Ok
        }
    })
    .await;
    let engine = retry_setup(&[flaky.addr], ServiceProtocol::Http, RetrySpec::default()).await;
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    // PUT is idempotent: retried with the same body.
    let put = Request::put("/items/1")
        .header("host", "orders")
        .body(full("the payload"))
        .unwrap();
    let reply = read_reply(client.send(put).await).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "flaky the payload")
    );

    // POST is not: the 503 goes back to the client as it came.
    let post = Request::post("/items")
        .header("host", "orders")
        .body(full("created"))
        .unwrap();
    let reply = read_reply(client.send(post).await).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, "flaky failed");
    assert_eq!(
        retries(&engine, "orders-retry", RetryResult::NotReplayable),
        1
    );
}

#[tokio::test]
async fn non_idempotent_retries_when_configured_and_bodies_over_the_limit_are_not_retried() {
    let flaky = scripted("flaky", AppProtocol::Http2, |n| {
        if n % 2 == 0 {
            Answer::Status(502)
        } else {
            Answer::Ok
        }
    })
    .await;
    let spec = RetrySpec {
        non_idempotent: true,
        max_request_bytes: 16,
        ..RetrySpec::default()
    };
    let engine = retry_setup(&[flaky.addr], ServiceProtocol::Http2, spec).await;
    let mut client = H2Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let post = Request::post("http://orders/items")
        .body(full("small"))
        .unwrap();
    let reply = read_reply(client.send(post).await).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "flaky small")
    );

    // A streamed body without a length that outgrows the buffer.
    let (tx, body) = channel_body();
    let post = Request::post("http://orders/items").body(body).unwrap();
    let sending = tokio::spawn(async move {
        for chunk in ["0123456789", "0123456789", "end"] {
            tx.send(Frame::data(Bytes::from_static(chunk.as_bytes())))
                .await
                .unwrap();
        }
    });
    let reply = read_reply(client.send(post).await).await;
    sending.await.unwrap();
    assert_eq!(reply.status, 502);
    assert_eq!(
        retries(&engine, "orders-retry", RetryResult::NotReplayable),
        1
    );
    assert_eq!(retries(&engine, "orders-retry", RetryResult::Retried), 1);
}

#[tokio::test]
async fn connect_failures_are_retried_on_another_endpoint_whatever_the_method() {
    let dead = unused_addr().await;
    let good = scripted("good", AppProtocol::Http1, |_| Answer::Ok).await;
    let engine = retry_setup(
        &[dead, good.addr],
        ServiceProtocol::Http,
        RetrySpec::default(),
    )
    .await;
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    for i in 0..6 {
        let post = Request::post("/")
            .header("host", "orders")
            .body(full("once"))
            .unwrap();
        let reply = read_reply(client.send(post).await).await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
        assert_eq!(reply.body, "good once");
    }
    assert_eq!(good.hits.load(Ordering::SeqCst), 6);
    assert!(retries(&engine, "orders-retry", RetryResult::Retried) >= 1);
}

#[tokio::test]
async fn the_budget_caps_retries_when_everything_fails() {
    let down = scripted("down", AppProtocol::Http1, |_| Answer::Status(503)).await;
    let spec = RetrySpec {
        attempts: 3,
        backoff_ms: 0,
        budget_percent: 20.0,
        min_retries_per_second: 1,
        budget_window_ms: 10_000,
        ..RetrySpec::default()
    };
    let engine = retry_setup(&[down.addr], ServiceProtocol::Http, spec).await;
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let requests = 200;
    for _ in 0..requests {
        assert_eq!(client.get("orders", "/").await.status, 503);
    }
    let retried = retries(&engine, "orders-retry", RetryResult::Retried);
    let exhausted = retries(&engine, "orders-retry", RetryResult::BudgetExhausted);
    // 20 % of 200 requests plus a reserve of 1 per second over a 10 s window.
    assert!((40..=52).contains(&retried), "retried {retried}");
    assert_eq!(down.hits.load(Ordering::SeqCst) as u64, requests + retried);
    let out_of_attempts = retries(&engine, "orders-retry", RetryResult::AttemptsExhausted);
    assert_eq!(
        exhausted + out_of_attempts,
        requests,
        "every request ended wanting one more retry"
    );
    assert!(
        exhausted >= requests - 20,
        "mostly the budget said no: {exhausted}"
    );
}

#[tokio::test]
async fn grpc_unavailable_in_a_trailers_only_response_is_retried() {
    let flaky = scripted("greeter", AppProtocol::Http2, |n| {
        if n % 2 == 0 {
            Answer::GrpcTrailersOnly(14)
        } else {
            Answer::Ok
        }
    })
    .await;
    let engine = retry_setup(&[flaky.addr], ServiceProtocol::Grpc, RetrySpec::default()).await;
    let mut client = H2Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    for _ in 0..5 {
        let req = Request::post("http://orders/pkg.Greeter/Hello")
            .header("content-type", "application/grpc")
            .body(full("\0\0\0\0\x02hi"))
            .unwrap();
        let reply = read_reply(client.send(req).await).await;
        assert_eq!(reply.status, 200);
        assert!(
            !reply.headers.contains_key("grpc-status"),
            "not the trailers-only failure"
        );
        assert_eq!(reply.body, "greeter \0\0\0\0\x02hi");
    }
    assert_eq!(retries(&engine, "orders-retry", RetryResult::Retried), 5);

    // Other gRPC statuses are the application's answer, not retried.
    let other = scripted("greeter", AppProtocol::Http2, |_| {
        Answer::GrpcTrailersOnly(5)
    })
    .await;
    let engine = retry_setup(&[other.addr], ServiceProtocol::Grpc, RetrySpec::default()).await;
    let mut client = H2Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    let req = Request::post("http://orders/pkg.Greeter/Hello")
        .header("content-type", "application/grpc")
        .body(full("\0\0\0\0\0"))
        .unwrap();
    let reply = read_reply(client.send(req).await).await;
    assert_eq!(reply.headers["grpc-status"], "5");
    assert_eq!(other.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_attempt_timeout_is_retried_within_the_request_timeout() {
    // The first attempt hangs; the retry answers at once.
    let slow_first = scripted("app", AppProtocol::Http1, |n| {
        if n == 0 {
            Answer::Slow(5_000)
        } else {
            Answer::Ok
        }
    })
    .await;
    let engine = engine();
    let mut config = outbound_config(vec![service(
        "orders",
        ServiceProtocol::Http,
        &[slow_first.addr],
    )]);
    config.http_routes.push(one_rule_route(
        "orders-retry",
        "default/orders",
        HttpRuleSpec {
            retry: Some(RetrySpec::default()),
            request_timeout_ms: Some(3_000),
            backend_request_timeout_ms: Some(100),
            ..HttpRuleSpec::default()
        },
    ));
    engine.apply(config).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    let reply = client.get("orders", "/").await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "app "));

    // Every attempt hangs: the request timeout ends it with 504.
    let hangs = scripted("app", AppProtocol::Http1, |_| Answer::Slow(5_000)).await;
    let engine = engine_with_timeouts(hangs.addr, 250, 100, 5);
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    let started = Instant::now();
    let reply = client.get("orders", "/").await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.headers["x-mesh-error"], "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "ended by the request timeout"
    );
}

fn engine_with_timeouts(
    endpoint: SocketAddr,
    request_ms: u64,
    attempt_ms: u64,
    attempts: u32,
) -> Engine {
    let engine = engine();
    let mut config = outbound_config(vec![service("orders", ServiceProtocol::Http, &[endpoint])]);
    config.http_routes.push(one_rule_route(
        "orders-retry",
        "default/orders",
        HttpRuleSpec {
            retry: Some(RetrySpec {
                attempts,
                ..RetrySpec::default()
            }),
            request_timeout_ms: Some(request_ms),
            backend_request_timeout_ms: Some(attempt_ms),
            ..HttpRuleSpec::default()
        },
    ));
    engine.apply(config).unwrap();
    engine
}

// ===== circuit breaking and outlier ejection =====

fn breaker(
    spec: CircuitBreakerSpec,
    protocol: ServiceProtocol,
    endpoints: &[SocketAddr],
) -> Engine {
    let engine = engine();
    let mut orders = service("orders", protocol, endpoints);
    orders.circuit_breaker = Some(spec);
    engine.apply(outbound_config(vec![orders])).unwrap();
    engine
}

fn breaker_stats(engine: &Engine) -> mesh_engine::resilience::BreakerStats {
    engine
        .stats()
        .breakers
        .into_iter()
        .find(|b| b.service == "default/orders")
        .expect("the Service's breaker")
}

#[tokio::test]
async fn max_requests_refuses_the_excess_with_503_and_a_reason() {
    let app = App::start("orders", AppProtocol::Http2).await;
    let spec = CircuitBreakerSpec {
        max_requests: 2,
        ..CircuitBreakerSpec::default()
    };
    let engine = breaker(spec, ServiceProtocol::Http2, &[app.addr]);
    let client = H2Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let requests = (0..5).map(|_| {
        let mut client = client.clone();
        tokio::spawn(async move { client.get("http://orders/slow/400").await })
    });
    let replies = futures_util::future::join_all(requests).await;
    let mut ok = 0;
    let mut refused = 0;
    for reply in replies {
        let reply = reply.unwrap();
        match reply.status.as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(reply.headers["x-mesh-error"], "max-requests");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, refused), (2, 3));
    let stats = breaker_stats(&engine);
    assert_eq!(stats.overflows, [0, 0, 3]);
    assert_eq!(stats.requests, 0, "every slot came back");
    // Slots come back as responses end: the next request passes.
    let mut client = client.clone();
    assert_eq!(client.get("http://orders/").await.status, 200);
}

#[tokio::test]
async fn at_max_connections_requests_wait_as_pending_up_to_their_limit() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let spec = CircuitBreakerSpec {
        max_connections: 1,
        max_pending_requests: 1,
        ..CircuitBreakerSpec::default()
    };
    let engine = breaker(spec, ServiceProtocol::Http, &[app.addr]);
    let proxy = bound(&engine, ListenerKind::Outbound);

    let slow = |path: &'static str| {
        tokio::spawn(async move { H1Client::connect(proxy).await.get("orders", path).await })
    };
    let first = slow("/slow/300");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = slow("/slow/10");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = slow("/slow/10");

    let third = third.await.unwrap();
    assert_eq!(third.status, 503);
    assert_eq!(third.headers["x-mesh-error"], "max-pending-requests");
    assert_eq!(first.await.unwrap().status, 200);
    let second = second.await.unwrap();
    assert_eq!(
        second.status, 200,
        "served on the connection the first gave back"
    );
    assert_eq!(app.connections.load(Ordering::SeqCst), 1);
    assert_eq!(breaker_stats(&engine).overflows, [0, 1, 0]);
}

#[tokio::test]
async fn at_max_connections_an_idle_connection_to_another_endpoint_makes_room() {
    let a = App::start("a", AppProtocol::Http1).await;
    let b = App::start("b", AppProtocol::Http1).await;
    let spec = CircuitBreakerSpec {
        max_connections: 1,
        ..CircuitBreakerSpec::default()
    };
    let engine = breaker(spec, ServiceProtocol::Http, &[a.addr, b.addr]);
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    // Round robin alternates endpoints; each request needs the one slot.
    let mut served = Vec::new();
    for _ in 0..4 {
        let reply = client.get("orders", "/").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        served.push(reply.body.split(' ').next().unwrap().to_owned());
    }
    served.sort();
    assert_eq!(served, ["a", "a", "b", "b"]);
    assert!(breaker_stats(&engine).connections <= 1);
}

#[tokio::test]
async fn a_failing_endpoint_is_ejected_and_comes_back_after_the_ejection() {
    let bad = scripted("bad", AppProtocol::Http1, |_| Answer::Status(503)).await;
    let good = scripted("good", AppProtocol::Http1, |_| Answer::Ok).await;
    let spec = CircuitBreakerSpec {
        consecutive_failures: 3,
        ejection_ms: 400,
        ..CircuitBreakerSpec::default()
    };
    let engine = breaker(spec, ServiceProtocol::Http, &[bad.addr, good.addr]);
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    for _ in 0..30 {
        client.get("orders", "/").await;
    }
    assert_eq!(
        bad.hits.load(Ordering::SeqCst),
        3,
        "ejected after 3 failures in a row"
    );
    let health = engine.stats().endpoint_health;
    let bad_health = health.iter().find(|h| h.addr == bad.addr).unwrap();
    assert!(bad_health.ejected);
    assert_eq!(bad_health.ejections_total, 1);

    // After the ejection it gets traffic again (and, still failing, is ejected again).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..30 {
        client.get("orders", "/").await;
    }
    assert_eq!(bad.hits.load(Ordering::SeqCst), 6);
    let health = engine.stats().endpoint_health;
    assert_eq!(
        health
            .iter()
            .find(|h| h.addr == bad.addr)
            .unwrap()
            .ejections_total,
        2
    );
}

#[tokio::test]
async fn a_timing_out_endpoint_is_ejected_and_retries_hide_it() {
    let hanging = scripted("hanging", AppProtocol::Http1, |_| Answer::Slow(5_000)).await;
    let good = scripted("good", AppProtocol::Http1, |_| Answer::Ok).await;
    let engine = engine();
    let mut orders = service("orders", ServiceProtocol::Http, &[hanging.addr, good.addr]);
    orders.circuit_breaker = Some(CircuitBreakerSpec {
        consecutive_failures: 2,
        ..CircuitBreakerSpec::default()
    });
    let mut config = outbound_config(vec![orders]);
    config.http_routes.push(one_rule_route(
        "orders-retry",
        "default/orders",
        HttpRuleSpec {
            retry: Some(RetrySpec::default()),
            backend_request_timeout_ms: Some(100),
            ..HttpRuleSpec::default()
        },
    ));
    engine.apply(config).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    for _ in 0..20 {
        let reply = client.get("orders", "/").await;
        assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "good "));
    }
    assert_eq!(hanging.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn breaker_limits_of_a_refused_config_do_not_take_effect() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = breaker(
        CircuitBreakerSpec {
            max_requests: 100,
            ..CircuitBreakerSpec::default()
        },
        ServiceProtocol::Http,
        &[app.addr],
    );
    let mut orders = service("orders", ServiceProtocol::Http, &[app.addr]);
    orders.circuit_breaker = Some(CircuitBreakerSpec {
        max_requests: 1,
        ..CircuitBreakerSpec::default()
    });
    // Refused after compiling: a listener that cannot bind.
    let taken = std::net::TcpListener::bind(loopback()).unwrap();
    let mut refused = outbound_config(vec![orders]);
    refused
        .tcp_outbound
        .push(mesh_engine::config::TcpOutboundListener {
            listen: taken.local_addr().unwrap(),
            service: "default/orders".into(),
        });
    // One request in flight: a limit of 1, had it been taken, would refuse the next.
    let proxy = bound(&engine, ListenerKind::Outbound);
    let slow = tokio::spawn(async move {
        H1Client::connect(proxy)
            .await
            .get("orders", "/slow/500")
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(engine.apply(refused).is_err());
    let mut client = H1Client::connect(proxy).await;
    assert_eq!(client.get("orders", "/").await.status, 200);
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(breaker_stats(&engine).overflows, [0, 0, 0]);
}
