//! Upstream connection pools, engine-lifetime and keyed by endpoint address, so a snapshot
//! swap never drops a warm connection.
//!
//! Built on hyper's low-level `client::conn` API rather than hyper-util's legacy `Client`:
//! - the `Client` pool is keyed by the request URI's authority, but an HTTP/2 upstream must
//!   see the authority the client addressed (`:authority: orders`) while the connection
//!   goes to the endpoint the balancer picked; here the key is the endpoint address;
//! - HTTP/1 connections return to the pool when the response body ends (observed by our
//!   response body wrapper), with no extra task per request, and are reused LIFO so
//!   surplus connections age out after the idle timeout;
//! - each endpoint pool is reached through a lock-free map read (arc-swap); the per-endpoint
//!   idle list takes a short uncontended lock (one push or pop).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;

use super::HttpVersion;
use crate::tcp::{self, ConnectError};

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
}

/// An HTTP/1 connection lent to one exchange; handed back when the response body ended.
pub(crate) struct H1Lease {
    pool: Arc<H1Pool>,
    sender: http1::SendRequest<Incoming>,
}

impl H1Lease {
    pub(crate) fn release(self) {
        self.pool.checkin(self.sender);
    }
}

pub(crate) struct Pools {
    h1: PoolMap<H1Pool>,
    h2: PoolMap<H2Pool>,
}

impl Pools {
    pub(crate) fn new() -> Self {
        Self {
            h1: PoolMap::new(),
            h2: PoolMap::new(),
        }
    }

    /// Sends `req` to `addr` over a pooled (or new) connection. `req` must already be in the
    /// shape the upstream version wants (see `headers::prepare_request`). For HTTP/1 the
    /// lease must be released once the response body has ended (or dropped otherwise).
    pub(crate) async fn send(
        &self,
        addr: SocketAddr,
        version: HttpVersion,
        req: Request<Incoming>,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<(Response<Incoming>, Option<H1Lease>), UpstreamError> {
        match version {
            HttpVersion::Http1 => {
                let pool = self.h1.get_or_insert(addr, || H1Pool::new(addr));
                let (response, sender) = pool.send(req, connect_timeout, idle_timeout).await?;
                Ok((response, Some(H1Lease { pool, sender })))
            }
            HttpVersion::Http2 => {
                let pool = self.h2.get_or_insert(addr, || H2Pool::new(addr));
                let response = pool.send(req, connect_timeout).await?;
                Ok((response, None))
            }
        }
    }

    /// Closes HTTP/1 connections idle longer than `idle_timeout` and HTTP/2 connections
    /// unused that long, and forgets pools nobody uses, so endpoints that left the config
    /// (or passthrough targets) do not keep sockets open.
    pub(crate) fn reap(&self, idle_timeout: Duration) {
        self.h1.retain(|pool| pool.reap(idle_timeout));
        self.h2.retain(|pool| pool.reap(idle_timeout));
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

// ===== HTTP/1: a LIFO stack of idle keep-alive connections per endpoint =====

struct H1Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<IdleH1>>,
}

struct IdleH1 {
    sender: http1::SendRequest<Incoming>,
    since: Instant,
}

impl H1Pool {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn checkout(&self, idle_timeout: Duration) -> Option<http1::SendRequest<Incoming>> {
        let mut idle = self.idle.lock();
        while let Some(conn) = idle.pop() {
            if !conn.sender.is_closed() && conn.since.elapsed() < idle_timeout {
                return Some(conn.sender);
            }
        }
        None
    }

    fn checkin(&self, sender: http1::SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE_PER_ENDPOINT {
            idle.push(IdleH1 {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Drops expired connections; true while some remain.
    fn reap(&self, idle_timeout: Duration) -> bool {
        let mut idle = self.idle.lock();
        idle.retain(|conn| !conn.sender.is_closed() && conn.since.elapsed() < idle_timeout);
        !idle.is_empty()
    }

    async fn send(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<(Response<Incoming>, http1::SendRequest<Incoming>), UpstreamError> {
        while let Some(mut sender) = self.checkout(idle_timeout) {
            if !sender.is_ready() {
                // Its response ended but the previous exchange is not over (the request body
                // is still uploading): don't queue behind it; it rejoins the pool when done.
                let pool = Arc::clone(self);
                tokio::spawn(async move {
                    if sender.ready().await.is_ok() {
                        pool.checkin(sender);
                    }
                });
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut e) => match e.take_message() {
                    // Closed before a byte of the request was written: try the next one.
                    Some(unsent) => req = unsent,
                    None => return Err(UpstreamError::Exchange(e.into_error())),
                },
            }
        }
        // Boxed: a connect is rare next to reuse and its future would bloat every request's.
        let mut sender = Box::pin(connect_h1(self.addr, connect_timeout)).await?;
        match sender.try_send_request(req).await {
            Ok(response) => Ok((response, sender)),
            Err(e) => Err(UpstreamError::Exchange(e.into_error())),
        }
    }
}

async fn connect_h1(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<http1::SendRequest<Incoming>, UpstreamError> {
    let stream = tcp::connect(addr, timeout)
        .await
        .map_err(UpstreamError::Connect)?;
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Exchange)?;
    tokio::spawn(async move {
        // Upgrades: a 101 (WebSocket) or a 2xx to CONNECT hands the socket to the tunnel.
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(%addr, error = %e, "upstream http/1 connection ended with an error");
        }
    });
    Ok(sender)
}

// ===== HTTP/2: one multiplexed connection per endpoint, re-established when it dies =====

struct H2Pool {
    addr: SocketAddr,
    current: ArcSwapOption<http2::SendRequest<Incoming>>,
    /// One connect at a time; requests arriving meanwhile wait for its outcome.
    connecting: tokio::sync::Mutex<()>,
    /// Connect attempts so far and the last failure, so that requests that waited behind a
    /// failed connect fail with it instead of each waiting out its own timeout in turn.
    attempts: AtomicU64,
    last_failure: Mutex<Option<ConnectError>>,
    last_used_ms: AtomicU64,
}

impl H2Pool {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            current: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            last_used_ms: AtomicU64::new(now_millis()),
        }
    }

    fn live(&self) -> Option<http2::SendRequest<Incoming>> {
        match &*self.current.load() {
            Some(sender) if !sender.is_closed() => Some(http2::SendRequest::clone(sender)),
            _ => None,
        }
    }

    async fn sender(
        &self,
        connect_timeout: Duration,
    ) -> Result<http2::SendRequest<Incoming>, UpstreamError> {
        match self.live() {
            Some(sender) => Ok(sender),
            // Boxed: rare, and its future would bloat every request's.
            None => Box::pin(self.connect(connect_timeout)).await,
        }
    }

    /// One connect at a time per endpoint; those who waited share its outcome.
    async fn connect(
        &self,
        connect_timeout: Duration,
    ) -> Result<http2::SendRequest<Incoming>, UpstreamError> {
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
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match connect_h2(self.addr, connect_timeout).await {
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
        req: Request<Incoming>,
        connect_timeout: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.last_used_ms.store(now_millis(), Ordering::Relaxed);
        let mut req = req;
        // A second try only when the first connection turned out closed before the
        // request was handed to it (the request comes back unsent).
        for retry in [true, false] {
            let mut sender = self.sender(connect_timeout).await?;
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(response),
                Err(mut e) => {
                    if sender.is_closed() {
                        self.forget_closed();
                    }
                    match e.take_message() {
                        Some(unsent) if retry => req = unsent,
                        _ => return Err(UpstreamError::Exchange(e.into_error())),
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

async fn connect_h2(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<http2::SendRequest<Incoming>, UpstreamError> {
    let stream = tcp::connect(addr, timeout)
        .await
        .map_err(UpstreamError::Connect)?;
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Exchange)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(%addr, error = %e, "upstream http/2 connection ended with an error");
        }
    });
    Ok(sender)
}
