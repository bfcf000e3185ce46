//! CRC-64/Jones, the checksum of RDB files and DUMP payloads.

use crc::{Crc, Digest, Table, CRC_64_REDIS};

/// The catalogue's `CRC_64_REDIS` (reflected, polynomial
/// 0xad93d23594c935a9, init 0, no final xor), with 16 lanes of tables.
static JONES: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// Streaming CRC-64 (Jones), as Redis's `crc64(0, …)`.
///
/// ```
/// use rampart_persistence::rdb::Crc64;
/// let mut c = Crc64::new();
/// c.update(b"1234");
/// c.update(b"56789");
/// assert_eq!(c.value(), 0xe9c6d914c4b8d9ca);
/// ```
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest<'static, u64, Table<16>>,
}

impl Crc64 {
    /// A checksum of nothing (0).
    pub fn new() -> Self {
        Crc64 {
            digest: JONES.digest(),
        }
    }

    /// Adds `b` to the checksummed bytes.
    pub fn update(&mut self, b: &[u8]) {
        self.digest.update(b);
    }

    /// The checksum of every byte added so far.
    pub fn value(&self) -> u64 {
        self.digest.clone().finalize()
    }

    /// The checksum of `b` in one call.
    pub fn checksum(b: &[u8]) -> u64 {
        JONES.checksum(b)
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Crc64::new()
    }
}

impl std::fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Crc64({:#018x})", self.value())
    }
}
