//! A trust's collectors: several, each with its own data dir, in front of one PostgreSQL database,
//! interchangeable behind a load balancer because the CA and the screenshots live in the database.
//! PostgreSQL runs only (SQLite is one collector by design).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::Digest;
use ward_collector::app::{open_store, App};
use ward_collector::ca::Authority;
use ward_collector::config::Database;
use ward_collector::jobs;
use ward_collector::screenshots::Screenshots;
use ward_collector::store::ScreenshotRef;
use ward_collector_client::Client;
use ward_collector_client::SubscribeOptions;
use ward_protocol::{DeviceKind, StreamEvent};

use crate::harness::{
    alert, batch, png, screenshot, test_config_on, test_database, Collector, PG_ENV,
};
use crate::stream::{lease, next};
use crate::ui_http::Browser;
use crate::ui_store::record;

fn postgres() -> Option<Database> {
    std::env::var_os(PG_ENV).map(|_| test_database())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_starting_at_once_share_one_ca_devices_and_screenshots() {
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
    // works at B, over mTLS.
    let (identity, _) = a.enrol(DeviceKind::Agent).await;
    let at_b = Client::new(&b.url, &identity).unwrap();
    let mut sent = alert(&identity.device_id);
    let shot = screenshot(8 * 1024);
    sent.screenshot = Some(shot.clone());
    let receipt = at_b.send_alerts(&batch(vec![sent.clone()])).await.unwrap();
    assert_eq!(receipt.stored, vec![sent.id]);
    assert_eq!(a.count(), 1);
    assert!(
        b.data_dir().join("screenshots").read_dir().is_err(),
        "nothing on B's disk"
    );

    // A's review UI shows the screenshot B received.
    let mut browser = Browser::sign_in_dsl(&a).await;
    let page = browser.request(&format!("/alerts/{}", sent.id), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let link = screenshot_link(&page.body);
    let (status, image) = browser.download(&link).await;
    assert_eq!(status, 200);
    assert_eq!(STANDARD.encode(&image), shot.data_base64);

    // Retention at A deletes the image every collector shared.
    let sha = Screenshots::address(&image);
    let app = App::start(a.config.clone(), Default::default())
        .unwrap()
        .app;
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 31);
    let purged = jobs::retention_pass(&app, later).unwrap();
    assert_eq!(purged.screenshots, vec![sha]);
    assert!(b.screenshots().addresses().unwrap().is_empty());
    let (status, _) = browser.download(&link).await;
    assert_eq!(status, 404, "the screenshot is gone");

    // A resolver streaming from A hears of a lease and a policy stored through B.
    let (_, resolver) = a.enrol(DeviceKind::Resolver).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut events = resolver.subscribe(SubscribeOptions::default(), shutdown.clone());
    assert!(matches!(
        next(&mut events).await,
        StreamEvent::Leases { .. }
    ));
    let agent_at_b = Client::new(&b.url, &identity).unwrap();
    agent_at_b
        .send_lease(&lease("pupil.jones", "10.0.0.5"))
        .await
        .unwrap();
    match next(&mut events).await {
        StreamEvent::Leases { leases, .. } => assert_eq!(leases[0].user, "pupil.jones"),
        other => panic!("expected leases, got {other:?}"),
    }
    let policy = "[tiers.pupil]\nblock = [\"gambling\"]\n";
    let sha256 = hex::encode(sha2::Sha256::digest(policy.as_bytes()));
    b.store()
        .add_policy(policy, &sha256, "dsl", "via B", 1)
        .unwrap();
    match next(&mut events).await {
        StreamEvent::Policy(policy) => assert!(policy.policy_toml.contains("gambling")),
        other => panic!("expected the policy, got {other:?}"),
    }
    shutdown.cancel();
    b.stop().await;
    a.stop().await;
}

/// The screenshot link on an alert page (`&amp;` unescaped).
fn screenshot_link(body: &str) -> String {
    const MARK: &str = "id=\"screenshot-link\" href=\"";
    let start = body
        .find(MARK)
        .unwrap_or_else(|| panic!("no screenshot link in:\n{body}"))
        + MARK.len();
    let rest = &body[start..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
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

    // A certificate without its key is no CA to import into an empty database.
    let half = tempfile::tempdir().unwrap();
    std::fs::write(half.path().join("ca.pem"), before.cert_pem()).unwrap();
    let empty = test_database();
    let refused = App::start(test_config_on(half.path(), empty), Default::default())
        .map(|_| ())
        .unwrap_err();
    let message = format!("{refused:#}");
    assert!(message.contains("without"), "{message}");
    assert!(message.contains("ca-key.pem"), "{message}");
}

#[test]
fn the_ca_key_is_sealed_with_the_trusts_secret() {
    let Some(database) = postgres() else {
        return;
    };
    let Database::Postgres(url) = &database else {
        unreachable!()
    };
    let stored_key = || {
        postgres::Client::connect(url, postgres::NoTls)
            .unwrap()
            .query_one("SELECT key_pem FROM collector_ca", &[])
            .unwrap()
            .get::<_, String>(0)
    };
    let secrets = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = secrets.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let secret = write(
        "secret",
        "dGhlIHRydXN0J3Mgc2VjcmV0IGZvciBpdHMgQ0Ega2V5IGF0IHJlc3Q=\n",
    );
    let wrong = write(
        "wrong",
        "YW5vdGhlciB0cnVzdCdzIHNlY3JldCwgbm90IHRoaXMgb25lIGF0IGFsbA==\n",
    );
    let start = |secret: Option<&std::path::Path>| {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config_on(dir.path(), database.clone());
        config.ca_key_secret_file = secret.map(|p| p.to_path_buf());
        App::start(config, Default::default()).map(|s| s.app.ca().cert_pem().to_string())
    };

    // A trust that starts without a secret, then sets one: the stored key is sealed in place.
    let ca = start(None).unwrap();
    assert!(stored_key().contains("PRIVATE KEY"));
    assert_eq!(start(Some(&secret)).unwrap(), ca);
    let sealed = stored_key();
    assert!(sealed.starts_with("ward-sealed-v1:") && !sealed.contains("PRIVATE KEY"));

    // From then on a collector needs the same secret.
    let without = format!("{:#}", start(None).unwrap_err());
    assert!(without.contains("database.ca_key_secret_file"), "{without}");
    let other = format!("{:#}", start(Some(&wrong)).unwrap_err());
    assert!(other.contains("cannot be unsealed"), "{other}");
    assert_eq!(start(Some(&secret)).unwrap(), ca);
    assert_eq!(stored_key(), sealed, "sealed once");
}

#[test]
fn screenshot_files_from_before_move_into_the_database() {
    let Some(database) = postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = test_config_on(dir.path(), database);
    let file = |bytes: &[u8]| {
        let sha = Screenshots::address(bytes);
        let path = dir.path().join("screenshots").join(&sha[..2]);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join(format!("{sha}.png")), bytes).unwrap();
        sha
    };
    // One image an alert refers to, one no alert does (past retention, say).
    let kept = png(2048);
    let sha = file(&kept);
    file(&png(1024));
    let mut with_shot = record("a1", Some("alex"), 1, "keyboard", "text");
    with_shot.screenshot = Some(ScreenshotRef {
        sha256: sha.clone(),
        format: "png".into(),
        width: 1,
        height: 1,
        bytes: kept.len() as i64,
    });
    open_store(&config)
        .unwrap()
        .insert_alerts(&[with_shot])
        .unwrap();

    let app = App::start(config, Default::default()).unwrap().app;
    assert_eq!(app.screenshots().addresses().unwrap(), vec![sha.clone()]);
    assert_eq!(app.screenshots().read(&sha, "png").unwrap().unwrap(), kept);
    assert!(
        !dir.path().join("screenshots").exists(),
        "no file left behind"
    );
}

/// A webhook receiver that answers slowly (as a paging relay may): counts the POSTs it gets.
async fn slow_webhook(
    answer_after: std::time::Duration,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let posts = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                if stream.read(&mut buffer).await.unwrap_or(0) > 0 {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(answer_after).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    (url, posts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_alert_is_notified_by_one_collector_of_the_trust() {
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    let Some(database) = postgres() else {
        return;
    };
    // Slower than the notifier's 5-second poll: a second collector would see the alert un-notified
    // while the first is still sending.
    let (url, posts) = slow_webhook(Duration::from_secs(6)).await;
    let with_hook = |database: &Database| {
        let (database, url) = (database.clone(), url.clone());
        move |c: &mut ward_collector::config::Config| {
            c.database = database;
            c.ui.settings.notifications.webhook = Some(url);
        }
    };
    let (a, b) = tokio::join!(
        Collector::start_with(with_hook(&database)),
        Collector::start_with(with_hook(&database))
    );
    let (identity, client) = a.enrol(DeviceKind::Agent).await;
    let mut urgent = alert(&identity.device_id);
    urgent.severity = 5;
    client.send_alerts(&batch(vec![urgent])).await.unwrap();
    let first = crate::harness::wait_for(Duration::from_secs(30), || async {
        (posts.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    assert!(first.is_some(), "no notification");
    // Both collectors poll at least once more while the send is under way, and after it.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(posts.load(Ordering::SeqCst), 1, "one notice for the trust");
    b.stop().await;
    a.stop().await;
}
