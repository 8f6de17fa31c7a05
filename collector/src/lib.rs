//! ward-collector: receives alerts, heartbeats and identity from agents and resolvers, holds the
//! policy, streams policy and identity to resolvers, and (on the same port) serves the review UI.
//!
//! `main.rs` only parses flags and starts logging; everything else lives here so tests run the real
//! server in-process ([`run`] takes a bound listener, so tests bind port 0).
//!
//! Map: [`server`] accepts TLS connections and hands requests to the one [`router`]; [`api`] holds
//! the `/api/v1` routes; [`app`] the shared state; [`store`] the storage interface and its backends;
//! [`ca`] and [`tls`] the certificates; [`screenshots`] the content-addressed image files; [`jobs`]
//! retention and silent-device checks; [`tamper`] the alerts raised about devices themselves; [`accounts`] the review UI's users; [`notices`] who was shown
//! the monitoring notice; [`commands`] the administrative subcommands. The review UI adds `ui/` with its routes merged in [`router`].
#![deny(missing_docs)]

pub mod accounts;
pub mod activation;
pub mod api;
pub mod app;
pub mod ca;
pub mod cli;
pub mod commands;
pub mod config;
pub mod files;
pub mod jobs;
pub mod notices;
pub mod screenshots;
pub mod seal;
pub mod server;
pub mod store;
pub mod tamper;
pub mod tls;
pub mod ui;

use std::io::IsTerminal;
use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;

/// Runs the command the user asked for.
///
/// # Errors
/// A configuration that cannot be used, or a listener that cannot be bound.
pub fn main(cli: cli::Cli) -> anyhow::Result<()> {
    let mut config = match &cli.config {
        Some(path) => config::Config::load(path)?,
        None => config::Config::default(),
    };
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if cli.check_config {
        // Loading is the whole validation; nothing below may run (package upgrades call this while
        // the old collector still holds the ports and the database).
        return Ok(());
    }
    match cli.command {
        Some(command) => commands::run(&config, command),
        None => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(serve(config))
        }
    }
}

/// Every route on the one port: the API, and the review UI beside it. The UI's routes are merged
/// here; an unknown path under neither gets the API's JSON 404.
pub fn router(app: App) -> Router {
    api::router()
        .fallback(|| async { api::Failure::NotFound("no such route") })
        .with_state(app)
}

async fn serve(config: config::Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    ward_service::shutdown::on_signals(shutdown.clone())
        .context("cannot install signal handlers")?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    run_with(
        config,
        listener,
        activation::Inherited::from_env(),
        shutdown,
    )
    .await
}

/// Serves on `listener` until `shutdown` is cancelled: creates what a first start needs (CA,
/// database, first admin), starts the background jobs and the accept loop.
///
/// # Errors
/// Start-up fails (store, CA, certificates), or the accept loop fails.
pub async fn run(
    config: config::Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with(config, listener, activation::Inherited::default(), shutdown).await
}

/// [`run`], also serving on the sockets systemd handed over: the plain-HTTP block page on
/// `block-http` (instead of binding `[ui] block_page_listen`), and HTTPS with the main port's router
/// on `block-https`.
///
/// # Errors
/// As [`run`]; also a passed socket that tokio cannot take.
pub async fn run_with(
    config: config::Config,
    listener: TcpListener,
    inherited: activation::Inherited,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local: SocketAddr = listener.local_addr()?;
    let names = certificate_names(&config, local);
    let started = {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tokio::task::spawn_blocking(move || App::start(config, shutdown)).await??
    };
    let app = started.app;
    if let Some(password) = started.initial_admin_password {
        announce_initial_password(&password, &config);
    }
    let tls = ui::block_tls::attach(tls::Tls::new(app.ca(), &names)?, &config)?;
    let jobs = tokio::spawn(jobs::run(app.clone(), shutdown.clone()));
    let block_http = inherited
        .block_http
        .map(TcpListener::from_std)
        .transpose()
        .context("cannot use the passed block-http socket")?;
    let block_https = inherited
        .block_https
        .map(TcpListener::from_std)
        .transpose()
        .context("cannot use the passed block-https socket")?;
    let ui = ui::start_with(&app, &config, block_http, shutdown.clone()).await?;
    let router = ui::mount(router(app.clone()), ui);
    let https = block_https.map(|listener| {
        tracing::info!(listen = ?listener.local_addr().ok(), "HTTPS on the passed block-https socket");
        tokio::spawn(server::run(
            listener,
            tls.clone(),
            router.clone(),
            config.limits.max_connections,
            shutdown.clone(),
            ward_service::shutdown::GRACE,
        ))
    });
    tracing::info!(
        listen = %local,
        data_dir = %config.data_dir.display(),
        backend = app.store().backend(),
        ca = %config.data_dir.join(ca::CA_CERT_FILE).display(),
        "ward-collector listening"
    );
    let result = server::run(
        listener,
        tls,
        router,
        config.limits.max_connections,
        shutdown.clone(),
        ward_service::shutdown::GRACE,
    )
    .await;
    shutdown.cancel();
    if let Some(https) = https {
        let _ = https.await;
    }
    let _ = jobs.await;
    tracing::info!("ward-collector stopped");
    result
}

/// The names the server certificate covers: the listen address, loopback, localhost, this host's
/// name and the configured extra names.
fn certificate_names(config: &config::Config, local: SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !local.ip().is_unspecified() {
        names.push(local.ip().to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_string());
        }
    }
    names.extend(config.hostnames.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// The first admin password: always in the 0600 file; on stdout too unless stdout is the journal
/// (then the file is the only copy, so it never lands in a log).
fn announce_initial_password(password: &str, config: &config::Config) {
    let file = config.data_dir.join(accounts::INITIAL_PASSWORD_FILE);
    tracing::info!(file = %file.display(), "created the admin account with a one-time password");
    if std::env::var_os("JOURNAL_STREAM").is_none() {
        println!("initial admin password: {password}");
        if std::io::stdout().is_terminal() {
            println!("(also in {}; change it at first sign-in)", file.display());
        }
    }
}
