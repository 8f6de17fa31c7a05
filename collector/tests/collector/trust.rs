//! A trust's collectors: several, each with its own data dir, in front of one PostgreSQL database,
//! interchangeable behind a load balancer because the CA and the screenshots live in the database.
//! PostgreSQL runs only (SQLite is one collector by design).

use ward_collector::app::App;
use ward_collector::ca::Authority;
use ward_collector::config::Database;
use ward_collector_client::Client;
use ward_protocol::DeviceKind;

use crate::harness::{alert, batch, test_config_on, test_database, Collector, PG_ENV};

fn postgres() -> Option<Database> {
    std::env::var_os(PG_ENV).map(|_| test_database())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_starting_at_once_share_one_ca_and_each_others_devices() {
    let Some(database) = postgres() else {
        return;
    };
    let (a, b) = tokio::join!(
        Collector::start_on(database.clone()),
        Collector::start_on(database.clone())
    );
    assert_ne!(a.data_dir(), b.data_dir());
    assert_eq!(a.ca_pem, b.ca_pem, "one CA for the trust");
    assert!(
        !b.data_dir().join("ca-key.pem").exists(),
        "the key lives in the database only"
    );

    // Enrolled at A; its certificate (and A's ca.pem, which B's own server certificate chains to)
    // works at B.
    let (identity, _) = a.enrol(DeviceKind::Agent).await;
    let at_b = Client::new(&b.url, &identity).unwrap();
    let sent = alert(&identity.device_id);
    let receipt = at_b.send_alerts(&batch(vec![sent.clone()])).await.unwrap();
    assert_eq!(receipt.stored, vec![sent.id]);
    assert_eq!(a.count(), 1);
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_collectors_ca_is_imported_and_a_different_one_refused() {
    let Some(database) = postgres() else {
        return;
    };
    // A school's collector until now: its CA in its data dir.
    let school = tempfile::tempdir().unwrap();
    let before = Authority::load_or_create(school.path()).unwrap();
    let config = test_config_on(school.path(), database.clone());
    let started = App::start(config, Default::default()).unwrap();
    assert_eq!(started.app.ca().cert_pem(), before.cert_pem());

    // Another data dir with a CA of its own cannot join: its devices would not be the trust's.
    let stray = tempfile::tempdir().unwrap();
    Authority::load_or_create(stray.path()).unwrap();
    let refused = App::start(test_config_on(stray.path(), database), Default::default())
        .map(|_| ())
        .unwrap_err();
    let message = format!("{refused:#}");
    assert!(
        message.contains(&stray.path().join("ca.pem").display().to_string())
            && message.contains("collector_ca"),
        "{message}"
    );
}
