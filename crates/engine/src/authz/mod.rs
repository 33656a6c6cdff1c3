//! Authorization of inbound traffic: the AuthorizationPolicies of the local workload's
//! Service, compiled once per snapshot and checked per HTTP request (client identity,
//! path, method) and per opaque TCP connection (client identity).
//!
//! Deny wins: a request is refused when any rule of a deny policy matches it. Otherwise,
//! when there is any allow policy, a rule of one of them must match. The client identity
//! is the SPIFFE id its mesh certificate proved; a client without one (plaintext, or
//! ingress TLS) matches only rules that name no source.

use std::borrow::Cow;
use std::sync::Arc;

use http::Method;

use crate::config::{
    AuthorizationAction, AuthorizationOperationSpec, AuthorizationPolicySpec, AuthorizationRuleSpec,
};
use crate::snapshot::ConfigError;

#[cfg(test)]
mod tests;

/// The verdict on one request or connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused by the named deny policy.
    DeniedByPolicy(Arc<str>),
    /// Allow policies exist and none of their rules matched.
    NotAllowed,
}

impl Decision {
    /// The `policy` label of the denial: the deny policy's `namespace/name`, or "" when
    /// no allow policy matched.
    pub fn policy(&self) -> &str {
        match self {
            Decision::DeniedByPolicy(name) => name,
            Decision::Allow | Decision::NotAllowed => "",
        }
    }
}

/// What is being authorized: an HTTP request, or an opaque TCP connection.
#[derive(Clone, Copy, Debug)]
pub enum Operation<'a> {
    Http { method: &'a Method, path: &'a str },
    Tcp,
}

/// The compiled policies of one snapshot.
#[derive(Debug)]
pub struct Authorizer {
    deny: Vec<Policy>,
    allow: Vec<Policy>,
}

#[derive(Debug)]
struct Policy {
    name: Arc<str>,
    action: AuthorizationAction,
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    from: Vec<IdentityPattern>,
    to: Vec<OperationMatch>,
}

#[derive(Debug)]
enum IdentityPattern {
    Exact(String),
    Prefix(String),
}

#[derive(Debug)]
struct OperationMatch {
    paths: Vec<PathPattern>,
    methods: Vec<Method>,
}

#[derive(Debug)]
enum PathPattern {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
}

impl Authorizer {
    /// Compiles `policies` (`authorization[i]` in errors); `None` when there are none, so
    /// a workload without policies pays nothing per request.
    pub fn compile(policies: &[AuthorizationPolicySpec]) -> Result<Option<Self>, ConfigError> {
        if policies.is_empty() {
            return Ok(None);
        }
        let mut authorizer = Authorizer {
            deny: Vec::new(),
            allow: Vec::new(),
        };
        for (i, spec) in policies.iter().enumerate() {
            let path = format!("authorization[{i}]");
            let policy = Policy::compile(&path, spec)?;
            match spec.action {
                AuthorizationAction::Deny => authorizer.deny.push(policy),
                AuthorizationAction::Allow => authorizer.allow.push(policy),
            }
        }
        Ok(Some(authorizer))
    }

    /// Decides on `operation` by a client that proved `client_id` (`None` without a mesh
    /// certificate).
    pub fn decide(&self, client_id: Option<&str>, operation: Operation<'_>) -> Decision {
        let normalized;
        let operation = match operation {
            Operation::Http { method, path } => {
                normalized = normalize_path(path);
                Operation::Http {
                    method,
                    path: &normalized,
                }
            }
            Operation::Tcp => Operation::Tcp,
        };
        if let Some(policy) = self
            .deny
            .iter()
            .find(|policy| policy.matches(client_id, operation))
        {
            return Decision::DeniedByPolicy(policy.name.clone());
        }
        if self.allow.is_empty()
            || self
                .allow
                .iter()
                .any(|policy| policy.matches(client_id, operation))
        {
            Decision::Allow
        } else {
            Decision::NotAllowed
        }
    }
}

impl Policy {
    fn compile(path: &str, spec: &AuthorizationPolicySpec) -> Result<Self, ConfigError> {
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(r, rule)| Rule::compile(&format!("{path}.rules[{r}]"), rule))
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            name: Arc::from(spec.name.as_str()),
            action: spec.action,
            rules,
        })
    }

    fn matches(&self, client_id: Option<&str>, operation: Operation<'_>) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.matches(self.action, client_id, operation))
    }
}

impl Rule {
    fn compile(path: &str, spec: &AuthorizationRuleSpec) -> Result<Self, ConfigError> {
        let from = spec
            .from
            .iter()
            .enumerate()
            .map(|(k, id)| IdentityPattern::compile(&format!("{path}.from[{k}]"), id))
            .collect::<Result<_, _>>()?;
        let to = spec
            .to
            .iter()
            .enumerate()
            .map(|(k, op)| OperationMatch::compile(&format!("{path}.to[{k}]"), op))
            .collect::<Result<_, _>>()?;
        Ok(Rule { from, to })
    }

    fn matches(
        &self,
        action: AuthorizationAction,
        client_id: Option<&str>,
        operation: Operation<'_>,
    ) -> bool {
        let source = self.from.is_empty()
            || client_id.is_some_and(|id| self.from.iter().any(|pattern| pattern.matches(id)));
        if !source {
            return false;
        }
        if self.to.is_empty() {
            return true;
        }
        match operation {
            Operation::Http { method, path } => self.to.iter().any(|op| op.matches(method, path)),
            // A connection cannot show a path or method: fail closed either way.
            Operation::Tcp => action == AuthorizationAction::Deny,
        }
    }
}

impl IdentityPattern {
    fn compile(path: &str, id: &str) -> Result<Self, ConfigError> {
        if !id.starts_with("spiffe://") || id.len() == "spiffe://".len() {
            return Err(error(path, format!("expected a SPIFFE id, got {id:?}")));
        }
        match id.find('*') {
            None => Ok(IdentityPattern::Exact(id.to_owned())),
            Some(at) if at == id.len() - 1 => Ok(IdentityPattern::Prefix(id[..at].to_owned())),
            Some(_) => Err(error(path, "expected \"*\" only at the end")),
        }
    }

    fn matches(&self, id: &str) -> bool {
        match self {
            IdentityPattern::Exact(exact) => id == exact,
            IdentityPattern::Prefix(prefix) => id.starts_with(prefix.as_str()),
        }
    }
}

impl OperationMatch {
    fn compile(path: &str, spec: &AuthorizationOperationSpec) -> Result<Self, ConfigError> {
        let paths = spec
            .paths
            .iter()
            .enumerate()
            .map(|(k, p)| PathPattern::compile(&format!("{path}.paths[{k}]"), p))
            .collect::<Result<_, _>>()?;
        let methods = spec
            .methods
            .iter()
            .enumerate()
            .map(|(k, m)| {
                Method::from_bytes(m.as_bytes()).map_err(|_| {
                    error(
                        &format!("{path}.methods[{k}]"),
                        format!("not a method: {m:?}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(OperationMatch { paths, methods })
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && (self.paths.is_empty() || self.paths.iter().any(|p| p.matches(path)))
    }
}

impl PathPattern {
    fn compile(path: &str, pattern: &str) -> Result<Self, ConfigError> {
        let stars = pattern.matches('*').count();
        let compiled = if pattern == "*" {
            PathPattern::Any
        } else if stars == 0 {
            PathPattern::Exact(pattern.to_owned())
        } else if stars == 1 && pattern.ends_with('*') {
            PathPattern::Prefix(pattern[..pattern.len() - 1].to_owned())
        } else if stars == 1 && pattern.starts_with('*') {
            PathPattern::Suffix(pattern[1..].to_owned())
        } else {
            return Err(error(
                path,
                format!("expected at most one \"*\", at the start or the end, got {pattern:?}"),
            ));
        };
        if let PathPattern::Exact(p) | PathPattern::Prefix(p) = &compiled {
            if !p.starts_with('/') {
                return Err(error(
                    path,
                    format!("expected a path starting with \"/\", got {pattern:?}"),
                ));
            }
        }
        Ok(compiled)
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Any => true,
            PathPattern::Exact(exact) => path == exact,
            PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathPattern::Suffix(suffix) => path.ends_with(suffix.as_str()),
        }
    }
}

fn error(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The path a policy is matched against: the request path without its query, with
/// percent-encoded unreserved characters decoded, `.` and `..` segments resolved and
/// repeated slashes merged, so `/api/../admin`, `//admin` and `/%61dmin` are all
/// `/admin` (the workload would serve them as that). Encoded slashes stay encoded.
/// Borrows when the path is already normal (the common case).
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let needs_work = path.contains('%')
        || path.contains("//")
        || path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        || !path.starts_with('/');
    if !needs_work {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut normal = String::with_capacity(decoded.len() + 1);
    for segment in &segments {
        normal.push('/');
        normal.push_str(segment);
    }
    // A trailing slash (or a trailing `.`/`..` segment) names a directory: keep it.
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    if normal.is_empty() || trailing {
        normal.push('/');
    }
    Cow::Owned(normal)
}

/// Decodes `%XX` where XX is an unreserved character (RFC 3986 2.3); other escapes
/// (`%2F` above all) stay as they were, upper-cased.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let byte = (hi * 16 + lo) as u8;
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                    out.push(byte as char);
                } else {
                    out.push('%');
                    out.push_str(&path[i + 1..i + 3].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        // Copy one whole UTF-8 character.
        let ch = path[i..].chars().next().expect("inside the string");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}
