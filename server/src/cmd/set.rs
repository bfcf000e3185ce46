//! Set commands: SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SPOP
//! SRANDMEMBER SMOVE SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF
//! SDIFFSTORE SSCAN, with Redis 7.0's replies, orders and error texts.
//!
//! Multi-key commands run under the exclusive gate (dispatch takes it for
//! any command naming two keys; SINTERCARD is flagged), so they read their
//! keys one shard lock at a time and still see one consistent state.

use bytes::Bytes;
use rampart_keyspace::set::{Member, Set};
use rampart_keyspace::{glob, Db, EncodingLimits, Slot, Value};

use super::flags::*;
use super::hash::{
    emit_random, empty_scan, parse_cursor, pick_distinct, random_count, scan_options,
};
use super::notify_write;
use super::{err, spec, CommandSpec, Ctx};
use crate::pubsub::class;
use crate::resp::Out;

fn db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    ctx.srv.keyspace.db(ctx.client.db)
}

/// What a key holds, for the set family.
enum Found<'v> {
    Missing,
    Wrong,
    Set(&'v Set),
}

fn found(v: Option<&Value>) -> Found<'_> {
    match v {
        None => Found::Missing,
        Some(Value::Set(s)) => Found::Set(s),
        Some(_) => Found::Wrong,
    }
}

/// The set in `slot`, for modification (marks the key modified).
fn set_mut<'s>(slot: &'s mut Slot<'_>) -> Option<&'s mut Set> {
    match slot.value_mut() {
        Some(Value::Set(s)) => Some(s),
        _ => None,
    }
}

fn bulk_member(o: &mut Out, m: Member<'_>) {
    match m {
        Member::Int(i) => o.bulk_int(i),
        Member::Bytes(b) => o.bulk(b),
    }
}

/// Reads the set at `key` and runs `f` on it (`None` when missing);
/// replies WRONGTYPE for another type. Counts a keyspace hit or miss.
fn read_set(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(&mut Ctx<'_>, Option<&Set>)) {
    let db = db(ctx);
    db.get(key, ctx.now, |n| {
        ctx.looked_up(key, n.is_some());
        match found(n.map(|n| &n.value)) {
            Found::Wrong => ctx.out.error(err::WRONGTYPE),
            Found::Missing => f(ctx, None),
            Found::Set(s) => f(ctx, Some(s)),
        }
    })
}

/// `SADD key member [member ...]`: replies the number of new members.
fn sadd(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let limits = ctx.limits();
    let db = db(ctx);
    let added = db.write(&args[1], ctx.now, |slot| match found(slot.value()) {
        Found::Wrong => {
            ctx.out.error(err::WRONGTYPE);
            0
        }
        // Nothing new is no write (no WATCH trigger, no propagation).
        Found::Set(s) if args[2..].iter().all(|m| s.contains(m)) => {
            ctx.out.int(0);
            0
        }
        f => {
            if matches!(f, Found::Missing) {
                slot.insert(Value::Set(Box::default()), None);
            }
            let mut added = 0;
            if let Some(s) = set_mut(slot) {
                added = args[2..].iter().filter(|m| s.insert(m, &limits)).count();
                s.shrink();
            }
            ctx.out.int(added as i64);
            added
        }
    });
    if added > 0 {
        notify_write(ctx, class::SET, "sadd", &args[1], false);
    }
}

/// `SREM key member [member ...]`: replies how many were there; deletes
/// the key when the set is left empty.
fn srem(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let db = db(ctx);
    // Whether the key went, when some member did.
    let removed = db.write(&args[1], ctx.now, |slot| match found(slot.value()) {
        Found::Wrong => {
            ctx.out.error(err::WRONGTYPE);
            None
        }
        Found::Missing => {
            ctx.out.int(0);
            None
        }
        Found::Set(s) if !args[2..].iter().any(|m| s.contains(m)) => {
            ctx.out.int(0);
            None
        }
        Found::Set(_) => {
            let mut removed = 0;
            let mut emptied = false;
            if let Some(s) = set_mut(slot) {
                removed = args[2..].iter().filter(|m| s.remove(m)).count();
                s.shrink();
                emptied = s.is_empty();
                if emptied {
                    slot.remove();
                }
            }
            ctx.out.int(removed as i64);
            Some(emptied)
        }
    });
    if let Some(emptied) = removed {
        notify_write(ctx, class::SET, "srem", &args[1], emptied);
    }
}

/// `SCARD key`
fn scard(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_set(ctx, &args[1], |ctx, s| {
        ctx.out.int(s.map_or(0, Set::len) as i64)
    });
}

/// `SISMEMBER key member`
fn sismember(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_set(ctx, &args[1], |ctx, s| {
        ctx.out.int(s.is_some_and(|s| s.contains(&args[2])) as i64)
    });
}

/// `SMISMEMBER key member [member ...]`: 1 or 0 per member.
fn smismember(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_set(ctx, &args[1], |ctx, s| {
        ctx.out.array(args.len() - 2);
        for m in &args[2..] {
            ctx.out.int(s.is_some_and(|s| s.contains(m)) as i64);
        }
    });
}

/// `SMEMBERS key`: a set in RESP3, ascending for an intset.
fn smembers(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_set(ctx, &args[1], |ctx, s| {
        let o = &mut *ctx.out;
        o.set_len(s.map_or(0, Set::len));
        for m in s.into_iter().flat_map(Set::iter) {
            bulk_member(o, m);
        }
    });
}

/// Redis's `getPositiveLongFromObjectOrReply` for SPOP's count.
fn positive_count(ctx: &mut Ctx<'_>, i: usize) -> Option<u64> {
    match crate::num::parse_i64(&ctx.args[i]) {
        Some(n) if n >= 0 => Some(n as u64),
        // Redis gives this one text for both a bad number and a negative.
        _ => {
            ctx.out.error("ERR value is out of range, must be positive");
            None
        }
    }
}

/// Replicas receive SPOP's effect: SREMs of what was popped, in batches so
/// no single command grows without bound.
fn propagate_srem(ctx: &mut Ctx<'_>, key: &[u8], members: &[Vec<u8>]) {
    for chunk in members.chunks(1024) {
        let mut argv: Vec<&[u8]> = Vec::with_capacity(chunk.len() + 2);
        argv.push(b"SREM");
        argv.push(key);
        argv.extend(chunk.iter().map(Vec::as_slice));
        ctx.propagate(&argv);
    }
}

/// `SPOP key [count]`: removes and replies random members; replicated as
/// SREM of the members popped (DEL when the whole set goes).
fn spop(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if args.len() > 3 {
        return ctx.out.error(err::SYNTAX);
    }
    let count = if args.len() == 3 {
        match positive_count(ctx, 2) {
            Some(c) => Some(c),
            None => return,
        }
    } else {
        None
    };
    let limits = ctx.limits();
    let db = db(ctx);
    let key = &args[1];
    // Whether the key went, when something was popped.
    let popped = db.write(key, ctx.now, |slot| {
        let size = match found(slot.value()) {
            Found::Wrong => {
                ctx.out.error(err::WRONGTYPE);
                return None;
            }
            Found::Missing => {
                match count {
                    Some(_) => ctx.out.set_len(0),
                    None => ctx.out.null(),
                }
                return None;
            }
            Found::Set(s) => s.len(),
        };
        let mut rng = rand::rng();
        let Some(count) = count else {
            let s = set_mut(slot)?;
            let popped = s.pop_random(&mut rng);
            s.shrink();
            let emptied = s.is_empty();
            if emptied {
                slot.remove();
            }
            return match popped {
                Some(m) => {
                    ctx.out.bulk(&m);
                    propagate_srem(ctx, key, &[m]);
                    Some(emptied)
                }
                None => {
                    ctx.out.null();
                    None
                }
            };
        };
        if count == 0 {
            ctx.out.set_len(0);
            return None;
        }
        if count >= size as u64 {
            // The whole set, in the order of a set rebuilt from it (what
            // Redis's SUNION of the one key replies: ascending when the
            // members fit an intset).
            let node = slot.remove()?;
            if let Value::Set(s) = &node.value {
                let rebuilt = if s.is_intset() {
                    None
                } else {
                    Some(build(s.iter(), &limits))
                };
                let s = rebuilt.as_ref().unwrap_or(s);
                ctx.out.set_len(s.len());
                for m in s.iter() {
                    bulk_member(ctx.out, m);
                }
            }
            ctx.propagate(&[b"DEL", key]);
            return Some(true);
        }
        let s = set_mut(slot)?;
        let count = count as usize;
        let picked: Vec<Vec<u8>> =
            pick_distinct(size, count, || s.iter().collect(), || s.random(&mut rng))
                .into_iter()
                .map(|m| m.to_vec())
                .collect();
        for m in &picked {
            s.remove(m);
        }
        s.shrink();
        ctx.out.set_len(picked.len());
        for m in &picked {
            ctx.out.bulk(m);
        }
        propagate_srem(ctx, key, &picked);
        Some(false)
    });
    if let Some(emptied) = popped {
        notify_write(ctx, class::SET, "spop", key, emptied);
    }
}

/// `SRANDMEMBER key [count]`: a negative count allows repeats; the count
/// is checked before the key is looked up, as in Redis.
fn srandmember(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if args.len() > 3 {
        return ctx.out.error(err::SYNTAX);
    }
    if args.len() == 2 {
        return read_set(ctx, &args[1], |ctx, s| {
            match s.and_then(|s| s.random(&mut rand::rng())) {
                Some(m) => bulk_member(ctx.out, m),
                None => ctx.out.null(),
            }
        });
    }
    let Some(l) = random_count(ctx, 2) else {
        return;
    };
    read_set(ctx, &args[1], |ctx, s| {
        let Some(s) = s else {
            return ctx.out.array(0);
        };
        let count = l.unsigned_abs();
        if count == 0 {
            return ctx.out.array(0);
        }
        let o = &mut *ctx.out;
        let size = s.len();
        let mut rng = rand::rng();
        if l < 0 || count == 1 {
            o.array(count as usize);
            return emit_random(
                count,
                size,
                s.is_intset(),
                || s.iter().collect(),
                || s.random(&mut rng),
                |m| bulk_member(o, m),
            );
        }
        if count >= size as u64 {
            // The whole set, in its own order.
            o.array(size);
            return s.iter().for_each(|m| bulk_member(o, m));
        }
        let picked = pick_distinct(
            size,
            count as usize,
            || s.iter().collect(),
            || s.random(&mut rng),
        );
        o.array(picked.len());
        picked.into_iter().for_each(|m| bulk_member(o, m));
    });
}

/// `SMOVE source destination member`
fn smove(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let limits = ctx.limits();
    let db = db(ctx);
    let now = ctx.now;
    // Source checks first: a missing source is 0 even when the destination
    // has the wrong type.
    let src_state = db.get(src, now, |n| match found(n.map(|n| &n.value)) {
        Found::Missing => None,
        Found::Wrong => Some(None),
        Found::Set(s) => Some(Some(s.contains(member))),
    });
    let has = match src_state {
        None => return ctx.out.int(0),
        Some(None) => return ctx.out.error(err::WRONGTYPE),
        Some(Some(has)) => has,
    };
    if db.get(dst, now, |n| {
        matches!(found(n.map(|n| &n.value)), Found::Wrong)
    }) {
        return ctx.out.error(err::WRONGTYPE);
    }
    if src == dst {
        return ctx.out.int(has as i64);
    }
    if !has {
        return ctx.out.int(0);
    }
    let src_emptied = db.write(src, now, |slot| {
        let s = set_mut(slot)?;
        s.remove(member);
        s.shrink();
        let emptied = s.is_empty();
        if emptied {
            slot.remove();
        }
        Some(emptied)
    });
    let added = db.write(dst, now, |slot| {
        match found(slot.value()) {
            Found::Set(s) if s.contains(member) => return false,
            Found::Missing => slot.insert(Value::Set(Box::default()), None),
            _ => {}
        }
        if let Some(s) = set_mut(slot) {
            s.insert(member, &limits);
            s.shrink();
        }
        true
    });
    ctx.out.int(1);
    // Redis's order: the source's srem (and del), then the sadd only when
    // the destination did not have the member already.
    if let Some(emptied) = src_emptied {
        notify_write(ctx, class::SET, "srem", src, emptied);
    }
    if added {
        notify_write(ctx, class::SET, "sadd", dst, false);
    }
}

/// A set built by adding `members` one by one to an empty set, as Redis
/// builds the results of SINTER/SUNION/SDIFF (so an all-integer result is
/// an intset, whatever the sources' encodings).
fn build<'a>(members: impl Iterator<Item = Member<'a>>, limits: &EncodingLimits) -> Set {
    let mut s = Set::default();
    for m in members {
        s.insert_member(m, limits);
    }
    s.shrink();
    s
}

/// What the keys of a multi-set command hold: `Err` after replying
/// WRONGTYPE (Redis checks every key before computing), else the size of
/// each set, `None` for a missing key. Each lookup counts a hit or miss.
fn sizes(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Option<usize>>, ()> {
    let db = db(ctx);
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let r = db.get(k, ctx.now, |n| {
            ctx.looked_up(k, n.is_some());
            match found(n.map(|n| &n.value)) {
                Found::Missing => Ok(None),
                Found::Wrong => Err(()),
                Found::Set(s) => Ok(Some(s.len())),
            }
        });
        match r {
            Ok(s) => out.push(s),
            Err(()) => {
                ctx.out.error(err::WRONGTYPE);
                return Err(());
            }
        }
    }
    Ok(out)
}

/// The members of the set at `key` (empty when it's gone), in its order.
fn members_of(db: &Db, key: &[u8], now: u64) -> Vec<Vec<u8>> {
    db.peek(key, now, |n| match n.map(|n| &n.value) {
        Some(Value::Set(s)) => s.iter().map(|m| m.to_vec()).collect(),
        _ => Vec::new(),
    })
}

/// Keeps the `cand`idates that are members of the set at `key`.
fn retain_in(db: &Db, key: &[u8], now: u64, cand: &mut Vec<Vec<u8>>) {
    db.peek(key, now, |n| match n.map(|n| &n.value) {
        Some(Value::Set(s)) => cand.retain(|m| s.contains(m)),
        _ => cand.clear(),
    })
}

/// The intersection of the sets at `keys`, in the order of the smallest
/// set (Redis walks the smallest and probes the others), or `Err` after
/// replying WRONGTYPE. A missing key makes it empty.
fn intersect(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Vec<u8>>, ()> {
    let sizes = sizes(ctx, keys)?;
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(keys.len());
    for (i, s) in sizes.iter().enumerate() {
        match s {
            None => return Ok(Vec::new()),
            Some(n) => order.push((*n, i)),
        }
    }
    order.sort_by_key(|&(n, _)| n);
    let db = db(ctx);
    let mut cand = members_of(db, &keys[order[0].1], ctx.now);
    for &(_, i) in &order[1..] {
        if cand.is_empty() {
            break;
        }
        retain_in(db, &keys[i], ctx.now, &mut cand);
    }
    Ok(cand)
}

/// Stores `result` at `dst` (replacing whatever was there, TTL included)
/// or deletes `dst` when it is empty; replies the result's size and
/// announces `event` (or `del` when an existing `dst` went).
fn store(ctx: &mut Ctx<'_>, dst: &[u8], result: Set, event: &str) {
    let db = db(ctx);
    let n = result.len();
    let removed = if n == 0 {
        db.delete(dst, ctx.now)
    } else {
        db.write(dst, ctx.now, |slot| {
            slot.insert(Value::Set(Box::new(result)), None)
        });
        false
    };
    ctx.out.int(n as i64);
    if n > 0 {
        notify_write(ctx, class::SET, event, dst, false);
    } else if removed {
        notify_write(ctx, class::GENERIC, "del", dst, false);
    }
}

/// Replies `s` as a set.
fn reply_set(ctx: &mut Ctx<'_>, s: &Set) {
    let o = &mut *ctx.out;
    o.set_len(s.len());
    for m in s.iter() {
        bulk_member(o, m);
    }
}

/// `SINTER key [key ...]`
fn sinter(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let Ok(result) = intersect(ctx, &args[1..]) else {
        return;
    };
    let o = &mut *ctx.out;
    o.set_len(result.len());
    for m in &result {
        o.bulk(m);
    }
}

/// `SINTERSTORE destination key [key ...]`
fn sinterstore(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let Ok(result) = intersect(ctx, &args[2..]) else {
        return;
    };
    let limits = ctx.limits();
    let set = build(result.iter().map(|m| Member::Bytes(m)), &limits);
    store(ctx, &args[1], set, "sinterstore");
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: the size of the
/// intersection, counting stops at LIMIT (0: no limit).
fn sintercard(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let numkeys = match crate::num::parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return ctx.out.error("ERR numkeys should be greater than 0"),
    };
    if numkeys > (args.len() - 2) as u64 {
        return ctx
            .out
            .error("ERR Number of keys can't be greater than number of args");
    }
    let end = 2 + numkeys as usize;
    let mut limit = 0u64;
    let mut j = end;
    while j < args.len() {
        if ctx.opt(j) == "limit" && j + 1 < args.len() {
            j += 1;
            match crate::num::parse_i64(&args[j]) {
                Some(n) if n >= 0 => limit = n as u64,
                _ => return ctx.out.error("ERR LIMIT can't be negative"),
            }
        } else {
            return ctx.out.error(err::SYNTAX);
        }
        j += 1;
    }
    let Ok(result) = intersect(ctx, &args[2..end]) else {
        return;
    };
    let n = result.len() as u64;
    ctx.out.int(if limit > 0 { n.min(limit) } else { n } as i64);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Diff,
}

/// The union or difference of the sets at `keys`, built as Redis's
/// `sunionDiffGenericCommand` builds it (so the result's encoding, and
/// with it the reply order, match), or `Err` after replying WRONGTYPE.
fn union_diff(ctx: &mut Ctx<'_>, keys: &[Bytes], op: Op) -> Result<Set, ()> {
    let sizes = sizes(ctx, keys)?;
    let limits = ctx.limits();
    let db = db(ctx);
    let now = ctx.now;
    let mut result = Set::default();
    match op {
        Op::Union => {
            for (k, s) in keys.iter().zip(&sizes) {
                if s.is_some() {
                    db.peek(k, now, |n| {
                        if let Some(Value::Set(s)) = n.map(|n| &n.value) {
                            for m in s.iter() {
                                result.insert_member(m, &limits);
                            }
                        }
                    });
                }
            }
        }
        Op::Diff => {
            let Some(first) = sizes[0] else {
                return Ok(result);
            };
            // Redis picks between probing every member of the first set
            // (algorithm 1) and adding it whole then removing the others
            // (algorithm 2) by estimated work; the choice shows in the
            // result's encoding, so it is made the same way here.
            let present: Vec<usize> = sizes.iter().flatten().copied().collect();
            let one = (first * present.len()) / 2;
            let two: usize = present.iter().sum();
            let mut cand = members_of(db, &keys[0], now);
            if one <= two {
                let mut rest: Vec<(usize, usize)> = sizes[1..]
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.map(|n| (n, i + 1)))
                    .collect();
                rest.sort_by_key(|e| std::cmp::Reverse(e.0));
                for (_, i) in rest {
                    if cand.is_empty() {
                        break;
                    }
                    if keys[i] == keys[0] {
                        cand.clear();
                        break;
                    }
                    db.peek(&keys[i], now, |n| {
                        if let Some(Value::Set(s)) = n.map(|n| &n.value) {
                            cand.retain(|m| !s.contains(m));
                        }
                    });
                }
                for m in &cand {
                    result.insert(m, &limits);
                }
            } else {
                for m in &cand {
                    result.insert(m, &limits);
                }
                for (k, s) in keys[1..].iter().zip(&sizes[1..]) {
                    if s.is_none() || result.is_empty() {
                        continue;
                    }
                    db.peek(k, now, |n| {
                        if let Some(Value::Set(s)) = n.map(|n| &n.value) {
                            for m in s.iter() {
                                result.remove(m.bytes(&mut itoa::Buffer::new()));
                            }
                        }
                    });
                }
            }
        }
    }
    result.shrink();
    Ok(result)
}

/// `SUNION key [key ...]`
fn sunion(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if let Ok(s) = union_diff(ctx, &args[1..], Op::Union) {
        reply_set(ctx, &s);
    }
}

/// `SUNIONSTORE destination key [key ...]`
fn sunionstore(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if let Ok(s) = union_diff(ctx, &args[2..], Op::Union) {
        store(ctx, &args[1], s, "sunionstore");
    }
}

/// `SDIFF key [key ...]`
fn sdiff(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if let Ok(s) = union_diff(ctx, &args[1..], Op::Diff) {
        reply_set(ctx, &s);
    }
}

/// `SDIFFSTORE destination key [key ...]`
fn sdiffstore(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if let Ok(s) = union_diff(ctx, &args[2..], Op::Diff) {
        store(ctx, &args[1], s, "sdiffstore");
    }
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`: an intset comes back
/// whole (ascending) with cursor 0; a table about COUNT members per call.
fn sscan(ctx: &mut Ctx<'_>) {
    let Some(cursor) = parse_cursor(&ctx.args[2]) else {
        return ctx.out.error("ERR invalid cursor");
    };
    let args = ctx.args;
    read_set(ctx, &args[1], |ctx, s| {
        let Some(s) = s else {
            return empty_scan(ctx);
        };
        let Some((count, pattern)) = scan_options(ctx, 3) else {
            return;
        };
        let mut found: Vec<Member<'_>> = Vec::new();
        let mut buf = itoa::Buffer::new();
        let next = s.scan(cursor, count, |m| {
            if pattern
                .as_ref()
                .is_none_or(|p| glob::matches(p, m.bytes(&mut buf), false))
            {
                found.push(m);
            }
        });
        let o = &mut *ctx.out;
        o.array(2);
        o.bulk(itoa::Buffer::new().format(next).as_bytes());
        o.array(found.len());
        for m in found {
            bulk_member(o, m);
        }
    });
}

const S: &str = "set";

/// The set family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), S, sadd),
    spec("srem", -3, WRITE | FAST, (1, 1, 1), S, srem),
    spec("scard", 2, READONLY | FAST, (1, 1, 1), S, scard),
    spec("sismember", 3, READONLY | FAST, (1, 1, 1), S, sismember),
    spec("smismember", -3, READONLY | FAST, (1, 1, 1), S, smismember),
    spec("smembers", 2, READONLY, (1, 1, 1), S, smembers),
    spec("spop", -2, WRITE | FAST, (1, 1, 1), S, spop),
    spec("srandmember", -2, READONLY, (1, 1, 1), S, srandmember),
    spec("smove", 4, WRITE | FAST, (1, 2, 1), S, smove),
    spec("sinter", -2, READONLY, (1, -1, 1), S, sinter),
    // Keys follow numkeys, so the key spec can't name them: hold the gate
    // exclusive explicitly.
    spec(
        "sintercard",
        -3,
        READONLY | MOVABLEKEYS,
        (0, 0, 0),
        S,
        sintercard,
    ),
    spec(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        S,
        sinterstore,
    ),
    spec("sunion", -2, READONLY, (1, -1, 1), S, sunion),
    spec(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        S,
        sunionstore,
    ),
    spec("sdiff", -2, READONLY, (1, -1, 1), S, sdiff),
    spec("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), S, sdiffstore),
    spec("sscan", -3, READONLY, (1, 1, 1), S, sscan),
];

#[cfg(test)]
mod tests {
    use crate::testkit::Kit;

    fn err(s: &str) -> String {
        format!("-{s}\r\n")
    }

    fn members(reply: &str) -> Vec<String> {
        let mut v: Vec<String> = reply
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.starts_with('$') && !l.is_empty())
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn add_remove_and_order() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["SADD", "s", "3", "1", "2", "1"]), ":3\r\n");
        assert_eq!(
            k.run(&["SMEMBERS", "s"]),
            "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
        );
        assert_eq!(k.run(&["OBJECT", "ENCODING", "s"]), "$6\r\nintset\r\n");
        assert_eq!(k.run(&["SADD", "s", "x"]), ":1\r\n");
        assert_eq!(k.run(&["OBJECT", "ENCODING", "s"]), "$9\r\nhashtable\r\n");
        assert_eq!(k.run(&["SREM", "s", "x", "1", "2", "3"]), ":4\r\n");
        assert_eq!(k.run(&["EXISTS", "s"]), ":0\r\n");
        assert_eq!(
            k.run(&["SMISMEMBER", "nokey", "a", "b"]),
            "*2\r\n:0\r\n:0\r\n"
        );
    }

    #[test]
    fn pop_and_random() {
        let mut k = Kit::new();
        for i in 0..300 {
            k.run(&["SADD", "s", &format!("m{i}")]);
        }
        let r = k.run(&["SPOP", "s", "100"]);
        assert!(r.starts_with("*100\r\n"));
        let popped = members(&r);
        popped.windows(2).for_each(|w| assert_ne!(w[0], w[1]));
        assert_eq!(k.run(&["SCARD", "s"]), ":200\r\n");
        for m in &popped {
            assert_eq!(k.run(&["SISMEMBER", "s", m]), ":0\r\n");
        }
        let r = k.run(&["SRANDMEMBER", "s", "150"]);
        let picked = members(&r);
        assert_eq!(picked.len(), 150);
        picked.windows(2).for_each(|w| assert_ne!(w[0], w[1]));
        assert!(k
            .run(&["SRANDMEMBER", "s", "-1000"])
            .starts_with("*1000\r\n"));
        assert_eq!(
            k.run(&["SPOP", "s", "-1"]),
            err("ERR value is out of range, must be positive")
        );
        let r = k.run(&["SPOP", "s", "1000"]);
        assert_eq!(members(&r).len(), 200);
        assert_eq!(k.run(&["EXISTS", "s"]), ":0\r\n");
    }

    #[test]
    fn algebra() {
        let mut k = Kit::new();
        k.run(&["SADD", "a", "1", "2", "3", "4"]);
        k.run(&["SADD", "b", "3", "4", "5"]);
        assert_eq!(k.run(&["SINTER", "a", "b"]), "*2\r\n$1\r\n3\r\n$1\r\n4\r\n");
        assert_eq!(
            k.run(&["SINTERCARD", "2", "a", "b", "LIMIT", "1"]),
            ":1\r\n"
        );
        assert_eq!(
            k.run(&["SUNION", "a", "b"]),
            "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n"
        );
        assert_eq!(k.run(&["SDIFF", "a", "b"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
        assert_eq!(k.run(&["SDIFFSTORE", "d", "b", "a"]), ":1\r\n");
        assert_eq!(k.run(&["SMEMBERS", "d"]), "*1\r\n$1\r\n5\r\n");
        assert_eq!(k.run(&["SINTERSTORE", "d", "a", "nokey"]), ":0\r\n");
        assert_eq!(k.run(&["EXISTS", "d"]), ":0\r\n");
        k.run(&["SET", "str", "x"]);
        assert!(k.run(&["SINTER", "nokey", "str"]).starts_with("-WRONGTYPE"));
        assert_eq!(k.run(&["SMOVE", "nokey", "str", "1"]), ":0\r\n");
        assert_eq!(k.run(&["SMOVE", "a", "b", "1"]), ":1\r\n");
        assert_eq!(k.run(&["SISMEMBER", "b", "1"]), ":1\r\n");
        assert_eq!(
            k.run(&["SINTERCARD", "0", "a"]),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            k.run(&["SINTERCARD", "1", "a", "LIMIT", "-1"]),
            err("ERR LIMIT can't be negative")
        );
    }

    #[test]
    fn big_sets_scan_fully() {
        let mut k = Kit::new();
        for i in 0..3000 {
            k.run(&["SADD", "s", &format!("m{i}")]);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let mut extra = 0;
        loop {
            let r = k.run(&["SSCAN", "s", &cursor, "COUNT", "20"]);
            let mut lines = r.split("\r\n").skip(2);
            cursor = lines.next().unwrap_or_default().to_string();
            for m in lines
                .skip(1)
                .filter(|l| !l.starts_with('$') && !l.is_empty())
            {
                seen.insert(m.to_string());
            }
            // Grow the set while iterating.
            for _ in 0..10 {
                k.run(&["SADD", "s", &format!("x{extra}")]);
                extra += 1;
            }
            if cursor == "0" {
                break;
            }
        }
        for i in 0..3000 {
            assert!(seen.contains(&format!("m{i}")), "missing m{i}");
        }
    }
}
