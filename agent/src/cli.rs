//! The command line, as the CLI contract fixes it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ward_service::logging::LogFormat;

/// Workstation safeguarding monitor: watches typed text and window titles, ships alerts to the collector.
#[derive(Debug, Parser)]
#[command(name = "ward-agent", version, about, long_about = None)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the monitoring service.
    Run {
        /// Configuration file (see config/agent.toml).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Where to keep the spool and enrolment.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}
