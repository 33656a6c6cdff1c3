use super::*;
use std::collections::BTreeMap;

const SECOND: u64 = 1_000_000_000;
const MILLI: f64 = 1_000_000.0;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn spec(port: u16, weight: u32) -> EndpointSpec {
    EndpointSpec {
        address: addr(port),
        weight,
        labels: BTreeMap::new(),
        identity: None,
    }
}

fn specs(weights: &[u32]) -> Vec<EndpointSpec> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| spec(9000 + i as u16, w))
        .collect()
}

const NO_CONTEXT: PickContext<'static> = PickContext {
    header_value: None,
    client_ip: None,
};

/// Picks `n` times and counts picks per port.
fn tally(balancer: &Balancer, n: usize) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let endpoint = balancer.pick(&NO_CONTEXT).expect("an endpoint");
        *counts.entry(endpoint.addr.port()).or_default() += 1;
    }
    counts
}

fn ports(balancer: &Balancer, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| balancer.pick(&NO_CONTEXT).unwrap().addr.port())
        .collect()
}

#[test]
fn no_usable_endpoint_picks_nothing() {
    let registry = LoadRegistry::new();
    let kinds = [
        LoadBalancer::Ewma,
        LoadBalancer::RoundRobin,
        LoadBalancer::LeastRequest,
        LoadBalancer::Random,
        LoadBalancer::RingHash { header: None },
    ];
    let ctx = PickContext {
        header_value: None,
        client_ip: Some("127.0.0.9".parse().unwrap()),
    };
    for kind in &kinds {
        assert!(
            Balancer::new(kind, "ns/empty", &[], &registry)
                .pick(&ctx)
                .is_none(),
            "{kind:?}"
        );
        let drained = Balancer::new(kind, "ns/drained", &specs(&[0, 0]), &registry);
        assert!(
            drained.pick(&ctx).is_none(),
            "{kind:?} with only weight-0 endpoints"
        );
        assert_eq!(
            drained.endpoints().len(),
            2,
            "weight-0 endpoints are still listed"
        );
    }
}

#[test]
fn weight_zero_endpoints_never_get_traffic() {
    let registry = LoadRegistry::new();
    for kind in [
        LoadBalancer::Ewma,
        LoadBalancer::RoundRobin,
        LoadBalancer::LeastRequest,
        LoadBalancer::Random,
        LoadBalancer::RingHash { header: None },
    ] {
        let balancer = Balancer::new(&kind, "ns/svc", &specs(&[1, 0, 1]), &registry);
        let counts = tally(&balancer, 2_000);
        assert!(
            !counts.contains_key(&9001),
            "{kind:?} picked a weight-0 endpoint: {counts:?}"
        );
        let ctx = PickContext {
            header_value: None,
            client_ip: Some("127.0.0.3".parse().unwrap()),
        };
        for _ in 0..10 {
            assert_ne!(balancer.pick(&ctx).unwrap().addr.port(), 9001);
        }
    }
}

#[test]
fn round_robin_follows_the_smooth_weighted_sequence() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(
        &LoadBalancer::RoundRobin,
        "ns/rr",
        &specs(&[5, 1, 1]),
        &registry,
    );
    // nginx's smooth weighted round robin for weights a=5, b=1, c=1: a a b a c a a.
    let once = [9000, 9000, 9001, 9000, 9002, 9000, 9000];
    let expected: Vec<u16> = once.iter().chain(once.iter()).copied().collect();
    assert_eq!(ports(&balancer, 14), expected);
}

#[test]
fn round_robin_equal_weights_cycle_in_order() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(
        &LoadBalancer::RoundRobin,
        "ns/rr",
        &specs(&[2, 2, 2]),
        &registry,
    );
    assert_eq!(
        ports(&balancer, 6),
        vec![9000, 9001, 9002, 9000, 9001, 9002]
    );
}

#[test]
fn round_robin_cursor_survives_a_rebuild() {
    let registry = LoadRegistry::new();
    let endpoints = specs(&[1, 1, 1]);
    let first = Balancer::new(&LoadBalancer::RoundRobin, "ns/rr", &endpoints, &registry);
    assert_eq!(ports(&first, 2), vec![9000, 9001]);
    let rebuilt = Balancer::new(&LoadBalancer::RoundRobin, "ns/rr", &endpoints, &registry);
    assert_eq!(
        ports(&rebuilt, 2),
        vec![9002, 9000],
        "continues where the old balancer stopped"
    );
    let other_service = Balancer::new(&LoadBalancer::RoundRobin, "ns/other", &endpoints, &registry);
    assert_eq!(
        ports(&other_service, 1),
        vec![9000],
        "cursors are per service"
    );
}

#[test]
fn round_robin_schedule_is_bounded_and_keeps_every_endpoint() {
    let members = [(0, u32::MAX), (1, 1), (2, 3)];
    let order = schedule::smooth_weighted(&members);
    assert!(order.len() as u64 <= schedule::MAX_SCHEDULE_LEN + 2);
    for index in 0..3 {
        assert!(order.contains(&index), "endpoint {index} lost its slot");
    }
    let heavy = order.iter().filter(|&&i| i == 0).count();
    assert!(heavy as f64 / order.len() as f64 > 0.99);
}

#[test]
fn random_splits_by_weight() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(
        &LoadBalancer::Random,
        "ns/random",
        &specs(&[1, 3]),
        &registry,
    );
    let counts = tally(&balancer, 10_000);
    let heavy = counts[&9001] as f64 / 10_000.0;
    assert!((0.72..=0.78).contains(&heavy), "weight 3 of 4 got {heavy}");
}

#[test]
fn least_request_avoids_the_busier_endpoint() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(
        &LoadBalancer::LeastRequest,
        "ns/lr",
        &specs(&[1, 1]),
        &registry,
    );
    let busy = registry.get(addr(9000));
    let guards: Vec<InFlight> = (0..3).map(|_| busy.start()).collect();
    assert_eq!(busy.in_flight(), 3);
    let counts = tally(&balancer, 500);
    assert_eq!(
        counts.get(&9000),
        None,
        "two choices always compare both of two endpoints"
    );
    drop(guards);
    assert_eq!(busy.in_flight(), 0);
}

#[test]
fn least_request_spreads_as_requests_pile_up() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(
        &LoadBalancer::LeastRequest,
        "ns/lr",
        &specs(&[1, 1, 1, 1]),
        &registry,
    );
    // Hold every request open: each pick sees the load of the ones before it.
    let mut held = Vec::new();
    for _ in 0..400 {
        let endpoint = balancer.pick(&NO_CONTEXT).unwrap();
        held.push(endpoint.load.start());
    }
    for endpoint in balancer.endpoints() {
        let in_flight = endpoint.load.in_flight();
        assert!(
            (80..=120).contains(&in_flight),
            "{} has {in_flight} of 400",
            endpoint.addr
        );
    }
}

#[test]
fn least_request_honours_weights() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(
        &LoadBalancer::LeastRequest,
        "ns/lr",
        &specs(&[1, 3]),
        &registry,
    );
    let mut held = Vec::new();
    for _ in 0..400 {
        held.push(balancer.pick(&NO_CONTEXT).unwrap().load.start());
    }
    let heavy = registry.get(addr(9001)).in_flight();
    assert!(
        (290..=310).contains(&heavy),
        "weight 3 of 4 holds {heavy} of 400"
    );
}

#[test]
fn in_flight_guard_decrements_exactly_once() {
    let registry = LoadRegistry::new();
    let load = registry.get(addr(1));
    let finished = load.start();
    let dropped = load.start();
    assert_eq!(load.in_flight(), 2);
    finished.finish(true);
    assert_eq!(load.in_flight(), 1);
    drop(dropped);
    assert_eq!(load.in_flight(), 0);
}

#[test]
fn new_endpoint_starts_at_the_default_rtt() {
    let load = LoadRegistry::new().get(addr(1));
    let created = load.stamp_nanos.load(Relaxed);
    assert_eq!(load.decayed_rtt_at(created), DEFAULT_RTT.as_nanos() as f64);
}

#[test]
fn ewma_takes_peaks_at_once_and_decays_faster_samples_in() {
    let load = LoadRegistry::new().get(addr(1));
    let t0 = load.stamp_nanos.load(Relaxed);
    load.observe_at(200.0 * MILLI, true, t0 + SECOND);
    assert_eq!(
        load.decayed_rtt_at(t0 + SECOND),
        200.0 * MILLI,
        "a slower sample replaces the estimate"
    );
    // A fast sample one time constant later moves the estimate 1 - 1/e of the way.
    load.observe_at(10.0 * MILLI, true, t0 + 11 * SECOND);
    let expected =
        200.0 * MILLI / std::f64::consts::E + 10.0 * MILLI * (1.0 - 1.0 / std::f64::consts::E);
    let got = load.decayed_rtt_at(t0 + 11 * SECOND);
    assert!(
        (got - expected).abs() < 1.0,
        "expected {expected}, got {got}"
    );
    // Idle time decays the estimate used for cost, without recording anything.
    assert!(load.decayed_rtt_at(t0 + 31 * SECOND) < got / 7.0);
    assert_eq!(load.decayed_rtt_at(t0 + 11 * SECOND), got);
}

#[test]
fn ewma_failures_are_penalised() {
    let load = LoadRegistry::new().get(addr(1));
    let t = load.stamp_nanos.load(Relaxed) + SECOND;
    load.observe_at(10.0 * MILLI, false, t);
    let after_one = load.decayed_rtt_at(t);
    assert!(
        after_one >= 4.0 * 30.0 * MILLI,
        "a fast failure still costs: {after_one}"
    );
    load.observe_at(0.1 * MILLI, false, t);
    assert!(
        load.decayed_rtt_at(t) > after_one,
        "repeated failures escalate"
    );
    for _ in 0..100 {
        load.observe_at(0.1 * MILLI, false, t);
    }
    assert_eq!(
        load.decayed_rtt_at(t),
        MAX_RTT.as_nanos() as f64,
        "the estimate is capped"
    );
}

#[test]
fn ewma_prefers_the_faster_endpoint() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(
        &LoadBalancer::Ewma,
        "ns/ewma",
        &specs(&[1, 1, 1]),
        &registry,
    );
    registry
        .get(addr(9000))
        .observe(Duration::from_millis(500), true);
    let counts = tally(&balancer, 1_000);
    assert_eq!(
        counts.get(&9000),
        None,
        "the slow endpoint loses every comparison: {counts:?}"
    );
    assert!(
        counts[&9001] > 350 && counts[&9002] > 350,
        "the equal ones share: {counts:?}"
    );
}

#[test]
fn ewma_prefers_the_less_loaded_endpoint() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(&LoadBalancer::Ewma, "ns/ewma", &specs(&[1, 1]), &registry);
    let _held = registry.get(addr(9001)).start();
    assert_eq!(tally(&balancer, 200).get(&9001), None);
}

#[test]
fn ewma_avoids_an_endpoint_that_failed() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(&LoadBalancer::Ewma, "ns/ewma", &specs(&[1, 1]), &registry);
    let failing = balancer.pick(&NO_CONTEXT).unwrap().clone();
    failing.load.start().finish(false);
    let counts = tally(&balancer, 200);
    assert_eq!(counts.get(&failing.addr.port()), None, "{counts:?}");
}

#[test]
fn ewma_weight_scales_cost() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(&LoadBalancer::Ewma, "ns/ewma", &specs(&[1, 4]), &registry);
    // 3x slower but 4x the weight: still the cheaper choice.
    registry
        .get(addr(9001))
        .observe(Duration::from_millis(90), true);
    assert_eq!(tally(&balancer, 200).get(&9000), None);
}

#[test]
fn ewma_state_survives_a_rebuild_from_the_same_registry() {
    let registry = LoadRegistry::new();
    let endpoints = specs(&[1, 1]);
    let first = Balancer::new(&LoadBalancer::Ewma, "ns/ewma", &endpoints, &registry);
    first.endpoints()[0]
        .load
        .observe(Duration::from_secs(2), true);
    let held = first.endpoints()[1].load.start();
    drop(first);
    let rebuilt = Balancer::new(&LoadBalancer::Ewma, "ns/ewma", &endpoints, &registry);
    assert_eq!(rebuilt.endpoints()[1].load.in_flight(), 1);
    assert!(rebuilt.endpoints()[0].load.latency_estimate() > Duration::from_secs(1));
    assert_eq!(
        tally(&rebuilt, 100).get(&9000),
        None,
        "the 2 s endpoint is still avoided"
    );
    drop(held);
}

#[test]
fn registry_retain_keeps_named_and_in_use_entries() {
    let registry = LoadRegistry::new();
    let kept = registry.get(addr(1));
    let _ = registry.get(addr(2));
    let in_use = registry.get(addr(3));
    assert_eq!(registry.endpoint_count(), 3);
    registry.retain(&HashSet::from([addr(1)]));
    assert_eq!(registry.endpoint_count(), 2, "addr 2 is unnamed and unused");
    assert!(Arc::ptr_eq(&kept, &registry.get(addr(1))));
    assert!(Arc::ptr_eq(&in_use, &registry.get(addr(3))));
    drop(in_use);
    registry.retain(&HashSet::from([addr(1)]));
    assert_eq!(registry.endpoint_count(), 1);

    let cursor = registry.service_cursor("ns/a");
    cursor.store(7, Relaxed);
    drop(cursor);
    registry.retain_cursors(&HashSet::from(["ns/a"]));
    assert_eq!(registry.service_cursor("ns/a").load(Relaxed), 7);
    registry.retain_cursors(&HashSet::new());
    assert_eq!(
        registry.service_cursor("ns/a").load(Relaxed),
        0,
        "a forgotten cursor starts over"
    );
}

fn ring_pick(balancer: &Balancer, key: &str) -> u16 {
    let ctx = PickContext {
        header_value: Some(key.as_bytes()),
        client_ip: None,
    };
    balancer.pick(&ctx).unwrap().addr.port()
}

#[test]
fn ring_hash_same_key_same_endpoint_and_even_spread() {
    let registry = LoadRegistry::new();
    let kind = LoadBalancer::RingHash {
        header: Some("X-User".into()),
    };
    let balancer = Balancer::new(&kind, "ns/ring", &specs(&[1, 1, 1, 1, 1]), &registry);
    assert_eq!(balancer.hash_header(), Some("x-user"));
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for user in 0..5_000 {
        let key = format!("user-{user}");
        let port = ring_pick(&balancer, &key);
        assert_eq!(ring_pick(&balancer, &key), port);
        *counts.entry(port).or_default() += 1;
    }
    assert_eq!(counts.len(), 5);
    for (port, count) in &counts {
        assert!(
            (600..=1_400).contains(count),
            "{port} got {count} of 5000 keys: {counts:?}"
        );
    }
}

#[test]
fn ring_hash_removing_an_endpoint_only_remaps_its_keys() {
    let registry = LoadRegistry::new();
    let kind = LoadBalancer::RingHash {
        header: Some("x-user".into()),
    };
    let before = Balancer::new(&kind, "ns/ring", &specs(&[1, 1, 1, 1, 1]), &registry);
    let mut remaining = specs(&[1, 1, 1, 1, 1]);
    remaining.remove(2);
    let after = Balancer::new(&kind, "ns/ring", &remaining, &registry);
    let mut moved = 0;
    for user in 0..5_000 {
        let key = format!("user-{user}");
        let (old, new) = (ring_pick(&before, &key), ring_pick(&after, &key));
        if old == 9002 {
            assert_ne!(new, 9002);
            moved += 1;
        } else {
            assert_eq!(old, new, "key {key} moved although its endpoint stayed");
        }
    }
    assert!(moved > 0);
}

#[test]
fn ring_hash_is_independent_of_endpoint_order() {
    let registry = LoadRegistry::new();
    let kind = LoadBalancer::RingHash {
        header: Some("x-user".into()),
    };
    let forward = Balancer::new(&kind, "ns/ring", &specs(&[1, 2, 1]), &registry);
    let mut reversed = specs(&[1, 2, 1]);
    reversed.reverse();
    let backward = Balancer::new(&kind, "ns/ring", &reversed, &registry);
    for user in 0..500 {
        let key = format!("u{user}");
        assert_eq!(ring_pick(&forward, &key), ring_pick(&backward, &key));
    }
}

#[test]
fn ring_hash_falls_back_to_client_ip_then_random() {
    let registry = LoadRegistry::new();
    let kind = LoadBalancer::RingHash {
        header: Some("x-user".into()),
    };
    let balancer = Balancer::new(&kind, "ns/ring", &specs(&[1, 1, 1, 1]), &registry);
    // Without the header, each client address sticks to one endpoint.
    let mut seen = HashSet::new();
    for last in 1..=40u8 {
        let ip: IpAddr = [127, 0, 0, last].into();
        let ctx = PickContext {
            header_value: None,
            client_ip: Some(ip),
        };
        let port = balancer.pick(&ctx).unwrap().addr.port();
        for _ in 0..5 {
            assert_eq!(balancer.pick(&ctx).unwrap().addr.port(), port);
        }
        let mapped = PickContext {
            header_value: None,
            client_ip: Some(IpAddr::V6(match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            })),
        };
        assert_eq!(
            balancer.pick(&mapped).unwrap().addr.port(),
            port,
            "v4-mapped v6 is the same client"
        );
        seen.insert(port);
    }
    assert!(seen.len() > 1, "different clients spread over endpoints");
    // With neither, picks are random over all endpoints.
    assert_eq!(tally(&balancer, 400).len(), 4);
}

#[test]
fn ring_hash_without_a_header_hashes_the_client_even_if_a_value_is_passed() {
    let registry = LoadRegistry::new();
    let balancer = Balancer::new(
        &LoadBalancer::RingHash { header: None },
        "ns/ring",
        &specs(&[1, 1, 1]),
        &registry,
    );
    assert_eq!(balancer.hash_header(), None);
    let ip: IpAddr = [127, 0, 0, 7].into();
    let expected = balancer
        .pick(&PickContext {
            header_value: None,
            client_ip: Some(ip),
        })
        .unwrap()
        .addr;
    for user in 0..50 {
        let key = format!("user-{user}");
        let ctx = PickContext {
            header_value: Some(key.as_bytes()),
            client_ip: Some(ip),
        };
        assert_eq!(balancer.pick(&ctx).unwrap().addr, expected);
    }
}

#[test]
fn ring_hash_weight_scales_share() {
    let members = [(0, addr(1), 1), (1, addr(2), 3)];
    let ring = ring::Ring::new(&members);
    let mut heavy = 0;
    for key in 0..20_000u64 {
        if ring.owner(ring::hash_bytes(&key.to_le_bytes())) == Some(1) {
            heavy += 1;
        }
    }
    let share = heavy as f64 / 20_000.0;
    assert!((0.65..=0.85).contains(&share), "weight 3 of 4 owns {share}");
}

#[test]
fn ring_size_is_capped() {
    let members: Vec<(u32, SocketAddr, u32)> = (0..10)
        .map(|i| (i, addr(i as u16 + 1), 1_000_000))
        .collect();
    let ring = ring::Ring::new(&members);
    assert!(ring.len() as u64 <= ring::MAX_RING_SIZE);
    assert!(ring.len() >= 10);
}

#[test]
fn fast_rng_bounds_and_distinct_pairs() {
    for len in 2..10 {
        for _ in 0..200 {
            let (a, b) = rng::two_distinct(len);
            assert!(a < len && b < len && a != b);
        }
    }
    let mut hits = [0usize; 4];
    for _ in 0..8_000 {
        hits[rng::below(4) as usize] += 1;
    }
    assert!(
        hits.iter().all(|&h| (1_700..=2_300).contains(&h)),
        "{hits:?}"
    );
}
