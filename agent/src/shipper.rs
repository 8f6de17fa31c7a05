//! The shipper: spool → collector, on its own task. The spool is its only input.
//!
//! It sends the most severe alerts first in batches, deletes exactly the ids the collector's receipt
//! lists, and retries everything else with exponential backoff and jitter (the collector may be down
//! for a weekend; a hundred agents must not all retry at the same instant). A batch the collector
//! refuses as malformed is split and retried alert by alert, so one bad record cannot block the
//! spool; an alert refused on its own is set aside (removed, logged, counted as dropped). A refusal
//! about the device itself (revoked, unknown certificate) keeps everything and waits.
//!
//! Heartbeats (every minute) and identity leases (at start and at a third of their lifetime) go on
//! the same task's timers, so a stopped agent shows as silent and the resolver keeps the user's tier.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use ward_collector_client::{Client, ClientError};
use ward_protocol::{
    Alert, AlertBatch, Category, Heartbeat, IdentityLease, IngestReceipt, SessionState,
    PROTOCOL_VERSION,
};

use crate::spool::{Spool, SpoolFs};
use crate::status::StatusFile;

/// Where alerts, heartbeats and leases go: the collector client, or a test double.
pub trait Transport: Send + Sync + 'static {
    /// Ships a batch.
    fn send_alerts(
        &self,
        batch: &AlertBatch,
    ) -> impl Future<Output = Result<IngestReceipt, ClientError>> + Send;
    /// Sends a heartbeat.
    fn send_heartbeat(
        &self,
        hb: &Heartbeat,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// Sends an identity lease.
    fn send_lease(
        &self,
        lease: &IdentityLease,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;
}

impl Transport for Client {
    fn send_alerts(
        &self,
        batch: &AlertBatch,
    ) -> impl Future<Output = Result<IngestReceipt, ClientError>> + Send {
        Client::send_alerts(self, batch)
    }
    fn send_heartbeat(
        &self,
        hb: &Heartbeat,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        Client::send_heartbeat(self, hb)
    }
    fn send_lease(
        &self,
        lease: &IdentityLease,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        Client::send_lease(self, lease)
    }
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s … up to a cap, each wait a random 50–100 % of its
/// step so agents that lost the collector together do not return together.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Starts at `base`, never waits longer than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// The wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        step.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    /// Success: start again from `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// What the shipper needs to know about this device and user.
#[derive(Debug, Clone)]
pub struct ShipperSettings {
    /// The enrolled device id (every alert's `device`).
    pub device: String,
    /// Alerts per request.
    pub batch_alerts: usize,
    /// Bytes per request (screenshots), kept under the collector's request limit.
    pub batch_bytes: u64,
    /// How often the spool is looked at when nothing wakes the shipper (records added by another
    /// process, e.g. `send-test-alert`).
    pub poll: Duration,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Longest backoff.
    pub retry_max: Duration,
    /// The user to lease for when no session monitor reports one (the configured override).
    pub user: Option<String>,
    /// The state folder, where session monitors leave their records (see `sessions`).
    pub state_dir: Option<std::path::PathBuf>,
    /// The user's group.
    pub group: String,
    /// Lease lifetime.
    pub lease: Duration,
    /// Host facts for heartbeats.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// The collector URL (for the address the resolver sees).
    pub collector: String,
}

/// Live values the heartbeat reports, updated by other tasks.
#[derive(Debug, Default)]
pub struct Live {
    /// The wordlist version in use.
    pub wordlist_version: std::sync::Mutex<Option<String>>,
    /// Whether the session monitor (keyboard and window source) is running.
    pub helper_alive: std::sync::atomic::AtomicBool,
    /// When this process's session was shown the monitoring notice, and the text's fingerprint.
    pub notice: std::sync::Mutex<Option<(jiff::Timestamp, String)>>,
    /// Woken when `notice` is set, so the session record carries it without waiting for a refresh.
    pub notice_recorded: Notify,
}

impl Live {
    /// Records that the monitoring notice with fingerprint `sha256` was shown at `shown`.
    pub fn record_notice(&self, shown: jiff::Timestamp, sha256: String) {
        *self.notice.lock().unwrap_or_else(|p| p.into_inner()) = Some((shown, sha256));
        // A stored permit: the session-record task sees it even if it is busy writing right now.
        self.notice_recorded.notify_one();
    }

    /// When the notice was shown and its fingerprint, if it has been.
    pub fn notice(&self) -> Option<(jiff::Timestamp, String)> {
        self.notice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The shipping task.
pub struct Shipper<T: Transport, F: SpoolFs> {
    transport: Arc<T>,
    spool: Arc<Spool<F>>,
    settings: ShipperSettings,
    wake: Arc<Notify>,
    live: Arc<Live>,
    status: Option<StatusFile>,
    backoff: Backoff,
}

/// How a delivery attempt went.
enum Delivery {
    /// Nothing to send.
    Idle,
    /// Sent (or set aside); look again at once.
    Progress,
    /// Failed; wait before trying again.
    Wait(Duration),
}

impl<T: Transport, F: SpoolFs + 'static> Shipper<T, F> {
    /// A shipper over `spool` to `transport`.
    pub fn new(
        transport: Arc<T>,
        spool: Arc<Spool<F>>,
        settings: ShipperSettings,
        wake: Arc<Notify>,
        live: Arc<Live>,
        status: Option<StatusFile>,
    ) -> Self {
        let backoff = Backoff::new(Duration::from_secs(1), settings.retry_max);
        Shipper {
            transport,
            spool,
            settings,
            wake,
            live,
            status,
            backoff,
        }
    }

    /// Runs until `shutdown`: delivers alerts, sends heartbeats and leases.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut next_heartbeat = Instant::now();
        let mut next_lease = Instant::now();
        let mut next_delivery = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_heartbeat {
                next_heartbeat = now + self.heartbeat().await;
            }
            if now >= next_lease {
                next_lease = now + self.lease().await;
            }
            if now >= next_delivery {
                next_delivery = match self.deliver().await {
                    Delivery::Progress => now,
                    Delivery::Idle => now + self.settings.poll,
                    Delivery::Wait(d) => now + d,
                };
                if next_delivery == now {
                    continue;
                }
            }
            let wake_at = next_delivery.min(next_heartbeat).min(next_lease);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = self.wake.notified() => {
                    // A new alert: deliver now unless backing off.
                    if self.backoff.failures() == 0 {
                        next_delivery = Instant::now();
                    }
                }
            }
        }
    }

    /// Runs blocking spool work off the async threads.
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Spool<F>) -> R + Send + 'static,
    ) -> R {
        let spool = Arc::clone(&self.spool);
        tokio::task::spawn_blocking(move || f(&spool))
            .await
            .expect("spool task panicked")
    }

    /// Turns alerts lost to a full spool (or to corruption, or refused) into one device alert, so
    /// the DSL learns that something may be missing.
    async fn report_drops(&self) {
        let report = match self.blocking(|s| s.take_drop_report()).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool ledger");
                return;
            }
        };
        tracing::warn!(lost = report.count, detail = %report.detail, "alerts were lost; reporting it");
        // A device alert like the collector's own (silent device, stopped helper): source `device`.
        // It keeps the category of the most severe alert lost, which tells the DSL what may be
        // missing; unreadable records have none and file under the tamper category instead.
        let (category, severity) = match report.category {
            Some(category) => (category, report.max_severity),
            None => (Category::TAMPER, report.max_severity.max(3)),
        };
        let alert = Alert {
            id: Uuid::now_v7(),
            device: self.settings.device.clone(),
            user: self.lease_user(),
            time: jiff::Timestamp::now(),
            source: ward_protocol::AlertSource::Device,
            category,
            severity,
            phrase: "alerts lost on this device".into(),
            context: format!(
                "{} alert(s) could not be kept by the agent (spool full while the collector was \
                 unreachable, or unreadable on disk) and were dropped, least severe first: {}",
                report.count, report.detail
            )
            .chars()
            .take(1024)
            .collect(),
            language: None,
            application: Some("ward-agent".into()),
            window_title: None,
            wordlist_version: None,
            client_ip: None,
            screenshot: None,
            no_screenshot_reason: Some("device alert: nothing on screen to show".into()),
        };
        if let Err(e) = self.blocking(move |s| s.push(&alert)).await {
            tracing::error!(error = %e, "cannot spool the lost-alerts report");
        }
    }

    async fn deliver(&mut self) -> Delivery {
        let (max, bytes) = (self.settings.batch_alerts, self.settings.batch_bytes);
        let batch = match self.blocking(move |s| s.batch(max, bytes)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool");
                return Delivery::Wait(self.backoff.next_delay());
            }
        };
        if batch.is_empty() {
            return Delivery::Idle;
        }
        match self.send(batch.clone()).await {
            Ok(receipt) => {
                self.acknowledge(receipt.stored).await;
                self.backoff.reset();
                // Only now, with the collector answering and room made: during an outage a report
                // would only compete for the space whose lack it reports.
                self.report_drops().await;
                Delivery::Progress
            }
            Err(e) if e.is_retryable() || !malformed(&e) => self.failed(&e),
            Err(e) if batch.len() > 1 => {
                tracing::warn!(error = %e, alerts = batch.len(), "batch refused; sending its alerts one by one");
                for alert in batch {
                    let id = alert.id;
                    match self.send(vec![alert]).await {
                        Ok(receipt) => self.acknowledge(receipt.stored).await,
                        Err(e) if e.is_retryable() || !malformed(&e) => return self.failed(&e),
                        Err(e) => self.set_aside(id, &e).await,
                    }
                }
                self.backoff.reset();
                self.report_drops().await;
                Delivery::Progress
            }
            Err(e) => {
                self.set_aside(batch[0].id, &e).await;
                self.report_drops().await;
                Delivery::Progress
            }
        }
    }

    fn failed(&mut self, e: &ClientError) -> Delivery {
        let mut delay = self.backoff.next_delay();
        if let ClientError::Refused {
            retry_after: Some(secs),
            ..
        } = e
        {
            delay = delay.max(Duration::from_secs(*secs));
        }
        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "alert delivery failed; keeping the alerts");
        if let Some(status) = &self.status {
            status.update(|s| s.collector_reachable = Some(false));
        }
        Delivery::Wait(delay)
    }

    async fn send(&self, mut alerts: Vec<Alert>) -> Result<IngestReceipt, ClientError> {
        for alert in &mut alerts {
            // Alerts spooled before enrolment (or by another tool) carry the host name.
            alert.device.clone_from(&self.settings.device);
        }
        let batch = AlertBatch {
            version: PROTOCOL_VERSION,
            alerts,
        };
        self.transport.send_alerts(&batch).await
    }

    async fn acknowledge(&self, ids: Vec<Uuid>) {
        let count = ids.len();
        if let Err(e) = self.blocking(move |s| s.ack(&ids)).await {
            // Not deleted: they will be sent again and the collector drops the duplicates.
            tracing::error!(error = %e, "cannot delete acknowledged alerts from the spool");
        }
        tracing::info!(alerts = count, "alerts delivered");
        if let Some(status) = &self.status {
            status.update(|s| {
                s.collector_reachable = Some(true);
                s.last_delivery = Some(jiff::Timestamp::now());
            });
        }
    }

    async fn set_aside(&self, id: Uuid, e: &ClientError) {
        tracing::error!(%id, error = %e, "collector refused an alert for good; removing it from the spool");
        if let Err(e) = self.blocking(move |s| s.reject(id)).await {
            tracing::error!(%id, error = %e, "cannot remove a refused alert");
        }
    }

    /// Sends a heartbeat; returns the wait until the next.
    async fn heartbeat(&mut self) -> Duration {
        let (depth, ledger) = self
            .blocking(|s| (s.depth().unwrap_or(0), s.ledger().unwrap_or_default()))
            .await;
        let sessions = self.sessions();
        let heartbeat = Heartbeat {
            version: PROTOCOL_VERSION,
            time: jiff::Timestamp::now(),
            hostname: self.settings.hostname.clone(),
            os: self.settings.os.clone(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            wordlist_version: self
                .live
                .wordlist_version
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            spool_depth: depth as u32,
            spool_dropped: ledger.since_heartbeat,
            sessions,
        };
        match self.transport.send_heartbeat(&heartbeat).await {
            Ok(()) => {
                let reported = ledger.since_heartbeat;
                if reported > 0 {
                    let _ = self
                        .blocking(move |s| s.heartbeat_delivered(reported))
                        .await;
                }
                if let Some(status) = &self.status {
                    status.update(|s| {
                        s.collector_reachable = Some(true);
                        s.last_heartbeat = Some(heartbeat.time);
                        s.wordlist_version = heartbeat.wordlist_version.clone();
                    });
                }
                self.settings.heartbeat
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                // Try again sooner than a full interval, so a recovered collector hears from us.
                self.settings.heartbeat.min(Duration::from_secs(15))
            }
        }
    }

    /// The sessions the monitors report: one per user, alive if any of its helpers is.
    fn sessions(&self) -> Vec<SessionState> {
        let Some(dir) = &self.settings.state_dir else {
            return Vec::new();
        };
        let now = jiff::Timestamp::now();
        sessions_of(crate::sessions::read_all(dir, now), now)
    }

    /// The user to lease for: the freshest live session's, else the configured one. Never the
    /// service's own account.
    fn lease_user(&self) -> Option<String> {
        let now = jiff::Timestamp::now();
        self.settings
            .state_dir
            .as_deref()
            .map(|dir| crate::sessions::read_all(dir, now))
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.alive(now))
            .max_by_key(|r| r.updated)
            .map(|r| r.user)
            .or_else(|| self.settings.user.clone())
    }

    /// Sends an identity lease for the signed-in user; returns the wait until renewal.
    async fn lease(&mut self) -> Duration {
        let Some(user) = self.lease_user() else {
            // Nobody signed in yet: look again soon.
            return Duration::from_secs(30);
        };
        let addresses = crate::host::addresses_towards(&self.settings.collector);
        let lease = IdentityLease {
            version: PROTOCOL_VERSION,
            addresses,
            user,
            group: self.settings.group.clone(),
            expires: jiff::Timestamp::now()
                .checked_add(
                    jiff::SignedDuration::try_from(self.settings.lease).unwrap_or_default(),
                )
                .unwrap_or_else(|_| jiff::Timestamp::now()),
        };
        match self.transport.send_lease(&lease).await {
            Ok(()) => self.settings.lease / 3,
            Err(e) => {
                tracing::warn!(error = %e, "identity lease failed");
                Duration::from_secs(30).min(self.settings.lease / 3)
            }
        }
    }
}

/// Heartbeat sessions from session records: one per user, alive if any of its helpers is, with the
/// latest showing of the monitoring notice among its records.
pub fn sessions_of(
    records: Vec<crate::sessions::SessionRecord>,
    now: jiff::Timestamp,
) -> Vec<SessionState> {
    let mut sessions: Vec<SessionState> = Vec::new();
    for record in records {
        let alive = record.alive(now);
        // The two notice fields travel together or not at all (the collector refuses half a pair).
        let notice = record.notice_shown.zip(record.notice_sha256);
        match sessions.iter_mut().find(|s| s.user == record.user) {
            Some(s) => {
                s.helper_alive |= alive;
                if let Some((shown, sha256)) = notice {
                    if s.notice_shown.is_none_or(|t| t < shown) {
                        s.notice_shown = Some(shown);
                        s.notice_sha256 = Some(sha256);
                    }
                }
            }
            None => {
                let (notice_shown, notice_sha256) = notice.unzip();
                sessions.push(SessionState {
                    user: record.user,
                    helper_alive: alive,
                    notice_shown,
                    notice_sha256,
                });
            }
        }
    }
    sessions
}

/// Whether a refusal is about the request's content (split or set aside) rather than about the
/// device or the collector (keep everything and wait).
fn malformed(e: &ClientError) -> bool {
    matches!(e.status(), Some(400 | 413 | 422))
}

#[cfg(test)]
mod tests;
