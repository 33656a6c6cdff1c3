//! mesh-engine: the data plane. Pure Rust, no N-API: listeners, protocol detection,
//! HTTP/1, HTTP/2 and TCP proxying, routing, load balancing, pools and stats.
//!
//! Control flows one way: a [`config::ProxyConfig`] is compiled into an immutable
//! [`snapshot::Snapshot`] and swapped in atomically; requests read whichever snapshot
//! is in force when they start. Stats and balancer load live outside snapshots so
//! a swap neither resets counters nor forgets endpoint latency.

pub mod authz;
pub mod balance;
pub mod config;
mod detect;
mod drain;
pub mod engine;
mod http;
mod listener;
pub mod resilience;
pub mod route;
mod shared;
pub mod snapshot;
pub mod stats;
mod tcp;
pub mod tls;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub use engine::{ApplyError, Engine, EngineOptions, ListenerInfo, ListenerKind};
pub use mesh_identity;
pub use tls::{mesh_client_config, mesh_server_name, TlsError, WorkloadTls};
