//! Data keys, key slots and the context a key is bound to.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroize;

use crate::secret::KeyBytes;
use crate::{Error, Result};

/// A 256-bit data key: encrypts one stream, then is zeroized on drop.
///
/// Its bytes sit in a page of their own that core dumps leave out and swap
/// never holds (`MADV_DONTDUMP`, `mlock`). It never prints (its `Debug` shows no bytes) and its bytes never leave the
/// crate: callers move it from a provider into an envelope writer or reader.
///
/// ```
/// use rampart_kms::DataKey;
/// let k = DataKey::from_bytes([7u8; 32]);
/// assert_eq!(format!("{k:?}"), "DataKey(<redacted>)");
/// ```
pub struct DataKey(KeyBytes);

impl DataKey {
    /// Builds a data key from raw bytes (test vectors, interop tools).
    ///
    /// ```
    /// let k = rampart_kms::DataKey::from_bytes([0u8; 32]);
    /// # drop(k);
    /// ```
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let k = DataKey(KeyBytes::from_slice(&bytes));
        bytes.zeroize();
        k
    }

    /// A fresh random data key from the system CSPRNG.
    ///
    /// ```
    /// let k = rampart_kms::DataKey::generate().unwrap();
    /// # drop(k);
    /// ```
    pub fn generate() -> Result<Self> {
        let mut k = KeyBytes::zeroed();
        crate::cipher::random_fill(k.as_mut())?;
        Ok(DataKey(k))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        self.0.as_array()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// What an envelope carries; also the "purpose" a data key is bound to.
///
/// ```
/// use rampart_kms::Payload;
/// assert_eq!(Payload::from_u8(2).unwrap(), Payload::FullSync);
/// assert_eq!(Payload::Backup.as_str(), "backup");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Payload {
    /// An RDB snapshot file on disk.
    Snapshot = 1,
    /// The full-sync stream to a replica.
    FullSync = 2,
    /// A backup in object storage.
    Backup = 3,
}

impl Payload {
    /// Parses the header byte.
    ///
    /// ```
    /// assert!(rampart_kms::Payload::from_u8(9).is_err());
    /// ```
    pub fn from_u8(b: u8) -> Result<Self> {
        match b {
            1 => Ok(Payload::Snapshot),
            2 => Ok(Payload::FullSync),
            3 => Ok(Payload::Backup),
            other => Err(Error::BadPayload(other)),
        }
    }

    /// The stable name used in encryption contexts and the audit log.
    ///
    /// ```
    /// assert_eq!(rampart_kms::Payload::Snapshot.as_str(), "snapshot");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Payload::Snapshot => "snapshot",
            Payload::FullSync => "full-sync",
            Payload::Backup => "backup",
        }
    }

    /// Parses [`Payload::as_str`]'s names.
    ///
    /// ```
    /// assert_eq!(rampart_kms::Payload::parse("backup"), Some(rampart_kms::Payload::Backup));
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "snapshot" => Some(Payload::Snapshot),
            "full-sync" => Some(Payload::FullSync),
            "backup" => Some(Payload::Backup),
            _ => None,
        }
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a data key is bound to: the dataset and the purpose. Providers pass it
/// as the KMS `EncryptionContext` (or as AAD of the local wrap), so a key
/// slot cannot be moved to another dataset or purpose.
///
/// ```
/// use rampart_kms::{KeyContext, Payload};
/// let ctx = KeyContext::new("cache-1", Payload::Snapshot);
/// let map = ctx.encryption_context();
/// assert_eq!(map["rampart:dataset"], "cache-1");
/// assert_eq!(map["rampart:purpose"], "snapshot");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyContext {
    /// Dataset id (the `dataset` pair of the envelope context).
    pub dataset: String,
    /// Purpose: the envelope's payload type.
    pub purpose: Payload,
}

impl KeyContext {
    /// A context for `dataset` and `purpose`.
    ///
    /// ```
    /// let c = rampart_kms::KeyContext::new("d", rampart_kms::Payload::Backup);
    /// assert_eq!(c.dataset, "d");
    /// ```
    pub fn new(dataset: impl Into<String>, purpose: Payload) -> Self {
        KeyContext {
            dataset: dataset.into(),
            purpose,
        }
    }

    /// The key/value pairs given to KMS as `EncryptionContext`.
    ///
    /// ```
    /// let c = rampart_kms::KeyContext::new("d", rampart_kms::Payload::Backup);
    /// assert_eq!(c.encryption_context().len(), 2);
    /// ```
    pub fn encryption_context(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("rampart:dataset".to_string(), self.dataset.clone()),
            (
                "rampart:purpose".to_string(),
                self.purpose.as_str().to_string(),
            ),
        ])
    }

    /// Canonical bytes of the context, used as AAD by the local keyring:
    /// for each pair in key order, `u16 len ‖ key ‖ u16 len ‖ value`.
    pub(crate) fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in self.encryption_context() {
            for part in [k.as_bytes(), v.as_bytes()] {
                let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&part[..usize::from(len)]);
            }
        }
        out
    }
}

/// Provider name of local-keyring slots.
pub const PROVIDER_LOCAL: &str = "local";
/// Provider name of AWS KMS slots.
pub const PROVIDER_AWS: &str = "aws-kms";

/// A wrapped data key as stored in an envelope's key slot: the provider, the
/// key id, and the provider's opaque blob. Not secret, but the blob is not
/// printed either (only its length).
///
/// ```
/// use rampart_kms::KeySlot;
/// let s = KeySlot::new("local", "rk-0123/1", vec![0; 60]);
/// assert!(format!("{s:?}").contains("60 bytes"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeySlot {
    /// `"local"` or `"aws-kms"`.
    pub provider: String,
    /// Local: `<keyring id>/<version>`; AWS: the key ARN.
    pub key_id: String,
    /// The wrapped data key.
    pub wrapped: Vec<u8>,
}

impl KeySlot {
    /// Builds a slot.
    ///
    /// ```
    /// let s = rampart_kms::KeySlot::new("aws-kms", "arn:aws:kms:us-east-1:1:key/x", vec![1, 2]);
    /// assert_eq!(s.provider, "aws-kms");
    /// ```
    pub fn new(provider: impl Into<String>, key_id: impl Into<String>, wrapped: Vec<u8>) -> Self {
        KeySlot {
            provider: provider.into(),
            key_id: key_id.into(),
            wrapped,
        }
    }
}

impl fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeySlot {{ provider: {:?}, key_id: {:?}, wrapped: {} bytes }}",
            self.provider,
            self.key_id,
            self.wrapped.len()
        )
    }
}

impl fmt::Display for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.key_id)
    }
}
