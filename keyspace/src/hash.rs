//! The hash type. Placeholder: the hash family fills this in.

/// A hash value.
#[derive(Clone, Debug, Default)]
pub struct Hash {}

impl Hash {
    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Approximate heap bytes held (MEMORY USAGE, eviction accounting).
    pub fn heap_size(&self) -> usize {
        0
    }
}
