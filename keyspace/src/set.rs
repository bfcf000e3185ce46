//! The set type, [`Set`], in Redis 7.0's two encodings:
//!
//! - `intset`: every member is an integer (in the canonical form Redis's
//!   `string2ll` accepts) and there are at most `set-max-intset-entries`
//!   of them; kept as a sorted vector, so iteration is in ascending order as
//!   with Redis's intset.
//! - `hashtable`: anything else, a [`Table`] of byte strings in hash order.
//!
//! Redis 7.0 has no listpack sets (they came in 7.2), and a set never
//! converts back from `hashtable`.

use rand::Rng;

use crate::hash::Table;
use crate::value::parse_canonical_i64;
use crate::EncodingLimits;

/// A member as a set hands it out: an integer of the `intset` encoding or
/// the bytes of a `hashtable` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Member<'a> {
    /// An integer member.
    Int(i64),
    /// A byte-string member.
    Bytes(&'a [u8]),
}

impl<'a> Member<'a> {
    /// The member's bytes; integers are formatted into `buf`.
    pub fn bytes<'b>(&self, buf: &'b mut itoa::Buffer) -> &'b [u8]
    where
        'a: 'b,
    {
        match *self {
            Member::Int(i) => buf.format(i).as_bytes(),
            Member::Bytes(b) => b,
        }
    }

    /// The member's bytes, owned.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes(&mut itoa::Buffer::new()).to_vec()
    }
}

#[derive(Clone, Debug)]
enum Repr {
    Ints(Vec<i64>),
    Table(Box<Table<Box<[u8]>>>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Ints(Vec::new())
    }
}

/// A set value.
///
/// ```
/// use rampart_keyspace::{set::Set, EncodingLimits};
/// let limits = EncodingLimits::default();
/// let mut s = Set::default();
/// assert!(s.insert(b"3", &limits));
/// assert!(s.insert(b"1", &limits));
/// assert!(!s.insert(b"1", &limits));
/// assert_eq!(s.encoding(), "intset");
/// let members: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
/// assert_eq!(members, vec![b"1".to_vec(), b"3".to_vec()]);
/// s.insert(b"x", &limits);
/// assert_eq!(s.encoding(), "hashtable");
/// assert!(s.contains(b"3"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Set {
    repr: Repr,
}

impl Set {
    /// An empty set in the `hashtable` encoding (for loading a dump that
    /// recorded that encoding).
    pub fn new_table() -> Set {
        Set {
            repr: Repr::Table(Box::default()),
        }
    }

    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Whether the set is an `intset` (iterated in ascending order).
    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Ints(_))
    }

    /// The `hashtable` encoding's table (DEBUG HTSTATS-KEY).
    pub fn table_shape(&self) -> Option<crate::TableShape> {
        match &self.repr {
            Repr::Ints(_) => None,
            Repr::Table(t) => Some(crate::TableShape::open(t.slots(), t.len())),
        }
    }

    /// Approximate heap bytes held (MEMORY USAGE, eviction accounting).
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Set>()
            + match &self.repr {
                Repr::Ints(v) => v.capacity() * 8,
                Repr::Table(t) => t.heap_size() + t.iter().map(|m| m.len()).sum::<usize>(),
            }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Table(t) => t.len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(v) => {
                parse_canonical_i64(member).is_some_and(|i| v.binary_search(&i).is_ok())
            }
            Repr::Table(t) => t.get(member).is_some(),
        }
    }

    /// Whether `member` (from another set) is in this set.
    pub fn contains_member(&self, member: Member<'_>) -> bool {
        match (&self.repr, member) {
            (Repr::Ints(v), Member::Int(i)) => v.binary_search(&i).is_ok(),
            (_, m) => self.contains(m.bytes(&mut itoa::Buffer::new())),
        }
    }

    /// Converts to the `hashtable` encoding (no-op when already there).
    pub fn convert_to_table(&mut self) {
        if let Repr::Ints(v) = &self.repr {
            let mut t: Table<Box<[u8]>> = Table::default();
            let mut buf = itoa::Buffer::new();
            for &i in v {
                t.insert_unique(Box::from(buf.format(i).as_bytes()));
            }
            self.repr = Repr::Table(Box::new(t));
        }
    }

    /// Adds `member`; true when it is new. An `intset` converts to
    /// `hashtable` on a non-integer member or when it grows past
    /// `set-max-intset-entries`, as Redis's `setTypeAdd` does.
    pub fn insert(&mut self, member: &[u8], limits: &EncodingLimits) -> bool {
        if let Repr::Ints(v) = &mut self.repr {
            match parse_canonical_i64(member) {
                Some(i) => {
                    return match v.binary_search(&i) {
                        Ok(_) => false,
                        Err(pos) => {
                            v.insert(pos, i);
                            if v.len() > limits.set_max_intset_entries {
                                self.convert_to_table();
                            }
                            true
                        }
                    };
                }
                None => self.convert_to_table(),
            }
        }
        match &mut self.repr {
            Repr::Table(t) => {
                if t.get(member).is_some() {
                    false
                } else {
                    t.insert_unique(Box::from(member));
                    true
                }
            }
            Repr::Ints(_) => false,
        }
    }

    /// Adds a member handed out by another set.
    pub fn insert_member(&mut self, member: Member<'_>, limits: &EncodingLimits) -> bool {
        let mut buf = itoa::Buffer::new();
        self.insert(member.bytes(&mut buf), limits)
    }

    /// Removes `member`; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => match parse_canonical_i64(member).map(|i| v.binary_search(&i)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            Repr::Table(t) => t.remove(member).is_some(),
        }
    }

    /// Releases spare capacity of the `intset` (call after a batch of
    /// writes).
    pub fn shrink(&mut self) {
        if let Repr::Ints(v) = &mut self.repr {
            v.shrink_to_fit();
        }
    }

    /// Every member: ascending for an `intset`, hash order otherwise.
    pub fn iter(&self) -> SetIter<'_> {
        match &self.repr {
            Repr::Ints(v) => SetIter::Ints(v.iter()),
            Repr::Table(t) => SetIter::Table(Box::new(t.iter().map(|m| Member::Bytes(m)))),
        }
    }

    /// One SSCAN step: an `intset` returns everything at once with cursor 0
    /// (whatever the cursor), as Redis does; the table returns about
    /// `count` members from `cursor` on and the next cursor.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(Member<'a>)) -> u64 {
        match &self.repr {
            Repr::Ints(v) => {
                for &i in v {
                    f(Member::Int(i));
                }
                0
            }
            Repr::Table(t) => t.scan(cursor, count, |m| f(Member::Bytes(m))),
        }
    }

    /// A random member, `None` when empty.
    pub fn random(&self, rng: &mut impl Rng) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Ints(v) if v.is_empty() => None,
            Repr::Ints(v) => Some(Member::Int(v[rng.random_range(0..v.len())])),
            Repr::Table(t) => t.random(rng).map(|m| Member::Bytes(m)),
        }
    }

    /// Removes and returns a random member.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<Vec<u8>> {
        let m = self.random(rng)?.to_vec();
        self.remove(&m);
        Some(m)
    }

    /// Removes every member and returns them (in iteration order).
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        match &mut self.repr {
            Repr::Ints(v) => {
                let mut buf = itoa::Buffer::new();
                let out = v
                    .iter()
                    .map(|&i| buf.format(i).as_bytes().to_vec())
                    .collect();
                v.clear();
                out
            }
            Repr::Table(t) => t.drain().map(Vec::from).collect(),
        }
    }
}

/// Iterator over a [`Set`]'s members.
pub enum SetIter<'a> {
    #[doc(hidden)]
    Ints(std::slice::Iter<'a, i64>),
    #[doc(hidden)]
    Table(Box<dyn Iterator<Item = Member<'a>> + 'a>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Member<'a>;
    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            SetIter::Ints(it) => it.next().map(|&i| Member::Int(i)),
            SetIter::Table(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};
    use std::collections::BTreeSet;

    fn limits(n: usize) -> EncodingLimits {
        EncodingLimits {
            set_max_intset_entries: n,
            ..EncodingLimits::default()
        }
    }

    #[test]
    fn behaves_like_a_btreeset() {
        let mut rng = StdRng::seed_from_u64(2);
        for (max, strings) in [(512, false), (16, false), (512, true), (0, false)] {
            let l = limits(max);
            let mut s = Set::default();
            let mut m: BTreeSet<Vec<u8>> = BTreeSet::new();
            for step in 0..20_000 {
                let k = if strings && rng.random_range(0..50) == 0 {
                    format!("m{}", rng.random_range(0..50)).into_bytes()
                } else {
                    format!("{}", rng.random_range(-100i64..100)).into_bytes()
                };
                match rng.random_range(0..4) {
                    0 | 1 => assert_eq!(s.insert(&k, &l), m.insert(k.clone())),
                    2 => assert_eq!(s.remove(&k), m.remove(&k)),
                    _ => {
                        if let Some(p) = s.pop_random(&mut rng) {
                            assert!(m.remove(&p));
                        }
                    }
                }
                assert_eq!(s.len(), m.len());
                assert_eq!(s.contains(&k), m.contains(&k));
                if step % 500 == 0 {
                    let got: BTreeSet<Vec<u8>> = s.iter().map(|x| x.to_vec()).collect();
                    assert_eq!(got, m);
                    if s.is_intset() {
                        assert!(s.len() <= max);
                        let ints: Vec<i64> = s
                            .iter()
                            .filter_map(|x| match x {
                                Member::Int(i) => Some(i),
                                _ => None,
                            })
                            .collect();
                        assert!(ints.windows(2).all(|w| w[0] < w[1]));
                    }
                }
            }
        }
    }

    #[test]
    fn only_canonical_integers_stay_intset() {
        let l = EncodingLimits::default();
        for bad in ["01", "-0", "+1", " 1", "9223372036854775808", "1.0", ""] {
            let mut s = Set::default();
            s.insert(bad.as_bytes(), &l);
            assert_eq!(s.encoding(), "hashtable", "{bad}");
            assert!(s.contains(bad.as_bytes()));
        }
        let mut s = Set::default();
        s.insert(b"-9223372036854775808", &l);
        s.insert(b"9223372036854775807", &l);
        assert_eq!(s.encoding(), "intset");
        assert!(!s.contains(b"09223372036854775807"));
        assert!(!s.remove(b"+9223372036854775807"));
        let mut s = Set::default();
        s.insert(b"1", &limits(0));
        assert_eq!(s.encoding(), "hashtable");
    }
}
