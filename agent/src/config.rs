//! `agent.toml`: the raw file as serde sees it, and the validated settings the program uses.
//!
//! Every key is optional except `collector`; the defaults below are what a school gets without
//! writing anything else. Relative paths are relative to the file's folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use ward_service::config::{load, relative_to, ConfigError};

pub mod machine;

use crate::spool::Limits;
use crate::text::Exclusions;

/// Programs whose windows are never read: password managers, keyrings, screen lockers, sudo prompts.
pub const DEFAULT_EXCLUDED_APPLICATIONS: &[&str] = &[
    "keepassxc",
    "keepass",
    "keepass2",
    "bitwarden",
    "1password",
    "lastpass",
    "dashlane",
    "enpass",
    "seahorse",
    "gnome-keyring-daemon",
    "kwalletmanager5",
    "pinentry",
    "pinentry-gtk-2",
    "pinentry-qt",
    "polkit-gnome-authentication-agent-1",
    "xscreensaver",
    "light-locker",
    "i3lock",
    "credentialuibroker",
    "logonui",
    "consent",
];

/// Title words that mark a window where a password is typed.
pub const DEFAULT_EXCLUDED_TITLE_WORDS: &[&str] =
    &["password", "passwort", "mot de passe", "pin code"];

/// What pupils and staff see at each logon unless the school sets its own text.
pub const DEFAULT_NOTICE: &str =
    "This computer is monitored by the school to keep you safe online. \
What you type and the titles of the windows you use are checked for signs that you or someone \
else may be at risk; a member of staff may see a matching phrase and a picture of the screen. \
Ask your teacher if you have questions.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    collector: String,
    wordlists: Option<PathBuf>,
    local_wordlists: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    monitor: RawMonitor,
    #[serde(default)]
    capture: RawCapture,
    #[serde(default)]
    spool: RawSpool,
    #[serde(default)]
    shipper: RawShipper,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    user: Option<String>,
    group: Option<String>,
    lease_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitor {
    min_severity: Option<u8>,
    idle_flush_ms: Option<u64>,
    excluded_applications: Option<Vec<String>>,
    excluded_title_words: Option<Vec<String>>,
    notice: Option<String>,
    notice_seconds: Option<u64>,
    session_refresh_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapture {
    enabled: Option<bool>,
    max_width: Option<u32>,
    per_window_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    max_megabytes: Option<u64>,
    max_alerts: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShipper {
    batch_alerts: Option<usize>,
    heartbeat_seconds: Option<u64>,
    retry_max_seconds: Option<u64>,
}

/// Validated agent settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any (watched for changes).
    pub path: Option<PathBuf>,
    /// The collector's base URL.
    pub collector: String,
    /// The shipped wordlist folder.
    pub wordlists: PathBuf,
    /// The school's own additions and suppressions, if any.
    pub local_wordlists: Option<PathBuf>,
    /// Where enrolment and the spool live.
    pub state_dir: PathBuf,
    /// User name override (default: the signed-in user).
    pub user: Option<String>,
    /// The user's group, which the resolver maps to a filter tier.
    pub group: String,
    /// How long an identity lease lasts; renewed at a third of it.
    pub lease: Duration,
    /// Alerts below this severity are not raised.
    pub min_severity: u8,
    /// A pause this long ends the typed text (confirms a phrase typed last).
    pub idle_flush: Duration,
    /// Windows never read.
    pub exclusions: Exclusions,
    /// The monitoring notice shown at logon.
    pub notice: String,
    /// How long the notice stays up unless dismissed.
    pub notice_time: Duration,
    /// How often the session helper refreshes its session record; three missed refreshes and the
    /// collector shows the session as unmonitored.
    pub session_refresh: Duration,
    /// Take screenshots at all.
    pub capture: bool,
    /// Screenshot width limit.
    pub capture_max_width: u32,
    /// At most one screenshot per window per this interval.
    pub capture_interval: Duration,
    /// Spool bounds.
    pub spool: Limits,
    /// Alerts per request.
    pub batch_alerts: usize,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Longest wait between delivery attempts.
    pub retry_max: Duration,
}

/// Default state folder for an installed agent.
pub fn default_state_dir() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(r"C:\ProgramData\Ward\agent")
    } else {
        PathBuf::from("/var/lib/ward-agent")
    }
}

fn default_wordlists() -> PathBuf {
    PathBuf::from(crate::scan::wordlists::INSTALLED_DIR)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: None,
            collector: "https://127.0.0.1:8443".into(),
            wordlists: default_wordlists(),
            local_wordlists: crate::scan::wordlists::default_local_dir(),
            state_dir: default_state_dir(),
            user: None,
            group: "pupil".into(),
            lease: Duration::from_secs(15 * 60),
            min_severity: 1,
            idle_flush: Duration::from_millis(1000),
            exclusions: Exclusions {
                applications: DEFAULT_EXCLUDED_APPLICATIONS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                title_words: DEFAULT_EXCLUDED_TITLE_WORDS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            },
            notice: DEFAULT_NOTICE.into(),
            notice_time: Duration::from_secs(30),
            session_refresh: crate::sessions::REFRESH,
            capture: true,
            capture_max_width: 1280,
            capture_interval: Duration::from_secs(60),
            spool: Limits::default(),
            batch_alerts: 100,
            heartbeat: Duration::from_secs(60),
            retry_max: Duration::from_secs(300),
        }
    }
}

fn lower(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.to_lowercase()).collect()
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or holds a value out of range (named with the file).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let RawConfig {
            collector,
            wordlists,
            local_wordlists,
            state_dir,
            identity,
            monitor,
            capture,
            spool,
            shipper,
        } = load(path)?;
        let RawIdentity {
            user,
            group,
            lease_minutes,
        } = identity;
        let RawMonitor {
            min_severity,
            idle_flush_ms,
            excluded_applications,
            excluded_title_words,
            notice,
            notice_seconds,
            session_refresh_seconds,
        } = monitor;
        let RawCapture {
            enabled,
            max_width,
            per_window_seconds,
        } = capture;
        let RawSpool {
            max_megabytes,
            max_alerts,
        } = spool;
        let RawShipper {
            batch_alerts,
            heartbeat_seconds,
            retry_max_seconds,
        } = shipper;
        let invalid = |m: &str| ConfigError::invalid(path, m);
        if !collector.starts_with("https://") {
            return Err(invalid("collector: must be an https:// URL"));
        }
        let d = Config::default();
        let min_severity = min_severity.unwrap_or(d.min_severity);
        if !(1..=5).contains(&min_severity) {
            return Err(invalid("monitor.min_severity: must be 1 to 5"));
        }
        let batch_alerts = batch_alerts.unwrap_or(d.batch_alerts);
        if !(1..=ward_protocol::MAX_BATCH).contains(&batch_alerts) {
            return Err(invalid(&format!(
                "shipper.batch_alerts: must be 1 to {}",
                ward_protocol::MAX_BATCH
            )));
        }
        if max_megabytes == Some(0) || max_alerts == Some(0) || lease_minutes == Some(0) {
            return Err(invalid(
                "spool.max_megabytes, spool.max_alerts and identity.lease_minutes must be above 0",
            ));
        }
        if session_refresh_seconds == Some(0) {
            return Err(invalid("monitor.session_refresh_seconds: must be above 0"));
        }
        if heartbeat_seconds == Some(0) || retry_max_seconds == Some(0) {
            return Err(invalid("shipper intervals must be above 0"));
        }
        let group = group.unwrap_or(d.group);
        if group.trim().is_empty() {
            return Err(invalid("identity.group: must not be empty"));
        }
        Ok(Config {
            path: Some(path.to_path_buf()),
            collector,
            wordlists: wordlists.map_or(d.wordlists, |p| relative_to(path, &p)),
            local_wordlists: local_wordlists
                .map(|p| relative_to(path, &p))
                .or(d.local_wordlists),
            state_dir: state_dir.map_or(d.state_dir, |p| relative_to(path, &p)),
            user: user.filter(|u| !u.is_empty()),
            group,
            lease: lease_minutes.map_or(d.lease, |m| Duration::from_secs(u64::from(m) * 60)),
            min_severity,
            idle_flush: idle_flush_ms.map_or(d.idle_flush, Duration::from_millis),
            exclusions: Exclusions {
                applications: excluded_applications.map_or(d.exclusions.applications, lower),
                title_words: excluded_title_words.map_or(d.exclusions.title_words, lower),
            },
            notice: notice.unwrap_or(d.notice),
            notice_time: notice_seconds.map_or(d.notice_time, Duration::from_secs),
            session_refresh: session_refresh_seconds.map_or(d.session_refresh, Duration::from_secs),
            capture: enabled.unwrap_or(d.capture),
            capture_max_width: max_width.unwrap_or(d.capture_max_width).max(160),
            capture_interval: per_window_seconds.map_or(d.capture_interval, Duration::from_secs),
            spool: Limits {
                max_bytes: max_megabytes.map_or(d.spool.max_bytes, |m| m * 1024 * 1024),
                max_records: max_alerts.unwrap_or(d.spool.max_records),
            },
            batch_alerts,
            heartbeat: heartbeat_seconds.map_or(d.heartbeat, Duration::from_secs),
            retry_max: retry_max_seconds.map_or(d.retry_max, Duration::from_secs),
        })
    }

    /// Loads `path` if given, else the defaults (with the installer's collector on Windows);
    /// `state_dir` overrides the file's.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn resolve(path: Option<&Path>, state_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        if let Some(dir) = state_dir {
            config.state_dir = dir.to_path_buf();
        }
        if path.is_none() {
            // The installed Windows service runs without a file: the collector the installer set,
            // else the one this device enrolled with (an upgrade may bring no COLLECTOR_URL).
            if let Some(url) = machine::installed_collector()
                .or_else(|| machine::enrolled_collector(&config.state_dir))
            {
                config.collector = url;
            }
        }
        Ok(config)
    }

    /// The spool folder inside the state folder.
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/agent.toml")
    }

    #[test]
    fn the_example_config_loads() {
        let config = Config::load(&example()).unwrap();
        assert_eq!(config.collector, "https://127.0.0.1:8443");
        assert!(config.wordlists.ends_with("wordlists"));
        assert!(config
            .exclusions
            .applications
            .iter()
            .any(|a| a == "keepassxc"));
    }

    #[test]
    fn the_example_config_with_an_unknown_key_is_refused() {
        let text = std::fs::read_to_string(example()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (i, variant) in [
            format!("colector = 1\n{text}"),
            text.replace("[capture]\n", "[capture]\nenabeld = true\n"),
        ]
        .iter()
        .enumerate()
        {
            let path = dir.path().join(format!("agent{i}.toml"));
            std::fs::write(&path, variant).unwrap();
            let err = Config::load(&path).unwrap_err().to_string();
            assert!(err.contains(&*path.to_string_lossy()), "{err}");
            assert!(err.contains("unknown field"), "{err}");
        }
    }

    #[test]
    fn without_a_file_the_enrolled_collector_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::resolve(None, Some(dir.path())).unwrap();
        assert_eq!(config.collector, Config::default().collector);
        machine::remember_collector(dir.path(), "https://ward.school.example:8443");
        let config = Config::resolve(None, Some(dir.path())).unwrap();
        assert_eq!(config.collector, "https://ward.school.example:8443");
        // A file says where to ship, whatever the device enrolled with.
        let config = Config::resolve(Some(&example()), Some(dir.path())).unwrap();
        assert_eq!(config.collector, "https://127.0.0.1:8443");
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "collector = \"https://c\"\n[monitor]\nmin_severity = 9\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("monitor.min_severity"), "{err}");
        std::fs::write(&path, "collector = \"http://c\"\n").unwrap();
        assert!(Config::load(&path)
            .unwrap_err()
            .to_string()
            .contains("https"));
    }
}
