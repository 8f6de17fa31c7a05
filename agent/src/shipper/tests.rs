//! The shipper against an in-memory collector on paused time: backoff, exactly-once delivery by
//! receipt, splitting refused batches, heartbeats that report drops. The real collector over real
//! TLS is exercised by the integration tests.

use std::collections::HashSet;
use std::sync::Mutex;

use super::*;
use crate::spool::fs::memory::MemFs;
use crate::spool::Limits;
use ward_protocol::{AlertSource, ApiError, Category};

/// A collector in memory: fails the first `down` requests, refuses listed ids as invalid.
#[derive(Default)]
struct Collector {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    down: u32,
    stored: Vec<Uuid>,
    attempts: Vec<Instant>,
    refuse: HashSet<Uuid>,
    heartbeats: Vec<Heartbeat>,
    leases: Vec<IdentityLease>,
    /// Every alert stored, as received.
    received: Vec<Alert>,
}

fn unreachable() -> ClientError {
    ClientError::Transport {
        url: "https://collector".into(),
        reason: "connection refused".into(),
    }
}

impl Transport for Collector {
    async fn send_alerts(&self, batch: &AlertBatch) -> Result<IngestReceipt, ClientError> {
        let mut s = self.state.lock().unwrap();
        s.attempts.push(Instant::now());
        if s.down > 0 {
            s.down -= 1;
            return Err(unreachable());
        }
        if let Some(bad) = batch.alerts.iter().find(|a| s.refuse.contains(&a.id)) {
            return Err(ClientError::Refused {
                status: 422,
                error: ApiError {
                    error: "invalid-field".into(),
                    reason: format!("alerts[{}].context: contains control characters", bad.id),
                },
                retry_after: None,
            });
        }
        let mut duplicates = 0;
        for a in &batch.alerts {
            assert_eq!(a.device, "dev-1", "the shipper sets the enrolled device id");
            if s.stored.contains(&a.id) {
                duplicates += 1;
            } else {
                s.stored.push(a.id);
                s.received.push(a.clone());
            }
        }
        Ok(IngestReceipt {
            stored: batch.alerts.iter().map(|a| a.id).collect(),
            duplicates,
        })
    }

    async fn send_heartbeat(&self, hb: &Heartbeat) -> Result<(), ClientError> {
        let mut s = self.state.lock().unwrap();
        if s.down > 0 {
            return Err(unreachable());
        }
        s.heartbeats.push(hb.clone());
        Ok(())
    }

    async fn send_lease(&self, lease: &IdentityLease) -> Result<(), ClientError> {
        self.state.lock().unwrap().leases.push(lease.clone());
        Ok(())
    }
}

fn alert(severity: u8) -> Alert {
    Alert {
        id: Uuid::now_v7(),
        device: "host-before-enrolment".into(),
        user: None,
        time: jiff::Timestamp::now(),
        source: AlertSource::Keyboard,
        category: Category::Bullying,
        severity,
        phrase: "nobody likes you".into(),
        context: String::new(),
        language: None,
        application: None,
        window_title: None,
        wordlist_version: None,
        client_ip: None,
        screenshot: None,
        no_screenshot_reason: None,
    }
}

fn settings() -> ShipperSettings {
    ShipperSettings {
        device: "dev-1".into(),
        batch_alerts: 10,
        batch_bytes: 1 << 20,
        poll: Duration::from_secs(2),
        heartbeat: Duration::from_secs(60),
        retry_max: Duration::from_secs(300),
        user: Some("pupil1".into()),
        state_dir: None,
        group: "pupil".into(),
        lease: Duration::from_secs(900),
        hostname: "ws-1".into(),
        os: "linux".into(),
        collector: "https://127.0.0.1:8443".into(),
    }
}

struct Rig {
    collector: Arc<Collector>,
    spool: Arc<Spool<MemFs>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(collector: Collector, spool: Arc<Spool<MemFs>>) -> Rig {
    let collector = Arc::new(collector);
    let shutdown = CancellationToken::new();
    let shipper = Shipper::new(
        Arc::clone(&collector),
        Arc::clone(&spool),
        settings(),
        Arc::new(Notify::new()),
        Arc::new(Live::default()),
        None,
    );
    let task = tokio::spawn(shipper.run(shutdown.clone()));
    Rig {
        collector,
        spool,
        shutdown,
        task,
    }
}

impl Rig {
    async fn until(&self, what: &str, mut done: impl FnMut(&State) -> bool) {
        for _ in 0..100_000 {
            if done(&self.collector.state.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never happened: {what}");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

fn spool_with(alerts: &[Alert]) -> Arc<Spool<MemFs>> {
    let spool = Arc::new(Spool::new(MemFs::default(), Limits::default()));
    for a in alerts {
        spool.push(a).unwrap();
    }
    spool
}

#[tokio::test(start_paused = true)]
async fn a_collector_down_for_hours_gets_every_alert_exactly_once_with_growing_waits() {
    let alerts: Vec<_> = (0..25).map(|i| alert(1 + i % 5)).collect();
    let collector = Collector::default();
    collector.state.lock().unwrap().down = 12;
    let rig = start(collector, spool_with(&alerts));
    rig.until("all stored", |s| s.stored.len() == alerts.len())
        .await;
    let (stored, attempts) = {
        let state = rig.collector.state.lock().unwrap();
        (state.stored.clone(), state.attempts.clone())
    };
    let unique: HashSet<_> = stored.iter().collect();
    assert_eq!(unique.len(), alerts.len());
    // Waits between failed attempts grow (50-100 % jitter of 1, 2, 4 ... s) up to the cap.
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(500) && gaps[0] <= Duration::from_secs(1));
    assert!(gaps[5] >= Duration::from_secs(16) && gaps[5] <= Duration::from_secs(32));
    assert!(gaps.iter().all(|g| *g <= Duration::from_secs(300)));
    assert!(
        gaps[10] >= Duration::from_secs(150),
        "capped at 300 s, jittered: {:?}",
        gaps[10]
    );
    assert_eq!(rig.spool.depth().unwrap(), 0);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_most_severe_alerts_go_first() {
    let alerts = [alert(1), alert(5), alert(3)];
    let rig = start(Collector::default(), spool_with(&alerts));
    rig.until("stored", |s| s.stored.len() == 3).await;
    let order = rig.collector.state.lock().unwrap().stored.clone();
    assert_eq!(order, [alerts[1].id, alerts[2].id, alerts[0].id]);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_alert_is_set_aside_and_the_rest_delivered() {
    let alerts = [alert(2), alert(2), alert(2)];
    let collector = Collector::default();
    collector.state.lock().unwrap().refuse.insert(alerts[1].id);
    let spool = spool_with(&alerts);
    let rig = start(collector, Arc::clone(&spool));
    // Two alerts, then the device alert saying one was lost.
    rig.until("three stored", |s| s.stored.len() == 3).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(spool.depth().unwrap(), 0);
    assert_eq!(spool.ledger().unwrap().dropped_total, 1);
    let stored = rig.collector.state.lock().unwrap().stored.clone();
    assert!(!stored.contains(&alerts[1].id));
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn heartbeats_report_drops_once_and_leases_name_the_user() {
    let spool = Arc::new(Spool::new(
        MemFs::default(),
        Limits {
            max_bytes: 1 << 20,
            max_records: 1,
        },
    ));
    spool.push(&alert(5)).unwrap();
    assert_eq!(
        spool.push(&alert(1)).unwrap(),
        crate::spool::Pushed::Dropped
    );
    let collector = Collector::default();
    let rig = start(collector, Arc::clone(&spool));
    rig.until("two heartbeats", |s| s.heartbeats.len() >= 2)
        .await;
    let (heartbeats, stored, leases) = {
        let state = rig.collector.state.lock().unwrap();
        (
            state.heartbeats.clone(),
            state.stored.clone(),
            state.leases.clone(),
        )
    };
    assert_eq!(heartbeats[0].spool_dropped, 1);
    assert_eq!(heartbeats[1].spool_dropped, 0);
    assert_eq!(heartbeats[1].hostname, "ws-1");
    // The drop also became a device alert, delivered like any other.
    assert_eq!(stored.len(), 2);
    let lease = &leases[0];
    assert_eq!(
        (lease.user.as_str(), lease.group.as_str()),
        ("pupil1", "pupil")
    );
    assert!(!lease.addresses.is_empty());
    rig.stop().await;
}

#[test]
fn backoff_doubles_with_jitter_and_resets() {
    let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    for step in [1u64, 2, 4, 8, 16, 32, 60, 60] {
        let d = b.next_delay();
        let step = Duration::from_secs(step);
        assert!(d >= step / 2 && d <= step, "{d:?} for {step:?}");
    }
    b.reset();
    assert!(b.next_delay() <= Duration::from_secs(1));
}

#[test]
fn heartbeat_sessions_carry_the_latest_notice_of_each_user() {
    use crate::sessions::SessionRecord;
    let now = jiff::Timestamp::now();
    let earlier = now - jiff::SignedDuration::from_hours(2);
    let record =
        |user: &str, display: &str, notice: Option<(jiff::Timestamp, &str)>| SessionRecord {
            user: user.into(),
            display: display.into(),
            updated: now,
            notice_shown: notice.map(|(t, _)| t),
            notice_sha256: notice.map(|(_, h)| h.to_string()),
            refresh_seconds: None,
        };
    let (old, new) = ("a".repeat(64), "b".repeat(64));
    let sessions = sessions_of(
        vec![
            record("pupil1", ":0", Some((earlier, &old))),
            record("pupil1", ":1", Some((now, &new))),
            record("pupil1", ":2", None),
            record("pupil2", ":3", None),
        ],
        now,
    );
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].user, "pupil1");
    assert_eq!(sessions[0].notice_shown, Some(now));
    assert_eq!(sessions[0].notice_sha256.as_deref(), Some(new.as_str()));
    assert_eq!(sessions[1].notice_shown, None);
    assert_eq!(sessions[1].notice_sha256, None);
}

#[tokio::test(start_paused = true)]
async fn a_notice_shown_while_the_collector_was_down_arrives_with_a_later_heartbeat() {
    let state = tempfile::tempdir().unwrap();
    let shown = jiff::Timestamp::now();
    let sha256 = crate::notice::fingerprint("You are monitored.");
    crate::sessions::write(
        state.path(),
        &crate::sessions::SessionRecord {
            user: "pupil1".into(),
            display: ":0".into(),
            updated: shown,
            notice_shown: Some(shown),
            notice_sha256: Some(sha256.clone()),
            refresh_seconds: None,
        },
    )
    .unwrap();
    let collector = Arc::new(Collector {
        state: Mutex::new(State {
            down: 1,
            ..State::default()
        }),
    });
    let shutdown = CancellationToken::new();
    let shipper = Shipper::new(
        Arc::clone(&collector),
        spool_with(&[]),
        ShipperSettings {
            state_dir: Some(state.path().to_path_buf()),
            ..settings()
        },
        Arc::new(Notify::new()),
        Arc::new(Live::default()),
        None,
    );
    let task = tokio::spawn(shipper.run(shutdown.clone()));
    // Down at logon: the first heartbeat fails and carries nothing away.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(collector.state.lock().unwrap().heartbeats.is_empty());
    collector.state.lock().unwrap().down = 0;
    for _ in 0..1000 {
        if !collector.state.lock().unwrap().heartbeats.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let heartbeat = collector.state.lock().unwrap().heartbeats[0].clone();
    assert_eq!(heartbeat.sessions.len(), 1);
    assert_eq!(heartbeat.sessions[0].notice_shown, Some(shown));
    assert_eq!(heartbeat.sessions[0].notice_sha256, Some(sha256));
    ward_protocol::Validate::validate(&heartbeat, jiff::Timestamp::now()).unwrap();
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn unreadable_records_are_reported_under_the_tamper_category() {
    let fs = MemFs::default();
    let spool = Arc::new(Spool::new(fs.clone(), Limits::default()));
    let (bad, good) = (alert(2), alert(4));
    spool.push(&bad).unwrap();
    spool.push(&good).unwrap();
    fs.corrupt(&format!("a{}-{}.rec", bad.severity, bad.id), 60);
    let rig = start(Collector::default(), spool);
    rig.until("the good alert and the lost-alerts report", |s| {
        s.stored.len() >= 2
    })
    .await;
    let received = rig.collector.state.lock().unwrap().received.clone();
    assert!(received.iter().any(|a| a.id == good.id));
    assert!(!received.iter().any(|a| a.id == bad.id));
    let report = received
        .iter()
        .find(|a| a.source == AlertSource::Device)
        .expect("a lost-alerts report");
    assert_eq!(report.category, Category::TAMPER);
    assert_eq!(report.severity, 3);
    assert_eq!(report.phrase, "alerts lost on this device");
    assert!(report.context.contains("unreadable"), "{}", report.context);
    rig.stop().await;
}
