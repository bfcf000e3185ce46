//! The bitmap family (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD,
//! BITFIELD_RO) with Redis 7.0's replies, argument checking order and texts.

use std::sync::atomic::Ordering;

use rampart_keyspace::{Db, Value};

use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::{err, spec, CommandSpec, Ctx};
use crate::pubsub::class;

const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const BIT_VALUE_ERR: &str = "ERR bit is not an integer or out of range";
const BIT_ARG_ERR: &str = "ERR The bit argument must be 1 or 0.";
const FIELD_TYPE_ERR: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const OVERFLOW_TYPE_ERR: &str = "ERR Invalid OVERFLOW type specified";
const RO_ERR: &str = "ERR BITFIELD_RO only supports the GET subcommand";
const NOT_ERR: &str = "ERR BITOP NOT must be called with a single source key.";

/// The current database, borrowed from the server rather than from `ctx`,
/// so closures run under the shard lock can still write to `ctx.out`.
fn db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    let srv = ctx.srv;
    srv.keyspace.db(ctx.client.db)
}

fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// Parses the bit offset at argument `i`, replying the error on failure.
/// With `hash_bits`, BITFIELD's `#N` form means N fields of that width.
/// Like Redis, the limit is `proto-max-bulk-len` bytes, the largest string a
/// client could have written anyway.
fn bit_offset(ctx: &mut Ctx<'_>, i: usize, hash_bits: Option<u32>) -> Option<u64> {
    let arg = ctx.arg(i);
    let (digits, mul) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], i64::from(bits)),
        _ => (arg, 1),
    };
    let max = ctx
        .srv
        .config
        .hot
        .proto_max_bulk_len
        .load(Ordering::Relaxed);
    // Redis multiplies without an overflow check, so a huge `#N` wraps
    // around; wrapping keeps the set of accepted offsets identical.
    match crate::num::parse_i64(digits).map(|n| n.wrapping_mul(mul)) {
        Some(off) if off >= 0 && (off >> 3) < max => Some(off as u64),
        _ => {
            ctx.out.error(BIT_OFFSET_ERR);
            None
        }
    }
}

/// The bit at `offset` (most significant bit of byte 0 first); bits past
/// the end read as zero.
fn bit_at(s: &[u8], offset: u64) -> u8 {
    let byte = usize::try_from(offset >> 3).unwrap_or(usize::MAX);
    s.get(byte).map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
}

/// SETBIT key offset value
fn setbit(ctx: &mut Ctx<'_>) {
    let Some(offset) = bit_offset(ctx, 2, None) else {
        return;
    };
    let on = match crate::num::parse_i64(ctx.arg(3)) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return ctx.out.error(BIT_VALUE_ERR),
    };
    let byte = (offset >> 3) as usize;
    let shift = 7 - (offset & 7) as u8;
    let old = db(ctx).write(ctx.arg(1), ctx.now, |slot| {
        if slot.value().is_some_and(|v| v.as_str().is_none()) {
            return None;
        }
        let mut dirty = !slot.exists();
        if dirty {
            slot.insert(Value::raw_string(Vec::new()), None);
        }
        let s = slot.value_mut()?.str_mut()?;
        if s.len() <= byte {
            super::grow_zeroed(s, byte + 1);
            dirty = true;
        }
        let old = (s[byte] >> shift) & 1;
        s[byte] = (s[byte] & !(1 << shift)) | (on << shift);
        Some((old, dirty || old != on))
    });
    match old {
        Some((old, changed)) => {
            // Redis announces a SETBIT that created, grew or flipped.
            if changed {
                ctx.notify(class::STRING, "setbit", ctx.arg(1));
            }
            ctx.out.int(i64::from(old))
        }
        None => ctx.out.error(err::WRONGTYPE),
    }
}

/// GETBIT key offset
fn getbit(ctx: &mut Ctx<'_>) {
    let Some(offset) = bit_offset(ctx, 2, None) else {
        return;
    };
    let found = db(ctx).get(ctx.arg(1), ctx.now, |node| {
        node.map(|n| n.value.as_str().map(|s| bit_at(s, offset)))
    });
    ctx.looked_up(ctx.arg(1), found.is_some());
    match found {
        None => ctx.out.int(0),
        Some(None) => ctx.out.error(err::WRONGTYPE),
        Some(Some(bit)) => ctx.out.int(i64::from(bit)),
    }
}

/// A user range of BITCOUNT or BITPOS, before it meets the string.
struct Range {
    start: i64,
    /// `None` when BITPOS was given only a start.
    end: Option<i64>,
    /// BIT rather than BYTE units.
    bits: bool,
}

/// Inclusive bit bounds of `range` over a string of `len` bytes, or `None`
/// when the range selects nothing. Follows Redis: negative indexes count
/// from the end, both ends are clamped into the string, and a missing range
/// is the whole string.
fn resolve(len: usize, range: Option<&Range>) -> Option<(u64, u64)> {
    let Some(r) = range else {
        return (len > 0).then(|| (0, len as u64 * 8 - 1));
    };
    let total = if r.bits { len as i64 * 8 } else { len as i64 };
    let mut start = r.start;
    let mut end = r.end.unwrap_or(total - 1);
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    let start = start.max(0);
    let end = end.max(0).min(total - 1);
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if r.bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    })
}

/// Parses a BYTE|BIT unit. `Err` carries the reply.
fn parse_unit(arg: &[u8]) -> Result<bool, &'static str> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(err::SYNTAX)
    }
}

fn parse_int(arg: &[u8]) -> Result<i64, &'static str> {
    crate::num::parse_i64(arg).ok_or(err::NOT_INT)
}

/// Masks of the bits outside `[lo, hi]` in the range's first byte (`head`)
/// and last byte (`tail`).
fn edge_masks(lo: u64, hi: u64) -> (u8, u8) {
    let head = !(0xffu8 >> (lo & 7));
    let tail = (0xffu16 >> ((hi & 7) + 1)) as u8;
    (head, tail)
}

fn popcount(s: &[u8]) -> u64 {
    let mut chunks = s.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        n += u64::from(u64::from_ne_bytes(w).count_ones());
    }
    n + chunks
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum::<u64>()
}

/// Number of set bits in bits `[lo, hi]` of `s` (both inside `s`).
fn count_bits(s: &[u8], lo: u64, hi: u64) -> u64 {
    let (first, last) = ((lo >> 3) as usize, (hi >> 3) as usize);
    let (head, tail) = edge_masks(lo, hi);
    popcount(&s[first..=last])
        - u64::from((s[first] & head).count_ones())
        - u64::from((s[last] & tail).count_ones())
}

/// Position of the first bit equal to `bit` in bits `[lo, hi]` of `s`.
fn find_bit(s: &[u8], lo: u64, hi: u64, bit: bool) -> Option<u64> {
    let (first, last) = ((lo >> 3) as usize, (hi >> 3) as usize);
    let (head, tail) = edge_masks(lo, hi);
    // Turned into "find the first set bit": flip for zeros, then clear the
    // bits outside the range.
    let look = |i: usize, b: u8| {
        let mut b = if bit { b } else { !b };
        if i == first {
            b &= !head;
        }
        if i == last {
            b &= !tail;
        }
        b
    };
    let skip = if bit { 0u8 } else { 0xff };
    let mut i = first;
    while i <= last {
        // Whole words of non-matching bytes are skipped at once.
        if i != first && i + 8 <= last {
            let mut w = [0u8; 8];
            w.copy_from_slice(&s[i..i + 8]);
            if w == [skip; 8] {
                i += 8;
                continue;
            }
        }
        let b = look(i, s[i]);
        if b != 0 {
            return Some(i as u64 * 8 + u64::from(b.leading_zeros()));
        }
        i += 1;
    }
    None
}

/// BITCOUNT key [start end [BYTE|BIT]]
fn bitcount(ctx: &mut Ctx<'_>) {
    // Redis 7.0 looks the key up before checking the range arguments, so a
    // missing key answers 0 whatever follows: parse now, answer later. `Err`
    // is the answer for an existing string that the range decides alone.
    let range: Result<Option<Range>, Result<u64, &'static str>> = match ctx.args.len() {
        2 => Ok(None),
        4 | 5 => (|| {
            let start = parse_int(ctx.arg(2)).map_err(Err)?;
            let end = parse_int(ctx.arg(3)).map_err(Err)?;
            // Both ends negative and crossed: empty, even where clamping
            // both to 0 would select the first byte. Redis checks this
            // before the unit, so it wins over a bad unit.
            if start < 0 && end < 0 && start > end {
                return Err(Ok(0));
            }
            let bits = match ctx.args.get(4) {
                Some(u) => parse_unit(u).map_err(Err)?,
                None => false,
            };
            Ok(Some(Range {
                start,
                end: Some(end),
                bits,
            }))
        })(),
        _ => Err(Err(err::SYNTAX)),
    };
    let found = db(ctx).get(ctx.arg(1), ctx.now, |node| {
        let node = node?;
        let Some(s) = node.value.as_str() else {
            return Some(Err(err::WRONGTYPE));
        };
        Some(match &range {
            Ok(r) => Ok(resolve(s.len(), r.as_ref()).map_or(0, |(lo, hi)| count_bits(s, lo, hi))),
            Err(early) => *early,
        })
    });
    ctx.looked_up(ctx.arg(1), found.is_some());
    match found {
        None => ctx.out.int(0),
        Some(Ok(n)) => ctx.out.int(n as i64),
        Some(Err(e)) => ctx.out.error(e),
    }
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
fn bitpos(ctx: &mut Ctx<'_>) {
    let Some(bit) = ctx.int_arg(2) else {
        return;
    };
    if bit != 0 && bit != 1 {
        return ctx.out.error(BIT_ARG_ERR);
    }
    let bit = bit == 1;
    let argc = ctx.args.len();
    // Checked only once the key is known to exist, as in Redis 7.0; the
    // unit is read before the end, which fixes which error wins.
    let range = match argc {
        3 => Ok(None),
        4..=6 => (|| {
            let start = parse_int(ctx.arg(3))?;
            let bits = match ctx.args.get(5) {
                Some(u) => parse_unit(u)?,
                None => false,
            };
            let end = match ctx.args.get(4) {
                Some(e) => Some(parse_int(e)?),
                None => None,
            };
            Ok(Some(Range { start, end, bits }))
        })(),
        _ => Err(err::SYNTAX),
    };
    let found = db(ctx).get(ctx.arg(1), ctx.now, |node| {
        let node = node?;
        let Some(s) = node.value.as_str() else {
            return Some(Err(err::WRONGTYPE));
        };
        let range = match &range {
            Ok(r) => r.as_ref(),
            Err(e) => return Some(Err(*e)),
        };
        let Some((lo, hi)) = resolve(s.len(), range) else {
            return Some(Ok(-1));
        };
        let end_given = range.is_some_and(|r| r.end.is_some());
        Some(Ok(match find_bit(s, lo, hi, bit) {
            Some(p) => p as i64,
            // Without an explicit end the string is seen as padded with
            // zeros, so the first clear bit is the one just past it.
            None if !bit && !end_given => hi as i64 + 1,
            None => -1,
        }))
    });
    ctx.looked_up(ctx.arg(1), found.is_some());
    match found {
        // A missing key is an endless run of zeros.
        None => ctx.out.int(if bit { -1 } else { 0 }),
        Some(Ok(n)) => ctx.out.int(n),
        Some(Err(e)) => ctx.out.error(e),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Folds source `s` (zero-padded to any length) into `acc`.
fn fold(acc: &mut Vec<u8>, s: &[u8], op: BitOp) {
    let common = acc.len().min(s.len());
    match op {
        BitOp::And => {
            for (a, b) in acc.iter_mut().zip(s) {
                *a &= b;
            }
            // Past the shorter side one operand is zero.
            acc[common..].fill(0);
            acc.resize(s.len().max(acc.len()), 0);
        }
        BitOp::Or | BitOp::Xor => {
            for (a, b) in acc.iter_mut().zip(s) {
                if op == BitOp::Or {
                    *a |= b;
                } else {
                    *a ^= b;
                }
            }
            acc.extend_from_slice(&s[common..]);
        }
        BitOp::Not => {}
    }
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]
fn bitop(ctx: &mut Ctx<'_>) {
    let name = ctx.arg(1);
    let op = if is(name, "and") {
        BitOp::And
    } else if is(name, "or") {
        BitOp::Or
    } else if is(name, "xor") {
        BitOp::Xor
    } else if is(name, "not") {
        BitOp::Not
    } else {
        return ctx.out.error(err::SYNTAX);
    };
    if op == BitOp::Not && ctx.args.len() != 4 {
        return ctx.out.error(NOT_ERR);
    }
    let db = db(ctx);
    let mut acc: Vec<u8> = Vec::new();
    for (i, key) in ctx.args[3..].iter().enumerate() {
        let found = db.get(key, ctx.now, |node| {
            let Some(node) = node else {
                // A missing key is an empty string.
                if op == BitOp::And {
                    acc.fill(0);
                }
                return Some(false);
            };
            let s = node.value.as_str()?;
            if i == 0 {
                acc = match op {
                    BitOp::Not => s.iter().map(|b| !b).collect(),
                    _ => s.to_vec(),
                };
            } else {
                fold(&mut acc, s, op);
            }
            Some(true)
        });
        match found {
            Some(hit) => ctx.looked_up(key, hit),
            None => {
                ctx.looked_up(key, true);
                return ctx.out.error(err::WRONGTYPE);
            }
        }
    }
    let len = acc.len();
    let dst = ctx.arg(2);
    if len > 0 {
        // The destination is replaced whole: any old type and TTL go.
        db.write(dst, ctx.now, |slot| {
            slot.insert(Value::raw_string(acc), None)
        });
        ctx.notify(class::STRING, "set", dst);
    } else if db.delete(dst, ctx.now) {
        ctx.notify(class::GENERIC, "del", dst);
    }
    ctx.out.int(len as i64);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
enum FieldAction {
    Get,
    Set(i64),
    Incr(i64),
}

/// One parsed BITFIELD operation.
#[derive(Clone, Copy)]
struct FieldOp {
    action: FieldAction,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// Parses `i8`…`i64`, `u1`…`u63`. C reads the width up to a NUL byte, so
/// anything after one is ignored, as in Redis.
fn field_type(arg: &[u8]) -> Option<(bool, u32)> {
    let signed = match arg.first()? {
        b'i' => true,
        b'u' => false,
        _ => return None,
    };
    let rest = &arg[1..];
    let rest = &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())];
    let bits = crate::num::parse_i64(rest)?;
    let max = if signed { 64 } else { 63 };
    (1..=max).contains(&bits).then_some((signed, bits as u32))
}

fn get_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0u64, |v, i| (v << 1) | u64::from(bit_at(s, offset + i)))
}

/// Writes the low `bits` bits of `v`; `s` must hold them.
fn set_field(s: &mut [u8], offset: u64, bits: u32, v: u64) {
    for i in 0..u64::from(bits) {
        let pos = offset + i;
        let bit = ((v >> (u64::from(bits) - 1 - i)) & 1) as u8;
        let byte = &mut s[(pos >> 3) as usize];
        let shift = 7 - (pos & 7) as u8;
        *byte = (*byte & !(1 << shift)) | (bit << shift);
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 64 {
        v as i64
    } else {
        ((v << (64 - bits)) as i64) >> (64 - bits)
    }
}

/// `value + incr` in an unsigned field, or `None` when it overflows under
/// FAIL. `value` may be out of range (SET of a negative or wide number);
/// like Redis it then counts as an upward overflow, so SAT stores the max.
fn unsigned_add(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = (1u64 << bits) - 1;
    let up = value > max || (incr > 0 && incr.unsigned_abs() > max - value);
    let down = !up && incr < 0 && incr.unsigned_abs() > value;
    let sum = value.wrapping_add(incr as u64);
    if !up && !down {
        return Some(sum);
    }
    match ow {
        Overflow::Wrap => Some(sum & max),
        Overflow::Sat => Some(if up { max } else { 0 }),
        Overflow::Fail => None,
    }
}

/// `value + incr` in a signed field, or `None` when it overflows under FAIL.
/// The checks are Redis's, including its wrapping intermediate sums: they
/// only matter for SET of a value far below the field's minimum, which
/// Redis sees as an upward overflow (so SAT stores the maximum).
fn signed_add(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let narrow = bits != 64;
    let up =
        value > max || (narrow && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr);
    let down = !up
        && (value < min
            || (narrow && incr < min_incr)
            || (value < 0 && incr < 0 && incr < min_incr));
    let sum = value.wrapping_add(incr);
    if !up && !down {
        return Some(sum);
    }
    match ow {
        Overflow::Wrap => Some(sign_extend(sum as u64, bits)),
        Overflow::Sat => Some(if up { max } else { min }),
        Overflow::Fail => None,
    }
}

/// Runs a SET or INCRBY on `s`: the reply (old value for SET, new value for
/// INCRBY), or `None` when FAIL refused it and nothing was written.
fn write_field(s: &mut [u8], op: &FieldOp) -> Option<i64> {
    let (set, arg) = match op.action {
        FieldAction::Set(v) => (true, v),
        FieldAction::Incr(v) => (false, v),
        FieldAction::Get => return Some(read_field(s, op)),
    };
    let raw = get_field(s, op.offset, op.bits);
    let (new, reply) = if op.signed {
        let old = sign_extend(raw, op.bits);
        let new = if set {
            signed_add(arg, 0, op.bits, op.overflow)?
        } else {
            signed_add(old, arg, op.bits, op.overflow)?
        };
        (new as u64, if set { old } else { new })
    } else {
        let new = if set {
            unsigned_add(arg as u64, 0, op.bits, op.overflow)?
        } else {
            unsigned_add(raw, arg, op.bits, op.overflow)?
        };
        // u63 at most, so both fit an i64 reply.
        (new, if set { raw as i64 } else { new as i64 })
    };
    set_field(s, op.offset, op.bits, new);
    Some(reply)
}

fn read_field(s: &[u8], op: &FieldOp) -> i64 {
    let raw = get_field(s, op.offset, op.bits);
    if op.signed {
        sign_extend(raw, op.bits)
    } else {
        raw as i64
    }
}

/// BITFIELD key [GET type offset] [SET type offset value]
/// [INCRBY type offset increment] [OVERFLOW WRAP|SAT|FAIL] ...
fn bitfield(ctx: &mut Ctx<'_>) {
    bitfield_generic(ctx, false);
}

/// BITFIELD_RO key [GET type offset ...]
fn bitfield_ro(ctx: &mut Ctx<'_>) {
    bitfield_generic(ctx, true);
}

fn bitfield_generic(ctx: &mut Ctx<'_>, readonly: bool) {
    let argc = ctx.args.len();
    let mut ops: Vec<FieldOp> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut highest: Option<u64> = None;
    let mut j = 2;
    while j < argc {
        let remaining = argc - j - 1;
        let sub = ctx.arg(j);
        let get = is(sub, "get") && remaining >= 2;
        let write = (is(sub, "set") || is(sub, "incrby")) && remaining >= 3;
        if !get && !write {
            if is(sub, "overflow") && remaining >= 1 {
                let kind = ctx.arg(j + 1);
                overflow = if is(kind, "wrap") {
                    Overflow::Wrap
                } else if is(kind, "sat") {
                    Overflow::Sat
                } else if is(kind, "fail") {
                    Overflow::Fail
                } else {
                    return ctx.out.error(OVERFLOW_TYPE_ERR);
                };
                j += 2;
                continue;
            }
            return ctx.out.error(err::SYNTAX);
        }
        let incr = is(sub, "incrby");
        let Some((signed, bits)) = field_type(ctx.arg(j + 1)) else {
            return ctx.out.error(FIELD_TYPE_ERR);
        };
        let Some(offset) = bit_offset(ctx, j + 2, Some(bits)) else {
            return;
        };
        let action = if get {
            FieldAction::Get
        } else {
            let last = offset + u64::from(bits) - 1;
            highest = Some(highest.map_or(last, |h| h.max(last)));
            let Some(v) = ctx.int_arg(j + 3) else {
                return;
            };
            if incr {
                FieldAction::Incr(v)
            } else {
                FieldAction::Set(v)
            }
        };
        ops.push(FieldOp {
            action,
            signed,
            bits,
            offset,
            overflow,
        });
        j += if get { 3 } else { 4 };
    }

    let db = db(ctx);
    let replies: Option<Vec<Option<i64>>> = match highest {
        None => {
            let (hit, replies) = db.get(ctx.arg(1), ctx.now, |node| {
                let s = match node {
                    None => Some(&[][..]),
                    Some(n) => n.value.as_str(),
                };
                let replies = s.map(|s| ops.iter().map(|op| Some(read_field(s, op))).collect());
                (node.is_some(), replies)
            });
            ctx.looked_up(ctx.arg(1), hit);
            replies
        }
        Some(_) if readonly => return ctx.out.error(RO_ERR),
        Some(highest) => {
            let need = (highest >> 3) as usize + 1;
            let mut changed = false;
            let replies = db.write(ctx.arg(1), ctx.now, |slot| {
                if slot.value().is_some_and(|v| v.as_str().is_none()) {
                    return None;
                }
                // Like Redis, the key is created and padded to the farthest
                // bit written before running the operations, even if FAIL
                // then refuses all of them.
                let mut dirty = !slot.exists();
                if dirty {
                    slot.insert(Value::raw_string(vec![0; need]), None);
                }
                let s = slot.value_mut()?.str_mut()?;
                if s.len() < need {
                    super::grow_zeroed(s, need);
                    dirty = true;
                }
                let mut replies = Vec::with_capacity(ops.len());
                for op in &ops {
                    let before = get_field(s, op.offset, op.bits);
                    let r = write_field(s, op);
                    // Redis counts a SET or INCRBY that was not refused,
                    // once the key was created or grown or the field moved.
                    let wrote = r.is_some() && !matches!(op.action, FieldAction::Get);
                    changed |= wrote && (dirty || before != get_field(s, op.offset, op.bits));
                    replies.push(r);
                }
                Some(replies)
            });
            if changed {
                ctx.notify(class::STRING, "setbit", ctx.arg(1));
            }
            replies
        }
    };
    let Some(replies) = replies else {
        return ctx.out.error(err::WRONGTYPE);
    };
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => ctx.out.int(v),
            None => ctx.out.null(),
        }
    }
}

/// The family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("setbit", 4, WRITE | DENYOOM, (1, 1, 1), "bitmap", setbit),
    spec("getbit", 3, READONLY | FAST, (1, 1, 1), "bitmap", getbit),
    spec("bitcount", -2, READONLY, (1, 1, 1), "bitmap", bitcount),
    spec("bitpos", -3, READONLY, (1, 1, 1), "bitmap", bitpos),
    spec("bitop", -4, WRITE | DENYOOM, (2, -1, 1), "bitmap", bitop),
    spec(
        "bitfield",
        -2,
        WRITE | DENYOOM,
        (1, 1, 1),
        "bitmap",
        bitfield,
    ),
    spec(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        (1, 1, 1),
        "bitmap",
        bitfield_ro,
    ),
];

#[cfg(test)]
mod tests {
    //! Expected replies were produced by running the same commands against
    //! redis-server 7.0.15.

    use super::*;
    use crate::state::now_ms;
    use crate::testkit::Kit;

    fn set(k: &mut Kit, key: &[u8], v: &[u8]) {
        k.srv
            .keyspace
            .db(0)
            .write(key, now_ms(), |s| s.insert(Value::string(v), None));
    }

    fn get(k: &Kit, key: &[u8]) -> Option<Vec<u8>> {
        k.srv.keyspace.db(0).get(key, now_ms(), |n| {
            n.and_then(|n| n.value.as_str().map(<[u8]>::to_vec))
        })
    }

    fn encoding(k: &Kit, key: &[u8]) -> &'static str {
        k.srv
            .keyspace
            .db(0)
            .get(key, now_ms(), |n| n.map_or("", |n| n.value.encoding()))
    }

    fn expire(k: &mut Kit, key: &[u8], ms: u64) {
        let now = now_ms();
        k.srv
            .keyspace
            .db(0)
            .write(key, now, |s| s.set_expire_at(Some(now + ms)));
    }

    fn has_ttl(k: &Kit, key: &[u8]) -> bool {
        k.srv
            .keyspace
            .db(0)
            .peek(key, now_ms(), |n| n.and_then(|n| n.expire_at()).is_some())
    }

    fn max_bulk(k: &Kit, n: i64) {
        let pairs = [("proto-max-bulk-len".to_string(), n.to_string())];
        assert!(k.srv.config.set(&pairs).is_ok());
    }

    #[test]
    fn setbit_and_getbit() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["SETBIT", "k", "7", "1"]), ":0\r\n");
        assert_eq!(k.run(&["SETBIT", "k", "7", "1"]), ":1\r\n");
        assert_eq!(k.run(&["SETBIT", "k", "7", "0"]), ":1\r\n");
        assert_eq!(get(&k, b"k"), Some(b"\x00".to_vec()));
        assert_eq!(k.run(&["SETBIT", "k", "100", "1"]), ":0\r\n");
        assert_eq!(
            get(&k, b"k"),
            Some(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08".to_vec())
        );
        assert_eq!(k.run(&["GETBIT", "k", "100"]), ":1\r\n");
        assert_eq!(k.run(&["GETBIT", "k", "99"]), ":0\r\n");
        assert_eq!(k.run(&["GETBIT", "k", "1000000"]), ":0\r\n");
        assert_eq!(k.run(&["GETBIT", "nokey", "5"]), ":0\r\n");
        assert_eq!(encoding(&k, b"k"), "raw");
        set(&mut k, b"s", b"a");
        assert_eq!(k.run(&["GETBIT", "s", "0"]), ":0\r\n");
        assert_eq!(k.run(&["GETBIT", "s", "1"]), ":1\r\n");
        assert_eq!(k.run(&["GETBIT", "s", "7"]), ":1\r\n");
        assert_eq!(k.run(&["SETBIT", "s", "0", "1"]), ":0\r\n");
        assert_eq!(get(&k, b"s"), Some(b"\xe1".to_vec()));
        set(&mut k, b"n", b"12");
        assert_eq!(k.run(&["GETBIT", "n", "2"]), ":1\r\n");
        assert_eq!(k.run(&["GETBIT", "n", "3"]), ":1\r\n");
        assert_eq!(k.run(&["SETBIT", "n", "0", "1"]), ":0\r\n");
        assert_eq!(get(&k, b"n"), Some(b"\xb12".to_vec()));
        expire(&mut k, b"k", 100000);
        assert_eq!(k.run(&["SETBIT", "k", "1", "1"]), ":0\r\n");
        assert!(has_ttl(&k, b"k"));
        assert_eq!(k.run(&["SETBIT", "new", "0", "0"]), ":0\r\n");
        assert_eq!(get(&k, b"new"), Some(b"\x00".to_vec()));
    }

    #[test]
    fn setbit_and_getbit_errors() {
        let mut k = Kit::new();
        assert_eq!(
            k.run(&["SETBIT", "k", "-1", "1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "x", "1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "01", "1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "1.0", "1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "1", "2"]),
            "-ERR bit is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "1", "-1"]),
            "-ERR bit is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "1", "x"]),
            "-ERR bit is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "1", "01"]),
            "-ERR bit is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "1", "+1"]),
            "-ERR bit is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "x", "x"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "4294967296", "1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "9223372036854775807", "1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["SETBIT", "k", "9223372036854775808", "1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(k.run(&["GETBIT", "k", "4294967295"]), ":0\r\n");
        assert_eq!(
            k.run(&["GETBIT", "k", "4294967296"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["GETBIT", "k", "-1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["GETBIT", "k", "x"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert!(get(&k, b"k").is_none());
        assert_eq!(
            k.run(&["SETBIT", "k"]),
            "-ERR wrong number of arguments for 'setbit' command\r\n"
        );
        assert_eq!(
            k.run(&["GETBIT", "k", "1", "2"]),
            "-ERR wrong number of arguments for 'getbit' command\r\n"
        );
    }

    #[test]
    fn offsets_follow_proto_max_bulk_len() {
        let mut k = Kit::new();
        max_bulk(&k, 1048576);
        assert_eq!(
            k.run(&["SETBIT", "k", "8388608", "1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(k.run(&["SETBIT", "k", "8388607", "1"]), ":0\r\n");
        assert_eq!(get(&k, b"k").map_or(0, |v| v.len()), 1048576);
        assert_eq!(
            k.run(&["GETBIT", "k", "8388608"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(k.run(&["GETBIT", "k", "8388607"]), ":1\r\n");
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "8388608"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "#1048575"]),
            "*1\r\n:1\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "#1048576"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "#2305843009213693953"]),
            "*1\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "#-1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "##1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "#"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "8388601", "1"]),
            "*1\r\n:2\r\n"
        );
        assert_eq!(get(&k, b"k").map_or(0, |v| v.len()), 1048577);
    }

    #[test]
    fn bitcount_ranges() {
        let mut k = Kit::new();
        set(&mut k, b"k", b"foobar");
        assert_eq!(k.run(&["BITCOUNT", "k"]), ":26\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "0", "0"]), ":4\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "1", "1"]), ":6\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "1", "1", "BYTE"]), ":6\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "1", "1", "byte"]), ":6\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "5", "30", "BIT"]), ":17\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "5", "30", "bit"]), ":17\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-1", "-1"]), ":4\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-2", "-1"]), ":7\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "0", "-1"]), ":26\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-100", "100"]), ":26\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "100", "200"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "3", "1"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-1", "-3"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-10", "-20"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-20", "-10"]), ":4\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-20", "-10", "bit"]), ":3\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-100", "-200", "bit"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "0", "-1", "bit"]), ":26\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-1", "-1", "bit"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-9", "-2", "bit"]), ":5\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "7", "8", "bit"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "8", "7", "bit"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "0", "0", "bit"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "1", "6", "bit"]), ":4\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "47", "47", "bit"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "46", "100", "bit"]), ":1\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "48", "100", "bit"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "9", "9", "bit"]), ":1\r\n");
        assert_eq!(
            k.run(&["BITCOUNT", "k", "0", "9223372036854775807"]),
            ":26\r\n"
        );
        assert_eq!(
            k.run(&["BITCOUNT", "k", "-9223372036854775808", "-1"]),
            ":26\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITCOUNT",
                "k",
                "-9223372036854775808",
                "9223372036854775807",
                "bit"
            ]),
            ":26\r\n"
        );
        set(
            &mut k,
            b"long",
            b"foobarfoobarfoobarfoobarfoobarfoobarfoobarfoobarfoobarfoobar",
        );
        assert_eq!(k.run(&["BITCOUNT", "long"]), ":260\r\n");
        assert_eq!(k.run(&["BITCOUNT", "long", "3", "57"]), ":237\r\n");
        assert_eq!(k.run(&["BITCOUNT", "long", "13", "400", "bit"]), ":211\r\n");
        assert_eq!(k.run(&["BITCOUNT", "long", "-50", "-3"]), ":208\r\n");
        set(&mut k, b"e", b"");
        assert_eq!(k.run(&["BITCOUNT", "e"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "e", "0", "-1"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "e", "0", "-1", "bit"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "nokey"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "nokey", "0", "-1", "bit"]), ":0\r\n");
    }

    #[test]
    fn bitcount_errors() {
        let mut k = Kit::new();
        set(&mut k, b"k", b"foobar");
        assert_eq!(k.run(&["BITCOUNT", "k", "1"]), "-ERR syntax error\r\n");
        assert_eq!(
            k.run(&["BITCOUNT", "k", "a", "b"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITCOUNT", "k", "1", "b"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITCOUNT", "k", "1", "2", "bits"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITCOUNT", "k", "1", "2", "byte", "extra"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITCOUNT", "k", "1", "2", "3"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITCOUNT", "k", "1.5", "2"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(k.run(&["BITCOUNT", "nokey", "1"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "nokey", "a", "b"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "nokey", "1", "2", "bad"]), ":0\r\n");
        assert_eq!(
            k.run(&["BITCOUNT", "nokey", "1", "2", "bit", "extra"]),
            ":0\r\n"
        );
        assert_eq!(
            k.run(&["BITCOUNT"]),
            "-ERR wrong number of arguments for 'bitcount' command\r\n"
        );
    }

    #[test]
    fn bitpos_ranges() {
        let mut k = Kit::new();
        set(&mut k, b"k", b"\xff\xf0\x00");
        assert_eq!(k.run(&["BITPOS", "k", "0"]), ":12\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1"]), ":0\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "2"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "2"]), ":16\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "1"]), ":8\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "0", "0"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "0"]), ":12\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "0", "-1"]), ":12\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "1", "1"]), ":12\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "7", "15", "bit"]), ":7\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "7", "15", "BIT"]), ":7\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "12", "23", "bit"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "12", "23", "bit"]), ":12\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "0", "11", "bit"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "-3", "-1", "bit"]), ":21\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "-12", "-1", "bit"]), ":12\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "-100", "-50"]), ":0\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "-50", "-100"]), ":0\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "2", "1"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "0", "2", "byte"]), ":0\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "9", "10", "bit"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "8", "11", "bit"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "3", "3", "bit"]), ":3\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "0", "3", "3", "bit"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "k", "1", "8", "12", "bit"]), ":8\r\n");
    }

    #[test]
    fn bitpos_all_ones_and_zeros() {
        let mut k = Kit::new();
        set(&mut k, b"ones", b"\xff\xff\xff");
        assert_eq!(k.run(&["BITPOS", "ones", "0"]), ":24\r\n");
        assert_eq!(k.run(&["BITPOS", "ones", "0", "1"]), ":24\r\n");
        assert_eq!(k.run(&["BITPOS", "ones", "0", "-1"]), ":24\r\n");
        assert_eq!(k.run(&["BITPOS", "ones", "0", "1", "-1"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "ones", "0", "0", "-1", "bit"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "ones", "0", "3", "-1", "bit"]), ":-1\r\n");
        assert_eq!(
            k.run(&["BITPOS", "ones", "0", "3", "100", "BIT"]),
            ":-1\r\n"
        );
        assert_eq!(k.run(&["BITPOS", "ones", "0", "10"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "ones", "0", "2"]), ":24\r\n");
        assert_eq!(k.run(&["BITPOS", "ones", "0", "3"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "ones", "1", "-1"]), ":16\r\n");
        assert_eq!(
            k.run(&["BITPOS", "ones", "0", "9223372036854775807"]),
            ":-1\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "ones", "0", "-9223372036854775808"]),
            ":24\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "ones", "0", "0", "9223372036854775807"]),
            ":-1\r\n"
        );
        set(&mut k, b"zeros", b"\x00\x00\x00");
        assert_eq!(k.run(&["BITPOS", "zeros", "1"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "zeros", "0"]), ":0\r\n");
        assert_eq!(k.run(&["BITPOS", "zeros", "1", "1"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "zeros", "0", "1", "2"]), ":8\r\n");
        assert_eq!(k.run(&["BITPOS", "zeros", "0", "5", "-1", "bit"]), ":5\r\n");
        assert_eq!(
            k.run(&["BITPOS", "zeros", "1", "5", "-1", "bit"]),
            ":-1\r\n"
        );
        set(&mut k, b"longones", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
        assert_eq!(k.run(&["BITPOS", "longones", "0"]), ":480\r\n");
        assert_eq!(k.run(&["BITPOS", "longones", "0", "3"]), ":480\r\n");
        assert_eq!(k.run(&["BITPOS", "longones", "0", "3", "-1"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "longones", "1", "17"]), ":136\r\n");
        assert_eq!(
            k.run(&["BITPOS", "longones", "0", "0", "-1", "bit"]),
            ":-1\r\n"
        );
        assert_eq!(k.run(&["SETBIT", "sparse", "470", "1"]), ":0\r\n");
        assert_eq!(k.run(&["BITPOS", "sparse", "1"]), ":470\r\n");
        assert_eq!(k.run(&["BITPOS", "sparse", "1", "2"]), ":470\r\n");
        assert_eq!(k.run(&["BITPOS", "sparse", "1", "2", "58"]), ":470\r\n");
        assert_eq!(k.run(&["BITPOS", "sparse", "1", "2", "57"]), ":-1\r\n");
        assert_eq!(
            k.run(&["BITPOS", "sparse", "1", "470", "470", "bit"]),
            ":470\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "sparse", "1", "471", "-1", "bit"]),
            ":-1\r\n"
        );
        assert_eq!(k.run(&["BITPOS", "sparse", "0"]), ":0\r\n");
        assert_eq!(k.run(&["BITPOS", "sparse", "0", "58", "58"]), ":464\r\n");
        set(&mut k, b"e", b"");
        assert_eq!(k.run(&["BITPOS", "e", "0"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "e", "1"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "e", "0", "0", "-1"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "nokey", "0"]), ":0\r\n");
        assert_eq!(k.run(&["BITPOS", "nokey", "1"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "nokey", "0", "5", "-1", "bit"]), ":0\r\n");
    }

    #[test]
    fn bitpos_errors() {
        let mut k = Kit::new();
        set(&mut k, b"k", b"\xff");
        assert_eq!(
            k.run(&["BITPOS", "k", "2"]),
            "-ERR The bit argument must be 1 or 0.\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "-1"]),
            "-ERR The bit argument must be 1 or 0.\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "01"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "1", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "1", "0", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "1", "0", "1", "bad"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "1", "0", "x", "bad"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "1", "x", "1", "bad"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "1", "0", "1", "bit", "extra"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k", "0", "3", "bit"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "nokey", "2"]),
            "-ERR The bit argument must be 1 or 0.\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "nokey", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(k.run(&["BITPOS", "nokey", "1", "x"]), ":-1\r\n");
        assert_eq!(k.run(&["BITPOS", "nokey", "0", "1", "2", "bad"]), ":0\r\n");
        assert_eq!(
            k.run(&["BITPOS", "nokey", "1", "1", "2", "3", "4"]),
            ":-1\r\n"
        );
        assert_eq!(
            k.run(&["BITPOS", "k"]),
            "-ERR wrong number of arguments for 'bitpos' command\r\n"
        );
    }

    #[test]
    fn bitop_operations() {
        let mut k = Kit::new();
        set(&mut k, b"a", b"foobar");
        set(&mut k, b"b", b"abcdef");
        assert_eq!(k.run(&["BITOP", "AND", "dest", "a", "b"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"`bc`ab".to_vec()));
        assert_eq!(k.run(&["BITOP", "OR", "dest", "a", "b"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"goofev".to_vec()));
        assert_eq!(k.run(&["BITOP", "XOR", "dest", "a", "b"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x07\x0d\x0c\x06\x04\x14".to_vec()));
        assert_eq!(k.run(&["BITOP", "NOT", "dest", "a"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x99\x90\x90\x9d\x9e\x8d".to_vec()));
        assert_eq!(encoding(&k, b"dest"), "raw");
        set(&mut k, b"c", b"\x0f\xf0");
        assert_eq!(k.run(&["BITOP", "AND", "dest", "a", "c"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x06`\x00\x00\x00\x00".to_vec()));
        assert_eq!(k.run(&["BITOP", "AND", "dest", "c", "a"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x06`\x00\x00\x00\x00".to_vec()));
        assert_eq!(k.run(&["BITOP", "OR", "dest", "a", "c"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"o\xffobar".to_vec()));
        assert_eq!(k.run(&["BITOP", "OR", "dest", "c", "a"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"o\xffobar".to_vec()));
        assert_eq!(k.run(&["BITOP", "XOR", "dest", "c", "a", "b"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x08\xfd\x0c\x06\x04\x14".to_vec()));
        assert_eq!(k.run(&["BITOP", "AND", "dest", "a", "b", "c"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x00`\x00\x00\x00\x00".to_vec()));
        assert_eq!(k.run(&["BITOP", "and", "dest", "a"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"foobar".to_vec()));
        assert_eq!(k.run(&["BITOP", "Or", "dest", "a"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"foobar".to_vec()));
        assert_eq!(k.run(&["BITOP", "xOr", "dest", "a"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"foobar".to_vec()));
        assert_eq!(k.run(&["BITOP", "AND", "a", "a", "b"]), ":6\r\n");
        assert_eq!(get(&k, b"a"), Some(b"`bc`ab".to_vec()));
        set(&mut k, b"d", b"\x00\xff");
        assert_eq!(k.run(&["BITOP", "NOT", "d", "d"]), ":2\r\n");
        assert_eq!(get(&k, b"d"), Some(b"\xff\x00".to_vec()));
    }

    #[test]
    fn bitop_missing_and_empty() {
        let mut k = Kit::new();
        set(&mut k, b"a", b"foobar");
        assert_eq!(k.run(&["BITOP", "AND", "dest", "a", "nokey"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x00\x00\x00\x00\x00\x00".to_vec()));
        assert_eq!(k.run(&["BITOP", "AND", "dest", "nokey", "a"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x00\x00\x00\x00\x00\x00".to_vec()));
        assert_eq!(k.run(&["BITOP", "OR", "dest", "nokey", "a"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"foobar".to_vec()));
        assert_eq!(k.run(&["BITOP", "XOR", "dest", "a", "nokey"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"foobar".to_vec()));
        assert_eq!(
            k.run(&["BITOP", "XOR", "dest", "nokey", "nokey2"]),
            ":0\r\n"
        );
        assert!(get(&k, b"dest").is_none());
        assert_eq!(k.run(&["BITOP", "OR", "dest", "a"]), ":6\r\n");
        assert_eq!(k.run(&["BITOP", "NOT", "dest", "nokey"]), ":0\r\n");
        assert!(get(&k, b"dest").is_none());
        assert_eq!(k.run(&["BITOP", "AND", "nothing", "nokey"]), ":0\r\n");
        assert!(get(&k, b"nothing").is_none());
        set(&mut k, b"e", b"");
        assert_eq!(k.run(&["BITOP", "OR", "dest", "a"]), ":6\r\n");
        assert_eq!(k.run(&["BITOP", "OR", "dest", "e"]), ":0\r\n");
        assert!(get(&k, b"dest").is_none());
        assert_eq!(k.run(&["BITOP", "AND", "dest", "a", "e"]), ":6\r\n");
        assert_eq!(get(&k, b"dest"), Some(b"\x00\x00\x00\x00\x00\x00".to_vec()));
        assert_eq!(k.run(&["BITOP", "NOT", "dest", "e"]), ":0\r\n");
        assert!(get(&k, b"dest").is_none());
        assert_eq!(k.run(&["BITOP", "OR", "dest", "a"]), ":6\r\n");
        expire(&mut k, b"dest", 100000);
        assert!(has_ttl(&k, b"dest"));
        assert_eq!(k.run(&["BITOP", "OR", "dest", "a"]), ":6\r\n");
        assert!(!has_ttl(&k, b"dest"));
    }

    #[test]
    fn bitop_errors() {
        let mut k = Kit::new();
        set(&mut k, b"a", b"foobar");
        assert_eq!(
            k.run(&["BITOP", "NOT", "dest", "a", "b"]),
            "-ERR BITOP NOT must be called with a single source key.\r\n"
        );
        assert_eq!(
            k.run(&["BITOP", "NOT", "dest"]),
            "-ERR wrong number of arguments for 'bitop' command\r\n"
        );
        assert_eq!(
            k.run(&["BITOP", "foo", "dest", "a"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITOP", "AN", "dest", "a"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITOP", "ANDD", "dest", "a"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITOP", "NOTT", "dest", "a"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(k.run(&["BITOP", "", "dest", "a"]), "-ERR syntax error\r\n");
        assert_eq!(
            k.run(&["BITOP", "AND", "dest"]),
            "-ERR wrong number of arguments for 'bitop' command\r\n"
        );
        assert!(get(&k, b"dest").is_none());
    }

    #[test]
    fn bitfield_get_set_incrby() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["BITFIELD", "k"]), "*0\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "u8", "0"]), "*1\r\n:0\r\n");
        assert!(get(&k, b"k").is_none());
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "0", "255", "GET", "u8", "0"]),
            "*2\r\n:0\r\n:255\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "INCRBY", "u8", "0", "1"]),
            "*1\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "i8", "0", "127"]),
            "*1\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "INCRBY", "i8", "0", "1"]),
            "*1\r\n:-128\r\n"
        );
        assert_eq!(get(&k, b"k"), Some(b"\x80".to_vec()));
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "GET", "i8", "0", "GET", "u8", "0", "GET", "u4", "0", "GET", "i4",
                "0", "GET", "u1", "0", "GET", "i1", "0", "GET", "u3", "5"
            ]),
            "*7\r\n:-128\r\n:128\r\n:8\r\n:-8\r\n:1\r\n:-1\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "SET", "u8", "#1", "5", "GET", "u8", "8", "GET", "u4", "#3",
                "GET", "u8", "#1"
            ]),
            "*4\r\n:0\r\n:5\r\n:5\r\n:5\r\n"
        );
        assert_eq!(get(&k, b"k"), Some(b"\x80\x05".to_vec()));
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "SET", "i5", "3", "-7", "GET", "u16", "0", "GET", "i5", "3",
                "GET", "u5", "3"
            ]),
            "*4\r\n:0\r\n:39173\r\n:-7\r\n:25\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "GET", "i64", "1000", "GET", "u63", "1000", "GET", "i64", "4",
                "GET", "u63", "12"
            ]),
            "*4\r\n:0\r\n:0\r\n:-8047932534111076352\r\n:2882303761517117440\r\n"
        );
        set(&mut k, b"ff", b"\xff");
        assert_eq!(
            k.run(&[
                "BITFIELD", "ff", "GET", "u16", "0", "GET", "i16", "0", "GET", "i8", "4", "GET",
                "u12", "4", "GET", "i64", "0"
            ]),
            "*5\r\n:65280\r\n:-256\r\n:-16\r\n:3840\r\n:-72057594037927936\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "n", "SET", "u8", "100", "1"]),
            "*1\r\n:0\r\n"
        );
        assert_eq!(get(&k, b"n").map_or(0, |v| v.len()), 14);
        assert_eq!(
            k.run(&[
                "BITFIELD", "n", "SET", "u1", "200", "1", "GET", "u1", "200", "SET", "u8", "0", "7"
            ]),
            "*3\r\n:0\r\n:1\r\n:0\r\n"
        );
        assert_eq!(get(&k, b"n"), Some(b"\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec()));
        assert_eq!(k.run(&["BITFIELD", "m", "INCRBY", "i64", "64", "-5", "INCRBY", "i64", "64", "-5", "GET", "i64", "64", "get", "u64", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(
            k.run(&[
                "BITFIELD", "m", "incrby", "i64", "64", "-5", "Get", "i64", "64", "sEt", "u2", "0",
                "3"
            ]),
            "*3\r\n:-5\r\n:-5\r\n:0\r\n"
        );
        assert_eq!(
            get(&k, b"m"),
            Some(b"\xc0\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfb".to_vec())
        );
        expire(&mut k, b"m", 100000);
        assert_eq!(
            k.run(&["BITFIELD", "m", "SET", "u8", "0", "1"]),
            "*1\r\n:192\r\n"
        );
        assert!(has_ttl(&k, b"m"));
        assert_eq!(encoding(&k, b"n"), "raw");
    }

    #[test]
    fn bitfield_overflow_unsigned() {
        let mut k = Kit::new();
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "0", "255", "INCRBY", "u8", "0", "1"]),
            "*2\r\n:0\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "SAT", "SET", "u8", "0", "250", "INCRBY", "u8", "0",
                "10", "INCRBY", "u8", "0", "-300"
            ]),
            "*3\r\n:0\r\n:255\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", "0", "250", "INCRBY", "u8", "0",
                "10", "INCRBY", "u8", "0", "-251", "GET", "u8", "0"
            ]),
            "*4\r\n:0\r\n$-1\r\n$-1\r\n:250\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW", "WRAP", "SET", "u8", "0", "-1", "GET", "u8", "0"]),
            "*2\r\n:250\r\n:255\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW", "SAT", "SET", "u8", "0", "-1", "GET", "u8", "0"]),
            "*2\r\n:255\r\n:255\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW", "SAT", "SET", "u8", "0", "-2", "GET", "u8", "0"]),
            "*2\r\n:255\r\n:255\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW", "WRAP", "SET", "u8", "0", "-2", "GET", "u8", "0"]),
            "*2\r\n:255\r\n:254\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", "0", "-1", "GET", "u8", "0"]),
            "*2\r\n$-1\r\n:254\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "WRAP", "SET", "u8", "0", "256", "GET", "u8", "0"
            ]),
            "*2\r\n:254\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW", "SAT", "SET", "u8", "0", "256", "GET", "u8", "0"]),
            "*2\r\n:0\r\n:255\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", "0", "256", "GET", "u8", "0"
            ]),
            "*2\r\n$-1\r\n:255\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "WRAP",
                "SET",
                "u8",
                "0",
                "-9223372036854775808",
                "GET",
                "u8",
                "0"
            ]),
            "*2\r\n:255\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "SAT",
                "SET",
                "u8",
                "0",
                "9223372036854775807",
                "GET",
                "u8",
                "0"
            ]),
            "*2\r\n:0\r\n:255\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "SET",
                "u8",
                "0",
                "0",
                "INCRBY",
                "u8",
                "0",
                "-1",
                "OVERFLOW",
                "SAT",
                "INCRBY",
                "u8",
                "0",
                "-1",
                "INCRBY",
                "u8",
                "0",
                "-9223372036854775808"
            ]),
            "*4\r\n:255\r\n:255\r\n:254\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "INCRBY",
                "u8",
                "0",
                "9223372036854775807",
                "OVERFLOW",
                "WRAP",
                "INCRBY",
                "u8",
                "0",
                "9223372036854775807",
                "INCRBY",
                "u8",
                "0",
                "-9223372036854775808"
            ]),
            "*3\r\n:255\r\n:254\r\n:254\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "u",
                "SET",
                "u63",
                "0",
                "9223372036854775807",
                "INCRBY",
                "u63",
                "0",
                "1",
                "INCRBY",
                "u63",
                "0",
                "-1"
            ]),
            "*3\r\n:0\r\n:0\r\n:9223372036854775807\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "u",
                "OVERFLOW",
                "SAT",
                "INCRBY",
                "u63",
                "0",
                "1",
                "INCRBY",
                "u63",
                "0",
                "-9223372036854775808",
                "INCRBY",
                "u63",
                "0",
                "9223372036854775807",
                "INCRBY",
                "u63",
                "0",
                "1"
            ]),
            "*4\r\n:9223372036854775807\r\n:0\r\n:9223372036854775807\r\n:9223372036854775807\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "u", "OVERFLOW", "FAIL", "INCRBY", "u63", "0", "1", "SET", "u63", "0",
                "-1", "GET", "u63", "0"
            ]),
            "*3\r\n$-1\r\n$-1\r\n:9223372036854775807\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "u", "OVERFLOW", "WRAP", "SET", "u63", "0", "-1", "GET", "u63", "0"
            ]),
            "*2\r\n:9223372036854775807\r\n:9223372036854775807\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "b", "SET", "u1", "0", "1", "INCRBY", "u1", "0", "1", "OVERFLOW",
                "SAT", "INCRBY", "u1", "0", "5", "INCRBY", "u1", "0", "-5", "SET", "u1", "0", "2",
                "OVERFLOW", "FAIL", "SET", "u1", "0", "2", "INCRBY", "u1", "0", "1"
            ]),
            "*7\r\n:0\r\n:0\r\n:1\r\n:0\r\n:0\r\n$-1\r\n$-1\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "b", "INCRBY", "u2", "0", "5", "OVERFLOW", "FAIL", "INCRBY", "u2", "0",
                "5", "OVERFLOW", "SAT", "INCRBY", "u2", "0", "5"
            ]),
            "*3\r\n:3\r\n$-1\r\n:3\r\n"
        );
    }

    #[test]
    fn bitfield_overflow_signed() {
        let mut k = Kit::new();
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "SET", "i8", "0", "127", "INCRBY", "i8", "0", "1", "INCRBY", "i8",
                "0", "-1"
            ]),
            "*3\r\n:0\r\n:-128\r\n:127\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "SAT", "SET", "i8", "0", "127", "INCRBY", "i8", "0",
                "1", "INCRBY", "i8", "0", "-1000", "INCRBY", "i8", "0", "-1"
            ]),
            "*4\r\n:127\r\n:127\r\n:-128\r\n:-128\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "i8", "0", "-128", "INCRBY", "i8", "0",
                "-1", "INCRBY", "i8", "0", "255", "INCRBY", "i8", "0", "127", "GET", "i8", "0"
            ]),
            "*5\r\n:-128\r\n$-1\r\n:127\r\n$-1\r\n:127\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "WRAP", "SET", "i8", "0", "200", "GET", "i8", "0",
                "SET", "i8", "0", "-200", "GET", "i8", "0"
            ]),
            "*4\r\n:127\r\n:-56\r\n:-56\r\n:56\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "SAT", "SET", "i8", "0", "200", "GET", "i8", "0",
                "SET", "i8", "0", "-200", "GET", "i8", "0"
            ]),
            "*4\r\n:56\r\n:127\r\n:127\r\n:-128\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "i8", "0", "200", "SET", "i8", "0",
                "-200", "GET", "i8", "0"
            ]),
            "*3\r\n$-1\r\n$-1\r\n:-128\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "WRAP",
                "INCRBY",
                "i8",
                "0",
                "9223372036854775807",
                "INCRBY",
                "i8",
                "0",
                "-9223372036854775808"
            ]),
            "*2\r\n:127\r\n:127\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "SAT",
                "INCRBY",
                "i8",
                "0",
                "9223372036854775807",
                "INCRBY",
                "i8",
                "0",
                "-9223372036854775808"
            ]),
            "*2\r\n:127\r\n:-128\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "w",
                "SET",
                "i64",
                "0",
                "9223372036854775807",
                "INCRBY",
                "i64",
                "0",
                "1",
                "INCRBY",
                "i64",
                "0",
                "-1"
            ]),
            "*3\r\n:0\r\n:-9223372036854775808\r\n:9223372036854775807\r\n"
        );
        assert_eq!(k.run(&["BITFIELD", "w", "OVERFLOW", "SAT", "SET", "i64", "0", "9223372036854775807", "INCRBY", "i64", "0", "1", "SET", "i64", "0", "-9223372036854775808", "INCRBY", "i64", "0", "-1", "INCRBY", "i64", "0", "9223372036854775807"]), "*5\r\n:9223372036854775807\r\n:9223372036854775807\r\n:9223372036854775807\r\n:-9223372036854775808\r\n:-1\r\n");
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "w",
                "OVERFLOW",
                "FAIL",
                "SET",
                "i64",
                "0",
                "-9223372036854775808",
                "INCRBY",
                "i64",
                "0",
                "-1",
                "INCRBY",
                "i64",
                "0",
                "9223372036854775807",
                "INCRBY",
                "i64",
                "0",
                "1",
                "GET",
                "i64",
                "0"
            ]),
            "*5\r\n:-1\r\n$-1\r\n:-1\r\n:0\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "w",
                "OVERFLOW",
                "WRAP",
                "SET",
                "i64",
                "0",
                "-1",
                "INCRBY",
                "i64",
                "0",
                "-9223372036854775808",
                "INCRBY",
                "i64",
                "0",
                "9223372036854775807"
            ]),
            "*3\r\n:0\r\n:9223372036854775807\r\n:-2\r\n"
        );
        assert_eq!(k.run(&["BITFIELD", "w", "SET", "i63", "1", "-4611686018427387904", "INCRBY", "i63", "1", "-1", "OVERFLOW", "SAT", "INCRBY", "i63", "1", "-9223372036854775808", "INCRBY", "i63", "1", "9223372036854775807"]), "*4\r\n:-2\r\n:4611686018427387903\r\n:-4611686018427387904\r\n:4611686018427387903\r\n");
        assert_eq!(
            k.run(&[
                "BITFIELD", "o", "SET", "i1", "0", "1", "GET", "i1", "0", "INCRBY", "i1", "0", "1",
                "OVERFLOW", "SAT", "SET", "i1", "0", "1", "INCRBY", "i1", "0", "-3", "OVERFLOW",
                "FAIL", "INCRBY", "i1", "0", "1", "SET", "i1", "0", "-2"
            ]),
            "*7\r\n:0\r\n:-1\r\n:0\r\n:0\r\n:-1\r\n:0\r\n$-1\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD", "o", "SET", "i2", "1", "1", "INCRBY", "i2", "1", "1", "INCRBY", "i2",
                "1", "1", "OVERFLOW", "SAT", "INCRBY", "i2", "1", "-9", "INCRBY", "i2", "1", "9"
            ]),
            "*5\r\n:0\r\n:-2\r\n:-1\r\n:-2\r\n:1\r\n"
        );
    }

    #[test]
    fn bitfield_fail_still_creates_key() {
        let mut k = Kit::new();
        assert_eq!(
            k.run(&["BITFIELD", "f", "OVERFLOW", "FAIL", "SET", "u2", "0", "5"]),
            "*1\r\n$-1\r\n"
        );
        assert_eq!(get(&k, b"f"), Some(b"\x00".to_vec()));
        assert_eq!(
            k.run(&[
                "BITFIELD", "g", "OVERFLOW", "FAIL", "INCRBY", "i8", "20", "200", "GET", "i8", "20"
            ]),
            "*2\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(get(&k, b"g"), Some(b"\x00\x00\x00\x00".to_vec()));
    }

    #[test]
    fn bitfield_errors() {
        let mut k = Kit::new();
        set(&mut k, b"k", b"\x01");
        assert_eq!(k.run(&["BITFIELD", "k", "GET"]), "-ERR syntax error\r\n");
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "0"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "INCRBY", "u8", "0"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(k.run(&["BITFIELD", "k", "FOO"]), "-ERR syntax error\r\n");
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW", "bad", "GET", "u8", "0"]),
            "-ERR Invalid OVERFLOW type specified\r\n"
        );
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "u64", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "i65", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "i0", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "u0", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "x8", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "I8", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "U8", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "i", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "i08", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "i-8", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8\u{0}zz", "0"]),
            "*1\r\n:1\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "-1"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "x"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "#x"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "GET", "u8", "1.0"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "0", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "0", "1.5"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "INCRBY", "i8", "0", "9223372036854775808"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(k.run(&["BITFIELD", "k", "SET", "u8", "0", "9", "GET", "bad", "0"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "0", "9", "OVERFLOW", "bad"]),
            "-ERR Invalid OVERFLOW type specified\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "0", "9", "FOO"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(k.run(&["BITFIELD", "k", "GET", "bad", "0", "SET", "u8", "x", "1"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(
            k.run(&["BITFIELD", "k", "SET", "u8", "x", "1", "GET", "bad", "0"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(get(&k, b"k"), Some(b"\x01".to_vec()));
        assert_eq!(
            k.run(&["BITFIELD"]),
            "-ERR wrong number of arguments for 'bitfield' command\r\n"
        );
    }

    #[test]
    fn bitfield_ro() {
        let mut k = Kit::new();
        set(&mut k, b"k", b"\x81\x02");
        assert_eq!(
            k.run(&[
                "BITFIELD_RO",
                "k",
                "GET",
                "u8",
                "0",
                "GET",
                "i8",
                "0",
                "GET",
                "u16",
                "0",
                "GET",
                "u8",
                "100"
            ]),
            "*4\r\n:129\r\n:-127\r\n:33026\r\n:0\r\n"
        );
        assert_eq!(k.run(&["BITFIELD_RO", "k"]), "*0\r\n");
        assert_eq!(
            k.run(&["BITFIELD_RO", "nokey", "GET", "u8", "0"]),
            "*1\r\n:0\r\n"
        );
        assert_eq!(k.run(&["BITFIELD_RO", "nokey"]), "*0\r\n");
        assert!(get(&k, b"nokey").is_none());
        assert_eq!(
            k.run(&["BITFIELD_RO", "k", "OVERFLOW", "SAT", "GET", "u8", "0"]),
            "*1\r\n:129\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD_RO", "k", "SET", "u8", "0", "1"]),
            "-ERR BITFIELD_RO only supports the GET subcommand\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD_RO", "k", "INCRBY", "u8", "0", "1"]),
            "-ERR BITFIELD_RO only supports the GET subcommand\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD_RO", "k", "GET", "u8", "0", "SET", "u8", "0", "1"]),
            "-ERR BITFIELD_RO only supports the GET subcommand\r\n"
        );
        assert_eq!(k.run(&["BITFIELD_RO", "k", "SET", "i99", "0", "1"]), "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n");
        assert_eq!(
            k.run(&["BITFIELD_RO", "k", "SET", "u8", "0", "1", "GET", "u8", "x"]),
            "-ERR bit offset is not an integer or out of range\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD_RO", "k", "SET", "u8", "0", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(k.run(&["BITFIELD_RO", "k", "FOO"]), "-ERR syntax error\r\n");
        assert_eq!(
            k.run(&["BITFIELD_RO", "nokey", "SET", "u8", "0", "1"]),
            "-ERR BITFIELD_RO only supports the GET subcommand\r\n"
        );
        assert!(get(&k, b"nokey").is_none());
        assert_eq!(get(&k, b"k"), Some(b"\x81\x02".to_vec()));
        assert_eq!(
            k.run(&["BITFIELD_RO"]),
            "-ERR wrong number of arguments for 'bitfield_ro' command\r\n"
        );
    }

    #[test]
    fn bitcount_crossed_negative_range_wins_over_unit() {
        let mut k = Kit::new();
        set(&mut k, b"k", b"foobar");
        assert_eq!(k.run(&["BITCOUNT", "k", "-1", "-55", "bad"]), ":0\r\n");
        assert_eq!(k.run(&["BITCOUNT", "k", "-1", "-55", "bit"]), ":0\r\n");
        assert_eq!(
            k.run(&["BITCOUNT", "k", "-55", "-1", "bad"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            k.run(&["BITCOUNT", "k", "-1", "x", "bad"]),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn bitfield_signed_set_far_below_min_counts_as_upward() {
        let mut k = Kit::new();
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "SAT",
                "SET",
                "i62",
                "1",
                "-9223372036854775808",
                "GET",
                "i62",
                "1"
            ]),
            "*2\r\n:0\r\n:2305843009213693951\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "SAT",
                "SET",
                "i8",
                "0",
                "-9223372036854775808",
                "GET",
                "i8",
                "0"
            ]),
            "*2\r\n:63\r\n:127\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "SAT",
                "SET",
                "i8",
                "0",
                "-9223372036854775680",
                "GET",
                "i8",
                "0"
            ]),
            "*2\r\n:127\r\n:-128\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "SAT",
                "SET",
                "i8",
                "0",
                "-9223372036854775681",
                "GET",
                "i8",
                "0"
            ]),
            "*2\r\n:-128\r\n:127\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "WRAP",
                "SET",
                "i8",
                "0",
                "-9223372036854775681",
                "GET",
                "i8",
                "0"
            ]),
            "*2\r\n:127\r\n:127\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "FAIL",
                "SET",
                "i8",
                "0",
                "-9223372036854775681",
                "GET",
                "i8",
                "0"
            ]),
            "*2\r\n$-1\r\n:127\r\n"
        );
        assert_eq!(
            k.run(&[
                "BITFIELD",
                "k",
                "OVERFLOW",
                "SAT",
                "SET",
                "i63",
                "0",
                "-9223372036854775808",
                "GET",
                "i63",
                "0"
            ]),
            "*2\r\n:4611686018427387903\r\n:4611686018427387903\r\n"
        );
    }

    #[test]
    fn bitfield_fail_is_null_in_resp3() {
        let mut k = Kit::new();
        k.client.proto = 3;
        assert_eq!(
            k.run(&["BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u2", "0", "5", "GET", "u2", "0"]),
            "*2\r\n_\r\n:0\r\n"
        );
        assert_eq!(
            k.run(&["BITFIELD_RO", "k", "GET", "u2", "0"]),
            "*1\r\n:0\r\n"
        );
    }

    /// Bit-at-a-time reference for the word-at-a-time scans.
    #[test]
    fn scans_match_a_naive_reference() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let len = (next() % 40) as usize + 1;
            let s: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => 0,
                    1 => 0xff,
                    _ => next() as u8,
                })
                .collect();
            let nbits = len as u64 * 8;
            let a = next() % nbits;
            let b = next() % nbits;
            let (lo, hi) = (a.min(b), a.max(b));
            let naive = |want: u8| (lo..=hi).find(|&i| bit_at(&s, i) == want);
            let ones = (lo..=hi).filter(|&i| bit_at(&s, i) == 1).count() as u64;
            assert_eq!(count_bits(&s, lo, hi), ones, "{s:?} {lo} {hi}");
            assert_eq!(find_bit(&s, lo, hi, true), naive(1), "{s:?} {lo} {hi}");
            assert_eq!(find_bit(&s, lo, hi, false), naive(0), "{s:?} {lo} {hi}");
        }
    }
}
