//! The crate's one error type.
//!
//! Every variant's message is written for the operator who reads it in a log
//! or on stderr: it names the key, the file or the chunk, and what to do.

use std::path::PathBuf;

/// Everything that can go wrong in key providers, the keyring and envelopes.
///
/// ```
/// use rampart_kms::Error;
/// let e = Error::Truncated { chunks: 3 };
/// assert!(e.to_string().contains("truncated"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- envelope structure -------------------------------------------------
    /// The stream does not start with the v1 magic.
    #[error("not a Rampart envelope: bad magic (expected \"RAMPART\\x01\")")]
    BadMagic,
    /// The stream is empty.
    #[error("not a Rampart envelope: the stream is empty")]
    Empty,
    /// The header names a cipher suite this build does not know.
    #[error("unsupported envelope cipher suite {0} (this build supports suite 1)")]
    UnsupportedSuite(u8),
    /// The header names an unknown payload type.
    #[error("unknown envelope payload type {0} (1 = snapshot, 2 = full sync, 3 = backup)")]
    BadPayload(u8),
    /// The chunk size exponent is outside 16..=24.
    #[error("invalid envelope chunk size 2^{0} (must be 2^16..=2^24)")]
    BadChunkSize(u8),
    /// The header context is not valid `key=value` lines.
    #[error("invalid envelope context: {0}")]
    BadContext(String),
    /// A header or key-slot field is malformed.
    #[error("invalid envelope header: {0}")]
    BadHeader(String),
    /// The stream ends inside the header or key slots.
    #[error("envelope header truncated: the stream ends inside the header or key slots")]
    HeaderTruncated,
    /// The key derived from the slot's data key does not match the header's
    /// commitment: the slot was swapped in from another stream.
    #[error(
        "key commitment mismatch: the data key in key slot {slot} ({key_id}) does not belong to this stream (swapped or foreign key slot); nothing was decrypted"
    )]
    SlotMismatch {
        /// Index of the slot that was used.
        slot: usize,
        /// Key id named by that slot.
        key_id: String,
    },
    /// A caller-supplied data key does not match the header's commitment.
    #[error("key commitment mismatch: wrong data key for this stream; nothing was decrypted")]
    WrongKey,
    /// A chunk's tag did not verify.
    #[error(
        "chunk {index} failed authentication: the stream is corrupted, reordered or tampered with (no plaintext from it was released)"
    )]
    ChunkAuth {
        /// Index of the chunk, from 0.
        index: u64,
    },
    /// A chunk declares a length larger than the stream's chunk size.
    #[error(
        "chunk {index} declares {len} bytes, more than the stream's chunk size {max}: corrupted stream"
    )]
    ChunkTooLarge {
        /// Index of the chunk, from 0.
        index: u64,
        /// Declared ciphertext length.
        len: u64,
        /// The header's chunk size.
        max: u64,
    },
    /// The stream ended without its final chunk.
    #[error("encrypted stream truncated: it ends after {chunks} chunk(s) without the final chunk")]
    Truncated {
        /// Number of complete chunks read.
        chunks: u64,
    },
    /// Bytes follow the final chunk where the end of input was required.
    #[error(
        "unexpected data after the final chunk of the encrypted stream (padded or concatenated file)"
    )]
    TrailingData,
    /// The chunk counter would overflow (2^64 chunks).
    #[error("envelope chunk counter exhausted")]
    TooManyChunks,
    /// No key slot can be opened by the configured provider.
    #[error("no key slot of this stream can be opened by {provider}; the stream's slots: {slots}")]
    NoMatchingSlot {
        /// The provider that was tried.
        provider: String,
        /// Human-readable list of the slots.
        slots: String,
    },
    /// The writer was used after an error or after `finish`.
    #[error("envelope writer already finished or failed")]
    WriterFinished,

    // ---- local keyring -------------------------------------------------------
    /// The key file's permissions are too open.
    #[error("key file {path} has mode {mode:04o}; it must be 0600 (run: chmod 600 {path})")]
    KeyFileMode {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file belongs to another user.
    #[error("key file {path} is owned by uid {owner}, not by the running user (uid {euid})")]
    KeyFileOwner {
        /// The key file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        euid: u32,
    },
    /// The key file is not a valid keyring.
    #[error("key file {path} is not a valid Rampart keyring: {reason}")]
    KeyFileInvalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file does not exist.
    #[error("key file {0} does not exist (create it with: rampart keyring init --file {0})")]
    KeyFileMissing(PathBuf),
    /// `keyring init` on an existing file.
    #[error(
        "key file {0} already exists; refusing to overwrite a keyring (its keys may protect data)"
    )]
    KeyFileExists(PathBuf),
    /// I/O on the key file failed.
    #[error("key file {path}: {source}")]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key version that is disabled was asked to decrypt.
    #[error(
        "local key {key_id} (version {version} of {path}) is disabled: data encrypted under it cannot be decrypted until it is enabled (rampart keyring enable --version {version} --file {path})"
    )]
    LocalKeyDisabled {
        /// The slot's key id.
        key_id: String,
        /// The key version.
        version: u32,
        /// The key file.
        path: PathBuf,
    },
    /// The keyring has no such version.
    #[error("local key {key_id}: keyring {path} has no version {version}")]
    LocalKeyNotFound {
        /// The slot's key id.
        key_id: String,
        /// The key version.
        version: u32,
        /// The key file.
        path: PathBuf,
    },
    /// The slot was made by another keyring.
    #[error(
        "key slot {key_id} was made by keyring {slot_keyring}, but {path} is keyring {keyring}: use the key file the data was encrypted with"
    )]
    ForeignKeyring {
        /// The slot's key id.
        key_id: String,
        /// The keyring id named by the slot.
        slot_keyring: String,
        /// The keyring id of the opened file.
        keyring: String,
        /// The key file.
        path: PathBuf,
    },
    /// A local slot did not unwrap: it belongs to another stream context or is
    /// corrupted, or the key material was replaced.
    #[error(
        "key slot {key_id} does not unwrap under the local key: it was made for another dataset or purpose, the slot is corrupted, or the key material is wrong"
    )]
    LocalUnwrap {
        /// The slot's key id.
        key_id: String,
    },
    /// A keyring operation that makes no sense (e.g. disabling the primary).
    #[error("{0}")]
    KeyringOp(String),

    // ---- AWS KMS ------------------------------------------------------------
    /// The KMS key is disabled.
    #[error(
        "KMS key {key_id} is disabled: data encrypted under it cannot be decrypted until it is enabled"
    )]
    KmsKeyDisabled {
        /// Key id or ARN.
        key_id: String,
    },
    /// The KMS key is scheduled for deletion.
    #[error(
        "KMS key {key_id} is pending deletion: data encrypted under it cannot be decrypted; cancel the deletion (CancelKeyDeletion) and enable the key before the deletion date or the data is lost"
    )]
    KmsKeyPendingDeletion {
        /// Key id or ARN.
        key_id: String,
    },
    /// The KMS key is in another state that forbids the operation.
    #[error("KMS key {key_id} is not usable in its current state: {message}")]
    KmsKeyInvalidState {
        /// Key id or ARN.
        key_id: String,
        /// KMS's message.
        message: String,
    },
    /// The KMS key does not exist (or was deleted).
    #[error(
        "KMS key {key_id} was not found (deleted, wrong region or account, or a typo): data encrypted under a deleted key is unrecoverable"
    )]
    KmsKeyNotFound {
        /// Key id or ARN.
        key_id: String,
    },
    /// The credentials may not use the key.
    #[error("access denied using KMS key {key_id} for {operation}: {message}")]
    KmsAccessDenied {
        /// Key id or ARN.
        key_id: String,
        /// The KMS operation.
        operation: &'static str,
        /// KMS's message.
        message: String,
    },
    /// KMS refused the ciphertext: the encryption context differs or the blob
    /// was altered.
    #[error(
        "KMS key {key_id} refused to decrypt the data key: the encryption context (dataset, purpose) differs from the one it was encrypted with, or the wrapped key is corrupted"
    )]
    KmsWrongContext {
        /// Key id or ARN.
        key_id: String,
    },
    /// The endpoint could not be reached, or kept failing, within the retry
    /// budget.
    #[error("KMS {operation} on key {key_id} failed after retries: {message}")]
    KmsUnavailable {
        /// The KMS operation.
        operation: &'static str,
        /// Key id or ARN.
        key_id: String,
        /// What happened on the last attempt.
        message: String,
    },
    /// Any other KMS error.
    #[error("KMS {operation} on key {key_id} failed: {code}: {message}")]
    Kms {
        /// The KMS operation.
        operation: &'static str,
        /// Key id or ARN.
        key_id: String,
        /// AWS error code.
        code: String,
        /// KMS's message.
        message: String,
    },
    /// The provider configuration is incomplete or contradictory.
    #[error("key provider configuration: {0}")]
    Config(String),

    // ---- other --------------------------------------------------------------
    /// The system random generator failed.
    #[error("system random number generator failed")]
    Random,
    /// I/O on the underlying stream.
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::io::Error> for Error {
    /// Unwraps an [`Error`] that travelled through an `io::Error` (as it does
    /// out of `Read`/`AsyncRead` implementations), so callers see the specific
    /// variant and not "I/O error".
    fn from(e: std::io::Error) -> Self {
        if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return Error::Io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => *ours,
            Some(Err(other)) => Error::Io(std::io::Error::new(kind, other)),
            None => Error::Io(std::io::Error::from(kind)),
        }
    }
}

impl Error {
    /// Converts into an `io::Error` carrying this error, for `Read`/`Write`
    /// implementations; [`From<io::Error>`](Error#impl-From<Error>-for-Error)
    /// recovers it.
    pub(crate) fn into_io(self) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match &self {
            Error::Io(e) => e.kind(),
            Error::Truncated { .. } | Error::HeaderTruncated => ErrorKind::UnexpectedEof,
            _ => ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, self)
    }
}
