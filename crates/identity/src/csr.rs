//! Checking a PKCS#10 CSR before signing: it must parse, hold an ECDSA P-256 key and be
//! signed (ecdsa-with-SHA256) by that key, which proves the requester holds the private
//! key. Nothing else in it is used: names and extensions the CSR asks for are ignored,
//! because the identity comes from the join token, never from the CSR.

use rcgen::{PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateSigningRequestDer;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ECDSA_WITH_SHA256,
};
use x509_parser::prelude::FromDer;

use crate::error::{Error, Result};

/// Upper bound on a CSR's PEM text: a P-256 CSR is under 1 KiB; this refuses junk early.
pub const MAX_CSR_PEM_BYTES: usize = 16 * 1024;

/// The public key of a CSR whose signature verified: an uncompressed P-256 point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrPublicKey {
    point: Vec<u8>,
}

impl PublicKeyData for CsrPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// Parses `csr_pem` and verifies its self-signature; returns the key to certify.
pub fn verify_csr(csr_pem: &str) -> Result<CsrPublicKey> {
    if csr_pem.len() > MAX_CSR_PEM_BYTES {
        return Err(Error::invalid(format!(
            "CSR: {} bytes; expected at most {MAX_CSR_PEM_BYTES}",
            csr_pem.len()
        )));
    }
    let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes()).map_err(|e| {
        Error::invalid(format!("CSR: expected a PEM \"CERTIFICATE REQUEST\" ({e})"))
    })?;
    let (rest, csr) = X509CertificationRequest::from_der(der.as_ref())
        .map_err(|e| Error::invalid(format!("CSR: not a valid PKCS#10 request ({e})")))?;
    if !rest.is_empty() {
        return Err(Error::invalid("CSR: trailing bytes after the request"));
    }
    let info = &csr.certification_request_info;
    if info.version.0 != 0 {
        return Err(Error::invalid(format!(
            "CSR: version {}; expected 0 (PKCS#10 v1)",
            info.version.0
        )));
    }
    let spki = &info.subject_pki;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|params| params.as_oid().ok());
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY
        || curve.as_ref() != Some(&OID_EC_P256)
    {
        return Err(Error::invalid(
            "CSR: the key is not ECDSA P-256 (the only key type workloads use)",
        ));
    }
    if csr.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA256 {
        return Err(Error::invalid("CSR: not signed with ecdsa-with-SHA256"));
    }
    let point = spki.subject_public_key.data.as_ref();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(info.raw, csr.signature_value.data.as_ref())
        .map_err(|_| Error::invalid("CSR: the signature does not verify with the CSR's own key"))?;
    Ok(CsrPublicKey {
        point: point.to_vec(),
    })
}
