//! MONITOR: connections that see every command the server runs, as
//! Redis's `replicationFeedMonitors` writes them:
//! `+1700000000.123456 [0 127.0.0.1:50000] "SET" "k" "v"`, secrets
//! redacted, administrative commands left out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::client::Client;
use crate::state::{now_us, ClientHandle, Server};

/// The connections in MONITOR mode.
#[derive(Default)]
pub struct Monitors {
    list: RwLock<Vec<Arc<ClientHandle>>>,
    count: AtomicUsize,
}

impl Monitors {
    /// Whether anyone is watching: the one check every command pays.
    #[inline]
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// Adds a monitor; false when it already was one.
    pub fn add(&self, h: &Arc<ClientHandle>) -> bool {
        let mut l = self.list.write();
        if l.iter().any(|m| m.id == h.id) {
            return false;
        }
        l.push(h.clone());
        self.count.store(l.len(), Ordering::Relaxed);
        true
    }

    /// Ends MONITOR mode for `h` (RESET, disconnect).
    pub fn remove(&self, h: &ClientHandle) {
        if !self.any() {
            return;
        }
        let mut l = self.list.write();
        l.retain(|m| m.id != h.id);
        self.count.store(l.len(), Ordering::Relaxed);
    }
}

/// Appends `s` quoted as Redis's `sdscatrepr`.
fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// Sends command `name` (its full name, for redaction) with `args`, run
/// by `c`, to every monitor.
pub fn feed(srv: &Server, c: &Client, name: &str, args: &[Bytes]) {
    let us = now_us();
    let mut line = format!(
        "+{}.{:06} [{} {}] ",
        us / 1_000_000,
        us % 1_000_000,
        c.db,
        c.handle.addr
    )
    .into_bytes();
    let hide = crate::slowlog::redacted(name, args);
    for (j, a) in args.iter().enumerate() {
        if hide.contains(&j) {
            repr(&mut line, b"(redacted)");
        } else {
            repr(&mut line, a);
        }
        if j + 1 != args.len() {
            line.push(b' ');
        }
    }
    line.extend_from_slice(b"\r\n");
    for m in srv.monitors.list.read().iter() {
        srv.pubsub.deliver(m, &line);
    }
}
