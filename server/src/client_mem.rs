//! What one client may hold, so a greedy one cannot take the server down:
//! the `normal` class of `client-output-buffer-limit`, and
//! `maxmemory-clients` (client eviction, Redis 7.0).
//!
//! A connection stops reading while its replies are not being taken, so
//! its pending output is at most one batch of replies; the output limit
//! applies to that (a reply batch past the hard limit, or pending past the
//! soft limit for longer than its seconds, closes the connection, with
//! Redis's log line). Client eviction tallies each connection's buffers
//! (query buffer and reply buffer capacities) into one total, and when
//! the total passes `maxmemory-clients`, closes the connection holding
//! the most, sparing those with CLIENT NO-EVICT ON, as Redis does.
//! Both cost nothing while off (their defaults).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::repl::ObufLimits;
use crate::state::{ClientHandle, Server};

/// The limits in force and the client-eviction tally.
#[derive(Default)]
pub struct ClientMemory {
    hard: AtomicU64,
    soft: AtomicU64,
    soft_secs: AtomicU64,
    /// `maxmemory-clients` in bytes (a percentage resolved against
    /// `maxmemory`); 0 is off.
    limit: AtomicU64,
    total: AtomicU64,
    /// `evicted_clients` in INFO stats.
    pub evicted: AtomicU64,
    /// The largest query buffer and pending output of any client, one slot
    /// per second of the last [`PEAK_SLOTS`] (INFO
    /// `client_recent_max_input_buffer` / `_output_buffer`).
    peaks: [[AtomicU64; 2]; PEAK_SLOTS],
}

/// Seconds over which INFO's recent client peaks are kept, as Redis's
/// `CLIENTS_PEAK_MEM_USAGE_SLOTS`.
pub const PEAK_SLOTS: usize = 8;

/// Output up to this much sits in Redis's fixed per-client reply buffer,
/// which its output figure leaves out; only what goes past counts.
const REPLY_CHUNK: u64 = 16 * 1024;

impl ClientMemory {
    /// The `normal` class of `client-output-buffer-limit`, `None` when it
    /// is `0 0 0` (the default).
    #[inline]
    pub fn output_limits(&self) -> Option<ObufLimits> {
        let l = ObufLimits {
            hard: self.hard.load(Ordering::Relaxed),
            soft: self.soft.load(Ordering::Relaxed),
            soft_secs: self.soft_secs.load(Ordering::Relaxed),
        };
        (l.hard != 0 || l.soft != 0).then_some(l)
    }

    /// `maxmemory-clients` in bytes, 0 when client eviction is off.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sum of the tallied client buffers (INFO `mem_clients_normal`).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Notes a connection's query buffer (allocated bytes) and pending
    /// output (bytes, before a flush) at second `unix_secs`. A relaxed
    /// load per figure while nothing grows.
    ///
    /// ```
    /// let m = rampart_server::client_mem::ClientMemory::default();
    /// m.note_peaks(100, 20_000, 16_384 + 500);
    /// m.note_peaks(101, 1_000, 0);
    /// assert_eq!(m.recent_peaks(), (20_000, 500));
    /// m.forget_old_peaks(100 + 7); // slot of second 100 starts afresh
    /// assert_eq!(m.recent_peaks(), (1_000, 0));
    /// ```
    #[inline]
    pub fn note_peaks(&self, unix_secs: u64, input: u64, output: u64) {
        let slot = &self.peaks[unix_secs as usize % PEAK_SLOTS];
        for (cell, v) in slot.iter().zip([input, output.saturating_sub(REPLY_CHUNK)]) {
            if v > cell.load(Ordering::Relaxed) {
                cell.fetch_max(v, Ordering::Relaxed);
            }
        }
    }

    /// Clears the slot the next second will use (from the cron, as
    /// Redis's `clientsCron`), so a peak counts for the last
    /// [`PEAK_SLOTS`] seconds or so.
    pub fn forget_old_peaks(&self, unix_secs: u64) {
        for cell in &self.peaks[(unix_secs as usize + 1) % PEAK_SLOTS] {
            cell.store(0, Ordering::Relaxed);
        }
    }

    /// `(client_recent_max_input_buffer, client_recent_max_output_buffer)`.
    pub fn recent_peaks(&self) -> (u64, u64) {
        self.peaks.iter().fold((0, 0), |(i, o), s| {
            (
                i.max(s[0].load(Ordering::Relaxed)),
                o.max(s[1].load(Ordering::Relaxed)),
            )
        })
    }
}

/// Reads the limits from the config (at start and after CONFIG SET).
pub fn configure(srv: &Server) {
    let m = &srv.client_mem;
    let obl = srv
        .config
        .get("client-output-buffer-limit")
        .unwrap_or_default();
    let normal = ObufLimits::from_config(&obl, "normal").unwrap_or_default();
    m.hard.store(normal.hard, Ordering::Relaxed);
    m.soft.store(normal.soft, Ordering::Relaxed);
    m.soft_secs.store(normal.soft_secs, Ordering::Relaxed);
    let v = srv.config.get("maxmemory-clients").unwrap_or_default();
    let limit = match v.strip_suffix('%') {
        Some(pct) => {
            let pct = pct.parse::<u64>().unwrap_or(0);
            (srv.config.int("maxmemory").max(0) as u64).saturating_mul(pct) / 100
        }
        None => v.parse().unwrap_or(0),
    };
    m.limit.store(limit, Ordering::Relaxed);
    if limit == 0 {
        // Off: forget the tally, so turning it on again starts afresh
        // (each connection re-adds its buffers at its next step).
        m.total.store(0, Ordering::Relaxed);
        for c in srv.clients.all() {
            c.mem.store(0, Ordering::Relaxed);
        }
    }
}

/// Records that connection `h` now holds `bytes` of buffers, and evicts
/// clients while the total is over `maxmemory-clients`. Called by the
/// connection loop after each batch; a no-op while client eviction is off.
pub fn tally(srv: &Server, h: &ClientHandle, bytes: u64) {
    let m = &srv.client_mem;
    let limit = m.limit.load(Ordering::Relaxed);
    if limit == 0 {
        return;
    }
    let was = h.mem.swap(bytes, Ordering::Relaxed);
    if bytes > was {
        m.total.fetch_add(bytes - was, Ordering::Relaxed);
    } else if bytes < was {
        take_off(&m.total, was - bytes);
    }
    if m.total.load(Ordering::Relaxed) > limit {
        evict_clients(srv, limit);
    }
}

/// Takes a closed connection's buffers off the tally.
pub fn forget(srv: &Server, h: &ClientHandle) {
    take_off(&srv.client_mem.total, h.mem.swap(0, Ordering::Relaxed));
}

/// Subtracts `n` from the tally, never below 0 (a reset by `configure`
/// may have zeroed it under a connection's feet).
fn take_off(total: &AtomicU64, n: u64) {
    let _ = total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
        Some(t.saturating_sub(n))
    });
}

/// Redis's `evictClients`: closes the clients holding the most until the
/// rest fit, sparing CLIENT NO-EVICT ones, replicas and the primary link.
fn evict_clients(srv: &Server, limit: u64) {
    let mut clients = srv.clients.all();
    clients.retain(|c| {
        !c.no_evict.load(Ordering::Relaxed)
            && !c.killed.load(Ordering::Relaxed)
            && !c.flags.lock().contains(['S', 'M'])
    });
    clients.sort_by_key(|c| std::cmp::Reverse(c.mem.load(Ordering::Relaxed)));
    let mut total = srv.client_mem.total();
    for c in clients {
        if total <= limit {
            break;
        }
        let held = c.mem.load(Ordering::Relaxed);
        tracing::info!(
            "Evicting client: {}",
            crate::cmd::connection::client_line(&c, None, &srv.commands)
        );
        srv.client_mem.evicted.fetch_add(1, Ordering::Relaxed);
        c.killed.store(true, Ordering::Relaxed);
        c.wake.notify_one();
        total = total.saturating_sub(held);
    }
}
