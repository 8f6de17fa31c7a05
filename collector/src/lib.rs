//! ward-collector: receives alerts, heartbeats and identity; serves the review UI.

pub mod cli;
pub mod config;
pub mod ui;

use anyhow::Context;

/// Runs the command the user asked for.
///
/// # Errors
/// A configuration that cannot be used, or a listener that cannot be bound.
pub fn main(cli: cli::Cli) -> anyhow::Result<()> {
    let mut config = match &cli.config {
        Some(path) => config::Config::load(path)?,
        None => config::Config::default(),
    };
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: config::Config) -> anyhow::Result<()> {
    let shutdown = ward_service::shutdown::CancellationToken::new();
    ward_service::shutdown::on_signals(shutdown.clone())
        .context("cannot install signal handlers")?;
    tracing::info!(listen = %config.listen, data_dir = %config.data_dir.display(), "ward-collector started");
    shutdown.cancelled().await;
    Ok(())
}
