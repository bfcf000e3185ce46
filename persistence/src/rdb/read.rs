//! The reader: whole RDB streams and single DUMP payloads.
//!
//! Nothing is allocated from a length read from the data before the bytes
//! behind it have arrived: strings grow as they are read (64 KiB at a
//! time), collections reserve at most a few thousand slots up front, and an
//! LZF string may announce at most what its compressed bytes can expand
//! to. There is no recursion.

use std::collections::HashSet;
use std::io::Read;

use rampart_keyspace::hash::Hash;
use rampart_keyspace::list::{End, List};
use rampart_keyspace::set::Set;
use rampart_keyspace::stream::{Consumer, Group, Nack, Stream, StreamId};
use rampart_keyspace::zset::ZSet;
use rampart_keyspace::{EncodingLimits, Value};

use super::encodings::{intset_values, listpack_for_each, ziplist_for_each, zipmap_for_each, Elem};
use super::error::{ErrorKind, RdbError};
use super::{lzf, num, opcode, types, Crc64, LoadSink, LoadStats, RDB_VERSION};

type Result<T> = std::result::Result<T, RdbError>;

/// Largest string accepted (1 TiB): beyond any value a server holds.
const MAX_STRING: u64 = 1 << 40;
/// Largest compact blob (listpack, ziplist, intset, zipmap): their headers
/// count bytes in 32 bits.
const MAX_BLOB: u64 = u32::MAX as u64;
/// Largest list element (Rampart's lists, like Redis's, count element
/// bytes in 32 bits).
const MAX_ITEM: u64 = rampart_keyspace::list::MAX_ITEM_SIZE as u64;
/// Slots reserved up front for a collection, whatever its announced size.
const MAX_PREALLOC: usize = 4096;
/// Read buffer size for streams.
const BUF: usize = 64 * 1024;

/// A length as `rdbLoadLenByRef` reads it: a plain length, or the number
/// of a special string encoding.
enum Len {
    Plain(u64),
    Special(u8),
}

/// A buffered byte source that counts its offset and checksums what it
/// hands out.
pub(crate) struct Src<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    pos: u64,
    crc: Option<Crc64>,
}

impl<R: Read> Src<R> {
    pub(crate) fn new(r: R, buf_size: usize, checksum: bool) -> Src<R> {
        Src {
            r,
            buf: vec![0; buf_size.clamp(16, BUF)],
            start: 0,
            end: 0,
            pos: 0,
            crc: checksum.then(Crc64::new),
        }
    }

    fn err(&self, kind: ErrorKind) -> RdbError {
        RdbError::new(kind, self.pos)
    }

    /// Refills the buffer when it is empty; false at the end of the data.
    fn fill(&mut self) -> Result<bool> {
        if self.start < self.end {
            return Ok(true);
        }
        loop {
            match self.r.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.err(ErrorKind::Io(e.to_string()))),
            }
        }
    }

    fn consume(&mut self, n: usize) -> &[u8] {
        let s = &self.buf[self.start..self.start + n];
        if let Some(c) = &mut self.crc {
            c.update(s);
        }
        self.start += n;
        self.pos += n as u64;
        s
    }

    fn read_exact(&mut self, out: &mut [u8], what: &'static str) -> Result<()> {
        let mut done = 0;
        while done < out.len() {
            if !self.fill()? {
                return Err(self.err(ErrorKind::Truncated(what)));
            }
            let k = (out.len() - done).min(self.end - self.start);
            let s = self.consume(k);
            out[done..done + k].copy_from_slice(s);
            done += k;
        }
        Ok(())
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b, what)?;
        Ok(b[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.read_exact(&mut b, what)?;
        Ok(b)
    }

    /// `n` bytes, read as they arrive.
    fn take(&mut self, n: u64, what: &'static str) -> Result<Vec<u8>> {
        let n = usize::try_from(n).map_err(|_| self.err(ErrorKind::LengthTooLarge(n)))?;
        let mut out = Vec::with_capacity(n.min(BUF));
        while out.len() < n {
            if !self.fill()? {
                return Err(self.err(ErrorKind::Truncated(what)));
            }
            let k = (n - out.len()).min(self.end - self.start);
            let s = self.consume(k);
            out.extend_from_slice(s);
        }
        Ok(out)
    }

    fn len_raw(&mut self, what: &'static str) -> Result<Len> {
        let b = self.u8(what)?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => {
                let lo = self.u8(what)?;
                Len::Plain((((b & 0x3f) as u64) << 8) | lo as u64)
            }
            3 => Len::Special(b & 0x3f),
            _ if b == 0x80 => Len::Plain(u32::from_be_bytes(self.array(what)?) as u64),
            _ if b == 0x81 => Len::Plain(u64::from_be_bytes(self.array(what)?)),
            _ => {
                return Err(self.err(ErrorKind::BadEncoding(
                    "length",
                    format!("unknown length encoding byte {b:#04x}"),
                )))
            }
        })
    }

    /// A plain length (a count, a database number…).
    fn len(&mut self, what: &'static str) -> Result<u64> {
        match self.len_raw(what)? {
            Len::Plain(n) => Ok(n),
            Len::Special(e) => Err(self.err(ErrorKind::BadEncoding(
                "length",
                format!("a string encoding ({e}) where {what} was expected"),
            ))),
        }
    }

    /// A string in any of its encodings, at most `max` bytes long.
    fn string_max(&mut self, what: &'static str, max: u64) -> Result<Vec<u8>> {
        match self.len_raw(what)? {
            Len::Plain(n) => {
                if n > max {
                    return Err(self.err(ErrorKind::LengthTooLarge(n)));
                }
                self.take(n, what)
            }
            Len::Special(0) => {
                let v = self.u8(what)? as i8 as i64;
                Ok(itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Len::Special(1) => {
                let v = i16::from_le_bytes(self.array(what)?) as i64;
                Ok(itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Len::Special(2) => {
                let v = i32::from_le_bytes(self.array(what)?) as i64;
                Ok(itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Len::Special(3) => {
                let clen = self.len(what)?;
                let len = self.len(what)?;
                if len > max {
                    return Err(self.err(ErrorKind::LengthTooLarge(len)));
                }
                // An empty result is always accepted (see lzf::decompress).
                if (len != 0 && clen > len.saturating_add(64))
                    || len > clen.saturating_mul(lzf::MAX_RATIO)
                {
                    return Err(self.err(ErrorKind::BadEncoding(
                        "LZF string",
                        format!("{clen} compressed bytes cannot hold {len} bytes"),
                    )));
                }
                let c = self.take(clen, what)?;
                let len =
                    usize::try_from(len).map_err(|_| self.err(ErrorKind::LengthTooLarge(len)))?;
                lzf::decompress(&c, len).ok_or_else(|| {
                    self.err(ErrorKind::BadEncoding(
                        "LZF string",
                        "the compressed data is corrupt".into(),
                    ))
                })
            }
            Len::Special(e) => Err(self.err(ErrorKind::BadEncoding(
                "string",
                format!("unknown string encoding {e}"),
            ))),
        }
    }

    fn string(&mut self, what: &'static str) -> Result<Vec<u8>> {
        self.string_max(what, MAX_STRING)
    }

    fn blob(&mut self, what: &'static str) -> Result<Vec<u8>> {
        self.string_max(what, MAX_BLOB)
    }
}

/// Whether `t` names a value type (`rdbIsObjectType` in 7.0, plus 7.2's
/// types so they get a clear error rather than "unknown opcode").
fn is_value_type(t: u8) -> bool {
    t <= 7 || (9..=21).contains(&t)
}

/// The name of a module type from its 64-bit id (`moduleTypeNameByID`).
fn module_name(id: u64) -> String {
    const CSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = id >> 10;
    let mut name = [0u8; 9];
    for j in (0..9).rev() {
        name[j] = CSET[(id & 63) as usize];
        id >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}

fn elem_vec(e: Elem<'_>) -> Vec<u8> {
    e.bytes(&mut itoa::Buffer::new()).to_vec()
}

/// A score inside a listpack or ziplist.
fn elem_score(e: Elem<'_>) -> std::result::Result<f64, ErrorKind> {
    let s = match e {
        Elem::Int(i) => i as f64,
        Elem::Str(s) => num::parse_double(s).ok_or_else(|| {
            ErrorKind::BadValue(format!(
                "sorted set score '{}' is not a number",
                super::error::show_key(s)
            ))
        })?,
    };
    if s.is_nan() {
        return Err(ErrorKind::BadValue("sorted set score is NaN".into()));
    }
    Ok(s)
}

/// Builds a sorted set from (member, score) pairs in any order; `None`
/// when empty.
fn build_zset(
    mut pairs: Vec<(Vec<u8>, f64)>,
    limits: &EncodingLimits,
) -> std::result::Result<Option<Value>, ErrorKind> {
    if pairs.is_empty() {
        return Ok(None);
    }
    {
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(pairs.len());
        if !pairs.iter().all(|(m, _)| seen.insert(m)) {
            return Err(ErrorKind::Duplicate("sorted set member"));
        }
    }
    pairs.sort_by(|a, b| match a.1.partial_cmp(&b.1) {
        Some(std::cmp::Ordering::Equal) | None => a.0.cmp(&b.0),
        Some(o) => o,
    });
    Ok(Some(Value::ZSet(ZSet::from_sorted(pairs, limits))))
}

/// Adds a field to a hash being loaded; a field seen before is an error.
fn hash_add(
    h: &mut Hash,
    f: &[u8],
    v: &[u8],
    limits: &EncodingLimits,
) -> std::result::Result<(), ErrorKind> {
    if h.insert(f, v, limits) {
        Ok(())
    } else {
        Err(ErrorKind::Duplicate("hash field"))
    }
}

fn finish_hash(h: Hash) -> Option<Value> {
    if h.is_empty() {
        return None;
    }
    Some(Value::Hash(h))
}

fn finish_list(l: List) -> Option<Value> {
    (!l.is_empty()).then(|| Value::List(Box::new(l)))
}

/// Reads one value of type `t`. `Ok(None)` for an empty collection, which
/// Redis skips when loading (and refuses in RESTORE).
pub(crate) fn load_object<R: Read>(
    src: &mut Src<R>,
    t: u8,
    limits: &EncodingLimits,
) -> Result<Option<Value>> {
    // Errors found inside a value's blob are reported at the byte after it.
    macro_rules! at {
        ($e:expr) => {
            $e.map_err(|k| src.err(k))?
        };
    }
    // Walks a listpack/ziplist; structural errors become BadEncoding(name).
    macro_rules! walk {
        ($name:expr, $res:expr) => {
            match $res {
                Ok(Ok(n)) => n,
                Ok(Err(k)) => return Err(src.err(k)),
                Err(why) => return Err(src.err(ErrorKind::BadEncoding($name, why))),
            }
        };
    }
    let value = match t {
        types::STRING => Some(Value::string(&src.string("a string value")?)),
        types::LIST => {
            let n = src.len("a list length")?;
            let mut l = List::new(limits.list_max_listpack_size);
            for _ in 0..n {
                let e = src.string_max("a list element", MAX_ITEM)?;
                l.push(End::Tail, &e);
            }
            finish_list(l)
        }
        types::SET => {
            let n = src.len("a set length")?;
            let mut s = if n > limits.set_max_intset_entries as u64 {
                Set::new_table()
            } else {
                Set::default()
            };
            for _ in 0..n {
                let m = src.string("a set member")?;
                if !s.insert(&m, limits) {
                    return Err(src.err(ErrorKind::Duplicate("set member")));
                }
            }
            s.shrink();
            (!s.is_empty()).then(|| Value::Set(Box::new(s)))
        }
        types::ZSET | types::ZSET_2 => {
            let n = src.len("a sorted set length")?;
            let mut pairs = Vec::with_capacity((n as usize).min(MAX_PREALLOC));
            for _ in 0..n {
                let m = src.string("a sorted set member")?;
                let score = if t == types::ZSET_2 {
                    f64::from_le_bytes(src.array("a sorted set score")?)
                } else {
                    match src.u8("a sorted set score")? {
                        255 => f64::NEG_INFINITY,
                        254 => f64::INFINITY,
                        253 => f64::NAN,
                        len => {
                            let text = src.take(len as u64, "a sorted set score")?;
                            at!(num::parse_double(&text).ok_or_else(|| ErrorKind::BadValue(
                                format!(
                                    "sorted set score '{}' is not a number",
                                    super::error::show_key(&text)
                                )
                            )))
                        }
                    }
                };
                if score.is_nan() {
                    return Err(src.err(ErrorKind::BadValue("sorted set score is NaN".into())));
                }
                pairs.push((m, score));
            }
            at!(build_zset(pairs, limits))
        }
        types::HASH => {
            let n = src.len("a hash length")?;
            let mut h = if n > limits.hash_max_listpack_entries as u64 {
                Hash::new_table()
            } else {
                Hash::default()
            };
            for _ in 0..n {
                let f = src.string("a hash field")?;
                let v = src.string("a hash value")?;
                at!(hash_add(&mut h, &f, &v, limits));
            }
            finish_hash(h)
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
            let nodes = src.len("a quicklist length")?;
            let mut l = List::new(limits.list_max_listpack_size);
            for _ in 0..nodes {
                let container = if t == types::LIST_QUICKLIST_2 {
                    src.len("a quicklist node kind")?
                } else {
                    2
                };
                if container != 1 && container != 2 {
                    return Err(src.err(ErrorKind::BadValue(format!(
                        "quicklist node kind {container} (1 plain, 2 packed)"
                    ))));
                }
                let data = src.string_max("a quicklist node", MAX_ITEM)?;
                if data.is_empty() {
                    return Err(src.err(ErrorKind::BadValue("empty quicklist node".into())));
                }
                if container == 1 {
                    l.push(End::Tail, &data);
                } else if t == types::LIST_QUICKLIST_2 {
                    walk!(
                        "listpack",
                        listpack_for_each(&data, |e| {
                            l.push(End::Tail, e.bytes(&mut itoa::Buffer::new()));
                            Ok::<(), ErrorKind>(())
                        })
                    );
                } else {
                    walk!(
                        "ziplist",
                        ziplist_for_each(&data, |e| {
                            l.push(End::Tail, e.bytes(&mut itoa::Buffer::new()));
                            Ok::<(), ErrorKind>(())
                        })
                    );
                }
            }
            finish_list(l)
        }
        types::LIST_ZIPLIST => {
            let data = src.blob("a ziplist")?;
            let mut l = List::new(limits.list_max_listpack_size);
            walk!(
                "ziplist",
                ziplist_for_each(&data, |e| {
                    l.push(End::Tail, e.bytes(&mut itoa::Buffer::new()));
                    Ok::<(), ErrorKind>(())
                })
            );
            finish_list(l)
        }
        types::SET_INTSET => {
            let data = src.blob("an intset")?;
            let ints = at!(intset_values(&data).map_err(|w| ErrorKind::BadEncoding("intset", w)));
            let mut s = if ints.len() > limits.set_max_intset_entries {
                Set::new_table()
            } else {
                Set::default()
            };
            let mut buf = itoa::Buffer::new();
            for i in ints {
                s.insert(buf.format(i).as_bytes(), limits);
            }
            s.shrink();
            Some(Value::Set(Box::new(s)))
        }
        types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
            let data = src.blob("a sorted set listpack")?;
            let mut pairs: Vec<(Vec<u8>, f64)> = Vec::new();
            let mut member: Option<Vec<u8>> = None;
            let step = |e: Elem<'_>| -> std::result::Result<(), ErrorKind> {
                match member.take() {
                    None => member = Some(elem_vec(e)),
                    Some(m) => pairs.push((m, elem_score(e)?)),
                }
                Ok(())
            };
            if t == types::ZSET_LISTPACK {
                walk!("listpack", listpack_for_each(&data, step));
            } else {
                walk!("ziplist", ziplist_for_each(&data, step));
            }
            if member.is_some() {
                return Err(src.err(ErrorKind::BadValue(
                    "a sorted set member without a score".into(),
                )));
            }
            at!(build_zset(pairs, limits))
        }
        types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            let data = src.blob("a hash listpack")?;
            let mut h = Hash::default();
            let mut field: Option<Vec<u8>> = None;
            let step = |e: Elem<'_>| -> std::result::Result<(), ErrorKind> {
                match field.take() {
                    None => field = Some(elem_vec(e)),
                    Some(f) => hash_add(&mut h, &f, e.bytes(&mut itoa::Buffer::new()), limits)?,
                }
                Ok(())
            };
            if t == types::HASH_LISTPACK {
                walk!("listpack", listpack_for_each(&data, step));
            } else {
                walk!("ziplist", ziplist_for_each(&data, step));
            }
            if field.is_some() {
                return Err(src.err(ErrorKind::BadValue("a hash field without a value".into())));
            }
            finish_hash(h)
        }
        types::HASH_ZIPMAP => {
            let data = src.blob("a zipmap")?;
            let mut h = Hash::default();
            walk!(
                "zipmap",
                zipmap_for_each(&data, |f, v| hash_add(&mut h, f, v, limits))
            );
            finish_hash(h)
        }
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => load_stream_value(src, t)?,
        types::STREAM_LISTPACKS_3 => return Err(src.err(ErrorKind::Stream)),
        types::MODULE_PRE_GA | types::MODULE_2 => {
            let name = match src.len_raw("a module id") {
                Ok(Len::Plain(id)) => Some(module_name(id)),
                _ => None,
            };
            return Err(src.err(ErrorKind::Module(name)));
        }
        _ => return Err(src.err(ErrorKind::UnknownType(t))),
    };
    Ok(value)
}

/// Reads a stream (`RDB_TYPE_STREAM_LISTPACKS` or `_2`) as Redis 7.0's
/// `rdbLoadObject` with deep sanitization: every node is checked whole,
/// counts and PELs must agree; an empty stream without groups is skipped.
fn load_stream_value<R: Read>(src: &mut Src<R>, t: u8) -> Result<Option<Value>> {
    let bad = |src: &Src<R>, why: &str| src.err(ErrorKind::BadValue(format!("stream: {why}")));
    let mut s = Stream::default();
    let nodes = src.len("a stream node count")?;
    let mut live = 0u64;
    let mut prev_last: Option<StreamId> = None;
    for _ in 0..nodes {
        let key = src.string("a stream node key")?;
        let Some(master) = StreamId::decode(&key) else {
            return Err(bad(src, "node key is not 16 bytes"));
        };
        let lp = src.blob("a stream node")?;
        let (n, last) = Stream::check_node(master, &lp).map_err(|e| bad(src, &e))?;
        if prev_last.is_some_and(|p| master <= p) {
            return Err(bad(src, "nodes out of order"));
        }
        prev_last = Some(last);
        live += n;
        s.push_node(master, lp);
    }
    s.length = src.len("a stream length")?;
    if s.length != live {
        return Err(bad(src, "length does not match its entries"));
    }
    let id = |src: &mut Src<R>, what| -> Result<StreamId> {
        Ok(StreamId {
            ms: src.len(what)?,
            seq: src.len(what)?,
        })
    };
    s.last_id = id(src, "a stream last id")?;
    if t == types::STREAM_LISTPACKS_2 {
        s.first_id = id(src, "a stream first id")?;
        s.max_deleted_entry_id = id(src, "a stream max deleted id")?;
        s.entries_added = src.len("a stream entries-added")?;
    } else {
        s.first_id = if s.length > 0 {
            s.edge_id(true, true)
        } else {
            StreamId::MIN
        };
        s.entries_added = s.length;
    }
    if s.length > 0 && s.last_valid_id() > s.last_id {
        return Err(bad(src, "an entry is above the last id"));
    }
    let groups = src.len("a consumer group count")?;
    for _ in 0..groups {
        let name = src.string("a consumer group name")?;
        let last = id(src, "a consumer group last id")?;
        let entries_read = if t == types::STREAM_LISTPACKS_2 {
            src.len("a consumer group entries-read")? as i64
        } else {
            s.estimate_distance(last)
        };
        let mut g = Group::new(last, entries_read);
        let pel = src.len("a PEL size")?;
        for _ in 0..pel {
            let raw: [u8; 16] = src.array("a PEL id")?;
            let pid = StreamId::decode(&raw).unwrap_or_default();
            let time = i64::from_le_bytes(src.array("a delivery time")?);
            let count = src.len("a delivery count")?;
            let nack = Nack {
                delivery_time: time as u64,
                delivery_count: count,
                consumer: Box::default(),
            };
            if g.pel.insert(pid, nack).is_some() {
                return Err(src.err(ErrorKind::Duplicate("PEL entry")));
            }
        }
        let consumers = src.len("a consumer count")?;
        for _ in 0..consumers {
            let cname: Box<[u8]> = src.string("a consumer name")?.into();
            let seen = i64::from_le_bytes(src.array("a consumer seen time")?);
            let mut c = Consumer {
                seen_time: seen as u64,
                ..Consumer::default()
            };
            let n = src.len("a consumer PEL size")?;
            for _ in 0..n {
                let raw: [u8; 16] = src.array("a consumer PEL id")?;
                let pid = StreamId::decode(&raw).unwrap_or_default();
                let Some(nack) = g.pel.get_mut(&pid) else {
                    return Err(bad(src, "consumer entry not found in group global PEL"));
                };
                if !nack.consumer.is_empty() || !c.pel.insert(pid) {
                    return Err(src.err(ErrorKind::Duplicate("consumer PEL entry")));
                }
                nack.consumer = cname.clone();
            }
            if g.consumers.insert(cname, c).is_some() {
                return Err(src.err(ErrorKind::Duplicate("consumer")));
            }
        }
        if g.pel.values().any(|n| n.consumer.is_empty()) {
            return Err(bad(src, "a PEL entry has no consumer"));
        }
        if s.groups.insert(name.into(), g).is_some() {
            return Err(src.err(ErrorKind::Duplicate("consumer group")));
        }
    }
    Ok(Some(Value::Stream(Box::new(s))))
}

pub(crate) fn load_stream<R: Read>(
    r: R,
    limits: &EncodingLimits,
    sink: &mut impl LoadSink,
    verify_checksum: bool,
) -> Result<LoadStats> {
    let mut src = Src::new(r, BUF, verify_checksum);
    let mut stats = LoadStats::default();

    // "REDIS" and four digits.
    let mut magic = [0u8; 9];
    let mut got = 0;
    while got < 9 {
        if !src.fill()? {
            break;
        }
        let k = (9 - got).min(src.end - src.start);
        let s = src.consume(k);
        magic[got..got + k].copy_from_slice(s);
        got += k;
    }
    if got < 5 || &magic[..5] != b"REDIS" {
        return Err(RdbError::new(ErrorKind::BadMagic, 0));
    }
    if got < 9 {
        return Err(src.err(ErrorKind::Truncated("the RDB version")));
    }
    let ver_text = &magic[5..9];
    let version = std::str::from_utf8(ver_text)
        .ok()
        .filter(|v| v.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|&v| (1..=RDB_VERSION).contains(&v))
        .ok_or_else(|| {
            RdbError::new(
                ErrorKind::UnsupportedVersion(String::from_utf8_lossy(ver_text).into_owned()),
                5,
            )
        })?;
    stats.version = version;

    let mut db: usize = 0;
    let mut expire: Option<u64> = None;
    loop {
        let t = src.u8("an opcode (the file ends without its EOF marker)")?;
        match t {
            opcode::EXPIRETIME => {
                let secs = i32::from_le_bytes(src.array("an expire time")?) as i64;
                expire = Some(secs.max(0) as u64 * 1000);
            }
            opcode::EXPIRETIME_MS => {
                let ms = i64::from_le_bytes(src.array("an expire time")?);
                expire = Some(ms.max(0) as u64);
            }
            opcode::FREQ => {
                src.u8("an LFU frequency")?;
            }
            opcode::IDLE => {
                src.len("an LRU idle time")?;
            }
            opcode::EOF => break,
            opcode::SELECTDB => {
                let n = src.len("a database number")?;
                db = usize::try_from(n)
                    .ok()
                    .filter(|&d| d <= u32::MAX as usize)
                    .ok_or_else(|| src.err(ErrorKind::LengthTooLarge(n)))?;
            }
            opcode::RESIZEDB => {
                let size = src.len("a database size hint")?;
                let expires = src.len("a database size hint")?;
                sink.resize_db(db, size, expires);
            }
            opcode::AUX => {
                let k = src.string("an AUX field name")?;
                let v = src.string("an AUX field value")?;
                sink.aux(&k, &v);
                stats.aux.push((k, v));
            }
            opcode::MODULE_AUX => {
                let id = src.len("a module id")?;
                return Err(src.err(ErrorKind::ModuleAux(module_name(id))));
            }
            opcode::FUNCTION2 => {
                let code = src.string("a function library")?;
                sink.function(&code);
                stats.functions += 1;
            }
            opcode::FUNCTION => {
                // Redis 7.0 rc1/rc2: name, engine, [description], code.
                let name = src.string("a function library name")?;
                let engine = src.string("a function engine name")?;
                if src.len("a function description flag")? != 0 {
                    src.string("a function library description")?;
                }
                let body = src.string("a function library")?;
                let code = old_function_code(&name, &engine, &body);
                sink.function(&code);
                stats.functions += 1;
            }
            t if is_value_type(t) => {
                let key = src.string("a key")?;
                let value = load_object(&mut src, t, limits).map_err(|e| e.with_key(&key))?;
                match value {
                    Some(v) => {
                        sink.entry(db, &key, v, expire).map_err(|mut e| {
                            e.offset = src.pos;
                            e.with_key(&key)
                        })?;
                        stats.keys += 1;
                    }
                    None => stats.empty_skipped += 1,
                }
                expire = None;
            }
            t => return Err(src.err(ErrorKind::UnknownType(t))),
        }
    }
    if version >= 5 {
        let computed = src.crc.as_ref().map(Crc64::value).unwrap_or(0);
        let stored = u64::from_le_bytes(src.array("the CRC-64 trailer")?);
        if stored != 0 {
            if verify_checksum && stored != computed {
                return Err(RdbError::new(
                    ErrorKind::Checksum { stored, computed },
                    src.pos - 8,
                ));
            }
            stats.checksum = Some(stored);
        }
    }
    stats.bytes = src.pos;
    Ok(stats)
}

/// Redis's `verifyDumpPayload`: at least the 10-byte footer, an RDB
/// version this reader knows, and a CRC-64 that matches.
fn verify_footer(payload: &[u8], verify_checksum: bool) -> Result<()> {
    let bad = || RdbError::new(ErrorKind::PayloadVersionOrChecksum, payload.len() as u64);
    if payload.len() < 10 {
        return Err(bad());
    }
    let body_len = payload.len() - 10;
    let version = u16::from_le_bytes([payload[body_len], payload[body_len + 1]]);
    if version > RDB_VERSION {
        return Err(bad());
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&payload[body_len + 2..]);
    if verify_checksum && Crc64::checksum(&payload[..body_len + 2]) != u64::from_le_bytes(stored) {
        return Err(bad());
    }
    Ok(())
}

pub(crate) fn restore(
    payload: &[u8],
    limits: &EncodingLimits,
    verify_checksum: bool,
) -> Result<Value> {
    verify_footer(payload, verify_checksum)?;
    // Like Redis, decode from the whole payload: a value that runs into
    // the footer reads the footer's bytes (and what follows the value is
    // ignored), so exactly the payloads Redis accepts are accepted.
    let mut src = Src::new(payload, payload.len(), false);
    let t = src.u8("the value type")?;
    if !is_value_type(t) {
        return Err(src.err(ErrorKind::UnknownType(t)));
    }
    load_object(&mut src, t, limits)?
        .ok_or_else(|| src.err(ErrorKind::BadValue("an empty collection".into())))
}

/// FUNCTION RESTORE's reading of a payload, as `functionRestoreCommand`
/// reads it: records until only the footer's 10 bytes are left, each
/// `FUNCTION2` (or the 7.0-rc `FUNCTION`, translated). A record may run
/// into the footer's bytes, as in Redis, which reads from the whole
/// payload.
pub(crate) fn restore_functions(
    payload: &[u8],
    verify_checksum: bool,
) -> Result<super::FunctionsPayload> {
    verify_footer(payload, verify_checksum)?;
    let mut src = Src::new(payload, payload.len(), false);
    let mut out = super::FunctionsPayload::default();
    let end = payload.len() as u64 - 10;
    while src.pos < end {
        let Ok(t) = src.u8("a record type") else {
            out.error = Some("can not read data type");
            break;
        };
        let code = match t {
            opcode::FUNCTION2 => src
                .string("a function library")
                .map_err(|_| "Failed loading library payload"),
            opcode::FUNCTION => old_function(&mut src),
            _ => Err("given type is not a function"),
        };
        match code {
            Ok(code) => out.libraries.push(code),
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    Ok(out)
}

/// A 7.0-rc `FUNCTION` record as `#!engine name=…` code, or the error
/// text Redis's `rdbFunctionLoad` gives.
fn old_function<R: Read>(src: &mut Src<R>) -> std::result::Result<Vec<u8>, &'static str> {
    let name = src
        .string("a function library name")
        .map_err(|_| "Failed loading library name")?;
    let engine = src
        .string("a function engine name")
        .map_err(|_| "Failed loading engine name")?;
    let has_desc = src
        .len("a function description flag")
        .map_err(|_| "Failed loading library description indicator")?;
    if has_desc != 0 {
        src.string("a function library description")
            .map_err(|_| "Failed loading library description")?;
    }
    let body = src
        .string("a function library")
        .map_err(|_| "Failed loading library blob")?;
    Ok(old_function_code(&name, &engine, &body))
}

/// The code Redis makes of a 7.0-rc `FUNCTION` record.
fn old_function_code(name: &[u8], engine: &[u8], body: &[u8]) -> Vec<u8> {
    let mut code = Vec::with_capacity(body.len() + name.len() + engine.len() + 10);
    code.extend_from_slice(b"#!");
    code.extend_from_slice(engine);
    code.extend_from_slice(b" name=");
    code.extend_from_slice(name);
    code.push(b'\n');
    code.extend_from_slice(body);
    code
}
