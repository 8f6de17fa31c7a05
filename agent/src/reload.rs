//! Hot reload of the configuration and the wordlists, with notify.
//!
//! A change to `agent.toml` or to any file under the wordlist folder rebuilds the corresponding
//! value; if the new file is broken the last good one stays in use and the problem is logged with
//! file and line. The watch is on the folders (editors replace files by renaming), debounced.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use ward_detector::Detector;

use crate::config::Config;

/// Reads the shipped and local wordlists and builds a detector, refusing the set if any line is
/// wrong (a reload then keeps the last good one).
///
/// # Errors
/// A folder cannot be read, or a file is broken (every bad line named).
pub fn load_wordlists(shipped: &Path, local: Option<&Path>) -> anyhow::Result<Detector> {
    Ok(crate::scan::wordlists::load(shipped, local)?)
}

/// As [`load_wordlists`], skipping broken lines (each logged) instead of refusing the set: for a
/// first start, when there is no last good set.
///
/// # Errors
/// A folder cannot be read, or nothing at all can be built.
pub fn load_wordlists_skipping_errors(
    shipped: &Path,
    local: Option<&Path>,
) -> anyhow::Result<Detector> {
    let (detector, problems) = crate::scan::wordlists::load_skipping_errors(shipped, local)?;
    for problem in problems {
        tracing::error!(error = %problem, "wordlist line skipped");
    }
    Ok(detector)
}

/// Watches `paths` and sends a tick on `tx` after changes settle.
fn watch_paths(
    paths: &[(PathBuf, RecursiveMode)],
    shutdown: CancellationToken,
) -> notify::Result<tokio::sync::mpsc::Receiver<()>> {
    let (raw_tx, mut raw_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = raw_tx.send(());
        }
    })?;
    for (path, mode) in paths {
        watcher.watch(path, *mode)?;
    }
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                got = raw_rx.recv() => if got.is_none() { return },
            }
            // Debounce: an editor's save is several events.
            tokio::time::sleep(Duration::from_millis(300)).await;
            while raw_rx.try_recv().is_ok() {}
            if tx.try_send(()).is_err() && tx.is_closed() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Keeps `detector` current with the shipped and local wordlist folders.
pub fn wordlists(
    shipped: PathBuf,
    local: Option<PathBuf>,
    detector: watch::Sender<Arc<Detector>>,
    shutdown: CancellationToken,
) -> notify::Result<()> {
    let mut paths = vec![(shipped.clone(), RecursiveMode::Recursive)];
    if let Some(local) = local.as_ref().filter(|d| d.is_dir()) {
        paths.push((local.clone(), RecursiveMode::Recursive));
    }
    let mut ticks = watch_paths(&paths, shutdown)?;
    tokio::spawn(async move {
        while ticks.recv().await.is_some() {
            let (shipped, local) = (shipped.clone(), local.clone());
            match tokio::task::spawn_blocking(move || load_wordlists(&shipped, local.as_deref()))
                .await
            {
                Ok(Ok(new)) => {
                    tracing::info!(
                        version = new.version(),
                        entries = new.entry_count(),
                        "wordlists reloaded"
                    );
                    detector.send_replace(Arc::new(new));
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "wordlists not reloaded; keeping the last good set")
                }
                Err(e) => tracing::error!(error = %e, "wordlist reload failed"),
            }
        }
    });
    Ok(())
}

/// Keeps `config` current with its file.
pub fn config(
    path: PathBuf,
    state_dir_override: Option<PathBuf>,
    config: watch::Sender<Arc<Config>>,
    shutdown: CancellationToken,
) -> notify::Result<()> {
    let folder = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut ticks = watch_paths(&[(folder, RecursiveMode::NonRecursive)], shutdown)?;
    tokio::spawn(async move {
        let mut last = std::fs::read(&path).ok();
        while ticks.recv().await.is_some() {
            let now = std::fs::read(&path).ok();
            if now == last {
                continue;
            }
            last = now;
            match Config::resolve(Some(&path), state_dir_override.as_deref()) {
                Ok(new) => {
                    tracing::info!(file = %path.display(), "configuration reloaded");
                    config.send_replace(Arc::new(new));
                }
                Err(e) => {
                    tracing::error!(error = %e, "configuration not reloaded; keeping the last good one")
                }
            }
        }
    });
    Ok(())
}
