//! Redis's RDB format, version 10 (Redis 7.0).
//!
//! **Writing** uses the encodings Redis 7.0 itself chooses for each value
//! as Rampart holds it: strings with the integer and LZF encodings, lists as
//! `LIST_QUICKLIST_2` (listpack nodes split as Redis's quicklist splits
//! them), hashes and sorted sets as listpacks while they are compact and as
//! `HASH` / `ZSET_2` beyond, sets as intsets or `SET`. So a small value's
//! DUMP payload is byte-identical to Redis's, and every file loads in
//! `redis-server` 7.0.
//!
//! **Reading** accepts every encoding Redis 7.0 can load: raw, integer and
//! LZF strings; lists as `LIST`, `LIST_ZIPLIST`, `LIST_QUICKLIST` (ziplist
//! nodes) and `LIST_QUICKLIST_2` (listpack and plain nodes); sets as `SET`
//! and `SET_INTSET`; sorted sets as `ZSET` (text scores), `ZSET_2`,
//! `ZSET_ZIPLIST` and `ZSET_LISTPACK`; hashes as `HASH`, `HASH_ZIPMAP`,
//! `HASH_ZIPLIST` and `HASH_LISTPACK`; the opcodes `AUX`, `RESIZEDB`,
//! `EXPIRETIME_MS`, `EXPIRETIME`, `SELECTDB`, `EOF`, `IDLE`, `FREQ`,
//! `FUNCTION2` and the 7.0-rc `FUNCTION`. Streams and module values are
//! refused with an error that names the key. Compact encodings are
//! validated whole (Redis's deep sanitization: entry bounds, counts,
//! ordering of intsets, duplicate members), and values take the encoding
//! the [`EncodingLimits`] give them, as Redis converts on load.
//!
//! ```
//! use rampart_keyspace::{EncodingLimits, Value};
//! use rampart_persistence::rdb::{self, LoadSink, RdbError};
//!
//! let mut file = Vec::new();
//! rdb::write_header(&mut file, &[]);
//! rdb::write_select_db(&mut file, 0);
//! rdb::write_resize_db(&mut file, 1, 0);
//! rdb::write_entry(&mut file, b"greeting", &Value::string(b"hello"), None);
//! rdb::write_eof(&mut file);
//! let crc = rdb::Crc64::checksum(&file);
//! file.extend_from_slice(&crc.to_le_bytes());
//!
//! #[derive(Default)]
//! struct Keys(Vec<(usize, Vec<u8>, Vec<u8>)>);
//! impl LoadSink for Keys {
//!     fn entry(&mut self, db: usize, key: &[u8], v: Value, _: Option<u64>) -> Result<(), RdbError> {
//!         self.0.push((db, key.to_vec(), v.as_str().unwrap_or_default().to_vec()));
//!         Ok(())
//!     }
//! }
//! let mut keys = Keys::default();
//! let stats = rdb::load(&file[..], &EncodingLimits::default(), &mut keys).unwrap();
//! assert_eq!(stats.keys, 1);
//! assert_eq!(keys.0, vec![(0, b"greeting".to_vec(), b"hello".to_vec())]);
//! ```

mod crc;
mod encodings;
mod error;
mod lzf;
mod num;
mod read;
mod write;

use rampart_keyspace::{EncodingLimits, Value};

pub use crc::Crc64;
pub use error::{ErrorKind, RdbError};
pub use write::WriteOptions;

/// The RDB version written (and the newest read).
pub const RDB_VERSION: u16 = 10;

/// The Redis version the `redis-ver` AUX field names: the one whose RDB
/// format and DUMP payloads Rampart reproduces.
pub const REDIS_VER: &str = "7.0.15";

/// Value type bytes (`RDB_TYPE_*`).
pub mod types {
    /// A string.
    pub const STRING: u8 = 0;
    /// A list of strings (before quicklists).
    pub const LIST: u8 = 1;
    /// A set of strings.
    pub const SET: u8 = 2;
    /// A sorted set with scores as text.
    pub const ZSET: u8 = 3;
    /// A hash of field/value strings.
    pub const HASH: u8 = 4;
    /// A sorted set with binary scores.
    pub const ZSET_2: u8 = 5;
    /// A module value (pre-GA).
    pub const MODULE_PRE_GA: u8 = 6;
    /// A module value.
    pub const MODULE_2: u8 = 7;
    /// A hash as a zipmap (Redis < 2.6).
    pub const HASH_ZIPMAP: u8 = 9;
    /// A list as one ziplist.
    pub const LIST_ZIPLIST: u8 = 10;
    /// A set as an intset.
    pub const SET_INTSET: u8 = 11;
    /// A sorted set as a ziplist.
    pub const ZSET_ZIPLIST: u8 = 12;
    /// A hash as a ziplist.
    pub const HASH_ZIPLIST: u8 = 13;
    /// A list as a quicklist of ziplists.
    pub const LIST_QUICKLIST: u8 = 14;
    /// A stream.
    pub const STREAM_LISTPACKS: u8 = 15;
    /// A hash as a listpack.
    pub const HASH_LISTPACK: u8 = 16;
    /// A sorted set as a listpack.
    pub const ZSET_LISTPACK: u8 = 17;
    /// A list as a quicklist of listpacks and plain nodes.
    pub const LIST_QUICKLIST_2: u8 = 18;
    /// A stream (7.0).
    pub const STREAM_LISTPACKS_2: u8 = 19;
    /// A set as a listpack (Redis 7.2; not read).
    pub const SET_LISTPACK: u8 = 20;
    /// A stream (7.2).
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// Opcodes (`RDB_OPCODE_*`).
pub mod opcode {
    /// A function library.
    pub const FUNCTION2: u8 = 245;
    /// A function library in the 7.0-rc format.
    pub const FUNCTION: u8 = 246;
    /// Module auxiliary data.
    pub const MODULE_AUX: u8 = 247;
    /// The next key's LRU idle time.
    pub const IDLE: u8 = 248;
    /// The next key's LFU frequency.
    pub const FREQ: u8 = 249;
    /// An AUX field.
    pub const AUX: u8 = 250;
    /// Size hints for the current database.
    pub const RESIZEDB: u8 = 251;
    /// The next key's expire time, in milliseconds.
    pub const EXPIRETIME_MS: u8 = 252;
    /// The next key's expire time, in seconds.
    pub const EXPIRETIME: u8 = 253;
    /// Select a database.
    pub const SELECTDB: u8 = 254;
    /// End of the data (the CRC-64 follows from version 5 on).
    pub const EOF: u8 = 255;
}

/// `REDIS0010` and the AUX fields Redis 7.0 writes first: `redis-ver`,
/// `redis-bits`, `ctime` (now), `used-mem` (0 unless given), then the
/// caller's other pairs (e.g. `repl-stream-db`, `repl-id`, `repl-offset`)
/// and `aof-base` (0 unless given) last. A pair in `aux` named like one of
/// the defaults replaces it in place.
pub fn write_header(buf: &mut Vec<u8>, aux: &[(&str, &[u8])]) {
    write::header(buf, aux);
}

/// An AUX field on its own (for fields that must come after the header).
pub fn write_aux(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    write::write_aux(buf, key, value);
}

/// `SELECTDB db`.
pub fn write_select_db(buf: &mut Vec<u8>, db: u64) {
    buf.push(opcode::SELECTDB);
    write::save_len(buf, db);
}

/// `RESIZEDB size expires` (hints for the loader's tables).
pub fn write_resize_db(buf: &mut Vec<u8>, size: u64, expires: u64) {
    buf.push(opcode::RESIZEDB);
    write::save_len(buf, size);
    write::save_len(buf, expires);
}

/// One key: `EXPIRETIME_MS` when it has an expiry, the type byte, the key,
/// the value (compressed as with `rdbcompression yes`).
pub fn write_entry(buf: &mut Vec<u8>, key: &[u8], value: &Value, expire_at_ms: Option<u64>) {
    write::entry(buf, key, value, expire_at_ms, &WriteOptions::default());
}

/// [`write_entry`] with explicit options (`rdbcompression no`: no LZF).
pub fn write_entry_with(
    buf: &mut Vec<u8>,
    key: &[u8],
    value: &Value,
    expire_at_ms: Option<u64>,
    opts: &WriteOptions,
) {
    write::entry(buf, key, value, expire_at_ms, opts);
}

/// A function library (`FUNCTION2`), for when Rampart has functions.
pub fn write_function(buf: &mut Vec<u8>, code: &[u8]) {
    buf.push(opcode::FUNCTION2);
    write::save_string(buf, code, &WriteOptions::default());
}

/// The `EOF` opcode. The caller then appends the CRC-64 of everything
/// before it, little endian: `Crc64::checksum(&buf).to_le_bytes()` (or a
/// streaming [`Crc64`] over the bytes as they were written).
pub fn write_eof(buf: &mut Vec<u8>) {
    buf.push(opcode::EOF);
}

/// Receives what [`load`] reads.
pub trait LoadSink {
    /// An AUX field (they are also collected in [`LoadStats::aux`]).
    fn aux(&mut self, _key: &[u8], _value: &[u8]) {}
    /// A function library's code (`FUNCTION2`, or a 7.0-rc `FUNCTION`
    /// translated to the same `#!engine name=…` form).
    fn function(&mut self, _code: &[u8]) {}
    /// `RESIZEDB`: how many keys (and keys with expiries) database `db` is
    /// about to receive.
    fn resize_db(&mut self, _db: usize, _size: u64, _expires: u64) {}
    /// A key of database `db`, with its absolute expiry in Unix
    /// milliseconds. Keys already expired are passed on too: whether to
    /// drop them is the caller's choice (Redis drops them when loading as a
    /// master). An error stops the load; [`RdbError::rejected`] makes one.
    fn entry(
        &mut self,
        db: usize,
        key: &[u8],
        value: Value,
        expire_at_ms: Option<u64>,
    ) -> Result<(), RdbError>;
}

/// What a [`load`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// The file's RDB version.
    pub version: u16,
    /// Keys handed to the sink.
    pub keys: u64,
    /// Keys skipped because they had expired (always 0: the sink decides).
    pub expired_skipped: u64,
    /// Empty collections skipped, as Redis skips them.
    pub empty_skipped: u64,
    /// Function libraries handed to the sink.
    pub functions: u64,
    /// Every AUX field, in order.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// The CRC-64 trailer, when the file has one and it is not 0 (0 means
    /// the writer did not checksum, `rdbchecksum no`).
    pub checksum: Option<u64>,
    /// Bytes read, trailer included.
    pub bytes: u64,
}

/// Reads a whole RDB stream, handing every key to `sink`. Reads nothing
/// past the CRC-64 trailer.
pub fn load<R: std::io::Read>(
    r: R,
    limits: &EncodingLimits,
    sink: &mut impl LoadSink,
) -> Result<LoadStats, RdbError> {
    read::load_stream(r, limits, sink, true)
}

/// [`load`], checking the CRC-64 trailer only when `verify_checksum`:
/// Redis skips the check while `DEBUG SET-SKIP-CHECKSUM-VALIDATION 1` is
/// set, so test suites can load a file they edited by hand.
///
/// ```
/// use rampart_keyspace::{EncodingLimits, Value};
/// use rampart_persistence::rdb;
///
/// struct Count(u64);
/// impl rdb::LoadSink for Count {
///     fn entry(&mut self, _: usize, _: &[u8], _: Value, _: Option<u64>) -> Result<(), rdb::RdbError> {
///         self.0 += 1;
///         Ok(())
///     }
/// }
/// let mut file = Vec::new();
/// rdb::write_header(&mut file, &[]);
/// rdb::write_select_db(&mut file, 0);
/// rdb::write_entry(&mut file, b"k", &Value::string(b"v"), None);
/// rdb::write_eof(&mut file);
/// file.extend_from_slice(&1u64.to_le_bytes()); // a wrong CRC-64
/// let l = EncodingLimits::default();
/// assert!(rdb::load(&file[..], &l, &mut Count(0)).is_err());
/// let stats = rdb::load_with(&file[..], &l, &mut Count(0), false).unwrap();
/// assert_eq!(stats.keys, 1);
/// ```
pub fn load_with<R: std::io::Read>(
    r: R,
    limits: &EncodingLimits,
    sink: &mut impl LoadSink,
    verify_checksum: bool,
) -> Result<LoadStats, RdbError> {
    read::load_stream(r, limits, sink, verify_checksum)
}

/// A DUMP payload: the type byte, the value, the RDB version (2 bytes,
/// little endian) and the CRC-64 of all that (8 bytes, little endian), as
/// Redis 7.0's DUMP.
pub fn dump_value(value: &Value) -> Vec<u8> {
    write::dump(value, &WriteOptions::default())
}

/// [`dump_value`] with explicit options.
pub fn dump_value_with(value: &Value, opts: &WriteOptions) -> Vec<u8> {
    write::dump(value, opts)
}

/// Decodes a DUMP payload after checking its version (at most
/// [`RDB_VERSION`]) and CRC. An error for which
/// [`RdbError::is_payload_version_or_checksum`] holds is RESTORE's
/// "ERR DUMP payload version or checksum are wrong"; any other is
/// "ERR Bad data format". As in Redis the value is decoded from the whole
/// payload: bytes after it are ignored, and a value may run into the
/// footer's bytes.
pub fn restore_value(payload: &[u8], limits: &EncodingLimits) -> Result<Value, RdbError> {
    read::restore(payload, limits, true)
}

/// [`restore_value`], checking the CRC-64 only when `verify_checksum`
/// (the version is always checked), as Redis's `verifyDumpPayload` does
/// under `DEBUG SET-SKIP-CHECKSUM-VALIDATION 1`.
///
/// ```
/// use rampart_keyspace::{EncodingLimits, Value};
/// use rampart_persistence::rdb;
///
/// let mut payload = rdb::dump_value(&Value::string(b"v"));
/// let n = payload.len();
/// payload[n - 1] ^= 0xff; // break the CRC-64
/// let l = EncodingLimits::default();
/// assert!(rdb::restore_value(&payload, &l).is_err());
/// assert!(rdb::restore_value_with(&payload, &l, false).is_ok());
/// ```
pub fn restore_value_with(
    payload: &[u8],
    limits: &EncodingLimits,
    verify_checksum: bool,
) -> Result<Value, RdbError> {
    read::restore(payload, limits, verify_checksum)
}

/// FUNCTION DUMP's payload: each library's code as a `FUNCTION2` record,
/// then the RDB version and CRC-64 footer every DUMP payload ends with.
///
/// ```
/// use rampart_persistence::rdb;
///
/// let code: &[u8] = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)";
/// let payload = rdb::dump_functions([code]);
/// let back = rdb::restore_functions(&payload, true).unwrap();
/// assert_eq!(back.libraries, vec![code.to_vec()]);
/// assert_eq!(back.error, None);
/// ```
pub fn dump_functions<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut buf = Vec::new();
    for code in codes {
        write_function(&mut buf, code);
    }
    write::dump_footer(&mut buf);
    buf
}

/// What [`restore_functions`] read from a FUNCTION RESTORE payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionsPayload {
    /// Each library's code, in the payload's order, up to any error.
    pub libraries: Vec<Vec<u8>>,
    /// Why reading stopped early, in Redis's words ("given type is not a
    /// function", "Failed loading library payload", …). Redis creates each
    /// library as it reads it, so an error creating one of `libraries`
    /// comes first.
    pub error: Option<&'static str>,
}

/// Reads a FUNCTION DUMP payload after checking its version, and its CRC
/// when `verify_checksum`, as [`restore_value_with`] does (an error is then
/// FUNCTION RESTORE's "ERR DUMP payload version or checksum are wrong").
pub fn restore_functions(
    payload: &[u8],
    verify_checksum: bool,
) -> Result<FunctionsPayload, RdbError> {
    read::restore_functions(payload, verify_checksum)
}

#[cfg(test)]
mod tests;
