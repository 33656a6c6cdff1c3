//! Counters and fixed-bucket latency histograms, kept outside snapshots, read as one snapshot.

use std::sync::Arc;
use std::time::Duration;

/// Linkerd's `response_latency_ms` bucket upper bounds, in milliseconds (+Inf implied).
pub const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Inbound,
    Outbound,
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
}

/// Labels of TCP connection metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpLabels {
    pub direction: Direction,
    pub dst_service: String,
    /// The upstream endpoint address.
    pub target_addr: String,
    pub tls: bool,
}

/// Engine-lifetime registry; snapshot compile and the data path get handles from it.
#[derive(Default)]
pub struct StatsRegistry {/* fields: logic helper */}

impl StatsRegistry {
    pub fn new() -> Self {
        todo!()
    }
    /// One handle per label set, created on first use; cheap to clone and to record into.
    pub fn http(&self, labels: HttpLabels) -> Arc<HttpStats> {
        todo!()
    }
    pub fn tcp(&self, labels: TcpLabels) -> Arc<TcpStats> {
        todo!()
    }
    pub fn snapshot(&self) -> StatsSnapshot {
        todo!()
    }
}

pub struct HttpStats {/* fields: logic helper */}

impl HttpStats {
    pub fn request(&self) {
        todo!()
    }
    /// `failure` per Linkerd: 5xx, or a gRPC status other than OK, or the stream failed.
    pub fn response(&self, status: u16, failure: bool, latency: Duration) {
        todo!()
    }
}

pub struct TcpStats {/* fields: logic helper */}

impl TcpStats {
    /// Counts an open; the guard counts the close when dropped.
    pub fn open(self: &Arc<Self>) -> TcpConnGuard {
        todo!()
    }
    pub fn add_read(&self, bytes: u64) {
        todo!()
    }
    pub fn add_write(&self, bytes: u64) {
        todo!()
    }
}

pub struct TcpConnGuard {/* fields: logic helper */}

#[derive(Clone, Debug, Default)]
pub struct StatsSnapshot {
    pub http: Vec<HttpStatsEntry>,
    pub tcp: Vec<TcpStatsEntry>,
}

#[derive(Clone, Debug)]
pub struct HttpStatsEntry {
    pub labels: HttpLabels,
    pub requests: u64,
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
