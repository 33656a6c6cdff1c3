//! A workload's side: its key pair (made here, never exported except to rustls inside
//! the engine), the CSR it sends with its join token, and the certificate it gets back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, KeyPair, PublicKeyData, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroize;

use crate::bundle::{PeerRole, TrustBundle};
use crate::error::{Error, Result};
use crate::spiffe::SpiffeId;
use crate::x509::{certificates_from_pem, certificates_to_pem, CertificateInfo};

/// An ECDSA P-256 key pair. It has no accessor for its private half except
/// [`WorkloadKey::private_key_der`], which exists to build a rustls signing key.
pub struct WorkloadKey {
    key: KeyPair,
}

impl WorkloadKey {
    pub fn generate() -> Result<Self> {
        Ok(Self {
            key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
        })
    }

    /// A PKCS#10 CSR for this key, naming `spiffe_id` as its URI SAN. The name is a
    /// courtesy for humans reading the CSR: the CA ignores it and certifies the identity
    /// of the join token that comes with the request.
    pub fn csr_pem(&self, spiffe_id: &SpiffeId) -> Result<String> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from(spiffe_id.as_str())
                .map_err(|e| Error::invalid(format!("{spiffe_id}: {e}")))?,
        )];
        let csr = params.serialize_request(&self.key)?;
        Ok(csr.pem()?)
    }

    /// The SubjectPublicKeyInfo, DER.
    pub fn public_key_info(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }

    /// The private key for rustls (`rustls::crypto::ring::sign::any_ecdsa_type`). Only
    /// for Rust code building a TLS config; never hand it to JavaScript or a log.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

impl std::fmt::Debug for WorkloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkloadKey(ECDSA P-256)")
    }
}

impl Drop for WorkloadKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// A key with the certificate chain the CA issued for it, checked on arrival: the
/// leaf's key is this key, its SPIFFE id is the one expected, and the chain verifies
/// against the trust bundle for both server and client use. Immutable: renewal makes a
/// new one (with a new key), swapped in whole.
#[derive(Debug)]
pub struct WorkloadCertificate {
    key: Arc<WorkloadKey>,
    chain: Vec<CertificateDer<'static>>,
    spiffe_id: SpiffeId,
    not_before: SystemTime,
    not_after: SystemTime,
    serial: String,
}

impl WorkloadCertificate {
    pub fn new(
        key: Arc<WorkloadKey>,
        chain_pem: &str,
        expected: &SpiffeId,
        bundle: &TrustBundle,
        now: SystemTime,
    ) -> Result<Self> {
        let chain = certificates_from_pem(chain_pem, "certificate chain")?;
        let leaf = CertificateInfo::parse(&chain[0])
            .map_err(|e| Error::untrusted(e.message().to_string()))?;
        if leaf.public_key_info != key.public_key_info() {
            return Err(Error::untrusted(
                "the certificate is for another key than this workload's",
            ));
        }
        let spiffe_id = leaf.spiffe_id()?;
        if &spiffe_id != expected {
            return Err(Error::untrusted(format!(
                "the certificate is for {spiffe_id}, expected {expected}"
            )));
        }
        for role in [PeerRole::Server, PeerRole::Client] {
            bundle.verify_peer(&chain, role, now)?;
        }
        Ok(Self {
            key,
            chain,
            spiffe_id,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            serial: leaf.serial,
        })
    }

    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// Leaf first, then intermediates: what a TLS handshake presents.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub fn chain_pem(&self) -> String {
        certificates_to_pem(&self.chain)
    }

    pub fn key(&self) -> &Arc<WorkloadKey> {
        &self.key
    }

    /// See [`WorkloadKey::private_key_der`].
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        self.key.private_key_der()
    }

    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// When `fraction` (0..1, e.g. 0.7) of the validity period has passed.
    pub fn renew_at(&self, fraction: f64) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or(Duration::ZERO);
        self.not_before + life.mul_f64(fraction.clamp(0.0, 1.0))
    }
}
