//! Envelope format v1: one format for every encrypted byte stream (snapshot
//! files, the full-sync stream, backups). See `docs/envelope.md`.
//!
//! A stream is a header (authenticated by a key commitment), key slots (not
//! authenticated, so they can be rewrapped), then fixed-size AES-256-GCM
//! chunks; the last chunk is flagged final and shorter than the chunk size
//! (possibly empty), which makes the stream self-delimiting and truncation
//! detectable.

mod header;
mod inspect;
mod reader;
mod writer;

pub use header::{
    DEFAULT_CHUNK_LOG2, EnvelopeParams, Header, MAGIC, MAX_CHUNK_LOG2, MIN_CHUNK_LOG2, SUITE_V1,
};
pub use inspect::{ScanReport, scan};
pub use reader::{AsyncEnvelopeReader, EnvelopeReader};
pub use writer::{AsyncEnvelopeWriter, EnvelopeWriter};

use std::fmt;

use crate::cipher::{ChunkCipher, TAG_LEN, ct_eq};
use crate::{DataKey, Error, Result};

/// Length of a chunk's length prefix.
pub(crate) const LEN_PREFIX: usize = 4;

/// A stream's chunk key, derived from its data key and header, whose
/// commitment has been checked: proof that decryption may begin.
///
/// Obtained from [`Provider::open_header`](crate::Provider::open_header) or
/// [`StreamKey::from_data_key`].
pub struct StreamKey {
    pub(crate) cipher: ChunkCipher,
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(<redacted>)")
    }
}

impl StreamKey {
    /// Derives the stream key from `data_key` and checks it against the
    /// header's commitment; [`Error::WrongKey`] if it does not match.
    ///
    /// ```
    /// use rampart_kms::*;
    /// let params = EnvelopeParams::from_pairs(Payload::Snapshot, 16, &[("dataset", "d")]);
    /// let slot = KeySlot::new("test", "k", vec![]);
    /// let mut w = EnvelopeWriter::new(Vec::new(), &params, DataKey::from_bytes([1; 32]), vec![slot]).unwrap();
    /// let bytes = w.finish().unwrap();
    /// let (h, _) = Header::from_bytes(&bytes).unwrap();
    /// assert!(StreamKey::from_data_key(&h, &DataKey::from_bytes([1; 32])).is_ok());
    /// assert!(matches!(StreamKey::from_data_key(&h, &DataKey::from_bytes([2; 32])), Err(Error::WrongKey)));
    /// ```
    pub fn from_data_key(header: &Header, data_key: &DataKey) -> Result<StreamKey> {
        let (cipher, commitment) =
            ChunkCipher::derive(data_key, &header.salt, &header.authenticated_prefix())?;
        if !ct_eq(&commitment, &header.commitment) {
            return Err(Error::WrongKey);
        }
        Ok(StreamKey { cipher })
    }
}

/// Offset of chunk `index` from the start of the chunks, for ranged reads:
/// every chunk before the final one has exactly the chunk size.
///
/// ```
/// assert_eq!(rampart_kms::envelope::chunk_offset(16, 2), 2 * (4 + 65536 + 16));
/// ```
pub fn chunk_offset(chunk_log2: u8, index: u64) -> u64 {
    index * (LEN_PREFIX as u64 + (1u64 << chunk_log2) + TAG_LEN as u64)
}
