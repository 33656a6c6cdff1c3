//! Local rate limiting: a token bucket per HTTPRoute rule or inbound port, kept as the
//! generic cell rate algorithm (GCRA). The whole bucket is one atomic "theoretical arrival
//! time", so admitting a request is one clock read and one compare-and-swap: no lock, no
//! refill task, and concurrent workers never serialise on a mutex.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::balance::now_nanos;
use crate::config::RateLimitSpec;
use crate::snapshot::ConfigError;

const NANOS_PER_SECOND: f64 = 1e9;
/// Above this the interval between requests would round to nothing.
pub const MAX_REQUESTS_PER_SECOND: f64 = 1e9;

/// A token bucket of `burst` tokens refilled at `requests_per_second`.
#[derive(Debug)]
pub struct RateLimiter {
    spec: RateLimitSpec,
    /// Nanoseconds between two requests at the sustained rate (one token).
    interval: u64,
    /// How far the theoretical arrival time may run ahead of now: the whole bucket.
    capacity: u64,
    /// When the bucket will be full again, in nanoseconds on the engine's clock. A bucket
    /// that is full at rest has this at or before now.
    full_at: AtomicU64,
}

impl RateLimiter {
    /// Checks `spec` (`path` names the `rateLimit` field) and builds a full bucket.
    pub fn new(path: &str, spec: &RateLimitSpec) -> Result<RateLimiter, ConfigError> {
        let rate = spec.requests_per_second;
        if !(rate > 0.0 && rate <= MAX_REQUESTS_PER_SECOND) {
            return Err(ConfigError {
                path: format!("{path}.requestsPerSecond"),
                message: format!(
                    "must be a number above 0 and at most {MAX_REQUESTS_PER_SECOND}, got {rate}"
                ),
            });
        }
        if spec.burst == 0 {
            return Err(ConfigError {
                path: format!("{path}.burst"),
                message: "must be at least 1".into(),
            });
        }
        let interval = ((NANOS_PER_SECOND / rate).round() as u64).max(1);
        Ok(RateLimiter {
            spec: spec.clone(),
            interval,
            capacity: interval.saturating_mul(u64::from(spec.burst)),
            full_at: AtomicU64::new(0),
        })
    }

    pub fn spec(&self) -> &RateLimitSpec {
        &self.spec
    }

    /// Takes one token. `Err` holds how long until one is available (for Retry-After).
    pub fn acquire(&self) -> Result<(), Duration> {
        self.acquire_at(now_nanos())
    }

    pub(crate) fn acquire_at(&self, now: u64) -> Result<(), Duration> {
        let mut full_at = self.full_at.load(Relaxed);
        loop {
            let next = full_at.max(now).saturating_add(self.interval);
            let ahead = next - now;
            if ahead > self.capacity {
                return Err(Duration::from_nanos(ahead - self.capacity));
            }
            match self
                .full_at
                .compare_exchange_weak(full_at, next, Relaxed, Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => full_at = actual,
            }
        }
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1 (HTTP has no finer unit).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}
