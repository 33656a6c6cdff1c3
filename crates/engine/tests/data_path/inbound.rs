//! The inbound listener: protocol detection and forwarding to the local workload.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body::Frame;
use http_body_util::BodyExt;
use mesh_engine::config::{Protocol, ProxyConfig};
use mesh_engine::ListenerKind;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

fn inbound_config(forward_to: std::net::SocketAddr, protocol: Protocol) -> ProxyConfig {
    ProxyConfig {
        inbound: vec![inbound(forward_to, protocol)],
        ..ProxyConfig::default()
    }
}

#[tokio::test]
async fn auto_detects_http1() {
    let app = App::start("app", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(inbound_config(app.addr, Protocol::Auto))
        .unwrap();
    let listen = engine.listeners()[0].configured;
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Inbound)).await;
    let reply = client.get("app.local", "/hello").await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "app GET /hello host=app.local")
    );
    let stats =
        http_stats(&engine, &listen.to_string(), "default/app", "default").expect("inbound stats");
    assert_eq!(stats.requests, 1);
    assert_eq!(responses(&stats, 200, false), 1);
}

#[tokio::test]
async fn auto_detects_http2_and_keeps_it_upstream() {
    let app = App::start("app", AppProtocol::Http2).await;
    let engine = engine();
    engine
        .apply(inbound_config(app.addr, Protocol::Auto))
        .unwrap();
    let mut client = H2Client::connect(bound(&engine, ListenerKind::Inbound)).await;
    let reply = client.get("http://app.local/h2").await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "app GET /h2 host=app.local")
    );
}

#[tokio::test]
async fn grpc_inbound_streams_with_trailers() {
    let app = App::start("app", AppProtocol::Http2).await;
    let engine = engine();
    engine
        .apply(inbound_config(app.addr, Protocol::Grpc))
        .unwrap();
    let mut client = H2Client::connect(bound(&engine, ListenerKind::Inbound)).await;
    let (tx, body) = channel_body();
    let response = client
        .send(Request::post("http://app/echo").body(body).unwrap())
        .await;
    let mut response_body = response.into_body();
    tx.send(Frame::data(Bytes::from_static(b"ping")))
        .await
        .unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(5), response_body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.into_data().unwrap(), "ping");
    drop(tx);
    let rest = response_body.collect().await.unwrap();
    assert_eq!(rest.trailers().unwrap()["grpc-status"], "0");
}

#[tokio::test]
async fn auto_forwards_other_bytes_as_opaque_tcp() {
    let echo = echo_server().await;
    let engine = engine();
    engine.apply(inbound_config(echo, Protocol::Auto)).unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::Inbound))
        .await
        .unwrap();
    // The start of a TLS ClientHello: not HTTP.
    stream
        .write_all(b"\x16\x03\x01\x00\x05hello")
        .await
        .unwrap();
    assert_eq!(
        read_exactly(&mut stream, 10, Duration::from_secs(5)).await,
        b"\x16\x03\x01\x00\x05hello"
    );
    stream.write_all(b"more").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 4, Duration::from_secs(5)).await,
        b"more"
    );

    // Bytes to the client are counted just after the write returns, on the engine's thread.
    let tcp_stats = || {
        engine
            .stats()
            .tcp
            .into_iter()
            .find(|e| e.labels.target_addr == echo.to_string())
    };
    eventually("the echoed bytes are counted", || {
        tcp_stats().is_some_and(|tcp| tcp.write_bytes == 14)
    })
    .await;
    let tcp = tcp_stats().expect("inbound tcp stats");
    assert_eq!(tcp.read_bytes, 14);
    assert_eq!(tcp.open_connections, 1);
}

#[tokio::test]
async fn a_server_first_protocol_gets_its_banner_without_the_client_speaking() {
    let server = banner_server(b"220 smtp.local ESMTP ready\r\n").await;
    let engine = engine();
    engine
        .apply(inbound_config(server, Protocol::Auto))
        .unwrap();
    let started = Instant::now();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::Inbound))
        .await
        .unwrap();
    let banner = read_exactly(&mut stream, 28, Duration::from_secs(3)).await;
    assert_eq!(banner, b"220 smtp.local ESMTP ready\r\n");
    // The default detection timeout is 1 s; allow scheduling slack on a busy machine.
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "banner after {:?}",
        started.elapsed()
    );
    stream.write_all(b"EHLO me\r\n").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 9, Duration::from_secs(5)).await,
        b"EHLO me\r\n"
    );
}

#[tokio::test]
async fn tcp_protocol_forwards_at_once() {
    let server = banner_server(b"hello from mysql\n").await;
    let engine = engine();
    engine.apply(inbound_config(server, Protocol::Tcp)).unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::Inbound))
        .await
        .unwrap();
    // No detection wait: well under the 1 s detection timeout.
    assert_eq!(
        read_exactly(&mut stream, 17, Duration::from_millis(900)).await,
        b"hello from mysql\n"
    );
}

#[tokio::test]
async fn http1_protocol_answers_502_when_the_workload_is_down() {
    let dead = unused_addr().await;
    let engine = engine();
    engine.apply(inbound_config(dead, Protocol::Http1)).unwrap();
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Inbound)).await;
    let reply = client.get("app", "/").await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.headers["x-mesh-error"], "connect-failed");
}

#[tokio::test]
async fn accepted_http_connections_count_in_the_listener_tcp_metrics() {
    let app = App::start("app", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(inbound_config(app.addr, Protocol::Auto))
        .unwrap();
    let inbound_tcp = || {
        let entries: Vec<_> = engine
            .stats()
            .tcp
            .into_iter()
            .filter(|e| e.labels.direction == mesh_engine::stats::Direction::Inbound)
            .collect();
        assert_eq!(entries.len(), 1, "one inbound tcp series: {entries:?}");
        entries.into_iter().next().unwrap()
    };
    let mut client = H1Client::connect(bound(&engine, ListenerKind::Inbound)).await;
    let reply = client.get("app.local", "/hello").await;
    assert_eq!(reply.status, 200);

    // Bytes to the client are counted just after the write returns, on the engine's thread.
    eventually("the response bytes are counted", || {
        inbound_tcp().write_bytes > 0
    })
    .await;
    let open = inbound_tcp();
    assert_eq!(open.labels.target_addr, app.addr.to_string());
    assert_eq!((open.open_total, open.open_connections), (1, 1));
    assert!(
        open.read_bytes >= "GET /hello HTTP/1.1\r\n".len() as u64,
        "the request, detection bytes included: {open:?}"
    );

    drop(client);
    eventually("the close is counted", || inbound_tcp().close_total == 1).await;
    assert_eq!(inbound_tcp().open_connections, 0);
}
