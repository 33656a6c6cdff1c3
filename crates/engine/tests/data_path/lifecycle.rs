//! Applying configs (versions, listener reconcile, bind failures) and shutdown (drain).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_engine::config::{
    InboundListener, MtlsMode, Protocol, ProxyConfig, ServiceProtocol, TcpOutboundListener,
};
use mesh_engine::{ApplyError, ListenerKind};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

fn inbound_at(listen: &str, forward_to: SocketAddr) -> InboundListener {
    InboundListener {
        listen: listen.parse().unwrap(),
        forward_to,
        protocol: Protocol::Auto,
        service: "default/app".into(),
        rate_limit: None,
        mtls: MtlsMode::Permissive,
        tls: None,
    }
}

#[tokio::test]
async fn apply_returns_increasing_versions_and_keeps_the_old_config_on_error() {
    let engine = engine();
    assert_eq!(engine.version(), 0);
    assert_eq!(engine.apply(outbound_config(vec![])).unwrap(), 1);
    assert_eq!(engine.apply(outbound_config(vec![])).unwrap(), 2);

    let mut invalid = outbound_config(vec![]);
    invalid.tcp_outbound.push(TcpOutboundListener {
        listen: loopback(),
        service: "default/missing".into(),
    });
    match engine.apply(invalid) {
        Err(ApplyError::Config(e)) => assert_eq!(e.path, "outbound.tcp[0].service"),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert_eq!(engine.version(), 2);
    assert_eq!(engine.apply(outbound_config(vec![])).unwrap(), 3);
}

#[tokio::test]
async fn reconcile_keeps_adds_and_removes_listeners() {
    let app = App::start("app", AppProtocol::Http1).await;
    let engine = engine();
    let first = ProxyConfig {
        inbound: vec![inbound_at("127.0.0.1:0", app.addr)],
        ..outbound_config(vec![service("app", ServiceProtocol::Http, &[app.addr])])
    };
    engine.apply(first).unwrap();
    let outbound_before = bound(&engine, ListenerKind::Outbound);
    let removed = bound(&engine, ListenerKind::Inbound);
    let mut on_removed = H1Client::connect(removed).await;
    assert_eq!(on_removed.get("app", "/").await.status, 200);
    let mut on_kept = H1Client::connect(outbound_before).await;
    assert_eq!(on_kept.get("app", "/").await.status, 200);

    let second = ProxyConfig {
        inbound: vec![inbound_at("127.0.0.2:0", app.addr)],
        ..outbound_config(vec![service("app", ServiceProtocol::Http, &[app.addr])])
    };
    assert_eq!(engine.apply(second).unwrap(), 2);

    assert_eq!(
        bound(&engine, ListenerKind::Outbound),
        outbound_before,
        "a listener still named keeps its socket"
    );
    let added = bound(&engine, ListenerKind::Inbound);
    assert_eq!(added.ip().to_string(), "127.0.0.2");
    assert_eq!(engine.listeners().len(), 2);
    assert!(
        TcpStream::connect(removed).await.is_err(),
        "the removed listener's port is closed"
    );
    assert_eq!(
        H1Client::connect(added).await.get("app", "/").await.status,
        200
    );
    // Connections open before the apply keep working on both.
    assert_eq!(on_kept.get("app", "/again").await.status, 200);
    assert_eq!(on_removed.get("app", "/still").await.status, 200);
}

#[tokio::test]
async fn a_failed_bind_changes_nothing() {
    let app = App::start("app", AppProtocol::Http1).await;
    let engine = engine();
    engine
        .apply(outbound_config(vec![service(
            "app",
            ServiceProtocol::Http,
            &[app.addr],
        )]))
        .unwrap();
    let before = engine.listeners();

    let taken = std::net::TcpListener::bind(loopback()).unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let mut config = outbound_config(vec![]);
    config.inbound.push(inbound_at("127.0.0.1:0", app.addr));
    config.tcp_outbound.push(TcpOutboundListener {
        listen: taken_addr,
        service: "default/app".into(),
    });
    config
        .services
        .push(service("app", ServiceProtocol::Http, &[app.addr]));
    match engine.apply(config) {
        Err(ApplyError::Bind { path, addr, .. }) => {
            assert_eq!(path, "outbound.tcp[0].listen");
            assert_eq!(addr, taken_addr);
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    assert_eq!(engine.version(), 1);
    let after = engine.listeners();
    assert_eq!(
        after.len(),
        before.len(),
        "the inbound listener bound before the failure was dropped"
    );
    assert_eq!(after[0].bound, before[0].bound);
    let reply = H1Client::connect(before[0].bound)
        .await
        .get("app", "/")
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests_and_refuses_new_connections() {
    let app = App::start("app", AppProtocol::Http1).await;
    let engine = Arc::new(engine());
    engine
        .apply(outbound_config(vec![service(
            "app",
            ServiceProtocol::Http,
            &[app.addr],
        )]))
        .unwrap();
    let proxy = bound(&engine, ListenerKind::Outbound);

    let mut client = H1Client::connect(proxy).await;
    let in_flight = tokio::spawn(async move { client.get("app", "/slow/700").await });
    eventually("the request reached the app", || {
        app.connections.load(Ordering::SeqCst) == 1
    })
    .await;

    let stopping = engine.clone();
    let started = Instant::now();
    let shutdown = tokio::spawn(async move { stopping.shutdown(Duration::from_secs(10)).await });
    let refused = async {
        loop {
            if TcpStream::connect(proxy).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_millis(500), refused)
        .await
        .expect("new connections refused once draining");

    let reply = in_flight.await.unwrap();
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "app slow")
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown finishes")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drained when the request ended, not at the deadline"
    );

    assert!(matches!(
        engine.apply(outbound_config(vec![])),
        Err(ApplyError::ShuttingDown)
    ));
    assert!(engine.listeners().is_empty());
    // Idempotent.
    tokio::time::timeout(
        Duration::from_secs(1),
        engine.shutdown(Duration::from_secs(10)),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_drain_deadline_closes_long_lived_tunnels() {
    let echo = echo_server().await;
    let engine = engine();
    let config = ProxyConfig {
        tcp_outbound: vec![TcpOutboundListener {
            listen: loopback(),
            service: "default/db".into(),
        }],
        services: vec![service("db", ServiceProtocol::Tcp, &[echo])],
        ..ProxyConfig::default()
    };
    engine.apply(config).unwrap();
    let mut stream = TcpStream::connect(bound(&engine, ListenerKind::TcpOutbound))
        .await
        .unwrap();
    stream.write_all(b"x").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 1, Duration::from_secs(5)).await,
        b"x"
    );

    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(5),
        engine.shutdown(Duration::from_millis(200)),
    )
    .await
    .expect("shutdown returns");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the tunnel had until the deadline"
    );
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
    )
    .await
    .expect("the tunnel is closed");
    assert!(matches!(read, Ok(0) | Err(_)));
}

#[test]
fn the_engine_runs_on_its_own_named_threads_and_drops_inside_another_runtime() {
    let engine = engine();
    engine.apply(outbound_config(vec![])).unwrap();
    let names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
        .collect();
    assert!(
        names
            .iter()
            .any(|name| name.trim().starts_with("mesh-engine-")),
        "{names:?}"
    );

    // napi drops the engine from its own tokio runtime: that must not panic.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move { drop(engine) });
}
