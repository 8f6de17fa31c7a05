//! kill -9 in the middle of ingest: every alert the collector acknowledged is there after a restart.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ward_collector::store::AlertQuery;
use ward_collector_client::{Client, Enrolment};
use ward_protocol::DeviceKind;

use crate::harness::{alert, batch, database_toml, test_database};

pub const BIN: &str = env!("CARGO_BIN_EXE_ward-collector");

/// A spawned collector, killed when dropped (also when a test fails half-way).
pub struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary on port 0; returns the child and its `https://` URL read from its JSON log.
pub fn spawn_collector(config: &Path) -> (Running, String) {
    let mut child = Running(
        Command::new(BIN)
            .args(["--log-format", "json", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["message"] == "ward-collector listening" {
                        let _ = tx.send(v["listen"].as_str().unwrap_or_default().to_string());
                        sent = true;
                    }
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the collector never logged its address");
    (child, format!("https://{addr}"))
}

pub fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("collector.toml");
    let text = format!(
        "data_dir = \"data\"\n[limits]\ndevice_requests_per_second = 10000.0\ndevice_request_burst = 10000.0\n{}",
        database_toml(&test_database())
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub fn token(config: &Path) -> String {
    let out = Command::new(BIN)
        .args(["token", "create", "--uses", "5", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_no_acknowledged_alert() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut child, url) = spawn_collector(&config);
    let ca_pem = std::fs::read_to_string(dir.path().join("data/ca.pem")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let identity = Enrolment {
        collector: url.clone(),
        token: token(&config),
        ca_pem,
        hostname: "ws-crash".into(),
        os: "linux".into(),
        kind: DeviceKind::Agent,
        program_version: "0.1.0".into(),
    }
    .enrol(state.path())
    .await
    .unwrap();
    let client = Client::new(&url, &identity).unwrap();

    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut senders = Vec::new();
    for _ in 0..3 {
        let (client, acked, device) = (client.clone(), acked.clone(), identity.device_id.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let b = batch((0..50).map(|_| alert(&device)).collect());
                match client.send_alerts(&b).await {
                    Ok(receipt) => acked.lock().unwrap().extend(receipt.stored),
                    Err(e) => {
                        assert!(e.is_retryable(), "{e}");
                        return;
                    }
                }
            }
        }));
    }
    // Let ingest run, then kill the process without warning.
    let started = std::time::Instant::now();
    while acked.lock().unwrap().len() < 2_000 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for s in senders {
        tokio::time::timeout(Duration::from_secs(60), s)
            .await
            .unwrap()
            .unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 2_000, "only {} acknowledged", acked.len());

    // Restart on the same data and check every acknowledged id is there.
    let (mut child, _url) = spawn_collector(&config);
    let store =
        ward_collector::app::open_store(&ward_collector::config::Config::load(&config).unwrap())
            .unwrap();
    let stored: HashSet<uuid::Uuid> = store
        .alerts(&AlertQuery::default())
        .unwrap()
        .iter()
        .map(|a| a.id.parse().unwrap())
        .collect();
    let missing = acked.difference(&stored).count();
    assert_eq!(missing, 0, "{missing} acknowledged alerts lost");
    child.kill().unwrap();
    child.wait().unwrap();
}
