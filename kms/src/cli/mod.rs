//! The `rampart` command line: keyring management and snapshot tools.
//!
//! Lives in the kms crate for now (it only needs this crate); the server
//! crate will take it over and add `--config redis.conf`. Errors use
//! `anyhow`: this is binary-facing code.

mod keyring;
mod snapshot;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::{AuditLog, AwsKms, AwsKmsConfig, LocalProvider, Provider};

/// Rampart's offline tools: manage local keyrings, inspect, encrypt, decrypt
/// and rewrap encrypted snapshot files.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
// Parsed once per process: the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage a local keyring file (versioned master keys).
    #[command(subcommand)]
    Keyring(keyring::KeyringCmd),
    /// Inspect, encrypt, decrypt and rewrap envelope files.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCmd),
}

/// Which key to use: a local keyring or AWS KMS.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Local keyring file.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["kms_key_id", "kms"])]
    pub key_file: Option<PathBuf>,
    /// AWS KMS key id, ARN or alias (alias/NAME).
    #[arg(long, value_name = "ID")]
    pub kms_key_id: Option<String>,
    /// Use AWS KMS with the key named in the file's key slot (decrypt/rewrap).
    #[arg(long)]
    pub kms: bool,
    /// KMS endpoint URL for a non-AWS endpoint (else AWS_ENDPOINT_URL_KMS or AWS).
    #[arg(long, value_name = "URL")]
    pub kms_endpoint: Option<String>,
    /// AWS region (else the standard AWS chain).
    #[arg(long, value_name = "REGION")]
    pub kms_region: Option<String>,
    /// Append a JSON line per key use to this file.
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// Take the key settings (kms-provider, kms-key-file, kms-key-id,
    /// kms-region, kms-endpoint, kms-audit-log) from a rampart-server config
    /// file.
    #[arg(long, value_name = "REDIS.CONF", conflicts_with_all = ["key_file", "kms_key_id", "kms"])]
    pub config: Option<PathBuf>,
}

/// Reads a server config file into provider settings; set by the binary
/// that knows the config syntax (the server crate's `rampart`).
pub type ConfigResolver = fn(&Path) -> anyhow::Result<crate::ProviderConfig>;

static RESOLVER: std::sync::OnceLock<ConfigResolver> = std::sync::OnceLock::new();

/// Installs the `--config` reader.
pub fn set_config_resolver(f: ConfigResolver) {
    let _ = RESOLVER.set(f);
}

impl KeyArgs {
    fn is_kms(&self) -> bool {
        self.kms || self.kms_key_id.is_some()
    }

    /// The provider these options name.
    async fn provider(&self) -> anyhow::Result<Provider> {
        if let Some(conf) = &self.config {
            let resolve = RESOLVER
                .get()
                .ok_or_else(|| anyhow::anyhow!("--config is not supported by this binary"))?;
            let mut pc = resolve(conf)?;
            if self.audit_log.is_some() {
                pc.audit_log = self.audit_log.clone();
            }
            return Ok(Provider::from_config(&pc).await?);
        }
        let audit = AuditLog::open(self.audit_log.as_deref())?;
        if let Some(path) = &self.key_file {
            return Ok(Provider::Local(LocalProvider::open(path, audit)?));
        }
        if self.is_kms() {
            return Ok(Provider::Aws(
                kms(self.kms_key_id.clone(), self, audit).await?,
            ));
        }
        anyhow::bail!("no key given: use --key-file PATH or --kms-key-id ID (or --kms)")
    }
}

async fn kms(key_id: Option<String>, args: &KeyArgs, audit: AuditLog) -> anyhow::Result<AwsKms> {
    let cfg = AwsKmsConfig {
        key_id,
        region: args.kms_region.clone(),
        endpoint: args.kms_endpoint.clone(),
        ..Default::default()
    };
    Ok(AwsKms::connect(&cfg, audit).await?)
}

/// Runs a parsed command line.
///
/// ```no_run
/// # async fn f() -> anyhow::Result<()> {
/// use clap::Parser;
/// let cli = rampart_kms::cli::Cli::parse_from(["rampart", "keyring", "list", "--file", "k.json"]);
/// rampart_kms::cli::run(cli).await?;
/// # Ok(()) }
/// ```
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keyring(cmd) => keyring::run(cmd),
        Command::Snapshot(cmd) => snapshot::run(cmd).await,
    }
}

/// A temp file beside `dest` (mode 0600) that becomes `dest` only on
/// [`commit`](AtomicFile::commit); dropped uncommitted, it is removed, so a
/// failed run never leaves a partial output that looks complete.
pub(crate) struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<std::fs::File>,
}

impl AtomicFile {
    pub(crate) fn create(dest: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut rnd = [0u8; 6];
        crate::cipher::random_fill(&mut rnd)?;
        let name = dest
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{} is not a file path", dest.display()))?
            .to_string_lossy()
            .into_owned();
        let tmp = dest.with_file_name(format!(".{name}.tmp-{}", hex::encode(rnd)));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
        })
    }

    pub(crate) fn file(&mut self) -> anyhow::Result<&mut std::fs::File> {
        self.file
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("output already closed"))
    }

    pub(crate) fn commit(mut self) -> anyhow::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| anyhow::anyhow!("output already closed"))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| {
            anyhow::anyhow!(
                "cannot rename {} to {}: {e}",
                self.tmp.display(),
                self.dest.display()
            )
        })?;
        crate::local::sync_dir(&self.dest)?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
