//! ward-resolver: a DNS filtering resolver that answers each query by the requester's filter tier.
//!
//! `main.rs` only parses flags and starts logging; everything else lives here so tests can run the
//! real thing in-process.

pub mod cli;
pub mod config;

use anyhow::Context;

/// Runs the command the user asked for.
///
/// # Errors
/// A configuration that cannot be used, or a listener that cannot be bound.
pub fn main(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(cli::Command::Check(args)) => {
            let _config = config::Config::load(&args.config)?;
            anyhow::bail!("check: the policy engine is not built yet")
        }
        None => {
            let path = cli
                .serve
                .config
                .context("--config PATH is required to serve")?;
            let config = config::Config::load(&path)?;
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(serve(config))
        }
    }
}

async fn serve(config: config::Config) -> anyhow::Result<()> {
    let shutdown = ward_service::shutdown::CancellationToken::new();
    ward_service::shutdown::on_signals(shutdown.clone())
        .context("cannot install signal handlers")?;
    tracing::info!(listen = ?config.listen, "ward-resolver started");
    shutdown.cancelled().await;
    Ok(())
}
