//! High-risk blocks (self-harm, suicide, extremism, illegal, ...) recorded as safeguarding alerts for
//! the collector: DfE wants the school told when harmful content is blocked, not just the block.
//!
//! Alerts are appended to a durable queue in the state dir (`alerts/queue.jsonl`, one protocol
//! `Alert` per line, flushed and synced as written) by a thread of its own, so a slow disk never
//! delays an answer. Whatever ships them to the collector takes the whole file aside with [`take`]
//! (never between a write's open and its sync, so no alert lands in a file already read) and removes
//! it only once every alert in it is acknowledged.
//! A device retrying the same name does not flood the queue: one alert per client, domain and
//! category in ten minutes.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use ward_protocol::{Alert, AlertSource, Category};

/// The queue file, under `<state_dir>/alerts/`.
pub const QUEUE: &str = "queue.jsonl";
const REPEAT_WINDOW: Duration = Duration::from_secs(600);
/// Held while the queue file is appended to or taken aside.
static QUEUE_FILE: Mutex<()> = Mutex::new(());

/// Moves `<dir>/queue.jsonl` to `to` for shipping. `Ok(false)` when there is nothing queued.
///
/// # Errors
/// The rename failed for another reason than a missing queue.
pub fn take(dir: &Path, to: &Path) -> std::io::Result<bool> {
    let _held = QUEUE_FILE.lock().unwrap_or_else(|p| p.into_inner());
    match std::fs::rename(dir.join(QUEUE), to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Severity of a DNS block alert by category (a blocked look-up is a signal, not proof of intent).
pub fn severity(category: Category) -> u8 {
    match category {
        Category::Suicide | Category::Csam | Category::Grooming => 4,
        Category::SelfHarm | Category::Extremism | Category::Illegal => 3,
        Category::EatingDisorder | Category::Weapons => 2,
        _ => 1,
    }
}

/// Where alerts go.
pub struct AlertQueue {
    sender: Option<SyncSender<Alert>>,
    recent: Mutex<HashMap<(IpAddr, String, Category), Instant>>,
    device: String,
}

impl AlertQueue {
    /// A queue that records nothing (for `check`).
    pub fn disabled() -> AlertQueue {
        AlertQueue {
            sender: None,
            recent: Mutex::new(HashMap::new()),
            device: String::new(),
        }
    }

    /// Starts the writer thread appending to `<dir>/queue.jsonl`. `device` names this resolver in
    /// alerts (its enrolled device id, or its host name until enrolled).
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn start(dir: &Path, device: String) -> std::io::Result<AlertQueue> {
        std::fs::create_dir_all(dir)?;
        let (sender, receiver) = mpsc::sync_channel(4096);
        let path = dir.join(QUEUE);
        std::thread::Builder::new()
            .name("alert-queue".into())
            .spawn(move || write_loop(path, receiver))?;
        Ok(AlertQueue {
            sender: Some(sender),
            recent: Mutex::new(HashMap::new()),
            device,
        })
    }

    /// Records a block of `domain` in `category` for `client` (user where known), unless the same
    /// one was recorded in the last ten minutes.
    pub fn blocked(
        &self,
        client: IpAddr,
        user: Option<&str>,
        domain: &str,
        category: Category,
        now: Instant,
    ) {
        let Some(sender) = &self.sender else { return };
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            let key = (client, domain.to_string(), category);
            if recent
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < REPEAT_WINDOW)
            {
                return;
            }
            if recent.len() > 10_000 {
                recent.retain(|_, t| now.duration_since(*t) < REPEAT_WINDOW);
            }
            recent.insert(key, now);
        }
        let alert = Alert {
            id: uuid::Uuid::now_v7(),
            device: self.device.clone(),
            user: user.map(str::to_string),
            time: Timestamp::now(),
            source: AlertSource::Dns,
            category,
            severity: severity(category),
            phrase: domain.to_string(),
            context: format!("DNS look-up of {domain} blocked ({category})"),
            language: None,
            application: None,
            window_title: None,
            wordlist_version: None,
            client_ip: Some(client),
            screenshot: None,
            no_screenshot_reason: Some("DNS block: no screen to capture".into()),
        };
        if sender.try_send(alert).is_err() {
            tracing::warn!(%domain, %category, "alert queue full; alert not recorded");
        }
    }
}

fn write_loop(path: PathBuf, receiver: Receiver<Alert>) {
    while let Ok(alert) = receiver.recv() {
        let mut batch = vec![alert];
        while let Ok(more) = receiver.try_recv() {
            batch.push(more);
        }
        if let Err(e) = append(&path, &batch) {
            tracing::error!(path = %path.display(), error = %e, lost = batch.len(), "cannot write alert queue");
        }
    }
}

fn append(path: &Path, batch: &[Alert]) -> std::io::Result<()> {
    let mut text = String::new();
    for alert in batch {
        text.push_str(&serde_json::to_string(alert).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let _held = QUEUE_FILE.lock().unwrap_or_else(|p| p.into_inner());
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}
