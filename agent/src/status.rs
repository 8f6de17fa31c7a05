//! `status.json` in the state folder: what the running service last saw (heartbeat, delivery,
//! whether the collector answered, the wordlist version), for `ward-agent status`.
//!
//! Written atomically (temp file and rename) whenever something changes; readers never see half a file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The service's last observations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// When the last heartbeat was delivered.
    pub last_heartbeat: Option<Timestamp>,
    /// When alerts were last delivered.
    pub last_delivery: Option<Timestamp>,
    /// Whether the last request reached the collector.
    pub collector_reachable: Option<bool>,
    /// The wordlist version loaded.
    pub wordlist_version: Option<String>,
    /// When the monitoring notice was last shown, and to whom.
    #[serde(default)]
    pub notice_shown: Option<(Timestamp, String)>,
}

/// The status file, shared by the tasks that update it.
#[derive(Debug, Clone)]
pub struct StatusFile {
    path: PathBuf,
    current: Arc<Mutex<Status>>,
}

impl StatusFile {
    /// The status file in `state_dir`, starting from what it holds.
    pub fn open(state_dir: &Path) -> StatusFile {
        let path = state_dir.join("status.json");
        let current = Status::read(state_dir).unwrap_or_default();
        StatusFile {
            path,
            current: Arc::new(Mutex::new(current)),
        }
    }

    /// Changes the status and writes it out (a failed write is logged, not fatal).
    pub fn update(&self, change: impl FnOnce(&mut Status)) {
        let snapshot = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut current);
            current.clone()
        };
        let temp = self.path.with_extension("json.tmp");
        let written = serde_json::to_vec_pretty(&snapshot)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temp, bytes))
            .and_then(|()| std::fs::rename(&temp, &self.path));
        if let Err(e) = written {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot write the status file");
        }
    }
}

impl Status {
    /// Reads `status.json` from `state_dir`, if there is one.
    pub fn read(state_dir: &Path) -> Option<Status> {
        let bytes = std::fs::read(state_dir.join("status.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
