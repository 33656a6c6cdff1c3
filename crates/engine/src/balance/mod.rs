//! Load balancers over a service's endpoint set.
//!
//! CONTRACT (owned by the logic helper; the data path codes against these signatures):
//! - `LoadRegistry` lives for the engine's lifetime and hands out one `Arc<EndpointLoad>`
//!   per endpoint address, so EWMA/in-flight state survives snapshot swaps.
//! - `Balancer::new` is called while compiling a snapshot; `pick` is on the hot path.
//! - The data path calls `EndpointLoad::start()` before sending a request (or opening a
//!   TCP connection) to the picked endpoint and `InFlight::finish(success)` when the
//!   response head arrives / the attempt fails (dropping the guard without finish counts
//!   as a failure-free completion with the elapsed latency).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{EndpointSpec, LoadBalancer};

/// Engine-lifetime registry of per-endpoint load, keyed by address.
#[derive(Default)]
pub struct LoadRegistry {/* fields: logic helper */}

impl LoadRegistry {
    pub fn new() -> Self {
        todo!()
    }
    /// The shared load state for `addr`, created on first use.
    pub fn get(&self, addr: SocketAddr) -> Arc<EndpointLoad> {
        todo!()
    }
    /// Shared state for a service's balancer that must survive swaps (e.g. round-robin cursor).
    pub fn service_cursor(&self, service_key: &str) -> Arc<std::sync::atomic::AtomicUsize> {
        todo!()
    }
}

/// Live load of one endpoint: in-flight count and peak-EWMA latency.
pub struct EndpointLoad {/* fields: logic helper */}

impl EndpointLoad {
    pub fn in_flight(&self) -> u64 {
        todo!()
    }
    /// Mark one request/connection started; the guard records latency when finished or dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        todo!()
    }
}

/// One outstanding request on an endpoint.
pub struct InFlight {/* fields: logic helper */}

impl InFlight {
    /// Record the outcome: `success == false` for connect errors, resets and 5xx (penalises EWMA).
    pub fn finish(self, success: bool) {
        todo!()
    }
}

#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub weight: u32,
    pub load: Arc<EndpointLoad>,
}

/// What a pick may hash on (ring_hash); other balancers ignore it.
pub struct PickContext<'a> {
    /// Value of the configured hash header, if present on the request.
    pub header_value: Option<&'a [u8]>,
    pub client_ip: Option<IpAddr>,
}

/// An immutable balancer over one snapshot's endpoint set for one service.
pub struct Balancer {/* fields: logic helper */}

impl Balancer {
    pub fn new(
        kind: &LoadBalancer,
        service_key: &str,
        endpoints: &[EndpointSpec],
        registry: &LoadRegistry,
    ) -> Self {
        todo!()
    }
    /// The header ring_hash hashes on, lower-case, so the data path can read it before `pick`.
    pub fn hash_header(&self) -> Option<&str> {
        todo!()
    }
    /// `None` when the service has no endpoints (the data path answers 503).
    pub fn pick(&self, ctx: &PickContext<'_>) -> Option<&Endpoint> {
        todo!()
    }
    pub fn endpoints(&self) -> &[Endpoint] {
        todo!()
    }
}

#[allow(dead_code)]
fn _unused(_: Duration) {}
