//! Tamper: a pupil who kills the session helper (`kill -9`) while the service keeps running shows up
//! at the collector as a session without a helper and one "monitoring helper stopped" alert, not as a
//! healthy device; a helper that comes back clears it.

use serde_json::Value;

use crate::desktop::{wait_until, Desktop};
use crate::programs::{wait_for, Agent, Collector};

/// Heartbeats every second; the helper refreshes its record every 2 s, so it is stale after 6 s (a
/// margin for a loaded machine: a live helper must never look dead here).
const CONFIG: &str = "[identity]\nuser = \"pupil.tamper\"\n\
    [monitor]\nnotice_seconds = 1\nsession_refresh_seconds = 2\n\
    [shipper]\nheartbeat_seconds = 1\n";

fn helper_stopped(a: &Value) -> bool {
    a["source"] == "device" && a["phrase"] == "monitoring helper stopped"
}

/// The collector's `sessions_without_helper` for the one device.
fn without_helper(collector: &Collector) -> Option<String> {
    collector.devices()[0]["sessions_without_helper"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn killing_the_session_helper_shows_an_unmonitored_session_and_one_alert() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    let mut agent = Agent::new(&tmp.path().join("agent"), &collector.url(), CONFIG);
    agent.enrol(&collector);
    let desktop = Desktop::start();
    agent.run(None);
    let mut helper = agent.session_helper(&desktop.display);
    let helper_log = agent.dir.join("helper.log");
    wait_until("the helper monitors the session", || {
        std::fs::read_to_string(&helper_log)
            .unwrap_or_default()
            .contains("monitoring notice shown")
    });
    // A heartbeat after the helper's first record: the collector knows a live session.
    let records = agent.dir.join("state/sessions");
    wait_for("the live session at the collector", 30, || {
        let written = std::fs::read_dir(&records)
            .ok()?
            .next()?
            .ok()?
            .metadata()
            .ok()?;
        let written = jiff::Timestamp::try_from(written.modified().ok()?).ok()?;
        let device = collector.devices().into_iter().next()?;
        let heard: jiff::Timestamp = device["last_heartbeat"].as_str()?.parse().ok()?;
        (heard > written).then_some(())
    });
    assert_eq!(without_helper(&collector), None);
    assert!(!collector.alerts().iter().any(helper_stopped));

    // The pupil kills the helper; the service carries on.
    helper.0.kill().unwrap();
    helper.0.wait().unwrap();
    let alert = collector.wait_alert("the helper-stopped alert", helper_stopped);
    assert_eq!(alert["user"], "pupil.tamper", "{alert}");
    assert_eq!(alert["category"], "hacking", "{alert}");
    assert!(
        alert["context"].as_str().unwrap().contains("pupil.tamper"),
        "{alert}"
    );
    assert_eq!(without_helper(&collector).as_deref(), Some("pupil.tamper"));
    assert!(agent.running(), "the service keeps running");
    // Later heartbeats still report the dead helper, but raise no second alert.
    for _ in 0..2 {
        let before = collector.devices()[0]["last_heartbeat"].clone();
        wait_for("a later heartbeat", 30, || {
            (collector.devices()[0]["last_heartbeat"] != before).then_some(())
        });
    }
    assert_eq!(
        collector
            .alerts()
            .iter()
            .filter(|a| helper_stopped(a))
            .count(),
        1
    );
    assert_eq!(without_helper(&collector).as_deref(), Some("pupil.tamper"));

    // The helper comes back (the next logon, or systemd restarting it): the session is monitored again.
    let _helper = agent.session_helper(&desktop.display);
    wait_for("the session monitored again", 30, || {
        without_helper(&collector).is_none().then_some(())
    });
}
