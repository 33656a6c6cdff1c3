//! Listening sockets and their accept loops, reconciled across applies.
//!
//! A listener is identified by (kind, configured address, ordinal), the ordinal counting
//! earlier listeners of the same kind and address in the config: only port-0 listeners can
//! share an address, and they are told apart by their order. An apply keeps the listeners it
//! still names (their sockets never close, and connections read the snapshot in force),
//! binds the new ones before the snapshot swap (so a bind failure changes nothing), and
//! after the swap stops the accept loops of those no longer named; their open connections
//! carry on.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::config::ProxyConfig;
use crate::engine::{ApplyError, ListenerInfo, ListenerKind};
use crate::http::{inbound, outbound};
use crate::shared::Shared;
use crate::tcp;

const BACKLOG: i32 = 1024;
/// Pause after an accept error that is about this process (out of file descriptors),
/// so the loop does not spin while connections queue in the backlog.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Which listener of the config a connection came through (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListenerId {
    pub(crate) kind: ListenerKind,
    pub(crate) configured: SocketAddr,
    pub(crate) ordinal: usize,
}

/// A listener a config asks for, with the config path named in bind errors.
pub(crate) struct Wanted {
    id: ListenerId,
    path: String,
}

/// The listeners of `config`, in config order.
pub(crate) fn wanted(config: &ProxyConfig) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut push = |kind: ListenerKind, configured: SocketAddr, path: String| {
        let ordinal = wanted
            .iter()
            .filter(|w| w.id.kind == kind && w.id.configured == configured)
            .count();
        wanted.push(Wanted {
            id: ListenerId {
                kind,
                configured,
                ordinal,
            },
            path,
        });
    };
    for (i, inbound) in config.inbound.iter().enumerate() {
        push(
            ListenerKind::Inbound,
            inbound.listen,
            format!("inbound[{i}].listen"),
        );
    }
    if let Some(outbound) = &config.outbound {
        push(
            ListenerKind::Outbound,
            outbound.listen,
            "outbound.listen".into(),
        );
    }
    for (i, tcp) in config.tcp_outbound.iter().enumerate() {
        push(
            ListenerKind::TcpOutbound,
            tcp.listen,
            format!("outbound.tcp[{i}].listen"),
        );
    }
    wanted
}

struct Listener {
    id: ListenerId,
    bound: SocketAddr,
    socket: Arc<TcpListener>,
    stop: CancellationToken,
}

impl Listener {
    fn info(&self) -> ListenerInfo {
        ListenerInfo {
            kind: self.id.kind,
            configured: self.id.configured,
            bound: self.bound,
        }
    }

    /// Stops the accept loop and stops accepting at once: `shutdown` on a listening socket
    /// makes the kernel refuse new connections even while the loop task still holds the fd.
    fn close(self) {
        self.stop.cancel();
        if let Err(e) = SockRef::from(&*self.socket).shutdown(Shutdown::Both) {
            tracing::debug!(addr = %self.bound, error = %e, "closing a listener");
        }
    }
}

/// The listeners in force, in config order.
#[derive(Default)]
pub(crate) struct Listeners {
    active: Vec<Listener>,
}

/// Bound but not yet serving: the outcome of [`Listeners::prepare`].
pub(crate) struct Prepared {
    slots: Vec<Slot>,
}

enum Slot {
    /// An active listener, by index, kept as is.
    Keep(usize),
    New {
        id: ListenerId,
        socket: Arc<TcpListener>,
    },
}

impl Listeners {
    pub(crate) fn infos(&self) -> Vec<ListenerInfo> {
        self.active.iter().map(Listener::info).collect()
    }

    pub(crate) fn bound_addrs(&self) -> Vec<SocketAddr> {
        self.active.iter().map(|listener| listener.bound).collect()
    }

    /// Binds every wanted listener that is not active yet. On a failure the sockets bound
    /// so far are dropped (closed) and the active set is untouched.
    pub(crate) fn prepare(
        &self,
        wanted: &[Wanted],
        handle: &Handle,
    ) -> Result<Prepared, ApplyError> {
        let mut slots = Vec::with_capacity(wanted.len());
        for want in wanted {
            if let Some(index) = self.active.iter().position(|l| l.id == want.id) {
                slots.push(Slot::Keep(index));
                continue;
            }
            let addr = want.id.configured;
            // A fixed port moving to another kind of listener (inbound to outbound, say) keeps
            // its socket: binding anew would fail while the old one still listens.
            let handover = (addr.port() != 0)
                .then(|| {
                    self.active.iter().find(|l| {
                        l.id.configured == addr && !wanted.iter().any(|other| other.id == l.id)
                    })
                })
                .flatten();
            let socket = match handover {
                Some(old) => old.socket.clone(),
                None => bind(addr, handle).map_err(|source| ApplyError::Bind {
                    path: want.path.clone(),
                    addr,
                    source,
                })?,
            };
            slots.push(Slot::New {
                id: want.id,
                socket,
            });
        }
        Ok(Prepared { slots })
    }

    /// After the swap: starts the new accept loops, stops those of listeners no longer named.
    pub(crate) fn commit(&mut self, prepared: Prepared, shared: &Arc<Shared>, handle: &Handle) {
        let mut previous: Vec<Option<Listener>> = self.active.drain(..).map(Some).collect();
        let mut active = Vec::with_capacity(prepared.slots.len());
        for slot in prepared.slots {
            match slot {
                Slot::Keep(index) => {
                    if let Some(listener) = previous[index].take() {
                        active.push(listener);
                    }
                }
                Slot::New { id, socket } => {
                    let bound = socket.local_addr().unwrap_or(id.configured);
                    let stop = CancellationToken::new();
                    handle.spawn(accept_loop(
                        shared.clone(),
                        id,
                        socket.clone(),
                        stop.clone(),
                    ));
                    active.push(Listener {
                        id,
                        bound,
                        socket,
                        stop,
                    });
                }
            }
        }
        for listener in previous.into_iter().flatten() {
            let handed_over = active
                .iter()
                .any(|l| Arc::ptr_eq(&l.socket, &listener.socket));
            if handed_over {
                listener.stop.cancel();
            } else {
                listener.close();
            }
        }
        self.active = active;
    }

    /// Shutdown: stop accepting everywhere, now.
    pub(crate) fn close_all(&mut self) {
        for listener in self.active.drain(..) {
            listener.close();
        }
    }
}

/// A nonblocking listening socket with SO_REUSEADDR (a restart can rebind while old
/// connections sit in TIME_WAIT) and a backlog of 1024.
fn bind(addr: SocketAddr, handle: &Handle) -> io::Result<Arc<TcpListener>> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    // Registering with the reactor needs the engine runtime's context.
    let _runtime = handle.enter();
    Ok(Arc::new(TcpListener::from_std(socket.into())?))
}

async fn accept_loop(
    shared: Arc<Shared>,
    id: ListenerId,
    socket: Arc<TcpListener>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            accepted = socket.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we accepted: nothing to do.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(e) => {
                if stop.is_cancelled() {
                    return;
                }
                tracing::warn!(addr = %id.configured, error = %e, "accept failed; pausing this listener briefly");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Best effort: a failure only costs latency.
        let _ = stream.set_nodelay(true);
        let connection = shared.clone();
        shared.drain.spawn(async move {
            match id.kind {
                ListenerKind::Inbound => inbound::serve_connection(connection, id, stream).await,
                ListenerKind::Outbound => {
                    outbound::serve_connection(connection, peer, stream).await
                }
                ListenerKind::TcpOutbound => {
                    tcp::serve_outbound_connection(connection, id, peer, stream).await
                }
            }
        });
    }
}
