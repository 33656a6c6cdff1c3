//! Request and response rewriting between the downstream and the upstream hop: hop-by-hop
//! headers (RFC 9110 §7.6.1), origin-form vs absolute URIs, Host vs `:authority`.

use http::header::{
    HeaderName, HeaderValue, CONNECTION, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    TRANSFER_ENCODING, UPGRADE,
};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{request, response, HeaderMap, Method, Version};

use super::HttpVersion;

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The request's target could not be turned into what the upstream needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadAuthority;

/// What the client addressed: the URI's authority (HTTP/2 `:authority`, HTTP/1
/// absolute-form) or else the Host header. Userinfo (`user@host`) is not part of it.
pub(crate) fn request_authority(parts: &request::Parts) -> Option<&str> {
    let raw = match parts.uri.authority() {
        Some(authority) => authority.as_str(),
        None => parts.headers.get(HOST)?.to_str().ok()?,
    };
    let host = raw.rsplit('@').next().unwrap_or(raw);
    if host.is_empty() {
        None
    } else {
        Some(host)
    }
}

/// Does this HTTP/1 request ask to take over its connection (WebSocket upgrade, CONNECT)?
pub(crate) fn upgrade_requested<B>(req: &http::Request<B>) -> bool {
    req.version() <= Version::HTTP_11
        && (req.method() == Method::CONNECT
            || (req.headers().contains_key(UPGRADE) && connection_has(req.headers(), "upgrade")))
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Removes headers that describe one connection only. With `keep_upgrade`, `Upgrade` and
/// `Connection: upgrade` survive so an upgrade can be relayed.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    if headers.contains_key(CONNECTION) {
        // Connection lists more per-hop headers by name. Values are cheap (refcounted) clones.
        let listed: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
        headers.remove(CONNECTION);
        for value in &listed {
            let Ok(value) = value.to_str() else { continue };
            for name in value.split(',').map(str::trim) {
                let protected = name.eq_ignore_ascii_case("te")
                    || (keep_upgrade && name.eq_ignore_ascii_case("upgrade"));
                if !name.is_empty() && !protected {
                    headers.remove(name);
                }
            }
        }
    }
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(TRANSFER_ENCODING);
    headers.remove(PROXY_AUTHORIZATION);
    headers.remove(PROXY_AUTHENTICATE);
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
    // TE is per hop too, but `TE: trailers` announces trailer support end to end (gRPC needs it).
    if let Some(te) = headers.get(TE) {
        let trailers = te.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
        if trailers {
            headers.insert(TE, HeaderValue::from_static("trailers"));
        } else {
            headers.remove(TE);
        }
    }
}

/// Shapes a request for the upstream hop. HTTP/1: origin-form URI and a Host header (taken
/// from an absolute-form URI when there was one). HTTP/2: absolute URI (`:scheme`,
/// `:authority` from the URI, else Host, else `fallback`) and no Host header. `fallback` is
/// only called for a request that named no authority at all.
pub(crate) fn prepare_request<F>(
    parts: &mut request::Parts,
    upstream: HttpVersion,
    fallback: F,
    keep_upgrade: bool,
) -> Result<(), BadAuthority>
where
    F: FnOnce() -> Option<Authority>,
{
    strip_hop_by_hop(&mut parts.headers, keep_upgrade);
    match upstream {
        HttpVersion::Http1 => {
            if let Some(authority) = parts.uri.authority() {
                let host = HeaderValue::from_str(authority.as_str()).map_err(|_| BadAuthority)?;
                parts.headers.insert(HOST, host);
                if parts.method != Method::CONNECT {
                    parts.uri = origin_form(&parts.uri);
                }
            } else if !parts.headers.contains_key(HOST) {
                let authority = fallback().ok_or(BadAuthority)?;
                let host = HeaderValue::from_str(authority.as_str()).map_err(|_| BadAuthority)?;
                parts.headers.insert(HOST, host);
            }
            parts.version = Version::HTTP_11;
        }
        HttpVersion::Http2 => {
            if parts.uri.scheme().is_none() || parts.uri.authority().is_none() {
                let authority = match parts.headers.get(HOST) {
                    Some(host) => Authority::try_from(host.as_bytes()).map_err(|_| BadAuthority)?,
                    None => fallback().ok_or(BadAuthority)?,
                };
                let mut uri = http::uri::Parts::default();
                uri.scheme = Some(parts.uri.scheme().cloned().unwrap_or(Scheme::HTTP));
                uri.authority = Some(authority);
                uri.path_and_query = Some(
                    parts
                        .uri
                        .path_and_query()
                        .cloned()
                        .unwrap_or_else(|| PathAndQuery::from_static("/")),
                );
                parts.uri = Uri::from_parts(uri).map_err(|_| BadAuthority)?;
            }
            parts.headers.remove(HOST);
            parts.version = Version::HTTP_2;
        }
    }
    Ok(())
}

/// `/path?query` of a URI (`/` when it has none).
fn origin_form(uri: &Uri) -> Uri {
    match uri.path_and_query() {
        Some(path) => Uri::from(path.clone()),
        None => Uri::from_static("/"),
    }
}

/// Shapes an upstream response for the downstream hop.
pub(crate) fn prepare_response(
    parts: &mut response::Parts,
    downstream: HttpVersion,
    upgraded: bool,
) {
    strip_hop_by_hop(&mut parts.headers, upgraded);
    parts.version = match downstream {
        HttpVersion::Http1 => Version::HTTP_11,
        HttpVersion::Http2 => Version::HTTP_2,
    };
}
