//! Real servers and clients on 127.0.0.1 for the data-path tests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_engine::config::{
    EndpointSpec, InboundListener, LoadBalancer, MtlsMode, OutboundListener, Protocol, ProxyConfig,
    ServiceProtocol, ServiceSpec,
};
use mesh_engine::{Engine, EngineOptions, ListenerKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub type TestBody = BoxBody<Bytes, hyper::Error>;

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An address nothing listens on (bound, then released).
pub async fn unused_addr() -> SocketAddr {
    TcpListener::bind(loopback())
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn engine() -> Engine {
    Engine::new(EngineOptions { worker_threads: 1 }).expect("engine starts")
}

pub fn bound(engine: &Engine, kind: ListenerKind) -> SocketAddr {
    engine
        .listeners()
        .into_iter()
        .find(|l| l.kind == kind)
        .expect("listener of that kind")
        .bound
}

pub fn outbound(listen: SocketAddr) -> Option<OutboundListener> {
    Some(OutboundListener {
        listen,
        passthrough: false,
    })
}

pub fn inbound(forward_to: SocketAddr, protocol: Protocol) -> InboundListener {
    InboundListener {
        listen: loopback(),
        forward_to,
        protocol,
        service: "default/app".into(),
        rate_limit: None,
        mtls: MtlsMode::Permissive,
        tls: None,
    }
}

pub fn service(name: &str, protocol: ServiceProtocol, endpoints: &[SocketAddr]) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        namespace: "default".into(),
        port: 80,
        protocol,
        endpoints: endpoints
            .iter()
            .map(|&address| EndpointSpec {
                address,
                weight: 1,
                labels: BTreeMap::new(),
                identity: None,
            })
            .collect(),
        load_balancer: LoadBalancer::RoundRobin,
        circuit_breaker: None,
    }
}

/// An outbound listener on an ephemeral port in front of `services`.
pub fn outbound_config(services: Vec<ServiceSpec>) -> ProxyConfig {
    ProxyConfig {
        outbound: outbound(loopback()),
        services,
        ..ProxyConfig::default()
    }
}

// ===== upstream applications =====

/// A hyper application server. Routes:
/// - `/slow/<ms>`: answers after that many milliseconds;
/// - `/status/<code>`: answers with that status;
/// - `/upgrade`: 101 Switching Protocols, then echoes raw bytes;
/// - `/echo`: streams the request body back as it arrives, then trailers
///   `grpc-status: <x-grpc-status header or 0>`;
/// - anything else: `<name> <METHOD> <path> host=<Host or :authority>`.
pub struct App {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AppProtocol {
    Http1,
    Http2,
}

impl App {
    pub async fn start(name: &'static str, protocol: AppProtocol) -> App {
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let io = TokioIo::new(stream);
                let service = service_fn(move |req| app_response(name, req));
                tokio::spawn(async move {
                    let _ = match protocol {
                        AppProtocol::Http1 => {
                            hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, service)
                                .with_upgrades()
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
        App { addr, connections }
    }
}

async fn app_response(
    name: &'static str,
    mut req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/upgrade" {
        // A toy protocol after a 101: echo every byte.
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(empty())
            .unwrap();
        return Ok(response);
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        return Ok(text(StatusCode::OK, format!("{name} slow")));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return Ok(text(
            StatusCode::from_u16(code.parse().unwrap()).unwrap(),
            format!("{name} status"),
        ));
    }
    if path == "/echo" {
        let mut trailers = HeaderMap::new();
        let status = req
            .headers()
            .get("x-grpc-status")
            .cloned()
            .unwrap_or_else(|| "0".parse().unwrap());
        trailers.insert("grpc-status", status);
        let body = EchoBody {
            inner: req.into_body(),
            trailers: Some(trailers),
        };
        let response = Response::builder()
            .header("content-type", "application/grpc")
            .body(body.boxed())
            .unwrap();
        return Ok(response);
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            req.headers()
                .get("host")
                .map(|h| h.to_str().unwrap().to_owned())
        })
        .unwrap_or_default();
    Ok(text(
        StatusCode::OK,
        format!("{name} {} {path} host={host}", req.method()),
    ))
}

fn text(status: StatusCode, body: String) -> Response<TestBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

/// Streams the request body back frame by frame, then sends trailers.
struct EchoBody {
    inner: Incoming,
    trailers: Option<HeaderMap>,
}

impl Body for EchoBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t)))),
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            other => other,
        }
    }
}

/// Echoes every byte back.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.unwrap();
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

/// A server-first protocol (SMTP-like): greets immediately, then echoes lines.
pub async fn banner_server(banner: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if stream.write_all(banner).await.is_err() {
                    return;
                }
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

// ===== clients =====

pub fn empty() -> TestBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

pub fn full(data: &'static str) -> TestBody {
    Full::new(Bytes::from_static(data.as_bytes()))
        .map_err(|never| match never {})
        .boxed()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn read_reply(response: Response<Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// One HTTP/1.1 client connection.
pub struct H1Client {
    sender: hyper::client::conn::http1::SendRequest<TestBody>,
}

impl H1Client {
    pub async fn connect(addr: SocketAddr) -> H1Client {
        Self::over(
            TcpStream::connect(addr)
                .await
                .expect("connect to the proxy"),
        )
        .await
    }

    pub async fn over<I>(io: I) -> H1Client
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(connection);
        H1Client { sender }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> Response<Incoming> {
        self.sender.ready().await.expect("connection ready");
        self.sender.send_request(req).await.expect("response")
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        let req = Request::get(path)
            .header("host", host)
            .body(empty())
            .unwrap();
        read_reply(self.send(req).await).await
    }
}

/// One HTTP/2 (h2c prior knowledge) client connection.
#[derive(Clone)]
pub struct H2Client {
    sender: hyper::client::conn::http2::SendRequest<TestBody>,
}

impl H2Client {
    pub async fn connect(addr: SocketAddr) -> H2Client {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the proxy");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        H2Client { sender }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> Response<Incoming> {
        self.sender.ready().await.expect("connection ready");
        self.sender.send_request(req).await.expect("response")
    }

    pub async fn get(&mut self, uri: &str) -> Reply {
        let req = Request::get(uri).body(empty()).unwrap();
        read_reply(self.send(req).await).await
    }
}

/// A request body fed frame by frame from the test.
pub fn channel_body() -> (mpsc::Sender<Frame<Bytes>>, TestBody) {
    let (tx, rx) = mpsc::channel(8);
    (tx, ChannelBody { rx }.boxed())
}

struct ChannelBody {
    rx: mpsc::Receiver<Frame<Bytes>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.rx.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

/// Reads until `n` bytes arrived or the deadline passed.
pub async fn read_exactly(stream: &mut TcpStream, n: usize, within: Duration) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(within, stream.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .expect("read");
    buf
}

/// Polls `check` every 10 ms for up to 5 s.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Reads a raw HTTP/1 response head (through the blank line) byte by byte, so nothing
/// after it is consumed.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("head in time")
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed inside a response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// The HTTP stats entry with these labels.
pub fn http_stats(
    engine: &Engine,
    authority: &str,
    dst_service: &str,
    route: &str,
) -> Option<mesh_engine::stats::HttpStatsEntry> {
    engine.stats().http.into_iter().find(|e| {
        e.labels.authority == authority
            && e.labels.dst_service == dst_service
            && e.labels.route == route
    })
}

/// How many responses with `status` and `failure` an HTTP stats entry counted.
pub fn responses(entry: &mesh_engine::stats::HttpStatsEntry, status: u16, failure: bool) -> u64 {
    entry
        .responses
        .iter()
        .filter(|r| r.status_code == status && r.failure == failure)
        .map(|r| r.count)
        .sum()
}

/// An HTTPRoute `name` with one rule, attached to the Service `parent` (`namespace/name`).
pub fn one_rule_route(
    name: &str,
    parent: &str,
    rule: mesh_engine::config::HttpRuleSpec,
) -> mesh_engine::config::HttpRouteSpec {
    mesh_engine::config::HttpRouteSpec {
        name: name.into(),
        namespace: "default".into(),
        parents: vec![parent.into()],
        rules: vec![rule],
    }
}
