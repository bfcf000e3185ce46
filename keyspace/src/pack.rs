//! [`Pack`]: many short byte strings in one allocation, the way Redis's
//! listpack keeps small lists, hashes and sorted sets compact.

/// A sequence of byte strings stored back to back in one buffer. Each entry
/// is its length, its bytes, and its length again (so the pack can be walked
/// from either end); lengths under 128 take one byte, longer ones five.
/// Operations in the middle are O(size), which is what small collections
/// (bounded by the `*-max-listpack-*` thresholds) can afford.
///
/// ```
/// use rampart_keyspace::Pack;
/// let mut p = Pack::default();
/// p.push_back(b"b");
/// p.push_front(b"a");
/// p.push_back(b"c");
/// assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"b", b"c"]);
/// assert_eq!(p.iter().rev().next(), Some(&b"c"[..]));
/// assert_eq!(p.remove(1), Some(b"b".to_vec()));
/// assert_eq!(p.len(), 2);
/// ```
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Pack {
    /// The entry count, then the entries; empty, with no allocation, when
    /// there are none. The count takes one byte below 255, else 0xff and a
    /// u32 (little-endian). A boxed slice rather than a `Vec` and a count:
    /// 16 bytes instead of 32, so a small hash fits in the key's node (see
    /// [`crate::Value`]), and growth is exact anyway.
    buf: Box<[u8]>,
}

/// The first byte of a count that does not fit in it.
const WIDE: u8 = 0xff;

/// The header that says `count` entries, in the first 1 or 5 bytes.
fn header(count: usize) -> ([u8; 5], usize) {
    let mut h = [0u8; 5];
    if count < WIDE as usize {
        h[0] = count as u8;
        (h, 1)
    } else {
        h[0] = WIDE;
        h[1..].copy_from_slice(&(count as u32).to_le_bytes());
        (h, 5)
    }
}

const BIG: u8 = 0x80;

fn head_size(len: usize) -> usize {
    if len < BIG as usize {
        1
    } else {
        5
    }
}

fn entry_size(len: usize) -> usize {
    2 * head_size(len) + len
}

fn write_entry(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < BIG as usize {
        out.push(n as u8);
        out.extend_from_slice(s);
        out.push(n as u8);
    } else {
        let l = (n as u32).to_le_bytes();
        out.push(BIG);
        out.extend_from_slice(&l);
        out.extend_from_slice(s);
        out.extend_from_slice(&l);
        out.push(BIG);
    }
}

fn entry(s: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(entry_size(s.len()));
    write_entry(&mut e, s);
    e
}

impl Pack {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self.buf.first() {
            None => 0,
            Some(&n) if n != WIDE => n as usize,
            Some(_) => {
                let mut l = [0u8; 4];
                l.copy_from_slice(&self.buf[1..5]);
                u32::from_le_bytes(l) as usize
            }
        }
    }

    /// Where the entries start: after the count (as in a pack of one entry
    /// when there are none).
    fn head(&self) -> usize {
        match self.buf.first() {
            Some(&WIDE) => 5,
            _ => 1,
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes the pack holds (for memory accounting).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Changes the buffer as a `Vec` (a pack grows by exactly what it
    /// needs, like Redis's listpack with a realloc per insert: it lives long
    /// and small, and jemalloc's size classes make most reallocations
    /// happen in place), adding `delta` to the entry count.
    fn edit<R>(&mut self, delta: isize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let count = self.len().wrapping_add_signed(delta);
        let head = self.head();
        let mut v = std::mem::take(&mut self.buf).into_vec();
        if v.is_empty() {
            v.push(0);
        }
        // `f` works at the offsets of the current header; the new count
        // goes in after it.
        let r = f(&mut v);
        if count == 0 {
            return r;
        }
        let (h, n) = header(count);
        if n == head {
            v[..n].copy_from_slice(&h[..n]);
        } else {
            v.splice(..head, h[..n].iter().copied());
        }
        self.buf = v.into_boxed_slice();
        r
    }

    /// Reads the entry starting at byte `off`: (data range, next offset).
    fn at(&self, off: usize) -> (std::ops::Range<usize>, usize) {
        let b = &self.buf;
        if b[off] != BIG {
            let n = b[off] as usize;
            (off + 1..off + 1 + n, off + 2 + n)
        } else {
            let mut l = [0u8; 4];
            l.copy_from_slice(&b[off + 1..off + 5]);
            let n = u32::from_le_bytes(l) as usize;
            (off + 5..off + 5 + n, off + 10 + n)
        }
    }

    /// Reads the entry ending at byte `end`: (data range, start offset).
    fn before(&self, end: usize) -> (std::ops::Range<usize>, usize) {
        let b = &self.buf;
        if b[end - 1] != BIG {
            let n = b[end - 1] as usize;
            let start = end - 2 - n;
            (start + 1..start + 1 + n, start)
        } else {
            let mut l = [0u8; 4];
            l.copy_from_slice(&b[end - 5..end - 1]);
            let n = u32::from_le_bytes(l) as usize;
            let start = end - 10 - n;
            (start + 5..start + 5 + n, start)
        }
    }

    /// Byte offset of entry `i` (or the end when `i == len`), in a
    /// non-empty pack.
    fn offset(&self, i: usize) -> usize {
        let len = self.len();
        if i >= len {
            return self.buf.len();
        }
        // Walk from the nearer end.
        if i <= len / 2 {
            let mut off = self.head();
            for _ in 0..i {
                off = self.at(off).1;
            }
            off
        } else {
            let mut end = self.buf.len();
            for _ in 0..len - i {
                end = self.before(end).1;
            }
            end
        }
    }

    /// Entry `i`, if any.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len() {
            return None;
        }
        let (r, _) = self.at(self.offset(i));
        Some(&self.buf[r])
    }

    /// Appends an entry.
    pub fn push_back(&mut self, s: &[u8]) {
        self.edit(1, |v| {
            v.reserve_exact(entry_size(s.len()));
            write_entry(v, s);
        });
    }

    /// Prepends an entry.
    pub fn push_front(&mut self, s: &[u8]) {
        self.insert(0, s);
    }

    /// Inserts an entry before entry `i` (at the end when `i >= len`).
    pub fn insert(&mut self, i: usize, s: &[u8]) {
        let off = if self.is_empty() { 1 } else { self.offset(i) };
        let e = entry(s);
        self.edit(1, |v| {
            v.reserve_exact(e.len());
            v.splice(off..off, e);
        });
    }

    /// Removes entry `i` and returns it.
    pub fn remove(&mut self, i: usize) -> Option<Vec<u8>> {
        if i >= self.len() {
            return None;
        }
        let off = self.offset(i);
        let (r, next) = self.at(off);
        let out = self.buf[r].to_vec();
        self.edit(-1, |v| {
            v.drain(off..next);
        });
        Some(out)
    }

    /// Removes entries `from..to` (clamped).
    pub fn remove_range(&mut self, from: usize, to: usize) {
        let to = to.min(self.len());
        if from >= to {
            return;
        }
        let a = self.offset(from);
        let b = self.offset(to);
        self.edit(-((to - from) as isize), |v| {
            v.drain(a..b);
        });
    }

    /// Replaces entry `i`.
    pub fn set(&mut self, i: usize, s: &[u8]) {
        if i >= self.len() {
            return;
        }
        let off = self.offset(i);
        let (_, next) = self.at(off);
        let e = entry(s);
        self.edit(0, |v| {
            v.reserve_exact(e.len().saturating_sub(next - off));
            v.splice(off..next, e);
        });
    }

    /// Entries front to back (double-ended).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            pack: self,
            front: self.head().min(self.buf.len()),
            back: self.buf.len(),
            left: self.len(),
        }
    }
}

/// Iterator over a [`Pack`]'s entries.
pub struct Iter<'a> {
    pack: &'a Pack,
    front: usize,
    back: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let (r, next) = self.pack.at(self.front);
        self.front = next;
        self.left -= 1;
        Some(&self.pack.buf[r])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (r, start) = self.pack.before(self.back);
        self.back = start;
        self.left -= 1;
        Some(&self.pack.buf[r])
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::Pack;

    #[test]
    fn behaves_like_a_vec() {
        let mut p = Pack::default();
        let mut v: Vec<Vec<u8>> = Vec::new();
        let mut seed = 7u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let len = if rnd() % 10 == 0 {
                200 + rnd() as usize % 300
            } else {
                rnd() as usize % 20
            };
            let s: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_add(rnd() as u8))
                .collect();
            match rnd() % 6 {
                0 => {
                    p.push_back(&s);
                    v.push(s);
                }
                1 => {
                    p.push_front(&s);
                    v.insert(0, s);
                }
                2 if !v.is_empty() => {
                    let i = rnd() as usize % (v.len() + 1);
                    p.insert(i, &s);
                    v.insert(i.min(v.len()), s);
                }
                3 if !v.is_empty() => {
                    let i = rnd() as usize % v.len();
                    assert_eq!(p.remove(i), Some(v.remove(i)));
                }
                4 if !v.is_empty() => {
                    let i = rnd() as usize % v.len();
                    p.set(i, &s);
                    v[i] = s;
                }
                _ if v.len() > 3 => {
                    let a = rnd() as usize % v.len();
                    let b = a + rnd() as usize % 3;
                    p.remove_range(a, b);
                    v.drain(a..b.min(v.len()));
                }
                _ => {}
            }
            assert_eq!(p.len(), v.len());
        }
        assert_eq!(p.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(), v);
        let mut rev: Vec<Vec<u8>> = p.iter().rev().map(<[u8]>::to_vec).collect();
        rev.reverse();
        assert_eq!(rev, v);
        for (i, e) in v.iter().enumerate() {
            assert_eq!(p.get(i), Some(&e[..]));
        }
    }

    #[test]
    fn counts_past_254_take_a_wider_header_and_back() {
        let mut p = Pack::default();
        for i in 0..300u32 {
            p.push_back(&i.to_le_bytes());
            assert_eq!(p.len(), i as usize + 1);
        }
        assert_eq!(p.bytes(), 5 + 300 * 6);
        assert_eq!(p.get(299), Some(&299u32.to_le_bytes()[..]));
        p.remove_range(0, 100);
        assert_eq!(p.len(), 200);
        assert_eq!(p.bytes(), 1 + 200 * 6);
        assert_eq!(p.iter().next(), Some(&100u32.to_le_bytes()[..]));
        p.remove_range(0, 200);
        assert!(p.is_empty());
        assert_eq!(p.bytes(), 0);
    }
}
