//! ward-resolver: a DNS filtering resolver that answers each query by the requester's filter tier.
//!
//! The decision is one pure function ([`decide::decide`]) of identity, query, policy snapshot and
//! time; everything else is plumbing around it: list loading ([`lists`]), policy validation
//! ([`policy`]), who is asking ([`identity`]), and the server that feeds queries through it.
//! `main.rs` only parses flags and starts logging; everything else lives here so tests can run the
//! real thing in-process.
#![deny(missing_docs)]

pub mod alerts;
pub mod answer;
pub mod cache;
pub mod check;
pub mod cli;
pub mod config;
pub mod decide;
pub mod domain;
pub mod enrolled;
pub mod identity;
pub mod inflight;
pub mod lists;
pub mod policy;
pub mod querylog;
pub mod ratelimit;
pub mod reload;
pub mod safesearch;
pub mod server;
pub mod state;
pub mod upstream;
pub mod wire;

use anyhow::Context;

/// Runs the command the user asked for.
///
/// # Errors
/// A configuration that cannot be used, or a listener that cannot be bound.
pub fn main(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(cli::Command::Check(args)) => run_check(args),
        Some(cli::Command::Enrol(args)) => run_enrol(args),
        None => {
            let path = cli
                .serve
                .config
                .context("--config PATH is required to serve")?;
            let mut config = config::Config::load(&path)?;
            let cli::ServeArgs {
                config: _,
                listen,
                upstream,
                state_dir,
            } = cli.serve;
            if !listen.is_empty() {
                config.listen = listen;
            }
            if !upstream.is_empty() {
                config.upstreams = upstream;
            }
            if let Some(dir) = state_dir {
                config.state_dir = dir;
            }
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(serve(config))
        }
    }
}

/// Loads everything, binds the listeners and serves until SIGINT/SIGTERM.
///
/// # Errors
/// A file that cannot be used (before any port is bound), or a listener that cannot be bound.
pub async fn serve(config: config::Config) -> anyhow::Result<()> {
    let enrolled = enrolled::is_enrolled(&config.state_dir);
    let started = std::time::Instant::now();
    let (policy, revision) = if enrolled {
        enrolled::starting_policy(&config.state_dir, &config.policy)?
    } else {
        (policy::Policy::load(&config.policy)?, 0)
    };
    log_policy(&policy, started.elapsed());
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("cannot create state dir {}", config.state_dir.display()))?;
    let lease_path = config.state_dir.join(identity::LEASE_FILE);
    let leases = identity::Leases::load(&lease_path).unwrap_or_else(|e| {
        tracing::error!("starting with no identity leases: {e:#}");
        identity::Leases::default()
    });
    let listeners = server::Listeners::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {:?}", config.listen))?;
    let state = std::sync::Arc::new(state::State::new(policy, leases));
    let log = querylog::QueryLog::start(&config.state_dir.join("querylog"), &config.query_log)
        .context("cannot start the query log")?;
    let device = std::fs::read_to_string(config.state_dir.join("device-id"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| enrolled::hostname());
    let alerts = alerts::AlertQueue::start(&config.state_dir.join("alerts"), device)
        .context("cannot start the alert queue")?;
    let resolver = std::sync::Arc::new(server::Resolver {
        cache: cache::Cache::new(config.cache.clone()),
        upstreams: upstream::Upstreams::new(&config.upstreams, config.upstream.clone()),
        inflight: inflight::Inflight::default(),
        limiter: ratelimit::RateLimiter::new(&config.rate_limit),
        tcp_clients: ratelimit::TcpClients::new(&config.rate_limit),
        log,
        alerts,
        state: state.clone(),
        config: config.clone(),
    });
    let shutdown = ward_service::shutdown::CancellationToken::new();
    ward_service::shutdown::on_signals(shutdown.clone())
        .context("cannot install signal handlers")?;
    reload::spawn(
        state.clone(),
        Some(config.policy.clone()),
        lease_path,
        enrolled.then(|| config.state_dir.clone()),
        shutdown.clone(),
    )?;
    if enrolled {
        enrolled::spawn(
            state,
            config.state_dir.clone(),
            config.policy.clone(),
            revision,
            shutdown.clone(),
        )?;
    }
    for addr in listeners.local_addrs() {
        tracing::info!("listening on {addr} (udp, tcp)");
    }
    tracing::info!(upstreams = ?config.upstreams, "ward-resolver started");
    server::run(resolver, listeners, shutdown).await
}

fn log_policy(policy: &policy::Policy, took: std::time::Duration) {
    let tiers: Vec<&str> = policy.tiers.iter().map(|t| t.name.as_str()).collect();
    tracing::info!(
        policy = %policy.source.display(),
        tiers = ?tiers,
        default_tier = %policy.tiers[policy.default_tier].name,
        list_entries = policy.lists.len(),
        list_bytes = policy.lists.memory_bytes(),
        load_ms = took.as_millis() as u64,
        "policy loaded"
    );
    policy.warn_blocks_without_lists();
}

fn run_enrol(args: cli::EnrolArgs) -> anyhow::Result<()> {
    let state_dir = match (args.state_dir, &args.config) {
        (Some(dir), _) => dir,
        (None, Some(path)) => config::Config::load(path)?.state_dir,
        (None, None) => anyhow::bail!("give --state-dir DIR or --config PATH (for its state_dir)"),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let device = runtime.block_on(enrolled::enrol(
        &args.collector,
        &args.token,
        &args.ca,
        &state_dir,
    ))?;
    println!("enrolled as {device}; state in {}", state_dir.display());
    Ok(())
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
