//! One error type for the crate: a kind the caller can map (to a gRPC status, an exit
//! code) and one line for the operator. Messages never include key material.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Input from a peer or an operator is malformed or refused by policy: a CSR that does
    /// not parse or whose signature is wrong, a key of an unsupported type, a bad SPIFFE id.
    InvalidInput,
    /// A certificate does not chain to the trust bundle, is expired or not yet valid, or
    /// names another identity or key.
    Untrusted,
    /// A file could not be read or written, or has unsafe permissions.
    Io,
    /// The CA cannot sign right now (its certificate expired, or is not valid yet).
    Unavailable,
    /// A failure inside the crypto library that input cannot explain.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn untrusted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Untrusted, message)
    }

    pub(crate) fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<rcgen::Error> for Error {
    fn from(err: rcgen::Error) -> Self {
        // rcgen's messages name the problem (never the key bytes).
        Error::internal(format!("certificate generation failed: {err}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
