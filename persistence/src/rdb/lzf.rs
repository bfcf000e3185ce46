//! LZF, the compression of RDB strings.
//!
//! The compressor follows liblzf 3.6 as Redis 7.0 builds it (`HLOG` 16,
//! `VERY_FAST`, not `ULTRA_FAST`) step for step, so a string compresses to
//! the same bytes as in Redis and DUMP payloads match byte for byte. Its
//! hash table starts empty where Redis's is left uninitialised; that cannot
//! change the output, because a stale slot is only ever consulted for a
//! 3-byte sequence that has not occurred before in the input, and a match
//! is only taken after comparing the bytes.
//!
//! The decompressor is bounded: it writes at most the announced length and
//! reads only inside the input.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// The most output one input byte can produce: a 3-byte back reference
/// expands to `MAX_REF` bytes.
pub const MAX_RATIO: u64 = (MAX_REF as u64).div_ceil(3);

#[inline]
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// The hash table, kept per thread: allocating and zeroing 256 KiB for
/// every compressed string (every value of an RDB) cost more than the
/// compression itself. Each slot carries the call's generation, so a slot
/// written by an earlier call reads as empty, exactly like a fresh table.
struct Htab {
    gen: u32,
    slots: Vec<u64>,
}

impl Htab {
    #[inline]
    fn get(&self, i: usize) -> u32 {
        let e = self.slots[i];
        if (e >> 32) as u32 == self.gen {
            e as u32
        } else {
            0
        }
    }

    #[inline]
    fn set(&mut self, i: usize, v: u32) {
        self.slots[i] = (u64::from(self.gen) << 32) | u64::from(v);
    }
}

thread_local! {
    static HTAB: std::cell::RefCell<Htab> = const {
        std::cell::RefCell::new(Htab { gen: 0, slots: Vec::new() })
    };
}

/// Compresses `input` into at most `out_len` bytes, as `lzf_compress`;
/// `None` when it does not fit (Redis then stores the string as is).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if input.is_empty() || out_len == 0 {
        return None;
    }
    HTAB.with(|t| {
        let mut t = t.borrow_mut();
        if t.slots.is_empty() {
            t.slots = vec![0; HSIZE];
        }
        t.gen = t.gen.wrapping_add(1);
        if t.gen == 0 {
            // Generations wrapped: old slots could look current.
            t.slots.fill(0);
            t.gen = 1;
        }
        compress_with(input, out_len, &mut t)
    })
}

fn compress_with(input: &[u8], out_len: usize, htab: &mut Htab) -> Option<Vec<u8>> {
    let in_len = input.len();
    // Positions are stored plus one so that 0 means "never set"; liblzf's
    // `ref > in_data` test rejects position 0 anyway.
    // Slack past out_len: liblzf's checks keep every write below out_len,
    // the slack only spares us proving it to the indexer.
    let mut out = vec![0u8; out_len + 8];
    let mut op: usize = 1; // start run
    let mut lit: usize = 0;
    let mut ip: usize = 0;
    let at = |i: usize| input.get(i).copied().unwrap_or(0) as u32;
    let mut hval: u32 = (at(0) << 8) | at(1);

    while ip + 2 < in_len {
        hval = (hval << 8) | at(ip + 2);
        let slot = idx(hval);
        let stored = htab.get(slot) as usize;
        htab.set(slot, (ip + 1) as u32);
        // liblzf 3.6: off = ip - ref - 1 < MAX_OFF && ref > in_data && the
        // first three bytes equal (3.5's `ip + 4 < in_end` is gone).
        let is_match = stored > 1 && {
            let r = stored - 1;
            r < ip
                && ip - r - 1 < MAX_OFF
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
                && input[r + 2] == input[ip + 2]
        };
        if is_match {
            let r = stored - 1;
            let off = ip - r - 1;
            let mut len: usize = 2;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            // stop run
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            op -= usize::from(lit == 0); // undo run if length is zero
            if op + 3 + 1 >= out_len {
                return None;
            }
            // liblzf compares 16 bytes unrolled (without looking at maxlen)
            // before the bounded loop; the match length can therefore end
            // up to two past maxlen, still inside the input.
            let mut done = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        done = true;
                        break;
                    }
                }
            }
            if !done {
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2; // len is now #octets - 1
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip + 2 >= in_len {
                break;
            }
            // VERY_FAST: hash the last two positions of the match.
            ip -= 2;
            hval = (at(ip) << 8) | at(ip + 1);
            hval = (hval << 8) | at(ip + 2);
            htab.set(idx(hval), (ip + 1) as u32);
            ip += 1;
            hval = (hval << 8) | at(ip + 2);
            htab.set(idx(hval), (ip + 1) as u32);
            ip += 1;
        } else {
            // one more literal byte we must copy
            if op >= out_len {
                return None;
            }
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8; // stop run
                lit = 0;
                op += 1; // start run
            }
        }
    }
    if op + 3 > out_len {
        // at most 3 bytes can be missing here
        return None;
    }
    while ip < in_len {
        lit += 1;
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// Decompresses `input`, which must expand to exactly `expected` bytes;
/// `None` for anything malformed. Never writes past `expected` bytes.
pub fn decompress(input: &[u8], expected: usize) -> Option<Vec<u8>> {
    // Redis's lzf_decompress reports an error as 0 bytes out, which its
    // caller cannot tell from an empty string: Redis takes whatever
    // compressed bytes announce 0 as "", so this does too.
    if expected == 0 {
        return Some(Vec::new());
    }
    // The output grows as it is produced: `expected` comes from the data,
    // and is at most MAX_RATIO times the input the caller already holds.
    let mut out: Vec<u8> = Vec::with_capacity(expected.min(1 << 20));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < (1 << 5) {
            let n = ctrl + 1;
            if out.len() + n > expected || ip + n > input.len() {
                return None;
            }
            out.extend_from_slice(&input[ip..ip + n]);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            let mut back = (ctrl & 0x1f) << 8;
            if ip >= input.len() {
                return None;
            }
            if len == 7 {
                len += input[ip] as usize;
                ip += 1;
                if ip >= input.len() {
                    return None;
                }
            }
            back += input[ip] as usize;
            ip += 1;
            len += 2;
            if out.len() + len > expected || back >= out.len() {
                return None;
            }
            let start = out.len() - back - 1;
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == expected).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let samples: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"hello hello hello hello hello hello world world world".to_vec(),
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            (0..5000u32).map(|i| (i * 7 % 13) as u8).collect(),
            vec![0; 100_000],
        ];
        for s in samples {
            let c = compress(&s, s.len() - 4).expect("compressible");
            assert!(c.len() < s.len());
            assert_eq!(decompress(&c, s.len()), Some(s.clone()));
            assert!(decompress(&c, s.len() + 1).is_none());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_input_round_trips(
            s in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..3000),
            alphabet in 1u8..=255,
            slack in 0usize..40,
        ) {
            // Squeeze the bytes into a small alphabet so matches happen.
            let s: Vec<u8> = s.iter().map(|b| b % alphabet).collect();
            let out_len = s.len().saturating_sub(slack).max(1);
            if let Some(c) = compress(&s, out_len) {
                proptest::prop_assert!(c.len() <= out_len);
                proptest::prop_assert_eq!(decompress(&c, s.len()), Some(s));
            }
        }

        #[test]
        fn decompress_never_panics(
            c in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            n in 0usize..5000,
        ) {
            if let Some(out) = decompress(&c, n) {
                proptest::prop_assert_eq!(out.len(), n);
            }
        }
    }

    #[test]
    fn incompressible_refused() {
        let mut x = 0x1234_5678u32;
        let s: Vec<u8> = (0..64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(compress(&s, s.len() - 4).is_none());
    }

    /// Redis cannot tell lzf_decompress's error (0 bytes) from an empty
    /// string, so any compressed bytes announcing 0 give "".
    #[test]
    fn zero_length_is_empty_whatever_the_input() {
        assert_eq!(decompress(&[0x05, 1, 2, 3], 0), Some(Vec::new()));
        assert_eq!(decompress(&[], 0), Some(Vec::new()));
    }

    #[test]
    fn decompress_rejects_bad_refs() {
        // A back reference before the start of the output.
        assert!(decompress(&[0x20, 0x05], 3).is_none());
        // A literal run longer than the input.
        assert!(decompress(&[0x05, b'a'], 6).is_none());
        assert_eq!(
            decompress(&[0x00, b'a', 0x20, 0x00], 4),
            Some(b"aaaa".to_vec())
        );
    }
}
