//! Circuit breaking and outlier ejection for one Service.
//!
//! The breaker caps what the proxy puts on a Service: open upstream connections, requests
//! waiting for one, and requests in flight; over a limit a request is refused at once
//! (503) instead of queueing behind an overloaded upstream. Counts are atomics taken and
//! released by guards, so a request that ends any way at all gives its slot back.
//!
//! Outlier ejection is passive health checking: every attempt's outcome (5xx, connect
//! failure, reset and timeout count as failures) reaches its endpoint's
//! [`EndpointHealth`]; after `consecutive_failures` in a row the endpoint is ejected from
//! balancing for the ejection time, multiplied by how often it was ejected recently, as
//! long as no more than `max_ejection_percent` of the Service's endpoints are out. The
//! same outcomes feed the balancer's EWMA latency (failures count as penalties), so an
//! endpoint that starts failing loses traffic before it is ejected, and active health
//! checks (the control plane withholds unhealthy endpoints) and passive ones act on one
//! endpoint set.

use std::net::SocketAddr;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::balance::now_nanos;
use crate::config::CircuitBreakerSpec;
use crate::snapshot::ConfigError;

/// Longest ejection, however often an endpoint was ejected (unless the base is longer).
pub const MAX_EJECTION: Duration = Duration::from_secs(300);
const MAX_EJECTION_BASE_MS: u64 = 24 * 3_600_000;

/// Which limit refused a request (`x-mesh-error` and the `limit` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    Connections,
    PendingRequests,
    Requests,
}

impl Limit {
    pub const ALL: [Limit; 3] = [Limit::Connections, Limit::PendingRequests, Limit::Requests];

    /// The `x-mesh-error` value of a request it refused.
    pub fn reason(self) -> &'static str {
        match self {
            Limit::Connections => "max-connections",
            Limit::PendingRequests => "max-pending-requests",
            Limit::Requests => "max-requests",
        }
    }

    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Connections => "connections",
            Limit::PendingRequests => "pending_requests",
            Limit::Requests => "requests",
        }
    }
}

/// Something holding idle upstream connections of a Service that it can close to make
/// room under the connection limit (an endpoint's HTTP/1 pool).
pub(crate) trait IdleConnections: Send + Sync {
    /// Closes one idle connection opened for `breaker`; false if it has none.
    fn close_one_idle(&self, breaker: &ServiceBreaker) -> bool;
}

/// The breaker of one Service, kept across config swaps while the Service exists.
pub struct ServiceBreaker {
    key: String,
    max_connections: AtomicU64,
    max_pending: AtomicU64,
    max_requests: AtomicU64,
    consecutive_failures: AtomicU32,
    ejection_base_ms: AtomicU64,
    /// Hundredths of a percent.
    max_ejection_share: AtomicU32,
    /// Endpoints of the Service that can take traffic (weight above 0), for the share.
    endpoints: AtomicU32,

    connections: AtomicU64,
    pending: AtomicU64,
    requests: AtomicU64,
    /// Refusals per limit, in `Limit::ALL` order.
    overflows: [AtomicU64; 3],
    /// Signalled when a connection of the Service closes or goes back to its pool idle.
    freed: Notify,
    /// Pools that hold idle connections of the Service.
    idle_holders: Mutex<Vec<Weak<dyn IdleConnections>>>,

    /// Endpoints currently ejected and until when (ns on the engine clock).
    ejected: Mutex<Vec<(SocketAddr, u64)>>,
    /// The latest end of any ejection so far: picks look for ejected endpoints only
    /// before then, so a Service without ejections pays one atomic load per pick.
    ejected_until: AtomicU64,
}

impl std::fmt::Debug for ServiceBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBreaker")
            .field("key", &self.key)
            .finish()
    }
}

impl ServiceBreaker {
    /// Checks `spec` (`path` names the Service's `circuitBreaker` field).
    pub fn validate(path: &str, spec: &CircuitBreakerSpec) -> Result<(), ConfigError> {
        let error = |field: &str, message: String| ConfigError {
            path: format!("{path}.{field}"),
            message,
        };
        for (field, value) in [
            ("maxConnections", spec.max_connections),
            ("maxPendingRequests", spec.max_pending_requests),
            ("maxRequests", spec.max_requests),
        ] {
            if value == 0 {
                return Err(error(field, "must be at least 1".into()));
            }
        }
        if spec.ejection_ms == 0 || spec.ejection_ms > MAX_EJECTION_BASE_MS {
            return Err(error(
                "ejectionMs",
                format!(
                    "must be from 1 to {MAX_EJECTION_BASE_MS} ms, got {}",
                    spec.ejection_ms
                ),
            ));
        }
        if !(0.0..=100.0).contains(&spec.max_ejection_percent) {
            return Err(error(
                "maxEjectionPercent",
                format!(
                    "must be a percentage from 0 to 100, got {}",
                    spec.max_ejection_percent
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn new(key: String, spec: &CircuitBreakerSpec, endpoints: u32) -> Self {
        let breaker = Self {
            key,
            max_connections: AtomicU64::new(0),
            max_pending: AtomicU64::new(0),
            max_requests: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejection_base_ms: AtomicU64::new(0),
            max_ejection_share: AtomicU32::new(0),
            endpoints: AtomicU32::new(0),
            connections: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            overflows: Default::default(),
            freed: Notify::new(),
            idle_holders: Mutex::new(Vec::new()),
            ejected: Mutex::new(Vec::new()),
            ejected_until: AtomicU64::new(0),
        };
        breaker.configure(spec, endpoints);
        breaker
    }

    /// Takes the limits of a new config; counts in progress carry over.
    pub fn configure(&self, spec: &CircuitBreakerSpec, endpoints: u32) {
        self.max_connections
            .store(u64::from(spec.max_connections), Relaxed);
        self.max_pending
            .store(u64::from(spec.max_pending_requests), Relaxed);
        self.max_requests
            .store(u64::from(spec.max_requests), Relaxed);
        self.consecutive_failures
            .store(spec.consecutive_failures, Relaxed);
        self.ejection_base_ms.store(spec.ejection_ms, Relaxed);
        self.max_ejection_share
            .store((spec.max_ejection_percent * 100.0).round() as u32, Relaxed);
        self.endpoints.store(endpoints, Relaxed);
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn max_requests(&self) -> u64 {
        self.max_requests.load(Relaxed)
    }

    /// A slot for one request in flight, or `None` over `maxRequests`.
    pub fn try_start_request(self: &Arc<Self>) -> Option<RequestGuard> {
        if take_slot(&self.requests, self.max_requests.load(Relaxed)) {
            Some(RequestGuard {
                breaker: Arc::clone(self),
            })
        } else {
            self.overflow(Limit::Requests);
            None
        }
    }

    /// A slot for one more upstream connection, or `None` at `maxConnections` (after
    /// trying to close an idle one to make room).
    pub(crate) fn try_open_connection(self: &Arc<Self>) -> Option<ConnectionGuard> {
        let max = self.max_connections.load(Relaxed);
        if take_slot(&self.connections, max)
            || (self.close_idle() && take_slot(&self.connections, max))
        {
            return Some(ConnectionGuard {
                breaker: Arc::clone(self),
            });
        }
        None
    }

    /// Registers a pool that may hold idle connections of this Service.
    pub(crate) fn hold_idle_in(&self, pool: Weak<dyn IdleConnections>) {
        let mut holders = self.idle_holders.lock();
        holders.retain(|holder| holder.strong_count() > 0);
        if !holders.iter().any(|holder| holder.ptr_eq(&pool)) {
            holders.push(pool);
        }
    }

    fn close_idle(&self) -> bool {
        let holders: Vec<Arc<dyn IdleConnections>> = self
            .idle_holders
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        holders.iter().any(|holder| holder.close_one_idle(self))
    }

    /// Becomes a pending request (one waiting for a connection), or `Err` when
    /// `maxPendingRequests` are already waiting. Look for a connection again after this
    /// (and after [`ServiceBreaker::freed`]): one freed before it may not have been
    /// announced, since nobody was waiting.
    pub(crate) fn start_waiting(&self) -> Result<PendingGuard<'_>, Limit> {
        if !take_slot(&self.pending, self.max_pending.load(Relaxed)) {
            self.overflow(Limit::PendingRequests);
            return Err(Limit::PendingRequests);
        }
        // Pairs with the fence in `connection_freed`: either this waiter then sees the freed
        // connection, or the freeing side sees this waiter and announces it.
        fence(SeqCst);
        Ok(PendingGuard { breaker: self })
    }

    /// Registers for the next announcement of a freed connection; take it before looking
    /// for one, so a connection freed in between is not missed.
    pub(crate) fn freed(&self) -> Notified<'_> {
        self.freed.notified()
    }

    /// Waits until `freed` fires, or `Err` (counted against `maxConnections`) once
    /// `limit` has passed.
    pub(crate) async fn wait_freed(
        &self,
        freed: Notified<'_>,
        limit: Duration,
    ) -> Result<(), Limit> {
        tokio::time::timeout(limit, freed).await.map_err(|_| {
            self.overflow(Limit::Connections);
            Limit::Connections
        })
    }

    /// A connection of the Service went back to its pool or closed: tells waiting
    /// requests, if there are any (the common case, none, costs a fence and a load).
    pub(crate) fn connection_freed(&self) {
        fence(SeqCst);
        if self.pending.load(Relaxed) > 0 {
            self.freed.notify_waiters();
        }
    }

    fn overflow(&self, limit: Limit) {
        self.overflows[limit as usize].fetch_add(1, Relaxed);
    }

    /// Whether a pick must check endpoints for ejection now.
    pub fn any_ejected(&self) -> bool {
        let until = self.ejected_until.load(Relaxed);
        until != 0 && now_nanos() < until
    }

    /// One more failure in a row of `endpoint`: ejects it when it has reached the
    /// threshold and the share of ejected endpoints allows.
    fn failed(&self, health: &EndpointHealth, failures: u32) {
        let threshold = self.consecutive_failures.load(Relaxed);
        if threshold == 0 || failures < threshold {
            return;
        }
        let now = now_nanos();
        if health.ejected_at(now) {
            return;
        }
        let mut ejected = self.ejected.lock();
        ejected.retain(|&(_, until)| until > now);
        let share = u64::from(self.max_ejection_share.load(Relaxed));
        let allowed = u64::from(self.endpoints.load(Relaxed)) * share / 10_000;
        if ejected.len() as u64 >= allowed {
            return;
        }
        let base = Duration::from_millis(self.ejection_base_ms.load(Relaxed));
        let until = health.eject(now, base);
        ejected.push((health.addr, until));
        self.ejected_until.fetch_max(until, Relaxed);
    }

    /// What the metrics show.
    pub fn stats(&self) -> BreakerStats {
        let now = now_nanos();
        let open = |count: &AtomicU64, max: &AtomicU64| count.load(Relaxed) >= max.load(Relaxed);
        BreakerStats {
            service: self.key.clone(),
            open: [
                open(&self.connections, &self.max_connections),
                open(&self.pending, &self.max_pending),
                open(&self.requests, &self.max_requests),
            ],
            overflows: [0, 1, 2].map(|i| self.overflows[i].load(Relaxed)),
            connections: self.connections.load(Relaxed),
            requests: self.requests.load(Relaxed),
            ejected_now: self
                .ejected
                .lock()
                .iter()
                .filter(|&&(_, until)| until > now)
                .count() as u32,
        }
    }
}

/// Takes one unit of `count` if it is below `max`.
fn take_slot(count: &AtomicU64, max: u64) -> bool {
    count
        .fetch_update(Relaxed, Relaxed, |current| {
            (current < max).then_some(current + 1)
        })
        .is_ok()
}

/// One request in flight on a Service; gives its slot back when dropped (when the
/// response has ended, or the request failed).
pub struct RequestGuard {
    breaker: Arc<ServiceBreaker>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.breaker.requests.fetch_sub(1, Relaxed);
    }
}

/// One request waiting for a connection of a Service.
pub(crate) struct PendingGuard<'a> {
    breaker: &'a ServiceBreaker,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.breaker.pending.fetch_sub(1, Relaxed);
    }
}

/// One open upstream connection of a Service; dropped with the connection.
pub(crate) struct ConnectionGuard {
    breaker: Arc<ServiceBreaker>,
}

impl ConnectionGuard {
    pub(crate) fn breaker(&self) -> &Arc<ServiceBreaker> {
        &self.breaker
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.breaker.connections.fetch_sub(1, Relaxed);
        self.breaker.connection_freed();
    }
}

/// Passive health of one endpoint of one Service.
pub struct EndpointHealth {
    addr: SocketAddr,
    breaker: Arc<ServiceBreaker>,
    consecutive_failures: AtomicU32,
    /// ns on the engine clock; 0 when never ejected.
    ejected_until: AtomicU64,
    /// Ejections that count towards the next one's length (decays while healthy).
    recent_ejections: AtomicU32,
    ejections_total: AtomicU64,
}

impl EndpointHealth {
    pub(crate) fn new(addr: SocketAddr, breaker: Arc<ServiceBreaker>) -> Self {
        Self {
            addr,
            breaker,
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            recent_ejections: AtomicU32::new(0),
            ejections_total: AtomicU64::new(0),
        }
    }

    pub fn breaker(&self) -> &Arc<ServiceBreaker> {
        &self.breaker
    }

    /// The outcome of one attempt on this endpoint.
    pub fn record(&self, success: bool) {
        if success {
            // Most outcomes are successes after successes: read before writing.
            if self.consecutive_failures.load(Relaxed) != 0 {
                self.consecutive_failures.store(0, Relaxed);
            }
        } else {
            let failures = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
            self.breaker.failed(self, failures);
        }
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected_at(now_nanos())
    }

    fn ejected_at(&self, now: u64) -> bool {
        now < self.ejected_until.load(Relaxed)
    }

    /// Ejects from `now` for `base` times the recent ejections (this one included), each
    /// base period since the last ejection ended forgiving one; returns the end.
    pub(crate) fn eject(&self, now: u64, base: Duration) -> u64 {
        let base_nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX).max(1);
        let last_end = self.ejected_until.load(Relaxed);
        let forgiven = if last_end == 0 {
            0
        } else {
            now.saturating_sub(last_end) / base_nanos
        };
        let recent = self.recent_ejections.load(Relaxed);
        let times = recent
            .saturating_sub(u32::try_from(forgiven).unwrap_or(u32::MAX))
            .saturating_add(1);
        self.recent_ejections.store(times, Relaxed);
        let ceiling = base.max(MAX_EJECTION);
        let length = base.checked_mul(times).unwrap_or(ceiling).min(ceiling);
        let until = now.saturating_add(u64::try_from(length.as_nanos()).unwrap_or(u64::MAX));
        self.ejected_until.store(until, Relaxed);
        self.consecutive_failures.store(0, Relaxed);
        self.ejections_total.fetch_add(1, Relaxed);
        until
    }

    pub fn stats(&self) -> EndpointHealthStats {
        EndpointHealthStats {
            service: self.breaker.key.clone(),
            addr: self.addr,
            ejected: self.is_ejected(),
            ejections_total: self.ejections_total.load(Relaxed),
        }
    }
}

/// A Service breaker's state for the metrics.
#[derive(Clone, Debug)]
pub struct BreakerStats {
    /// `namespace/name`.
    pub service: String,
    /// Whether each limit (in `Limit::ALL` order) is reached right now.
    pub open: [bool; 3],
    /// Requests refused by each limit so far.
    pub overflows: [u64; 3],
    pub connections: u64,
    pub requests: u64,
    pub ejected_now: u32,
}

/// One endpoint's passive health for the metrics.
#[derive(Clone, Debug)]
pub struct EndpointHealthStats {
    pub service: String,
    pub addr: SocketAddr,
    pub ejected: bool,
    pub ejections_total: u64,
}
