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
//!
//! `pick` takes no lock and allocates nothing: load is read from atomics, randomness
//! comes from a per-thread generator, and per-snapshot tables (round-robin schedule,
//! hash ring, cumulative weights) are built once in `Balancer::new`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::config::{EndpointSpec, LoadBalancer};
use crate::resilience::{EndpointHealth, ServiceBreaker};

pub(crate) mod ring;
pub(crate) mod rng;
pub(crate) mod schedule;

#[cfg(test)]
mod tests;

/// Time constant of the latency EWMA: a sample's influence falls to 1/e after this long.
pub const EWMA_DECAY: Duration = Duration::from_secs(10);
/// Latency assumed for an endpoint never measured, so a new endpoint gets traffic soon
/// without being flooded before it has been measured.
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);
/// A failed attempt counts as a latency sample this many times the larger of its own
/// latency and the current estimate (at least `DEFAULT_RTT`), so repeated failures push
/// an endpoint away quickly, and a single one only briefly.
pub const FAILURE_PENALTY_FACTOR: f64 = 4.0;
/// Ceiling of the latency estimate, so repeated penalties stay finite and recoverable.
pub const MAX_RTT: Duration = Duration::from_secs(60);
/// Floor of the decayed estimate when computing cost, so in-flight counts still order
/// endpoints whose estimates have decayed to almost nothing.
const MIN_COST_RTT_NANOS: f64 = 1_000.0;
/// Costs closer than this (relative) are a tie, settled by the random order of the two
/// choices rather than by noise such as which endpoint was created first.
const COST_TIE_TOLERANCE: f64 = 1e-3;

/// Common time base of every load's timestamps, so one clock read serves a whole pick.
static EPOCH: OnceLock<Instant> = OnceLock::new();

pub(crate) fn now_nanos() -> u64 {
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `instant` on the same time base as [`now_nanos`], for callers that already read the
/// clock (one read per request serves every consumer).
pub(crate) fn nanos_of(instant: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(instant.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// Engine-lifetime registry of per-endpoint load, keyed by address.
///
/// Entries outlive snapshots on purpose: a swap that keeps an endpoint keeps its load.
/// `retain`/`retain_cursors` (called after each snapshot compile) drop entries for
/// addresses the new config no longer names once no older snapshot still uses them, so
/// the registry is bounded by what recent configs name.
#[derive(Default)]
pub struct LoadRegistry {
    endpoints: RwLock<HashMap<SocketAddr, Arc<EndpointLoad>>>,
    cursors: RwLock<HashMap<String, Arc<AtomicUsize>>>,
}

impl LoadRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared load state for `addr`, created on first use.
    pub fn get(&self, addr: SocketAddr) -> Arc<EndpointLoad> {
        if let Some(load) = self.endpoints.read().get(&addr) {
            return Arc::clone(load);
        }
        Arc::clone(
            self.endpoints
                .write()
                .entry(addr)
                .or_insert_with(|| Arc::new(EndpointLoad::new())),
        )
    }

    /// Shared state for a service's balancer that must survive swaps (e.g. round-robin cursor).
    pub fn service_cursor(&self, service_key: &str) -> Arc<AtomicUsize> {
        if let Some(cursor) = self.cursors.read().get(service_key) {
            return Arc::clone(cursor);
        }
        Arc::clone(
            self.cursors
                .write()
                .entry(service_key.to_owned())
                .or_default(),
        )
    }

    /// Forgets load for addresses not in `addrs`, except entries still held elsewhere (by
    /// a snapshot in force or a request in flight), which a later call drops once unused.
    pub fn retain(&self, addrs: &HashSet<SocketAddr>) {
        self.endpoints
            .write()
            .retain(|addr, load| addrs.contains(addr) || Arc::strong_count(load) > 1);
    }

    /// Like `retain`, for the cursors of services not in `service_keys`.
    pub fn retain_cursors(&self, service_keys: &HashSet<&str>) {
        self.cursors.write().retain(|key, cursor| {
            service_keys.contains(key.as_str()) || Arc::strong_count(cursor) > 1
        });
    }

    /// How many endpoint addresses have load state (for tests and diagnostics).
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.read().len()
    }
}

/// Live load of one endpoint: in-flight count and peak-EWMA latency.
///
/// The estimate is lock-free: the last-update stamp advances with `fetch_max` (each
/// update decays by the time since the previous one) and the value is replaced by CAS.
pub struct EndpointLoad {
    in_flight: AtomicU64,
    /// `f64` bits of the latency estimate, in nanoseconds.
    rtt_nanos: AtomicU64,
    /// Nanoseconds since `EPOCH` of the last estimate update (creation, at first).
    stamp_nanos: AtomicU64,
}

impl EndpointLoad {
    fn new() -> Self {
        Self {
            in_flight: AtomicU64::new(0),
            rtt_nanos: AtomicU64::new((DEFAULT_RTT.as_nanos() as f64).to_bits()),
            stamp_nanos: AtomicU64::new(now_nanos()),
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// Mark one request/connection started; the guard records latency when finished or dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight {
            load: Arc::clone(self),
            health: None,
            started: Instant::now(),
            done: false,
        }
    }

    /// Records a latency sample measured elsewhere (e.g. an attempt the caller timed itself),
    /// without touching the in-flight count.
    pub fn observe(&self, latency: Duration, success: bool) {
        self.observe_at(latency.as_nanos() as f64, success, now_nanos());
    }

    /// The current latency estimate, decayed for the time since it was last updated.
    pub fn latency_estimate(&self) -> Duration {
        Duration::from_nanos(self.decayed_rtt_at(now_nanos()) as u64)
    }

    fn observe_at(&self, sample_nanos: f64, success: bool, now_nanos: u64) {
        let previous = self.stamp_nanos.fetch_max(now_nanos, Relaxed);
        let elapsed = now_nanos.saturating_sub(previous) as f64;
        let decay = (-elapsed / EWMA_DECAY.as_nanos() as f64).exp();
        let max_rtt = MAX_RTT.as_nanos() as f64;
        let mut current_bits = self.rtt_nanos.load(Relaxed);
        loop {
            let current = f64::from_bits(current_bits);
            let sample = if success {
                sample_nanos
            } else {
                (sample_nanos.max(current) * FAILURE_PENALTY_FACTOR)
                    .max(DEFAULT_RTT.as_nanos() as f64)
            };
            // Peak: a slower sample takes effect at once; faster ones are averaged in.
            let next = if sample > current {
                sample
            } else {
                current * decay + sample * (1.0 - decay)
            };
            let next = next.min(max_rtt);
            match self.rtt_nanos.compare_exchange_weak(
                current_bits,
                next.to_bits(),
                Relaxed,
                Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => current_bits = actual,
            }
        }
    }

    /// The estimate decayed towards zero for the time since the last update, without
    /// writing it back: an endpoint left alone (e.g. after failures) is retried eventually.
    fn decayed_rtt_at(&self, now_nanos: u64) -> f64 {
        let rtt = f64::from_bits(self.rtt_nanos.load(Relaxed));
        let idle = now_nanos.saturating_sub(self.stamp_nanos.load(Relaxed)) as f64;
        rtt * (-idle / EWMA_DECAY.as_nanos() as f64).exp()
    }

    /// Peak-EWMA cost: estimated latency times the requests it would queue behind.
    fn cost_at(&self, now_nanos: u64) -> f64 {
        self.decayed_rtt_at(now_nanos).max(MIN_COST_RTT_NANOS) * (self.in_flight() + 1) as f64
    }
}

/// One outstanding request on an endpoint.
pub struct InFlight {
    load: Arc<EndpointLoad>,
    /// The endpoint's passive health, when its Service ejects outliers.
    health: Option<Arc<EndpointHealth>>,
    started: Instant,
    done: bool,
}

impl InFlight {
    /// Record the outcome: `success == false` for connect errors, resets, timeouts and 5xx
    /// (penalises EWMA and counts towards outlier ejection).
    pub fn finish(mut self, success: bool) {
        if let Some(health) = &self.health {
            health.record(success);
        }
        self.complete(success);
    }

    /// The request never reached the endpoint (the proxy refused it first): no sample.
    pub fn cancel(mut self) {
        self.done = true;
        self.load.in_flight.fetch_sub(1, Relaxed);
    }

    /// The endpoint this request is on.
    pub fn load(&self) -> &Arc<EndpointLoad> {
        &self.load
    }

    fn complete(&mut self, success: bool) {
        if self.done {
            return;
        }
        self.done = true;
        self.load.in_flight.fetch_sub(1, Relaxed);
        let latency = self.started.elapsed().as_nanos() as f64;
        self.load.observe_at(latency, success, now_nanos());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.complete(true);
    }
}

#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub weight: u32,
    pub load: Arc<EndpointLoad>,
    /// Passive health, when the Service ejects outliers.
    pub health: Option<Arc<EndpointHealth>>,
}

impl Endpoint {
    /// Marks one request/connection started on this endpoint (see [`EndpointLoad::start`]);
    /// its outcome also reaches the endpoint's passive health.
    pub fn start(&self) -> InFlight {
        let mut in_flight = self.load.start();
        in_flight.health = self.health.clone();
        in_flight
    }

    fn is_ejected(&self) -> bool {
        self.health.as_ref().is_some_and(|h| h.is_ejected())
    }
}

/// What a pick may hash on (ring_hash); other balancers ignore it.
pub struct PickContext<'a> {
    /// Value of the configured hash header, if present on the request.
    pub header_value: Option<&'a [u8]>,
    pub client_ip: Option<IpAddr>,
}

/// An immutable balancer over one snapshot's endpoint set for one service.
pub struct Balancer {
    /// Every configured endpoint, in config order (weight-0 ones included, never picked).
    endpoints: Box<[Endpoint]>,
    /// Indices of the endpoints with weight > 0.
    usable: Box<[u32]>,
    strategy: Strategy,
    /// The Service's breaker when it ejects outliers: picks avoid ejected endpoints.
    outliers: Option<Arc<ServiceBreaker>>,
}

enum Strategy {
    /// Peak-EWMA cost, two random choices.
    Ewma,
    /// In-flight per weight, two random choices.
    LeastRequest,
    RoundRobin {
        schedule: Box<[u32]>,
        cursor: Arc<AtomicUsize>,
    },
    Random(WeightTable),
    RingHash {
        header: Option<String>,
        ring: ring::Ring,
        fallback: WeightTable,
    },
}

/// Cumulative weights of the usable endpoints, for weighted random choice.
struct WeightTable {
    /// `cumulative[i]` is the total weight of `usable[..=i]`.
    cumulative: Box<[u64]>,
}

impl WeightTable {
    fn new(endpoints: &[Endpoint], usable: &[u32]) -> Self {
        let mut total = 0u64;
        let cumulative = usable
            .iter()
            .map(|&i| {
                total += u64::from(endpoints[i as usize].weight);
                total
            })
            .collect();
        Self { cumulative }
    }

    /// A position in `usable`, chosen in proportion to weight.
    fn pick(&self) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let target = rng::below(total);
        Some(self.cumulative.partition_point(|&c| c <= target))
    }
}

impl Balancer {
    pub fn new(
        kind: &LoadBalancer,
        service_key: &str,
        endpoints: &[EndpointSpec],
        registry: &LoadRegistry,
    ) -> Self {
        let endpoints: Box<[Endpoint]> = endpoints
            .iter()
            .map(|spec| Endpoint {
                addr: spec.address,
                weight: spec.weight,
                load: registry.get(spec.address),
                health: None,
            })
            .collect();
        let usable: Box<[u32]> = (0..endpoints.len() as u32)
            .filter(|&i| endpoints[i as usize].weight > 0)
            .collect();
        let strategy = match kind {
            LoadBalancer::Ewma => Strategy::Ewma,
            LoadBalancer::LeastRequest => Strategy::LeastRequest,
            LoadBalancer::Random => Strategy::Random(WeightTable::new(&endpoints, &usable)),
            LoadBalancer::RoundRobin => {
                let members: Vec<(u32, u32)> = usable
                    .iter()
                    .map(|&i| (i, endpoints[i as usize].weight))
                    .collect();
                Strategy::RoundRobin {
                    schedule: schedule::smooth_weighted(&members),
                    cursor: registry.service_cursor(service_key),
                }
            }
            LoadBalancer::RingHash { header } => {
                let members: Vec<(u32, SocketAddr, u32)> = usable
                    .iter()
                    .map(|&i| (i, endpoints[i as usize].addr, endpoints[i as usize].weight))
                    .collect();
                Strategy::RingHash {
                    header: header
                        .as_ref()
                        .map(|h| h.to_ascii_lowercase())
                        .filter(|h| !h.is_empty()),
                    ring: ring::Ring::new(&members),
                    fallback: WeightTable::new(&endpoints, &usable),
                }
            }
        };
        Balancer {
            endpoints,
            usable,
            strategy,
            outliers: None,
        }
    }

    /// Turns on outlier ejection: `health_of` gives each endpoint's passive health under
    /// `breaker`; picks then avoid endpoints that are ejected.
    pub fn with_outlier_detection(
        mut self,
        breaker: Arc<ServiceBreaker>,
        health_of: impl Fn(SocketAddr) -> Arc<EndpointHealth>,
    ) -> Self {
        for endpoint in self.endpoints.iter_mut() {
            endpoint.health = Some(health_of(endpoint.addr));
        }
        self.outliers = Some(breaker);
        self
    }

    /// How many endpoints can take traffic (weight above 0).
    pub fn usable_count(&self) -> usize {
        self.usable.len()
    }

    /// The header ring_hash hashes on, lower-case, so the data path can read it before `pick`.
    pub fn hash_header(&self) -> Option<&str> {
        match &self.strategy {
            Strategy::RingHash { header, .. } => header.as_deref(),
            _ => None,
        }
    }

    /// `None` when the service has no endpoints (the data path answers 503). Ejected
    /// endpoints are avoided while others remain; if every usable one is ejected the pick
    /// stands (traffic to a doubtful endpoint beats none at all).
    pub fn pick(&self, ctx: &PickContext<'_>) -> Option<&Endpoint> {
        let picked = self.pick_any(ctx)?;
        match &self.outliers {
            Some(breaker) if breaker.any_ejected() && picked.is_ejected() => {
                Some(self.pick_healthy(ctx).unwrap_or(picked))
            }
            _ => Some(picked),
        }
    }

    /// A few more picks by the strategy, then the first endpoint not ejected from a random
    /// starting point (ring_hash keeps picking the same owner; this moves to the next).
    fn pick_healthy(&self, ctx: &PickContext<'_>) -> Option<&Endpoint> {
        for _ in 0..2 {
            let again = self.pick_any(ctx)?;
            if !again.is_ejected() {
                return Some(again);
            }
        }
        let len = self.usable.len();
        let start = rng::below(len as u64) as usize;
        (0..len)
            .map(|i| &self.endpoints[self.usable[(start + i) % len] as usize])
            .find(|endpoint| !endpoint.is_ejected())
    }

    fn pick_any(&self, ctx: &PickContext<'_>) -> Option<&Endpoint> {
        let index = match self.usable.len() {
            0 => return None,
            1 => self.usable[0],
            len => match &self.strategy {
                Strategy::Ewma => {
                    let (a, b) = self.two_choices(len);
                    let now = now_nanos();
                    let a_cost = a.load.cost_at(now) / f64::from(a.weight);
                    let b_cost = b.load.cost_at(now) / f64::from(b.weight);
                    return Some(if b_cost < a_cost * (1.0 - COST_TIE_TOLERANCE) {
                        b
                    } else {
                        a
                    });
                }
                Strategy::LeastRequest => {
                    let (a, b) = self.two_choices(len);
                    // (in_flight + 1) / weight compared without division.
                    let a_cost = u128::from(a.load.in_flight() + 1) * u128::from(b.weight);
                    let b_cost = u128::from(b.load.in_flight() + 1) * u128::from(a.weight);
                    return Some(if b_cost < a_cost { b } else { a });
                }
                Strategy::RoundRobin { schedule, cursor } => {
                    let position = cursor.fetch_add(1, Relaxed);
                    schedule[position % schedule.len()]
                }
                Strategy::Random(table) => self.usable[table.pick()?],
                Strategy::RingHash {
                    header,
                    ring,
                    fallback,
                } => {
                    let key = match (header.is_some(), ctx.header_value, ctx.client_ip) {
                        (true, Some(value), _) => Some(ring::hash_bytes(value)),
                        (_, _, Some(ip)) => Some(ring::hash_ip(ip)),
                        _ => None,
                    };
                    match key {
                        Some(key) => ring.owner(key)?,
                        None => self.usable[fallback.pick()?],
                    }
                }
            },
        };
        Some(&self.endpoints[index as usize])
    }

    /// Every configured endpoint in config order, including weight-0 ones that `pick`
    /// never returns.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Two distinct usable endpoints, uniformly at random.
    fn two_choices(&self, len: usize) -> (&Endpoint, &Endpoint) {
        let (a, b) = rng::two_distinct(len);
        (
            &self.endpoints[self.usable[a] as usize],
            &self.endpoints[self.usable[b] as usize],
        )
    }
}
