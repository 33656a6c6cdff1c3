//! The engine facade: owns the tokio runtime, the listeners and the snapshot in force.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;

use crate::config::ProxyConfig;
use crate::listener::{self, Listeners};
use crate::shared::Shared;
use crate::snapshot::{ConfigError, Snapshot};
use crate::stats::StatsSnapshot;
use crate::tls::WorkloadTls;

/// Runtime shutdown waits this long for worker threads to drop what remains after a drain.
const RUNTIME_STOP_GRACE: Duration = Duration::from_secs(1);
/// Bounds of the idle-pool sweep interval (half the pool idle timeout in between).
const REAP_INTERVAL_MIN: Duration = Duration::from_secs(1);
const REAP_INTERVAL_MAX: Duration = Duration::from_secs(30);

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
    Bind {
        path: String,
        addr: SocketAddr,
        source: io::Error,
    },
    /// `apply` after `shutdown` began.
    ShuttingDown,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Config(e) => e.fmt(f),
            ApplyError::Bind { path, addr, source } => {
                write!(f, "{path}: cannot listen on {addr}: {source}")
            }
            ApplyError::ShuttingDown => f.write_str("the engine is shutting down"),
        }
    }
}

impl std::error::Error for ApplyError {}

/// One data plane: its own tokio runtime (Node's event loop never runs engine work), the
/// listeners, the snapshot in force, pools and stats.
pub struct Engine {
    shared: Arc<Shared>,
    handle: Handle,
    /// Taken out exactly once, to be stopped without blocking (shutdown, or drop).
    runtime: Arc<Mutex<Option<Runtime>>>,
    /// Also serialises `apply` (and `apply` against the start of `shutdown`).
    listeners: Mutex<Listeners>,
    shutting_down: AtomicBool,
    /// Becomes true once a shutdown has finished (every `shutdown` caller waits on it).
    stopped: Arc<watch::Sender<bool>>,
}

impl Engine {
    /// Starts the runtime; no listener until the first `apply`.
    pub fn new(options: EngineOptions) -> io::Result<Engine> {
        let thread_index = AtomicUsize::new(0);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .thread_name_fn(move || {
                format!(
                    "mesh-engine-{}",
                    thread_index.fetch_add(1, Ordering::Relaxed)
                )
            })
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let shared = Arc::new(Shared::new());
        handle.spawn(reap_idle_connections(shared.clone()));
        Ok(Engine {
            shared,
            handle,
            runtime: Arc::new(Mutex::new(Some(runtime))),
            listeners: Mutex::new(Listeners::default()),
            shutting_down: AtomicBool::new(false),
            stopped: Arc::new(watch::Sender::new(false)),
        })
    }

    /// Validates, binds new listeners, swaps the snapshot, closes listeners no longer named.
    /// Synchronous and quick; returns the new version (1, 2, ...). On error nothing changes.
    pub fn apply(&self, config: ProxyConfig) -> Result<u64, ApplyError> {
        let mut listeners = self.listeners.lock();
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(ApplyError::ShuttingDown);
        }
        let version = self.version() + 1;
        let snapshot = Snapshot::compile(
            &config,
            version,
            &self.shared.loads,
            &self.shared.stats,
            &self.shared.resilience,
        )
        .map_err(ApplyError::Config)?;
        let prepared = listeners.prepare(&listener::wanted(&config), &self.handle)?;
        snapshot.activate();
        self.shared.snapshot.store(Some(Arc::new(snapshot)));
        listeners.commit(prepared, &self.shared, &self.handle);
        self.shared.bound.store(Arc::new(listeners.bound_addrs()));
        Ok(version)
    }

    /// The version in force, 0 before the first successful apply.
    pub fn version(&self) -> u64 {
        self.shared
            .snapshot
            .load()
            .as_ref()
            .map_or(0, |snapshot| snapshot.version)
    }

    /// Installs (or, with `None`, removes) the workload identity inbound mTLS is served
    /// with. Takes effect for the next handshake; open connections are not touched.
    pub fn set_identity(&self, identity: Option<WorkloadTls>) {
        self.shared.identity.store(identity.map(Arc::new));
    }

    /// The SPIFFE id of the identity in force, if any.
    pub fn identity(&self) -> Option<String> {
        self.shared
            .identity
            .load()
            .as_ref()
            .map(|identity| identity.spiffe_id().to_owned())
    }

    pub fn listeners(&self) -> Vec<ListenerInfo> {
        self.listeners.lock().infos()
    }

    pub fn stats(&self) -> StatsSnapshot {
        let mut stats = self.shared.stats.snapshot();
        let (breakers, endpoint_health) = self.shared.resilience.breaker_stats();
        stats.breakers = breakers;
        stats.endpoint_health = endpoint_health;
        stats
    }

    /// Stops accepting, lets in-flight requests and connections finish for up to `drain`,
    /// then closes everything and stops the runtime. Idempotent. Safe to await from any
    /// runtime (it does not block a runtime thread).
    pub async fn shutdown(&self, drain: Duration) {
        let mut stopped = self.stopped.subscribe();
        if !self.shutting_down.swap(true, Ordering::AcqRel) {
            self.listeners.lock().close_all();
            self.shared.bound.store(Arc::new(Vec::new()));
            // The drain runs on the engine runtime and finishes even if this future is
            // dropped; callers only wait for the `stopped` flag.
            let shared = self.shared.clone();
            let runtime = self.runtime.clone();
            let stopped_tx = self.stopped.clone();
            self.handle.spawn(async move {
                let remaining = shared.drain.drain(drain).await;
                if remaining > 0 {
                    tracing::info!(
                        remaining,
                        "drain timeout elapsed; closing the remaining connections"
                    );
                }
                stop_runtime(runtime, stopped_tx);
            });
        }
        // Err only if the sender is gone, i.e. the engine itself is gone.
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }
}

/// Stops the runtime from a thread of its own, so the wait for its workers blocks no
/// runtime thread, then tells the `shutdown` callers.
fn stop_runtime(runtime: Arc<Mutex<Option<Runtime>>>, stopped: Arc<watch::Sender<bool>>) {
    let slot = runtime.clone();
    let notify = stopped.clone();
    let spawned = std::thread::Builder::new()
        .name("mesh-engine-stop".into())
        .spawn(move || {
            let taken = slot.lock().take();
            if let Some(runtime) = taken {
                runtime.shutdown_timeout(RUNTIME_STOP_GRACE);
            }
            notify.send_replace(true);
        });
    if spawned.is_err() {
        // No thread to wait in: stop without waiting (never blocks, never panics).
        let taken = runtime.lock().take();
        if let Some(runtime) = taken {
            runtime.shutdown_background();
        }
        stopped.send_replace(true);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // May run inside another runtime (napi's): never block, never drop a Runtime here.
        let taken = self.runtime.lock().take();
        if let Some(runtime) = taken {
            runtime.shutdown_background();
        }
    }
}

/// Closes pooled upstream connections idle longer than the pool idle timeout in force.
async fn reap_idle_connections(shared: Arc<Shared>) {
    let default_idle = Duration::from_millis(crate::config::GlobalTimeouts::default().pool_idle_ms);
    loop {
        let idle = shared
            .snapshot
            .load()
            .as_ref()
            .map_or(default_idle, |snapshot| {
                Duration::from_millis(snapshot.timeouts.pool_idle_ms)
            });
        tokio::time::sleep((idle / 2).clamp(REAP_INTERVAL_MIN, REAP_INTERVAL_MAX)).await;
        shared.pools.reap(idle);
    }
}
