//! The audit log: one JSON line per key use, like CloudTrail's record of the
//! KMS calls a managed service makes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::{Error, KeyContext, Result};

/// One audit record.
///
/// ```
/// let r = rampart_kms::AuditRecord {
///     time: "2025-01-01T00:00:00.000Z".into(), operation: "GenerateDataKey", provider: "local",
///     key_id: "rk-1/1".into(), purpose: "snapshot", dataset: "d".into(), outcome: "success", error: None,
/// };
/// assert!(serde_json::to_string(&r).unwrap().contains("\"outcome\":\"success\""));
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// `GenerateDataKey`, `Decrypt`, `ReEncrypt`, `Encrypt`.
    pub operation: &'static str,
    /// `local` or `aws-kms`.
    pub provider: &'static str,
    /// Key id or ARN.
    pub key_id: String,
    /// What the data key protects: `snapshot`, `full-sync`, `backup`.
    pub purpose: &'static str,
    /// Dataset id.
    pub dataset: String,
    /// `success` or `failure`.
    pub outcome: &'static str,
    /// The error message on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where audit records go: a file opened for append, or nowhere.
///
/// ```
/// use rampart_kms::{AuditLog, KeyContext, Payload};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("audit.jsonl");
/// let log = AuditLog::open(Some(&path)).unwrap();
/// log.record("Decrypt", "local", "rk-1/1", &KeyContext::new("d", Payload::Snapshot), None);
/// assert!(std::fs::read_to_string(&path).unwrap().contains("\"operation\":\"Decrypt\""));
/// assert!(AuditLog::disabled().path().is_none());
/// ```
#[derive(Clone, Default)]
pub struct AuditLog {
    sink: Option<Arc<(PathBuf, Mutex<File>)>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path())
            .finish()
    }
}

impl AuditLog {
    /// A log that records nothing.
    ///
    /// ```
    /// let _ = rampart_kms::AuditLog::disabled();
    /// ```
    pub fn disabled() -> Self {
        AuditLog { sink: None }
    }

    /// Appends to `path` (created 0600 if missing); `None` disables the log.
    ///
    /// ```
    /// assert!(rampart_kms::AuditLog::open(None).unwrap().path().is_none());
    /// ```
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::disabled());
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::Config(format!("cannot open audit log {}: {e}", path.display())))?;
        Ok(AuditLog {
            sink: Some(Arc::new((path.to_path_buf(), Mutex::new(file)))),
        })
    }

    /// The log's path, if enabled.
    ///
    /// ```
    /// assert!(rampart_kms::AuditLog::disabled().path().is_none());
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.sink.as_ref().map(|s| s.0.as_path())
    }

    /// Writes one record. A failure to write is logged through `tracing`
    /// and does not fail the key operation: losing the audit trail must not
    /// take the data path down with it.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// AuditLog::disabled().record("Decrypt", "local", "k", &KeyContext::new("d", Payload::Backup), Some("boom"));
    /// ```
    pub fn record(
        &self,
        operation: &'static str,
        provider: &'static str,
        key_id: &str,
        ctx: &KeyContext,
        error: Option<&str>,
    ) {
        let Some(sink) = &self.sink else { return };
        let rec = AuditRecord {
            time: crate::time::now_rfc3339_millis(),
            operation,
            provider,
            key_id: key_id.to_string(),
            purpose: ctx.purpose.as_str(),
            dataset: ctx.dataset.clone(),
            outcome: if error.is_none() {
                "success"
            } else {
                "failure"
            },
            error: error.map(str::to_string),
        };
        let mut line = match serde_json::to_vec(&rec) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("audit record not serialized: {e}");
                return;
            }
        };
        line.push(b'\n');
        // One write per line on an O_APPEND file keeps lines whole even with
        // several processes appending.
        let mut file = match sink.1.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = file.write_all(&line) {
            tracing::error!("audit log {} not written: {e}", sink.0.display());
        }
    }
}
