//! ward-resolver: a DNS filtering resolver that answers each query by the requester's filter tier.
//!
//! The decision is one pure function ([`decide::decide`]) of identity, query, policy snapshot and
//! time; everything else is plumbing around it: list loading ([`lists`]), policy validation
//! ([`policy`]), who is asking ([`identity`]), and the server that feeds queries through it.
//! `main.rs` only parses flags and starts logging; everything else lives here so tests can run the
//! real thing in-process.
#![deny(missing_docs)]

pub mod answer;
pub mod check;
pub mod cli;
pub mod config;
pub mod decide;
pub mod domain;
pub mod identity;
pub mod lists;
pub mod policy;
pub mod safesearch;
pub mod wire;

use anyhow::Context;

/// Runs the command the user asked for.
///
/// # Errors
/// A configuration that cannot be used, or a listener that cannot be bound.
pub fn main(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(cli::Command::Check(args)) => run_check(args),
        None => {
            let path = cli
                .serve
                .config
                .context("--config PATH is required to serve")?;
            let config = config::Config::load(&path)?;
            let _policy = policy::Policy::load(&config.policy)?;
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let shutdown = ward_service::shutdown::CancellationToken::new();
                ward_service::shutdown::on_signals(shutdown.clone())
                    .context("cannot install signal handlers")?;
                shutdown.cancelled().await;
                Ok(())
            })
        }
    }
}

fn run_check(args: cli::CheckArgs) -> anyhow::Result<()> {
    let config = config::Config::load(&args.config)?;
    let policy = policy::Policy::load(&config.policy)?;
    let state_dir = args.state_dir.unwrap_or(config.state_dir);
    let leases = identity::Leases::load(&state_dir.join(identity::LEASE_FILE))?;
    let at = match &args.at {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .with_context(|| format!("--at `{text}` is not an RFC 3339 time"))?,
        None => jiff::Timestamp::now(),
    };
    let request = check::CheckRequest {
        client: args.client,
        user: args.user,
        group: args.group,
        at,
        name: args.name,
        qtype: args.qtype,
    };
    let decision = check::check(&policy, &leases, &request)?;
    println!("{decision}");
    Ok(())
}
