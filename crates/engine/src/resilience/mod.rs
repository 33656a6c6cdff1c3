//! Resilience on the data path: fault injection, local rate limits, retries with budgets,
//! circuit breaking and outlier ejection.
//!
//! Policies are compiled into the snapshot with the rules and services they belong to; a
//! rule or service without one pays nothing on the request path.

pub mod fault;

#[cfg(test)]
mod tests;

pub use fault::{grpc_status_of_http, Faults, Injected};
