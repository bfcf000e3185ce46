//! DUMP, RESTORE (and RESTORE-ASKING) and MIGRATE: a key's value as Redis 7.0's serialization (RDB
//! encoding, RDB version, CRC-64), byte-identical to Redis's for the
//! compact encodings, and back.

use rampart_persistence::rdb;

use super::flags::*;
use super::{err, spec, CommandSpec, Ctx};

const G: &str = "generic";

const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
const BAD_TTL: &str = "ERR Invalid TTL value, must be >= 0";
const BAD_IDLE: &str = "ERR Invalid IDLETIME value, must be >= 0";
const BAD_FREQ: &str = "ERR Invalid FREQ value, must be >= 0 and <= 255";
const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const BAD_FORMAT: &str = "ERR Bad data format";

/// `DUMP key`: the serialized value, or nil when the key does not exist.
fn dump(ctx: &mut Ctx<'_>) {
    let db = ctx.srv.keyspace.db(ctx.client.db);
    // lookupKeyRead: touches the key and counts a hit or a miss.
    let payload = db.get(&ctx.args[1], ctx.now, |n| {
        n.map(|n| rdb::dump_value(&n.value))
    });
    ctx.looked_up(&ctx.args[1], payload.is_some());
    match payload {
        Some(p) => ctx.out.bulk(&p),
        None => ctx.out.null(),
    }
}

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds]
/// [FREQ frequency]`, checking in Redis 7.0's order: options, an existing
/// key (BUSYKEY), the TTL, the payload's version and CRC, its contents. A
/// TTL already in the past creates nothing (and with REPLACE deletes the
/// old key). A relative TTL is propagated as an absolute one with ABSTTL,
/// as Redis does.
fn restore(ctx: &mut Ctx<'_>) {
    let mut replace = false;
    let mut absttl = false;
    let mut idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let argc = ctx.args.len();
    let mut j = 4;
    while j < argc {
        let more = argc - j - 1;
        match ctx.opt(j).as_str() {
            "replace" => replace = true,
            "absttl" => absttl = true,
            "idletime" if more >= 1 && freq.is_none() => {
                let Some(v) = ctx.int_arg(j + 1) else {
                    return;
                };
                if v < 0 {
                    return ctx.out.error(BAD_IDLE);
                }
                idle = Some(v);
                j += 1;
            }
            "freq" if more >= 1 && idle.is_none() => {
                let Some(v) = ctx.int_arg(j + 1) else {
                    return;
                };
                if !(0..=255).contains(&v) {
                    return ctx.out.error(BAD_FREQ);
                }
                freq = Some(v);
                j += 1;
            }
            _ => return ctx.out.error(err::SYNTAX),
        }
        j += 1;
    }
    let db = ctx.srv.keyspace.db(ctx.client.db);
    let now = ctx.now;
    // lookupKeyWrite: an expired key counts as absent.
    if !replace && db.get(&ctx.args[1], now, |n| n.is_some()) {
        return ctx.out.error(BUSYKEY);
    }
    let Some(ttl) = ctx.int_arg(2) else {
        return;
    };
    if ttl < 0 {
        return ctx.out.error(BAD_TTL);
    }
    let verify = !ctx
        .srv
        .debug
        .skip_checksum
        .load(std::sync::atomic::Ordering::Relaxed);
    let value = match rdb::restore_value_with(&ctx.args[3], &ctx.limits(), verify) {
        Ok(v) => v,
        Err(e) if e.is_payload_version_or_checksum() => return ctx.out.error(BAD_PAYLOAD),
        Err(_) => return ctx.out.error(BAD_FORMAT),
    };
    // Redis adds the TTL to the clock in a signed 64-bit integer: a sum
    // that overflows is negative, hence already expired.
    let expire_at = match ttl {
        0 => None,
        _ if absttl => Some(ttl),
        _ => Some((now as i64).wrapping_add(ttl)),
    };
    let key = &ctx.args[1][..];
    if expire_at.is_some_and(|at| at <= now as i64) {
        // Already expired: nothing is created; REPLACE still deletes.
        let deleted = replace && db.delete(key, now);
        if deleted {
            let del: &[u8] = if ctx.srv.config.flag("lazyfree-lazy-server-del") {
                b"UNLINK"
            } else {
                b"DEL"
            };
            ctx.propagate(&[del, key]);
            ctx.notify(crate::pubsub::class::GENERIC, "del", key);
        } else {
            ctx.propagated = true;
        }
        return ctx.out.ok();
    }
    let expire_at = expire_at.map(|at| at as u64);
    // Redis keeps the idle time under an LRU policy and the frequency
    // under an LFU one, and drops the other (objectSetLRUOrLFU).
    let lfu = ctx.srv.keyspace.access.lfu();
    let idle = idle.filter(|_| !lfu);
    let freq = freq.filter(|_| lfu);
    if replace {
        // Redis's dbDelete: a key that expired but was not yet collected
        // goes without an `expired` event.
        db.delete(key, now);
    }
    db.write(key, now, |s| {
        if replace {
            s.remove();
        }
        s.insert(value, expire_at);
        if let Some(n) = s.node() {
            if let Some(secs) = idle {
                n.set_idle_secs(now, secs as u64);
            }
            if let Some(f) = freq {
                n.set_freq(now, f as u8);
            }
        }
    });
    if let (Some(at), false) = (expire_at, absttl) {
        // Propagate the TTL as an absolute time, with ABSTTL appended.
        let at = itoa::Buffer::new().format(at).to_string();
        let mut argv: Vec<&[u8]> = ctx.args.iter().map(|a| &a[..]).collect();
        argv[2] = at.as_bytes();
        argv.push(b"ABSTTL");
        ctx.propagate(&argv);
    }
    ctx.notify(crate::pubsub::class::GENERIC, "restore", key);
    ctx.out.ok();
}

/// How long MIGRATE waits on its target when the timeout given is not
/// positive (Redis's default).
const MIGRATE_DEFAULT_TIMEOUT_MS: u64 = 1000;

/// One MIGRATE attempt's outcome.
enum Sent {
    /// Every reply read: per key, the error the target gave (if any), and
    /// the first error of AUTH/SELECT.
    Replies(Vec<Option<String>>, Option<String>),
    /// The connection failed: `connect`, or while `writing` or reading;
    /// `timed_out` when the timeout ran out (no retry then, as Redis).
    Io {
        connect: bool,
        writing: bool,
        timed_out: bool,
    },
}

/// Whether an I/O error is a socket timeout running out.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// How many targets MIGRATE keeps a connection to, and for how long an
/// unused one stays open (Redis's MIGRATE_SOCKET_CACHE_ITEMS and _TTL).
const MIGRATE_CACHE_ITEMS: usize = 64;
const MIGRATE_CACHE_TTL_SECS: u64 = 10;

/// A connection MIGRATE keeps to a target between calls (Redis's
/// `migrateCachedSocket`): a reshard sends one MIGRATE per batch of keys
/// to the same node, and each would otherwise pay a connect (and a TLS
/// handshake). It remembers the database it last selected, so SELECT is
/// sent only when that changes.
struct Cached {
    stream: Box<dyn MigrateStream>,
    /// The TCP socket under `stream`, for each call's timeouts.
    tcp: std::net::TcpStream,
    last_dbid: Option<i64>,
    last_use_secs: u64,
}

/// MIGRATE's cached connections by `host:port` (INFO's
/// `migrate_cached_sockets`). A call takes its target's connection out
/// while it uses it and puts it back after a clean exchange; a socket
/// error closes it.
///
/// ```
/// let cache = rampart_server::cmd::dump::MigrateSockets::default();
/// assert_eq!(cache.len(), 0);
/// cache.close_idle(u64::MAX);
/// ```
#[derive(Default)]
pub struct MigrateSockets {
    map: parking_lot::Mutex<std::collections::HashMap<String, Cached>>,
}

impl MigrateSockets {
    /// How many connections are cached.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the connections unused for more than 10 s (called once a
    /// second, as Redis's `migrateCloseTimedoutSockets` from its cron).
    pub fn close_idle(&self, now_secs: u64) {
        self.map
            .lock()
            .retain(|_, c| now_secs.saturating_sub(c.last_use_secs) <= MIGRATE_CACHE_TTL_SECS);
    }

    fn take(&self, target: &str) -> Option<Cached> {
        self.map.lock().remove(target)
    }

    fn put(&self, target: String, c: Cached) {
        let mut map = self.map.lock();
        if map.len() >= MIGRATE_CACHE_ITEMS && !map.contains_key(&target) {
            // Full: drop one, as Redis drops a random one.
            if let Some(k) = map.keys().next().cloned() {
                map.remove(&k);
            }
        }
        map.insert(target, c);
    }
}

/// MIGRATE's socket: TCP, or TLS over it with `tls-cluster yes`.
trait MigrateStream: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> MigrateStream for T {}

/// Runs the TLS handshake with `host` over `tcp` (bounded by the socket's
/// timeouts), as Redis's `migrateGetSocket` connects with TLS when
/// `tls-cluster` is set.
fn migrate_tls(
    tcp: std::net::TcpStream,
    host: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> std::io::Result<Box<dyn MigrateStream>> {
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut tcp = tcp;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
}

/// Connects to `host:port` (a TLS session with `tls`), as Redis's
/// `migrateGetSocket`; the failure as [`Sent::Io`].
fn migrate_connect(
    host: &str,
    port: u16,
    timeout: std::time::Duration,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Cached, Sent> {
    use std::net::ToSocketAddrs;
    let connect_failed = Sent::Io {
        connect: true,
        writing: false,
        timed_out: false,
    };
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return Err(connect_failed);
    };
    let addrs: Vec<std::net::SocketAddr> = addrs.collect();
    let mut refused = false;
    let Some(tcp) = addrs.iter().find_map(|a| {
        std::net::TcpStream::connect_timeout(a, timeout)
            .map_err(|e| refused |= e.kind() == std::io::ErrorKind::ConnectionRefused)
            .ok()
    }) else {
        // Redis's non-blocking connect "succeeds" against a closed port
        // and its first write fails: it reports a write error then.
        return Err(Sent::Io {
            connect: !refused,
            writing: refused,
            timed_out: false,
        });
    };
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_nodelay(true);
    let Ok(handle) = tcp.try_clone() else {
        return Err(connect_failed);
    };
    let stream: Box<dyn MigrateStream> = match tls {
        None => Box::new(tcp),
        Some(config) => match migrate_tls(tcp, host, config) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("MIGRATE: TLS handshake with {host}:{port} failed: {e}");
                return Err(connect_failed);
            }
        },
    };
    Ok(Cached {
        stream,
        tcp: handle,
        last_dbid: None,
        last_use_secs: 0,
    })
}

/// Sends `cmds` (AUTH, SELECT, then one RESTORE per key) on `conn` and
/// reads the replies: `preamble` of them for AUTH/SELECT, then one per
/// key.
fn migrate_exchange(conn: &mut Cached, cmds: &[u8], preamble: usize, keys: usize) -> Sent {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = &mut conn.stream;
    // TLS holds what it encrypted until flushed.
    if let Err(e) = stream.write_all(cmds).and_then(|()| stream.flush()) {
        return Sent::Io {
            connect: false,
            writing: true,
            timed_out: timed_out(&e),
        };
    }
    let mut r = BufReader::new(stream);
    let mut line = Vec::new();
    let mut read_line = |line: &mut Vec<u8>| -> Result<(), Sent> {
        line.clear();
        // Redis reads replies of up to 1 KiB a line.
        match r.by_ref().take(1024).read_until(b'\n', line) {
            Ok(n) if n > 0 => {
                while line.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                    line.pop();
                }
                Ok(())
            }
            Ok(_) => Err(Sent::Io {
                connect: false,
                writing: false,
                timed_out: false,
            }),
            Err(e) => Err(Sent::Io {
                connect: false,
                writing: false,
                timed_out: timed_out(&e),
            }),
        }
    };
    let mut first_error = None;
    for _ in 0..preamble {
        if let Err(io) = read_line(&mut line) {
            return io;
        }
        if line.first() == Some(&b'-') && first_error.is_none() {
            first_error = Some(String::from_utf8_lossy(&line[1..]).into_owned());
        }
    }
    let mut out = Vec::with_capacity(keys);
    for _ in 0..keys {
        if let Err(io) = read_line(&mut line) {
            if out.is_empty() {
                return io;
            }
            break;
        }
        out.push(
            (line.first() == Some(&b'-')).then(|| String::from_utf8_lossy(&line[1..]).into_owned()),
        );
    }
    Sent::Replies(out, first_error)
}

/// `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password] [AUTH2 username password] [KEYS key ...]`: moves keys
/// to another server with RESTORE, as Redis does (one retry on a socket
/// error that is not a timeout; moved keys deleted here and propagated
/// as one DEL).
fn migrate(ctx: &mut Ctx<'_>) {
    let argc = ctx.args.len();
    let (mut copy, mut replace) = (false, false);
    let mut user: Option<&[u8]> = None;
    let mut pass: Option<&[u8]> = None;
    let mut first_key = 3;
    let mut num_keys = 1;
    let mut j = 6;
    while j < argc {
        let more = argc - 1 - j;
        match ctx.opt(j).as_str() {
            "copy" => copy = true,
            "replace" => replace = true,
            "auth" => {
                if more < 1 {
                    return ctx.out.error(err::SYNTAX);
                }
                j += 1;
                pass = Some(&ctx.args[j]);
            }
            "auth2" => {
                if more < 2 {
                    return ctx.out.error(err::SYNTAX);
                }
                user = Some(&ctx.args[j + 1]);
                pass = Some(&ctx.args[j + 2]);
                j += 2;
            }
            "keys" => {
                if !ctx.args[3].is_empty() {
                    return ctx.out.error("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string");
                }
                first_key = j + 1;
                num_keys = argc - j - 1;
                break;
            }
            _ => return ctx.out.error(err::SYNTAX),
        }
        j += 1;
    }
    let Some(timeout) = ctx.int_arg(5) else {
        return;
    };
    let Some(dbid) = ctx.int_arg(4) else { return };
    let timeout = if timeout <= 0 {
        MIGRATE_DEFAULT_TIMEOUT_MS
    } else {
        timeout as u64
    };
    let timeout = std::time::Duration::from_millis(timeout);
    let db = ctx.srv.keyspace.db(ctx.client.db);
    let now = ctx.now;
    // (key, payload, ttl ms) of the keys that exist (lookupKeyRead).
    let mut found: Vec<(bytes::Bytes, Vec<u8>, i64)> = Vec::new();
    for k in &ctx.args[first_key..first_key + num_keys] {
        let hit = db.get(k, now, |n| {
            n.map(|n| {
                let ttl = n
                    .expire_at()
                    .map_or(0, |at| (at as i64 - now as i64).max(1));
                (rdb::dump_value(&n.value), ttl)
            })
        });
        if let Some((payload, ttl)) = hit {
            found.push((k.clone(), payload, ttl));
        }
    }
    if found.is_empty() {
        return ctx.out.simple("NOKEY");
    }
    // In cluster mode the target imports the slot and serves only ASKING
    // commands for it until the move completes: RESTORE-ASKING, as Redis.
    let verb: &[u8] = if ctx.srv.cluster.get().is_some() {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    let host = String::from_utf8_lossy(&ctx.args[1]).into_owned();
    let port = std::str::from_utf8(&ctx.args[2])
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let tls = if ctx.srv.config.flag("tls-cluster") {
        match ctx.srv.tls.client_config() {
            Some(c) => Some(c),
            None => {
                return ctx
                    .out
                    .error("IOERR error or timeout connecting to the client")
            }
        }
    } else {
        None
    };
    let target = format!("{host}:{port}");
    let sockets = &ctx.srv.migrate_sockets;
    let mut may_retry = true;
    let (sent, conn) = loop {
        let mut conn = match sockets.take(&target) {
            Some(c) => {
                let _ = c.tcp.set_read_timeout(Some(timeout));
                let _ = c.tcp.set_write_timeout(Some(timeout));
                c
            }
            None => match migrate_connect(&host, port, timeout, tls.clone()) {
                Ok(c) => c,
                Err(io) => break (io, None),
            },
        };
        let mut cmds = Vec::new();
        let mut preamble = 0;
        if let Some(p) = pass {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            auth.extend(user);
            auth.push(p);
            rampart_replication::push_command(&mut cmds, &auth);
            preamble += 1;
        }
        if conn.last_dbid != Some(dbid) {
            let dbs = dbid.to_string();
            rampart_replication::push_command(&mut cmds, &[&b"SELECT"[..], dbs.as_bytes()]);
            preamble += 1;
        }
        for (k, payload, ttl) in &found {
            let ttl = ttl.to_string();
            let mut restore: Vec<&[u8]> = vec![verb, k, ttl.as_bytes(), payload];
            if replace {
                restore.push(b"REPLACE");
            }
            rampart_replication::push_command(&mut cmds, &restore);
        }
        match migrate_exchange(&mut conn, &cmds, preamble, found.len()) {
            // The cached socket may have been closed by the target: one
            // more try on a fresh one, unless it timed out (as Redis).
            Sent::Io {
                timed_out: false, ..
            } if may_retry => may_retry = false,
            sent => break (sent, Some(conn)),
        }
    };
    let sent = match (sent, conn) {
        (Sent::Replies(r, e), Some(mut conn)) if r.len() == found.len() => {
            // A clean exchange keeps the connection; an error from the
            // target means the selected db is no longer known.
            let target_error = e.is_some() || r.iter().any(Option::is_some);
            conn.last_dbid = (!target_error).then_some(dbid);
            conn.last_use_secs = ctx.now / 1000;
            sockets.put(target, conn);
            Sent::Replies(r, e)
        }
        (sent, _) => sent,
    };
    let (replies, pre_error) = match sent {
        Sent::Io { connect: true, .. } => {
            return ctx
                .out
                .error("IOERR error or timeout connecting to the client")
        }
        Sent::Io { writing, .. } => {
            return ctx.out.error(&format!(
                "IOERR error or timeout {} to target instance",
                if writing { "writing" } else { "reading" }
            ))
        }
        Sent::Replies(r, e) => (r, e),
    };
    let mut moved: Vec<&[u8]> = vec![b"DEL"];
    let mut target_error = None;
    for ((k, _, _), reply) in found.iter().zip(&replies) {
        match (&pre_error, reply) {
            (None, None) => {
                if !copy && db.write(k, now, |s| s.remove()).is_some() {
                    moved.push(k);
                    ctx.srv
                        .pubsub
                        .notify(crate::pubsub::class::GENERIC, "del", k, ctx.client.db);
                }
            }
            (Some(e), _) | (None, Some(e)) => {
                target_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    if moved.len() > 1 {
        ctx.propagate(&moved);
    } else {
        ctx.propagated = true;
    }
    match target_error {
        Some(e) => ctx
            .out
            .error(&format!("ERR Target instance replied with error: {e}")),
        None if replies.len() < found.len() => ctx
            .out
            .error("IOERR error or timeout reading to target instance"),
        None => ctx.out.ok(),
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);

/// The family's table (arity, flags and key positions as Redis 7.0's
/// COMMAND INFO).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("dump", 2, READONLY, ONE, G, dump),
    spec("restore", -4, WRITE | DENYOOM, ONE, G, restore),
    spec("restore-asking", -4, WRITE | DENYOOM | ASKING, ONE, G, restore),
    spec("migrate", -6, WRITE | MOVABLEKEYS, (3, 3, 1), G, migrate),
];

#[cfg(test)]
mod tests {
    //! Expected replies were taken from redis-server 7.0.15.

    use crate::testkit::Kit;

    fn dump(k: &mut Kit, key: &str) -> Vec<u8> {
        let r = k.run_bytes(vec![b"DUMP", key.as_bytes()]);
        let start = r.iter().position(|&b| b == b'\n').expect("a bulk") + 1;
        r[start..r.len() - 2].to_vec()
    }

    #[test]
    fn dump_matches_redis_bytes() {
        let mut k = Kit::new();
        k.run(&["SET", "foo", "bar"]);
        k.run(&["SET", "n", "123"]);
        assert_eq!(
            dump(&mut k, "foo"),
            b"\x00\x03bar\n\x00\xe6\xbeI`\xeef\xfd\x17".to_vec()
        );
        assert_eq!(
            dump(&mut k, "n"),
            b"\x00\xc0{\n\x00H\xe2S\xe1\x00zg\xb9".to_vec()
        );
        assert_eq!(k.run(&["DUMP", "nokey"]), "$-1\r\n");
    }

    #[test]
    fn restore_round_trips_and_checks() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "l", "a", "b", "1"]);
        let p = dump(&mut k, "l");
        let restore = |k: &mut Kit, args: &[&[u8]]| {
            let mut v: Vec<&[u8]> = vec![b"RESTORE"];
            v.extend_from_slice(args);
            String::from_utf8_lossy(&k.run_bytes(v)).into_owned()
        };
        assert_eq!(restore(&mut k, &[b"l2", b"0", &p]), "+OK\r\n");
        assert_eq!(
            k.run(&["LRANGE", "l2", "0", "-1"]),
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\n1\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l2", b"0", &p]),
            "-BUSYKEY Target key name already exists.\r\n"
        );
        assert_eq!(restore(&mut k, &[b"l2", b"0", &p, b"REPLACE"]), "+OK\r\n");
        assert_eq!(
            restore(&mut k, &[b"l3", b"-1", &p]),
            "-ERR Invalid TTL value, must be >= 0\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"x", &p]),
            "-ERR value is not an integer or out of range\r\n"
        );
        let mut bad = p.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &bad]),
            "-ERR DUMP payload version or checksum are wrong\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &p, b"IDLETIME", b"-1"]),
            "-ERR Invalid IDLETIME value, must be >= 0\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &p, b"FREQ", b"256"]),
            "-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &p, b"IDLETIME", b"1", b"FREQ", b"1"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &p, b"IDLETIME", b"100"]),
            "+OK\r\n"
        );
        assert_eq!(k.run(&["OBJECT", "IDLETIME", "l3"]), ":100\r\n");
        // A TTL in the past creates nothing; with REPLACE it deletes.
        assert_eq!(restore(&mut k, &[b"gone", b"1", &p, b"ABSTTL"]), "+OK\r\n");
        assert_eq!(k.run(&["EXISTS", "gone"]), ":0\r\n");
        assert_eq!(
            restore(&mut k, &[b"l3", b"1", &p, b"ABSTTL", b"REPLACE"]),
            "+OK\r\n"
        );
        assert_eq!(k.run(&["EXISTS", "l3"]), ":0\r\n");
        assert_eq!(restore(&mut k, &[b"t", b"100000", &p]), "+OK\r\n");
        let pttl = k.run(&["PTTL", "t"]);
        assert!(pttl.starts_with(":99") || pttl == ":100000\r\n", "{pttl}");
        // A valid footer around a bad body.
        let mut body = b"\x0f\x00".to_vec();
        body.extend_from_slice(&[10, 0]);
        let crc = rampart_persistence::rdb::Crc64::checksum(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            restore(&mut k, &[b"s", b"0", &body]),
            "-ERR Bad data format\r\n"
        );
    }
}
