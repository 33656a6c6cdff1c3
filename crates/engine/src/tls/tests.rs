use super::*;

#[test]
fn a_client_hello_is_recognised_from_its_first_three_bytes() {
    assert_eq!(is_client_hello(b""), None);
    assert_eq!(is_client_hello(&[0x16]), None);
    assert_eq!(is_client_hello(&[0x16, 0x03]), None);
    assert_eq!(is_client_hello(&[0x16, 0x03, 0x01, 0x02, 0x00]), Some(true));
    assert_eq!(is_client_hello(&[0x16, 0x03, 0x03]), Some(true));
    assert_eq!(is_client_hello(&[0x16, 0x03, 0x07]), Some(false));
    assert_eq!(is_client_hello(&[0x16, 0x02]), Some(false));
    assert_eq!(is_client_hello(b"GET / HTTP/1.1\r\n"), Some(false));
    assert_eq!(is_client_hello(b"PRI * HTTP/2.0"), Some(false));
}

#[test]
fn ingress_config_errors_name_the_field_and_never_echo_the_file() {
    let dir = std::env::temp_dir().join(format!("mesh-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.pem");
    let err =
        ingress_server_config(&missing, &missing, Protocol::Auto, "inbound[0].tls").unwrap_err();
    assert_eq!(err.path, "inbound[0].tls.certificate");
    assert!(err.message.contains("cannot read"), "{}", err.message);

    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA@@@\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err =
        ingress_server_config(&garbage, &garbage, Protocol::Auto, "inbound[2].tls").unwrap_err();
    assert_eq!(err.path, "inbound[2].tls.certificate");
    assert!(!err.message.contains("c2VjcmV0"), "{}", err.message);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mesh_server_names_come_from_workload_ids_only() {
    let id = |s: &str| SpiffeId::parse(s).unwrap();
    assert_eq!(
        mesh_server_name(&id("spiffe://mesh.local/ns/shop/sa/Web")).as_deref(),
        Some("web.shop.identity.mesh.local")
    );
    assert_eq!(
        mesh_server_name(&id("spiffe://mesh.local/custom/path")),
        None
    );
}
