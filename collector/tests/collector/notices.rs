//! Disclosure: heartbeats that name a session's user and when the monitoring notice was shown become
//! one record per user and device, which only moves forward, and `ward-collector notices` lists it
//! with the users never shown the notice first.

use std::process::Command;

use jiff::{SignedDuration, Timestamp};
use ward_collector_client::Client;
use ward_protocol::{DeviceKind, Heartbeat, SessionState, PROTOCOL_VERSION};

use crate::crash::BIN;
use crate::harness::{database_toml, Collector};

fn heartbeat(sessions: Vec<SessionState>) -> Heartbeat {
    Heartbeat {
        version: PROTOCOL_VERSION,
        time: Timestamp::now(),
        hostname: "ws-notice".into(),
        os: "linux".into(),
        agent_version: "0.1.0".into(),
        wordlist_version: None,
        spool_depth: 0,
        spool_dropped: 0,
        sessions,
    }
}

fn session(user: &str, shown: Option<(Timestamp, &str)>) -> SessionState {
    SessionState {
        user: user.into(),
        helper_alive: true,
        notice_shown: shown.map(|(t, _)| t),
        notice_sha256: shown.map(|(_, h)| h.to_string()),
    }
}

/// `ward-collector notices --json` on the collector's own database.
fn notices_cli(collector: &Collector) -> Vec<serde_json::Value> {
    let config = collector.data_dir().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n{}",
            collector.data_dir().display(),
            database_toml(&collector.config.database)
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["notices", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_record_who_was_shown_the_notice_and_when() {
    let collector = Collector::start().await;
    let (identity, client): (_, Client) = collector.enrol(DeviceKind::Agent).await;
    let (old_text, new_text) = ("a1".repeat(32), "b2".repeat(32));
    let logon = Timestamp::now() - SignedDuration::from_mins(30);

    // An agent that showed the notice to alex, and an older agent (no notice fields) with bo.
    client
        .send_heartbeat(&heartbeat(vec![
            session("alex", Some((logon, &old_text))),
            session("bo", None),
        ]))
        .await
        .unwrap();
    let rows = collector.store().disclosures().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].user, "alex");
    assert_eq!(rows[0].device, identity.device_id);
    assert_eq!(rows[0].shown, Some(logon.as_microsecond()));
    assert_eq!(rows[0].notice_sha256.as_deref(), Some(old_text.as_str()));
    assert_eq!(rows[1].user, "bo");
    assert_eq!(rows[1].shown, None);
    let first_seen = rows[0].first_seen;

    // A late heartbeat repeating an older showing changes nothing; a new logon moves it forward.
    client
        .send_heartbeat(&heartbeat(vec![session(
            "alex",
            Some((logon - SignedDuration::from_hours(5), &new_text)),
        )]))
        .await
        .unwrap();
    let alex = collector.store().disclosures().unwrap()[0].clone();
    assert_eq!(alex.shown, Some(logon.as_microsecond()));
    assert_eq!(alex.notice_sha256.as_deref(), Some(old_text.as_str()));
    // Stored to the microsecond.
    let relogon = Timestamp::from_microsecond(Timestamp::now().as_microsecond()).unwrap();
    client
        .send_heartbeat(&heartbeat(vec![session(
            "alex",
            Some((relogon, &new_text)),
        )]))
        .await
        .unwrap();
    let alex = collector.store().disclosures().unwrap()[0].clone();
    assert_eq!(alex.shown, Some(relogon.as_microsecond()));
    assert_eq!(alex.notice_sha256.as_deref(), Some(new_text.as_str()));
    assert_eq!(alex.first_seen, first_seen);
    assert!(alex.last_seen >= first_seen);

    // Half a notice pair is refused whole, naming the field; nothing of it is recorded.
    let mut half = session("cy", Some((relogon, &new_text)));
    half.notice_sha256 = None;
    let err = client
        .send_heartbeat(&heartbeat(vec![half]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422), "{err}");
    assert!(
        err.to_string().contains("sessions[0].notice_sha256"),
        "{err}"
    );
    assert_eq!(collector.store().disclosures().unwrap().len(), 2);
    // Sessions are an agent's to report: a resolver naming one records nothing.
    let (_, resolver) = collector.enrol(DeviceKind::Resolver).await;
    resolver
        .send_heartbeat(&heartbeat(vec![session("dee", None)]))
        .await
        .unwrap();
    assert_eq!(collector.store().disclosures().unwrap().len(), 2);

    // The CLI: bo (never shown) first, then alex with the newest showing and its text's hash.
    let listed = notices_cli(&collector);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["user"], "bo");
    assert_eq!(listed[0]["never_shown"], true);
    assert!(listed[0]["last_shown"].is_null());
    assert_eq!(listed[1]["user"], "alex");
    assert_eq!(listed[1]["never_shown"], false);
    assert_eq!(listed[1]["last_shown"], relogon.to_string());
    assert_eq!(listed[1]["notice_sha256"], new_text.as_str());
    assert_eq!(
        listed[1]["devices"][0]["device"],
        identity.device_id.as_str()
    );
    assert_eq!(listed[1]["devices"][0]["hostname"], "ws-notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_forgets_users_long_unseen() {
    let collector = Collector::start_with(|c| {
        c.retention.alerts = std::time::Duration::from_secs(86_400);
    })
    .await;
    let (_, client) = collector.enrol(DeviceKind::Agent).await;
    client
        .send_heartbeat(&heartbeat(vec![session(
            "leaver",
            Some((Timestamp::now(), &"c3".repeat(32))),
        )]))
        .await
        .unwrap();
    let app = ward_collector::app::App::start(collector.config.clone(), Default::default())
        .unwrap()
        .app;
    let now = Timestamp::now();
    let kept = ward_collector::jobs::retention_pass(&app, now).unwrap();
    assert_eq!(kept.disclosures, 0);
    assert_eq!(collector.store().disclosures().unwrap().len(), 1);
    let later = now + SignedDuration::from_hours(48);
    let purged = ward_collector::jobs::retention_pass(&app, later).unwrap();
    assert_eq!(purged.disclosures, 1);
    assert!(collector.store().disclosures().unwrap().is_empty());
}
