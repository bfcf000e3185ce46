//! [`Stream`]: Redis's stream, laid out as Redis lays it out — an ordered
//! map from each node's master id to a listpack of entries in Redis's own
//! byte format (master entry, delta-encoded ids, field names omitted when
//! they repeat the master's) — so memory per entry matches Redis's and a
//! node goes to an RDB file unchanged. Consumer groups, their pending
//! entries lists and consumers sit beside it.
//!
//! The node and trimming algorithms follow `t_stream.c` step by step, so
//! where nodes split (and so what `~` trimming removes) is Redis's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::listpack::{self as lp, Elem};

/// A stream entry id, `ms-seq`.
///
/// ```
/// use rampart_keyspace::stream::StreamId;
/// let id = StreamId { ms: 5, seq: 1 };
/// assert_eq!(id.to_string(), "5-1");
/// assert!(id < StreamId { ms: 5, seq: 2 });
/// assert_eq!(StreamId::MAX.incr(), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest id.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// The next id, `None` past the largest (`streamIncrID`).
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                return None;
            }
            Some(StreamId {
                ms: self.ms + 1,
                seq: 0,
            })
        } else {
            Some(StreamId {
                ms: self.ms,
                seq: self.seq + 1,
            })
        }
    }

    /// The previous id, `None` before `0-0` (`streamDecrID`).
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                return None;
            }
            Some(StreamId {
                ms: self.ms - 1,
                seq: u64::MAX,
            })
        } else {
            Some(StreamId {
                ms: self.ms,
                seq: self.seq - 1,
            })
        }
    }

    /// Whether this is `0-0`.
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// The 16 big-endian bytes Redis keys its radix trees with.
    pub fn encode(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// Reads [`StreamId::encode`]'s form.
    pub fn decode(b: &[u8]) -> Option<StreamId> {
        let ms = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let seq = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
        (b.len() == 16).then_some(StreamId { ms, seq })
    }
}

impl StreamId {
    /// The id as replies show it (`<ms>-<seq>`), written into `buf`
    /// without the formatting machinery or an allocation: XADD replies
    /// with one and XRANGE with one per entry.
    ///
    /// ```
    /// use rampart_keyspace::stream::{IdText, StreamId};
    /// let mut buf = IdText::default();
    /// assert_eq!(StreamId { ms: 1700000000000, seq: 7 }.text(&mut buf), b"1700000000000-7");
    /// ```
    pub fn text<'a>(&self, buf: &'a mut IdText) -> &'a [u8] {
        let mut n = 0;
        for (i, part) in [self.ms, self.seq].into_iter().enumerate() {
            if i == 1 {
                buf.0[n] = b'-';
                n += 1;
            }
            let mut b = itoa::Buffer::new();
            let d = b.format(part).as_bytes();
            buf.0[n..n + d.len()].copy_from_slice(d);
            n += d.len();
        }
        &buf.0[..n]
    }
}

/// Room for a stream id's text: two u64s of up to 20 digits and a dash.
pub struct IdText([u8; 41]);

impl Default for IdText {
    fn default() -> Self {
        IdText([0; 41])
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Entry flag: deleted (a tombstone until its node goes).
pub const FLAG_DELETED: i64 = 1;
/// Entry flag: the entry's fields are the master entry's.
pub const FLAG_SAMEFIELDS: i64 = 2;
/// The largest total of field and value bytes one entry may carry.
pub const MAX_ENTRY_BYTES: usize = 1 << 30;

/// A pending entry: delivered to `consumer`, not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    /// Deliveries so far.
    pub delivery_count: u64,
    /// Who owns it.
    pub consumer: Box<[u8]>,
}

/// A consumer of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Unix ms it was last seen (read, claimed, created).
    pub seen_time: u64,
    /// Its pending ids (the [`Nack`]s live in the group's PEL).
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// The last id delivered to the group.
    pub last_id: StreamId,
    /// Entries read by the group (its logical offset), -1 when unknown.
    pub entries_read: i64,
    /// Pending entries of every consumer.
    pub pel: BTreeMap<StreamId, Nack>,
    /// Consumers by name.
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

impl Group {
    /// A group starting after `last_id`.
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            ..Group::default()
        }
    }

    /// Drops the pending entry `id` from the group and its consumer.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }
}

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    /// No trimming.
    None,
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Drop entries below this id.
    MinId(StreamId),
}

/// Why an append failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The id is not above the stream's last id.
    Order,
    /// The entry's fields and values exceed [`MAX_ENTRY_BYTES`].
    TooLarge,
}

/// A stream.
///
/// ```
/// use rampart_keyspace::stream::{Stream, StreamId, Trim};
/// let mut s = Stream::default();
/// let lim = rampart_keyspace::EncodingLimits::default();
/// for i in 1..=3u64 {
///     s.append(StreamId { ms: i, seq: 0 }, &[&b"f"[..], b"v"], &lim).unwrap();
/// }
/// assert_eq!(s.length, 3);
/// let ids: Vec<_> = s.range(StreamId::MIN, StreamId::MAX, true).map(|e| e.id).collect();
/// assert_eq!(ids[0], StreamId { ms: 3, seq: 0 });
/// assert!(s.delete(StreamId { ms: 2, seq: 0 }));
/// assert_eq!(s.trim(Trim::MaxLen(1), false, 0), 1);
/// assert_eq!(s.first_id, StreamId { ms: 3, seq: 0 });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Vec<u8>>,
    /// Live entries.
    pub length: u64,
    /// The last id ever added (or set by XSETID).
    pub last_id: StreamId,
    /// The first live entry's id (0-0 when empty).
    pub first_id: StreamId,
    /// The largest id ever deleted.
    pub max_deleted_entry_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

/// One entry's place in a node.
#[derive(Clone, Copy, Debug)]
struct Raw {
    id: StreamId,
    flags: i64,
    flags_at: usize,
    numfields: usize,
    /// The first field (or value, with SAMEFIELDS).
    body: usize,
}

/// Offset of the element after `p`, which may be the terminator's.
fn skip(l: &[u8], p: usize) -> usize {
    lp::next(l, p).unwrap_or(l.len() - 1)
}

/// Offsets of a node's master fields and of its first entry.
fn node_head(l: &[u8]) -> (usize, usize, usize) {
    let p = lp::HDR; // count
    let p = skip(l, p); // deleted
    let p = skip(l, p); // num fields
    let n = lp::get(l, p).int().max(0) as usize;
    let fields = skip(l, p);
    let mut q = fields;
    for _ in 0..n {
        q = skip(l, q);
    }
    (n, fields, skip(l, q)) // past the master terminator
}

/// Every entry of a node (tombstones included), in order.
fn node_entries(master: StreamId, l: &[u8]) -> Vec<Raw> {
    let end = l.len() - 1;
    let (mfields, _, mut p) = node_head(l);
    let mut out = Vec::new();
    while p < end {
        let (raw, next) = entry_at(master, l, mfields, p);
        out.push(raw);
        p = next;
    }
    out
}

/// The entry that starts at `p` in node `l`, and where the next one starts.
fn entry_at(master: StreamId, l: &[u8], mfields: usize, p: usize) -> (Raw, usize) {
    // Every seek walks entries one by one (as Redis's iterator), so this
    // decodes each header once and steps over the fields without looking
    // at them.
    let flags_at = p;
    let (flags, p) = lp::int_and_skip(l, p);
    let (ms, p) = lp::int_and_skip(l, p);
    let (seq, p) = lp::int_and_skip(l, p);
    let ms = master.ms.wrapping_add(ms as u64);
    let seq = master.seq.wrapping_add(seq as u64);
    let (numfields, body, items) = if flags & FLAG_SAMEFIELDS != 0 {
        (mfields, p, mfields)
    } else {
        let (n, body) = lp::int_and_skip(l, p);
        let n = n.max(0) as usize;
        (n, body, 2 * n)
    };
    let mut p = body;
    for _ in 0..items {
        p = lp::skip(l, p);
    }
    let p = lp::skip(l, p).min(l.len() - 1); // lp-count
    let raw = Raw {
        id: StreamId { ms, seq },
        flags,
        flags_at,
        numfields,
        body,
    };
    (raw, p)
}

/// How an [`Iter`] walks its current node, entry by entry from where it is
/// (a seek decodes only what it passes, as Redis's iterator): forward from
/// an entry's first element, backward from its closing lp-count, which says
/// how many elements to step back to reach the entry's flags.
enum Walk {
    Fwd {
        master: StreamId,
        mfields: usize,
        p: usize,
    },
    Rev {
        master: StreamId,
        mfields: usize,
        /// Where the node's first entry starts.
        first: usize,
        /// The lp-count of the next entry to yield, `None` once past the
        /// first.
        count_at: Option<usize>,
    },
}

/// Where the entry that closes with the lp-count at `count_at` starts, if
/// it is an entry of the node (at or after `first`). Nodes are checked on
/// the way in ([`Stream::check_node`]), so lp-counts agree with entries.
fn entry_before(l: &[u8], first: usize, count_at: usize) -> Option<usize> {
    let n = lp::get(l, count_at).int();
    let mut p = count_at;
    for _ in 0..n {
        p = lp::prev(l, p)?;
    }
    (n > 0 && p >= first).then_some(p)
}

/// One live entry, borrowed from its node.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// Its id.
    pub id: StreamId,
    lp: &'a [u8],
    raw: Raw,
    master_fields: usize,
}

impl<'a> Entry<'a> {
    /// Number of field-value pairs.
    pub fn len(&self) -> usize {
        self.raw.numfields
    }

    /// Whether it has no fields (never, for entries XADD wrote).
    pub fn is_empty(&self) -> bool {
        self.raw.numfields == 0
    }

    /// The field-value pairs, in order.
    pub fn fields(&self) -> impl Iterator<Item = (Elem<'a>, Elem<'a>)> + 'a {
        let l = self.lp;
        let same = self.raw.flags & FLAG_SAMEFIELDS != 0;
        let (mut f, mut v) = if same {
            (self.master_fields, self.raw.body)
        } else {
            (self.raw.body, skip(l, self.raw.body))
        };
        (0..self.raw.numfields).map(move |_| {
            let pair = (lp::get(l, f), lp::get(l, v));
            if same {
                f = skip(l, f);
                v = skip(l, v);
            } else {
                f = skip(l, v);
                v = skip(l, f);
            }
            pair
        })
    }
}

/// Entries between two ids, either way (`streamIterator`).
pub struct Iter<'a> {
    nodes: Box<dyn Iterator<Item = (&'a StreamId, &'a Vec<u8>)> + 'a>,
    cur: Option<(&'a [u8], usize, Walk)>,
    start: StreamId,
    end: StreamId,
    rev: bool,
    tombstones: bool,
    done: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        loop {
            if self.done {
                return None;
            }
            if let Some((l, mf, walk)) = &mut self.cur {
                let (l, mf) = (*l, *mf);
                loop {
                    let raw = match walk {
                        Walk::Fwd { master, mfields, p } => {
                            if *p >= l.len() - 1 {
                                None
                            } else {
                                let (raw, next) = entry_at(*master, l, *mfields, *p);
                                *p = next;
                                Some(raw)
                            }
                        }
                        Walk::Rev {
                            master,
                            mfields,
                            first,
                            count_at,
                        } => match count_at.and_then(|c| entry_before(l, *first, c)) {
                            Some(at) => {
                                let (raw, _) = entry_at(*master, l, *mfields, at);
                                *count_at = (at > *first).then(|| lp::prev(l, at)).flatten();
                                Some(raw)
                            }
                            None => None,
                        },
                    };
                    let Some(raw) = raw else {
                        break;
                    };
                    if !self.tombstones && raw.flags & FLAG_DELETED != 0 {
                        continue;
                    }
                    let inside = if self.rev {
                        raw.id <= self.end
                    } else {
                        raw.id >= self.start
                    };
                    if !inside {
                        continue;
                    }
                    let out = if self.rev {
                        raw.id < self.start
                    } else {
                        raw.id > self.end
                    };
                    if out {
                        self.done = true;
                        return None;
                    }
                    return Some(Entry {
                        id: raw.id,
                        lp: l,
                        raw,
                        master_fields: mf,
                    });
                }
            }
            let (master, l) = self.nodes.next()?;
            let (mfields, mf, first) = node_head(l);
            let walk = if self.rev {
                Walk::Rev {
                    master: *master,
                    mfields,
                    first,
                    count_at: (first < l.len() - 1).then(|| lp::last(l)).flatten(),
                }
            } else {
                Walk::Fwd {
                    master: *master,
                    mfields,
                    p: first,
                }
            };
            self.cur = Some((l.as_slice(), mf, walk));
        }
    }
}

impl Stream {
    /// Nodes by master id (what RDB writes).
    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, &[u8])> {
        self.nodes.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// Number of nodes (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Adds a node read from outside, whose listpack the caller validated
    /// with [`Stream::check_node`].
    pub fn push_node(&mut self, master: StreamId, listpack: Vec<u8>) {
        self.nodes.insert(master, listpack);
    }

    /// Checks a node from outside as Redis's deep
    /// `streamValidateListpackIntegrity`: a valid listpack holding a
    /// master entry and well-formed entries, with ids above `master`.
    /// Returns (live entries, the last entry's id).
    pub fn check_node(master: StreamId, l: &[u8]) -> Result<(u64, StreamId), String> {
        let total = lp::validate(l)?;
        let end = l.len() - 1;
        let bad = |what: &str| Err(format!("stream node: {what}"));
        let int_at = |p: usize| -> Result<i64, String> {
            if p >= end {
                return Err("stream node: truncated".into());
            }
            match lp::get(l, p) {
                Elem::Int(i) => Ok(i),
                Elem::Str(_) => Err("stream node: string where an integer belongs".into()),
            }
        };
        let mut p = lp::HDR;
        let count = int_at(p)?;
        p = skip(l, p);
        let deleted = int_at(p)?;
        p = skip(l, p);
        let mfields = int_at(p)?;
        if count < 0 || deleted < 0 || mfields < 0 || mfields as usize > total {
            return bad("bad master entry");
        }
        p = skip(l, p);
        for _ in 0..mfields {
            if p >= end {
                return bad("truncated master entry");
            }
            p = skip(l, p);
        }
        if int_at(p)? != 0 {
            return bad("master entry not terminated by 0");
        }
        p = skip(l, p);
        let (mut live, mut dead) = (0i64, 0i64);
        let mut last = None;
        while p < end {
            let flags = int_at(p)?;
            p = skip(l, p);
            let ms = int_at(p)?;
            p = skip(l, p);
            let seq = int_at(p)?;
            p = skip(l, p);
            let id = StreamId {
                ms: master.ms.wrapping_add(ms as u64),
                seq: master.seq.wrapping_add(seq as u64),
            };
            if id < master || last.is_some_and(|l| id <= l) {
                return bad("entry ids out of order");
            }
            last = Some(id);
            let items = if flags & FLAG_SAMEFIELDS != 0 {
                mfields
            } else {
                let n = int_at(p)?;
                if n < 0 || n as usize > total {
                    return bad("bad field count");
                }
                p = skip(l, p);
                2 * n
            };
            let lpcount = 3 + items + if flags & FLAG_SAMEFIELDS != 0 { 0 } else { 1 };
            for _ in 0..items {
                if p >= end {
                    return bad("truncated entry");
                }
                p = skip(l, p);
            }
            if int_at(p)? != lpcount {
                return bad("bad lp-count");
            }
            p = skip(l, p);
            if flags & FLAG_DELETED != 0 {
                dead += 1;
            } else {
                live += 1;
            }
        }
        if live != count || dead != deleted {
            return bad("entry counts do not match the master entry");
        }
        // A node may hold only tombstones: an exact MINID trim can leave
        // one behind when its last entry was deleted before, in Redis too.
        Ok((live as u64, last.unwrap_or(master)))
    }

    /// Appends an entry with id `id` (checked to be above the last id);
    /// `fv` holds field, value, field, value… (`streamAppendItem`).
    pub fn append<B: AsRef<[u8]>>(
        &mut self,
        id: StreamId,
        fv: &[B],
        limits: &crate::EncodingLimits,
    ) -> Result<(), AppendError> {
        if id <= self.last_id {
            return Err(AppendError::Order);
        }
        let total: usize = fv.iter().map(|b| b.as_ref().len()).sum();
        if total > MAX_ENTRY_BYTES {
            return Err(AppendError::TooLarge);
        }
        let numfields = fv.len() / 2;
        let max_bytes = match limits.stream_node_max_bytes {
            0 => MAX_ENTRY_BYTES,
            n => n.min(MAX_ENTRY_BYTES),
        };
        let mut tail = self.nodes.last_entry();
        if let Some(t) = &mut tail {
            let l = t.get();
            let full = if l.len() + total >= max_bytes {
                true
            } else if limits.stream_node_max_entries > 0 {
                let p = lp::HDR;
                let count = lp::get(l, p).int() + lp::get(l, skip(l, p)).int();
                count >= limits.stream_node_max_entries as i64
            } else {
                false
            };
            if full {
                t.get_mut().shrink_to_fit();
                tail = None;
            }
        }
        let mut flags = 0;
        let (master, node) = match tail {
            Some(t) => {
                let master = *t.key();
                let l = t.into_mut();
                let count = lp::get(l, lp::HDR).int();
                lp::replace_int(l, lp::HDR, count + 1);
                let (n, mut f, _) = node_head(l);
                if n == numfields {
                    let same = (0..n).all(|i| {
                        let e = lp::get(l, f);
                        f = skip(l, f);
                        e.bytes(&mut itoa::Buffer::new()) == fv[2 * i].as_ref()
                    });
                    if same {
                        flags |= FLAG_SAMEFIELDS;
                    }
                }
                (master, l)
            }
            None => {
                let mut l = lp::new();
                lp::append_int(&mut l, 1);
                lp::append_int(&mut l, 0);
                lp::append_int(&mut l, numfields as i64);
                for i in 0..numfields {
                    lp::append(&mut l, fv[2 * i].as_ref());
                }
                lp::append_int(&mut l, 0);
                flags |= FLAG_SAMEFIELDS;
                self.nodes.insert(id, l);
                let node = self.nodes.get_mut(&id).ok_or(AppendError::Order)?;
                (id, node)
            }
        };
        let same = flags & FLAG_SAMEFIELDS != 0;
        lp::append_int(node, flags);
        lp::append_int(node, id.ms.wrapping_sub(master.ms) as i64);
        lp::append_int(node, id.seq.wrapping_sub(master.seq) as i64);
        if !same {
            lp::append_int(node, numfields as i64);
        }
        for i in 0..numfields {
            if !same {
                lp::append(node, fv[2 * i].as_ref());
            }
            lp::append(node, fv[2 * i + 1].as_ref());
        }
        let lp_count = numfields + 3 + if same { 0 } else { numfields + 1 };
        lp::append_int(node, lp_count as i64);
        self.length += 1;
        self.entries_added = self.entries_added.wrapping_add(1);
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(())
    }

    /// Live entries from `start` to `end` (inclusive), backwards when `rev`.
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Iter<'_> {
        self.iter_with(start, end, rev, false)
    }

    fn iter_with(&self, start: StreamId, end: StreamId, rev: bool, tombstones: bool) -> Iter<'_> {
        let nodes: Box<dyn Iterator<Item = (&StreamId, &Vec<u8>)>> = if rev {
            Box::new(self.nodes.range(..=end).rev())
        } else {
            match self.nodes.range(..=start).next_back() {
                Some((k, _)) => Box::new(self.nodes.range(*k..)),
                None => Box::new(self.nodes.iter()),
            }
        };
        Iter {
            nodes,
            cur: None,
            start,
            end,
            rev,
            tombstones,
            done: false,
        }
    }

    /// Whether live entry `id` exists.
    pub fn contains(&self, id: StreamId) -> bool {
        self.range(id, id, false).next().is_some()
    }

    /// The first (or last) entry's id, tombstones counted or not
    /// (`streamGetEdgeID`): `MAX` (or `0-0`) when there is none.
    pub fn edge_id(&self, first: bool, skip_tombstones: bool) -> StreamId {
        self.iter_with(StreamId::MIN, StreamId::MAX, !first, !skip_tombstones)
            .next()
            .map(|e| e.id)
            .unwrap_or(if first { StreamId::MAX } else { StreamId::MIN })
    }

    /// The last live entry's id (`streamLastValidID`), 0-0 when empty.
    pub fn last_valid_id(&self) -> StreamId {
        self.range(StreamId::MIN, StreamId::MAX, true)
            .next()
            .map(|e| e.id)
            .unwrap_or_default()
    }

    /// Marks entry `id` deleted (`streamDeleteItem`); a node left with no
    /// live entry goes. Does not touch `first_id`/`max_deleted_entry_id`.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, _)) = self.nodes.range(..=id).next_back() else {
            return false;
        };
        let Some(l) = self.nodes.get_mut(&master) else {
            return false;
        };
        let Some(raw) = node_entries(master, l)
            .into_iter()
            .find(|r| r.id == id && r.flags & FLAG_DELETED == 0)
        else {
            return false;
        };
        let count = lp::get(l, lp::HDR).int();
        if count == 1 {
            self.nodes.remove(&master);
        } else {
            lp::replace_int(l, raw.flags_at, raw.flags | FLAG_DELETED);
            let p = lp::replace_int(l, lp::HDR, count - 1);
            let dead = lp::get(l, p).int();
            lp::replace_int(l, p, dead + 1);
        }
        self.length -= 1;
        true
    }

    /// Trims from the head (`streamTrim`); `approx` only drops whole nodes;
    /// `limit` (0: none) caps the entries removed. Returns how many went.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        if how == Trim::None {
            return 0;
        }
        let mut deleted = 0u64;
        while let Some((&master, l)) = self.nodes.first_key_value() {
            if let Trim::MaxLen(max) = how {
                if self.length <= max {
                    break;
                }
            }
            let entries = lp::get(l, lp::HDR).int().max(0) as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let raws = node_entries(master, l);
            let remove = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => raws.last().is_some_and(|r| r.id < min),
                Trim::None => false,
            };
            if remove {
                self.nodes.remove(&master);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let Some(l) = self.nodes.get_mut(&master) else {
                break;
            };
            let mut gone = 0i64;
            // Replacing a flag with a flag keeps every offset: flags are
            // one-byte integers.
            for r in raws {
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => r.id >= min,
                    Trim::None => true,
                };
                if stop {
                    break;
                }
                if r.flags & FLAG_DELETED == 0 {
                    lp::replace_int(l, r.flags_at, r.flags | FLAG_DELETED);
                    gone += 1;
                    self.length -= 1;
                }
            }
            deleted += gone as u64;
            let p = lp::replace_int(l, lp::HDR, entries as i64 - gone);
            let dead = lp::get(l, p).int();
            lp::replace_int(l, p, dead + gone);
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.edge_id(true, true);
        }
        deleted
    }

    /// Whether [`Stream::trim`] with these arguments would remove anything:
    /// its loop, run dry.
    pub fn would_trim(&self, how: Trim, approx: bool, limit: u64) -> bool {
        let mut length = self.length;
        let mut deleted = 0u64;
        for (&master, l) in &self.nodes {
            match how {
                Trim::None => return false,
                Trim::MaxLen(max) if length <= max => return false,
                _ => {}
            }
            let entries = lp::get(l, lp::HDR).int().max(0) as u64;
            if limit > 0 && deleted + entries > limit {
                return false;
            }
            let raws = node_entries(master, l);
            let remove = match how {
                Trim::MaxLen(max) => length - entries >= max,
                Trim::MinId(min) => raws.last().is_some_and(|r| r.id < min),
                Trim::None => false,
            };
            if remove {
                if entries > 0 {
                    return true;
                }
                length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                return false;
            }
            return match how {
                Trim::MinId(min) => raws
                    .iter()
                    .take_while(|r| r.id < min)
                    .any(|r| r.flags & FLAG_DELETED == 0),
                _ => entries > 0,
            };
        }
        false
    }

    /// Whether deleted entries may lie between `start` and `end`
    /// (`streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_entry_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_entry_id {
            return false;
        }
        start <= self.max_deleted_entry_id && self.max_deleted_entry_id <= end
    }

    /// `streamEstimateDistanceFromFirstEverEntry`: the entries_read a
    /// group at `id` would have, -1 when it cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return added;
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return added,
            std::cmp::Ordering::Greater => return -1,
            _ => {}
        }
        if self.max_deleted_entry_id.is_zero() || self.max_deleted_entry_id < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return added.wrapping_sub(self.length as i64),
                std::cmp::Ordering::Equal => {
                    return added.wrapping_sub(self.length as i64).wrapping_add(1)
                }
                _ => {}
            }
        }
        -1
    }

    /// A group's lag (`streamReplyWithCGLag`), `None` when unknown.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != -1 && !self.range_has_tombstones(g.last_id, StreamId::MAX) {
            return Some((self.entries_added as i64).wrapping_sub(g.entries_read));
        }
        let read = self.estimate_distance(g.last_id);
        (read != -1).then(|| (self.entries_added as i64).wrapping_sub(read))
    }

    /// Nodes of the radix tree Redis would hold for these keys
    /// (XINFO's `radix-tree-nodes`): a compressed node per shared run of
    /// bytes, a branching node per divergence, a leaf per key.
    pub fn rax_nodes(&self) -> usize {
        fn count(keys: &[[u8; 16]], depth: usize) -> usize {
            if keys.is_empty() || depth == 16 {
                return 1;
            }
            // Common prefix from `depth`.
            let (a, b) = (&keys[0], &keys[keys.len() - 1]);
            let mut d = depth;
            while d < 16 && a[d] == b[d] {
                d += 1;
            }
            if d > depth {
                return 1 + count(keys, d);
            }
            let mut total = 1;
            let mut i = 0;
            while i < keys.len() {
                let c = keys[i][depth];
                let j = i + keys[i..].iter().take_while(|k| k[depth] == c).count();
                total += count(&keys[i..j], depth + 1);
                i = j;
            }
            total
        }
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.encode()).collect();
        count(&keys, 0)
    }

    /// Approximate heap bytes, for MEMORY USAGE and eviction.
    pub fn heap_size(&self) -> usize {
        let nodes: usize = self.nodes.values().map(|l| l.capacity() + 40).sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(n, g)| {
                n.len()
                    + 96
                    + g.pel.values().map(|n| n.consumer.len() + 64).sum::<usize>()
                    + g.consumers
                        .iter()
                        .map(|(n, c)| n.len() + 48 + c.pel.len() * 24)
                        .sum::<usize>()
            })
            .sum();
        std::mem::size_of::<Stream>() + nodes + groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncodingLimits;

    #[test]
    fn id_text_is_the_display_form() {
        let mut buf = IdText::default();
        for (ms, seq) in [
            (0, 0),
            (1, 2),
            (u64::MAX, u64::MAX),
            (1_700_000_000_000, 99),
            (10, u64::MAX),
        ] {
            let id = StreamId { ms, seq };
            assert_eq!(id.text(&mut buf), id.to_string().as_bytes());
        }
    }

    fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    #[test]
    fn nodes_split_and_iterate_both_ways() {
        let lim = EncodingLimits::default();
        let mut s = Stream::default();
        for i in 1..=250u64 {
            let v = i.to_string();
            let fv: Vec<&[u8]> = if i % 7 == 0 {
                vec![b"other", v.as_bytes()]
            } else {
                vec![b"a", v.as_bytes(), b"b", b"x"]
            };
            s.append(id(i), &fv, &lim).unwrap();
        }
        assert_eq!(s.node_count(), 3);
        for (m, l) in s.nodes() {
            Stream::check_node(m, l).unwrap();
        }
        let fwd: Vec<u64> = s
            .range(id(0), StreamId::MAX, false)
            .map(|e| e.id.ms)
            .collect();
        assert_eq!(fwd, (1..=250).collect::<Vec<_>>());
        let back: Vec<u64> = s.range(id(90), id(110), true).map(|e| e.id.ms).collect();
        assert_eq!(back, (90..=110).rev().collect::<Vec<_>>());
        let e = s.range(id(14), id(14), false).next().unwrap();
        let f: Vec<(Vec<u8>, Vec<u8>)> =
            e.fields().map(|(a, b)| (a.to_vec(), b.to_vec())).collect();
        assert_eq!(f, vec![(b"other".to_vec(), b"14".to_vec())]);
        let e = s.range(id(15), id(15), false).next().unwrap();
        assert_eq!(e.fields().count(), 2);
        let mut t = Stream::default();
        t.append(id(1), &[&b"a"[..], b"1"], &lim).unwrap();
        t.append(id(2), &[&b"b"[..], b"2", b"c", b"3", b"d", b"4"], &lim)
            .unwrap();
        let e = t.range(id(2), id(2), false).next().unwrap();
        let f: Vec<Vec<u8>> = e
            .fields()
            .flat_map(|(a, b)| [a.to_vec(), b.to_vec()])
            .collect();
        assert_eq!(f, [&b"b"[..], b"2", b"c", b"3", b"d", b"4"]);
        assert!(s.delete(id(1)));
        assert!(!s.delete(id(1)));
        assert_eq!(s.edge_id(true, true), id(2));
        assert_eq!(s.trim(Trim::MaxLen(120), true, 0), 99);
        assert_eq!(s.trim(Trim::MinId(id(205)), false, 0), 104);
        assert_eq!(s.length, 46);
        assert_eq!(s.first_id, id(205));
        for (m, l) in s.nodes() {
            Stream::check_node(m, l).unwrap();
        }
        assert_eq!(s.rax_nodes(), 2);
    }

    /// The model against a plain ordered map: random appends (with fields
    /// that match the master entry or not), deletes, exact and approximate
    /// trims and ranges both ways, on small nodes so they split often.
    #[test]
    fn matches_a_plain_map() {
        use rand::{Rng, SeedableRng};
        type Fields = Vec<(Vec<u8>, Vec<u8>)>;
        let lim = EncodingLimits {
            stream_node_max_entries: 5,
            stream_node_max_bytes: 300,
            ..EncodingLimits::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        for _round in 0..20 {
            let mut s = Stream::default();
            let mut model: BTreeMap<StreamId, Fields> = BTreeMap::new();
            let mut next = 1u64;
            for _ in 0..400 {
                match rng.random_range(0..10) {
                    0..=5 => {
                        let n = rng.random_range(1..4);
                        let mut fv: Vec<Vec<u8>> = Vec::new();
                        for k in 0..n {
                            let name = if rng.random_bool(0.7) {
                                format!("f{k}")
                            } else {
                                format!("g{}", rng.random_range(0..100))
                            };
                            fv.push(name.into_bytes());
                            let v = match rng.random_range(0..3) {
                                0 => rng.random_range(-100_000i64..100_000).to_string(),
                                1 => "x".repeat(rng.random_range(0..80)),
                                _ => format!("v{}", rng.random::<u32>()),
                            };
                            fv.push(v.into_bytes());
                        }
                        next += rng.random_range(1..1000);
                        let id = StreamId {
                            ms: next,
                            seq: rng.random_range(0..3),
                        };
                        s.append(id, &fv, &lim).unwrap();
                        model.insert(
                            id,
                            fv.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
                        );
                    }
                    6 => {
                        let keys: Vec<StreamId> = model.keys().copied().collect();
                        if let Some(&id) = keys.get(rng.random_range(0..keys.len().max(1))) {
                            assert!(s.delete(id));
                            model.remove(&id);
                        }
                        assert!(!s.delete(StreamId { ms: 0, seq: 1 }));
                    }
                    7 => {
                        let max = rng.random_range(0..model.len() as u64 + 3);
                        let approx = rng.random_bool(0.5);
                        let would = s.would_trim(Trim::MaxLen(max), approx, 0);
                        let n = s.trim(Trim::MaxLen(max), approx, 0);
                        assert_eq!(would, n > 0);
                        for _ in 0..n {
                            model.pop_first();
                        }
                        if !approx {
                            assert!(s.length <= max);
                        }
                    }
                    8 => {
                        let min = StreamId {
                            ms: rng.random_range(0..next + 10),
                            seq: 0,
                        };
                        let approx = rng.random_bool(0.5);
                        let limit = if approx { rng.random_range(0..12) } else { 0 };
                        let would = s.would_trim(Trim::MinId(min), approx, limit);
                        let n = s.trim(Trim::MinId(min), approx, limit);
                        assert_eq!(would, n > 0);
                        for _ in 0..n {
                            let (first, _) = model.pop_first().unwrap();
                            assert!(first < min);
                        }
                        if !approx {
                            assert!(model.keys().next().is_none_or(|&k| k >= min));
                        }
                    }
                    _ => {
                        let a = StreamId {
                            ms: rng.random_range(0..next + 10),
                            seq: 1,
                        };
                        let b = StreamId {
                            ms: rng.random_range(0..next + 10),
                            seq: 1,
                        };
                        let (lo, hi) = (a.min(b), a.max(b));
                        let rev = rng.random_bool(0.5);
                        let got: Vec<(StreamId, Fields)> = s
                            .range(lo, hi, rev)
                            .map(|e| {
                                (
                                    e.id,
                                    e.fields().map(|(f, v)| (f.to_vec(), v.to_vec())).collect(),
                                )
                            })
                            .collect();
                        let mut want: Vec<(StreamId, Fields)> =
                            model.range(lo..=hi).map(|(k, v)| (*k, v.clone())).collect();
                        if rev {
                            want.reverse();
                        }
                        assert_eq!(got, want);
                    }
                }
                assert_eq!(s.length, model.len() as u64);
                let first = model.keys().next().copied().unwrap_or_default();
                if s.length > 0 {
                    assert_eq!(s.edge_id(true, true), first);
                    assert_eq!(s.last_valid_id(), *model.keys().next_back().unwrap());
                }
                for (m, l) in s.nodes() {
                    Stream::check_node(m, l).unwrap();
                }
            }
        }
    }
}
