//! String commands: GET SET SETNX SETEX PSETEX GETSET GETEX GETDEL MGET MSET
//! MSETNX INCR DECR INCRBY DECRBY INCRBYFLOAT APPEND STRLEN GETRANGE
//! SETRANGE SUBSTR LCS.

use rampart_keyspace::{Db, Slot, Value};

use super::flags::*;
use super::{err, spec, CommandSpec, Ctx};
use crate::num::parse_i64;
use crate::pubsub::class;

/// Which family member parses the extended options (SET or GETEX), as in
/// Redis's `parseExtendedStringArgumentsOrReply`.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Mode {
    Set,
    Get,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

#[derive(Default)]
struct Ext {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(Unit, usize)>,
}

/// Parses `[NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL|PERSIST]` from
/// argument `from` on, with Redis's exact acceptance rules (a repeated
/// EX overrides the earlier one; conflicting options are a syntax error).
fn parse_ext(ctx: &mut Ctx<'_>, from: usize, mode: Mode) -> Option<Ext> {
    let mut e = Ext::default();
    let mut j = from;
    let n = ctx.args.len();
    while j < n {
        let opt = ctx.opt(j);
        let has_next = j + 1 < n;
        let timed = |e: &Ext, except: Unit| e.expire.is_some_and(|(u, _)| u != except);
        match opt.as_str() {
            "nx" if !e.xx && mode == Mode::Set => e.nx = true,
            "xx" if !e.nx && mode == Mode::Set => e.xx = true,
            "get" if mode == Mode::Set => e.get = true,
            "keepttl" if !e.persist && e.expire.is_none() && mode == Mode::Set => e.keepttl = true,
            "persist" if mode == Mode::Get && e.expire.is_none() && !e.keepttl => e.persist = true,
            "ex" | "px" | "exat" | "pxat" if has_next && !e.keepttl && !e.persist => {
                let unit = match opt.as_str() {
                    "ex" => Unit::Ex,
                    "px" => Unit::Px,
                    "exat" => Unit::ExAt,
                    _ => Unit::PxAt,
                };
                if timed(&e, unit) {
                    ctx.out.error(err::SYNTAX);
                    return None;
                }
                e.expire = Some((unit, j + 1));
                j += 1;
            }
            _ => {
                ctx.out.error(err::SYNTAX);
                return None;
            }
        }
        j += 1;
    }
    Some(e)
}

/// Replies Redis's invalid-expire error for the running command.
fn invalid_expire(ctx: &mut Ctx<'_>) {
    let name = String::from_utf8_lossy(&ctx.args[0]).to_ascii_lowercase();
    ctx.out
        .error(&format!("ERR invalid expire time in '{name}' command"));
}

/// Turns an expire argument into absolute Unix ms, as Redis's
/// `getExpireMillisecondsOrReply` does (errors replied).
fn expire_ms(ctx: &mut Ctx<'_>, unit: Unit, arg: usize) -> Option<u64> {
    let v = ctx.int_arg(arg)?;
    let seconds = matches!(unit, Unit::Ex | Unit::ExAt);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        invalid_expire(ctx);
        return None;
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if matches!(unit, Unit::Ex | Unit::Px) {
        match ms.checked_add(ctx.now as i64) {
            Some(m) => ms = m,
            None => {
                invalid_expire(ctx);
                return None;
            }
        }
    }
    Some(ms as u64)
}

/// Replies with the string value of `node`, nil when absent, WRONGTYPE
/// otherwise. Returns false on WRONGTYPE.
fn reply_str(ctx: &mut Ctx<'_>, v: Option<&Value>) -> bool {
    match v {
        None => {
            ctx.out.null();
            true
        }
        Some(v) => match v.as_str() {
            Some(s) => {
                ctx.out.bulk(s);
                true
            }
            None => {
                ctx.out.error(err::WRONGTYPE);
                false
            }
        },
    }
}

fn db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    ctx.srv.keyspace.db(ctx.client.db)
}

/// `GET key`
fn get(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    db.get(key, ctx.now, |n| {
        ctx.looked_up(key, n.is_some());
        reply_str(ctx, n.map(|n| &n.value));
    });
}

/// The shared body of SET, SETNX, SETEX and PSETEX (Redis's
/// `setGenericCommand`).
fn set_generic(ctx: &mut Ctx<'_>, ext: &Ext, expire: Option<u64>, ok_reply: Reply) {
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    let val: &[u8] = &{ ctx.args }[2];
    let now = ctx.now;
    let stored = db.write(key, now, |slot| {
        if ext.get {
            // GET reads the key first, as Redis's getGenericCommand.
            ctx.looked_up(key, slot.exists());
            if slot.value().is_some_and(|v| v.as_str().is_none()) {
                ctx.out.error(err::WRONGTYPE);
                return false;
            }
            reply_str(ctx, slot.value());
        }
        let found = slot.exists();
        if (ext.nx && found) || (ext.xx && !found) {
            if !ext.get {
                match ok_reply {
                    Reply::Ok => ctx.out.null(),
                    Reply::Int => ctx.out.int(0),
                }
            }
            return false;
        }
        let ttl = if ext.keepttl {
            slot.expire_at()
        } else {
            expire
        };
        slot.insert(Value::string(val), ttl);
        if !ext.get {
            match ok_reply {
                Reply::Ok => ctx.out.ok(),
                Reply::Int => ctx.out.int(1),
            }
        }
        if let Some(at) = expire {
            let at = at.to_string();
            ctx.propagate(&[b"SET", key, val, b"PXAT", at.as_bytes()]);
        }
        true
    });
    if stored {
        ctx.notify(class::STRING, "set", key);
        if expire.is_some() {
            ctx.notify(class::GENERIC, "expire", key);
        }
    }
}

#[derive(Clone, Copy)]
enum Reply {
    Ok,
    Int,
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`
fn set(ctx: &mut Ctx<'_>) {
    let Some(ext) = parse_ext(ctx, 3, Mode::Set) else {
        return;
    };
    let expire = match ext.expire {
        Some((unit, arg)) => match expire_ms(ctx, unit, arg) {
            Some(ms) => Some(ms),
            None => return,
        },
        None => None,
    };
    set_generic(ctx, &ext, expire, Reply::Ok);
}

/// `SETNX key value`
fn setnx(ctx: &mut Ctx<'_>) {
    let ext = Ext {
        nx: true,
        ..Ext::default()
    };
    set_generic(ctx, &ext, None, Reply::Int);
}

fn setex_generic(ctx: &mut Ctx<'_>, unit: Unit) {
    let Some(ms) = expire_ms(ctx, unit, 2) else {
        return;
    };
    // SETEX key seconds value: the value is the third argument.
    let args = [
        ctx.args[0].clone(),
        ctx.args[1].clone(),
        ctx.args[3].clone(),
    ];
    let mut sub = Ctx {
        srv: ctx.srv,
        client: ctx.client,
        out: ctx.out,
        args: &args,
        now: ctx.now,
        cmd: ctx.cmd,
        in_exec: ctx.in_exec,
        propagated: false,
    };
    set_generic(&mut sub, &Ext::default(), Some(ms), Reply::Ok);
    ctx.propagated = sub.propagated;
}

/// `SETEX key seconds value`
fn setex(ctx: &mut Ctx<'_>) {
    setex_generic(ctx, Unit::Ex);
}

/// `PSETEX key milliseconds value`
fn psetex(ctx: &mut Ctx<'_>) {
    setex_generic(ctx, Unit::Px);
}

/// `GETSET key value`
fn getset(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    let val: &[u8] = &{ ctx.args }[2];
    let stored = db.write(key, ctx.now, |slot| {
        ctx.looked_up(key, slot.exists());
        let ok = reply_str(ctx, slot.value());
        if ok {
            slot.insert(Value::string(val), None);
        }
        ok
    });
    if stored {
        ctx.notify(class::STRING, "set", key);
    }
}

/// `GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]`: as Redis, the key is
/// looked up (a missing one replies nil) before the time is checked.
fn getex(ctx: &mut Ctx<'_>) {
    let Some(ext) = parse_ext(ctx, 2, Mode::Get) else {
        return;
    };
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    let now = ctx.now;
    let event = db.write(key, now, |slot| {
        ctx.looked_up(key, slot.exists());
        if !slot.exists() {
            ctx.out.null();
            return None;
        }
        if slot.value().is_some_and(|v| v.as_str().is_none()) {
            ctx.out.error(err::WRONGTYPE);
            return None;
        }
        let expire = match ext.expire {
            Some((unit, arg)) => Some((unit, expire_ms(ctx, unit, arg)?)),
            None => None,
        };
        reply_str(ctx, slot.value());
        match expire {
            Some((unit, ms)) if matches!(unit, Unit::ExAt | Unit::PxAt) && ms <= now => {
                slot.remove();
                ctx.propagate(&[b"DEL", key]);
                Some("del")
            }
            Some((_, ms)) => {
                slot.set_expire_at(Some(ms));
                let at = ms.to_string();
                ctx.propagate(&[b"PEXPIREAT", key, at.as_bytes()]);
                Some("expire")
            }
            None if ext.persist && slot.expire_at().is_some() => {
                slot.set_expire_at(None);
                ctx.propagate(&[b"PERSIST", key]);
                Some("persist")
            }
            None => {
                ctx.propagated = true;
                None
            }
        }
    });
    if let Some(event) = event {
        ctx.notify(class::GENERIC, event, key);
    }
}

/// `GETDEL key`
fn getdel(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    let deleted = db.write(key, ctx.now, |slot| {
        ctx.looked_up(key, slot.exists());
        reply_str(ctx, slot.value()) && slot.remove().is_some()
    });
    if deleted {
        ctx.notify(class::GENERIC, "del", key);
    }
}

/// `MGET key [key ...]`
fn mget(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let n = ctx.args.len() - 1;
    ctx.out.array(n);
    for i in 1..=n {
        db.get(&ctx.args[i], ctx.now, |node| {
            ctx.looked_up(&ctx.args[i], node.is_some());
            match node.and_then(|n| n.value.as_str()) {
                Some(s) => ctx.out.bulk(s),
                None => ctx.out.null(),
            }
        });
    }
}

/// `MSET key value [key value ...]`
fn mset(ctx: &mut Ctx<'_>) {
    if ctx.args.len().is_multiple_of(2) {
        return ctx.wrong_args();
    }
    mset_all(ctx);
    ctx.out.ok();
}

fn mset_all(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    for pair in ctx.args[1..].chunks(2) {
        db.write(&pair[0], ctx.now, |slot| {
            slot.insert(Value::string(&pair[1]), None)
        });
        ctx.notify(class::STRING, "set", &pair[0]);
    }
}

/// `MSETNX key value [key value ...]`
fn msetnx(ctx: &mut Ctx<'_>) {
    if ctx.args.len().is_multiple_of(2) {
        return ctx.wrong_args();
    }
    let db = db(ctx);
    if ctx.args[1..].chunks(2).any(|p| db.exists(&p[0], ctx.now)) {
        return ctx.out.int(0);
    }
    mset_all(ctx);
    ctx.out.int(1);
}

/// Reads an integer string for INCR-like commands; replies the error.
fn int_value(ctx: &mut Ctx<'_>, slot: &Slot<'_>) -> Option<i64> {
    match slot.value() {
        None => Some(0),
        Some(v) => match v.as_str() {
            None => {
                ctx.out.error(err::WRONGTYPE);
                None
            }
            Some(s) => {
                let n = parse_i64(s);
                if n.is_none() {
                    ctx.out.error(err::NOT_INT);
                }
                n
            }
        },
    }
}

/// The shared body of INCR, DECR, INCRBY and DECRBY.
fn incr_by(ctx: &mut Ctx<'_>, by: i64) {
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    let done = db.write(key, ctx.now, |slot| {
        let Some(old) = int_value(ctx, slot) else {
            return false;
        };
        let Some(new) = old.checked_add(by) else {
            ctx.out.error(err::OVERFLOW);
            return false;
        };
        let ttl = slot.expire_at();
        slot.insert(Value::int(new), ttl);
        ctx.out.int(new);
        true
    });
    if done {
        ctx.notify(class::STRING, "incrby", key);
    }
}

/// `INCR key`
fn incr(ctx: &mut Ctx<'_>) {
    incr_by(ctx, 1);
}

/// `DECR key`
fn decr(ctx: &mut Ctx<'_>) {
    incr_by(ctx, -1);
}

/// `INCRBY key increment`
fn incrby(ctx: &mut Ctx<'_>) {
    if let Some(by) = ctx.int_arg(2) {
        incr_by(ctx, by);
    }
}

/// `DECRBY key decrement`
fn decrby(ctx: &mut Ctx<'_>) {
    let Some(by) = ctx.int_arg(2) else { return };
    if by == i64::MIN {
        return ctx.out.error("ERR decrement would overflow");
    }
    incr_by(ctx, -by);
}

/// `INCRBYFLOAT key increment`: computed in x87 extended precision and
/// printed as Redis prints its `long double`, so results match Redis digit
/// for digit (0.1 + 0.2 is "0.3").
fn incrbyfloat(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    let incr: &[u8] = &{ ctx.args }[2];
    let done = db.write(key, ctx.now, |slot| {
        let old = match slot.value() {
            None => Some(crate::num::LongDouble::zero()),
            Some(v) => match v.as_str() {
                None => {
                    ctx.out.error(err::WRONGTYPE);
                    return false;
                }
                Some(s) => crate::num::LongDouble::parse(s),
            },
        };
        let (Some(old), Some(by)) = (old, crate::num::LongDouble::parse(incr)) else {
            ctx.out.error(err::NOT_FLOAT);
            return false;
        };
        let Some(new) = old.add(&by) else {
            ctx.out.error("ERR increment would produce NaN or Infinity");
            return false;
        };
        let text = new.to_human_string();
        let ttl = slot.expire_at();
        slot.insert(Value::string(text.as_bytes()), ttl);
        ctx.out.bulk(text.as_bytes());
        // Replicas must not recompute: ship the result (DESIGN.md).
        ctx.propagate(&[b"SET", key, text.as_bytes(), b"KEEPTTL"]);
        true
    });
    if done {
        ctx.notify(class::STRING, "incrbyfloat", key);
    }
}

/// Redis's limit on string growth: `proto-max-bulk-len`.
fn check_len(ctx: &mut Ctx<'_>, len: u64) -> bool {
    check_len_msg(
        ctx,
        len,
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
    )
}

fn check_len_msg(ctx: &mut Ctx<'_>, len: u64, msg: &str) -> bool {
    let max = ctx
        .srv
        .config
        .hot
        .proto_max_bulk_len
        .load(std::sync::atomic::Ordering::Relaxed) as u64;
    if len > max {
        ctx.out.error(msg);
        return false;
    }
    true
}

/// `APPEND key value`
fn append(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    let val: &[u8] = &{ ctx.args }[2];
    let done = db.write(key, ctx.now, |slot| {
        let cur = match slot.value() {
            None => None,
            Some(v) => match v.as_str() {
                None => {
                    ctx.out.error(err::WRONGTYPE);
                    return false;
                }
                Some(s) => Some(s.len()),
            },
        };
        match cur {
            None => {
                slot.insert(Value::string(val), None);
                ctx.out.int(val.len() as i64);
            }
            Some(len) => {
                if !check_len(ctx, (len + val.len()) as u64) {
                    return false;
                }
                if let Some(s) = slot.value_mut().and_then(Value::str_mut) {
                    s.extend_from_slice(val);
                    ctx.out.int(s.len() as i64);
                }
            }
        }
        true
    });
    if done {
        ctx.notify(class::STRING, "append", key);
    }
}

/// `STRLEN key`
fn strlen(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    db.get(key, ctx.now, |n| {
        ctx.looked_up(key, n.is_some());
        match n.map(|n| n.value.as_str()) {
            None => ctx.out.int(0),
            Some(None) => ctx.out.error(err::WRONGTYPE),
            Some(Some(s)) => ctx.out.int(s.len() as i64),
        }
    });
}

/// `GETRANGE key start end` (and its old name SUBSTR)
fn getrange(ctx: &mut Ctx<'_>) {
    let (Some(mut start), Some(mut end)) = (parse_i64(&ctx.args[2]), parse_i64(&ctx.args[3]))
    else {
        return ctx.out.error(err::NOT_INT);
    };
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    db.get(key, ctx.now, |n| {
        ctx.looked_up(key, n.is_some());
        let s = match n.map(|n| n.value.as_str()) {
            None => return ctx.out.bulk(b""),
            Some(None) => return ctx.out.error(err::WRONGTYPE),
            Some(Some(s)) => s,
        };
        let len = s.len() as i64;
        if start < 0 && end < 0 && start > end {
            return ctx.out.bulk(b"");
        }
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if start > end || len == 0 {
            return ctx.out.bulk(b"");
        }
        ctx.out.bulk(&s[start as usize..=end as usize]);
    });
}

/// `SETRANGE key offset value`
fn setrange(ctx: &mut Ctx<'_>) {
    let Some(offset) = ctx.int_arg(2) else { return };
    if offset < 0 {
        return ctx.out.error("ERR offset is out of range");
    }
    let db = db(ctx);
    let key: &[u8] = &{ ctx.args }[1];
    let val: &[u8] = &{ ctx.args }[3];
    let done = db.write(key, ctx.now, |slot| {
        let cur = match slot.value() {
            None => None,
            Some(v) => match v.as_str() {
                None => {
                    ctx.out.error(err::WRONGTYPE);
                    return false;
                }
                Some(s) => Some(s.len()),
            },
        };
        if val.is_empty() {
            ctx.out.int(cur.unwrap_or(0) as i64);
            return false;
        }
        if !check_len(ctx, offset as u64 + val.len() as u64) {
            return false;
        }
        let off = offset as usize;
        if cur.is_none() {
            slot.insert(Value::raw_string(Vec::new()), None);
        }
        if let Some(s) = slot.value_mut().and_then(Value::str_mut) {
            if s.len() < off + val.len() {
                super::grow_zeroed(s, off + val.len());
            }
            s[off..off + val.len()].copy_from_slice(val);
            ctx.out.int(s.len() as i64);
        }
        true
    });
    if done {
        ctx.notify(class::STRING, "setrange", key);
    }
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`
fn lcs(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let now = ctx.now;
    let fetch = |k: &[u8]| -> Result<Vec<u8>, ()> {
        db.get(k, now, |n| {
            ctx.looked_up(k, n.is_some());
            match n {
                None => Ok(Vec::new()),
                Some(n) => n.value.as_str().map(<[u8]>::to_vec).ok_or(()),
            }
        })
    };
    let (a, b) = (fetch(&ctx.args[1]), fetch(&ctx.args[2]));
    let (Ok(a), Ok(b)) = (a, b) else {
        return ctx
            .out
            .error("ERR The specified keys must contain string values");
    };
    let (mut want_len, mut want_idx, mut with_len) = (false, false, false);
    let mut min_len: i64 = 0;
    let mut j = 3;
    while j < ctx.args.len() {
        match ctx.opt(j).as_str() {
            "idx" => want_idx = true,
            "len" => want_len = true,
            "withmatchlen" => with_len = true,
            "minmatchlen" if j + 1 < ctx.args.len() => {
                let Some(v) = ctx.int_arg(j + 1) else { return };
                min_len = v.max(0);
                j += 1;
            }
            _ => return ctx.out.error(err::SYNTAX),
        }
        j += 1;
    }
    if want_idx && want_len {
        return ctx
            .out
            .error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (al, bl) = (a.len(), b.len());
    let w = bl + 1;
    let bytes = (al as u64 + 1) * (bl as u64 + 1) * 4;
    // The table is transient but quadratic: Redis bounds it by
    // proto-max-bulk-len, and so do we.
    if !check_len_msg(
        ctx,
        bytes,
        "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
    ) {
        return;
    }
    let mut t = vec![0u32; (al + 1) * w];
    for i in 1..=al {
        for k in 1..=bl {
            t[i * w + k] = if a[i - 1] == b[k - 1] {
                t[(i - 1) * w + k - 1] + 1
            } else {
                t[(i - 1) * w + k].max(t[i * w + k - 1])
            };
        }
    }
    let total = t[al * w + bl] as usize;
    let mut result = vec![0u8; total];
    let mut ranges: Vec<[usize; 5]> = Vec::new();
    // Walk back from the end exactly as Redis does, so the ranges (and their
    // order) are the same.
    let (mut i, mut k, mut idx) = (al, bl, total);
    let unset = al;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0, 0, 0);
    let compute = want_idx || !want_len;
    while compute && i > 0 && k > 0 {
        let mut emit = false;
        if a[i - 1] == b[k - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == unset {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, k - 1, k - 1);
            } else if a_start == i && b_start == k {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            k -= 1;
        } else {
            if t[(i - 1) * w + k] > t[i * w + k - 1] {
                i -= 1;
            } else {
                k -= 1;
            }
            if a_start != unset {
                emit = true;
            }
        }
        if emit {
            let mlen = a_end.wrapping_sub(a_start).wrapping_add(1);
            if min_len == 0 || mlen as i64 >= min_len {
                ranges.push([a_start, a_end, b_start, b_end, mlen]);
            }
            a_start = unset;
        }
    }
    if !want_idx {
        if want_len {
            return ctx.out.int(total as i64);
        }
        return ctx.out.bulk(&result);
    }
    let o = &mut *ctx.out;
    o.map_len(2);
    o.bulk(b"matches");
    o.array(ranges.len());
    for r in &ranges {
        o.array(if with_len { 3 } else { 2 });
        o.array(2);
        o.int(r[0] as i64);
        o.int(r[1] as i64);
        o.array(2);
        o.int(r[2] as i64);
        o.int(r[3] as i64);
        if with_len {
            o.int(r[4] as i64);
        }
    }
    o.bulk(b"len");
    o.int(total as i64);
}

const S: &str = "string";

/// The string family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("get", 2, READONLY | FAST, (1, 1, 1), S, get),
    spec("set", -3, WRITE | DENYOOM, (1, 1, 1), S, set),
    spec("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), S, setnx),
    spec("setex", 4, WRITE | DENYOOM, (1, 1, 1), S, setex),
    spec("psetex", 4, WRITE | DENYOOM, (1, 1, 1), S, psetex),
    spec("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), S, getset),
    spec("getex", -2, WRITE | FAST, (1, 1, 1), S, getex),
    spec("getdel", 2, WRITE | FAST, (1, 1, 1), S, getdel),
    spec("mget", -2, READONLY | FAST, (1, -1, 1), S, mget),
    spec("mset", -3, WRITE | DENYOOM, (1, -1, 2), S, mset),
    spec("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), S, msetnx),
    spec("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), S, incr),
    spec("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), S, decr),
    spec("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), S, incrby),
    spec("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), S, decrby),
    spec(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        S,
        incrbyfloat,
    ),
    spec("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), S, append),
    spec("strlen", 2, READONLY | FAST, (1, 1, 1), S, strlen),
    spec("getrange", 4, READONLY, (1, 1, 1), S, getrange),
    spec("substr", 4, READONLY, (1, 1, 1), S, getrange),
    spec("setrange", 4, WRITE | DENYOOM, (1, 1, 1), S, setrange),
    spec("lcs", -3, READONLY, (1, 2, 1), S, lcs),
];
