//! `collector.toml`: the raw file as serde sees it, and the validated settings the program uses.
//!
//! Every section is optional; a missing one takes the embedded defaults, which are also what the
//! collector runs on with no `--config` at all (loopback, data in `./ward-data`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use ward_protocol::Category;
use ward_service::config::{load, relative_to, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    hostnames: Vec<String>,
    policy: Option<PathBuf>,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    devices: RawDevices,
    #[serde(default)]
    ui: crate::ui::settings::RawUi,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    backend: Option<String>,
    url: Option<String>,
    ca_key_secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<usize>,
    max_request_bytes: Option<usize>,
    device_requests_per_second: Option<f64>,
    device_request_burst: Option<f64>,
    enrol_requests_per_minute: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    alerts_days: Option<u32>,
    screenshots_days: Option<u32>,
    #[serde(default)]
    categories: BTreeMap<String, u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevices {
    silent_after_minutes: Option<u32>,
    school_days: Option<Vec<String>>,
    school_hours: Option<String>,
    timezone: Option<String>,
}

/// Which database holds the collector's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// SQLite file `<data-dir>/ward.db` (the default).
    Sqlite,
    /// PostgreSQL at this libpq-style connection string (`host=... user=... dbname=...`).
    Postgres(String),
}

/// Request limits that protect the collector from broken or hostile senders.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at once; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Largest request body (alert batches with screenshots are the big ones).
    pub max_request_bytes: usize,
    /// Sustained requests per second one device may make.
    pub device_requests_per_second: f64,
    /// Requests one device may make in a burst.
    pub device_request_burst: f64,
    /// Enrolment attempts per minute from one address.
    pub enrol_requests_per_minute: f64,
}

/// How long records are kept.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Alert text, by default.
    pub alerts: Duration,
    /// Screenshots (usually much shorter than the text).
    pub screenshots: Duration,
    /// Alert text per category where it differs from `alerts`.
    pub categories: BTreeMap<Category, Duration>,
}

/// When a device that stops sending heartbeats counts as silent.
#[derive(Debug, Clone)]
pub struct SilentDevices {
    /// No heartbeat for this long.
    pub after: Duration,
    /// Days of the week the school is open (0 = Monday).
    pub days: Vec<u8>,
    /// Opening time, minutes after midnight, local time.
    pub opens: u16,
    /// Closing time, minutes after midnight.
    pub closes: u16,
    /// The school's time zone.
    pub timezone: jiff::tz::TimeZone,
}

/// Validated collector settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTPS address for the API and review UI.
    pub listen: SocketAddr,
    /// Database, CA and screenshots.
    pub data_dir: PathBuf,
    /// Names the server certificate carries besides the listen address, loopback and localhost.
    pub hostnames: Vec<String>,
    /// A policy file imported as a new revision on start when it changed.
    pub policy: Option<PathBuf>,
    /// Where records live.
    pub database: Database,
    /// PostgreSQL only: the CA key is stored sealed with a key derived from this file
    /// (`database.ca_key_secret_file`; see `crate::seal`).
    pub ca_key_secret_file: Option<PathBuf>,
    /// Request limits.
    pub limits: Limits,
    /// Retention.
    pub retention: Retention,
    /// Silent-device detection.
    pub silent: SilentDevices,
    /// Review UI: block page, notifications, second factor, approvals.
    pub ui: crate::ui::settings::UiConfig,
}

impl Default for Config {
    /// The embedded defaults: loopback, data in `./ward-data`.
    fn default() -> Self {
        let raw: RawConfig = toml::from_str("").expect("an empty config parses");
        build(Path::new("ward-collector.toml"), raw, Path::new(".")).expect("defaults are valid")
    }
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or holds an unusable value (named).
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let raw: RawConfig = load(path)?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Ok(build(path, raw, base)?)
    }
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

fn build(path: &Path, raw: RawConfig, _base: &Path) -> Result<Config, ConfigError> {
    let RawConfig {
        listen,
        data_dir,
        hostnames,
        policy,
        database,
        limits,
        retention,
        devices,
        ui,
    } = raw;
    let bad = |message: String| ConfigError::invalid(path, message);

    let RawDatabase {
        backend,
        url,
        ca_key_secret_file,
    } = database;
    let database = match (backend.as_deref().unwrap_or("sqlite"), url) {
        ("sqlite", None) => Database::Sqlite,
        ("sqlite", Some(_)) => {
            return Err(bad(
                "database.url: only used with backend = \"postgres\"".into()
            ))
        }
        ("postgres", Some(url)) => Database::Postgres(url),
        ("postgres", None) => {
            return Err(bad(
                "database.url: needed with backend = \"postgres\"".into()
            ))
        }
        (other, _) => {
            return Err(bad(format!(
                "database.backend: `{other}` is not sqlite or postgres"
            )))
        }
    };
    if ca_key_secret_file.is_some() && database == Database::Sqlite {
        return Err(bad(
            "database.ca_key_secret_file: only used with backend = \"postgres\" (on SQLite the CA key is a file readable by the collector only)".into(),
        ));
    }

    let RawLimits {
        max_connections,
        max_request_bytes,
        device_requests_per_second,
        device_request_burst,
        enrol_requests_per_minute,
    } = limits;
    let limits = Limits {
        max_connections: max_connections.unwrap_or(512),
        max_request_bytes: max_request_bytes.unwrap_or(16 * 1024 * 1024),
        device_requests_per_second: device_requests_per_second.unwrap_or(20.0),
        device_request_burst: device_request_burst.unwrap_or(200.0),
        enrol_requests_per_minute: enrol_requests_per_minute.unwrap_or(60.0),
    };
    if limits.max_connections == 0 {
        return Err(bad("limits.max_connections: must be at least 1".into()));
    }
    if limits.max_request_bytes < 64 * 1024 {
        return Err(bad(
            "limits.max_request_bytes: must be at least 65536".into()
        ));
    }
    for (name, v) in [
        (
            "device_requests_per_second",
            limits.device_requests_per_second,
        ),
        ("device_request_burst", limits.device_request_burst),
        (
            "enrol_requests_per_minute",
            limits.enrol_requests_per_minute,
        ),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(bad(format!("limits.{name}: must be a positive number")));
        }
    }

    let RawRetention {
        alerts_days,
        screenshots_days,
        categories,
    } = retention;
    let mut per_category = BTreeMap::new();
    for (name, d) in categories {
        let category: Category = name
            .parse()
            .map_err(|e| bad(format!("retention.categories: {e}")))?;
        per_category.insert(category, days(d.max(1)));
    }
    let retention = Retention {
        alerts: days(alerts_days.unwrap_or(365).max(1)),
        screenshots: days(screenshots_days.unwrap_or(30).max(1)),
        categories: per_category,
    };

    let silent = silent_devices(devices).map_err(|m| bad(format!("devices.{m}")))?;

    let listen = listen.unwrap_or_else(|| ([127, 0, 0, 1], 8443).into());
    let ui = ui
        .build(&hostnames, listen, path)
        .map_err(|(key, message)| bad(format!("{key}: {message}")))?;
    Ok(Config {
        listen,
        data_dir: relative_to(
            path,
            &data_dir.unwrap_or_else(|| PathBuf::from("ward-data")),
        ),
        hostnames,
        policy: policy.map(|p| relative_to(path, &p)),
        database,
        ca_key_secret_file: ca_key_secret_file.map(|p| relative_to(path, &p)),
        limits,
        retention,
        silent,
        ui,
    })
}

fn silent_devices(raw: RawDevices) -> Result<SilentDevices, String> {
    let RawDevices {
        silent_after_minutes,
        school_days,
        school_hours,
        timezone,
    } = raw;
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let days = school_days
        .unwrap_or_else(|| NAMES[..5].iter().map(|s| s.to_string()).collect())
        .iter()
        .map(|d| {
            NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(d))
                .map(|i| i as u8)
                .ok_or_else(|| format!("school_days: `{d}` is not one of {}", NAMES.join(", ")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let hours = school_hours.unwrap_or_else(|| "08:00-16:30".into());
    let (opens, closes) = hours
        .split_once('-')
        .and_then(|(a, b)| Some((minutes(a)?, minutes(b)?)))
        .filter(|(a, b)| a < b)
        .ok_or_else(|| format!("school_hours: `{hours}` is not HH:MM-HH:MM"))?;
    let zone = timezone.unwrap_or_else(|| "Europe/London".into());
    let timezone = jiff::tz::TimeZone::get(&zone)
        .map_err(|_| format!("timezone: `{zone}` is not a known time zone"))?;
    Ok(SilentDevices {
        after: Duration::from_secs(u64::from(silent_after_minutes.unwrap_or(15).max(1)) * 60),
        days,
        opens,
        closes,
        timezone,
    })
}

fn minutes(hhmm: &str) -> Option<u16> {
    let (h, m) = hhmm.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_config() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/collector.toml")
    }

    #[test]
    fn the_example_config_loads() {
        let config = Config::load(&repo_config()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(config.database, Database::Sqlite);
    }

    #[test]
    fn an_unknown_key_in_the_example_is_refused_with_its_line() {
        let text = std::fs::read_to_string(repo_config()).unwrap();
        for (i, variant) in [format!("{text}\nlisten_typo = 1\n")].iter().enumerate() {
            let path = std::env::temp_dir().join(format!("ward-collector-{i}.toml"));
            std::fs::write(&path, variant).unwrap();
            let err = Config::load(&path).unwrap_err().to_string();
            assert!(err.contains("listen_typo"), "{err}");
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn defaults_and_bad_values() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(config.silent.days, vec![0, 1, 2, 3, 4]);
        let p = Path::new("/etc/ward/collector.toml");
        for (text, field) in [
            ("[database]\nbackend = \"mysql\"\n", "database.backend"),
            ("[database]\nbackend = \"postgres\"\n", "database.url"),
            (
                "[database]\nca_key_secret_file = \"secret\"\n",
                "database.ca_key_secret_file",
            ),
            (
                "[devices]\nschool_hours = \"9-5\"\n",
                "devices.school_hours",
            ),
            (
                "[devices]\ntimezone = \"Mars/Olympus\"\n",
                "devices.timezone",
            ),
            (
                "[retention.categories]\nkittens = 3\n",
                "retention.categories",
            ),
            ("[limits]\nmax_connections = 0\n", "limits.max_connections"),
        ] {
            let raw: RawConfig = toml::from_str(text).unwrap();
            let err = build(p, raw, Path::new("/etc/ward"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
    }
}
