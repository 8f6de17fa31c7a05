//! Session records: which user each session monitor is watching, refreshed every 30 seconds (or
//! `monitor.session_refresh_seconds`).
//!
//! The session monitor may be another process than the shipper (a per-display helper beside the
//! system service), so they meet in the state folder: `sessions/<display>.json`. The shipper reads
//! them for heartbeats (a record that stopped being refreshed is a helper that was killed: the
//! collector shows that session as unmonitored), for identity leases (the user of the freshest
//! live session) and for disclosure: the record carries when the monitoring notice was shown at this
//! logon, and every heartbeat repeats it, so a collector that was down at logon still learns it. A
//! helper that stops cleanly removes its record.
//!
//! Each record says how often its helper promised to refresh it, and is stale after
//! [`MISSED_REFRESHES`] of those: the reader needs no setting of its own to judge a helper, whatever
//! interval the helper was started with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How often a live helper refreshes its record, unless configured otherwise.
pub const REFRESH: Duration = Duration::from_secs(30);
/// Refreshes a helper may miss (a busy machine, a suspended session) before it counts as gone.
pub const MISSED_REFRESHES: u32 = 3;
/// A record older than this means the helper is gone (for records that do not say their interval).
pub const STALE: Duration = Duration::from_secs(90);
/// A record older than this is forgotten (the user has long logged off).
const FORGET: Duration = Duration::from_secs(12 * 3600);

/// One session monitor's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The user signed in on that display.
    pub user: String,
    /// The display (`:0`) or `console`.
    pub display: String,
    /// Last refresh.
    pub updated: Timestamp,
    /// When the monitoring notice was shown at this logon (absent until it has been).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_shown: Option<Timestamp>,
    /// Hex SHA-256 of the notice text shown (see `crate::notice::fingerprint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_sha256: Option<String>,
    /// How often the helper refreshes this record, in seconds (absent: [`REFRESH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_seconds: Option<u64>,
}

impl SessionRecord {
    /// Whether the helper refreshed it recently.
    pub fn alive(&self, now: Timestamp) -> bool {
        now.duration_since(self.updated).unsigned_abs() < self.stale_after()
    }

    /// The age at which this record means its helper is gone.
    pub fn stale_after(&self) -> Duration {
        match self.refresh_seconds {
            Some(seconds) if seconds > 0 => Duration::from_secs(seconds) * MISSED_REFRESHES,
            _ => STALE,
        }
    }
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("sessions")
}

fn file(state_dir: &Path, display: &str) -> PathBuf {
    let name: String = display
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    dir(state_dir).join(format!("{name}.json"))
}

/// Writes (or refreshes) the record for `display`.
///
/// # Errors
/// The state folder is not writable.
pub fn write(state_dir: &Path, record: &SessionRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir(state_dir))?;
    let path = file(state_dir, &record.display);
    let temp = path.with_extension("tmp");
    std::fs::write(
        &temp,
        serde_json::to_vec(record).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(temp, path)
}

/// Removes the record for `display` (a clean logoff).
pub fn remove(state_dir: &Path, display: &str) {
    let _ = std::fs::remove_file(file(state_dir, display));
}

/// Every record not yet forgotten.
pub fn read_all(state_dir: &Path, now: Timestamp) -> Vec<SessionRecord> {
    let Ok(entries) = std::fs::read_dir(dir(state_dir)) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            serde_json::from_slice::<SessionRecord>(&std::fs::read(e.path()).ok()?).ok()
        })
        .filter(|r| now.duration_since(r.updated).unsigned_abs() < FORGET)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_age_from_alive_to_stale() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let record = SessionRecord {
            user: "pupil1".into(),
            display: ":0".into(),
            updated: now,
            notice_shown: Some(now),
            notice_sha256: Some(crate::notice::fingerprint("You are monitored.")),
            refresh_seconds: None,
        };
        write(dir.path(), &record).unwrap();
        let read = read_all(dir.path(), now);
        assert_eq!(read, vec![record.clone()]);
        assert!(read[0].alive(now));
        assert!(!read[0].alive(now + Duration::from_secs(120)));
        assert!(read_all(dir.path(), now + Duration::from_secs(13 * 3600)).is_empty());
        remove(dir.path(), ":0");
        assert!(read_all(dir.path(), now).is_empty());
    }
    #[test]
    fn records_written_before_the_notice_fields_existed_still_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sessions")).unwrap();
        let now = Timestamp::now();
        std::fs::write(
            dir.path().join("sessions/_0.json"),
            format!(r#"{{"user":"pupil1","display":":0","updated":"{now}"}}"#),
        )
        .unwrap();
        let read = read_all(dir.path(), now);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].notice_shown, None);
        assert_eq!(read[0].stale_after(), STALE);
    }

    #[test]
    fn a_record_is_stale_after_three_of_its_own_refreshes() {
        let now = Timestamp::now();
        let record = SessionRecord {
            user: "pupil1".into(),
            display: ":0".into(),
            updated: now,
            notice_shown: None,
            notice_sha256: None,
            refresh_seconds: Some(2),
        };
        assert_eq!(record.stale_after(), Duration::from_secs(6));
        assert!(record.alive(now + Duration::from_secs(5)));
        assert!(!record.alive(now + Duration::from_secs(7)));
        let default = SessionRecord {
            refresh_seconds: Some(REFRESH.as_secs()),
            ..record
        };
        assert_eq!(default.stale_after(), STALE);
    }
}
