//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HLEN HSTRLEN HEXISTS
//! HKEYS HVALS HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN, with Redis
//! 7.0's replies, orders and error texts.
//!
//! Also the helpers the set family shares: SCAN-family cursor and option
//! parsing, and random sampling that never builds more than the collection
//! itself.

use bytes::Bytes;
use rampart_keyspace::hash::Hash;
use rampart_keyspace::{glob, Db, Slot, Value};
use rand::Rng;

use super::flags::*;
use super::notify_write;
use super::{err, spec, CommandSpec, Ctx};
use crate::num::{parse_i64, LongDouble};
use crate::pubsub::class;
use crate::resp::Out;

fn db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    ctx.srv.keyspace.db(ctx.client.db)
}

/// What a key holds, for the hash family.
enum Found<'v> {
    Missing,
    Wrong,
    Hash(&'v Hash),
}

fn found(v: Option<&Value>) -> Found<'_> {
    match v {
        None => Found::Missing,
        Some(Value::Hash(h)) => Found::Hash(h),
        Some(_) => Found::Wrong,
    }
}

/// The hash in `slot`, for modification (marks the key modified).
fn hash_mut<'s>(slot: &'s mut Slot<'_>) -> Option<&'s mut Hash> {
    match slot.value_mut() {
        Some(Value::Hash(h)) => Some(h),
        _ => None,
    }
}

/// Reads the hash at `key` and runs `f` on it (`None` when missing);
/// replies WRONGTYPE for another type. Counts a keyspace hit or miss.
fn read_hash(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(&mut Ctx<'_>, Option<&Hash>)) {
    let db = db(ctx);
    db.get(key, ctx.now, |n| {
        ctx.looked_up(key, n.is_some());
        match found(n.map(|n| &n.value)) {
            Found::Wrong => ctx.out.error(err::WRONGTYPE),
            Found::Missing => f(ctx, None),
            Found::Hash(h) => f(ctx, Some(h)),
        }
    })
}

/// Runs `f` on the hash at `key`, creating an empty one when missing (as
/// Redis's `hashTypeLookupWriteOrCreate`); replies WRONGTYPE for another
/// type. `f` must write: the key is marked modified. A hash left empty is
/// deleted.
fn write_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Ctx<'_>, &mut Hash) -> R,
) -> Option<R> {
    let db = db(ctx);
    db.write(key, ctx.now, |slot| {
        match found(slot.value()) {
            Found::Wrong => {
                ctx.out.error(err::WRONGTYPE);
                return None;
            }
            Found::Missing => slot.insert(Value::Hash(Default::default()), None),
            Found::Hash(_) => {}
        }
        let h = hash_mut(slot)?;
        let r = f(ctx, h);
        if h.is_empty() {
            slot.remove();
        }
        Some(r)
    })
}

/// The shared body of HSET and HMSET: every length is checked against
/// `hash-max-listpack-value` before anything is written, as Redis does.
fn hset_generic(ctx: &mut Ctx<'_>, reply_ok: bool) {
    if !ctx.args.len().is_multiple_of(2) {
        return ctx.wrong_args();
    }
    let args = ctx.args;
    let limits = ctx.limits();
    let written = write_hash(ctx, &args[1], |ctx, h| {
        h.fit(args[2..].iter().map(Bytes::len), &limits);
        let created = args[2..]
            .chunks(2)
            .filter(|p| h.insert(&p[0], &p[1], &limits))
            .count();
        if reply_ok {
            ctx.out.ok();
        } else {
            ctx.out.int(created as i64);
        }
    });
    // Even when every field kept its value: Redis announces every HSET.
    if written.is_some() {
        notify_write(ctx, class::HASH, "hset", &args[1], false);
    }
}

/// `HSET key field value [field value ...]`: replies the number of new
/// fields.
fn hset(ctx: &mut Ctx<'_>) {
    hset_generic(ctx, false);
}

/// `HMSET key field value [field value ...]`: HSET replying OK.
fn hmset(ctx: &mut Ctx<'_>) {
    hset_generic(ctx, true);
}

/// `HSETNX key field value`
fn hsetnx(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let limits = ctx.limits();
    let db = db(ctx);
    let set = db.write(&args[1], ctx.now, |slot| match found(slot.value()) {
        Found::Wrong => {
            ctx.out.error(err::WRONGTYPE);
            false
        }
        // An existing field is no write: the hash is neither touched nor
        // converted.
        Found::Hash(h) if h.contains(&args[2]) => {
            ctx.out.int(0);
            false
        }
        f => {
            if matches!(f, Found::Missing) {
                slot.insert(Value::Hash(Default::default()), None);
            }
            if let Some(h) = hash_mut(slot) {
                h.fit([args[2].len(), args[3].len()].into_iter(), &limits);
                h.insert(&args[2], &args[3], &limits);
            }
            ctx.out.int(1);
            true
        }
    });
    if set {
        notify_write(ctx, class::HASH, "hset", &args[1], false);
    }
}

/// `HGET key field`
fn hget(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_hash(ctx, &args[1], |ctx, h| {
        match h.and_then(|h| h.get(&args[2])) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    });
}

/// `HMGET key field [field ...]`: nil for each missing field (every field
/// when the key is missing).
fn hmget(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_hash(ctx, &args[1], |ctx, h| {
        ctx.out.array(args.len() - 2);
        for f in &args[2..] {
            match h.and_then(|h| h.get(f)) {
                Some(v) => ctx.out.bulk(v),
                None => ctx.out.null(),
            }
        }
    });
}

/// `HDEL key field [field ...]`: replies how many existed; deletes the key
/// when the hash is left empty.
fn hdel(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let db = db(ctx);
    // Whether the key went, when some field did.
    let deleted = db.write(&args[1], ctx.now, |slot| match found(slot.value()) {
        Found::Wrong => {
            ctx.out.error(err::WRONGTYPE);
            None
        }
        Found::Missing => {
            ctx.out.int(0);
            None
        }
        // Nothing to delete is no write (no WATCH trigger, no propagation).
        Found::Hash(h) if !args[2..].iter().any(|f| h.contains(f)) => {
            ctx.out.int(0);
            None
        }
        Found::Hash(_) => {
            let mut deleted = 0;
            let mut emptied = false;
            if let Some(h) = hash_mut(slot) {
                for f in &args[2..] {
                    if h.remove(f) {
                        deleted += 1;
                        if h.is_empty() {
                            break;
                        }
                    }
                }
                emptied = h.is_empty();
                if emptied {
                    slot.remove();
                }
            }
            ctx.out.int(deleted);
            Some(emptied)
        }
    });
    if let Some(emptied) = deleted {
        notify_write(ctx, class::HASH, "hdel", &args[1], emptied);
    }
}

/// `HLEN key`
fn hlen(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_hash(ctx, &args[1], |ctx, h| {
        ctx.out.int(h.map_or(0, Hash::len) as i64)
    });
}

/// `HSTRLEN key field`: the value's length, 0 when missing.
fn hstrlen(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_hash(ctx, &args[1], |ctx, h| {
        ctx.out
            .int(h.and_then(|h| h.get(&args[2])).map_or(0, <[u8]>::len) as i64)
    });
}

/// `HEXISTS key field`
fn hexists(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read_hash(ctx, &args[1], |ctx, h| {
        ctx.out.int(h.is_some_and(|h| h.contains(&args[2])) as i64)
    });
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Keys,
    Vals,
    Both,
}

/// The shared body of HKEYS, HVALS and HGETALL, in the hash's order
/// (insertion order for `listpack`, as in Redis).
fn getall_generic(ctx: &mut Ctx<'_>, part: Part) {
    let args = ctx.args;
    read_hash(ctx, &args[1], |ctx, h| {
        let n = h.map_or(0, Hash::len);
        let o = &mut *ctx.out;
        if part == Part::Both {
            o.map_len(n);
        } else {
            o.array(n);
        }
        for (f, v) in h.into_iter().flat_map(Hash::iter) {
            if part != Part::Vals {
                o.bulk(f);
            }
            if part != Part::Keys {
                o.bulk(v);
            }
        }
    });
}

/// `HKEYS key`
fn hkeys(ctx: &mut Ctx<'_>) {
    getall_generic(ctx, Part::Keys);
}

/// `HVALS key`
fn hvals(ctx: &mut Ctx<'_>) {
    getall_generic(ctx, Part::Vals);
}

/// `HGETALL key`: a map in RESP3.
fn hgetall(ctx: &mut Ctx<'_>) {
    getall_generic(ctx, Part::Both);
}

/// `HINCRBY key field increment`
fn hincrby(ctx: &mut Ctx<'_>) {
    let Some(incr) = ctx.int_arg(3) else { return };
    let args = ctx.args;
    let limits = ctx.limits();
    let db = db(ctx);
    let done = db.write(&args[1], ctx.now, |slot| {
        let old = match found(slot.value()) {
            Found::Wrong => return Err(err::WRONGTYPE),
            Found::Missing => 0,
            Found::Hash(h) => match h.get(&args[2]) {
                None => 0,
                Some(v) => match parse_i64(v) {
                    Some(n) => n,
                    None => return Err("ERR hash value is not an integer"),
                },
            },
        };
        let Some(new) = old.checked_add(incr) else {
            return Err(err::OVERFLOW);
        };
        if !slot.exists() {
            slot.insert(Value::Hash(Default::default()), None);
        }
        if let Some(h) = hash_mut(slot) {
            h.insert(
                &args[2],
                itoa::Buffer::new().format(new).as_bytes(),
                &limits,
            );
        }
        Ok(new)
    });
    match done {
        Ok(new) => {
            ctx.out.int(new);
            notify_write(ctx, class::HASH, "hincrby", &args[1], false);
        }
        Err(e) => ctx.out.error(e),
    }
}

/// `HINCRBYFLOAT key field increment`: x87 long double arithmetic as in
/// INCRBYFLOAT, so results match Redis digit for digit; replicated as
/// `HSET key field result` so replicas never recompute.
fn hincrbyfloat(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let Some(incr) = LongDouble::parse(&args[3]) else {
        return ctx.out.error(err::NOT_FLOAT);
    };
    // parse() refuses NaN but takes "inf"; 0 + inf is the one way to see it.
    if LongDouble::zero().add(&incr).is_none() {
        return ctx.out.error("ERR value is NaN or Infinity");
    }
    let limits = ctx.limits();
    let db = db(ctx);
    let done = db.write(&args[1], ctx.now, |slot| {
        let old = match found(slot.value()) {
            Found::Wrong => {
                ctx.out.error(err::WRONGTYPE);
                return false;
            }
            Found::Missing => LongDouble::zero(),
            Found::Hash(h) => match h.get(&args[2]) {
                None => LongDouble::zero(),
                Some(v) => match LongDouble::parse(v) {
                    Some(n) => n,
                    None => {
                        ctx.out.error("ERR hash value is not a float");
                        return false;
                    }
                },
            },
        };
        let Some(new) = old.add(&incr) else {
            ctx.out.error("ERR increment would produce NaN or Infinity");
            return false;
        };
        let text = new.to_human_string();
        if !slot.exists() {
            slot.insert(Value::Hash(Default::default()), None);
        }
        if let Some(h) = hash_mut(slot) {
            h.insert(&args[2], text.as_bytes(), &limits);
        }
        ctx.out.bulk(text.as_bytes());
        ctx.propagate(&[b"HSET", &args[1], &args[2], text.as_bytes()]);
        true
    });
    if done {
        notify_write(ctx, class::HASH, "hincrbyfloat", &args[1], false);
    }
}

/// Redis's `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)` for the
/// count of HRANDFIELD and SRANDMEMBER.
pub(super) fn random_count(ctx: &mut Ctx<'_>, i: usize) -> Option<i64> {
    let n = ctx.int_arg(i)?;
    if n == i64::MIN {
        ctx.out.error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        );
        return None;
    }
    Some(n)
}

/// `count` distinct items chosen at random from a collection of `size`
/// (`count < size`). When most of the collection is wanted, `all` is
/// shuffled partially; otherwise `random` is drawn until `count` distinct
/// items came up. Work and memory stay O(size) either way.
pub(super) fn pick_distinct<T: Copy + Eq + std::hash::Hash>(
    size: usize,
    count: usize,
    all: impl FnOnce() -> Vec<T>,
    mut random: impl FnMut() -> Option<T>,
) -> Vec<T> {
    let mut rng = rand::rng();
    if count.saturating_mul(3) > size {
        let mut v = all();
        let count = count.min(v.len());
        for i in 0..count {
            let j = rng.random_range(i..v.len());
            v.swap(i, j);
        }
        v.truncate(count);
        return v;
    }
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        match random() {
            Some(t) => {
                if seen.insert(t) {
                    out.push(t);
                }
            }
            None => break,
        }
    }
    out
}

/// Emits `count` items drawn at random with repetition from a collection
/// of `size`, straight into the reply: nothing proportional to `count` is
/// built. With many draws (or a compact collection, where one draw is a
/// walk) the collection is indexed once, which costs O(size).
pub(super) fn emit_random<T: Copy>(
    count: u64,
    size: usize,
    compact: bool,
    all: impl FnOnce() -> Vec<T>,
    mut random: impl FnMut() -> Option<T>,
    mut emit: impl FnMut(T),
) {
    if size == 0 {
        return;
    }
    let mut rng = rand::rng();
    if compact || count >= (size / 4) as u64 {
        let v = all();
        if v.is_empty() {
            return;
        }
        for _ in 0..count {
            emit(v[rng.random_range(0..v.len())]);
        }
    } else {
        for _ in 0..count {
            if let Some(t) = random() {
                emit(t);
            }
        }
    }
}

/// `HRANDFIELD key [count [WITHVALUES]]`: a negative count allows
/// repeats; the count is checked before the key is looked up, as in Redis.
fn hrandfield(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    if args.len() < 3 {
        return read_hash(ctx, &args[1], |ctx, h| {
            match h.and_then(|h| h.random(&mut rand::rng())) {
                Some((f, _)) => ctx.out.bulk(f),
                None => ctx.out.null(),
            }
        });
    }
    let Some(l) = random_count(ctx, 2) else {
        return;
    };
    let withvalues = args.len() == 4;
    if args.len() > 4 || (withvalues && !args[3].eq_ignore_ascii_case(b"withvalues")) {
        return ctx.out.error(err::SYNTAX);
    }
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return ctx.out.error("ERR value is out of range");
    }
    read_hash(ctx, &args[1], |ctx, h| {
        let Some(h) = h else {
            return ctx.out.array(0);
        };
        let count = l.unsigned_abs();
        if count == 0 {
            return ctx.out.array(0);
        }
        let o = &mut *ctx.out;
        let resp3 = o.resp3();
        // RESP3 nests each field-value pair; RESP2 flattens them.
        let header =
            |o: &mut Out, n: u64| o.array(if withvalues && !resp3 { 2 * n } else { n } as usize);
        let emit = |o: &mut Out, (f, v): (&[u8], &[u8])| {
            if withvalues && resp3 {
                o.array(2);
            }
            o.bulk(f);
            if withvalues {
                o.bulk(v);
            }
        };
        let size = h.len();
        let mut rng = rand::rng();
        if l < 0 || count == 1 {
            header(o, count);
            return emit_random(
                count,
                size,
                h.is_compact(),
                || h.iter().collect(),
                || h.random(&mut rng),
                |p| emit(o, p),
            );
        }
        if count >= size as u64 {
            // The whole hash, in its own order.
            header(o, size as u64);
            return h.iter().for_each(|p| emit(o, p));
        }
        let picked = pick_distinct(
            size,
            count as usize,
            || h.iter().collect(),
            || h.random(&mut rng),
        );
        header(o, picked.len() as u64);
        picked.into_iter().for_each(|p| emit(o, p));
    });
}

/// Parses a SCAN cursor as Redis 7.0's `parseScanCursorOrReply`: `strtoul`
/// in base 10 over the C string, refusing a leading space, trailing bytes
/// and overflow; an optional sign (`-1` is the largest cursor); an empty
/// string reads as 0.
pub(super) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    let s = &arg[..end];
    if s.is_empty() {
        return Some(0);
    }
    if matches!(s[0], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
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

/// The options of HSCAN/SSCAN from argument `from` on: `[MATCH pattern]
/// [COUNT count]` (TYPE is SCAN's only). Replies the error and returns
/// `None` when they are wrong. The pattern is `None` for `*`.
pub(super) fn scan_options(ctx: &mut Ctx<'_>, from: usize) -> Option<(usize, Option<Bytes>)> {
    let mut count: i64 = 10;
    let mut pattern = None;
    let mut i = from;
    while i < ctx.args.len() {
        let more = ctx.args.len() - i;
        match ctx.opt(i).as_str() {
            "count" if more >= 2 => {
                count = ctx.int_arg(i + 1)?;
                if count < 1 {
                    ctx.out.error(err::SYNTAX);
                    return None;
                }
            }
            "match" if more >= 2 => {
                pattern = Some(ctx.args[i + 1].clone()).filter(|p| &p[..] != b"*");
            }
            _ => {
                ctx.out.error(err::SYNTAX);
                return None;
            }
        }
        i += 2;
    }
    Some((usize::try_from(count).unwrap_or(usize::MAX), pattern))
}

/// The reply of a SCAN-family command on a missing key.
pub(super) fn empty_scan(ctx: &mut Ctx<'_>) {
    ctx.out.array(2);
    ctx.out.bulk(b"0");
    ctx.out.array(0);
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`: a `listpack` hash
/// comes back whole with cursor 0; a table about COUNT fields per call.
/// MATCH filters fields after the visit.
fn hscan(ctx: &mut Ctx<'_>) {
    let Some(cursor) = parse_cursor(&ctx.args[2]) else {
        return ctx.out.error("ERR invalid cursor");
    };
    let args = ctx.args;
    read_hash(ctx, &args[1], |ctx, h| {
        let Some(h) = h else {
            return empty_scan(ctx);
        };
        let Some((count, pattern)) = scan_options(ctx, 3) else {
            return;
        };
        let mut found: Vec<(&[u8], &[u8])> = Vec::new();
        let next = h.scan(cursor, count, |f, v| {
            if pattern.as_ref().is_none_or(|p| glob::matches(p, f, false)) {
                found.push((f, v));
            }
        });
        let o = &mut *ctx.out;
        o.array(2);
        o.bulk(itoa::Buffer::new().format(next).as_bytes());
        o.array(2 * found.len());
        for (f, v) in found {
            o.bulk(f);
            o.bulk(v);
        }
    });
}

const H: &str = "hash";

/// The hash family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), H, hset),
    spec("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), H, hsetnx),
    spec("hget", 3, READONLY | FAST, (1, 1, 1), H, hget),
    spec("hmget", -3, READONLY | FAST, (1, 1, 1), H, hmget),
    spec("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), H, hmset),
    spec("hdel", -3, WRITE | FAST, (1, 1, 1), H, hdel),
    spec("hlen", 2, READONLY | FAST, (1, 1, 1), H, hlen),
    spec("hstrlen", 3, READONLY | FAST, (1, 1, 1), H, hstrlen),
    spec("hexists", 3, READONLY | FAST, (1, 1, 1), H, hexists),
    spec("hkeys", 2, READONLY, (1, 1, 1), H, hkeys),
    spec("hvals", 2, READONLY, (1, 1, 1), H, hvals),
    spec("hgetall", 2, READONLY, (1, 1, 1), H, hgetall),
    spec("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), H, hincrby),
    spec(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        H,
        hincrbyfloat,
    ),
    spec("hrandfield", -2, READONLY, (1, 1, 1), H, hrandfield),
    spec("hscan", -3, READONLY, (1, 1, 1), H, hscan),
];

#[cfg(test)]
mod tests {
    use crate::testkit::Kit;

    fn err(s: &str) -> String {
        format!("-{s}\r\n")
    }

    #[test]
    fn set_get_delete() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["HSET", "h", "a", "1", "b", "2"]), ":2\r\n");
        assert_eq!(k.run(&["HSET", "h", "a", "3", "c", "4"]), ":1\r\n");
        assert_eq!(k.run(&["HGET", "h", "a"]), "$1\r\n3\r\n");
        assert_eq!(
            k.run(&["HGETALL", "h"]),
            "*6\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n4\r\n"
        );
        assert_eq!(k.run(&["HDEL", "h", "a", "b", "c", "x"]), ":3\r\n");
        assert_eq!(k.run(&["EXISTS", "h"]), ":0\r\n");
        assert_eq!(
            k.run(&["HSET", "h", "a"]),
            err("ERR wrong number of arguments for 'hset' command")
        );
        assert_eq!(
            k.run(&["HMSET", "h", "a", "1", "b"]),
            err("ERR wrong number of arguments for 'hmset' command")
        );
    }

    #[test]
    fn increments_match_redis() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["HINCRBY", "h", "n", "5"]), ":5\r\n");
        assert_eq!(
            k.run(&["HINCRBY", "h", "n", "9223372036854775807"]),
            err("ERR increment or decrement would overflow")
        );
        k.run(&["HSET", "h", "s", "007"]);
        assert_eq!(
            k.run(&["HINCRBY", "h", "s", "1"]),
            err("ERR hash value is not an integer")
        );
        // strtold reads "007" fine.
        assert_eq!(k.run(&["HINCRBYFLOAT", "h", "s", "1"]), "$1\r\n8\r\n");
        k.run(&["HSET", "h", "s", "1x"]);
        assert_eq!(
            k.run(&["HINCRBYFLOAT", "h", "s", "1"]),
            err("ERR hash value is not a float")
        );
        assert_eq!(
            k.run(&["HINCRBYFLOAT", "h", "f", "inf"]),
            err("ERR value is NaN or Infinity")
        );
        assert_eq!(k.run(&["HINCRBYFLOAT", "h", "f", "0.1"]), "$3\r\n0.1\r\n");
        assert_eq!(k.run(&["HINCRBYFLOAT", "h", "f", "0.2"]), "$3\r\n0.3\r\n");
        k.run(&["SET", "str", "x"]);
        assert!(k
            .run(&["HINCRBY", "str", "f", "1"])
            .starts_with("-WRONGTYPE"));
        // A failed increment on a missing key leaves no empty hash behind.
        assert_eq!(
            k.run(&["HINCRBY", "nokey", "f", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(k.run(&["EXISTS", "nokey"]), ":0\r\n");
    }

    #[test]
    fn random_fields() {
        let mut k = Kit::new();
        k.run(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
        assert_eq!(
            k.run(&["HRANDFIELD", "h", "5"]),
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
        );
        let r = k.run(&["HRANDFIELD", "h", "-1000", "WITHVALUES"]);
        assert!(r.starts_with("*2000\r\n"));
        let r = k.run(&["HRANDFIELD", "h", "2"]);
        let fields: Vec<&str> = r.split("\r\n").skip(2).step_by(2).collect();
        assert!(r.starts_with("*2\r\n") && fields[0] != fields[1], "{r}");
        assert_eq!(
            k.run(&["HRANDFIELD", "h", "-9223372036854775808"]),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(
            k.run(&["HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"]),
            err("ERR value is out of range")
        );
    }

    #[test]
    fn big_hashes_convert_and_scan_fully() {
        let mut k = Kit::new();
        for i in 0..2000 {
            let f = format!("f{i}");
            k.run(&["HSET", "h", &f, "v"]);
        }
        assert_eq!(k.run(&["OBJECT", "ENCODING", "h"]), "$9\r\nhashtable\r\n");
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        loop {
            let r = k.run(&["HSCAN", "h", &cursor, "COUNT", "13"]);
            let mut lines = r.split("\r\n").skip(2);
            cursor = lines.next().unwrap_or_default().to_string();
            let rest: Vec<&str> = lines.collect();
            for f in rest.iter().skip(2).step_by(4) {
                seen.insert(f.to_string());
            }
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 2000);
        for i in 0..2000 {
            let f = format!("f{i}");
            k.run(&["HDEL", "h", &f]);
        }
        assert_eq!(k.run(&["EXISTS", "h"]), ":0\r\n");
    }
}
