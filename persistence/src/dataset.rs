//! The data directory's identity: whether its dataset is encrypted at rest
//! and under which key. Chosen when the dataset is created and fixed after
//! that, as ElastiCache fixes at-rest encryption at cluster creation.

use std::io::Write;
use std::path::Path;

use rampart_kms::AtomicFile;
use serde::{Deserialize, Serialize};

/// File name of the marker inside the data directory.
pub const MARKER: &str = "rampart-dataset.json";

/// What the marker records.
///
/// ```
/// use rampart_persistence::dataset::Dataset;
/// let dir = tempfile::tempdir().unwrap();
/// assert!(Dataset::load(dir.path()).unwrap().is_none());
/// let d = Dataset::new(true, Some("local".into()), Some("keyring-1".into()));
/// d.save(dir.path()).unwrap();
/// assert_eq!(Dataset::load(dir.path()).unwrap(), Some(d));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Random id, bound into every data key's encryption context.
    pub id: String,
    /// Whether snapshots are encrypted.
    pub encrypted: bool,
    /// `local` or `aws` when encrypted.
    pub provider: Option<String>,
    /// The key the dataset was created under: the local keyring's id or the
    /// KMS key id.
    pub key: Option<String>,
    /// Unix seconds at creation.
    pub created: u64,
}

impl Dataset {
    /// A new dataset with a fresh random id.
    pub fn new(encrypted: bool, provider: Option<String>, key: Option<String>) -> Dataset {
        let id: String = (0..16)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        Dataset {
            id: format!("ds-{id}"),
            encrypted,
            provider,
            key,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// Reads the marker of `dir`, `None` when there is none.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Dataset>> {
        let path = dir.join(MARKER);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the marker of `dir` atomically.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let mut f = AtomicFile::create(&dir.join(MARKER))?;
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        f.write_all(&json)?;
        f.commit()
    }
}
