//! Values: what a key holds.

const INLINE: usize = 22;

/// A key's value. Strings come in three shapes, mirroring Redis's `embstr`
/// and `raw`: short strings inline (no allocation), exact-size heap strings
/// for values written whole, and growable strings for values that were
/// modified in place (APPEND, SETRANGE, SETBIT), so repeated appends stay
/// amortised O(1) as with Redis's SDS.
///
/// ```
/// use rampart_keyspace::Value;
/// let mut v = Value::string(b"hello");
/// v.str_mut().expect("a string").extend_from_slice(b" world");
/// assert_eq!(v.as_str(), Some(&b"hello world"[..]));
/// assert_eq!(v.encoding(), "raw");
/// ```
#[derive(Clone, Debug)]
pub enum Value {
    #[doc(hidden)]
    StrInline { len: u8, buf: [u8; INLINE] },
    #[doc(hidden)]
    Str(Box<[u8]>),
    #[doc(hidden)]
    StrRaw(Box<Vec<u8>>),
    /// A list.
    List(Box<crate::list::List>),
    /// A hash.
    Hash(crate::hash::Hash),
    /// A set.
    Set(Box<crate::set::Set>),
    /// A sorted set.
    ZSet(crate::zset::ZSet),
    /// A stream.
    Stream(Box<crate::stream::Stream>),
}

/// The `*-max-listpack-*` / `set-max-intset-entries` thresholds that decide
/// when a small, compact collection converts to its large representation,
/// as Redis's config directives of the same names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodingLimits {
    /// `hash-max-listpack-entries`
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value`
    pub hash_max_listpack_value: usize,
    /// `set-max-intset-entries`
    pub set_max_intset_entries: usize,
    /// `zset-max-listpack-entries`
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value`
    pub zset_max_listpack_value: usize,
    /// `list-max-listpack-size` (negative: a byte limit of 4 KiB << (-n - 1))
    pub list_max_listpack_size: i64,
    /// `stream-node-max-bytes` (0: no limit but the listpack's own)
    pub stream_node_max_bytes: usize,
    /// `stream-node-max-entries` (0: no limit)
    pub stream_node_max_entries: usize,
}

impl Default for EncodingLimits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        EncodingLimits {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
        }
    }
}

/// The Redis type of a value, as TYPE names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `string`
    String,
    /// `list`
    List,
    /// `hash`
    Hash,
    /// `set`
    Set,
    /// `zset`
    ZSet,
    /// `stream`
    Stream,
}

impl Kind {
    /// The name TYPE and SCAN TYPE use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }
}

impl Value {
    /// A string value written whole (SET, MSET, INCR…).
    pub fn string(bytes: &[u8]) -> Value {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Value::StrInline {
                len: bytes.len() as u8,
                buf,
            }
        } else {
            Value::Str(bytes.into())
        }
    }

    /// A string value that was built by in-place modification; reported as
    /// `raw` by OBJECT ENCODING, as Redis does.
    pub fn raw_string(bytes: Vec<u8>) -> Value {
        Value::StrRaw(Box::new(bytes))
    }

    /// An integer stored as its decimal string.
    pub fn int(n: i64) -> Value {
        Value::string(itoa::Buffer::new().format(n).as_bytes())
    }

    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::StrInline { .. } | Value::Str(_) | Value::StrRaw(_) => Kind::String,
            Value::List(_) => Kind::List,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
            Value::Stream(_) => Kind::Stream,
        }
    }

    /// The bytes of a string value, `None` for other types.
    pub fn as_str(&self) -> Option<&[u8]> {
        match self {
            Value::StrInline { len, buf } => Some(&buf[..*len as usize]),
            Value::Str(b) => Some(b),
            Value::StrRaw(v) => Some(v),
            _ => None,
        }
    }

    /// A growable view of a string value (turning it into a `raw` string),
    /// `None` for other types.
    pub fn str_mut(&mut self) -> Option<&mut Vec<u8>> {
        let bytes = match self {
            Value::StrRaw(v) => return Some(v),
            Value::StrInline { len, buf } => buf[..*len as usize].to_vec(),
            Value::Str(b) => b.to_vec(),
            _ => return None,
        };
        *self = Value::StrRaw(Box::new(bytes));
        match self {
            Value::StrRaw(v) => Some(v),
            _ => None,
        }
    }

    /// OBJECT ENCODING's answer for this value.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::StrRaw(_) => "raw",
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
            Value::StrInline { .. } | Value::Str(_) => {
                let s = self.as_str().unwrap_or_default();
                if s.len() <= 20 && parse_canonical_i64(s).is_some() {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
        }
    }

    /// The value's hash table, when its encoding is one (`hashtable` for a
    /// hash or a set, `skiplist` for a sorted set): what DEBUG HTSTATS-KEY
    /// reports.
    pub fn table_shape(&self) -> Option<TableShape> {
        match self {
            Value::Hash(h) => h.table_shape(),
            Value::Set(s) => s.table_shape(),
            Value::ZSet(z) => z.table_shape(),
            _ => None,
        }
    }

    /// Approximate heap bytes held beyond the node itself, for MEMORY USAGE
    /// and eviction accounting.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::StrInline { .. } => 0,
            Value::Str(b) => b.len(),
            Value::StrRaw(v) => v.capacity() + std::mem::size_of::<Vec<u8>>(),
            Value::List(l) => l.heap_size(),
            Value::Hash(h) => h.heap_size(),
            Value::Set(s) => s.heap_size(),
            Value::ZSet(z) => z.heap_size(),
            Value::Stream(s) => s.heap_size(),
        }
    }
}

/// The shape of a value's hash table, for DEBUG HTSTATS-KEY: figures of
/// Rampart's own layout, in the terms of Redis's `dictGetStats`.
///
/// ```
/// use rampart_keyspace::Value;
/// let v = Value::string(b"x");
/// assert!(v.table_shape().is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableShape {
    /// Slots the table has room for without growing.
    pub slots: usize,
    /// Elements held.
    pub elements: usize,
    /// `chains[n]`: how many slots hold a chain of `n` elements. An
    /// open-addressing table (hash and set `hashtable`) has no chains: each
    /// element has a slot of its own, so only lengths 0 and 1 occur; a
    /// sorted set's member index chains for real.
    pub chains: Vec<usize>,
}

impl TableShape {
    /// The shape of an open-addressing table: `elements` slots of one
    /// element, the rest empty.
    pub fn open(slots: usize, elements: usize) -> TableShape {
        let slots = slots.max(elements);
        TableShape {
            slots,
            elements,
            chains: vec![slots - elements, elements],
        }
    }
}

/// Parses a decimal integer the way Redis's `string2ll` does: no spaces, no
/// `+`, no leading zeros, and it must fit in an i64.
///
/// ```
/// use rampart_keyspace::value::parse_canonical_i64;
/// assert_eq!(parse_canonical_i64(b"-42"), Some(-42));
/// assert_eq!(parse_canonical_i64(b"042"), None);
/// assert_eq!(parse_canonical_i64(b"+1"), None);
/// ```
pub fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_stays_small() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(Value::string(b"123").encoding(), "int");
        assert_eq!(Value::string(b"0123").encoding(), "embstr");
        assert_eq!(Value::string(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(Value::string(&[b'a'; 45]).encoding(), "raw");
        assert_eq!(Value::raw_string(b"1".to_vec()).encoding(), "raw");
        assert_eq!(
            Value::int(i64::MIN).as_str(),
            Some(&b"-9223372036854775808"[..])
        );
    }

    #[test]
    fn canonical_integers() {
        assert_eq!(parse_canonical_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_canonical_i64(b"9223372036854775808"), None);
        assert_eq!(parse_canonical_i64(b"-0"), None);
        assert_eq!(parse_canonical_i64(b"-"), None);
        assert_eq!(parse_canonical_i64(b" 1"), None);
    }
}
