//! The engine facade: owns the tokio runtime, the listeners and the snapshot in force.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::ProxyConfig;
use crate::snapshot::ConfigError;
use crate::stats::StatsSnapshot;

pub struct EngineOptions {
    /// Tokio worker threads; 1 for a sidecar.
    pub worker_threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { worker_threads: 1 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    Inbound,
    Outbound,
    TcpOutbound,
}

#[derive(Clone, Debug)]
pub struct ListenerInfo {
    pub kind: ListenerKind,
    /// The address as configured (port may be 0).
    pub configured: SocketAddr,
    /// The address actually bound.
    pub bound: SocketAddr,
}

/// Why `apply` refused a config; the previous config stays in force.
#[derive(Debug)]
pub enum ApplyError {
    Config(ConfigError),
    /// A listener could not be bound; `path` names the config field (`inbound[0].listen`).
    Bind { path: String, addr: SocketAddr, source: io::Error },
    /// `apply` after `shutdown` began.
    ShuttingDown,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Config(e) => e.fmt(f),
            ApplyError::Bind { path, addr, source } => write!(f, "{path}: cannot listen on {addr}: {source}"),
            ApplyError::ShuttingDown => f.write_str("the engine is shutting down"),
        }
    }
}

impl std::error::Error for ApplyError {}

pub struct Engine {/* fields: data-path helper */}

impl Engine {
    /// Starts the runtime; no listener until the first `apply`.
    pub fn new(options: EngineOptions) -> io::Result<Engine> {
        todo!()
    }

    /// Validates, binds new listeners, swaps the snapshot, closes listeners no longer named.
    /// Synchronous and quick; returns the new version (1, 2, ...). On error nothing changes.
    pub fn apply(&self, config: ProxyConfig) -> Result<u64, ApplyError> {
        todo!()
    }

    /// The version in force, 0 before the first successful apply.
    pub fn version(&self) -> u64 {
        todo!()
    }

    pub fn listeners(&self) -> Vec<ListenerInfo> {
        todo!()
    }

    pub fn stats(&self) -> StatsSnapshot {
        todo!()
    }

    /// Stops accepting, lets in-flight requests and connections finish for up to `drain`,
    /// then closes everything and stops the runtime. Idempotent. Safe to await from any
    /// runtime (it does not block a runtime thread).
    pub async fn shutdown(&self, drain: Duration) {
        todo!()
    }
}
