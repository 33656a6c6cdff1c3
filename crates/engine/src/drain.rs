//! Graceful shutdown: every accepted connection is a tracked task, and one signal asks
//! them all to wind down (HTTP connections finish what is in flight and close, HTTP/2
//! sends GOAWAY; opaque TCP tunnels keep running until the drain deadline).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

#[derive(Default)]
pub(crate) struct Drain {
    signal: CancellationToken,
    connections: TaskTracker,
}

impl Drain {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Runs one connection (or tunnel) as a tracked task on the current runtime.
    pub(crate) fn spawn<F>(&self, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.connections.spawn(connection);
    }

    /// Resolves once draining has begun; HTTP connections select on it.
    pub(crate) fn signaled(&self) -> WaitForCancellationFuture<'_> {
        self.signal.cancelled()
    }

    /// Signals every connection and waits until all tracked connections ended or `deadline`
    /// elapsed. Returns how many were still open at the deadline (they are dropped with the
    /// runtime).
    pub(crate) async fn drain(&self, deadline: Duration) -> usize {
        self.signal.cancel();
        self.connections.close();
        match tokio::time::timeout(deadline, self.connections.wait()).await {
            Ok(()) => 0,
            Err(_) => self.connections.len(),
        }
    }
}
