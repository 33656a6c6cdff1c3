//! Fault injection (chaos testing) for one HTTPRoute rule: delay a share of requests by a
//! fixed time, answer a share with a given status instead of forwarding them.
//!
//! A draw is one or two calls of the per-thread generator: no lock, no allocation.

use std::time::Duration;

use http::StatusCode;

use crate::balance::rng;
use crate::config::FaultSpec;
use crate::snapshot::ConfigError;

/// Probabilities are kept in parts per million: percentages with four decimals.
const PER_MILLION: u32 = 1_000_000;
/// Longest accepted injected delay (a typo guard, like the resource model's 24 h bound).
const MAX_DELAY_MS: u64 = 24 * 3_600_000;

/// The compiled faults of one rule.
#[derive(Debug)]
pub struct Faults {
    delay: Option<(u32, Duration)>,
    abort: Option<(u32, StatusCode)>,
}

/// What one request gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    /// Wait this long before going on.
    pub delay: Option<Duration>,
    /// Then answer with this status instead of forwarding.
    pub abort: Option<StatusCode>,
}

impl Faults {
    /// Checks `spec` (`path` names the rule's `faults` field) and compiles it.
    pub fn compile(path: &str, spec: &FaultSpec) -> Result<Faults, ConfigError> {
        let delay = match &spec.delay {
            None => None,
            Some(delay) => {
                let share = per_million(&format!("{path}.delay.percent"), delay.percent)?;
                if delay.fixed_ms == 0 || delay.fixed_ms > MAX_DELAY_MS {
                    return Err(error(
                        format!("{path}.delay.fixedMs"),
                        format!(
                            "must be from 1 to {MAX_DELAY_MS} ms, got {}",
                            delay.fixed_ms
                        ),
                    ));
                }
                Some((share, Duration::from_millis(delay.fixed_ms)))
            }
        };
        let abort = match &spec.abort {
            None => None,
            Some(abort) => {
                let share = per_million(&format!("{path}.abort.percent"), abort.percent)?;
                let status = StatusCode::from_u16(abort.status)
                    .ok()
                    .filter(|s| (200..=599).contains(&s.as_u16()))
                    .ok_or_else(|| {
                        error(
                            format!("{path}.abort.status"),
                            format!(
                                "must be an HTTP status from 200 to 599, got {}",
                                abort.status
                            ),
                        )
                    })?;
                Some((share, status))
            }
        };
        Ok(Faults { delay, abort })
    }

    /// Decides independently whether this request is delayed and whether it is aborted.
    pub fn draw(&self) -> Injected {
        Injected {
            delay: self
                .delay
                .and_then(|(share, delay)| chance(share).then_some(delay)),
            abort: self
                .abort
                .and_then(|(share, status)| chance(share).then_some(status)),
        }
    }
}

fn chance(per_million: u32) -> bool {
    per_million >= PER_MILLION
        || (per_million > 0 && rng::below(u64::from(PER_MILLION)) < u64::from(per_million))
}

fn per_million(path: &str, percent: f64) -> Result<u32, ConfigError> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(error(
            path.to_owned(),
            format!("must be a percentage from 0 to 100, got {percent}"),
        ));
    }
    Ok((percent * 10_000.0).round() as u32)
}

fn error(path: String, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path,
        message: message.into(),
    }
}

/// The gRPC status a client would see for an HTTP status (the mapping gRPC documents in
/// "HTTP to gRPC Status Code Mapping"): what an aborted gRPC request is answered with.
pub fn grpc_status_of_http(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 => 13,             // INTERNAL
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 => 12,             // UNIMPLEMENTED
        429 | 502..=504 => 14, // UNAVAILABLE
        _ => 2,                // UNKNOWN
    }
}
