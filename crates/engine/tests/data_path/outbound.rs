//! The outbound listener: routing by authority, HTTP/1 and HTTP/2, CONNECT, passthrough,
//! error statuses and timeouts.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body::Frame;
use http_body_util::BodyExt;
use mesh_engine::config::{
    BackendRefSpec, HttpMatchSpec, HttpRouteSpec, HttpRuleSpec, OutboundListener, PathMatch,
    ServiceProtocol,
};
use mesh_engine::ListenerKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn routes_http1_by_host_and_reuses_the_upstream_connection() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "orders",
            ServiceProtocol::Http,
            &[app.addr],
        )]))
        .unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    for _ in 0..3 {
        let reply = client.get("orders", "/api/items?x=1").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "orders GET /api/items host=orders");
    }
    let other_spelling = client.get("ORDERS.default.svc.cluster.local:80", "/").await;
    assert_eq!(
        other_spelling.body,
        "orders GET / host=ORDERS.default.svc.cluster.local:80"
    );
    assert_eq!(
        app.connections.load(Ordering::SeqCst),
        1,
        "one keep-alive upstream connection"
    );

    let stats = http_stats(&engine, "orders.default:80", "default/orders", "default")
        .expect("outbound stats");
    assert_eq!(stats.requests, 4);
    assert_eq!(responses(&stats, 200, false), 4);
}

#[tokio::test]
async fn absolute_form_requests_are_routed_in_origin_form() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "orders",
            ServiceProtocol::Http,
            &[app.addr],
        )]))
        .unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    // What curl -x and HTTP_PROXY clients send; the Host header is stale on purpose.
    let req = Request::get("http://orders/api?q=1")
        .header("host", "elsewhere")
        .body(empty())
        .unwrap();
    let reply = read_reply(client.send(req).await).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "orders GET /api host=orders");
}

#[tokio::test]
async fn an_unknown_authority_is_404_without_passthrough() {
    let engine = engine();
    engine.apply(outbound_config(vec![])).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    let reply = client.get("nowhere:8080", "/").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.headers["x-mesh-error"], "no-service");
    assert_eq!(reply.body, "no service for authority nowhere:8080\n");
}

#[tokio::test]
async fn passthrough_sends_unknown_authorities_to_host_port() {
    let app = App::start("external", AppProtocol::Http1).await;
    let engine = engine();
    let mut config = outbound_config(vec![]);
    config.outbound = Some(OutboundListener {
        listen: loopback(),
        passthrough: true,
    });
    engine.apply(config).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let authority = app.addr.to_string();
    let reply = client.get(&authority, "/x").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, format!("external GET /x host={authority}"));
    let stats = http_stats(&engine, &authority, "", "default").expect("passthrough stats");
    assert_eq!(stats.requests, 1);

    // The proxy's own address is a loop, not a target.
    let own = bound(&engine, ListenerKind::Outbound).to_string();
    let looped = client.get(&own, "/").await;
    assert_eq!(looped.status, 502);
    assert_eq!(looped.headers["x-mesh-error"], "proxy-loop");
}

#[tokio::test]
async fn connect_tunnels_route_the_http_inside_to_the_service() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "orders",
            ServiceProtocol::Http,
            &[app.addr],
        )]))
        .unwrap();
    let proxy = bound(&engine, ListenerKind::Outbound);

    // What undici's EnvHttpProxyAgent sends.
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream
        .write_all(b"CONNECT orders:80 HTTP/1.1\r\nHost: orders:80\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    let mut client = H1Client::over(stream).await;
    let reply = client.get("orders", "/in/tunnel").await;
    assert_eq!(reply.body, "orders GET /in/tunnel host=orders");
    // No Host header: the CONNECT target is the authority.
    let req = Request::get("/no-host").body(empty()).unwrap();
    let reply = read_reply(client.send(req).await).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "orders GET /no-host host=orders:80");

    let mut unknown = TcpStream::connect(proxy).await.unwrap();
    unknown
        .write_all(b"CONNECT nowhere:80 HTTP/1.1\r\nHost: nowhere:80\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut unknown).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

#[tokio::test]
async fn connect_tunnels_to_a_tcp_service_are_opaque() {
    let echo = echo_server().await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "db",
            ServiceProtocol::Tcp,
            &[echo],
        )]))
        .unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::Outbound))
        .await
        .unwrap();
    stream
        .write_all(b"CONNECT db:80 HTTP/1.1\r\nHost: db:80\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream.write_all(b"\x00\x01binary").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 8, Duration::from_secs(5)).await,
        b"\x00\x01binary"
    );
}

#[tokio::test]
async fn connect_with_passthrough_tunnels_to_host_port() {
    let echo = echo_server().await;
    let engine = engine();
    let mut config = outbound_config(vec![]);
    config.outbound = Some(OutboundListener {
        listen: loopback(),
        passthrough: true,
    });
    engine.apply(config).unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::Outbound))
        .await
        .unwrap();
    stream
        .write_all(format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream.write_all(b"ping").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 4, Duration::from_secs(5)).await,
        b"ping"
    );

    let dead = unused_addr().await;
    let mut refused = TcpStream::connect(bound(&engine, ListenerKind::Outbound))
        .await
        .unwrap();
    refused
        .write_all(format!("CONNECT {dead} HTTP/1.1\r\nHost: {dead}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut refused).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
}

#[tokio::test]
async fn websocket_style_upgrades_are_relayed() {
    let app = App::start("chat", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "chat",
            ServiceProtocol::Http,
            &[app.addr],
        )]))
        .unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::Outbound))
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: echo"),
        "{head}"
    );
    stream.write_all(b"after the upgrade").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 17, Duration::from_secs(5)).await,
        b"after the upgrade"
    );
}

#[tokio::test]
async fn http2_clients_and_services() {
    let h2_app = App::start("grpc", AppProtocol::Http2).await;
    let h1_app = App::start("web", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![
            service("grpc", ServiceProtocol::Http2, &[h2_app.addr]),
            service("web", ServiceProtocol::Http, &[h1_app.addr]),
        ]))
        .unwrap();
    let proxy = bound(&engine, ListenerKind::Outbound);

    let mut h2 = H2Client::connect(proxy).await;
    let reply = h2.get("http://grpc/hello").await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "grpc GET /hello host=grpc")
    );
    // HTTP/2 downstream, HTTP/1 upstream: the upstream gets a Host header.
    let reply = h2.get("http://web:80/page").await;
    assert_eq!(reply.body, "web GET /page host=web:80");

    // HTTP/1 downstream, HTTP/2 upstream: `:authority` from Host.
    let mut h1 = H1Client::connect(proxy).await;
    let reply = h1.get("grpc", "/from-h1").await;
    assert_eq!(reply.body, "grpc GET /from-h1 host=grpc");
    assert_eq!(
        h2_app.connections.load(Ordering::SeqCst),
        1,
        "one multiplexed upstream connection"
    );
}

#[tokio::test]
async fn grpc_streams_both_ways_and_trailers_classify() {
    let app = App::start("grpc", AppProtocol::Http2).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "grpc",
            ServiceProtocol::Grpc,
            &[app.addr],
        )]))
        .unwrap();
    let mut client = H2Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let (tx, body) = channel_body();
    let req = Request::post("http://grpc/echo")
        .header("te", "trailers")
        .body(body)
        .unwrap();
    let response = client.send(req).await;
    assert_eq!(response.status(), 200);
    let mut response_body = response.into_body();
    // Each message comes back before the request stream ends: nothing is buffered.
    for message in ["first", "second"] {
        tx.send(Frame::data(Bytes::from_static(message.as_bytes())))
            .await
            .unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(5), response_body.frame())
            .await
            .expect("echo while the request is still open")
            .unwrap()
            .unwrap();
        assert_eq!(frame.into_data().unwrap(), message.as_bytes());
    }
    drop(tx);
    let trailers = loop {
        let frame = response_body.frame().await.expect("trailers").unwrap();
        if let Ok(trailers) = frame.into_trailers() {
            break trailers;
        }
    };
    assert_eq!(trailers["grpc-status"], "0");

    // A gRPC error in the trailers of an HTTP 200 is a failure.
    let req = Request::post("http://grpc/echo")
        .header("x-grpc-status", "13")
        .body(full("payload"))
        .unwrap();
    let collected = client.send(req).await.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "13");

    eventually("both responses recorded", || {
        let stats = http_stats(&engine, "grpc.default:80", "default/grpc", "default").unwrap();
        responses(&stats, 200, false) + responses(&stats, 200, true) == 2
    })
    .await;
    let stats = http_stats(&engine, "grpc.default:80", "default/grpc", "default").unwrap();
    assert_eq!(responses(&stats, 200, false), 1);
    assert_eq!(responses(&stats, 200, true), 1);
}

#[tokio::test]
async fn connect_failure_is_502() {
    let dead = unused_addr().await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "orders",
            ServiceProtocol::Http,
            &[dead],
        )]))
        .unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    let reply = client.get("orders", "/").await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.headers["x-mesh-error"], "connect-failed");
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");
    let stats = http_stats(&engine, "orders.default:80", "default/orders", "default").unwrap();
    assert_eq!(responses(&stats, 502, true), 1);
}

#[tokio::test]
async fn no_endpoint_is_503_for_http1_and_http2_clients() {
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "orders",
            ServiceProtocol::Http,
            &[],
        )]))
        .unwrap();
    let proxy = bound(&engine, ListenerKind::Outbound);
    let reply = H1Client::connect(proxy).await.get("orders", "/").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers["x-mesh-error"], "no-endpoint");
    let reply = H2Client::connect(proxy).await.get("http://orders/").await;
    assert_eq!(reply.status, 503);
}

fn route(name: &str, parent: &str, rule: HttpRuleSpec) -> HttpRouteSpec {
    HttpRouteSpec {
        name: name.into(),
        namespace: "default".into(),
        parents: vec![parent.into()],
        rules: vec![rule],
    }
}

#[tokio::test]
async fn a_slow_upstream_is_504_after_the_backend_request_timeout() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    let mut config = outbound_config(vec![service("orders", ServiceProtocol::Http, &[app.addr])]);
    config.http_routes.push(route(
        "orders-timeouts",
        "default/orders",
        HttpRuleSpec {
            backend_request_timeout_ms: Some(200),
            ..HttpRuleSpec::default()
        },
    ));
    engine.apply(config).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let started = Instant::now();
    let reply = client.get("orders", "/slow/3000").await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.headers["x-mesh-error"], "timeout");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "answered at the timeout, not after the upstream"
    );

    // The client connection stays usable; a fast request passes.
    let reply = client.get("orders", "/slow/10").await;
    assert_eq!(reply.status, 200);
    let stats = http_stats(
        &engine,
        "orders.default:80",
        "default/orders",
        "orders-timeouts",
    )
    .unwrap();
    assert_eq!(responses(&stats, 504, true), 1);
}

#[tokio::test]
async fn routes_send_matching_paths_to_their_backend() {
    let v1 = App::start("v1", AppProtocol::Http1).await;
    let v2 = App::start("v2", AppProtocol::Http1).await;
    let engine = engine();
    let mut config = outbound_config(vec![
        service("orders", ServiceProtocol::Http, &[v1.addr]),
        service("orders-v2", ServiceProtocol::Http, &[v2.addr]),
    ]);
    config.http_routes.push(route(
        "orders-v2-api",
        "default/orders",
        HttpRuleSpec {
            matches: vec![HttpMatchSpec {
                path: Some(PathMatch::Prefix("/v2".into())),
                ..HttpMatchSpec::default()
            }],
            backends: vec![BackendRefSpec {
                service: "default/orders-v2".into(),
                weight: 1,
            }],
            ..HttpRuleSpec::default()
        },
    ));
    engine.apply(config).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;
    assert_eq!(
        client.get("orders", "/v2/items").await.body,
        "v2 GET /v2/items host=orders"
    );
    assert_eq!(
        client.get("orders", "/v2x").await.body,
        "v1 GET /v2x host=orders"
    );
    assert_eq!(client.get("orders", "/").await.body, "v1 GET / host=orders");
    let stats = http_stats(
        &engine,
        "orders.default:80",
        "default/orders-v2",
        "orders-v2-api",
    )
    .unwrap();
    assert_eq!(stats.requests, 1);
}

#[tokio::test]
async fn garbage_on_the_outbound_listener_gets_a_400() {
    let engine = engine();
    engine.apply(outbound_config(vec![])).unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::Outbound))
        .await
        .unwrap();
    stream.write_all(b"HELLO\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn head_responses_and_request_bodies_keep_the_upstream_connection() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "orders",
            ServiceProtocol::Http,
            &[app.addr],
        )]))
        .unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    let head = read_reply(
        client
            .send(
                Request::head("/item")
                    .header("host", "orders")
                    .body(empty())
                    .unwrap(),
            )
            .await,
    )
    .await;
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "", "no body for HEAD");
    // The length of the GET answer, "orders HEAD /item host=orders".
    assert_eq!(head.headers["content-length"], "29");

    let post = Request::post("/echo")
        .header("host", "orders")
        .body(full("uploaded bytes"))
        .unwrap();
    let echoed = read_reply(client.send(post).await).await;
    assert_eq!(echoed.body, "uploaded bytes");

    assert_eq!(
        client.get("orders", "/after").await.body,
        "orders GET /after host=orders"
    );
    assert_eq!(
        app.connections.load(Ordering::SeqCst),
        1,
        "every exchange reused the pooled connection"
    );
}

/// The TCP stats entry of outbound connections to `target` of `dst_service`.
fn outbound_tcp_stats(
    engine: &mesh_engine::Engine,
    dst_service: &str,
    target: std::net::SocketAddr,
) -> Option<mesh_engine::stats::TcpStatsEntry> {
    engine.stats().tcp.into_iter().find(|e| {
        e.labels.direction == mesh_engine::stats::Direction::Outbound
            && e.labels.dst_service == dst_service
            && e.labels.target_addr == target.to_string()
    })
}

#[tokio::test]
async fn pooled_http_connections_count_in_the_endpoint_tcp_metrics() {
    let app = App::start("orders", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "orders",
            ServiceProtocol::Http,
            &[app.addr],
        )]))
        .unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    assert_eq!(client.get("orders", "/first").await.status, 200);
    // The pooled connection's bytes are counted as it is driven, on the engine's thread.
    eventually("the first exchange is counted", || {
        outbound_tcp_stats(&engine, "default/orders", app.addr)
            .is_some_and(|stats| stats.read_bytes > 0 && stats.write_bytes > 0)
    })
    .await;
    let first = outbound_tcp_stats(&engine, "default/orders", app.addr).expect("tcp stats");
    assert_eq!((first.open_total, first.open_connections), (1, 1));
    // From the client's side: what it sent went upstream (read), the answer came back (write).
    assert!(first.read_bytes > 0, "request bytes counted: {first:?}");
    assert!(first.write_bytes > 0, "response bytes counted: {first:?}");

    assert_eq!(client.get("orders", "/second").await.status, 200);
    eventually("the second exchange is counted", || {
        outbound_tcp_stats(&engine, "default/orders", app.addr)
            .is_some_and(|stats| stats.write_bytes > first.write_bytes)
    })
    .await;
    let second = outbound_tcp_stats(&engine, "default/orders", app.addr).expect("tcp stats");
    assert_eq!(second.open_total, 1, "the keep-alive connection was reused");
    assert!(second.read_bytes > first.read_bytes);
    assert!(second.write_bytes > first.write_bytes);
}

/// An HTTP/1 upstream that answers one request per connection (announcing keep-alive) and
/// then closes it, as a server whose keep-alive timeout elapsed would.
async fn one_shot_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_pooled_connection_the_upstream_closed_is_not_reused() {
    let (upstream, accepted) = one_shot_upstream().await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "orders",
            ServiceProtocol::Http,
            &[upstream],
        )]))
        .unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Outbound)).await;

    for round in 1..=3 {
        let reply = client.get("orders", "/").await;
        assert_eq!(
            (reply.status.as_u16(), reply.body.as_str()),
            (200, "ok"),
            "round {round}"
        );
        // The upstream's FIN reaches the idle pooled connection before the next request.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "a new connection each time"
    );
    eventually("the closed connections are counted closed", || {
        outbound_tcp_stats(&engine, "default/orders", upstream)
            .is_some_and(|stats| stats.open_total == 3 && stats.close_total >= 2)
    })
    .await;
}
