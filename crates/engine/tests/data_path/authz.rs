//! AuthorizationPolicies on inbound ports: requests judged by the client's proven SPIFFE
//! id, path and method (403, or PERMISSION_DENIED for gRPC), opaque TCP connections by
//! the id alone (closed), both counted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_engine::config::{
    AuthorizationAction, AuthorizationOperationSpec, AuthorizationPolicySpec,
    AuthorizationRuleSpec, MtlsMode, Protocol, ProxyConfig,
};
use mesh_engine::stats::{AuthzDenyEntry, AuthzProtocol};
use mesh_engine::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;
use crate::tls::{connect_tls, mtls_config, plaintext_get, refused, Pki};

const WEB: &str = "spiffe://mesh.local/ns/shop/sa/web";
const BATCH: &str = "spiffe://mesh.local/ns/jobs/sa/batch";

fn policy(
    name: &str,
    action: AuthorizationAction,
    from: &[&str],
    paths: &[&str],
    methods: &[&str],
) -> AuthorizationPolicySpec {
    let to = if paths.is_empty() && methods.is_empty() {
        Vec::new()
    } else {
        vec![AuthorizationOperationSpec {
            paths: paths.iter().map(|s| s.to_string()).collect(),
            methods: methods.iter().map(|s| s.to_string()).collect(),
        }]
    };
    AuthorizationPolicySpec {
        name: format!("default/{name}"),
        action,
        rules: vec![AuthorizationRuleSpec {
            from: from.iter().map(|s| s.to_string()).collect(),
            to,
        }],
    }
}

fn with_policies(mut config: ProxyConfig, policies: Vec<AuthorizationPolicySpec>) -> ProxyConfig {
    config.authorization = policies;
    config
}

fn denials(engine: &Engine, protocol: AuthzProtocol) -> Vec<AuthzDenyEntry> {
    engine
        .stats()
        .authz_denials
        .into_iter()
        .filter(|d| d.labels.protocol == protocol)
        .collect()
}

fn denied(engine: &Engine, protocol: AuthzProtocol, policy: &str, client_id: &str) -> u64 {
    denials(engine, protocol)
        .iter()
        .filter(|d| d.labels.policy == policy && d.labels.client_id == client_id)
        .map(|d| d.count)
        .sum()
}

#[tokio::test]
async fn requests_are_judged_by_identity_path_and_method() {
    let app = App::start("app", AppProtocol::Http1).await;
    let pki = Pki::new();
    let engine = engine();
    engine
        .apply(with_policies(
            mtls_config(app.addr, MtlsMode::Strict),
            vec![
                policy(
                    "web-api",
                    AuthorizationAction::Allow,
                    &[WEB],
                    &["/api/*"],
                    &["GET", "POST"],
                ),
                policy(
                    "no-secrets",
                    AuthorizationAction::Deny,
                    &[],
                    &["/api/secret*"],
                    &[],
                ),
            ],
        ))
        .unwrap();
    engine.set_identity(Some(pki.workload("default", "app")));

    let web = pki.issue("shop", "web");
    let tls = connect_tls(&engine, &pki, Some(&web), &[b"http/1.1"])
        .await
        .unwrap();
    let mut h1 = H1Client::over(tls).await;
    let reply = h1.get("app", "/api/orders").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "app GET /api/orders host=app");

    // Wrong method, outside the allowed paths, a denied path (also spelled sneakily):
    // 403 on the same connection, which stays usable.
    let delete = http::Request::delete("/api/orders")
        .header("host", "app")
        .body(empty())
        .unwrap();
    let reply = read_reply(h1.send(delete).await).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.headers["x-mesh-error"], "forbidden");
    assert_eq!(
        reply.body,
        format!(
            "forbidden: no AuthorizationPolicy of default/app allows {WEB} to DELETE /api/orders\n"
        )
    );
    assert_eq!(h1.get("app", "/admin").await.status, 403);
    for secret in ["/api/secret", "/api/x/../secret-keys", "/api/%73ecret"] {
        let reply = h1.get("app", secret).await;
        assert_eq!(reply.status, 403, "{secret}");
        assert_eq!(
            reply.body,
            format!("forbidden: AuthorizationPolicy \"default/no-secrets\" denies {WEB}\n")
        );
    }
    assert_eq!(h1.get("app", "/api/still-fine").await.status, 200);

    // Another identity is not allowed at all.
    let batch = pki.issue("jobs", "batch");
    let tls = connect_tls(&engine, &pki, Some(&batch), &[b"http/1.1"])
        .await
        .unwrap();
    let reply = H1Client::over(tls).await.get("app", "/api/orders").await;
    assert_eq!(reply.status, 403);

    assert_eq!(denied(&engine, AuthzProtocol::Http, "", WEB), 2);
    assert_eq!(
        denied(&engine, AuthzProtocol::Http, "default/no-secrets", WEB),
        3
    );
    assert_eq!(denied(&engine, AuthzProtocol::Http, "", BATCH), 1);
    assert!(denials(&engine, AuthzProtocol::Http)
        .iter()
        .all(|d| d.labels.tls));

    // The denied requests never reached the workload but count as inbound 403s.
    let stats = engine.stats();
    let web_http = stats
        .http
        .iter()
        .find(|e| e.labels.client_id == WEB)
        .expect("http stats of web");
    assert_eq!(web_http.requests, 7);
    assert_eq!(responses(web_http, 200, false), 2);
    assert_eq!(responses(web_http, 403, false), 5);
    assert_eq!(app.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn grpc_requests_are_refused_with_permission_denied() {
    let app = App::start("app", AppProtocol::Http2).await;
    let pki = Pki::new();
    let engine = engine();
    engine
        .apply(with_policies(
            mtls_config(app.addr, MtlsMode::Strict),
            vec![policy(
                "web-only",
                AuthorizationAction::Allow,
                &[WEB],
                &[],
                &[],
            )],
        ))
        .unwrap();
    engine.set_identity(Some(pki.workload("default", "app")));

    let batch = pki.issue("jobs", "batch");
    let tls = connect_tls(&engine, &pki, Some(&batch), &[b"h2"])
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post("http://app/shop.Orders/List")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(empty())
        .unwrap();
    let reply = read_reply(sender.send_request(request).await.unwrap()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["grpc-status"], "7");
    assert_eq!(reply.headers["x-mesh-error"], "forbidden");
    assert!(reply.body.is_empty());
    assert_eq!(denied(&engine, AuthzProtocol::Http, "", BATCH), 1);
    // Counted as the client saw it: HTTP 200 with an error grpc-status, a failure.
    let stats = engine.stats();
    let entry = stats
        .http
        .iter()
        .find(|e| e.labels.client_id == BATCH)
        .unwrap();
    assert_eq!(responses(entry, 200, true), 1);
    assert_eq!(app.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn clients_without_a_mesh_identity_match_only_rules_without_sources() {
    let app = App::start("app", AppProtocol::Http1).await;
    let pki = Pki::new();
    let engine = engine();
    engine
        .apply(with_policies(
            mtls_config(app.addr, MtlsMode::Permissive),
            vec![
                policy("web", AuthorizationAction::Allow, &[WEB], &[], &[]),
                policy(
                    "health",
                    AuthorizationAction::Allow,
                    &[],
                    &["/health"],
                    &["GET"],
                ),
            ],
        ))
        .unwrap();
    engine.set_identity(Some(pki.workload("default", "app")));

    // `plaintext_get` asks for /plain: no rule without sources allows it.
    let head = plaintext_get(&engine).await.expect("an answer");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let mut plain = H1Client::connect(bound(&engine, mesh_engine::ListenerKind::Inbound)).await;
    assert_eq!(plain.get("app", "/health").await.status, 200);
    let reply = plain.get("app", "/orders").await;
    assert_eq!(reply.status, 403);
    assert!(
        reply.body.contains("a client without a mesh identity"),
        "{}",
        reply.body
    );
    let no_identity: Vec<_> = denials(&engine, AuthzProtocol::Http)
        .into_iter()
        .filter(|d| d.labels.client_id.is_empty())
        .collect();
    assert_eq!(no_identity.iter().map(|d| d.count).sum::<u64>(), 2);
    assert!(no_identity.iter().all(|d| !d.labels.tls));

    // Over mTLS, web may do anything.
    let web = pki.issue("shop", "web");
    let tls = connect_tls(&engine, &pki, Some(&web), &[b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(
        H1Client::over(tls).await.get("app", "/orders").await.status,
        200
    );
}

#[tokio::test]
async fn tcp_connections_of_clients_not_allowed_are_closed() {
    let echo = echo_server().await;
    let pki = Pki::new();
    let engine = engine();
    let mut config = mtls_config(echo, MtlsMode::Strict);
    config.inbound[0].protocol = Protocol::Tcp;
    engine
        .apply(with_policies(
            config,
            vec![policy("web", AuthorizationAction::Allow, &[WEB], &[], &[])],
        ))
        .unwrap();
    engine.set_identity(Some(pki.workload("default", "app")));

    let web = pki.issue("shop", "web");
    let mut tls = connect_tls(&engine, &pki, Some(&web), &[]).await.unwrap();
    tls.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");

    let batch = pki.issue("jobs", "batch");
    assert!(
        refused(connect_tls(&engine, &pki, Some(&batch), &[]).await).await,
        "batch's connection was served"
    );
    eventually("the TCP denial is counted", || {
        denied(&engine, AuthzProtocol::Tcp, "", BATCH) == 1
    })
    .await;
    assert_eq!(denied(&engine, AuthzProtocol::Tcp, "", WEB), 0);
}

#[tokio::test]
async fn a_new_policy_applies_to_requests_on_open_connections() {
    let app = App::start("app", AppProtocol::Http1).await;
    let engine = engine();
    let config = mtls_config(app.addr, MtlsMode::Off);
    engine.apply(config.clone()).unwrap();
    let mut h1 = H1Client::connect(bound(&engine, mesh_engine::ListenerKind::Inbound)).await;
    assert_eq!(h1.get("app", "/a").await.status, 200);

    engine
        .apply(with_policies(
            config.clone(),
            vec![policy("lockdown", AuthorizationAction::Deny, &[], &[], &[])],
        ))
        .unwrap();
    let reply = h1.get("app", "/a").await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        "forbidden: AuthorizationPolicy \"default/lockdown\" denies a client without a mesh identity\n"
    );

    engine.apply(config).unwrap();
    assert_eq!(h1.get("app", "/a").await.status, 200);
}
