//! The compact encodings inside RDB strings: listpack (written and read),
//! intset (written and read), ziplist and zipmap (read only: Redis 7.0
//! loads them but no longer writes them).
//!
//! Every reader validates the whole structure as Redis's deep sanitization
//! does (`lpValidateIntegrity`, `ziplistValidateIntegrity`,
//! `intsetValidateIntegrity`, `zipmapValidateIntegrity` with `deep`), and
//! somewhat more strictly: entry lengths must stay inside the blob, back
//! lengths and previous-entry lengths must agree, header counts must match,
//! and the terminator must be the last byte. Readers hand out entries one
//! at a time and never allocate from a length they read.

use rampart_keyspace::listpack as lp;
/// Bytes `lpAppend` adds for an element (encoding, data, back length).
pub use rampart_keyspace::listpack::entry_size as lp_entry_size;
pub use rampart_keyspace::listpack::Elem;

type Fail = String;

// ---------------------------------------------------------------------------
// listpack: the format itself lives in `rampart_keyspace::listpack`, which
// streams are built from; these are the RDB codec's entry points to it.

/// Builds a listpack exactly as Redis's `lpAppend` would, element by
/// element (strings that are canonical integers are stored as integers).
pub struct LpWriter {
    lp: Vec<u8>,
    count: u64,
}

impl Default for LpWriter {
    fn default() -> LpWriter {
        LpWriter {
            lp: lp::new(),
            count: 0,
        }
    }
}

impl LpWriter {
    /// An empty listpack.
    pub fn new() -> LpWriter {
        LpWriter::default()
    }

    /// Appends `s` (as an integer when it is a canonical one).
    pub fn push(&mut self, s: &[u8]) {
        lp::append(&mut self.lp, s);
        self.count += 1;
    }

    /// Elements so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Total bytes of the finished listpack.
    pub fn total_bytes(&self) -> usize {
        self.lp.len()
    }

    /// The finished listpack (header, elements, terminator), or `None` when
    /// it would exceed the format's 4 GiB.
    pub fn finish(self) -> Option<Vec<u8>> {
        u32::try_from(self.lp.len()).ok()?;
        Some(self.lp)
    }
}

/// Walks a listpack, validating it whole first, and hands each element to
/// `f` (which may stop the walk with an error of its own). Returns the
/// number of elements.
pub fn listpack_for_each<E>(
    blob: &[u8],
    mut f: impl FnMut(Elem<'_>) -> Result<(), E>,
) -> Result<Result<u64, E>, Fail> {
    let count = lp::validate(blob)?;
    let mut p = lp::first(blob);
    while let Some(at) = p {
        if let Err(e) = f(lp::get(blob, at)) {
            return Ok(Err(e));
        }
        p = lp::next(blob, at);
    }
    Ok(Ok(count as u64))
}

// ---------------------------------------------------------------------------
// ziplist

const ZL_HDR: usize = 10;
const ZL_END: u8 = 0xff;

/// Walks a ziplist, validating it whole, handing each element to `f`.
/// Returns the number of elements.
pub fn ziplist_for_each<E>(
    zl: &[u8],
    mut f: impl FnMut(Elem<'_>) -> Result<(), E>,
) -> Result<Result<u64, E>, Fail> {
    if zl.len() < ZL_HDR + 1 {
        return Err(format!("{} bytes is shorter than a header", zl.len()));
    }
    let bytes = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    let tail = u32::from_le_bytes([zl[4], zl[5], zl[6], zl[7]]) as usize;
    let zllen = u16::from_le_bytes([zl[8], zl[9]]);
    if bytes != zl.len() {
        return Err(format!(
            "header says {bytes} bytes, the blob has {}",
            zl.len()
        ));
    }
    if zl[zl.len() - 1] != ZL_END {
        return Err("no terminator at the end".into());
    }
    let end = zl.len() - 1;
    let mut p = ZL_HDR;
    let mut prev_len = 0usize;
    let mut last = None;
    let mut count: u64 = 0;
    let oob = |p: usize| format!("entry at offset {p} runs past the end");
    while p < end {
        if zl[p] == ZL_END {
            return Err(format!("terminator at offset {p} before the end"));
        }
        let start = p;
        // previous entry length
        let (prevlen, plen) = if zl[p] < 254 {
            (zl[p] as usize, 1)
        } else if zl[p] == 254 {
            let b = zl.get(p + 1..p + 5).ok_or_else(|| oob(start))?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 5)
        } else {
            return Err(format!("bad previous-length byte at offset {p}"));
        };
        if prevlen != prev_len {
            return Err(format!(
                "entry at offset {start} says the previous one has {prevlen} bytes, it has {prev_len}"
            ));
        }
        p += plen;
        let enc = *zl.get(p).filter(|_| p < end).ok_or_else(|| oob(start))?;
        let body = |from: usize, n: usize| -> Result<&[u8], Fail> {
            match from.checked_add(n) {
                Some(to) if to <= end => Ok(&zl[from..to]),
                _ => Err(oob(start)),
            }
        };
        let (elem, next) = match enc >> 6 {
            0 => {
                let n = (enc & 0x3f) as usize;
                (Elem::Str(body(p + 1, n)?), p + 1 + n)
            }
            1 => {
                let lo = body(p + 1, 1)?[0];
                let n = (((enc & 0x3f) as usize) << 8) | lo as usize;
                (Elem::Str(body(p + 2, n)?), p + 2 + n)
            }
            2 => {
                let b = body(p + 1, 4)?;
                let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                (Elem::Str(body(p + 5, n)?), p + 5 + n)
            }
            _ => {
                let (v, n) = match enc {
                    0xc0 => {
                        let b = body(p + 1, 2)?;
                        (i16::from_le_bytes([b[0], b[1]]) as i64, 2)
                    }
                    0xd0 => {
                        let b = body(p + 1, 4)?;
                        (i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64, 4)
                    }
                    0xe0 => {
                        let b = body(p + 1, 8)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(b);
                        (i64::from_le_bytes(a), 8)
                    }
                    0xf0 => {
                        let b = body(p + 1, 3)?;
                        ((i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as i64, 3)
                    }
                    0xfe => (body(p + 1, 1)?[0] as i8 as i64, 1),
                    0xf1..=0xfd => (((enc & 0x0f) as i64) - 1, 0),
                    _ => {
                        return Err(format!(
                            "invalid entry encoding byte {enc:#04x} at offset {p}"
                        ))
                    }
                };
                (Elem::Int(v), p + 1 + n)
            }
        };
        if let Err(e) = f(elem) {
            return Ok(Err(e));
        }
        count += 1;
        prev_len = next - start;
        last = Some(start);
        p = next;
    }
    if let Some(last) = last {
        if tail != last {
            return Err(format!(
                "header says the last entry is at offset {tail}, it is at {last}"
            ));
        }
    }
    if zllen != u16::MAX && zllen as u64 != count {
        return Err(format!("header says {zllen} elements, there are {count}"));
    }
    Ok(Ok(count))
}

// ---------------------------------------------------------------------------
// intset

/// An intset blob of `values` (sorted, distinct) in the narrowest encoding
/// that holds them all, as Redis builds it by adding them.
pub fn intset_blob(values: &[i64]) -> Vec<u8> {
    let width = values
        .iter()
        .map(|&v| {
            if i16::try_from(v).is_ok() {
                2u32
            } else if i32::try_from(v).is_ok() {
                4
            } else {
                8
            }
        })
        .max()
        .unwrap_or(2);
    let mut out = Vec::with_capacity(8 + values.len() * width as usize);
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values {
        match width {
            2 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            4 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    out
}

/// The integers of an intset blob, validated: a known width, a length
/// that matches the blob, at least one member, strictly ascending.
pub fn intset_values(blob: &[u8]) -> Result<Vec<i64>, Fail> {
    if blob.len() < 8 {
        return Err(format!("{} bytes is shorter than a header", blob.len()));
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(format!("unknown integer width {width}"));
    }
    let n = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    if n.checked_mul(width) != Some(blob.len() - 8) {
        return Err(format!(
            "header says {n} integers of {width} bytes, the blob has {} bytes",
            blob.len()
        ));
    }
    if n == 0 {
        return Err("empty intset".into());
    }
    let mut out = Vec::with_capacity(n);
    for c in blob[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            }
        };
        if out.last().is_some_and(|&l| l >= v) {
            return Err("integers are not strictly ascending".into());
        }
        out.push(v);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// zipmap (Redis < 2.6 hashes)

/// Walks a zipmap, validating it, handing each (field, value) to `f`.
pub fn zipmap_for_each<E>(
    zm: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
) -> Result<Result<u64, E>, Fail> {
    const BIGLEN: u8 = 254;
    const END: u8 = 255;
    if zm.len() < 2 {
        return Err(format!("{} bytes is shorter than a header", zm.len()));
    }
    if zm[zm.len() - 1] != END {
        return Err("no terminator at the end".into());
    }
    let end = zm.len() - 1;
    let oob = |p: usize| format!("entry at offset {p} runs past the end");
    // A length: one byte under 254, else 254 and four bytes (little endian).
    let read_len = |p: usize| -> Result<(usize, usize), Fail> {
        match zm.get(p) {
            Some(&b) if p < end && b < BIGLEN => Ok((b as usize, 1)),
            Some(&BIGLEN) if p < end => {
                let b = zm
                    .get(p + 1..p + 5)
                    .filter(|_| p + 5 <= end)
                    .ok_or_else(|| oob(p))?;
                Ok((u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 5))
            }
            _ => Err(oob(p)),
        }
    };
    let slice = |from: usize, n: usize| -> Result<&[u8], Fail> {
        match from.checked_add(n) {
            Some(to) if to <= end => Ok(&zm[from..to]),
            _ => Err(oob(from)),
        }
    };
    let mut p = 1;
    let mut count: u64 = 0;
    while p < end {
        let start = p;
        let (flen, s) = read_len(p)?;
        p += s;
        let field = slice(p, flen)?;
        p += flen;
        let (vlen, s) = read_len(p)?;
        p += s;
        let free = *slice(p, 1).map_err(|_| oob(start))?.first().unwrap_or(&0) as usize;
        p += 1;
        let value = slice(p, vlen)?;
        p += vlen;
        slice(p, free)?;
        p += free;
        if let Err(e) = f(field, value) {
            return Ok(Err(e));
        }
        count += 1;
    }
    if count == 0 {
        return Err("empty zipmap".into());
    }
    if zm[0] < BIGLEN && zm[0] as u64 != count {
        return Err(format!("header says {} fields, there are {count}", zm[0]));
    }
    Ok(Ok(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp_elems(lp: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = itoa::Buffer::new();
        listpack_for_each(lp, |e| {
            out.push(e.bytes(&mut buf).to_vec());
            Ok::<(), ()>(())
        })
        .expect("valid")
        .expect("no callback error");
        out
    }

    #[test]
    fn listpack_round_trip_every_encoding() {
        let ints: Vec<i64> = vec![
            0,
            127,
            128,
            -1,
            4095,
            -4096,
            4096,
            32767,
            -32768,
            32768,
            8388607,
            -8388608,
            8388608,
            i32::MAX as i64,
            i32::MIN as i64,
            i32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN,
        ];
        let mut w = LpWriter::new();
        let mut expect: Vec<Vec<u8>> = Vec::new();
        for v in &ints {
            let s = v.to_string();
            w.push(s.as_bytes());
            expect.push(s.into_bytes());
        }
        for len in [0usize, 1, 63, 64, 4095, 4096, 20000] {
            let s = vec![b'x'; len];
            w.push(&s);
            expect.push(s);
        }
        w.push(b"007");
        expect.push(b"007".to_vec());
        let lp = w.finish().expect("small");
        assert_eq!(lp_elems(&lp), expect);
    }

    #[test]
    fn listpack_matches_redis_bytes() {
        // lpAppend("a"), lpAppend("1"), lpAppend("-1"): what Redis writes.
        let mut w = LpWriter::new();
        w.push(b"a");
        w.push(b"1");
        w.push(b"-1");
        let lp = w.finish().expect("small");
        assert_eq!(
            lp,
            vec![15, 0, 0, 0, 3, 0, 0x81, b'a', 2, 0x01, 1, 0xdf, 0xff, 2, 0xff]
        );
    }

    #[test]
    fn listpack_corruptions_refused() {
        let mut w = LpWriter::new();
        w.push(b"hello");
        w.push(b"12");
        let lp = w.finish().expect("small");
        let check = |b: &[u8]| listpack_for_each(b, |_| Ok::<(), ()>(())).is_err();
        for cut in 0..lp.len() {
            assert!(check(&lp[..cut]), "prefix {cut}");
        }
        let mut bad = lp.clone();
        bad[4] = 3; // count
        assert!(check(&bad));
        let mut bad = lp.clone();
        bad[6] = 0x8f; // string length past the end
        assert!(check(&bad));
        let mut bad = lp.clone();
        bad[12] = 9; // back length
        assert!(check(&bad));
        let mut bad = lp.clone();
        bad[6] = 0xf7; // unknown encoding
        assert!(check(&bad));
    }

    #[test]
    fn intsets() {
        assert_eq!(intset_values(&intset_blob(&[1, 2, 3])), Ok(vec![1, 2, 3]));
        let wide = intset_blob(&[-5, 70000, i64::MAX]);
        assert_eq!(&wide[..4], &8u32.to_le_bytes());
        assert_eq!(intset_values(&wide), Ok(vec![-5, 70000, i64::MAX]));
        assert!(intset_values(&intset_blob(&[])).is_err());
        let mut unsorted = intset_blob(&[1, 2]);
        unsorted.swap(8, 10);
        assert!(intset_values(&unsorted).is_err());
        let mut dup = intset_blob(&[1, 2]);
        dup[10] = 1;
        assert!(intset_values(&dup).is_err());
        let mut w = intset_blob(&[1]);
        w[0] = 3;
        assert!(intset_values(&w).is_err());
    }
}
