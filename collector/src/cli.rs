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
    /// Serve on this address instead of the config's `listen` (port 0 picks a free port, which is
    /// logged).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Read and validate the configuration, then exit (0, or 78 naming the file and line) without
    /// creating the data directory, binding a port or opening the database.
    #[arg(long, global = true)]
    pub check_config: bool,
    /// What to do; serving when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands other than serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrolment tokens for agents and resolvers.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Review UI accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// List stored alerts.
    Alerts(AlertsArgs),
    /// List enrolled devices with their last heartbeat.
    Devices(DevicesArgs),
    /// Act on one device.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Users seen in monitored sessions and when the monitoring notice was last shown to each
    /// (users never shown it first).
    Notices(NoticesArgs),
}

/// `ward-collector token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an enrolment token and print it (nothing else) on stdout.
    Create {
        /// How many devices may enrol with it.
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
        /// How long it works, e.g. `30m`, `12h`, `7d` (default 7d).
        #[arg(long, value_name = "DURATION", default_value = "7d")]
        expires: String,
    },
}

/// `ward-collector user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account and print its one-time password on stdout.
    Add {
        /// Roles, comma-separated: admin, dsl, reviewer, head, governor.
        #[arg(long, value_name = "ROLE[,ROLE]")]
        role: String,
        /// Pupil groups a reviewer sees, comma-separated.
        #[arg(long, value_name = "G1,G2", default_value = "")]
        groups: String,
        /// Sign-in name.
        name: String,
    },
}

/// `ward-collector alerts`
#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    /// Only alerts that happened at or after this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `ward-collector devices`
#[derive(Debug, clap::Args)]
pub struct DevicesArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `ward-collector device ...`
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Revoke a device: its certificate is refused from the next request on.
    Revoke {
        /// The device id, as `devices` lists it.
        id: String,
    },
}

/// `ward-collector notices`
#[derive(Debug, clap::Args)]
pub struct NoticesArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}
