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
    /// Whether these options name AWS KMS.
    pub fn is_kms(&self) -> bool {
        self.kms || self.kms_key_id.is_some()
    }

    /// Whether any key option was given.
    pub fn is_given(&self) -> bool {
        self.key_file.is_some() || self.is_kms() || self.config.is_some()
    }

    /// AWS KMS with these options' endpoint, region and audit log, wrapping
    /// new data keys under `key_id` (none: only decrypt, with the key each
    /// slot names).
    pub async fn kms_provider(&self, key_id: Option<String>) -> anyhow::Result<Provider> {
        let audit = AuditLog::open(self.audit_log.as_deref())?;
        Ok(Provider::Aws(kms(key_id, self, audit).await?))
    }

    /// A local keyring at `path`, audited like these options say.
    pub fn keyring_provider(&self, path: &Path) -> anyhow::Result<Provider> {
        let audit = AuditLog::open(self.audit_log.as_deref())?;
        Ok(Provider::Local(LocalProvider::open(path, audit)?))
    }

    /// The provider these options name.
    pub async fn provider(&self) -> anyhow::Result<Provider> {
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
    run_command(cli.command).await
}

/// Runs one command (for binaries that embed [`Command`] in their own CLI).
///
/// ```no_run
/// # async fn f(cmd: rampart_kms::cli::Command) -> anyhow::Result<()> {
/// rampart_kms::cli::run_command(cmd).await?;
/// # Ok(()) }
/// ```
pub async fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Keyring(cmd) => keyring::run(cmd),
        Command::Snapshot(cmd) => snapshot::run(cmd).await,
    }
}

pub(crate) use crate::AtomicFile;
