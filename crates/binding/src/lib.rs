//! The N-API binding: the only place that knows about JavaScript. Config comes in as
//! `Binding*` objects (their TypeScript types are generated from these structs), stats
//! go out as plain objects. No request ever crosses this boundary.

mod config;
mod identity;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use mesh_engine::{Engine, EngineOptions, ListenerKind, WorkloadTls};
use napi::bindgen_prelude::*;
use napi_derive::napi;

pub use config::*;
pub use identity::*;
pub use stats::*;

/// The engine crate's version.
#[napi]
pub fn engine_version() -> String {
    mesh_engine::VERSION.to_string()
}

#[napi(object)]
pub struct BindingEngineOptions {
    /// Tokio worker threads for the data plane (default 1).
    pub worker_threads: Option<u32>,
}

#[napi(object)]
pub struct BindingListener {
    /// `inbound` | `outbound` | `tcp`.
    pub kind: String,
    /// The address as configured (port may be 0).
    pub configured: String,
    /// The address actually bound.
    pub bound: String,
}

/// One running data plane. Owns its own tokio runtime, listeners and connections.
#[napi]
pub struct BindingEngine {
    inner: Arc<Engine>,
}

#[napi]
impl BindingEngine {
    #[napi(constructor)]
    pub fn new(options: Option<BindingEngineOptions>) -> Result<Self> {
        let worker_threads = options.and_then(|o| o.worker_threads).unwrap_or(1).max(1) as usize;
        let engine = Engine::new(EngineOptions { worker_threads })
            .map_err(|e| Error::from_reason(format!("cannot start the engine: {e}")))?;
        Ok(Self {
            inner: Arc::new(engine),
        })
    }

    /// Validates and puts `config` in force; returns its version. Throws with a message
    /// naming the field on a bad config or a listener that cannot bind; the old config stays.
    #[napi]
    pub fn apply(&self, config: BindingProxyConfig) -> Result<u32> {
        let config = config.into_engine().map_err(Error::from_reason)?;
        let version = self
            .inner
            .apply(config)
            .map_err(|e| Error::from_reason(e.to_string()))?;
        Ok(version as u32)
    }

    /// Serves inbound mTLS with the certificate and trust bundle `identity` holds now (the
    /// key stays in Rust). Call again after each `install` or `updateTrustBundle`: new
    /// handshakes use the new certificate, open connections keep theirs. Throws if the
    /// identity has no certificate installed yet.
    #[napi]
    pub fn set_identity(&self, identity: &BindingWorkloadIdentity) -> Result<()> {
        let (certificate, bundle) = identity.in_force().ok_or_else(|| {
            Error::from_reason("the workload identity has no certificate installed yet")
        })?;
        let tls =
            WorkloadTls::new(certificate, bundle).map_err(|e| Error::from_reason(e.to_string()))?;
        self.inner.set_identity(Some(tls));
        Ok(())
    }

    /// Forgets the identity: strict ports refuse every connection, permissive ones take
    /// plaintext only.
    #[napi]
    pub fn clear_identity(&self) {
        self.inner.set_identity(None);
    }

    /// The SPIFFE id inbound mTLS is served with, or null.
    #[napi(getter)]
    pub fn identity(&self) -> Option<String> {
        self.inner.identity()
    }

    /// The version in force; 0 before the first apply.
    #[napi(getter)]
    pub fn version(&self) -> u32 {
        self.inner.version() as u32
    }

    #[napi]
    pub fn listeners(&self) -> Vec<BindingListener> {
        self.inner
            .listeners()
            .into_iter()
            .map(|l| BindingListener {
                kind: match l.kind {
                    ListenerKind::Inbound => "inbound",
                    ListenerKind::Outbound => "outbound",
                    ListenerKind::TcpOutbound => "tcp",
                }
                .to_string(),
                configured: l.configured.to_string(),
                bound: l.bound.to_string(),
            })
            .collect()
    }

    /// All counters and histograms, read as one snapshot.
    #[napi]
    pub fn stats(&self) -> BindingStats {
        BindingStats::from_engine(self.inner.stats())
    }

    /// Stops accepting, drains in-flight work for up to `drainMs`, then stops the runtime.
    #[napi]
    pub async fn shutdown(&self, drain_ms: u32) -> Result<()> {
        let engine = self.inner.clone();
        engine
            .shutdown(Duration::from_millis(drain_ms as u64))
            .await;
        Ok(())
    }
}
