//! Retention and silent devices, driven with chosen times.

use ward_collector::app::App;
use ward_collector::jobs;
use ward_collector::store::AlertQuery;
use ward_protocol::{Category, DeviceKind};

use crate::harness::{alert, batch, screenshot, Collector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_screenshots_for_real_and_old_alerts_by_category() {
    let collector = Collector::start_with(|c| {
        c.retention.screenshots = std::time::Duration::from_secs(86_400);
        c.retention
            .categories
            .insert(Category::Test, std::time::Duration::from_secs(2 * 86_400));
    })
    .await;
    let (identity, client) = collector.enrol(DeviceKind::Agent).await;
    let three_days_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72);
    let mut old = alert(&identity.device_id);
    old.time = three_days_ago;
    old.screenshot = Some(screenshot(4096));
    let mut old_test = alert(&identity.device_id);
    old_test.time = three_days_ago;
    old_test.category = Category::Test;
    let mut fresh = alert(&identity.device_id);
    fresh.screenshot = Some(screenshot(4096));
    client
        .send_alerts(&batch(vec![old.clone(), old_test, fresh.clone()]))
        .await
        .unwrap();
    assert_eq!(collector.screenshots().addresses().unwrap().len(), 2);

    let app = App::start(collector.config.clone(), Default::default())
        .unwrap()
        .app;
    let purged = jobs::retention_pass(&app, jiff::Timestamp::now()).unwrap();
    assert_eq!(purged.alerts, 1, "the old test alert");
    assert_eq!(purged.screenshots.len(), 1);
    assert_eq!(collector.screenshots().addresses().unwrap().len(), 1);

    let alerts = collector.store().alerts(&AlertQuery::default()).unwrap();
    assert_eq!(alerts.len(), 2);
    let old_stored = alerts.iter().find(|a| a.id == old.id.to_string()).unwrap();
    assert!(old_stored.screenshot.is_none());
    assert!(old_stored
        .no_screenshot_reason
        .as_deref()
        .unwrap()
        .contains("retention"));
    let fresh_stored = alerts
        .iter()
        .find(|a| a.id == fresh.id.to_string())
        .unwrap();
    assert!(fresh_stored.screenshot.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_agents_are_flagged_in_school_hours_with_a_device_alert() {
    let collector = Collector::start().await;
    let (identity, _client) = collector.enrol(DeviceKind::Agent).await;
    let (_resolver, _) = collector.enrol(DeviceKind::Resolver).await;
    let app = App::start(collector.config.clone(), Default::default())
        .unwrap()
        .app;
    // The next Tuesday after today, at 10:00 and 20:00 London time: long after the last sign of life.
    let now = jiff::Timestamp::now();
    let tz = jiff::tz::TimeZone::get("Europe/London").unwrap();
    let mut day = now.to_zoned(tz.clone()).date().tomorrow().unwrap();
    while day.weekday() != jiff::civil::Weekday::Tuesday {
        day = day.tomorrow().unwrap();
    }
    let school = day
        .at(10, 0, 0, 0)
        .to_zoned(tz.clone())
        .unwrap()
        .timestamp();
    let evening = day.at(20, 0, 0, 0).to_zoned(tz).unwrap().timestamp();
    assert!(jobs::silent_pass(&app, evening).unwrap().is_empty());
    assert_eq!(
        jobs::silent_pass(&app, school).unwrap(),
        vec![identity.device_id.clone()]
    );
    // Flagged once, not every minute.
    assert!(jobs::silent_pass(&app, school).unwrap().is_empty());
    let alerts = collector.store().alerts(&AlertQuery::default()).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].source, "device");
    assert_eq!(alerts[0].category, Category::TAMPER.as_str());
    assert_eq!(alerts[0].device, identity.device_id);
    let devices = collector.store().devices().unwrap();
    let flagged = devices.iter().find(|d| d.id == identity.device_id).unwrap();
    assert!(flagged.silent_since.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_monitoring_helper_raises_one_device_alert_per_stop() {
    use ward_protocol::{Heartbeat, SessionState, PROTOCOL_VERSION};
    let collector = Collector::start().await;
    let (identity, client) = collector.enrol(DeviceKind::Agent).await;
    let heartbeat = |alive: bool| Heartbeat {
        version: PROTOCOL_VERSION,
        time: jiff::Timestamp::now(),
        hostname: "ws-tamper".into(),
        os: "linux".into(),
        agent_version: "0.1.0".into(),
        wordlist_version: None,
        spool_depth: 0,
        spool_dropped: 0,
        sessions: vec![
            SessionState {
                user: "alex".into(),
                helper_alive: alive,
                notice_shown: None,
                notice_sha256: None,
            },
            SessionState {
                user: "bo".into(),
                helper_alive: true,
                notice_shown: None,
                notice_sha256: None,
            },
        ],
    };
    let device_alerts = || {
        collector
            .store()
            .alerts(&AlertQuery::default())
            .unwrap()
            .into_iter()
            .filter(|a| a.source == "device")
            .collect::<Vec<_>>()
    };
    client.send_heartbeat(&heartbeat(true)).await.unwrap();
    assert!(device_alerts().is_empty());
    // Killed: one alert naming the user, however many heartbeats say so.
    client.send_heartbeat(&heartbeat(false)).await.unwrap();
    client.send_heartbeat(&heartbeat(false)).await.unwrap();
    let alerts = device_alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.user.as_deref(), Some("alex"));
    assert_eq!(alert.device, identity.device_id);
    assert_eq!(alert.category, Category::TAMPER.as_str());
    assert_eq!(alert.phrase, "monitoring helper stopped");
    assert!(alert.context.contains("ws-tamper"), "{}", alert.context);
    assert!(alert.screenshot.is_none());
    // Back, then killed again: a second stop, a second alert.
    client.send_heartbeat(&heartbeat(true)).await.unwrap();
    client.send_heartbeat(&heartbeat(false)).await.unwrap();
    assert_eq!(device_alerts().len(), 2);
}
