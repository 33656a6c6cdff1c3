//! Resilience on the data path: fault injection, local rate limits, retries with budgets,
//! circuit breaking and outlier ejection.
//!
//! Policies are compiled into the snapshot with the rules and services they belong to; a
//! rule or service without one pays nothing on the request path. State that must not
//! reset when a new config is swapped in (token buckets, budgets, breaker counts,
//! ejections) lives in the engine-lifetime [`ResilienceRegistry`], like balancer load.

pub mod breaker;
pub mod fault;
pub mod rate_limit;
pub mod retry;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::{CircuitBreakerSpec, RateLimitSpec, RetrySpec};
use crate::snapshot::ConfigError;

pub use breaker::{
    BreakerStats, EndpointHealth, EndpointHealthStats, Limit, RequestGuard, ServiceBreaker,
};
pub use fault::{grpc_status_of_http, Faults, Injected};
pub use rate_limit::{retry_after_seconds, RateLimiter};
pub use retry::{RetryBudget, RetryPolicy};

/// Engine-lifetime resilience state, keyed by what it belongs to (a route rule of a parent
/// Service, an inbound port, a Service). A new snapshot naming the same thing with the
/// same settings gets the same state back; changed settings start afresh.
#[derive(Default)]
pub struct ResilienceRegistry {
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
    retries: Mutex<HashMap<String, Arc<RetryPolicy>>>,
    breakers: Mutex<HashMap<String, Arc<ServiceBreaker>>>,
    health: Mutex<HashMap<(String, SocketAddr), Arc<EndpointHealth>>>,
}

impl ResilienceRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The token bucket kept under `key`, or a new full one when there is none yet or its
    /// settings differ. `path` names the config field for errors.
    pub fn rate_limiter(
        &self,
        key: String,
        path: &str,
        spec: &RateLimitSpec,
    ) -> Result<Arc<RateLimiter>, ConfigError> {
        let mut limiters = self.limiters.lock();
        if let Some(existing) = limiters.get(&key) {
            if existing.spec() == spec {
                return Ok(Arc::clone(existing));
            }
        }
        let limiter = Arc::new(RateLimiter::new(path, spec)?);
        limiters.insert(key, Arc::clone(&limiter));
        Ok(limiter)
    }

    /// The retry policy (and with it the retry budget) kept under `key`, or a new one
    /// when there is none yet or its settings differ.
    pub fn retry_policy(
        &self,
        key: String,
        path: &str,
        spec: &RetrySpec,
    ) -> Result<Arc<RetryPolicy>, ConfigError> {
        let mut retries = self.retries.lock();
        if let Some(existing) = retries.get(&key) {
            if existing.spec() == spec {
                return Ok(Arc::clone(existing));
            }
        }
        let policy = Arc::new(RetryPolicy::new(path, spec)?);
        retries.insert(key, Arc::clone(&policy));
        Ok(policy)
    }

    /// The breaker of the Service `key`. A new one starts with `spec`'s limits; an
    /// existing one keeps its limits (and counts) until the snapshot that names the new
    /// ones is put in force (see `Snapshot::activate`), so a refused config changes
    /// nothing. `endpoints` is how many of its endpoints take traffic.
    pub fn breaker(
        &self,
        key: &str,
        path: &str,
        spec: &CircuitBreakerSpec,
        endpoints: u32,
    ) -> Result<Arc<ServiceBreaker>, ConfigError> {
        ServiceBreaker::validate(path, spec)?;
        let mut breakers = self.breakers.lock();
        if let Some(existing) = breakers.get(key) {
            return Ok(Arc::clone(existing));
        }
        let breaker = Arc::new(ServiceBreaker::new(key.to_owned(), spec, endpoints));
        breakers.insert(key.to_owned(), Arc::clone(&breaker));
        Ok(breaker)
    }

    /// The passive health of endpoint `addr` under `breaker`'s Service.
    pub fn endpoint_health(
        &self,
        breaker: &Arc<ServiceBreaker>,
        addr: SocketAddr,
    ) -> Arc<EndpointHealth> {
        let mut health = self.health.lock();
        let key = (breaker.key().to_owned(), addr);
        if let Some(existing) = health.get(&key) {
            if Arc::ptr_eq(existing.breaker(), breaker) {
                return Arc::clone(existing);
            }
        }
        let fresh = Arc::new(EndpointHealth::new(addr, Arc::clone(breaker)));
        health.insert(key, Arc::clone(&fresh));
        fresh
    }

    /// Breakers and endpoint health, for the metrics (sorted by Service, then address).
    pub fn breaker_stats(&self) -> (Vec<BreakerStats>, Vec<EndpointHealthStats>) {
        let mut breakers: Vec<BreakerStats> =
            self.breakers.lock().values().map(|b| b.stats()).collect();
        breakers.sort_by(|a, b| a.service.cmp(&b.service));
        let mut health: Vec<EndpointHealthStats> =
            self.health.lock().values().map(|h| h.stats()).collect();
        health.sort_by(|a, b| (&a.service, a.addr).cmp(&(&b.service, b.addr)));
        (breakers, health)
    }

    /// Forgets state that no snapshot holds any more (called after each compile; state of
    /// the snapshot being replaced is dropped by the compile after).
    pub fn retain_used(&self) {
        self.limiters
            .lock()
            .retain(|_, limiter| Arc::strong_count(limiter) > 1);
        self.retries
            .lock()
            .retain(|_, policy| Arc::strong_count(policy) > 1);
        // Endpoint health first: it holds its breaker.
        self.health
            .lock()
            .retain(|_, health| Arc::strong_count(health) > 1);
        self.breakers
            .lock()
            .retain(|_, breaker| Arc::strong_count(breaker) > 1);
    }

    /// How many token buckets are kept (for tests and diagnostics).
    pub fn rate_limiter_count(&self) -> usize {
        self.limiters.lock().len()
    }
}
