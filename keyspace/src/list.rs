//! [`List`]: Redis's list type, kept like its quicklist as a deque of
//! compact chunks, each many elements stored back to back in one buffer.

use std::collections::VecDeque;

/// One end of a list: `LEFT` (head) or `RIGHT` (tail) in Redis's commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The first element (LPUSH, LPOP, `LEFT`).
    Head,
    /// The last element (RPUSH, RPOP, `RIGHT`).
    Tail,
}

/// Marks an entry whose length does not fit in one byte.
const BIG: u8 = 0x80;

/// Redis 7.0's cap on a quicklist node holding more than one element when
/// `list-max-listpack-size` is a count (`SIZE_SAFETY_LIMIT`).
const SAFETY_BYTES: usize = 8192;

/// Largest count `list-max-listpack-size` may ask for (quicklist's `FILL_MAX`).
const FILL_MAX: i64 = 1 << 15;

/// Largest element a list accepts (Redis's `LIST_MAX_ITEM_SIZE`): lengths
/// are stored in 32 bits.
pub const MAX_ITEM_SIZE: usize = (1 << 32) - 1024;

/// Encoded size of an element of `n` bytes: its length before and after it
/// (one byte each under 128, five bytes each otherwise) so a chunk can be
/// walked from either end.
#[inline]
fn enc_size(n: usize) -> usize {
    if n < BIG as usize {
        n + 2
    } else {
        n + 10
    }
}

/// Writes `s` encoded into `out`, which is exactly `enc_size(s.len())` long.
#[inline]
fn encode_into(out: &mut [u8], s: &[u8]) {
    let n = s.len();
    if n < BIG as usize {
        out[0] = n as u8;
        out[1..1 + n].copy_from_slice(s);
        out[1 + n] = n as u8;
    } else {
        let l = (n as u32).to_le_bytes();
        out[0] = BIG;
        out[1..5].copy_from_slice(&l);
        out[5..5 + n].copy_from_slice(s);
        out[5 + n..9 + n].copy_from_slice(&l);
        out[9 + n] = BIG;
    }
}

/// Appends `s` encoded to `out`.
#[inline]
fn encode_push(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < BIG as usize {
        out.reserve(n + 2);
        out.push(n as u8);
        out.extend_from_slice(s);
        out.push(n as u8);
    } else {
        let l = (n as u32).to_le_bytes();
        out.reserve(n + 10);
        out.push(BIG);
        out.extend_from_slice(&l);
        out.extend_from_slice(s);
        out.extend_from_slice(&l);
        out.push(BIG);
    }
}

/// The entry starting at `off` in `d`: (its bytes' range, the next offset).
#[inline]
fn entry_at(d: &[u8], off: usize) -> (usize, usize, usize) {
    let b = d[off];
    if b != BIG {
        let n = b as usize;
        (off + 1, off + 1 + n, off + 2 + n)
    } else {
        let mut l = [0u8; 4];
        l.copy_from_slice(&d[off + 1..off + 5]);
        let n = u32::from_le_bytes(l) as usize;
        (off + 5, off + 5 + n, off + 10 + n)
    }
}

/// The entry ending at `end` in `d`: (its bytes' range, its start offset).
#[inline]
fn entry_before(d: &[u8], end: usize) -> (usize, usize, usize) {
    let b = d[end - 1];
    if b != BIG {
        let n = b as usize;
        let start = end - 2 - n;
        (start + 1, start + 1 + n, start)
    } else {
        let mut l = [0u8; 4];
        l.copy_from_slice(&d[end - 5..end - 1]);
        let n = u32::from_le_bytes(l) as usize;
        let start = end - 10 - n;
        (start + 5, start + 5 + n, start)
    }
}

/// A run of consecutive elements in one buffer. The live bytes are
/// `buf[head..]`: popping from the front only moves `head`, and the room
/// left behind takes the next pushes at the front, so both ends are O(1)
/// amortised without moving the rest of the chunk.
#[derive(Clone, Default)]
struct Chunk {
    buf: Vec<u8>,
    head: usize,
    count: usize,
}

impl Chunk {
    fn with(s: &[u8]) -> Chunk {
        let mut buf = Vec::with_capacity(enc_size(s.len()));
        encode_push(&mut buf, s);
        Chunk {
            buf,
            head: 0,
            count: 1,
        }
    }

    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    #[inline]
    fn bytes(&self) -> usize {
        self.buf.len() - self.head
    }

    fn push_back(&mut self, s: &[u8]) {
        let n = enc_size(s.len());
        // About to reallocate while at least half the buffer is dead room at
        // the front (a queue: pushed at the back, popped at the front):
        // reclaim it instead, so the buffer stays within twice its contents.
        if self.head > 0 && self.buf.len() + n > self.buf.capacity() && self.head >= self.bytes() {
            self.buf.copy_within(self.head.., 0);
            self.buf.truncate(self.buf.len() - self.head);
            self.head = 0;
        }
        encode_push(&mut self.buf, s);
        self.count += 1;
    }

    fn push_front(&mut self, s: &[u8]) {
        let n = enc_size(s.len());
        if self.head < n {
            // Room in front grows with the contents, so repeated pushes at
            // the front are amortised O(1) like a Vec's at the back.
            let used = self.bytes();
            let room = n.max(used).max(16);
            let mut nb = Vec::with_capacity(room + used);
            nb.resize(room, 0);
            nb.extend_from_slice(self.data());
            self.buf = nb;
            self.head = room;
        }
        let start = self.head - n;
        encode_into(&mut self.buf[start..self.head], s);
        self.head = start;
        self.count += 1;
    }

    fn first(&self) -> &[u8] {
        let d = self.data();
        let (a, b, _) = entry_at(d, 0);
        &d[a..b]
    }

    fn last(&self) -> &[u8] {
        let d = self.data();
        let (a, b, _) = entry_before(d, d.len());
        &d[a..b]
    }

    /// Byte offset (in `data()`) of entry `k`, or the end when `k == count`.
    fn offset_of(&self, k: usize) -> usize {
        let d = self.data();
        if k <= self.count / 2 {
            let mut off = 0;
            for _ in 0..k {
                off = entry_at(d, off).2;
            }
            off
        } else {
            let mut end = d.len();
            for _ in k..self.count {
                end = entry_before(d, end).2;
            }
            end
        }
    }

    /// Drops the first `k` entries.
    fn drop_front(&mut self, k: usize) {
        if k >= self.count {
            self.clear();
            return;
        }
        let off = self.offset_of(k);
        self.head += off;
        self.count -= k;
    }

    /// Drops the last `k` entries.
    fn drop_back(&mut self, k: usize) {
        if k >= self.count {
            self.clear();
            return;
        }
        let off = self.offset_of(self.count - k);
        self.buf.truncate(self.head + off);
        self.count -= k;
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.head = 0;
        self.count = 0;
    }

    /// Inserts `s` before the entry at byte offset `off` (the end if `off ==
    /// bytes()`).
    fn insert_at(&mut self, off: usize, s: &[u8]) {
        let n = enc_size(s.len());
        let at = self.head + off;
        let old = self.buf.len();
        self.buf.resize(old + n, 0);
        self.buf.copy_within(at..old, at + n);
        encode_into(&mut self.buf[at..at + n], s);
        self.count += 1;
    }

    /// Replaces the entry at byte offset `off` by `s`.
    fn replace_at(&mut self, off: usize, s: &[u8]) {
        let d = self.data();
        let (_, _, next) = entry_at(d, off);
        let old_n = next - off;
        let n = enc_size(s.len());
        let at = self.head + off;
        let len = self.buf.len();
        if n > old_n {
            self.buf.resize(len + n - old_n, 0);
            self.buf.copy_within(at + old_n..len, at + n);
        } else if n < old_n {
            self.buf.copy_within(at + old_n..len, at + n);
            self.buf.truncate(len - (old_n - n));
        }
        encode_into(&mut self.buf[at..at + n], s);
    }

    /// Removes entries equal to `value`, front to back, leaving the first
    /// `skip` matches in place and removing at most `max` after them.
    /// Returns how many were removed.
    fn remove_matches(&mut self, value: &[u8], mut skip: usize, max: usize) -> usize {
        let mut removed = 0;
        let mut read = self.head;
        let mut write = self.head;
        let end = self.buf.len();
        while read < end {
            let (a, b, next) = entry_at(&self.buf[..end], read);
            let drop = removed < max && &self.buf[a..b] == value && {
                if skip > 0 {
                    skip -= 1;
                    false
                } else {
                    true
                }
            };
            if drop {
                removed += 1;
            } else {
                if write != read {
                    self.buf.copy_within(read..next, write);
                }
                write += next - read;
            }
            read = next;
        }
        self.buf.truncate(write);
        self.count -= removed;
        removed
    }

    /// Splits off the entries from `k` on into a new chunk.
    fn split_off(&mut self, k: usize) -> Chunk {
        let off = self.offset_of(k);
        let tail = self.data()[off..].to_vec();
        let moved = self.count - k;
        self.buf.truncate(self.head + off);
        self.count = k;
        Chunk {
            buf: tail,
            head: 0,
            count: moved,
        }
    }

    /// Appends all of `other`'s entries.
    fn append(&mut self, other: &Chunk) {
        self.buf.extend_from_slice(other.data());
        self.count += other.count;
    }
}

/// A list value: a deque of chunks, each holding up to
/// `list-max-listpack-size` elements (or bytes, when negative) as Redis's
/// quicklist does, so pushes and pops at both ends are O(1) amortised, the
/// whole list stays in few allocations, and positional commands walk chunks
/// by their counts.
///
/// ```
/// use rampart_keyspace::list::{End, List};
/// let mut l: List = ["b", "c"].iter().collect();
/// l.push(End::Head, b"a");
/// assert_eq!(l.len(), 3);
/// assert_eq!(l.get(1), Some(&b"b"[..]));
/// assert_eq!(l.pop(End::Tail), Some(b"c".to_vec()));
/// assert_eq!(l.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
/// ```
#[derive(Clone)]
pub struct List {
    chunks: VecDeque<Chunk>,
    len: usize,
    /// A chunk takes another element while it stays within both.
    max_bytes: u32,
    max_count: u32,
}

impl Default for List {
    /// An empty list with Redis's default `list-max-listpack-size` (-2).
    fn default() -> List {
        List::new(-2)
    }
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl<T: AsRef<[u8]>> FromIterator<T> for List {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> List {
        let mut l = List::default();
        l.extend(iter);
        l
    }
}

impl<T: AsRef<[u8]>> Extend<T> for List {
    /// Appends at the tail, as RPUSH does.
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for s in iter {
            self.push(End::Tail, s.as_ref());
        }
    }
}

impl List {
    /// An empty list whose chunks follow `list-max-listpack-size = fill`:
    /// negative for a byte limit (4 KiB << (-fill - 1), down to -5 = 64
    /// KiB), positive for an element count (at most 32768, and within 8 KiB
    /// once a chunk has more than one element, as quicklist's safety limit).
    pub fn new(fill: i64) -> List {
        let (max_bytes, max_count) = if fill < 0 {
            let level = (-fill).min(5) as u32;
            (4096u32 << (level - 1), u32::MAX)
        } else {
            (SAFETY_BYTES as u32, fill.clamp(1, FILL_MAX) as u32)
        };
        List {
            chunks: VecDeque::new(),
            len: 0,
            max_bytes,
            max_count,
        }
    }

    /// The `list-max-listpack-size` this list was created with (clamped as
    /// [`List::new`] clamps it), so a writer can split it into quicklist
    /// nodes the way Redis would (RDB files, DUMP).
    pub fn fill(&self) -> i64 {
        if self.max_count == u32::MAX {
            -((self.max_bytes / 4096).trailing_zeros() as i64 + 1)
        } else {
            self.max_count as i64
        }
    }

    /// OBJECT ENCODING's name for the representation: Redis 7.0 reports
    /// every list as `quicklist`.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Each chunk's element count and bytes used and reserved, head
    /// first: DEBUG QUICKLIST's description of the layout (no element
    /// bytes, which are data).
    pub fn chunk_shapes(&self) -> Vec<(usize, usize, usize)> {
        self.chunks
            .iter()
            .map(|c| (c.count, c.buf.len() - c.head, c.buf.capacity()))
            .collect()
    }

    /// Approximate heap bytes held (MEMORY USAGE, eviction accounting).
    pub fn heap_size(&self) -> usize {
        // The List itself lives in the Value's Box.
        std::mem::size_of::<List>()
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(|c| c.buf.capacity()).sum::<usize>()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether chunk `c` may take one more element of `n` bytes.
    #[inline]
    fn fits(&self, c: &Chunk, n: usize) -> bool {
        c.bytes() + enc_size(n) <= self.max_bytes as usize && c.count < self.max_count as usize
    }

    /// Whether chunk `c` exceeds the limits (and has more than one element,
    /// since one element always gets a chunk of its own).
    fn over(&self, c: &Chunk) -> bool {
        c.count > 1 && (c.bytes() > self.max_bytes as usize || c.count > self.max_count as usize)
    }

    /// Adds `s` at `end`.
    pub fn push(&mut self, end: End, s: &[u8]) {
        match end {
            End::Tail => match self.chunks.back() {
                Some(c) if self.fits(c, s.len()) => {
                    if let Some(c) = self.chunks.back_mut() {
                        c.push_back(s);
                    }
                }
                _ => self.new_chunk(End::Tail, Chunk::with(s)),
            },
            End::Head => match self.chunks.front() {
                Some(c) if self.fits(c, s.len()) => {
                    if let Some(c) = self.chunks.front_mut() {
                        c.push_front(s);
                    }
                }
                _ => self.new_chunk(End::Head, Chunk::with(s)),
            },
        }
        self.len += 1;
    }

    fn new_chunk(&mut self, end: End, c: Chunk) {
        if self.chunks.capacity() == 0 {
            // Most lists are small: one chunk, without VecDeque's minimum
            // allocation of four.
            self.chunks.reserve_exact(1);
        }
        match end {
            End::Head => self.chunks.push_front(c),
            End::Tail => self.chunks.push_back(c),
        }
    }

    /// Removes the element at `end`, handing it to `f` before it goes (so a
    /// reply can be written without copying it), and returns `f`'s result.
    pub fn pop_with<R>(&mut self, end: End, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let c = match end {
            End::Head => self.chunks.front_mut()?,
            End::Tail => self.chunks.back_mut()?,
        };
        let r = match end {
            End::Head => f(c.first()),
            End::Tail => f(c.last()),
        };
        match end {
            End::Head => c.drop_front(1),
            End::Tail => c.drop_back(1),
        }
        if c.count == 0 {
            match end {
                End::Head => self.chunks.pop_front(),
                End::Tail => self.chunks.pop_back(),
            };
        }
        self.len -= 1;
        Some(r)
    }

    /// Removes and returns the element at `end`.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        self.pop_with(end, <[u8]>::to_vec)
    }

    /// The element at `end`.
    pub fn peek(&self, end: End) -> Option<&[u8]> {
        match end {
            End::Head => self.chunks.front().map(Chunk::first),
            End::Tail => self.chunks.back().map(Chunk::last),
        }
    }

    /// Removes `n` elements (clamped) from `end`.
    pub fn remove_n(&mut self, end: End, n: usize) {
        let mut left = n.min(self.len);
        self.len -= left;
        while left > 0 {
            let c = match end {
                End::Head => self.chunks.front_mut(),
                End::Tail => self.chunks.back_mut(),
            };
            let Some(c) = c else { break };
            if c.count <= left {
                left -= c.count;
                match end {
                    End::Head => self.chunks.pop_front(),
                    End::Tail => self.chunks.pop_back(),
                };
            } else {
                match end {
                    End::Head => c.drop_front(left),
                    End::Tail => c.drop_back(left),
                }
                left = 0;
            }
        }
    }

    /// (chunk, index in chunk) of element `i < len`, walking chunk counts
    /// from the nearer end.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut i = i;
            for (ci, c) in self.chunks.iter().enumerate() {
                if i < c.count {
                    return (ci, i);
                }
                i -= c.count;
            }
        } else {
            let mut from_end = self.len - i;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if from_end <= c.count {
                    return (ci, c.count - from_end);
                }
                from_end -= c.count;
            }
        }
        (self.chunks.len(), 0)
    }

    /// Element `i` (0-based from the head), if any.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (ci, k) = self.locate(i);
        let c = &self.chunks[ci];
        let d = c.data();
        let (a, b, _) = entry_at(d, c.offset_of(k));
        Some(&d[a..b])
    }

    /// Replaces element `i`; false when out of range.
    pub fn set(&mut self, i: usize, s: &[u8]) -> bool {
        if i >= self.len {
            return false;
        }
        let (ci, k) = self.locate(i);
        let c = &mut self.chunks[ci];
        let off = c.offset_of(k);
        c.replace_at(off, s);
        self.split_if_over(ci);
        true
    }

    /// Inserts `s` before element `i` (at the tail when `i >= len`).
    pub fn insert(&mut self, i: usize, s: &[u8]) {
        if i >= self.len {
            return self.push(End::Tail, s);
        }
        if i == 0 {
            return self.push(End::Head, s);
        }
        let (ci, k) = self.locate(i);
        let c = &mut self.chunks[ci];
        let off = c.offset_of(k);
        c.insert_at(off, s);
        self.len += 1;
        self.split_if_over(ci);
    }

    /// Splits chunk `ci` in halves until every piece is within the limits.
    fn split_if_over(&mut self, ci: usize) {
        if !self.over(&self.chunks[ci]) {
            return;
        }
        let half = self.chunks[ci].count / 2;
        let tail = self.chunks[ci].split_off(half);
        self.chunks.insert(ci + 1, tail);
        self.split_if_over(ci + 1);
        self.split_if_over(ci);
    }

    /// Removes elements equal to `value`, as LREM does: the first `count`
    /// from the head (`from_tail` false) or from the tail, every one when
    /// `count` is 0. Returns how many were removed.
    pub fn remove_value(&mut self, value: &[u8], count: usize, from_tail: bool) -> usize {
        let limit = if count == 0 { usize::MAX } else { count };
        let mut removed = 0;
        let n = self.chunks.len();
        for step in 0..n {
            if removed >= limit {
                break;
            }
            let ci = if from_tail { n - 1 - step } else { step };
            let budget = limit - removed;
            let c = &mut self.chunks[ci];
            let skip = if from_tail && budget != usize::MAX {
                // Scanning from the tail removes the chunk's last `budget`
                // matches: keep the ones before them.
                let d = c.data();
                let mut matches = 0usize;
                let mut off = 0;
                while off < d.len() {
                    let (a, b, next) = entry_at(d, off);
                    if &d[a..b] == value {
                        matches += 1;
                    }
                    off = next;
                }
                matches.saturating_sub(budget)
            } else {
                0
            };
            removed += c.remove_matches(value, skip, budget);
        }
        if removed > 0 {
            self.len -= removed;
            self.rebalance();
        }
        removed
    }

    /// Drops empty chunks and merges neighbours that fit in one, after
    /// removals in the middle.
    fn rebalance(&mut self) {
        let old = std::mem::take(&mut self.chunks);
        let mut out: VecDeque<Chunk> = VecDeque::with_capacity(old.len());
        for c in old {
            if c.count == 0 {
                continue;
            }
            if let Some(last) = out.back_mut() {
                if last.bytes() + c.bytes() <= self.max_bytes as usize
                    && last.count + c.count <= self.max_count as usize
                {
                    last.append(&c);
                    continue;
                }
            }
            out.push_back(c);
        }
        self.chunks = out;
    }

    /// Keeps only elements `start..=end` (already clamped to the list), as
    /// LTRIM does after its index arithmetic.
    pub fn retain_range(&mut self, start: usize, end: usize) {
        if start > end || start >= self.len {
            self.clear();
            return;
        }
        let end = end.min(self.len - 1);
        let tail = self.len - 1 - end;
        self.remove_n(End::Head, start);
        self.remove_n(End::Tail, tail);
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Elements from head to tail (double-ended).
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len)
    }

    /// `n` elements (clamped) starting at index `start`, head to tail;
    /// `.rev()` walks them tail to head. Positioning is O(chunks).
    pub fn range(&self, start: usize, n: usize) -> Iter<'_> {
        let n = n.min(self.len.saturating_sub(start));
        if n == 0 {
            return Iter {
                chunks: &self.chunks,
                fc: 0,
                foff: 0,
                bc: 0,
                boff: 0,
                left: 0,
            };
        }
        let (fc, fk) = self.locate(start);
        let foff = self.chunks[fc].offset_of(fk);
        let (bc, boff) = if start + n == self.len {
            let last = self.chunks.len() - 1;
            (last, self.chunks[last].bytes())
        } else {
            let (bc, bk) = self.locate(start + n);
            (bc, self.chunks[bc].offset_of(bk))
        };
        Iter {
            chunks: &self.chunks,
            fc,
            foff,
            bc,
            boff,
            left: n,
        }
    }

    /// Checks the internal invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut total = 0;
        for c in &self.chunks {
            assert!(c.count > 0, "empty chunk");
            let d = c.data();
            let mut off = 0;
            let mut k = 0;
            while off < d.len() {
                off = entry_at(d, off).2;
                k += 1;
            }
            assert_eq!(off, d.len());
            assert_eq!(k, c.count);
            assert!(!self.over(c), "chunk over the limits");
            total += c.count;
        }
        assert_eq!(total, self.len);
    }
}

/// Iterator over a [`List`]'s elements (or a range of them).
pub struct Iter<'a> {
    chunks: &'a VecDeque<Chunk>,
    fc: usize,
    foff: usize,
    bc: usize,
    boff: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let chunks: &'a VecDeque<Chunk> = self.chunks;
        let mut d = chunks[self.fc].data();
        if self.foff >= d.len() {
            self.fc += 1;
            self.foff = 0;
            d = chunks[self.fc].data();
        }
        let (a, b, next) = entry_at(d, self.foff);
        self.foff = next;
        self.left -= 1;
        Some(&d[a..b])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let chunks = self.chunks;
        if self.boff == 0 {
            self.bc -= 1;
            self.boff = chunks[self.bc].bytes();
        }
        let d = chunks[self.bc].data();
        let (a, b, start) = entry_before(d, self.boff);
        self.boff = start;
        self.left -= 1;
        Some(&d[a..b])
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::{End, List};
    use std::collections::VecDeque;

    #[test]
    fn fill_reports_the_configured_size() {
        for fill in [-1, -2, -3, -4, -5, 1, 128, 32768] {
            assert_eq!(List::new(fill).fill(), fill);
        }
        assert_eq!(List::new(-9).fill(), -5);
        assert_eq!(List::new(0).fill(), 1);
        assert_eq!(List::new(1 << 20).fill(), 1 << 15);
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn value(r: &mut Rng) -> Vec<u8> {
        // Few distinct short values so LREM/LINSERT find matches, with some
        // long ones to cross the one-byte length encoding and the chunk size.
        match r.below(20) {
            0 => vec![b'x'; 100 + r.below(400)],
            1 => vec![b'y'; 3000 + r.below(6000)],
            _ => format!("v{}", r.below(8)).into_bytes(),
        }
    }

    fn same(l: &List, m: &VecDeque<Vec<u8>>) {
        l.check();
        assert_eq!(l.len(), m.len());
        assert!(l.iter().eq(m.iter().map(|v| &v[..])));
        assert!(l.iter().rev().eq(m.iter().rev().map(|v| &v[..])));
    }

    fn run_model(fill: i64, seed: u64, steps: usize) {
        let mut r = Rng(seed);
        let mut l = List::new(fill);
        let mut m: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..steps {
            let v = value(&mut r);
            match r.below(14) {
                0 | 1 => {
                    l.push(End::Tail, &v);
                    m.push_back(v);
                }
                2 | 3 => {
                    l.push(End::Head, &v);
                    m.push_front(v);
                }
                4 => assert_eq!(l.pop(End::Head), m.pop_front()),
                5 => assert_eq!(l.pop(End::Tail), m.pop_back()),
                6 => {
                    let i = r.below(m.len() + 2);
                    assert_eq!(l.get(i), m.get(i).map(|v| &v[..]));
                    if i < m.len() {
                        assert!(l.set(i, &v));
                        m[i] = v;
                    } else {
                        assert!(!l.set(i, &v));
                    }
                }
                7 => {
                    let i = r.below(m.len() + 1);
                    l.insert(i, &v);
                    m.insert(i.min(m.len()), v);
                }
                8 => {
                    let pivot = value(&mut r);
                    let after = r.below(2) == 1;
                    let pos = m.iter().position(|e| *e == pivot);
                    assert_eq!(l.iter().position(|e| e == &pivot[..]), pos);
                    if let Some(p) = pos {
                        let at = if after { p + 1 } else { p };
                        l.insert(at, &v);
                        m.insert(at, v);
                    }
                }
                9 => {
                    let count = r.below(4);
                    let from_tail = r.below(2) == 1;
                    let limit = if count == 0 { usize::MAX } else { count };
                    let mut removed = 0;
                    let mut keep: Vec<bool> = vec![true; m.len()];
                    let order: Vec<usize> = if from_tail {
                        (0..m.len()).rev().collect()
                    } else {
                        (0..m.len()).collect()
                    };
                    for i in order {
                        if removed < limit && m[i] == v {
                            keep[i] = false;
                            removed += 1;
                        }
                    }
                    let mut it = keep.iter();
                    m.retain(|_| *it.next().unwrap_or(&true));
                    assert_eq!(l.remove_value(&v, count, from_tail), removed);
                }
                10 => {
                    let n = r.below(5);
                    let end = if r.below(2) == 0 {
                        End::Head
                    } else {
                        End::Tail
                    };
                    l.remove_n(end, n);
                    for _ in 0..n.min(m.len()) {
                        match end {
                            End::Head => m.pop_front(),
                            End::Tail => m.pop_back(),
                        };
                    }
                }
                11 if step % 50 == 0 => {
                    let a = r.below(m.len() + 2);
                    let b = r.below(m.len() + 2);
                    l.retain_range(a, b);
                    if a > b || a >= m.len() {
                        m.clear();
                    } else {
                        let b = b.min(m.len() - 1);
                        m = m.drain(a..=b).collect();
                    }
                }
                12 => {
                    let start = r.below(m.len() + 2);
                    let n = r.below(m.len() + 2);
                    let want: Vec<&[u8]> = m.iter().skip(start).take(n).map(|v| &v[..]).collect();
                    let got: Vec<&[u8]> = l.range(start, n).collect();
                    assert_eq!(got, want);
                    let mut back: Vec<&[u8]> = l.range(start, n).rev().collect();
                    back.reverse();
                    assert_eq!(back, want);
                    assert_eq!(l.range(start, n).len(), want.len());
                }
                _ => {
                    let c = l.clone();
                    assert_eq!(c, l);
                }
            }
            if step % 64 == 0 {
                same(&l, &m);
            }
        }
        same(&l, &m);
        assert!(l.heap_size() > 0 || l.is_empty());
    }

    #[test]
    fn behaves_like_a_vecdeque() {
        for (fill, seed) in [(-2, 1), (-1, 2), (-5, 3), (1, 4), (3, 5), (128, 6), (0, 7)] {
            run_model(fill, seed, 6000);
        }
    }

    #[test]
    fn queue_buffers_stay_bounded() {
        let mut l = List::default();
        l.push(End::Tail, b"a");
        for i in 0..100_000u32 {
            l.push(End::Tail, &i.to_le_bytes());
            l.pop(End::Head);
            l.push(End::Head, &i.to_le_bytes());
            l.pop(End::Tail);
        }
        assert_eq!(l.len(), 1);
        assert!(l.heap_size() < 1024, "{}", l.heap_size());
    }

    #[test]
    fn chunks_follow_the_fill() {
        let l: List = (0..1000).map(|i| format!("{i:04}")).collect();
        // -2: 8 KiB chunks; 1000 entries of 6 encoded bytes fit in one.
        assert_eq!(l.chunks.len(), 1);
        let l: List = (0..3000).map(|i| format!("{i:04}")).collect();
        assert_eq!(l.chunks.len(), 3);
        let mut l = List::new(10);
        l.extend((0..100).map(|i| i.to_string()));
        assert_eq!(l.chunks.len(), 10);
        l.check();
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(format!("{:?}", List::from_iter(["a"])), "[\"a\"]");
    }
}
