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

/// Bits of [`hop_by_hop_bit`]: which per-hop headers a message carries.
const HOP_CONNECTION: u8 = 1;
const HOP_KEEP_ALIVE: u8 = 1 << 1;
const HOP_PROXY_CONNECTION: u8 = 1 << 2;
const HOP_TRANSFER_ENCODING: u8 = 1 << 3;
const HOP_PROXY_AUTHORIZATION: u8 = 1 << 4;
const HOP_PROXY_AUTHENTICATE: u8 = 1 << 5;
const HOP_UPGRADE: u8 = 1 << 6;
const HOP_TE: u8 = 1 << 7;

fn hop_by_hop_bit(name: &HeaderName) -> u8 {
    if name == CONNECTION {
        HOP_CONNECTION
    } else if name == KEEP_ALIVE {
        HOP_KEEP_ALIVE
    } else if name == PROXY_CONNECTION {
        HOP_PROXY_CONNECTION
    } else if name == TRANSFER_ENCODING {
        HOP_TRANSFER_ENCODING
    } else if name == PROXY_AUTHORIZATION {
        HOP_PROXY_AUTHORIZATION
    } else if name == PROXY_AUTHENTICATE {
        HOP_PROXY_AUTHENTICATE
    } else if name == UPGRADE {
        HOP_UPGRADE
    } else if name == TE {
        HOP_TE
    } else {
        0
    }
}

/// Connection tokens that name no other header to remove (`keep-alive` is removed anyway).
fn names_no_extra_header(token: &str) -> bool {
    token.is_empty()
        || token.eq_ignore_ascii_case("keep-alive")
        || token.eq_ignore_ascii_case("close")
        || token.eq_ignore_ascii_case("upgrade")
        || token.eq_ignore_ascii_case("te")
}

/// Removes headers that describe one connection only. With `keep_upgrade`, `Upgrade` and
/// `Connection: upgrade` survive so an upgrade can be relayed.
///
/// Runs on every request and response: one scan finds which per-hop headers are present,
/// and only those are looked up again (most messages have none, or `Connection: keep-alive`).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let present = headers
        .keys()
        .fold(0, |bits, name| bits | hop_by_hop_bit(name));
    if present & HOP_CONNECTION != 0 {
        // Connection lists more per-hop headers by name; usually it lists none.
        let names_others = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| !names_no_extra_header(token.trim()));
        if names_others {
            // Values are cheap (refcounted) clones.
            let listed: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
            for value in &listed {
                let Ok(value) = value.to_str() else { continue };
                for name in value.split(',').map(str::trim) {
                    if !names_no_extra_header(name) {
                        headers.remove(name);
                    }
                }
            }
        }
        headers.remove(CONNECTION);
    }
    if present & HOP_KEEP_ALIVE != 0 {
        headers.remove(&KEEP_ALIVE);
    }
    if present & HOP_PROXY_CONNECTION != 0 {
        headers.remove(&PROXY_CONNECTION);
    }
    if present & HOP_TRANSFER_ENCODING != 0 {
        headers.remove(TRANSFER_ENCODING);
    }
    if present & HOP_PROXY_AUTHORIZATION != 0 {
        headers.remove(PROXY_AUTHORIZATION);
    }
    if present & HOP_PROXY_AUTHENTICATE != 0 {
        headers.remove(PROXY_AUTHENTICATE);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else if present & HOP_UPGRADE != 0 {
        headers.remove(UPGRADE);
    }
    // TE is per hop too, but `TE: trailers` announces trailer support end to end (gRPC needs it).
    if present & HOP_TE != 0 {
        let trailers = headers.get_all(TE).iter().any(|te| {
            te.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
            })
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
