//! Sorted-set commands: ZADD ZINCRBY ZREM ZCARD ZSCORE ZMSCORE ZRANK
//! ZREVRANK ZCOUNT ZLEXCOUNT ZRANGE ZRANGESTORE ZREVRANGE ZRANGEBYSCORE
//! ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZREMRANGEBYRANK
//! ZREMRANGEBYSCORE ZREMRANGEBYLEX ZUNION ZINTER ZDIFF ZUNIONSTORE
//! ZINTERSTORE ZDIFFSTORE ZINTERCARD ZRANDMEMBER ZPOPMIN ZPOPMAX ZMPOP ZSCAN,
//! with Redis 7.0's replies and error texts (`t_zset.c`). The blocking
//! variants reuse [`pop_first`].

use bytes::Bytes;
use rampart_keyspace::zset::{LexBound, LexRange, ScoreRange, ZSet};
use rampart_keyspace::{glob, Db, Value};

use super::flags::*;
use super::notify_write;
use super::{err, spec, CommandSpec, Ctx};
use crate::num::parse_i64;
use crate::pubsub::class;
use crate::resp::Out;

const G: &str = "sorted-set";

const NAN_ERR: &str = "ERR resulting score is not a number (NaN)";
const SCORE_RANGE_ERR: &str = "ERR min or max is not a float";
const LEX_RANGE_ERR: &str = "ERR min or max not valid string range item";

/// The selected database, borrowed from the server rather than from `ctx`
/// so handlers can write to `ctx.out` while they hold a key.
fn cur_db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    ctx.srv.keyspace.db(ctx.client.db)
}

fn as_zset(v: &Value) -> Option<&ZSet> {
    match v {
        Value::ZSet(z) => Some(z),
        _ => None,
    }
}

fn as_zset_mut(v: &mut Value) -> Option<&mut ZSet> {
    match v {
        Value::ZSet(z) => Some(z),
        _ => None,
    }
}

/// C's `isspace`.
fn c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C's `strtod`: (value, bytes consumed, ERANGE). Consumes nothing when no
/// number starts the text. Takes what glibc takes: leading blanks, a sign,
/// `inf`/`infinity`/`nan[(…)]` in any case, hex floats, decimal floats.
pub(super) fn strtod(s: &[u8]) -> (f64, usize, bool) {
    let mut i = 0;
    while i < s.len() && c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let sign = |v: f64| if neg { -v } else { v };
    let rest = &s[i..];
    let word = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    if word(b"infinity") {
        return (sign(f64::INFINITY), i + 8, false);
    }
    if word(b"inf") {
        return (sign(f64::INFINITY), i + 3, false);
    }
    if word(b"nan") {
        let mut j = i + 3;
        if j < s.len() && s[j] == b'(' {
            let mut k = j + 1;
            while k < s.len() && (s[k].is_ascii_alphanumeric() || s[k] == b'_') {
                k += 1;
            }
            if k < s.len() && s[k] == b')' {
                j = k + 1;
            }
        }
        return (f64::NAN, j, false);
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((v, n)) = hex_float(&rest[2..]) {
            let v = sign(v);
            let erange = v.is_infinite() || (v != 0.0 && v.abs() < f64::MIN_POSITIVE);
            return (v, i + 2 + n, erange);
        }
        // Just the "0".
        return (sign(0.0), i + 1, false);
    }
    let mut j = i;
    let mut digits = 0;
    let mut nonzero = false;
    while j < s.len() && s[j].is_ascii_digit() {
        nonzero |= s[j] != b'0';
        digits += 1;
        j += 1;
    }
    if j < s.len() && s[j] == b'.' {
        j += 1;
        while j < s.len() && s[j].is_ascii_digit() {
            nonzero |= s[j] != b'0';
            digits += 1;
            j += 1;
        }
    }
    if digits == 0 {
        return (0.0, 0, false);
    }
    if j < s.len() && (s[j] | 0x20) == b'e' {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[i..j]).unwrap_or("0");
    let v: f64 = text.parse().unwrap_or(0.0);
    let erange = v.is_infinite() || (v == 0.0 && nonzero) || (v != 0.0 && v < f64::MIN_POSITIVE);
    (sign(v), j, erange)
}

/// The hex digits (after `0x`) of a C hex float: (value, bytes consumed),
/// `None` when no digit follows.
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut m: u64 = 0;
    let mut exp: i64 = 0;
    let mut any = false;
    let mut j = 0;
    while let Some(d) = s.get(j).and_then(|&c| hex(c)) {
        if m < 1 << 59 {
            m = m * 16 + d as u64;
        } else {
            exp += 4;
        }
        any = true;
        j += 1;
    }
    if s.get(j) == Some(&b'.') {
        let mut k = j + 1;
        let mut frac = false;
        while let Some(d) = s.get(k).and_then(|&c| hex(c)) {
            if m < 1 << 59 {
                m = m * 16 + d as u64;
                exp -= 4;
            }
            frac = true;
            k += 1;
        }
        if frac || any {
            any = true;
            j = k;
        }
    }
    if !any {
        return None;
    }
    if s.get(j).is_some_and(|&c| (c | 0x20) == b'p') {
        let mut k = j + 1;
        let mut eneg = false;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            eneg = s[k] == b'-';
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            let mut e: i64 = 0;
            while k < s.len() && s[k].is_ascii_digit() {
                e = (e * 10 + (s[k] - b'0') as i64).min(100_000);
                k += 1;
            }
            exp += if eneg { -e } else { e };
            j = k;
        }
    }
    let mut v = m as f64;
    // ldexp in steps that stay exact until the final one.
    while exp > 0 && v.is_finite() {
        let step = exp.min(1000);
        v *= 2f64.powi(step as i32);
        exp -= step;
    }
    while exp < 0 && v != 0.0 {
        let step = (-exp).min(1000);
        v /= 2f64.powi(step as i32);
        exp += step;
    }
    Some((v, j))
}

/// Parses a score as Redis's `string2d`: the whole argument, no leading
/// blank, no overflow or underflow to zero, no NaN.
pub fn parse_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() || c_space(s[0]) {
        return None;
    }
    let (v, n, erange) = strtod(s);
    if n != s.len() || (erange && (v.is_infinite() || v == 0.0)) || v.is_nan() {
        return None;
    }
    Some(v)
}

/// The argument as C sees it: up to its first NUL.
pub(super) fn c_str(s: &[u8]) -> &[u8] {
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    &s[..end]
}

/// One end of a score range as Redis's `zslParseRange` reads it: plain
/// `strtod` over the C string (blanks and overflow accepted, an empty
/// string is 0), `(` for exclusive, NaN refused.
fn parse_range_item(s: &[u8]) -> Option<(f64, bool)> {
    let c = c_str(s);
    let (ex, body) = match c.first() {
        Some(b'(') => (true, &c[1..]),
        _ => (false, c),
    };
    let (v, n, _) = strtod(body);
    (n == body.len() && !v.is_nan()).then_some((v, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let (min, minex) = parse_range_item(min)?;
    let (max, maxex) = parse_range_item(max)?;
    Some(ScoreRange {
        min,
        minex,
        max,
        maxex,
    })
}

/// One end of a lex range as Redis's `zslParseLexRangeItem` reads it.
fn parse_lex_item(s: &[u8]) -> Option<LexBound> {
    match s.first() {
        Some(b'+') if s.len() == 1 || s[1] == 0 => Some(LexBound::Max),
        Some(b'-') if s.len() == 1 || s[1] == 0 => Some(LexBound::Min),
        Some(b'(') => Some(LexBound::Excl(s[1..].to_vec())),
        Some(b'[') => Some(LexBound::Incl(s[1..].to_vec())),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Option<LexRange> {
    Some(LexRange {
        min: parse_lex_item(min)?,
        max: parse_lex_item(max)?,
    })
}

/// Argument `i` as a long with a custom error text (Redis's
/// `getLongFromObjectOrReply` with a message).
fn long_arg_msg(ctx: &mut Ctx<'_>, i: usize, msg: &str) -> Option<i64> {
    let v = parse_i64(&ctx.args[i]);
    if v.is_none() {
        ctx.out.error(msg);
    }
    v
}

/// Reads `key` as a sorted set (a lookup that counts a hit or a miss):
/// calls `f` with the set, or `None` when the key is missing. Replies
/// WRONGTYPE and returns `None` for another type.
pub(super) fn read<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Ctx<'_>, Option<&ZSet>) -> R,
) -> Option<R> {
    let db = cur_db(ctx);
    db.get(key, ctx.now, |n| {
        ctx.looked_up(key, n.is_some());
        match n.map(|n| &n.value) {
            None => Some(f(ctx, None)),
            Some(v) => match as_zset(v) {
                Some(z) => Some(f(ctx, Some(z))),
                None => {
                    ctx.out.error(err::WRONGTYPE);
                    None
                }
            },
        }
    })
}

/// Writes one (member, score) pair of a WITHSCORES reply: a flat pair in
/// RESP2, a two-element array in RESP3.
fn emit_pair(ctx: &mut Ctx<'_>, m: &[u8], s: f64, withscores: bool) {
    if withscores && ctx.out.resp3() {
        ctx.out.array(2);
    }
    ctx.out.bulk(m);
    if withscores {
        ctx.out.double(s);
    }
}

/// Array header for `n` results.
fn emit_len(ctx: &mut Ctx<'_>, n: usize, withscores: bool) {
    if withscores && !ctx.out.resp3() {
        ctx.out.array(2 * n);
    } else {
        ctx.out.array(n);
    }
}

/// Stores `pairs` (sorted) at `dst` as Redis's store commands do: replaces
/// any value and TTL, or deletes `dst` when there is nothing; replies the
/// count and announces `event` (or `del` when an existing `dst` went).
pub(super) fn store_result(ctx: &mut Ctx<'_>, dst: &[u8], pairs: Vec<(Vec<u8>, f64)>, event: &str) {
    let db = cur_db(ctx);
    let n = pairs.len();
    if n == 0 {
        let removed = db.delete(dst, ctx.now);
        ctx.out.int(0);
        if removed {
            notify_write(ctx, class::GENERIC, "del", dst, false);
        }
        return;
    }
    let z = ZSet::from_sorted(pairs, &ctx.limits());
    db.write(dst, ctx.now, |s| s.insert(Value::ZSet(z), None));
    ctx.out.int(n as i64);
    notify_write(ctx, class::ZSET, event, dst, false);
}

// ---------------------------------------------------------------- ZADD

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one score/member pair of ZADD does to a set (Redis's `zsetAdd`).
#[derive(Clone, Copy, PartialEq)]
enum AddOutcome {
    /// Nothing (NX on an existing member, XX on a missing one, GT/LT not met).
    Nop,
    /// INCR produced NaN.
    Nan,
    /// New member with this score.
    Added(f64),
    /// Existing member whose score changes to this.
    Updated(f64),
    /// Existing member whose score stays this.
    Same(f64),
}

fn add_outcome(z: Option<&ZSet>, member: &[u8], score: f64, f: AddFlags) -> AddOutcome {
    match z.and_then(|z| z.score(member)) {
        Some(cur) => {
            if f.nx {
                return AddOutcome::Nop;
            }
            let new = if f.incr { score + cur } else { score };
            if new.is_nan() {
                return AddOutcome::Nan;
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return AddOutcome::Nop;
            }
            if new != cur {
                AddOutcome::Updated(new)
            } else {
                AddOutcome::Same(new)
            }
        }
        None if f.xx => AddOutcome::Nop,
        None => AddOutcome::Added(score),
    }
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
pub(super) fn zadd(ctx: &mut Ctx<'_>) {
    zadd_generic(ctx, false);
}

/// `ZINCRBY key increment member`
fn zincrby(ctx: &mut Ctx<'_>) {
    zadd_generic(ctx, true);
}

/// ZADD and ZINCRBY (Redis's `zaddGenericCommand`): options, then every
/// score parsed before anything changes, so the command applies whole or
/// not at all.
fn zadd_generic(ctx: &mut Ctx<'_>, incr: bool) {
    let args = ctx.args;
    let mut f = AddFlags {
        incr,
        ..AddFlags::default()
    };
    // ZINCRBY runs the same option loop, as in Redis.
    let mut j = 2;
    while j < args.len() {
        match ctx.opt(j).as_str() {
            "nx" => f.nx = true,
            "xx" => f.xx = true,
            "ch" => f.ch = true,
            "incr" => f.incr = true,
            "gt" => f.gt = true,
            "lt" => f.lt = true,
            _ => break,
        }
        j += 1;
    }
    let elements = args.len() - j;
    if elements % 2 == 1 || elements == 0 {
        return ctx.out.error(err::SYNTAX);
    }
    let elements = elements / 2;
    if f.nx && f.xx {
        return ctx
            .out
            .error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return ctx
            .out
            .error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 1 {
        return ctx
            .out
            .error("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs: Vec<(f64, &[u8])> = Vec::with_capacity(elements);
    for e in 0..elements {
        match parse_score(&args[j + 2 * e]) {
            Some(s) => pairs.push((s, &args[j + 2 * e + 1])),
            None => return ctx.out.error(err::NOT_FLOAT),
        }
    }
    let limits = ctx.limits();
    let db = cur_db(ctx);
    let changed = db.write(&args[1], ctx.now, |slot| {
        let cur = match slot.value() {
            Some(v) => match as_zset(v) {
                Some(z) => Some(z),
                None => {
                    ctx.out.error(err::WRONGTYPE);
                    return false;
                }
            },
            None => None,
        };
        // A dry run against the current set: the command changes the set
        // iff some pair changes it as it is now (pairs before the first
        // change leave it as it is), so a no-op never marks the key written.
        let dry: Vec<AddOutcome> = pairs
            .iter()
            .map(|&(s, m)| add_outcome(cur, m, s, f))
            .collect();
        if dry.contains(&AddOutcome::Nan) {
            ctx.out.error(NAN_ERR);
            return false;
        }
        let changes = dry
            .iter()
            .any(|o| matches!(o, AddOutcome::Added(_) | AddOutcome::Updated(_)));
        let outcomes = if changes {
            if cur.is_none() {
                slot.insert(Value::ZSet(Default::default()), None);
            }
            let Some(z) = slot.value_mut().and_then(as_zset_mut) else {
                ctx.out.error(err::WRONGTYPE);
                return false;
            };
            let mut outs = Vec::with_capacity(pairs.len());
            for &(s, m) in &pairs {
                let o = add_outcome(Some(z), m, s, f);
                if let AddOutcome::Added(new) | AddOutcome::Updated(new) = o {
                    z.insert(m, new, &limits);
                }
                outs.push(o);
            }
            outs
        } else {
            dry
        };
        let (mut added, mut updated) = (0, 0);
        let mut last = None;
        for o in &outcomes {
            match *o {
                AddOutcome::Added(s) => {
                    added += 1;
                    last = Some(s);
                }
                AddOutcome::Updated(s) => {
                    updated += 1;
                    last = Some(s);
                }
                AddOutcome::Same(s) => last = Some(s),
                AddOutcome::Nop | AddOutcome::Nan => {}
            }
        }
        if f.incr {
            match last {
                Some(s) => ctx.out.double(s),
                None => ctx.out.null(),
            }
        } else {
            ctx.out.int(if f.ch { added + updated } else { added });
        }
        added + updated > 0
    });
    if changed {
        let event = if f.incr { "zincr" } else { "zadd" };
        notify_write(ctx, class::ZSET, event, &args[1], false);
    }
}

// ---------------------------------------------------------------- ZREM, ZCARD, ZSCORE…

/// `ZREM key member [member ...]`
fn zrem(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let db = cur_db(ctx);
    // Whether the key went, when some member did.
    let removed = db.write(&args[1], ctx.now, |slot| {
        let Some(v) = slot.value() else {
            ctx.out.int(0);
            return None;
        };
        let Some(z) = as_zset(v) else {
            ctx.out.error(err::WRONGTYPE);
            return None;
        };
        if !args[2..].iter().any(|m| z.score(m).is_some()) {
            ctx.out.int(0);
            return None;
        }
        let mut deleted = 0;
        let mut empty = false;
        if let Some(z) = slot.value_mut().and_then(as_zset_mut) {
            for m in &args[2..] {
                if z.remove(m).is_some() {
                    deleted += 1;
                    if z.is_empty() {
                        break;
                    }
                }
            }
            empty = z.is_empty();
        }
        if empty {
            slot.remove();
        }
        ctx.out.int(deleted);
        Some(empty)
    });
    if let Some(emptied) = removed {
        notify_write(ctx, class::ZSET, "zrem", &args[1], emptied);
    }
}

/// `ZCARD key`
fn zcard(ctx: &mut Ctx<'_>) {
    let key: &[u8] = &{ ctx.args }[1];
    read(ctx, key, |ctx, z| {
        ctx.out.int(z.map_or(0, |z| z.len()) as i64)
    });
}

/// `ZSCORE key member`
fn zscore(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read(ctx, &args[1], |ctx, z| {
        match z.and_then(|z| z.score(&args[2])) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    });
}

/// `ZMSCORE key member [member ...]`: a missing key reads as an empty set.
fn zmscore(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read(ctx, &args[1], |ctx, z| {
        ctx.out.array(args.len() - 2);
        for m in &args[2..] {
            match z.and_then(|z| z.score(m)) {
                Some(s) => ctx.out.double(s),
                None => ctx.out.null(),
            }
        }
    });
}

/// `ZRANK key member`
fn zrank(ctx: &mut Ctx<'_>) {
    rank_generic(ctx, false);
}

/// `ZREVRANK key member`
fn zrevrank(ctx: &mut Ctx<'_>) {
    rank_generic(ctx, true);
}

fn rank_generic(ctx: &mut Ctx<'_>, rev: bool) {
    let args = ctx.args;
    read(ctx, &args[1], |ctx, z| {
        let Some(z) = z else { return ctx.out.null() };
        match z.rank(&args[2]) {
            Some(r) if rev => ctx.out.int((z.len() - 1 - r) as i64),
            Some(r) => ctx.out.int(r as i64),
            None => ctx.out.null(),
        }
    });
}

/// `ZCOUNT key min max`
fn zcount(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let Some(r) = parse_score_range(&args[2], &args[3]) else {
        return ctx.out.error(SCORE_RANGE_ERR);
    };
    read(ctx, &args[1], |ctx, z| {
        let n = z.map_or(0, |z| {
            let (a, b) = z.score_span(&r);
            b - a
        });
        ctx.out.int(n as i64);
    });
}

/// `ZLEXCOUNT key min max`
fn zlexcount(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let Some(r) = parse_lex_range(&args[2], &args[3]) else {
        return ctx.out.error(LEX_RANGE_ERR);
    };
    read(ctx, &args[1], |ctx, z| {
        ctx.out.int(z.map_or(0, |z| z.lex_count(&r)) as i64)
    });
}

// ---------------------------------------------------------------- ZRANGE family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Redis's index sanitizing for rank ranges over `n` members: the first
/// rank and the length, or `None` when empty.
fn rank_span(n: usize, mut start: i64, mut end: i64) -> Option<(usize, usize)> {
    let llen = n as i64;
    if start < 0 {
        start += llen;
    }
    if end < 0 {
        end += llen;
    }
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

/// The members a range selects, in reply order (Redis's
/// `genericZrangeby{rank,score,lex}Command`).
fn select_range<'z>(
    z: &'z ZSet,
    range: &Range,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<(&'z [u8], f64)> {
    let n = z.len();
    // A negative LIMIT count means no limit.
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    // A negative offset walks off the end in Redis: nothing.
    let Ok(offset) = usize::try_from(offset) else {
        return Vec::new();
    };
    match range {
        Range::Rank(start, end) => {
            let Some((start, len)) = rank_span(n, *start, *end) else {
                return Vec::new();
            };
            if rev {
                z.iter_from(n - 1 - start, true).take(len).collect()
            } else {
                z.iter_from(start, false).take(len).collect()
            }
        }
        Range::Score(r) => {
            let (a, b) = z.score_span(r);
            if a >= b {
                return Vec::new();
            }
            if rev {
                let Some(first) = (b - 1).checked_sub(offset) else {
                    return Vec::new();
                };
                z.iter_from(first, true)
                    .take_while(|&(_, s)| r.gte_min(s))
                    .take(cap)
                    .collect()
            } else {
                z.iter_from(a.saturating_add(offset), false)
                    .take_while(|&(_, s)| r.lte_max(s))
                    .take(cap)
                    .collect()
            }
        }
        Range::Lex(r) => {
            if rev {
                let Some(last) = z.lex_last(r) else {
                    return Vec::new();
                };
                let Some(first) = last.checked_sub(offset) else {
                    return Vec::new();
                };
                z.iter_from(first, true)
                    .take_while(|&(m, _)| r.gte_min(m))
                    .take(cap)
                    .collect()
            } else {
                let Some(first) = z.lex_first(r) else {
                    return Vec::new();
                };
                z.iter_from(first.saturating_add(offset), false)
                    .take_while(|&(m, _)| r.lte_max(m))
                    .take(cap)
                    .collect()
            }
        }
    }
}

/// The whole ZRANGE family (Redis's `zrangeGenericCommand`): `argc_start`
/// is the source key's position; `store` makes it ZRANGESTORE.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    argc_start: usize,
    store: bool,
    mut rangetype: RangeType,
    mut direction: Direction,
) {
    let args = ctx.args;
    let key = &args[argc_start];
    let mut minidx = argc_start + 1;
    let mut maxidx = argc_start + 2;
    let mut withscores = false;
    let mut offset: i64 = 0;
    let mut limit: i64 = -1;
    let mut j = argc_start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let opt = ctx.opt(j);
        if !store && opt == "withscores" {
            withscores = true;
        } else if opt == "limit" && left >= 2 {
            let Some(o) = ctx.int_arg(j + 1) else { return };
            let Some(l) = ctx.int_arg(j + 2) else { return };
            offset = o;
            limit = l;
            j += 2;
        } else if direction == Direction::Auto && opt == "rev" {
            direction = Direction::Reverse;
        } else if rangetype == RangeType::Auto && opt == "bylex" {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && opt == "byscore" {
            rangetype = RangeType::Score;
        } else {
            return ctx.out.error(err::SYNTAX);
        }
        j += 1;
    }
    if direction == Direction::Auto {
        direction = Direction::Forward;
    }
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return ctx.out.error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && rangetype == RangeType::Lex {
        return ctx
            .out
            .error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let rev = direction == Direction::Reverse;
    if rev && rangetype != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let range = match rangetype {
        RangeType::Score => match parse_score_range(&args[minidx], &args[maxidx]) {
            Some(r) => Range::Score(r),
            None => return ctx.out.error(SCORE_RANGE_ERR),
        },
        RangeType::Lex => match parse_lex_range(&args[minidx], &args[maxidx]) {
            Some(r) => Range::Lex(r),
            None => return ctx.out.error(LEX_RANGE_ERR),
        },
        _ => {
            let Some(a) = ctx.int_arg(minidx) else { return };
            let Some(b) = ctx.int_arg(maxidx) else { return };
            Range::Rank(a, b)
        }
    };
    if store {
        let Some(mut pairs) = read(ctx, key, |_, z| {
            z.map(|z| {
                select_range(z, &range, rev, offset, limit)
                    .into_iter()
                    .map(|(m, s)| (m.to_vec(), s))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        }) else {
            return;
        };
        if rev {
            pairs.reverse();
        }
        store_result(ctx, &args[1], pairs, "zrangestore");
        return;
    }
    read(ctx, key, |ctx, z| {
        let Some(z) = z else {
            return ctx.out.array(0);
        };
        let res = select_range(z, &range, rev, offset, limit);
        emit_len(ctx, res.len(), withscores);
        for (m, s) in res {
            emit_pair(ctx, m, s, withscores);
        }
    });
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
fn zrange(ctx: &mut Ctx<'_>) {
    zrange_generic(ctx, 1, false, RangeType::Auto, Direction::Auto);
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`
fn zrangestore(ctx: &mut Ctx<'_>) {
    zrange_generic(ctx, 2, true, RangeType::Auto, Direction::Auto);
}

/// `ZREVRANGE key start stop [WITHSCORES]`
fn zrevrange(ctx: &mut Ctx<'_>) {
    zrange_generic(ctx, 1, false, RangeType::Rank, Direction::Reverse);
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
fn zrangebyscore(ctx: &mut Ctx<'_>) {
    zrange_generic(ctx, 1, false, RangeType::Score, Direction::Forward);
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
fn zrevrangebyscore(ctx: &mut Ctx<'_>) {
    zrange_generic(ctx, 1, false, RangeType::Score, Direction::Reverse);
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`
fn zrangebylex(ctx: &mut Ctx<'_>) {
    zrange_generic(ctx, 1, false, RangeType::Lex, Direction::Forward);
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
fn zrevrangebylex(ctx: &mut Ctx<'_>) {
    zrange_generic(ctx, 1, false, RangeType::Lex, Direction::Reverse);
}

// ---------------------------------------------------------------- ZREMRANGEBY*

/// `ZREMRANGEBYRANK key start stop`
fn zremrangebyrank(ctx: &mut Ctx<'_>) {
    let Some(a) = ctx.int_arg(2) else { return };
    let Some(b) = ctx.int_arg(3) else { return };
    zremrange_generic(ctx, Range::Rank(a, b));
}

/// `ZREMRANGEBYSCORE key min max`
fn zremrangebyscore(ctx: &mut Ctx<'_>) {
    match parse_score_range(&ctx.args[2], &ctx.args[3]) {
        Some(r) => zremrange_generic(ctx, Range::Score(r)),
        None => ctx.out.error(SCORE_RANGE_ERR),
    }
}

/// `ZREMRANGEBYLEX key min max`
fn zremrangebylex(ctx: &mut Ctx<'_>) {
    match parse_lex_range(&ctx.args[2], &ctx.args[3]) {
        Some(r) => zremrange_generic(ctx, Range::Lex(r)),
        None => ctx.out.error(LEX_RANGE_ERR),
    }
}

/// Ranks `from..to` a removal range covers in `z`.
fn removal_span(z: &ZSet, range: &Range) -> (usize, usize) {
    match range {
        Range::Rank(a, b) => match rank_span(z.len(), *a, *b) {
            Some((start, len)) => (start, start + len),
            None => (0, 0),
        },
        Range::Score(r) => z.score_span(r),
        Range::Lex(r) => match z.lex_first(r) {
            Some(a) => {
                let n = z
                    .iter_from(a, false)
                    .take_while(|(m, _)| r.lte_max(m))
                    .count();
                (a, a + n)
            }
            None => (0, 0),
        },
    }
}

fn zremrange_generic(ctx: &mut Ctx<'_>, range: Range) {
    let args = ctx.args;
    let db = cur_db(ctx);
    // Whether the key went, when some member did.
    let removed = db.write(&args[1], ctx.now, |slot| {
        let Some(v) = slot.value() else {
            ctx.out.int(0);
            return None;
        };
        let Some(z) = as_zset(v) else {
            ctx.out.error(err::WRONGTYPE);
            return None;
        };
        let (a, b) = removal_span(z, &range);
        if a >= b {
            ctx.out.int(0);
            return None;
        }
        let mut empty = false;
        if let Some(z) = slot.value_mut().and_then(as_zset_mut) {
            z.remove_ranks(a, b);
            empty = z.is_empty();
        }
        if empty {
            slot.remove();
        }
        ctx.out.int((b - a) as i64);
        Some(empty)
    });
    if let Some(emptied) = removed {
        let event = match range {
            Range::Rank(..) => "zremrangebyrank",
            Range::Score(_) => "zremrangebyscore",
            Range::Lex(_) => "zremrangebylex",
        };
        notify_write(ctx, class::ZSET, event, &args[1], emptied);
    }
}

// ---------------------------------------------------------------- set algebra

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`.
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            // inf + -inf: Redis's convention is 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// One input of a set operation: a copy of a sorted set (a plain set
/// reads as members with score 1), or nothing for a missing key.
struct Source {
    set: Option<ZSet>,
    weight: f64,
}

impl Source {
    fn len(&self) -> usize {
        self.set.as_ref().map_or(0, ZSet::len)
    }
}

/// Members of a plain set value, if it is one.
fn set_members(v: &Value) -> Option<Vec<Vec<u8>>> {
    match v {
        Value::Set(s) => Some(s.iter().map(|m| m.to_vec()).collect()),
        _ => None,
    }
}

/// ZUNION ZINTER ZDIFF, their STORE forms and ZINTERCARD (Redis's
/// `zunionInterDiffGenericCommand`): keys are read (and type-checked)
/// before the options are parsed, as in Redis.
fn zsetop_generic(
    ctx: &mut Ctx<'_>,
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: SetOp,
    card_only: bool,
) {
    let args = ctx.args;
    let Some(setnum) = ctx.int_arg(numkeys_idx) else {
        return;
    };
    if setnum < 1 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return ctx.out.error(&format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    if setnum > (args.len() - (numkeys_idx + 1)) as i64 {
        return ctx.out.error(err::SYNTAX);
    }
    let setnum = setnum as usize;
    let limits = ctx.limits();
    let db = cur_db(ctx);
    let mut srcs: Vec<Source> = Vec::with_capacity(setnum);
    let mut j = numkeys_idx + 1;
    for _ in 0..setnum {
        let got = db.get(&args[j], ctx.now, |n| {
            ctx.looked_up(&args[j], n.is_some());
            match n.map(|n| &n.value) {
                None => Ok(None),
                Some(v) => match as_zset(v) {
                    Some(z) => Ok(Some(z.clone())),
                    None => match set_members(v) {
                        Some(ms) => Ok(Some(ZSet::from_pairs(
                            ms.into_iter().map(|m| (m, 1.0)).collect(),
                            &limits,
                        ))),
                        None => Err(()),
                    },
                },
            }
        });
        match got {
            Ok(set) => srcs.push(Source { set, weight: 1.0 }),
            Err(()) => return ctx.out.error(err::WRONGTYPE),
        }
        j += 1;
    }
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit: i64 = 0;
    while j < args.len() {
        let remaining = args.len() - j;
        let opt = ctx.opt(j);
        if op != SetOp::Diff && !card_only && remaining > setnum && opt == "weights" {
            j += 1;
            for src in srcs.iter_mut() {
                match parse_score(&args[j]) {
                    Some(w) => src.weight = w,
                    None => return ctx.out.error("ERR weight value is not a float"),
                }
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && opt == "aggregate" {
            agg = match ctx.opt(j + 1).as_str() {
                "sum" => Aggregate::Sum,
                "min" => Aggregate::Min,
                "max" => Aggregate::Max,
                _ => return ctx.out.error(err::SYNTAX),
            };
            j += 2;
        } else if dst.is_none() && !card_only && opt == "withscores" {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && opt == "limit" {
            let Some(l) = long_arg_msg(ctx, j + 1, "ERR LIMIT can't be negative") else {
                return;
            };
            if l < 0 {
                return ctx.out.error("ERR LIMIT can't be negative");
            }
            limit = l;
            j += 2;
        } else {
            return ctx.out.error(err::SYNTAX);
        }
    }
    if op == SetOp::Diff {
        srcs[1..].sort_by_key(Source::len);
    } else {
        srcs.sort_by_key(Source::len);
    }
    let mut result: Vec<(Vec<u8>, f64)> = Vec::new();
    let mut cardinality: i64 = 0;
    match op {
        SetOp::Inter => {
            if let Some(first) = srcs[0].set.as_ref().filter(|z| !z.is_empty()) {
                for (m, s) in first.iter() {
                    let mut score = srcs[0].weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    let mut all = true;
                    for src in &srcs[1..] {
                        match src.set.as_ref().and_then(|z| z.score(m)) {
                            Some(v) => aggregate(&mut score, v * src.weight, agg),
                            None => {
                                all = false;
                                break;
                            }
                        }
                    }
                    if !all {
                        continue;
                    }
                    if card_only {
                        cardinality += 1;
                        if limit > 0 && cardinality >= limit {
                            break;
                        }
                    } else {
                        result.push((m.to_vec(), score));
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: std::collections::HashMap<Vec<u8>, f64> = std::collections::HashMap::new();
            let mut order: Vec<Vec<u8>> = Vec::new();
            for src in &srcs {
                let Some(z) = &src.set else { continue };
                for (m, s) in z.iter() {
                    let mut score = src.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.to_vec(), score);
                            order.push(m.to_vec());
                        }
                    }
                }
            }
            result = order
                .into_iter()
                .map(|m| {
                    let s = acc.get(&m).copied().unwrap_or(0.0);
                    (m, s)
                })
                .collect();
        }
        SetOp::Diff => {
            if let Some(first) = &srcs[0].set {
                for (m, s) in first.iter() {
                    let found = srcs[1..]
                        .iter()
                        .any(|src| src.set.as_ref().is_some_and(|z| z.score(m).is_some()));
                    if !found {
                        result.push((m.to_vec(), s));
                    }
                }
            }
        }
    }
    if card_only {
        return ctx.out.int(cardinality);
    }
    result.sort_by(|a, b| match a.1.partial_cmp(&b.1) {
        Some(std::cmp::Ordering::Equal) | None => a.0.cmp(&b.0),
        Some(o) => o,
    });
    match dst {
        Some(dst) => {
            let event = match op {
                SetOp::Union => "zunionstore",
                SetOp::Inter => "zinterstore",
                SetOp::Diff => "zdiffstore",
            };
            store_result(ctx, dst, result, event);
        }
        None => {
            emit_len(ctx, result.len(), withscores);
            for (m, s) in &result {
                emit_pair(ctx, m, *s, withscores);
            }
        }
    }
}

/// `ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn zunion(ctx: &mut Ctx<'_>) {
    zsetop_generic(ctx, None, 1, SetOp::Union, false);
}

/// `ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn zinter(ctx: &mut Ctx<'_>) {
    zsetop_generic(ctx, None, 1, SetOp::Inter, false);
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
fn zdiff(ctx: &mut Ctx<'_>) {
    zsetop_generic(ctx, None, 1, SetOp::Diff, false);
}

/// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]`
fn zunionstore(ctx: &mut Ctx<'_>) {
    let dst: &[u8] = &{ ctx.args }[1];
    zsetop_generic(ctx, Some(dst), 2, SetOp::Union, false);
}

/// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]`
fn zinterstore(ctx: &mut Ctx<'_>) {
    let dst: &[u8] = &{ ctx.args }[1];
    zsetop_generic(ctx, Some(dst), 2, SetOp::Inter, false);
}

/// `ZDIFFSTORE destination numkeys key [key ...]`
fn zdiffstore(ctx: &mut Ctx<'_>) {
    let dst: &[u8] = &{ ctx.args }[1];
    zsetop_generic(ctx, Some(dst), 2, SetOp::Diff, false);
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
fn zintercard(ctx: &mut Ctx<'_>) {
    zsetop_generic(ctx, None, 1, SetOp::Inter, true);
}

// ---------------------------------------------------------------- ZRANDMEMBER

/// `ZRANDMEMBER key [count [WITHSCORES]]`
fn zrandmember(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if args.len() >= 3 {
        let Some(l) = ctx.int_arg(2) else { return };
        if l == i64::MIN {
            return ctx.out.error(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
        }
        let withscores = args.len() == 4;
        if args.len() > 4 || (withscores && ctx.opt(3) != "withscores") {
            return ctx.out.error(err::SYNTAX);
        }
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return ctx.out.error("ERR value is out of range");
        }
        return randmember_count(ctx, l, withscores);
    }
    read(ctx, &args[1], |ctx, z| match z {
        Some(z) if !z.is_empty() => {
            let i = (rand::random::<u64>() % z.len() as u64) as usize;
            match z.get(i) {
                Some((m, _)) => ctx.out.bulk(m),
                None => ctx.out.null(),
            }
        }
        _ => ctx.out.null(),
    });
}

/// The most members a negative ZRANDMEMBER count may ask for (Rampart's
/// bound; Redis has none and would exhaust memory).
const MAX_RANDOM_REPLY: usize = 1 << 24;

/// Redis's `zrandmemberWithCountCommand`: a negative count samples with
/// repetition; a positive one returns distinct members (all of them,
/// highest first, when the count covers the set).
fn randmember_count(ctx: &mut Ctx<'_>, count: i64, withscores: bool) {
    let args = ctx.args;
    read(ctx, &args[1], |ctx, z| {
        let Some(z) = z.filter(|z| !z.is_empty()) else {
            return ctx.out.array(0);
        };
        if count == 0 {
            return ctx.out.array(0);
        }
        let size = z.len();
        if count < 0 || count == 1 {
            let n = count.unsigned_abs() as usize;
            // Redis would build this reply whatever its size; the whole reply
            // is rendered in memory here, so refuse ones that cannot fit.
            if n > MAX_RANDOM_REPLY {
                return ctx.out.error("ERR value is out of range");
            }
            emit_len(ctx, n, withscores);
            for _ in 0..n {
                let i = (rand::random::<u64>() % size as u64) as usize;
                if let Some((m, s)) = z.get(i) {
                    emit_pair(ctx, m, s, withscores);
                }
            }
            return;
        }
        let count = count as usize;
        if count >= size {
            // Redis 7.0 replies the whole set highest first here.
            emit_len(ctx, size, withscores);
            for (m, s) in z.iter_from(size - 1, true) {
                emit_pair(ctx, m, s, withscores);
            }
            return;
        }
        // Floyd's sampling of `count` distinct ranks.
        let mut picked = std::collections::BTreeSet::new();
        for j in (size - count)..size {
            let t = (rand::random::<u64>() % (j as u64 + 1)) as usize;
            if !picked.insert(t) {
                picked.insert(j);
            }
        }
        emit_len(ctx, count, withscores);
        for i in picked {
            if let Some((m, s)) = z.get(i) {
                emit_pair(ctx, m, s, withscores);
            }
        }
    });
}

// ---------------------------------------------------------------- pops

/// What [`pop_first`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Popped {
    /// Popped from a key (or COUNT was 0) and replied.
    Replied,
    /// Every key was missing; nothing was replied (the caller replies, or
    /// blocks).
    Empty,
    /// The first existing key held another type; WRONGTYPE was replied.
    WrongType,
}

/// The reply shape of a pop, as Redis's `genericZpopCommand` chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopShape {
    /// Name the key first (BZPOPMIN, ZMPOP, BZMPOP).
    pub emit_key: bool,
    /// Each pair as its own array (ZMPOP, BZMPOP; ZPOPMIN with COUNT in RESP3).
    pub nested: bool,
    /// Propagate `ZPOPMIN|ZPOPMAX key [count]` instead of the request
    /// (ZMPOP, the blocking pops); `count` is written when `Some`.
    pub rewrite: Option<Option<i64>>,
}

/// Pops up to `count` members (`None`: one, replied without COUNT's
/// shape) from the first of `keys` that exists, lowest first or with
/// `max` highest first; deletes the key when emptied. Shared by ZPOPMIN,
/// ZPOPMAX, ZMPOP and the blocking variants.
pub fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    max: bool,
    count: Option<i64>,
    shape: PopShape,
) -> Popped {
    let db = cur_db(ctx);
    for key in keys {
        // Whether the key went, when something was popped.
        let mut popped = None;
        let r = db.write(key, ctx.now, |slot| {
            let v = slot.value()?;
            let Some(z) = as_zset(v) else {
                ctx.out.error(err::WRONGTYPE);
                return Some(Popped::WrongType);
            };
            let want = count.unwrap_or(1);
            if want == 0 {
                ctx.out.array(0);
                return Some(Popped::Replied);
            }
            let n = (want.max(0) as usize).min(z.len());
            match (shape.nested, shape.emit_key) {
                (false, false) => ctx.out.array(n * 2),
                (true, false) => ctx.out.array(n),
                (false, true) => {
                    ctx.out.array(n * 2 + 1);
                    ctx.out.bulk(key);
                }
                (true, true) => {
                    ctx.out.array(2);
                    ctx.out.bulk(key);
                    ctx.out.array(n);
                }
            }
            let mut empty = false;
            if let Some(z) = slot.value_mut().and_then(as_zset_mut) {
                for _ in 0..n {
                    let Some((m, s)) = z.pop(max) else { break };
                    if shape.nested {
                        ctx.out.array(2);
                    }
                    ctx.out.bulk(&m);
                    ctx.out.double(s);
                }
                empty = z.is_empty();
            }
            if empty {
                slot.remove();
            }
            if n > 0 {
                popped = Some(empty);
            }
            Some(Popped::Replied)
        });
        if let Some(emptied) = popped {
            let event = if max { "zpopmax" } else { "zpopmin" };
            notify_write(ctx, class::ZSET, event, key, emptied);
        }
        match r {
            None => continue,
            Some(Popped::Replied) => {
                if let Some(c) = shape.rewrite {
                    let name: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
                    match c {
                        Some(c) => {
                            let c = itoa::Buffer::new().format(c).to_string();
                            ctx.propagate(&[name, key, c.as_bytes()]);
                        }
                        None => ctx.propagate(&[name, key]),
                    }
                }
                return Popped::Replied;
            }
            Some(p) => return p,
        }
    }
    Popped::Empty
}

/// `ZPOPMIN key [count]`
fn zpopmin(ctx: &mut Ctx<'_>) {
    zpop_minmax(ctx, false);
}

/// `ZPOPMAX key [count]`
fn zpopmax(ctx: &mut Ctx<'_>) {
    zpop_minmax(ctx, true);
}

fn zpop_minmax(ctx: &mut Ctx<'_>, max: bool) {
    let args = ctx.args;
    if args.len() > 3 {
        return ctx.out.error(err::SYNTAX);
    }
    let mut count = None;
    if args.len() == 3 {
        let msg = "ERR value is out of range, must be positive";
        let Some(c) = long_arg_msg(ctx, 2, msg) else {
            return;
        };
        if c < 0 {
            return ctx.out.error(msg);
        }
        count = Some(c);
    }
    let shape = PopShape {
        emit_key: false,
        nested: ctx.out.resp3() && count.is_some(),
        rewrite: None,
    };
    if pop_first(ctx, &args[1..2], max, count, shape) == Popped::Empty {
        ctx.out.array(0);
    }
}

/// Parsed `numkeys key [key ...] MIN|MAX [COUNT count]` of ZMPOP/BZMPOP.
pub struct MpopArgs {
    /// Positions of the keys in `ctx.args`.
    pub keys: std::ops::Range<usize>,
    /// MAX rather than MIN.
    pub max: bool,
    /// COUNT (1 by default).
    pub count: i64,
}

/// Parses ZMPOP's arguments from `numkeys_idx` on (Redis's
/// `zmpopGenericCommand`), replying its errors.
pub fn parse_mpop(ctx: &mut Ctx<'_>, numkeys_idx: usize) -> Option<MpopArgs> {
    let args = ctx.args;
    let msg = "ERR numkeys should be greater than 0";
    let numkeys = long_arg_msg(ctx, numkeys_idx, msg)?;
    if numkeys < 1 {
        ctx.out.error(msg);
        return None;
    }
    let where_idx = (numkeys_idx as i64)
        .saturating_add(numkeys)
        .saturating_add(1);
    if where_idx >= args.len() as i64 {
        ctx.out.error(err::SYNTAX);
        return None;
    }
    let where_idx = where_idx as usize;
    let max = match ctx.opt(where_idx).as_str() {
        "min" => false,
        "max" => true,
        _ => {
            ctx.out.error(err::SYNTAX);
            return None;
        }
    };
    let mut count = -1;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count == -1 && ctx.opt(j) == "count" && more > 0 {
            let msg = "ERR count should be greater than 0";
            let c = long_arg_msg(ctx, j + 1, msg)?;
            if c < 1 {
                ctx.out.error(msg);
                return None;
            }
            count = c;
            j += 2;
        } else {
            ctx.out.error(err::SYNTAX);
            return None;
        }
    }
    Some(MpopArgs {
        keys: numkeys_idx + 1..where_idx,
        max,
        count: if count == -1 { 1 } else { count },
    })
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`
fn zmpop(ctx: &mut Ctx<'_>) {
    let Some(a) = parse_mpop(ctx, 1) else { return };
    let args = ctx.args;
    let shape = PopShape {
        emit_key: true,
        nested: true,
        rewrite: Some(Some(a.count)),
    };
    if pop_first(ctx, &args[a.keys], a.max, Some(a.count), shape) == Popped::Empty {
        ctx.out.null_array();
    }
}

// ------------------------------------------------------ blocking pops

/// Whether a BZPOP* command pops the highest scores.
fn bzpop_max(ctx: &Ctx<'_>) -> bool {
    ctx.args[0].eq_ignore_ascii_case(b"bzpopmax")
}

const BZPOP_SHAPE: PopShape = PopShape {
    emit_key: true,
    nested: false,
    rewrite: Some(None),
};

fn serve_bzpop(ctx: &mut Ctx<'_>, key: &[u8]) -> bool {
    let max = bzpop_max(ctx);
    let key = Bytes::copy_from_slice(key);
    pop_first(ctx, &[key], max, None, BZPOP_SHAPE) == Popped::Replied
}

/// `BZPOPMIN key [key ...] timeout` and `BZPOPMAX …`: `[key, member,
/// score]` from the first non-empty sorted set, else waits for a ZADD.
fn bzpop(ctx: &mut Ctx<'_>) {
    let n = ctx.args.len();
    let Some(timeout) = ctx.timeout_arg(n - 1) else {
        return;
    };
    let max = bzpop_max(ctx);
    let args = ctx.args;
    if pop_first(ctx, &args[1..n - 1], max, None, BZPOP_SHAPE) == Popped::Empty {
        ctx.block(
            args[1..n - 1].to_vec(),
            timeout,
            serve_bzpop,
            Out::null_array,
        );
    }
}

fn serve_bzmpop(ctx: &mut Ctx<'_>, _key: &[u8]) -> bool {
    // The arguments were valid when the client blocked.
    let parsed = ctx.quietly(|p| parse_mpop(p, 2));
    let Some(a) = parsed else { return false };
    let args = ctx.args;
    let shape = PopShape {
        emit_key: true,
        nested: true,
        rewrite: Some(Some(a.count)),
    };
    pop_first(ctx, &args[a.keys], a.max, Some(a.count), shape) == Popped::Replied
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`
fn bzmpop(ctx: &mut Ctx<'_>) {
    let Some(timeout) = ctx.timeout_arg(1) else {
        return;
    };
    let Some(a) = parse_mpop(ctx, 2) else { return };
    let args = ctx.args;
    let shape = PopShape {
        emit_key: true,
        nested: true,
        rewrite: Some(Some(a.count)),
    };
    if pop_first(ctx, &args[a.keys.clone()], a.max, Some(a.count), shape) == Popped::Empty {
        ctx.block(
            args[a.keys].to_vec(),
            timeout,
            serve_bzmpop,
            Out::null_array,
        );
    }
}

// ---------------------------------------------------------------- ZSCAN

/// Parses a SCAN cursor as Redis 7.0's `parseScanCursorOrReply` (strtoul
/// over the C string: optional sign, no leading blank, no trailing bytes).
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = c_str(arg);
    if s.is_empty() {
        return Some(0);
    }
    if c_space(s[0]) {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
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

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: the listpack encoding
/// comes back whole with cursor 0; the skiplist encoding is walked bucket
/// by bucket, up to COUNT*10 buckets while fewer than COUNT strings were
/// gathered (members and scores both count, as in Redis). MATCH filters
/// afterwards.
fn zscan(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let Some(cursor) = parse_cursor(&args[2]) else {
        return ctx.out.error("ERR invalid cursor");
    };
    read(ctx, &args[1], |ctx, z| {
        let Some(z) = z else {
            ctx.out.array(2);
            ctx.out.bulk(b"0");
            return ctx.out.array(0);
        };
        let mut count: i64 = 10;
        let mut pattern: Option<&[u8]> = None;
        let mut i = 3;
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
                _ => return ctx.out.error(err::SYNTAX),
            }
            i += 2;
        }
        let mut found: Vec<(&[u8], f64)> = Vec::new();
        let mut next = cursor;
        let want = usize::try_from(count).unwrap_or(usize::MAX);
        let mut budget = count.saturating_mul(10);
        loop {
            next = z.scan_step(next, |m, s| found.push((m, s)));
            budget -= 1;
            if next == 0 || budget <= 0 || found.len() * 2 >= want {
                break;
            }
        }
        if let Some(p) = pattern {
            found.retain(|(m, _)| glob::matches(p, m, false));
        }
        ctx.out.array(2);
        ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
        ctx.out.array(found.len() * 2);
        for (m, s) in found {
            ctx.out.bulk(m);
            ctx.out.bulk(crate::num::fmt_double(s).as_bytes());
        }
    });
}

// ---------------------------------------------------------------- table

const ONE: (i32, i32, i32) = (1, 1, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);

/// The family's table (arity, flags and key positions as Redis 7.0's
/// COMMAND INFO; the numkeys commands are MOVABLEKEYS, which also runs
/// them under the exclusive gate since first/last/step miss their keys).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, WRITE | DENYOOM | FAST, ONE, G, zadd),
    spec("zincrby", 4, WRITE | DENYOOM | FAST, ONE, G, zincrby),
    spec("zrem", -3, WRITE | FAST, ONE, G, zrem),
    spec("zcard", 2, READONLY | FAST, ONE, G, zcard),
    spec("zscore", 3, READONLY | FAST, ONE, G, zscore),
    spec("zmscore", -3, READONLY | FAST, ONE, G, zmscore),
    spec("zrank", 3, READONLY | FAST, ONE, G, zrank),
    spec("zrevrank", 3, READONLY | FAST, ONE, G, zrevrank),
    spec("zcount", 4, READONLY | FAST, ONE, G, zcount),
    spec("zlexcount", 4, READONLY | FAST, ONE, G, zlexcount),
    spec("zrange", -4, READONLY, ONE, G, zrange),
    spec("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), G, zrangestore),
    spec("zrevrange", -4, READONLY, ONE, G, zrevrange),
    spec("zrangebyscore", -4, READONLY, ONE, G, zrangebyscore),
    spec("zrevrangebyscore", -4, READONLY, ONE, G, zrevrangebyscore),
    spec("zrangebylex", -4, READONLY, ONE, G, zrangebylex),
    spec("zrevrangebylex", -4, READONLY, ONE, G, zrevrangebylex),
    spec("zremrangebyrank", 4, WRITE, ONE, G, zremrangebyrank),
    spec("zremrangebyscore", 4, WRITE, ONE, G, zremrangebyscore),
    spec("zremrangebylex", 4, WRITE, ONE, G, zremrangebylex),
    spec("zunion", -3, READONLY | MOVABLEKEYS, NONE, G, zunion),
    spec("zinter", -3, READONLY | MOVABLEKEYS, NONE, G, zinter),
    spec("zdiff", -3, READONLY | MOVABLEKEYS, NONE, G, zdiff),
    spec("zunionstore", -4, WRITE | DENYOOM | MOVABLEKEYS, ONE, G, zunionstore),
    spec("zinterstore", -4, WRITE | DENYOOM | MOVABLEKEYS, ONE, G, zinterstore),
    spec("zdiffstore", -4, WRITE | DENYOOM | MOVABLEKEYS, ONE, G, zdiffstore),
    spec("zintercard", -3, READONLY | MOVABLEKEYS, NONE, G, zintercard),
    spec("zrandmember", -2, READONLY, ONE, G, zrandmember),
    spec("zpopmin", -2, WRITE | FAST, ONE, G, zpopmin),
    spec("zpopmax", -2, WRITE | FAST, ONE, G, zpopmax),
    spec("zmpop", -4, WRITE | MOVABLEKEYS, NONE, G, zmpop),
    // Clients only block under the exclusive gate (see `blocking`).
    spec("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST | EXCLUSIVE, (1, -2, 1), G, bzpop),
    spec("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST | EXCLUSIVE, (1, -2, 1), G, bzpop),
    spec("bzmpop", -5, WRITE | BLOCKING | MOVABLEKEYS, NONE, G, bzmpop),
    spec("zscan", -3, READONLY, ONE, G, zscan),
];

#[cfg(test)]
mod tests {
    //! Expected replies were taken from redis-server 7.0.15.

    use super::{parse_range_item, parse_score, strtod};
    use crate::state::changes_on_this_thread;
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

    #[test]
    fn scores_parse_like_string2d() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0x1p-3"), Some(0.125));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"5."), Some(5.0));
        assert!(parse_score(b"1e-310").is_some_and(|v| v > 0.0));
        for bad in [
            &b"1e400"[..],
            b"1e-400",
            b" 1",
            b"1 ",
            b"",
            b"nan",
            b"1e",
            b"0x",
            b"--1",
            b"1\x002",
        ] {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(strtod(b"  12abc"), (12.0, 4, false));
        assert_eq!(strtod(b"abc").1, 0);
    }

    #[test]
    fn range_items_parse_like_zslparserange() {
        assert_eq!(parse_range_item(b"(1.5"), Some((1.5, true)));
        assert_eq!(parse_range_item(b" 2"), Some((2.0, false)));
        assert_eq!(parse_range_item(b""), Some((0.0, false)));
        assert_eq!(parse_range_item(b"("), Some((0.0, true)));
        assert_eq!(parse_range_item(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_range_item(b"3\x00junk"), Some((3.0, false)));
        assert_eq!(parse_range_item(b"(nan"), None);
        assert_eq!(parse_range_item(b"x"), None);
    }

    #[test]
    fn zadd_options_and_errors() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["ZADD", "z", "1", "a", "2", "b"]), int(2));
        assert_eq!(k.run(&["ZADD", "z", "CH", "5", "a", "3", "c"]), int(2));
        assert_eq!(k.run(&["ZADD", "z", "GT", "CH", "1", "a"]), int(0));
        assert_eq!(k.run(&["ZADD", "z", "INCR", "2", "a"]), "$1\r\n7\r\n");
        assert_eq!(k.run(&["ZADD", "z", "NX", "INCR", "2", "a"]), "$-1\r\n");
        assert_eq!(
            k.run(&["ZADD", "z", "NX", "XX", "1", "a"]),
            err("ERR XX and NX options at the same time are not compatible")
        );
        assert_eq!(
            k.run(&["ZADD", "z", "GT", "LT", "1", "a"]),
            err("ERR GT, LT, and/or NX options at the same time are not compatible")
        );
        assert_eq!(
            k.run(&["ZADD", "z", "INCR", "1", "a", "2", "b"]),
            err("ERR INCR option supports a single increment-element pair")
        );
        assert_eq!(
            k.run(&["ZADD", "z", "x", "a"]),
            err("ERR value is not a valid float")
        );
        assert_eq!(
            k.run(&["ZADD", "z", "1", "a", "2"]),
            err("ERR syntax error")
        );
        assert_eq!(k.run(&["ZADD", "n", "inf", "a"]), int(1));
        assert_eq!(
            k.run(&["ZINCRBY", "n", "-inf", "a"]),
            err("ERR resulting score is not a number (NaN)")
        );
        assert_eq!(k.run(&["ZADD", "none", "XX", "1", "a"]), int(0));
        assert_eq!(k.run(&["EXISTS", "none"]), int(0));
        k.run(&["SET", "s", "v"]);
        assert_eq!(
            k.run(&["ZADD", "s", "1", "a"]),
            err("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
    }

    #[test]
    fn no_op_writes_change_nothing() {
        let mut k = Kit::new();
        k.run(&["ZADD", "z", "1", "a", "2", "b"]);
        for cmd in [
            &["ZADD", "z", "NX", "5", "a"][..],
            &["ZADD", "z", "1", "a"],
            &["ZADD", "z", "XX", "1", "zz"],
            &["ZADD", "z", "GT", "0", "a"],
            &["ZREM", "z", "nosuch"],
            &["ZREMRANGEBYSCORE", "z", "10", "20"],
            &["ZREMRANGEBYRANK", "z", "5", "6"],
            &["ZREMRANGEBYLEX", "z", "(x", "+"],
            &["ZPOPMIN", "z", "0"],
            &["ZUNIONSTORE", "none", "1", "missing"],
        ] {
            let before = changes_on_this_thread();
            k.run(cmd);
            assert_eq!(changes_on_this_thread(), before, "{cmd:?}");
        }
        let before = changes_on_this_thread();
        k.run(&["ZADD", "z", "3", "a"]);
        assert_ne!(changes_on_this_thread(), before);
    }

    #[test]
    fn ranges_on_a_large_set() {
        let mut k = Kit::new();
        for i in 0..1000 {
            let s = i.to_string();
            let m = format!("m{i:04}");
            k.run(&["ZADD", "big", &s, &m]);
        }
        assert_eq!(k.run(&["OBJECT", "ENCODING", "big"]), "$8\r\nskiplist\r\n");
        assert_eq!(
            k.run(&["ZRANGE", "big", "500", "501"]),
            bulks(&["m0500", "m0501"])
        );
        assert_eq!(k.run(&["ZREVRANGE", "big", "0", "0"]), bulks(&["m0999"]));
        assert_eq!(k.run(&["ZRANK", "big", "m0700"]), int(700));
        assert_eq!(k.run(&["ZREVRANK", "big", "m0700"]), int(299));
        assert_eq!(k.run(&["ZCOUNT", "big", "(10", "20"]), int(10));
        assert_eq!(
            k.run(&["ZRANGEBYSCORE", "big", "-inf", "+inf", "LIMIT", "998", "5"]),
            bulks(&["m0998", "m0999"])
        );
        assert_eq!(
            k.run(&[
                "ZREVRANGEBYSCORE",
                "big",
                "+inf",
                "-inf",
                "LIMIT",
                "998",
                "5"
            ]),
            bulks(&["m0001", "m0000"])
        );
        assert_eq!(k.run(&["ZREMRANGEBYRANK", "big", "0", "899"]), int(900));
        assert_eq!(k.run(&["ZCARD", "big"]), int(100));
        // Never converted back.
        assert_eq!(k.run(&["OBJECT", "ENCODING", "big"]), "$8\r\nskiplist\r\n");
        assert_eq!(k.run(&["ZRANGESTORE", "copy", "big", "0", "-1"]), int(100));
        assert_eq!(k.run(&["OBJECT", "ENCODING", "copy"]), "$8\r\nlistpack\r\n");
    }

    #[test]
    fn zscan_covers_a_growing_skiplist() {
        let mut k = Kit::new();
        for i in 0..300 {
            k.run(&["ZADD", "z", &i.to_string(), &format!("k{i}")]);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let mut extra = 0;
        loop {
            let reply = k.run(&["ZSCAN", "z", &cursor, "COUNT", "20"]);
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_string();
            // Members are every other bulk after the inner array header.
            let body = &lines[4..];
            for pair in body.chunks(4) {
                if pair.len() >= 2 {
                    seen.insert(pair[1].to_string());
                }
            }
            for _ in 0..10 {
                k.run(&["ZADD", "z", "0", &format!("x{extra}")]);
                extra += 1;
            }
            if cursor == "0" {
                break;
            }
        }
        for i in 0..300 {
            assert!(seen.contains(&format!("k{i}")), "missing k{i}");
        }
    }

    #[test]
    fn pops_and_mpop() {
        let mut k = Kit::new();
        k.run(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
        assert_eq!(k.run(&["ZPOPMIN", "z"]), bulks(&["a", "1"]));
        assert_eq!(k.run(&["ZPOPMAX", "z", "5"]), bulks(&["c", "3", "b", "2"]));
        assert_eq!(k.run(&["EXISTS", "z"]), int(0));
        assert_eq!(k.run(&["ZPOPMIN", "z"]), "*0\r\n");
        assert_eq!(k.run(&["ZMPOP", "1", "z", "MIN"]), "*-1\r\n");
        k.run(&["ZADD", "z", "1", "a"]);
        assert_eq!(
            k.run(&["ZMPOP", "2", "nokey", "z", "MAX", "COUNT", "3"]),
            "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        assert_eq!(
            k.run(&["ZMPOP", "0", "z", "MIN"]),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            k.run(&["ZPOPMIN", "z", "-1"]),
            err("ERR value is out of range, must be positive")
        );
    }
}
