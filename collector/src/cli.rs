//! The command line, as the CLI contract fixes it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ward_service::logging::LogFormat;

/// Receives alerts, heartbeats and identity from agents and resolvers; serves the review UI.
#[derive(Debug, Parser)]
#[command(name = "ward-collector", version, about, long_about = None)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t, global = true)]
    pub log_format: LogFormat,
    /// Configuration file (see config/collector.toml); embedded loopback defaults without it.
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Where to keep the database, CA and screenshots (overrides the config).
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands other than serving.
#[derive(Debug, Subcommand)]
pub enum Command {}
