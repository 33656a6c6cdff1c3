//! The trust bundle: the roots a workload accepts for its trust domain. It may hold more
//! than one root, so a root can be rotated without an outage (add the new root
//! everywhere, reissue, remove the old one).

use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{anchor_from_trusted_cert, EndEntityCert, KeyUsage, ALL_VERIFICATION_ALGS};

use crate::error::{Error, Result};
use crate::spiffe::{check_trust_domain, SpiffeId};
use crate::x509::{certificates_from_pem, certificates_to_pem, format_time, CertificateInfo};

/// Which side of a TLS connection a peer certificate belongs to: a server presents a
/// certificate for serverAuth, a client for clientAuth. Workload certificates carry both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Server,
    Client,
}

impl PeerRole {
    fn key_usage(self) -> KeyUsage {
        match self {
            PeerRole::Server => KeyUsage::server_auth(),
            PeerRole::Client => KeyUsage::client_auth(),
        }
    }
}

/// A peer certificate chain that verified against the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPeer {
    pub spiffe_id: SpiffeId,
    pub not_after: SystemTime,
}

/// Roots of one trust domain. Built when roots change, then shared (behind an `Arc`) by
/// every verification.
#[derive(Debug, Clone)]
pub struct TrustBundle {
    trust_domain: String,
    roots: Vec<CertificateDer<'static>>,
    infos: Vec<CertificateInfo>,
    /// webpki's view of `roots`, made once rather than per handshake.
    anchors: Vec<TrustAnchor<'static>>,
}

impl TrustBundle {
    /// An empty bundle (it trusts nothing until roots are added).
    pub fn new(trust_domain: &str) -> Result<Self> {
        check_trust_domain(trust_domain)?;
        Ok(Self {
            trust_domain: trust_domain.to_string(),
            roots: Vec::new(),
            infos: Vec::new(),
            anchors: Vec::new(),
        })
    }

    /// A bundle of every certificate in `pem` (`what` names the source in errors).
    pub fn from_pem(trust_domain: &str, pem: &str, what: &str) -> Result<Self> {
        let mut bundle = Self::new(trust_domain)?;
        bundle.add_pem(pem, what)?;
        Ok(bundle)
    }

    /// Adds every certificate of `pem`; returns how many were new (duplicates are skipped).
    pub fn add_pem(&mut self, pem: &str, what: &str) -> Result<usize> {
        let mut added = 0;
        for (i, der) in certificates_from_pem(pem, what)?.into_iter().enumerate() {
            if self
                .add(der)
                .map_err(|e| e.context(format!("{what}, certificate {}", i + 1)))?
            {
                added += 1;
            }
        }
        Ok(added)
    }

    /// Adds one root; false when it is already in the bundle. A root must be a CA
    /// certificate; one that names a SPIFFE id must be of this trust domain.
    pub fn add(&mut self, der: CertificateDer<'static>) -> Result<bool> {
        if self.roots.contains(&der) {
            return Ok(false);
        }
        let info = CertificateInfo::parse(&der)?;
        if !info.is_ca {
            return Err(Error::invalid(format!(
                "{} is not a CA certificate (basicConstraints CA:true is missing)",
                info.subject
            )));
        }
        for id in &info.spiffe_ids {
            let id = SpiffeId::parse(id)?;
            if id.trust_domain() != self.trust_domain {
                return Err(Error::invalid(format!(
                    "{} is a root of trust domain {}, not {}",
                    info.subject,
                    id.trust_domain(),
                    self.trust_domain
                )));
            }
        }
        let anchor = anchor_from_trusted_cert(&der)
            .map_err(|e| Error::invalid(format!("{}: not usable as a root ({e})", info.subject)))?
            .to_owned();
        self.roots.push(der);
        self.infos.push(info);
        self.anchors.push(anchor);
        Ok(true)
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    pub fn root_infos(&self) -> &[CertificateInfo] {
        &self.infos
    }

    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Every root as PEM, in the order added.
    pub fn to_pem(&self) -> String {
        certificates_to_pem(&self.roots)
    }

    /// Verifies a peer's chain (leaf first, then intermediates) as webpki does during a
    /// handshake: signatures up to one of the roots, validity at `now`, CA constraints,
    /// the extended key usage of `role`; then requires exactly one SPIFFE id in this
    /// trust domain, which it returns. The caller compares it with the id it expects.
    pub fn verify_peer(
        &self,
        chain: &[CertificateDer<'_>],
        role: PeerRole,
        now: SystemTime,
    ) -> Result<VerifiedPeer> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| Error::untrusted("empty certificate chain"))?;
        let end_entity = EndEntityCert::try_from(leaf)
            .map_err(|e| Error::untrusted(format!("bad certificate ({e})")))?;
        let since_epoch = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::untrusted("the clock is before 1970"))?;
        end_entity
            .verify_for_usage(
                ALL_VERIFICATION_ALGS,
                &self.anchors,
                intermediates,
                UnixTime::since_unix_epoch(since_epoch),
                role.key_usage(),
                None,
                None,
            )
            .map_err(|e| self.describe(e, leaf))?;
        let info = CertificateInfo::parse(leaf)?;
        let spiffe_id = info.spiffe_id()?;
        if spiffe_id.trust_domain() != self.trust_domain {
            return Err(Error::untrusted(format!(
                "{spiffe_id} is not in trust domain {}",
                self.trust_domain
            )));
        }
        Ok(VerifiedPeer {
            spiffe_id,
            not_after: info.not_after,
        })
    }

    fn describe(&self, err: webpki::Error, leaf: &CertificateDer<'_>) -> Error {
        let info = CertificateInfo::parse(leaf).ok();
        let message = match (&err, &info) {
            (webpki::Error::CertExpired { .. }, Some(info)) => {
                format!("the certificate expired at {}", format_time(info.not_after))
            }
            (webpki::Error::CertNotValidYet { .. }, Some(info)) => format!(
                "the certificate is not valid before {}",
                format_time(info.not_before)
            ),
            (webpki::Error::UnknownIssuer, _) => format!(
                "the certificate was not issued by a root of the trust bundle of {} ({} roots)",
                self.trust_domain,
                self.roots.len()
            ),
            (webpki::Error::InvalidSignatureForPublicKey, _) => format!(
                "the certificate's signature does not verify with the root of that name in the trust bundle of {}",
                self.trust_domain
            ),
            _ => format!("the certificate does not verify ({err:?})"),
        };
        Error::untrusted(message)
    }
}
