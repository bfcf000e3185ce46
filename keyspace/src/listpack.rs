//! [`Elem`] and the listpack primitives streams are built from: Redis's
//! own listpack format, byte for byte, so a stream node costs what it costs
//! in Redis and goes to an RDB file as it is.
//!
//! Offsets point at an element's first byte. The functions trust their
//! input: it was built here, or checked whole by [`validate`] when it came
//! from outside (an RDB file).

use crate::value::parse_canonical_i64;

/// One element of a listpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    /// An integer-encoded element.
    Int(i64),
    /// A string element.
    Str(&'a [u8]),
}

impl<'a> Elem<'a> {
    /// The element as bytes (integers as decimal text written into `buf`).
    ///
    /// ```
    /// use rampart_keyspace::listpack::Elem;
    /// let mut b = itoa::Buffer::new();
    /// assert_eq!(Elem::Int(-7).bytes(&mut b), b"-7");
    /// ```
    pub fn bytes<'b>(&self, buf: &'b mut itoa::Buffer) -> &'b [u8]
    where
        'a: 'b,
    {
        match *self {
            Elem::Int(i) => buf.format(i).as_bytes(),
            Elem::Str(s) => s,
        }
    }

    /// The element as an owned byte vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes(&mut itoa::Buffer::new()).to_vec()
    }

    /// The integer value (strings read as 0, as `lpGetInteger` asserts
    /// they never are).
    pub fn int(&self) -> i64 {
        match *self {
            Elem::Int(i) => i,
            Elem::Str(s) => parse_canonical_i64(s).unwrap_or(0),
        }
    }
}

/// Header size: total bytes (u32) and element count (u16).
pub const HDR: usize = 6;
/// The terminator byte.
pub const EOF: u8 = 0xff;
const NUMELE_UNKNOWN: u16 = u16::MAX;

/// An empty listpack.
pub fn new() -> Vec<u8> {
    let mut lp = Vec::with_capacity(64);
    lp.extend_from_slice(&(HDR as u32 + 1).to_le_bytes());
    lp.extend_from_slice(&0u16.to_le_bytes());
    lp.push(EOF);
    lp
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn push_backlen(out: &mut Vec<u8>, l: usize) {
    let l = l as u64;
    let n = backlen_size(l as usize);
    for i in (0..n).rev() {
        let part = ((l >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 { part } else { part | 128 });
    }
}

fn int_enc_len(v: i64) -> usize {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if (-2147483648..=2147483647).contains(&v) {
        5
    } else {
        9
    }
}

/// Encodes an integer element (encoding, data, back length) into `out`.
fn encode_int(out: &mut Vec<u8>, v: i64) {
    let start = out.len();
    match int_enc_len(v) {
        1 => out.push(v as u8),
        2 => {
            let u = if v < 0 { (1i64 << 13) + v } else { v } as u64;
            out.push(((u >> 8) as u8) | 0xc0);
            out.push(u as u8);
        }
        3 => {
            out.push(0xf1);
            out.extend_from_slice(&(v as i16).to_le_bytes());
        }
        4 => {
            out.push(0xf2);
            out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        5 => {
            out.push(0xf3);
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
        _ => {
            out.push(0xf4);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let enc = out.len() - start;
    push_backlen(out, enc);
}

/// Encodes `s` as `lpAppend` does: a canonical integer as an integer.
fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    if let Some(v) = parse_canonical_i64(s) {
        return encode_int(out, v);
    }
    let start = out.len();
    let n = s.len();
    if n < 64 {
        out.push(0x80 | n as u8);
    } else if n < 4096 {
        out.push(0xe0 | (n >> 8) as u8);
        out.push(n as u8);
    } else {
        out.push(0xf0);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
    let enc = out.len() - start;
    push_backlen(out, enc);
}

/// Bytes `lpAppend` adds for `s`.
///
/// ```
/// assert_eq!(rampart_keyspace::listpack::entry_size(b"12"), 2);
/// assert_eq!(rampart_keyspace::listpack::entry_size(b"ab"), 4);
/// ```
pub fn entry_size(s: &[u8]) -> usize {
    let enc = match parse_canonical_i64(s) {
        Some(v) => int_enc_len(v),
        None if s.len() < 64 => 1 + s.len(),
        None if s.len() < 4096 => 2 + s.len(),
        None => 5 + s.len(),
    };
    enc + backlen_size(enc)
}

fn set_total(lp: &mut [u8]) {
    let n = lp.len() as u32;
    lp[..4].copy_from_slice(&n.to_le_bytes());
}

fn add_count(lp: &mut [u8]) {
    let n = u16::from_le_bytes([lp[4], lp[5]]);
    if n != NUMELE_UNKNOWN {
        lp[4..6].copy_from_slice(&(n + 1).to_le_bytes());
    }
}

/// Appends a string element (an integer when it is a canonical one).
pub fn append(lp: &mut Vec<u8>, s: &[u8]) {
    lp.pop();
    encode_str(lp, s);
    lp.push(EOF);
    set_total(lp);
    add_count(lp);
}

/// Appends an integer element.
pub fn append_int(lp: &mut Vec<u8>, v: i64) {
    lp.pop();
    encode_int(lp, v);
    lp.push(EOF);
    set_total(lp);
    add_count(lp);
}

/// The encoded size (without back length) of the element at `p`.
fn enc_size(lp: &[u8], p: usize) -> usize {
    let b = lp[p];
    let at = |i: usize| lp.get(p + i).copied().unwrap_or(0) as usize;
    if b & 0x80 == 0 {
        1
    } else if b & 0xc0 == 0x80 {
        1 + (b & 0x3f) as usize
    } else if b & 0xe0 == 0xc0 {
        2
    } else if b & 0xf0 == 0xe0 {
        2 + ((((b & 0x0f) as usize) << 8) | at(1))
    } else {
        match b {
            0xf0 => 5 + (at(1) | at(2) << 8 | at(3) << 16 | at(4) << 24),
            0xf1 => 3,
            0xf2 => 4,
            0xf3 => 5,
            _ => 9,
        }
    }
}

/// The element at `p`.
pub fn get(lp: &[u8], p: usize) -> Elem<'_> {
    let b = lp[p];
    let le = |n: usize| -> u64 {
        lp[p + 1..p + 1 + n]
            .iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | x as u64)
    };
    let sign = |u: u64, bits: u32| -> i64 {
        let shift = 64 - bits;
        ((u << shift) as i64) >> shift
    };
    if b & 0x80 == 0 {
        Elem::Int((b & 0x7f) as i64)
    } else if b & 0xc0 == 0x80 {
        let n = (b & 0x3f) as usize;
        Elem::Str(&lp[p + 1..p + 1 + n])
    } else if b & 0xe0 == 0xc0 {
        let u = (((b & 0x1f) as u64) << 8) | lp[p + 1] as u64;
        Elem::Int(sign(u, 13))
    } else if b & 0xf0 == 0xe0 {
        let n = (((b & 0x0f) as usize) << 8) | lp[p + 1] as usize;
        Elem::Str(&lp[p + 2..p + 2 + n])
    } else {
        match b {
            0xf0 => {
                let n = le(4) as usize;
                Elem::Str(&lp[p + 5..p + 5 + n])
            }
            0xf1 => Elem::Int(sign(le(2), 16)),
            0xf2 => Elem::Int(sign(le(3), 24)),
            0xf3 => Elem::Int(sign(le(4), 32)),
            _ => Elem::Int(le(8) as i64),
        }
    }
}

/// The first element's offset, `None` when empty.
pub fn first(lp: &[u8]) -> Option<usize> {
    (lp.get(HDR) != Some(&EOF)).then_some(HDR)
}

/// Where the element after the one at `p` starts (the terminator's offset
/// after the last element): [`next`] without the end check, for walks
/// that know how many elements follow, such as a stream entry's.
///
/// ```
/// use rampart_keyspace::listpack as lp;
/// let mut l = lp::new();
/// lp::append_int(&mut l, 7);
/// lp::append(&mut l, b"abc");
/// let second = lp::skip(&l, lp::HDR);
/// assert_eq!(lp::get(&l, second).to_vec(), b"abc");
/// assert_eq!(l[lp::skip(&l, second)], lp::EOF);
/// ```
#[inline]
pub fn skip(lp: &[u8], p: usize) -> usize {
    // The two encodings stream nodes are made of almost entirely: a 7-bit
    // uint and a short string, each with a one-byte backlen.
    match lp.get(p) {
        Some(&b) if b & 0x80 == 0 => p + 2,
        Some(&b) if b & 0xc0 == 0x80 => p + 2 + (b & 0x3f) as usize,
        Some(_) => {
            let enc = enc_size(lp, p);
            p + enc + backlen_size(enc)
        }
        // Past the end (only a damaged node could lead here): stay at the
        // terminator.
        None => lp.len().saturating_sub(1),
    }
}

/// The integer at `p` and where the next element starts: [`get`] and
/// [`skip`] in one decode of the element's header.
///
/// ```
/// use rampart_keyspace::listpack as lp;
/// let mut l = lp::new();
/// lp::append_int(&mut l, -5000);
/// assert_eq!(lp::int_and_skip(&l, lp::HDR), (-5000, l.len() - 1));
/// ```
#[inline]
pub fn int_and_skip(lp: &[u8], p: usize) -> (i64, usize) {
    match lp.get(p) {
        Some(&b) if b & 0x80 == 0 => ((b & 0x7f) as i64, p + 2),
        Some(_) => (get(lp, p).int(), skip(lp, p)),
        None => (0, lp.len().saturating_sub(1)),
    }
}

/// The element after `p`, `None` at the end.
pub fn next(lp: &[u8], p: usize) -> Option<usize> {
    let enc = enc_size(lp, p);
    let n = p + enc + backlen_size(enc);
    (lp.get(n).is_some_and(|&b| b != EOF)).then_some(n)
}

/// The element before the one at `p` (`p` may be the terminator's
/// offset), `None` before the first.
pub fn prev(lp: &[u8], p: usize) -> Option<usize> {
    if p <= HDR {
        return None;
    }
    let mut q = p - 1;
    let mut val = 0usize;
    let mut shift = 0;
    loop {
        val |= ((lp[q] & 127) as usize) << shift;
        if lp[q] & 128 == 0 || q <= HDR {
            break;
        }
        shift += 7;
        q -= 1;
    }
    q.checked_sub(val)
}

/// The last element's offset, `None` when empty.
pub fn last(lp: &[u8]) -> Option<usize> {
    prev(lp, lp.len() - 1)
}

/// Replaces the element at `p` with the integer `v`; returns the offset of
/// the element that follows (which may have moved).
pub fn replace_int(lp: &mut Vec<u8>, p: usize, v: i64) -> usize {
    let enc = enc_size(lp, p);
    let old = enc + backlen_size(enc);
    let mut e = Vec::with_capacity(11);
    encode_int(&mut e, v);
    let n = e.len();
    lp.splice(p..p + old, e);
    set_total(lp);
    p + n
}

/// Checks a listpack from outside whole, as Redis's deep
/// `lpValidateIntegrity` does, and returns its element count.
pub fn validate(lp: &[u8]) -> Result<usize, String> {
    if lp.len() < HDR + 1 {
        return Err(format!("{} bytes is shorter than a header", lp.len()));
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() {
        return Err(format!(
            "header says {total} bytes, the blob has {}",
            lp.len()
        ));
    }
    if lp[lp.len() - 1] != EOF {
        return Err("no terminator at the end".into());
    }
    let end = lp.len() - 1;
    let mut p = HDR;
    let mut count = 0usize;
    while p < end {
        let b = lp[p];
        if b == EOF || (b & 0xf0 == 0xf0 && b > 0xf4) {
            return Err(format!("bad encoding byte {b:#04x} at offset {p}"));
        }
        let head = match b {
            _ if b & 0x80 == 0 => 1,
            _ if b & 0xc0 == 0x80 => 1,
            _ if b & 0xe0 == 0xc0 || b & 0xf0 == 0xe0 => 2,
            0xf0 => 5,
            _ => 1,
        };
        if p + head > end {
            return Err(format!("entry at offset {p} runs past the end"));
        }
        let enc = enc_size(lp, p);
        let next = p
            .checked_add(enc)
            .and_then(|x| x.checked_add(backlen_size(enc)))
            .filter(|&n| n <= end)
            .ok_or_else(|| format!("entry at offset {p} runs past the end"))?;
        let mut expect = Vec::with_capacity(5);
        push_backlen(&mut expect, enc);
        if lp[p + enc..next] != expect[..] {
            return Err(format!("back length at offset {p} does not match"));
        }
        count += 1;
        p = next;
    }
    let numele = u16::from_le_bytes([lp[4], lp[5]]);
    if numele != NUMELE_UNKNOWN && numele as usize != count {
        return Err(format!("header says {numele} elements, there are {count}"));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast steps agree with `get`/`next` on every encoding.
    #[test]
    fn skip_and_int_and_skip_match_get_and_next() {
        let mut lp = new();
        let ints = [
            0i64,
            127,
            128,
            -1,
            4095,
            -4096,
            4096,
            32767,
            -32768,
            8388607,
            -8388608,
            2147483647,
            -2147483648,
            i64::MAX,
            i64::MIN,
        ];
        for v in ints {
            append_int(&mut lp, v);
        }
        for n in [0usize, 1, 63, 64, 4095, 4096, 70000] {
            append(&mut lp, &vec![b'z'; n]);
        }
        let mut p = HDR;
        for v in ints {
            assert_eq!(
                int_and_skip(&lp, p),
                (v, next(&lp, p).unwrap_or(lp.len() - 1))
            );
            assert_eq!(get(&lp, p).int(), v);
            p = skip(&lp, p);
        }
        while lp[p] != EOF {
            assert_eq!(skip(&lp, p), next(&lp, p).unwrap_or(lp.len() - 1));
            p = skip(&lp, p);
        }
        // Past the end stays at the terminator.
        assert_eq!(skip(&lp, lp.len() + 3), lp.len() - 1);
        assert_eq!(int_and_skip(&lp, lp.len() + 3), (0, lp.len() - 1));
    }

    #[test]
    fn walk_both_ways() {
        let mut lp = new();
        let items: Vec<Vec<u8>> = vec![
            b"1".to_vec(),
            b"-5000".to_vec(),
            b"hello".to_vec(),
            vec![b'x'; 200],
            b"9223372036854775807".to_vec(),
            vec![b'y'; 5000],
        ];
        for i in &items {
            append(&mut lp, i);
        }
        assert_eq!(validate(&lp), Ok(items.len()));
        let mut p = first(&lp);
        let mut got = Vec::new();
        while let Some(o) = p {
            got.push(get(&lp, o).to_vec());
            p = next(&lp, o);
        }
        assert_eq!(got, items);
        let mut p = last(&lp);
        let mut back = Vec::new();
        while let Some(o) = p {
            back.push(get(&lp, o).to_vec());
            p = prev(&lp, o);
        }
        back.reverse();
        assert_eq!(back, items);
        let p = first(&lp).unwrap_or(HDR);
        replace_int(&mut lp, p, 300);
        assert_eq!(get(&lp, HDR), Elem::Int(300));
        assert_eq!(validate(&lp), Ok(items.len()));
    }
}
