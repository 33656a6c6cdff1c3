//! HTTPRoute matching: compiles routes attached to a Service into an ordered rule list
//! with Gateway API precedence, and picks weighted backends.
//!
//! Every match of every rule becomes one entry of a single list sorted by precedence,
//! so `select` is a linear scan that stops at the first hit: no allocation, no lock.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName};
use http::{Method, Uri};

use crate::balance::rng;
use crate::config::{
    HeaderValueMatch, HttpMatchSpec, HttpRouteSpec, HttpRuleSpec, PathMatch, ServiceSpec,
};
use crate::resilience::{Faults, RateLimiter, ResilienceRegistry, RetryPolicy};
use crate::snapshot::ConfigError;
use crate::stats::{Direction, HttpLabels, HttpStats, StatsRegistry};

#[cfg(test)]
mod tests;

/// Route label of the catch-all rule.
pub const DEFAULT_ROUTE: &str = "default";

/// The rules of every HTTPRoute attached to one Service, most specific first, ending
/// with a catch-all default rule (route label "default") that sends to the service itself.
pub struct Router {
    /// Every match of every explicit rule, in precedence order.
    matches: Box<[CompiledMatch]>,
    /// Explicit rules (route order, then rule order), then the default rule last.
    rules: Box<[Rule]>,
}

impl Router {
    /// `routes` are the routes whose `parents` include `service`; precedence per the Gateway
    /// API: Exact path > longer prefix > regex > none, then more header matches, then a method
    /// match, then route order. Stats handles are created here (direction outbound, authority
    /// `name.namespace:port` of `service`, dst_service = the backend's key, route = route name).
    ///
    /// Error paths index `routes` as given; use [`Router::compile_indexed`] to report the
    /// routes' positions in the whole config.
    pub fn compile(
        service: &ServiceSpec,
        routes: &[&HttpRouteSpec],
        stats: &StatsRegistry,
        resilience: &ResilienceRegistry,
    ) -> Result<Router, ConfigError> {
        let indexed: Vec<(usize, &HttpRouteSpec)> = routes.iter().copied().enumerate().collect();
        Self::compile_indexed(service, &indexed, stats, resilience)
    }

    /// Like [`Router::compile`], with each route's index in `ProxyConfig::http_routes` (in
    /// config order), used for error paths (`httpRoutes[3].rules[0]...`).
    pub fn compile_indexed(
        service: &ServiceSpec,
        routes: &[(usize, &HttpRouteSpec)],
        stats: &StatsRegistry,
        resilience: &ResilienceRegistry,
    ) -> Result<Router, ConfigError> {
        Self::compile_meshed(service, routes, stats, resilience, &|_| false)
    }

    /// Like [`Router::compile_indexed`]; requests to the backends `meshed` names (by
    /// `namespace/name`) go over mesh mTLS, and count under `tls="true"`.
    pub fn compile_meshed(
        service: &ServiceSpec,
        routes: &[(usize, &HttpRouteSpec)],
        stats: &StatsRegistry,
        resilience: &ResilienceRegistry,
        meshed: &dyn Fn(&str) -> bool,
    ) -> Result<Router, ConfigError> {
        let authority = format!("{}.{}:{}", service.name, service.namespace, service.port);
        let parent_key = service.key();
        let backend_stats = |backend: &str, route: &str| {
            stats.http(HttpLabels {
                direction: Direction::Outbound,
                authority: authority.clone(),
                dst_service: backend.to_owned(),
                route: route.to_owned(),
                tls: meshed(backend),
                client_id: String::new(),
            })
        };

        let mut rules = Vec::new();
        let mut matches = Vec::new();
        for (route_order, &(route_index, route)) in routes.iter().enumerate() {
            check_route_name(route_index, route)?;
            for (rule_index, rule) in route.rules.iter().enumerate() {
                let rule_path = format!("httpRoutes[{route_index}].rules[{rule_index}]");
                let rule_slot = rules.len();
                if rule.matches.is_empty() {
                    matches.push(CompiledMatch::everything(
                        rule_slot,
                        (route_order, rule_index, 0),
                    ));
                }
                for (match_index, spec) in rule.matches.iter().enumerate() {
                    let path = format!("{rule_path}.matches[{match_index}]");
                    let mut compiled = CompiledMatch::new(&path, spec)?;
                    compiled.rule = rule_slot;
                    compiled.order = (route_order, rule_index, match_index);
                    matches.push(compiled);
                }
                check_backend_weights(&rule_path, rule)?;
                let faults = compile_faults(&rule_path, rule)?;
                // Per parent: each Service the route is attached to has its own bucket
                // and budget.
                let state_key = format!(
                    "rule:{}/{}#{rule_index}@{parent_key}",
                    route.namespace, route.name
                );
                let rate_limiter = match &rule.rate_limit {
                    None => None,
                    Some(spec) => Some(resilience.rate_limiter(
                        state_key.clone(),
                        &format!("{rule_path}.rateLimit"),
                        spec,
                    )?),
                };
                let retry = match &rule.retry {
                    None => None,
                    Some(spec) => Some(resilience.retry_policy(
                        state_key,
                        &format!("{rule_path}.retry"),
                        spec,
                    )?),
                };
                let backends: Vec<Backend> = if rule.backends.is_empty() {
                    vec![Backend {
                        service: parent_key.clone(),
                        weight: 1,
                        stats: backend_stats(&parent_key, &route.name),
                    }]
                } else {
                    rule.backends
                        .iter()
                        .map(|b| Backend {
                            service: b.service.clone(),
                            weight: b.weight,
                            stats: backend_stats(&b.service, &route.name),
                        })
                        .collect()
                };
                let mut compiled = Rule::new(route.name.clone(), rule, backends);
                compiled.faults = faults;
                compiled.rate_limiter = rate_limiter;
                compiled.retry = retry;
                rules.push(compiled);
            }
        }
        matches.sort_by_key(CompiledMatch::precedence);
        rules.push(Rule::new(
            DEFAULT_ROUTE.to_owned(),
            &HttpRuleSpec::default(),
            vec![Backend {
                service: parent_key.clone(),
                weight: 1,
                stats: backend_stats(&parent_key, DEFAULT_ROUTE),
            }],
        ));
        Ok(Router {
            matches: matches.into_boxed_slice(),
            rules: rules.into_boxed_slice(),
        })
    }

    /// Always returns a rule (the default rule catches what nothing else does).
    pub fn select(&self, req: &http::request::Parts) -> &Rule {
        self.select_for(&req.method, &req.uri, &req.headers)
    }

    /// [`Router::select`] for callers holding a request's parts separately.
    pub fn select_for(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> &Rule {
        // Authority-form targets (CONNECT) have no path; treat them as the root.
        let path = match uri.path() {
            "" => "/",
            path => path,
        };
        self.matches
            .iter()
            .find(|m| m.matches(path, method, headers))
            .map_or_else(|| self.default_rule(), |m| &self.rules[m.rule])
    }

    /// The catch-all rule: the service itself, route label "default", no timeouts.
    pub fn default_rule(&self) -> &Rule {
        self.rules
            .last()
            .expect("a router always has its default rule")
    }

    /// Every rule: explicit ones in route then rule order, the default rule last.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

pub struct Rule {
    /// HTTPRoute name, or "default".
    pub route_name: String,
    pub request_timeout: Option<Duration>,
    pub backend_request_timeout: Option<Duration>,
    /// Injected delays and aborts, if the rule has any.
    pub faults: Option<Faults>,
    /// The rule's token bucket, if it has a rate limit.
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// The rule's retry policy and budget, if it retries.
    pub retry: Option<Arc<RetryPolicy>>,
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
    fn new(route_name: String, spec: &HttpRuleSpec, backends: Vec<Backend>) -> Rule {
        // Gateway API: a zero timeout disables it.
        let timeout = |ms: Option<u64>| ms.filter(|&ms| ms > 0).map(Duration::from_millis);
        let total_weight = backends.iter().map(|b| u64::from(b.weight)).sum();
        Rule {
            route_name,
            request_timeout: timeout(spec.request_timeout_ms),
            backend_request_timeout: timeout(spec.backend_request_timeout_ms),
            faults: None,
            rate_limiter: None,
            retry: None,
            backends,
            total_weight,
        }
    }

    /// Weighted random choice among the rule's backends (weight 0 backends never chosen).
    /// `None` only when every weight is 0 (the data path answers 503).
    pub fn pick_backend(&self) -> Option<&Backend> {
        match self.total_weight {
            0 => None,
            total if self.backends.len() == 1 || total == u64::from(self.backends[0].weight) => {
                self.backends.first()
            }
            total => {
                let mut target = rng::below(total);
                for backend in &self.backends {
                    let weight = u64::from(backend.weight);
                    if target < weight {
                        return Some(backend);
                    }
                    target -= weight;
                }
                None
            }
        }
    }

    /// The rule's backends in config order (the parent service when the rule named none).
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }
}

/// Checks everything about one route that does not need the other resources: its name,
/// every match (paths, regexes, header names, methods) and backend weight totals.
/// `index` is the route's position in `ProxyConfig::http_routes`.
pub fn validate_route(index: usize, route: &HttpRouteSpec) -> Result<(), ConfigError> {
    check_route_name(index, route)?;
    for (rule_index, rule) in route.rules.iter().enumerate() {
        let rule_path = format!("httpRoutes[{index}].rules[{rule_index}]");
        for (match_index, spec) in rule.matches.iter().enumerate() {
            CompiledMatch::new(&format!("{rule_path}.matches[{match_index}]"), spec)?;
        }
        check_backend_weights(&rule_path, rule)?;
        compile_faults(&rule_path, rule)?;
        if let Some(spec) = &rule.rate_limit {
            RateLimiter::new(&format!("{rule_path}.rateLimit"), spec)?;
        }
        if let Some(spec) = &rule.retry {
            RetryPolicy::new(&format!("{rule_path}.retry"), spec)?;
        }
    }
    Ok(())
}

fn compile_faults(rule_path: &str, rule: &HttpRuleSpec) -> Result<Option<Faults>, ConfigError> {
    rule.faults
        .as_ref()
        .map(|spec| Faults::compile(&format!("{rule_path}.faults"), spec))
        .transpose()
}

fn check_route_name(index: usize, route: &HttpRouteSpec) -> Result<(), ConfigError> {
    if route.name.is_empty() {
        return Err(error(
            format!("httpRoutes[{index}].name"),
            "must not be empty",
        ));
    }
    Ok(())
}

fn check_backend_weights(rule_path: &str, rule: &HttpRuleSpec) -> Result<(), ConfigError> {
    let mut total: u32 = 0;
    for (i, backend) in rule.backends.iter().enumerate() {
        total = total.checked_add(backend.weight).ok_or_else(|| {
            error(
                format!("{rule_path}.backends[{i}].weight"),
                format!("backend weights add up to more than {}", u32::MAX),
            )
        })?;
    }
    Ok(())
}

fn error(path: String, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path,
        message: message.into(),
    }
}

/// One match of one rule, ready to test against a request.
struct CompiledMatch {
    path: PathMatcher,
    headers: Box<[HeaderMatcher]>,
    method: Option<Method>,
    /// Index into `Router::rules`.
    rule: usize,
    /// (route order, rule index, match index): the final tie-breakers.
    order: (usize, usize, usize),
}

enum PathMatcher {
    Any,
    Exact(String),
    /// Without trailing slashes; empty for `/` (matches every path).
    Prefix(String),
    Regex(regex::Regex),
}

struct HeaderMatcher {
    name: HeaderName,
    value: ValueMatcher,
}

enum ValueMatcher {
    Exact(Box<[u8]>),
    /// Header values are bytes, not necessarily UTF-8.
    Regex(regex::bytes::Regex),
}

type Precedence = (
    u8,
    Reverse<usize>,
    Reverse<usize>,
    bool,
    (usize, usize, usize),
);

impl CompiledMatch {
    fn everything(rule: usize, order: (usize, usize, usize)) -> Self {
        Self {
            path: PathMatcher::Any,
            headers: Box::new([]),
            method: None,
            rule,
            order,
        }
    }

    /// `path` is the match's config path (`httpRoutes[0].rules[1].matches[0]`).
    fn new(path: &str, spec: &HttpMatchSpec) -> Result<Self, ConfigError> {
        let path_matcher = match &spec.path {
            None => PathMatcher::Any,
            Some(PathMatch::Exact(value)) => {
                require_absolute(path, value)?;
                PathMatcher::Exact(value.clone())
            }
            Some(PathMatch::Prefix(value)) => {
                require_absolute(path, value)?;
                PathMatcher::Prefix(value.trim_end_matches('/').to_owned())
            }
            Some(PathMatch::Regex(pattern)) => {
                let regex = compile_anchored(pattern, regex::Regex::new)
                    .map_err(|e| error(format!("{path}.path.value"), regex_message(&e)))?;
                PathMatcher::Regex(regex)
            }
        };
        let mut headers = Vec::with_capacity(spec.headers.len());
        for (i, header) in spec.headers.iter().enumerate() {
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
                error(
                    format!("{path}.headers[{i}].name"),
                    format!("{:?} is not a valid header name", header.name),
                )
            })?;
            let value = match &header.value {
                HeaderValueMatch::Exact(value) => ValueMatcher::Exact(value.as_bytes().into()),
                HeaderValueMatch::Regex(pattern) => ValueMatcher::Regex(
                    compile_anchored(pattern, regex::bytes::Regex::new).map_err(|e| {
                        error(format!("{path}.headers[{i}].value"), regex_message(&e))
                    })?,
                ),
            };
            headers.push(HeaderMatcher { name, value });
        }
        let method = match &spec.method {
            None => None,
            Some(name) => {
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
                match Method::from_bytes(name.as_bytes()) {
                    Ok(method) if valid => Some(method),
                    _ => {
                        return Err(error(
                            format!("{path}.method"),
                            format!("expected an upper-case method name such as GET, got {name:?}"),
                        ))
                    }
                }
            }
        };
        Ok(Self {
            path: path_matcher,
            headers: headers.into_boxed_slice(),
            method,
            rule: 0,
            order: (0, 0, 0),
        })
    }

    /// Sort key, smallest first: path kind (exact, prefix, regex, none), longer prefix,
    /// more header matches, method present, then config order.
    fn precedence(&self) -> Precedence {
        let (kind, prefix_len) = match &self.path {
            PathMatcher::Exact(_) => (0, 0),
            PathMatcher::Prefix(prefix) => (1, prefix.len()),
            PathMatcher::Regex(_) => (2, 0),
            PathMatcher::Any => (3, 0),
        };
        (
            kind,
            Reverse(prefix_len),
            Reverse(self.headers.len()),
            self.method.is_none(),
            self.order,
        )
    }

    fn matches(&self, path: &str, method: &Method, headers: &HeaderMap) -> bool {
        let path_ok = match &self.path {
            PathMatcher::Any => true,
            PathMatcher::Exact(exact) => path == exact,
            PathMatcher::Prefix(prefix) => {
                path.starts_with(prefix.as_str())
                    && (path.len() == prefix.len() || path.as_bytes()[prefix.len()] == b'/')
            }
            PathMatcher::Regex(regex) => regex.is_match(path),
        };
        let method_ok = match &self.method {
            Some(expected) => expected == method,
            None => true,
        };
        path_ok && method_ok && self.headers.iter().all(|h| h.matches(headers))
    }
}

impl HeaderMatcher {
    /// Any one value of a repeated header may satisfy the match.
    fn matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(&self.name)
            .iter()
            .any(|value| match &self.value {
                ValueMatcher::Exact(expected) => value.as_bytes() == &expected[..],
                ValueMatcher::Regex(regex) => regex.is_match(value.as_bytes()),
            })
    }
}

fn require_absolute(path: &str, value: &str) -> Result<(), ConfigError> {
    if value.starts_with('/') {
        Ok(())
    } else {
        Err(error(
            format!("{path}.path.value"),
            format!("must start with \"/\", got {value:?}"),
        ))
    }
}

/// Whole-value matching: the pattern must match from the first to the last byte. The
/// pattern is checked on its own first, so one like `a)|(b` cannot escape the group.
fn compile_anchored<R>(
    pattern: &str,
    compile: impl Fn(&str) -> Result<R, regex::Error>,
) -> Result<R, regex::Error> {
    compile(pattern)?;
    compile(&format!("^(?:{pattern})$"))
}

/// regex's syntax errors span several lines (pattern, caret, message); keep the message.
fn regex_message(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => {
            let reason = text
                .lines()
                .find_map(|line| line.strip_prefix("error: "))
                .unwrap_or_else(|| text.lines().last().unwrap_or("syntax error"));
            format!("invalid regular expression: {reason}")
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("regular expression too large (compiled size exceeds {limit} bytes)")
        }
        other => format!("invalid regular expression: {other}"),
    }
}
