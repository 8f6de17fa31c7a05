//! The commands besides `run` and `scan`: enrol, send-test-alert, status.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;
use ward_collector_client::{Client, Enrolment, Identity, Timeouts};
use ward_protocol::{Alert, AlertSource, Category, DeviceKind};

use crate::config::Config;
use crate::spool::{DiskFs, Pushed, Spool};
use crate::status::Status;

/// `ward-agent enrol`: obtains the device certificate; succeeds only when the collector said yes.
///
/// # Errors
/// The CA file is unreadable, the collector refused the token or could not be reached.
pub async fn enrol(config: &Config, collector: &str, token: &str, ca: &Path) -> anyhow::Result<()> {
    let ca_pem = std::fs::read_to_string(ca)
        .with_context(|| format!("{}: cannot read the collector CA", ca.display()))?;
    let identity = Enrolment {
        collector: collector.to_string(),
        token: token.to_string(),
        ca_pem,
        hostname: crate::host::hostname(),
        os: crate::host::os(),
        kind: DeviceKind::Agent,
        program_version: env!("CARGO_PKG_VERSION").into(),
    }
    .enrol(&config.state_dir)
    .await
    .context("enrolment failed")?;
    println!(
        "enrolled as device {} (certificate in {})",
        identity.device_id,
        config.state_dir.display()
    );
    Ok(())
}

/// The spool of `config`'s state folder.
///
/// # Errors
/// The folder cannot be created.
pub fn open_spool(config: &Config) -> anyhow::Result<Spool<DiskFs>> {
    let dir = config.spool_dir();
    let fs =
        DiskFs::open(&dir).with_context(|| format!("{}: cannot open the spool", dir.display()))?;
    Ok(Spool::new(fs, config.spool))
}

/// `ward-agent send-test-alert`: spools `count` clearly marked test alerts and prints their ids.
///
/// # Errors
/// The spool cannot be written.
pub fn send_test_alert(config: &Config, count: u32) -> anyhow::Result<()> {
    let spool = open_spool(config)?;
    let device = Identity::load(&config.state_dir)
        .map(|i| i.device_id)
        .unwrap_or_else(|_| crate::host::hostname());
    let host = crate::host::hostname();
    for n in 1..=count {
        let alert = Alert {
            id: Uuid::now_v7(),
            device: device.clone(),
            user: crate::host::user(config.user.as_deref()),
            time: jiff::Timestamp::now(),
            source: AlertSource::Device,
            category: Category::Test,
            severity: 1,
            phrase: "ward-agent test alert".into(),
            context: format!("test alert {n} of {count} from {host}: no action needed"),
            language: None,
            application: Some("ward-agent".into()),
            window_title: None,
            wordlist_version: None,
            client_ip: None,
            screenshot: None,
            no_screenshot_reason: Some("test alert".into()),
        };
        match spool.push(&alert).context("cannot spool the test alert")? {
            Pushed::Stored { .. } => println!("{}", alert.id),
            Pushed::Dropped => {
                anyhow::bail!("the spool is full of more severe alerts; test alert not stored")
            }
        }
    }
    Ok(())
}

/// `ward-agent status`.
///
/// # Errors
/// Output cannot be written.
pub async fn status(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let enrolled = Identity::exists(&config.state_dir);
    let identity = Identity::load(&config.state_dir).ok();
    let (reachable, reach_error) = match &identity {
        Some(identity) => {
            let pinged = match Client::new(&config.collector, identity) {
                Ok(client) => client
                    .with_timeouts(Timeouts {
                        connect: Duration::from_secs(5),
                        request: Duration::from_secs(10),
                    })
                    .ping()
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match pinged {
                Ok(()) => (Some(true), None),
                Err(e) => (Some(false), Some(e)),
            }
        }
        None => (None, None),
    };
    let spool = config
        .spool_dir()
        .is_dir()
        .then(|| open_spool(config).ok())
        .flatten();
    let depth = spool.as_ref().and_then(|s| s.depth().ok()).unwrap_or(0);
    let ledger = spool
        .as_ref()
        .and_then(|s| s.ledger().ok())
        .unwrap_or_default();
    let saved = Status::read(&config.state_dir).unwrap_or_default();
    let wordlist_version = saved.wordlist_version.clone().or_else(|| {
        crate::reload::load_wordlists(&config.wordlists, config.local_wordlists.as_deref())
            .ok()
            .map(|d| d.version().to_string())
    });
    let report = json!({
        "enrolled": enrolled,
        "device_id": identity.as_ref().map(|i| i.device_id.clone()),
        "collector": config.collector,
        "collector_reachable": reachable,
        "collector_error": reach_error,
        "spool_depth": depth,
        "spool_dropped_total": ledger.dropped_total,
        "last_heartbeat": saved.last_heartbeat.map(|t| t.to_string()),
        "last_delivery": saved.last_delivery.map(|t| t.to_string()),
        "wordlist_version": wordlist_version,
        "notice_shown": saved.notice_shown.as_ref().map(|(t, u)| format!("{t} to {u}")),
        "state_dir": config.state_dir.display().to_string(),
    });
    if as_json {
        println!("{report}");
        return Ok(());
    }
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for key in [
        "enrolled",
        "device_id",
        "collector",
        "collector_reachable",
        "collector_error",
        "spool_depth",
        "spool_dropped_total",
        "last_heartbeat",
        "last_delivery",
        "wordlist_version",
        "notice_shown",
        "state_dir",
    ] {
        println!("{key:<20} {}", show(&report[key]));
    }
    Ok(())
}
