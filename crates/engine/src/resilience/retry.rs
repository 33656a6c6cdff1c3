//! Retry policies of HTTPRoute rules: which outcomes are retried, how long to wait before
//! each retry, and the budget that keeps retries from multiplying an outage.
//!
//! The budget follows Finagle and Linkerd: every request deposits `ratio` of a retry,
//! every retry withdraws one, deposits expire after a window, and a reserve of
//! `min_per_second` retries per second is always available (so a quiet service can
//! still retry). Deposits land in the slot of the current time slice of the window: one
//! atomic add, no lock; a withdrawal sums the live slices (retries are the rare case).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use http::{Method, StatusCode};

use crate::balance::{now_nanos, rng};
use crate::config::RetrySpec;
use crate::snapshot::ConfigError;

/// Longest wait before one retry, unless the configured base backoff is longer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_ATTEMPTS: u32 = 100;
/// Largest replay buffer accepted (a typo guard; the default is 64 KiB).
pub const MAX_REPLAY_BYTES: u64 = 64 * 1024 * 1024;
pub const MIN_BUDGET_WINDOW_MS: u64 = 1_000;
pub const MAX_BUDGET_WINDOW_MS: u64 = 60_000;
/// The gRPC status retried when a trailers-only response carries it.
pub const GRPC_UNAVAILABLE: &[u8] = b"14";

/// Time slices per budget window: deposits expire one slice at a time.
const SLICES: usize = 10;
/// Budget amounts are kept in thousandths of a retry.
const ONE_RETRY: i64 = 1_000;

/// The compiled retry policy of one rule.
#[derive(Debug)]
pub struct RetryPolicy {
    spec: RetrySpec,
    /// Retryable response statuses 0..=599 as a bit set.
    codes: [u64; 10],
    pub budget: RetryBudget,
}

impl RetryPolicy {
    /// Checks `spec` (`path` names the rule's `retry` field) and compiles it.
    pub fn new(path: &str, spec: &RetrySpec) -> Result<RetryPolicy, ConfigError> {
        let error = |field: &str, message: String| ConfigError {
            path: format!("{path}.{field}"),
            message,
        };
        if spec.attempts == 0 || spec.attempts > MAX_ATTEMPTS {
            return Err(error(
                "attempts",
                format!("must be from 1 to {MAX_ATTEMPTS}, got {}", spec.attempts),
            ));
        }
        let mut codes = [0u64; 10];
        for (i, &code) in spec.codes.iter().enumerate() {
            if !(100..=599).contains(&code) {
                return Err(error(
                    &format!("codes[{i}]"),
                    format!("must be an HTTP status from 100 to 599, got {code}"),
                ));
            }
            codes[usize::from(code / 64)] |= 1 << (code % 64);
        }
        if spec.backoff_ms > 24 * 3_600_000 {
            return Err(error(
                "backoffMs",
                format!("must be at most one day, got {} ms", spec.backoff_ms),
            ));
        }
        if !(0.0..=100.0).contains(&spec.budget_percent) {
            return Err(error(
                "budget",
                format!(
                    "must be a percentage from 0 to 100, got {}",
                    spec.budget_percent
                ),
            ));
        }
        if !(MIN_BUDGET_WINDOW_MS..=MAX_BUDGET_WINDOW_MS).contains(&spec.budget_window_ms) {
            return Err(error(
                "budgetWindowMs",
                format!(
                    "must be from {MIN_BUDGET_WINDOW_MS} to {MAX_BUDGET_WINDOW_MS} ms, got {}",
                    spec.budget_window_ms
                ),
            ));
        }
        if spec.max_request_bytes > MAX_REPLAY_BYTES {
            return Err(error(
                "maxRequestBytes",
                format!(
                    "must be at most {MAX_REPLAY_BYTES}, got {}",
                    spec.max_request_bytes
                ),
            ));
        }
        Ok(RetryPolicy {
            budget: RetryBudget::new(
                spec.budget_percent / 100.0,
                spec.min_retries_per_second,
                Duration::from_millis(spec.budget_window_ms),
            ),
            spec: spec.clone(),
            codes,
        })
    }

    pub fn spec(&self) -> &RetrySpec {
        &self.spec
    }

    /// Retries after the first attempt.
    pub fn attempts(&self) -> u32 {
        self.spec.attempts
    }

    pub fn retries_status(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        code < 640 && self.codes[usize::from(code / 64)] & (1 << (code % 64)) != 0
    }

    /// Whether a request with this method may be sent again after it may have reached the
    /// upstream (an error response, a reset, a timeout). RFC 9110 §9.2.2 idempotent
    /// methods, others only when the policy says so. gRPC calls (all POST) are retried
    /// on their own terms: the policy's consent is the rule having one.
    pub fn allows_method(&self, method: &Method, grpc: bool) -> bool {
        grpc || self.spec.non_idempotent
            || matches!(
                *method,
                Method::GET
                    | Method::HEAD
                    | Method::OPTIONS
                    | Method::TRACE
                    | Method::PUT
                    | Method::DELETE
            )
    }

    /// Largest request body kept for replay.
    pub fn max_request_bytes(&self) -> u64 {
        self.spec.max_request_bytes
    }

    /// The wait before retry number `retry` (1 for the first): the base backoff doubled
    /// per retry up to [`MAX_BACKOFF`] (or the base, if longer), then a uniformly random
    /// share between half and all of it, so clients that failed together do not retry
    /// together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = Duration::from_millis(self.spec.backoff_ms);
        if base.is_zero() {
            return base;
        }
        let ceiling = base.max(MAX_BACKOFF);
        let doubled = base
            .checked_mul(1u32 << retry.saturating_sub(1).min(20))
            .unwrap_or(ceiling)
            .min(ceiling);
        let nanos = u64::try_from(doubled.as_nanos()).unwrap_or(u64::MAX);
        let half = nanos / 2;
        Duration::from_nanos(half + rng::below(nanos - half + 1))
    }
}

/// Retries a rule may still make: deposits of `ratio` per request over a sliding window,
/// plus a reserve of `min_per_second` per second of the window.
#[derive(Debug)]
pub struct RetryBudget {
    /// Thousandths of a retry each request earns.
    deposit: i64,
    /// Thousandths of a retry always available within a window.
    reserve: i64,
    slice_nanos: u64,
    slices: [Slice; SLICES],
}

#[derive(Debug, Default)]
struct Slice {
    /// Which time slice (now / slice length) the balance belongs to.
    epoch: AtomicU64,
    balance: AtomicI64,
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_second: u32, window: Duration) -> RetryBudget {
        let window_nanos = u64::try_from(window.as_nanos())
            .unwrap_or(u64::MAX)
            .max(SLICES as u64);
        RetryBudget {
            deposit: (ratio * ONE_RETRY as f64).round() as i64,
            reserve: (i64::from(min_per_second) * ONE_RETRY)
                .saturating_mul((window_nanos / 1_000_000_000).max(1) as i64),
            slice_nanos: window_nanos / SLICES as u64,
            slices: Default::default(),
        }
    }

    /// A request was sent: it earns `ratio` of a retry.
    pub fn deposit(&self) {
        self.deposit_at(now_nanos());
    }

    /// Takes one retry from the budget; false when it is exhausted.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(now_nanos())
    }

    /// [`RetryBudget::deposit`] at `now` (nanoseconds on the engine clock).
    pub(crate) fn deposit_at(&self, now: u64) {
        if self.deposit > 0 {
            self.slice(now).balance.fetch_add(self.deposit, Relaxed);
        }
    }

    pub(crate) fn try_withdraw_at(&self, now: u64) -> bool {
        if self.balance_at(now) < ONE_RETRY {
            return false;
        }
        self.slice(now).balance.fetch_sub(ONE_RETRY, Relaxed);
        true
    }

    /// Retries available now, in thousandths.
    pub(crate) fn balance_at(&self, now: u64) -> i64 {
        let current = now / self.slice_nanos;
        let oldest = current.saturating_sub(SLICES as u64 - 1);
        let live: i64 = self
            .slices
            .iter()
            .filter(|slice| (oldest..=current).contains(&slice.epoch.load(Relaxed)))
            .map(|slice| slice.balance.load(Relaxed))
            .sum();
        self.reserve + live
    }

    /// The slice of `now`, emptied first if it still holds an older slice's balance. Two
    /// threads racing on the turnover may lose a deposit: the budget is an estimate.
    fn slice(&self, now: u64) -> &Slice {
        let epoch = now / self.slice_nanos;
        let slice = &self.slices[(epoch % SLICES as u64) as usize];
        let seen = slice.epoch.load(Relaxed);
        if seen != epoch
            && slice
                .epoch
                .compare_exchange(seen, epoch, Relaxed, Relaxed)
                .is_ok()
        {
            slice.balance.store(0, Relaxed);
        }
        slice
    }
}
