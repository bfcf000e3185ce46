//! The listening sockets: opened at startup from `bind`, `port` and
//! `tls-port`, and reopened when CONFIG SET changes one of them, as Redis
//! 7.0 does (connections already open stay; a change that cannot be bound
//! keeps the old sockets and fails with Redis's error).

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::AbortHandle;

use crate::cores::Cores;
use crate::state::Server;

/// The accept loops running, by kind, and what they hand connections to.
#[derive(Default)]
pub struct Listeners {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    cores: Option<Arc<Cores>>,
    plain: Vec<Loop>,
    tls: Vec<Loop>,
}

/// One accept loop and a second handle on its socket.
struct Loop {
    task: AbortHandle,
    socket: std::net::TcpListener,
}

impl Loop {
    /// Stops accepting now, before CONFIG SET replies, as Redis closes the
    /// old socket at once. Aborting the task alone closes the socket only
    /// when its runtime next drops it, so a client connecting right after
    /// the reply could still be served on the old address; shutting the
    /// listening socket down takes it out of LISTEN at once. The task is
    /// aborted first, so the wake-up does not run the loop again.
    fn stop(self) {
        self.task.abort();
        let _ = socket2::SockRef::from(&self.socket).shutdown(std::net::Shutdown::Read);
    }
}

/// Sockets on `port` at every `bind` address (`-` prefix: optional), as
/// Redis's `listenToPort`: an address that cannot be bound fails the whole
/// set unless it is optional.
///
/// ```
/// let l = rampart_server::listen::open("127.0.0.1", 0).unwrap();
/// assert_eq!(l.len(), 1);
/// ```
pub fn open(binds: &str, port: i64) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::new();
    for addr in binds.split_whitespace() {
        let (optional, addr) = match addr.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, addr),
        };
        let host = match addr {
            "*" => "0.0.0.0",
            "::*" => "::",
            a => a,
        };
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match bind(&target) {
            Ok(l) => listeners.push(l),
            Err(e) if optional => {
                tracing::debug!("Skipping optional address {target}: {e}")
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "Warning: Could not create server TCP listening socket {target}"
                )))
            }
        }
    }
    Ok(listeners)
}

fn bind(addr: &str) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, format!("{e}")))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        // `::` must not take the IPv4 port too: Redis binds `*` beside it.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(511)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Starts accepting on `listeners` (`true`: TLS) on the server's runtime.
pub fn serve(srv: &Arc<Server>, cores: Arc<Cores>, listeners: Vec<(std::net::TcpListener, bool)>) {
    let mut g = srv.listeners.inner.lock();
    g.cores = Some(cores);
    for (l, tls) in listeners {
        if let Some(h) = spawn(srv, &g, l, tls) {
            if tls {
                g.tls.push(h);
            } else {
                g.plain.push(h);
            }
        }
    }
}

fn spawn(srv: &Arc<Server>, g: &Inner, l: std::net::TcpListener, tls: bool) -> Option<Loop> {
    let rt = srv.persist.runtime.get()?;
    let cores = g.cores.clone()?;
    let socket = match l.try_clone() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("Could not register a listening socket: {e}");
            return None;
        }
    };
    let srv = srv.clone();
    let task = rt.spawn(async move {
        match tokio::net::TcpListener::from_std(l) {
            Ok(l) => crate::conn::accept_loop(srv, l, cores, tls).await,
            Err(e) => tracing::warn!("Could not register a listening socket: {e}"),
        }
    });
    Some(Loop {
        task: task.abort_handle(),
        socket,
    })
}

/// After CONFIG SET: reopens the plain sockets when `bind` or `port`
/// changed and the TLS ones when `bind` or `tls-port` did. The error names
/// the argument and gives Redis's reason; the old sockets then stay.
pub fn config_changed(srv: &Server, names: &[String]) -> Result<(), (&'static str, &'static str)> {
    let has = |n: &str| names.iter().any(|x| x.eq_ignore_ascii_case(n));
    let bind = has("bind");
    let Some(me) = srv.arc() else {
        return Ok(());
    };
    if bind || has("port") {
        let why = if bind {
            ("bind", "Failed to bind to specified addresses.")
        } else {
            ("port", "Unable to listen on this port. Check server logs.")
        };
        reopen(&me, false, "port").map_err(|_| why)?;
        let port = srv.config.int("port");
        let tls = srv.config.int("tls-port");
        let shown = if port != 0 { port } else { tls };
        srv.port
            .store(shown as u64, std::sync::atomic::Ordering::Relaxed);
    }
    if bind || has("tls-port") {
        let why = if bind {
            ("bind", "Failed to bind to specified addresses.")
        } else {
            (
                "tls-port",
                "Unable to listen on this port. Check server logs.",
            )
        };
        reopen(&me, true, "tls-port").map_err(|_| why)?;
    }
    Ok(())
}

/// Replaces one kind of socket with a set opened from the configuration
/// now. The new set is opened first; when an address is still held by
/// the old set (the same port under a wider `bind`), the old one closes
/// and the new is retried for a moment, and on failure the old comes back.
fn reopen(srv: &Arc<Server>, tls: bool, port_name: &str) -> anyhow::Result<()> {
    let binds = srv.config.get("bind").unwrap_or_default();
    let port = srv.config.int(port_name);
    let take_old = |g: &mut Inner| std::mem::take(if tls { &mut g.tls } else { &mut g.plain });
    let fresh = if port == 0 {
        Ok(Vec::new())
    } else {
        open(&binds, port)
    };
    let fresh = match fresh {
        Ok(l) => l,
        Err(e) if in_use(&e) => {
            for l in take_old(&mut srv.listeners.inner.lock()) {
                l.stop();
            }
            match retry(|| open(&binds, port)) {
                Ok(l) => l,
                Err(e) => {
                    // Put back what was there, from the values that were.
                    tracing::warn!("{e:#}");
                    return Err(e);
                }
            }
        }
        Err(e) => {
            tracing::warn!("{e:#}");
            return Err(e);
        }
    };
    let mut g = srv.listeners.inner.lock();
    for l in take_old(&mut g) {
        l.stop();
    }
    for l in fresh {
        if let Some(h) = spawn(srv, &g, l, tls) {
            if tls {
                g.tls.push(h);
            } else {
                g.plain.push(h);
            }
        }
    }
    Ok(())
}

fn in_use(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == ErrorKind::AddrInUse)
}

/// `f` until it succeeds or a second passes: a stopped socket keeps its
/// port until its runtime drops the aborted task and closes it.
fn retry<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        match f() {
            Err(e) if in_use(&e) && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10))
            }
            r => return r,
        }
    }
}
