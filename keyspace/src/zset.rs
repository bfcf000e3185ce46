//! The zset type. Placeholder: the zset family fills this in.

/// A zset value.
#[derive(Clone, Debug, Default)]
pub struct ZSet {}

impl ZSet {
    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Approximate heap bytes held (MEMORY USAGE, eviction accounting).
    pub fn heap_size(&self) -> usize {
        0
    }
}
