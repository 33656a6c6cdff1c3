//! SPIFFE ids (<https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md>):
//! `spiffe://<trust-domain>/<path>`. Workloads of the mesh are
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`.

use std::fmt;

use crate::error::{Error, Result};

pub const SCHEME: &str = "spiffe://";

/// The SPIFFE limit on a whole id, in bytes.
const MAX_ID_LENGTH: usize = 2048;
/// The SPIFFE limit on a trust domain name, in bytes.
const MAX_TRUST_DOMAIN_LENGTH: usize = 255;

/// A validated SPIFFE id. Comparison is exact (ids are case sensitive in their path, and
/// the trust domain is lower case by construction).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    uri: String,
    /// Byte offset of the path (its leading `/`), or `uri.len()` for a trust domain id.
    path_start: usize,
}

impl SpiffeId {
    /// Parses and validates `spiffe://trust-domain[/path]`.
    pub fn parse(uri: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid(format!("SPIFFE id {uri:?}: {why}"));
        if uri.len() > MAX_ID_LENGTH {
            return Err(bad(&format!("longer than {MAX_ID_LENGTH} bytes")));
        }
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("expected it to start with spiffe://"))?;
        let (trust_domain, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        check_trust_domain(trust_domain).map_err(|e| bad(e.message()))?;
        check_path(path).map_err(|why| bad(&why))?;
        Ok(Self {
            uri: uri.to_string(),
            path_start: SCHEME.len() + trust_domain.len(),
        })
    }

    /// `spiffe://<trust_domain>/ns/<namespace>/sa/<service>`: the identity of a workload.
    pub fn workload(trust_domain: &str, namespace: &str, service: &str) -> Result<Self> {
        Self::parse(&format!(
            "{SCHEME}{trust_domain}/ns/{namespace}/sa/{service}"
        ))
    }

    /// `spiffe://<trust_domain>`: the id of the trust domain itself (its CA's name).
    pub fn trust_domain_id(trust_domain: &str) -> Result<Self> {
        Self::parse(&format!("{SCHEME}{trust_domain}"))
    }

    pub fn as_str(&self) -> &str {
        &self.uri
    }

    pub fn trust_domain(&self) -> &str {
        &self.uri[SCHEME.len()..self.path_start]
    }

    /// The path with its leading `/`; empty for a trust domain id.
    pub fn path(&self) -> &str {
        &self.uri[self.path_start..]
    }

    /// `(namespace, service)` for an id of the mesh's workload form `/ns/<ns>/sa/<name>`.
    pub fn workload_name(&self) -> Option<(&str, &str)> {
        let mut segments = self.path().strip_prefix('/')?.split('/');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(namespace), Some("sa"), Some(service), None) => {
                Some((namespace, service))
            }
            _ => None,
        }
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

impl fmt::Debug for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpiffeId({})", self.uri)
    }
}

/// A trust domain name: 1-255 of lower case letters, digits, `.`, `-`, `_`.
pub fn check_trust_domain(trust_domain: &str) -> Result<()> {
    if trust_domain.is_empty() {
        return Err(Error::invalid("the trust domain is empty"));
    }
    if trust_domain.len() > MAX_TRUST_DOMAIN_LENGTH {
        return Err(Error::invalid(format!(
            "the trust domain is longer than {MAX_TRUST_DOMAIN_LENGTH} bytes"
        )));
    }
    if let Some(c) = trust_domain
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
    {
        return Err(Error::invalid(format!(
            "the trust domain has {c:?}; expected lower case letters, digits, \".\", \"-\" and \"_\""
        )));
    }
    Ok(())
}

/// A path: empty, or `/segment` repeated; segments are non-empty, not `.` or `..`, of
/// letters, digits, `.`, `-`, `_`.
fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err("the path has an empty segment (\"//\" or a trailing \"/\")".into()),
            "." | ".." => return Err(format!("the path has a {segment:?} segment")),
            _ => {}
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_'))
        {
            return Err(format!(
                "the path has {c:?}; expected letters, digits, \".\", \"-\" and \"_\""
            ));
        }
    }
    Ok(())
}
