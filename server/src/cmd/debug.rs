//! DEBUG: the subcommands Redis 7.0.15's test suite and tools use, with
//! Redis's replies, errors and arities, answered from Rampart's own
//! layout where Redis describes its internals (SDSLEN, LISTPACK,
//! QUICKLIST, HTSTATS, HTSTATS-KEY, STRUCTSIZE, CLIENT-EVICTION), and the
//! switches that change behaviour for tests (SET-SKIP-CHECKSUM-VALIDATION,
//! SET-DISABLE-DENY-SCRIPTS, DROP-CLUSTER-PACKET-FILTER…) held in
//! [`Knobs`]. Where Redis prints a structure on stdout, Rampart writes a
//! description of its own structure to the log at debug level: counts and
//! sizes only, never key or value bytes.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use rampart_keyspace::{TableShape, Value};

use super::flags::*;
use super::server::allowed_by;
use super::{err, help, spec, CommandSpec, Ctx};

/// The switches DEBUG sets for test suites, read where they take effect.
///
/// ```
/// use std::sync::atomic::Ordering;
/// let k = rampart_server::cmd::debug::Knobs::default();
/// assert!(!k.skip_checksum.load(Ordering::Relaxed));
/// assert!(!k.drops_packet(1));
/// ```
pub struct Knobs {
    /// SET-SKIP-CHECKSUM-VALIDATION: RESTORE payloads and RDB loads are
    /// not checked against their CRC-64.
    pub skip_checksum: AtomicBool,
    /// SET-DISABLE-DENY-SCRIPTS: `noscript` commands may run in scripts.
    pub allow_noscript: AtomicBool,
    /// DROP-CLUSTER-PACKET-FILTER: the bus message type dropped on
    /// arrival, -1 for none.
    pub drop_packet_filter: AtomicI64,
    /// QUICKLIST-PACKED-THRESHOLD, in bytes (Redis's default 1 GB).
    pub packed_threshold: AtomicU64,
    /// REPLYBUFFER PEAK-RESET-TIME in ms, -1 for NEVER.
    pub reply_peak_reset_ms: AtomicI64,
    /// REPLYBUFFER RESIZING.
    pub reply_resizing: AtomicBool,
    /// AOF-FLUSH-SLEEP in microseconds.
    pub aof_flush_sleep: AtomicI64,
}

/// Redis's `REPLY_BUFFER_DEFAULT_PEAK_RESET_TIME`.
const PEAK_RESET_DEFAULT_MS: i64 = 5000;

/// Redis's `packed_threshold` default: 1 GB.
const PACKED_THRESHOLD_DEFAULT: u64 = 1 << 30;

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            skip_checksum: AtomicBool::new(false),
            allow_noscript: AtomicBool::new(false),
            drop_packet_filter: AtomicI64::new(-1),
            packed_threshold: AtomicU64::new(PACKED_THRESHOLD_DEFAULT),
            reply_peak_reset_ms: AtomicI64::new(PEAK_RESET_DEFAULT_MS),
            reply_resizing: AtomicBool::new(true),
            aof_flush_sleep: AtomicI64::new(0),
        }
    }
}

impl Knobs {
    /// Whether a bus message of type `msg_type` is to be dropped.
    pub fn drops_packet(&self, msg_type: u16) -> bool {
        self.drop_packet_filter.load(Ordering::Relaxed) == msg_type as i64
    }
}

/// Redis's `atoi`: leading blanks, a sign, digits up to the first other
/// byte; anything else is 0 (the 0|1 switches read their argument so).
fn atoi(arg: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(arg);
    let t = s.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n = digits.parse::<i64>().unwrap_or(0) as i32 as i64;
    if neg {
        -n
    } else {
        n
    }
}

/// Whether DEBUG is allowed for this client (`enable-debug-command`).
fn debug_allowed(ctx: &Ctx<'_>) -> bool {
    allowed_by(ctx, "enable-debug-command")
}

/// DEBUG HELP's lines, in Redis 7.0.15's order and words (the MALLCTL
/// lines are there because Rampart, like Debian's redis-server, runs on
/// jemalloc).
const HELP: &[&str] = &[
    "AOF-FLUSH-SLEEP <microsec>",
    "    Server will sleep before flushing the AOF, this is used for testing.",
    "ASSERT",
    "    Crash by assertion failed.",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "CRASH-AND-RECOVER [<milliseconds>]",
    "    Hard crash and restart after a <milliseconds> delay (default 0).",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LEAK <string>",
    "    Create a memory leak of the input string.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "REPLICATE <string>",
    "    Replicates the provided string to replicas, allowing data divergence.",
    "MALLCTL <key> [<val>]",
    "    Get or set a malloc tuning integer.",
    "MALLCTL-STR <key> [<val>]",
    "    Get or set a malloc tuning string.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "DROP-CLUSTER-PACKET-FILTER <packet-type>",
    "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
    "OOM",
    "    Crash the server simulating an out-of-memory error.",
    "PANIC",
    "    Crash the server simulating a panic.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "RESTART [<milliseconds>]",
    "    Graceful restart: save config, db, restart after a <milliseconds> delay (default 0).",
    "SDSLEN <key>",
    "    Show low level SDS string info representing `key` and value.",
    "SEGFAULT",
    "    Crash the server with sigsegv.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "STRINGMATCH-TEST",
    "    Run a fuzz tester against the stringmatchlen() function.",
    "STRUCTSIZE",
    "    Return the size of different Redis core C structures.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "QUICKLIST <key> [<0|1>]",
    "    Show low level info about the quicklist encoding of <key>.",
    "    The optional argument (0 by default) sets the level of detail",
    "CLIENT-EVICTION",
    "    Show low level client eviction pools info (maxmemory-clients).",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
    "CLUSTERLINK KILL <to|from|all> <node-id>",
    "    Kills the link based on the direction to/from (both) with the provided node.",
];

/// `DEBUG PROTOCOL type`: one reply of each RESP type, for client tests.
fn debug_protocol(ctx: &mut Ctx<'_>) {
    let o = &mut *ctx.out;
    match ctx.args[2].to_ascii_lowercase().as_slice() {
        b"string" => o.bulk(b"Hello World"),
        b"integer" => o.int(12345),
        // Redis's literal, not pi.
        #[allow(clippy::approx_constant)]
        b"double" => o.double(3.141),
        b"bignum" => {
            if o.resp3() {
                o.raw(b"(1234567999999999999999999999999999999\r\n")
            } else {
                o.bulk(b"1234567999999999999999999999999999999")
            }
        }
        b"null" => o.null(),
        b"array" | b"set" => {
            if ctx.args[2].eq_ignore_ascii_case(b"set") {
                o.set_len(3);
            } else {
                o.array(3);
            }
            for j in 0..3 {
                o.int(j);
            }
        }
        b"map" => {
            o.map_len(3);
            for j in 0..3 {
                o.int(j);
                o.boolean(j == 1);
            }
        }
        b"attrib" => {
            if o.resp3() {
                o.raw(b"|1\r\n");
                o.bulk(b"key-popularity");
                o.array(2);
                o.bulk(b"key:123");
                o.int(90);
            }
            o.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !o.resp3() {
                return o.error("ERR RESP2 is not supported by this command");
            }
            o.push_len(2);
            o.bulk(b"server-cpu-usage");
            o.int(42);
            o.bulk(b"Some real reply following the push reply");
        }
        b"true" => o.boolean(true),
        b"false" => o.boolean(false),
        b"verbatim" => o.verbatim(b"This is a verbatim\nstring"),
        _ => o.error(
            "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}

/// `DEBUG subcommand ...`: dispatches on the subcommand and its argument
/// count exactly as Redis's `debugCommand` does (a subcommand with the
/// wrong count falls through to the unknown-subcommand error).
fn debug(ctx: &mut Ctx<'_>) {
    if !debug_allowed(ctx) {
        return ctx.out.error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.");
    }
    let sub = ctx.opt(1);
    let argc = ctx.args.len();
    match sub.as_str() {
        "help" if argc == 2 => help(ctx.out, "DEBUG", HELP),
        "segfault" => crate::crash::segfault(),
        "panic" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::crash::panic(&format!("DEBUG PANIC called at Unix time {now}"))
        }
        "restart" | "crash-and-recover" => restart(ctx, sub == "restart"),
        "oom" => oom(ctx),
        "assert" => assert(ctx),
        "leak" if argc == 3 => {
            // A real leak, as Redis's `sdsdup` without a free: leak
            // checkers in test suites look for it.
            let _: &'static mut [u8] = Box::leak(ctx.args[2].to_vec().into_boxed_slice());
            ctx.out.ok();
        }
        "reload" => {
            let mut opts = crate::persist::ReloadOptions::default();
            for o in &ctx.args[2..] {
                if o.eq_ignore_ascii_case(b"merge") {
                    opts.merge = true;
                } else if o.eq_ignore_ascii_case(b"noflush") {
                    opts.flush = false;
                } else if o.eq_ignore_ascii_case(b"nosave") {
                    opts.save = false;
                } else {
                    return ctx.out.error(
                        "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                    );
                }
            }
            match crate::persist::debug_reload(ctx.srv, opts) {
                Ok(()) => ctx.out.ok(),
                Err(e) => ctx.out.error(&e),
            }
        }
        "loadaof" => {
            // Rampart has no AOF. Redis with `appendonly no` and no AOF
            // on disk empties its dataset, finds nothing to load and
            // exits with status 1 without a reply; so does Rampart.
            tracing::warn!("DEBUG LOADAOF: there is no append only file to load (Rampart keeps no AOF), exiting as Redis does");
            std::process::exit(1)
        }
        "drop-cluster-packet-filter" if argc == 3 => {
            // Set with or without cluster mode, as in Redis.
            let Some(t) = ctx.int_arg(2) else {
                return;
            };
            ctx.srv.debug.drop_packet_filter.store(t, Ordering::Relaxed);
            ctx.out.ok();
        }
        "sdslen" if argc == 3 => sdslen(ctx),
        "listpack" if argc == 3 => listpack(ctx),
        "quicklist" if argc == 3 || argc == 4 => quicklist(ctx),
        "quicklist-packed-threshold" if argc == 3 => {
            // Redis's `quicklistisSetPackedThreshold`. Rampart's lists
            // have no plain nodes (an element too big for a chunk's limits
            // gets a chunk of its own whatever its size), so the value is
            // only kept.
            let sz = std::str::from_utf8(&ctx.args[2])
                .ok()
                .and_then(crate::num::parse_memory)
                .filter(|&n| n >= 0 && (n as u64) <= (1u64 << 32) - (1 << 20));
            match sz {
                Some(n) => {
                    let n = if n == 0 {
                        PACKED_THRESHOLD_DEFAULT
                    } else {
                        n as u64
                    };
                    ctx.srv.debug.packed_threshold.store(n, Ordering::Relaxed);
                    ctx.out.ok();
                }
                None => ctx.out.error(
                    "ERR argument must be a memory value bigger than 1 and smaller than 4gb",
                ),
            }
        }
        "set-skip-checksum-validation" if argc == 3 => {
            let on = atoi(&ctx.args[2]) != 0;
            ctx.srv.debug.skip_checksum.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        "aof-flush-sleep" if argc == 3 => {
            // No AOF to flush: kept, as Redis keeps it with `appendonly no`.
            let us = atoi(&ctx.args[2]);
            ctx.srv.debug.aof_flush_sleep.store(us, Ordering::Relaxed);
            ctx.out.ok();
        }
        "structsize" if argc == 2 => structsize(ctx),
        "htstats" if argc == 3 => htstats(ctx),
        "htstats-key" if argc == 3 => htstats_key(ctx),
        "set-disable-deny-scripts" if argc == 3 => {
            let on = atoi(&ctx.args[2]) != 0;
            ctx.srv.debug.allow_noscript.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        "config-rewrite-force-all" if argc == 2 => {
            // Redis, started without a config file, fails on the NULL
            // path with EFAULT's text; Rampart answers the same.
            if ctx.srv.config.file.read().is_none() {
                return ctx
                    .out
                    .error("ERR CONFIG-REWRITE-FORCE-ALL failed: Bad address");
            }
            match super::server::rewrite_config(ctx.srv, true) {
                Ok(()) => ctx.out.ok(),
                Err(e) => {
                    let e = e.strip_prefix("ERR ").unwrap_or(&e).to_string();
                    ctx.out
                        .error(&format!("ERR CONFIG-REWRITE-FORCE-ALL failed: {e}"))
                }
            }
        }
        "client-eviction" if argc == 2 => client_eviction(ctx),
        "mallctl" if argc >= 3 => mallctl(ctx, false),
        "mallctl-str" if argc >= 3 => mallctl(ctx, true),
        "replybuffer" if argc == 4 => replybuffer(ctx),
        "clusterlink" if argc == 5 && ctx.args[2].eq_ignore_ascii_case(b"kill") => {
            clusterlink_kill(ctx)
        }
        "sleep" if argc == 3 => {
            let secs = crate::num::parse_f64(&ctx.args[2]).unwrap_or(0.0).max(0.0);
            // The whole server stops, as in Redis: the exclusive gate is
            // held (DEBUG runs exclusive) while this thread sleeps.
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
            ctx.out.ok();
        }
        "log" if argc == 3 => {
            // What the client asked to be written: a marker for test
            // suites, not data.
            tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&ctx.args[2]));
            ctx.out.ok();
        }
        "error" if argc == 3 => {
            // Any text as an error reply, newlines made spaces (client
            // libraries' tests inject LOADING, OOM, READONLY this way).
            let text: String = String::from_utf8_lossy(&ctx.args[2])
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            ctx.out.error(&text);
        }
        "replicate" if argc >= 3 => {
            let argv: Vec<&[u8]> = ctx.args[2..].iter().map(|a| &a[..]).collect();
            ctx.srv.repl.feed_as_is(&argv);
            ctx.out.ok();
        }
        "change-repl-id" if argc == 2 => {
            ctx.srv.repl.change_replid();
            ctx.out.ok();
        }
        "stringmatch-test" if argc == 2 => {
            // Redis fuzzes its glob matcher here; ours is checked by its
            // own tests, so there is nothing to crash.
            ctx.out
                .simple("Apparently Redis did not crash: test passed");
        }
        "pause-cron" if argc == 3 => {
            // Redis reads it with atoi: anything not a non-zero number is 0.
            let on = crate::num::parse_i64(&ctx.args[2]).is_some_and(|n| n != 0);
            ctx.srv.cron_paused.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        "set-active-expire" if argc == 3 => {
            let on = ctx.args[2].as_ref() != b"0";
            ctx.srv.active_expire.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        "populate" if (3..=5).contains(&argc) => debug_populate(ctx),
        "digest" if argc == 2 => {
            let d = crate::digest::dataset(ctx.srv);
            ctx.out.simple(&crate::digest::hex(&d));
        }
        "digest-value" => {
            let db = ctx.srv.keyspace.db(ctx.client.db);
            let keys = &ctx.args[2..];
            ctx.out.array(keys.len());
            for k in keys {
                // Logically expired keys still count, as in Redis.
                let d = db.peek(k, 0, crate::digest::value);
                ctx.out.simple(&crate::digest::hex(&d));
            }
        }
        "protocol" if argc == 3 => debug_protocol(ctx),
        "object" if argc == 3 => {
            let key = ctx.args[2].clone();
            let line = ctx.db().peek(&key, ctx.now, |n| {
                n.map(|n| {
                    let len = n.value.as_str().map_or(0, |s| s.len());
                    format!(
                        "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                        n.value.encoding(),
                        len + 1,
                        (ctx.now / 1000) & 0xff_ffff,
                        n.idle_secs(ctx.now)
                    )
                })
            });
            match line {
                Some(l) => ctx.out.simple(&l),
                None => ctx.out.error(err::NO_KEY),
            }
        }
        _ => {
            let raw = String::from_utf8_lossy(&ctx.args[1]).into_owned();
            ctx.out.error(&format!(
                "ERR unknown subcommand or wrong number of arguments for '{raw}'. Try DEBUG HELP."
            ));
        }
    }
}

/// `DEBUG RESTART|CRASH-AND-RECOVER [ms]`: Redis's `restartServer`. The
/// graceful form rewrites the config file (when there is one) and saves
/// as a shutdown would; then, after the delay, the process replaces
/// itself with a fresh start of the same binary and arguments (every
/// socket and file Rampart opens is close-on-exec, as Redis closes its
/// descriptors by hand). Only a failure answers.
fn restart(ctx: &mut Ctx<'_>, graceful: bool) {
    let mut delay = 0;
    if ctx.args.len() >= 3 {
        let Some(d) = ctx.int_arg(2) else {
            return;
        };
        delay = d.max(0) as u64;
    }
    const FAILED: &str = "ERR failed to restart the server. Check server logs.";
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("Can't restart: the executable cannot be found: {e}");
            return ctx.out.error(FAILED);
        }
    };
    let runnable = std::fs::metadata(&exe).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    });
    if !runnable {
        tracing::warn!(
            "Can't restart: this process has no permissions to execute {}",
            exe.display()
        );
        return ctx.out.error(FAILED);
    }
    if graceful {
        if ctx.srv.config.file.read().is_some() {
            if let Err(e) = super::server::rewrite_config(ctx.srv, false) {
                tracing::warn!("Can't restart: configuration rewrite process failed: {e}");
                return ctx.out.error(FAILED);
            }
        }
        if let Err(e) = crate::persist::shutdown_save(ctx.srv, false, false) {
            tracing::warn!("Can't restart: error preparing for shutdown: {e}");
            return ctx.out.error(FAILED);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(delay));
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .exec();
    // exec returns only on failure, and the server is half gone by now
    // (saved, maybe): Redis `_exit(1)`s here too.
    tracing::warn!("Can't restart: exec of {} failed: {e}", exe.display());
    std::process::exit(1)
}

/// `DEBUG OOM`: Redis asks its allocator for SIZE_MAX/2 bytes, which
/// fails and ends the process through its out-of-memory handler; so does
/// Rampart, with the same request and the same report.
fn oom(ctx: &mut Ctx<'_>) {
    let size = usize::MAX / 2;
    let mut v: Vec<u8> = Vec::new();
    if v.try_reserve_exact(size).is_err() {
        crate::crash::out_of_memory(size)
    }
    drop(v);
    ctx.out.ok();
}

/// `DEBUG ASSERT`: Redis's `serverAssertWithInfo(c, argv[0], 1 == 2)`,
/// its client context first. The arguments' text is not logged: Rampart
/// never writes what clients send to its log.
fn assert(ctx: &mut Ctx<'_>) {
    let h = &ctx.client.handle;
    let context = vec![
        "=== ASSERTION FAILED CLIENT CONTEXT ===".to_string(),
        format!(
            "client->conn = fd={}, addr={}, laddr={}",
            h.fd, h.addr, h.laddr
        ),
        format!("client->argc = {}", ctx.args.len()),
    ];
    crate::crash::assert_failed(&context, "1 == 2")
}

/// Looks `key` up in the client's database for the structure
/// subcommands: expired keys count as missing unless `keep_expired`
/// (SDSLEN reads the dictionary directly in Redis; the others go through
/// `lookupKeyRead`). `f` sees the value; the no-key error is sent here.
fn with_value<R>(
    ctx: &mut Ctx<'_>,
    keep_expired: bool,
    f: impl FnOnce(&rampart_keyspace::Node) -> R,
) -> Option<R> {
    let now = if keep_expired { 0 } else { ctx.now };
    let key = ctx.args[2].clone();
    let r = ctx.db().peek(&key, now, |n| n.map(f));
    if r.is_none() {
        ctx.out.error(err::NO_KEY);
    }
    r
}

/// `DEBUG SDSLEN key`. Redis's figures for our layout: `key_sds_len` is
/// the key's length; `key_sds_avail` is 0 (keys are stored exact-sized);
/// `key_zmalloc` is the bytes the key holds outside the entry (0 for a
/// key of up to 22 bytes, kept inside the entry). For the value, the
/// same: `val_sds_len` its length; `val_sds_avail` the spare capacity a
/// growable (`raw`, APPEND/SETRANGE-grown) string keeps, else 0;
/// `val_zmalloc` the bytes it holds outside the entry (0 when inline).
fn sdslen(ctx: &mut Ctx<'_>) {
    let line = with_value(ctx, true, |n| {
        let key_heap = if n.key.len() > 22 { n.key.len() } else { 0 };
        let (len, avail, heap) = match &n.value {
            v if v.encoding() == "int" => return None,
            Value::StrInline { len, .. } => (*len as usize, 0, 0),
            Value::Str(b) => (b.len(), 0, b.len()),
            Value::StrRaw(v) => (v.len(), v.capacity() - v.len(), v.capacity()),
            _ => return None,
        };
        Some(format!(
            "key_sds_len:{}, key_sds_avail:0, key_zmalloc: {key_heap}, val_sds_len:{len}, val_sds_avail:{avail}, val_zmalloc: {heap}",
            n.key.len()
        ))
    });
    match line {
        Some(Some(l)) => ctx.out.simple(&l),
        Some(None) => ctx.out.error("ERR Not an sds encoded string."),
        None => {}
    }
}

/// `DEBUG LISTPACK key`: for a value whose OBJECT ENCODING is `listpack`
/// (a small hash or sorted set), its shape goes to the log.
fn listpack(ctx: &mut Ctx<'_>) {
    let shape = with_value(ctx, false, |n| {
        (n.value.encoding() == "listpack").then(|| {
            let kind = match n.value {
                Value::Hash(_) => "hash",
                _ => "zset",
            };
            (kind, value_len(&n.value), n.value.heap_size())
        })
    });
    match shape {
        Some(Some((kind, entries, bytes))) => {
            tracing::debug!("DEBUG LISTPACK: {kind} listpack of {entries} elements, {bytes} bytes");
            ctx.out.simple("Listpack structure printed on stdout");
        }
        Some(None) => ctx.out.error("ERR Not a listpack encoded object."),
        None => {}
    }
}

/// Elements of a collection (pairs count once).
fn value_len(v: &Value) -> usize {
    match v {
        Value::List(l) => l.len(),
        Value::Hash(h) => h.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        _ => 1,
    }
}

/// `DEBUG QUICKLIST key [0|1]`: a list's chunks go to the log, each
/// chunk's element count and bytes with a non-zero level (`atoi`, as
/// Redis reads it).
fn quicklist(ctx: &mut Ctx<'_>) {
    let full = ctx.args.get(3).is_some_and(|a| atoi(a) != 0);
    let shape = with_value(ctx, false, |n| match &n.value {
        Value::List(l) => Some((l.len(), l.fill(), l.chunk_shapes())),
        _ => None,
    });
    match shape {
        Some(Some((len, fill, chunks))) => {
            tracing::debug!(
                "DEBUG QUICKLIST: {len} elements in {} chunks, fill {fill}",
                chunks.len()
            );
            if full {
                for (i, (count, used, cap)) in chunks.iter().enumerate() {
                    tracing::debug!(
                        "DEBUG QUICKLIST: chunk {i}: {count} elements, {used} bytes used of {cap}"
                    );
                }
            }
            ctx.out.simple("Quicklist structure printed on stdout");
        }
        Some(None) => ctx.out.error("ERR Not a quicklist encoded object."),
        None => {}
    }
}

/// `DEBUG STRUCTSIZE`: Redis's names, our sizes. `robj` is a value
/// ([`Value`]), `dictentry` a keyspace entry (key, value, expiry and
/// access clock); Rampart's strings have no sds header: a string of up to
/// 22 bytes keeps one length byte inside the value (`sdshdr5`, `sdshdr8`),
/// a longer one a pointer and a length (`sdshdr16` and up).
fn structsize(ctx: &mut Ctx<'_>) {
    let wide = std::mem::size_of::<Box<[u8]>>();
    let text = format!(
        "bits:{} robj:{} dictentry:{} sdshdr5:1 sdshdr8:1 sdshdr16:{wide} sdshdr32:{wide} sdshdr64:{wide} ",
        usize::BITS,
        std::mem::size_of::<Value>(),
        std::mem::size_of::<rampart_keyspace::Node>(),
    );
    ctx.out.bulk(text.as_bytes());
}

/// Redis's `dictGetStats` text for one table.
fn table_stats(t: &TableShape) -> String {
    let mut s = String::from("Hash table 0 stats (main hash table):\n");
    if t.elements == 0 {
        s.push_str("No stats available for empty dictionaries\n");
        return s;
    }
    let used: usize = t.chains.iter().skip(1).sum();
    let total: usize = t.chains.iter().enumerate().map(|(n, c)| n * c).sum();
    let max = t.chains.iter().rposition(|&c| c > 0).unwrap_or(0);
    let slots = used.max(1) as f32;
    s.push_str(&format!(
        " table size: {}\n number of elements: {}\n different slots: {used}\n max chain length: {max}\n avg chain length (counted): {:.2}\n avg chain length (computed): {:.2}\n Chain length distribution:\n",
        t.slots,
        t.elements,
        total as f32 / slots,
        t.elements as f32 / slots,
    ));
    for (n, &c) in t.chains.iter().enumerate().take(49) {
        if c > 0 {
            s.push_str(&format!(
                "   {n}: {c} ({:.2}%)\n",
                c as f32 / t.slots.max(1) as f32 * 100.0
            ));
        }
    }
    s
}

/// `DEBUG HTSTATS dbid`. The keyspace is one open-addressing table per
/// shard: the table size is their combined room, and each key has a slot
/// of its own (chains of one). Expiries live in the entries, not in a
/// table of their own, so the "Expires HT" is the same table seen through
/// its keys that have an expiry.
fn htstats(ctx: &mut Ctx<'_>) {
    let Some(id) = ctx.int_arg(2) else {
        return;
    };
    if id < 0 || id as usize >= ctx.srv.keyspace.len() {
        return ctx.out.error("ERR Out of range database");
    }
    let db = ctx.srv.keyspace.db(id as usize);
    let slots = db.table_slots();
    let mut text = String::from("[Dictionary HT]\n");
    text.push_str(&table_stats(&TableShape::open(slots, db.len())));
    text.push_str("[Expires HT]\n");
    text.push_str(&table_stats(&TableShape::open(slots, db.volatile_len())));
    ctx.out.verbatim(text.as_bytes());
}

/// `DEBUG HTSTATS-KEY key`: for a `hashtable` hash or set (open
/// addressing, chains of one) or a `skiplist` sorted set (whose member
/// index chains).
fn htstats_key(ctx: &mut Ctx<'_>) {
    match with_value(ctx, false, |n| n.value.table_shape()) {
        Some(Some(t)) => ctx.out.verbatim(table_stats(&t).as_bytes()),
        Some(None) => ctx.out.error(
            "ERR The value stored at the specified key is not represented using an hash table",
        ),
        None => {}
    }
}

/// Redis's client memory buckets: 32 KiB and below, then powers of two
/// up to 8 GiB and above (`CLIENT_MEM_USAGE_BUCKET_MIN_LOG` 15, `_MAX_LOG`
/// 33).
const BUCKET_MIN_LOG: u32 = 15;
const BUCKETS: usize = 19;

/// `DEBUG CLIENT-EVICTION`: the clients client eviction tallies (their
/// query and reply buffers, see `client_mem`), by Redis's size buckets.
fn client_eviction(ctx: &mut Ctx<'_>) {
    if ctx.srv.client_mem.limit() == 0 {
        return ctx.out.error("ERR maxmemory-clients is disabled.");
    }
    let mut sums = [(0u64, 0u64); BUCKETS];
    for c in ctx.srv.clients.all() {
        let mem = c.mem.load(Ordering::Relaxed);
        let bits = u64::BITS - mem.leading_zeros();
        let i = (bits.saturating_sub(BUCKET_MIN_LOG) as usize).min(BUCKETS - 1);
        sums[i].0 += mem;
        sums[i].1 += 1;
    }
    let mut text = String::new();
    for (j, (mem, n)) in sums.iter().enumerate() {
        if j == 0 {
            text.push_str("bucket          0");
        } else {
            text.push_str(&format!(
                "bucket {:>10}",
                1u64 << (j as u32 - 1 + BUCKET_MIN_LOG)
            ));
        }
        if j == BUCKETS - 1 {
            text.push_str("+            : ");
        } else {
            text.push_str(&format!(
                " - {:>10}: ",
                (1u64 << (j as u32 + BUCKET_MIN_LOG)) - 1
            ));
        }
        text.push_str(&format!("tot-mem: {mem:>10}, clients: {n}\n"));
    }
    ctx.out.verbatim(text.as_bytes());
}

/// `DEBUG MALLCTL key [val]` / `MALLCTL-STR key [val]`: Rampart runs on
/// jemalloc, as Debian's redis-server does, so these reach the same
/// allocator with Redis's replies (`rampart_sys::mallctl`).
fn mallctl(ctx: &mut Ctx<'_>, string: bool) {
    let name = ctx.args[2].clone();
    if string {
        let val = ctx.args.get(3).cloned();
        match rampart_sys::mallctl_str(&name, val.as_deref()) {
            Ok(Some(old)) => ctx.out.bulk(old.as_bytes()),
            Ok(None) => ctx.out.ok(),
            Err(e) => ctx.out.error(&format!("ERR {e}")),
        }
        return;
    }
    let val = if ctx.args.len() > 3 {
        let Some(v) = ctx.int_arg(3) else {
            return;
        };
        Some(v)
    } else {
        None
    };
    match rampart_sys::mallctl_int(&name, val) {
        Ok(Some(old)) => ctx.out.int(old),
        Ok(None) => ctx.out.ok(),
        Err(e) => ctx.out.error(&format!("ERR {e}")),
    }
}

/// `DEBUG REPLYBUFFER PEAK-RESET-TIME <NEVER|RESET|ms>` and `RESIZING
/// <0|1>`. Rampart builds each batch of replies in a buffer it lets go
/// once written, so there is no peak to reset or buffer to resize: the
/// values are kept (and validated as Redis validates them).
fn replybuffer(ctx: &mut Ctx<'_>) {
    let what = ctx.opt(2);
    match what.as_str() {
        "peak-reset-time" => {
            let v = ctx.opt(3);
            let ms = match v.as_str() {
                "never" => -1,
                "reset" => PEAK_RESET_DEFAULT_MS,
                _ => match ctx.int_arg(3) {
                    Some(n) => n,
                    None => return,
                },
            };
            ctx.srv
                .debug
                .reply_peak_reset_ms
                .store(ms, Ordering::Relaxed);
        }
        "resizing" => {
            let on = atoi(&ctx.args[3]) != 0;
            ctx.srv.debug.reply_resizing.store(on, Ordering::Relaxed);
        }
        _ => {
            // addReplySubcommandSyntaxError: the subcommand as typed.
            let raw = String::from_utf8_lossy(&ctx.args[1]).into_owned();
            return ctx.out.error(&format!(
                "ERR unknown subcommand or wrong number of arguments for '{raw}'. Try DEBUG HELP."
            ));
        }
    }
    ctx.out.ok();
}

/// `DEBUG CLUSTERLINK KILL <to|from|all> <node-id>`: closes bus links to
/// and/or from a node; the tick reconnects as after any lost link. Two
/// Redis bugs are not copied: it answers an unknown direction with an
/// error *and* +OK (two replies to one command), and it crashes on a node
/// without the link asked for (myself, say); Rampart sends the error
/// only, and +OK with nothing to close.
fn clusterlink_kill(ctx: &mut Ctx<'_>) {
    let Some(bus) = ctx.srv.cluster.get().cloned() else {
        return ctx
            .out
            .error("ERR Debug option only available for cluster mode enabled setup!");
    };
    let id = ctx.args[4].clone();
    let Some(name) = bus.state.lock().lookup(&id).map(|n| n.name) else {
        return ctx.out.error(&format!(
            "ERR Unknown node {}",
            String::from_utf8_lossy(&id)
        ));
    };
    let (to, from) = match ctx.opt(3).as_str() {
        "from" => (false, true),
        "to" => (true, false),
        "all" => (true, true),
        _ => {
            return ctx.out.error(&format!(
                "ERR Unknown direction {}",
                String::from_utf8_lossy(&ctx.args[3])
            ))
        }
    };
    bus.state.lock().kill_links(&name, to, from);
    bus.flush();
    ctx.out.ok();
}

/// `DEBUG POPULATE count [prefix] [size]`: keys `prefix:N` holding
/// `value:N`, zero-padded or cut to `size`; existing keys are left alone.
fn debug_populate(ctx: &mut Ctx<'_>) {
    let Some(count) = crate::num::parse_i64(&ctx.args[2]).filter(|c| *c >= 0) else {
        return ctx.out.error("ERR value is out of range, must be positive");
    };
    let prefix = if ctx.args.len() >= 4 {
        ctx.args[3].to_vec()
    } else {
        b"key".to_vec()
    };
    let size = if ctx.args.len() == 5 {
        match crate::num::parse_i64(&ctx.args[4]) {
            Some(s) if s >= 0 => Some(s as usize),
            _ => return ctx.out.error("ERR value is out of range, must be positive"),
        }
    } else {
        None
    };
    // Redis writes the plain `value:N` for a size of 0, not an empty string.
    let size = size.filter(|&s| s > 0);
    if let Some(s) = size {
        let max = ctx
            .srv
            .config
            .hot
            .proto_max_bulk_len
            .load(Ordering::Relaxed);
        if s as i64 > max {
            return ctx
                .out
                .error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        }
    }
    let db = ctx.db();
    let mut key = Vec::with_capacity(prefix.len() + 21);
    for j in 0..count as u64 {
        key.clear();
        key.extend_from_slice(&prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        let text = format!("value:{j}");
        let value = match size {
            None => Value::string(text.as_bytes()),
            Some(s) => {
                let mut v = vec![0u8; s];
                let n = s.min(text.len());
                v[..n].copy_from_slice(&text.as_bytes()[..n]);
                Value::string(&v)
            }
        };
        db.write(&key, ctx.now, |slot| {
            if !slot.exists() {
                slot.insert(value, None);
            }
        });
    }
    ctx.out.ok();
}

/// The DEBUG family's table.
pub static COMMANDS: &[CommandSpec] = &[spec(
    "debug",
    -2,
    ADMIN | NOSCRIPT | LOADING | STALE | EXCLUSIVE,
    (0, 0, 0),
    "server",
    debug,
)];

#[cfg(test)]
mod tests {
    /// DEBUG cannot be reached by the differential corpus (Redis refuses
    /// to enable it at runtime), so its argument rules are checked here.
    #[test]
    fn debug_populate_and_reload_options_as_redis() {
        let mut k = crate::testkit::Kit::new();
        k.srv.config.force("enable-debug-command", "yes");
        assert_eq!(k.run(&["DEBUG", "POPULATE", "2", "p", "0"]), "+OK\r\n");
        assert_eq!(k.run(&["GET", "p:1"]), "$7\r\nvalue:1\r\n");
        assert_eq!(k.run(&["DEBUG", "POPULATE", "1", "q", "3"]), "+OK\r\n");
        assert_eq!(k.run(&["GET", "q:0"]), "$3\r\nval\r\n");
        assert_eq!(
            k.run(&["DEBUG", "RELOAD", "FOO"]),
            "-ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.\r\n"
        );
    }

    #[test]
    fn atoi_reads_as_c_does() {
        assert_eq!(super::atoi(b"1"), 1);
        assert_eq!(super::atoi(b" 12x"), 12);
        assert_eq!(super::atoi(b"x"), 0);
        assert_eq!(super::atoi(b"-3"), -3);
    }

    #[test]
    fn table_stats_as_dict_get_stats() {
        use rampart_keyspace::TableShape;
        assert_eq!(
            super::table_stats(&TableShape::open(4, 0)),
            "Hash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n"
        );
        assert_eq!(
            super::table_stats(&TableShape::open(4, 2)),
            "Hash table 0 stats (main hash table):\n table size: 4\n number of elements: 2\n different slots: 2\n max chain length: 1\n avg chain length (counted): 1.00\n avg chain length (computed): 1.00\n Chain length distribution:\n   0: 2 (50.00%)\n   1: 2 (50.00%)\n"
        );
    }
}
