//! The session monitor: source events → text assembly → alerts → spool.
//!
//! The platform source runs on a thread of its own (it blocks on the display); this task owns the
//! assembler, decides on screenshots, and writes every alert to the spool before waking the shipper.
//! It never logs typed text or context: an alert's log line names its id, category, severity and
//! source only.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use ward_detector::Detector;
use ward_protocol::Alert;

use crate::alert::AlertFactory;
use crate::config::Config;
use crate::shipper::Live;
use crate::source::{Source, SourceEvent};
use crate::spool::{DiskFs, Pushed, Spool, SpoolError};
use crate::text::{Assembler, Hit};

/// Alerts kept in memory when the spool cannot be written (disk error), retried on the next alert.
const UNSAVED_MAX: usize = 64;

/// Runs `source` on its own thread, forwarding its events; marks the session helper alive while it runs.
pub fn spawn_source(
    source: Box<dyn Source>,
    tx: mpsc::Sender<SourceEvent>,
    live: Arc<Live>,
) -> std::io::Result<()> {
    // Window changes are sent in step with password fields reported on the accessibility bus.
    #[cfg(all(unix, not(target_os = "macos")))]
    let source = crate::source::atspi::with_password_fields(source, tx.clone());
    let mut source = source;
    std::thread::Builder::new()
        .name("ward-source".into())
        .spawn(move || {
            live.helper_alive.store(true, Ordering::Relaxed);
            if let Ok(Some(window)) = source.current_window() {
                let _ = tx.blocking_send(SourceEvent::Focus(window));
            }
            loop {
                match source.next_event() {
                    Ok(Some(event)) => {
                        if tx.blocking_send(event).is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        tracing::info!("the session's display closed");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "keyboard and window source stopped");
                        break;
                    }
                }
            }
            live.helper_alive.store(false, Ordering::Relaxed);
        })
        .map(|_| ())
}

/// The detection task.
pub struct Pipeline {
    /// Events from the source thread.
    pub events: mpsc::Receiver<SourceEvent>,
    /// Text assembly and detection.
    pub assembler: Assembler,
    /// Alert building and screenshot decisions.
    pub factory: AlertFactory,
    /// Where alerts go.
    pub spool: Arc<Spool<DiskFs>>,
    /// Wakes the shipper.
    pub wake: Arc<Notify>,
    /// Reloaded wordlists.
    pub detector: watch::Receiver<Arc<Detector>>,
    /// Reloaded configuration.
    pub config: watch::Receiver<Arc<Config>>,
}

impl Pipeline {
    /// Runs until `shutdown` or until the source ends.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut unsaved: VecDeque<Alert> = VecDeque::new();
        let mut idle_flush = self.config.borrow().idle_flush;
        loop {
            let idle_at = self
                .assembler
                .pending_since()
                .map(|t| tokio::time::Instant::from_std(t + idle_flush));
            let mut hits = Vec::new();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = self.events.recv() => match event {
                    Some(event) => self.assembler.handle(event, Instant::now(), &mut |h| hits.push(h)),
                    None => break,
                },
                _ = sleep_until(idle_at), if idle_at.is_some() => {
                    self.assembler.idle(Instant::now(), idle_flush, &mut |h| hits.push(h));
                }
                Ok(()) = self.detector.changed() => {
                    let detector = Arc::clone(&self.detector.borrow_and_update());
                    self.assembler.set_detector(detector);
                }
                Ok(()) = self.config.changed() => {
                    let config = Arc::clone(&self.config.borrow_and_update());
                    self.assembler.set_exclusions(config.exclusions.clone(), config.min_severity);
                    idle_flush = config.idle_flush;
                }
            }
            for hit in hits {
                let alert = self.raise(hit).await;
                unsaved.push_back(alert);
                self.save(&mut unsaved).await;
            }
        }
    }

    /// Builds the alert, taking the screenshot off the async threads.
    async fn raise(&mut self, hit: Hit) -> Alert {
        let plan = self.factory.plan(&hit, Instant::now());
        let max_width = self.factory.max_width();
        let (hit, shot, took) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let shot = AlertFactory::shoot(plan, &hit, max_width);
            (hit, shot, started.elapsed())
        })
        .await
        .expect("capture task panicked");
        let alert = self.factory.alert(hit, shot);
        tracing::info!(
            id = %alert.id,
            category = %alert.category,
            severity = alert.severity,
            source = alert.source.as_str(),
            screenshot = alert.screenshot.is_some(),
            capture_us = took.as_micros() as u64,
            "alert raised"
        );
        alert
    }

    /// Spools what is waiting; an alert that cannot be written stays in memory for the next try.
    async fn save(&self, unsaved: &mut VecDeque<Alert>) {
        while let Some(alert) = unsaved.pop_front() {
            let spool = Arc::clone(&self.spool);
            let result = tokio::task::spawn_blocking(move || spool.push(&alert))
                .await
                .expect("spool task panicked");
            match result {
                Ok(Pushed::Stored { .. }) => self.wake.notify_one(),
                Ok(Pushed::Dropped) => {
                    tracing::warn!(
                        "spool full of more severe alerts; this alert was dropped and counted"
                    )
                }
                Err(SpoolError::Write { alert, source }) => {
                    tracing::error!(error = %source, "cannot spool an alert; keeping it in memory");
                    unsaved.push_front(*alert);
                    if unsaved.len() > UNSAVED_MAX {
                        unsaved.pop_back();
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "spool unusable");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
