//! Opaque per-service TCP ports (`outbound.tcp`).

use std::time::Duration;

use mesh_engine::config::{ProxyConfig, ServiceProtocol, TcpOutboundListener};
use mesh_engine::stats::TcpStatsEntry;
use mesh_engine::{Engine, ListenerKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn tcp_config(endpoints: &[std::net::SocketAddr]) -> ProxyConfig {
    ProxyConfig {
        tcp_outbound: vec![TcpOutboundListener {
            listen: loopback(),
            service: "default/db".into(),
        }],
        services: vec![service("db", ServiceProtocol::Tcp, endpoints)],
        ..ProxyConfig::default()
    }
}

fn tcp_stats(engine: &Engine, target: std::net::SocketAddr) -> TcpStatsEntry {
    engine
        .stats()
        .tcp
        .into_iter()
        .find(|e| {
            e.labels.dst_service == "default/db" && e.labels.target_addr == target.to_string()
        })
        .expect("tcp stats for the endpoint")
}

#[tokio::test]
async fn forwards_to_the_service_and_counts_bytes_as_they_flow() {
    let echo = echo_server().await;
    let engine = engine();
    engine.apply(tcp_config(&[echo])).unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::TcpOutbound))
        .await
        .unwrap();

    stream.write_all(b"SELECT 1;").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 9, Duration::from_secs(5)).await,
        b"SELECT 1;"
    );
    // Bytes to the client are counted just after the write returns, on the engine's thread.
    eventually("the echoed bytes are counted", || {
        tcp_stats(&engine, echo).write_bytes == 9
    })
    .await;
    let open = tcp_stats(&engine, echo);
    assert_eq!(open.read_bytes, 9, "counted while the connection is open");
    assert_eq!((open.open_total, open.open_connections), (1, 1));

    drop(stream);
    eventually("the close is counted", || {
        tcp_stats(&engine, echo).close_total == 1
    })
    .await;
    assert_eq!(tcp_stats(&engine, echo).open_connections, 0);
}

#[tokio::test]
async fn closes_the_client_when_the_endpoint_refuses() {
    let dead = unused_addr().await;
    let engine = engine();
    engine.apply(tcp_config(&[dead])).unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::TcpOutbound))
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the client connection is closed"
    );
}

#[tokio::test]
async fn closes_the_client_when_the_service_has_no_endpoint() {
    let engine = engine();
    engine.apply(tcp_config(&[])).unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::TcpOutbound))
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the client connection is closed"
    );
}
