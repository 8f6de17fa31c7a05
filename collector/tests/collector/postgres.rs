//! The whole suite again on PostgreSQL: this test starts a throw-away cluster with `pg_virtualenv`
//! (Debian's postgresql-common; tests/packages.txt installs it) and runs this same test binary inside
//! it with every collector on a fresh PostgreSQL database.

use std::process::Command;

use crate::harness::{Collector, PG_ENV};

#[test]
fn the_same_suite_on_postgresql() {
    if std::env::var_os(PG_ENV).is_some() {
        return; // Already the inner run.
    }
    let exe = std::env::current_exe().unwrap();
    // pg_virtualenv run as root always names its cluster `regress`: two runs at once (two test
    // commands on one machine) would collide, so they take turns.
    let lock = std::env::temp_dir().join("ward-collector-pg-virtualenv.lock");
    let output = Command::new("flock")
        .arg(&lock)
        .args(["pg_virtualenv", "-v", "15"])
        .arg(&exe)
        .args(["--test-threads", "2"])
        .env(PG_ENV, "1")
        .output()
        .expect("pg_virtualenv (apt-get install postgresql, listed in tests/packages.txt)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok"),
        "the suite failed on PostgreSQL:\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_runs_on_the_configured_backend() {
    let collector = Collector::start().await;
    let expected = if std::env::var_os(PG_ENV).is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(collector.store().backend(), expected);
}
