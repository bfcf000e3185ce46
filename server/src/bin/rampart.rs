//! `rampart`: Rampart's offline tool for keys, snapshots and backups. See
//! `rampart --help`.
//!
//! The key and snapshot commands live in `rampart_kms::cli`, the backup
//! commands in `rampart_persistence::backup::cli`; this binary gathers them
//! and adds `--config redis.conf`, reading the key settings the way
//! `rampart-server` does.

use std::path::Path;

use clap::{Parser, Subcommand};
use rampart_server::config::Config;

/// Rampart's offline tools: manage local keyrings; inspect, encrypt,
/// decrypt and rewrap encrypted snapshot files; list, copy, restore and
/// export backups.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Keys(rampart_kms::cli::Command),
    /// List, describe, create, copy, delete, restore and export backups
    /// in S3-compatible storage or a local directory.
    #[command(subcommand)]
    Backup(rampart_persistence::backup::cli::BackupCmd),
}

fn resolve(path: &Path) -> anyhow::Result<rampart_kms::ProviderConfig> {
    let config = Config::default();
    config
        .load(Some(path), "")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    rampart_server::encryption::provider_config(&config).ok_or_else(|| {
        anyhow::anyhow!(
            "{} sets encryption-at-rest no: there is no key to use",
            path.display()
        )
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    rampart_kms::cli::set_config_resolver(resolve);
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(cmd) => rampart_kms::cli::run_command(cmd).await,
        Command::Backup(cmd) => rampart_persistence::backup::cli::run(cmd).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
