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
