use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[test]
fn classify_recognises_http1_methods() {
    assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Detected::Http1));
    assert_eq!(classify(b"POST /x HTTP/1.1\r\n"), Some(Detected::Http1));
    assert_eq!(
        classify(b"CONNECT orders:80 HTTP/1.1\r\n"),
        Some(Detected::Http1)
    );
    assert_eq!(classify(b"OPTIONS "), Some(Detected::Http1));
}

#[test]
fn classify_waits_on_ambiguous_prefixes() {
    assert_eq!(classify(b""), None);
    assert_eq!(classify(b"G"), None);
    assert_eq!(classify(b"GET"), None);
    assert_eq!(
        classify(b"P"),
        None,
        "POST, PUT, PATCH and the h2 preface all start with P"
    );
    assert_eq!(classify(b"PRI * HTTP/2.0\r\n"), None);
}

#[test]
fn classify_recognises_the_h2_preface() {
    assert_eq!(classify(H2_PREFACE), Some(Detected::Http2));
    let mut more = H2_PREFACE.to_vec();
    more.extend_from_slice(b"\x00\x00\x12\x04");
    assert_eq!(classify(&more), Some(Detected::Http2));
}

#[test]
fn classify_treats_other_bytes_as_opaque() {
    assert_eq!(
        classify(b"\x16\x03\x01"),
        Some(Detected::Opaque),
        "a TLS ClientHello"
    );
    assert_eq!(
        classify(b"SET key value\r\n"),
        Some(Detected::Opaque),
        "Redis inline"
    );
    assert_eq!(
        classify(b"get key\r\n"),
        Some(Detected::Opaque),
        "methods are case-sensitive"
    );
    assert_eq!(classify(b"GETX"), Some(Detected::Opaque));
    assert_eq!(
        classify(b"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\nXX"),
        Some(Detected::Opaque)
    );
}

#[tokio::test]
async fn detect_reads_a_preface_split_across_writes() {
    let (mut client, mut server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        client.write_all(&H2_PREFACE[..5]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(&H2_PREFACE[5..]).await.unwrap();
        client
    });
    let (detected, prefix) = detect(&mut server, Duration::from_secs(5)).await.unwrap();
    assert_eq!(detected, Detected::Http2);
    assert_eq!(&prefix[..], H2_PREFACE);
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn detect_falls_back_to_opaque_when_the_client_is_silent() {
    let (_client, mut server) = tokio::io::duplex(64);
    let started = std::time::Instant::now();
    let (detected, prefix) = detect(&mut server, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(detected, Detected::Opaque);
    assert!(prefix.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn detect_treats_an_undecided_prefix_then_close_as_opaque() {
    let (mut client, mut server) = tokio::io::duplex(64);
    client.write_all(b"GE").await.unwrap();
    drop(client);
    let (detected, prefix) = detect(&mut server, Duration::from_secs(5)).await.unwrap();
    assert_eq!(detected, Detected::Opaque);
    assert_eq!(&prefix[..], b"GE");
}

#[tokio::test]
async fn detect_reports_a_close_without_bytes() {
    let (client, mut server) = tokio::io::duplex(64);
    drop(client);
    let err = detect(&mut server, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn rewind_replays_the_prefix_then_the_stream() {
    let (mut client, mut server) = tokio::io::duplex(64);
    client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let (detected, prefix) = detect(&mut server, Duration::from_secs(5)).await.unwrap();
    assert_eq!(detected, Detected::Http1);
    client.write_all(b"host: x\r\n\r\n").await.unwrap();
    drop(client);

    let mut rewound = Rewind::new(prefix, server);
    let mut all = Vec::new();
    rewound.read_to_end(&mut all).await.unwrap();
    assert_eq!(&all[..], b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
}

#[tokio::test]
async fn rewind_passes_writes_through() {
    let (mut client, server) = tokio::io::duplex(64);
    let mut rewound = Rewind::new(Bytes::from_static(b"ignored"), server);
    rewound.write_all(b"banner\r\n").await.unwrap();
    let mut got = [0u8; 8];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"banner\r\n");
}
