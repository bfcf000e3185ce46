//! Generic keyspace commands: DEL UNLINK EXISTS TYPE RENAME RENAMENX COPY
//! MOVE KEYS SCAN RANDOMKEY TOUCH EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL
//! EXPIRETIME PEXPIRETIME PERSIST OBJECT, with Redis 7.0's replies and
//! error texts.

use rampart_keyspace::{glob, Db, Node};

use super::flags::*;
use super::{container_spec, err, spec, CommandSpec, Ctx};

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

/// Redis's `LFU_INIT_VAL`: the access counter of a new key.
const LFU_INIT_VAL: u64 = 5;

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

fn del_generic(ctx: &mut Ctx<'_>) {
    let db = cur_db(ctx);
    let mut deleted = 0;
    for key in &ctx.args[1..] {
        // The node is dropped here, after the shard lock is released.
        if db.write(key, ctx.now, |s| s.remove()).is_some() {
            deleted += 1;
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
        ctx.hit(found);
        n += found as i64;
    }
    ctx.out.int(n);
}

/// `TYPE key`
fn type_cmd(ctx: &mut Ctx<'_>) {
    let db = cur_db(ctx);
    let name = db.peek(&ctx.args[1], ctx.now, |n| n.map(|n| n.value.kind().name()));
    ctx.hit(name.is_some());
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
    // `write` deletes an expired source first, as `lookupKeyWrite` does.
    if !db.write(src, now, |s| s.exists()) {
        return ctx.out.error(err::NO_KEY);
    }
    if src == dst {
        // Redis 7.0: renaming a key onto itself is a successful no-op.
        no_effect(ctx);
        return if nx { ctx.out.int(0) } else { ctx.out.ok() };
    }
    if nx && db.write(dst, now, |s| s.exists()) {
        no_effect(ctx);
        return ctx.out.int(0);
    }
    let Some(node) = db.write(src, now, |s| s.remove()) else {
        return ctx.out.error(err::NO_KEY);
    };
    db.write(dst, now, |s| s.insert_node(node));
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
    let (src, dst, now) = (&ctx.args[1][..], &ctx.args[2][..], ctx.now);
    if to == ctx.client.db && src == dst {
        return ctx.out.error(SAME_OBJECT);
    }
    let from = cur_db(ctx);
    let target = ctx.srv.keyspace.db(to);
    // `lookupKeyRead`: touches the source and counts a hit or miss.
    let found = from.get(src, now, |n| n.map(|n| (n.value.clone(), n.expire_at())));
    ctx.hit(found.is_some());
    let Some((value, expire_at)) = found else {
        no_effect(ctx);
        return ctx.out.int(0);
    };
    let copied = target.write(dst, now, |s| {
        if s.exists() && !replace {
            return false;
        }
        s.insert(value, expire_at);
        true
    });
    if !copied {
        no_effect(ctx);
    }
    ctx.out.int(copied as i64);
}

/// `MOVE key db`: 0 when the key is missing or the target already holds
/// it. Flagged EXCLUSIVE since it writes another database.
fn move_cmd(ctx: &mut Ctx<'_>) {
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
    if !from.write(key, now, |s| s.exists()) || target.write(key, now, |s| s.exists()) {
        no_effect(ctx);
        return ctx.out.int(0);
    }
    let Some(node) = from.write(key, now, |s| s.remove()) else {
        no_effect(ctx);
        return ctx.out.int(0);
    };
    target.write(key, now, |s| s.insert_node(node));
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
            srv.stats
                .hits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        ctx.hit(found);
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
    // `lookupKeyWrite` refreshes the access time even when nothing changes.
    db.get(key, now, |_| ());
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
            ctx.out.int(1);
        }
        Expired::Set(at) => {
            let mut b = itoa::Buffer::new();
            ctx.propagate(&[b"PEXPIREAT", key, b.format(at).as_bytes()]);
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
    ctx.hit(found.is_some());
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
    // `lookupKeyWrite` refreshes the access time.
    db.get(key, now, |_| ());
    let removed = db.write(key, now, |s| {
        s.expire_at().is_some() && s.set_expire_at(None)
    });
    if !removed {
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

/// `OBJECT FREQ key`: only under an LFU policy. Rampart keeps no access
/// counter, so this is Redis's initial counter decayed by the idle minutes
/// (`LFUDecrAndReturn` with `lfu-decay-time`).
fn object_freq(ctx: &mut Ctx<'_>) {
    let now = ctx.now;
    let Some(idle) = object_lookup(ctx, |n| n.idle_secs(now)) else {
        return;
    };
    if !lfu_policy(ctx) {
        return ctx.out.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    let decay = u64::try_from(ctx.srv.config.int("lfu-decay-time")).unwrap_or(0);
    let periods = if decay > 0 { idle / 60 / decay } else { 0 };
    ctx.out.int(LFU_INIT_VAL.saturating_sub(periods) as i64);
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
