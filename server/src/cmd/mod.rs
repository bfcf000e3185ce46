//! The command table: one file per family, each ending with its table of
//! [`CommandSpec`]s; [`Registry`] gathers them. Generic rules (arity, auth,
//! MULTI queuing, stats, atomicity) live once in `dispatch`.

pub mod acl;
pub mod backup;
pub mod bitmap;
pub mod cluster;
pub mod connection;
pub mod debug;
pub mod dump;
pub mod geo;
pub mod getkeys;
pub mod hash;
pub mod hyperloglog;
pub mod keys;
pub mod latency;
pub mod list;
pub mod lolwut;
pub mod memory;
pub mod module;
pub mod monitor;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod set;
pub mod slowlog;
pub mod sort;
pub mod stream;
pub mod string;
pub mod tracking;
pub mod transaction;
pub mod zset;

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rampart_keyspace::Db;

use crate::client::Client;
use crate::resp::Out;
use crate::state::Server;

/// Command flags, as COMMAND INFO reports them.
pub mod flags {
    /// May modify the dataset.
    pub const WRITE: u32 = 1 << 0;
    /// Never modifies the dataset.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory: refused under maxmemory.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/Sub.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed in scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 6;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a stale replica.
    pub const STALE: u32 = 1 << 8;
    /// Not shown to MONITOR.
    pub const SKIP_MONITOR: u32 = 1 << 9;
    /// Not in the slowlog.
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    /// O(1) or O(log N).
    pub const FAST: u32 = 1 << 11;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 12;
    /// May replicate even when read-only (e.g. expiry).
    pub const MAY_REPLICATE: u32 = 1 << 13;
    /// Not allowed inside MULTI.
    pub const NO_MULTI: u32 = 1 << 14;
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// Rampart: holds the gate exclusive even with one key.
    pub const EXCLUSIVE: u32 = 1 << 16;
    /// Keys are found by parsing the arguments (a numkeys argument), so the
    /// first/last/step triple cannot name them; such commands always hold
    /// the gate exclusive.
    pub const MOVABLEKEYS: u32 = 1 << 18;
    /// Rampart: must not be queued by MULTI (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET).
    pub const TX_CONTROL: u32 = 1 << 17;
    /// Not allowed while a replica loads its dataset asynchronously.
    pub const NO_ASYNC_LOADING: u32 = 1 << 19;
    /// Accepted for a slot being imported (cluster mode's ASKING).
    pub const ASKING: u32 = 1 << 22;
    /// Rampart: runs without the keyspace gate (SCRIPT KILL must reach a
    /// script that holds it).
    pub const NO_GATE: u32 = 1 << 20;
    /// May be called with no key at all although it takes keys (EVAL).
    pub const NO_MANDATORY_KEYS: u32 = 1 << 21;

    /// Names in COMMAND INFO's order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        // MAY_REPLICATE is not listed: Redis hides it "on purpose".
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// A command handler: reads `ctx.args`, writes its reply to `ctx.out`.
pub type Handler = fn(&mut Ctx<'_>);

/// One command (or subcommand) of the table.
pub struct CommandSpec {
    /// Lower-case name (`get`, or `kill` under `client`).
    pub name: &'static str,
    /// Redis arity: N exact, -N at least N (name included).
    pub arity: i32,
    /// [`flags`] bits.
    pub flags: u32,
    /// Position of the first key (0 = none).
    pub first_key: i32,
    /// Position of the last key (-1 = last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// The family's group name (`string`, `generic`, `server`…).
    pub group: &'static str,
    /// Implementation; unused for containers.
    pub handler: Handler,
    /// Subcommands of a container command (CLIENT, CONFIG…).
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// Whether `flag` is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Key positions in `args` according to first/last/step.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 {
            (argc as i32 + self.last_key).max(0) as usize
        } else {
            (self.last_key as usize).min(argc.saturating_sub(1))
        };
        let step = self.step.max(1) as usize;
        let valid = first > 0 && first < argc;
        (first..=last).step_by(step).filter(move |_| valid)
    }
}

/// Per-command counters (INFO commandstats).
#[derive(Default)]
pub struct CmdStats {
    /// calls
    pub calls: AtomicU64,
    /// usec
    pub usec: AtomicU64,
    /// rejected_calls
    pub rejected: AtomicU64,
    /// failed_calls
    pub failed: AtomicU64,
    /// The latency histogram, made on the command's first tracked call in
    /// this stripe: most commands are never called, and the buckets of
    /// all of them in every stripe would be megabytes.
    pub hist: std::sync::OnceLock<Box<Hist>>,
}

/// One command's latency histogram in one stripe.
pub struct Hist {
    /// LATENCY HISTOGRAM's buckets ([`crate::latency::log_bucket`]).
    pub log: [AtomicU64; crate::latency::LOG_BUCKETS],
    /// The percentiles' buckets ([`crate::latency::fine_bucket`]).
    pub fine: [AtomicU64; crate::latency::FINE_BUCKETS],
}

/// A resolved command: its spec and its full name (`config|get`).
#[derive(Clone, Copy)]
pub struct Resolved {
    /// The spec that runs.
    pub spec: &'static CommandSpec,
    /// Index into the stats table.
    pub id: usize,
}

/// Command names, matched without regard to ASCII case and without making
/// a lowercase copy of the name first (the lookup every request makes):
/// the hash folds case as it goes, like Redis's `dictGenCaseHashFunction`.
#[derive(Default)]
struct Names {
    /// `(parent or NO_PARENT, name, id)`.
    table: hashbrown::HashTable<(usize, &'static str, usize)>,
}

const NO_PARENT: usize = usize::MAX;

impl Names {
    fn hash(parent: usize, name: &[u8]) -> u64 {
        // FNV-1a: names are short, so a byte loop beats a block hash.
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ parent as u64;
        for &b in name {
            h = (h ^ b.to_ascii_lowercase() as u64).wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    fn insert(&mut self, parent: usize, name: &'static str, id: usize) {
        let h = Self::hash(parent, name.as_bytes());
        self.table
            .insert_unique(h, (parent, name, id), |e| Self::hash(e.0, e.1.as_bytes()));
    }

    fn get(&self, parent: usize, name: &[u8]) -> Option<usize> {
        let h = Self::hash(parent, name);
        self.table
            .find(h, |e| {
                e.0 == parent && e.1.as_bytes().eq_ignore_ascii_case(name)
            })
            .map(|e| e.2)
    }
}

/// All commands, by name.
pub struct Registry {
    names: Names,
    /// Every spec with its full name, in registration order.
    pub entries: Vec<(String, &'static CommandSpec, Option<&'static CommandSpec>)>,
    /// Number of top-level commands.
    top_count: usize,
    /// Counters, parallel to `entries`, one table per thread stripe.
    stats: crate::state::Striped<Box<[CmdStats]>>,
}

/// Every family's table.
pub fn tables() -> Vec<&'static [CommandSpec]> {
    vec![
        connection::COMMANDS,
        acl::COMMANDS,
        string::COMMANDS,
        bitmap::COMMANDS,
        keys::COMMANDS,
        list::COMMANDS,
        hash::COMMANDS,
        set::COMMANDS,
        zset::COMMANDS,
        stream::COMMANDS,
        geo::COMMANDS,
        sort::COMMANDS,
        dump::COMMANDS,
        hyperloglog::COMMANDS,
        persistence::COMMANDS,
        backup::COMMANDS,
        replication::COMMANDS,
        server::COMMANDS,
        debug::COMMANDS,
        slowlog::COMMANDS,
        latency::COMMANDS,
        lolwut::COMMANDS,
        module::COMMANDS,
        memory::COMMANDS,
        transaction::COMMANDS,
        pubsub::COMMANDS,
        monitor::COMMANDS,
        scripting::COMMANDS,
        cluster::COMMANDS,
    ]
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// Gathers the family tables.
    pub fn new() -> Registry {
        let mut r = Registry {
            names: Names::default(),
            entries: Vec::new(),
            top_count: 0,
            stats: Default::default(),
        };
        for table in tables() {
            for spec in table.iter() {
                let id = r.entries.len();
                r.entries.push((spec.name.to_string(), spec, None));
                r.names.insert(NO_PARENT, spec.name, id);
                r.top_count += 1;
                for sub in spec.subcommands {
                    let sid = r.entries.len();
                    r.entries
                        .push((format!("{}|{}", spec.name, sub.name), sub, Some(spec)));
                    r.names.insert(id, sub.name, sid);
                }
            }
        }
        let n = r.entries.len();
        r.stats = crate::state::Striped::new(|| (0..n).map(|_| CmdStats::default()).collect());
        r
    }

    /// Looks up a top-level command by name, case-insensitively.
    pub fn top(&self, name: &[u8]) -> Option<usize> {
        self.names.get(NO_PARENT, name)
    }

    /// Looks up a subcommand of container `parent`.
    pub fn sub(&self, parent: usize, name: &[u8]) -> Option<usize> {
        self.names.get(parent, name)
    }

    /// The spec at `id`.
    pub fn spec(&self, id: usize) -> &'static CommandSpec {
        self.entries[id].1
    }

    /// The full name at `id` (`get`, `client|list`).
    pub fn full_name(&self, id: usize) -> &str {
        &self.entries[id].0
    }

    /// Records one call; `track` adds it to the latency histogram.
    #[inline]
    pub fn record(&self, id: usize, usec: u64, failed: bool, track: bool) {
        let (s, owned) = self.stats.mine_owned();
        let s = &s[id];
        crate::state::bump(&s.calls, 1, owned);
        crate::state::bump(&s.usec, usec, owned);
        if failed {
            crate::state::bump(&s.failed, 1, owned);
        }
        if track {
            let h = s.hist.get_or_init(|| {
                Box::new(Hist {
                    log: std::array::from_fn(|_| AtomicU64::new(0)),
                    fine: std::array::from_fn(|_| AtomicU64::new(0)),
                })
            });
            crate::state::bump(&h.log[crate::latency::log_bucket(usec)], 1, owned);
            crate::state::bump(&h.fine[crate::latency::fine_bucket(usec)], 1, owned);
        }
    }

    /// Command `id`'s histogram summed over the stripes: the LATENCY
    /// HISTOGRAM buckets and the fine ones; `None` when never tracked.
    pub fn histogram(&self, id: usize) -> Option<(Vec<u64>, Vec<u64>)> {
        let mut log = vec![0u64; crate::latency::LOG_BUCKETS];
        let mut fine = vec![0u64; crate::latency::FINE_BUCKETS];
        for s in self.stats.all() {
            if let Some(h) = s[id].hist.get() {
                for (t, a) in log.iter_mut().zip(h.log.iter()) {
                    *t += a.load(Ordering::Relaxed);
                }
                for (t, a) in fine.iter_mut().zip(h.fine.iter()) {
                    *t += a.load(Ordering::Relaxed);
                }
            }
        }
        (log.iter().sum::<u64>() > 0).then_some((log, fine))
    }

    /// Counts a call refused before it ran (`rejected_calls`).
    pub fn reject(&self, id: usize) {
        self.stats.mine()[id]
            .rejected
            .fetch_add(1, Ordering::Relaxed);
    }

    /// `(calls, usec, rejected_calls, failed_calls)` of command `id`.
    pub fn totals(&self, id: usize) -> (u64, u64, u64, u64) {
        self.stats.all().fold((0, 0, 0, 0), |t, s| {
            let s = &s[id];
            let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
            (
                t.0 + get(&s.calls),
                t.1 + get(&s.usec),
                t.2 + get(&s.rejected),
                t.3 + get(&s.failed),
            )
        })
    }

    /// Zeroes every counter (CONFIG RESETSTAT).
    pub fn reset_stats(&self) {
        for s in self.stats.all().flat_map(|t| t.iter()) {
            for a in [&s.calls, &s.usec, &s.rejected, &s.failed] {
                a.store(0, Ordering::Relaxed);
            }
            if let Some(h) = s.hist.get() {
                for a in h.log.iter().chain(h.fine.iter()) {
                    a.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    /// Number of top-level commands (COMMAND COUNT).
    pub fn count(&self) -> usize {
        self.top_count
    }
}

/// Everything a handler may use.
pub struct Ctx<'a> {
    /// Shared state.
    pub srv: &'a Server,
    /// The calling connection.
    pub client: &'a mut Client,
    /// Where the reply goes.
    pub out: &'a mut Out,
    /// The request, command name first.
    pub args: &'a [Bytes],
    /// The time this command runs at (Unix ms): one clock per command, so
    /// every key it touches sees the same "now", as in Redis.
    pub now: u64,
    /// The running command's id in the registry.
    pub cmd: usize,
    /// True inside EXEC: blocking commands must not block there.
    pub in_exec: bool,
    /// Set when the handler propagated its own effects (or decided nothing
    /// is to be propagated); otherwise dispatch propagates the request
    /// itself if it changed any key.
    pub propagated: bool,
}

/// Redis's standard error texts.
pub mod err {
    /// Wrong type.
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    /// Syntax.
    pub const SYNTAX: &str = "ERR syntax error";
    /// Not an integer.
    pub const NOT_INT: &str = "ERR value is not an integer or out of range";
    /// Not a float.
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    /// No such key.
    pub const NO_KEY: &str = "ERR no such key";
    /// Bad DB index.
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    /// Overflow.
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
}

impl Ctx<'_> {
    /// The current database.
    pub fn db(&self) -> &Db {
        self.srv.keyspace.db(self.client.db)
    }

    /// Argument `i` (0 is the command name).
    pub fn arg(&self, i: usize) -> &[u8] {
        &self.args[i]
    }

    /// Argument `i` as lower-case text, for option matching.
    pub fn opt(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.args[i]).to_ascii_lowercase()
    }

    /// Argument `i` as an i64, or replies the standard error.
    pub fn int_arg(&mut self, i: usize) -> Option<i64> {
        let v = crate::num::parse_i64(&self.args[i]);
        if v.is_none() {
            self.out.error(err::NOT_INT);
        }
        v
    }

    /// Argument `i` as a double, or replies the standard error.
    pub fn float_arg(&mut self, i: usize) -> Option<f64> {
        let v = crate::num::parse_f64(&self.args[i]);
        if v.is_none() {
            self.out.error(err::NOT_FLOAT);
        }
        v
    }

    /// Replies the arity error for this command.
    pub fn wrong_args(&mut self) {
        let name = String::from_utf8_lossy(&self.args[0]).to_ascii_lowercase();
        self.out.error(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }

    /// Propagates an effect command instead of the request.
    pub fn propagate(&mut self, argv: &[&[u8]]) {
        self.propagated = true;
        let stream = &self.srv.hooks.stream;
        if stream.active() {
            stream.propagate(self.client.db, argv);
        }
    }

    /// Parses a blocking timeout in seconds (decimals allowed) as Redis's
    /// `getTimeoutFromObjectOrReply`: `Some(None)` waits forever,
    /// `Some(Some(ms))` is relative milliseconds; errors are replied.
    pub fn timeout_arg(&mut self, i: usize) -> Option<Option<u64>> {
        let Some(secs) = crate::num::parse_f64(&self.args[i]).filter(|s| s.is_finite()) else {
            self.out.error("ERR timeout is not a float or out of range");
            return None;
        };
        if secs < 0.0 {
            self.out.error("ERR timeout is negative");
            return None;
        }
        let ms = secs * 1000.0;
        if ms > (i64::MAX as f64) - (self.now as f64) {
            self.out.error("ERR timeout is out of range");
            return None;
        }
        let ms = ms as u64;
        Some((ms > 0).then_some(ms))
    }

    /// Blocks the client on `keys` until a write lets `serve` reply, the
    /// timeout passes (`on_timeout` replies) or CLIENT UNBLOCK. Inside EXEC
    /// a blocking command never blocks: it times out at once, as in Redis.
    pub fn block(
        &mut self,
        keys: Vec<Bytes>,
        timeout_ms: Option<u64>,
        serve: crate::blocking::ServeFn,
        on_timeout: crate::blocking::TimeoutFn,
    ) {
        let args = self.args.to_vec();
        self.block_args(args, keys, timeout_ms, serve, on_timeout);
    }

    /// [`Ctx::block`] with the arguments the waiter is served with, when
    /// they differ from the request (XREAD's `$` resolved at block time).
    pub fn block_args(
        &mut self,
        args: Vec<Bytes>,
        keys: Vec<Bytes>,
        timeout_ms: Option<u64>,
        serve: crate::blocking::ServeFn,
        on_timeout: crate::blocking::TimeoutFn,
    ) {
        if self.in_exec {
            return on_timeout(self.out);
        }
        let rx = self.srv.hooks.blocked.block(crate::blocking::Request {
            client_id: self.client.handle.id,
            db: self.client.db,
            proto: self.client.proto,
            args,
            keys,
            cmd: self.cmd,
            serve,
            on_timeout,
        });
        self.client.blocked = Some(crate::client::BlockState {
            reply: rx,
            deadline: timeout_ms
                .map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms)),
        });
    }

    /// Runs `f` with a scratch reply buffer, so whatever it replies (errors
    /// included) is dropped: used to re-parse a blocked command's arguments
    /// when serving it, without leaking into the waiter's reply.
    pub fn quietly<R>(&mut self, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
        let mut scratch = crate::resp::Out::new(self.out.proto);
        let mut probe = Ctx {
            srv: self.srv,
            client: &mut *self.client,
            out: &mut scratch,
            args: self.args,
            now: self.now,
            cmd: self.cmd,
            in_exec: true,
            propagated: false,
        };
        f(&mut probe)
    }

    /// The encoding thresholds currently configured.
    pub fn limits(&self) -> rampart_keyspace::EncodingLimits {
        self.srv.config.encoding_limits()
    }

    /// Records a keyspace hit or miss (INFO keyspace_hits/misses) for a
    /// lookup that announces no miss (Redis's `LOOKUP_NONOTIFY`, as OBJECT).
    /// Reads of a named key use [`Ctx::looked_up`].
    pub fn hit(&self, hit: bool) {
        let s = &self.srv.stats;
        if hit { &s.hits } else { &s.misses }.add(1);
    }

    /// Announces keyspace event `event` of `class` on `key` in the
    /// selected database (free when notifications are off).
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.srv.pubsub.notify(class, event, key, self.client.db);
    }

    /// Records a read lookup of `key` in the selected database as Redis's
    /// `lookupKeyRead` does: a hit or a miss in INFO, and on a miss the
    /// `keymiss` event. Call it after the write that may have expired the
    /// key, so `expired` comes first, as in Redis.
    pub fn looked_up(&self, key: &[u8], found: bool) {
        looked_up(self.srv, self.client.db, key, found);
    }
}

/// [`Ctx::looked_up`] for code that has the server but no `Ctx` (SORT's
/// pattern lookups).
pub fn looked_up(srv: &Server, db: usize, key: &[u8], found: bool) {
    let s = &srv.stats;
    if found {
        s.hits.add(1);
    } else {
        s.misses.add(1);
        srv.pubsub
            .notify(crate::pubsub::class::KEY_MISS, "keymiss", key, db);
    }
}

/// Publishes `event` (of class `kind`) for `key`, then `del` when the write
/// emptied and so deleted the key: Redis's order. Called once the key's
/// shard is released, so an `expired` noticed by the same write comes
/// first, as in Redis.
pub(super) fn notify_write(ctx: &Ctx<'_>, kind: u32, event: &str, key: &[u8], deleted: bool) {
    ctx.notify(kind, event, key);
    if deleted {
        ctx.notify(crate::pubsub::class::GENERIC, "del", key);
    }
}

/// Builds a [`CommandSpec`] with no subcommands.
pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        handler,
        subcommands: &[],
    }
}

/// Pads string `s` with zero bytes to `len` (SETRANGE, SETBIT, BITFIELD
/// past the end). A large growth starts from a fresh zeroed allocation,
/// which the allocator gets already zeroed from the system, and copies the
/// old bytes in, instead of writing every new zero: growing a string to
/// 512 MB then costs the copy of what was there, not half a gigabyte of
/// stores (seconds in a debug build).
///
/// ```
/// let mut s = b"ab".to_vec();
/// rampart_server::cmd::grow_zeroed(&mut s, 4);
/// assert_eq!(s, b"ab\0\0");
/// ```
pub fn grow_zeroed(s: &mut Vec<u8>, len: usize) {
    if len <= s.len() {
        return;
    }
    if len - s.len() < 1 << 16 {
        return s.resize(len, 0);
    }
    let mut grown = vec![0u8; len];
    grown[..s.len()].copy_from_slice(s);
    *s = grown;
}

/// Handler of container commands; dispatch never calls it because it
/// resolves the subcommand first.
pub fn container(_: &mut Ctx<'_>) {}

/// Builds a container command (CLIENT, CONFIG…).
pub const fn container_spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    group: &'static str,
    subcommands: &'static [CommandSpec],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 0,
        last_key: 0,
        step: 0,
        group,
        handler: container,
        subcommands,
    }
}

/// Replies Redis's `addReplySubcommandSyntaxError`: a subcommand whose
/// handler, not its arity, refuses the number of arguments.
pub fn subcommand_syntax_error(ctx: &mut Ctx<'_>) {
    let sub: String = String::from_utf8_lossy(&ctx.args[1])
        .chars()
        .take(128)
        .collect();
    let cmd = String::from_utf8_lossy(&ctx.args[0]).to_ascii_uppercase();
    ctx.out.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."
    ));
}

/// Writes a HELP reply: the header line, the lines, and Redis's footer.
pub fn help(out: &mut Out, cmd: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}
