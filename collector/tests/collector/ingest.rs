//! Alert ingest: idempotent on the alert id, exact counts, screenshots stored by content address.

use std::collections::HashSet;

use base64::Engine;
use ward_collector::config::Database;
use ward_protocol::DeviceKind;

use crate::harness::{alert, batch, screenshot, Collector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_alerts_with_duplicates_store_exactly_once() {
    let collector = Collector::start().await;
    let (identity, client) = collector.enrol(DeviceKind::Agent).await;
    let device = identity.device_id.clone();
    let alerts: Vec<_> = (0..10_000).map(|_| alert(&device)).collect();
    let batches: Vec<_> = alerts.chunks(50).map(|c| batch(c.to_vec())).collect();

    // Four senders; every batch goes once, every fifth goes twice (an agent that lost the answer),
    // and some batches mix already-stored alerts with new ones.
    let mut tasks = Vec::new();
    for lane in 0..4 {
        let (client, batches) = (client.clone(), batches.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = HashSet::new();
            let mut duplicates = 0;
            for (i, b) in batches.iter().enumerate().filter(|(i, _)| i % 4 == lane) {
                let receipt = client.send_alerts(b).await.unwrap();
                assert_eq!(receipt.stored.len(), b.alerts.len());
                acked.extend(receipt.stored);
                if i % 5 == 0 {
                    let again = client.send_alerts(b).await.unwrap();
                    assert_eq!(again.duplicates as usize, b.alerts.len());
                    duplicates += again.duplicates;
                }
            }
            (acked, duplicates)
        }));
    }
    let mut acked = HashSet::new();
    for task in tasks {
        let (ids, _) = task.await.unwrap();
        acked.extend(ids);
    }
    let mixed = batch(
        alerts[..25]
            .iter()
            .cloned()
            .chain((0..25).map(|_| alert(&device)))
            .collect(),
    );
    let receipt = client.send_alerts(&mixed).await.unwrap();
    assert_eq!(receipt.duplicates, 25);
    assert_eq!(acked.len(), 10_000);
    assert_eq!(collector.count(), 10_025);
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_are_stored_once_by_content() {
    let collector = Collector::start().await;
    let (identity, client) = collector.enrol(DeviceKind::Agent).await;
    let shot = screenshot(100 * 1024);
    let mut a = alert(&identity.device_id);
    a.screenshot = Some(shot.clone());
    let mut b = alert(&identity.device_id);
    b.screenshot = Some(shot.clone());
    client
        .send_alerts(&batch(vec![a.clone(), b]))
        .await
        .unwrap();
    let stored = collector.store().alerts(&Default::default()).unwrap();
    assert_eq!(stored.len(), 2);
    let sha = stored[0].screenshot.as_ref().unwrap().sha256.clone();
    assert_eq!(stored[1].screenshot.as_ref().unwrap().sha256, sha);
    let screenshots = collector.screenshots();
    assert_eq!(
        screenshots.addresses().unwrap(),
        vec![sha.clone()],
        "one image for two alerts with the same image"
    );
    let bytes = screenshots.read(&sha, "png").unwrap().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(&bytes),
        shot.data_base64
    );
    let Database::Sqlite = collector.config.database else {
        return; // On PostgreSQL the bytes are in the database, for every collector of the trust.
    };
    let path = collector
        .data_dir()
        .join("screenshots")
        .join(&sha[..2])
        .join(format!("{sha}.png"));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    // SQLite holds the address, not the image: a random stretch of it is in no database file.
    let needle = &bytes[50_000..50_064];
    for name in ["ward.db", "ward.db-wal"] {
        if let Ok(db) = std::fs::read(collector.data_dir().join(name)) {
            assert!(
                !db.windows(needle.len()).any(|w| w == needle),
                "{name} holds image bytes"
            );
        }
    }
}
