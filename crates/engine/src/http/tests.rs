use http::header::{CONNECTION, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::uri::Authority;
use http::{HeaderValue, Method, Request, Response, Version};

use super::headers::{
    prepare_request, prepare_response, request_authority, strip_hop_by_hop, upgrade_requested,
};
use super::outbound::split_authority;
use super::HttpVersion;

fn parts(req: Request<()>) -> http::request::Parts {
    req.into_parts().0
}

fn no_fallback() -> Option<Authority> {
    None
}

#[test]
fn authority_comes_from_the_uri_then_host() {
    let absolute = parts(
        Request::get("http://orders.default:80/api")
            .header(HOST, "ignored")
            .body(())
            .unwrap(),
    );
    assert_eq!(request_authority(&absolute), Some("orders.default:80"));
    let origin = parts(
        Request::get("/api")
            .header(HOST, "orders")
            .body(())
            .unwrap(),
    );
    assert_eq!(request_authority(&origin), Some("orders"));
    let userinfo = parts(Request::get("http://user:pw@orders/").body(()).unwrap());
    assert_eq!(request_authority(&userinfo), Some("orders"));
    let none = parts(Request::get("/").body(()).unwrap());
    assert_eq!(request_authority(&none), None);
}

#[test]
fn hop_by_hop_headers_are_removed() {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        CONNECTION,
        HeaderValue::from_static("keep-alive, x-per-hop"),
    );
    headers.insert("x-per-hop", HeaderValue::from_static("1"));
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
    headers.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
    headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(TE, HeaderValue::from_static("gzip"));
    headers.insert("x-end-to-end", HeaderValue::from_static("kept"));
    strip_hop_by_hop(&mut headers, false);
    let names: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
    assert_eq!(names, ["x-end-to-end"]);
}

#[test]
fn te_trailers_survives() {
    let mut headers = http::HeaderMap::new();
    headers.insert(TE, HeaderValue::from_static("deflate, trailers"));
    headers.insert(CONNECTION, HeaderValue::from_static("TE"));
    strip_hop_by_hop(&mut headers, false);
    assert_eq!(headers.get(TE).unwrap(), "trailers");
}

#[test]
fn an_upgrade_is_kept_when_relayed() {
    let req = Request::get("/chat")
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, "websocket")
        .header(HOST, "chat")
        .body(())
        .unwrap();
    assert!(upgrade_requested(&req));
    let mut parts = parts(req);
    prepare_request(&mut parts, HttpVersion::Http1, no_fallback, true).unwrap();
    assert_eq!(parts.headers.get(UPGRADE).unwrap(), "websocket");
    assert_eq!(parts.headers.get(CONNECTION).unwrap(), "upgrade");
}

#[test]
fn connect_is_an_upgrade_on_http1_only() {
    let connect = Request::builder()
        .method(Method::CONNECT)
        .uri("orders:80")
        .body(())
        .unwrap();
    assert!(upgrade_requested(&connect));
    let plain = Request::get("/").header(HOST, "orders").body(()).unwrap();
    assert!(!upgrade_requested(&plain));
    let h2 = Request::get("/")
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .version(Version::HTTP_2);
    assert!(!upgrade_requested(&h2.body(()).unwrap()));
}

#[test]
fn absolute_form_becomes_origin_form_with_host_for_http1() {
    let mut parts = parts(
        Request::get("http://orders/api/items?x=1")
            .header(HOST, "stale")
            .body(())
            .unwrap(),
    );
    prepare_request(&mut parts, HttpVersion::Http1, no_fallback, false).unwrap();
    assert_eq!(parts.uri, "/api/items?x=1");
    assert_eq!(parts.headers.get(HOST).unwrap(), "orders");
    assert_eq!(parts.version, Version::HTTP_11);
}

#[test]
fn http2_requests_get_a_host_header_for_http1() {
    let mut parts = parts(
        Request::get("http://orders:80/x")
            .version(Version::HTTP_2)
            .body(())
            .unwrap(),
    );
    prepare_request(&mut parts, HttpVersion::Http1, no_fallback, false).unwrap();
    assert_eq!(parts.uri, "/x");
    assert_eq!(parts.headers.get(HOST).unwrap(), "orders:80");
}

#[test]
fn http1_requests_get_an_absolute_uri_for_http2() {
    let mut parts = parts(
        Request::post("/pkg.Svc/Call")
            .header(HOST, "grpc.default:80")
            .body(())
            .unwrap(),
    );
    prepare_request(&mut parts, HttpVersion::Http2, no_fallback, false).unwrap();
    assert_eq!(parts.uri, "http://grpc.default:80/pkg.Svc/Call");
    assert!(parts.headers.get(HOST).is_none());
    assert_eq!(parts.version, Version::HTTP_2);
}

#[test]
fn the_fallback_authority_fills_in_when_none_was_given() {
    let mut parts = parts(
        Request::get("/")
            .version(Version::HTTP_10)
            .body(())
            .unwrap(),
    );
    let fallback = || Some(Authority::from_static("orders:80"));
    prepare_request(&mut parts, HttpVersion::Http1, fallback, false).unwrap();
    assert_eq!(parts.headers.get(HOST).unwrap(), "orders:80");

    let mut parts2 = self::parts(Request::get("/").body(()).unwrap());
    assert!(prepare_request(&mut parts2, HttpVersion::Http2, no_fallback, false).is_err());
}

#[test]
fn responses_lose_hop_by_hop_headers_and_take_the_downstream_version() {
    let response = Response::builder()
        .header(TRANSFER_ENCODING, "chunked")
        .header(CONNECTION, "close")
        .header("grpc-status", "0")
        .body(())
        .unwrap();
    let (mut parts, ()) = response.into_parts();
    prepare_response(&mut parts, HttpVersion::Http2, false);
    assert!(parts.headers.get(TRANSFER_ENCODING).is_none());
    assert!(parts.headers.get(CONNECTION).is_none());
    assert_eq!(parts.headers.get("grpc-status").unwrap(), "0");
    assert_eq!(parts.version, Version::HTTP_2);
}

#[test]
fn authorities_split_into_host_and_port() {
    assert_eq!(
        split_authority("Example.com"),
        Some(("example.com".into(), 80))
    );
    assert_eq!(
        split_authority("example.com:8080"),
        Some(("example.com".into(), 8080))
    );
    assert_eq!(split_authority("[::1]:9000"), Some(("::1".into(), 9000)));
    assert_eq!(split_authority("127.0.0.1"), Some(("127.0.0.1".into(), 80)));
    assert_eq!(split_authority("bad host"), None);
}

#[test]
fn connection_keep_alive_alone_goes_and_everything_else_stays() {
    let mut headers = http::HeaderMap::new();
    headers.insert(CONNECTION, HeaderValue::from_static("Keep-Alive"));
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("x-close", HeaderValue::from_static("kept"));
    strip_hop_by_hop(&mut headers, false);
    let mut names: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["content-type", "x-close"]);
}

#[test]
fn every_connection_value_names_headers_to_remove() {
    let mut headers = http::HeaderMap::new();
    headers.append(CONNECTION, HeaderValue::from_static("close"));
    headers.append(CONNECTION, HeaderValue::from_static("x-a , X-B"));
    headers.insert("x-a", HeaderValue::from_static("1"));
    headers.insert("x-b", HeaderValue::from_static("2"));
    headers.insert("x-c", HeaderValue::from_static("3"));
    strip_hop_by_hop(&mut headers, false);
    let names: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
    assert_eq!(names, ["x-c"]);
}

#[test]
fn te_trailers_in_a_later_value_survives() {
    let mut headers = http::HeaderMap::new();
    headers.append(TE, HeaderValue::from_static("gzip"));
    headers.append(TE, HeaderValue::from_static("trailers"));
    strip_hop_by_hop(&mut headers, false);
    let values: Vec<&HeaderValue> = headers.get_all(TE).iter().collect();
    assert_eq!(values, [HeaderValue::from_static("trailers")]);
}

#[test]
fn a_kept_request_head_comes_back_whole_and_owns_its_bytes() {
    use super::replay::{ReplayedBody, RequestBody};
    use super::retry::Head;

    let mut secret = HeaderValue::from_static("Bearer abc");
    secret.set_sensitive(true);
    let original = parts(
        Request::post("http://orders.default:80/api/items?x=1&y=%20")
            .header("x-one", "1")
            .header("x-many", "a")
            .header("x-many", "b")
            .header("authorization", secret)
            .header("x-bytes", HeaderValue::from_bytes(b"caf\xe9").unwrap())
            .body(())
            .unwrap(),
    );
    let head = Head::of(&original);
    let again = head.request(RequestBody::Replay(Box::new(ReplayedBody::empty())));
    assert_eq!(again.method(), Method::POST);
    assert_eq!(again.uri(), &original.uri);
    assert_eq!(again.version(), original.version);
    assert_eq!(again.headers(), &original.headers);
    let values: Vec<_> = again.headers().get_all("x-many").iter().collect();
    assert_eq!(values, ["a", "b"]);
    assert!(again.headers()["authorization"].is_sensitive());
    assert!(!again.headers()["x-one"].is_sensitive());
    // Twice: the head is kept for every retry.
    let third = head.request(RequestBody::Replay(Box::new(ReplayedBody::empty())));
    assert_eq!(third.headers(), &original.headers);
    assert_eq!(third.uri().path(), "/api/items");
}
