//! Resilience on the data path: fault injection, local rate limits, retries with budgets,
//! circuit breaking and outlier ejection.
//!
//! Policies are compiled into the snapshot with the rules and services they belong to; a
//! rule or service without one pays nothing on the request path. State that must not
//! reset when a new config is swapped in (token buckets, budgets, breaker counts,
//! ejections) lives in the engine-lifetime [`ResilienceRegistry`], like balancer load.

pub mod fault;
pub mod rate_limit;
pub mod retry;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::{RateLimitSpec, RetrySpec};
use crate::snapshot::ConfigError;

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

    /// Forgets state that no snapshot holds any more (called after each compile; state of
    /// the snapshot being replaced is dropped by the compile after).
    pub fn retain_used(&self) {
        self.limiters
            .lock()
            .retain(|_, limiter| Arc::strong_count(limiter) > 1);
        self.retries
            .lock()
            .retain(|_, policy| Arc::strong_count(policy) > 1);
    }

    /// How many token buckets are kept (for tests and diagnostics).
    pub fn rate_limiter_count(&self) -> usize {
        self.limiters.lock().len()
    }
}
