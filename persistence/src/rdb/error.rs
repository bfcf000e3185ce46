//! [`RdbError`]: what is wrong with an RDB stream or a DUMP payload, and
//! where.

use std::fmt;

/// What went wrong. Every variant renders as one line through
/// [`RdbError`]'s `Display`, which adds the byte offset and the key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The stream does not start with `REDIS`.
    BadMagic,
    /// The version after `REDIS` is not a number from 1 to 10.
    UnsupportedVersion(String),
    /// A type byte or opcode this reader does not know.
    UnknownType(u8),
    /// A stream value (types 15, 19, 21).
    Stream,
    /// A module value (types 6, 7); the module's name when it could be read.
    Module(Option<String>),
    /// Module auxiliary data (opcode 247); the module's name.
    ModuleAux(String),
    /// The stream ended in the middle of something.
    Truncated(&'static str),
    /// The CRC-64 trailer does not match the contents.
    Checksum {
        /// The checksum stored in the file (or payload).
        stored: u64,
        /// The checksum of the bytes before it.
        computed: u64,
    },
    /// A DUMP payload whose footer names a newer RDB version, or whose CRC
    /// is wrong (RESTORE's "DUMP payload version or checksum are wrong").
    PayloadVersionOrChecksum,
    /// A compact encoding (`"listpack"`, `"ziplist"`, `"intset"`,
    /// `"zipmap"`, `"LZF string"`, `"length"`) whose internal structure is
    /// invalid, with what is wrong.
    BadEncoding(&'static str, String),
    /// A length that cannot be right (larger than the format allows).
    LengthTooLarge(u64),
    /// A set, hash or sorted set that holds the same member twice.
    Duplicate(&'static str),
    /// A value that is structurally fine but meaningless (a NaN score, a
    /// quicklist container kind that does not exist…).
    BadValue(String),
    /// The caller's [`super::LoadSink`] refused an entry.
    Rejected(String),
    /// Reading the underlying stream failed.
    Io(String),
}

/// An error reading RDB data: what, at which byte offset of the stream (or
/// payload), and in which key when one was being read.
///
/// ```
/// use rampart_persistence::rdb::{load, LoadSink, RdbError};
/// use rampart_keyspace::{EncodingLimits, Value};
/// struct Nothing;
/// impl LoadSink for Nothing {
///     fn entry(&mut self, _: usize, _: &[u8], _: Value, _: Option<u64>) -> Result<(), RdbError> {
///         Ok(())
///     }
/// }
/// let err = load(&b"RDB"[..], &EncodingLimits::default(), &mut Nothing).unwrap_err();
/// assert_eq!(err.to_string(), "not an RDB file: it does not start with \"REDIS\" (at byte 0)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdbError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Byte offset in the stream where the problem was found (for
    /// structures inside a string, the offset of the byte after that
    /// string).
    pub offset: u64,
    /// The key being read, when there was one.
    pub key: Option<Vec<u8>>,
}

impl RdbError {
    /// An error of `kind` at `offset`, with no key.
    pub fn new(kind: ErrorKind, offset: u64) -> RdbError {
        RdbError {
            kind,
            offset,
            key: None,
        }
    }

    /// For a [`super::LoadSink`]: refuse an entry with `reason` (the
    /// loader fills in the offset and key).
    pub fn rejected(reason: impl Into<String>) -> RdbError {
        RdbError::new(ErrorKind::Rejected(reason.into()), 0)
    }

    /// Whether this is RESTORE's "DUMP payload version or checksum are
    /// wrong" (every other RESTORE failure is "Bad data format").
    pub fn is_payload_version_or_checksum(&self) -> bool {
        matches!(self.kind, ErrorKind::PayloadVersionOrChecksum)
    }

    pub(crate) fn with_key(mut self, key: &[u8]) -> RdbError {
        if self.key.is_none() {
            self.key = Some(key.to_vec());
        }
        self
    }
}

/// A key as it appears in messages: printable ASCII as is, other bytes as
/// `\xNN`, long keys cut.
pub(crate) fn show_key(key: &[u8]) -> String {
    const MAX: usize = 64;
    let mut s = String::new();
    for &b in key.iter().take(MAX) {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\'' => s.push_str("\\'"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if key.len() > MAX {
        s.push_str(&format!("… ({} bytes)", key.len()));
    }
    s
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().map(show_key);
        let in_key = key
            .as_ref()
            .map(|k| format!(" in key '{k}'"))
            .unwrap_or_default();
        match &self.kind {
            ErrorKind::BadMagic => write!(f, "not an RDB file: it does not start with \"REDIS\"")?,
            ErrorKind::UnsupportedVersion(v) => write!(
                f,
                "unsupported RDB version {v:?}: Rampart reads versions 1 to {}",
                super::RDB_VERSION
            )?,
            ErrorKind::UnknownType(t) => write!(f, "unknown RDB type or opcode {t}{in_key}")?,
            ErrorKind::Stream => match &key {
                Some(k) => write!(
                    f,
                    "key '{k}' is a stream in Redis 7.2's format (RDB_TYPE_STREAM_LISTPACKS_3), which Redis 7.0 and Rampart do not read"
                )?,
                None => write!(
                    f,
                    "a stream in Redis 7.2's format (RDB_TYPE_STREAM_LISTPACKS_3), which Redis 7.0 and Rampart do not read"
                )?,
            },
            ErrorKind::Module(name) => {
                let m = name
                    .as_ref()
                    .map(|n| format!(" of module type '{n}'"))
                    .unwrap_or_default();
                match &key {
                    Some(k) => write!(
                        f,
                        "key '{k}' holds a module value{m}, which Rampart cannot load"
                    )?,
                    None => write!(f, "a module value{m}, which Rampart cannot load")?,
                }
            }
            ErrorKind::ModuleAux(name) => write!(
                f,
                "the file holds auxiliary data of module '{name}', which Rampart cannot load"
            )?,
            ErrorKind::Truncated(what) => {
                write!(f, "unexpected end of data while reading {what}{in_key}")?
            }
            ErrorKind::Checksum { stored, computed } => write!(
                f,
                "RDB checksum mismatch: expected {stored:#018x} (stored in the file), \
                 got {computed:#018x} (computed from its contents)"
            )?,
            ErrorKind::PayloadVersionOrChecksum => {
                write!(f, "DUMP payload version or checksum are wrong")?
            }
            ErrorKind::BadEncoding(what, why) => write!(f, "bad {what} encoding{in_key}: {why}")?,
            ErrorKind::LengthTooLarge(n) => write!(f, "length {n} is too large{in_key}")?,
            ErrorKind::Duplicate(what) => write!(f, "duplicate {what}{in_key}")?,
            ErrorKind::BadValue(why) => write!(f, "bad value{in_key}: {why}")?,
            ErrorKind::Rejected(why) => write!(f, "entry refused{in_key}: {why}")?,
            ErrorKind::Io(e) => write!(f, "read error: {e}")?,
        }
        write!(f, " (at byte {})", self.offset)
    }
}

impl std::error::Error for RdbError {}
