//! Data-path integration tests: a real engine between real clients and servers on loopback.

mod authz;
mod inbound;
mod lifecycle;
mod outbound;
mod resilience;
mod support;
mod tcp;
mod tls;
