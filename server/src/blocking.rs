//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN…).
//!
//! A blocking command that finds nothing to pop registers a [`Waiter`] on
//! each of its keys, in FIFO order per key, and its connection waits for the
//! reply. While anyone is blocked, every write runs under the exclusive gate
//! and, before releasing it, [`serve_ready`] hands the keys it touched to
//! their waiters in arrival order, running each waiter's command in the
//! waiter's context — as Redis does after each command, so a pushed element
//! goes to the client that waited longest and no other command sees it
//! first. Registration also happens under the exclusive gate, so no push can
//! slip between a waiter's emptiness check and its registration.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::resp::Out;
use crate::state::Server;

/// Tries to serve a waiter from the key that changed, running its command
/// in a context that looks like the waiter's own connection (its database,
/// protocol and arguments; `in_exec` set so it cannot block again). True
/// when it replied.
pub type ServeFn = fn(&mut crate::cmd::Ctx<'_>, &[u8]) -> bool;

/// Writes the reply a waiter gets when its timeout passes.
pub type TimeoutFn = fn(&mut Out);

/// One blocked client.
pub struct Waiter {
    /// Its CLIENT ID.
    pub client_id: u64,
    /// Its selected database.
    pub db: usize,
    /// Its protocol version.
    pub proto: u8,
    /// Its blocking command.
    pub args: Vec<Bytes>,
    /// The keys it waits on.
    pub keys: Vec<Bytes>,
    /// Command id, for stats.
    pub cmd: usize,
    /// Tries the command again.
    pub serve: ServeFn,
    /// The timeout reply.
    pub on_timeout: TimeoutFn,
    reply: Mutex<Option<oneshot::Sender<Vec<u8>>>>,
}

impl Waiter {
    /// Sends the final reply (once).
    pub fn reply(&self, bytes: Vec<u8>) {
        if let Some(tx) = self.reply.lock().take() {
            let _ = tx.send(bytes);
        }
    }
}

/// Waiters per (database, key), oldest first.
type Queues = HashMap<(usize, Vec<u8>), VecDeque<Arc<Waiter>>>;

/// What a blocking command registers.
pub struct Request {
    /// Its CLIENT ID.
    pub client_id: u64,
    /// Its selected database.
    pub db: usize,
    /// Its protocol version.
    pub proto: u8,
    /// Its blocking command.
    pub args: Vec<Bytes>,
    /// The keys it waits on.
    pub keys: Vec<Bytes>,
    /// Command id, for stats.
    pub cmd: usize,
    /// Tries the command again.
    pub serve: ServeFn,
    /// The timeout reply.
    pub on_timeout: TimeoutFn,
}

/// The registry of blocked clients.
#[derive(Default)]
pub struct Blocked {
    count: AtomicUsize,
    keys: Mutex<Queues>,
    clients: Mutex<HashMap<u64, Arc<Waiter>>>,
}

impl Blocked {
    /// Number of blocked clients (INFO `blocked_clients`).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Whether someone waits on `key` in `db`.
    pub fn has(&self, db: usize, key: &[u8]) -> bool {
        self.keys.lock().contains_key(&(db, key.to_vec()))
    }

    /// Registers a waiter; the returned receiver gets its reply. The caller
    /// holds the exclusive gate.
    pub fn block(&self, r: Request) -> oneshot::Receiver<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        let (client_id, db) = (r.client_id, r.db);
        let w = Arc::new(Waiter {
            client_id,
            db,
            proto: r.proto,
            args: r.args,
            keys: r.keys,
            cmd: r.cmd,
            serve: r.serve,
            on_timeout: r.on_timeout,
            reply: Mutex::new(Some(tx)),
        });
        {
            let mut map = self.keys.lock();
            for k in &w.keys {
                let q = map.entry((db, k.to_vec())).or_default();
                // A key named twice (BLPOP k k 0) queues the client once.
                if !q.iter().any(|o| Arc::ptr_eq(o, &w)) {
                    q.push_back(w.clone());
                }
            }
        }
        self.clients.lock().insert(client_id, w);
        self.count.fetch_add(1, Ordering::Release);
        rx
    }

    /// Takes a client out of every queue. `None` when it is not blocked
    /// (anymore): whoever removed it first owns its reply.
    pub fn remove(&self, client_id: u64) -> Option<Arc<Waiter>> {
        let w = self.clients.lock().remove(&client_id)?;
        let mut map = self.keys.lock();
        for k in &w.keys {
            let slot = (w.db, k.to_vec());
            if let Some(q) = map.get_mut(&slot) {
                q.retain(|o| !Arc::ptr_eq(o, &w));
                if q.is_empty() {
                    map.remove(&slot);
                }
            }
        }
        self.count.fetch_sub(1, Ordering::Release);
        Some(w)
    }

    fn queue(&self, db: usize, key: &[u8]) -> Vec<Arc<Waiter>> {
        self.keys
            .lock()
            .get(&(db, key.to_vec()))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

thread_local! {
    static READY: RefCell<VecDeque<(usize, Vec<u8>)>> = const { RefCell::new(VecDeque::new()) };
}

/// Notes that `key` changed while someone may wait on it (called from the
/// keyspace's modification hook on the writing thread).
pub fn note_ready(db: usize, key: &[u8]) {
    READY.with(|r| r.borrow_mut().push_back((db, key.to_vec())));
}

/// Serves the waiters of every key changed on this thread since the last
/// call, in FIFO order per key, following chains (a BLMOVE that pushes to a
/// key someone else waits on). The caller holds the exclusive gate.
pub fn serve_ready(srv: &Server, now: u64) {
    let blocked = &srv.hooks.blocked;
    while let Some((db, key)) = READY.with(|r| r.borrow_mut().pop_front()) {
        for w in blocked.queue(db, &key) {
            if w.db != db {
                continue;
            }
            let Some(handle) = srv.clients.get(w.client_id) else {
                blocked.remove(w.client_id);
                continue;
            };
            let mut client = crate::client::Client::new(handle, true);
            client.db = w.db;
            client.proto = w.proto;
            let mut out = Out::new(w.proto);
            let start = std::time::Instant::now();
            let served = {
                let mut ctx = crate::cmd::Ctx {
                    srv,
                    client: &mut client,
                    out: &mut out,
                    args: &w.args,
                    now,
                    cmd: w.cmd,
                    in_exec: true,
                    propagated: false,
                };
                (w.serve)(&mut ctx, &key)
            };
            if !served {
                continue;
            }
            if blocked.remove(w.client_id).is_some() {
                // Redis adds a blocked command to its latency histogram
                // when it is served, as here.
                let track = srv.latency.tracking.load(Ordering::Relaxed);
                srv.commands
                    .record(w.cmd, start.elapsed().as_micros() as u64, false, track);
                w.reply(out.buf().to_vec());
            }
        }
    }
}

/// Forgets ready keys noted on this thread (nobody waits any more).
pub fn clear_ready() {
    READY.with(|r| r.borrow_mut().clear());
}
