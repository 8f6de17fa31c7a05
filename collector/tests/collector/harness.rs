//! A collector per test: fresh data dir, port 0, real TLS; helpers to enrol devices and make alerts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use ward_collector::config::{Config, Database};
use ward_collector::store::{NewToken, Store};
use ward_collector_client::{Client, Enrolment, Identity};
use ward_protocol::{Alert, AlertBatch, AlertSource, Category, DeviceKind, PROTOCOL_VERSION};

/// A running in-process collector. Stops when dropped.
pub struct Collector {
    dir: Option<tempfile::TempDir>,
    pub url: String,
    pub ca_pem: String,
    pub config: Config,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Set (by `postgres::the_same_suite_on_postgresql`, inside `pg_virtualenv`) to run every test
/// against PostgreSQL instead of SQLite.
pub const PG_ENV: &str = "WARD_TEST_POSTGRES";

/// The database tests use: SQLite in the data dir, or a fresh PostgreSQL database per call.
pub fn test_database() -> Database {
    if std::env::var_os(PG_ENV).is_none() {
        return Database::Sqlite;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let base = format!(
        "host={} port={} user={} password={}",
        var("PGHOST"),
        var("PGPORT"),
        var("PGUSER"),
        var("PGPASSWORD")
    );
    let name = format!("ward_test_{}", uuid::Uuid::new_v4().simple());
    let admin_url = format!("{base} dbname={}", var("PGDATABASE"));
    let create = format!("CREATE DATABASE {name}");
    // Its own thread: the postgres client blocks on a runtime of its own.
    std::thread::spawn(move || {
        postgres::Client::connect(&admin_url, postgres::NoTls)
            .expect("PostgreSQL from pg_virtualenv")
            .batch_execute(&create)
            .unwrap();
    })
    .join()
    .unwrap();
    Database::Postgres(format!("{base} dbname={name}"))
}

/// The same, as a `[database]` section for a config file.
pub fn database_toml(database: &Database) -> String {
    match database {
        Database::Sqlite => String::new(),
        Database::Postgres(url) => {
            format!("[database]\nbackend = \"postgres\"\nurl = \"{url}\"\n")
        }
    }
}

/// Settings generous enough that tests are limited by what they test, not by rate limits.
pub fn test_config(data_dir: &Path) -> Config {
    test_config_on(data_dir, test_database())
}

/// [`test_config`] on a given database.
pub fn test_config_on(data_dir: &Path, database: Database) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        database,
        ..Config::default()
    };
    config.limits.device_requests_per_second = 10_000.0;
    config.limits.device_request_burst = 10_000.0;
    config.limits.enrol_requests_per_minute = 6_000.0;
    config
}

impl Collector {
    pub async fn start() -> Collector {
        Collector::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        Collector::start_in(dir, config).await
    }

    /// A collector with its own data dir on `database` (another collector's, for a trust).
    pub async fn start_on(database: Database) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let config = test_config_on(dir.path(), database);
        Collector::start_in(dir, config).await
    }

    async fn start_in(dir: tempfile::TempDir, config: Config) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ward_collector::run(
            config.clone(),
            listener,
            shutdown.clone(),
        ));
        let ca_path = config.data_dir.join("ca.pem");
        let ca_pem = wait_for(Duration::from_secs(30), || async {
            if task.is_finished() {
                return Some(None);
            }
            let pem = std::fs::read_to_string(&ca_path).ok()?;
            let client = Client::anonymous(&url, pem.as_bytes()).ok()?;
            client.ping().await.ok().map(|()| Some(pem))
        })
        .await
        .expect("collector did not come up");
        let Some(ca_pem) = ca_pem else {
            panic!("collector stopped at start: {:?}", task.await);
        };
        Collector {
            dir: Some(dir),
            url,
            ca_pem,
            config,
            shutdown,
            task: Some(task),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// A second handle on the same database, for assertions.
    pub fn store(&self) -> Arc<dyn Store> {
        ward_collector::app::open_store(&self.config).unwrap()
    }

    /// A second handle on where screenshots are kept (files or the database), for assertions.
    pub fn screenshots(&self) -> ward_collector::screenshots::Screenshots {
        ward_collector::screenshots::Screenshots::open_for(&self.config).unwrap()
    }

    pub fn token(&self, uses: u32) -> String {
        let token = format!("test-token-{}", uuid::Uuid::new_v4());
        let now = jiff::Timestamp::now().as_microsecond();
        self.store()
            .add_token(&NewToken {
                sha256: ward_collector::api::token_hash(&token),
                uses,
                expires: Some(now + 3_600_000_000),
                created: now,
            })
            .unwrap();
        token
    }

    pub fn enrolment(&self, token: &str, kind: DeviceKind) -> Enrolment {
        Enrolment {
            collector: self.url.clone(),
            token: token.to_string(),
            ca_pem: self.ca_pem.clone(),
            hostname: "ws-101".into(),
            os: "linux".into(),
            kind,
            program_version: "0.1.0".into(),
        }
    }

    /// Enrols a device of `kind` and returns its identity and a client.
    pub async fn enrol(&self, kind: DeviceKind) -> (Identity, Client) {
        let state = tempfile::tempdir().unwrap();
        let identity = self
            .enrolment(&self.token(1), kind)
            .enrol(state.path())
            .await
            .unwrap();
        let client = Client::new(&self.url, &identity).unwrap();
        (identity, client)
    }

    pub fn count(&self) -> u64 {
        self.store().count_alerts().unwrap()
    }

    pub async fn stop(self) {
        drop(self.stop_keep_dir().await);
    }

    /// Stops the server and hands over its data dir (deleted when the guard drops).
    pub async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("collector did not stop within its grace period")
                .unwrap()
                .unwrap();
        }
        self.dir.take().expect("data dir")
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `probe` until it yields a value or `limit` passes.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn alert(device: &str) -> Alert {
    Alert {
        id: uuid::Uuid::new_v4(),
        device: device.to_string(),
        user: Some("pupil.jones".into()),
        time: jiff::Timestamp::now(),
        source: AlertSource::Keyboard,
        category: Category::SelfHarm,
        severity: 4,
        phrase: "cut myself".into(),
        context: "i want to cut myself again tonight".into(),
        language: Some("en".into()),
        application: Some("firefox".into()),
        window_title: Some("Messages - Mozilla Firefox".into()),
        wordlist_version: Some("2026.11.1".into()),
        client_ip: None,
        screenshot: None,
        no_screenshot_reason: None,
    }
}

pub fn batch(alerts: Vec<Alert>) -> AlertBatch {
    AlertBatch {
        version: PROTOCOL_VERSION,
        alerts,
    }
}

/// A real PNG of `len` bytes or more (a valid header and image, padded with an ancillary chunk).
pub fn png(len: usize) -> Vec<u8> {
    // 1x1 grey PNG.
    let mut bytes = vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0,
        0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0x3a, 0x7e, 0x9b, 0x55,
    ];
    let filler = len.saturating_sub(bytes.len());
    bytes.extend((0..filler).map(|_| rand::random::<u8>()));
    bytes
}

pub fn screenshot(len: usize) -> ward_protocol::Screenshot {
    use base64::Engine;
    ward_protocol::Screenshot {
        format: "png".into(),
        width: 1,
        height: 1,
        data_base64: base64::engine::general_purpose::STANDARD.encode(png(len)),
    }
}
