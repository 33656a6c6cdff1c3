use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::stats::{Direction, StatsRegistry, TcpLabels, TcpStatsEntry};

fn labels(target: SocketAddr) -> TcpLabels {
    TcpLabels {
        direction: Direction::Outbound,
        dst_service: "default/echo".into(),
        target_addr: target.to_string(),
        tls: false,
        client_id: String::new(),
    }
}

fn entry(registry: &StatsRegistry) -> TcpStatsEntry {
    registry
        .snapshot()
        .tcp
        .into_iter()
        .next()
        .expect("one tcp entry")
}

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn forward_counts_bytes_while_the_connection_is_open() {
    let target = echo_server().await;
    let registry = StatsRegistry::new();
    let stats = registry.tcp(labels(target));
    let (mut client, proxy_side) = tokio::io::duplex(1024);
    let metered = Metered::new(proxy_side, Some(stats.open()), Peer::Client);
    let task = tokio::spawn(forward(metered, target, Duration::from_secs(1)));

    client.write_all(b"hello").await.unwrap();
    let mut echoed = [0u8; 5];
    client.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"hello");

    let open = entry(&registry);
    assert_eq!(open.read_bytes, 5, "counted before the connection ends");
    assert_eq!(open.write_bytes, 5);
    assert_eq!(open.open_connections, 1);

    drop(client);
    task.await.unwrap();
    let closed = entry(&registry);
    assert_eq!(closed.open_total, 1);
    assert_eq!(closed.close_total, 1);
    assert_eq!(closed.open_connections, 0);
}

#[tokio::test]
async fn forward_closes_the_client_when_the_connect_fails() {
    // Bind then drop to get a port nothing listens on.
    let unused = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let registry = StatsRegistry::new();
    let stats = registry.tcp(labels(unused));
    let (mut client, proxy_side) = tokio::io::duplex(1024);
    let metered = Metered::new(proxy_side, Some(stats.open()), Peer::Client);
    forward(metered, unused, Duration::from_secs(1)).await;

    let mut buf = [0u8; 1];
    assert_eq!(client.read(&mut buf).await.unwrap(), 0, "client sees EOF");
    let counted = entry(&registry);
    assert_eq!((counted.open_total, counted.close_total), (1, 1));
}

#[tokio::test]
async fn connect_reports_refusal() {
    let unused = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    match connect(unused, Duration::from_secs(1)).await {
        Err(ConnectError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}
