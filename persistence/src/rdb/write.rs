//! The writer: values and whole files in the encodings Redis 7.0 writes.

use rampart_keyspace::set::Member;
use rampart_keyspace::value::parse_canonical_i64;
use rampart_keyspace::Value;

use super::encodings::{intset_blob, lp_entry_size, LpWriter};
use super::{lzf, num, opcode, types, Crc64, RDB_VERSION, REDIS_VER};

/// How values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// Compress strings longer than 20 bytes with LZF when that saves at
    /// least 4 bytes (`rdbcompression yes`, Redis's default).
    pub compress: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { compress: true }
    }
}

/// Redis's `rdbSaveLen`.
pub(crate) fn save_len(buf: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        buf.push(len as u8);
    } else if len < 1 << 14 {
        buf.push(((len >> 8) as u8) | 0x40);
        buf.push(len as u8);
    } else if len <= u32::MAX as u64 {
        buf.push(0x80);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        buf.push(0x81);
        buf.extend_from_slice(&len.to_be_bytes());
    }
}

/// Redis's `rdbEncodeInteger`: the 8/16/32-bit string encodings.
fn encode_int(buf: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        buf.push(0xc0);
        buf.push(b as u8);
    } else if let Ok(h) = i16::try_from(v) {
        buf.push(0xc1);
        buf.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        buf.push(0xc2);
        buf.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Redis's `rdbSaveRawString`: integer encoding for short canonical
/// integers, LZF for compressible strings over 20 bytes, else length and
/// bytes.
pub(crate) fn save_string(buf: &mut Vec<u8>, s: &[u8], opts: &WriteOptions) {
    if s.len() <= 11 {
        if let Some(v) = parse_canonical_i64(s) {
            if encode_int(buf, v) {
                return;
            }
        }
    }
    if opts.compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            buf.push(0xc3);
            save_len(buf, c.len() as u64);
            save_len(buf, s.len() as u64);
            buf.extend_from_slice(&c);
            return;
        }
    }
    save_len(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

/// Redis 7.0's `packed_threshold`: elements this large get a quicklist node
/// of their own (`PLAIN`).
const PACKED_THRESHOLD: usize = 1 << 30;
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
const SIZE_SAFETY_LIMIT: usize = 8192;
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

/// Redis 7.0's `_quicklistNodeAllowInsert`: whether a node of `node_bytes`
/// bytes and `count` elements takes one more element of `sz` bytes.
fn node_allows(node_bytes: usize, count: u64, fill: i64, sz: usize) -> bool {
    let new_sz = node_bytes + sz + SIZE_ESTIMATE_OVERHEAD;
    if fill < 0 {
        let level = (-fill - 1) as usize;
        if level < OPTIMIZATION_LEVEL.len() && new_sz <= OPTIMIZATION_LEVEL[level] {
            return true;
        }
    }
    if new_sz > SIZE_SAFETY_LIMIT {
        return false;
    }
    (count as i64) < fill
}

enum Node<'a> {
    Packed(LpWriter),
    Plain(&'a [u8]),
}

/// Whether a listpack of entries of these encoded sizes stays within the
/// format's 4 GiB.
fn lp_fits(entry_sizes: impl Iterator<Item = usize>) -> bool {
    let mut total: u64 = 7;
    for n in entry_sizes {
        total += n as u64;
        if total > u32::MAX as u64 {
            return false;
        }
    }
    true
}

/// The RDB type byte `value` is written with, as `rdbSaveObjectType`.
pub(crate) fn value_type(value: &Value) -> u8 {
    match value {
        Value::List(_) => types::LIST_QUICKLIST_2,
        Value::Hash(h) => {
            if h.is_compact() && lp_fits(h.iter().map(|(f, v)| lp_entry_size(f) + lp_entry_size(v)))
            {
                types::HASH_LISTPACK
            } else {
                types::HASH
            }
        }
        Value::Set(s) => {
            if s.is_intset() {
                types::SET_INTSET
            } else {
                types::SET
            }
        }
        Value::ZSet(z) => {
            // A score's text is at most 24 bytes: 32 bounds its entry.
            if z.encoding() == "listpack" && lp_fits(z.iter().map(|(m, _)| lp_entry_size(m) + 32)) {
                types::ZSET_LISTPACK
            } else {
                types::ZSET_2
            }
        }
        Value::Stream(_) => types::STREAM_LISTPACKS_2,
        _ => types::STRING,
    }
}

/// Writes the type byte and the serialized value, as `rdbSaveObjectType`
/// and `rdbSaveObject` do.
pub(crate) fn write_value(buf: &mut Vec<u8>, value: &Value, opts: &WriteOptions) {
    let ty = value_type(value);
    buf.push(ty);
    write_body(buf, value, ty, opts);
}

/// Writes the value in the encoding `ty` (from [`value_type`]).
fn write_body(buf: &mut Vec<u8>, value: &Value, ty: u8, opts: &WriteOptions) {
    match value {
        Value::List(l) => {
            // Re-split into nodes the way quicklistPushTail would have.
            let fill = l.fill().clamp(-5, 1 << 15);
            let mut nodes: Vec<Node<'_>> = Vec::new();
            for e in l.iter() {
                if e.len() >= PACKED_THRESHOLD {
                    nodes.push(Node::Plain(e));
                    continue;
                }
                match nodes.last_mut() {
                    Some(Node::Packed(w))
                        if node_allows(w.total_bytes(), w.len(), fill, e.len()) =>
                    {
                        w.push(e)
                    }
                    _ => {
                        let mut w = LpWriter::new();
                        w.push(e);
                        nodes.push(Node::Packed(w));
                    }
                }
            }
            save_len(buf, nodes.len() as u64);
            for n in nodes {
                match n {
                    Node::Plain(e) => {
                        save_len(buf, 1);
                        save_string(buf, e, opts);
                    }
                    Node::Packed(w) => {
                        save_len(buf, 2);
                        // Nodes stay far below 4 GiB (SIZE_SAFETY_LIMIT, the
                        // 64 KiB level, or one element under 1 GiB).
                        let blob = w.finish().unwrap_or_default();
                        save_string(buf, &blob, opts);
                    }
                }
            }
        }
        Value::Hash(h) if ty == types::HASH_LISTPACK => {
            let mut w = LpWriter::new();
            for (f, v) in h.iter() {
                w.push(f);
                w.push(v);
            }
            save_string(buf, &w.finish().unwrap_or_default(), opts);
        }
        Value::Hash(h) => {
            save_len(buf, h.len() as u64);
            for (f, v) in h.iter() {
                save_string(buf, f, opts);
                save_string(buf, v, opts);
            }
        }
        Value::Set(s) if ty == types::SET_INTSET => {
            let ints: Vec<i64> = s
                .iter()
                .filter_map(|m| match m {
                    Member::Int(i) => Some(i),
                    Member::Bytes(_) => None,
                })
                .collect();
            save_string(buf, &intset_blob(&ints), opts);
        }
        Value::Set(s) => {
            save_len(buf, s.len() as u64);
            let mut ib = itoa::Buffer::new();
            for m in s.iter() {
                save_string(buf, m.bytes(&mut ib), opts);
            }
        }
        Value::ZSet(z) if ty == types::ZSET_LISTPACK => {
            let mut w = LpWriter::new();
            for (m, score) in z.iter() {
                w.push(m);
                w.push(num::d2string(score).as_bytes());
            }
            save_string(buf, &w.finish().unwrap_or_default(), opts);
        }
        Value::ZSet(z) => {
            save_len(buf, z.len() as u64);
            // Greatest first, as Redis walks its skiplist from the tail.
            for (m, score) in z.iter_from(z.len().saturating_sub(1), true) {
                save_string(buf, m, opts);
                buf.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Stream(s) => write_stream(buf, s, opts),
        _ => save_string(buf, value.as_str().unwrap_or_default(), opts),
    }
}

/// `RDB_TYPE_STREAM_LISTPACKS_2` as Redis 7.0's `rdbSaveObject`: the nodes
/// as they are in memory, the stream's ids and counters, then each group
/// with its PEL and its consumers.
fn write_stream(buf: &mut Vec<u8>, s: &rampart_keyspace::stream::Stream, opts: &WriteOptions) {
    let id = |buf: &mut Vec<u8>, id: rampart_keyspace::stream::StreamId| {
        save_len(buf, id.ms);
        save_len(buf, id.seq);
    };
    save_len(buf, s.node_count() as u64);
    for (master, lp) in s.nodes() {
        save_string(buf, &master.encode(), opts);
        save_string(buf, lp, opts);
    }
    save_len(buf, s.length);
    id(buf, s.last_id);
    id(buf, s.first_id);
    id(buf, s.max_deleted_entry_id);
    save_len(buf, s.entries_added);
    save_len(buf, s.groups.len() as u64);
    for (name, g) in &s.groups {
        save_string(buf, name, opts);
        id(buf, g.last_id);
        save_len(buf, g.entries_read as u64);
        save_len(buf, g.pel.len() as u64);
        for (pid, n) in &g.pel {
            buf.extend_from_slice(&pid.encode());
            buf.extend_from_slice(&(n.delivery_time as i64).to_le_bytes());
            save_len(buf, n.delivery_count);
        }
        save_len(buf, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            save_string(buf, cname, opts);
            buf.extend_from_slice(&(c.seen_time as i64).to_le_bytes());
            save_len(buf, c.pel.len() as u64);
            for pid in &c.pel {
                buf.extend_from_slice(&pid.encode());
            }
        }
    }
}

/// The seconds since the epoch, for the `ctime` AUX field.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn write_aux(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let opts = WriteOptions::default();
    buf.push(opcode::AUX);
    save_string(buf, key, &opts);
    save_string(buf, value, &opts);
}

pub(crate) fn header(buf: &mut Vec<u8>, aux: &[(&str, &[u8])]) {
    buf.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    let ctime = now_secs().to_string();
    let defaults: [(&str, &[u8]); 4] = [
        ("redis-ver", REDIS_VER.as_bytes()),
        ("redis-bits", b"64"),
        ("ctime", ctime.as_bytes()),
        ("used-mem", b"0"),
    ];
    let given = |k: &str| aux.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);
    for (k, v) in defaults {
        write_aux(buf, k.as_bytes(), given(k).unwrap_or(v));
    }
    for (k, v) in aux {
        if *k != "aof-base" && !defaults.iter().any(|(d, _)| d == k) {
            write_aux(buf, k.as_bytes(), v);
        }
    }
    write_aux(buf, b"aof-base", given("aof-base").unwrap_or(b"0"));
}

pub(crate) fn entry(
    buf: &mut Vec<u8>,
    key: &[u8],
    value: &Value,
    expire_at_ms: Option<u64>,
    opts: &WriteOptions,
) {
    if let Some(t) = expire_at_ms {
        buf.push(opcode::EXPIRETIME_MS);
        buf.extend_from_slice(&(t.min(i64::MAX as u64)).to_le_bytes());
    }
    let ty = value_type(value);
    buf.push(ty);
    save_string(buf, key, opts);
    write_body(buf, value, ty, opts);
}

pub(crate) fn dump(value: &Value, opts: &WriteOptions) -> Vec<u8> {
    let mut buf = Vec::new();
    write_value(&mut buf, value, opts);
    dump_footer(&mut buf);
    buf
}

/// Appends what closes every DUMP payload (keys' and FUNCTION DUMP's):
/// the RDB version and the CRC-64 of everything before it.
pub(crate) fn dump_footer(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = Crc64::checksum(buf);
    buf.extend_from_slice(&crc.to_le_bytes());
}
