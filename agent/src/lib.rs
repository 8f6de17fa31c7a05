//! ward-agent: the workstation monitoring service.
//!
//! Sources (X11 or Windows hooks) → text assembly and detection → alerts with screenshots where
//! allowed → durable spool → shipper → collector. Each stage is a module; `run` wires them.

pub mod alert;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod host;
pub mod notice;
pub mod pipeline;
pub mod reload;
pub mod run;
pub mod scan;
pub mod sessions;
pub mod shipper;
pub mod source;
pub mod spool;
pub mod status;
pub mod text;
#[cfg(windows)]
pub mod winservice;

use anyhow::Context;

use crate::cli::{Command, Files};
use crate::config::Config;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn config(files: &Files) -> anyhow::Result<Config> {
    Ok(Config::resolve(
        files.config.as_deref(),
        files.state_dir.as_deref(),
    )?)
}

/// Runs the command the user asked for.
///
/// # Errors
/// A configuration that cannot be used, or the command failed.
pub fn main(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            files,
            no_session,
            session_only,
            check_config,
        } => {
            let config = config(&files)?;
            if check_config {
                return Ok(());
            }
            let options = run::RunOptions {
                config_path: files.config.clone(),
                state_dir: files.state_dir.clone(),
                no_session,
                session_only,
            };
            #[cfg(windows)]
            {
                let (config, mut options) = (config.clone(), options.clone());
                // Session 0 has no user desktop: the service ships; the hook runs per session.
                options.no_session = !options.session_only;
                let as_service = winservice::try_dispatch(move |token| {
                    runtime()?.block_on(run::run_until(config, options, token))
                });
                if let Some(result) = as_service {
                    return result;
                }
            }
            runtime()?.block_on(run::run(config, options))
        }
        Command::Enrol(args) => {
            let config = config(&args.files)?;
            runtime()?.block_on(commands::enrol(
                &config,
                &args.collector,
                &args.token,
                &args.ca,
            ))
        }
        Command::SendTestAlert { files, count } => {
            commands::send_test_alert(&config(&files)?, count)
        }
        Command::Status { files, json } => {
            let config = config(&files)?;
            runtime()?.block_on(commands::status(&config, json))
        }
        Command::Scan(args) => scan::run(args),
    }
}
