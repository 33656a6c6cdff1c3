//! Reading certificates: PEM sections, the fields this crate decides on (validity, CA
//! flag, SPIFFE URI SANs, the public key), and time conversions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::error::{Error, Result};
use crate::spiffe::{SpiffeId, SCHEME};

/// The fields of a certificate this crate decides on.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// basicConstraints CA:true.
    pub is_ca: bool,
    /// Subject and issuer names are the same (a root, as far as naming goes).
    pub self_issued: bool,
    /// The SubjectPublicKeyInfo, DER.
    pub public_key_info: Vec<u8>,
    /// The key inside it (the BIT STRING's bytes: an EC point, an RSAPublicKey, ...).
    pub public_key: Vec<u8>,
    /// keyCertSign from the keyUsage extension; None when the extension is absent.
    pub key_cert_sign: Option<bool>,
    /// Every `spiffe://` URI SAN (a workload certificate has exactly one).
    pub spiffe_ids: Vec<String>,
    /// The subject, RFC 4514 style, for messages.
    pub subject: String,
    /// Serial number, hex.
    pub serial: String,
}

impl CertificateInfo {
    pub fn parse(der: &[u8]) -> Result<Self> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| Error::invalid(format!("not a valid X.509 certificate ({e})")))?;
        if !rest.is_empty() {
            return Err(Error::invalid(
                "not a valid X.509 certificate (trailing bytes)",
            ));
        }
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| Error::invalid(format!("bad basicConstraints extension ({e})")))?
            .is_some_and(|bc| bc.value.ca);
        let mut spiffe_ids = Vec::new();
        let san = cert
            .subject_alternative_name()
            .map_err(|e| Error::invalid(format!("bad subjectAltName extension ({e})")))?;
        if let Some(san) = san {
            for name in &san.value.general_names {
                if let GeneralName::URI(uri) = name {
                    if uri.starts_with(SCHEME) {
                        spiffe_ids.push((*uri).to_string());
                    }
                }
            }
        }
        let key_cert_sign = cert
            .key_usage()
            .map_err(|e| Error::invalid(format!("bad keyUsage extension ({e})")))?
            .map(|ku| ku.value.key_cert_sign());
        Ok(Self {
            not_before: system_time(cert.validity().not_before.timestamp()),
            not_after: system_time(cert.validity().not_after.timestamp()),
            is_ca,
            self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
            public_key_info: cert.public_key().raw.to_vec(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            key_cert_sign,
            spiffe_ids,
            subject: cert.subject().to_string(),
            serial: cert.raw_serial_as_string().replace(':', ""),
        })
    }

    /// The one SPIFFE id of a workload certificate; an error for none, several, or an
    /// invalid one (X509-SVIDs carry exactly one URI SAN).
    pub fn spiffe_id(&self) -> Result<SpiffeId> {
        match self.spiffe_ids.as_slice() {
            [one] => SpiffeId::parse(one),
            [] => Err(Error::untrusted("the certificate has no spiffe:// URI SAN")),
            _ => Err(Error::untrusted(format!(
                "the certificate has {} spiffe:// URI SANs; expected one",
                self.spiffe_ids.len()
            ))),
        }
    }

    /// Whether `at` lies within notBefore..=notAfter.
    pub fn is_valid_at(&self, at: SystemTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

fn system_time(unix_seconds: i64) -> SystemTime {
    if unix_seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix_seconds as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(unix_seconds.unsigned_abs())
    }
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

/// Milliseconds since the Unix epoch, for JavaScript Dates.
pub fn unix_millis(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as f64,
        Err(before) => -(before.duration().as_millis() as f64),
    }
}

/// `time` truncated to whole seconds (what a certificate can hold), as rcgen wants it.
pub(crate) fn offset_date_time(time: SystemTime) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds(time))
        .map_err(|e| Error::invalid(format!("time out of range ({e})")))
}

/// `time` as an RFC 3339 string in UTC, for messages.
pub fn format_time(time: SystemTime) -> String {
    offset_date_time(time)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{} s after the epoch", unix_seconds(time)))
}

/// Every CERTIFICATE section of `pem`, in order. Other sections (a key pasted into the
/// same file, say) are an error rather than silently skipped, except that text outside
/// sections (openssl's `subject=` lines) is ignored.
pub fn certificates_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let mut certificates = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, der) = section.map_err(|e| Error::invalid(format!("{what}: bad PEM ({e})")))?;
        match kind {
            SectionKind::Certificate => certificates.push(CertificateDer::from(der)),
            SectionKind::PrivateKey | SectionKind::EcPrivateKey | SectionKind::RsaPrivateKey => {
                return Err(Error::invalid(format!(
                    "{what}: holds a private key; expected only certificates"
                )))
            }
            other => {
                return Err(Error::invalid(format!(
                    "{what}: unexpected PEM section {other:?}; expected certificates"
                )))
            }
        }
    }
    if certificates.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: no PEM \"CERTIFICATE\" section"
        )));
    }
    Ok(certificates)
}

/// PEM of one DER item, LF line endings.
pub fn pem_encode(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Concatenated CERTIFICATE sections.
pub fn certificates_to_pem<'a>(
    certificates: impl IntoIterator<Item = &'a CertificateDer<'a>>,
) -> String {
    certificates
        .into_iter()
        .map(|der| pem_encode("CERTIFICATE", der))
        .collect()
}
