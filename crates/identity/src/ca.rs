//! The control plane's certificate authority: a root it creates (ECDSA P-256,
//! self-signed) or a CA certificate and key an operator gives it, and the signing of
//! workload certificates (X509-SVIDs) from CSRs.

use std::time::{Duration, SystemTime};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::bundle::{PeerRole, TrustBundle};
use crate::csr::verify_csr;
use crate::error::{Error, ErrorKind, Result};
use crate::spiffe::{check_trust_domain, SpiffeId};
use crate::x509::{
    certificates_from_pem, certificates_to_pem, format_time, offset_date_time, CertificateInfo,
};

/// Validity of a root this crate creates.
pub const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// notBefore of every certificate is set this far in the past, so a peer whose clock is a
/// little behind does not see a fresh certificate as "not valid yet".
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(30);

/// Random serial length: 128 bits (at least 64 are required of public CAs; more costs nothing).
const SERIAL_BYTES: usize = 16;

/// A certificate the CA issued: the chain to send (leaf first, then the CA's
/// intermediates, never a root) and what it says.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub chain: Vec<CertificateDer<'static>>,
    pub spiffe_id: SpiffeId,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Hex serial number, for logs.
    pub serial: String,
}

impl IssuedCertificate {
    pub fn chain_pem(&self) -> String {
        certificates_to_pem(&self.chain)
    }
}

/// A signing CA. The private key never leaves this struct except through
/// [`CertificateAuthority::private_key_pem`], used only to write the key file.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    certificate: CertificateDer<'static>,
    info: CertificateInfo,
    /// The certificates given after the CA's own (its issuers), in file order.
    chain: Vec<CertificateDer<'static>>,
    chain_infos: Vec<CertificateInfo>,
    trust_domain: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.info.subject)
            .field("trust_domain", &self.trust_domain)
            .field("not_after", &format_time(self.info.not_after))
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed root for `trust_domain`: ECDSA P-256, CA:true with path length 0
    /// (it signs workloads directly), keyCertSign and cRLSign, the subject
    /// `O=mesh-core, CN=<trust domain> root CA <8 hex digits>` and the URI SAN
    /// `spiffe://<trust domain>`.
    pub fn create_root(trust_domain: &str, validity: Duration, now: SystemTime) -> Result<Self> {
        check_trust_domain(trust_domain).map_err(|e| e.context("--trust-domain"))?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "mesh-core");
        // Distinct roots get distinct names (the serial's first bytes), so during a
        // rotation a verifier never has to guess between two roots of the same name.
        let tag: String = serial.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        name.push(DnType::CommonName, format!("{trust_domain} root CA {tag}"));
        params.distinguished_name = name;
        params.subject_alt_names = vec![uri_san(&SpiffeId::trust_domain_id(trust_domain)?)?];
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = offset_date_time(now - CLOCK_SKEW_ALLOWANCE)?;
        params.not_after = offset_date_time(now + validity)?;
        params.serial_number = Some(serial);
        let certificate = params.self_signed(&key)?;
        Self::assemble(vec![certificate.der().clone()], key, trust_domain)
    }

    /// A CA from PEM: `cert_pem` holds the CA's certificate first, optionally followed by
    /// its issuers (intermediates, the root); `key_pem` its PKCS#8 private key. Checks that
    /// the certificate is a CA allowed to sign certificates, that the key is its key, and
    /// that any SPIFFE id in it belongs to `trust_domain`.
    pub fn from_pem(cert_pem: &str, key_pem: &str, trust_domain: &str) -> Result<Self> {
        check_trust_domain(trust_domain).map_err(|e| e.context("--trust-domain"))?;
        let certificates = certificates_from_pem(cert_pem, "CA certificate")?;
        let key = parse_private_key(key_pem)?;
        Self::assemble(certificates, key, trust_domain)
    }

    fn assemble(
        mut certificates: Vec<CertificateDer<'static>>,
        key: KeyPair,
        trust_domain: &str,
    ) -> Result<Self> {
        let chain = certificates.split_off(1);
        let certificate = certificates.remove(0);
        let info = CertificateInfo::parse(&certificate).map_err(|e| e.context("CA certificate"))?;
        if !info.is_ca {
            return Err(Error::invalid(format!(
                "CA certificate ({}): not a CA (basicConstraints CA:true is missing)",
                info.subject
            )));
        }
        if info.key_cert_sign == Some(false) {
            return Err(Error::invalid(format!(
                "CA certificate ({}): its keyUsage does not allow signing certificates",
                info.subject
            )));
        }
        if key.der_bytes() != info.public_key.as_slice() {
            return Err(Error::invalid(format!(
                "CA key: it is not the key of the CA certificate ({})",
                info.subject
            )));
        }
        for id in &info.spiffe_ids {
            let id = SpiffeId::parse(id).map_err(|e| e.context("CA certificate"))?;
            if id.trust_domain() != trust_domain {
                return Err(Error::invalid(format!(
                    "CA certificate is for trust domain {}, not {trust_domain}",
                    id.trust_domain()
                )));
            }
        }
        let chain_infos = chain
            .iter()
            .enumerate()
            .map(|(i, der)| {
                CertificateInfo::parse(der)
                    .map_err(|e| e.context(format!("CA certificate file, certificate {}", i + 2)))
            })
            .collect::<Result<Vec<_>>>()?;
        let issuer = Issuer::from_ca_cert_der(&certificate, key)
            .map_err(|e| Error::invalid(format!("CA certificate: {e}")))?;
        Ok(Self {
            issuer,
            certificate,
            info,
            chain,
            chain_infos,
            trust_domain: trust_domain.to_string(),
        })
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The CA's own certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The CA's certificate followed by the issuers it was given with, as PEM.
    pub fn certificate_pem(&self) -> String {
        certificates_to_pem(std::iter::once(&self.certificate).chain(&self.chain))
    }

    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    pub fn not_before(&self) -> SystemTime {
        self.info.not_before
    }

    pub fn not_after(&self) -> SystemTime {
        self.info.not_after
    }

    /// Why the CA cannot sign at `now` (expired, not yet valid), or None when it can.
    pub fn validity_problem(&self, now: SystemTime) -> Option<String> {
        if now < self.info.not_before {
            Some(format!(
                "the CA certificate is not valid before {}",
                format_time(self.info.not_before)
            ))
        } else if now > self.info.not_after {
            Some(format!(
                "the CA certificate expired at {}",
                format_time(self.info.not_after)
            ))
        } else {
            None
        }
    }

    /// The roots among the CA's certificate and its issuers (self-issued CA certificates):
    /// the CA's share of the trust bundle. Empty for an intermediate given without its root,
    /// which then has to come from an operator's trust bundle file.
    pub fn roots(&self) -> Vec<CertificateDer<'static>> {
        std::iter::once((&self.certificate, &self.info))
            .chain(self.chain.iter().zip(&self.chain_infos))
            .filter(|(_, info)| info.is_ca && info.self_issued)
            .map(|(der, _)| der.clone())
            .collect()
    }

    /// Signs a workload certificate for `spiffe_id` with the public key of `csr_pem`.
    ///
    /// The CSR must be ECDSA P-256 and correctly self-signed (proof that the requester
    /// holds the key). Its subject and any names or extensions it asks for are ignored:
    /// the certificate carries exactly the URI SAN `spiffe_id`, an empty subject,
    /// keyUsage digitalSignature, extKeyUsage serverAuth + clientAuth, CA:false, a random
    /// serial, notBefore `now` minus [`CLOCK_SKEW_ALLOWANCE`] and notAfter
    /// `now + lifetime`, both clamped to the CA's own validity.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        spiffe_id: &SpiffeId,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<IssuedCertificate> {
        let public_key = verify_csr(csr_pem)?;
        self.issue(&public_key, spiffe_id, lifetime, now)
    }

    fn issue(
        &self,
        public_key: &impl PublicKeyData,
        spiffe_id: &SpiffeId,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<IssuedCertificate> {
        if spiffe_id.trust_domain() != self.trust_domain {
            return Err(Error::invalid(format!(
                "{spiffe_id} is not in this CA's trust domain {}",
                self.trust_domain
            )));
        }
        if spiffe_id.path().is_empty() {
            return Err(Error::invalid(format!(
                "{spiffe_id} names a trust domain, not a workload"
            )));
        }
        if lifetime < Duration::from_secs(1) {
            return Err(Error::invalid(
                "certificate lifetime must be at least 1 second",
            ));
        }
        if let Some(problem) = self.validity_problem(now) {
            return Err(Error::new(ErrorKind::Unavailable, problem));
        }
        let not_before = (now - CLOCK_SKEW_ALLOWANCE).max(self.info.not_before);
        let not_after = (now + lifetime).min(self.info.not_after);

        let mut params = CertificateParams::default();
        // An empty subject: the identity is the URI SAN alone (rcgen then marks the SAN
        // extension critical, as RFC 5280 requires).
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![uri_san(spiffe_id)?];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        params.not_before = offset_date_time(not_before)?;
        params.not_after = offset_date_time(not_after)?;
        let leaf = params.signed_by(public_key, &self.issuer)?;
        let info = CertificateInfo::parse(leaf.der())?;

        let mut chain = vec![leaf.der().clone()];
        // Intermediates travel with the leaf; roots are in every peer's trust bundle.
        if !self.info.self_issued {
            chain.push(self.certificate.clone());
            chain.extend(
                self.chain
                    .iter()
                    .zip(&self.chain_infos)
                    .filter(|(_, info)| !info.self_issued)
                    .map(|(der, _)| der.clone()),
            );
        }
        Ok(IssuedCertificate {
            chain,
            spiffe_id: spiffe_id.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
            serial: info.serial,
        })
    }

    /// Checks that `bundle` trusts what this CA signs, by issuing a throwaway certificate
    /// (fresh key, never stored) and verifying it against the bundle at `now`. Catches an
    /// intermediate given without its root, or a bundle file that replaced the CA's root.
    pub fn check_trusted_by(&self, bundle: &TrustBundle, now: SystemTime) -> Result<()> {
        let probe_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let probe_id = SpiffeId::parse(&format!(
            "spiffe://{}/mesh-control/trust-check",
            self.trust_domain
        ))?;
        let issued = self.issue(&probe_key, &probe_id, Duration::from_secs(60), now)?;
        bundle
            .verify_peer(&issued.chain, PeerRole::Client, now)
            .map(|_| ())
            .map_err(|e| {
                Error::invalid(format!(
                    "the trust bundle does not trust this CA's certificates: {e}"
                ))
            })
    }

    /// The private key as PKCS#8 PEM, only for writing the key file.
    pub(crate) fn private_key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.issuer.key().serialize_pem())
    }
}

fn uri_san(id: &SpiffeId) -> Result<SanType> {
    let uri = Ia5String::try_from(id.as_str())
        .map_err(|e| Error::invalid(format!("{id}: not an IA5 string ({e})")))?;
    Ok(SanType::URI(uri))
}

fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; SERIAL_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    // A positive INTEGER of fixed length: top bit clear, next bit set.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A PKCS#8 private key from PEM. Error messages never quote the input.
pub(crate) fn parse_private_key(key_pem: &str) -> Result<KeyPair> {
    let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| Error::invalid("CA key: no PEM private key found"))?;
    match &der {
        PrivateKeyDer::Pkcs8(_) => {}
        PrivateKeyDer::Sec1(_) | PrivateKeyDer::Pkcs1(_) => {
            return Err(Error::invalid(
                "CA key: expected PKCS#8 (\"BEGIN PRIVATE KEY\"); convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`",
            ))
        }
        _ => return Err(Error::invalid("CA key: unsupported private key format")),
    }
    KeyPair::try_from(&der).map_err(|_| {
        Error::invalid(
            "CA key: not a usable private key (supported: ECDSA P-256/P-384, Ed25519, RSA)",
        )
    })
}
