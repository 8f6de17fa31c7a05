//! The administrative command line against the real binary.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use ward_collector_client::Client;
use ward_protocol::DeviceKind;

use crate::crash::{spawn_collector, token, write_config, BIN};
use crate::harness::{alert, batch, screenshot};

fn run(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn first_start_prints_the_admin_password_once_and_keeps_it_private() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .env_remove("JOURNAL_STREAM")
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = dir.path().join("ward-data/initial-admin-password");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(file.exists() && dir.path().join("ward-data/ca.pem").exists()) {
        assert!(std::time::Instant::now() < deadline, "no first-start files");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SIGTERM: a clean stop, so stdout is flushed and closed.
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let password = std::fs::read_to_string(&file).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let line = format!("initial admin password: {}", password.trim());
    assert_eq!(stdout.lines().filter(|l| *l == line).count(), 1, "{stdout}");
    assert!(dir.path().join("ward-data/ward.db").exists());
}

#[test]
fn tokens_users_and_listing_commands() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let token = token(&config);
    assert_eq!(token.lines().count(), 1);
    assert!(token.len() >= 32);
    let password = run(
        &config,
        &[
            "user",
            "add",
            "--role",
            "dsl,reviewer",
            "--groups",
            "y7,y8",
            "mrs.head",
        ],
    );
    assert_eq!(password.trim().len(), 20);
    let out = Command::new(BIN)
        .args(["user", "add", "--role", "wizard", "x", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wizard"));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut child, url) = spawn_collector(&config);
    let ca_pem = std::fs::read_to_string(dir.path().join("data/ca.pem")).unwrap();
    let device = runtime.block_on(async {
        let state = tempfile::tempdir().unwrap();
        let identity = ward_collector_client::Enrolment {
            collector: url.clone(),
            token,
            ca_pem,
            hostname: "ws-cli".into(),
            os: "linux".into(),
            kind: DeviceKind::Agent,
            program_version: "0.1.0".into(),
        }
        .enrol(state.path())
        .await
        .unwrap();
        let client = Client::new(&url, &identity).unwrap();
        let mut with_shot = alert(&identity.device_id);
        with_shot.screenshot = Some(screenshot(2048));
        client
            .send_alerts(&batch(vec![with_shot, alert(&identity.device_id)]))
            .await
            .unwrap();
        identity.device_id
    });

    let alerts = run(&config, &["alerts", "--json"]);
    let alerts: Vec<serde_json::Value> = alerts
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 2);
    for a in &alerts {
        for field in [
            "id",
            "device",
            "user",
            "time",
            "source",
            "category",
            "severity",
            "phrase",
            "screenshot",
        ] {
            assert!(a.get(field).is_some(), "{field} missing in {a}");
        }
        assert_eq!(a["device"], device.as_str());
        assert_eq!(a["source"], "keyboard");
    }
    assert_eq!(alerts.iter().filter(|a| a["screenshot"] == true).count(), 1);
    let none = run(
        &config,
        &["alerts", "--json", "--since", "2100-01-01T00:00:00Z"],
    );
    assert!(none.is_empty());

    let devices = run(&config, &["devices", "--json"]);
    let d: serde_json::Value = serde_json::from_str(devices.lines().next().unwrap()).unwrap();
    assert_eq!(d["id"], device.as_str());
    assert_eq!(d["hostname"], "ws-cli");
    assert!(d.get("last_heartbeat").is_some());

    assert!(run(&config, &["device", "revoke", &device]).contains(&device));
    let devices = run(&config, &["devices", "--json"]);
    let d: serde_json::Value = serde_json::from_str(devices.lines().next().unwrap()).unwrap();
    assert!(d["revoked"].is_string());
    child.kill().unwrap();
    child.wait().unwrap();
}
