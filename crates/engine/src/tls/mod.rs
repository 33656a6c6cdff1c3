//! TLS in the data plane: the workload identity the proxy serves mesh mTLS with, the
//! verifier that admits only clients whose certificate the trust bundle verifies, and
//! user-given certificates of ingress ports.
//!
//! rustls with the ring provider, TLS 1.3 only. Configs are built once per identity (or
//! per apply for ingress ports) and shared by every handshake; an identity renewal swaps
//! the whole [`WorkloadTls`], so open connections keep the one they were made with.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Protocol;
use crate::snapshot::ConfigError;
use mesh_identity::{CertificateInfo, PeerRole, SpiffeId, TrustBundle, WorkloadCertificate};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

#[cfg(test)]
mod tests;

/// ALPN protocols inbound ports offer, in preference order.
pub(crate) const ALPN_H2: &[u8] = b"h2";
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The one crypto provider of the engine.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Why a TLS config could not be built.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn server_builder() -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>, TlsError>
{
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError(format!("TLS setup: {e}")))
}

fn with_alpn(mut config: ServerConfig, protocols: &[&[u8]]) -> Arc<ServerConfig> {
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// What an ingress port offers by ALPN. HTTP/2 only when the port says the workload
/// speaks it: the proxy keeps the client's version for a workload of unknown protocol, and
/// browsers offer h2 to everyone. Opaque TCP ports negotiate nothing.
fn ingress_alpn(protocol: Protocol) -> &'static [&'static [u8]] {
    match protocol {
        Protocol::Auto | Protocol::Http1 => &[ALPN_HTTP1],
        Protocol::Http2 | Protocol::Grpc => &[ALPN_H2, ALPN_HTTP1],
        Protocol::Tcp => &[],
    }
}

/// The workload identity the engine serves (and, later, originates) mesh mTLS with.
pub struct WorkloadTls {
    certificate: Arc<WorkloadCertificate>,
    bundle: Arc<TrustBundle>,
    server: Arc<ServerConfig>,
    /// The SNI mesh clients send to this workload (see [`mesh_server_name`]).
    server_name: Option<String>,
}

impl WorkloadTls {
    /// The certificate in force and the trust bundle peers are verified against.
    pub fn new(
        certificate: Arc<WorkloadCertificate>,
        bundle: Arc<TrustBundle>,
    ) -> Result<Self, TlsError> {
        let verifier = Arc::new(BundleClientVerifier {
            bundle: bundle.clone(),
            algorithms: provider().signature_verification_algorithms,
        });
        let server = server_builder()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certificate.chain().to_vec(), certificate.private_key_der())
            .map_err(|e| {
                TlsError(format!(
                    "the workload certificate of {} cannot serve TLS: {e}",
                    certificate.spiffe_id()
                ))
            })?;
        Ok(Self {
            server_name: mesh_server_name(certificate.spiffe_id()),
            certificate,
            bundle,
            // Mesh clients say which version the workload gets (x-mesh-orig-proto).
            server: with_alpn(server, &[ALPN_H2, ALPN_HTTP1]),
        })
    }

    pub fn spiffe_id(&self) -> &str {
        self.certificate.spiffe_id().as_str()
    }

    pub fn not_after(&self) -> SystemTime {
        self.certificate.not_after()
    }

    pub fn bundle(&self) -> &Arc<TrustBundle> {
        &self.bundle
    }

    pub(crate) fn server_config(&self) -> &Arc<ServerConfig> {
        &self.server
    }

    /// Whether a ClientHello naming `sni` is mesh traffic for this workload. Identities
    /// not of the `/ns/<ns>/sa/<name>` form have no mesh name: every ClientHello is.
    pub(crate) fn is_mesh_server_name(&self, sni: Option<&str>) -> bool {
        match &self.server_name {
            None => true,
            Some(name) => sni.is_some_and(|sni| sni.eq_ignore_ascii_case(name)),
        }
    }

    pub fn certificate(&self) -> &Arc<WorkloadCertificate> {
        &self.certificate
    }

    /// Client config for mesh mTLS from this workload to one holding `expected`.
    pub fn client_config(&self, expected: SpiffeId) -> Result<ClientConfig, TlsError> {
        mesh_client_config(self.bundle.clone(), expected, Some(&self.certificate))
    }
}

impl fmt::Debug for WorkloadTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadTls")
            .field("spiffe_id", &self.spiffe_id())
            .field("roots", &self.bundle.len())
            .finish_non_exhaustive()
    }
}

/// Admits a client only if its chain verifies against the trust bundle for client use and
/// names a SPIFFE id of the bundle's trust domain (the checks of [`TrustBundle::verify_peer`]).
#[derive(Debug)]
struct BundleClientVerifier {
    bundle: Arc<TrustBundle>,
    algorithms: WebPkiSupportedAlgorithms,
}

fn system_time(now: UnixTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(now.as_secs())
}

impl ClientCertVerifier for BundleClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Mesh clients hold exactly one certificate: hints would only add bytes.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        match self
            .bundle
            .verify_peer(&chain, PeerRole::Client, system_time(now))
        {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(e) => {
                tracing::debug!(error = %e.message(), "inbound mTLS: client certificate refused");
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The SNI of mesh mTLS to the workload `id` (`<name>.<namespace>.identity.<trust
/// domain>`), so a permissive port can tell the mesh's ClientHellos from the workload's
/// own TLS clients, which it passes through. The certificate check is on the SPIFFE id,
/// never on this name. `None` for ids that are not of the workload form or make no DNS name.
pub fn mesh_server_name(id: &SpiffeId) -> Option<String> {
    let (namespace, name) = id.workload_name()?;
    let dns = format!("{name}.{namespace}.identity.{}", id.trust_domain()).to_ascii_lowercase();
    match ServerName::try_from(dns.as_str()) {
        Ok(ServerName::DnsName(_)) => Some(dns),
        _ => None,
    }
}

/// The longest ClientHello read to find its SNI; longer ones are not the mesh's.
const MAX_CLIENT_HELLO: usize = 32 * 1024;

/// Reads the rest of the ClientHello that `prefix` starts, until `deadline`, and returns
/// its SNI with every byte read (to be replayed to whoever handles the connection). A
/// ClientHello rustls cannot parse, an overlong one, or a client that stops sending
/// gives no name.
pub(crate) async fn read_server_name<I>(
    io: &mut I,
    prefix: bytes::Bytes,
    deadline: tokio::time::Instant,
) -> std::io::Result<(Option<String>, bytes::Bytes)>
where
    I: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut acceptor = rustls::server::Acceptor::default();
    let mut buf = bytes::BytesMut::from(&prefix[..]);
    let mut fed = 0;
    loop {
        while fed < buf.len() {
            let mut unread = &buf[fed..];
            match acceptor.read_tls(&mut unread) {
                Ok(0) | Err(_) => return Ok((None, buf.freeze())),
                Ok(n) => fed += n,
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let name = accepted.client_hello().server_name().map(str::to_owned);
                return Ok((name, buf.freeze()));
            }
            Ok(None) => {}
            Err(_) => return Ok((None, buf.freeze())),
        }
        if buf.len() >= MAX_CLIENT_HELLO {
            return Ok((None, buf.freeze()));
        }
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return Ok((None, buf.freeze())),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(_)) => {}
        }
    }
}

/// Client config for mesh mTLS to a server that must hold `expected` (a SPIFFE id): its
/// chain must verify against `bundle` for server use and name exactly that id; the DNS
/// name the handshake carries is not what is checked. `certificate` is presented as the
/// client's own when given. TLS 1.3, no ALPN (the caller sets it).
pub fn mesh_client_config(
    bundle: Arc<TrustBundle>,
    expected: SpiffeId,
    certificate: Option<&WorkloadCertificate>,
) -> Result<ClientConfig, TlsError> {
    let verifier = Arc::new(ExpectedServerVerifier {
        bundle,
        expected,
        algorithms: provider().signature_verification_algorithms,
    });
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match certificate {
        None => Ok(builder.with_no_client_auth()),
        Some(certificate) => builder
            .with_client_auth_cert(certificate.chain().to_vec(), certificate.private_key_der())
            .map_err(|e| {
                TlsError(format!(
                    "the workload certificate of {} cannot be presented: {e}",
                    certificate.spiffe_id()
                ))
            }),
    }
}

/// Admits a server whose chain the trust bundle verifies and whose SPIFFE id is the one
/// expected for the endpoint.
#[derive(Debug)]
struct ExpectedServerVerifier {
    bundle: Arc<TrustBundle>,
    expected: SpiffeId,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ExpectedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        let peer = self
            .bundle
            .verify_peer(&chain, PeerRole::Server, system_time(now))
            .map_err(|e| {
                tracing::debug!(error = %e.message(), expected = %self.expected, "mesh mTLS: server certificate refused");
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                )
            })?;
        if peer.spiffe_id != self.expected {
            tracing::debug!(found = %peer.spiffe_id, expected = %self.expected, "mesh mTLS: the server is not the expected workload");
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Originates mesh mTLS over `io` to a proxy that must prove `mesh.expected`, presenting
/// the identity in force, offering `alpn`; bounded by `timeout`. Errors say why (an
/// identity mismatch names both ids in the debug log).
pub(crate) async fn connect_mesh<I>(
    io: I,
    mesh: &crate::http::client::MeshTarget,
    alpn: &[&[u8]],
    timeout: Duration,
) -> std::io::Result<tokio_rustls::client::TlsStream<I>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut config = mesh
        .identity
        .client_config(SpiffeId::clone(&mesh.expected))
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Peers check the SPIFFE id, not this name; the trust domain is a valid DNS name.
    let name =
        mesh_server_name(&mesh.expected).unwrap_or_else(|| mesh.expected.trust_domain().to_owned());
    let name = ServerName::try_from(name).map_err(std::io::Error::other)?;
    let connect = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, io);
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(std::io::Error::new(
            e.kind(),
            format!("mTLS to {} failed: {e}", mesh.expected),
        )),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("mTLS handshake timed out after {}ms", timeout.as_millis()),
        )),
    }
}

/// The SPIFFE id of a verified peer's leaf certificate ("" if it names none, which the
/// verifier does not let through).
pub(crate) fn peer_spiffe_id(certificates: Option<&[CertificateDer<'_>]>) -> String {
    certificates
        .and_then(|chain| chain.first())
        .and_then(|leaf| CertificateInfo::parse(leaf).ok())
        .and_then(|info| info.spiffe_ids.into_iter().next())
        .unwrap_or_default()
}

/// Server config of an ingress port: the user's certificate and key from PEM files, no
/// client certificate asked. `field` is the config path of the port's `tls`.
pub(crate) fn ingress_server_config(
    certificate: &Path,
    key: &Path,
    protocol: Protocol,
    field: &str,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let error = |sub: &str, message: String| ConfigError {
        path: format!("{field}{sub}"),
        message,
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            error(
                ".certificate",
                format!(
                    "cannot read {}: {}",
                    certificate.display(),
                    describe_pem_error(&e)
                ),
            )
        })?;
    if chain.is_empty() {
        return Err(error(
            ".certificate",
            format!("{} holds no PEM certificate", certificate.display()),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        error(
            ".key",
            format!(
                "cannot read a private key from {}: {}",
                key.display(),
                describe_pem_error(&e)
            ),
        )
    })?;
    let config = server_builder()
        .map_err(|e| error("", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            error(
                "",
                format!(
                    "the key in {} does not fit the certificate in {} ({e})",
                    key.display(),
                    certificate.display()
                ),
            )
        })?;
    Ok(with_alpn(config, ingress_alpn(protocol)))
}

fn describe_pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM item of that kind".to_owned(),
        // Never echo the file's contents: it may be a private key.
        _ => "not valid PEM".to_owned(),
    }
}

/// Whether the first bytes of a connection are a TLS handshake record (a ClientHello):
/// content type 22, legacy version 3.x. `None`: too few bytes to say.
pub(crate) fn is_client_hello(prefix: &[u8]) -> Option<bool> {
    match prefix {
        [] => None,
        [0x16] | [0x16, 0x03] => None,
        [0x16, 0x03, minor, ..] => Some(*minor <= 0x04),
        _ => Some(false),
    }
}
