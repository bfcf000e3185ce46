//! The hyperloglog family (PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST).
//!
//! A HyperLogLog is an ordinary string value whose bytes are exactly what
//! Redis 7.0 stores, so GET, DUMP/RESTORE and replication of the raw value
//! interoperate with real Redis:
//!
//! ```text
//! "HYLL" | encoding (0 dense, 1 sparse) | 3 unused | cached cardinality (u64 LE)
//! ```
//!
//! The most significant bit of the last cardinality byte marks the cache as
//! invalid. 16384 registers (14 index bits of MurmurHash64A, seed
//! 0xadc83b19); dense packs them in 6 bits each, LSB first; sparse is a
//! run-length code of ZERO (`00xxxxxx`), XZERO (`01xxxxxx yyyyyyyy`) and
//! VAL (`1vvvvvxx`) opcodes, promoted to dense when a register exceeds 32
//! or the string would grow past `hll-sparse-max-bytes`. The cardinality
//! estimator is Otmar Ertl's (arXiv:1702.01284), as in Redis 7.0.
//!
//! The algorithms below follow Redis's step for step (including where it
//! splits, merges and promotes opcodes) because the resulting bytes are
//! observable. Where Redis reads one byte past a corrupt string (the SDS
//! terminator) we read a zero; every other malformed input is an error.

use rampart_keyspace::{Db, Slot, Value};

use super::flags::{ADMIN, DENYOOM, FAST, READONLY, WRITE};
use super::{err, spec, CommandSpec, Ctx};

/// The reply for a string that is not a HyperLogLog.
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// The reply for a sparse HyperLogLog whose opcodes do not add up.
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// Header size: magic, encoding, 3 unused bytes, cached cardinality.
const HDR: usize = 16;
/// Register index bits.
const P: u32 = 14;
/// Number of registers.
const REGISTERS: usize = 1 << P;
/// Hash bits left for the zero run once the index is taken.
const Q: usize = 64 - P as usize;
/// Size of a dense HyperLogLog, header included.
const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
/// Encoding byte values.
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// Largest value and run a VAL opcode can hold.
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
/// Longest run a ZERO opcode can hold (XZERO holds up to 16384).
const ZERO_MAX_LEN: usize = 64;
/// 0.5 / ln 2, the estimator's bias constant for m → ∞.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
/// The cache-invalid bit, in byte 15.
const INVALID_CACHE: u8 = 0x80;

/// MurmurHash2, 64-bit version, reading words little-endian as Redis does
/// on every platform.
fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let mut k = u64::from_le_bytes(w).wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the length of its `0…01` pattern
/// (1..=Q+1).
fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit bounds the count at Q+1 even for an all-zero hash.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Whether `s` is a HyperLogLog, and which encoding (`isHLLObjectOrReply`).
fn encoding_of(s: &[u8]) -> Option<u8> {
    if s.len() < HDR || &s[..4] != b"HYLL" {
        return None;
    }
    match s[4] {
        DENSE if s.len() == DENSE_SIZE => Some(DENSE),
        SPARSE => Some(SPARSE),
        _ => None,
    }
}

/// A freshly created HyperLogLog: sparse, one XZERO covering every
/// register, cache valid at 0.
fn empty_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    push_xzero(&mut v, REGISTERS);
    v
}

fn invalidate(s: &mut [u8]) {
    s[15] |= INVALID_CACHE;
}

// ---- opcodes ---------------------------------------------------------------

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}

fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}

fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}

fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}

fn val_len(b: u8) -> usize {
    usize::from(b & 3) + 1
}

fn val_op(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len as u8 - 1)
}

/// One opcode at `p`: (registers covered, bytes used, value). An XZERO cut
/// short by the end of a corrupt string takes its second byte from `tail`,
/// the byte Redis finds just past the string (see [`Work`]).
fn opcode(s: &[u8], p: usize, tail: u8) -> (usize, usize, u8) {
    let b = s[p];
    if is_zero(b) {
        (usize::from(b & 0x3f) + 1, 1, 0)
    } else if is_xzero(b) {
        let second = s.get(p + 1).copied().unwrap_or(tail);
        let len = ((usize::from(b & 0x3f) << 8) | usize::from(second)) + 1;
        (len, 2, 0)
    } else {
        (val_len(b), 1, val_value(b))
    }
}

fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push(0x40 | (l >> 8) as u8);
    v.push((l & 0xff) as u8);
}

/// Appends the shortest zero-run opcode for `len` (1..=16384) registers.
fn push_zeros(v: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(v, len);
    } else {
        v.push((len - 1) as u8);
    }
}

// ---- dense -----------------------------------------------------------------

/// Register `reg` of a dense HyperLogLog (whole string, header included).
fn dense_get(s: &[u8], reg: usize) -> u8 {
    let byte = HDR + reg * 6 / 8;
    let fb = (reg * 6) & 7;
    let b0 = u32::from(s[byte]);
    // Past the last register Redis reads the SDS terminator: a zero.
    let b1 = u32::from(s.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

fn dense_put(s: &mut [u8], reg: usize, val: u8) {
    let byte = HDR + reg * 6 / 8;
    let fb = (reg * 6) & 7;
    let fb8 = 8 - fb;
    let v = u32::from(val);
    s[byte] &= !((63u32 << fb) as u8);
    s[byte] |= (v << fb) as u8;
    if let Some(b) = s.get_mut(byte + 1) {
        *b &= !((63u32 >> fb8) as u8);
        *b |= (v >> fb8) as u8;
    }
}

/// Raises register `reg` to `count`; true when it changed.
fn dense_set(s: &mut [u8], reg: usize, count: u8) -> bool {
    if count > dense_get(s, reg) {
        dense_put(s, reg, count);
        true
    } else {
        false
    }
}

/// Every register of a dense HyperLogLog, in order.
fn dense_registers(s: &[u8]) -> impl Iterator<Item = u8> + '_ {
    // Three bytes hold exactly four registers.
    s[HDR..].chunks_exact(3).flat_map(|c| {
        let (b0, b1, b2) = (c[0], c[1], c[2]);
        [
            b0 & 63,
            ((b0 >> 6) | (b1 << 2)) & 63,
            ((b1 >> 4) | (b2 << 4)) & 63,
            b2 >> 2,
        ]
    })
}

// ---- sparse ----------------------------------------------------------------

/// Calls `f(first_register, run_length, value)` for each VAL opcode of a
/// sparse HyperLogLog that lies within the registers. Returns whether the
/// opcodes cover exactly every register: anything else is corrupt (the
/// Redis 7.0.15 we match, Debian's, carries the CVE-2025-32023 fix, which
/// rejects every run past the last register).
fn sparse_runs(s: &[u8], tail: u8, mut f: impl FnMut(usize, usize, u8)) -> bool {
    let mut idx = 0usize;
    let mut p = HDR;
    while p < s.len() {
        let (len, oplen, val) = opcode(s, p, tail);
        if val > 0 && idx + len <= REGISTERS {
            f(idx, len, val);
        }
        idx += len;
        p += oplen;
    }
    idx == REGISTERS
}

/// The dense form of a sparse HyperLogLog (header copied, encoding set to
/// dense), or `None` when the sparse form is corrupt.
fn sparse_to_dense(s: &[u8], tail: u8) -> Option<Vec<u8>> {
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&s[..HDR]);
    d[4] = DENSE;
    let ok = sparse_runs(s, tail, |first, len, val| {
        for reg in first..first + len {
            dense_put(&mut d, reg, val);
        }
    });
    ok.then_some(d)
}

/// Why a register update failed.
#[derive(Debug, PartialEq, Eq)]
struct Corrupt;

/// A HyperLogLog being updated by one command: its bytes, and the byte
/// Redis has just past them. That byte is normally the SDS terminator
/// (zero), but when Redis splits an XZERO cut short at the end of a corrupt
/// string it writes the new opcodes past the end, and the next update in
/// the same command reads one of them back. Modelling it keeps even corrupt
/// inputs byte-identical within a command; it is not stored.
struct Work {
    v: Vec<u8>,
    tail: u8,
}

impl Work {
    fn new(v: Vec<u8>) -> Work {
        Work { v, tail: 0 }
    }

    /// Raises register `index` to `count`, promoting a sparse HyperLogLog
    /// to dense when needed (`hllSparseSet`). Returns whether the register
    /// changed.
    fn set(&mut self, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
        if self.v[4] == DENSE {
            return Ok(dense_set(&mut self.v, index, count));
        }
        if count > VAL_MAX_VALUE {
            return self.promote(index, count);
        }
        // Step 1: find the opcode covering `index`.
        let v = &mut self.v;
        let end = v.len();
        let mut p = HDR;
        let mut first = 0usize;
        let mut prev = None;
        let mut span = 0usize;
        let mut oplen = 1usize;
        while p < end {
            let (len, ol, _) = opcode(v, p, self.tail);
            span = len;
            oplen = ol;
            if index < first + span {
                break;
            }
            prev = Some(p);
            p += oplen;
            first += span;
        }
        if span == 0 || p >= end {
            return Err(Corrupt);
        }
        let op = v[p];

        // Step 2: the trivial updates in place.
        if is_val(op) {
            if val_value(op) >= count {
                return Ok(false);
            }
            if span == 1 {
                v[p] = val_op(count, 1);
                self.merge_vals(prev);
                return Ok(true);
            }
        } else if is_zero(op) && span == 1 {
            v[p] = val_op(count, 1);
            self.merge_vals(prev);
            return Ok(true);
        }

        // General case: split the opcode into up to three.
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if is_val(op) {
            let cur = val_value(op);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        } else {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }

        // Step 3: substitute the sequence, or promote if it grows too much.
        let newlen = end + seq.len() - oplen;
        if seq.len() > oplen && newlen > max_bytes {
            return self.promote(index, count);
        }
        if p + oplen < end {
            v.splice(p..p + oplen, seq);
            self.tail = 0;
        } else {
            // The last opcode, possibly an XZERO cut short. Redis sets the
            // new length (writing a terminator there) and then copies the
            // sequence, which may reach past that terminator.
            let mut m = std::mem::take(v);
            m.push(self.tail);
            m.resize(m.len().max(newlen + 1).max(p + seq.len()), 0);
            m[newlen] = 0;
            m[p..p + seq.len()].copy_from_slice(&seq);
            self.tail = m[newlen];
            m.truncate(newlen);
            *v = m;
        }
        self.merge_vals(prev);
        Ok(true)
    }

    /// Step 4 of `hllSparseSet`: merges adjacent VAL opcodes of equal value
    /// among the five opcodes from `prev`, then invalidates the cache.
    fn merge_vals(&mut self, prev: Option<usize>) {
        let v = &mut self.v;
        let mut p = prev.unwrap_or(HDR);
        let mut scan = 5;
        while p < v.len() && scan > 0 {
            scan -= 1;
            let b = v[p];
            if is_xzero(b) {
                p += 2;
                continue;
            }
            if is_zero(b) {
                p += 1;
                continue;
            }
            if let Some(&n) = v.get(p + 1) {
                if is_val(n) && val_value(b) == val_value(n) {
                    let len = val_len(b) + val_len(n);
                    if len <= VAL_MAX_LEN {
                        v[p + 1] = val_op(val_value(b), len);
                        v.remove(p);
                        // Shrinking rewrites the terminator.
                        self.tail = 0;
                        // Try the merged opcode against its right neighbour.
                        continue;
                    }
                }
            }
            p += 1;
        }
        invalidate(v);
    }

    /// Converts a sparse HyperLogLog to dense and sets the register there.
    fn promote(&mut self, index: usize, count: u8) -> Result<bool, Corrupt> {
        let mut d = sparse_to_dense(&self.v, self.tail).ok_or(Corrupt)?;
        dense_set(&mut d, index, count);
        self.v = d;
        self.tail = 0;
        Ok(true)
    }
}

// ---- counting --------------------------------------------------------------

/// Register-value histogram; `None` for a corrupt sparse HyperLogLog.
fn histogram(s: &[u8]) -> Option<[u64; 64]> {
    let mut h = [0u64; 64];
    if s[4] == DENSE {
        for r in dense_registers(s) {
            h[usize::from(r)] += 1;
        }
        return Some(h);
    }
    let mut nonzero = 0;
    let ok = sparse_runs(s, 0, |_, len, val| {
        h[usize::from(val)] += len as u64;
        nonzero += len as u64;
    });
    h[0] = REGISTERS as u64 - nonzero;
    ok.then_some(h)
}

fn raw_histogram(max: &[u8; REGISTERS]) -> [u64; 64] {
    let mut h = [0u64; 64];
    for &r in max.iter() {
        h[usize::from(r & 63)] += 1;
    }
    h
}

/// Ertl's σ.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

/// Ertl's τ.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// The cardinality estimate from a register histogram, bit for bit as
/// Redis computes it. Registers above Q+1 (only in corrupt dense strings)
/// are ignored, as Redis ignores them; an estimate that does not fit an
/// i64 comes out as Redis's does on x86-64: 1 << 63.
fn estimate(h: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    let e = (ALPHA_INF * m * m / z).round();
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&e) {
        e as i64 as u64
    } else {
        1 << 63
    }
}

/// The cached cardinality, if the cache is valid.
fn cached(s: &[u8]) -> Option<u64> {
    (s[15] & INVALID_CACHE == 0).then(|| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&s[8..16]);
        u64::from_le_bytes(b)
    })
}

/// Raises `max` to the registers of `s` (`hllMerge`).
fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        for (m, r) in max.iter_mut().zip(dense_registers(s)) {
            *m = (*m).max(r);
        }
        return Ok(());
    }
    let ok = sparse_runs(s, 0, |first, len, val| {
        for m in &mut max[first..first + len] {
            *m = (*m).max(val);
        }
    });
    if ok {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

// ---- commands --------------------------------------------------------------

/// The current database, borrowed from the server rather than from `ctx`.
fn db<'a>(ctx: &Ctx<'a>) -> &'a Db {
    let srv = ctx.srv;
    srv.keyspace.db(ctx.client.db)
}

fn sparse_max_bytes(ctx: &Ctx<'_>) -> usize {
    usize::try_from(ctx.srv.config.int("hll-sparse-max-bytes")).unwrap_or(0)
}

/// What a lookup found, before it meets the command.
enum Found<T> {
    Missing,
    NotString,
    NotHll,
    Hll(T),
}

impl<T> Found<T> {
    /// Replies the type error, if this is one; true when it did.
    fn type_error(&self, ctx: &mut Ctx<'_>) -> bool {
        match self {
            Found::NotString => ctx.out.error(err::WRONGTYPE),
            Found::NotHll => ctx.out.error(NOT_HLL),
            _ => return false,
        }
        true
    }
}

/// Classifies a value and, for a HyperLogLog, applies `f` to its bytes.
fn inspect<T>(value: Option<&Value>, f: impl FnOnce(&[u8]) -> T) -> Found<T> {
    match value.map(Value::as_str) {
        None => Found::Missing,
        Some(None) => Found::NotString,
        Some(Some(s)) if encoding_of(s).is_none() => Found::NotHll,
        Some(Some(s)) => Found::Hll(f(s)),
    }
}

/// Stores `bytes` as the key's value (a raw string, keeping any TTL), or
/// creates the key; an identical value is left alone, so it is not
/// marked modified.
fn store(slot: &mut Slot<'_>, bytes: Vec<u8>) {
    if slot.value().and_then(Value::as_str) == Some(bytes.as_slice()) {
        return;
    }
    match slot.value_mut().and_then(Value::str_mut) {
        Some(s) => *s = bytes,
        None => slot.insert(Value::raw_string(bytes), None),
    }
}

/// How PFADD will change an existing value.
enum AddPlan {
    /// Dense, and no register would rise: nothing to write.
    DenseNoop,
    /// Dense with a register to raise: update in place.
    DenseInPlace,
    /// Sparse: rewritten on this copy, stored back only if it changed, so
    /// an unchanged key is left untouched (no WATCH hit, no propagation).
    Sparse(Vec<u8>),
}

/// PFADD key [element ...]
///
/// Creates the key when missing (that alone counts as a change), replies 1
/// when any register changed, else 0.
fn pfadd(ctx: &mut Ctx<'_>) {
    let patterns: Vec<(usize, u8)> = ctx.args[2..].iter().map(|e| pattern(e)).collect();
    let max_bytes = sparse_max_bytes(ctx);
    let r = db(ctx).write(ctx.arg(1), ctx.now, |slot| {
        let plan = inspect(slot.value(), |s| {
            if s[4] == SPARSE {
                AddPlan::Sparse(s.to_vec())
            } else if patterns.iter().all(|&(i, c)| c <= dense_get(s, i)) {
                AddPlan::DenseNoop
            } else {
                AddPlan::DenseInPlace
            }
        });
        let (mut updated, bytes) = match plan {
            Found::NotString => return Found::NotString,
            Found::NotHll => return Found::NotHll,
            Found::Hll(AddPlan::DenseNoop) => return Found::Hll(Ok(false)),
            Found::Hll(AddPlan::DenseInPlace) => {
                if let Some(s) = slot.value_mut().and_then(Value::str_mut) {
                    for &(i, c) in &patterns {
                        dense_set(s, i, c);
                    }
                    invalidate(s);
                }
                return Found::Hll(Ok(true));
            }
            Found::Missing => (true, empty_sparse()),
            Found::Hll(AddPlan::Sparse(copy)) => (false, copy),
        };
        let mut work = Work::new(bytes);
        let mut result = Ok(());
        for &(i, c) in &patterns {
            match work.set(i, c, max_bytes) {
                Ok(changed) => updated |= changed,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if updated && result.is_ok() {
            invalidate(&mut work.v);
        }
        // On corruption Redis keeps the registers it raised before.
        store(slot, work.v);
        Found::Hll(result.map(|()| updated))
    });
    if r.type_error(ctx) {
        return;
    }
    match r {
        Found::Hll(Ok(updated)) => {
            if updated {
                ctx.notify(crate::pubsub::class::STRING, "pfadd", ctx.arg(1));
            }
            ctx.out.int(i64::from(updated))
        }
        _ => ctx.out.error(CORRUPT),
    }
}

/// PFCOUNT key [key ...]
///
/// One key: the cached cardinality, recomputed and stored back when the
/// cache is invalid (so a "read-only" command may write, and propagates
/// itself then, as in Redis). Several keys: the cardinality of their
/// union, never cached.
fn pfcount(ctx: &mut Ctx<'_>) {
    if ctx.args.len() > 2 {
        return pfcount_union(ctx);
    }
    let db = db(ctx);
    let args = ctx.args;
    let key = &args[1][..];
    let found = db.get(key, ctx.now, |n| inspect(n.map(|n| &n.value), cached));
    ctx.looked_up(key, !matches!(found, Found::Missing));
    if found.type_error(ctx) {
        return;
    }
    match found {
        Found::Missing => return ctx.out.int(0),
        Found::Hll(Some(card)) => return ctx.out.int(card as i64),
        _ => {}
    }
    // Recompute under the key's write lock, so no PFADD slips in between
    // the count and the store.
    let r = db.write(key, ctx.now, |slot| {
        let found = inspect(slot.value(), |s| match cached(s) {
            Some(card) => Ok((card, false)),
            None => histogram(s).map(|h| (estimate(&h), true)).ok_or(Corrupt),
        });
        if let Found::Hll(Ok((card, true))) = found {
            if let Some(s) = slot.value_mut().and_then(Value::str_mut) {
                s[8..16].copy_from_slice(&card.to_le_bytes());
            }
        }
        found
    });
    if r.type_error(ctx) {
        return;
    }
    match r {
        Found::Missing => ctx.out.int(0),
        Found::Hll(Ok((card, stored))) => {
            if stored {
                // Redis propagates PFCOUNT when it rewrote the cache.
                let args = ctx.args;
                let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
                ctx.propagate(&argv);
            }
            ctx.out.int(card as i64)
        }
        _ => ctx.out.error(CORRUPT),
    }
}

/// Reads every key from argument `from` on into `max`, replying the error
/// and returning `None` on a non-HyperLogLog or corrupt value; otherwise
/// whether any of them was dense.
fn merge_keys(ctx: &mut Ctx<'_>, from: usize, max: &mut [u8; REGISTERS]) -> Option<bool> {
    let db = db(ctx);
    let mut dense = false;
    for key in &ctx.args[from..] {
        let found = db.get(key, ctx.now, |n| {
            inspect(n.map(|n| &n.value), |s| {
                merge_into(max, s).map(|()| s[4] == DENSE)
            })
        });
        ctx.looked_up(key, !matches!(found, Found::Missing));
        if found.type_error(ctx) {
            return None;
        }
        match found {
            Found::Hll(Ok(d)) => dense |= d,
            Found::Hll(Err(Corrupt)) => {
                ctx.out.error(CORRUPT);
                return None;
            }
            _ => {}
        }
    }
    Some(dense)
}

fn pfcount_union(ctx: &mut Ctx<'_>) {
    let mut max = Box::new([0u8; REGISTERS]);
    if merge_keys(ctx, 1, &mut max).is_none() {
        return;
    }
    ctx.out.int(estimate(&raw_histogram(&max)) as i64);
}

/// PFMERGE destkey [sourcekey ...]
///
/// Merges the sources, and the destination itself, into the destination
/// (created sparse when missing; converted to dense when any input is
/// dense), register by register as Redis does, so the bytes match.
fn pfmerge(ctx: &mut Ctx<'_>) {
    let mut max = Box::new([0u8; REGISTERS]);
    let Some(use_dense) = merge_keys(ctx, 1, &mut max) else {
        return;
    };
    let max_bytes = sparse_max_bytes(ctx);
    let r = db(ctx).write(ctx.arg(1), ctx.now, |slot| {
        let found = inspect(slot.value(), <[u8]>::to_vec);
        let v = match found {
            Found::Missing => empty_sparse(),
            Found::Hll(v) => v,
            Found::NotString => return Found::NotString,
            Found::NotHll => return Found::NotHll,
        };
        let mut work = Work::new(v);
        if use_dense && work.v[4] == SPARSE {
            match sparse_to_dense(&work.v, 0) {
                Some(d) => work.v = d,
                None => return Found::Hll(Err(Corrupt)),
            }
        }
        for (i, &m) in max.iter().enumerate() {
            if m != 0 {
                // Redis ignores a failed sparse update here: the
                // destination was validated when it was merged above.
                let _ = work.set(i, m, max_bytes);
            }
        }
        invalidate(&mut work.v);
        // Always a write, even when the bytes come out the same: Redis
        // signals the key modified (WATCH) and propagates PFMERGE.
        match slot.value_mut().and_then(Value::str_mut) {
            Some(s) => *s = work.v,
            None => slot.insert(Value::raw_string(work.v), None),
        }
        Found::Hll(Ok(()))
    });
    if r.type_error(ctx) {
        return;
    }
    match r {
        Found::Hll(Err(Corrupt)) => ctx.out.error(CORRUPT),
        _ => {
            // Redis announces a merge as a mass PFADD.
            ctx.notify(crate::pubsub::class::STRING, "pfadd", ctx.arg(1));
            ctx.out.ok()
        }
    }
}

/// PFDEBUG <GETREG|DECODE|ENCODING|TODENSE> key
///
/// Internal inspection of a HyperLogLog. GETREG and TODENSE convert a
/// sparse value to dense (a write).
fn pfdebug(ctx: &mut Ctx<'_>) {
    let sub = ctx.opt(1);
    let convert = sub == "getreg" || sub == "todense";
    // (bytes after any conversion, whether converted), as one write.
    let found = db(ctx).write(ctx.arg(2), ctx.now, |slot| {
        let found = inspect(slot.value(), |s| {
            if convert && s[4] == SPARSE {
                sparse_to_dense(s, 0).map(|d| (d, true)).ok_or(Corrupt)
            } else {
                Ok((s.to_vec(), false))
            }
        });
        if let Found::Hll(Ok((d, true))) = &found {
            store(slot, d.clone());
        }
        found
    });
    if found.type_error(ctx) {
        return;
    }
    let (s, converted) = match found {
        Found::Hll(Ok(v)) => v,
        Found::Hll(Err(Corrupt)) => return ctx.out.error(CORRUPT),
        _ => return ctx.out.error("ERR The specified key does not exist"),
    };
    match sub.as_str() {
        "getreg" => {
            ctx.out.array(REGISTERS);
            for r in dense_registers(&s) {
                ctx.out.int(i64::from(r));
            }
        }
        "todense" => ctx.out.int(i64::from(converted)),
        "decode" => {
            if s[4] != SPARSE {
                return ctx.out.error("ERR HLL encoding is not sparse");
            }
            let mut text = String::new();
            let mut p = HDR;
            while p < s.len() {
                let (len, oplen, val) = opcode(&s, p, 0);
                let b = s[p];
                let item = if is_zero(b) {
                    format!("z:{len} ")
                } else if is_xzero(b) {
                    format!("Z:{len} ")
                } else {
                    format!("v:{val},{len} ")
                };
                text.push_str(&item);
                p += oplen;
            }
            ctx.out.bulk(text.trim_matches(' ').as_bytes());
        }
        "encoding" => ctx
            .out
            .simple(if s[4] == DENSE { "dense" } else { "sparse" }),
        _ => {
            // Redis formats the name as a C string: it stops at a NUL.
            let raw = ctx.arg(1);
            let name = raw.split(|&b| b == 0).next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            ctx.out
                .error(&format!("ERR Unknown PFDEBUG subcommand '{name}'"));
        }
    }
}

/// PFSELFTEST
///
/// Checks the register packing and that sparse and dense representations
/// agree; replies OK or a TESTFAILED error.
fn pfselftest(ctx: &mut Ctx<'_>) {
    match selftest() {
        Ok(()) => ctx.out.ok(),
        Err(msg) => ctx.out.error(&format!("TESTFAILED {msg}")),
    }
}

fn selftest() -> Result<(), String> {
    // Register packing: every register keeps its own value.
    let mut d = vec![0u8; DENSE_SIZE];
    let mut x: u32 = 0x9e37_79b9;
    let mut expect = vec![0u8; REGISTERS];
    for (i, e) in expect.iter_mut().enumerate() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *e = (x & 63) as u8;
        dense_put(&mut d, i, *e);
    }
    for (i, (e, r)) in expect.iter().zip(dense_registers(&d)).enumerate() {
        if *e != r || dense_get(&d, i) != r {
            return Err(format!("Register error at {i}"));
        }
    }
    // Sparse and dense agree while elements are added.
    let mut sparse = Work::new(empty_sparse());
    let mut dense = sparse_to_dense(&sparse.v, 0).ok_or("empty sparse is corrupt")?;
    for n in 0..5000u32 {
        let (i, c) = pattern(format!("selftest:{n}").as_bytes());
        sparse.set(i, c, usize::MAX).map_err(|_| "corrupt sparse")?;
        dense_set(&mut dense, i, c);
        if n % 500 == 0 {
            let hs = histogram(&sparse.v).ok_or("corrupt sparse")?;
            let hd = histogram(&dense).ok_or("corrupt dense")?;
            if hs != hd {
                return Err(format!("Sparse and dense differ after {n} elements"));
            }
        }
    }
    let h = histogram(&dense).ok_or("corrupt dense")?;
    let e = estimate(&h) as f64;
    if (e - 5000.0).abs() / 5000.0 > 0.05 {
        return Err(format!("Approximation error {e} for 5000 elements"));
    }
    Ok(())
}

/// The family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "pfadd",
        -2,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hyperloglog",
        pfadd,
    ),
    spec("pfcount", -2, READONLY, (1, -1, 1), "hyperloglog", pfcount),
    spec(
        "pfmerge",
        -2,
        WRITE | DENYOOM,
        (1, -1, 1),
        "hyperloglog",
        pfmerge,
    ),
    spec(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        (2, 2, 1),
        "hyperloglog",
        pfdebug,
    ),
    spec("pfselftest", 1, ADMIN, (0, 0, 0), "hyperloglog", pfselftest),
];

#[cfg(test)]
mod tests {
    //! Expected bytes and replies were captured from redis-server 7.0.15
    //! (Debian's 7.0.15-1~deb12u10) running the same commands. Large values
    //! are compared by their FNV-1a 64 digest.

    use super::*;
    use crate::state::now_ms;
    use crate::testkit::Kit;
    use rand::{Rng, SeedableRng};

    fn get(k: &Kit, key: &[u8]) -> Option<Vec<u8>> {
        k.srv.keyspace.db(0).get(key, now_ms(), |n| {
            n.and_then(|n| n.value.as_str().map(<[u8]>::to_vec))
        })
    }

    fn set(k: &Kit, key: &[u8], v: &[u8]) {
        k.srv
            .keyspace
            .db(0)
            .write(key, now_ms(), |s| s.insert(Value::string(v), None));
    }

    fn fnv(b: &[u8]) -> u64 {
        b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
            (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// PFADD of `e{from}`..`e{to}` in batches of `batch`.
    fn add_range(k: &mut Kit, key: &str, from: usize, to: usize, batch: usize) {
        for start in (from..to).step_by(batch) {
            let els: Vec<String> = (start..(start + batch).min(to))
                .map(|i| format!("e{i}"))
                .collect();
            let mut args = vec!["PFADD", key];
            args.extend(els.iter().map(String::as_str));
            k.run(&args);
        }
    }

    const ABC: &[u8] =
        b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80`\xf3\x80P\xb1\x84K\xfb\x80BZ";

    #[test]
    fn murmur_and_pattern() {
        // Redis's MurmurHash64A with seed 0: the published test value of
        // the empty string, and the tail path.
        assert_eq!(murmur64a(b"", 0), 0);
        let (i, c) = pattern(b"a");
        assert!(i < REGISTERS && (1..=51).contains(&c));
        // The sentinel bit bounds the run at Q + 1.
        assert!(pattern(b"x").1 <= 51);
    }

    #[test]
    fn sparse_bytes_match_redis() {
        let mut k = Kit::new();
        assert_eq!(k.run(&["PFADD", "e"]), ":1\r\n");
        assert_eq!(
            get(&k, b"e").unwrap(),
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff"
        );
        assert_eq!(k.run(&["PFADD", "e"]), ":0\r\n");
        assert_eq!(k.run(&["OBJECT", "ENCODING", "e"]), "$3\r\nraw\r\n");
        assert_eq!(k.run(&["PFADD", "s", "a", "b", "c"]), ":1\r\n");
        assert_eq!(get(&k, b"s").unwrap(), ABC);
        assert_eq!(k.run(&["PFADD", "s", "a", "b"]), ":0\r\n");
        assert_eq!(
            k.run(&["PFDEBUG", "DECODE", "s"]),
            "$44\r\nZ:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603\r\n"
        );
        // PFCOUNT stores the cardinality and clears the invalid bit.
        assert_eq!(k.run(&["PFCOUNT", "s"]), ":3\r\n");
        let mut cached = ABC.to_vec();
        cached[8] = 3;
        cached[15] = 0;
        assert_eq!(get(&k, b"s").unwrap(), cached);
        assert_eq!(k.run(&["PFCOUNT", "s"]), ":3\r\n");
        k.run(&["PFADD", "t", "c", "d", "e", "f"]);
        assert_eq!(k.run(&["PFMERGE", "m", "s", "t"]), "+OK\r\n");
        assert_eq!(
            get(&k, b"m").unwrap(),
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80Fm\x80V\x0c\x80Dv\x80P\xb1\x84I\x8c\x80Bm\x80BZ"
        );
        assert_eq!(k.run(&["PFCOUNT", "m"]), ":6\r\n");
    }

    #[test]
    fn large_sparse_and_dense_match_redis() {
        let mut k = Kit::new();
        add_range(&mut k, "k1000", 0, 1000, 100);
        let v = get(&k, b"k1000").unwrap();
        assert_eq!((v.len(), fnv(&v)), (1906, 0x5935_de02_3280_6824));
        assert_eq!(k.run(&["PFDEBUG", "ENCODING", "k1000"]), "+sparse\r\n");
        assert_eq!(k.run(&["PFCOUNT", "k1000"]), ":1008\r\n");
        assert_eq!(fnv(&get(&k, b"k1000").unwrap()), 0x4ded_8ea0_046b_668d);

        add_range(&mut k, "big", 0, 100_000, 1000);
        let v = get(&k, b"big").unwrap();
        assert_eq!((v.len(), fnv(&v)), (DENSE_SIZE, 0xafbf_1713_dc5b_a3c8));
        assert_eq!(k.run(&["PFCOUNT", "big"]), ":100853\r\n");
        assert_eq!(fnv(&get(&k, b"big").unwrap()), 0xfd1f_c236_9477_3e63);

        k.run(&["PFADD", "s", "a", "b", "c"]);
        assert_eq!(k.run(&["PFCOUNT", "k1000", "big", "s"]), ":100853\r\n");
        assert_eq!(k.run(&["PFMERGE", "k1000", "s"]), "+OK\r\n");
        assert_eq!(fnv(&get(&k, b"k1000").unwrap()), 0xacc8_0bed_06b9_4c89);
        // Any dense input makes the destination dense.
        assert_eq!(k.run(&["PFMERGE", "d", "k1000", "big"]), "+OK\r\n");
        assert_eq!(fnv(&get(&k, b"d").unwrap()), 0xafbf_1713_dc5b_a3c8);
    }

    #[test]
    fn sparse_max_bytes_promotes() {
        let mut k = Kit::new();
        k.run(&["CONFIG", "SET", "hll-sparse-max-bytes", "30"]);
        add_range(&mut k, "p", 0, 5, 5);
        assert_eq!(k.run(&["PFDEBUG", "ENCODING", "p"]), "+dense\r\n");
        add_range(&mut k, "p", 5, 6, 1);
        let v = get(&k, b"p").unwrap();
        assert_eq!((v.len(), fnv(&v)), (DENSE_SIZE, 0xace8_348d_389e_0a8e));
    }

    #[test]
    fn errors_match_redis() {
        let mut k = Kit::new();
        k.run(&["SET", "str", "foo"]);
        assert_eq!(
            k.run(&["PFADD", "str", "a"]),
            "-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n"
        );
        assert_eq!(
            k.run(&["PFCOUNT", "str"]),
            "-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n"
        );
        k.run(&["RPUSH", "l", "a"]);
        let wrongtype = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
        assert_eq!(k.run(&["PFADD", "l", "a"]), wrongtype);
        assert_eq!(k.run(&["PFCOUNT", "l", "x"]), wrongtype);
        assert_eq!(k.run(&["PFMERGE", "d", "l"]), wrongtype);
        assert_eq!(get(&k, b"d"), None);
        // A dense header with the wrong length is not an HLL.
        let mut d = ABC.to_vec();
        d[4] = DENSE;
        set(&k, b"badlen", &d);
        assert!(k
            .run(&["PFCOUNT", "badlen"])
            .starts_with("-WRONGTYPE Key is not"));
        // Sparse opcodes covering 16383 registers.
        set(
            &k,
            b"c",
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xfe",
        );
        let corrupt = "-INVALIDOBJ Corrupted HLL object detected\r\n";
        assert_eq!(k.run(&["PFCOUNT", "c"]), corrupt);
        assert_eq!(k.run(&["PFCOUNT", "c", "x"]), corrupt);
        assert_eq!(k.run(&["PFMERGE", "d", "c"]), corrupt);
        assert_eq!(k.run(&["PFDEBUG", "TODENSE", "c"]), corrupt);
        // Redis still updates a register the opcodes do cover.
        assert_eq!(k.run(&["PFADD", "c", "a"]), ":1\r\n");
        assert_eq!(
            k.run(&["PFDEBUG", "GETREG", "nokey"]),
            "-ERR The specified key does not exist\r\n"
        );
        k.run(&["PFADD", "h", "a"]);
        assert_eq!(
            k.run(&["PFDEBUG", "foo", "h"]),
            "-ERR Unknown PFDEBUG subcommand 'foo'\r\n"
        );
        assert_eq!(
            k.run(&["PFDEBUG", "GETREG", "h", "x"]),
            "-ERR wrong number of arguments for 'pfdebug' command\r\n"
        );
        assert_eq!(k.run(&["PFDEBUG", "TODENSE", "h"]), ":1\r\n");
        assert_eq!(k.run(&["PFDEBUG", "TODENSE", "h"]), ":0\r\n");
        assert_eq!(
            k.run(&["PFDEBUG", "DECODE", "h"]),
            "-ERR HLL encoding is not sparse\r\n"
        );
        assert_eq!(k.run(&["PFSELFTEST"]), "+OK\r\n");
    }

    #[test]
    fn out_of_range_estimate_is_redis_sentinel() {
        // Every register 63: Redis's estimate overflows and it reports (and
        // caches) 1 << 63, which leaves the cache invalid.
        let mut k = Kit::new();
        let mut v = b"HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
        v.resize(DENSE_SIZE, 0xff);
        set(&k, b"ff", &v);
        assert_eq!(k.run(&["PFCOUNT", "ff"]), ":-9223372036854775808\r\n");
        assert_eq!(get(&k, b"ff").unwrap()[8..16], [0, 0, 0, 0, 0, 0, 0, 0x80]);
        v[HDR..].fill(0xcc);
        set(&k, b"cc", &v);
        assert_eq!(k.run(&["PFCOUNT", "cc"]), ":96817625\r\n");
        assert_eq!(k.run(&["PFCOUNT", "cc", "cc"]), ":96817625\r\n");
    }

    #[test]
    fn truncated_xzero_split_matches_redis() {
        // The last XZERO lacks its second byte; splitting it twice in one
        // PFADD reads the opcode Redis left past the end of the string.
        let mut k = Kit::new();
        set(
            &k,
            b"c",
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80A\xc0\x88l",
        );
        assert_eq!(k.run(&["PFADD", "c", "e0", "e3"]), ":1\r\n");
        assert_eq!(
            get(&k, b"c").unwrap(),
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80A\xc0\x88Cc\x80ho\x84"
        );
    }

    #[test]
    fn corrupt_values_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x4859_4c4c);
        let mut k = Kit::new();
        let mut bases = Vec::new();
        for n in [1usize, 20, 300, 3000] {
            let key = format!("base{n}");
            add_range(&mut k, &key, 0, n, 100);
            bases.push(get(&k, key.as_bytes()).unwrap());
        }
        for round in 0..3000 {
            let mut v = bases[rng.random_range(0..bases.len())].clone();
            match rng.random_range(0..6) {
                0 => v.truncate(rng.random_range(HDR..=v.len())),
                1 => {
                    for _ in 0..rng.random_range(1..8) {
                        let i = rng.random_range(HDR..v.len());
                        v[i] = rng.random();
                    }
                }
                2 => {
                    let i = rng.random_range(HDR..=v.len());
                    let extra: Vec<u8> =
                        (0..rng.random_range(1..6)).map(|_| rng.random()).collect();
                    v.splice(i..i, extra);
                }
                3 => {
                    v.truncate(HDR);
                    v.extend((0..rng.random_range(0..40)).map(|_| rng.random::<u8>()));
                }
                4 => {
                    v[4] = rng.random_range(0..3);
                    v[15] &= 0x7f;
                }
                _ => v.resize(rng.random_range(HDR..DENSE_SIZE + 2), 0xff),
            }
            set(&k, b"c", &v);
            let el = format!("x{round}");
            let reply = match round % 7 {
                0 => k.run(&["PFADD", "c", &el, "y", "z", "w"]),
                1 => k.run(&["PFCOUNT", "c"]),
                2 => k.run(&["PFCOUNT", "c", "base20"]),
                3 => k.run(&["PFMERGE", "c", "base300"]),
                4 => k.run(&["PFMERGE", "d", "c", "base3000"]),
                5 => k.run(&["PFDEBUG", "DECODE", "c"]),
                _ => k.run(&["PFDEBUG", "GETREG", "c"]),
            };
            assert!(!reply.is_empty());
            // Whatever happened, the value is still readable.
            k.run(&["PFDEBUG", "ENCODING", "c"]);
        }
    }
}
