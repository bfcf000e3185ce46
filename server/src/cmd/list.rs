//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX
//! LSET LINSERT LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP, with Redis 7.0's
//! replies, argument checks and error texts, in its order of checks.
//!
//! The pop and move logic lives in [`pop_generic`] and [`move_generic`],
//! which write nothing when there is nothing to pop, so the blocking
//! variants (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP) can call them and block
//! instead.

use rampart_keyspace::list::{End, List, MAX_ITEM_SIZE};
use rampart_keyspace::{Db, Value};

use super::flags::*;
use super::{err, notify_write, spec, CommandSpec, Ctx};
use crate::num::parse_i64;
use crate::pubsub::class;
use crate::resp::Out;

/// `getPositiveLongFromObjectOrReply`'s default error.
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
/// LSET past either end.
const OUT_OF_RANGE: &str = "ERR index out of range";
/// An element Redis refuses to store (its lengths are 32-bit).
const TOO_LARGE: &str = "ERR Element too large";

fn db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    ctx.srv.keyspace.db(ctx.client.db)
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

/// Parses `LEFT`/`RIGHT` (any case), replying a syntax error otherwise.
fn end_arg(ctx: &mut Ctx<'_>, i: usize) -> Option<End> {
    let a = &ctx.args[i];
    if a.eq_ignore_ascii_case(b"left") {
        Some(End::Head)
    } else if a.eq_ignore_ascii_case(b"right") {
        Some(End::Tail)
    } else {
        ctx.out.error(err::SYNTAX);
        None
    }
}

/// Parses an integer that must be `>= min`, replying `msg` both when it is
/// not an integer and when it is too small (Redis's
/// `getRangeLongFromObjectOrReply` with a message).
fn min_arg(ctx: &mut Ctx<'_>, i: usize, min: i64, msg: &str) -> Option<i64> {
    match parse_i64(&ctx.args[i]) {
        Some(v) if v >= min => Some(v),
        _ => {
            ctx.out.error(msg);
            None
        }
    }
}

/// Replies "Element too large" when one of `args[from..]` cannot be stored.
fn too_large(ctx: &mut Ctx<'_>, from: usize) -> bool {
    if ctx.args[from..].iter().any(|a| a.len() > MAX_ITEM_SIZE) {
        ctx.out.error(TOO_LARGE);
        return true;
    }
    false
}

/// What a key holds, for the checks commands make before they write.
enum Found {
    Missing,
    List,
    Other,
}

fn found(v: Option<&Value>) -> Found {
    match v {
        None => Found::Missing,
        Some(Value::List(_)) => Found::List,
        Some(_) => Found::Other,
    }
}

/// Resolves Redis's start/end range arithmetic (negative from the end,
/// clamped) to `(first index, count)`; `None` when the range is empty.
fn resolve_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, (end - start + 1) as usize))
}

/// Writes `n` elements from `end` as an array, in pop order (tail first
/// for the tail), as Redis's `addListRangeReply` with `reverse`.
fn reply_from_end(out: &mut Out, l: &List, end: End, n: usize) {
    out.array(n);
    match end {
        End::Head => {
            for s in l.range(0, n) {
                out.bulk(s);
            }
        }
        End::Tail => {
            for s in l.range(l.len() - n, n).rev() {
                out.bulk(s);
            }
        }
    }
}

/// `LPUSH key element [element ...]`, `RPUSH …`, `LPUSHX …`, `RPUSHX …`
/// (Redis's `pushGenericCommand`): replies the new length; the X forms
/// only push onto an existing list and reply 0 otherwise.
fn push_generic(ctx: &mut Ctx<'_>, end: End, only_existing: bool) {
    if too_large(ctx, 2) {
        return;
    }
    let db = db(ctx);
    let args = ctx.args;
    let limits = &ctx.srv.config;
    let out = &mut *ctx.out;
    let pushed = db.write(&args[1], ctx.now, |slot| {
        match found(slot.value()) {
            Found::List => {}
            Found::Other => {
                out.error(err::WRONGTYPE);
                return false;
            }
            Found::Missing if only_existing => {
                out.int(0);
                return false;
            }
            Found::Missing => {
                let mut l = List::new(limits.encoding_limits().list_max_listpack_size);
                for a in &args[2..] {
                    l.push(end, a);
                }
                let n = l.len();
                slot.insert(Value::List(Box::new(l)), None);
                out.int(n as i64);
                return true;
            }
        }
        if let Some(Value::List(l)) = slot.value_mut() {
            for a in &args[2..] {
                l.push(end, a);
            }
            out.int(l.len() as i64);
        }
        true
    });
    if pushed {
        notify_write(ctx, class::LIST, push_event(end), &args[1], false);
    }
}

/// `LPUSH key element [element ...]`
fn lpush(ctx: &mut Ctx<'_>) {
    push_generic(ctx, End::Head, false);
}

/// `RPUSH key element [element ...]`
fn rpush(ctx: &mut Ctx<'_>) {
    push_generic(ctx, End::Tail, false);
}

/// `LPUSHX key element [element ...]`
fn lpushx(ctx: &mut Ctx<'_>) {
    push_generic(ctx, End::Head, true);
}

/// `RPUSHX key element [element ...]`
fn rpushx(ctx: &mut Ctx<'_>) {
    push_generic(ctx, End::Tail, true);
}

/// How [`pop_generic`] replies with what it popped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopReply {
    /// One element as a bulk string (`LPOP key`).
    Bulk,
    /// Up to N elements as an array (`LPOP key count`); 0 replies an empty
    /// array and pops nothing.
    Array(usize),
    /// `[key, element]` (BLPOP, BRPOP).
    KeyBulk,
    /// `[key, [element ...]]` with up to N elements (LMPOP, BLMPOP).
    KeyArray(usize),
}

/// What [`pop_generic`] and [`move_generic`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pop {
    /// Popped this many elements and wrote the reply.
    Served(usize),
    /// The key does not exist: nothing written, so the caller replies nil or
    /// blocks.
    Empty,
    /// A key holds another type: WRONGTYPE written.
    WrongType,
}

/// Pops from `end` of the list at `key` and replies per `reply`, deleting
/// the key when it empties (Redis's `listPopRangeAndReplyWithKey` and
/// `popGenericCommand` body). Propagates nothing: callers that Redis
/// rewrites (LMPOP, BLPOP…) propagate the `LPOP`/`RPOP` themselves.
pub fn pop_generic(ctx: &mut Ctx<'_>, key: &[u8], end: End, reply: PopReply) -> Pop {
    let db = db(ctx);
    let out = &mut *ctx.out;
    // The pop and whether it emptied the key, for the events.
    let (r, deleted) = db.write(key, ctx.now, |slot| {
        match found(slot.value()) {
            Found::List => {}
            Found::Missing => return (Pop::Empty, false),
            Found::Other => {
                out.error(err::WRONGTYPE);
                return (Pop::WrongType, false);
            }
        }
        if reply == PopReply::Array(0) {
            // Redis's fast exit: an empty array, the list untouched.
            out.array(0);
            return (Pop::Served(0), false);
        }
        let Some(Value::List(l)) = slot.value_mut() else {
            return (Pop::Empty, false);
        };
        let n = match reply {
            PopReply::Bulk => {
                l.pop_with(end, |s| out.bulk(s));
                1
            }
            PopReply::KeyBulk => {
                out.array(2);
                out.bulk(key);
                l.pop_with(end, |s| out.bulk(s));
                1
            }
            PopReply::Array(count) | PopReply::KeyArray(count) => {
                if let PopReply::KeyArray(_) = reply {
                    out.array(2);
                    out.bulk(key);
                }
                let n = count.min(l.len());
                reply_from_end(out, l, end, n);
                l.remove_n(end, n);
                n
            }
        };
        let deleted = l.is_empty();
        if deleted {
            slot.remove();
        }
        (Pop::Served(n), deleted)
    });
    // LPOP key 0 pops nothing and so announces nothing.
    if matches!(r, Pop::Served(n) if n > 0) {
        notify_write(ctx, class::LIST, pop_event(end), key, deleted);
    }
    r
}

/// `LPOP key [count]` and `RPOP key [count]`: one element as a bulk string,
/// or with a count up to that many as an array (nil array for a missing
/// key).
fn pop_command(ctx: &mut Ctx<'_>, end: End) {
    if ctx.args.len() > 3 {
        return ctx.wrong_args();
    }
    let reply = if ctx.args.len() == 3 {
        let Some(count) = min_arg(ctx, 2, 0, NOT_POSITIVE) else {
            return;
        };
        PopReply::Array(count as usize)
    } else {
        PopReply::Bulk
    };
    let args = ctx.args;
    if pop_generic(ctx, &args[1], end, reply) == Pop::Empty {
        match reply {
            PopReply::Bulk => ctx.out.null(),
            _ => ctx.out.null_array(),
        }
    }
}

/// `LPOP key [count]`
fn lpop(ctx: &mut Ctx<'_>) {
    pop_command(ctx, End::Head);
}

/// `RPOP key [count]`
fn rpop(ctx: &mut Ctx<'_>) {
    pop_command(ctx, End::Tail);
}

/// `LLEN key`
fn llen(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let args = ctx.args;
    db.get(&args[1], ctx.now, |n| {
        ctx.looked_up(&args[1], n.is_some());
        match n.map(|n| &n.value) {
            None => ctx.out.int(0),
            Some(Value::List(l)) => ctx.out.int(l.len() as i64),
            Some(_) => ctx.out.error(err::WRONGTYPE),
        }
    });
}

/// `LRANGE key start stop`: both inclusive, negative from the end; streamed
/// from the list straight into the reply.
fn lrange(ctx: &mut Ctx<'_>) {
    let Some(start) = ctx.int_arg(2) else { return };
    let Some(stop) = ctx.int_arg(3) else { return };
    let db = db(ctx);
    let args = ctx.args;
    db.get(&args[1], ctx.now, |n| {
        ctx.looked_up(&args[1], n.is_some());
        match n.map(|n| &n.value) {
            None => ctx.out.array(0),
            Some(Value::List(l)) => match resolve_range(start, stop, l.len()) {
                None => ctx.out.array(0),
                Some((first, count)) => {
                    let out = &mut *ctx.out;
                    out.array(count);
                    for s in l.range(first, count) {
                        out.bulk(s);
                    }
                }
            },
            Some(_) => ctx.out.error(err::WRONGTYPE),
        }
    });
}

/// `LINDEX key index`: nil past either end. As in Redis the key is looked
/// up before the index is parsed, so a missing key replies nil even for a
/// bad index.
fn lindex(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let args = ctx.args;
    let index = parse_i64(&args[2]);
    db.get(&args[1], ctx.now, |n| {
        ctx.looked_up(&args[1], n.is_some());
        let l = match n.map(|n| &n.value) {
            None => return ctx.out.null(),
            Some(Value::List(l)) => l,
            Some(_) => return ctx.out.error(err::WRONGTYPE),
        };
        let Some(index) = index else {
            return ctx.out.error(err::NOT_INT);
        };
        let i = if index < 0 {
            index + l.len() as i64
        } else {
            index
        };
        match (i >= 0).then(|| l.get(i as usize)).flatten() {
            Some(s) => ctx.out.bulk(s),
            None => ctx.out.null(),
        }
    });
}

/// `LSET key index element`
fn lset(ctx: &mut Ctx<'_>) {
    let db = db(ctx);
    let args = ctx.args;
    let out = &mut *ctx.out;
    let set = db.write(&args[1], ctx.now, |slot| {
        let len = match slot.value() {
            None => return Err(err::NO_KEY),
            Some(Value::List(l)) => l.len() as i64,
            Some(_) => return Err(err::WRONGTYPE),
        };
        let Some(index) = parse_i64(&args[2]) else {
            return Err(err::NOT_INT);
        };
        if args[3].len() > MAX_ITEM_SIZE {
            return Err(TOO_LARGE);
        }
        let i = if index < 0 { index + len } else { index };
        if i < 0 || i >= len {
            return Err(OUT_OF_RANGE);
        }
        if let Some(Value::List(l)) = slot.value_mut() {
            l.set(i as usize, &args[3]);
        }
        Ok(())
    });
    match set {
        Ok(()) => {
            out.ok();
            notify_write(ctx, class::LIST, "lset", &args[1], false);
        }
        Err(e) => out.error(e),
    }
}

/// `LINSERT key BEFORE|AFTER pivot element`: the new length, -1 when the
/// pivot is not found, 0 when the key does not exist.
fn linsert(ctx: &mut Ctx<'_>) {
    let after = if ctx.args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if ctx.args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return ctx.out.error(err::SYNTAX);
    };
    if too_large(ctx, 4) {
        return;
    }
    let db = db(ctx);
    let args = ctx.args;
    let out = &mut *ctx.out;
    let inserted = db.write(&args[1], ctx.now, |slot| {
        let pos = match slot.value() {
            None => {
                out.int(0);
                return false;
            }
            Some(Value::List(l)) => l.iter().position(|e| e == &args[3][..]),
            Some(_) => {
                out.error(err::WRONGTYPE);
                return false;
            }
        };
        // Only a successful insert is a write (WATCH, propagation, events).
        let Some(pos) = pos else {
            out.int(-1);
            return false;
        };
        if let Some(Value::List(l)) = slot.value_mut() {
            l.insert(if after { pos + 1 } else { pos }, &args[4]);
            out.int(l.len() as i64);
        }
        true
    });
    if inserted {
        notify_write(ctx, class::LIST, "linsert", &args[1], false);
    }
}

/// `LREM key count element`: removes the first `count` occurrences from the
/// head (count > 0), from the tail (count < 0), or all of them (0).
fn lrem(ctx: &mut Ctx<'_>) {
    let Some(count) = ctx.int_arg(2) else { return };
    let db = db(ctx);
    let args = ctx.args;
    let value = &args[3][..];
    let out = &mut *ctx.out;
    // Whether the key was emptied, when something was removed.
    let removed = db.write(&args[1], ctx.now, |slot| {
        match slot.value() {
            None => {
                out.int(0);
                return None;
            }
            Some(Value::List(l)) => {
                if !l.iter().any(|e| e == value) {
                    out.int(0);
                    return None;
                }
            }
            Some(_) => {
                out.error(err::WRONGTYPE);
                return None;
            }
        }
        let Some(Value::List(l)) = slot.value_mut() else {
            return None;
        };
        // unsigned_abs: Redis's `-LONG_MIN` stays negative and so never
        // stops early, which removing "up to 2^63" also does.
        let removed = l.remove_value(value, count.unsigned_abs() as usize, count < 0);
        let deleted = l.is_empty();
        if deleted {
            slot.remove();
        }
        out.int(removed as i64);
        Some(deleted)
    });
    if let Some(deleted) = removed {
        notify_write(ctx, class::LIST, "lrem", &args[1], deleted);
    }
}

/// `LTRIM key start stop`: keeps only the range (the same arithmetic as
/// LRANGE); deletes the key when nothing is left.
fn ltrim(ctx: &mut Ctx<'_>) {
    let Some(start) = ctx.int_arg(2) else { return };
    let Some(stop) = ctx.int_arg(3) else { return };
    let db = db(ctx);
    let args = ctx.args;
    let out = &mut *ctx.out;
    let removed = db.write(&args[1], ctx.now, |slot| {
        match found(slot.value()) {
            Found::List => {}
            Found::Missing => {
                out.ok();
                return None;
            }
            Found::Other => {
                out.error(err::WRONGTYPE);
                return None;
            }
        }
        // Redis signals the key modified (WATCH) even when nothing goes.
        let Some(Value::List(l)) = slot.value_mut() else {
            return None;
        };
        let before = l.len();
        match resolve_range(start, stop, before) {
            Some((first, count)) => l.retain_range(first, first + count - 1),
            None => l.clear(),
        }
        let removed = before - l.len();
        let deleted = l.is_empty();
        if deleted {
            slot.remove();
        }
        out.ok();
        Some((removed, deleted))
    });
    let Some((removed, deleted)) = removed else {
        return;
    };
    // Redis announces the trim of an existing list even when nothing went.
    notify_write(ctx, class::LIST, "ltrim", &args[1], deleted);
    if removed == 0 {
        // Redis propagates a write only when it changed the dataset.
        ctx.propagated = true;
    }
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`: the
/// index of the rank-th match (from the tail for a negative rank), or with
/// COUNT an array of up to that many (0: all), looking at no more than
/// MAXLEN elements (0: all).
fn lpos(ctx: &mut Ctx<'_>) {
    let (mut rank, mut count, mut maxlen) = (1i64, -1i64, 0i64);
    let mut j = 3;
    let argc = ctx.args.len();
    while j < argc {
        let more = j + 1 < argc;
        let opt = &ctx.args[j];
        if opt.eq_ignore_ascii_case(b"rank") && more {
            j += 1;
            let Some(r) = ctx.int_arg(j) else { return };
            if r == 0 {
                return ctx.out.error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                );
            }
            rank = r;
        } else if opt.eq_ignore_ascii_case(b"count") && more {
            j += 1;
            let Some(c) = min_arg(ctx, j, 0, "ERR COUNT can't be negative") else {
                return;
            };
            count = c;
        } else if opt.eq_ignore_ascii_case(b"maxlen") && more {
            j += 1;
            let Some(m) = min_arg(ctx, j, 0, "ERR MAXLEN can't be negative") else {
                return;
            };
            maxlen = m;
        } else {
            return ctx.out.error(err::SYNTAX);
        }
        j += 1;
    }
    // A negative rank searches from the tail. Redis negates it as a C long,
    // so LONG_MIN stays negative and then matches from the first hit on;
    // wrapping arithmetic below reproduces that.
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let db = db(ctx);
    let args = ctx.args;
    let element = &args[2][..];
    db.get(&args[1], ctx.now, |n| {
        ctx.looked_up(&args[1], n.is_some());
        let l = match n.map(|n| &n.value) {
            None if count != -1 => return ctx.out.array(0),
            None => return ctx.out.null(),
            Some(Value::List(l)) => l,
            Some(_) => return ctx.out.error(err::WRONGTYPE),
        };
        let len = l.len();
        let limit = if maxlen == 0 {
            len
        } else {
            len.min(maxlen as usize)
        };
        let mut hits: Vec<i64> = Vec::new();
        let mut matches: i64 = 0;
        let mut single = None;
        let mut look = |index: usize, e: &[u8]| -> bool {
            if e != element {
                return true;
            }
            matches += 1;
            let at = if from_tail { len - index - 1 } else { index } as i64;
            if matches >= rank {
                if count == -1 {
                    single = Some(at);
                    return false;
                }
                hits.push(at);
                if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                    return false;
                }
            }
            true
        };
        if from_tail {
            for (i, e) in l.iter().rev().take(limit).enumerate() {
                if !look(i, e) {
                    break;
                }
            }
        } else {
            for (i, e) in l.iter().take(limit).enumerate() {
                if !look(i, e) {
                    break;
                }
            }
        }
        let out = &mut *ctx.out;
        if count != -1 {
            out.array(hits.len());
            for h in hits {
                out.int(h);
            }
        } else {
            match single {
                Some(at) => out.int(at),
                None => out.null(),
            }
        }
    });
}

/// Pops from `from` of the list at `src` and pushes onto `to` of the list
/// at `dst` (created if missing), replying the element (Redis's
/// `lmoveGenericCommand`). The source is checked first, then the
/// destination's type, then both are written; callers hold the gate
/// exclusive (two keys in the key spec), so the steps are atomic.
/// Returns [`Pop::Empty`] without replying when `src` does not exist.
pub fn move_generic(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) -> Pop {
    let db = db(ctx);
    let now = ctx.now;
    match db.get(src, now, |n| found(n.map(|n| &n.value))) {
        Found::List => {}
        Found::Missing => return Pop::Empty,
        Found::Other => {
            ctx.out.error(err::WRONGTYPE);
            return Pop::WrongType;
        }
    }
    if src != dst {
        if let Found::Other = db.get(dst, now, |n| found(n.map(|n| &n.value))) {
            ctx.out.error(err::WRONGTYPE);
            return Pop::WrongType;
        }
    }
    let popped = db.write(src, now, |slot| {
        let Some(Value::List(l)) = slot.value_mut() else {
            return None;
        };
        let v = l.pop(from)?;
        let mut deleted = false;
        if src == dst {
            l.push(to, &v);
        } else if l.is_empty() {
            slot.remove();
            deleted = true;
        }
        Some((v, deleted))
    });
    let Some((value, src_deleted)) = popped else {
        return Pop::Empty;
    };
    if src != dst {
        let limits = &ctx.srv.config;
        db.write(dst, now, |slot| match slot.value_mut() {
            Some(Value::List(l)) => l.push(to, &value),
            _ => {
                let mut l = List::new(limits.encoding_limits().list_max_listpack_size);
                l.push(to, &value);
                slot.insert(Value::List(Box::new(l)), None);
            }
        });
    }
    ctx.out.bulk(&value);
    // Redis announces the push onto the destination before the pop from
    // the source (and the source's `del` last).
    notify_write(ctx, class::LIST, push_event(to), dst, false);
    notify_write(ctx, class::LIST, pop_event(from), src, src_deleted);
    Pop::Served(1)
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
fn lmove(ctx: &mut Ctx<'_>) {
    let Some(from) = end_arg(ctx, 3) else { return };
    let Some(to) = end_arg(ctx, 4) else { return };
    let args = ctx.args;
    if move_generic(ctx, &args[1], &args[2], from, to) == Pop::Empty {
        ctx.out.null();
    }
}

/// `RPOPLPUSH source destination`: LMOVE source destination RIGHT LEFT.
fn rpoplpush(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if move_generic(ctx, &args[1], &args[2], End::Tail, End::Head) == Pop::Empty {
        ctx.out.null();
    }
}

/// The parsed arguments of LMPOP/BLMPOP after the timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpopArgs {
    /// Index of the first key in `ctx.args`.
    pub first_key: usize,
    /// Number of keys.
    pub numkeys: usize,
    /// Which end to pop from.
    pub end: End,
    /// Up to how many elements (COUNT, default 1).
    pub count: usize,
}

/// Parses `numkeys key [key ...] LEFT|RIGHT [COUNT count]` starting with
/// numkeys at `numkeys_idx` (1 for LMPOP, 2 for BLMPOP), replying Redis's
/// errors (Redis's `lmpopGenericCommand`).
pub fn parse_mpop(ctx: &mut Ctx<'_>, numkeys_idx: usize) -> Option<MpopArgs> {
    let numkeys = min_arg(ctx, numkeys_idx, 1, "ERR numkeys should be greater than 0")?;
    let argc = ctx.args.len();
    let where_idx = numkeys_idx as u64 + numkeys as u64 + 1;
    if where_idx >= argc as u64 {
        ctx.out.error(err::SYNTAX);
        return None;
    }
    let where_idx = where_idx as usize;
    let end = end_arg(ctx, where_idx)?;
    let mut count = -1i64;
    let mut j = where_idx + 1;
    while j < argc {
        if count == -1 && ctx.args[j].eq_ignore_ascii_case(b"count") && j + 1 < argc {
            j += 1;
            count = min_arg(ctx, j, 1, "ERR count should be greater than 0")?;
        } else {
            ctx.out.error(err::SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(MpopArgs {
        first_key: numkeys_idx + 1,
        numkeys: numkeys as usize,
        end,
        count: if count == -1 { 1 } else { count as usize },
    })
}

/// Pops from the first non-empty list among `m`'s keys, replying `[key,
/// [element ...]]` and propagating the effect as `LPOP|RPOP key n`, as Redis
/// rewrites it. Returns [`Pop::Empty`] without replying when every key is
/// missing, and stops at the first key of another type.
pub fn mpop_generic(ctx: &mut Ctx<'_>, m: MpopArgs) -> Pop {
    let args = ctx.args;
    for key in &args[m.first_key..m.first_key + m.numkeys] {
        match pop_generic(ctx, key, m.end, PopReply::KeyArray(m.count)) {
            Pop::Empty => continue,
            Pop::Served(n) => {
                let cmd: &[u8] = match m.end {
                    End::Head => b"LPOP",
                    End::Tail => b"RPOP",
                };
                let mut buf = itoa::Buffer::new();
                ctx.propagate(&[cmd, key, buf.format(n).as_bytes()]);
                return Pop::Served(n);
            }
            Pop::WrongType => return Pop::WrongType,
        }
    }
    Pop::Empty
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn lmpop(ctx: &mut Ctx<'_>) {
    let Some(m) = parse_mpop(ctx, 1) else { return };
    if mpop_generic(ctx, m) == Pop::Empty {
        ctx.out.null_array();
    }
}

fn end_name(end: End) -> &'static [u8] {
    match end {
        End::Head => b"LEFT",
        End::Tail => b"RIGHT",
    }
}

/// Which end BLPOP-like commands pop from, by their name.
fn bpop_end(ctx: &Ctx<'_>) -> End {
    if ctx.args[0].eq_ignore_ascii_case(b"blpop") {
        End::Head
    } else {
        End::Tail
    }
}

/// Pops `[key, element]` from `key` for BLPOP/BRPOP and propagates the
/// effect as LPOP/RPOP (Redis rewrites the blocking form).
fn bpop_from(ctx: &mut Ctx<'_>, key: &[u8]) -> Pop {
    let end = bpop_end(ctx);
    let r = pop_generic(ctx, key, end, PopReply::KeyBulk);
    if let Pop::Served(_) = r {
        let cmd: &[u8] = match end {
            End::Head => b"LPOP",
            End::Tail => b"RPOP",
        };
        ctx.propagate(&[cmd, key]);
    }
    r
}

fn serve_bpop(ctx: &mut Ctx<'_>, key: &[u8]) -> bool {
    matches!(bpop_from(ctx, key), Pop::Served(_))
}

/// `BLPOP key [key ...] timeout` and `BRPOP …`: pops from the first
/// non-empty list, else waits (0 = forever) and is served in arrival order
/// by the next push to any of the keys.
fn bpop(ctx: &mut Ctx<'_>) {
    let n = ctx.args.len();
    let Some(timeout) = ctx.timeout_arg(n - 1) else {
        return;
    };
    let args = ctx.args;
    for key in &args[1..n - 1] {
        match bpop_from(ctx, key) {
            Pop::Empty => continue,
            _ => return,
        }
    }
    ctx.block(
        args[1..n - 1].to_vec(),
        timeout,
        serve_bpop,
        Out::null_array,
    );
}

/// The ends a BLMOVE/BRPOPLPUSH moves between.
fn bmove_ends(ctx: &Ctx<'_>) -> Option<(End, End)> {
    if ctx.args[0].eq_ignore_ascii_case(b"brpoplpush") {
        return Some((End::Tail, End::Head));
    }
    let parse = |a: &[u8]| {
        if a.eq_ignore_ascii_case(b"left") {
            Some(End::Head)
        } else if a.eq_ignore_ascii_case(b"right") {
            Some(End::Tail)
        } else {
            None
        }
    };
    Some((parse(&ctx.args[3])?, parse(&ctx.args[4])?))
}

/// Moves one element for BLMOVE/BRPOPLPUSH and propagates it as the
/// non-blocking command.
fn bmove_from(ctx: &mut Ctx<'_>, from: End, to: End) -> Pop {
    let args = ctx.args;
    let r = move_generic(ctx, &args[1], &args[2], from, to);
    if let Pop::Served(_) = r {
        if args[0].eq_ignore_ascii_case(b"brpoplpush") {
            ctx.propagate(&[b"RPOPLPUSH", &args[1], &args[2]]);
        } else {
            ctx.propagate(&[b"LMOVE", &args[1], &args[2], end_name(from), end_name(to)]);
        }
    }
    r
}

fn serve_bmove(ctx: &mut Ctx<'_>, _key: &[u8]) -> bool {
    match bmove_ends(ctx) {
        Some((from, to)) => matches!(bmove_from(ctx, from, to), Pop::Served(_)),
        None => false,
    }
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout` and
/// `BRPOPLPUSH source destination timeout`.
fn bmove(ctx: &mut Ctx<'_>) {
    let (from, to) = if ctx.args[0].eq_ignore_ascii_case(b"brpoplpush") {
        (End::Tail, End::Head)
    } else {
        let Some(from) = end_arg(ctx, 3) else { return };
        let Some(to) = end_arg(ctx, 4) else { return };
        (from, to)
    };
    let n = ctx.args.len();
    let Some(timeout) = ctx.timeout_arg(n - 1) else {
        return;
    };
    if bmove_from(ctx, from, to) == Pop::Empty {
        let src = ctx.args[1].clone();
        ctx.block(vec![src], timeout, serve_bmove, Out::null_array);
    }
}

fn serve_bmpop(ctx: &mut Ctx<'_>, _key: &[u8]) -> bool {
    // The arguments were valid when the client blocked.
    let parsed = ctx.quietly(|p| parse_mpop(p, 2));
    match parsed {
        Some(m) => matches!(mpop_generic(ctx, m), Pop::Served(_)),
        None => false,
    }
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn blmpop(ctx: &mut Ctx<'_>) {
    let Some(timeout) = ctx.timeout_arg(1) else {
        return;
    };
    let Some(m) = parse_mpop(ctx, 2) else { return };
    if mpop_generic(ctx, m) == Pop::Empty {
        let keys = ctx.args[m.first_key..m.first_key + m.numkeys].to_vec();
        ctx.block(keys, timeout, serve_bmpop, Out::null_array);
    }
}

const L: &str = "list";

/// The list family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), L, lpush),
    spec("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), L, rpush),
    spec("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), L, lpushx),
    spec("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), L, rpushx),
    spec("lpop", -2, WRITE | FAST, (1, 1, 1), L, lpop),
    spec("rpop", -2, WRITE | FAST, (1, 1, 1), L, rpop),
    spec("llen", 2, READONLY | FAST, (1, 1, 1), L, llen),
    spec("lrange", 4, READONLY, (1, 1, 1), L, lrange),
    spec("lindex", 3, READONLY, (1, 1, 1), L, lindex),
    spec("lset", 4, WRITE | DENYOOM, (1, 1, 1), L, lset),
    spec("linsert", 5, WRITE | DENYOOM, (1, 1, 1), L, linsert),
    spec("lrem", 4, WRITE, (1, 1, 1), L, lrem),
    spec("ltrim", 4, WRITE, (1, 1, 1), L, ltrim),
    spec("lpos", -3, READONLY, (1, 1, 1), L, lpos),
    spec("lmove", 5, WRITE | DENYOOM, (1, 2, 1), L, lmove),
    spec("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), L, rpoplpush),
    // Keys come after numkeys (Redis's "keynum" key spec, not expressible
    // as first/last/step), so the gate is taken exclusive by flag.
    spec("lmpop", -4, WRITE | MOVABLEKEYS, (0, 0, 0), L, lmpop),
    // Blocking forms: clients only block under the exclusive gate (see
    // `blocking`), hence EXCLUSIVE even with one key.
    spec(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING | EXCLUSIVE,
        (1, -2, 1),
        L,
        bpop,
    ),
    spec(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING | EXCLUSIVE,
        (1, -2, 1),
        L,
        bpop,
    ),
    spec(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING | EXCLUSIVE,
        (1, 2, 1),
        L,
        bmove,
    ),
    spec(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING | EXCLUSIVE,
        (1, 2, 1),
        L,
        bmove,
    ),
    spec(
        "blmpop",
        -5,
        WRITE | BLOCKING | MOVABLEKEYS,
        (0, 0, 0),
        L,
        blmpop,
    ),
];

#[cfg(test)]
mod tests {
    use crate::testkit::Kit;

    fn int(n: i64) -> String {
        format!(":{n}\r\n")
    }

    fn err(s: &str) -> String {
        format!("-{s}\r\n")
    }

    fn bulks(items: &[&str]) -> String {
        let mut s = format!("*{}\r\n", items.len());
        for i in items {
            s.push_str(&format!("${}\r\n{i}\r\n", i.len()));
        }
        s
    }

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    #[test]
    fn push_pop_and_delete_when_empty() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["RPUSH", "l", "a", "b"]), int(2));
        assert_eq!(k.run(&["LPUSH", "l", "y", "z"]), int(4));
        assert_eq!(
            k.run(&["LRANGE", "l", "0", "-1"]),
            bulks(&["z", "y", "a", "b"])
        );
        assert_eq!(k.run(&["OBJECT", "ENCODING", "l"]), "$9\r\nquicklist\r\n");
        assert_eq!(k.run(&["TYPE", "l"]), "+list\r\n");
        assert_eq!(k.run(&["LPOP", "l"]), "$1\r\nz\r\n");
        assert_eq!(k.run(&["RPOP", "l", "2"]), bulks(&["b", "a"]));
        assert_eq!(k.run(&["LPOP", "l", "0"]), "*0\r\n");
        assert_eq!(k.run(&["LPOP", "l", "5"]), bulks(&["y"]));
        assert_eq!(k.run(&["EXISTS", "l"]), int(0));
        assert_eq!(k.run(&["LPOP", "l"]), "$-1\r\n");
        assert_eq!(k.run(&["LPOP", "l", "0"]), "*-1\r\n");
        assert_eq!(
            k.run(&["LPOP", "l", "-1"]),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(
            k.run(&["LPOP", "l", "1", "2"]),
            err("ERR wrong number of arguments for 'lpop' command")
        );
        assert_eq!(k.run(&["LPUSHX", "l", "a"]), int(0));
        assert_eq!(k.run(&["EXISTS", "l"]), int(0));
    }

    #[test]
    fn wrong_type_everywhere() {
        let mut k = Kit::new();
        k.run(&["SET", "s", "v"]);
        for cmd in [
            &["LPUSH", "s", "a"][..],
            &["RPUSHX", "s", "a"],
            &["LPOP", "s"],
            &["RPOP", "s", "0"],
            &["LLEN", "s"],
            &["LRANGE", "s", "0", "1"],
            &["LINDEX", "s", "x"],
            &["LSET", "s", "0", "a"],
            &["LINSERT", "s", "BEFORE", "a", "b"],
            &["LREM", "s", "0", "a"],
            &["LTRIM", "s", "0", "1"],
            &["LPOS", "s", "a"],
            &["LMOVE", "s", "d", "LEFT", "LEFT"],
            &["RPOPLPUSH", "s", "d"],
            &["LMPOP", "1", "s", "LEFT"],
        ] {
            assert_eq!(k.run(cmd), err(WRONGTYPE), "{cmd:?}");
        }
        assert_eq!(k.run(&["GET", "s"]), "$1\r\nv\r\n");
    }

    #[test]
    fn positional_commands() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "l", "a", "b", "c", "b"]);
        assert_eq!(k.run(&["LINDEX", "l", "-1"]), "$1\r\nb\r\n");
        assert_eq!(k.run(&["LINDEX", "l", "4"]), "$-1\r\n");
        assert_eq!(k.run(&["LINDEX", "nokey", "x"]), "$-1\r\n");
        assert_eq!(k.run(&["LSET", "l", "-4", "A"]), "+OK\r\n");
        assert_eq!(
            k.run(&["LSET", "l", "4", "x"]),
            err("ERR index out of range")
        );
        assert_eq!(k.run(&["LSET", "nokey", "0", "x"]), err("ERR no such key"));
        assert_eq!(k.run(&["LINSERT", "l", "AFTER", "b", "x"]), int(5));
        assert_eq!(k.run(&["LINSERT", "l", "BEFORE", "zz", "x"]), int(-1));
        assert_eq!(k.run(&["LINSERT", "nokey", "BEFORE", "a", "x"]), int(0));
        assert_eq!(
            k.run(&["LINSERT", "l", "NEAR", "a", "x"]),
            err("ERR syntax error")
        );
        assert_eq!(
            k.run(&["LRANGE", "l", "0", "-1"]),
            bulks(&["A", "b", "x", "c", "b"])
        );
        assert_eq!(k.run(&["LREM", "l", "-1", "b"]), int(1));
        assert_eq!(
            k.run(&["LRANGE", "l", "0", "-1"]),
            bulks(&["A", "b", "x", "c"])
        );
        assert_eq!(k.run(&["LTRIM", "l", "1", "-2"]), "+OK\r\n");
        assert_eq!(k.run(&["LRANGE", "l", "0", "-1"]), bulks(&["b", "x"]));
        assert_eq!(k.run(&["LTRIM", "l", "2", "1"]), "+OK\r\n");
        assert_eq!(k.run(&["EXISTS", "l"]), int(0));
    }

    #[test]
    fn lpos_options() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"]);
        assert_eq!(k.run(&["LPOS", "l", "c"]), int(2));
        assert_eq!(k.run(&["LPOS", "l", "c", "RANK", "-1"]), int(7));
        assert_eq!(
            k.run(&["LPOS", "l", "c", "COUNT", "0"]),
            "*3\r\n:2\r\n:6\r\n:7\r\n"
        );
        assert_eq!(
            k.run(&["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"]),
            "*2\r\n:2\r\n:6\r\n"
        );
        assert_eq!(
            k.run(&["LPOS", "l", "c", "RANK", "-2", "COUNT", "5"]),
            "*2\r\n:6\r\n:2\r\n"
        );
        assert_eq!(k.run(&["LPOS", "nokey", "c", "COUNT", "1"]), "*0\r\n");
        assert_eq!(k.run(&["LPOS", "nokey", "c"]), "$-1\r\n");
        assert!(k
            .run(&["LPOS", "l", "c", "RANK", "0"])
            .starts_with("-ERR RANK can't be zero"));
        assert_eq!(
            k.run(&["LPOS", "l", "c", "COUNT", "x"]),
            err("ERR COUNT can't be negative")
        );
        assert_eq!(
            k.run(&["LPOS", "l", "c", "MAXLEN", "-1"]),
            err("ERR MAXLEN can't be negative")
        );
        assert_eq!(k.run(&["LPOS", "l", "c", "RANK"]), err("ERR syntax error"));
    }

    #[test]
    fn moves_and_multi_pops() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "src", "a", "b", "c"]);
        assert_eq!(
            k.run(&["LMOVE", "src", "dst", "RIGHT", "LEFT"]),
            "$1\r\nc\r\n"
        );
        assert_eq!(k.run(&["RPOPLPUSH", "src", "dst"]), "$1\r\nb\r\n");
        assert_eq!(
            k.run(&["LMOVE", "src", "src", "LEFT", "RIGHT"]),
            "$1\r\na\r\n"
        );
        assert_eq!(
            k.run(&["LMOVE", "src", "dst", "LEFT", "LEFT"]),
            "$1\r\na\r\n"
        );
        assert_eq!(k.run(&["EXISTS", "src"]), int(0));
        assert_eq!(k.run(&["LMOVE", "src", "dst", "LEFT", "LEFT"]), "$-1\r\n");
        assert_eq!(
            k.run(&["LMOVE", "src", "dst", "UP", "LEFT"]),
            err("ERR syntax error")
        );
        assert_eq!(
            k.run(&["LRANGE", "dst", "0", "-1"]),
            bulks(&["a", "b", "c"])
        );
        assert_eq!(
            k.run(&["LMPOP", "2", "src", "dst", "RIGHT", "COUNT", "2"]),
            "*2\r\n$3\r\ndst\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n"
        );
        assert_eq!(k.run(&["LMPOP", "1", "src", "LEFT"]), "*-1\r\n");
        assert_eq!(
            k.run(&["LMPOP", "0", "src", "LEFT"]),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            k.run(&["LMPOP", "1", "dst", "LEFT", "COUNT", "0"]),
            err("ERR count should be greater than 0")
        );
        assert_eq!(
            k.run(&["LMPOP", "3", "a", "b", "LEFT"]),
            err("ERR syntax error")
        );
        assert_eq!(
            k.run(&["LMPOP", "1", "dst", "LEFT"]),
            "*2\r\n$3\r\ndst\r\n*1\r\n$1\r\na\r\n"
        );
        assert_eq!(k.run(&["EXISTS", "dst"]), int(0));
    }

    #[test]
    fn resp3_nulls() {
        let mut k = Kit::new();
        k.run(&["HELLO", "3"]);
        assert_eq!(k.run(&["LPOP", "nokey"]), "_\r\n");
        assert_eq!(k.run(&["LPOP", "nokey", "2"]), "_\r\n");
        assert_eq!(k.run(&["LMPOP", "1", "nokey", "LEFT"]), "_\r\n");
        assert_eq!(k.run(&["LPOS", "nokey", "a"]), "_\r\n");
    }

    #[test]
    fn lists_follow_the_configured_chunk_size() {
        let mut k = Kit::new();
        assert_eq!(
            k.run(&["CONFIG", "SET", "list-max-listpack-size", "2"]),
            "+OK\r\n"
        );
        let items: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        let mut cmd = vec!["RPUSH", "l"];
        cmd.extend(items.iter().map(String::as_str));
        assert_eq!(k.run(&cmd), int(50));
        assert_eq!(k.run(&["LINSERT", "l", "AFTER", "25", "x"]), int(51));
        assert_eq!(k.run(&["LINDEX", "l", "26"]), "$1\r\nx\r\n");
        assert_eq!(k.run(&["LREM", "l", "0", "x"]), int(1));
        let all: Vec<&str> = items.iter().map(String::as_str).collect();
        assert_eq!(k.run(&["LRANGE", "l", "0", "-1"]), bulks(&all));
    }
}
