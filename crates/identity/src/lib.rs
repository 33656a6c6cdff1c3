//! Workload identity for mesh-core, in pure Rust (no napi): the control plane's
//! certificate authority, workload keys and CSRs, SPIFFE ids and trust bundles.
//!
//! - [`CertificateAuthority`] creates or loads a CA and signs CSRs. The identity it
//!   certifies is the one its caller decided (from a join token); nothing in the CSR but
//!   its public key is used.
//! - [`WorkloadKey`] is a workload's ECDSA P-256 key pair; [`WorkloadCertificate`] pairs
//!   it with a checked certificate chain. The private key leaves these types only as a
//!   rustls `PrivateKeyDer`, for the engine's TLS configuration.
//! - [`TrustBundle`] holds the roots of a trust domain (several during a rotation) and
//!   verifies peer chains the way a TLS handshake does, returning the peer's SPIFFE id.
//! - [`files`] keeps the CA in a data directory (mode 0700, key 0600, atomic writes).

mod bundle;
mod ca;
mod csr;
mod error;
pub mod files;
mod spiffe;
mod workload;
mod x509;

pub use bundle::{PeerRole, TrustBundle, VerifiedPeer};
pub use ca::{CertificateAuthority, IssuedCertificate, CLOCK_SKEW_ALLOWANCE, ROOT_VALIDITY};
pub use csr::{verify_csr, CsrPublicKey, MAX_CSR_PEM_BYTES};
pub use error::{Error, ErrorKind, Result};
pub use spiffe::{check_trust_domain, SpiffeId};
pub use workload::{WorkloadCertificate, WorkloadKey};
pub use x509::{
    certificates_from_pem, certificates_to_pem, format_time, unix_millis, unix_seconds,
    CertificateInfo,
};

/// Re-exported so users of this crate name the same DER types rustls uses.
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(test)]
mod tests;
