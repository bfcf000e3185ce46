//! `maxmemory`: the memory figure compared with the limit, and eviction
//! when it is exceeded (Redis 7.0's `performEvictions`).
//!
//! The figure is jemalloc's `stats.allocated`, the counterpart of Redis's
//! `used_memory`, less what replicas' pending output takes (Redis's
//! `freeMemoryGetNotCountedMemory`: counting it would make every DEL sent
//! to a replica call for more eviction). Reading it costs about 8 µs, so
//! commands share one reading for up to a millisecond; an eviction pass
//! counts what it frees from the nodes it drops and corrects the shared
//! reading at once.
//!
//! Which key goes is [`rampart_keyspace::evict`]'s business; this module
//! decides when, for how long (`maxmemory-eviction-tenacity`), and makes
//! each eviction look like Redis's: a `DEL` (or `UNLINK` with
//! `lazyfree-lazy-eviction`) in the replication stream, `evicted_keys` in
//! INFO. A replica never evicts (`replica-ignore-maxmemory yes`): it
//! follows its primary's DELs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use rampart_keyspace::evict::{Cursor, Policy, Pool};

use crate::state::{now_us, Server};

/// Redis's reply to a command refused under maxmemory.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// How long a memory reading is shared before the next command takes a
/// fresh one.
const READING_TTL_US: u64 = 1000;

/// What [`perform`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit, or evicting is not allowed now (a replica, a
    /// paused server): go on.
    Ok,
    /// Over the limit; evicting goes on in the background.
    Running,
    /// Over the limit and nothing can be evicted: refuse commands that
    /// need memory.
    Fail,
}

/// The settings, the shared memory reading and the counters.
pub struct Evictor {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    samples: AtomicU32,
    tenacity: AtomicU32,
    lazy: AtomicBool,
    ignore_on_replica: AtomicBool,
    used: AtomicU64,
    read_at_us: AtomicU64,
    work: Mutex<(Pool, Cursor)>,
    background: AtomicBool,
    /// `evicted_keys` in INFO stats.
    pub evicted_keys: AtomicU64,
    /// When memory went over the limit (µs since `epoch`, 0 when under).
    exceeded_since: AtomicU64,
    exceeded_total_us: AtomicU64,
    epoch: Instant,
}

impl Default for Evictor {
    fn default() -> Evictor {
        Evictor {
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(0),
            samples: AtomicU32::new(5),
            tenacity: AtomicU32::new(10),
            lazy: AtomicBool::new(false),
            ignore_on_replica: AtomicBool::new(true),
            used: AtomicU64::new(0),
            read_at_us: AtomicU64::new(0),
            work: Mutex::new((Pool::default(), Cursor::default())),
            background: AtomicBool::new(false),
            evicted_keys: AtomicU64::new(0),
            exceeded_since: AtomicU64::new(0),
            exceeded_total_us: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Evictor {
    /// `maxmemory` in bytes; 0 is no limit. One relaxed load: every
    /// command reads it.
    #[inline]
    pub fn limit(&self) -> u64 {
        self.maxmemory.load(Ordering::Relaxed)
    }

    /// The `maxmemory-policy` in force.
    pub fn policy(&self) -> Policy {
        Policy::from_index(self.policy.load(Ordering::Relaxed))
    }

    /// Bytes allocated, as last read (at most a millisecond before
    /// `now`, in Unix µs).
    pub fn used(&self, now: u64) -> u64 {
        let at = self.read_at_us.load(Ordering::Relaxed);
        if now.saturating_sub(at) >= READING_TTL_US
            && self
                .read_at_us
                .compare_exchange(at, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.used
                .store(crate::info::used_memory(), Ordering::Relaxed);
        }
        self.used.load(Ordering::Relaxed)
    }

    /// A fresh reading, shared from now on.
    fn reread(&self) -> u64 {
        let v = crate::info::used_memory();
        self.used.store(v, Ordering::Relaxed);
        self.read_at_us.store(now_us(), Ordering::Relaxed);
        v
    }

    /// Takes `freed` bytes off the shared reading, until the next one.
    fn forget(&self, freed: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(freed))
            });
    }

    /// Redis's `evictionTimeLimitUs`: how long one pass may evict.
    fn time_limit_us(&self) -> u64 {
        let t = self.tenacity.load(Ordering::Relaxed);
        match t {
            0..=10 => 50 * t as u64,
            11..=99 => (500.0 * 1.15f64.powi(t as i32 - 10)) as u64,
            _ => u64::MAX,
        }
    }

    /// `total_eviction_exceeded_time` and `current_eviction_exceeded_time`
    /// in ms, for INFO stats.
    pub fn exceeded_ms(&self) -> (u64, u64) {
        let since = self.exceeded_since.load(Ordering::Relaxed);
        let current = if since == 0 {
            0
        } else {
            self.elapsed_us().saturating_sub(since)
        };
        let total = self.exceeded_total_us.load(Ordering::Relaxed) + current;
        (total / 1000, current / 1000)
    }

    fn elapsed_us(&self) -> u64 {
        // Never 0, which means "not exceeded".
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    fn note(&self, outcome: Outcome) {
        let since = self.exceeded_since.load(Ordering::Relaxed);
        match outcome {
            Outcome::Ok
                if since != 0
                    && self
                        .exceeded_since
                        .compare_exchange(since, 0, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok() =>
            {
                self.exceeded_total_us
                    .fetch_add(self.elapsed_us() - since, Ordering::Relaxed);
            }
            Outcome::Running | Outcome::Fail if since == 0 => {
                let _ = self.exceeded_since.compare_exchange(
                    0,
                    self.elapsed_us(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            _ => {}
        }
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset_stats(&self) {
        self.evicted_keys.store(0, Ordering::Relaxed);
        self.exceeded_total_us.store(0, Ordering::Relaxed);
    }
}

/// Reads the eviction settings from the config into the server (at start
/// and after CONFIG SET). Lowering `maxmemory` below what is used starts
/// evicting at once, with Redis's warning: on the background pass, since
/// CONFIG SET's caller holds the gate (and the next command evicts before
/// it runs anyway).
pub fn configure(srv: &Server) {
    let c = &srv.config;
    let e = &srv.evictor;
    let policy = c
        .get("maxmemory-policy")
        .and_then(|p| Policy::parse(&p))
        .unwrap_or(Policy::NoEviction);
    e.policy.store(policy.index(), Ordering::Relaxed);
    e.samples.store(
        c.int("maxmemory-samples").clamp(1, 64) as u32,
        Ordering::Relaxed,
    );
    e.tenacity.store(
        c.int("maxmemory-eviction-tenacity").clamp(0, 100) as u32,
        Ordering::Relaxed,
    );
    e.lazy
        .store(c.flag("lazyfree-lazy-eviction"), Ordering::Relaxed);
    e.ignore_on_replica
        .store(c.flag("replica-ignore-maxmemory"), Ordering::Relaxed);
    srv.keyspace.access.set(
        policy.lfu(),
        c.int("lfu-log-factor").clamp(0, u32::MAX as i64) as u32,
        c.int("lfu-decay-time").clamp(0, u32::MAX as i64) as u32,
    );
    let limit = c.int("maxmemory").max(0) as u64;
    let was = e.maxmemory.swap(limit, Ordering::Relaxed);
    if limit != 0 && limit != was {
        let used = e.reread().saturating_sub(not_counted(srv));
        if limit < used {
            tracing::warn!(
                "WARNING: the new maxmemory value set via CONFIG SET ({limit}) is smaller than the current memory usage ({used}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy."
            );
        }
        start_background(srv);
    }
}

/// Memory left out of the comparison: replicas' pending output.
fn not_counted(srv: &Server) -> u64 {
    // No stream, no replicas: spare every write at the limit a lock.
    if srv.hooks.stream.active() {
        srv.repl.replica_output_bytes()
    } else {
        0
    }
}

/// Whether evicting is allowed now (Redis's `isSafeToPerformEvictions`).
fn allowed(srv: &Server) -> bool {
    let replica = srv.repl.is_replica() && srv.evictor.ignore_on_replica.load(Ordering::Relaxed);
    let paused = srv.pause.any() && srv.pause.paused();
    !replica && !paused && !srv.pause.writes_held()
}

/// How many bytes must go, or `None` when under the limit.
fn over(srv: &Server, used: u64) -> Option<u64> {
    let limit = srv.evictor.limit();
    if limit == 0 || used <= limit {
        return None;
    }
    let used = used.saturating_sub(not_counted(srv));
    (used > limit).then(|| used - limit)
}

/// Redis's `performEvictions`, run before each command while `maxmemory`
/// is set: when over the limit, evicts keys by the policy for up to the
/// tenacity's time budget, handing what is left to a background pass.
/// `now` is the command's clock (Unix µs).
pub fn perform(srv: &Server, now: u64) -> Outcome {
    let e = &srv.evictor;
    if e.limit() == 0 || !allowed(srv) {
        return Outcome::Ok;
    }
    if over(srv, e.used(now)).is_none() {
        e.note(Outcome::Ok);
        return Outcome::Ok;
    }
    let started = std::time::Instant::now();
    crate::metrics::instruments().eviction_cycles.inc();
    let outcome = evict(srv, now);
    srv.latency
        .add_if_needed("eviction-cycle", started.elapsed().as_millis() as u64);
    e.note(outcome);
    outcome
}

fn evict(srv: &Server, start: u64) -> Outcome {
    let e = &srv.evictor;
    let policy = e.policy();
    if policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    // Evictions are writes: under the gate, exclusive while the stream is
    // fed so their DELs keep their place among other writes. Checked
    // under the gate, as dispatch does: the stream turns on or off only
    // under the exclusive gate.
    // A script past its time limit holds the gate: leave eviction to
    // later, the command waiting here gets -BUSY in dispatch.
    let busy = || srv.scripting.watch.busy.load(Ordering::Relaxed);
    let Some(mut shared) = srv.keyspace.shared_unless(busy).map(Some) else {
        return Outcome::Ok;
    };
    let mut _excl = None;
    if srv.hooks.stream.active() {
        shared = None;
        let Some(g) = srv.keyspace.exclusive_unless(busy) else {
            return Outcome::Ok;
        };
        _excl = Some(g);
    }
    let _shared = shared;
    let mut work = e.work.lock();
    // Another thread may have evicted while this one waited.
    let Some(tofree) = over(srv, e.used(start)) else {
        return Outcome::Ok;
    };
    let mut now = start;
    let limit_us = e.time_limit_us();
    let samples = e.samples.load(Ordering::Relaxed) as usize;
    let lazy = e.lazy.load(Ordering::Relaxed);
    let del: &[u8] = if lazy { b"UNLINK" } else { b"DEL" };
    let mut freed = 0u64;
    let mut keys = 0u64;
    let mut garbage: Vec<Box<rampart_keyspace::Node>> = Vec::new();
    let (pool, cursor) = &mut *work;
    let outcome = loop {
        let Some(ev) = srv
            .keyspace
            .evict_one(policy, samples, pool, cursor, now / 1000)
        else {
            break Outcome::Fail;
        };
        // What the node held, as an estimate: the allocator's figure
        // catches up at the next reading, which corrects it.
        freed += ev.node.mem_usage() as u64;
        keys += 1;
        e.evicted_keys.fetch_add(1, Ordering::Relaxed);
        srv.pubsub.notify(
            crate::pubsub::class::EVICTED,
            "evicted",
            ev.node.key.as_bytes(),
            ev.db,
        );
        srv.hooks
            .stream
            .propagate(ev.db, &[del, ev.node.key.as_bytes()]);
        if srv.tracking.live() {
            srv.tracking.invalidate_key(ev.node.key.as_bytes(), true);
        }
        if lazy {
            garbage.push(ev.node);
        }
        if freed >= tofree {
            break Outcome::Ok;
        }
        if keys.is_multiple_of(16) {
            now = now_us();
            if now.saturating_sub(start) > limit_us {
                break Outcome::Running;
            }
        }
    };
    e.forget(freed);
    free_later(&mut garbage);
    drop(work);
    if outcome == Outcome::Running {
        start_background(srv);
    }
    outcome
}

/// `lazyfree-lazy-eviction`: frees evicted values on another thread.
fn free_later<T: Send + 'static>(garbage: &mut Vec<T>) {
    if !garbage.is_empty() {
        let g = std::mem::take(garbage);
        std::thread::spawn(move || drop(g));
    }
}

/// Redis's `evictionTimeProc`: keeps evicting in short passes until under
/// the limit or out of keys, on its own thread so clients are served
/// between passes.
fn start_background(srv: &Server) {
    let Some(srv) = srv.arc() else {
        return;
    };
    if srv.evictor.background.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("evict".into())
        .spawn(move || background(srv));
    if spawned.is_err() {
        tracing::warn!("Could not start the background eviction thread");
    }
}

fn background(srv: Arc<Server>) {
    loop {
        let outcome = if srv.evictor.limit() == 0 || !allowed(&srv) {
            Outcome::Ok
        } else {
            evict(&srv, now_us())
        };
        srv.evictor.note(outcome);
        if outcome != Outcome::Running {
            srv.evictor.background.store(false, Ordering::Release);
            return;
        }
        std::thread::yield_now();
    }
}
