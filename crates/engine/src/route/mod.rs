//! HTTPRoute matching: compiles routes attached to a Service into an ordered rule list
//! with Gateway API precedence, and picks weighted backends.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{HttpRouteSpec, ServiceSpec};
use crate::snapshot::ConfigError;
use crate::stats::{Direction, HttpLabels, HttpStats, StatsRegistry};

/// The rules of every HTTPRoute attached to one Service, most specific first, ending
/// with a catch-all default rule (route label "default") that sends to the service itself.
pub struct Router {/* fields: logic helper */}

impl Router {
    /// `routes` are the routes whose `parents` include `service`; precedence per the Gateway
    /// API: Exact path > longer prefix > regex > none, then more header matches, then a method
    /// match, then route order. Stats handles are created here (direction outbound, authority
    /// `name.namespace:port` of `service`, dst_service = the backend's key, route = route name).
    pub fn compile(
        service: &ServiceSpec,
        routes: &[&HttpRouteSpec],
        stats: &StatsRegistry,
    ) -> Result<Router, ConfigError> {
        todo!()
    }
    /// Always returns a rule (the default rule catches what nothing else does).
    pub fn select(&self, req: &http::request::Parts) -> &Rule {
        todo!()
    }
}

pub struct Rule {
    /// HTTPRoute name, or "default".
    pub route_name: String,
    pub request_timeout: Option<Duration>,
    pub backend_request_timeout: Option<Duration>,
    backends: Vec<Backend>,
    total_weight: u64,
}

pub struct Backend {
    /// `namespace/name` of the Service to send to.
    pub service: String,
    pub weight: u32,
    pub stats: Arc<HttpStats>,
}

impl Rule {
    /// Weighted random choice among the rule's backends (weight 0 backends never chosen).
    /// `None` only when every weight is 0 (the data path answers 503).
    pub fn pick_backend(&self) -> Option<&Backend> {
        todo!()
    }
}

#[allow(dead_code)]
fn _labels(_: Direction, _: HttpLabels) {}
