//! The resolver's stream: policy and leases on connection, lease changes within a second.

use std::time::Duration;

use ward_collector_client::SubscribeOptions;
use ward_protocol::{DeviceKind, IdentityLease, StreamEvent, PROTOCOL_VERSION};

use crate::harness::Collector;

pub(crate) fn lease(user: &str, ip: &str) -> IdentityLease {
    IdentityLease {
        version: PROTOCOL_VERSION,
        addresses: vec![ip.parse().unwrap()],
        user: user.into(),
        group: "pupil".into(),
        expires: jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolvers_get_the_policy_and_leases_promptly() {
    let policy_dir = tempfile::tempdir().unwrap();
    let policy_path = policy_dir.path().join("policy.toml");
    std::fs::write(&policy_path, "[tiers.pupil]\nblock = [\"gambling\"]\n").unwrap();
    let path = policy_path.clone();
    let collector = Collector::start_with(move |c| c.policy = Some(path)).await;
    let (_, agent) = collector.enrol(DeviceKind::Agent).await;
    let (_, resolver) = collector.enrol(DeviceKind::Resolver).await;

    agent
        .send_lease(&lease("staff.smith", "10.0.0.9"))
        .await
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut events = resolver.subscribe(SubscribeOptions::default(), shutdown.clone());
    match next(&mut events).await {
        StreamEvent::Policy(p) => {
            assert_eq!(p.revision, 1);
            assert!(p.policy_toml.contains("gambling"));
        }
        other => panic!("expected the policy first, got {other:?}"),
    }
    match next(&mut events).await {
        StreamEvent::Leases { leases, .. } => {
            assert_eq!(leases.len(), 1);
            assert_eq!(leases[0].user, "staff.smith");
        }
        other => panic!("expected leases, got {other:?}"),
    }

    let sent = std::time::Instant::now();
    agent
        .send_lease(&lease("pupil.jones", "10.0.0.5"))
        .await
        .unwrap();
    match next(&mut events).await {
        StreamEvent::Leases { leases, .. } => {
            let users: Vec<_> = leases.iter().map(|l| l.user.as_str()).collect();
            assert_eq!(users.len(), 2, "{users:?}");
            assert!(users.contains(&"pupil.jones"));
            assert!(leases.iter().any(|l| l.group == "pupil"
                && l.addresses == vec!["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]));
        }
        other => panic!("expected leases, got {other:?}"),
    }
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(resolver.policy().await.unwrap().unwrap().revision, 1);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_survives_a_collector_restart() {
    let collector = Collector::start().await;
    let (_, resolver) = collector.enrol(DeviceKind::Resolver).await;
    let (_, agent) = collector.enrol(DeviceKind::Agent).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let options = SubscribeOptions {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        idle_timeout: Duration::from_secs(30),
    };
    let mut events = resolver.subscribe(options, shutdown.clone());
    let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, StreamEvent::Leases { ref leases, .. } if leases.is_empty()));

    // Same data dir and port, a new server: the subscriber reconnects by itself.
    let addr: std::net::SocketAddr = collector
        .url
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let config = collector.config.clone();
    let data_dir = collector.stop_keep_dir().await;
    let listener = crate::harness::wait_for(Duration::from_secs(30), || async {
        tokio::net::TcpListener::bind(addr).await.ok()
    })
    .await
    .expect("the port did not come free");
    let restart = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(ward_collector::run(config, listener, restart.clone()));
    let _ = agent.send_lease(&lease("pupil.jones", "10.0.0.5")).await;
    let got = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(StreamEvent::Leases { leases, .. }) = events.recv().await {
                if leases.iter().any(|l| l.user == "pupil.jones") {
                    return;
                }
            }
            // Lease may have been refused while the collector was down: send again.
            let _ = agent.send_lease(&lease("pupil.jones", "10.0.0.5")).await;
        }
    })
    .await;
    assert!(
        got.is_ok(),
        "resolver never saw the lease after the restart"
    );
    shutdown.cancel();
    restart.cancel();
    let _ = task.await;
    drop(data_dir);
}

pub(crate) async fn next(events: &mut tokio::sync::mpsc::Receiver<StreamEvent>) -> StreamEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("no event")
        .expect("stream ended")
}
