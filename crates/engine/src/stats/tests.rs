use super::*;

fn http_labels(route: &str) -> HttpLabels {
    HttpLabels {
        direction: Direction::Outbound,
        authority: "orders.default:80".into(),
        dst_service: "default/orders".into(),
        route: route.into(),
        tls: false,
        client_id: String::new(),
    }
}

fn tcp_labels(target: &str) -> TcpLabels {
    TcpLabels {
        direction: Direction::Inbound,
        dst_service: "default/web".into(),
        target_addr: target.into(),
        tls: false,
        client_id: String::new(),
    }
}

#[test]
fn bucket_bounds_match_the_published_milliseconds() {
    assert_eq!(BUCKET_BOUNDS_MICROS.len(), LATENCY_BUCKETS_MS.len());
    for (micros, ms) in BUCKET_BOUNDS_MICROS.iter().zip(LATENCY_BUCKETS_MS) {
        assert_eq!(*micros as f64, ms * 1000.0);
    }
}

#[test]
fn latency_lands_in_the_first_bucket_whose_bound_holds_it() {
    assert_eq!(bucket_index(0), 0);
    assert_eq!(bucket_index(1_000), 0, "bounds are inclusive (le)");
    assert_eq!(bucket_index(1_001), 1);
    assert_eq!(bucket_index(7_500), 5, "7.5 ms goes to le=10");
    assert_eq!(bucket_index(50_000_000), 24);
    assert_eq!(
        bucket_index(50_000_001),
        25,
        "beyond the last bound is +Inf"
    );
    assert_eq!(bucket_index(u64::MAX), 25);
}

#[test]
fn responses_are_counted_per_status_and_classification() {
    let registry = StatsRegistry::new();
    let stats = registry.http(http_labels("r1"));
    for _ in 0..3 {
        stats.request();
    }
    stats.response(200, false, Duration::from_micros(500));
    stats.response(200, false, Duration::from_millis(7));
    stats.response(503, true, Duration::from_secs(60));

    let snap = registry.snapshot();
    assert_eq!(snap.http.len(), 1);
    let entry = &snap.http[0];
    assert_eq!(entry.labels, http_labels("r1"));
    assert_eq!(entry.requests, 3);
    assert_eq!(entry.responses.len(), 2);

    let ok = &entry.responses[0];
    assert_eq!((ok.status_code, ok.failure, ok.count), (200, false, 2));
    assert_eq!(ok.latency_buckets.len(), LATENCY_BUCKETS_MS.len() + 1);
    assert_eq!(ok.latency_buckets[0], 1);
    assert_eq!(ok.latency_buckets[5], 1);
    assert_eq!(
        ok.latency_buckets.iter().sum::<u64>(),
        2,
        "buckets are not cumulative"
    );
    assert!(
        (ok.latency_sum_ms - 7.5).abs() < 1e-9,
        "sum was {}",
        ok.latency_sum_ms
    );

    let failed = &entry.responses[1];
    assert_eq!(
        (failed.status_code, failed.failure, failed.count),
        (503, true, 1)
    );
    assert_eq!(
        failed.latency_buckets[LATENCY_BUCKETS_MS.len()],
        1,
        "60 s is +Inf"
    );
    assert!((failed.latency_sum_ms - 60_000.0).abs() < 1e-9);
}

#[test]
fn same_status_with_both_classifications_are_separate_series() {
    let registry = StatsRegistry::new();
    let stats = registry.http(http_labels("grpc"));
    stats.response(200, false, Duration::from_millis(1));
    stats.response(200, true, Duration::from_millis(1));
    stats.response(200, true, Duration::from_millis(1));
    let snap = registry.snapshot();
    let responses = &snap.http[0].responses;
    assert_eq!(responses.len(), 2);
    assert_eq!((responses[0].failure, responses[0].count), (false, 1));
    assert_eq!((responses[1].failure, responses[1].count), (true, 2));
}

#[test]
fn out_of_range_status_is_clamped_not_lost() {
    let registry = StatsRegistry::new();
    let stats = registry.http(http_labels("r"));
    stats.response(1234, true, Duration::ZERO);
    stats.response(0, true, Duration::ZERO);
    let codes: Vec<u16> = registry.snapshot().http[0]
        .responses
        .iter()
        .map(|r| r.status_code)
        .collect();
    assert_eq!(codes, vec![0, 999]);
}

#[test]
fn same_labels_return_the_same_handle_so_counters_survive_swaps() {
    let registry = StatsRegistry::new();
    let first = registry.http(http_labels("r1"));
    first.request();
    let again = registry.http(http_labels("r1"));
    assert!(Arc::ptr_eq(&first, &again));
    drop(first);
    drop(again);
    // The registry keeps handles nobody else holds any more.
    registry.http(http_labels("r1")).request();
    assert_eq!(registry.snapshot().http[0].requests, 2);

    let tcp = registry.tcp(tcp_labels("127.0.0.1:1"));
    assert!(Arc::ptr_eq(&tcp, &registry.tcp(tcp_labels("127.0.0.1:1"))));
    assert!(!Arc::ptr_eq(&tcp, &registry.tcp(tcp_labels("127.0.0.1:2"))));
}

#[test]
fn snapshot_is_sorted_by_labels() {
    let registry = StatsRegistry::new();
    for route in ["zeta", "alpha", "mid"] {
        registry.http(http_labels(route));
    }
    registry.http(HttpLabels {
        direction: Direction::Inbound,
        ..http_labels("zzz")
    });
    for target in ["127.0.0.1:9", "127.0.0.1:10", "127.0.0.1:1"] {
        registry.tcp(tcp_labels(target));
    }
    let snap = registry.snapshot();
    let routes: Vec<&str> = snap.http.iter().map(|e| e.labels.route.as_str()).collect();
    assert_eq!(
        routes,
        vec!["zzz", "alpha", "mid", "zeta"],
        "inbound sorts before outbound"
    );
    let targets: Vec<&str> = snap
        .tcp
        .iter()
        .map(|e| e.labels.target_addr.as_str())
        .collect();
    assert_eq!(targets, vec!["127.0.0.1:1", "127.0.0.1:10", "127.0.0.1:9"]);
    assert!(snap
        .http
        .iter()
        .all(|e| e.requests == 0 && e.responses.is_empty()));
}

#[test]
fn tcp_guard_tracks_open_gauge_and_counts_close_once() {
    let registry = StatsRegistry::new();
    let stats = registry.tcp(tcp_labels("127.0.0.1:8080"));
    let first = stats.open();
    let second = stats.open();
    stats.add_read(100);
    second.stats().add_write(42);
    let snap = registry.snapshot();
    let entry = &snap.tcp[0];
    assert_eq!(
        (
            entry.open_total,
            entry.open_connections,
            entry.close_total,
            entry.read_bytes,
            entry.write_bytes
        ),
        (2, 2, 0, 100, 42)
    );
    drop(first);
    let entry = &registry.snapshot().tcp[0];
    assert_eq!(
        (entry.open_total, entry.open_connections, entry.close_total),
        (2, 1, 1)
    );
    drop(second);
    let entry = &registry.snapshot().tcp[0];
    assert_eq!(
        (entry.open_total, entry.open_connections, entry.close_total),
        (2, 0, 2)
    );
}

#[test]
fn concurrent_recording_loses_nothing() {
    let registry = StatsRegistry::new();
    let stats = registry.http(http_labels("r"));
    std::thread::scope(|scope| {
        for thread in 0..4u16 {
            let stats = &stats;
            scope.spawn(move || {
                for i in 0..1_000u64 {
                    stats.request();
                    stats.response(200 + thread % 2, false, Duration::from_micros(i));
                }
            });
        }
    });
    let snap = registry.snapshot();
    let entry = &snap.http[0];
    assert_eq!(entry.requests, 4_000);
    assert_eq!(entry.responses.iter().map(|r| r.count).sum::<u64>(), 4_000);
    assert_eq!(
        entry
            .responses
            .iter()
            .map(|r| r.status_code)
            .collect::<Vec<_>>(),
        vec![200, 201]
    );
}
