//! Spool tests: durability rules by scenario, then a model-based property test of push, batch,
//! acknowledge and restart against a plain list of what should be held.

use super::fs::memory::MemFs;
use super::*;
use proptest::prelude::*;
use ward_protocol::AlertSource;

fn alert(severity: u8, context: usize) -> Alert {
    Alert {
        id: Uuid::now_v7(),
        device: "ws-1".into(),
        user: Some("pupil1".into()),
        time: jiff::Timestamp::now(),
        source: AlertSource::Keyboard,
        category: Category::SelfHarm,
        severity,
        phrase: "self harm".into(),
        context: "x".repeat(context),
        language: Some("en".into()),
        application: None,
        window_title: None,
        wordlist_version: None,
        client_ip: None,
        screenshot: None,
        no_screenshot_reason: None,
    }
}

fn spool(fs: &MemFs, max_bytes: u64) -> Spool<MemFs> {
    Spool::new(
        fs.clone(),
        Limits {
            max_bytes,
            max_records: 1000,
        },
    )
}

fn record_size(a: &Alert) -> u64 {
    record::encode(a).len() as u64
}

#[test]
fn records_survive_a_restart_until_acknowledged() {
    let fs = MemFs::default();
    let a = alert(3, 10);
    let b = alert(5, 10);
    spool(&fs, 1 << 20).push(&a).unwrap();
    spool(&fs, 1 << 20).push(&b).unwrap();
    let reopened = spool(&fs, 1 << 20);
    let batch = reopened.batch(10, 1 << 20).unwrap();
    assert_eq!(batch, vec![b.clone(), a.clone()], "most severe first");
    reopened.ack(&[b.id]).unwrap();
    assert_eq!(spool(&fs, 1 << 20).batch(10, 1 << 20).unwrap(), vec![a]);
}

#[test]
fn a_full_spool_evicts_the_least_severe_and_records_it() {
    let fs = MemFs::default();
    let low = alert(1, 100);
    // Room for two records, not three (timestamps vary a few bytes in length, hence the slack).
    let limit = record_size(&low) * 2 + 20;
    let s = spool(&fs, limit);
    s.push(&low).unwrap();
    s.push(&alert(2, 100)).unwrap();
    let high = alert(5, 100);
    assert_eq!(
        s.push(&high).unwrap(),
        Pushed::Stored {
            evicted: vec![low.id]
        }
    );
    let ledger = s.ledger().unwrap();
    assert_eq!(ledger.dropped_total, 1);
    assert_eq!(ledger.unreported.get("self-harm/1"), Some(&1));
    let report = s.take_drop_report().unwrap().unwrap();
    assert_eq!((report.count, report.max_severity), (1, 1));
    assert_eq!(report.category, Some(Category::SelfHarm));
    assert!(s.take_drop_report().unwrap().is_none(), "reported once");
}

#[test]
fn an_alert_less_severe_than_everything_held_is_the_one_dropped() {
    let fs = MemFs::default();
    let high = alert(4, 100);
    let s = spool(&fs, record_size(&high) + 20);
    s.push(&high).unwrap();
    assert_eq!(s.push(&alert(2, 100)).unwrap(), Pushed::Dropped);
    assert_eq!(s.batch(10, 1 << 20).unwrap(), vec![high]);
    assert_eq!(s.ledger().unwrap().since_heartbeat, 1);
}

#[test]
fn a_full_disk_evicts_like_a_full_spool() {
    let low = alert(1, 100);
    // Room for two records and the ledger, but the configured bound is far larger.
    let fs = MemFs::with_capacity(Some(record_size(&low) * 2 + 200));
    let s = spool(&fs, 1 << 30);
    s.push(&low).unwrap();
    s.push(&alert(1, 100)).unwrap();
    let high = alert(5, 100);
    assert!(
        matches!(s.push(&high).unwrap(), Pushed::Stored { evicted } if evicted == vec![low.id])
    );
    assert!(s.batch(10, 1 << 20).unwrap().contains(&high));
    assert!(s.ledger().unwrap().dropped_total >= 1);
}

#[test]
fn a_corrupt_record_is_skipped_removed_and_counted() {
    let fs = MemFs::default();
    let s = spool(&fs, 1 << 20);
    let bad = alert(3, 50);
    let good = alert(2, 50);
    s.push(&bad).unwrap();
    s.push(&good).unwrap();
    fs.corrupt(&record_name(&bad), 60);
    assert_eq!(s.batch(10, 1 << 20).unwrap(), vec![good]);
    assert_eq!(s.depth().unwrap(), 1);
    let ledger = s.ledger().unwrap();
    assert_eq!((ledger.corrupt_total, ledger.dropped_total), (1, 1));
    assert_eq!(ledger.unreported.get("unreadable/3"), Some(&1));
}

#[test]
fn a_torn_record_is_detected() {
    let a = alert(3, 50);
    let bytes = record::encode(&a);
    assert_eq!(record::decode(&bytes).unwrap(), a);
    assert_eq!(
        record::decode(&bytes[..bytes.len() - 1]),
        Err(record::RecordError::Truncated)
    );
    assert_eq!(
        record::decode(&bytes[..10]),
        Err(record::RecordError::Truncated)
    );
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(record::decode(&flipped), Err(record::RecordError::Checksum));
}

#[test]
fn batches_respect_their_limits() {
    let fs = MemFs::default();
    let s = spool(&fs, 1 << 20);
    for _ in 0..5 {
        s.push(&alert(3, 1000)).unwrap();
    }
    assert_eq!(s.batch(3, 1 << 20).unwrap().len(), 3);
    let one = record_size(&alert(3, 1000));
    // Timestamps vary in length by a few bytes, hence the slack.
    assert_eq!(s.batch(10, one * 2 + 100).unwrap().len(), 2);
    // One oversized record still goes out alone rather than blocking the spool forever.
    assert_eq!(s.batch(10, 1).unwrap().len(), 1);
}

#[test]
fn the_disk_spool_writes_atomically_and_cleans_up_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".tmp-99-a3-x.rec"), b"half").unwrap();
    let s = Spool::new(DiskFs::open(dir.path()).unwrap(), Limits::default());
    assert!(!dir.path().join(".tmp-99-a3-x.rec").exists());
    let a = alert(4, 10);
    s.push(&a).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![record_name(&a)]);
    s.ack(&[a.id]).unwrap();
    assert_eq!(s.depth().unwrap(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Push { severity: u8, context: usize },
    ShipAndAck { max: usize, acked: usize },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..=5, 0usize..400).prop_map(|(severity, context)| Op::Push { severity, context }),
        2 => (1usize..6, 0usize..6).prop_map(|(max, acked)| Op::ShipAndAck { max, acked }),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The spool holds exactly what the model says: pushes, evictions by (severity, age), batches in
    /// (severity desc, age) order, acknowledgements, and restarts that lose nothing.
    #[test]
    fn spool_matches_its_model(ops in proptest::collection::vec(op(), 1..60)) {
        let fs = MemFs::default();
        let max_bytes = 3000;
        let mut s = spool(&fs, max_bytes);
        // The model: what should be held, as (severity, id, size).
        let mut model: Vec<(u8, Uuid, u64)> = Vec::new();
        let mut dropped = 0u64;
        for op in ops {
            match op {
                Op::Push { severity, context } => {
                    let a = alert(severity, context);
                    let size = record_size(&a);
                    let mut expected_evicted = Vec::new();
                    let mut expected_dropped = false;
                    let mut next = model.clone();
                    while next.iter().map(|m| m.2).sum::<u64>() + size > max_bytes {
                        let victim = next.iter().enumerate()
                            .min_by(|a, b| a.1.0.cmp(&b.1.0).then(a.1.1.cmp(&b.1.1)))
                            .map(|(i, m)| (i, *m));
                        match victim {
                            Some((i, m)) if m.0 <= severity => {
                                next.remove(i);
                                expected_evicted.push(m.1);
                            }
                            _ => { expected_dropped = true; break; }
                        }
                    }
                    let outcome = s.push(&a).unwrap();
                    if expected_dropped {
                        prop_assert_eq!(outcome, Pushed::Dropped);
                        // Evictions made before finding the new one is least severe still happened.
                        for id in &expected_evicted {
                            model.retain(|m| m.1 != *id);
                        }
                        dropped += 1 + expected_evicted.len() as u64;
                    } else {
                        prop_assert_eq!(outcome, Pushed::Stored { evicted: expected_evicted.clone() });
                        dropped += expected_evicted.len() as u64;
                        model = next;
                        model.push((severity, a.id, size));
                    }
                }
                Op::ShipAndAck { max, acked } => {
                    let batch = s.batch(max, u64::MAX).unwrap();
                    let mut expected = model.clone();
                    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                    expected.truncate(max);
                    let got: Vec<Uuid> = batch.iter().map(|a| a.id).collect();
                    let want: Vec<Uuid> = expected.iter().map(|m| m.1).collect();
                    prop_assert_eq!(&got, &want);
                    let acked: Vec<Uuid> = got.into_iter().take(acked).collect();
                    s.ack(&acked).unwrap();
                    model.retain(|m| !acked.contains(&m.1));
                }
                Op::Restart => s = spool(&fs, max_bytes),
            }
            prop_assert_eq!(s.depth().unwrap(), model.len());
            prop_assert_eq!(s.ledger().unwrap().dropped_total, dropped);
            let held: u64 = model.iter().map(|m| m.2).sum();
            prop_assert!(held <= max_bytes);
        }
    }
}
