//! Alert ingest benchmark: the real server in-process over real TLS, real clients, 50-alert batches.
//!
//! Prints, side by side in one run:
//! - the store alone (direct `insert_alerts` of 50-alert batches, no HTTP/TLS/JSON): the ceiling;
//! - sustained API ingest of text alerts (alerts/s);
//! - sustained API ingest with a 100 KB screenshot on every alert (alerts/s and MB/s of images);
//! - latency of one ingest call (p50/p99) at half the sustained text rate.
//!
//! Run: `bench/collector/run` (or `cargo bench -p ward-collector --bench ingest`);
//! `bench/collector/run --postgres` does the same on a throw-away PostgreSQL (pg_virtualenv).
//! `WARD_BENCH_SECS` sets each phase's length (default 8 s).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use ward_collector::config::{Config, Database};
use ward_collector::store::{AlertRecord, NewToken, Store};
use ward_collector_client::{Client, Enrolment};
use ward_protocol::{
    Alert, AlertBatch, AlertSource, Category, DeviceKind, Screenshot, PROTOCOL_VERSION,
};

const BATCH: usize = 50;
const SENDERS: usize = 8;

fn alert(device: &str, screenshot: Option<&Screenshot>) -> Alert {
    Alert {
        id: uuid::Uuid::new_v4(),
        device: device.into(),
        user: Some("pupil.jones".into()),
        time: jiff::Timestamp::now(),
        source: AlertSource::Keyboard,
        category: Category::SelfHarm,
        severity: 4,
        phrase: "cut myself".into(),
        context: "i keep wanting to cut myself when i get home from school and nobody knows".into(),
        language: Some("en".into()),
        application: Some("firefox".into()),
        window_title: Some("Messages - Mozilla Firefox".into()),
        wordlist_version: Some("2026.11.1".into()),
        client_ip: None,
        screenshot: screenshot.cloned(),
        no_screenshot_reason: None,
    }
}

fn screenshot_of(size: usize) -> Screenshot {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((png.len()..size).map(|_| rand::random::<u8>()));
    Screenshot {
        format: "png".into(),
        width: 1280,
        height: 720,
        data_base64: base64::engine::general_purpose::STANDARD.encode(png),
    }
}

fn record(i: u64) -> AlertRecord {
    AlertRecord {
        id: uuid::Uuid::new_v4().to_string(),
        device: "bench".into(),
        user: Some("pupil.jones".into()),
        time: jiff::Timestamp::now().as_microsecond() + i as i64,
        received: jiff::Timestamp::now().as_microsecond(),
        source: "keyboard".into(),
        category: "self-harm".into(),
        severity: 4,
        phrase: "cut myself".into(),
        context: "i keep wanting to cut myself when i get home from school and nobody knows".into(),
        language: Some("en".into()),
        application: Some("firefox".into()),
        window_title: Some("Messages - Mozilla Firefox".into()),
        wordlist_version: Some("2026.11.1".into()),
        client_ip: None,
        screenshot: None,
        no_screenshot_reason: None,
    }
}

/// SQLite, or PostgreSQL when run by `bench/collector/run --postgres` (PG* variables set).
fn database() -> Database {
    if std::env::var_os("WARD_BENCH_POSTGRES").is_none() {
        return Database::Sqlite;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    Database::Postgres(format!(
        "host={} port={} user={} password={} dbname={}",
        var("PGHOST"),
        var("PGPORT"),
        var("PGUSER"),
        var("PGPASSWORD"),
        var("PGDATABASE")
    ))
}

fn open(dir: &std::path::Path) -> std::sync::Arc<dyn Store> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        database: database(),
        ..Config::default()
    };
    ward_collector::app::open_store(&config).unwrap()
}

/// The store alone: 50-alert transactions as fast as one writer can commit them.
fn store_ceiling(secs: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < secs {
        let batch: Vec<_> = (0..BATCH as u64).map(|i| record(n + i)).collect();
        store.insert_alerts(&batch).unwrap();
        n += BATCH as u64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Bench {
    clients: Vec<(String, Client)>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn start() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        database: database(),
        ..Config::default()
    };
    config.limits.device_requests_per_second = 1e6;
    config.limits.device_request_burst = 1e6;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(ward_collector::run(config, listener, shutdown.clone()));
    let ca_path = dir.path().join("ca.pem");
    let ca_pem = loop {
        if let Ok(pem) = std::fs::read_to_string(&ca_path) {
            if let Ok(c) = Client::anonymous(&url, pem.as_bytes()) {
                if c.ping().await.is_ok() {
                    break pem;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let token = "bench-token".to_string();
    let now = jiff::Timestamp::now().as_microsecond();
    open(dir.path())
        .add_token(&NewToken {
            sha256: ward_collector::api::token_hash(&token),
            uses: SENDERS as u32,
            expires: None,
            created: now,
        })
        .unwrap();
    let mut clients = Vec::new();
    for i in 0..SENDERS {
        let state = dir.path().join(format!("agent-{i}"));
        let identity = Enrolment {
            collector: url.clone(),
            token: token.clone(),
            ca_pem: ca_pem.clone(),
            hostname: format!("ws-{i}"),
            os: "linux".into(),
            kind: DeviceKind::Agent,
            program_version: "bench".into(),
        }
        .enrol(&state)
        .await
        .unwrap();
        let client = Client::new(&url, &identity).unwrap();
        clients.push((identity.device_id, client));
    }
    Bench {
        clients,
        shutdown,
        _dir: dir,
    }
}

/// Every sender sends batches back to back for `secs`; returns alerts/s.
async fn sustained(bench: &Bench, secs: Duration, shot: Option<Screenshot>) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (device, client) in bench.clients.clone() {
        let (done, shot) = (done.clone(), shot.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < secs {
                let batch = AlertBatch {
                    version: PROTOCOL_VERSION,
                    alerts: (0..BATCH).map(|_| alert(&device, shot.as_ref())).collect(),
                };
                client.send_alerts(&batch).await.unwrap();
                done.fetch_add(BATCH as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Paced batches at `rate` alerts/s from all senders together; returns (p50, p99, achieved rate).
async fn paced(bench: &Bench, secs: Duration, rate: f64) -> (Duration, Duration, f64) {
    let per_sender = rate / BATCH as f64 / bench.clients.len() as f64;
    let gap = Duration::from_secs_f64(1.0 / per_sender);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (device, client) in bench.clients.clone() {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut tick = tokio::time::interval(gap);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while start.elapsed() < secs {
                tick.tick().await;
                let batch = AlertBatch {
                    version: PROTOCOL_VERSION,
                    alerts: (0..BATCH).map(|_| alert(&device, None)).collect(),
                };
                let t = Instant::now();
                client.send_alerts(&batch).await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let achieved = (all.len() * BATCH) as f64 / start.elapsed().as_secs_f64();
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (pick(0.50), pick(0.99), achieved)
}

fn main() {
    let secs = Duration::from_secs(
        std::env::var("WARD_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend = match database() {
        Database::Sqlite => "SQLite (WAL, synchronous=FULL)",
        Database::Postgres(_) => "PostgreSQL 15 (synchronous_commit=on)",
    };
    println!(
        "ward-collector ingest, {backend}, {BATCH}-alert batches, {SENDERS} senders, {} s per phase",
        secs.as_secs()
    );
    let ceiling = store_ceiling(secs);
    println!(
        "{:<52} {:>10.0} alerts/s",
        "store alone (no TLS/HTTP/JSON), one writer", ceiling
    );
    runtime.block_on(async {
        let bench = start().await;
        let text = sustained(&bench, secs, None).await;
        println!(
            "{:<52} {:>10.0} alerts/s  (target 5000)",
            "API over mutual TLS, text alerts", text
        );
        let shot = screenshot_of(100 * 1024);
        let with = sustained(&bench, secs, Some(shot)).await;
        println!(
            "{:<52} {:>10.0} alerts/s  {:>6.1} MB/s of screenshots",
            "API over mutual TLS, 100 KB screenshot on every alert",
            with,
            with * 100.0 * 1024.0 / 1e6
        );
        let (p50, p99, achieved) = paced(&bench, secs, text / 2.0).await;
        println!(
            "{:<52} {:>10.0} alerts/s  p50 {:.1} ms  p99 {:.1} ms per call",
            "API at half the sustained text rate",
            achieved,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        bench.shutdown.cancel();
    });
}
