use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use super::*;
use crate::config::{FaultAbortSpec, FaultDelaySpec, FaultSpec};

fn faults(delay: Option<(f64, u64)>, abort: Option<(f64, u16)>) -> FaultSpec {
    FaultSpec {
        delay: delay.map(|(percent, fixed_ms)| FaultDelaySpec { percent, fixed_ms }),
        abort: abort.map(|(percent, status)| FaultAbortSpec { percent, status }),
    }
}

#[test]
fn fault_shares_are_honoured_independently() {
    let compiled = Faults::compile("f", &faults(Some((20.0, 50)), Some((5.0, 503)))).unwrap();
    let draws = 200_000;
    let (mut delayed, mut aborted, mut both) = (0u32, 0u32, 0u32);
    for _ in 0..draws {
        let injected = compiled.draw();
        if let Some(delay) = injected.delay {
            assert_eq!(delay, Duration::from_millis(50));
            delayed += 1;
        }
        if let Some(status) = injected.abort {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            aborted += 1;
        }
        if injected.delay.is_some() && injected.abort.is_some() {
            both += 1;
        }
    }
    // Binomial sigmas: delay ~179, abort ~97, both (1 %) ~44; allow 5 sigma.
    assert!(
        (40_000 - 900..=40_000 + 900).contains(&delayed),
        "{delayed}"
    );
    assert!(
        (10_000 - 500..=10_000 + 500).contains(&aborted),
        "{aborted}"
    );
    assert!((2_000 - 230..=2_000 + 230).contains(&both), "{both}");
}

#[test]
fn zero_and_full_shares_are_exact() {
    let never = Faults::compile("f", &faults(Some((0.0, 10)), Some((0.0, 500)))).unwrap();
    let always = Faults::compile("f", &faults(Some((100.0, 10)), Some((100.0, 500)))).unwrap();
    for _ in 0..10_000 {
        assert_eq!(never.draw(), Injected::default());
        let injected = always.draw();
        assert_eq!(injected.delay, Some(Duration::from_millis(10)));
        assert_eq!(injected.abort, Some(StatusCode::INTERNAL_SERVER_ERROR));
    }
}

#[test]
fn bad_fault_specs_name_their_field() {
    let bad_percent = Faults::compile(
        "httpRoutes[0].rules[1].faults",
        &faults(Some((100.5, 10)), None),
    );
    assert_eq!(
        bad_percent.unwrap_err().path,
        "httpRoutes[0].rules[1].faults.delay.percent"
    );
    let bad_delay = Faults::compile("f", &faults(Some((10.0, 0)), None));
    assert_eq!(bad_delay.unwrap_err().path, "f.delay.fixedMs");
    let bad_status = Faults::compile("f", &faults(None, Some((10.0, 199))));
    let error = bad_status.unwrap_err();
    assert_eq!(error.path, "f.abort.status");
    assert!(error.message.contains("199"), "{}", error.message);
    let nan = Faults::compile("f", &faults(None, Some((f64::NAN, 503))));
    assert_eq!(nan.unwrap_err().path, "f.abort.percent");
}

#[test]
fn http_statuses_map_to_grpc_statuses_as_grpc_documents() {
    let cases = [
        (400, 13),
        (401, 16),
        (403, 7),
        (404, 12),
        (429, 14),
        (502, 14),
        (503, 14),
        (504, 14),
        (500, 2),
        (418, 2),
        (200, 2),
    ];
    for (http, grpc) in cases {
        assert_eq!(
            grpc_status_of_http(StatusCode::from_u16(http).unwrap()),
            grpc,
            "{http}"
        );
    }
}

// ===== rate limits =====

use crate::config::RateLimitSpec;

const SECOND: u64 = 1_000_000_000;

fn limit(requests_per_second: f64, burst: u32) -> RateLimitSpec {
    RateLimitSpec {
        requests_per_second,
        burst,
    }
}

#[test]
fn a_full_bucket_admits_the_burst_at_once_then_refills_at_the_rate() {
    let limiter = RateLimiter::new("r", &limit(10.0, 3)).unwrap();
    let start = 5 * SECOND;
    for _ in 0..3 {
        assert_eq!(limiter.acquire_at(start), Ok(()));
    }
    // The fourth needs a token that comes back one interval (100 ms) later.
    assert_eq!(limiter.acquire_at(start), Err(Duration::from_millis(100)));
    assert_eq!(
        limiter.acquire_at(start + 40_000_000),
        Err(Duration::from_millis(60))
    );
    assert_eq!(limiter.acquire_at(start + 100_000_000), Ok(()));
    assert!(limiter.acquire_at(start + 100_000_000).is_err());
}

#[test]
fn the_sustained_rate_is_the_configured_one() {
    let limiter = RateLimiter::new("r", &limit(50.0, 5)).unwrap();
    // Offer 1000 requests per second for 10 simulated seconds.
    let mut admitted = 0;
    for ms in 0..10_000u64 {
        if limiter.acquire_at(SECOND + ms * 1_000_000).is_ok() {
            admitted += 1;
        }
    }
    // The burst, then 50 per second.
    assert!((500..=505).contains(&admitted), "{admitted}");
}

#[test]
fn an_idle_bucket_never_holds_more_than_its_burst() {
    let limiter = RateLimiter::new("r", &limit(100.0, 2)).unwrap();
    let later = 3600 * SECOND;
    assert!(limiter.acquire_at(later).is_ok());
    assert!(limiter.acquire_at(later).is_ok());
    assert!(limiter.acquire_at(later).is_err());
}

#[test]
fn fractional_rates_work() {
    let limiter = RateLimiter::new("r", &limit(0.5, 1)).unwrap();
    assert!(limiter.acquire_at(SECOND).is_ok());
    assert_eq!(limiter.acquire_at(SECOND), Err(Duration::from_secs(2)));
    assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
    assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
    assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
    assert_eq!(retry_after_seconds(Duration::ZERO), 1);
}

#[test]
fn bad_rate_limits_name_their_field() {
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e9] {
        let error = RateLimiter::new("inbound[0].rateLimit", &limit(rate, 1)).unwrap_err();
        assert_eq!(error.path, "inbound[0].rateLimit.requestsPerSecond");
    }
    let error = RateLimiter::new("x", &limit(1.0, 0)).unwrap_err();
    assert_eq!(error.path, "x.burst");
}

#[test]
fn the_registry_keeps_a_bucket_across_compiles_until_its_settings_change() {
    let registry = ResilienceRegistry::new();
    let first = registry
        .rate_limiter("rule:a".into(), "p", &limit(1.0, 1))
        .unwrap();
    assert!(first.acquire().is_ok());
    let again = registry
        .rate_limiter("rule:a".into(), "p", &limit(1.0, 1))
        .unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert!(
        again.acquire().is_err(),
        "the token taken before is still gone"
    );
    let changed = registry
        .rate_limiter("rule:a".into(), "p", &limit(1.0, 2))
        .unwrap();
    assert!(!Arc::ptr_eq(&first, &changed));
    assert!(changed.acquire().is_ok());

    drop((first, again));
    registry.retain_used();
    assert_eq!(
        registry.rate_limiter_count(),
        1,
        "the changed one is in use"
    );
    drop(changed);
    registry.retain_used();
    assert_eq!(registry.rate_limiter_count(), 0);
}

// ===== retries =====

use crate::config::RetrySpec;
use http::Method;

#[test]
fn retry_policy_classifies_statuses_and_methods() {
    let policy = RetryPolicy::new("r", &RetrySpec::default()).unwrap();
    for code in [502, 503, 504] {
        assert!(policy.retries_status(StatusCode::from_u16(code).unwrap()));
    }
    for code in [200, 404, 500, 501, 599] {
        assert!(!policy.retries_status(StatusCode::from_u16(code).unwrap()));
    }
    for method in [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        assert!(policy.allows_method(&method, false), "{method}");
    }
    assert!(!policy.allows_method(&Method::POST, false));
    assert!(!policy.allows_method(&Method::PATCH, false));
    assert!(
        policy.allows_method(&Method::POST, true),
        "gRPC calls are POSTs"
    );
    let anything = RetryPolicy::new(
        "r",
        &RetrySpec {
            non_idempotent: true,
            ..RetrySpec::default()
        },
    )
    .unwrap();
    assert!(anything.allows_method(&Method::POST, false));
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_ceiling() {
    let policy = RetryPolicy::new(
        "r",
        &RetrySpec {
            backoff_ms: 100,
            ..RetrySpec::default()
        },
    )
    .unwrap();
    for _ in 0..1_000 {
        let first = policy.backoff(1);
        assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
        let third = policy.backoff(3);
        assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third));
        let tenth = policy.backoff(10);
        assert!((Duration::from_millis(500)..=Duration::from_secs(1)).contains(&tenth));
        assert!(policy.backoff(u32::MAX) <= Duration::from_secs(1));
    }
    let spread: std::collections::HashSet<Duration> = (0..100).map(|_| policy.backoff(1)).collect();
    assert!(spread.len() > 50, "jittered, not fixed");
    let none = RetryPolicy::new(
        "r",
        &RetrySpec {
            backoff_ms: 0,
            ..RetrySpec::default()
        },
    )
    .unwrap();
    assert_eq!(none.backoff(5), Duration::ZERO);
}

#[test]
fn the_budget_allows_the_ratio_plus_the_reserve_and_forgets_old_deposits() {
    // 20 %, 1 per second over a 10 s window: a reserve of 10 retries.
    let budget = RetryBudget::new(0.2, 1, Duration::from_secs(10));
    let t0 = 100 * SECOND;
    for _ in 0..100 {
        budget.deposit_at(t0);
    }
    let mut granted = 0;
    while budget.try_withdraw_at(t0) {
        granted += 1;
        assert!(granted <= 100, "the budget never runs dry");
    }
    assert_eq!(granted, 30, "20 earned plus 10 in reserve");

    // Half a window later the deposits still count, so nothing came back...
    assert!(!budget.try_withdraw_at(t0 + 5 * SECOND));
    // ...a window later they have expired, and so have the withdrawals: the reserve is back.
    let later = t0 + 11 * SECOND;
    let mut granted = 0;
    while budget.try_withdraw_at(later) {
        granted += 1;
    }
    assert_eq!(granted, 10);
}

#[test]
fn a_zero_budget_without_reserve_allows_no_retry() {
    let budget = RetryBudget::new(0.0, 0, Duration::from_secs(10));
    for _ in 0..1000 {
        budget.deposit_at(SECOND);
    }
    assert!(!budget.try_withdraw_at(SECOND));
}

#[test]
fn bad_retry_policies_name_their_field() {
    let path_of = |spec: RetrySpec| RetryPolicy::new("rules[0].retry", &spec).unwrap_err().path;
    assert_eq!(
        path_of(RetrySpec {
            attempts: 0,
            ..RetrySpec::default()
        }),
        "rules[0].retry.attempts"
    );
    assert_eq!(
        path_of(RetrySpec {
            codes: vec![503, 99],
            ..RetrySpec::default()
        }),
        "rules[0].retry.codes[1]"
    );
    assert_eq!(
        path_of(RetrySpec {
            budget_percent: 120.0,
            ..RetrySpec::default()
        }),
        "rules[0].retry.budget"
    );
    assert_eq!(
        path_of(RetrySpec {
            budget_window_ms: 100,
            ..RetrySpec::default()
        }),
        "rules[0].retry.budgetWindowMs"
    );
    assert_eq!(
        path_of(RetrySpec {
            max_request_bytes: 1 << 40,
            ..RetrySpec::default()
        }),
        "rules[0].retry.maxRequestBytes"
    );
}

#[test]
fn the_registry_keeps_a_retry_budget_while_the_policy_is_unchanged() {
    let registry = ResilienceRegistry::new();
    let first = registry
        .retry_policy("rule:a".into(), "p", &RetrySpec::default())
        .unwrap();
    let again = registry
        .retry_policy("rule:a".into(), "p", &RetrySpec::default())
        .unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    let changed = registry
        .retry_policy(
            "rule:a".into(),
            "p",
            &RetrySpec {
                attempts: 2,
                ..RetrySpec::default()
            },
        )
        .unwrap();
    assert!(!Arc::ptr_eq(&first, &changed));
}

// ===== circuit breaking and outlier ejection =====

use crate::balance::{Balancer, LoadRegistry, PickContext};
use crate::config::{CircuitBreakerSpec, EndpointSpec, LoadBalancer};
use std::net::SocketAddr;

fn breaker_spec() -> CircuitBreakerSpec {
    CircuitBreakerSpec {
        max_connections: 2,
        max_pending_requests: 1,
        max_requests: 3,
        consecutive_failures: 3,
        ejection_ms: 60_000,
        max_ejection_percent: 50.0,
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn max_requests_refuses_over_the_limit_and_frees_slots_as_requests_end() {
    let breaker = Arc::new(breaker::ServiceBreaker::new(
        "default/orders".into(),
        &breaker_spec(),
        4,
    ));
    let slots: Vec<_> = (0..3)
        .map(|_| breaker.try_start_request().unwrap())
        .collect();
    assert!(breaker.try_start_request().is_none());
    assert!(breaker.try_start_request().is_none());
    let stats = breaker.stats();
    assert_eq!(stats.open, [false, false, true]);
    assert_eq!(stats.overflows, [0, 0, 2]);
    assert_eq!(stats.requests, 3);
    drop(slots);
    assert!(breaker.try_start_request().is_some());
    assert_eq!(breaker.stats().requests, 0);
}

#[tokio::test]
async fn connection_slots_wait_as_pending_and_the_pending_limit_refuses_at_once() {
    let breaker = Arc::new(breaker::ServiceBreaker::new(
        "default/orders".into(),
        &breaker_spec(),
        4,
    ));
    let first = breaker.try_open_connection().unwrap();
    let _second = breaker.try_open_connection().unwrap();
    assert!(breaker.try_open_connection().is_none());

    // One request may wait; it gets a slot when a connection closes.
    let waiter = {
        let breaker = breaker.clone();
        tokio::spawn(async move {
            let _pending = breaker.start_waiting().unwrap();
            loop {
                let freed = breaker.freed();
                if let Some(slot) = breaker.try_open_connection() {
                    return slot;
                }
                breaker
                    .wait_freed(freed, Duration::from_secs(5))
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(breaker.stats().open[1], "the pending limit (1) is reached");
    // A second waiter is refused at once.
    assert_eq!(breaker.start_waiting().err(), Some(Limit::PendingRequests));
    drop(first);
    let _third = waiter.await.unwrap();
    assert!(breaker.try_open_connection().is_none());
    assert_eq!(breaker.stats().connections, 2);

    // Nothing freed within the limit: the connection limit refuses.
    let _pending = breaker.start_waiting().unwrap();
    let timed_out = breaker
        .wait_freed(breaker.freed(), Duration::from_millis(20))
        .await;
    assert_eq!(timed_out, Err(Limit::Connections));
    assert_eq!(breaker.stats().overflows, [1, 1, 0]);
}

#[test]
fn consecutive_failures_eject_within_the_share() {
    let registry = ResilienceRegistry::new();
    let breaker = registry
        .breaker("default/orders", "p", &breaker_spec(), 4)
        .unwrap();
    let health: Vec<_> = (1..=4)
        .map(|port| registry.endpoint_health(&breaker, addr(port)))
        .collect();
    // A success in between resets the count.
    health[0].record(false);
    health[0].record(false);
    health[0].record(true);
    health[0].record(false);
    assert!(!health[0].is_ejected());
    health[0].record(false);
    health[0].record(false);
    assert!(health[0].is_ejected());
    assert!(breaker.any_ejected());

    for h in &health[1..] {
        for _ in 0..3 {
            h.record(false);
        }
    }
    // 50 % of 4 endpoints: two at most.
    let ejected = health.iter().filter(|h| h.is_ejected()).count();
    assert_eq!(ejected, 2);
    assert_eq!(breaker.stats().ejected_now, 2);
    let (_, endpoint_stats) = registry.breaker_stats();
    assert_eq!(
        endpoint_stats
            .iter()
            .map(|e| e.ejections_total)
            .sum::<u64>(),
        2
    );
}

#[test]
fn a_single_endpoint_is_never_ejected_at_half_share() {
    let registry = ResilienceRegistry::new();
    let breaker = registry
        .breaker("default/solo", "p", &breaker_spec(), 1)
        .unwrap();
    let only = registry.endpoint_health(&breaker, addr(1));
    for _ in 0..10 {
        only.record(false);
    }
    assert!(!only.is_ejected());
}

#[test]
fn repeat_ejections_last_longer_and_are_forgiven_over_time() {
    let registry = ResilienceRegistry::new();
    let breaker = registry
        .breaker("default/orders", "p", &breaker_spec(), 4)
        .unwrap();
    let health = registry.endpoint_health(&breaker, addr(1));
    let base = Duration::from_secs(10);
    let t0 = 1_000 * SECOND;
    let first = health.eject(t0, base);
    assert_eq!(first - t0, 10 * SECOND);
    // Ejected again right after it came back: twice as long, then three times.
    let second = health.eject(first, base);
    assert_eq!(second - first, 20 * SECOND);
    let third = health.eject(second + SECOND, base);
    assert_eq!(third - (second + SECOND), 30 * SECOND);
    // Healthy for two base periods since: two ejections forgiven.
    let later = third + 20 * SECOND;
    let fourth = health.eject(later, base);
    assert_eq!(fourth - later, 20 * SECOND);
    // Never more than five minutes.
    let mut at = fourth;
    for _ in 0..100 {
        at = health.eject(at, base);
    }
    assert_eq!(health.eject(at, base) - at, 300 * SECOND);
}

fn endpoints(ports: &[u16]) -> Vec<EndpointSpec> {
    ports
        .iter()
        .map(|&port| EndpointSpec {
            address: addr(port),
            weight: 1,
            labels: Default::default(),
            identity: None,
        })
        .collect()
}

#[test]
fn every_balancer_avoids_ejected_endpoints() {
    let kinds = [
        LoadBalancer::Ewma,
        LoadBalancer::RoundRobin,
        LoadBalancer::LeastRequest,
        LoadBalancer::Random,
        LoadBalancer::RingHash { header: None },
    ];
    for kind in kinds {
        let registry = ResilienceRegistry::new();
        let breaker = registry
            .breaker("default/orders", "p", &breaker_spec(), 3)
            .unwrap();
        let balancer = Balancer::new(
            &kind,
            "default/orders",
            &endpoints(&[1, 2, 3]),
            &LoadRegistry::new(),
        )
        .with_outlier_detection(breaker.clone(), |a| registry.endpoint_health(&breaker, a));
        let bad = registry.endpoint_health(&breaker, addr(2));
        for _ in 0..3 {
            bad.record(false);
        }
        assert!(bad.is_ejected(), "{kind:?}");
        for i in 0..300u32 {
            let ip = std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
            let picked = balancer
                .pick(&PickContext {
                    header_value: None,
                    client_ip: Some(ip),
                })
                .unwrap();
            assert_ne!(picked.addr, addr(2), "{kind:?} picked the ejected endpoint");
        }
    }
}

#[test]
fn with_every_endpoint_ejected_picks_still_succeed() {
    let registry = ResilienceRegistry::new();
    let spec = CircuitBreakerSpec {
        max_ejection_percent: 100.0,
        ..breaker_spec()
    };
    let breaker = registry.breaker("default/orders", "p", &spec, 2).unwrap();
    let balancer = Balancer::new(
        &LoadBalancer::RoundRobin,
        "default/orders",
        &endpoints(&[1, 2]),
        &LoadRegistry::new(),
    )
    .with_outlier_detection(breaker.clone(), |a| registry.endpoint_health(&breaker, a));
    for port in [1, 2] {
        let health = registry.endpoint_health(&breaker, addr(port));
        for _ in 0..3 {
            health.record(false);
        }
        assert!(health.is_ejected());
    }
    let context = PickContext {
        header_value: None,
        client_ip: None,
    };
    assert!(balancer.pick(&context).is_some());
}
