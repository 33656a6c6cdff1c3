//! Inbound TLS: mesh mTLS (strict, permissive, off) with certificates of a test CA, and
//! ingress TLS termination with a user-given certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_engine::config::{InboundListener, MtlsMode, Protocol, ProxyConfig, ServerTlsSpec};
use mesh_engine::mesh_identity::{
    CertificateAuthority, SpiffeId, TrustBundle, WorkloadCertificate, WorkloadKey,
};
use mesh_engine::stats::TlsRefusal;
use mesh_engine::{mesh_client_config, mesh_server_name, Engine, ListenerKind, WorkloadTls};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::support::*;

const TRUST_DOMAIN: &str = "mesh.local";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A test CA and its trust bundle.
pub(crate) struct Pki {
    ca: CertificateAuthority,
    bundle: Arc<TrustBundle>,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        // Back-dated so certificates can be issued in the past (expired ones).
        let ca = CertificateAuthority::create_root(TRUST_DOMAIN, 30 * DAY, SystemTime::now() - DAY)
            .unwrap();
        let bundle =
            TrustBundle::from_pem(TRUST_DOMAIN, &ca.certificate_pem(), "test root").unwrap();
        Pki {
            ca,
            bundle: Arc::new(bundle),
        }
    }

    /// A certificate for `ns/sa`, issued at `issued` for `life`.
    fn issue_at(
        &self,
        ns: &str,
        sa: &str,
        issued: SystemTime,
        life: Duration,
    ) -> Arc<WorkloadCertificate> {
        let id = SpiffeId::workload(TRUST_DOMAIN, ns, sa).unwrap();
        let key = Arc::new(WorkloadKey::generate().unwrap());
        let issued_cert = self
            .ca
            .sign_csr(&key.csr_pem(&id).unwrap(), &id, life, issued)
            .unwrap();
        Arc::new(
            WorkloadCertificate::new(
                key,
                &issued_cert.chain_pem(),
                &id,
                &self.bundle,
                issued + Duration::from_secs(60),
            )
            .unwrap(),
        )
    }

    pub(crate) fn issue(&self, ns: &str, sa: &str) -> Arc<WorkloadCertificate> {
        self.issue_at(ns, sa, SystemTime::now(), DAY)
    }

    pub(crate) fn workload(&self, ns: &str, sa: &str) -> WorkloadTls {
        WorkloadTls::new(self.issue(ns, sa), self.bundle.clone()).unwrap()
    }
}

fn server_id() -> SpiffeId {
    SpiffeId::workload(TRUST_DOMAIN, "default", "app").unwrap()
}

pub(crate) fn mtls_config(forward_to: SocketAddr, mtls: MtlsMode) -> ProxyConfig {
    ProxyConfig {
        inbound: vec![InboundListener {
            mtls,
            ..inbound(forward_to, Protocol::Auto)
        }],
        ..ProxyConfig::default()
    }
}

/// A TLS client of the inbound port: trusts `pki`'s bundle for the server (which must be
/// `default/app`), presents `certificate` if given, offers `alpn`.
pub(crate) async fn connect_tls(
    engine: &Engine,
    pki: &Pki,
    certificate: Option<&WorkloadCertificate>,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut config = mesh_client_config(pki.bundle.clone(), server_id(), certificate).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let stream = TcpStream::connect(bound(engine, ListenerKind::Inbound)).await?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(
            ServerName::try_from(mesh_server_name(&server_id()).unwrap()).unwrap(),
            stream,
        )
        .await?;
    // TLS 1.3: the server judges the client certificate after the client's handshake
    // ends; a refusal shows on the first read.
    tls.write_all(b"").await?;
    Ok(tls)
}

/// True when the handshake failed, or the server closed the connection instead of answering.
pub(crate) async fn refused(connected: std::io::Result<TlsStream<TcpStream>>) -> bool {
    let Ok(mut tls) = connected else {
        return true;
    };
    let request = b"GET /x HTTP/1.1\r\nhost: app\r\n\r\n";
    if tls.write_all(request).await.is_err() {
        return true;
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("neither an answer nor a close within 5s"),
    }
}

fn refusals(engine: &Engine, reason: TlsRefusal) -> u64 {
    engine
        .stats()
        .tls_refusals
        .iter()
        .filter(|r| r.reason == reason)
        .map(|r| r.count)
        .sum()
}

/// A plaintext HTTP/1 request on a fresh connection: the answer's head, or None when the
/// proxy closed the connection.
pub(crate) async fn plaintext_get(engine: &Engine) -> Option<String> {
    let mut stream = TcpStream::connect(bound(engine, ListenerKind::Inbound))
        .await
        .unwrap();
    stream
        .write_all(b"GET /plain HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the proxy neither answered nor closed within 5s"
    );
    (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test]
async fn strict_serves_mtls_with_client_labels_and_refuses_plaintext() {
    let app = App::start("app", AppProtocol::Http1).await;
    let pki = Pki::new();
    let engine = engine();
    engine
        .apply(mtls_config(app.addr, MtlsMode::Strict))
        .unwrap();

    // Before an identity is installed, a strict port serves nobody.
    assert_eq!(plaintext_get(&engine).await, None);
    assert_eq!(refusals(&engine, TlsRefusal::NoIdentity), 1);

    engine.set_identity(Some(pki.workload("default", "app")));
    assert_eq!(engine.identity().as_deref(), Some(server_id().as_str()));

    let client = pki.issue("shop", "web");
    let tls = connect_tls(&engine, &pki, Some(&client), &[b"http/1.1"])
        .await
        .unwrap();
    let mut h1 = H1Client::over(tls).await;
    let reply = h1.get("app", "/hello").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "app GET /hello host=app");

    // HTTP/2 by ALPN to the same HTTP/1 workload.
    let tls = connect_tls(&engine, &pki, Some(&client), &[b"h2"])
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    // The client's proxy says the request was HTTP/1 (the workload's version).
    let request = http::Request::get("http://app/two")
        .header("x-mesh-orig-proto", "HTTP/1.1")
        .body(empty())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let reply = read_reply(response).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "app GET /two host=app");

    assert_eq!(plaintext_get(&engine).await, None);
    assert_eq!(refusals(&engine, TlsRefusal::Plaintext), 1);

    let stats = engine.stats();
    let client_id = "spiffe://mesh.local/ns/shop/sa/web";
    let http = stats
        .http
        .iter()
        .find(|e| e.labels.tls && e.labels.client_id == client_id)
        .expect("http stats of the TLS client");
    assert_eq!(http.requests, 2);
    assert_eq!(responses(http, 200, false), 2);
    let plain_requests: u64 = stats
        .http
        .iter()
        .filter(|e| !e.labels.tls)
        .map(|e| e.requests)
        .sum();
    assert_eq!(plain_requests, 0);
    let tcp = stats
        .tcp
        .iter()
        .find(|e| e.labels.tls && e.labels.client_id == client_id)
        .expect("tcp stats of the TLS client");
    assert_eq!(tcp.open_total, 2);
}

#[tokio::test]
async fn strict_refuses_clients_without_a_certificate_the_bundle_verifies() {
    let app = App::start("app", AppProtocol::Http1).await;
    let pki = Pki::new();
    let other = Pki::new();
    let engine = engine();
    engine
        .apply(mtls_config(app.addr, MtlsMode::Strict))
        .unwrap();
    engine.set_identity(Some(pki.workload("default", "app")));

    // No client certificate.
    assert!(
        refused(connect_tls(&engine, &pki, None, &[b"http/1.1"]).await).await,
        "a client without a certificate was served"
    );
    // A certificate of another root (same trust domain, other CA).
    let foreign = other.issue("shop", "web");
    assert!(
        refused(connect_tls(&engine, &pki, Some(&foreign), &[b"http/1.1"]).await).await,
        "a client of another root was served"
    );
    // An expired certificate of the right root.
    let expired = pki.issue_at(
        "shop",
        "web",
        SystemTime::now() - Duration::from_secs(3 * 3600),
        Duration::from_secs(3600),
    );
    assert!(
        refused(connect_tls(&engine, &pki, Some(&expired), &[b"http/1.1"]).await).await,
        "a client with an expired certificate was served"
    );
    eventually("three refused handshakes are counted", || {
        refusals(&engine, TlsRefusal::Handshake) == 3
    })
    .await;
    assert_eq!(app.connections.load(std::sync::atomic::Ordering::SeqCst), 0);

    // The right client still gets through.
    let good = pki.issue("shop", "web");
    let tls = connect_tls(&engine, &pki, Some(&good), &[b"http/1.1"])
        .await
        .unwrap();
    let reply = H1Client::over(tls).await.get("app", "/ok").await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn permissive_takes_mtls_and_plaintext_and_off_takes_plaintext_only() {
    let app = App::start("app", AppProtocol::Http1).await;
    let pki = Pki::new();
    let engine = engine();
    engine
        .apply(mtls_config(app.addr, MtlsMode::Permissive))
        .unwrap();
    engine.set_identity(Some(pki.workload("default", "app")));

    let head = plaintext_get(&engine).await.expect("plaintext answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let client = pki.issue("shop", "web");
    let tls = connect_tls(&engine, &pki, Some(&client), &[b"http/1.1"])
        .await
        .unwrap();
    let reply = H1Client::over(tls).await.get("app", "/secure").await;
    assert_eq!(reply.body, "app GET /secure host=app");
    let stats = engine.stats();
    let tls_requests: u64 = stats
        .http
        .iter()
        .filter(|e| e.labels.tls)
        .map(|e| e.requests)
        .sum();
    let plain_requests: u64 = stats
        .http
        .iter()
        .filter(|e| !e.labels.tls)
        .map(|e| e.requests)
        .sum();
    assert_eq!((tls_requests, plain_requests), (1, 1));

    // Off: a ClientHello is just bytes for the workload (here an HTTP server, which
    // cannot make sense of it), so the TLS client gets no handshake.
    engine.apply(mtls_config(app.addr, MtlsMode::Off)).unwrap();
    let handshake = tokio::time::timeout(
        Duration::from_secs(5),
        connect_tls(&engine, &pki, Some(&client), &[b"http/1.1"]),
    )
    .await
    .expect("the handshake ends");
    assert!(handshake.is_err());
    let head = plaintext_get(&engine).await.expect("plaintext answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // Permissive with the identity removed: plaintext only.
    engine
        .apply(mtls_config(app.addr, MtlsMode::Permissive))
        .unwrap();
    engine.set_identity(None);
    let head = plaintext_get(&engine).await.expect("plaintext answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn mtls_carries_opaque_tcp() {
    let echo = echo_server().await;
    let pki = Pki::new();
    let engine = engine();
    engine.apply(mtls_config(echo, MtlsMode::Strict)).unwrap();
    engine.set_identity(Some(pki.workload("default", "app")));
    let client = pki.issue("shop", "db-client");
    let mut tls = connect_tls(&engine, &pki, Some(&client), &[])
        .await
        .unwrap();
    tls.write_all(b"\x00\x01 not http").await.unwrap();
    let mut buf = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"\x00\x01 not http");
}

#[tokio::test]
async fn ingress_tls_terminates_with_a_user_certificate() {
    let app = App::start("app", AppProtocol::Http1).await;
    // A user's server certificate: a DNS name, signed by their own CA (not the mesh's).
    let user_ca = user_certificate();
    let dir = std::env::temp_dir().join(format!("mesh-ingress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_file = dir.join("server.crt");
    let key_file = dir.join("server.key");
    std::fs::write(&cert_file, &user_ca.cert_pem).unwrap();
    std::fs::write(&key_file, &user_ca.key_pem).unwrap();

    let engine = engine();
    let config = ProxyConfig {
        inbound: vec![InboundListener {
            tls: Some(ServerTlsSpec {
                certificate: cert_file.clone(),
                key: key_file.clone(),
            }),
            ..inbound(app.addr, Protocol::Auto)
        }],
        ..ProxyConfig::default()
    };
    engine.apply(config).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(user_ca.ca_der.clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // A browser offers h2 first; the port (protocol auto: the workload's version is
    // unknown) settles on HTTP/1.1.
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let stream = TcpStream::connect(bound(&engine, ListenerKind::Inbound))
        .await
        .unwrap();
    let tls = TlsConnector::from(Arc::new(client))
        .connect(ServerName::try_from("shop.example.com").unwrap(), stream)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let reply = H1Client::over(tls)
        .await
        .get("shop.example.com", "/cart")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "app GET /cart host=shop.example.com");
    let stats = engine.stats();
    let http = stats.http.iter().find(|e| e.labels.tls).expect("tls stats");
    assert_eq!((http.requests, http.labels.client_id.as_str()), (1, ""));

    // Plaintext is refused on an ingress TLS port.
    assert_eq!(plaintext_get(&engine).await, None);
    assert_eq!(refusals(&engine, TlsRefusal::Plaintext), 1);

    // A key that does not fit the certificate: the apply fails naming the field, and the
    // config in force stays.
    let other = user_certificate();
    std::fs::write(&key_file, &other.key_pem).unwrap();
    let err = engine
        .apply(ProxyConfig {
            inbound: vec![InboundListener {
                tls: Some(ServerTlsSpec {
                    certificate: cert_file.clone(),
                    key: key_file.clone(),
                }),
                ..inbound(app.addr, Protocol::Auto)
            }],
            ..ProxyConfig::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("inbound[0].tls: the key in"), "{err}");
    assert_eq!(engine.version(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

struct UserCertificate {
    /// The server certificate followed by its CA's, as users install chains.
    cert_pem: String,
    /// The user's CA, for the client's roots.
    ca_der: rustls::pki_types::CertificateDer<'static>,
    key_pem: String,
}

/// A server certificate for `shop.example.com` signed by a user's own CA.
fn user_certificate() -> UserCertificate {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "User Test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    UserCertificate {
        cert_pem: format!("{}{}", cert.pem(), ca.pem()),
        ca_der: ca.der().clone(),
        key_pem: key.serialize_pem(),
    }
}

#[tokio::test]
async fn a_new_identity_serves_new_handshakes_and_open_connections_carry_on() {
    let app = App::start("app", AppProtocol::Http1).await;
    let pki = Pki::new();
    let engine = engine();
    engine
        .apply(mtls_config(app.addr, MtlsMode::Strict))
        .unwrap();
    let first = pki.workload("default", "app");
    let first_serial = first.certificate().serial().to_owned();
    engine.set_identity(Some(first));
    let client = pki.issue("shop", "web");
    let tls = connect_tls(&engine, &pki, Some(&client), &[b"http/1.1"])
        .await
        .unwrap();
    let served_by = |tls: &TlsStream<TcpStream>| {
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        mesh_engine::mesh_identity::CertificateInfo::parse(&leaf)
            .unwrap()
            .serial
    };
    assert_eq!(served_by(&tls), first_serial);
    let mut open = H1Client::over(tls).await;
    assert_eq!(open.get("app", "/before").await.status, 200);

    // Renewal: a new key and certificate for the same id.
    let renewed = pki.workload("default", "app");
    let renewed_serial = renewed.certificate().serial().to_owned();
    assert_ne!(renewed_serial, first_serial);
    engine.set_identity(Some(renewed));

    let tls = connect_tls(&engine, &pki, Some(&client), &[b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(served_by(&tls), renewed_serial);
    assert_eq!(
        H1Client::over(tls).await.get("app", "/new").await.status,
        200
    );
    // The connection made before the renewal keeps working.
    assert_eq!(open.get("app", "/after").await.status, 200);

    // Removing the identity closes a strict port to new connections only.
    engine.set_identity(None);
    assert!(refused(connect_tls(&engine, &pki, Some(&client), &[b"http/1.1"]).await).await);
    assert_eq!(open.get("app", "/still").await.status, 200);
}

// ===== outbound: mesh mTLS origination to endpoints with an identity =====

/// A server proxy: a strict inbound port in front of `forward_to`, serving `default/app`.
fn server_proxy(pki: &Pki, forward_to: SocketAddr, protocol: Protocol) -> (Engine, SocketAddr) {
    let server = engine();
    server
        .apply(ProxyConfig {
            inbound: vec![InboundListener {
                mtls: MtlsMode::Strict,
                ..inbound(forward_to, protocol)
            }],
            ..ProxyConfig::default()
        })
        .unwrap();
    server.set_identity(Some(pki.workload("default", "app")));
    let addr = bound(&server, ListenerKind::Inbound);
    (server, addr)
}

/// A Service whose one endpoint is `addr`, expected to prove `identity`.
fn meshed_service(
    name: &str,
    protocol: mesh_engine::config::ServiceProtocol,
    addr: SocketAddr,
    identity: &str,
) -> mesh_engine::config::ServiceSpec {
    let mut spec = service(name, protocol, &[addr]);
    spec.endpoints[0].identity = Some(identity.to_owned());
    spec
}

#[tokio::test]
async fn outbound_http1_rides_mtls_http2_to_a_strict_server_proxy() {
    use mesh_engine::config::ServiceProtocol;
    let app = App::start("app", AppProtocol::Http1).await;
    let pki = Pki::new();
    let (server, server_addr) = server_proxy(&pki, app.addr, Protocol::Auto);

    let client = engine();
    client
        .apply(outbound_config(vec![
            meshed_service(
                "app",
                ServiceProtocol::Http,
                server_addr,
                server_id().as_str(),
            ),
            meshed_service(
                "impostor",
                ServiceProtocol::Http,
                server_addr,
                "spiffe://mesh.local/ns/default/sa/other",
            ),
        ]))
        .unwrap();
    let outbound = bound(&client, ListenerKind::Outbound);

    // Without an identity of its own the client proxy never falls back to plaintext.
    let reply = H1Client::connect(outbound).await.get("app", "/no-id").await;
    assert_eq!(reply.status, 502);
    assert_eq!(app.connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Refused before it left: the server proxy saw no connection at all.
    assert!(server.stats().tls_refusals.iter().all(|r| r.count == 0));

    client.set_identity(Some(pki.workload("shop", "web")));
    let mut h1 = H1Client::connect(outbound).await;
    for i in 0..3 {
        let reply = h1.get("app", &format!("/hello/{i}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body, format!("app GET /hello/{i} host=app"));
    }

    // A server that cannot prove the identity discovery gave the endpoint: 502.
    let reply = h1.get("impostor", "/x").await;
    assert_eq!(reply.status, 502);
    assert!(
        reply.headers.contains_key("x-mesh-error"),
        "{:?}",
        reply.headers
    );

    // The server proxy saw one mTLS connection from shop/web carrying the 3 requests,
    // over HTTP/2, and gave the HTTP/1 workload HTTP/1.
    let stats = server.stats();
    let http = stats
        .http
        .iter()
        .find(|e| e.labels.client_id == "spiffe://mesh.local/ns/shop/sa/web")
        .expect("server-side stats of the client proxy");
    assert_eq!((http.requests, responses(http, 200, false)), (3, 3));
    let tcp = stats
        .tcp
        .iter()
        .find(|e| e.labels.client_id == "spiffe://mesh.local/ns/shop/sa/web")
        .expect("server-side tcp stats");
    assert_eq!(tcp.open_total, 1);
    let client_http = client
        .stats()
        .http
        .into_iter()
        .find(|e| e.labels.dst_service == "default/app")
        .expect("client-side request stats");
    assert!(client_http.labels.tls);
    assert_eq!(client_http.requests, 4);
    let client_tcp = client
        .stats()
        .tcp
        .into_iter()
        .find(|e| e.labels.tls && e.labels.dst_service == "default/app")
        .expect("client-side tls tcp stats");
    assert_eq!(client_tcp.open_total, 1);
}

#[tokio::test]
async fn outbound_tcp_to_a_meshed_service_is_mtls() {
    use mesh_engine::config::{ServiceProtocol, TcpOutboundListener};
    let echo = echo_server().await;
    let pki = Pki::new();
    let (server, server_addr) = server_proxy(&pki, echo, Protocol::Tcp);
    let client = engine();
    client
        .apply(ProxyConfig {
            tcp_outbound: vec![TcpOutboundListener {
                listen: loopback(),
                service: "default/db".into(),
            }],
            services: vec![meshed_service(
                "db",
                ServiceProtocol::Tcp,
                server_addr,
                server_id().as_str(),
            )],
            ..ProxyConfig::default()
        })
        .unwrap();
    client.set_identity(Some(pki.workload("shop", "worker")));
    let mut stream = TcpStream::connect(bound(&client, ListenerKind::TcpOutbound))
        .await
        .unwrap();
    stream.write_all(b"opaque bytes").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 12, Duration::from_secs(5)).await,
        b"opaque bytes"
    );
    let served = server
        .stats()
        .tcp
        .into_iter()
        .find(|e| e.labels.client_id == "spiffe://mesh.local/ns/shop/sa/worker");
    assert!(served.is_some_and(|e| e.labels.tls && e.open_total == 1));
}

#[tokio::test]
async fn permissive_passes_the_workloads_own_tls_through() {
    // The workload behind the permissive port terminates TLS itself (here: an engine's
    // ingress port with a user certificate in front of an HTTP app).
    let app = App::start("app", AppProtocol::Http1).await;
    let user = user_certificate();
    let dir = std::env::temp_dir().join(format!("mesh-passthrough-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.crt"), &user.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &user.key_pem).unwrap();
    let workload = engine();
    workload
        .apply(ProxyConfig {
            inbound: vec![InboundListener {
                tls: Some(ServerTlsSpec {
                    certificate: dir.join("server.crt"),
                    key: dir.join("server.key"),
                }),
                ..inbound(app.addr, Protocol::Auto)
            }],
            ..ProxyConfig::default()
        })
        .unwrap();
    let workload_tls = bound(&workload, ListenerKind::Inbound);

    let pki = Pki::new();
    let proxy = engine();
    proxy
        .apply(mtls_config(workload_tls, MtlsMode::Permissive))
        .unwrap();
    proxy.set_identity(Some(pki.workload("default", "app")));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(user.ca_der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let stream = TcpStream::connect(bound(&proxy, ListenerKind::Inbound))
        .await
        .unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("shop.example.com").unwrap(), stream)
        .await
        .expect("the workload's own certificate, through the proxy");
    let reply = H1Client::over(tls)
        .await
        .get("shop.example.com", "/own-tls")
        .await;
    assert_eq!(reply.body, "app GET /own-tls host=shop.example.com");

    // The proxy counted it as opaque plaintext (not mTLS), and mesh clients still get mTLS.
    let stats = proxy.stats();
    assert!(stats.tcp.iter().all(|e| !e.labels.tls));
    assert!(stats.tls_refusals.iter().all(|r| r.count == 0));
    let client = pki.issue("shop", "web");
    let mesh = connect_tls(&proxy, &pki, Some(&client), &[]).await.unwrap();
    assert!(mesh.get_ref().1.peer_certificates().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn upgrades_to_a_meshed_service_ride_mtls_http1() {
    use mesh_engine::config::ServiceProtocol;
    let app = App::start("chat", AppProtocol::Http1).await;
    let pki = Pki::new();
    let (server, server_addr) = server_proxy(&pki, app.addr, Protocol::Auto);
    let client = engine();
    client
        .apply(outbound_config(vec![meshed_service(
            "chat",
            ServiceProtocol::Http,
            server_addr,
            server_id().as_str(),
        )]))
        .unwrap();
    client.set_identity(Some(pki.workload("shop", "web")));
    let mut stream = TcpStream::connect(bound(&client, ListenerKind::Outbound))
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
    stream.write_all(b"through mTLS").await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 12, Duration::from_secs(5)).await,
        b"through mTLS"
    );
    // The strict server proxy took it as mTLS from the client proxy's identity.
    let served = server
        .stats()
        .tcp
        .into_iter()
        .find(|e| e.labels.client_id == "spiffe://mesh.local/ns/shop/sa/web");
    assert!(served.is_some_and(|e| e.labels.tls && e.open_total == 1));
}
