//! SORT and SORT_RO with Redis 7.0's semantics, replies and error texts
//! (`sort.c`): lists, sets and sorted sets; numeric (C `strtod`) or ALPHA
//! order; BY patterns (`*` substitution, `->field` of a hash, a pattern
//! without `*` means "do not sort"); GET patterns (`#` is the element);
//! LIMIT; STORE into a list.
//!
//! # Format
//!
//! ```text
//! SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]
//! SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
//! ```
//!
//! Both read keys named by their patterns, so they are MOVABLEKEYS and run
//! under the exclusive gate. Ties are broken as Redis's sorts break them:
//! glibc's `qsort` (a stable merge sort) in general, and Redis's partial
//! quicksort ([`crate::pqsort`]) for BY with a LIMIT, so replies match
//! even where the order of equal weights is not specified.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::pqsort::pqsort;
use rampart_keyspace::list::{End, List};
use rampart_keyspace::{Db, Value};

use super::flags::*;
use super::zset::{c_str, strtod};
use super::{err, spec, CommandSpec, Ctx};
use crate::num::parse_i64;
use crate::state::Server;

const G: &str = "generic";

const CONVERSION_ERR: &str = "ERR One or more scores can't be converted into double";

/// The options of one call, as `sortCommandGeneric` parses them.
struct Options<'a> {
    desc: bool,
    alpha: bool,
    /// LIMIT offset and count; count -1 means "to the end".
    limit: (i64, i64),
    /// The BY pattern.
    by: Option<&'a [u8]>,
    /// A BY pattern without `*` was given (sticky, as in Redis, even if a
    /// later BY has one).
    dontsort: bool,
    gets: Vec<&'a [u8]>,
    store: Option<&'a [u8]>,
}

/// One element being sorted: Redis's `redisSortObject`.
struct Item {
    obj: Vec<u8>,
    /// Numeric weight (0 when the BY key is missing).
    score: f64,
    /// ALPHA weight from the BY pattern (`None`: missing, sorts first).
    cmp: Option<Vec<u8>>,
}

impl Item {
    fn new(obj: Vec<u8>) -> Item {
        Item {
            obj,
            score: 0.0,
            cmp: None,
        }
    }
}

/// `strcasecmp(arg, word) == 0`.
fn is(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// `strcmp`, which is what `strcoll` is in the C and C.UTF-8 locales.
fn c_cmp(a: &[u8], b: &[u8]) -> Ordering {
    c_str(a).cmp(c_str(b))
}

/// Parses the options after the key; replies the error and returns `None`
/// on a bad one.
fn parse<'a>(ctx: &mut Ctx<'_>, args: &'a [Bytes], readonly: bool) -> Option<Options<'a>> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: (0, -1),
        by: None,
        dontsort: false,
        gets: Vec::new(),
        store: None,
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j][..];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            let (Some(start), Some(count)) = (parse_i64(&args[j + 1]), parse_i64(&args[j + 2]))
            else {
                ctx.out.error(err::NOT_INT);
                return None;
            };
            o.limit = (start, count);
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if is(a, "by") && left >= 1 {
            o.by = Some(&args[j + 1]);
            if !c_str(&args[j + 1]).contains(&b'*') {
                o.dontsort = true;
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            o.gets.push(&args[j + 1]);
            j += 1;
        } else {
            ctx.out.error(err::SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// Redis's `lookupKeyByPattern`: calls `f` with the value `pattern` names
/// for element `subst`, or `None` when there is none. `#` is the element
/// itself; the first `*` is replaced by the element; `key->field` reads a
/// hash field. A key of another type than the one expected (string, or
/// hash with `->`) reads as missing, and a pattern without `*` names
/// nothing. Like Redis, `*`, `->` and `#` are found in the pattern as a C
/// string, while the parts copied keep every byte.
fn with_pattern<R>(
    srv: &Server,
    db: &Db,
    dbi: usize,
    now: u64,
    pattern: &[u8],
    subst: &[u8],
    f: impl FnOnce(Option<&[u8]>) -> R,
) -> R {
    let pat = c_str(pattern);
    if pat == b"#" {
        return f(Some(subst));
    }
    let Some(star) = pat.iter().position(|&c| c == b'*') else {
        return f(None);
    };
    // `->` after the star, followed by a non-empty field.
    let arrow = pat[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&i| i + 2 < pat.len());
    let (postfix_end, field) = match arrow {
        Some(i) => (i, Some(&pattern[i + 2..])),
        None => (pattern.len(), None),
    };
    let mut key = Vec::with_capacity(star + subst.len() + (postfix_end - star - 1));
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(&pattern[star + 1..postfix_end]);
    db.get(&key, now, |n| {
        super::looked_up(srv, dbi, &key, n.is_some());
        let v = n.and_then(|n| match (&n.value, field) {
            (Value::Hash(h), Some(field)) => h.get(field),
            (v, None) => v.as_str(),
            _ => None,
        });
        f(v)
    })
}

/// A numeric weight as SORT reads it: `strtod` over the C string (up to a
/// NUL) must consume all of it, without overflow, underflow or NaN. An
/// empty string is 0.
fn sort_score(s: &[u8]) -> Option<f64> {
    let s = c_str(s);
    if s.is_empty() {
        return Some(0.0);
    }
    let (v, used, erange) = strtod(s);
    (used == s.len() && !erange && !v.is_nan()).then_some(v)
}

/// Redis's `sortCompare`.
fn compare(a: &Item, b: &Item, o: &Options<'_>) -> Ordering {
    let store = o.store.is_some();
    let cmp = if !o.alpha {
        if a.score > b.score {
            Ordering::Greater
        } else if a.score < b.score {
            Ordering::Less
        } else {
            // Equal weights: the elements themselves, so the result is
            // deterministic.
            a.obj.cmp(&b.obj)
        }
    } else if o.by.is_some() {
        match (&a.cmp, &b.cmp) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) if store => x.cmp(y),
            (Some(x), Some(y)) => c_cmp(x, y),
        }
    } else if store {
        a.obj.cmp(&b.obj)
    } else {
        c_cmp(&a.obj, &b.obj)
    };
    if o.desc {
        cmp.reverse()
    } else {
        cmp
    }
}

/// The elements to sort and the output range, as `sortCommandGeneric`
/// loads them.
struct Loaded {
    items: Vec<Item>,
    start: i64,
    end: i64,
}

/// Loads the elements of `value` (a missing key is an empty list), or
/// `None` for a value of another type. Adjusts `o` as Redis does: a set
/// that is stored unsorted is sorted ALPHA instead, so the stored list
/// (and what a replica stores) does not depend on hash order.
fn load(value: Option<&Value>, o: &mut Options<'_>) -> Option<Loaded> {
    let len = match value {
        None => 0,
        Some(Value::List(l)) => l.len(),
        Some(Value::Set(s)) => {
            if o.dontsort && o.store.is_some() {
                o.dontsort = false;
                o.alpha = true;
                o.by = None;
            }
            s.len()
        }
        Some(Value::ZSet(z)) => z.len(),
        Some(_) => return None,
    };
    let vlen = len as i64;
    // LIMIT sanity, clamped to the size so nothing overflows.
    let mut start = o.limit.0.clamp(0, vlen);
    let count = o.limit.1.clamp(-1, vlen);
    let mut end = if count < 0 {
        vlen - 1
    } else {
        start + count - 1
    };
    if start >= vlen {
        start = vlen - 1;
        end = vlen - 2;
    }
    if end >= vlen {
        end = vlen - 1;
    }
    let ordered = matches!(value, Some(Value::List(_) | Value::ZSet(_)));
    let ranged = ordered && o.dontsort && (start != 0 || end != vlen - 1);
    // Never more than the collection holds, whatever LIMIT asked.
    let n = if ranged {
        (end - start + 1).max(0) as usize
    } else {
        len
    };
    let mut items = Vec::with_capacity(n);
    match value {
        None => {}
        Some(Value::List(l)) if o.dontsort && end >= start => {
            // The list's own order (reversed for DESC), LIMIT applied here.
            let s = start as usize;
            let item = |e: &[u8]| Item::new(e.to_vec());
            if o.desc {
                items.extend(l.range(len - s - n, n).rev().map(item));
            } else {
                items.extend(l.range(s, n).map(item));
            }
            end -= start;
            start = 0;
        }
        // An empty LIMIT range of an unsorted list.
        Some(Value::List(_)) if o.dontsort => {}
        Some(Value::List(l)) => items.extend(l.iter().map(|e| Item::new(e.to_vec()))),
        Some(Value::Set(s)) => items.extend(s.iter().map(|m| Item::new(m.to_vec()))),
        Some(Value::ZSet(z)) if o.dontsort => {
            // The sorted set's own order (reversed for DESC), LIMIT
            // applied here.
            if n > 0 {
                let s = start as usize;
                let from = if o.desc { len - 1 - s } else { s };
                items.extend(
                    z.iter_from(from, o.desc)
                        .take(n)
                        .map(|(m, _)| Item::new(m.to_vec())),
                );
            }
            end -= start;
            start = 0;
        }
        Some(Value::ZSet(z)) => items.extend(z.iter().map(|(m, _)| Item::new(m.to_vec()))),
        Some(_) => return None,
    }
    Some(Loaded { items, start, end })
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]`
fn sort(ctx: &mut Ctx<'_>) {
    sort_generic(ctx, false);
}

/// `SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]`
fn sort_ro(ctx: &mut Ctx<'_>) {
    sort_generic(ctx, true);
}

/// Redis's `sortCommandGeneric`; `readonly` refuses STORE (as a syntax
/// error).
fn sort_generic(ctx: &mut Ctx<'_>, readonly: bool) {
    let args = ctx.args;
    let Some(mut o) = parse(ctx, args, readonly) else {
        return;
    };
    let srv = ctx.srv;
    let db = srv.keyspace.db(ctx.client.db);
    let now = ctx.now;
    let mut packed_zset = false;
    let dbi = ctx.client.db;
    let loaded = db.get(&args[1], now, |n| {
        super::looked_up(srv, dbi, &args[1], n.is_some());
        packed_zset =
            matches!(n.map(|n| &n.value), Some(Value::ZSet(z)) if z.encoding() == "listpack");
        load(n.map(|n| &n.value), &mut o)
    });
    if packed_zset {
        // Redis's SORT converts every sorted set it reads to a skiplist
        // (OBJECT ENCODING and DUMP show it afterwards).
        db.write(&args[1], now, |slot| {
            slot.reencode(|v| {
                if let Value::ZSet(z) = v {
                    z.to_skiplist();
                }
            })
        });
    }
    let Some(Loaded {
        mut items,
        start,
        end,
    }) = loaded
    else {
        return ctx.out.error(err::WRONGTYPE);
    };

    // The weights, then the sort.
    let mut conversion_error = false;
    if !o.dontsort {
        for it in items.iter_mut() {
            let mut weigh = |v: &[u8]| {
                if o.alpha {
                    it.cmp = Some(v.to_vec());
                } else {
                    match sort_score(v) {
                        Some(s) => it.score = s,
                        None => conversion_error = true,
                    }
                }
            };
            match o.by {
                Some(pattern) => with_pattern(srv, db, dbi, now, pattern, &it.obj, |v| {
                    if let Some(v) = v {
                        weigh(v);
                    }
                }),
                // Sorting by the element itself: ALPHA compares elements.
                None if o.alpha => {}
                None => match sort_score(&it.obj) {
                    Some(s) => it.score = s,
                    None => conversion_error = true,
                },
            }
        }
        let last = items.len() as i64 - 1;
        if o.by.is_some() && (start != 0 || end != last) {
            pqsort(&mut items, &|a, b| compare(a, b, &o), start, end);
        } else {
            items.sort_by(|a, b| compare(a, b, &o));
        }
    }
    if conversion_error {
        return ctx.out.error(CONVERSION_ERR);
    }

    let span = (end - start + 1).max(0) as usize;
    let range = match span {
        0 => &items[..0],
        _ => items.get(start as usize..=end as usize).unwrap_or(&[]),
    };
    let outputlen = if o.gets.is_empty() {
        span
    } else {
        o.gets.len() * span
    };
    let Some(dst) = o.store else {
        // A read: nothing to propagate, even if a lookup expired a key.
        ctx.propagated = true;
        let out = &mut *ctx.out;
        out.array(outputlen);
        for it in range {
            if o.gets.is_empty() {
                out.bulk(&it.obj);
            }
            for g in &o.gets {
                with_pattern(srv, db, dbi, now, g, &it.obj, |v| match v {
                    Some(v) => out.bulk(v),
                    None => out.null(),
                });
            }
        }
        return;
    };
    let mut list = List::new(ctx.limits().list_max_listpack_size);
    for it in range {
        if o.gets.is_empty() {
            list.push(End::Tail, &it.obj);
        }
        for g in &o.gets {
            with_pattern(srv, db, dbi, now, g, &it.obj, |v| {
                list.push(End::Tail, v.unwrap_or_default())
            });
        }
    }
    if outputlen > 0 {
        db.write(dst, now, |s| s.insert(Value::List(Box::new(list)), None));
        ctx.notify(crate::pubsub::class::LIST, "sortstore", dst);
    } else if db.delete(dst, now) {
        ctx.notify(crate::pubsub::class::GENERIC, "del", dst);
    }
    ctx.out.int(outputlen as i64);
}

/// The family's table (Redis 7.0's COMMAND INFO). The BY and GET patterns
/// name keys too, so both are MOVABLEKEYS, which runs them under the
/// exclusive gate.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sort", -2, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), G, sort),
    spec("sort_ro", -2, READONLY | MOVABLEKEYS, (1, 1, 1), G, sort_ro),
];

#[cfg(test)]
mod tests {
    //! Expected replies were taken from redis-server 7.0.15.

    use super::{sort_score, strtod};
    use crate::state::changes_on_this_thread;
    use crate::testkit::Kit;

    fn bulks(items: &[&str]) -> String {
        let mut s = format!("*{}\r\n", items.len());
        for i in items {
            s.push_str(&format!("${}\r\n{i}\r\n", i.len()));
        }
        s
    }

    #[test]
    fn weights_parse_like_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 7"), Some(7.0));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"0X1p4"), Some(16.0));
        assert_eq!(sort_score(b"5."), Some(5.0));
        assert_eq!(sort_score(b"-.5"), Some(-0.5));
        assert_eq!(sort_score(b"-INF"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"4\x00junk"), Some(4.0));
        for bad in [
            &b"1e400"[..],
            b"1e-400",
            b"1e-310",
            b"1 ",
            b"   ",
            b"nan",
            b"1e",
            b"0x",
            b"--1",
            b"x",
        ] {
            assert_eq!(sort_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(strtod(b"  12abc"), (12.0, 4, false));
        assert_eq!(strtod(b"abc").1, 0);
    }

    #[test]
    fn sorts_lists_sets_and_zsets() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "l", "3", "1", "2.5", "10"]);
        assert_eq!(k.run(&["SORT", "l"]), bulks(&["1", "2.5", "3", "10"]));
        assert_eq!(
            k.run(&["SORT", "l", "ALPHA", "DESC"]),
            bulks(&["3", "2.5", "10", "1"])
        );
        assert_eq!(
            k.run(&["SORT", "l", "LIMIT", "1", "2"]),
            bulks(&["2.5", "3"])
        );
        assert_eq!(
            k.run(&["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "2"]),
            bulks(&["2.5", "1"])
        );
        k.run(&["SADD", "s", "b", "a", "c"]);
        assert_eq!(k.run(&["SORT", "s", "ALPHA"]), bulks(&["a", "b", "c"]));
        k.run(&["ZADD", "z", "1", "x", "2", "a", "3", "m"]);
        assert_eq!(
            k.run(&["SORT", "z", "BY", "nosort", "DESC"]),
            bulks(&["m", "a", "x"])
        );
        assert_eq!(
            k.run(&["SORT", "z", "BY", "nosort", "LIMIT", "1", "5"]),
            bulks(&["a", "m"])
        );
        assert_eq!(
            k.run(&["SORT", "s"]),
            "-ERR One or more scores can't be converted into double\r\n"
        );
        assert_eq!(k.run(&["SORT", "missing"]), "*0\r\n");
        // A huge count is clamped to the size, never allocated.
        assert_eq!(
            k.run(&[
                "SORT",
                "l",
                "BY",
                "nosort",
                "LIMIT",
                "0",
                "9223372036854775807"
            ]),
            bulks(&["3", "1", "2.5", "10"])
        );
    }

    #[test]
    fn by_and_get_patterns() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "u", "a", "b", "c"]);
        k.run(&["MSET", "w_a", "3", "w_b", "1"]);
        k.run(&["HSET", "h_a", "n", "A"]);
        k.run(&["HSET", "h_c", "n", "C"]);
        assert_eq!(k.run(&["SORT", "u", "BY", "w_*"]), bulks(&["c", "b", "a"]));
        assert_eq!(
            k.run(&["SORT", "u", "BY", "w_*", "GET", "#", "GET", "h_*->n"]),
            "*6\r\n$1\r\nc\r\n$1\r\nC\r\n$1\r\nb\r\n$-1\r\n$1\r\na\r\n$1\r\nA\r\n"
        );
        assert_eq!(
            k.run(&["SORT", "u", "BY", "nosort", "GET", "w_*"]),
            "*3\r\n$1\r\n3\r\n$1\r\n1\r\n$-1\r\n"
        );
        assert_eq!(
            k.run(&["SORT", "u", "BY", "nosort", "GET", "fixed"]),
            "*3\r\n$-1\r\n$-1\r\n$-1\r\n"
        );
    }

    #[test]
    fn store_and_errors() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "l", "2", "1"]);
        k.run(&["SET", "str", "v"]);
        assert_eq!(k.run(&["SORT", "l", "STORE", "d"]), ":2\r\n");
        assert_eq!(k.run(&["LRANGE", "d", "0", "-1"]), bulks(&["1", "2"]));
        assert_eq!(
            k.run(&["SORT", "l", "GET", "#", "GET", "x_*", "STORE", "d"]),
            ":4\r\n"
        );
        assert_eq!(
            k.run(&["LRANGE", "d", "0", "-1"]),
            bulks(&["1", "", "2", ""])
        );
        assert_eq!(k.run(&["SORT", "missing", "STORE", "d"]), ":0\r\n");
        assert_eq!(k.run(&["EXISTS", "d"]), ":0\r\n");
        assert_eq!(
            k.run(&["SORT_RO", "l", "STORE", "d"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(k.run(&["SORT", "l", "BY"]), "-ERR syntax error\r\n");
        assert_eq!(
            k.run(&["SORT", "l", "LIMIT", "x", "1"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(k.run(&["SORT", "str", "bad"]), "-ERR syntax error\r\n");
        assert_eq!(
            k.run(&["SORT", "str"]),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
    }

    #[test]
    fn only_store_changes_the_dataset() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "l", "2", "1"]);
        for cmd in [
            &["SORT", "l"][..],
            &["SORT_RO", "l", "BY", "w_*", "GET", "#"],
            &["SORT", "missing", "STORE", "none"],
            &["SORT", "l", "LIMIT", "5", "1", "STORE", "none"],
        ] {
            let before = changes_on_this_thread();
            k.run(cmd);
            assert_eq!(changes_on_this_thread(), before, "{cmd:?}");
        }
        let before = changes_on_this_thread();
        k.run(&["SORT", "l", "STORE", "d"]);
        assert_ne!(changes_on_this_thread(), before);
    }
}
