//! ward-agent: the workstation monitoring service.

pub mod alert;
pub mod capture;
pub mod cli;
pub mod config;
pub mod host;
pub mod scan;
pub mod shipper;
pub mod source;
pub mod spool;
pub mod status;
pub mod text;

use anyhow::Context;

/// Runs the command the user asked for.
///
/// # Errors
/// A configuration that cannot be used.
pub fn main(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Run {
            config,
            state_dir: _,
        } => {
            let config = match config {
                Some(path) => config::Config::load(&path)?,
                None => config::Config::default(),
            };
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(run(config))
        }
        cli::Command::Scan(args) => scan::run(args),
    }
}

async fn run(config: config::Config) -> anyhow::Result<()> {
    let shutdown = ward_service::shutdown::CancellationToken::new();
    ward_service::shutdown::on_signals(shutdown.clone())
        .context("cannot install signal handlers")?;
    tracing::info!(collector = %config.collector, "ward-agent started");
    shutdown.cancelled().await;
    Ok(())
}
