//! `rampart keyring init|rotate|list|disable|enable`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::LocalKeyring;

/// Keyring subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyringCmd {
    /// Create a new keyring file (mode 0600) with one primary key.
    Init {
        /// Keyring file to create; refused if it exists.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
    },
    /// Add a key version and make it primary; old versions still decrypt.
    Rotate {
        /// Keyring file.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
    },
    /// List key versions (never key material).
    List {
        /// Keyring file.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
    },
    /// Disable a version: data under it cannot be decrypted until enabled.
    Disable {
        /// Keyring file.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// Version to disable (not the primary).
        #[arg(long, value_name = "N")]
        version: u32,
    },
    /// Enable a disabled version again.
    Enable {
        /// Keyring file.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// Version to enable.
        #[arg(long, value_name = "N")]
        version: u32,
    },
}

pub(crate) fn run(cmd: KeyringCmd) -> anyhow::Result<()> {
    match cmd {
        KeyringCmd::Init { file } => {
            let ring = LocalKeyring::init(&file)?;
            println!(
                "created keyring {} at {} (version 1 is primary)",
                ring.id(),
                file.display()
            );
            println!(
                "keep this file secret and backed up: data encrypted under it cannot be read without it"
            );
        }
        KeyringCmd::Rotate { file } => {
            let mut ring = LocalKeyring::open(&file)?;
            let v = ring.rotate()?;
            println!(
                "version {v} is now primary ({}); older versions still decrypt",
                ring.key_id(v)
            );
        }
        KeyringCmd::List { file } => {
            let ring = LocalKeyring::open(&file)?;
            println!("keyring {} ({})", ring.id(), file.display());
            println!(
                "{:<8} {:<9} {:<8} {:<21} KEY ID",
                "VERSION", "STATE", "PRIMARY", "CREATED"
            );
            for v in ring.versions() {
                println!(
                    "{:<8} {:<9} {:<8} {:<21} {}",
                    v.version,
                    v.state,
                    if v.primary { "*" } else { "" },
                    v.created,
                    v.key_id
                );
            }
        }
        KeyringCmd::Disable { file, version } => {
            let mut ring = LocalKeyring::open(&file)?;
            ring.disable(version)?;
            println!(
                "version {version} disabled: data encrypted under {} cannot be decrypted until it is enabled",
                ring.key_id(version)
            );
        }
        KeyringCmd::Enable { file, version } => {
            let mut ring = LocalKeyring::open(&file)?;
            ring.enable(version)?;
            println!("version {version} enabled");
        }
    }
    Ok(())
}
