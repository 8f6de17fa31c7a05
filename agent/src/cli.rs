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
    /// Read lines on standard input and print the safeguarding matches in each as JSON, one object per line.
    Scan(ScanArgs),
}

/// `ward-agent scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Wordlist folder (default: the installed wordlists).
    #[arg(long, value_name = "DIR")]
    pub wordlists: Option<PathBuf>,
    /// Report only matches of at least this severity (1-5).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub min_severity: u8,
}
