//! `ward-agent run`: the service. Wires the tasks together and owns their lifetimes.
//!
//! Tasks: the shipper (spool → collector, heartbeats, leases), the session monitor (source thread →
//! pipeline → spool) when a display is there, and the reload watchers. They share nothing but the
//! spool, a wake-up signal and watch channels; one cancellation token stops them all.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch, Notify};
use ward_collector_client::{Client, Identity};
use ward_service::shutdown::{on_signals, CancellationToken, GRACE};

use crate::alert::AlertFactory;
use crate::capture::{Capturer, RateLimit};
use crate::config::Config;
use crate::pipeline::{spawn_source, Pipeline};
use crate::shipper::{Live, Shipper, ShipperSettings};
use crate::source::Source;
use crate::status::StatusFile;
use crate::text::Assembler;

/// Largest batch in bytes: well under the collector's default 16 MiB request limit.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// What `run` was asked for on the command line.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file, watched for changes.
    pub config_path: Option<PathBuf>,
    /// `--state-dir`, which outlives reloads.
    pub state_dir: Option<PathBuf>,
    /// Spool and ship only (the system service beside per-display session helpers).
    pub no_session: bool,
    /// Watch the session only, leaving shipping to the system service.
    pub session_only: bool,
}

/// Runs the service until SIGINT/SIGTERM.
///
/// # Errors
/// Not enrolled, or the spool or wordlists cannot be opened.
pub async fn run(config: Config, options: RunOptions) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    on_signals(shutdown.clone()).context("cannot install signal handlers")?;
    run_until(config, options, shutdown).await
}

/// Runs the service until `shutdown` is cancelled (by signals, or by the Windows service manager).
///
/// # Errors
/// As [`run`].
pub async fn run_until(
    config: Config,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some((config, identity)) = wait_for_enrolment(config, &options, &shutdown).await? else {
        return Ok(());
    };
    let spool = Arc::new(crate::commands::open_spool(&config)?);
    let detector = initial_wordlists(&config)?;
    tracing::info!(
        collector = %config.collector,
        device = %identity.device_id,
        wordlists = detector.version(),
        entries = detector.entry_count(),
        "ward-agent started"
    );
    let status = StatusFile::open(&config.state_dir);
    let version = detector.version().to_string();
    status.update(|s| s.wordlist_version = Some(version.clone()));
    let live = Arc::new(Live::default());
    *live
        .wordlist_version
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(version);
    let wake = Arc::new(Notify::new());

    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let (detector_tx, detector_rx) = watch::channel(Arc::clone(&detector));
    crate::reload::wordlists(
        config.wordlists.clone(),
        config.local_wordlists.clone(),
        detector_tx,
        shutdown.clone(),
    )
    .context("cannot watch the wordlists")?;
    if let Some(path) = &options.config_path {
        crate::reload::config(
            path.clone(),
            options.state_dir.clone(),
            config_tx,
            shutdown.clone(),
        )
        .context("cannot watch the configuration")?;
    }
    track_wordlist_version(detector_rx.clone(), Arc::clone(&live), status.clone());

    let mut tasks = Vec::new();
    if !options.session_only {
        let client = Client::new(&config.collector, &identity).context("collector client")?;
        let settings = ShipperSettings {
            device: identity.device_id.clone(),
            batch_alerts: config.batch_alerts,
            batch_bytes: BATCH_BYTES,
            poll: Duration::from_secs(2),
            heartbeat: config.heartbeat,
            retry_max: config.retry_max,
            user: config.user.clone(),
            state_dir: Some(config.state_dir.clone()),
            group: config.group.clone(),
            lease: config.lease,
            hostname: crate::host::hostname(),
            os: crate::host::os(),
            collector: config.collector.clone(),
        };
        let shipper = Shipper::new(
            Arc::new(client),
            Arc::clone(&spool),
            settings,
            Arc::clone(&wake),
            Arc::clone(&live),
            Some(status.clone()),
        );
        tasks.push(tokio::spawn(shipper.run(shutdown.clone())));
    }

    if !options.no_session {
        match open_session(&config) {
            Ok((source, capturer)) => {
                let display = session_name();
                let user = config
                    .user
                    .clone()
                    .or_else(|| crate::host::display_user(&display))
                    .or_else(|| crate::host::user(None));
                let (tx, events) = mpsc::channel(1024);
                spawn_source(source, tx, Arc::clone(&live)).context("cannot start the source")?;
                tasks.push(tokio::spawn(keep_session_record(
                    config.state_dir.clone(),
                    config.session_refresh,
                    display,
                    user.clone(),
                    Arc::clone(&live),
                    shutdown.clone(),
                )));
                show_notice(&config, user.clone(), Arc::clone(&live));
                let factory = AlertFactory::new(
                    identity.device_id.clone(),
                    user,
                    capturer.filter(|_| config.capture),
                    config.capture_max_width,
                    RateLimit::new(config.capture_interval),
                );
                let pipeline = Pipeline {
                    events,
                    assembler: Assembler::new(
                        Arc::clone(&detector),
                        config.exclusions.clone(),
                        config.min_severity,
                    ),
                    factory,
                    spool: Arc::clone(&spool),
                    wake: Arc::clone(&wake),
                    detector: detector_rx,
                    config: config_rx,
                };
                tasks.push(tokio::spawn(pipeline.run(shutdown.clone())));
            }
            Err(e) => tracing::warn!(error = %e, "keyboard and window monitoring is off"),
        }
    }

    shutdown.cancelled().await;
    let drain = futures_join(tasks);
    if tokio::time::timeout(GRACE, drain).await.is_err() {
        tracing::warn!("tasks did not stop within the grace period");
    }
    Ok(())
}

/// How often an unenrolled service looks for its enrolment files.
const ENROLMENT_POLL: Duration = Duration::from_secs(3);

/// Waits until the state folder holds an enrolment, or `None` if told to stop first.
///
/// An unenrolled service must not exit: systemd and the Windows service manager would restart it in
/// a loop. It says once what to run, then looks every few seconds. Nothing is monitored meanwhile:
/// an alert needs the device id enrolment assigns, and a device is the school's to monitor (with its
/// notice shown and its heartbeats watched) only once it is enrolled. The configuration is read again
/// once enrolment lands, since the technician sets the collector's address just before enrolling.
async fn wait_for_enrolment(
    mut config: Config,
    options: &RunOptions,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<(Config, Identity)>> {
    let mut machine = crate::config::machine::AutoEnrolment::new(!options.session_only);
    let mut said = false;
    loop {
        tokio::select! {
            // A stop request does not wait for a slow collector.
            _ = shutdown.cancelled() => return Ok(None),
            _ = machine.try_enrol(&config) => {}
        }
        if Identity::exists(&config.state_dir) {
            break;
        }
        if !said {
            said = true;
            tracing::warn!(
                state_dir = %config.state_dir.display(),
                "not enrolled: run `ward-agent enrol --collector URL --token TOKEN --ca CA` \
                 (CA: the collector's ca.pem or its SHA-256 fingerprint){}; waiting for enrolment",
                crate::config::machine::HINT
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(ENROLMENT_POLL) => {}
        }
    }
    if said {
        match Config::resolve(options.config_path.as_deref(), options.state_dir.as_deref()) {
            Ok(fresh) => config = fresh,
            Err(e) => tracing::error!(error = %e, "keeping the configuration read at start"),
        }
        tracing::info!(state_dir = %config.state_dir.display(), "enrolment found");
    }
    machine.forget_token();
    let identity = Identity::load(&config.state_dir).with_context(|| {
        format!(
            "cannot read the enrolment in {}",
            config.state_dir.display()
        )
    })?;
    Ok(Some((config, identity)))
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// The wordlists at start: a broken line is skipped (and logged) rather than leaving the device
/// unmonitored; later reloads keep the last good set instead.
fn initial_wordlists(config: &Config) -> anyhow::Result<Arc<ward_detector::Detector>> {
    let local = config.local_wordlists.as_deref();
    match crate::reload::load_wordlists(&config.wordlists, local) {
        Ok(d) => Ok(Arc::new(d)),
        Err(e) => {
            tracing::error!(error = %e, "wordlists have errors; loading the valid entries only");
            crate::reload::load_wordlists_skipping_errors(&config.wordlists, local).map(Arc::new)
        }
    }
}

fn track_wordlist_version(
    mut rx: watch::Receiver<Arc<ward_detector::Detector>>,
    live: Arc<Live>,
    status: StatusFile,
) {
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let version = rx.borrow_and_update().version().to_string();
            *live
                .wordlist_version
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(version.clone());
            status.update(|s| s.wordlist_version = Some(version));
        }
    });
}

/// The display this session monitor watches (`:0`), or `console` on Windows.
fn session_name() -> String {
    std::env::var("DISPLAY").unwrap_or_else(|_| "console".into())
}

/// Refreshes this session's record while the source runs; removes it on a clean stop.
async fn keep_session_record(
    state_dir: PathBuf,
    refresh: std::time::Duration,
    display: String,
    user: Option<String>,
    live: Arc<Live>,
    shutdown: CancellationToken,
) {
    let Some(user) = user else {
        tracing::warn!("the signed-in user is unknown; no identity lease for this session");
        return;
    };
    loop {
        if live.helper_alive.load(std::sync::atomic::Ordering::Relaxed) {
            let (notice_shown, notice_sha256) = live.notice().unzip();
            let record = crate::sessions::SessionRecord {
                user: user.clone(),
                display: display.clone(),
                updated: jiff::Timestamp::now(),
                notice_shown,
                notice_sha256,
                refresh_seconds: Some(refresh.as_secs()),
            };
            if let Err(e) = crate::sessions::write(&state_dir, &record) {
                tracing::warn!(error = %e, "cannot write the session record");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(refresh) => {}
            // The notice was shown: write it into the record now, for the next heartbeat.
            _ = live.notice_recorded.notified() => {}
        }
    }
    crate::sessions::remove(&state_dir, &display);
}

type Session = (Box<dyn Source>, Option<Arc<dyn Capturer>>);

/// The platform's source and capturer for the signed-in session.
#[cfg(all(unix, not(target_os = "macos")))]
fn open_session(_config: &Config) -> anyhow::Result<Session> {
    use crate::capture::x11::X11Capturer;
    use crate::source::x11::{Display, X11Source};
    if std::env::var_os("DISPLAY").is_none() {
        anyhow::bail!("no X display in this session (DISPLAY is not set)");
    }
    let display = Display::connect(None)?;
    let source = X11Source::new(Arc::clone(&display))?;
    let capturer: Arc<dyn Capturer> = Arc::new(X11Capturer::new(display));
    Ok((Box::new(source), Some(capturer)))
}

#[cfg(windows)]
fn open_session(_config: &Config) -> anyhow::Result<Session> {
    use crate::capture::windows::XcapCapturer;
    use crate::source::windows::WindowsSource;
    let source = WindowsSource::new()?;
    let capturer: Arc<dyn Capturer> = Arc::new(XcapCapturer);
    Ok((Box::new(source), Some(capturer)))
}

#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
fn open_session(_config: &Config) -> anyhow::Result<Session> {
    anyhow::bail!("no keyboard and window source for this platform")
}

/// Shows the monitoring notice on a thread of its own, and records that it was shown (status file,
/// and the session record every heartbeat reports to the collector).
fn show_notice(config: &Config, user: Option<String>, live: Arc<Live>) {
    let text = config.notice.clone();
    let duration = config.notice_time;
    let state_dir = config.state_dir.clone();
    if duration.is_zero() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("ward-notice".into())
        .spawn(move || {
            tracing::info!("monitoring notice shown");
            let shown = jiff::Timestamp::now();
            #[cfg(all(unix, not(target_os = "macos")))]
            if let Err(e) = crate::notice::show_x11(None, &text, duration) {
                tracing::error!(error = %e, "cannot show the monitoring notice");
                return;
            }
            #[cfg(windows)]
            {
                // A message box stays until acknowledged.
                let _ = duration;
                crate::notice::show_windows(&text);
            }
            #[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
            let _ = (&text, duration);
            live.record_notice(shown, crate::notice::fingerprint(&text));
            let user = user.unwrap_or_else(|| "unknown".into());
            StatusFile::open(&state_dir)
                .update(|s| s.notice_shown = Some((jiff::Timestamp::now(), user)));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot show the monitoring notice");
    }
}
