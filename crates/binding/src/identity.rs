//! Identity for JavaScript: the control plane's CA and a proxy's workload identity.
//!
//! Private keys never cross this boundary. JavaScript passes paths and PEM of public
//! material (CSRs, certificates, bundles); keys are generated, read and written here, and
//! no getter, return value or error message carries one.
//!
//! Errors carry a `code` JavaScript can map to a gRPC status: `IdentityInvalidInput`
//! (a bad CSR, file or id), `IdentityUntrusted` (a certificate that does not verify or is
//! for another key or id), `IdentityIo` (files), `IdentityUnavailable` (the CA cannot sign
//! now), `IdentityInternal`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mesh_identity::{
    files, unix_millis, CertificateAuthority, CertificateInfo, ErrorKind, PeerRole, SpiffeId,
    TrustBundle, WorkloadCertificate, WorkloadKey,
};
use napi_derive::napi;
use parking_lot::Mutex;

type Result<T> = napi::Result<T, &'static str>;

fn to_napi(err: mesh_identity::Error) -> napi::Error<&'static str> {
    let code = match err.kind() {
        ErrorKind::InvalidInput => "IdentityInvalidInput",
        ErrorKind::Untrusted => "IdentityUntrusted",
        ErrorKind::Io => "IdentityIo",
        ErrorKind::Unavailable => "IdentityUnavailable",
        ErrorKind::Internal => "IdentityInternal",
    };
    napi::Error::new(code, err.message().to_string())
}

fn invalid(message: impl Into<String>) -> napi::Error<&'static str> {
    napi::Error::new("IdentityInvalidInput", message.into())
}

/// A moment as JavaScript milliseconds, or now when not given.
fn at(now_ms: Option<f64>) -> Result<SystemTime> {
    match now_ms {
        None => Ok(SystemTime::now()),
        Some(ms) if ms.is_finite() && ms >= 0.0 => {
            Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64))
        }
        Some(ms) => Err(invalid(format!(
            "expected a time in ms since the epoch, got {ms}"
        ))),
    }
}

/// What a certificate says, for status pages and logs.
#[napi(object)]
pub struct BindingCertificateInfo {
    /// RFC 4514 style subject (empty for workload certificates).
    pub subject: String,
    /// The SPIFFE id, or empty when the certificate names none.
    pub spiffe_id: String,
    /// ms since the epoch.
    pub not_before: f64,
    pub not_after: f64,
    /// Hex serial number.
    pub serial: String,
}

impl BindingCertificateInfo {
    fn of(info: &CertificateInfo) -> Self {
        Self {
            subject: info.subject.clone(),
            spiffe_id: info.spiffe_ids.first().cloned().unwrap_or_default(),
            not_before: unix_millis(info.not_before),
            not_after: unix_millis(info.not_after),
            serial: info.serial.clone(),
        }
    }
}

/// A certificate the CA issued.
#[napi(object)]
pub struct BindingIssuedCertificate {
    /// Leaf first, then the CA's intermediates (none when the CA is a root).
    pub certificate_chain_pem: String,
    pub spiffe_id: String,
    /// ms since the epoch.
    pub not_before: f64,
    pub not_after: f64,
    pub serial: String,
}

/// The control plane's certificate authority. The key stays in Rust: loaded from or
/// written to files by this object, never returned.
#[napi]
pub struct BindingCertificateAuthority {
    inner: CertificateAuthority,
    created: bool,
}

#[napi]
impl BindingCertificateAuthority {
    /// The CA of a data dir: `<dataDir>/ca/ca.crt` and `ca.key`, created on first use (a
    /// new ECDSA P-256 root for `trustDomain`; the directory mode 0700, the key 0600,
    /// written atomically). Refuses files other users can read and a root of another
    /// trust domain.
    #[napi(factory)]
    pub fn load_or_create(data_dir: String, trust_domain: String) -> Result<Self> {
        let stored = files::load_or_create(Path::new(&data_dir), &trust_domain, SystemTime::now())
            .map_err(to_napi)?;
        Ok(Self {
            inner: stored.authority,
            created: stored.created,
        })
    }

    /// A CA from an operator's files: `certPath` holds the CA certificate (optionally
    /// followed by its issuers), `keyPath` its PKCS#8 key.
    #[napi(factory)]
    pub fn from_files(cert_path: String, key_path: String, trust_domain: String) -> Result<Self> {
        let inner = files::load_files(Path::new(&cert_path), Path::new(&key_path), &trust_domain)
            .map_err(to_napi)?;
        Ok(Self {
            inner,
            created: false,
        })
    }

    /// True when loadOrCreate made a new root.
    #[napi(getter)]
    pub fn created(&self) -> bool {
        self.created
    }

    #[napi(getter)]
    pub fn trust_domain(&self) -> String {
        self.inner.trust_domain().to_string()
    }

    /// The CA certificate (and the issuers it was given with), PEM.
    #[napi(getter)]
    pub fn certificate_pem(&self) -> String {
        self.inner.certificate_pem()
    }

    /// The roots among the CA's certificates, PEM: its share of the trust bundle. Empty
    /// for an intermediate given without its root.
    #[napi(getter)]
    pub fn roots_pem(&self) -> String {
        mesh_identity::certificates_to_pem(&self.inner.roots())
    }

    #[napi(getter)]
    pub fn certificate(&self) -> BindingCertificateInfo {
        BindingCertificateInfo::of(self.inner.info())
    }

    /// Why the CA cannot sign at `nowMs` (default now): expired or not yet valid; null when it can.
    #[napi]
    pub fn validity_problem(&self, now_ms: Option<f64>) -> Result<Option<String>> {
        Ok(self.inner.validity_problem(at(now_ms)?))
    }

    /// Throws unless `bundle` trusts what this CA signs (checked with a throwaway certificate).
    #[napi]
    pub fn check_trusted_by(&self, bundle: &BindingTrustBundle) -> Result<()> {
        self.inner
            .check_trusted_by(&bundle.inner, SystemTime::now())
            .map_err(to_napi)
    }

    /// Signs a workload certificate for `spiffeId` with the key of `csrPem` (which must be
    /// ECDSA P-256 and correctly self-signed; its names are ignored), valid from now
    /// (minus a clock skew allowance) for `lifetimeSecs`, within the CA's own validity.
    #[napi]
    pub fn sign(
        &self,
        csr_pem: String,
        spiffe_id: String,
        lifetime_secs: u32,
    ) -> Result<BindingIssuedCertificate> {
        let id = SpiffeId::parse(&spiffe_id).map_err(to_napi)?;
        let issued = self
            .inner
            .sign_csr(
                &csr_pem,
                &id,
                Duration::from_secs(lifetime_secs.into()),
                SystemTime::now(),
            )
            .map_err(to_napi)?;
        Ok(BindingIssuedCertificate {
            certificate_chain_pem: issued.chain_pem(),
            spiffe_id: issued.spiffe_id.to_string(),
            not_before: unix_millis(issued.not_before),
            not_after: unix_millis(issued.not_after),
            serial: issued.serial,
        })
    }
}

/// The roots of one trust domain; several during a root rotation.
#[napi]
pub struct BindingTrustBundle {
    inner: TrustBundle,
}

#[napi]
impl BindingTrustBundle {
    /// An empty bundle for `trustDomain`.
    #[napi(constructor)]
    pub fn new(trust_domain: String) -> Result<Self> {
        Ok(Self {
            inner: TrustBundle::new(&trust_domain).map_err(to_napi)?,
        })
    }

    /// Adds every certificate of `pem` (each must be a CA certificate, of this trust
    /// domain if it names one); `source` labels errors. Returns how many were new.
    #[napi]
    pub fn add_pem(&mut self, pem: String, source: String) -> Result<u32> {
        let added = self.inner.add_pem(&pem, &source).map_err(to_napi)?;
        Ok(added as u32)
    }

    /// Adds the certificates of a PEM file; errors name the file.
    #[napi]
    pub fn add_file(&mut self, path: String) -> Result<u32> {
        let pem = files::read_pem_file(Path::new(&path)).map_err(to_napi)?;
        self.add_pem(pem, path)
    }

    #[napi(getter)]
    pub fn trust_domain(&self) -> String {
        self.inner.trust_domain().to_string()
    }

    /// Every root, PEM, in the order added.
    #[napi(getter)]
    pub fn pem(&self) -> String {
        self.inner.to_pem()
    }

    #[napi(getter)]
    pub fn roots(&self) -> Vec<BindingCertificateInfo> {
        self.inner
            .root_infos()
            .iter()
            .map(BindingCertificateInfo::of)
            .collect()
    }

    /// Verifies a peer's chain (leaf first) as a TLS handshake would, for `role`
    /// (`server` or `client`) at `nowMs` (default now); returns its SPIFFE id.
    #[napi]
    pub fn verify(
        &self,
        certificate_chain_pem: String,
        #[napi(ts_arg_type = "'server' | 'client'")] role: String,
        now_ms: Option<f64>,
    ) -> Result<String> {
        let role = match role.as_str() {
            "server" => PeerRole::Server,
            "client" => PeerRole::Client,
            other => {
                return Err(invalid(format!(
                    "role: expected server or client, got {other:?}"
                )))
            }
        };
        let chain =
            mesh_identity::certificates_from_pem(&certificate_chain_pem, "certificate chain")
                .map_err(to_napi)?;
        let peer = self
            .inner
            .verify_peer(&chain, role, at(now_ms)?)
            .map_err(to_napi)?;
        Ok(peer.spiffe_id.to_string())
    }
}

struct IdentityState {
    /// The key of the next certificate: made by csrPem(), consumed by install().
    pending: Option<Arc<WorkloadKey>>,
    current: Option<Arc<WorkloadCertificate>>,
    bundle: Option<Arc<TrustBundle>>,
}

/// A proxy's workload identity: its key pairs are generated here, CSRs go out, and
/// certificates come back in through install(), which checks them before use. Each
/// certificate gets a fresh key; the previous certificate stays in force until the next
/// one is installed.
#[napi]
pub struct BindingWorkloadIdentity {
    spiffe_id: SpiffeId,
    state: Mutex<IdentityState>,
}

#[napi]
impl BindingWorkloadIdentity {
    /// An identity for `spiffeId` (`spiffe://<trust domain>/ns/<namespace>/sa/<service>`),
    /// with no certificate yet.
    #[napi(constructor)]
    pub fn new(spiffe_id: String) -> Result<Self> {
        let spiffe_id = SpiffeId::parse(&spiffe_id).map_err(to_napi)?;
        if spiffe_id.workload_name().is_none() {
            return Err(invalid(format!(
                "{spiffe_id}: expected a workload id of the form spiffe://<trust domain>/ns/<namespace>/sa/<service>"
            )));
        }
        Ok(Self {
            spiffe_id,
            state: Mutex::new(IdentityState {
                pending: None,
                current: None,
                bundle: None,
            }),
        })
    }

    #[napi(getter)]
    pub fn spiffe_id(&self) -> String {
        self.spiffe_id.to_string()
    }

    /// A CSR (PEM) for the key of the next certificate. The first call after an install
    /// (or ever) generates a new ECDSA P-256 key; later calls before the next install
    /// return a CSR for the same key, so retries do not pile up keys.
    #[napi]
    pub fn csr_pem(&self) -> Result<String> {
        let key = {
            let mut state = self.state.lock();
            match &state.pending {
                Some(key) => key.clone(),
                None => {
                    let key = Arc::new(WorkloadKey::generate().map_err(to_napi)?);
                    state.pending = Some(key.clone());
                    key
                }
            }
        };
        key.csr_pem(&self.spiffe_id).map_err(to_napi)
    }

    /// Installs the certificate the CA issued for the pending key, with the trust bundle
    /// that came with it. Throws (code IdentityUntrusted) unless the leaf is for the
    /// pending key and this identity and the chain verifies against `trustBundlePem` now;
    /// the certificate in force is then unchanged.
    #[napi]
    pub fn install(
        &self,
        certificate_chain_pem: String,
        trust_bundle_pem: String,
    ) -> Result<BindingCertificateInfo> {
        let mut state = self.state.lock();
        let key = state.pending.clone().ok_or_else(|| {
            napi::Error::new(
                "IdentityUntrusted",
                "no CSR is outstanding: call csrPem() and send it before installing a certificate"
                    .to_string(),
            )
        })?;
        let bundle = TrustBundle::from_pem(
            self.spiffe_id.trust_domain(),
            &trust_bundle_pem,
            "trust bundle",
        )
        .map_err(to_napi)?;
        let certificate = WorkloadCertificate::new(
            key,
            &certificate_chain_pem,
            &self.spiffe_id,
            &bundle,
            SystemTime::now(),
        )
        .map_err(to_napi)?;
        let info = certificate_info(&certificate);
        state.pending = None;
        state.current = Some(Arc::new(certificate));
        state.bundle = Some(Arc::new(bundle));
        Ok(info)
    }

    /// Replaces the trust bundle (a root added or removed) without a new certificate.
    /// Throws unless the new bundle still trusts the certificate in force.
    #[napi]
    pub fn update_trust_bundle(&self, trust_bundle_pem: String) -> Result<()> {
        let mut state = self.state.lock();
        let bundle = TrustBundle::from_pem(
            self.spiffe_id.trust_domain(),
            &trust_bundle_pem,
            "trust bundle",
        )
        .map_err(to_napi)?;
        if let Some(current) = &state.current {
            bundle
                .verify_peer(current.chain(), PeerRole::Client, SystemTime::now())
                .map_err(|e| {
                    to_napi(
                        e.context(
                            "the new trust bundle does not trust this workload's certificate",
                        ),
                    )
                })?;
        }
        state.bundle = Some(Arc::new(bundle));
        Ok(())
    }

    /// The certificate in force, or null before the first install.
    #[napi(getter)]
    pub fn certificate(&self) -> Option<BindingCertificateInfo> {
        self.state.lock().current.as_deref().map(certificate_info)
    }

    /// The certificate chain in force (public), PEM; null before the first install.
    #[napi(getter)]
    pub fn certificate_chain_pem(&self) -> Option<String> {
        self.state.lock().current.as_ref().map(|c| c.chain_pem())
    }

    /// The trust bundle in force, PEM; null before the first install.
    #[napi(getter)]
    pub fn trust_bundle_pem(&self) -> Option<String> {
        self.state.lock().bundle.as_ref().map(|b| b.to_pem())
    }

    /// When to renew: `fraction` (default 0.7) of the certificate's life after its
    /// notBefore, in ms since the epoch; null before the first install.
    #[napi]
    pub fn renew_at(&self, fraction: Option<f64>) -> Option<f64> {
        let fraction = fraction.unwrap_or(0.7);
        self.state
            .lock()
            .current
            .as_ref()
            .map(|c| unix_millis(c.renew_at(fraction)))
    }
}

impl BindingWorkloadIdentity {
    /// The certificate (with its key) and trust bundle in force, for the engine's TLS
    /// configuration. Rust only.
    pub(crate) fn in_force(&self) -> Option<(Arc<WorkloadCertificate>, Arc<TrustBundle>)> {
        let state = self.state.lock();
        Some((state.current.clone()?, state.bundle.clone()?))
    }
}

fn certificate_info(certificate: &WorkloadCertificate) -> BindingCertificateInfo {
    BindingCertificateInfo {
        subject: String::new(),
        spiffe_id: certificate.spiffe_id().to_string(),
        not_before: unix_millis(certificate.not_before()),
        not_after: unix_millis(certificate.not_after()),
        serial: certificate.serial().to_string(),
    }
}
