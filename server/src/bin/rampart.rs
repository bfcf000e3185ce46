//! `rampart`: Rampart's offline key and snapshot tool. See `rampart --help`.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = rampart_kms::cli::Cli::parse();
    match rampart_kms::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
