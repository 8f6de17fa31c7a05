//! Enrolment as a service meets it: `run` on a device not yet enrolled waits instead of exiting (a
//! service manager would restart it in a loop), and starts as soon as `enrol` lands; the collector's
//! CA can be pinned by its SHA-256 fingerprint instead of a copied PEM file.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::programs::{wait_for, Agent, Collector};

const CONFIG: &str = "[shipper]\nheartbeat_seconds = 1\n";

/// The CA's fingerprint as `openssl x509 -noout -fingerprint -sha256` prints it.
fn fingerprint(collector: &Collector) -> String {
    let pem = std::fs::read(collector.ca()).unwrap();
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    let hex: Vec<String> = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("SHA256 Fingerprint={}", hex.join(":"))
}

fn status(agent: &Agent) -> Value {
    let out = agent.command(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_unenrolled_service_waits_says_what_to_run_and_starts_once_enrolled() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    // Installed with the example's collector address; the technician sets the real one, then enrols.
    let mut agent = Agent::new(&tmp.path().join("agent"), "https://127.0.0.1:9", CONFIG);
    agent.spawn(None);
    wait_for("the not-enrolled message", 60, || {
        agent
            .log()
            .contains("not enrolled: run `ward-agent enrol")
            .then_some(())
    });
    // Several polls later it is still running, has said it once, and monitors nothing yet.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(agent.running(), "{}", agent.log());
    assert_eq!(
        agent.log().matches("not enrolled").count(),
        1,
        "{}",
        agent.log()
    );
    assert!(!agent.log().contains("ward-agent started"));
    let waiting = status(&agent);
    assert_eq!(waiting["enrolled"], false);
    assert!(
        waiting["enrolment"]
            .as_str()
            .is_some_and(|s| s.contains("ward-agent enrol --collector")),
        "{waiting}"
    );

    let text = std::fs::read_to_string(&agent.config).unwrap();
    std::fs::write(
        &agent.config,
        text.replace("https://127.0.0.1:9", &collector.url()),
    )
    .unwrap();
    let out = agent.command(&[
        "enrol",
        "--collector",
        &collector.url(),
        "--token",
        &collector.token(),
        "--ca",
        &fingerprint(&collector),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the service to start after enrolment", 60, || {
        agent.log().contains("ward-agent started").then_some(())
    });
    let healthy = wait_for("a heartbeat in status", 60, || {
        let s = status(&agent);
        (s["last_heartbeat"].is_string() && s["collector_reachable"] == true).then_some(s)
    });
    assert_eq!(healthy["enrolled"], true);
    assert!(healthy["enrolment"].is_null(), "{healthy}");
    let device = wait_for("the heartbeat at the collector", 60, || {
        collector
            .devices()
            .into_iter()
            .find(|d| d["last_heartbeat"].is_string())
    });
    assert_eq!(device["id"], healthy["device_id"], "{device}");
    assert!(agent.stop().success());
}

#[test]
fn a_fingerprint_that_is_not_the_collectors_ca_enrols_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    let agent = Agent::new(&tmp.path().join("agent"), &collector.url(), CONFIG);
    let wrong = "ab".repeat(32);
    let out = agent.command(&[
        "enrol",
        "--collector",
        &collector.url(),
        "--token",
        &collector.token(),
        "--ca",
        &format!("sha256:{wrong}"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fingerprint") && err.contains(&wrong), "{err}");
    assert_eq!(status(&agent)["enrolled"], false);
    assert!(collector.devices().is_empty());
}
