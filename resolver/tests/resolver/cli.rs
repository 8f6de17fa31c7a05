//! `ward-resolver check`, configuration files, refusal of unliftable allows, clean shutdown.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{self, Options, Ward, BIN, POLICY};
use crate::upstream::Upstream;

fn check(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(dir.join("resolver.toml"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn folder(policy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new("127.0.0.1:9".parse().unwrap());
    options.policy = policy.to_string();
    harness::write_config(dir.path(), &options);
    dir
}

#[test]
fn check_prints_the_decision_as_json() {
    let dir = folder(POLICY);
    let v = check(dir.path(), &["--client", "127.0.0.20", "www.bet.test"]);
    assert_eq!(v["tier"], "pupil");
    assert_eq!(v["identity"], "network curriculum");
    assert_eq!(v["verdict"], "block");
    assert_eq!(v["category"], "gambling");
    assert_eq!(v["rule"], "tier pupil category-list bet.test");
    assert_eq!(
        v["answer"]["records"][0],
        "www.bet.test. 60 IN A 192.0.2.80"
    );
    assert_eq!(v["answer"]["ede"]["code"], 15);
    let v = check(
        dir.path(),
        &[
            "--client",
            "127.0.0.1",
            "--user",
            "jsmith",
            "--group",
            "Students",
            "www.google.co.uk",
            "AAAA",
        ],
    );
    assert_eq!(
        (v["tier"].as_str(), v["verdict"].as_str()),
        (Some("pupil"), Some("rewrite"))
    );
    assert_eq!(v["identity"], "jsmith (Students)");
    assert_eq!(v["answer"]["cname"], "forcesafesearch.google.com");
    let v = check(dir.path(), &["--client", "192.0.2.7", "roblox.test"]);
    assert_eq!(
        (v["tier"].as_str(), v["identity_source"].as_str()),
        (Some("byod-strict"), Some("default"))
    );
    assert_eq!(v["answer"]["rcode"], "Non-Existent Domain");
}

#[test]
fn check_follows_schedules_in_london_time_across_the_clock_change() {
    let dir = folder(POLICY);
    let at = |when: &str| {
        check(
            dir.path(),
            &["--client", "127.0.0.20", "--at", when, "roblox.test"],
        )["verdict"]
            .clone()
    };
    assert_eq!(at("2026-03-27T12:45:00Z"), "allow", "Friday lunch, GMT");
    assert_eq!(at("2026-03-30T12:45:00Z"), "block", "Monday 13:45 BST");
    assert_eq!(at("2026-03-30T11:45:00Z"), "allow", "Monday 12:45 BST");
}

#[test]
fn a_policy_that_lifts_the_illegal_list_is_refused_at_start() {
    let policy = POLICY.replace(
        "[tiers.staff]\n",
        "[tiers.staff]\nallow = [\"bbc.co.uk\", \"abuse.test\"]\n",
    );
    let dir = folder(&policy);
    let line = policy
        .lines()
        .position(|l| l.contains("abuse.test"))
        .unwrap()
        + 1;
    for args in [
        vec!["--config"],
        vec!["check", "--client", "127.0.0.1", "x.test", "--config"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .arg(dir.path().join("resolver.toml"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(78), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("policy.toml:{line}:"))
                && err.contains("abuse.test")
                && err.contains("illegal"),
            "{err}"
        );
    }
}

#[test]
fn every_shipped_config_loads_and_rejects_unknown_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let config = ward_resolver::config::Config::load(&root.join("resolver.toml")).unwrap();
    assert_eq!(config.listen, ["127.0.0.1:5353".parse().unwrap()]);
    let policy = ward_resolver::policy::Policy::load(&config.policy).unwrap();
    assert_eq!(policy.tiers[policy.default_tier].name, "byod-strict");
    assert!(policy.tier_named("sixth-form").is_some());
    assert!(
        policy.lists.len() > 50,
        "the shipped DoH and VPN lists load"
    );
    let dir = tempfile::tempdir().unwrap();
    for (file, section) in [
        ("resolver.toml", "[cache]"),
        ("policy.toml", "[block_page]"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let broken = text.replacen(section, &format!("{section}\nunknown_key = 1"), 1);
        let path = dir.path().join(file);
        std::fs::write(&path, broken).unwrap();
        let err = if file == "resolver.toml" {
            ward_resolver::config::Config::load(&path)
                .unwrap_err()
                .to_string()
        } else {
            ward_resolver::policy::Policy::from_text(
                &root.join(file),
                &std::fs::read_to_string(&path).unwrap(),
            )
            .unwrap_err()
            .to_string()
        };
        assert!(err.contains("unknown_key"), "{file}: {err}");
    }
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let up = Upstream::start();
    let mut ward = Ward::start(Options::new(up.addr));
    ward.signal("TERM");
    let status = ward.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status:?}");
}
