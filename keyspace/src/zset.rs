//! [`ZSet`]: the sorted-set value, in Redis 7.0's two representations.
//!
//! - **listpack**: one [`Pack`] of alternating member/score entries sorted by
//!   (score, member), while the set stays within `zset-max-listpack-entries`
//!   and `zset-max-listpack-value`. A score is stored as its decimal integer
//!   text when it is integral and below 2^52 in magnitude (as Redis's
//!   `d2string` does, which also folds `-0` into `0`), otherwise as a marker
//!   byte and the 8 raw bytes of the double.
//! - **skiplist**: an arena of nodes that is at once an order-statistic treap
//!   keyed by (score, member), with subtree sizes so ranks and selection by
//!   rank are O(log n), and a chained hash index by member (the chains live in
//!   the nodes), whose buckets give ZSCAN Redis's reverse-binary cursor: a
//!   member present for the whole iteration is returned even if the table
//!   grows or shrinks between calls.
//!
//! Like Redis, a set moves from listpack to skiplist when it outgrows the
//! thresholds and never moves back by itself; sets built whole (store
//! commands, [`ZSet::from_sorted`]) pick the encoding their content fits.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use crate::{EncodingLimits, Pack};

const NIL: u32 = u32::MAX;

/// The marker that starts a raw 8-byte score in the listpack encoding.
const RAW_SCORE: u8 = 0xff;

/// A one-byte score entry with this bit set is the integer in its other
/// seven bits.
const SMALL_INT: u8 = 0x80;

/// Largest decimal exponent of the scaled form (10^e stays exact in an
/// f64 up to 22; 17 covers every shortest decimal of 17 significant
/// digits).
const MAX_EXP: u8 = 17;

/// Encodes a score for the listpack representation into `buf`, returning
/// the used prefix: the shortest of
/// - `[0x80 | v]`: an integer 0..=127, one byte (Redis's listpack keeps
///   these in one byte too);
/// - `[e, m…]`: `m / 10^e`, `m` little-endian two's complement in as few
///   bytes as hold it, `e` the digits after the point of the score's
///   shortest decimal (`148.5` is `[1, 0xcd, 0x05]`, three bytes where the
///   text takes five); `e = 0` for integers, which (as Redis's d2string)
///   covers -0 as 0;
/// - `[0xff, f64 LE]` for the rest (infinities, very long decimals).
///
/// Decoding divides two exact values, so it rounds to the same f64 the
/// shortest decimal parses to: every score reads back bit for bit.
fn enc_score(s: f64, buf: &mut [u8; 24]) -> usize {
    if let Some((m, e)) = scaled(s) {
        if e == 0 && (0..128).contains(&m) {
            buf[0] = SMALL_INT | m as u8;
            return 1;
        }
        let bytes = m.to_le_bytes();
        // Fewest bytes whose sign extension gives `m` back.
        let n = (1..=8)
            .find(|&n| (m << (64 - 8 * n)) >> (64 - 8 * n) == m)
            .unwrap_or(8);
        buf[0] = e;
        buf[1..=n].copy_from_slice(&bytes[..n]);
        return n + 1;
    }
    buf[0] = RAW_SCORE;
    buf[1..9].copy_from_slice(&s.to_le_bytes());
    9
}

/// `s` as `m / 10^e` from its shortest decimal, when `m` is exact in an
/// f64 and `e <= MAX_EXP`.
fn scaled(s: f64) -> Option<(i64, u8)> {
    if !s.is_finite() {
        return None;
    }
    if s > -4503599627370496.0 && s < 4503599627370496.0 && s == (s as i64) as f64 {
        return Some((s as i64, 0));
    }
    // Rust prints the shortest round-trip decimal, without an exponent.
    let mut text = [0u8; 24];
    let mut w = &mut text[..];
    std::io::Write::write_fmt(&mut w, format_args!("{s}")).ok()?;
    let len = 24 - w.len();
    let t = &text[..len];
    let (neg, t) = match t.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, t),
    };
    let dot = t.iter().position(|&c| c == b'.')?;
    let e = t.len() - dot - 1;
    if e > MAX_EXP as usize {
        return None;
    }
    let mut m: i64 = 0;
    for &c in t.iter().filter(|&&c| c != b'.') {
        m = m.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    if m >= 1 << 53 {
        return None;
    }
    Some((if neg { -m } else { m }, e as u8))
}

/// Decodes a score written by [`enc_score`].
fn dec_score(b: &[u8]) -> f64 {
    match b {
        [v] => (v & !SMALL_INT) as f64,
        [RAW_SCORE, raw @ ..] if raw.len() == 8 => {
            let mut r = [0u8; 8];
            r.copy_from_slice(raw);
            f64::from_le_bytes(r)
        }
        [e, m @ ..] if !m.is_empty() && m.len() <= 8 => {
            let mut bytes = [0u8; 8];
            bytes[..m.len()].copy_from_slice(m);
            let shift = 64 - 8 * m.len() as u32;
            let m = (i64::from_le_bytes(bytes) << shift) >> shift;
            if *e == 0 {
                m as f64
            } else {
                m as f64 / POW10[(*e).min(MAX_EXP) as usize]
            }
        }
        _ => 0.0,
    }
}

/// 10^0 ..= 10^17, all exact in an f64.
const POW10: [f64; MAX_EXP as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17,
];

/// Compares (score, member) keys as Redis's skiplist orders them.
fn key_cmp(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

/// A score interval (`ZRANGEBYSCORE` min/max, `(` for exclusive).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    /// Lower bound.
    pub min: f64,
    /// Whether the lower bound is excluded.
    pub minex: bool,
    /// Upper bound.
    pub max: f64,
    /// Whether the upper bound is excluded.
    pub maxex: bool,
}

impl ScoreRange {
    /// Whether `s` is at or above the lower bound.
    pub fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    /// Whether `s` is at or below the upper bound.
    pub fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }

    /// Whether no score can be inside (Redis's early-out in
    /// `zslIsInRange`).
    pub fn is_void(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lexicographic range (`-`, `+`, `[a`, `(a`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every string.
    Min,
    /// `+`: above every string.
    Max,
    /// `[x`
    Incl(Vec<u8>),
    /// `(x`
    Excl(Vec<u8>),
}

impl LexBound {
    fn excl(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }

    /// Redis's `sdscmplex` between two bounds.
    fn cmp_bound(&self, o: &LexBound) -> Ordering {
        use LexBound::*;
        match (self, o) {
            (Min, Min) | (Max, Max) => Ordering::Equal,
            (Min, _) | (_, Max) => Ordering::Less,
            (Max, _) | (_, Min) => Ordering::Greater,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => a.cmp(b),
        }
    }
}

/// A lexicographic interval (`ZRANGEBYLEX` min/max).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    /// Lower bound.
    pub min: LexBound,
    /// Upper bound.
    pub max: LexBound,
}

impl LexRange {
    /// Whether `m` is at or above the lower bound.
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(b) => m >= &b[..],
            LexBound::Excl(b) => m > &b[..],
        }
    }

    /// Whether `m` is at or below the upper bound.
    pub fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(b) => m <= &b[..],
            LexBound::Excl(b) => m < &b[..],
        }
    }

    /// Whether no string can be inside (Redis's early-out in
    /// `zslIsInLexRange`).
    pub fn is_void(&self) -> bool {
        match self.min.cmp_bound(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.excl() || self.max.excl(),
            Ordering::Less => false,
        }
    }
}

/// A sorted set.
///
/// ```
/// use rampart_keyspace::{zset::ZSet, EncodingLimits};
/// let lim = EncodingLimits::default();
/// let mut z = ZSet::default();
/// z.insert(b"b", 2.0, &lim);
/// z.insert(b"a", 1.0, &lim);
/// assert_eq!(z.rank(b"b"), Some(1));
/// assert_eq!(z.iter().map(|(m, _)| m.to_vec()).collect::<Vec<_>>(), vec![b"a".to_vec(), b"b".to_vec()]);
/// assert_eq!(z.encoding(), "listpack");
/// ```
#[derive(Clone, Debug)]
pub struct ZSet {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Pack(Pack),
    Tree(Box<Tree>),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet {
            repr: Repr::Pack(Pack::default()),
        }
    }
}

impl ZSet {
    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Tree(_) => "skiplist",
        }
    }

    /// The `skiplist` encoding's member index, a chained hash table
    /// (DEBUG HTSTATS-KEY).
    pub fn table_shape(&self) -> Option<crate::TableShape> {
        let Repr::Tree(t) = &self.repr else {
            return None;
        };
        let mut chains = vec![0usize; 2];
        for &head in &t.buckets {
            let mut n = 0;
            let mut i = head;
            while i != NIL {
                n += 1;
                i = t.nodes[i as usize].next;
            }
            if chains.len() <= n {
                chains.resize(n + 1, 0);
            }
            chains[n] += 1;
        }
        Some(crate::TableShape {
            slots: t.buckets.len(),
            elements: t.len,
            chains,
        })
    }

    /// Approximate heap bytes held (MEMORY USAGE, eviction accounting).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.bytes(),
            Repr::Tree(t) => t.heap_size(),
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len() / 2,
            Repr::Tree(t) => t.len,
        }
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty set in the skiplist encoding (what Redis creates when the
    /// thresholds are 0 or the first member is too long).
    pub fn new_skiplist() -> ZSet {
        ZSet {
            repr: Repr::Tree(Box::new(Tree::new(rand::random()))),
        }
    }

    /// Builds a set from pairs already sorted by (score, member) with
    /// distinct members, choosing the encoding the content fits (Redis's
    /// `zsetConvertToListpackIfNeeded` for store commands). Persistence
    /// uses it too.
    pub fn from_sorted(pairs: Vec<(Vec<u8>, f64)>, limits: &EncodingLimits) -> ZSet {
        let small = pairs.len() <= limits.zset_max_listpack_entries
            && pairs
                .iter()
                .all(|(m, _)| m.len() <= limits.zset_max_listpack_value);
        if small {
            let mut p = Pack::default();
            let mut buf = [0u8; 24];
            for (m, s) in &pairs {
                p.push_back(m);
                let n = enc_score(*s, &mut buf);
                p.push_back(&buf[..n]);
            }
            ZSet {
                repr: Repr::Pack(p),
            }
        } else {
            let mut t = Tree::new(rand::random());
            t.resize(pairs.len().next_power_of_two().max(4));
            for (m, s) in pairs {
                t.insert(m.into_boxed_slice(), s);
            }
            ZSet {
                repr: Repr::Tree(Box::new(t)),
            }
        }
    }

    /// Builds a set from unsorted pairs (later duplicates win), choosing
    /// the encoding the content fits.
    pub fn from_pairs(mut pairs: Vec<(Vec<u8>, f64)>, limits: &EncodingLimits) -> ZSet {
        // Keep the last score of each member, as successive ZADDs would.
        let mut seen = std::collections::HashSet::new();
        let mut dedup = Vec::with_capacity(pairs.len());
        while let Some((m, s)) = pairs.pop() {
            if seen.insert(m.clone()) {
                dedup.push((m, s));
            }
        }
        dedup.sort_by(|a, b| key_cmp(a.1, &a.0, b.1, &b.0));
        ZSet::from_sorted(dedup, limits)
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Pack(p) => pack_find(p, member).map(|(_, s)| s),
            Repr::Tree(t) => t.find(member).map(|i| t.nodes[i as usize].score),
        }
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Pack(p) => pack_find(p, member).map(|(i, _)| i),
            Repr::Tree(t) => t.find(member).map(|i| t.rank_of(i)),
        }
    }

    /// The member at ascending rank `i`.
    pub fn get(&self, i: usize) -> Option<(&[u8], f64)> {
        self.iter_from(i, false).next()
    }

    /// Sets `member`'s score, adding it if absent; converts to the skiplist
    /// encoding first when a new member would exceed `limits` (as Redis's
    /// `zsetAdd`). Returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &EncodingLimits) -> Option<f64> {
        if let Repr::Pack(p) = &mut self.repr {
            if let Some((i, old)) = pack_find(p, member) {
                if old != score {
                    p.remove_range(2 * i, 2 * i + 2);
                    pack_insert(p, member, score);
                }
                return Some(old);
            }
            if p.len() / 2 + 1 > limits.zset_max_listpack_entries
                || member.len() > limits.zset_max_listpack_value
            {
                self.convert_to_tree();
            } else {
                pack_insert(p, member, score);
                return None;
            }
        }
        match &mut self.repr {
            Repr::Tree(t) => match t.find(member) {
                Some(i) => {
                    let old = t.nodes[i as usize].score;
                    if old != score {
                        t.set_score(i, score);
                    }
                    Some(old)
                }
                None => {
                    t.insert(member.into(), score);
                    None
                }
            },
            Repr::Pack(_) => None,
        }
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Pack(p) => {
                let (i, s) = pack_find(p, member)?;
                p.remove_range(2 * i, 2 * i + 2);
                Some(s)
            }
            Repr::Tree(t) => {
                let i = t.find(member)?;
                Some(t.remove(i).1)
            }
        }
    }

    /// Removes the members at ascending ranks `from..to` (clamped);
    /// returns how many were removed.
    pub fn remove_ranks(&mut self, from: usize, to: usize) -> usize {
        let to = to.min(self.len());
        if from >= to {
            return 0;
        }
        match &mut self.repr {
            Repr::Pack(p) => {
                p.remove_range(2 * from, 2 * to);
            }
            Repr::Tree(t) => {
                for _ in from..to {
                    t.remove_rank(from);
                }
            }
        }
        to - from
    }

    /// Removes and returns the lowest (or, with `max`, the highest) member.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = if max { n - 1 } else { 0 };
        match &mut self.repr {
            Repr::Pack(p) => {
                let m = p.get(2 * i)?.to_vec();
                let s = dec_score(p.get(2 * i + 1)?);
                p.remove_range(2 * i, 2 * i + 2);
                Some((m, s))
            }
            Repr::Tree(t) => {
                let (m, s) = t.remove_rank(i);
                Some((m.into_vec(), s))
            }
        }
    }

    /// Members in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// Members from ascending rank `rank` on: upwards, or with `rev`
    /// downwards (towards rank 0).
    pub fn iter_from(&self, rank: usize, rev: bool) -> Iter<'_> {
        let n = self.len();
        if rank >= n {
            return Iter {
                inner: IterInner::Empty,
            };
        }
        match &self.repr {
            Repr::Pack(p) => {
                let mut it = p.iter();
                if rev {
                    for _ in 0..2 * (n - 1 - rank) {
                        it.next_back();
                    }
                } else {
                    for _ in 0..2 * rank {
                        it.next();
                    }
                }
                Iter {
                    inner: IterInner::Pack(it, rev),
                }
            }
            Repr::Tree(t) => Iter {
                inner: IterInner::Tree(t.iter_from(rank, rev)),
            },
        }
    }

    /// Number of members below the range's lower bound: the ascending
    /// rank of the first member in range, if any.
    pub fn score_start(&self, r: &ScoreRange) -> usize {
        self.count_prefix(|_, s| !r.gte_min(s))
    }

    /// Number of members at or below the range's upper bound: one past the
    /// ascending rank of the last member in range, if any.
    pub fn score_end(&self, r: &ScoreRange) -> usize {
        self.count_prefix(|_, s| r.lte_max(s))
    }

    /// Ranks `start..end` of the members inside `r` (empty when none).
    pub fn score_span(&self, r: &ScoreRange) -> (usize, usize) {
        if r.is_void() {
            return (0, 0);
        }
        let a = self.score_start(r);
        let b = self.score_end(r);
        (a, b.max(a))
    }

    /// Length of the prefix (in ascending order) where `pred` holds;
    /// `pred` must hold on a prefix only.
    fn count_prefix(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        match &self.repr {
            Repr::Pack(_) => self.iter().take_while(|(m, s)| pred(m, *s)).count(),
            Repr::Tree(t) => t.count_prefix(pred),
        }
    }

    /// Whether the first/last members admit anything in `r` (Redis's
    /// `zslIsInLexRange` / `zzlIsInLexRange`).
    fn lex_admits(&self, r: &LexRange) -> bool {
        let n = self.len();
        if n == 0 || r.is_void() {
            return false;
        }
        let last = self.get(n - 1).map(|(m, _)| r.gte_min(m));
        let first = self.get(0).map(|(m, _)| r.lte_max(m));
        last == Some(true) && first == Some(true)
    }

    /// Ascending rank of the first member in `r`, searched as Redis does
    /// (the first member at or above min, if it is at or below max), which
    /// also fixes the answer when scores differ.
    pub fn lex_first(&self, r: &LexRange) -> Option<usize> {
        if !self.lex_admits(r) {
            return None;
        }
        let k = match &self.repr {
            Repr::Pack(_) => self.iter().position(|(m, _)| r.gte_min(m))?,
            Repr::Tree(t) => t.count_prefix(|m, _| !r.gte_min(m)),
        };
        let (m, _) = self.get(k)?;
        r.lte_max(m).then_some(k)
    }

    /// Ascending rank of the last member in `r`, searched from the end.
    pub fn lex_last(&self, r: &LexRange) -> Option<usize> {
        if !self.lex_admits(r) {
            return None;
        }
        let n = self.len();
        let k = match &self.repr {
            Repr::Pack(_) => {
                n - 1
                    - self
                        .iter_from(n - 1, true)
                        .position(|(m, _)| r.lte_max(m))?
            }
            Repr::Tree(t) => t.count_prefix(|m, _| r.lte_max(m)).checked_sub(1)?,
        };
        let (m, _) = self.get(k)?;
        r.gte_min(m).then_some(k)
    }

    /// Number of members in `r`: ZLEXCOUNT (a walk in the listpack, a rank
    /// difference in the skiplist, as Redis).
    pub fn lex_count(&self, r: &LexRange) -> usize {
        let Some(first) = self.lex_first(r) else {
            return 0;
        };
        match &self.repr {
            Repr::Pack(_) => self
                .iter_from(first, false)
                .take_while(|(m, _)| r.lte_max(m))
                .count(),
            Repr::Tree(_) => match self.lex_last(r) {
                Some(last) if last >= first => last - first + 1,
                _ => 0,
            },
        }
    }

    /// One ZSCAN step over the skiplist encoding: calls `f` on every member
    /// of the bucket at `cursor` and returns the next cursor (0 at the end).
    /// The listpack encoding is returned whole with cursor 0.
    pub fn scan_step<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], f64)) -> u64 {
        match &self.repr {
            Repr::Pack(_) => {
                for (m, s) in self.iter() {
                    f(m, s);
                }
                0
            }
            Repr::Tree(t) => t.scan_step(cursor, f),
        }
    }

    /// Moves to the skiplist encoding if not there already, as Redis's
    /// SORT does to every sorted set it reads.
    ///
    /// ```
    /// use rampart_keyspace::zset::ZSet;
    /// let mut z = ZSet::default();
    /// assert_eq!(z.encoding(), "listpack");
    /// z.to_skiplist();
    /// assert_eq!(z.encoding(), "skiplist");
    /// ```
    pub fn to_skiplist(&mut self) {
        self.convert_to_tree();
    }

    fn convert_to_tree(&mut self) {
        if let Repr::Pack(p) = &self.repr {
            let mut t = Tree::new(rand::random());
            t.resize((p.len() / 2 + 1).next_power_of_two().max(4));
            let mut it = p.iter();
            while let (Some(m), Some(s)) = (it.next(), it.next()) {
                t.insert(m.into(), dec_score(s));
            }
            self.repr = Repr::Tree(Box::new(t));
        }
    }
}

/// Finds `member` in a listpack-encoded set: (pair index, score).
fn pack_find(p: &Pack, member: &[u8]) -> Option<(usize, f64)> {
    let mut it = p.iter();
    let mut i = 0;
    while let Some(m) = it.next() {
        let s = it.next()?;
        if m == member {
            return Some((i, dec_score(s)));
        }
        i += 1;
    }
    None
}

/// Inserts a new member at its sorted place.
fn pack_insert(p: &mut Pack, member: &[u8], score: f64) {
    let mut it = p.iter();
    let mut i = 0;
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        if key_cmp(dec_score(s), m, score, member) == Ordering::Greater {
            break;
        }
        i += 1;
    }
    let mut buf = [0u8; 24];
    let n = enc_score(score, &mut buf);
    p.insert(2 * i, member);
    p.insert(2 * i + 1, &buf[..n]);
}

/// Iterator over (member, score) pairs of a [`ZSet`].
pub struct Iter<'a> {
    inner: IterInner<'a>,
}

enum IterInner<'a> {
    Empty,
    Pack(crate::pack::Iter<'a>, bool),
    Tree(TreeIter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterInner::Empty => None,
            IterInner::Pack(it, false) => {
                let m = it.next()?;
                let s = it.next()?;
                Some((m, dec_score(s)))
            }
            IterInner::Pack(it, true) => {
                let s = it.next_back()?;
                let m = it.next_back()?;
                Some((m, dec_score(s)))
            }
            IterInner::Tree(t) => t.next(),
        }
    }
}

/// One member of the skiplist encoding: a treap node and a hash-chain link.
#[derive(Clone, Debug)]
struct Node {
    score: f64,
    member: Box<[u8]>,
    left: u32,
    right: u32,
    /// Subtree size (0 for a free slot).
    size: u32,
    /// Low 32 bits of the member's hash: the bucket.
    hash: u32,
    /// High 32 bits: the treap priority.
    prio: u32,
    /// Next node in the bucket chain, or in the free list.
    next: u32,
}

/// The skiplist encoding: an order-statistic treap over an arena, plus a
/// chained hash index over the same nodes.
#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
    free_head: u32,
    free_count: usize,
    root: u32,
    buckets: Vec<u32>,
    len: usize,
    seed: u64,
}

impl Tree {
    fn new(seed: u64) -> Tree {
        Tree {
            nodes: Vec::new(),
            free_head: NIL,
            free_count: 0,
            root: NIL,
            buckets: vec![NIL; 4],
            len: 0,
            seed,
        }
    }

    fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.buckets.capacity() * 4
            + self
                .nodes
                .iter()
                .filter(|n| n.size > 0)
                .map(|n| n.member.len())
                .sum::<usize>()
    }

    fn hash(&self, m: &[u8]) -> u64 {
        foldhash::fast::FixedState::with_seed(self.seed).hash_one(m)
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    fn size(&self, t: u32) -> u32 {
        if t == NIL {
            0
        } else {
            self.nodes[t as usize].size
        }
    }

    fn upd(&mut self, t: u32) {
        let n = &self.nodes[t as usize];
        let s = 1 + self.size(n.left) + self.size(n.right);
        self.nodes[t as usize].size = s;
    }

    fn cmp_node(&self, t: u32, s: f64, m: &[u8]) -> Ordering {
        let n = &self.nodes[t as usize];
        key_cmp(n.score, &n.member, s, m)
    }

    fn find(&self, m: &[u8]) -> Option<u32> {
        let h = self.hash(m) as u32;
        let mut i = self.buckets[h as usize & self.mask()];
        while i != NIL {
            let n = &self.nodes[i as usize];
            if n.hash == h && &*n.member == m {
                return Some(i);
            }
            i = n.next;
        }
        None
    }

    /// Rebuilds the bucket array with `size` buckets (a power of two).
    fn resize(&mut self, size: usize) {
        let mut b = vec![NIL; size];
        let mask = size - 1;
        for old in std::mem::take(&mut self.buckets) {
            let mut i = old;
            while i != NIL {
                let n = &mut self.nodes[i as usize];
                let next = n.next;
                let slot = n.hash as usize & mask;
                n.next = b[slot];
                b[slot] = i;
                i = next;
            }
        }
        self.buckets = b;
    }

    fn insert(&mut self, member: Box<[u8]>, score: f64) {
        let h = self.hash(&member);
        let node = Node {
            score,
            member,
            left: NIL,
            right: NIL,
            size: 1,
            hash: h as u32,
            prio: (h >> 32) as u32,
            next: NIL,
        };
        let idx = if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.nodes[i as usize].next;
            self.free_count -= 1;
            self.nodes[i as usize] = node;
            i
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        self.len += 1;
        if self.len > self.buckets.len() {
            self.resize(self.buckets.len() * 2);
        }
        let slot = h as u32 as usize & self.mask();
        self.nodes[idx as usize].next = self.buckets[slot];
        self.buckets[slot] = idx;
        self.tree_link(idx);
    }

    /// Puts node `idx` (detached, size 1) into the treap.
    fn tree_link(&mut self, idx: u32) {
        let s = self.nodes[idx as usize].score;
        let m = std::mem::take(&mut self.nodes[idx as usize].member);
        let (a, b) = self.split(self.root, s, &m);
        self.nodes[idx as usize].member = m;
        let l = self.merge(a, idx);
        self.root = self.merge(l, b);
    }

    /// Splits `t` into (< key, >= key).
    fn split(&mut self, t: u32, s: f64, m: &[u8]) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.cmp_node(t, s, m) == Ordering::Less {
            let (a, b) = self.split(self.nodes[t as usize].right, s, m);
            self.nodes[t as usize].right = a;
            self.upd(t);
            (t, b)
        } else {
            let (a, b) = self.split(self.nodes[t as usize].left, s, m);
            self.nodes[t as usize].left = b;
            self.upd(t);
            (a, t)
        }
    }

    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio >= self.nodes[b as usize].prio {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.upd(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.upd(b);
            b
        }
    }

    /// Removes node `idx` from the treap (it stays in its hash chain).
    fn tree_unlink(&mut self, idx: u32) {
        let k = self.rank_of(idx);
        self.root = self.erase_at(self.root, k);
        let n = &mut self.nodes[idx as usize];
        n.left = NIL;
        n.right = NIL;
        n.size = 1;
    }

    /// Removes the node at rank `k` of subtree `t`; returns the new root.
    fn erase_at(&mut self, t: u32, k: usize) -> u32 {
        if t == NIL {
            return NIL;
        }
        let (l, r) = (self.nodes[t as usize].left, self.nodes[t as usize].right);
        let ls = self.size(l) as usize;
        match k.cmp(&ls) {
            Ordering::Equal => self.merge(l, r),
            Ordering::Less => {
                let nl = self.erase_at(l, k);
                self.nodes[t as usize].left = nl;
                self.upd(t);
                t
            }
            Ordering::Greater => {
                let nr = self.erase_at(r, k - ls - 1);
                self.nodes[t as usize].right = nr;
                self.upd(t);
                t
            }
        }
    }

    /// Changes the score of node `idx`.
    fn set_score(&mut self, idx: u32, score: f64) {
        self.tree_unlink(idx);
        self.nodes[idx as usize].score = score;
        self.tree_link(idx);
    }

    /// Removes node `idx` entirely, returning its member and score.
    fn remove(&mut self, idx: u32) -> (Box<[u8]>, f64) {
        let k = self.rank_of(idx);
        self.remove_at(idx, k)
    }

    /// Removes the node at ascending rank `k` (pops and rank ranges know
    /// the rank already, which spares a descent comparing members).
    fn remove_rank(&mut self, k: usize) -> (Box<[u8]>, f64) {
        let idx = self.select(k);
        self.remove_at(idx, k)
    }

    /// Removes node `idx`, whose rank is `k`.
    fn remove_at(&mut self, idx: u32, k: usize) -> (Box<[u8]>, f64) {
        self.root = self.erase_at(self.root, k);
        let h = self.nodes[idx as usize].hash;
        let slot = h as usize & self.mask();
        // Unlink from the bucket chain.
        let mut prev = NIL;
        let mut i = self.buckets[slot];
        while i != NIL && i != idx {
            prev = i;
            i = self.nodes[i as usize].next;
        }
        let next = self.nodes[idx as usize].next;
        if prev == NIL {
            self.buckets[slot] = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        let n = &mut self.nodes[idx as usize];
        let member = std::mem::take(&mut n.member);
        let score = n.score;
        n.size = 0;
        n.left = NIL;
        n.right = NIL;
        n.next = self.free_head;
        self.free_head = idx;
        self.free_count += 1;
        self.len -= 1;
        if self.buckets.len() > 16 && self.len * 8 < self.buckets.len() {
            self.resize(self.buckets.len() / 2);
        }
        if self.nodes.len() > 64 && self.free_count > self.len {
            self.compact();
        }
        (member, score)
    }

    /// Packs the live nodes to the front of the arena, renumbering the
    /// links in one O(n) pass (no rehashing, no comparisons), then returns
    /// the spare capacity. The tree shape and buckets are unchanged, so
    /// ZSCAN cursors stay valid.
    fn compact(&mut self) {
        let map = |m: &[u32], i: u32| if i == NIL { NIL } else { m[i as usize] };
        let mut remap = vec![NIL; self.nodes.len()];
        let mut next = 0u32;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.size > 0 {
                remap[i] = next;
                next += 1;
            }
        }
        let old = std::mem::take(&mut self.nodes);
        let mut nodes = Vec::with_capacity(self.len);
        for mut n in old {
            if n.size == 0 {
                continue;
            }
            n.left = map(&remap, n.left);
            n.right = map(&remap, n.right);
            n.next = map(&remap, n.next);
            nodes.push(n);
        }
        self.nodes = nodes;
        for b in self.buckets.iter_mut() {
            *b = map(&remap, *b);
        }
        self.root = map(&remap, self.root);
        self.free_head = NIL;
        self.free_count = 0;
    }

    fn rank_of(&self, idx: u32) -> usize {
        let n = &self.nodes[idx as usize];
        let (s, m) = (n.score, &n.member);
        let mut r = 0usize;
        let mut t = self.root;
        while t != NIL {
            match self.cmp_node(t, s, m) {
                Ordering::Less => {
                    r += self.size(self.nodes[t as usize].left) as usize + 1;
                    t = self.nodes[t as usize].right;
                }
                Ordering::Greater => t = self.nodes[t as usize].left,
                Ordering::Equal => return r + self.size(self.nodes[t as usize].left) as usize,
            }
        }
        r
    }

    /// The node at ascending rank `k` (< len).
    fn select(&self, mut k: usize) -> u32 {
        let mut t = self.root;
        while t != NIL {
            let ls = self.size(self.nodes[t as usize].left) as usize;
            match k.cmp(&ls) {
                Ordering::Less => t = self.nodes[t as usize].left,
                Ordering::Equal => return t,
                Ordering::Greater => {
                    k -= ls + 1;
                    t = self.nodes[t as usize].right;
                }
            }
        }
        NIL
    }

    fn count_prefix(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        let mut r = 0usize;
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            if pred(&n.member, n.score) {
                r += self.size(n.left) as usize + 1;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        r
    }

    fn iter_from(&self, mut k: usize, rev: bool) -> TreeIter<'_> {
        let mut stack = Vec::new();
        let mut t = self.root;
        while t != NIL {
            let ls = self.size(self.nodes[t as usize].left) as usize;
            match k.cmp(&ls) {
                Ordering::Less => {
                    if !rev {
                        stack.push(t);
                    }
                    t = self.nodes[t as usize].left;
                }
                Ordering::Equal => {
                    stack.push(t);
                    break;
                }
                Ordering::Greater => {
                    if rev {
                        stack.push(t);
                    }
                    k -= ls + 1;
                    t = self.nodes[t as usize].right;
                }
            }
        }
        TreeIter {
            tree: self,
            stack,
            rev,
        }
    }

    fn scan_step<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], f64)) -> u64 {
        let m0 = self.mask() as u64;
        let mut i = self.buckets[(cursor & m0) as usize];
        while i != NIL {
            let n = &self.nodes[i as usize];
            f(&n.member, n.score);
            i = n.next;
        }
        // Redis's reverse-binary increment over the masked bits.
        let mut v = cursor | !m0;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }
}

/// In-order walk of a [`Tree`] from a given rank.
struct TreeIter<'a> {
    tree: &'a Tree,
    stack: Vec<u32>,
    rev: bool,
}

impl<'a> TreeIter<'a> {
    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        let t = self.stack.pop()?;
        let nodes = &self.tree.nodes;
        let n = &nodes[t as usize];
        let mut c = if self.rev { n.left } else { n.right };
        while c != NIL {
            self.stack.push(c);
            let cn = &nodes[c as usize];
            c = if self.rev { cn.right } else { cn.left };
        }
        Some((&n.member, n.score))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scores_round_trip_through_the_compact_encoding() {
        let mut buf = [0u8; 24];
        let values = [
            1.5,
            -2.25,
            0.1,
            1e-7,
            123456.789,
            3.0e300,
            -1e-300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            4503599627370497.0,
            0.30000000000000004,
            7.0,
            -9.0,
        ];
        for v in values {
            let n = super::enc_score(v, &mut buf);
            assert!(n <= 9, "{v}: {n} bytes");
            assert_eq!(super::dec_score(&buf[..n]).to_bits(), v.to_bits(), "{v}");
        }
        // Random bit patterns and random short decimals read back bit for
        // bit too.
        for i in 0..200_000u64 {
            let v = if i % 2 == 0 {
                f64::from_bits(rand::random::<u64>())
            } else {
                (rand::random::<i32>() as f64) / 10f64.powi((i % 19) as i32)
            };
            let n = super::enc_score(v, &mut buf);
            let back = super::dec_score(&buf[..n]);
            assert!(
                back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()) || v == 0.0,
                "{v}"
            );
        }
        // 1.5 is [1, 15]; 148.5 is [1, 1485 as two bytes].
        assert_eq!(super::enc_score(1.5, &mut buf), 2);
        assert_eq!(super::enc_score(148.5, &mut buf), 3);
        assert_eq!(super::enc_score(96.0, &mut buf), 1);
        assert_eq!(super::enc_score(1_700_000_000.0, &mut buf), 5);
    }

    use super::*;
    use std::collections::{BTreeSet, HashMap};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// The model: a map and an ordered set of (score bits order, member).
    #[derive(Default)]
    struct Model {
        by_member: HashMap<Vec<u8>, f64>,
        order: BTreeSet<(OrdF, Vec<u8>)>,
    }

    #[derive(Clone, Copy)]
    struct OrdF(f64);
    impl PartialEq for OrdF {
        fn eq(&self, o: &Self) -> bool {
            self.cmp(o) == Ordering::Equal
        }
    }
    impl PartialOrd for OrdF {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Eq for OrdF {}
    impl Ord for OrdF {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.partial_cmp(&o.0).unwrap_or(Ordering::Equal)
        }
    }

    impl Model {
        fn insert(&mut self, m: &[u8], s: f64) {
            if let Some(old) = self.by_member.insert(m.to_vec(), s) {
                self.order.remove(&(OrdF(old), m.to_vec()));
            }
            self.order.insert((OrdF(s), m.to_vec()));
        }
        fn remove(&mut self, m: &[u8]) -> Option<f64> {
            let s = self.by_member.remove(m)?;
            self.order.remove(&(OrdF(s), m.to_vec()));
            Some(s)
        }
        fn list(&self) -> Vec<(Vec<u8>, f64)> {
            self.order.iter().map(|(s, m)| (m.clone(), s.0)).collect()
        }
    }

    fn norm(s: f64) -> f64 {
        // The listpack folds -0 into 0; compare values, not bits.
        if s == 0.0 {
            0.0
        } else {
            s
        }
    }

    fn list(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        z.iter().map(|(m, s)| (m.to_vec(), norm(s))).collect()
    }

    fn check(z: &ZSet, model: &Model, rng: &mut Rng) {
        let want: Vec<(Vec<u8>, f64)> = model
            .list()
            .into_iter()
            .map(|(m, s)| (m, norm(s)))
            .collect();
        assert_eq!(z.len(), want.len());
        assert_eq!(list(z), want);
        let mut rev: Vec<_> = z
            .iter_from(want.len().saturating_sub(1), true)
            .map(|(m, s)| (m.to_vec(), norm(s)))
            .collect();
        rev.reverse();
        assert_eq!(rev, want);
        for (i, (m, s)) in want.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.score(m).map(norm), Some(*s));
        }
        if !want.is_empty() {
            let k = rng.below(want.len() as u64) as usize;
            let got: Vec<_> = z.iter_from(k, false).map(|(m, _)| m.to_vec()).collect();
            let exp: Vec<_> = want[k..].iter().map(|(m, _)| m.clone()).collect();
            assert_eq!(got, exp);
        }
        // Score ranges.
        for _ in 0..4 {
            let r = ScoreRange {
                min: (rng.below(40) as f64) - 20.0,
                minex: rng.below(2) == 0,
                max: (rng.below(40) as f64) - 20.0,
                maxex: rng.below(2) == 0,
            };
            let exp = want
                .iter()
                .filter(|(_, s)| r.gte_min(*s) && r.lte_max(*s))
                .count();
            let (a, b) = z.score_span(&r);
            assert_eq!(b - a, exp, "{r:?}");
            if exp > 0 {
                assert!(r.gte_min(want[a].1) && r.lte_max(want[b - 1].1));
            }
        }
    }

    fn member(rng: &mut Rng, long: bool) -> Vec<u8> {
        let n = rng.below(60);
        let mut m = format!("m{n}").into_bytes();
        if long && rng.below(20) == 0 {
            m.extend(std::iter::repeat_n(b'x', 70));
        }
        m
    }

    #[test]
    fn behaves_like_the_model() {
        for (seed, limits) in [
            (7u64, EncodingLimits::default()),
            (
                11,
                EncodingLimits {
                    zset_max_listpack_entries: 16,
                    ..EncodingLimits::default()
                },
            ),
            (
                13,
                EncodingLimits {
                    zset_max_listpack_entries: 0,
                    ..EncodingLimits::default()
                },
            ),
        ] {
            let mut rng = Rng(seed);
            let mut z = ZSet::default();
            let mut model = Model::default();
            for step in 0..3000 {
                match rng.below(10) {
                    0..=4 => {
                        let m = member(&mut rng, seed == 11);
                        let s = match rng.below(6) {
                            0 => rng.below(1000) as f64 / 7.0 - 50.0,
                            1 => -0.0,
                            2 => f64::INFINITY,
                            _ => rng.below(30) as f64 - 15.0,
                        };
                        let old = z.insert(&m, s, &limits).map(norm);
                        assert_eq!(old, model.by_member.get(&m).copied().map(norm));
                        model.insert(&m, s);
                    }
                    5 | 6 => {
                        let m = member(&mut rng, false);
                        assert_eq!(z.remove(&m).map(norm), model.remove(&m).map(norm));
                    }
                    7 => {
                        let max = rng.below(2) == 0;
                        let want = if max {
                            model.order.iter().next_back().cloned()
                        } else {
                            model.order.iter().next().cloned()
                        };
                        let got = z.pop(max);
                        assert_eq!(
                            got.as_ref().map(|g| g.0.clone()),
                            want.as_ref().map(|w| w.1.clone())
                        );
                        if let Some((m, _)) = got {
                            model.remove(&m);
                        }
                    }
                    8 => {
                        let n = z.len();
                        let a = rng.below(n as u64 + 1) as usize;
                        let b = a + rng.below(4) as usize;
                        let victims: Vec<Vec<u8>> = model
                            .list()
                            .into_iter()
                            .skip(a)
                            .take(b - a)
                            .map(|(m, _)| m)
                            .collect();
                        assert_eq!(z.remove_ranks(a, b), victims.len());
                        for m in victims {
                            model.remove(&m);
                        }
                    }
                    _ => {
                        if step % 50 == 0 {
                            let pairs = model.list();
                            let big = pairs.len() > limits.zset_max_listpack_entries
                                || pairs
                                    .iter()
                                    .any(|(m, _)| m.len() > limits.zset_max_listpack_value);
                            let copy = ZSet::from_sorted(pairs, &limits);
                            assert_eq!(copy.encoding(), if big { "skiplist" } else { "listpack" });
                            check(&copy, &model, &mut rng);
                        }
                    }
                }
                check(&z, &model, &mut rng);
            }
        }
    }

    #[test]
    fn converts_like_redis() {
        let lim = EncodingLimits::default();
        let mut z = ZSet::default();
        for i in 0..128 {
            z.insert(format!("m{i}").as_bytes(), i as f64, &lim);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"one-more", 1.0, &lim);
        assert_eq!(z.encoding(), "skiplist");
        for i in 0..120 {
            z.remove(format!("m{i}").as_bytes());
        }
        // Never converted back by removals.
        assert_eq!(z.encoding(), "skiplist");
        let mut y = ZSet::default();
        y.insert(&[b'x'; 65], 1.0, &lim);
        assert_eq!(y.encoding(), "skiplist");
    }

    #[test]
    fn scores_round_trip_in_the_listpack() {
        let mut buf = [0u8; 24];
        for s in [
            0.0,
            1.0,
            -17.0,
            0.1,
            1e300,
            -1e-300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            4503599627370495.0,
            4503599627370496.0,
            -4503599627370495.0,
            5e-324,
        ] {
            let n = enc_score(s, &mut buf);
            assert_eq!(dec_score(&buf[..n]).to_bits(), s.to_bits(), "{s}");
        }
        // -0 is stored as 0, as Redis's d2string prints it.
        let n = enc_score(-0.0, &mut buf);
        assert_eq!(dec_score(&buf[..n]).to_bits(), 0.0f64.to_bits());
        let n = enc_score(42.0, &mut buf);
        assert_eq!(&buf[..n], &[0x80 | 42]);
    }

    #[test]
    fn lex_ranges_follow_redis_search() {
        let lim = EncodingLimits::default();
        for big in [false, true] {
            let mut z = if big {
                ZSet::new_skiplist()
            } else {
                ZSet::default()
            };
            for m in ["a", "b", "c", "d", "e"] {
                z.insert(m.as_bytes(), 0.0, &lim);
            }
            let r = |min: LexBound, max: LexBound| LexRange { min, max };
            use LexBound::*;
            let rr = r(Incl(b"b".to_vec()), Excl(b"d".to_vec()));
            assert_eq!(z.lex_first(&rr), Some(1));
            assert_eq!(z.lex_last(&rr), Some(2));
            assert_eq!(z.lex_count(&rr), 2);
            assert_eq!(z.lex_count(&r(Min, Max)), 5);
            assert_eq!(z.lex_count(&r(Max, Min)), 0);
            assert_eq!(z.lex_count(&r(Min, Min)), 0);
            assert_eq!(z.lex_count(&r(Excl(b"e".to_vec()), Max)), 0);
            assert_eq!(z.lex_count(&r(Incl(b"c".to_vec()), Incl(b"c".to_vec()))), 1);
            assert_eq!(z.lex_count(&r(Excl(b"c".to_vec()), Incl(b"c".to_vec()))), 0);
        }
    }

    #[test]
    fn scan_returns_every_member_while_growing() {
        let lim = EncodingLimits::default();
        let mut z = ZSet::default();
        for i in 0..1000 {
            z.insert(format!("k{i}").as_bytes(), i as f64, &lim);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut extra = 0;
        loop {
            for _ in 0..5 {
                cursor = z.scan_step(cursor, |m, _| {
                    seen.insert(m.to_vec());
                });
                if cursor == 0 {
                    break;
                }
            }
            for _ in 0..30 {
                z.insert(format!("x{extra}").as_bytes(), 0.0, &lim);
                extra += 1;
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "missing k{i}");
        }
    }

    #[test]
    fn large_ranks_are_logarithmic_enough() {
        let lim = EncodingLimits::default();
        let mut z = ZSet::default();
        for i in 0..100_000u32 {
            z.insert(format!("m{i}").as_bytes(), (i % 1000) as f64, &lim);
        }
        assert_eq!(z.len(), 100_000);
        let (m, s) = z
            .get(50_000)
            .map(|(m, s)| (m.to_vec(), s))
            .unwrap_or_default();
        assert_eq!(z.rank(&m), Some(50_000));
        assert_eq!(s, 500.0);
        for i in 0..99_000u32 {
            z.remove(format!("m{i}").as_bytes());
        }
        assert_eq!(z.len(), 1000);
        assert_eq!(z.iter().count(), 1000);
        // Compaction ran: links, buckets and ranks all still agree.
        let all: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        for (r, (m, s)) in all.iter().enumerate() {
            assert_eq!(z.rank(m), Some(r));
            assert_eq!(z.score(m), Some(*s));
        }
        assert!(all
            .windows(2)
            .all(|w| key_cmp(w[0].1, &w[0].0, w[1].1, &w[1].0) == Ordering::Less));
        while z.pop(false).is_some() {}
        assert!(z.is_empty());
    }
}
