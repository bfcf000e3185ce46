//! One runtime with one worker thread per core for client connections.
//!
//! The accept loop hands each new connection to one of these runtimes, round
//! robin, and the connection lives there until it ends: its reads, commands
//! and writes stay on one thread, without a shared pool's cross-thread
//! wake-ups, which cost a context switch per request or so on a small
//! machine. Everything else (cron, signals, snapshots, replication) stays on
//! the main multi-threaded runtime.
//!
//! Each is a multi-threaded runtime of one worker rather than a
//! current-thread one for one reason: a script runs on its caller's thread
//! (no hand-off, as in Redis), and once it passes `busy-reply-threshold` the
//! worker's other clients must still be answered (-BUSY, SCRIPT KILL). The
//! script's thread then gives the runtime to a fresh worker
//! ([`tokio::task::block_in_place`]) and finishes the script on its own.
//!
//! Each runtime's worker writes the replies its connections left in their
//! outboxes just before it sleeps ([`crate::outbox`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::state::Server;

/// A new connection, and whether it came in on the `tls-port`.
type NewConn = (std::net::TcpStream, SocketAddr, bool);

/// The per-core runtimes' inboxes.
pub struct Cores {
    inboxes: Vec<UnboundedSender<NewConn>>,
    next: AtomicUsize,
}

impl Cores {
    /// Starts `n` runtime threads (at least one).
    pub fn start(srv: &Arc<Server>, n: usize) -> std::io::Result<Cores> {
        let mut inboxes = Vec::new();
        for i in 0..n.max(1) {
            let (tx, mut rx) = unbounded_channel::<NewConn>();
            let turn = Arc::new(crate::outbox::Turn::new(srv.clone()));
            let joins = turn.clone();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(format!("rampart-io-{i}"))
                .on_thread_start(move || {
                    crate::state::take_stripe();
                    crate::outbox::enter(joins.clone());
                })
                // Redis's beforeSleep: the turn's replies, back to back.
                .on_thread_park(move || turn.flush())
                .enable_all()
                .build()?;
            let srv = srv.clone();
            // This thread only takes in new connections; they run on the
            // runtime's worker.
            std::thread::Builder::new()
                .name(format!("rampart-inbox-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        while let Some((stream, peer, tls)) = rx.recv().await {
                            match tokio::net::TcpStream::from_std(stream) {
                                Ok(s) if tls => {
                                    tokio::spawn(crate::tls::accept_client(srv.clone(), s, peer));
                                }
                                Ok(s) => {
                                    tokio::spawn(crate::conn::connection(srv.clone(), s, peer));
                                }
                                Err(e) => tracing::warn!("Accepting client connection: {e}"),
                            }
                        }
                    })
                })?;
            inboxes.push(tx);
        }
        Ok(Cores {
            inboxes,
            next: AtomicUsize::new(0),
        })
    }

    /// Hands a freshly accepted connection to the next runtime; `tls`
    /// when it must begin with a TLS handshake.
    pub fn hand_over(&self, stream: tokio::net::TcpStream, peer: SocketAddr, tls: bool) {
        let std = match stream.into_std() {
            Ok(s) => s,
            Err(e) => return tracing::warn!("Accepting client connection: {e}"),
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.inboxes.len();
        if self.inboxes[i].send((std, peer, tls)).is_err() {
            tracing::warn!("Connection runtime {i} is gone; dropping a new connection");
        }
    }
}
