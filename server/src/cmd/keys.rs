//! Generic keyspace commands: DEL UNLINK EXISTS TYPE RENAME RENAMENX COPY
//! MOVE KEYS SCAN RANDOMKEY TOUCH EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL
//! EXPIRETIME PEXPIRETIME PERSIST OBJECT, with Redis 7.0's replies and
//! error texts.

use rampart_keyspace::{glob, Db, Node};

use super::flags::*;
use super::{container_spec, err, spec, CommandSpec, Ctx};
use crate::pubsub::class;

const G: &str = "generic";

/// Redis's reply when two objects that must differ are the same (MOVE to
/// the current database, COPY onto itself).
const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// `getIntFromObjectOrReply`'s text for integers outside the C `int` range.
const INT_RANGE: &str = "ERR value is out of range, value must between -2147483648 and 2147483647";

/// Redis's `OBJ_SHARED_REFCOUNT` (`INT_MAX`): the refcount of shared objects.
const SHARED_REFCOUNT: i64 = 2147483647;

/// Redis's `OBJ_SHARED_INTEGERS`: 0..10000 are shared integer objects.
const SHARED_INTEGERS: i64 = 10000;

/// The selected database, borrowed from the server rather than from `ctx`
/// so handlers can keep writing to `ctx.out` while they hold it.
fn cur_db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    ctx.srv.keyspace.db(ctx.client.db)
}

/// Redis propagates a write only when it changed the dataset
/// (`server.dirty`), while dispatch propagates every successful write
/// command: a handler that changed nothing claims it propagated already so
/// nothing reaches the stream.
fn no_effect(ctx: &mut Ctx<'_>) {
    ctx.propagated = true;
}

/// A C string view of an argument: Redis formats options with `%s`, which
/// stops at the first NUL byte.
fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parses a database index as `getIntFromObjectOrReply` then `selectDb` do,
/// replying their errors.
fn db_index_arg(ctx: &mut Ctx<'_>, i: usize) -> Option<usize> {
    let v = ctx.int_arg(i)?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        ctx.out.error(INT_RANGE);
        return None;
    }
    if v < 0 || v as usize >= ctx.srv.keyspace.len() {
        ctx.out.error(err::DB_INDEX);
        return None;
    }
    Some(v as usize)
}

/// Redis's `lookupKeyWrite`/`lookupKeyRead` without stats: whether `key`
/// exists, deleting it if expired and refreshing its access time if not.
/// Redis refreshes the access time of every key a command looks up, even
/// when the command then changes nothing (RENAMENX onto an existing key).
fn lookup(db: &Db, key: &[u8], now: u64) -> bool {
    db.get(key, now, |n| n.is_some())
}

/// Whether the configured maxmemory-policy is an LFU one.
fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.srv
        .config
        .get("maxmemory-policy")
        .is_some_and(|p| p.ends_with("-lfu"))
}

/// `DEL key [key ...]`
fn del(ctx: &mut Ctx<'_>) {
    del_generic(ctx);
}

/// `UNLINK key [key ...]`: DEL whose freeing Redis moves off the main
/// thread; Rampart frees outside the shard lock either way, and strings are
/// freed synchronously by Redis too.
fn unlink(ctx: &mut Ctx<'_>) {
    del_generic(ctx);
}

/// DEL and UNLINK: counts the keys that existed; an expired key counts as
/// already gone, and a key named twice is deleted once.
fn del_generic(ctx: &mut Ctx<'_>) {
    let db = cur_db(ctx);
    let mut deleted = 0;
    for key in &ctx.args[1..] {
        // The node is dropped here, after the shard lock is released.
        if db.write(key, ctx.now, |s| s.remove()).is_some() {
            deleted += 1;
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    if deleted == 0 {
        no_effect(ctx);
    }
    ctx.out.int(deleted);
}

/// `EXISTS key [key ...]`: a key named twice counts twice.
fn exists(ctx: &mut Ctx<'_>) {
    let db = cur_db(ctx);
    let mut n = 0;
    for key in &ctx.args[1..] {
        let found = db.peek(key, ctx.now, |node| node.is_some());
        ctx.looked_up(key, found);
        n += found as i64;
    }
    ctx.out.int(n);
}

/// `TYPE key`
fn type_cmd(ctx: &mut Ctx<'_>) {
    let db = cur_db(ctx);
    let name = db.peek(&ctx.args[1], ctx.now, |n| n.map(|n| n.value.kind().name()));
    ctx.looked_up(&ctx.args[1], name.is_some());
    ctx.out.simple(name.unwrap_or("none"));
}

/// `RENAME key newkey`
fn rename(ctx: &mut Ctx<'_>) {
    rename_generic(ctx, false);
}

/// `RENAMENX key newkey`
fn renamenx(ctx: &mut Ctx<'_>) {
    rename_generic(ctx, true);
}

/// RENAME and RENAMENX. Both keys are in the key spec, so dispatch holds the
/// gate exclusive and the successive writes below are atomic. The value
/// keeps its expiry.
fn rename_generic(ctx: &mut Ctx<'_>, nx: bool) {
    let db = cur_db(ctx);
    let (src, dst, now) = (&ctx.args[1][..], &ctx.args[2][..], ctx.now);
    if !lookup(db, src, now) {
        return ctx.out.error(err::NO_KEY);
    }
    if src == dst {
        // Redis 7.0: renaming a key onto itself is a successful no-op.
        no_effect(ctx);
        return if nx { ctx.out.int(0) } else { ctx.out.ok() };
    }
    if nx && lookup(db, dst, now) {
        no_effect(ctx);
        return ctx.out.int(0);
    }
    let Some(node) = db.write(src, now, |s| s.remove()) else {
        return ctx.out.error(err::NO_KEY);
    };
    // Redis deletes an existing destination and adds the key anew, so
    // `new` is announced even when it replaces one.
    db.write(dst, now, |s| {
        let old = s.remove();
        s.insert_node(*node);
        old
    });
    ctx.notify(class::GENERIC, "rename_from", src);
    ctx.notify(class::GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
}

/// `COPY source destination [DB destination-db] [REPLACE]`: the copy keeps
/// the source's expiry. Flagged EXCLUSIVE since it may write another
/// database.
fn copy(ctx: &mut Ctx<'_>) {
    let mut replace = false;
    let mut to = ctx.client.db;
    let mut j = 3;
    while j < ctx.args.len() {
        let more = ctx.args.len() - j - 1;
        match ctx.opt(j).as_str() {
            "replace" => replace = true,
            "db" if more >= 1 => {
                let Some(i) = db_index_arg(ctx, j + 1) else {
                    return;
                };
                to = i;
                j += 1;
            }
            _ => return ctx.out.error(err::SYNTAX),
        }
        j += 1;
    }
    if ctx.srv.cluster.get().is_some() && (ctx.client.db != 0 || to != 0) {
        return ctx
            .out
            .error("ERR Copying to another database is not allowed in cluster mode");
    }
    let (src, dst, now) = (&ctx.args[1][..], &ctx.args[2][..], ctx.now);
    if to == ctx.client.db && src == dst {
        return ctx.out.error(SAME_OBJECT);
    }
    let from = cur_db(ctx);
    let target = ctx.srv.keyspace.db(to);
    // `lookupKeyRead`: touches the source and counts a hit or miss.
    let found = from.get(src, now, |n| n.map(|n| (n.value.clone(), n.expire_at())));
    ctx.looked_up(src, found.is_some());
    let Some((value, expire_at)) = found else {
        no_effect(ctx);
        return ctx.out.int(0);
    };
    // `lookupKeyWrite` on the destination refreshes it even when it stays.
    let taken = lookup(target, dst, now);
    if taken && !replace {
        no_effect(ctx);
        return ctx.out.int(0);
    }
    // A replaced destination is deleted and added anew, as in Redis
    // (so `new` is announced either way).
    target.write(dst, now, |s| {
        let old = s.remove();
        s.insert(value, expire_at);
        old
    });
    ctx.srv.pubsub.notify(class::GENERIC, "copy_to", dst, to);
    ctx.out.int(1);
}

/// `MOVE key db`: 0 when the key is missing or the target already holds
/// it. Flagged EXCLUSIVE since it writes another database.
fn move_cmd(ctx: &mut Ctx<'_>) {
    if ctx.srv.cluster.get().is_some() {
        return ctx.out.error("ERR MOVE is not allowed in cluster mode");
    }
    let Some(to) = db_index_arg(ctx, 2) else {
        return;
    };
    if to == ctx.client.db {
        return ctx.out.error(SAME_OBJECT);
    }
    let (key, now) = (&ctx.args[1][..], ctx.now);
    let from = cur_db(ctx);
    let target = ctx.srv.keyspace.db(to);
    // Checked before anything moves, so a refused MOVE modifies nothing
    // (no spurious WATCH invalidation of the source).
    if !lookup(from, key, now) || lookup(target, key, now) {
        no_effect(ctx);
        return ctx.out.int(0);
    }
    let Some(node) = from.write(key, now, |s| s.remove()) else {
        no_effect(ctx);
        return ctx.out.int(0);
    };
    target.write(key, now, |s| s.insert_node(*node));
    ctx.notify(class::GENERIC, "move_from", key);
    ctx.srv.pubsub.notify(class::GENERIC, "move_to", key, to);
    ctx.out.int(1);
}

/// `KEYS pattern`: a lone `*` takes every key without matching, as Redis
/// does.
fn keys(ctx: &mut Ctx<'_>) {
    let db = cur_db(ctx);
    let pat = &ctx.args[1][..];
    let all = pat == b"*";
    let mut found = Vec::new();
    db.for_each(ctx.now, |n| {
        if all || glob::matches(pat, &n.key, false) {
            found.push(n.key.clone());
        }
    });
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
}

/// Parses a SCAN cursor as Redis 7.0's `parseScanCursorOrReply`: `strtoul`
/// in base 10 over the C string, refusing a leading space, trailing bytes
/// and overflow. Like `strtoul` it takes an optional sign (`-1` is the
/// largest cursor) and an empty string reads as 0.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    let s = &arg[..end];
    if s.is_empty() {
        return Some(0);
    }
    // C isspace: space, \t \n \v \f \r.
    if matches!(s[0], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        // No conversion: strtoul leaves the end pointer on the sign.
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: replies the next
/// cursor as a bulk string and the keys. COUNT bounds the keys visited per
/// call; MATCH and TYPE filter after the visit, as in Redis.
fn scan(ctx: &mut Ctx<'_>) {
    let Some(cursor) = parse_cursor(&ctx.args[1]) else {
        return ctx.out.error("ERR invalid cursor");
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let args = ctx.args;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i;
        match ctx.opt(i).as_str() {
            "count" if more >= 2 => {
                let Some(c) = ctx.int_arg(i + 1) else { return };
                if c < 1 {
                    return ctx.out.error(err::SYNTAX);
                }
                count = c;
            }
            // A lone `*` matches everything: skip the matcher.
            "match" if more >= 2 => pattern = Some(&args[i + 1][..]).filter(|p| *p != b"*"),
            "type" if more >= 2 => type_name = Some(&args[i + 1][..]),
            _ => return ctx.out.error(err::SYNTAX),
        }
        i += 2;
    }
    let db = cur_db(ctx);
    let srv = ctx.srv;
    let keep = |n: &Node| {
        if pattern.is_some_and(|p| !glob::matches(p, &n.key, false)) {
            return false;
        }
        if let Some(t) = type_name {
            // Redis looks the key up for its type (a hit) and compares the
            // names case-insensitively.
            srv.stats.hits.add(1);
            return n.value.kind().name().as_bytes().eq_ignore_ascii_case(t);
        }
        true
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let (next, found) = db.scan(cursor, count, ctx.now, keep);
    let o = &mut *ctx.out;
    o.array(2);
    o.bulk(itoa::Buffer::new().format(next).as_bytes());
    o.array(found.len());
    for k in &found {
        o.bulk(k);
    }
}

/// `RANDOMKEY`
fn randomkey(ctx: &mut Ctx<'_>) {
    match cur_db(ctx).random_key(ctx.now) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
}

/// `TOUCH key [key ...]`: updates the access time of each existing key.
fn touch(ctx: &mut Ctx<'_>) {
    let db = cur_db(ctx);
    let mut n = 0;
    for key in &ctx.args[1..] {
        let found = db.get(key, ctx.now, |node| node.is_some());
        ctx.looked_up(key, found);
        n += found as i64;
    }
    ctx.out.int(n);
}

/// `EXPIRE key seconds [NX | XX | GT | LT]`
fn expire(ctx: &mut Ctx<'_>) {
    expire_generic(ctx, "expire", ctx.now, true);
}

/// `PEXPIRE key milliseconds [NX | XX | GT | LT]`
fn pexpire(ctx: &mut Ctx<'_>) {
    expire_generic(ctx, "pexpire", ctx.now, false);
}

/// `EXPIREAT key unix-time-seconds [NX | XX | GT | LT]`
fn expireat(ctx: &mut Ctx<'_>) {
    expire_generic(ctx, "expireat", 0, true);
}

/// `PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]`
fn pexpireat(ctx: &mut Ctx<'_>) {
    expire_generic(ctx, "pexpireat", 0, false);
}

/// What an expire command did to its key.
enum Expired {
    /// No such key, or a condition (NX XX GT LT) refused the change.
    Unchanged,
    /// The time was in the past: the key was deleted.
    Deleted(Option<Box<Node>>),
    /// The expiry was set to this absolute time (ms).
    Set(i64),
}

/// Redis's `expireGenericCommand`: options first, then the number, the
/// overflow checks, and only then the key. A time not in the future deletes
/// the key. Effects propagate as absolute `PEXPIREAT` or as `DEL`.
fn expire_generic(ctx: &mut Ctx<'_>, name: &str, base: u64, seconds: bool) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for j in 3..ctx.args.len() {
        match ctx.opt(j).as_str() {
            "nx" => nx = true,
            "xx" => xx = true,
            "gt" => gt = true,
            "lt" => lt = true,
            _ => {
                let opt = c_str(&ctx.args[j]);
                return ctx.out.error(&format!("ERR Unsupported option {opt}"));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return ctx
            .out
            .error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return ctx
            .out
            .error("ERR GT and LT options at the same time are not compatible");
    }
    let Some(mut when) = ctx.int_arg(2) else {
        return;
    };
    let bad_time = format!("ERR invalid expire time in '{name}' command");
    if seconds {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return ctx.out.error(&bad_time),
        }
    }
    let base = i64::try_from(base).unwrap_or(i64::MAX);
    // `base` is never negative, so only the upper bound can overflow; a
    // large negative time simply lies in the past.
    let Some(when) = when.checked_add(base) else {
        return ctx.out.error(&bad_time);
    };
    let db = cur_db(ctx);
    let (key, now) = (&ctx.args[1][..], ctx.now);
    lookup(db, key, now);
    let outcome = db.write(key, now, |s| {
        if !s.exists() {
            return Expired::Unchanged;
        }
        let cur = s
            .expire_at()
            .map(|at| i64::try_from(at).unwrap_or(i64::MAX));
        let refused = (nx && cur.is_some())
            || (xx && cur.is_none())
            // No expiry counts as infinite: GT never beats it, LT always does.
            || (gt && cur.is_none_or(|c| when <= c))
            || (lt && cur.is_some_and(|c| when >= c));
        if refused {
            Expired::Unchanged
        } else if when <= now as i64 {
            Expired::Deleted(s.remove())
        } else {
            s.set_expire_at(Some(when as u64));
            Expired::Set(when)
        }
    });
    match outcome {
        Expired::Unchanged => {
            no_effect(ctx);
            ctx.out.int(0);
        }
        Expired::Deleted(node) => {
            drop(node);
            let del: &[u8] = if ctx.srv.config.flag("lazyfree-lazy-expire") {
                b"UNLINK"
            } else {
                b"DEL"
            };
            ctx.propagate(&[del, key]);
            ctx.notify(class::GENERIC, "del", key);
            ctx.out.int(1);
        }
        Expired::Set(at) => {
            let mut b = itoa::Buffer::new();
            ctx.propagate(&[b"PEXPIREAT", key, b.format(at).as_bytes()]);
            ctx.notify(class::GENERIC, "expire", key);
            ctx.out.int(1);
        }
    }
}

/// `TTL key`
fn ttl(ctx: &mut Ctx<'_>) {
    ttl_generic(ctx, false, false);
}

/// `PTTL key`
fn pttl(ctx: &mut Ctx<'_>) {
    ttl_generic(ctx, true, false);
}

/// `EXPIRETIME key`
fn expiretime(ctx: &mut Ctx<'_>) {
    ttl_generic(ctx, false, true);
}

/// `PEXPIRETIME key`
fn pexpiretime(ctx: &mut Ctx<'_>) {
    ttl_generic(ctx, true, true);
}

/// -2 for a missing key, -1 without expiry, else the remaining time (or the
/// absolute time), seconds rounded as Redis does: `(ms + 500) / 1000`.
fn ttl_generic(ctx: &mut Ctx<'_>, ms: bool, absolute: bool) {
    let db = cur_db(ctx);
    let found = db.peek(&ctx.args[1], ctx.now, |n| n.map(Node::expire_at));
    ctx.looked_up(&ctx.args[1], found.is_some());
    let reply = match found {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => {
            // i128: an expiry near i64::MAX plus the rounding must not wrap.
            let t = if absolute {
                at as i128
            } else {
                (at as i128 - ctx.now as i128).max(0)
            };
            let t = if ms { t } else { (t + 500) / 1000 };
            i64::try_from(t).unwrap_or(i64::MAX)
        }
    };
    ctx.out.int(reply);
}

/// `PERSIST key`: 1 if an expiry was removed.
fn persist(ctx: &mut Ctx<'_>) {
    let db = cur_db(ctx);
    let (key, now) = (&ctx.args[1][..], ctx.now);
    lookup(db, key, now);
    let removed = db.write(key, now, |s| {
        s.expire_at().is_some() && s.set_expire_at(None)
    });
    if removed {
        ctx.notify(class::GENERIC, "persist", key);
    } else {
        no_effect(ctx);
    }
    ctx.out.int(removed as i64);
}

/// OBJECT's lookup: no access-time update (NOTOUCH), counts a hit or miss,
/// replies null when the key is missing.
fn object_lookup<R>(ctx: &mut Ctx<'_>, f: impl FnOnce(&Node) -> R) -> Option<R> {
    let db = cur_db(ctx);
    let r = db.peek(&ctx.args[2], ctx.now, |n| n.map(f));
    ctx.hit(r.is_some());
    if r.is_none() {
        ctx.out.null();
    }
    r
}

/// `OBJECT ENCODING key`
fn object_encoding(ctx: &mut Ctx<'_>) {
    if let Some(enc) = object_lookup(ctx, |n| n.value.encoding()) {
        ctx.out.bulk(enc.as_bytes());
    }
}

/// `OBJECT REFCOUNT key`: Redis stores the integers 0..9999 as shared objects
/// (refcount `INT_MAX`) unless maxmemory is set with an LRU or LFU policy,
/// which needs a per-key access clock. Redis decides when the value is
/// written; Rampart has no such record and decides from the current config.
fn object_refcount(ctx: &mut Ctx<'_>) {
    let small_int = |n: &Node| {
        n.value.encoding() == "int"
            && n.value
                .as_str()
                .and_then(crate::num::parse_i64)
                .is_some_and(|v| (0..SHARED_INTEGERS).contains(&v))
    };
    let Some(small) = object_lookup(ctx, small_int) else {
        return;
    };
    let policy = ctx.srv.config.get("maxmemory-policy").unwrap_or_default();
    let clocked = policy.ends_with("-lru") || policy.ends_with("-lfu");
    let shared = small && (ctx.srv.config.int("maxmemory") == 0 || !clocked);
    ctx.out.int(if shared { SHARED_REFCOUNT } else { 1 });
}

/// `OBJECT IDLETIME key`: seconds since the last access; refused under an
/// LFU policy, where Redis keeps a frequency instead of an access time.
fn object_idletime(ctx: &mut Ctx<'_>) {
    let now = ctx.now;
    let Some(idle) = object_lookup(ctx, |n| n.idle_secs(now)) else {
        return;
    };
    if lfu_policy(ctx) {
        return ctx.out.error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    ctx.out.int(i64::try_from(idle).unwrap_or(i64::MAX));
}

/// `OBJECT FREQ key`: the logarithmic access counter, decayed as Redis's
/// `LFUDecrAndReturn` does; only under an LFU policy.
fn object_freq(ctx: &mut Ctx<'_>) {
    let now = ctx.now;
    let decay = ctx.srv.keyspace.access.decay_minutes();
    let Some(freq) = object_lookup(ctx, |n| n.freq(now, decay)) else {
        return;
    };
    if !lfu_policy(ctx) {
        return ctx.out.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    ctx.out.int(freq as i64);
}

/// `OBJECT HELP`. Written out rather than with `super::help`, whose footer
/// says "Print this help." where Redis 7.0 says "Prints this help.".
fn object_help(ctx: &mut Ctx<'_>) {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l);
    }
}

const KEY2: (i32, i32, i32) = (2, 2, 1);

static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("help", 2, LOADING | STALE, (0, 0, 0), G, object_help),
    spec("encoding", 3, READONLY, KEY2, G, object_encoding),
    spec("freq", 3, READONLY, KEY2, G, object_freq),
    spec("idletime", 3, READONLY, KEY2, G, object_idletime),
    spec("refcount", 3, READONLY, KEY2, G, object_refcount),
];

const ALL: (i32, i32, i32) = (1, -1, 1);
const ONE: (i32, i32, i32) = (1, 1, 1);
const TWO: (i32, i32, i32) = (1, 2, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);

/// The family's table (arity, flags and key positions as Redis 7.0's
/// COMMAND INFO).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, ALL, G, del),
    spec("unlink", -2, WRITE | FAST, ALL, G, unlink),
    spec("exists", -2, READONLY | FAST, ALL, G, exists),
    spec("type", 2, READONLY | FAST, ONE, G, type_cmd),
    spec("rename", 3, WRITE, TWO, G, rename),
    spec("renamenx", 3, WRITE | FAST, TWO, G, renamenx),
    spec("copy", -3, WRITE | DENYOOM | EXCLUSIVE, TWO, G, copy),
    spec("move", 3, WRITE | FAST | EXCLUSIVE, ONE, G, move_cmd),
    spec("keys", 2, READONLY, NONE, G, keys),
    spec("scan", -2, READONLY, NONE, G, scan),
    spec("randomkey", 1, READONLY, NONE, G, randomkey),
    spec("touch", -2, READONLY | FAST, ALL, G, touch),
    spec("expire", -3, WRITE | FAST, ONE, G, expire),
    spec("pexpire", -3, WRITE | FAST, ONE, G, pexpire),
    spec("expireat", -3, WRITE | FAST, ONE, G, expireat),
    spec("pexpireat", -3, WRITE | FAST, ONE, G, pexpireat),
    spec("ttl", 2, READONLY | FAST, ONE, G, ttl),
    spec("pttl", 2, READONLY | FAST, ONE, G, pttl),
    spec("expiretime", 2, READONLY | FAST, ONE, G, expiretime),
    spec("pexpiretime", 2, READONLY | FAST, ONE, G, pexpiretime),
    spec("persist", 2, WRITE | FAST, ONE, G, persist),
    container_spec("object", -2, 0, G, OBJECT_SUBCOMMANDS),
];

#[cfg(test)]
mod tests {
    //! Expected replies were taken from redis-server 7.0.15.

    use crate::state::now_ms;
    use crate::testkit::Kit;

    fn int(n: i64) -> String {
        format!(":{n}\r\n")
    }

    fn err(msg: &str) -> String {
        format!("-{msg}\r\n")
    }

    /// A RESP array of bulk strings, sorted so hash order doesn't matter.
    fn sorted_keys(reply: &str) -> Vec<String> {
        let mut keys: Vec<String> = reply
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.starts_with('$') && !l.is_empty())
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }

    fn kit_with(pairs: &[(&str, &str)]) -> Kit {
        let mut k = Kit::new();
        for (key, v) in pairs {
            assert_eq!(k.run(&["SET", key, v]), "+OK\r\n");
        }
        k
    }

    #[test]
    fn del_unlink_exists_count_like_redis() {
        let mut k = kit_with(&[("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(k.run(&["EXISTS", "a", "a", "nokey", "b"]), int(3));
        assert_eq!(k.run(&["DEL", "a", "a", "nokey"]), int(1));
        assert_eq!(k.run(&["DEL", "nokey"]), int(0));
        assert_eq!(k.run(&["UNLINK", "b", "c", "c"]), int(2));
        assert_eq!(k.run(&["EXISTS", "a", "b", "c"]), int(0));
        assert_eq!(
            k.run(&["DEL"]),
            err("ERR wrong number of arguments for 'del' command")
        );
        assert_eq!(
            k.run(&["UNLINK"]),
            err("ERR wrong number of arguments for 'unlink' command")
        );
        assert_eq!(
            k.run(&["EXISTS"]),
            err("ERR wrong number of arguments for 'exists' command")
        );
    }

    #[test]
    fn exists_and_type_count_hits_and_misses() {
        let mut k = kit_with(&[("a", "1")]);
        let hits = k.srv.stats.hits.get();
        let misses = k.srv.stats.misses.get();
        k.run(&["EXISTS", "a", "x"]);
        k.run(&["TYPE", "a"]);
        assert_eq!(k.srv.stats.hits.get(), hits + 2);
        assert_eq!(k.srv.stats.misses.get(), misses + 1);
    }

    #[test]
    fn type_names() {
        let mut k = kit_with(&[("s", "v")]);
        assert_eq!(k.run(&["TYPE", "s"]), "+string\r\n");
        assert_eq!(k.run(&["TYPE", "nokey"]), "+none\r\n");
        assert_eq!(
            k.run(&["TYPE"]),
            err("ERR wrong number of arguments for 'type' command")
        );
    }

    #[test]
    fn rename_and_renamenx() {
        let mut k = kit_with(&[("a", "1"), ("b", "2")]);
        assert_eq!(k.run(&["RENAME", "nokey", "x"]), err("ERR no such key"));
        assert_eq!(k.run(&["RENAME", "nokey", "nokey"]), err("ERR no such key"));
        assert_eq!(
            k.run(&["RENAMENX", "nokey", "nokey"]),
            err("ERR no such key")
        );
        assert_eq!(k.run(&["RENAMENX", "nokey", "x"]), err("ERR no such key"));
        // Onto itself: OK (RENAME) or 0 (RENAMENX) when the key exists.
        assert_eq!(k.run(&["RENAME", "a", "a"]), "+OK\r\n");
        assert_eq!(k.run(&["RENAMENX", "a", "a"]), int(0));
        assert_eq!(k.run(&["RENAMENX", "a", "b"]), int(0));
        assert_eq!(k.run(&["GET", "b"]), "$1\r\n2\r\n");
        // The TTL travels with the value.
        assert_eq!(k.run(&["EXPIRE", "a", "100"]), int(1));
        assert_eq!(k.run(&["RENAME", "a", "b"]), "+OK\r\n");
        assert_eq!(k.run(&["EXISTS", "a"]), int(0));
        assert_eq!(k.run(&["GET", "b"]), "$1\r\n1\r\n");
        assert_eq!(k.run(&["TTL", "b"]), int(100));
        assert_eq!(k.run(&["RENAMENX", "b", "c"]), int(1));
        assert_eq!(k.run(&["TTL", "c"]), int(100));
        // Overwriting a volatile key with a persistent one drops the TTL.
        assert_eq!(k.run(&["SET", "d", "4"]), "+OK\r\n");
        assert_eq!(k.run(&["RENAME", "d", "c"]), "+OK\r\n");
        assert_eq!(k.run(&["TTL", "c"]), int(-1));
        assert_eq!(
            k.run(&["RENAME", "c"]),
            err("ERR wrong number of arguments for 'rename' command")
        );
    }

    #[test]
    fn copy_options_and_errors() {
        let mut k = kit_with(&[("a", "1"), ("b", "2")]);
        let same = err("ERR source and destination objects are the same");
        assert_eq!(k.run(&["COPY", "a", "a"]), same);
        assert_eq!(k.run(&["COPY", "a", "a", "DB", "0"]), same);
        assert_eq!(k.run(&["COPY", "a", "c", "DB"]), err("ERR syntax error"));
        assert_eq!(k.run(&["COPY", "a", "c", "foo"]), err("ERR syntax error"));
        assert_eq!(
            k.run(&["COPY", "a", "c", "DB", "x", "REPLACE"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            k.run(&["COPY", "a", "c", "REPLACE", "DB", "99"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            k.run(&["COPY", "nokey", "c", "DB", "-1"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            k.run(&["COPY", "a", "c", "DB", "2147483648"]),
            err("ERR value is out of range, value must between -2147483648 and 2147483647")
        );
        assert_eq!(k.run(&["COPY", "nokey", "c"]), int(0));
        assert_eq!(k.run(&["COPY", "a", "b"]), int(0));
        assert_eq!(k.run(&["COPY", "a", "b", "REPLACE"]), int(1));
        assert_eq!(k.run(&["GET", "b"]), "$1\r\n1\r\n");
        // Same name in another database is fine; the TTL is copied.
        assert_eq!(k.run(&["PEXPIRE", "a", "100000"]), int(1));
        assert_eq!(k.run(&["COPY", "a", "a", "db", "1"]), int(1));
        assert_eq!(k.run(&["COPY", "a", "a", "db", "1"]), int(0));
        assert_eq!(k.run(&["COPY", "a", "a", "replace", "db", "1"]), int(1));
        assert_eq!(k.run(&["SELECT", "1"]), "+OK\r\n");
        assert_eq!(k.run(&["GET", "a"]), "$1\r\n1\r\n");
        assert_eq!(k.run(&["TTL", "a"]), int(100));
        assert_eq!(
            k.run(&["COPY", "a"]),
            err("ERR wrong number of arguments for 'copy' command")
        );
    }

    #[test]
    fn move_between_databases() {
        let mut k = kit_with(&[("a", "1"), ("b", "2")]);
        let same = err("ERR source and destination objects are the same");
        assert_eq!(k.run(&["MOVE", "a", "0"]), same);
        assert_eq!(k.run(&["MOVE", "nokey", "0"]), same);
        assert_eq!(
            k.run(&["MOVE", "a", "16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            k.run(&["MOVE", "a", "-1"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            k.run(&["MOVE", "a", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            k.run(&["MOVE", "a", "99999999999"]),
            err("ERR value is out of range, value must between -2147483648 and 2147483647")
        );
        assert_eq!(k.run(&["MOVE", "nokey", "1"]), int(0));
        assert_eq!(k.run(&["EXPIRE", "a", "100"]), int(1));
        assert_eq!(k.run(&["MOVE", "a", "1"]), int(1));
        assert_eq!(k.run(&["EXISTS", "a"]), int(0));
        // The target already holds the key: nothing moves.
        assert_eq!(k.run(&["SET", "a", "x"]), "+OK\r\n");
        assert_eq!(k.run(&["MOVE", "a", "1"]), int(0));
        assert_eq!(k.run(&["GET", "a"]), "$1\r\nx\r\n");
        assert_eq!(k.run(&["SELECT", "1"]), "+OK\r\n");
        assert_eq!(k.run(&["GET", "a"]), "$1\r\n1\r\n");
        assert_eq!(k.run(&["TTL", "a"]), int(100));
    }

    #[test]
    fn keys_patterns() {
        let mut k = kit_with(&[("k1", "v"), ("k2", "v"), ("k10", "v"), ("other", "5")]);
        assert_eq!(
            sorted_keys(&k.run(&["KEYS", "*"])),
            ["k1", "k10", "k2", "other"]
        );
        assert_eq!(sorted_keys(&k.run(&["KEYS", "k?"])), ["k1", "k2"]);
        assert_eq!(sorted_keys(&k.run(&["KEYS", "*1*"])), ["k1", "k10"]);
        assert_eq!(sorted_keys(&k.run(&["KEYS", "k[^1]"])), ["k2"]);
        assert_eq!(k.run(&["KEYS", ""]), "*0\r\n");
        assert_eq!(k.run(&["SET", "", "e"]), "+OK\r\n");
        // `*` alone takes every key, the empty one included.
        assert_eq!(k.run(&["KEYS", "*"]).matches("$0\r\n").count(), 1);
        assert_eq!(k.run(&["KEYS", ""]), "*1\r\n$0\r\n\r\n");
        assert_eq!(
            k.run(&["KEYS"]),
            err("ERR wrong number of arguments for 'keys' command")
        );
    }

    #[test]
    fn scan_cursor_parsing() {
        use super::parse_cursor;
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+0"), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"5\0junk"), Some(5));
        for bad in [&b" 0"[..], b"0 ", b"-", b"+", b"0x0", b"x", b"\t1", b"+-1"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn scan_options_and_errors() {
        let mut k = kit_with(&[("k1", "v"), ("k10", "v"), ("other", "5")]);
        let syntax = err("ERR syntax error");
        assert_eq!(k.run(&["SCAN", "x"]), err("ERR invalid cursor"));
        assert_eq!(k.run(&["SCAN", " 0"]), err("ERR invalid cursor"));
        assert_eq!(
            k.run(&["SCAN", "x", "COUNT", "0"]),
            err("ERR invalid cursor")
        );
        assert_eq!(k.run(&["SCAN", "0", "COUNT", "0"]), syntax);
        assert_eq!(k.run(&["SCAN", "0", "COUNT", "-1"]), syntax);
        assert_eq!(k.run(&["SCAN", "0", "COUNT", "0", "foo"]), syntax);
        assert_eq!(
            k.run(&["SCAN", "0", "COUNT", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            k.run(&["SCAN", "0", "COUNT", "99999999999999999999"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(k.run(&["SCAN", "0", "COUNT"]), syntax);
        assert_eq!(k.run(&["SCAN", "0", "MATCH"]), syntax);
        assert_eq!(k.run(&["SCAN", "0", "TYPE"]), syntax);
        assert_eq!(k.run(&["SCAN", "0", "foo", "bar"]), syntax);
        assert_eq!(
            k.run(&["SCAN"]),
            err("ERR wrong number of arguments for 'scan' command")
        );
        // The largest cursor is past every key.
        assert_eq!(k.run(&["SCAN", "-1"]), "*2\r\n$1\r\n0\r\n*0\r\n");
        let all = k.run(&["SCAN", "0", "COUNT", "1000"]);
        assert!(all.starts_with("*2\r\n$1\r\n0\r\n*3\r\n"), "{all}");
        let m = k.run(&["SCAN", "0", "MATCH", "k1*", "COUNT", "1000"]);
        assert!(
            m.ends_with("*2\r\n$2\r\nk1\r\n$3\r\nk10\r\n")
                || m.ends_with("*2\r\n$3\r\nk10\r\n$2\r\nk1\r\n"),
            "{m}"
        );
        let t = k.run(&[
            "SCAN", "0", "TYPE", "StRiNg", "MATCH", "oth*", "COUNT", "1000",
        ]);
        assert_eq!(t, "*2\r\n$1\r\n0\r\n*1\r\n$5\r\nother\r\n");
        assert_eq!(
            k.run(&["SCAN", "0", "TYPE", "hash", "COUNT", "1000"]),
            "*2\r\n$1\r\n0\r\n*0\r\n"
        );
        assert_eq!(
            k.run(&["SCAN", "0", "TYPE", "none", "COUNT", "1000"]),
            "*2\r\n$1\r\n0\r\n*0\r\n"
        );
    }

    #[test]
    fn scan_iterates_every_key_once() {
        let mut k = Kit::new();
        for i in 0..300 {
            let key = format!("key:{i}");
            assert_eq!(k.run(&["SET", &key, "v"]), "+OK\r\n");
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let r = k.run(&["SCAN", &cursor, "COUNT", "7"]);
            let mut lines = r.split("\r\n");
            assert_eq!(lines.next(), Some("*2"));
            lines.next();
            cursor = lines.next().unwrap_or_default().to_string();
            for key in lines.skip(1).filter(|l| l.starts_with("key:")) {
                assert!(seen.insert(key.to_string()), "duplicate {key}");
            }
            calls += 1;
            if cursor == "0" {
                break;
            }
            assert!(calls < 1000);
        }
        assert_eq!(seen.len(), 300);
        assert!(calls > 10, "COUNT bounds each call");
    }

    #[test]
    fn randomkey_and_touch() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["RANDOMKEY"]), "$-1\r\n");
        assert_eq!(k.run(&["SET", "a", "1"]), "+OK\r\n");
        assert_eq!(k.run(&["RANDOMKEY"]), "$1\r\na\r\n");
        assert_eq!(
            k.run(&["RANDOMKEY", "x"]),
            err("ERR wrong number of arguments for 'randomkey' command")
        );
        assert_eq!(k.run(&["TOUCH", "nokey", "a", "a"]), int(2));
        assert_eq!(
            k.run(&["TOUCH"]),
            err("ERR wrong number of arguments for 'touch' command")
        );
    }

    #[test]
    fn expire_option_errors() {
        let mut k = kit_with(&[("a", "1")]);
        let nx = err("ERR NX and XX, GT or LT options at the same time are not compatible");
        assert_eq!(k.run(&["EXPIRE", "a", "100", "nx", "xx"]), nx);
        assert_eq!(k.run(&["EXPIRE", "a", "100", "NX", "GT"]), nx);
        assert_eq!(k.run(&["EXPIRE", "a", "100", "nx", "lt"]), nx);
        // Options are checked before the number.
        assert_eq!(k.run(&["EXPIRE", "a", "x", "nx", "xx"]), nx);
        assert_eq!(
            k.run(&["EXPIRE", "a", "100", "gt", "lt"]),
            err("ERR GT and LT options at the same time are not compatible")
        );
        assert_eq!(
            k.run(&["EXPIRE", "a", "x", "foo"]),
            err("ERR Unsupported option foo")
        );
        assert_eq!(
            k.run_bytes(vec![b"EXPIRE", b"a", b"1", b"xx\0yy"]),
            b"-ERR Unsupported option xx\r\n"
        );
        let not_int = err("ERR value is not an integer or out of range");
        assert_eq!(k.run(&["EXPIRE", "a", "x"]), not_int);
        assert_eq!(k.run(&["EXPIRE", "a", "1.5"]), not_int);
        assert_eq!(k.run(&["EXPIRE", "nokey", "x"]), not_int);
        assert_eq!(
            k.run(&["EXPIRE", "a"]),
            err("ERR wrong number of arguments for 'expire' command")
        );
    }

    #[test]
    fn expire_overflow_errors_name_the_command() {
        let mut k = kit_with(&[("a", "1")]);
        for (cmd, t) in [
            ("expire", "9223372036854775807"),
            ("expire", "9223372036854775"),
            // Fits in milliseconds but not once now is added.
            ("expire", "9223372036854774"),
            ("expire", "-9223372036854776"),
            ("pexpire", "9223372036854775807"),
            ("expireat", "9223372036854775807"),
        ] {
            assert_eq!(
                k.run(&[&cmd.to_uppercase(), "a", t]),
                err(&format!("ERR invalid expire time in '{cmd}' command")),
                "{cmd} {t}"
            );
        }
        assert_eq!(
            k.run(&["EXPIREAT", "a", "9223372036854775808"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(k.run(&["EXISTS", "a"]), int(1));
        // The largest absolute time is valid.
        assert_eq!(k.run(&["PEXPIREAT", "a", "9223372036854775807"]), int(1));
        assert_eq!(k.run(&["PEXPIRETIME", "a"]), int(i64::MAX));
        assert_eq!(k.run(&["EXPIRETIME", "a"]), int(9223372036854776));
        // A huge negative time lies in the past: the key goes.
        assert_eq!(k.run(&["EXPIRE", "a", "-9223372036854775"]), int(1));
        assert_eq!(k.run(&["EXISTS", "a"]), int(0));
    }

    #[test]
    fn expire_in_the_past_deletes() {
        let mut k = Kit::new();
        for args in [
            &["EXPIRE", "a", "-1"][..],
            &["PEXPIRE", "a", "0"],
            &["EXPIREAT", "a", "1"],
            &["PEXPIREAT", "a", "0"],
            &["EXPIRE", "a", "-5", "LT"],
        ] {
            assert_eq!(k.run(&["SET", "a", "1"]), "+OK\r\n");
            assert_eq!(k.run(args), int(1), "{args:?}");
            assert_eq!(k.run(&["EXISTS", "a"]), int(0), "{args:?}");
        }
        // GT against no expiry, NX against an expiry: refused, key stays.
        assert_eq!(k.run(&["SET", "a", "1"]), "+OK\r\n");
        assert_eq!(k.run(&["EXPIRE", "a", "-5", "GT"]), int(0));
        assert_eq!(k.run(&["EXPIRE", "a", "100"]), int(1));
        assert_eq!(k.run(&["EXPIRE", "a", "-5", "NX"]), int(0));
        assert_eq!(k.run(&["EXISTS", "a"]), int(1));
        assert_eq!(k.run(&["EXPIRE", "nokey", "-1"]), int(0));
    }

    #[test]
    fn expire_conditions() {
        let mut k = kit_with(&[("a", "1")]);
        assert_eq!(k.run(&["EXPIRE", "nokey", "10"]), int(0));
        assert_eq!(k.run(&["EXPIRE", "a", "100", "xx"]), int(0));
        assert_eq!(k.run(&["EXPIRE", "a", "100", "gt"]), int(0));
        assert_eq!(k.run(&["EXPIRE", "a", "100", "lt"]), int(1));
        assert_eq!(k.run(&["EXPIRE", "a", "200", "nx"]), int(0));
        assert_eq!(k.run(&["TTL", "a"]), int(100));
        assert_eq!(k.run(&["EXPIRE", "a", "300", "Gt"]), int(1));
        assert_eq!(k.run(&["EXPIRE", "a", "400", "lT"]), int(0));
        assert_eq!(k.run(&["EXPIRE", "a", "50", "LT"]), int(1));
        assert_eq!(k.run(&["EXPIRE", "a", "60", "XX"]), int(1));
        assert_eq!(k.run(&["TTL", "a"]), int(60));
        // Both GT and XX: needs an expiry and a later time.
        assert_eq!(k.run(&["EXPIRE", "a", "10", "XX", "GT"]), int(0));
        assert_eq!(k.run(&["EXPIRE", "a", "70", "XX", "GT"]), int(1));
        assert_eq!(k.run(&["TTL", "a"]), int(70));
    }

    #[test]
    fn ttl_family() {
        let mut k = kit_with(&[("a", "1")]);
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(k.run(&[cmd, "nokey"]), int(-2), "{cmd}");
            assert_eq!(k.run(&[cmd, "a"]), int(-1), "{cmd}");
        }
        assert_eq!(k.run(&["EXPIREAT", "a", "4000000000"]), int(1));
        assert_eq!(k.run(&["EXPIRETIME", "a"]), int(4000000000));
        assert_eq!(k.run(&["PEXPIRETIME", "a"]), int(4000000000000));
        // Seconds round to nearest, half up.
        assert_eq!(k.run(&["PEXPIREAT", "a", "4000000000499"]), int(1));
        assert_eq!(k.run(&["EXPIRETIME", "a"]), int(4000000000));
        assert_eq!(k.run(&["PEXPIREAT", "a", "4000000000500"]), int(1));
        assert_eq!(k.run(&["EXPIRETIME", "a"]), int(4000000001));
        // 1.5 s left rounds to 2 s; PTTL is within the window.
        assert_eq!(k.run(&["PEXPIRE", "a", "1500"]), int(1));
        assert!(matches!(k.run(&["TTL", "a"]).as_str(), ":2\r\n" | ":1\r\n"));
        let pttl: i64 = k.run(&["PTTL", "a"])[1..].trim().parse().unwrap_or(-9);
        assert!((1000..=1500).contains(&pttl), "{pttl}");
        let at = now_ms() + 100_000;
        assert_eq!(k.run(&["PEXPIREAT", "a", &at.to_string()]), int(1));
        assert_eq!(k.run(&["PEXPIRETIME", "a"]), int(at as i64));
        assert_eq!(k.run(&["TTL", "a"]), int(100));
        assert_eq!(
            k.run(&["TTL"]),
            err("ERR wrong number of arguments for 'ttl' command")
        );
    }

    #[test]
    fn persist() {
        let mut k = kit_with(&[("p", "1")]);
        assert_eq!(k.run(&["PERSIST", "nokey"]), int(0));
        assert_eq!(k.run(&["PERSIST", "p"]), int(0));
        assert_eq!(k.run(&["EXPIRE", "p", "10"]), int(1));
        assert_eq!(k.run(&["PERSIST", "p"]), int(1));
        assert_eq!(k.run(&["TTL", "p"]), int(-1));
        assert_eq!(k.run(&["PERSIST", "p"]), int(0));
    }

    #[test]
    fn object_subcommands() {
        let mut k = kit_with(&[("i", "1"), ("big", "10000"), ("neg", "-1"), ("s", "hello")]);
        assert_eq!(k.run(&["OBJECT", "ENCODING", "i"]), "$3\r\nint\r\n");
        assert_eq!(k.run(&["OBJECT", "ENCODING", "s"]), "$6\r\nembstr\r\n");
        for sub in ["ENCODING", "REFCOUNT", "IDLETIME", "FREQ"] {
            assert_eq!(k.run(&["OBJECT", sub, "nokey"]), "$-1\r\n", "{sub}");
        }
        assert_eq!(k.run(&["OBJECT", "REFCOUNT", "i"]), int(2147483647));
        assert_eq!(k.run(&["OBJECT", "REFCOUNT", "big"]), int(1));
        assert_eq!(k.run(&["OBJECT", "REFCOUNT", "neg"]), int(1));
        assert_eq!(k.run(&["OBJECT", "REFCOUNT", "s"]), int(1));
        assert_eq!(k.run(&["OBJECT", "IDLETIME", "i"]), int(0));
        assert_eq!(
            k.run(&["OBJECT", "FREQ", "i"]),
            err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
        );
        assert_eq!(
            k.run(&["OBJECT", "foo"]),
            err("ERR unknown subcommand 'foo'. Try OBJECT HELP.")
        );
        assert_eq!(
            k.run(&["OBJECT"]),
            err("ERR wrong number of arguments for 'object' command")
        );
        assert_eq!(
            k.run(&["OBJECT", "ENCODING"]),
            err("ERR wrong number of arguments for 'object|encoding' command")
        );
        assert_eq!(
            k.run(&["OBJECT", "HELP", "x"]),
            err("ERR wrong number of arguments for 'object|help' command")
        );
    }

    #[test]
    fn object_follows_the_eviction_policy() {
        let mut k = kit_with(&[("i", "1")]);
        let set = |k: &mut Kit, name: &str, v: &str| {
            assert_eq!(k.run(&["CONFIG", "SET", name, v]), "+OK\r\n");
        };
        // An LRU policy alone keeps integers shared; with maxmemory it doesn't.
        set(&mut k, "maxmemory-policy", "allkeys-lru");
        assert_eq!(k.run(&["OBJECT", "REFCOUNT", "i"]), int(2147483647));
        set(&mut k, "maxmemory", "1000000000");
        assert_eq!(k.run(&["OBJECT", "REFCOUNT", "i"]), int(1));
        set(&mut k, "maxmemory-policy", "volatile-ttl");
        assert_eq!(k.run(&["OBJECT", "REFCOUNT", "i"]), int(2147483647));
        set(&mut k, "maxmemory-policy", "volatile-lfu");
        assert_eq!(k.run(&["OBJECT", "REFCOUNT", "i"]), int(1));
        // A key written under LFU starts at LFU_INIT_VAL; the first read
        // always counts.
        k.run(&["SET", "f", "x"]);
        assert_eq!(k.run(&["OBJECT", "FREQ", "f"]), int(5));
        k.run(&["GET", "f"]);
        assert_eq!(k.run(&["OBJECT", "FREQ", "f"]), int(6));
        assert_eq!(
            k.run(&["OBJECT", "IDLETIME", "i"]),
            err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
        );
        assert_eq!(k.run(&["OBJECT", "IDLETIME", "nokey"]), "$-1\r\n");
    }

    #[test]
    fn object_help_is_redis_text() {
        let mut k = Kit::new();
        let r = k.run(&["object", "help"]);
        assert!(r.starts_with(
            "*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+ENCODING <key>\r\n"
        ));
        assert!(r.ends_with("+HELP\r\n+    Prints this help.\r\n"), "{r}");
    }

    #[test]
    fn commands_match_redis_command_info() {
        let table: Vec<(&str, i32, (i32, i32, i32))> = super::COMMANDS
            .iter()
            .map(|c| (c.name, c.arity, (c.first_key, c.last_key, c.step)))
            .collect();
        assert!(table.contains(&("del", -2, (1, -1, 1))));
        assert!(table.contains(&("rename", 3, (1, 2, 1))));
        assert!(table.contains(&("move", 3, (1, 1, 1))));
        assert!(table.contains(&("scan", -2, (0, 0, 0))));
        assert!(table.contains(&("object", -2, (0, 0, 0))));
        let copy = super::COMMANDS.iter().find(|c| c.name == "copy");
        assert!(copy.is_some_and(|c| c.has(super::EXCLUSIVE)));
    }
}
