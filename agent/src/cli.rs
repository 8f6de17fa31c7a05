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

/// `--config` and `--state-dir`, shared by the commands that use the service's files.
#[derive(Debug, Clone, clap::Args)]
pub struct Files {
    /// Configuration file (see config/agent.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where enrolment and the spool live (overrides the configuration).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the monitoring service.
    Run {
        #[command(flatten)]
        files: Files,
        /// Do not watch the keyboard and windows: spool and ship only (the system service).
        #[arg(long, conflicts_with = "session_only")]
        no_session: bool,
        /// Only watch this display's keyboard and windows, leaving shipping to the system service
        /// (the per-session helper).
        #[arg(long)]
        session_only: bool,
        /// Read and validate the configuration, then exit (0, or 78 naming the file and line)
        /// without touching the state directory or starting anything.
        #[arg(long)]
        check_config: bool,
    },
    /// Obtain this device's certificate from the collector with an enrolment token.
    Enrol(EnrolArgs),
    /// Put N test alerts (category `test`) through the spool and shipper; prints their ids.
    SendTestAlert {
        #[command(flatten)]
        files: Files,
        /// How many.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=500))]
        count: u32,
    },
    /// Show enrolment, collector reachability, spool depth, last heartbeat and wordlist version.
    Status {
        #[command(flatten)]
        files: Files,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Read lines on standard input and print the safeguarding matches in each as JSON, one object per line.
    Scan(ScanArgs),
}

/// `ward-agent enrol`.
#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    /// The collector, `https://host:port`.
    #[arg(long, value_name = "URL")]
    pub collector: String,
    /// The enrolment token from `ward-collector token create`.
    #[arg(long, value_name = "TOKEN")]
    pub token: String,
    /// The collector's CA certificate (`<data-dir>/ca.pem` on the collector), or its SHA-256
    /// fingerprint (64 hex digits, colons allowed, as `openssl x509 -noout -fingerprint -sha256` prints it).
    #[arg(long, value_name = "PEM|SHA256")]
    pub ca: PathBuf,
    #[command(flatten)]
    pub files: Files,
}

/// `ward-agent scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Wordlist folder (default: the installed wordlists).
    #[arg(long, value_name = "DIR")]
    pub wordlists: Option<PathBuf>,
    /// The school's local additions and suppressions (default: the installed local folder, if any).
    #[arg(long, value_name = "DIR")]
    pub local: Option<PathBuf>,
    /// Report only matches of at least this severity (1-5).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub min_severity: u8,
}
