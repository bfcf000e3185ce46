//! The hash type, [`Hash`]: a field → value map in one of Redis 7.0's two
//! encodings, plus [`Table`], the hash-ordered table that backs the large
//! encodings of hashes and sets.
//!
//! - `listpack`: a [`Pack`] of alternating field and value entries, in
//!   insertion order. One allocation beside the boxed value, no per-field
//!   allocations, which is what keeps millions of small hashes compact.
//! - `hashtable`: a [`Table`] of [`Pair`]s (field and value in one
//!   allocation), chosen once the hash outgrows `hash-max-listpack-entries`
//!   or a field or value is longer than `hash-max-listpack-value`. As in
//!   Redis 7.0 a hash never converts back.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rand::Rng;

use crate::{EncodingLimits, Pack};

/// An element of a [`Table`]: anything with a byte-string key.
pub trait Keyed {
    /// The key the element is found by.
    fn key(&self) -> &[u8];
}

impl Keyed for Box<[u8]> {
    fn key(&self) -> &[u8] {
        self
    }
}

/// log2 of the average number of elements per part above which a [`Table`]
/// doubles its parts: small parts bound the work of one SCAN step and of
/// picking a random element.
const PART_BITS: u32 = 5;

/// A hash table whose iteration order is the order of its elements' hashes,
/// so a SCAN cursor can be a position in that order: growing or shrinking
/// the table never moves an element across the cursor, and every element
/// present for a whole iteration is returned (Redis gets the same guarantee
/// from its reverse-binary cursor).
///
/// The table is `2^bits` hashbrown tables ("parts"); part `i` holds the
/// elements whose hash starts with the bits of `i`, so the parts cover
/// consecutive ranges of hash order. Parts split (or merge) all at once as
/// the table grows (or shrinks), like a hash table doubling.
///
/// ```
/// use rampart_keyspace::hash::Table;
/// let mut t: Table<Box<[u8]>> = Table::default();
/// for i in 0..1000 {
///     t.insert_unique(format!("m{i}").into_bytes().into_boxed_slice());
/// }
/// assert!(t.get(b"m999").is_some());
/// let (mut cursor, mut seen) = (0, 0);
/// loop {
///     cursor = t.scan(cursor, 10, |_| seen += 1);
///     if cursor == 0 { break; }
/// }
/// assert_eq!(seen, 1000);
/// ```
#[derive(Clone, Debug)]
pub struct Table<E> {
    parts: Vec<HashTable<E>>,
    bits: u32,
    len: usize,
    seed: u64,
}

impl<E: Keyed> Default for Table<E> {
    fn default() -> Self {
        Table {
            parts: vec![HashTable::new()],
            bits: 0,
            len: 0,
            seed: rand::random(),
        }
    }
}

/// Bits of a cursor: positions are the top 63 bits of a hash, so cursors
/// stay within a signed 64-bit integer for clients that parse them so.
const ORDER_BITS: u32 = 63;

impl<E: Keyed> Table<E> {
    /// Slots the table's parts have room for without growing.
    pub fn slots(&self) -> usize {
        self.parts.iter().map(|p| p.capacity()).sum()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        foldhash::fast::FixedState::with_seed(self.seed).hash_one(key)
    }

    fn part_of(h: u64, bits: u32) -> usize {
        if bits == 0 {
            0
        } else {
            (h >> (64 - bits)) as usize
        }
    }

    /// The hash given to a part: its top bits are the same for every
    /// element of the part, and hashbrown takes its tag from the top, so
    /// the halves are swapped (as `Db` does for its shards).
    fn inner(h: u64) -> u64 {
        h.rotate_left(32)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element with key `key`.
    pub fn get(&self, key: &[u8]) -> Option<&E> {
        let h = self.hash(key);
        self.parts[Self::part_of(h, self.bits)].find(Self::inner(h), |e| e.key() == key)
    }

    /// The element with key `key`, for modification. The key itself must
    /// not change.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut E> {
        let h = self.hash(key);
        let p = Self::part_of(h, self.bits);
        self.parts[p].find_mut(Self::inner(h), |e| e.key() == key)
    }

    /// Inserts `e`, whose key must not be present yet.
    pub fn insert_unique(&mut self, e: E) {
        let h = self.hash(e.key());
        let seed = self.seed;
        let p = Self::part_of(h, self.bits);
        self.parts[p].insert_unique(Self::inner(h), e, |x| {
            Self::inner(foldhash::fast::FixedState::with_seed(seed).hash_one(x.key()))
        });
        self.len += 1;
        if self.len > self.parts.len() << PART_BITS {
            self.resize(self.bits + 1);
        }
    }

    /// Removes and returns the element with key `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        let h = self.hash(key);
        let p = Self::part_of(h, self.bits);
        let entry = self.parts[p]
            .find_entry(Self::inner(h), |e| e.key() == key)
            .ok()?;
        let (e, _) = entry.remove();
        self.len -= 1;
        if self.bits > 0 && self.len < self.parts.len() << (PART_BITS - 2) {
            self.resize(self.bits - 1);
        } else {
            let part = &mut self.parts[p];
            if part.capacity() > 16 && part.len() * 4 < part.capacity() {
                let seed = self.seed;
                part.shrink_to_fit(|x| {
                    Self::inner(foldhash::fast::FixedState::with_seed(seed).hash_one(x.key()))
                });
            }
        }
        Some(e)
    }

    /// Redistributes the elements into `2^bits` parts.
    fn resize(&mut self, bits: u32) {
        let n = 1usize << bits;
        let per = self.len / n + self.len / (4 * n) + 1;
        let mut parts: Vec<HashTable<E>> = (0..n).map(|_| HashTable::with_capacity(per)).collect();
        let seed = self.seed;
        let hash = |k: &[u8]| foldhash::fast::FixedState::with_seed(seed).hash_one(k);
        for part in std::mem::take(&mut self.parts) {
            for e in part {
                let h = hash(e.key());
                parts[Self::part_of(h, bits)]
                    .insert_unique(Self::inner(h), e, |x| Self::inner(hash(x.key())));
            }
        }
        self.parts = parts;
        self.bits = bits;
    }

    /// Every element, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &E> + '_ {
        self.parts.iter().flat_map(|p| p.iter())
    }

    /// Removes and returns every element.
    pub fn drain(&mut self) -> impl Iterator<Item = E> {
        let parts = std::mem::take(&mut self.parts);
        self.parts = vec![HashTable::new()];
        self.bits = 0;
        self.len = 0;
        parts.into_iter().flat_map(|p| p.into_iter())
    }

    /// One SCAN step from `cursor`: calls `f` on at least `count` elements
    /// (fewer at the end; elements sharing the last position all go out
    /// together) in hash order, and returns the next cursor, 0 at the end.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a E)) -> u64 {
        let count = count.max(1);
        let mut visited = 0;
        let mut c = cursor;
        let last = (1usize << self.bits) - 1;
        loop {
            // Position c's part: its top `bits` bits of the 63-bit order.
            let p = if self.bits == 0 {
                0
            } else {
                (c >> (ORDER_BITS - self.bits)) as usize
            };
            if p > last {
                return 0;
            }
            let mut cand: Vec<(u64, &'a E)> = self.parts[p]
                .iter()
                .filter_map(|e| {
                    let o = self.hash(e.key()) >> 1;
                    (o >= c).then_some((o, e))
                })
                .collect();
            let need = count - visited;
            let mut next = None;
            if cand.len() > need {
                cand.select_nth_unstable_by_key(need - 1, |e| e.0);
                let boundary = cand[need - 1].0;
                cand.retain(|e| e.0 <= boundary);
                next = Some(if boundary >= (1 << ORDER_BITS) - 1 {
                    0
                } else {
                    boundary + 1
                });
            }
            visited += cand.len();
            for (_, e) in cand {
                f(e);
            }
            if let Some(next) = next {
                return next;
            }
            if p == last {
                return 0;
            }
            c = ((p + 1) as u64) << (ORDER_BITS - self.bits);
            if visited >= count {
                return c;
            }
        }
    }

    /// A random element (close to uniform: a part is chosen in proportion
    /// to its size by rejection, then an element of it), `None` when empty.
    pub fn random(&self, rng: &mut impl Rng) -> Option<&E> {
        if self.len == 0 {
            return None;
        }
        let avg = self.len.div_ceil(self.parts.len());
        let bound = 2 * avg + 8;
        loop {
            let part = &self.parts[rng.random_range(0..self.parts.len())];
            if part.is_empty() || rng.random_range(0..bound) >= part.len().min(bound) {
                continue;
            }
            let i = rng.random_range(0..part.len());
            return part.iter().nth(i);
        }
    }

    /// Approximate heap bytes held by the table itself (not by what its
    /// elements point to).
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.parts.capacity() * std::mem::size_of::<HashTable<E>>()
            + self
                .parts
                .iter()
                .map(|p| p.capacity() * (std::mem::size_of::<E>() + 1))
                .sum::<usize>()
    }
}

/// A field and its value in one allocation: the field's length (4 bytes,
/// little-endian), the field, the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Pair(Box<[u8]>);

impl Pair {
    /// A pair of `field` and `value`.
    pub fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut b = Vec::with_capacity(4 + field.len() + value.len());
        b.extend_from_slice(&(field.len() as u32).to_le_bytes());
        b.extend_from_slice(field);
        b.extend_from_slice(value);
        Pair(b.into_boxed_slice())
    }

    fn field_len(&self) -> usize {
        let mut l = [0u8; 4];
        l.copy_from_slice(&self.0[..4]);
        u32::from_le_bytes(l) as usize
    }

    /// The field.
    pub fn field(&self) -> &[u8] {
        &self.0[4..4 + self.field_len()]
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.0[4 + self.field_len()..]
    }
}

impl Keyed for Pair {
    fn key(&self) -> &[u8] {
        self.field()
    }
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}={:?}",
            String::from_utf8_lossy(self.field()),
            String::from_utf8_lossy(self.value())
        )
    }
}

#[derive(Clone, Debug)]
enum Repr {
    /// Alternating field and value entries.
    Pack(Pack),
    Table(Box<Table<Pair>>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Pack(Pack::default())
    }
}

/// A hash value.
///
/// ```
/// use rampart_keyspace::{hash::Hash, EncodingLimits};
/// let limits = EncodingLimits::default();
/// let mut h = Hash::default();
/// assert!(h.insert(b"f1", b"v1", &limits));
/// assert!(!h.insert(b"f1", b"v2", &limits));
/// assert!(h.insert(b"f0", b"v0", &limits));
/// assert_eq!(h.get(b"f1"), Some(&b"v2"[..]));
/// // The compact encoding keeps insertion order, as Redis's listpack.
/// let fields: Vec<&[u8]> = h.iter().map(|(f, _)| f).collect();
/// assert_eq!(fields, vec![&b"f1"[..], b"f0"]);
/// assert_eq!(h.encoding(), "listpack");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Hash {
    repr: Repr,
}

impl Hash {
    /// An empty hash in the `hashtable` encoding (for loading a dump that
    /// recorded that encoding).
    pub fn new_table() -> Hash {
        Hash {
            repr: Repr::Table(Box::default()),
        }
    }

    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Whether the hash is in the compact (`listpack`) encoding, whose
    /// iteration order is insertion order.
    pub fn is_compact(&self) -> bool {
        matches!(self.repr, Repr::Pack(_))
    }

    /// The `hashtable` encoding's table (DEBUG HTSTATS-KEY).
    pub fn table_shape(&self) -> Option<crate::TableShape> {
        match &self.repr {
            Repr::Pack(_) => None,
            Repr::Table(t) => Some(crate::TableShape::open(t.slots(), t.len())),
        }
    }

    /// Approximate heap bytes held (MEMORY USAGE, eviction accounting).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.bytes(),
            Repr::Table(t) => {
                std::mem::size_of::<Table<Pair>>()
                    + t.heap_size()
                    + t.iter().map(|p| p.0.len()).sum::<usize>()
            }
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len() / 2,
            Repr::Table(t) => t.len(),
        }
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of `field`'s entry in the pack.
    fn pack_find(p: &Pack, field: &[u8]) -> Option<usize> {
        p.iter().step_by(2).position(|f| f == field).map(|i| 2 * i)
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Pack(p) => {
                let mut it = p.iter();
                while let Some(f) = it.next() {
                    let v = it.next();
                    if f == field {
                        return v;
                    }
                }
                None
            }
            Repr::Table(t) => t.get(field).map(Pair::value),
        }
    }

    /// Whether `field` exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to the `hashtable` encoding (no-op when already there).
    pub fn convert_to_table(&mut self) {
        if let Repr::Pack(p) = &self.repr {
            let mut t: Table<Pair> = Table::default();
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                t.insert_unique(Pair::new(f, v));
            }
            self.repr = Repr::Table(Box::new(t));
        }
    }

    /// Converts to `hashtable` if any of `lens` (the lengths of the fields
    /// and values about to be written) exceeds `hash-max-listpack-value`,
    /// as Redis's `hashTypeTryConversion` does before HSET writes anything.
    pub fn fit(&mut self, mut lens: impl Iterator<Item = usize>, limits: &EncodingLimits) {
        if self.is_compact() && lens.any(|l| l > limits.hash_max_listpack_value) {
            self.convert_to_table();
        }
    }

    /// Sets `field` to `value`; true when the field is new. Converts to
    /// `hashtable` when the field or value is too long for the compact
    /// encoding or the hash grows past `hash-max-listpack-entries`.
    pub fn insert(&mut self, field: &[u8], value: &[u8], limits: &EncodingLimits) -> bool {
        self.fit([field.len(), value.len()].into_iter(), limits);
        match &mut self.repr {
            Repr::Pack(p) => {
                if let Some(i) = Self::pack_find(p, field) {
                    p.set(i + 1, value);
                    return false;
                }
                p.push_back(field);
                p.push_back(value);
                if p.len() / 2 > limits.hash_max_listpack_entries {
                    self.convert_to_table();
                }
                true
            }
            Repr::Table(t) => match t.get_mut(field) {
                Some(pair) => {
                    *pair = Pair::new(field, value);
                    false
                }
                None => {
                    t.insert_unique(Pair::new(field, value));
                    true
                }
            },
        }
    }

    /// Removes `field`; true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Pack(p) => match Self::pack_find(p, field) {
                Some(i) => {
                    p.remove_range(i, i + 2);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Every (field, value): insertion order in the compact encoding, hash
    /// order otherwise.
    pub fn iter(&self) -> HashIter<'_> {
        match &self.repr {
            Repr::Pack(p) => HashIter::Pack(p.iter()),
            Repr::Table(t) => HashIter::Table(Box::new(t.iter().map(|p| (p.field(), p.value())))),
        }
    }

    /// One HSCAN step: the compact encoding returns everything at once with
    /// cursor 0 (whatever the cursor), as Redis does; the table returns
    /// about `count` pairs from `cursor` on and the next cursor.
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a [u8]),
    ) -> u64 {
        match &self.repr {
            Repr::Pack(_) => {
                for (k, v) in self.iter() {
                    f(k, v);
                }
                0
            }
            Repr::Table(t) => t.scan(cursor, count, |p| f(p.field(), p.value())),
        }
    }

    /// A random (field, value), `None` when empty. O(1) expected for the
    /// table, O(n) for the compact encoding (callers wanting many samples
    /// of a compact hash should collect [`Hash::iter`] once).
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Pack(p) => {
                let n = p.len() / 2;
                if n == 0 {
                    return None;
                }
                let i = rng.random_range(0..n);
                let mut it = p.iter().skip(2 * i);
                match (it.next(), it.next()) {
                    (Some(f), Some(v)) => Some((f, v)),
                    _ => None,
                }
            }
            Repr::Table(t) => t.random(rng).map(|p| (p.field(), p.value())),
        }
    }
}

/// Iterator over a [`Hash`]'s (field, value) pairs.
pub enum HashIter<'a> {
    #[doc(hidden)]
    Pack(crate::pack::Iter<'a>),
    #[doc(hidden)]
    Table(Box<dyn Iterator<Item = (&'a [u8], &'a [u8])> + 'a>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Pack(it) => match (it.next(), it.next()) {
                (Some(f), Some(v)) => Some((f, v)),
                _ => None,
            },
            HashIter::Table(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};
    use std::collections::{HashMap, HashSet};

    fn limits(entries: usize, value: usize) -> EncodingLimits {
        EncodingLimits {
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: value,
            ..EncodingLimits::default()
        }
    }

    #[test]
    fn behaves_like_a_map() {
        let mut rng = StdRng::seed_from_u64(1);
        for (entries, value) in [(512, 64), (8, 4), (0, 64)] {
            let l = limits(entries, value);
            let mut h = Hash::default();
            let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut order: Vec<Vec<u8>> = Vec::new();
            for step in 0..20_000 {
                let k = format!("f{}", rng.random_range(0..400)).into_bytes();
                let v = vec![b'v'; rng.random_range(0..8)];
                match rng.random_range(0..3) {
                    0 | 1 => {
                        let new = h.insert(&k, &v, &l);
                        assert_eq!(new, m.insert(k.clone(), v).is_none());
                        if new {
                            order.push(k);
                        }
                    }
                    _ => {
                        let gone = h.remove(&k);
                        assert_eq!(gone, m.remove(&k).is_some());
                        order.retain(|o| *o != k);
                    }
                }
                assert_eq!(h.len(), m.len());
                if step % 500 == 0 {
                    for (k, v) in &m {
                        assert_eq!(h.get(k), Some(&v[..]));
                    }
                    let got: HashMap<Vec<u8>, Vec<u8>> =
                        h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                    assert_eq!(got, m);
                    if h.is_compact() {
                        let fields: Vec<Vec<u8>> = h.iter().map(|(k, _)| k.to_vec()).collect();
                        assert_eq!(fields, order);
                    }
                }
            }
        }
    }

    #[test]
    fn converts_like_redis() {
        let l = limits(3, 5);
        let mut h = Hash::default();
        h.insert(b"a", b"1", &l);
        h.insert(b"b", b"2", &l);
        h.insert(b"c", b"3", &l);
        assert_eq!(h.encoding(), "listpack");
        h.insert(b"d", b"4", &l);
        assert_eq!(h.encoding(), "hashtable");
        h.remove(b"d");
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::default();
        h.insert(b"a", b"123456", &l);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::default();
        h.fit([1, 6].into_iter(), &l);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn table_scan_sees_everything_while_growing_and_shrinking() {
        let mut t: Table<Box<[u8]>> = Table::default();
        for i in 0..5000 {
            t.insert_unique(format!("k{i}").into_bytes().into_boxed_slice());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut extra = 0;
        let mut removed = 0;
        loop {
            cursor = t.scan(cursor, 7, |e| {
                assert!(seen.insert(e.to_vec()), "duplicate");
            });
            for _ in 0..30 {
                t.insert_unique(format!("x{extra}").into_bytes().into_boxed_slice());
                extra += 1;
            }
            // Remove some of the added ones so parts also merge.
            if extra > 3000 && removed < extra - 1000 {
                for _ in 0..60 {
                    if removed < extra {
                        t.remove(format!("x{removed}").as_bytes());
                        removed += 1;
                    }
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..5000 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "missing k{i}");
        }
    }

    #[test]
    fn table_random_is_roughly_uniform() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut t: Table<Box<[u8]>> = Table::default();
        for i in 0..100 {
            t.insert_unique(vec![i as u8].into_boxed_slice());
        }
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            if let Some(e) = t.random(&mut rng) {
                counts[e[0] as usize] += 1;
            }
        }
        assert!(counts.iter().all(|&c| c > 600 && c < 1400), "{counts:?}");
        let mut t: Table<Box<[u8]>> = Table::default();
        assert!(t.random(&mut rng).is_none());
        t.insert_unique(Box::from(&b"x"[..]));
        assert_eq!(t.random(&mut rng).map(|e| e.to_vec()), Some(b"x".to_vec()));
        assert_eq!(t.drain().count(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn pair_round_trips() {
        let p = Pair::new(b"field", b"");
        assert_eq!(p.field(), b"field");
        assert_eq!(p.value(), b"");
        let p = Pair::new(b"", b"value");
        assert_eq!(p.field(), b"");
        assert_eq!(p.value(), b"value");
    }
}
