//! The server's shared state: keyspace, config, clients, stats, WATCH.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use rampart_keyspace::{Keyspace, Notify};

use crate::cmd::Registry;
use crate::config::Config;

/// Current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    now_us() / 1000
}

/// Current Unix time in microseconds: one clock read gives a command both
/// its expiry clock and the start of its duration, as Redis's `ustime()`.
pub fn now_us() -> u64 {
    rampart_sys::unix_us()
}

/// Where writes go after they are applied: the replication stream once
/// replication lands. Commands propagate effects, not requests (DESIGN.md).
pub trait Propagate: Send + Sync {
    /// Appends one command, run in database `db`, to the stream.
    fn propagate(&self, db: usize, argv: &[&[u8]]);
    /// Whether anyone listens; lets callers skip building effect commands.
    fn active(&self) -> bool;
}

/// No replicas and no AOF: the stream goes nowhere.
pub struct NoStream;

impl Propagate for NoStream {
    fn propagate(&self, _: usize, _: &[&[u8]]) {}
    fn active(&self) -> bool {
        false
    }
}

/// Clients watching keys (WATCH). A write to a watched key marks the
/// watching transactions dirty, so their EXEC fails.
#[derive(Default)]
pub struct Watches {
    count: AtomicUsize,
    map: Mutex<HashMap<WatchedKey, Vec<Arc<AtomicBool>>>>,
}

/// (database, key)
type WatchedKey = (usize, Vec<u8>);

impl Watches {
    /// Registers `flag` to be set when `key` in `db` changes.
    pub fn watch(&self, db: usize, key: &[u8], flag: &Arc<AtomicBool>) {
        let mut m = self.map.lock();
        let v = m.entry((db, key.to_vec())).or_default();
        if !v.iter().any(|f| Arc::ptr_eq(f, flag)) {
            v.push(flag.clone());
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops every registration of `flag` for the given keys.
    pub fn unwatch(&self, keys: &[(usize, Bytes)], flag: &Arc<AtomicBool>) {
        let mut m = self.map.lock();
        for (db, key) in keys {
            let k = (*db, key.to_vec());
            if let Some(v) = m.get_mut(&k) {
                let before = v.len();
                v.retain(|f| !Arc::ptr_eq(f, flag));
                self.count.fetch_sub(before - v.len(), Ordering::Relaxed);
                if v.is_empty() {
                    m.remove(&k);
                }
            }
        }
    }

    /// A key changed.
    pub fn touch(&self, db: usize, key: &[u8]) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(v) = self.map.lock().get(&(db, key.to_vec())) {
            for f in v {
                f.store(true, Ordering::Relaxed);
            }
        }
    }

    /// A whole database changed (FLUSHDB, SWAPDB): every watched key of `db`
    /// for which `existed` says it was there is touched, as Redis does.
    pub fn touch_db(&self, db: usize, existed: impl Fn(&[u8]) -> bool) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        for ((d, key), v) in self.map.lock().iter() {
            if *d == db && existed(key) {
                for f in v {
                    f.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Number of keys watched by anyone (INFO `watching_clients` is per client).
    pub fn watched_keys(&self) -> usize {
        self.map.lock().len()
    }
}

/// Key events from the keyspace: WATCH, stats, the write stream.
pub struct Hooks {
    /// WATCH registrations.
    pub watches: Watches,
    /// `expired_keys` in INFO stats.
    pub expired_keys: AtomicU64,
    /// Key changes ever made (Redis's `server.dirty` without its resets):
    /// `rdb_changes_since_last_save` is this less `saved_dirty`.
    pub dirty: Counter,
    /// `dirty` as of the data in the last snapshot saved or loaded.
    pub saved_dirty: AtomicU64,
    /// The write stream.
    pub stream: Arc<dyn Propagate>,
    /// Clients blocked on keys.
    pub blocked: crate::blocking::Blocked,
    /// Pub/Sub, for the `expired` and `new` keyspace events.
    pub pubsub: Arc<crate::pubsub::PubSub>,
    /// Client-side caching: changed keys are invalidated.
    pub tracking: Arc<crate::tracking::Tracking>,
}

thread_local! {
    static CHANGES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Key changes made on this thread so far. A command runs on one thread
/// from start to end, so the difference around a call says whether that
/// command changed anything (only then is it propagated, as in Redis).
pub fn changes_on_this_thread() -> u64 {
    CHANGES.with(|c| c.get())
}

impl Hooks {
    /// `rdb_changes_since_last_save`.
    pub fn changes_since_save(&self) -> u64 {
        self.dirty
            .get()
            .saturating_sub(self.saved_dirty.load(Ordering::Relaxed))
    }
}

impl Notify for Hooks {
    fn modified(&self, db: usize, key: &[u8]) {
        CHANGES.with(|c| c.set(c.get() + 1));
        self.dirty.add(1);
        if self.blocked.count() > 0 && self.blocked.has(db, key) {
            crate::blocking::note_ready(db, key);
        }
        self.watches.touch(db, key);
        if self.tracking.live() {
            self.tracking.invalidate_key(key, true);
        }
    }

    fn expired(&self, db: usize, key: &[u8]) {
        self.expired_keys.fetch_add(1, Ordering::Relaxed);
        self.watches.touch(db, key);
        self.stream.propagate(db, &[b"DEL", key]);
        self.pubsub
            .notify(crate::pubsub::class::EXPIRED, "expired", key, db);
        if self.tracking.live() {
            self.tracking.invalidate_key(key, true);
        }
    }

    fn created(&self, db: usize, key: &[u8]) {
        self.pubsub
            .notify(crate::pubsub::class::NEW, "new", key, db);
    }
}

/// Shared, per-connection facts other connections can see (CLIENT LIST,
/// CLIENT KILL, INFO clients).
pub struct ClientHandle {
    /// CLIENT ID.
    pub id: u64,
    /// Peer address `ip:port`.
    pub addr: String,
    /// Local address `ip:port`.
    pub laddr: String,
    /// Socket descriptor, as CLIENT LIST shows it.
    pub fd: i32,
    /// Connection time.
    pub created: Instant,
    /// Last command time, Unix ms.
    pub last_active: AtomicU64,
    /// CLIENT SETNAME.
    pub name: Mutex<Option<Bytes>>,
    /// Selected database.
    pub db: AtomicUsize,
    /// Protocol version.
    pub resp: AtomicU8,
    /// The last command, as its registry id + 1 (0 before the first), so
    /// recording it costs a store rather than a lock and an allocation.
    pub last_cmd: AtomicUsize,
    /// Commands queued in MULTI, -1 outside MULTI.
    pub multi: AtomicI64,
    /// Keys watched.
    pub watching: AtomicUsize,
    /// Query buffer length.
    pub qbuf: AtomicUsize,
    /// CLIENT NO-EVICT.
    pub no_evict: AtomicBool,
    /// Its buffers as last tallied for `maxmemory-clients`.
    pub mem: AtomicU64,
    /// Set by CLIENT KILL; the connection ends at its next step.
    pub killed: AtomicBool,
    /// Wakes the connection when killed.
    pub wake: tokio::sync::Notify,
    /// Whether the connection is a replica or primary link (flags S/M).
    pub flags: Mutex<String>,
    /// The ACL user it is authenticated as (CLIENT LIST `user=`).
    pub user: Mutex<Bytes>,
    /// Pub/Sub messages waiting to be written to it.
    pub mailbox: crate::pubsub::Mailbox,
    /// Its subscription counts (CLIENT LIST `sub`, `psub`, `ssub`).
    pub subs: crate::pubsub::Counts,
    /// CLIENT TRACKING settings.
    pub tracking: Mutex<crate::tracking::State>,
    /// Replies waiting for the end of its thread's turn.
    pub(crate) outbox: crate::outbox::Outbox,
}

/// All connected clients.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
}

impl Clients {
    /// Registers a new connection.
    pub fn register(&self, addr: String, laddr: String, fd: i32) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let h = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_active: AtomicU64::new(now_ms()),
            name: Mutex::new(None),
            db: AtomicUsize::new(0),
            resp: AtomicU8::new(2),
            last_cmd: AtomicUsize::new(0),
            multi: AtomicI64::new(-1),
            watching: AtomicUsize::new(0),
            qbuf: AtomicUsize::new(0),
            no_evict: AtomicBool::new(false),
            mem: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            user: Mutex::new(Bytes::from_static(b"default")),
            wake: tokio::sync::Notify::new(),
            flags: Mutex::new(String::new()),
            mailbox: Default::default(),
            subs: Default::default(),
            tracking: Default::default(),
            outbox: Default::default(),
        });
        self.map.lock().insert(id, h.clone());
        h
    }

    /// The client with this id, if connected.
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.lock().get(&id).cloned()
    }

    /// Forgets a closed connection.
    pub fn remove(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// All clients, by id.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map.lock().values().cloned().collect()
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many stripes a [`Striped`] value has: the first connection threads
/// take stripes 1.. one each, every other thread shares stripe 0.
pub const STRIPES: usize = 8;

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The thread's stripe, and whether no other thread writes to it.
    static STRIPE: std::cell::Cell<(usize, bool)> = const { std::cell::Cell::new((0, false)) };
}

/// Gives the calling thread a stripe of its own while there are some left,
/// else the shared stripe 0. The connection runtimes' threads call this as
/// they start (a runtime starts more than one over time: a busy script or a
/// SAVE hands the runtime to a fresh thread). A stripe is never shared with
/// its owner, whose bumps are not read-modify-writes.
pub fn take_stripe() {
    let i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed);
    STRIPE.with(|s| s.set(if i < STRIPES { (i, true) } else { (0, false) }));
}

/// Adds `n` to a counter in the calling thread's stripe. A stripe with one
/// writer needs no read-modify-write (a `lock`ed instruction per bump, a
/// few per request); a shared one does.
#[inline]
pub fn bump(a: &AtomicU64, n: u64, owned: bool) {
    if owned {
        a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    } else {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

/// One cache line (two, against adjacent-line prefetch) per stripe.
#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// A value kept once per thread stripe, for counters that every request
/// bumps and only INFO reads: each connection thread writes its own cache
/// line, instead of two cores taking turns owning one line per command.
///
/// ```
/// use rampart_server::state::Striped;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let s: Striped<AtomicU64> = Striped::default();
/// s.mine().fetch_add(2, Ordering::Relaxed);
/// assert_eq!(s.all().map(|c| c.load(Ordering::Relaxed)).sum::<u64>(), 2);
/// ```
pub struct Striped<T>([Padded<T>; STRIPES]);

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Striped::new(T::default)
    }
}

impl<T> Striped<T> {
    /// Each stripe made by `make`.
    pub fn new(mut make: impl FnMut() -> T) -> Self {
        Striped(std::array::from_fn(|_| Padded(make())))
    }

    /// The calling thread's stripe.
    pub fn mine(&self) -> &T {
        self.mine_owned().0
    }

    /// The calling thread's stripe, and whether it is the only writer
    /// there (for [`bump`]).
    #[inline]
    pub fn mine_owned(&self) -> (&T, bool) {
        let (i, owned) = STRIPE.with(|s| s.get());
        (&self.0[i].0, owned)
    }

    /// Every stripe, to sum or reset.
    pub fn all(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|p| &p.0)
    }
}

/// A striped event counter.
///
/// ```
/// use rampart_server::state::Counter;
/// let c = Counter::default();
/// c.add(2);
/// c.add(3);
/// assert_eq!(c.get(), 5);
/// c.reset();
/// assert_eq!(c.get(), 0);
/// ```
#[derive(Default)]
pub struct Counter(Striped<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        let (c, owned) = self.0.mine_owned();
        bump(c, n, owned);
    }

    /// The total over every thread.
    pub fn get(&self) -> u64 {
        self.0
            .all()
            .fold(0u64, |t, c| t.wrapping_add(c.load(Ordering::Relaxed)))
    }

    /// Back to zero (CONFIG RESETSTAT). Adds racing with it may survive.
    pub fn reset(&self) {
        self.0.all().for_each(|c| c.store(0, Ordering::Relaxed));
    }
}

/// Server-wide counters for INFO stats.
pub struct Stats {
    /// total_connections_received
    pub connections: AtomicU64,
    /// rejected_connections
    pub rejected: AtomicU64,
    /// total_commands_processed
    pub commands: Counter,
    /// keyspace_hits
    pub hits: Counter,
    /// keyspace_misses
    pub misses: Counter,
    /// total_net_input_bytes
    pub net_in: Counter,
    /// total_net_output_bytes
    pub net_out: Counter,
    /// total_error_replies
    pub error_replies: AtomicU64,
    /// errorstat_<code>
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Ops/sec samples for instantaneous_ops_per_sec.
    pub ops_sample: Mutex<(Instant, u64, f64)>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            connections: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            commands: Counter::default(),
            hits: Counter::default(),
            misses: Counter::default(),
            net_in: Counter::default(),
            net_out: Counter::default(),
            error_replies: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            ops_sample: Mutex::new((Instant::now(), 0, 0.0)),
        }
    }
}

impl Stats {
    /// Counts one error reply under its code.
    pub fn error(&self, code: &str) {
        self.error_replies.fetch_add(1, Ordering::Relaxed);
        let mut e = self.errors.lock();
        // Bound the table as Redis does (128 codes) against clients
        // inventing codes.
        if e.len() < 128 || e.contains_key(code) {
            *e.entry(code.to_string()).or_default() += 1;
        }
    }
}

/// CLIENT PAUSE state.
#[derive(Default)]
pub struct Pause {
    /// Unix ms until which clients are paused; 0 when not paused.
    pub until: AtomicU64,
    /// Whether only writes are paused.
    pub writes_only: AtomicBool,
    /// Wakes paused clients on CLIENT UNPAUSE.
    pub wake: tokio::sync::Notify,
    /// Writes wait while a shutdown waits for replicas (Redis's
    /// PAUSE_DURING_SHUTDOWN, apart from CLIENT PAUSE: CLIENT UNPAUSE does
    /// not end it).
    pub shutdown: AtomicBool,
    /// Writes wait while FAILOVER hands over to a replica (Redis's
    /// PAUSE_DURING_FAILOVER; CLIENT UNPAUSE does not end it either).
    pub failover: AtomicBool,
    /// Writes wait while a cluster replica takes over by CLUSTER FAILOVER
    /// (the same PAUSE_DURING_FAILOVER in Redis, set by MFSTART).
    pub cluster: AtomicBool,
}

impl Pause {
    /// Whether a pause may be in effect: the connection loop's check per
    /// command, which reads no clock. [`crate::conn`] clears an expired
    /// pause, so this turns false again once it has passed.
    pub fn any(&self) -> bool {
        self.until.load(Ordering::Relaxed) != 0 || self.writes_held()
    }

    /// Whether writes wait for the server itself: a shutdown waiting for
    /// replicas, or a failover waiting for its target.
    pub fn writes_held(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
            || self.failover.load(Ordering::Acquire)
            || self.cluster.load(Ordering::Acquire)
    }

    /// Whether CLIENT PAUSE is in effect.
    pub fn paused(&self) -> bool {
        self.until.load(Ordering::Relaxed) > now_ms()
    }
}

/// Everything the connections share.
pub struct Server {
    /// The data (shared with snapshot threads).
    pub keyspace: Arc<Keyspace>,
    /// Key event sinks.
    pub hooks: Arc<Hooks>,
    /// Configuration.
    pub config: Config,
    /// Connected clients.
    pub clients: Arc<Clients>,
    /// Counters.
    pub stats: Stats,
    /// The command table.
    pub commands: Registry,
    /// CLIENT PAUSE.
    pub pause: Pause,
    /// When the server started.
    pub started: Instant,
    /// 40 hex characters identifying this run (INFO run_id).
    pub run_id: String,
    /// The port actually bound.
    pub port: AtomicU64,
    /// Active expiry on (DEBUG SET-ACTIVE-EXPIRE).
    /// DEBUG PAUSE-CRON: the periodic jobs (expiry, sampling,
    /// replication pings, snapshot schedule) skip their turns.
    pub cron_paused: AtomicBool,
    pub active_expire: AtomicBool,
    /// The switches other DEBUG subcommands set for test suites.
    pub debug: crate::cmd::debug::Knobs,
    /// Set to begin a shutdown.
    pub shutdown: tokio::sync::Notify,
    /// Shutdown requested (checked by the accept loop).
    pub shutting_down: AtomicBool,
    /// SHUTDOWN and signals: an initiated shutdown waiting for replicas.
    pub shutdown_ctl: crate::shutdown::Control,
    /// Average TTL estimate per db from active expiry (INFO keyspace).
    pub avg_ttl: Mutex<Vec<u64>>,
    /// The at-rest key provider (`None` with `encryption-at-rest no`).
    pub keys: Option<Arc<rampart_kms::Provider>>,
    /// Snapshot state (SAVE, BGSAVE, INFO persistence).
    pub persist: Arc<crate::persist::Persist>,
    /// Replication: the write stream (also `hooks.stream`), replicas, and
    /// the link to a primary.
    pub repl: Arc<crate::repl::Repl>,
    /// FAILOVER's state.
    pub failover: crate::failover::Failover,
    /// The listening sockets' accept loops.
    pub listeners: crate::listen::Listeners,
    /// Backups (BACKUP, INFO backup).
    pub backups: crate::backup::Backups,
    /// maxmemory and eviction.
    pub evictor: crate::evict::Evictor,
    /// Output buffer limits and client eviction.
    pub client_mem: crate::client_mem::ClientMemory,
    /// ACL users, checks and log.
    pub acl: crate::acl::Acl,
    /// SLOWLOG.
    pub slowlog: crate::slowlog::Slowlog,
    /// The latency monitor and tracking settings.
    pub latency: crate::latency::Latency,
    /// The TLS contexts (`tls-port`, `tls-replication`).
    pub tls: crate::tls::Tls,
    /// Pub/Sub subscriptions and keyspace notifications.
    pub pubsub: Arc<crate::pubsub::PubSub>,
    /// Client-side caching (CLIENT TRACKING).
    pub tracking: Arc<crate::tracking::Tracking>,
    /// MONITOR connections.
    pub monitors: crate::monitor::Monitors,
    /// The Lua engine (EVAL, SCRIPT).
    pub scripting: crate::script::Scripting,
    /// Cluster mode, set at startup with `cluster-enabled yes`.
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Bus>>,
    /// MIGRATE's cached connections to its targets.
    pub migrate_sockets: crate::cmd::dump::MigrateSockets,
}

impl Server {
    /// A server with the given configuration and an empty keyspace.
    pub fn new(config: Config) -> Server {
        let repl = Arc::new(crate::repl::Repl::new(
            config.int("repl-backlog-size").max(0) as u64,
        ));
        let stream: Arc<dyn Propagate> = repl.clone();
        let pubsub = Arc::new(crate::pubsub::PubSub::default());
        pubsub.configure(&config);
        let clients = Arc::new(Clients::default());
        let tracking = Arc::new(crate::tracking::Tracking::new(
            clients.clone(),
            pubsub.clone(),
        ));
        let hooks = Arc::new(Hooks {
            pubsub: pubsub.clone(),
            tracking: tracking.clone(),
            watches: Watches::default(),
            expired_keys: AtomicU64::new(0),
            dirty: Counter::default(),
            saved_dirty: AtomicU64::new(0),
            stream,
            blocked: crate::blocking::Blocked::default(),
        });
        let databases = config.int("databases").max(1) as usize;
        let run_id = (0..40)
            .map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0'))
            .collect();
        let commands = Registry::new();
        let acl = crate::acl::Acl::new();
        Server {
            // Cluster mode places keys by hash slot for the per-slot index
            // (COUNTKEYSINSLOT, GETKEYSINSLOT, dropping a lost slot);
            // `cluster-enabled` cannot change at run time, as in Redis.
            keyspace: Arc::new(if config.flag("cluster-enabled") {
                Keyspace::with_slots(databases, hooks.clone(), rampart_cluster::key_hash_slot)
            } else {
                Keyspace::with_notify(databases, hooks.clone())
            }),
            hooks,
            config,
            clients,
            stats: Stats::default(),
            commands,
            pause: Pause::default(),
            started: Instant::now(),
            run_id,
            port: AtomicU64::new(0),
            active_expire: AtomicBool::new(true),
            cron_paused: AtomicBool::new(false),
            debug: crate::cmd::debug::Knobs::default(),
            shutdown: tokio::sync::Notify::new(),
            shutting_down: AtomicBool::new(false),
            shutdown_ctl: crate::shutdown::Control::default(),
            avg_ttl: Mutex::new(vec![0; databases]),
            keys: None,
            persist: Arc::new(crate::persist::Persist::new()),
            repl,
            failover: Default::default(),
            listeners: Default::default(),
            backups: Default::default(),
            evictor: Default::default(),
            client_mem: Default::default(),
            acl,
            slowlog: Default::default(),
            latency: Default::default(),
            tls: Default::default(),
            pubsub,
            tracking,
            monitors: Default::default(),
            scripting: Default::default(),
            cluster: Default::default(),
            migrate_sockets: Default::default(),
        }
    }

    /// The server itself, for work started from a command handler that
    /// outlives it (set once the server runs; `None` in socket-free tests).
    pub fn arc(&self) -> Option<Arc<Server>> {
        self.repl.me.get().and_then(|w| w.upgrade())
    }
}
