//! At-rest encryption settings: which key provider the config names, and
//! the service-managed default keyring created at first start.

use std::path::{Path, PathBuf};

use rampart_kms::{Provider, ProviderConfig, ProviderKind};

use crate::config::Config;

/// Where the service-managed keyring lives when `kms-key-file` is not set:
/// `<dir>/keys/keyring.json`.
pub fn default_keyring(config: &Config) -> PathBuf {
    Path::new(&config.get("dir").unwrap_or_else(|| ".".into()))
        .join("keys")
        .join("keyring.json")
}

/// The provider settings of a configuration; `None` when
/// `encryption-at-rest no`.
///
/// ```
/// use rampart_server::config::Config;
/// use rampart_server::encryption::provider_config;
/// let c = Config::default();
/// let p = provider_config(&c).unwrap();
/// assert!(p.key_file.unwrap().ends_with("keys/keyring.json"));
/// ```
pub fn provider_config(config: &Config) -> Option<ProviderConfig> {
    if !config.flag("encryption-at-rest") {
        return None;
    }
    let opt = |name: &str| config.get(name).filter(|v| !v.is_empty());
    let kind = match config.get("kms-provider").as_deref() {
        Some("aws") => ProviderKind::Aws,
        _ => ProviderKind::Local,
    };
    Some(ProviderConfig {
        provider: kind,
        key_file: match kind {
            ProviderKind::Local => Some(
                opt("kms-key-file")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| default_keyring(config)),
            ),
            ProviderKind::Aws => None,
        },
        key_id: opt("kms-key-id"),
        region: opt("kms-region"),
        endpoint: opt("kms-endpoint"),
        audit_log: opt("kms-audit-log").map(PathBuf::from),
    })
}

/// Opens the configured provider at startup, creating the service-managed
/// keyring when encryption is on with a local provider and no keyring
/// exists yet, and logs what is in use.
pub async fn open(config: &Config) -> anyhow::Result<Option<Provider>> {
    let Some(pc) = provider_config(config) else {
        tracing::warn!(
            "Encryption at rest is off (encryption-at-rest no): snapshots and backups will be written in the clear"
        );
        return Ok(None);
    };
    if let (ProviderKind::Local, Some(path)) = (pc.provider, &pc.key_file) {
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        let (ring, created) = rampart_kms::LocalKeyring::open_or_create(path)
            .map_err(|e| anyhow::anyhow!("opening the keyring {}: {e}", path.display()))?;
        if created {
            tracing::warn!(
                "Created a local keyring at {} (the service-managed default key). It protects snapshot files, replication streams and backups that leave this machine; it does not protect against someone who holds both the data directory and this key file. Back it up separately: without it the data cannot be decrypted.",
                path.display()
            );
        } else {
            tracing::info!(
                "Encryption at rest: local keyring {} (primary key version {})",
                path.display(),
                ring.primary_version()
            );
        }
    }
    let provider = Provider::from_config(&pc)
        .await
        .map_err(|e| anyhow::anyhow!("opening the key provider: {e}"))?;
    if pc.provider == ProviderKind::Aws {
        tracing::info!(
            "Encryption at rest: AWS KMS key {} (region {}, endpoint {})",
            pc.key_id.as_deref().unwrap_or("(none)"),
            pc.region.as_deref().unwrap_or("from the AWS chain"),
            pc.endpoint.as_deref().unwrap_or("AWS")
        );
    }
    Ok(Some(provider))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("creating the key directory {}: {e}", dir.display()))
}
