//! rampart-kms: the **key provider** and the **envelope format**.
//!
//! One abstraction, [`Provider`], wraps fresh per-stream data keys and
//! unwraps them, with two implementations:
//! - [`LocalKeyring`] (`kms-provider local`): versioned 256-bit master keys
//!   in a 0600 key file, one primary; rotate, disable, enable.
//! - [`AwsKms`] (`kms-provider aws`): AWS KMS `GenerateDataKey`, `Decrypt`,
//!   `Encrypt`, `ReEncrypt`, with an encryption context naming the dataset
//!   and purpose.
//!
//! Every encrypted byte stream (snapshot files, full sync, backups) is an
//! envelope v1 ([`envelope`], `docs/envelope.md`): written by
//! [`EnvelopeWriter`]/[`AsyncEnvelopeWriter`], read by
//! [`EnvelopeReader`]/[`AsyncEnvelopeReader`], rewrapped to another key
//! without touching the body by [`rewrap_stream`]. Every key use goes to the
//! [`AuditLog`]. All cryptography is `ring`, behind one module; raw key bytes
//! never leave this crate.
//!
//! ```
//! use std::io::{Read, Write};
//! use rampart_kms::*;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("keyring.json");
//! LocalKeyring::init(&path).unwrap();
//! let provider = Provider::from_config(&ProviderConfig {
//!     provider: ProviderKind::Local,
//!     key_file: Some(path),
//!     ..Default::default()
//! }).await.unwrap();
//!
//! // Write: one fresh data key per stream.
//! let params = EnvelopeParams::new(Payload::Snapshot, "cache-1");
//! let (key, slot) = provider.generate_data_key(&params.key_context().unwrap()).await.unwrap();
//! let mut w = EnvelopeWriter::new(Vec::new(), &params, key, vec![slot]).unwrap();
//! w.write_all(b"REDIS0010...").unwrap();
//! let stream = w.finish().unwrap();
//!
//! // Read: the header names the key; the commitment is checked first.
//! let mut r = &stream[..];
//! let header = Header::read_from(&mut r).unwrap();
//! let key = provider.open_header(&header).await.unwrap();
//! let mut plain = Vec::new();
//! EnvelopeReader::new(r, header, key).read_to_end(&mut plain).unwrap();
//! assert_eq!(plain, b"REDIS0010...");
//! # });
//! ```

mod atomic_file;
mod audit;
mod aws;
mod cipher;
pub mod cli;
pub mod envelope;
mod error;
mod key;
mod local;
pub mod metrics;
mod provider;
mod secret;
mod time;

pub use atomic_file::AtomicFile;
pub use audit::{AuditLog, AuditRecord};
pub use aws::{AwsKms, AwsKmsConfig, StaticCredentials};
pub use cipher::Sha256;
pub use envelope::{
    AsyncEnvelopeReader, AsyncEnvelopeWriter, EnvelopeParams, EnvelopeReader, EnvelopeWriter,
    Header, StreamKey,
};
pub use error::{Error, Result};
pub use key::{DataKey, KeyContext, KeySlot, PROVIDER_AWS, PROVIDER_LOCAL, Payload};
pub use local::{KeyState, KeyVersionInfo, LocalKeyring};
pub use provider::{
    LocalProvider, Provider, ProviderConfig, ProviderKind, rewrap_stream, rewrap_stream_async,
};
pub use time::rfc3339;
