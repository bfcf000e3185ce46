//! The set type. Placeholder: the set family fills this in.

/// A set value.
#[derive(Clone, Debug, Default)]
pub struct Set {}

impl Set {
    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        "intset"
    }

    /// Approximate heap bytes held (MEMORY USAGE, eviction accounting).
    pub fn heap_size(&self) -> usize {
        0
    }
}
