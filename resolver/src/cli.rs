//! The command line, as the CLI contract fixes it (commands, flags and exit codes that scripts rely on).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ward_service::logging::LogFormat;

/// DNS filtering resolver: answers every query by the policy of the requester's filter tier.
#[derive(Debug, Parser)]
#[command(name = "ward-resolver", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t, global = true)]
    pub log_format: LogFormat,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub command: Option<Command>,
}

/// Flags for serving DNS (the default command).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (see config/resolver.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Listen here instead of the config's listeners (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// Forward to this upstream instead of the config's (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    pub upstream: Vec<SocketAddr>,
    /// Where to keep state (enrolment, last policy from the collector).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Commands other than serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide one query without serving and print the decision as JSON.
    Check(CheckArgs),
    /// Obtain this resolver's certificate from a collector; serving then follows its policy.
    Enrol(EnrolArgs),
}

/// `ward-resolver enrol`.
#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    /// The collector, e.g. https://127.0.0.1:8443.
    #[arg(long, value_name = "URL")]
    pub collector: String,
    /// Enrolment token from `ward-collector token create`.
    #[arg(long, value_name = "TOKEN")]
    pub token: String,
    /// The collector's CA certificate (its `<data-dir>/ca.pem`).
    #[arg(long, value_name = "PEM")]
    pub ca: PathBuf,
    /// Configuration file (for its state_dir).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where to keep the certificate and the collector's policy.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `ward-resolver check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Configuration file.
    #[arg(long, value_name = "PATH")]
    pub config: PathBuf,
    /// The client address asking.
    #[arg(long, value_name = "IP")]
    pub client: std::net::IpAddr,
    /// The signed-in user, as an identity lease would name them.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The user's group (default: from a live lease naming the user).
    #[arg(long, value_name = "GROUP", requires = "user")]
    pub group: Option<String>,
    /// State dir holding leases.json (default: the config's `state_dir`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Decide as at this time (RFC 3339), for schedules.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// The name queried.
    pub name: String,
    /// The record type (default A).
    #[arg(default_value = "A")]
    pub qtype: String,
}
