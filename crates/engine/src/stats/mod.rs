//! Counters and fixed-bucket latency histograms, kept outside snapshots, read as one snapshot.
//!
//! Every handle the registry hands out is kept for the engine's lifetime: a new snapshot
//! asking for the same labels gets the same handle back, so counters never reset on a
//! swap (Prometheus counters must be monotonic). The registry's maps are locked only
//! when a handle is created or when the stats are read; recording into a handle is a
//! couple of relaxed atomic adds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::RwLock;

#[cfg(test)]
mod tests;

/// Linkerd's `response_latency_ms` bucket upper bounds, in milliseconds (+Inf implied).
pub const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

/// `LATENCY_BUCKETS_MS` in microseconds, so the hot path places a sample without floats.
const BUCKET_BOUNDS_MICROS: [u64; 25] = [
    1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 100_000, 200_000,
    300_000, 400_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000, 10_000_000,
    20_000_000, 30_000_000, 40_000_000, 50_000_000,
];

/// Buckets per histogram: one per bound plus +Inf.
const BUCKET_COUNT: usize = BUCKET_BOUNDS_MICROS.len() + 1;

/// Status codes are tracked in blocks of one hundred (a class), allocated on first use.
const STATUS_CLASSES: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    /// The Prometheus label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Labels of HTTP request/response metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpLabels {
    pub direction: Direction,
    /// The authority as the client addressed it (`orders.default:80`), or the inbound listen addr.
    pub authority: String,
    /// `namespace/name` or "" for passthrough.
    pub dst_service: String,
    /// HTTPRoute name, or "default" when no route matched explicitly.
    pub route: String,
    pub tls: bool,
    /// Inbound over mTLS: the client's SPIFFE id; "" otherwise.
    pub client_id: String,
}

/// Labels of TCP connection metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpLabels {
    pub direction: Direction,
    pub dst_service: String,
    /// The upstream endpoint address.
    pub target_addr: String,
    pub tls: bool,
    /// Inbound over mTLS: the client's SPIFFE id; "" otherwise.
    pub client_id: String,
}

/// Why an inbound port closed a connection before serving it (`inbound_tls_refused_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsRefusal {
    /// Not a TLS ClientHello on a port that takes only TLS (`mtls: strict`, ingress TLS).
    Plaintext,
    /// A strict port while the proxy holds no identity yet.
    NoIdentity,
    /// The handshake failed: no client certificate, one the trust bundle does not verify
    /// (another root, expired), no common protocol, or the client went away.
    Handshake,
}

impl TlsRefusal {
    pub const ALL: [TlsRefusal; 3] = [
        TlsRefusal::Plaintext,
        TlsRefusal::NoIdentity,
        TlsRefusal::Handshake,
    ];

    /// The Prometheus label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsRefusal::Plaintext => "plaintext",
            TlsRefusal::NoIdentity => "no_identity",
            TlsRefusal::Handshake => "handshake",
        }
    }
}

/// Labels of an inbound port's refusal counters: the same `authority` (listen address)
/// and `dst_service` as its HTTP metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundPortLabels {
    pub authority: String,
    pub dst_service: String,
}

/// Connections an inbound port refused, by reason.
#[derive(Default)]
pub struct TlsRefusals {
    counts: [AtomicU64; 3],
}

impl TlsRefusals {
    pub fn record(&self, reason: TlsRefusal) {
        self.counts[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn get(&self, reason: TlsRefusal) -> u64 {
        self.counts[reason as usize].load(Relaxed)
    }
}

/// What an authorization denial refused (`inbound_http_authz_deny_total` or
/// `inbound_tcp_authz_deny_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthzProtocol {
    /// A request, answered 403.
    Http,
    /// An opaque TCP connection, closed.
    Tcp,
}

/// Labels of authorization denials on an inbound port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthzDenyLabels {
    pub protocol: AuthzProtocol,
    /// The port's listen address, as in its HTTP metrics.
    pub authority: String,
    pub dst_service: String,
    /// `namespace/name` of the deny policy that matched; "" when no allow policy did.
    pub policy: String,
    pub tls: bool,
    /// The client's SPIFFE id; "" without a mesh certificate.
    pub client_id: String,
}

#[derive(Clone, Debug)]
pub struct AuthzDenyEntry {
    pub labels: AuthzDenyLabels,
    pub count: u64,
}

#[derive(Clone, Debug)]
pub struct TlsRefusalEntry {
    pub labels: InboundPortLabels,
    pub reason: TlsRefusal,
    pub count: u64,
}

/// Engine-lifetime registry; snapshot compile and the data path get handles from it.
///
/// Handles are never dropped from the registry, so its size is bounded by the label
/// sets configs (and passthrough authorities) have named. Callers on a hot path should
/// keep the handle rather than look it up per request.
#[derive(Default)]
pub struct StatsRegistry {
    http: RwLock<BTreeMap<HttpLabels, Arc<HttpStats>>>,
    tcp: RwLock<BTreeMap<TcpLabels, Arc<TcpStats>>>,
    refusals: RwLock<BTreeMap<InboundPortLabels, Arc<TlsRefusals>>>,
    authz_denials: RwLock<BTreeMap<AuthzDenyLabels, Arc<AtomicU64>>>,
}

impl StatsRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// One handle per label set, created on first use; cheap to clone and to record into.
    pub fn http(&self, labels: HttpLabels) -> Arc<HttpStats> {
        get_or_insert(&self.http, labels, HttpStats::new)
    }

    pub fn tcp(&self, labels: TcpLabels) -> Arc<TcpStats> {
        get_or_insert(&self.tcp, labels, TcpStats::default)
    }

    pub fn tls_refusals(&self, labels: InboundPortLabels) -> Arc<TlsRefusals> {
        get_or_insert(&self.refusals, labels, TlsRefusals::default)
    }

    /// Counts one authorization denial. Denials are the exception, so the label lookup
    /// happens per denial rather than through a kept handle.
    pub fn authz_denied(&self, labels: AuthzDenyLabels) {
        get_or_insert(&self.authz_denials, labels, || AtomicU64::new(0)).fetch_add(1, Relaxed);
    }

    /// Every handle ever created, sorted by labels; responses sorted by status code, then
    /// success before failure.
    pub fn snapshot(&self) -> StatsSnapshot {
        let http = self
            .http
            .read()
            .iter()
            .map(|(labels, stats)| HttpStatsEntry {
                labels: labels.clone(),
                requests: stats.requests.load(Relaxed),
                retries: RetryResult::ALL.map(|r| (r, stats.retries[r as usize].load(Relaxed))),
                responses: stats.read_responses(),
            })
            .collect();
        let tcp = self
            .tcp
            .read()
            .iter()
            .map(|(labels, stats)| TcpStatsEntry {
                labels: labels.clone(),
                open_total: stats.open_total.load(Relaxed),
                open_connections: stats.open_connections.load(Relaxed),
                close_total: stats.close_total.load(Relaxed),
                read_bytes: stats.read_bytes.load(Relaxed),
                write_bytes: stats.write_bytes.load(Relaxed),
            })
            .collect();
        let tls_refusals = self
            .refusals
            .read()
            .iter()
            .flat_map(|(labels, refusals)| {
                TlsRefusal::ALL.map(|reason| TlsRefusalEntry {
                    labels: labels.clone(),
                    reason,
                    count: refusals.get(reason),
                })
            })
            .collect();
        let authz_denials = self
            .authz_denials
            .read()
            .iter()
            .map(|(labels, count)| AuthzDenyEntry {
                labels: labels.clone(),
                count: count.load(Relaxed),
            })
            .collect();
        StatsSnapshot {
            http,
            tcp,
            tls_refusals,
            authz_denials,
            ..StatsSnapshot::default()
        }
    }
}

fn get_or_insert<K: Ord, V>(
    map: &RwLock<BTreeMap<K, Arc<V>>>,
    key: K,
    make: impl FnOnce() -> V,
) -> Arc<V> {
    if let Some(found) = map.read().get(&key) {
        return Arc::clone(found);
    }
    Arc::clone(map.write().entry(key).or_insert_with(|| Arc::new(make())))
}

/// What became of a retry the policy wanted to make (`retry_total`'s `result` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryResult {
    /// The request was sent again.
    Retried,
    /// The retry budget was spent: the failure went to the client as it was.
    BudgetExhausted,
    /// The body could not be sent again (too large, or still streaming), or the method
    /// is not retried after the request may have reached the upstream.
    NotReplayable,
    /// Every attempt the policy allows was made.
    AttemptsExhausted,
}

impl RetryResult {
    pub const ALL: [RetryResult; 4] = [
        RetryResult::Retried,
        RetryResult::BudgetExhausted,
        RetryResult::NotReplayable,
        RetryResult::AttemptsExhausted,
    ];

    /// The Prometheus label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryResult::Retried => "retried",
            RetryResult::BudgetExhausted => "budget_exhausted",
            RetryResult::NotReplayable => "not_replayable",
            RetryResult::AttemptsExhausted => "attempts_exhausted",
        }
    }
}

/// Request and per-status response counters of one HTTP label set.
pub struct HttpStats {
    requests: AtomicU64,
    /// Indexed by `RetryResult as usize`.
    retries: [AtomicU64; 4],
    /// Indexed by `status / 100`; each block by `status % 100`, then by the failure flag.
    /// Blocks and entries are created on first use and never removed, so recording is
    /// lock-free and a label set only pays for the statuses it has seen.
    classes: [OnceLock<Box<StatusBlock>>; STATUS_CLASSES],
}

type StatusBlock = [[OnceLock<Box<ResponseStats>>; 2]; 100];

/// One (status code, classification) series: a histogram whose bucket total is the count.
struct ResponseStats {
    buckets: [AtomicU64; BUCKET_COUNT],
    sum_micros: AtomicU64,
}

impl HttpStats {
    fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            retries: [const { AtomicU64::new(0) }; 4],
            classes: [const { OnceLock::new() }; STATUS_CLASSES],
        }
    }

    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub fn retry(&self, result: RetryResult) {
        self.retries[result as usize].fetch_add(1, Relaxed);
    }

    /// `failure` per Linkerd: 5xx, or a gRPC status other than OK, or the stream failed.
    /// Status codes above 999 are recorded as 999.
    pub fn response(&self, status: u16, failure: bool, latency: Duration) {
        let status = usize::from(status.min(999));
        let block = self.classes[status / 100]
            .get_or_init(|| Box::new([const { [OnceLock::new(), OnceLock::new()] }; 100]));
        let entry = block[status % 100][usize::from(failure)].get_or_init(|| {
            Box::new(ResponseStats {
                buckets: [const { AtomicU64::new(0) }; BUCKET_COUNT],
                sum_micros: AtomicU64::new(0),
            })
        });
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        entry.buckets[bucket_index(micros)].fetch_add(1, Relaxed);
        entry.sum_micros.fetch_add(micros, Relaxed);
    }

    fn read_responses(&self) -> Vec<ResponseStatsEntry> {
        let mut out = Vec::new();
        for (class, block) in self.classes.iter().enumerate() {
            let Some(block) = block.get() else { continue };
            for (code, pair) in block.iter().enumerate() {
                for (failure, entry) in pair.iter().enumerate() {
                    let Some(entry) = entry.get() else { continue };
                    let latency_buckets: Vec<u64> =
                        entry.buckets.iter().map(|b| b.load(Relaxed)).collect();
                    out.push(ResponseStatsEntry {
                        // Lossless: class < 10 and code < 100.
                        status_code: (class * 100 + code) as u16,
                        failure: failure == 1,
                        count: latency_buckets.iter().sum(),
                        latency_buckets,
                        latency_sum_ms: entry.sum_micros.load(Relaxed) as f64 / 1000.0,
                    });
                }
            }
        }
        out
    }
}

/// Index of the first bucket whose upper bound (inclusive, Prometheus `le`) holds `micros`;
/// the last index is +Inf.
fn bucket_index(micros: u64) -> usize {
    BUCKET_BOUNDS_MICROS.partition_point(|&bound| bound < micros)
}

/// Connection counters of one TCP label set.
#[derive(Default)]
pub struct TcpStats {
    open_total: AtomicU64,
    open_connections: AtomicU64,
    close_total: AtomicU64,
    read_bytes: AtomicU64,
    write_bytes: AtomicU64,
}

impl TcpStats {
    /// Counts an open; the guard counts the close when dropped.
    pub fn open(self: &Arc<Self>) -> TcpConnGuard {
        self.open_total.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
        TcpConnGuard {
            stats: Arc::clone(self),
        }
    }
    pub fn add_read(&self, bytes: u64) {
        self.read_bytes.fetch_add(bytes, Relaxed);
    }
    pub fn add_write(&self, bytes: u64) {
        self.write_bytes.fetch_add(bytes, Relaxed);
    }
}

/// One open connection; dropping it counts the close exactly once.
pub struct TcpConnGuard {
    stats: Arc<TcpStats>,
}

impl TcpConnGuard {
    /// The stats this connection counts into, e.g. to add bytes as they flow.
    pub fn stats(&self) -> &Arc<TcpStats> {
        &self.stats
    }
}

impl Drop for TcpConnGuard {
    fn drop(&mut self) {
        self.stats.close_total.fetch_add(1, Relaxed);
        self.stats.open_connections.fetch_sub(1, Relaxed);
    }
}

#[derive(Clone, Debug, Default)]
pub struct StatsSnapshot {
    pub http: Vec<HttpStatsEntry>,
    pub tcp: Vec<TcpStatsEntry>,
    /// Connections inbound ports refused before serving them, per port and reason.
    pub tls_refusals: Vec<TlsRefusalEntry>,
    /// Requests and connections authorization policies refused, per port and client.
    pub authz_denials: Vec<AuthzDenyEntry>,
    /// Circuit breakers of the Services that have one (filled by `Engine::stats`).
    pub breakers: Vec<crate::resilience::BreakerStats>,
    /// Passive health of the endpoints of those Services that eject outliers.
    pub endpoint_health: Vec<crate::resilience::EndpointHealthStats>,
}

#[derive(Clone, Debug)]
pub struct HttpStatsEntry {
    pub labels: HttpLabels,
    pub requests: u64,
    /// `retry_total` by result.
    pub retries: [(RetryResult, u64); 4],
    pub responses: Vec<ResponseStatsEntry>,
}

#[derive(Clone, Debug)]
pub struct ResponseStatsEntry {
    pub status_code: u16,
    pub failure: bool,
    pub count: u64,
    /// Non-cumulative counts per `LATENCY_BUCKETS_MS` bucket plus a final +Inf bucket.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_ms: f64,
}

#[derive(Clone, Debug)]
pub struct TcpStatsEntry {
    pub labels: TcpLabels,
    pub open_total: u64,
    pub open_connections: u64,
    pub close_total: u64,
    /// Bytes read from the client / written to the client (Linkerd's perspective of the proxy).
    pub read_bytes: u64,
    pub write_bytes: u64,
}
