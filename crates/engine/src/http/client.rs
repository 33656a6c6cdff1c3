//! Upstream connection pools, engine-lifetime and keyed by endpoint address, so a snapshot
//! swap never drops a warm connection.
//!
//! Built on hyper's low-level `client::conn` API rather than hyper-util's legacy `Client`:
//! - the `Client` pool is keyed by the request URI's authority, but an HTTP/2 upstream must
//!   see the authority the client addressed (`:authority: orders`) while the connection
//!   goes to the endpoint the balancer picked; here the key is the endpoint address;
//! - HTTP/1 connections have no task of their own: the task using one drives it (see
//!   [`H1Conn`]); they return to the pool when the response body ends (observed by our
//!   response body wrapper) and are reused LIFO so surplus connections age out after the
//!   idle timeout;
//! - each endpoint pool is reached through a lock-free map read (arc-swap); the per-endpoint
//!   idle list takes a short uncontended lock (one push or pop).

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2, TrySendError};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::TcpStream;

use super::forward::PoolTimeouts;
use super::replay::RequestBody;
use super::HttpVersion;
use crate::resilience::breaker::{ConnectionGuard, IdleConnections};
use crate::resilience::{Limit, ServiceBreaker};
use crate::stats::TcpStats;
use crate::tcp::{self, ConnectError, Metered, Peer};
use crate::tls::WorkloadTls;
use mesh_identity::SpiffeId;

/// Idle HTTP/1 connections kept per endpoint; more are closed when they come back.
const MAX_IDLE_PER_ENDPOINT: usize = 512;
/// HTTP/2 PING while streams are open, to notice a dead peer that never sent a FIN.
const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no response head came back from an upstream.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// The TCP connection could not be made (refused, unreachable, timed out).
    Connect(ConnectError),
    /// The connection failed or was reset before a response head arrived.
    Exchange(hyper::Error),
    /// The Service's circuit breaker allowed no connection (nothing was sent).
    Overflow(Limit),
}

/// A failed send; `unsent` holds the request when not a byte of it reached the upstream
/// (a connect failure, a connection closed before the request was handed to it), so it
/// can go elsewhere whatever its method or body.
pub(crate) struct SendError {
    pub(crate) error: UpstreamError,
    /// Boxed: rare, and a large error would enlarge every send's result.
    pub(crate) unsent: Option<Box<Request<RequestBody>>>,
}

impl SendError {
    fn sent(error: UpstreamError) -> Self {
        Self {
            error,
            unsent: None,
        }
    }

    fn unsent(error: UpstreamError, req: Request<RequestBody>) -> Self {
        Self {
            error,
            unsent: Some(Box::new(req)),
        }
    }
}

/// Where a new upstream connection counts, asked only when one is opened.
pub(crate) type ConnectStats<'a> = dyn Fn() -> Option<Arc<TcpStats>> + Sync + 'a;

/// The socket under every pooled connection, counting into the TCP metrics of the backend
/// endpoint it was opened for (when the request had some).
type UpstreamIo = TokioIo<UpstreamStream>;

/// Plaintext, or mesh mTLS (boxed: the TLS state is large, and rare next to plaintext).
enum UpstreamStream {
    Plain(Metered<TcpStream>),
    Mesh(Box<tokio_rustls::client::TlsStream<Metered<TcpStream>>>),
}

impl tokio::io::AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(io) => Pin::new(io).poll_read(cx, buf),
            UpstreamStream::Mesh(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(io) => Pin::new(io).poll_write(cx, buf),
            UpstreamStream::Mesh(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            UpstreamStream::Mesh(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Plain(io) => io.is_write_vectored(),
            UpstreamStream::Mesh(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(io) => Pin::new(io).poll_flush(cx),
            UpstreamStream::Mesh(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(io) => Pin::new(io).poll_shutdown(cx),
            UpstreamStream::Mesh(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An HTTP/1 connection lent to one exchange; handed back when the response body ended.
pub(crate) struct H1Lease {
    pool: Arc<H1Pool>,
    conn: H1Conn,
}

impl H1Lease {
    pub(crate) fn release(self) {
        self.pool.checkin(self.conn);
    }

    /// Advances the connection's I/O (see [`H1Conn`]); Ready once it has ended.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.conn.poll_drive(cx)
    }

    /// The connection, never to return to the pool (an upgrade takes it over).
    pub(crate) fn into_conn(self) -> H1Conn {
        self.conn
    }
}

pub(crate) struct Pools {
    h1: PoolMap<H1Pool>,
    h2: PoolMap<H2Pool>,
    /// Mesh mTLS connections (HTTP/2 to the endpoint's proxy), apart from plaintext ones.
    mesh: PoolMap<H2Pool>,
    /// Mesh mTLS HTTP/1 connections, for what only HTTP/1 carries (upgrades).
    mesh_h1: PoolMap<H1Pool>,
}

/// Where a mesh mTLS request goes: the identity this proxy presents (the one in force when
/// a connection is made) and the SPIFFE id the endpoint must prove.
pub(crate) struct MeshTarget {
    pub(crate) identity: Arc<WorkloadTls>,
    pub(crate) expected: Arc<SpiffeId>,
}

impl Pools {
    pub(crate) fn new() -> Self {
        Self {
            h1: PoolMap::new(),
            h2: PoolMap::new(),
            mesh: PoolMap::new(),
            mesh_h1: PoolMap::new(),
        }
    }

    /// Sends `req` to `addr` over a pooled (or new) connection. `req` must already be in the
    /// shape the upstream version wants (see `headers::prepare_request`). For HTTP/1 the
    /// lease must be released once the response body has ended (or dropped otherwise), and
    /// whoever reads the response body drives the connection (see [`H1Conn`]). A connection
    /// opened for this request counts on `tcp_stats`, and against `breaker`'s connection
    /// limit (at the limit the request waits, as a pending request, for one to free up).
    pub(crate) async fn send(
        &self,
        addr: SocketAddr,
        version: HttpVersion,
        req: Request<RequestBody>,
        timeouts: PoolTimeouts,
        tcp_stats: &ConnectStats<'_>,
        breaker: Option<&Arc<ServiceBreaker>>,
    ) -> Result<(Response<Incoming>, Option<H1Lease>), SendError> {
        match version {
            HttpVersion::Http1 => {
                let pool = self.h1.get_or_insert(addr, || H1Pool::new(addr, None));
                let (response, conn) = pool.send(req, timeouts, tcp_stats, breaker, None).await?;
                Ok((response, Some(H1Lease { pool, conn })))
            }
            HttpVersion::Http2 => {
                let pool = self.h2.get_or_insert(addr, || H2Pool::new(addr, None));
                let response = pool
                    .send(req, timeouts.connect, tcp_stats, breaker, None)
                    .await?;
                Ok((response, None))
            }
        }
    }

    /// Sends `req` (prepared for `version`) to the proxy of the endpoint at `addr` over
    /// mesh mTLS, made with the identity in force and checked against `mesh.expected`:
    /// HTTP/2 (one multiplexed connection per endpoint), or HTTP/1 for what only it
    /// carries (upgrades). Counting, limits and leases as for [`Pools::send`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send_mesh(
        &self,
        addr: SocketAddr,
        version: HttpVersion,
        req: Request<RequestBody>,
        timeouts: PoolTimeouts,
        tcp_stats: &ConnectStats<'_>,
        breaker: Option<&Arc<ServiceBreaker>>,
        mesh: MeshTarget,
    ) -> Result<(Response<Incoming>, Option<H1Lease>), SendError> {
        let fits = |expected: &Option<Arc<SpiffeId>>| expected.as_deref() == Some(&*mesh.expected);
        match version {
            HttpVersion::Http1 => {
                let pool = self.mesh_h1.get_or_replace(
                    addr,
                    |pool| fits(&pool.expected),
                    || H1Pool::new(addr, Some(mesh.expected.clone())),
                );
                let (response, conn) = pool
                    .send(req, timeouts, tcp_stats, breaker, Some(&mesh))
                    .await?;
                Ok((response, Some(H1Lease { pool, conn })))
            }
            HttpVersion::Http2 => {
                let pool = self.mesh.get_or_replace(
                    addr,
                    |pool| fits(&pool.expected),
                    || H2Pool::new(addr, Some(mesh.expected.clone())),
                );
                let response = pool
                    .send(req, timeouts.connect, tcp_stats, breaker, Some(&mesh))
                    .await?;
                Ok((response, None))
            }
        }
    }

    /// Closes HTTP/1 connections idle longer than `idle_timeout` (or closed by their peer)
    /// and HTTP/2 connections unused that long, and forgets pools nobody uses, so endpoints
    /// that left the config (or passthrough targets) do not keep sockets open.
    pub(crate) fn reap(&self, idle_timeout: Duration) {
        self.h1.retain(|pool| pool.reap(idle_timeout));
        self.h2.retain(|pool| pool.reap(idle_timeout));
        self.mesh.retain(|pool| pool.reap(idle_timeout));
        self.mesh_h1.retain(|pool| pool.reap(idle_timeout));
    }
}

/// Copy-on-write map: lookups are one arc-swap load and a hash probe; inserts (first use
/// of an endpoint) and reaping copy the map under a lock.
struct PoolMap<P> {
    map: ArcSwap<HashMap<SocketAddr, Arc<P>>>,
    write: Mutex<()>,
}

impl<P> PoolMap<P> {
    fn new() -> Self {
        Self {
            map: ArcSwap::from_pointee(HashMap::new()),
            write: Mutex::new(()),
        }
    }

    fn get_or_insert(&self, addr: SocketAddr, make: impl FnOnce() -> P) -> Arc<P> {
        if let Some(pool) = self.map.load().get(&addr) {
            return pool.clone();
        }
        let _write = self.write.lock();
        let current = self.map.load_full();
        if let Some(pool) = current.get(&addr) {
            return pool.clone();
        }
        let pool = Arc::new(make());
        let mut next = HashMap::clone(&current);
        next.insert(addr, pool.clone());
        self.map.store(Arc::new(next));
        pool
    }

    /// The pool of `addr` if `fits` it, else a new one from `make` in its place (the old
    /// one's connections end with their last user).
    fn get_or_replace(
        &self,
        addr: SocketAddr,
        fits: impl Fn(&P) -> bool,
        make: impl FnOnce() -> P,
    ) -> Arc<P> {
        if let Some(pool) = self.map.load().get(&addr) {
            if fits(pool) {
                return pool.clone();
            }
        }
        let _write = self.write.lock();
        let current = self.map.load_full();
        if let Some(pool) = current.get(&addr) {
            if fits(pool) {
                return pool.clone();
            }
        }
        let pool = Arc::new(make());
        let mut next = HashMap::clone(&current);
        next.insert(addr, pool.clone());
        self.map.store(Arc::new(next));
        pool
    }

    /// Keeps pools for which `keep` is true or that someone still holds.
    fn retain(&self, mut keep: impl FnMut(&P) -> bool) {
        let _write = self.write.lock();
        let current = self.map.load_full();
        let mut next = HashMap::clone(&current);
        // The map's own reference plus `current`'s copy of it.
        next.retain(|_, pool| keep(pool) || Arc::strong_count(pool) > 2);
        if next.len() != current.len() {
            self.map.store(Arc::new(next));
        }
    }
}

/// Monotonic milliseconds since the first call; a cheap "last used" stamp for atomics.
fn now_millis() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

// ===== HTTP/1: connections driven by their user, pooled LIFO per endpoint =====

/// hyper's connection state machine (with upgrade support), type-erased: its type cannot be
/// named. Boxed once per connection.
type H1Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// An HTTP/1 upstream connection without a task of its own: whoever holds it drives its I/O
/// (the downstream connection's task while a request uses it, the tunnel after an upgrade),
/// so a proxied request costs no wakeup of another task. Only the driver feeds the response
/// future and the response body, so those are polled without a waker while the driver
/// registers the task's waker with the socket.
pub(crate) struct H1Conn {
    /// The connection's slot under its Service's connection limit, if it has one.
    slot: Option<ConnectionGuard>,
    sender: http1::SendRequest<RequestBody>,
    /// `None` once the connection has ended.
    driver: Option<H1Driver>,
    addr: SocketAddr,
}

impl H1Conn {
    /// Advances the connection's I/O. Ready once it has ended; the driver is dropped then,
    /// which fails whatever exchange was still waiting on it.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(driver) = self.driver.as_mut() else {
            return Poll::Ready(());
        };
        let result = ready!(driver.as_mut().poll(cx));
        if let Err(e) = result {
            tracing::debug!(addr = %self.addr, error = %e, "upstream http/1 connection ended with an error");
        }
        self.driver = None;
        Poll::Ready(())
    }

    /// Drives the connection once, with nobody to wake: it notices a close that happened
    /// while it sat idle, and its request queue forgets the waker of whichever task used it
    /// last (the next send would wake that task for nothing). True if it is still open.
    fn poll_idle(&mut self) -> bool {
        let mut nobody = Context::from_waker(Waker::noop());
        self.poll_drive(&mut nobody).is_pending() && !self.sender.is_closed()
    }

    fn is_open(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }

    /// Sends `req` and drives the connection until the response head is in. An `Err` with
    /// the message still in it means not a byte was written: the request can go elsewhere.
    async fn exchange(
        &mut self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<RequestBody>>> {
        let mut response = pin!(self.sender.try_send_request(req));
        poll_fn(|cx| {
            let ended = self.poll_drive(cx).is_ready();
            let mut nobody = Context::from_waker(Waker::noop());
            match response.as_mut().poll(&mut nobody) {
                // The driver is gone, and with it the pending callback: settled now.
                Poll::Pending if ended => response.as_mut().poll(cx),
                polled => polled,
            }
        })
        .await
    }

    /// Drives the connection until it can take another request; false if it ended first.
    async fn ready(&mut self) -> bool {
        poll_fn(|cx| {
            if self.poll_drive(cx).is_ready() {
                return Poll::Ready(false);
            }
            self.sender.poll_ready(cx).map(|ready| ready.is_ok())
        })
        .await
    }
}

struct H1Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<IdleH1>>,
    /// Mesh pools: the SPIFFE id the endpoint must prove on every connection.
    expected: Option<Arc<SpiffeId>>,
}

struct IdleH1 {
    conn: H1Conn,
    since: Instant,
}

impl H1Pool {
    fn new(addr: SocketAddr, expected: Option<Arc<SpiffeId>>) -> Self {
        Self {
            addr,
            expected,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn checkout(&self, idle_timeout: Duration) -> Option<H1Conn> {
        let mut idle = self.idle.lock();
        while let Some(entry) = idle.pop() {
            if entry.conn.is_open() && entry.since.elapsed() < idle_timeout {
                return Some(entry.conn);
            }
        }
        None
    }

    fn checkin(&self, conn: H1Conn) {
        if !conn.is_open() {
            return;
        }
        let breaker = conn.slot.as_ref().map(|slot| Arc::clone(slot.breaker()));
        {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE_PER_ENDPOINT {
                idle.push(IdleH1 {
                    conn,
                    since: Instant::now(),
                });
            }
        }
        // Requests waiting for a connection of this Service may take this one.
        if let Some(breaker) = breaker {
            breaker.connection_freed();
        }
    }

    /// Drops expired connections and those their peer closed; true while some remain.
    fn reap(&self, idle_timeout: Duration) -> bool {
        let mut idle = self.idle.lock();
        idle.retain_mut(|entry| entry.since.elapsed() < idle_timeout && entry.conn.poll_idle());
        !idle.is_empty()
    }

    /// Hands a connection whose previous exchange is not over (the response ended but the
    /// request body is still uploading) to a task that returns it to the pool when done,
    /// rather than queueing a request behind it.
    fn finish_in_background(self: &Arc<Self>, mut conn: H1Conn) {
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            if conn.ready().await {
                pool.checkin(conn);
            }
        });
    }

    async fn send(
        self: &Arc<Self>,
        mut req: Request<RequestBody>,
        timeouts: PoolTimeouts,
        tcp_stats: &ConnectStats<'_>,
        breaker: Option<&Arc<ServiceBreaker>>,
        mesh: Option<&MeshTarget>,
    ) -> Result<(Response<Incoming>, H1Conn), SendError> {
        while let Some(mut conn) = self.checkout(timeouts.idle) {
            if !conn.poll_idle() {
                continue;
            }
            if !conn.sender.is_ready() {
                self.finish_in_background(conn);
                continue;
            }
            match conn.exchange(req).await {
                Ok(response) => return Ok((response, conn)),
                Err(mut e) => match e.take_message() {
                    // Closed before a byte of the request was written: try the next one.
                    Some(unsent) => req = unsent,
                    None => return Err(SendError::sent(UpstreamError::Exchange(e.into_error()))),
                },
            }
        }
        let slot = match breaker {
            None => None,
            Some(breaker) => match breaker.try_open_connection() {
                Some(slot) => Some(slot),
                // Boxed: waiting at the connection limit is rare.
                None => match Box::pin(self.wait_for_slot(breaker, timeouts)).await {
                    Ok(Waited::Slot(slot)) => Some(slot),
                    Ok(Waited::Idle(mut conn)) => {
                        return match conn.exchange(req).await {
                            Ok(response) => Ok((response, conn)),
                            Err(mut e) => Err(match e.take_message() {
                                Some(unsent) => SendError::unsent(
                                    UpstreamError::Exchange(e.into_error()),
                                    unsent,
                                ),
                                None => SendError::sent(UpstreamError::Exchange(e.into_error())),
                            }),
                        };
                    }
                    Err(limit) => {
                        return Err(SendError::unsent(UpstreamError::Overflow(limit), req))
                    }
                },
            },
        };
        if let Some(breaker) = breaker {
            let pool: Arc<dyn IdleConnections> = self.clone();
            breaker.hold_idle_in(Arc::downgrade(&pool));
        }
        // Boxed: a connect is rare next to reuse and its future would bloat every request's.
        let mut conn = match Box::pin(connect_h1(
            self.addr,
            timeouts.connect,
            tcp_stats,
            slot,
            mesh,
        ))
        .await
        {
            Ok(conn) => conn,
            Err(error) => return Err(SendError::unsent(error, req)),
        };
        match conn.exchange(req).await {
            Ok(response) => Ok((response, conn)),
            Err(mut e) => match e.take_message() {
                Some(unsent) => Err(SendError::unsent(
                    UpstreamError::Exchange(e.into_error()),
                    unsent,
                )),
                None => Err(SendError::sent(UpstreamError::Exchange(e.into_error()))),
            },
        }
    }

    /// At the Service's connection limit: waits, as a pending request, for a connection of
    /// this endpoint to come back idle or for a slot to free up, within the connect timeout.
    async fn wait_for_slot(
        self: &Arc<Self>,
        breaker: &Arc<ServiceBreaker>,
        timeouts: PoolTimeouts,
    ) -> Result<Waited, Limit> {
        let deadline = Instant::now() + timeouts.connect;
        let _pending = breaker.start_waiting()?;
        loop {
            let freed = breaker.freed();
            while let Some(mut conn) = self.checkout(timeouts.idle) {
                if !conn.poll_idle() {
                    continue;
                }
                if !conn.sender.is_ready() {
                    self.finish_in_background(conn);
                    continue;
                }
                return Ok(Waited::Idle(conn));
            }
            if let Some(slot) = breaker.try_open_connection() {
                return Ok(Waited::Slot(slot));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            breaker.wait_freed(freed, left).await?;
        }
    }
}

/// What a request waiting at the connection limit got.
enum Waited {
    Idle(H1Conn),
    Slot(ConnectionGuard),
}

impl IdleConnections for H1Pool {
    fn close_one_idle(&self, breaker: &ServiceBreaker) -> bool {
        let closed = {
            let mut idle = self.idle.lock();
            let position = idle.iter().position(|entry| {
                entry
                    .conn
                    .slot
                    .as_ref()
                    .is_some_and(|slot| std::ptr::eq(Arc::as_ptr(slot.breaker()), breaker))
            });
            position.map(|i| idle.swap_remove(i))
        };
        // Dropped outside the lock: closing gives the slot back.
        closed.is_some()
    }
}

/// A connection to `addr`, counted on `tcp_stats` from now until it closes; with `mesh`,
/// mTLS on it offering `alpn`.
async fn connect_upstream(
    addr: SocketAddr,
    timeout: Duration,
    tcp_stats: &ConnectStats<'_>,
    mesh: Option<&MeshTarget>,
    alpn: &[u8],
) -> Result<UpstreamIo, UpstreamError> {
    let open = tcp_stats().map(|stats| stats.open());
    let stream = tcp::connect(addr, timeout)
        .await
        .map_err(UpstreamError::Connect)?;
    let stream = Metered::new(stream, open, Peer::Upstream);
    let Some(mesh) = mesh else {
        return Ok(TokioIo::new(UpstreamStream::Plain(stream)));
    };
    let tls = crate::tls::connect_mesh(stream, mesh, &[alpn], timeout)
        .await
        .map_err(|e| UpstreamError::Connect(ConnectError::Io(e)))?;
    Ok(TokioIo::new(UpstreamStream::Mesh(Box::new(tls))))
}

async fn connect_h1(
    addr: SocketAddr,
    timeout: Duration,
    tcp_stats: &ConnectStats<'_>,
    slot: Option<ConnectionGuard>,
    mesh: Option<&MeshTarget>,
) -> Result<H1Conn, UpstreamError> {
    let io = connect_upstream(addr, timeout, tcp_stats, mesh, crate::tls::ALPN_HTTP1).await?;
    let (sender, connection) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(UpstreamError::Exchange)?;
    Ok(H1Conn {
        slot,
        sender,
        // Upgrades: a 101 (WebSocket) or a 2xx to CONNECT hands the socket to the tunnel.
        driver: Some(Box::pin(connection.with_upgrades())),
        addr,
    })
}

// ===== HTTP/2: one multiplexed connection per endpoint, re-established when it dies =====

struct H2Pool {
    addr: SocketAddr,
    /// Mesh pools: the SPIFFE id the endpoint must prove on every connection.
    expected: Option<Arc<SpiffeId>>,
    current: ArcSwapOption<http2::SendRequest<RequestBody>>,
    /// One connect at a time; requests arriving meanwhile wait for its outcome.
    connecting: tokio::sync::Mutex<()>,
    /// Connect attempts so far and the last failure, so that requests that waited behind a
    /// failed connect fail with it instead of each waiting out its own timeout in turn.
    attempts: AtomicU64,
    last_failure: Mutex<Option<ConnectError>>,
    last_used_ms: AtomicU64,
}

impl H2Pool {
    fn new(addr: SocketAddr, expected: Option<Arc<SpiffeId>>) -> Self {
        Self {
            addr,
            expected,
            current: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            last_used_ms: AtomicU64::new(now_millis()),
        }
    }

    fn live(&self) -> Option<http2::SendRequest<RequestBody>> {
        match &*self.current.load() {
            Some(sender) if !sender.is_closed() => Some(http2::SendRequest::clone(sender)),
            _ => None,
        }
    }

    async fn sender(
        &self,
        connect_timeout: Duration,
        tcp_stats: &ConnectStats<'_>,
        breaker: Option<&Arc<ServiceBreaker>>,
        mesh: Option<&MeshTarget>,
    ) -> Result<http2::SendRequest<RequestBody>, UpstreamError> {
        match self.live() {
            Some(sender) => Ok(sender),
            // Boxed: rare, and its future would bloat every request's.
            None => Box::pin(self.connect(connect_timeout, tcp_stats, breaker, mesh)).await,
        }
    }

    /// One connect at a time per endpoint; those who waited share its outcome. Under a
    /// connection limit the connect waits (as a pending request) for a slot first.
    async fn connect(
        &self,
        connect_timeout: Duration,
        tcp_stats: &ConnectStats<'_>,
        breaker: Option<&Arc<ServiceBreaker>>,
        mesh: Option<&MeshTarget>,
    ) -> Result<http2::SendRequest<RequestBody>, UpstreamError> {
        let seen_attempts = self.attempts.load(Ordering::Acquire);
        let _connecting = self.connecting.lock().await;
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        if self.attempts.load(Ordering::Acquire) != seen_attempts {
            if let Some(failure) = &*self.last_failure.lock() {
                return Err(UpstreamError::Connect(failure.duplicate()));
            }
        }
        let slot = match breaker {
            None => None,
            Some(breaker) => Some(
                connection_slot(breaker, connect_timeout)
                    .await
                    .map_err(UpstreamError::Overflow)?,
            ),
        };
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match connect_h2(self.addr, connect_timeout, tcp_stats, slot, mesh).await {
            Ok(sender) => {
                *self.last_failure.lock() = None;
                self.current.store(Some(Arc::new(sender.clone())));
                Ok(sender)
            }
            Err(e) => {
                if let UpstreamError::Connect(failure) = &e {
                    *self.last_failure.lock() = Some(failure.duplicate());
                }
                Err(e)
            }
        }
    }

    async fn send(
        &self,
        req: Request<RequestBody>,
        connect_timeout: Duration,
        tcp_stats: &ConnectStats<'_>,
        breaker: Option<&Arc<ServiceBreaker>>,
        mesh: Option<&MeshTarget>,
    ) -> Result<Response<Incoming>, SendError> {
        self.last_used_ms.store(now_millis(), Ordering::Relaxed);
        let mut req = req;
        // A second try only when the first connection turned out closed before the
        // request was handed to it (the request comes back unsent).
        for retry in [true, false] {
            let mut sender = match self.sender(connect_timeout, tcp_stats, breaker, mesh).await {
                Ok(sender) => sender,
                Err(error) => return Err(SendError::unsent(error, req)),
            };
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(response),
                Err(mut e) => {
                    if sender.is_closed() {
                        self.forget_closed();
                    }
                    match e.take_message() {
                        Some(unsent) if retry => req = unsent,
                        Some(unsent) => {
                            return Err(SendError::unsent(
                                UpstreamError::Exchange(e.into_error()),
                                unsent,
                            ))
                        }
                        None => {
                            return Err(SendError::sent(UpstreamError::Exchange(e.into_error())))
                        }
                    }
                }
            }
        }
        unreachable!("the loop's last iteration returns")
    }

    /// Clears the slot if it still holds a connection that has closed.
    fn forget_closed(&self) {
        let current = self.current.load_full();
        if let Some(sender) = &current {
            if sender.is_closed() {
                self.current.compare_and_swap(&current, None);
            }
        }
    }

    /// Closes the connection when unused for `idle_timeout`; true while one is open.
    fn reap(&self, idle_timeout: Duration) -> bool {
        let idle_for = Duration::from_millis(
            now_millis().saturating_sub(self.last_used_ms.load(Ordering::Relaxed)),
        );
        if idle_for >= idle_timeout {
            self.current.store(None);
        }
        self.live().is_some()
    }
}

/// A slot under `breaker`'s connection limit, waiting as a pending request for up to
/// `limit` when there is none.
async fn connection_slot(
    breaker: &Arc<ServiceBreaker>,
    limit: Duration,
) -> Result<ConnectionGuard, Limit> {
    if let Some(slot) = breaker.try_open_connection() {
        return Ok(slot);
    }
    let deadline = Instant::now() + limit;
    let _pending = breaker.start_waiting()?;
    loop {
        let freed = breaker.freed();
        if let Some(slot) = breaker.try_open_connection() {
            return Ok(slot);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        breaker.wait_freed(freed, left).await?;
    }
}

async fn connect_h2(
    addr: SocketAddr,
    timeout: Duration,
    tcp_stats: &ConnectStats<'_>,
    slot: Option<ConnectionGuard>,
    mesh: Option<&MeshTarget>,
) -> Result<http2::SendRequest<RequestBody>, UpstreamError> {
    let io = connect_upstream(addr, timeout, tcp_stats, mesh, crate::tls::ALPN_H2).await?;
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT)
        .handshake(io)
        .await
        .map_err(UpstreamError::Exchange)?;
    tokio::spawn(async move {
        // The connection's slot under its Service's limit ends with it.
        let _slot = slot;
        if let Err(e) = connection.await {
            tracing::debug!(%addr, error = %e, "upstream http/2 connection ended with an error");
        }
    });
    Ok(sender)
}
