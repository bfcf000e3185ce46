//! Keys: immutable byte strings stored inline when short.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

const INLINE: usize = 22;

/// A key: up to 22 bytes live inside the 24-byte value itself, longer keys on
/// the heap. Most real keys are short, and every key saved from an allocation
/// is 16-32 bytes saved per key.
///
/// ```
/// use rampart_keyspace::Key;
/// let k = Key::new(b"user:1000");
/// assert_eq!(&*k, b"user:1000");
/// ```
#[derive(Clone)]
pub enum Key {
    #[doc(hidden)]
    Inline { len: u8, buf: [u8; INLINE] },
    #[doc(hidden)]
    Heap(Box<[u8]>),
}

impl Key {
    /// Copies `bytes` into a new key.
    pub fn new(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Key::Inline {
                len: bytes.len() as u8,
                buf,
            }
        } else {
            Key::Heap(bytes.into())
        }
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..*len as usize],
            Key::Heap(b) => b,
        }
    }
}

impl Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        Key::new(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_round_trip() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 1, 22, 23, 100] {
            let v = vec![7u8; len];
            let k = Key::new(&v);
            assert_eq!(k.as_bytes(), &v[..]);
            assert_eq!(matches!(k, Key::Inline { .. }), len <= INLINE);
        }
    }
}
