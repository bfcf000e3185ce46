//! `rampart`: Rampart's offline key and snapshot tool. See `rampart --help`.
//!
//! The commands live in `rampart_kms::cli`; this binary adds `--config
//! redis.conf`, reading the key settings the way `rampart-server` does.

use std::path::Path;

use clap::Parser;
use rampart_server::config::Config;

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

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    rampart_kms::cli::set_config_resolver(resolve);
    let cli = rampart_kms::cli::Cli::parse();
    match rampart_kms::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
