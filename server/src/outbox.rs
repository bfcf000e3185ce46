//! Replies written when a connection thread is about to sleep, as Redis's
//! `beforeSleep` writes them.
//!
//! Redis runs every client that is ready, then writes all their replies
//! back to back before it waits for events again. A client that waits on
//! many connections (redis-benchmark, a pool) then wakes once for many
//! replies. Written as each batch ends, the same replies reach it one by
//! one: it goes back to sleep between them and every write pays its
//! wake-up (for scripts, twice Redis's kernel time per call).
//!
//! So a plain TCP connection hands its batch's replies to its
//! [`Outbox`] and goes back to waiting for input; the runtime's park hook
//! ([`Turn::flush`], installed by [`crate::cores`]) sends every waiting
//! outbox with one non-blocking `send` each, just before the thread
//! sleeps. What the socket does not take goes back to the connection,
//! which writes it itself (waiting for room as it always did).
//!
//! The hook writes by descriptor, away from the task that owns the socket,
//! so a connection closes its outbox before its socket closes
//! ([`Outbox::close`]): a descriptor number reused by a new socket never
//! receives an old connection's bytes.

use std::cell::{Cell, OnceCell};
use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::state::{ClientHandle, Server};

/// Past this many waiting outboxes the turn is written at once: a worker
/// kept busy without sleeping must not hold replies back for long.
const MAX_WAITING: usize = 128;

/// Past this size a sent buffer is given back to the allocator rather than
/// kept for the connection's next batch.
const KEEP_CAPACITY: usize = 64 * 1024;

/// A connection's replies waiting for its thread's turn to end.
#[derive(Default)]
pub(crate) struct Outbox {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    buf: Vec<u8>,
    /// The socket, while the connection may defer to the hook: none
    /// before it opens (a TLS session never does) and once it closes.
    fd: Option<i32>,
    /// In its runtime's waiting list.
    queued: bool,
    /// The socket did not take everything (or failed): the connection
    /// writes the rest itself, and defers nothing until it has.
    stuck: bool,
}

impl Outbox {
    /// Lets the connection on socket `fd` defer its replies.
    pub(crate) fn open(&self, fd: i32) {
        self.held.lock().fd = Some(fd);
    }

    /// Ends deferring before the socket closes: what still waits is sent
    /// once (the hook would have), then the descriptor is forgotten.
    /// Idempotent. Returns the bytes sent.
    pub(crate) fn close(&self) -> usize {
        let mut h = self.held.lock();
        let mut sent = 0;
        if let Some(fd) = h.fd.take() {
            if !h.buf.is_empty() {
                sent = rampart_sys::send_now(fd, &h.buf).unwrap_or(0);
            }
        }
        h.buf = Vec::new();
        sent
    }

    /// Bytes waiting here (CLIENT LIST's output buffer figures).
    pub(crate) fn len(&self) -> usize {
        self.held.lock().buf.len()
    }

    /// Puts what waits here in front of `out`, for a connection about to
    /// write `out` itself: its bytes go out in order.
    pub(crate) fn take_back(&self, out: &mut Vec<u8>) {
        let mut h = self.held.lock();
        h.stuck = false;
        if h.buf.is_empty() {
            return;
        }
        if out.is_empty() {
            std::mem::swap(&mut h.buf, out);
        } else {
            out.splice(0..0, h.buf.drain(..));
        }
    }

    /// Sends what waits, as the turn ends: `(sent, left)`, the bytes left
    /// being what the connection is woken to write itself.
    fn send(&self) -> (usize, usize) {
        let mut h = self.held.lock();
        h.queued = false;
        let Some(fd) = h.fd else { return (0, 0) };
        let mut sent = 0;
        while sent < h.buf.len() {
            match rampart_sys::send_now(fd, &h.buf[sent..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if sent == h.buf.len() {
            if h.buf.capacity() > KEEP_CAPACITY {
                h.buf = Vec::new();
            } else {
                h.buf.clear();
            }
            return (sent, 0);
        }
        h.buf.drain(..sent);
        h.stuck = true;
        (sent, h.buf.len())
    }
}

/// The outboxes of one connection runtime waiting for its worker to sleep.
pub(crate) struct Turn {
    waiting: Mutex<Vec<Arc<ClientHandle>>>,
    /// For `total_net_output_bytes`, counted as bytes reach the socket:
    /// what a socket does not take goes back to its connection, which
    /// counts what it writes itself.
    srv: Arc<Server>,
}

impl Turn {
    /// The turn of a connection runtime of `srv`.
    pub(crate) fn new(srv: Arc<Server>) -> Turn {
        Turn {
            waiting: Mutex::new(Vec::new()),
            srv,
        }
    }

    /// Sends every waiting outbox: the runtime's park hook.
    pub(crate) fn flush(&self) {
        WORKER.with(|w| w.set(true));
        let mut waiting = self.waiting.lock();
        let mut total = 0;
        for h in waiting.drain(..) {
            let (sent, left) = h.outbox.send();
            total += sent;
            // A subscriber's output limit counts what it has not taken.
            if h.mailbox.unsent.load(Ordering::Relaxed) != 0 {
                h.mailbox.unsent.store(left, Ordering::Relaxed);
            }
            if left > 0 {
                h.wake.notify_one();
            }
        }
        if total > 0 {
            self.srv.stats.net_out.add(total as u64);
        }
    }
}

thread_local! {
    /// The turn of the connection runtime this thread belongs to.
    static TURN: OnceCell<Arc<Turn>> = const { OnceCell::new() };
    /// Whether this thread runs its runtime's worker: a thread that gave
    /// the worker away (`block_in_place`) finishes its task without it,
    /// and no park hook would write for it.
    static WORKER: Cell<bool> = const { Cell::new(true) };
}

/// Makes the calling thread part of `turn`'s runtime (its thread-start
/// hook).
pub(crate) fn enter(turn: Arc<Turn>) {
    TURN.with(|t| {
        let _ = t.set(turn);
    });
}

/// Notes that the calling thread gave its runtime's worker to another
/// thread (after `block_in_place`); its next park hook, if it runs the
/// worker again, says otherwise.
pub(crate) fn left_worker() {
    WORKER.with(|w| w.set(false));
}

/// Hands `out`'s bytes to the thread's end-of-turn write, leaving `out`
/// empty. False when they cannot wait (no outbox open, not on a runtime's
/// worker, or earlier bytes stuck): the caller writes them itself.
pub(crate) fn defer(handle: &Arc<ClientHandle>, out: &mut Vec<u8>) -> bool {
    if !WORKER.with(|w| w.get()) {
        return false;
    }
    TURN.with(|t| {
        let Some(turn) = t.get() else {
            return false;
        };
        let mut h = handle.outbox.held.lock();
        if h.fd.is_none() || h.stuck {
            return false;
        }
        if h.buf.is_empty() {
            std::mem::swap(&mut h.buf, out);
        } else {
            h.buf.extend_from_slice(out);
            out.clear();
        }
        if h.queued {
            return true;
        }
        h.queued = true;
        drop(h);
        let mut waiting = turn.waiting.lock();
        waiting.push(handle.clone());
        if waiting.len() >= MAX_WAITING {
            drop(waiting);
            turn.flush();
        }
        true
    })
}
