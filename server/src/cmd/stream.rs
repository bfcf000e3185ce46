//! Stream commands: XADD XLEN XRANGE XREVRANGE XDEL XTRIM XSETID XREAD
//! XREADGROUP XGROUP XACK XPENDING XCLAIM XAUTOCLAIM XINFO, with Redis
//! 7.0's replies, error texts, keyspace events and propagated effects
//! (`t_stream.c`). The model lives in `rampart_keyspace::stream`.
//!
//! A command that may or may not change a stream (XTRIM, XACK, XREADGROUP
//! with nothing new…) looks first and only takes the value for writing
//! when it will change it, so WATCH, the dirty counter and replication see
//! exactly the writes Redis counts.

use bytes::Bytes;
use rampart_keyspace::listpack::Elem;
use rampart_keyspace::stream::{AppendError, Consumer, Group, Nack, Stream, StreamId, Trim};
use rampart_keyspace::{Db, Slot, Value};

use super::flags::*;
use super::{container_spec, err, spec, CommandSpec, Ctx};
use crate::num::parse_i64;
use crate::pubsub::class;
use crate::resp::Out;

const G: &str = "stream";
const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
/// XREAD BLOCK without COUNT serves at most this many entries.
const BLOCKED_DEFAULT_COUNT: usize = 1000;

fn db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    ctx.srv.keyspace.db(ctx.client.db)
}

// ------------------------------------------------------------ parsing

/// `strtoull` over a C string as Redis's `string2ull` falls back to:
/// leading blanks, a sign, digits to the end, no overflow.
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `streamGenericParseIDOrReply`: `-`/`+` (unless strict), `ms`,
/// `ms-seq`, and `ms-*` when `seq_given` is asked for (it is then false).
fn parse_id_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_given: Option<&mut bool>,
) -> Option<StreamId> {
    if arg.len() > 127 {
        return None;
    }
    // Redis copies the argument into a C string.
    let s = match arg.iter().position(|&b| b == 0) {
        Some(n) => &arg[..n],
        None => arg,
    };
    if strict && (s == b"-" || s == b"+") {
        return None;
    }
    if s == b"-" {
        return Some(StreamId::MIN);
    }
    if s == b"+" {
        return Some(StreamId::MAX);
    }
    let mut given = true;
    let (ms, seq) = match s.iter().position(|&b| b == b'-') {
        Some(d) => {
            let ms = string2ull(&s[..d])?;
            let rest = &s[d + 1..];
            let seq = if seq_given.is_some() && rest == b"*" {
                given = false;
                0
            } else {
                string2ull(rest)?
            };
            (ms, seq)
        }
        None => (string2ull(s)?, missing_seq),
    };
    if let Some(g) = seq_given {
        *g = given;
    }
    Some(StreamId { ms, seq })
}

/// A strict id, or the invalid-id error.
fn strict_id(ctx: &mut Ctx<'_>, i: usize) -> Option<StreamId> {
    let r = parse_id_full(&ctx.args[i], 0, true, None);
    if r.is_none() {
        ctx.out.error(INVALID_ID);
    }
    r
}

/// `streamParseIntervalIDOrReply` plus the `(` adjustment the callers
/// make: an exclusive start moves up, an exclusive end down.
fn interval_id(ctx: &mut Ctx<'_>, i: usize, missing_seq: u64, start: bool) -> Option<StreamId> {
    let a = &ctx.args[i];
    let exclude = a.len() > 1 && a[0] == b'(';
    let parsed = if exclude {
        parse_id_full(&a[1..], missing_seq, true, None)
    } else {
        parse_id_full(a, missing_seq, false, None)
    };
    let Some(id) = parsed else {
        ctx.out.error(INVALID_ID);
        return None;
    };
    if !exclude {
        return Some(id);
    }
    let moved = if start { id.incr() } else { id.decr() };
    if moved.is_none() {
        ctx.out.error(if start {
            "ERR invalid start ID for the interval"
        } else {
            "ERR invalid end ID for the interval"
        });
    }
    moved
}

/// An integer argument, replying `msg` (or the standard error) when it
/// is not one.
fn int_or(ctx: &mut Ctx<'_>, i: usize, msg: Option<&str>) -> Option<i64> {
    let v = parse_i64(&ctx.args[i]);
    if v.is_none() {
        match msg {
            Some(m) => ctx.out.error(&format!("ERR {m}")),
            None => ctx.out.error(err::NOT_INT),
        }
    }
    v
}

fn id_bytes(id: StreamId) -> Vec<u8> {
    id.text(&mut Default::default()).to_vec()
}

fn bulk_id(out: &mut Out, id: StreamId) {
    out.bulk(id.text(&mut Default::default()));
}

fn reply_entry(out: &mut Out, e: &rampart_keyspace::stream::Entry<'_>) {
    out.array(2);
    bulk_id(out, e.id);
    out.array(e.len() * 2);
    let mut b = itoa::Buffer::new();
    for (f, v) in e.fields() {
        out.bulk(elem(&f, &mut b));
        out.bulk(elem(&v, &mut b));
    }
}

fn elem<'a>(e: &Elem<'a>, b: &'a mut itoa::Buffer) -> &'a [u8] {
    e.bytes(b)
}

/// Replies entries from `start` to `end`, up to `count` (0: all).
fn reply_range(
    out: &mut Out,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    count: usize,
    rev: bool,
) -> usize {
    let mut n = 0;
    let mut body = Out::new(out.proto);
    for e in s.range(start, end, rev) {
        reply_entry(&mut body, &e);
        n += 1;
        if count > 0 && n == count {
            break;
        }
    }
    out.array(n);
    out.raw(body.buf());
    n
}

// ------------------------------------------------------------ lookups

enum Found<'v> {
    Missing,
    Wrong,
    Stream(&'v Stream),
}

fn found(v: Option<&Value>) -> Found<'_> {
    match v {
        None => Found::Missing,
        Some(Value::Stream(s)) => Found::Stream(s),
        Some(_) => Found::Wrong,
    }
}

fn stream_mut<'s>(slot: &'s mut Slot<'_>) -> Option<&'s mut Stream> {
    match slot.value_mut() {
        Some(Value::Stream(s)) => Some(s),
        _ => None,
    }
}

/// Reads the stream at `key`; WRONGTYPE replied for another type.
fn read_stream<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Ctx<'_>, Option<&Stream>) -> R,
) -> Option<R> {
    let db = db(ctx);
    db.get(key, ctx.now, |n| {
        ctx.looked_up(key, n.is_some());
        match found(n.map(|n| &n.value)) {
            Found::Wrong => {
                ctx.out.error(err::WRONGTYPE);
                None
            }
            Found::Missing => Some(f(ctx, None)),
            Found::Stream(s) => Some(f(ctx, Some(s))),
        }
    })
}

// ------------------------------------------------------------ XADD/XTRIM

struct AddTrim {
    id: StreamId,
    id_given: bool,
    seq_given: bool,
    no_mkstream: bool,
    trim: Trim,
    /// Where the MAXLEN/MINID argument is, for the rewrite.
    trim_arg: usize,
    approx: bool,
    limit: u64,
    /// XADD: the id's position.
    idpos: usize,
}

/// `streamParseAddOrTrimArgsOrReply`.
fn parse_add_trim(ctx: &mut Ctx<'_>, xadd: bool) -> Option<AddTrim> {
    let args = ctx.args;
    let mut a = AddTrim {
        id: StreamId::MIN,
        id_given: false,
        seq_given: true,
        no_mkstream: false,
        trim: Trim::None,
        trim_arg: 0,
        approx: false,
        limit: 0,
        idpos: 0,
    };
    let mut limit: i64 = 0;
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid"))
            && more > 0
        {
            let maxlen = opt.eq_ignore_ascii_case(b"maxlen");
            if a.trim != Trim::None {
                ctx.out.error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            a.approx = false;
            let next = &args[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            if maxlen {
                let n = ctx.int_arg(i + 1)?;
                if n < 0 {
                    ctx.out.error("ERR The MAXLEN argument must be >= 0.");
                    return None;
                }
                a.trim = Trim::MaxLen(n as u64);
            } else {
                a.trim = Trim::MinId(strict_id(ctx, i + 1)?);
            }
            i += 1;
            a.trim_arg = i;
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            limit = ctx.int_arg(i + 1)?;
            if limit < 0 {
                ctx.out.error("ERR The LIMIT argument must be >= 0.");
                return None;
            }
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            a.no_mkstream = true;
        } else if xadd {
            let mut seq_given = true;
            let Some(id) = parse_id_full(opt, 0, true, Some(&mut seq_given)) else {
                ctx.out.error(INVALID_ID);
                return None;
            };
            a.id = id;
            a.seq_given = seq_given;
            a.id_given = true;
            break;
        } else {
            ctx.out.error(err::SYNTAX);
            return None;
        }
        i += 1;
    }
    a.idpos = i;
    if limit != 0 && a.trim == Trim::None {
        ctx.out
            .error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && a.trim == Trim::None {
        ctx.out
            .error("ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if ctx.client.is_master {
        // The primary rewrote the argument: trim exactly that much.
        a.limit = 0;
    } else if limit_given {
        if !a.approx {
            ctx.out
                .error("ERR syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
        a.limit = limit as u64;
    } else if a.approx {
        let per = ctx.limits().stream_node_max_entries as i64;
        let mut l = per.saturating_mul(100);
        if l <= 0 {
            l = 10000;
        }
        a.limit = l.min(1_000_000) as u64;
    }
    Some(a)
}

/// The arguments XADD/XTRIM propagate after an approximate trim: `=` and
/// the exact figure reached (`streamRewriteTrimArgument`).
fn rewrite_trim(argv: &mut [Vec<u8>], a: &AddTrim, s: &Stream) {
    if !a.approx {
        return;
    }
    argv[a.trim_arg - 1] = b"=".to_vec();
    argv[a.trim_arg] = match a.trim {
        Trim::MaxLen(_) => s.length.to_string().into_bytes(),
        _ => id_bytes(s.edge_id(true, false)),
    };
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]]
/// *|id field value [field value ...]`
fn xadd(ctx: &mut Ctx<'_>) {
    let Some(a) = parse_add_trim(ctx, true) else {
        return;
    };
    let args = ctx.args;
    let field_pos = a.idpos + 1;
    let nf = args.len().saturating_sub(field_pos);
    if nf < 2 || !nf.is_multiple_of(2) {
        return ctx.wrong_args();
    }
    if a.id_given && a.seq_given && a.id.is_zero() {
        return ctx
            .out
            .error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let limits = ctx.limits();
    let now = ctx.now;
    let db = db(ctx);
    let key = &args[1];
    // The effect is copied for replicas only when some listen.
    let replicated = ctx.srv.hooks.stream.active();
    // (trimmed, propagated argv)
    let done = db.write(key, now, |slot| {
        match found(slot.value()) {
            Found::Wrong => {
                ctx.out.error(err::WRONGTYPE);
                return None;
            }
            Found::Missing if a.no_mkstream => {
                ctx.out.null();
                return None;
            }
            Found::Missing => slot.insert(Value::Stream(Box::default()), None),
            Found::Stream(_) => {}
        }
        let s = stream_mut(slot)?;
        if s.last_id == StreamId::MAX {
            ctx.out.error("ERR The stream has exhausted the last possible ID, unable to add more items");
            return None;
        }
        let id = if a.id_given {
            if a.seq_given {
                a.id
            } else if s.last_id.ms == a.id.ms {
                match s.last_id.incr() {
                    Some(n) if s.last_id.seq != u64::MAX => n,
                    _ => {
                        ctx.out.error("ERR The ID specified in XADD is equal or smaller than the target stream top item");
                        return None;
                    }
                }
            } else {
                a.id
            }
        } else if now > s.last_id.ms {
            StreamId { ms: now, seq: 0 }
        } else {
            s.last_id.incr().unwrap_or(StreamId::MAX)
        };
        match s.append(id, &args[field_pos..], &limits) {
            Ok(()) => {}
            Err(AppendError::Order) => {
                ctx.out.error("ERR The ID specified in XADD is equal or smaller than the target stream top item");
                return None;
            }
            Err(AppendError::TooLarge) => {
                ctx.out.error("ERR Elements are too large to be stored");
                return None;
            }
        }
        bulk_id(ctx.out, id);
        let trimmed = s.trim(a.trim, a.approx, a.limit) > 0;
        let argv = replicated.then(|| {
            let mut argv: Vec<Vec<u8>> = args.iter().map(|b| b.to_vec()).collect();
            if a.trim != Trim::None {
                rewrite_trim(&mut argv, &a, s);
            }
            if !a.id_given || !a.seq_given {
                argv[a.idpos] = id_bytes(id);
            }
            argv
        });
        Some((trimmed, argv))
    });
    let Some((trimmed, argv)) = done else {
        return;
    };
    ctx.notify(class::STREAM, "xadd", key);
    if trimmed {
        ctx.notify(class::STREAM, "xtrim", key);
    }
    match argv {
        Some(argv) => {
            let refs: Vec<&[u8]> = argv.iter().map(|v| v.as_slice()).collect();
            ctx.propagate(&refs);
        }
        // Nobody listens: the request itself must not go out either.
        None => ctx.propagated = true,
    }
}

/// Whether `trim` would remove anything (so XTRIM writes only then).
fn would_trim(s: &Stream, a: &AddTrim) -> bool {
    s.would_trim(a.trim, a.approx, a.limit)
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`
fn xtrim(ctx: &mut Ctx<'_>) {
    let Some(a) = parse_add_trim(ctx, false) else {
        return;
    };
    let args = ctx.args;
    let db = db(ctx);
    let key = &args[1];
    let done = db.write(key, ctx.now, |slot| {
        match found(slot.value()) {
            Found::Wrong => {
                ctx.out.error(err::WRONGTYPE);
                return None;
            }
            Found::Missing => {
                ctx.out.int(0);
                return None;
            }
            Found::Stream(s) if !would_trim(s, &a) => {
                ctx.out.int(0);
                return None;
            }
            Found::Stream(_) => {}
        }
        let s = stream_mut(slot)?;
        let n = s.trim(a.trim, a.approx, a.limit);
        let mut argv: Vec<Vec<u8>> = args.iter().map(|b| b.to_vec()).collect();
        rewrite_trim(&mut argv, &a, s);
        ctx.out.int(n as i64);
        Some(argv)
    });
    match done {
        Some(argv) => {
            ctx.notify(class::STREAM, "xtrim", key);
            let refs: Vec<&[u8]> = argv.iter().map(|v| v.as_slice()).collect();
            ctx.propagate(&refs);
        }
        None => ctx.propagated = true,
    }
}

// ------------------------------------------------------------ reads

/// `XLEN key`
fn xlen(ctx: &mut Ctx<'_>) {
    let key = ctx.args[1].clone();
    read_stream(ctx, &key, |ctx, s| {
        ctx.out.int(s.map_or(0, |s| s.length as i64))
    });
}

fn xrange_generic(ctx: &mut Ctx<'_>, rev: bool) {
    let (si, ei) = if rev { (3, 2) } else { (2, 3) };
    let Some(start) = interval_id(ctx, si, 0, true) else {
        return;
    };
    let Some(end) = interval_id(ctx, ei, u64::MAX, false) else {
        return;
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < ctx.args.len() {
        if ctx.args[j].eq_ignore_ascii_case(b"count") && j + 1 < ctx.args.len() {
            count = match ctx.int_arg(j + 1) {
                Some(c) => c.max(0),
                None => return,
            };
            j += 2;
        } else {
            return ctx.out.error(err::SYNTAX);
        }
    }
    let key = ctx.args[1].clone();
    read_stream(ctx, &key, |ctx, s| match s {
        None => ctx.out.array(0),
        Some(_) if count == 0 => ctx.out.null_array(),
        Some(s) => {
            reply_range(ctx.out, s, start, end, count.max(0) as usize, rev);
        }
    });
}

/// `XRANGE key start end [COUNT count]`
fn xrange(ctx: &mut Ctx<'_>) {
    xrange_generic(ctx, false);
}

/// `XREVRANGE key end start [COUNT count]`
fn xrevrange(ctx: &mut Ctx<'_>) {
    xrange_generic(ctx, true);
}

// ------------------------------------------------------------ XDEL, XSETID

/// `XDEL key id [id ...]`
fn xdel(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let key = &args[1];
    let db = db(ctx);
    let deleted = db.write(key, ctx.now, |slot| {
        let ids = match found(slot.value()) {
            Found::Wrong => {
                ctx.out.error(err::WRONGTYPE);
                return 0;
            }
            Found::Missing => {
                ctx.out.int(0);
                return 0;
            }
            Found::Stream(s) => {
                let mut ids = Vec::with_capacity(args.len() - 2);
                for a in &args[2..] {
                    match parse_id_full(a, 0, true, None) {
                        Some(id) => ids.push(id),
                        None => {
                            ctx.out.error(INVALID_ID);
                            return 0;
                        }
                    }
                }
                if !ids.iter().any(|&id| s.contains(id)) {
                    ctx.out.int(0);
                    return 0;
                }
                ids
            }
        };
        let Some(s) = stream_mut(slot) else { return 0 };
        let mut n = 0;
        let mut first = false;
        for id in ids {
            if s.delete(id) {
                if id == s.first_id {
                    first = true;
                }
                if id > s.max_deleted_entry_id {
                    s.max_deleted_entry_id = id;
                }
                n += 1;
            }
        }
        if s.length == 0 {
            s.first_id = StreamId::MIN;
        } else if first {
            s.first_id = s.edge_id(true, true);
        }
        ctx.out.int(n);
        n
    });
    if deleted > 0 {
        ctx.notify(class::STREAM, "xdel", key);
    }
}

/// `XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]`
fn xsetid(ctx: &mut Ctx<'_>) {
    let Some(id) = strict_id(ctx, 2) else { return };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let args = ctx.args;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args[i].eq_ignore_ascii_case(b"entriesadded") && more > 0 {
            entries_added = match ctx.int_arg(i + 1) {
                Some(v) => v,
                None => return,
            };
            if entries_added < 0 {
                return ctx.out.error("ERR entries_added must be positive");
            }
            i += 2;
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") && more > 0 {
            let Some(m) = strict_id(ctx, i + 1) else {
                return;
            };
            if id < m {
                return ctx.out.error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            max_xdel = m;
            i += 2;
        } else {
            return ctx.out.error(err::SYNTAX);
        }
    }
    let key = &args[1];
    let db = db(ctx);
    let ok = db.write(key, ctx.now, |slot| {
        match found(slot.value()) {
            Found::Wrong => {
                ctx.out.error(err::WRONGTYPE);
                return false;
            }
            Found::Missing => {
                ctx.out.error(err::NO_KEY);
                return false;
            }
            Found::Stream(s) => {
                if s.length > 0 {
                    if id < s.last_valid_id() {
                        ctx.out.error("ERR The ID specified in XSETID is smaller than the target stream top item");
                        return false;
                    }
                    if entries_added != -1 && s.length > entries_added as u64 {
                        ctx.out.error("ERR The entries_added specified in XSETID is smaller than the target stream length");
                        return false;
                    }
                }
            }
        }
        let Some(s) = stream_mut(slot) else { return false };
        s.last_id = id;
        if entries_added != -1 {
            s.entries_added = entries_added as u64;
        }
        if !max_xdel.is_zero() {
            s.max_deleted_entry_id = max_xdel;
        }
        ctx.out.ok();
        true
    });
    if ok {
        ctx.notify(class::STREAM, "xsetid", key);
    }
}

// ------------------------------------------------------------ XREAD

struct ReadArgs {
    timeout: Option<Option<u64>>,
    count: usize,
    streams: usize,
    n: usize,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
}

fn parse_read(ctx: &mut Ctx<'_>, group_cmd: bool) -> Option<ReadArgs> {
    let args = ctx.args;
    let mut r = ReadArgs {
        timeout: None,
        count: 0,
        streams: 0,
        n: 0,
        group: None,
        noack: false,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i];
        if o.eq_ignore_ascii_case(b"block") && more > 0 {
            i += 1;
            r.timeout = Some(block_timeout(ctx, i)?);
        } else if o.eq_ignore_ascii_case(b"count") && more > 0 {
            i += 1;
            r.count = ctx.int_arg(i)?.max(0) as usize;
        } else if o.eq_ignore_ascii_case(b"streams") && more > 0 {
            r.streams = i + 1;
            let n = args.len() - r.streams;
            if !n.is_multiple_of(2) {
                ctx.out.error("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.");
                return None;
            }
            r.n = n / 2;
            break;
        } else if o.eq_ignore_ascii_case(b"group") && more >= 2 {
            if !group_cmd {
                ctx.out.error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
                return None;
            }
            r.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if o.eq_ignore_ascii_case(b"noack") {
            if !group_cmd {
                ctx.out.error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
                return None;
            }
            r.noack = true;
        } else {
            ctx.out.error(err::SYNTAX);
            return None;
        }
        i += 1;
    }
    if r.streams == 0 {
        ctx.out.error(err::SYNTAX);
        return None;
    }
    if group_cmd && r.group.is_none() {
        ctx.out.error("ERR Missing GROUP option for XREADGROUP");
        return None;
    }
    Some(r)
}

/// A BLOCK argument in milliseconds (`getTimeoutFromObjectOrReply` with
/// UNIT_MILLISECONDS): `None` waits forever.
fn block_timeout(ctx: &mut Ctx<'_>, i: usize) -> Option<Option<u64>> {
    let Some(ms) = parse_i64(&ctx.args[i]) else {
        ctx.out
            .error("ERR timeout is not an integer or out of range");
        return None;
    };
    if ms < 0 {
        ctx.out.error("ERR timeout is negative");
        return None;
    }
    if ms > i64::MAX - ctx.now as i64 {
        ctx.out.error("ERR timeout is out of range");
        return None;
    }
    Some((ms > 0).then_some(ms as u64))
}

/// What one stream of XREAD/XREADGROUP reads after.
#[derive(Clone, Copy)]
enum From {
    /// Entries above this id.
    After(StreamId),
    /// XREADGROUP's `>`: entries never delivered to the group.
    New,
}

/// Serves one stream of a (possibly group) read into `out` (the key and
/// its entries). Returns false when there is nothing to serve.
#[allow(clippy::too_many_arguments)]
fn serve_one(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    from: From,
    count: usize,
    group: Option<&(Bytes, Bytes)>,
    noack: bool,
    out: &mut Out,
    blocked: bool,
) -> bool {
    let now = ctx.now;
    let db = db(ctx);
    let Some((gname, cname)) = group else {
        let From::After(gt) = from else { return false };
        return db.get(key, now, |n| {
            let Some(Value::Stream(s)) = n.map(|n| &n.value) else {
                return false;
            };
            let ready = if blocked {
                s.last_id > gt
            } else {
                s.length > 0 && s.last_valid_id() > gt
            };
            if !ready {
                return false;
            }
            let start = gt.incr().unwrap_or(StreamId::MAX);
            if !out.resp3() {
                out.array(2);
            }
            out.bulk(key);
            reply_range(out, s, start, StreamId::MAX, count, false);
            true
        });
    };
    // A group read: look first, write only when serving.
    let serve = db.get(key, now, |n| {
        let Some(Value::Stream(s)) = n.map(|n| &n.value) else {
            return false;
        };
        let Some(g) = s.groups.get(gname.as_ref()) else {
            return false;
        };
        match from {
            From::After(_) => true,
            From::New if blocked => s.last_id > g.last_id,
            From::New => s.length > 0 && s.last_valid_id() > g.last_id,
        }
    });
    if !serve {
        return false;
    }
    let mut effects: Vec<Vec<Vec<u8>>> = Vec::new();
    // The effects are built for replicas only when some listen.
    let replicated = ctx.srv.hooks.stream.active();
    let mut created = false;
    db.write(key, now, |slot| {
        let Some(s) = stream_mut(slot) else { return };
        // Out of the map while the stream is read (the key is reused).
        let Some((gkey, mut g)) = s.groups.remove_entry(gname.as_ref()) else {
            return;
        };
        let cname_box: Box<[u8]> = cname.as_ref().into();
        if touch_consumer(&mut g, &cname_box, now) {
            created = true;
            if noack && replicated {
                effects.push(vec![
                    b"XGROUP".to_vec(),
                    b"CREATECONSUMER".to_vec(),
                    key.to_vec(),
                    gname.to_vec(),
                    cname.to_vec(),
                ]);
            }
        }
        if !out.resp3() {
            out.array(2);
        }
        out.bulk(key);
        match from {
            From::After(gt) => {
                // History: this consumer's pending entries after `gt`.
                let start = gt.incr().unwrap_or(StreamId::MAX);
                let ids: Vec<StreamId> = g
                    .consumers
                    .get(&cname_box)
                    .map(|c| {
                        c.pel
                            .range(start..)
                            .take(if count == 0 { usize::MAX } else { count })
                            .copied()
                            .collect()
                    })
                    .unwrap_or_default();
                out.array(ids.len());
                for id in ids {
                    match s.range(id, id, false).next() {
                        Some(e) => {
                            reply_entry(out, &e);
                            if let Some(n) = g.pel.get_mut(&id) {
                                n.delivery_time = now;
                                n.delivery_count = n.delivery_count.wrapping_add(1);
                            }
                        }
                        None => {
                            out.array(2);
                            bulk_id(out, id);
                            out.null_array();
                        }
                    }
                }
            }
            From::New => {
                let start = g.last_id.incr().unwrap_or(StreamId::MAX);
                let mut ids = Vec::new();
                let mut body = Out::new(out.proto);
                for e in s.range(start, StreamId::MAX, false) {
                    reply_entry(&mut body, &e);
                    ids.push(e.id);
                    if count > 0 && ids.len() == count {
                        break;
                    }
                }
                out.array(ids.len());
                out.raw(body.buf());
                let mut moved_last = false;
                for id in ids {
                    if id > g.last_id {
                        if g.entries_read != -1 && !s.range_has_tombstones(id, StreamId::MAX) {
                            g.entries_read = g.entries_read.wrapping_add(1);
                        } else if s.entries_added > 0 {
                            g.entries_read = s.estimate_distance(id);
                        }
                        g.last_id = id;
                        moved_last = true;
                    }
                    if noack {
                        continue;
                    }
                    if let Some(old) = g.pel.get(&id).map(|n| n.consumer.clone()) {
                        if let Some(c) = g.consumers.get_mut(&old) {
                            c.pel.remove(&id);
                        }
                    }
                    g.pel.insert(
                        id,
                        Nack {
                            delivery_time: now,
                            delivery_count: 1,
                            consumer: cname_box.clone(),
                        },
                    );
                    if let Some(c) = g.consumers.get_mut(&cname_box) {
                        c.pel.insert(id);
                    }
                    if replicated {
                        effects.push(xclaim_effect(key, gname, &g, id));
                    }
                }
                if noack && moved_last && replicated {
                    effects.push(setid_effect(key, gname, &g));
                }
            }
        }
        s.groups.insert(gkey, g);
    });
    if created {
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    propagate_all(ctx, effects);
    true
}

/// Propagates a command's effects; several go inside MULTI/EXEC, as
/// Redis wraps what one command propagates, so a replica never shows half
/// of a read or a claim.
fn propagate_all(ctx: &mut Ctx<'_>, effects: Vec<Vec<Vec<u8>>>) {
    ctx.propagated = true;
    let wrap = effects.len() > 1 && !ctx.in_exec;
    if wrap {
        ctx.srv.repl.begin_tx();
    }
    for e in effects {
        let refs: Vec<&[u8]> = e.iter().map(|v| v.as_slice()).collect();
        ctx.propagate(&refs);
    }
    if wrap {
        ctx.srv.repl.end_tx();
    }
}

/// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID
/// LASTID last`: how Redis replicates a delivery (`streamPropagateXCLAIM`).
fn xclaim_effect(key: &[u8], group: &[u8], g: &Group, id: StreamId) -> Vec<Vec<u8>> {
    let n = g.pel.get(&id);
    let (consumer, time, count) = n.map_or((Vec::new(), 0, 0), |n| {
        (n.consumer.to_vec(), n.delivery_time, n.delivery_count)
    });
    vec![
        b"XCLAIM".to_vec(),
        key.to_vec(),
        group.to_vec(),
        consumer,
        b"0".to_vec(),
        id_bytes(id),
        b"TIME".to_vec(),
        time.to_string().into_bytes(),
        b"RETRYCOUNT".to_vec(),
        count.to_string().into_bytes(),
        b"FORCE".to_vec(),
        b"JUSTID".to_vec(),
        b"LASTID".to_vec(),
        id_bytes(g.last_id),
    ]
}

/// `XGROUP SETID key group last ENTRIESREAD n` (`streamPropagateGroupID`).
fn setid_effect(key: &[u8], group: &[u8], g: &Group) -> Vec<Vec<u8>> {
    vec![
        b"XGROUP".to_vec(),
        b"SETID".to_vec(),
        key.to_vec(),
        group.to_vec(),
        id_bytes(g.last_id),
        b"ENTRIESREAD".to_vec(),
        g.entries_read.to_string().into_bytes(),
    ]
}

fn xread_generic(ctx: &mut Ctx<'_>, group_cmd: bool) {
    let Some(r) = parse_read(ctx, group_cmd) else {
        return;
    };
    let args = ctx.args;
    if r.timeout.is_some() && ctx.in_exec && ctx.srv.scripting.watch.running() {
        // Scripts hold the gate, so a running script is this caller.
        let name = String::from_utf8_lossy(&args[0]).into_owned();
        return ctx.out.error(&format!(
            "ERR {name} command is not allowed with BLOCK option from scripts"
        ));
    }
    let now = ctx.now;
    let mut froms = Vec::with_capacity(r.n);
    for k in 0..r.n {
        let key = &args[r.streams + k];
        let ida = &args[r.streams + r.n + k];
        let db = db(ctx);
        // (found, is stream, last id, has group)
        let look = db.get(key, now, |n| match n.map(|n| &n.value) {
            None => Some((false, StreamId::MIN, false)),
            Some(Value::Stream(s)) => Some((
                true,
                s.last_id,
                r.group
                    .as_ref()
                    .is_some_and(|(g, _)| s.groups.contains_key(g.as_ref())),
            )),
            Some(_) => None,
        });
        ctx.looked_up(key, !matches!(look, Some((false, _, _))));
        let Some((exists, last, has_group)) = look else {
            return ctx.out.error(err::WRONGTYPE);
        };
        if let Some((g, _)) = &r.group {
            if !exists || !has_group {
                return ctx.out.error(&format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(g)
                ));
            }
        }
        if ida.as_ref() == b"$" {
            if group_cmd {
                return ctx.out.error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
            }
            froms.push(From::After(if exists { last } else { StreamId::MIN }));
            continue;
        }
        if ida.as_ref() == b">" {
            if !group_cmd {
                return ctx.out.error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
            }
            froms.push(From::New);
            continue;
        }
        match parse_id_full(ida, 0, true, None) {
            Some(id) => froms.push(From::After(id)),
            None => return ctx.out.error(INVALID_ID),
        }
    }
    ctx.propagated = true;
    let mut body = Out::new(ctx.out.proto);
    let mut served = 0;
    for (k, from) in froms.iter().enumerate() {
        let key = args[r.streams + k].clone();
        if serve_one(
            ctx,
            &key,
            *from,
            r.count,
            r.group.as_ref(),
            r.noack,
            &mut body,
            false,
        ) {
            served += 1;
        }
    }
    if served > 0 {
        if ctx.out.resp3() {
            ctx.out.map_len(served);
        } else {
            ctx.out.array(served);
        }
        ctx.out.raw(body.buf());
        return;
    }
    let Some(timeout) = r.timeout else {
        return ctx.out.null_array();
    };
    if ctx.in_exec {
        return ctx.out.null_array();
    }
    // `$` is resolved now: the waiter reads what comes after this moment.
    let mut wargs: Vec<Bytes> = args.to_vec();
    for (k, from) in froms.iter().enumerate() {
        if let From::After(id) = from {
            wargs[r.streams + r.n + k] = Bytes::from(id_bytes(*id));
        }
    }
    let keys = args[r.streams..r.streams + r.n].to_vec();
    ctx.block_args(wargs, keys, timeout, serve_blocked, Out::null_array);
}

/// Serves a client blocked in XREAD/XREADGROUP from `key`, as Redis's
/// `serveClientsBlockedOnStreamKey`: a group that went away or a key that
/// is no stream any more ends the wait with an error.
fn serve_blocked(ctx: &mut Ctx<'_>, key: &[u8]) -> bool {
    let group_cmd = ctx.args[0].len() == 10;
    let Some(r) = ctx.quietly(|p| parse_read(p, group_cmd)) else {
        return false;
    };
    let Some(k) = (0..r.n).find(|&k| ctx.args[r.streams + k].as_ref() == key) else {
        return false;
    };
    let now = ctx.now;
    let state = db(ctx).get(key, now, |n| match n.map(|n| &n.value) {
        Some(Value::Stream(s)) => Some(
            r.group
                .as_ref()
                .is_none_or(|(g, _)| s.groups.contains_key(g.as_ref())),
        ),
        _ => None,
    });
    if r.group.is_some() {
        match state {
            None => {
                ctx.out.error("UNBLOCKED the stream key no longer exists");
                return true;
            }
            Some(false) => {
                ctx.out.error(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                );
                return true;
            }
            Some(true) => {}
        }
    } else if state.is_none() {
        return false;
    }
    let ida = &ctx.args[r.streams + r.n + k];
    let from = if ida.as_ref() == b">" {
        From::New
    } else {
        match parse_id_full(ida, 0, true, None) {
            Some(id) => From::After(id),
            None => return false,
        }
    };
    let count = if r.count == 0 {
        BLOCKED_DEFAULT_COUNT
    } else {
        r.count
    };
    let mut body = Out::new(ctx.out.proto);
    let key = Bytes::copy_from_slice(key);
    if !serve_one(
        ctx,
        &key,
        from,
        count,
        r.group.as_ref(),
        r.noack,
        &mut body,
        true,
    ) {
        return false;
    }
    if ctx.out.resp3() {
        ctx.out.map_len(1);
    } else {
        ctx.out.array(1);
    }
    ctx.out.raw(body.buf());
    true
}

/// `XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...]`
fn xread(ctx: &mut Ctx<'_>) {
    xread_generic(ctx, false);
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK]
/// STREAMS key [key ...] id [id ...]`
fn xreadgroup(ctx: &mut Ctx<'_>) {
    xread_generic(ctx, true);
}

// ------------------------------------------------------------ XGROUP

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

/// `XGROUP HELP`
fn xgroup_help(ctx: &mut Ctx<'_>) {
    super::help(ctx.out, "XGROUP", XGROUP_HELP);
}

/// Every XGROUP subcommand but HELP: Redis checks options, the key and
/// the group once for all of them (`xgroupCommand`).
fn xgroup(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let argc = args.len();
    let sub = args[1].to_ascii_lowercase();
    let create = sub == b"create";
    let setid = sub == b"setid";
    let mut mkstream = false;
    let mut entries_read: i64 = -1;
    let mut i = 5;
    while i < argc {
        if create && args[i].eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && args[i].eq_ignore_ascii_case(b"entriesread") && i + 1 < argc
        {
            entries_read = match ctx.int_arg(i + 1) {
                Some(v) => v,
                None => return,
            };
            if entries_read < 0 && entries_read != -1 {
                return ctx
                    .out
                    .error("ERR value for ENTRIESREAD must be positive or -1");
            }
            i += 2;
        } else {
            return super::subcommand_syntax_error(ctx);
        }
    }
    let key = &args[2];
    let gname = &args[3];
    let now = ctx.now;
    let db = db(ctx);
    let mut event: Option<&str> = None;
    db.write(key, now, |slot| {
        let (exists, has_group, last) = match found(slot.value()) {
            Found::Wrong => return ctx.out.error(err::WRONGTYPE),
            Found::Missing => (false, false, StreamId::MIN),
            Found::Stream(s) => (true, s.groups.contains_key(gname.as_ref()), s.last_id),
        };
        if !mkstream {
            if !exists {
                return ctx.out.error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
            }
            if !has_group && matches!(&sub[..], b"setid" | b"createconsumer" | b"delconsumer") {
                return ctx.out.error(&format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(gname),
                    String::from_utf8_lossy(key)
                ));
            }
        }
        match &sub[..] {
            b"create" if (5..=8).contains(&argc) => {
                let id = if args[4].as_ref() == b"$" {
                    last
                } else {
                    match parse_id_full(&args[4], 0, true, None) {
                        Some(id) => id,
                        None => return ctx.out.error(INVALID_ID),
                    }
                };
                if !exists {
                    slot.insert(Value::Stream(Box::default()), None);
                } else if has_group {
                    return ctx.out.error("BUSYGROUP Consumer Group name already exists");
                }
                if let Some(s) = stream_mut(slot) {
                    s.groups.insert(gname.as_ref().into(), Group::new(id, entries_read));
                }
                ctx.out.ok();
                event = Some("xgroup-create");
            }
            b"setid" if argc == 5 || argc == 7 => {
                let id = if args[4].as_ref() == b"$" {
                    last
                } else {
                    match parse_id_full(&args[4], 0, false, None) {
                        Some(id) => id,
                        None => return ctx.out.error(INVALID_ID),
                    }
                };
                if let Some(g) = stream_mut(slot).and_then(|s| s.groups.get_mut(gname.as_ref())) {
                    g.last_id = id;
                    g.entries_read = entries_read;
                }
                ctx.out.ok();
                event = Some("xgroup-setid");
            }
            b"destroy" if argc == 4 => {
                if has_group {
                    if let Some(s) = stream_mut(slot) {
                        s.groups.remove(gname.as_ref());
                    }
                    ctx.out.int(1);
                    event = Some("xgroup-destroy");
                } else {
                    ctx.out.int(0);
                }
            }
            b"createconsumer" if argc == 5 => {
                let cname: Box<[u8]> = args[4].as_ref().into();
                let exists = matches!(found(slot.value()), Found::Stream(s)
                    if s.groups.get(gname.as_ref()).is_some_and(|g| g.consumers.contains_key(&cname)));
                if exists {
                    return ctx.out.int(0);
                }
                if let Some(g) = stream_mut(slot).and_then(|s| s.groups.get_mut(gname.as_ref())) {
                    g.consumers.insert(
                        cname,
                        Consumer {
                            seen_time: now,
                            ..Consumer::default()
                        },
                    );
                }
                ctx.out.int(1);
                event = Some("xgroup-createconsumer");
            }
            b"delconsumer" if argc == 5 => {
                let cname: Box<[u8]> = args[4].as_ref().into();
                let exists = matches!(found(slot.value()), Found::Stream(s)
                    if s.groups.get(gname.as_ref()).is_some_and(|g| g.consumers.contains_key(&cname)));
                if !exists {
                    return ctx.out.int(0);
                }
                let mut pending = 0;
                if let Some(g) = stream_mut(slot).and_then(|s| s.groups.get_mut(gname.as_ref())) {
                    if let Some(c) = g.consumers.remove(&cname) {
                        pending = c.pel.len();
                        for id in c.pel {
                            g.pel.remove(&id);
                        }
                    }
                }
                ctx.out.int(pending as i64);
                event = Some("xgroup-delconsumer");
            }
            _ => super::subcommand_syntax_error(ctx),
        }
    });
    if let Some(e) = event {
        ctx.notify(class::STREAM, e, key);
    }
}

// ------------------------------------------------------------ XACK, XPENDING

/// `XACK key group id [id ...]`
fn xack(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let key = &args[1];
    let db = db(ctx);
    db.write(key, ctx.now, |slot| {
        let ids = match found(slot.value()) {
            Found::Wrong => return ctx.out.error(err::WRONGTYPE),
            Found::Missing => return ctx.out.int(0),
            Found::Stream(s) => {
                let Some(g) = s.groups.get(args[2].as_ref()) else {
                    return ctx.out.int(0);
                };
                let mut ids = Vec::new();
                for a in &args[3..] {
                    match parse_id_full(a, 0, true, None) {
                        Some(id) => ids.push(id),
                        None => return ctx.out.error(INVALID_ID),
                    }
                }
                if !ids.iter().any(|id| g.pel.contains_key(id)) {
                    return ctx.out.int(0);
                }
                ids
            }
        };
        let mut n = 0;
        if let Some(g) = stream_mut(slot).and_then(|s| s.groups.get_mut(args[2].as_ref())) {
            for id in ids {
                if g.ack(id) {
                    n += 1;
                }
            }
        }
        ctx.out.int(n);
    });
}

fn nogroup(ctx: &mut Ctx<'_>, key: &[u8], group: &[u8]) {
    ctx.out.error(&format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ));
}

/// `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`
fn xpending(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let argc = args.len();
    let justinfo = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return ctx.out.error(err::SYNTAX);
    }
    let (mut start, mut end, mut count, mut minidle) = (StreamId::MIN, StreamId::MAX, 0i64, 0i64);
    let mut consumer: Option<&Bytes> = None;
    if argc >= 6 {
        let mut si = 3;
        if args[3].eq_ignore_ascii_case(b"idle") {
            minidle = match ctx.int_arg(4) {
                Some(v) => v,
                None => return,
            };
            if argc < 8 {
                return ctx.out.error(err::SYNTAX);
            }
            si += 2;
        }
        count = match ctx.int_arg(si + 2) {
            Some(v) => v.max(0),
            None => return,
        };
        start = match interval_id(ctx, si, 0, true) {
            Some(v) => v,
            None => return,
        };
        end = match interval_id(ctx, si + 1, u64::MAX, false) {
            Some(v) => v,
            None => return,
        };
        if si + 3 < argc {
            consumer = Some(&args[si + 3]);
        }
    }
    let key = &args[1];
    let gname = &args[2];
    let now = ctx.now as i64;
    let r = read_stream(ctx, key, |ctx, s| {
        let Some(g) = s.and_then(|s| s.groups.get(gname.as_ref())) else {
            return nogroup(ctx, key, gname);
        };
        let out = &mut *ctx.out;
        if justinfo {
            out.array(4);
            out.int(g.pel.len() as i64);
            match (g.pel.keys().next(), g.pel.keys().next_back()) {
                (Some(&a), Some(&b)) => {
                    bulk_id(out, a);
                    bulk_id(out, b);
                    let owners: Vec<(&Box<[u8]>, &Consumer)> = g
                        .consumers
                        .iter()
                        .filter(|(_, c)| !c.pel.is_empty())
                        .collect();
                    out.array(owners.len());
                    for (name, c) in owners {
                        out.array(2);
                        out.bulk(name);
                        out.bulk_int(c.pel.len() as i64);
                    }
                }
                _ => {
                    out.null();
                    out.null();
                    out.null_array();
                }
            }
            return;
        }
        let ids: Vec<StreamId> = match consumer {
            Some(c) => match g.consumers.get(c.as_ref()) {
                Some(c) => c
                    .pel
                    .range(start..)
                    .take_while(|&&id| id <= end)
                    .copied()
                    .collect(),
                None => return out.array(0),
            },
            None => g
                .pel
                .range(start..)
                .take_while(|(&id, _)| id <= end)
                .map(|(k, _)| *k)
                .collect(),
        };
        let mut body = Out::new(out.proto);
        let mut n = 0;
        for id in ids {
            if count == 0 {
                break;
            }
            let Some(nack) = g.pel.get(&id) else { continue };
            let idle = now - nack.delivery_time as i64;
            if minidle != 0 && idle < minidle {
                continue;
            }
            n += 1;
            count -= 1;
            body.array(4);
            bulk_id(&mut body, id);
            body.bulk(&nack.consumer);
            body.int(idle.max(0));
            body.int(nack.delivery_count as i64);
        }
        out.array(n);
        out.raw(body.buf());
    });
    let _ = r;
}

// ------------------------------------------------------------ XCLAIM

/// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms]
/// [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID]
/// [LASTID lastid]`
fn xclaim(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let argc = args.len();
    let key = &args[1];
    let gname = &args[2];
    let now = ctx.now;
    let db = db(ctx);
    let has = db.get(key, now, |n| match n.map(|n| &n.value) {
        None => Some(false),
        Some(Value::Stream(s)) => Some(s.groups.contains_key(gname.as_ref())),
        Some(_) => None,
    });
    match has {
        None => return ctx.out.error(err::WRONGTYPE),
        Some(false) => return nogroup(ctx, key, gname),
        Some(true) => {}
    }
    let Some(minidle) = int_or(ctx, 4, Some("Invalid min-idle-time argument for XCLAIM")) else {
        return;
    };
    let minidle = minidle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < argc {
        match parse_id_full(&args[j], 0, true, None) {
            Some(id) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let mut deliverytime: i64 = -1;
    let mut retrycount: i64 = -1;
    let (mut force, mut justid) = (false, false);
    let mut last_id = StreamId::MIN;
    let nowi = now as i64;
    while j < argc {
        let more = argc - 1 - j;
        let o = &args[j];
        if o.eq_ignore_ascii_case(b"force") {
            force = true;
        } else if o.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else if o.eq_ignore_ascii_case(b"idle") && more > 0 {
            j += 1;
            let Some(v) = int_or(ctx, j, Some("Invalid IDLE option argument for XCLAIM")) else {
                return;
            };
            deliverytime = nowi.wrapping_sub(v);
        } else if o.eq_ignore_ascii_case(b"time") && more > 0 {
            j += 1;
            let Some(v) = int_or(ctx, j, Some("Invalid TIME option argument for XCLAIM")) else {
                return;
            };
            deliverytime = v;
        } else if o.eq_ignore_ascii_case(b"retrycount") && more > 0 {
            j += 1;
            let Some(v) = int_or(
                ctx,
                j,
                Some("Invalid RETRYCOUNT option argument for XCLAIM"),
            ) else {
                return;
            };
            retrycount = v;
        } else if o.eq_ignore_ascii_case(b"lastid") && more > 0 {
            j += 1;
            let Some(v) = strict_id(ctx, j) else { return };
            last_id = v;
        } else {
            return ctx.out.error(&format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(o)
            ));
        }
        j += 1;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > nowi {
        deliverytime = nowi;
    }
    let deliverytime = deliverytime as u64;
    let mut claimant = Claimant::new(&args[3]);
    let mut effects: Vec<Vec<Vec<u8>>> = Vec::new();
    db.write(key, now, |slot| {
        let Some(s) = stream_mut(slot) else { return };
        let Some(mut g) = s.groups.remove(gname.as_ref()) else {
            return;
        };
        let mut propagate_last = false;
        if last_id > g.last_id {
            g.last_id = last_id;
            propagate_last = true;
        }
        let mut body = Out::new(ctx.out.proto);
        let mut n = 0;
        for id in ids {
            let exists = s.contains(id);
            if !exists {
                if g.pel.contains_key(&id) {
                    effects.push(xclaim_effect(key, gname, &g, id));
                    propagate_last = false;
                    g.ack(id);
                }
                continue;
            }
            if force && !g.pel.contains_key(&id) {
                g.pel.insert(
                    id,
                    Nack {
                        delivery_time: now,
                        delivery_count: 1,
                        consumer: Box::default(),
                    },
                );
            }
            let Some(nack) = g.pel.get(&id) else { continue };
            let owned = !nack.consumer.is_empty() || g.consumers.contains_key(&nack.consumer);
            if owned && minidle > 0 && nowi - (nack.delivery_time as i64) < minidle {
                continue;
            }
            let count = (retrycount >= 0).then_some(retrycount as u64);
            claimant.take(&mut g, id, now, deliverytime, count, !justid);
            reply_claimed(&mut body, s, id, justid);
            n += 1;
            effects.push(xclaim_effect(key, gname, &g, id));
            propagate_last = false;
        }
        if propagate_last {
            effects.push(setid_effect(key, gname, &g));
        }
        s.groups.insert(gname.as_ref().into(), g);
        ctx.out.array(n);
        ctx.out.raw(body.buf());
    });
    if claimant.created {
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    ctx.propagated = true;
    propagate_all(ctx, effects);
}

/// The consumer XCLAIM and XAUTOCLAIM hand entries to. Redis makes it (or
/// refreshes its seen-time) on the first entry actually claimed, so a claim
/// that takes nothing leaves the group as it was.
struct Claimant {
    name: Box<[u8]>,
    ready: bool,
    /// It did not exist: the command announces `xgroup-createconsumer`.
    created: bool,
}

impl Claimant {
    fn new(name: &[u8]) -> Claimant {
        Claimant {
            name: name.into(),
            ready: false,
            created: false,
        }
    }

    /// Moves pending entry `id` of `g` to this consumer, delivered at
    /// `delivery_time`: its delivery count becomes `count` when given, else
    /// goes up by one when `bump` (JUSTID leaves it).
    fn take(
        &mut self,
        g: &mut Group,
        id: StreamId,
        now: u64,
        delivery_time: u64,
        count: Option<u64>,
        bump: bool,
    ) {
        if !std::mem::replace(&mut self.ready, true) {
            self.created = touch_consumer(g, &self.name, now);
        }
        let Some(nack) = g.pel.get_mut(&id) else {
            return;
        };
        if nack.consumer != self.name {
            if let Some(c) = g.consumers.get_mut(&nack.consumer) {
                c.pel.remove(&id);
            }
        }
        nack.delivery_time = delivery_time;
        match count {
            Some(n) => nack.delivery_count = n,
            None if bump => nack.delivery_count = nack.delivery_count.wrapping_add(1),
            None => {}
        }
        nack.consumer = self.name.clone();
        if let Some(c) = g.consumers.get_mut(&self.name) {
            c.pel.insert(id);
        }
    }
}

/// Marks consumer `name` of `g` seen at `now`, making it when missing
/// (then returns true: the command announces `xgroup-createconsumer`).
fn touch_consumer(g: &mut Group, name: &[u8], now: u64) -> bool {
    if let Some(c) = g.consumers.get_mut(name) {
        c.seen_time = now;
        return false;
    }
    let c = Consumer {
        seen_time: now,
        ..Consumer::default()
    };
    g.consumers.insert(name.into(), c);
    true
}

/// One claimed entry of XCLAIM/XAUTOCLAIM's reply: its id under JUSTID,
/// else the entry.
fn reply_claimed(body: &mut Out, s: &Stream, id: StreamId, justid: bool) {
    if justid {
        bulk_id(body, id);
    } else if let Some(e) = s.range(id, id, false).next() {
        reply_entry(body, &e);
    }
}

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`
fn xautoclaim(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let argc = args.len();
    let Some(minidle) = int_or(
        ctx,
        4,
        Some("Invalid min-idle-time argument for XAUTOCLAIM"),
    ) else {
        return;
    };
    let minidle = minidle.max(0);
    let Some(start) = interval_id(ctx, 5, 0, true) else {
        return;
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argc {
        let more = argc - 1 - j;
        if args[j].eq_ignore_ascii_case(b"count") && more > 0 {
            let max = i64::MAX / 16;
            match parse_i64(&args[j + 1]) {
                Some(v) if (1..=max).contains(&v) => count = v,
                _ => return ctx.out.error("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return ctx.out.error(err::SYNTAX);
        }
        j += 1;
    }
    let key = &args[1];
    let gname = &args[2];
    let now = ctx.now;
    let db = db(ctx);
    let has = db.get(key, now, |n| match n.map(|n| &n.value) {
        None => Some(false),
        Some(Value::Stream(s)) => Some(s.groups.contains_key(gname.as_ref())),
        Some(_) => None,
    });
    match has {
        None => return ctx.out.error(err::WRONGTYPE),
        Some(false) => return nogroup(ctx, key, gname),
        Some(true) => {}
    }
    let mut claimant = Claimant::new(&args[3]);
    let mut effects: Vec<Vec<Vec<u8>>> = Vec::new();
    let nowi = now as i64;
    db.write(key, now, |slot| {
        let Some(s) = stream_mut(slot) else { return };
        let Some(mut g) = s.groups.remove(gname.as_ref()) else {
            return;
        };
        let mut attempts = count.saturating_mul(10);
        let limit = (attempts as usize).min(g.pel.len()) + 1;
        let keys: Vec<StreamId> = g.pel.range(start..).take(limit).map(|(k, _)| *k).collect();
        let mut idx = 0;
        let mut body = Out::new(ctx.out.proto);
        let mut n = 0;
        let mut deleted = Vec::new();
        while attempts > 0 && count > 0 && idx < keys.len() {
            attempts -= 1;
            let id = keys[idx];
            idx += 1;
            if !s.contains(id) {
                effects.push(xclaim_effect(key, gname, &g, id));
                g.ack(id);
                deleted.push(id);
                count -= 1;
                continue;
            }
            let Some(nack) = g.pel.get(&id) else { continue };
            if minidle > 0 && nowi - (nack.delivery_time as i64) < minidle {
                continue;
            }
            claimant.take(&mut g, id, now, now, None, !justid);
            reply_claimed(&mut body, s, id, justid);
            n += 1;
            count -= 1;
            effects.push(xclaim_effect(key, gname, &g, id));
        }
        let next = if idx < keys.len() {
            keys[idx]
        } else {
            StreamId::MIN
        };
        s.groups.insert(gname.as_ref().into(), g);
        let out = &mut *ctx.out;
        out.array(3);
        bulk_id(out, next);
        out.array(n);
        out.raw(body.buf());
        out.array(deleted.len());
        for id in deleted {
            bulk_id(out, id);
        }
    });
    if claimant.created {
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    ctx.propagated = true;
    propagate_all(ctx, effects);
}

// ------------------------------------------------------------ XINFO

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

/// `XINFO HELP`
fn xinfo_help(ctx: &mut Ctx<'_>) {
    super::help(ctx.out, "XINFO", XINFO_HELP);
}

fn lookup_for_info<R>(ctx: &mut Ctx<'_>, f: impl FnOnce(&mut Ctx<'_>, &Stream) -> R) {
    let key = ctx.args[2].clone();
    read_stream(ctx, &key, |ctx, s| match s {
        None => ctx.out.error(err::NO_KEY),
        Some(s) => {
            f(ctx, s);
        }
    });
}

fn reply_lag(out: &mut Out, s: &Stream, g: &Group) {
    match s.lag(g) {
        Some(l) => out.int(l),
        None => out.null(),
    }
}

fn reply_entries_read(out: &mut Out, g: &Group) {
    if g.entries_read != -1 {
        out.int(g.entries_read);
    } else {
        out.null();
    }
}

/// `XINFO CONSUMERS key group`
fn xinfo_consumers(ctx: &mut Ctx<'_>) {
    let now = ctx.now as i64;
    lookup_for_info(ctx, |ctx, s| {
        let gname = &ctx.args[3];
        let Some(g) = s.groups.get(gname.as_ref()) else {
            let msg = format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(gname),
                String::from_utf8_lossy(&ctx.args[2])
            );
            return ctx.out.error(&msg);
        };
        let out = &mut *ctx.out;
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map_len(3);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"pending");
            out.int(c.pel.len() as i64);
            out.bulk(b"idle");
            out.int((now - c.seen_time as i64).max(0));
        }
    });
}

/// `XINFO GROUPS key`
fn xinfo_groups(ctx: &mut Ctx<'_>) {
    lookup_for_info(ctx, |ctx, s| {
        let out = &mut *ctx.out;
        out.array(s.groups.len());
        for (name, g) in &s.groups {
            out.map_len(6);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"consumers");
            out.int(g.consumers.len() as i64);
            out.bulk(b"pending");
            out.int(g.pel.len() as i64);
            out.bulk(b"last-delivered-id");
            bulk_id(out, g.last_id);
            out.bulk(b"entries-read");
            reply_entries_read(out, g);
            out.bulk(b"lag");
            reply_lag(out, s, g);
        }
    });
}

/// `XINFO STREAM key [FULL [COUNT count]]`
fn xinfo_stream(ctx: &mut Ctx<'_>) {
    // Redis looks the key up before it reads the options.
    lookup_for_info(ctx, |ctx, s| {
        let args = ctx.args;
        let optc = args.len() - 3;
        let mut full = false;
        let mut count: i64 = 10;
        if optc > 0 {
            if (optc != 1 && optc != 3) || !args[3].eq_ignore_ascii_case(b"full") {
                return super::subcommand_syntax_error(ctx);
            }
            full = true;
            if optc == 3 {
                if !args[4].eq_ignore_ascii_case(b"count") {
                    return super::subcommand_syntax_error(ctx);
                }
                count = match ctx.int_arg(5) {
                    Some(c) if c < 0 => 10,
                    Some(c) => c,
                    None => return,
                };
            }
        }
        let out = &mut *ctx.out;
        out.map_len(if full { 9 } else { 10 });
        out.bulk(b"length");
        out.int(s.length as i64);
        out.bulk(b"radix-tree-keys");
        out.int(s.node_count() as i64);
        out.bulk(b"radix-tree-nodes");
        out.int(s.rax_nodes() as i64);
        out.bulk(b"last-generated-id");
        bulk_id(out, s.last_id);
        out.bulk(b"max-deleted-entry-id");
        bulk_id(out, s.max_deleted_entry_id);
        out.bulk(b"entries-added");
        out.int(s.entries_added as i64);
        out.bulk(b"recorded-first-entry-id");
        bulk_id(out, s.first_id);
        if !full {
            out.bulk(b"groups");
            out.int(s.groups.len() as i64);
            out.bulk(b"first-entry");
            match s.range(StreamId::MIN, StreamId::MAX, false).next() {
                Some(e) => reply_entry(out, &e),
                None => out.null(),
            }
            out.bulk(b"last-entry");
            match s.range(StreamId::MIN, StreamId::MAX, true).next() {
                Some(e) => reply_entry(out, &e),
                None => out.null(),
            }
            return;
        }
        let count = count as usize;
        out.bulk(b"entries");
        reply_range(out, s, StreamId::MIN, StreamId::MAX, count, false);
        out.bulk(b"groups");
        out.array(s.groups.len());
        let take = if count == 0 { usize::MAX } else { count };
        for (name, g) in &s.groups {
            out.map_len(7);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"last-delivered-id");
            bulk_id(out, g.last_id);
            out.bulk(b"entries-read");
            reply_entries_read(out, g);
            out.bulk(b"lag");
            reply_lag(out, s, g);
            out.bulk(b"pel-count");
            out.int(g.pel.len() as i64);
            out.bulk(b"pending");
            out.array(g.pel.len().min(take));
            for (id, n) in g.pel.iter().take(take) {
                out.array(4);
                bulk_id(out, *id);
                out.bulk(&n.consumer);
                out.int(n.delivery_time as i64);
                out.int(n.delivery_count as i64);
            }
            out.bulk(b"consumers");
            out.array(g.consumers.len());
            for (cname, c) in &g.consumers {
                out.map_len(4);
                out.bulk(b"name");
                out.bulk(cname);
                out.bulk(b"seen-time");
                out.int(c.seen_time as i64);
                out.bulk(b"pel-count");
                out.int(c.pel.len() as i64);
                out.bulk(b"pending");
                out.array(c.pel.len().min(take));
                for id in c.pel.iter().take(take) {
                    let (t, k) = g
                        .pel
                        .get(id)
                        .map_or((0, 0), |n| (n.delivery_time, n.delivery_count));
                    out.array(3);
                    bulk_id(out, *id);
                    out.int(t as i64);
                    out.int(k as i64);
                }
            }
        }
    });
}

// ------------------------------------------------------------ table

const ONE: (i32, i32, i32) = (1, 1, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);
const SUB: (i32, i32, i32) = (2, 2, 1);

static XGROUP_SUBS: &[CommandSpec] = &[
    spec("create", -5, WRITE | DENYOOM, SUB, G, xgroup),
    spec("setid", -5, WRITE, SUB, G, xgroup),
    spec("destroy", 4, WRITE, SUB, G, xgroup),
    spec("createconsumer", 5, WRITE | DENYOOM, SUB, G, xgroup),
    spec("delconsumer", 5, WRITE, SUB, G, xgroup),
    spec("help", 2, LOADING | STALE, NONE, G, xgroup_help),
];

static XINFO_SUBS: &[CommandSpec] = &[
    spec("consumers", 4, READONLY, SUB, G, xinfo_consumers),
    spec("groups", 3, READONLY, SUB, G, xinfo_groups),
    spec("stream", -3, READONLY, SUB, G, xinfo_stream),
    spec("help", 2, LOADING | STALE, NONE, G, xinfo_help),
];

/// The stream family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("xadd", -5, WRITE | DENYOOM | FAST, ONE, G, xadd),
    spec("xlen", 2, READONLY | FAST, ONE, G, xlen),
    spec("xrange", -4, READONLY, ONE, G, xrange),
    spec("xrevrange", -4, READONLY, ONE, G, xrevrange),
    spec("xdel", -3, WRITE | FAST, ONE, G, xdel),
    spec("xtrim", -4, WRITE, ONE, G, xtrim),
    spec("xsetid", -3, WRITE | DENYOOM | FAST, ONE, G, xsetid),
    // Blocking reads register under the exclusive gate (see `blocking`),
    // which MOVABLEKEYS commands always hold.
    spec(
        "xread",
        -4,
        READONLY | BLOCKING | MOVABLEKEYS,
        NONE,
        G,
        xread,
    ),
    spec(
        "xreadgroup",
        -7,
        WRITE | BLOCKING | MOVABLEKEYS,
        NONE,
        G,
        xreadgroup,
    ),
    spec("xack", -4, WRITE | FAST, ONE, G, xack),
    spec("xpending", -3, READONLY, ONE, G, xpending),
    spec("xclaim", -6, WRITE | FAST, ONE, G, xclaim),
    spec("xautoclaim", -6, WRITE | FAST, ONE, G, xautoclaim),
    container_spec("xgroup", -2, 0, G, XGROUP_SUBS),
    container_spec("xinfo", -2, 0, G, XINFO_SUBS),
];
