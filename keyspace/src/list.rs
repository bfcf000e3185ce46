//! The list type. Placeholder: the list family fills this in.

/// A list value.
#[derive(Clone, Debug, Default)]
pub struct List {}

impl List {
    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Approximate heap bytes held (MEMORY USAGE, eviction accounting).
    pub fn heap_size(&self) -> usize {
        0
    }
}
