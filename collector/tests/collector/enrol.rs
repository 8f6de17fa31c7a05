//! Enrolment: token in, certificate out, and the certificate then opens the API.

use ward_collector_client::{Client, ClientError, Identity};
use ward_protocol::{DeviceKind, Heartbeat, PROTOCOL_VERSION};

use crate::harness::Collector;

fn heartbeat() -> Heartbeat {
    Heartbeat {
        version: PROTOCOL_VERSION,
        time: jiff::Timestamp::now(),
        hostname: "ws-101".into(),
        os: "linux".into(),
        agent_version: "0.1.0".into(),
        wordlist_version: Some("2026.11.1".into()),
        spool_depth: 2,
        spool_dropped: 0,
        sessions: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_round_trip_then_heartbeat() {
    let collector = Collector::start().await;
    let state = tempfile::tempdir().unwrap();
    let token = collector.token(1);
    let identity = collector
        .enrolment(&token, DeviceKind::Agent)
        .enrol(state.path())
        .await
        .unwrap();
    assert!(Identity::exists(state.path()));
    let loaded = Identity::load(state.path()).unwrap();
    assert_eq!(loaded.device_id, identity.device_id);
    assert!(identity.device_id.starts_with("ws-101-"));
    assert_eq!(loaded.ca_pem, collector.ca_pem);

    let client = Client::new(&collector.url, &loaded).unwrap();
    client.send_heartbeat(&heartbeat()).await.unwrap();
    let devices = collector.store().devices().unwrap();
    assert_eq!(devices.len(), 1);
    let device = &devices[0];
    assert_eq!(device.id, identity.device_id);
    assert_eq!(device.kind, "agent");
    assert!(device.last_heartbeat.is_some());
    assert_eq!(device.last_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(device.wordlist_version.as_deref(), Some("2026.11.1"));

    // The one-use token is spent: a second device cannot use it, and nothing is written for it.
    let other = tempfile::tempdir().unwrap();
    let err = collector
        .enrolment(&token, DeviceKind::Agent)
        .enrol(other.path())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(err.code(), Some("invalid-token"));
    assert!(!err.is_retryable());
    assert!(!Identity::exists(other.path()));
    assert_eq!(collector.store().devices().unwrap().len(), 1);
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_and_wrong_ca_are_refused() {
    let collector = Collector::start().await;
    let state = tempfile::tempdir().unwrap();
    let err = collector
        .enrolment("no-such-token", DeviceKind::Agent)
        .enrol(state.path())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid-token"), "{err}");

    // Pinning another CA: the collector's certificate is not trusted, so nothing is sent.
    let other = Collector::start().await;
    let mut enrolment = collector.enrolment(&collector.token(1), DeviceKind::Agent);
    enrolment.ca_pem = other.ca_pem.clone();
    let err = enrolment.enrol(state.path()).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    assert!(!Identity::exists(state.path()));
    assert!(collector.store().devices().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_token_enrols_several_devices() {
    let collector = Collector::start().await;
    let token = collector.token(3);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let state = tempfile::tempdir().unwrap();
        let identity = collector
            .enrolment(&token, DeviceKind::Agent)
            .enrol(state.path())
            .await
            .unwrap();
        ids.push(identity.device_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let state = tempfile::tempdir().unwrap();
    let err = collector
        .enrolment(&token, DeviceKind::Agent)
        .enrol(state.path())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid-token"));
}
