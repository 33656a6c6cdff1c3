//! Unit tests: real keys, real signatures, chains checked by webpki (the verifier rustls
//! uses) and fields read back with x509-parser.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateSigningRequestDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::files::{self, CA_DIR, CERT_FILE, KEY_FILE};
use crate::*;

const TD: &str = "mesh.local";
const HOUR: Duration = Duration::from_secs(3600);

/// A fixed "now" (2026-11-22T00:00:00Z) so expiry arithmetic is exact.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_305_600)
}

fn root() -> CertificateAuthority {
    CertificateAuthority::create_root(TD, ROOT_VALIDITY, now()).unwrap()
}

fn bundle_of(cas: &[&CertificateAuthority]) -> TrustBundle {
    let mut bundle = TrustBundle::new(TD).unwrap();
    for ca in cas {
        for root in ca.roots() {
            bundle.add(root).unwrap();
        }
    }
    bundle
}

fn orders() -> SpiffeId {
    SpiffeId::workload(TD, "default", "orders").unwrap()
}

fn csr_for(id: &SpiffeId) -> (Arc<WorkloadKey>, String) {
    let key = Arc::new(WorkloadKey::generate().unwrap());
    let csr = key.csr_pem(id).unwrap();
    (key, csr)
}

fn x509(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "mesh-identity-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

// ---- SPIFFE ids ----

#[test]
fn spiffe_ids_parse_and_validate() {
    let id = SpiffeId::workload("mesh.local", "shop", "orders").unwrap();
    assert_eq!(id.as_str(), "spiffe://mesh.local/ns/shop/sa/orders");
    assert_eq!(id.trust_domain(), "mesh.local");
    assert_eq!(id.path(), "/ns/shop/sa/orders");
    assert_eq!(id.workload_name(), Some(("shop", "orders")));
    let domain = SpiffeId::trust_domain_id("mesh.local").unwrap();
    assert_eq!(domain.path(), "");
    assert_eq!(domain.workload_name(), None);
    assert_eq!(
        SpiffeId::parse("spiffe://td/other/path")
            .unwrap()
            .workload_name(),
        None
    );

    for bad in [
        "http://mesh.local/ns/a/sa/b",
        "spiffe://",
        "spiffe://Mesh.Local/ns/a",
        "spiffe://mesh.local/ns//sa/b",
        "spiffe://mesh.local/ns/a/",
        "spiffe://mesh.local/ns/../sa/b",
        "spiffe://mesh.local/ns/a b",
        "spiffe://mesh local/ns/a",
        "spiffe://user@mesh.local/ns/a",
        "spiffe://mesh.local:8080/ns/a",
    ] {
        let err = SpiffeId::parse(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        assert!(err.message().contains(bad), "{bad}: {err}");
    }
    assert!(SpiffeId::parse(&format!("spiffe://td/{}", "a".repeat(2100))).is_err());
}

// ---- the root ----

#[test]
fn created_root_is_a_p256_ca_named_for_its_trust_domain() {
    let ca = root();
    let cert = x509(ca.certificate());
    assert!(cert.is_ca());
    assert_eq!(cert.subject(), cert.issuer());
    let subject = cert.subject().to_string();
    assert!(subject.contains("CN=mesh.local root CA "), "{subject}");
    assert_ne!(
        subject,
        x509(root().certificate()).subject().to_string(),
        "unique names"
    );
    assert_eq!(
        cert.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
    );
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    assert_eq!(
        ca.info().spiffe_ids,
        vec!["spiffe://mesh.local".to_string()]
    );
    assert_eq!(ca.not_before(), now() - CLOCK_SKEW_ALLOWANCE);
    assert_eq!(ca.not_after(), now() + ROOT_VALIDITY);
    assert_eq!(ca.roots(), vec![ca.certificate().clone()]);
    assert!(cert.verify_signature(None).is_ok(), "self-signed");
    // Two roots never share a serial or a key.
    let other = root();
    assert_ne!(ca.info().serial, other.info().serial);
    assert_ne!(ca.info().public_key, other.info().public_key);
    assert_eq!(
        ca.info().serial.len(),
        32,
        "128-bit serial: {}",
        ca.info().serial
    );
}

#[test]
fn debug_output_never_shows_key_material() {
    let ca = root();
    let key = WorkloadKey::generate().unwrap();
    let text = format!("{ca:?} {key:?}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(!text.contains("MIG"), "{text}");
    assert!(
        ca.private_key_pem().contains("PRIVATE KEY"),
        "the check above can fail"
    );
}

// ---- signing ----

#[test]
fn signed_certificate_has_exactly_the_given_identity_and_verifies() {
    let ca = root();
    let bundle = bundle_of(&[&ca]);
    // The CSR asks for another identity; the CA ignores it.
    let asked = SpiffeId::workload(TD, "kube-system", "admin").unwrap();
    let (key, csr) = csr_for(&asked);
    let issued = ca.sign_csr(&csr, &orders(), 24 * HOUR, now()).unwrap();
    assert_eq!(issued.chain.len(), 1, "a root's leaf travels alone");
    assert_eq!(issued.spiffe_id, orders());

    let leaf = x509(&issued.chain[0]);
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "empty subject: the SAN must be critical");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, vec!["URI(spiffe://mesh.local/ns/default/sa/orders)"]);
    assert!(
        leaf.subject().iter_attributes().next().is_none(),
        "empty subject"
    );
    assert!(!leaf.is_ca());
    let bc = leaf.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca);
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign() && !ku.key_encipherment());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth && !eku.any);
    assert_eq!(leaf.public_key().raw, key.public_key_info().as_slice());
    assert_eq!(leaf.issuer(), x509(ca.certificate()).subject());
    assert!(leaf
        .verify_signature(Some(x509(ca.certificate()).public_key()))
        .is_ok());

    for role in [PeerRole::Server, PeerRole::Client] {
        let peer = bundle.verify_peer(&issued.chain, role, now()).unwrap();
        assert_eq!(peer.spiffe_id, orders());
        assert_eq!(peer.not_after, issued.not_after);
    }
}

#[test]
fn lifetime_and_skew_allowance_are_exact_and_clamped_to_the_ca() {
    let ca = root();
    let (_, csr) = csr_for(&orders());
    let issued = ca
        .sign_csr(&csr, &orders(), 60 * Duration::from_secs(1), now())
        .unwrap();
    assert_eq!(issued.not_after, now() + Duration::from_secs(60));
    assert_eq!(issued.not_before, now() - CLOCK_SKEW_ALLOWANCE);

    // Never beyond the CA's own notAfter.
    let late = ca.not_after() - HOUR;
    let issued = ca.sign_csr(&csr, &orders(), 24 * HOUR, late).unwrap();
    assert_eq!(issued.not_after, ca.not_after());

    let err = ca
        .sign_csr(&csr, &orders(), Duration::ZERO, now())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = ca
        .sign_csr(&csr, &orders(), HOUR, ca.not_after() + HOUR)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("expired"), "{err}");
}

#[test]
fn serials_are_random_per_certificate() {
    let ca = root();
    let (_, csr) = csr_for(&orders());
    let a = ca.sign_csr(&csr, &orders(), HOUR, now()).unwrap();
    let b = ca.sign_csr(&csr, &orders(), HOUR, now()).unwrap();
    assert_ne!(a.serial, b.serial);
    assert_eq!(a.serial.len(), 32);
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let ca = root();
    let bundle = bundle_of(&[&ca]);
    let (_, csr) = csr_for(&orders());
    let issued = ca
        .sign_csr(&csr, &orders(), 60 * Duration::from_secs(1), now())
        .unwrap();
    assert!(bundle
        .verify_peer(&issued.chain, PeerRole::Server, issued.not_after)
        .is_ok());
    let err = bundle
        .verify_peer(
            &issued.chain,
            PeerRole::Server,
            issued.not_after + Duration::from_secs(1),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Untrusted);
    assert!(
        err.message().contains("expired at 2026-11-22T00:01:00Z"),
        "{err}"
    );
    let err = bundle
        .verify_peer(
            &issued.chain,
            PeerRole::Client,
            issued.not_before - Duration::from_secs(1),
        )
        .unwrap_err();
    assert!(err.message().contains("not valid before"), "{err}");
}

#[test]
fn certificates_of_another_root_are_refused() {
    let ca = root();
    let stranger = root();
    let (_, csr) = csr_for(&orders());
    let issued = stranger.sign_csr(&csr, &orders(), HOUR, now()).unwrap();
    let err = bundle_of(&[&ca])
        .verify_peer(&issued.chain, PeerRole::Server, now())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Untrusted);
    assert!(err.message().contains("not issued by a root"), "{err}");
}

#[test]
fn csr_with_a_bad_signature_is_refused() {
    let ca = root();
    let (_, csr) = csr_for(&orders());
    let der = CertificateSigningRequestDer::from_pem_slice(csr.as_bytes()).unwrap();
    let len = der.as_ref().len();

    // The last byte is inside the signature; flipping it breaks the signature only.
    let mut tampered = der.as_ref().to_vec();
    tampered[len - 1] ^= 0x01;
    let pem = crate::x509::pem_encode("CERTIFICATE REQUEST", &tampered);
    let err = ca.sign_csr(&pem, &orders(), HOUR, now()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("signature does not verify"), "{err}");

    // A signed CSR whose public key was swapped for another: the signature no longer matches.
    let other = WorkloadKey::generate().unwrap().public_key_info();
    let own = crate::verify_csr(&csr).unwrap();
    let own_point = rcgen::PublicKeyData::der_bytes(&own).to_vec();
    let other_point = &other[other.len() - 65..];
    let mut swapped = der.as_ref().to_vec();
    let at = swapped
        .windows(65)
        .position(|w| w == own_point.as_slice())
        .unwrap();
    swapped[at..at + 65].copy_from_slice(other_point);
    let pem = crate::x509::pem_encode("CERTIFICATE REQUEST", &swapped);
    let err = ca.sign_csr(&pem, &orders(), HOUR, now()).unwrap_err();
    assert!(err.message().contains("signature does not verify"), "{err}");
}

#[test]
fn csr_of_another_key_type_or_not_a_csr_is_refused() {
    let ca = root();
    let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let csr = CertificateParams::default()
        .serialize_request(&p384)
        .unwrap()
        .pem()
        .unwrap();
    let err = ca.sign_csr(&csr, &orders(), HOUR, now()).unwrap_err();
    assert!(err.message().contains("not ECDSA P-256"), "{err}");

    for junk in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ] {
        let err = ca.sign_csr(junk, &orders(), HOUR, now()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{junk:?}");
        assert!(err.message().starts_with("CSR: "), "{err}");
    }
    let huge = "A".repeat(MAX_CSR_PEM_BYTES + 1);
    assert!(ca.sign_csr(&huge, &orders(), HOUR, now()).is_err());
}

#[test]
fn identities_outside_the_trust_domain_are_not_signed() {
    let ca = root();
    let (_, csr) = csr_for(&orders());
    let foreign = SpiffeId::workload("other.domain", "default", "orders").unwrap();
    let err = ca.sign_csr(&csr, &foreign, HOUR, now()).unwrap_err();
    assert!(
        err.message().contains("not in this CA's trust domain"),
        "{err}"
    );
    let domain = SpiffeId::trust_domain_id(TD).unwrap();
    assert!(ca.sign_csr(&csr, &domain, HOUR, now()).is_err());
}

// ---- loading a CA ----

#[test]
fn ca_round_trips_through_pem_and_checks_its_key() {
    let ca = root();
    let loaded =
        CertificateAuthority::from_pem(&ca.certificate_pem(), &ca.private_key_pem(), TD).unwrap();
    assert_eq!(loaded.certificate(), ca.certificate());
    let (_, csr) = csr_for(&orders());
    let issued = loaded.sign_csr(&csr, &orders(), HOUR, now()).unwrap();
    bundle_of(&[&ca])
        .verify_peer(&issued.chain, PeerRole::Server, now())
        .unwrap();

    let other = root();
    let err = CertificateAuthority::from_pem(&ca.certificate_pem(), &other.private_key_pem(), TD)
        .unwrap_err();
    assert!(
        err.message().contains("not the key of the CA certificate"),
        "{err}"
    );

    let err =
        CertificateAuthority::from_pem(&ca.certificate_pem(), &ca.private_key_pem(), "other.td")
            .unwrap_err();
    assert!(
        err.message()
            .contains("trust domain mesh.local, not other.td"),
        "{err}"
    );

    // A SEC1 key gets a conversion hint, and the error never echoes key text.
    let sec1 = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBz4\n-----END EC PRIVATE KEY-----\n";
    let err = CertificateAuthority::from_pem(&ca.certificate_pem(), sec1, TD).unwrap_err();
    assert!(err.message().contains("PKCS#8"), "{err}");
    assert!(!err.message().contains("MHcC"), "{err}");

    // A workload certificate is not a CA.
    let leaf_pem = issued.chain_pem();
    let err = CertificateAuthority::from_pem(&leaf_pem, &ca.private_key_pem(), TD).unwrap_err();
    assert!(err.message().contains("not a CA"), "{err}");

    // A key pasted into the certificate file is refused rather than ignored.
    let mixed = format!("{}{}", ca.certificate_pem(), &*ca.private_key_pem());
    let err = CertificateAuthority::from_pem(&mixed, &ca.private_key_pem(), TD).unwrap_err();
    assert!(err.message().contains("holds a private key"), "{err}");
}

/// An intermediate CA signed by `root`, as an operator would bring one.
fn intermediate(root_ca: &CertificateAuthority, root_key_pem: &str) -> (String, String) {
    let root_key = KeyPair::from_pem(root_key_pem).unwrap();
    let issuer = Issuer::from_ca_cert_der(root_ca.certificate(), root_key).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "mesh intermediate");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.not_before = crate::x509::offset_date_time(now() - HOUR).unwrap();
    params.not_after = crate::x509::offset_date_time(now() + 100 * HOUR).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn an_intermediate_ca_sends_itself_with_each_leaf() {
    // The generated root has pathlen 0, so the operator's root here is unconstrained.
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "corp root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let corp_root = params.self_signed(&root_key).unwrap();
    let corp =
        CertificateAuthority::from_pem(&corp_root.pem(), &root_key.serialize_pem(), TD).unwrap();
    let (int_pem, int_key) = intermediate(&corp, &root_key.serialize_pem());

    // Intermediate followed by its root: the root is the CA's share of the bundle.
    let with_root = format!("{int_pem}{}", corp_root.pem());
    let ca = CertificateAuthority::from_pem(&with_root, &int_key, TD).unwrap();
    assert_eq!(ca.roots(), vec![corp_root.der().clone()]);
    let bundle = TrustBundle::from_pem(TD, &corp_root.pem(), "bundle").unwrap();
    ca.check_trusted_by(&bundle, now()).unwrap();
    let (_, csr) = csr_for(&orders());
    let issued = ca.sign_csr(&csr, &orders(), HOUR, now()).unwrap();
    assert_eq!(issued.chain.len(), 2, "leaf + intermediate, not the root");
    assert_eq!(&issued.chain[1], ca.certificate());
    bundle
        .verify_peer(&issued.chain, PeerRole::Server, now())
        .unwrap();

    // Alone, the intermediate has no root to offer; a bundle without its root is caught.
    let alone = CertificateAuthority::from_pem(&int_pem, &int_key, TD).unwrap();
    assert!(alone.roots().is_empty());
    let unrelated = bundle_of(&[&root()]);
    let err = alone.check_trusted_by(&unrelated, now()).unwrap_err();
    assert!(err.message().contains("does not trust this CA"), "{err}");
}

// ---- trust bundles ----

#[test]
fn a_bundle_with_two_roots_trusts_both_during_rotation() {
    let old = root();
    let new = root();
    let pem = format!("{}{}", old.certificate_pem(), new.certificate_pem());
    let mut bundle = TrustBundle::from_pem(TD, &pem, "bundle").unwrap();
    assert_eq!(bundle.len(), 2);
    assert_eq!(
        bundle.add_pem(&old.certificate_pem(), "again").unwrap(),
        0,
        "deduplicated"
    );
    let (_, csr) = csr_for(&orders());
    for ca in [&old, &new] {
        let issued = ca.sign_csr(&csr, &orders(), HOUR, now()).unwrap();
        bundle
            .verify_peer(&issued.chain, PeerRole::Client, now())
            .unwrap();
    }
    // Round trip through PEM keeps every root, in order.
    let again = TrustBundle::from_pem(TD, &bundle.to_pem(), "bundle").unwrap();
    assert_eq!(again.roots(), bundle.roots());

    // Old root removed: certificates it issued stop verifying.
    let only_new = TrustBundle::from_pem(TD, &new.certificate_pem(), "bundle").unwrap();
    let issued = old.sign_csr(&csr, &orders(), HOUR, now()).unwrap();
    assert!(only_new
        .verify_peer(&issued.chain, PeerRole::Client, now())
        .is_err());
}

#[test]
fn a_bundle_refuses_leaves_and_foreign_roots() {
    let ca = root();
    let (_, csr) = csr_for(&orders());
    let issued = ca.sign_csr(&csr, &orders(), HOUR, now()).unwrap();
    let err = TrustBundle::from_pem(TD, &issued.chain_pem(), "bundle.pem").unwrap_err();
    assert!(err.message().contains("bundle.pem, certificate 1"), "{err}");
    assert!(err.message().contains("not a CA"), "{err}");

    let foreign = CertificateAuthority::create_root("other.td", ROOT_VALIDITY, now()).unwrap();
    let err = TrustBundle::from_pem(TD, &foreign.certificate_pem(), "bundle.pem").unwrap_err();
    assert!(
        err.message()
            .contains("trust domain other.td, not mesh.local"),
        "{err}"
    );
    assert!(TrustBundle::from_pem(TD, "", "bundle.pem").is_err());
}

#[test]
fn a_leaf_of_another_trust_domain_is_refused_even_under_a_trusted_root() {
    // An operator's root without a SPIFFE id may sign for any trust domain; the bundle of
    // mesh.local must still refuse an identity of another one.
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&root_key).unwrap();
    let other_td =
        CertificateAuthority::from_pem(&cert.pem(), &root_key.serialize_pem(), "other.td").unwrap();
    let (_, csr) = csr_for(&orders());
    let foreign_id = SpiffeId::workload("other.td", "default", "orders").unwrap();
    let issued = other_td.sign_csr(&csr, &foreign_id, HOUR, now()).unwrap();
    let bundle = TrustBundle::from_pem(TD, &cert.pem(), "bundle").unwrap();
    let err = bundle
        .verify_peer(&issued.chain, PeerRole::Server, now())
        .unwrap_err();
    assert!(
        err.message().contains("not in trust domain mesh.local"),
        "{err}"
    );
}

// ---- the workload side ----

#[test]
fn workload_installs_only_its_own_certificate_for_its_own_identity() {
    let ca = root();
    let bundle = bundle_of(&[&ca]);
    let (key, csr) = csr_for(&orders());
    let issued = ca.sign_csr(&csr, &orders(), 24 * HOUR, now()).unwrap();
    let installed =
        WorkloadCertificate::new(key.clone(), &issued.chain_pem(), &orders(), &bundle, now())
            .unwrap();
    assert_eq!(installed.spiffe_id(), &orders());
    assert_eq!(installed.chain(), issued.chain.as_slice());
    assert_eq!(installed.not_after(), now() + 24 * HOUR);
    let life = installed
        .not_after()
        .duration_since(installed.not_before())
        .unwrap();
    assert_eq!(
        installed.renew_at(0.7),
        installed.not_before() + life.mul_f64(0.7)
    );
    // The rustls key is the key the certificate names.
    let rustls_key = installed.private_key_der();
    let reparsed = KeyPair::try_from(&rustls_key).unwrap();
    assert_eq!(
        rcgen::PublicKeyData::subject_public_key_info(&reparsed),
        key.public_key_info()
    );

    // Someone else's certificate (another key) is refused.
    let (_, other_csr) = csr_for(&orders());
    let theirs = ca.sign_csr(&other_csr, &orders(), HOUR, now()).unwrap();
    let err = WorkloadCertificate::new(key.clone(), &theirs.chain_pem(), &orders(), &bundle, now())
        .unwrap_err();
    assert!(err.message().contains("another key"), "{err}");

    // Our key, but another identity.
    let payments = SpiffeId::workload(TD, "default", "payments").unwrap();
    let wrong = ca.sign_csr(&csr, &payments, HOUR, now()).unwrap();
    let err = WorkloadCertificate::new(key.clone(), &wrong.chain_pem(), &orders(), &bundle, now())
        .unwrap_err();
    assert!(
        err.message()
            .contains("expected spiffe://mesh.local/ns/default/sa/orders"),
        "{err}"
    );

    // Our key and identity, but from a root we do not trust.
    let stranger = root().sign_csr(&csr, &orders(), HOUR, now()).unwrap();
    let err = WorkloadCertificate::new(key, &stranger.chain_pem(), &orders(), &bundle, now())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Untrusted);
}

#[test]
fn csr_names_the_workload_and_proves_its_key() {
    let key = WorkloadKey::generate().unwrap();
    let csr = key.csr_pem(&orders()).unwrap();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert!(!csr.contains("PRIVATE"));
    let public = crate::verify_csr(&csr).unwrap();
    let spki = key.public_key_info();
    assert!(spki.ends_with(rcgen::PublicKeyData::der_bytes(&public)));
}

// ---- the CA on disk ----

#[test]
fn data_dir_ca_is_created_private_and_reloaded_unchanged() {
    let dir = TempDir::new();
    let missing = dir.0.join("not-yet");
    files::load_or_create(&missing, TD, now()).unwrap();
    assert_eq!(
        mode_of(&missing),
        0o700,
        "a missing data dir is created private"
    );
    let first = files::load_or_create(&dir.0, TD, now()).unwrap();
    assert!(first.created);
    assert_eq!(mode_of(&dir.0.join(CA_DIR)), 0o700);
    assert_eq!(mode_of(&first.key_path), 0o600);
    assert_eq!(mode_of(&first.cert_path), 0o644);
    let key_text = std::fs::read_to_string(&first.key_path).unwrap();
    assert!(key_text.starts_with("-----BEGIN PRIVATE KEY-----"));
    let names: Vec<_> = std::fs::read_dir(dir.0.join(CA_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, vec![CERT_FILE, KEY_FILE], "no temporary files left");

    let second = files::load_or_create(&dir.0, TD, now()).unwrap();
    assert!(!second.created);
    assert_eq!(
        second.authority.certificate(),
        first.authority.certificate()
    );
    let (_, csr) = csr_for(&orders());
    let issued = second
        .authority
        .sign_csr(&csr, &orders(), HOUR, now())
        .unwrap();
    bundle_of(&[&first.authority])
        .verify_peer(&issued.chain, PeerRole::Server, now())
        .unwrap();

    let err = files::load_or_create(&dir.0, "other.td", now()).unwrap_err();
    assert!(err.message().contains("--trust-domain"), "{err}");
}

#[test]
fn data_dir_ca_refuses_loose_permissions_and_a_missing_key() {
    let dir = TempDir::new();
    let stored = files::load_or_create(&dir.0, TD, now()).unwrap();
    std::fs::set_permissions(&stored.key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = files::load_or_create(&dir.0, TD, now()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.message().contains("mode 0644") && err.message().contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&stored.key_path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let ca_dir = dir.0.join(CA_DIR);
    std::fs::set_permissions(&ca_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = files::load_or_create(&dir.0, TD, now()).unwrap_err();
    assert!(err.message().contains("chmod 700"), "{err}");
    std::fs::set_permissions(&ca_dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    std::fs::remove_file(&stored.key_path).unwrap();
    let err = files::load_or_create(&dir.0, TD, now()).unwrap_err();
    assert!(err.message().contains("ca.key: missing"), "{err}");
}

#[test]
fn an_interrupted_creation_is_redone() {
    let dir = TempDir::new();
    let stored = files::load_or_create(&dir.0, TD, now()).unwrap();
    // A crash after the key's rename but before the certificate's.
    std::fs::remove_file(&stored.cert_path).unwrap();
    std::fs::write(dir.0.join(CA_DIR).join(".ca.crt.tmp"), "partial").unwrap();
    let again = files::load_or_create(&dir.0, TD, now()).unwrap();
    assert!(again.created);
    assert_ne!(
        again.authority.certificate(),
        stored.authority.certificate()
    );
    assert!(!dir.0.join(CA_DIR).join(".ca.crt.tmp").exists());
}

#[test]
fn operator_files_load_with_the_file_named_in_errors() {
    let dir = TempDir::new();
    let ca = root();
    let cert_path = dir.0.join("root.pem");
    let key_path = dir.0.join("root.key");
    std::fs::write(&cert_path, ca.certificate_pem()).unwrap();
    std::fs::write(&key_path, ca.private_key_pem().as_bytes()).unwrap();
    let loaded = files::load_files(&cert_path, &key_path, TD).unwrap();
    assert_eq!(loaded.certificate(), ca.certificate());

    std::fs::write(&key_path, root().private_key_pem().as_bytes()).unwrap();
    let err = files::load_files(&cert_path, &key_path, TD).unwrap_err();
    assert!(
        err.message()
            .starts_with(&format!("{}: CA key", key_path.display())),
        "{err}"
    );
    let missing = dir.0.join("nope.pem");
    let err = files::load_files(&missing, &key_path, TD).unwrap_err();
    assert!(
        err.message().contains("nope.pem: cannot read: not found"),
        "{err}"
    );
}
