//! The shared state every request handler and background job sees, and how it is built from the
//! configuration (open the store, load or create the CA, first admin, policy import).
//!
//! Ownership: [`App`] is cloned into every handler; the store, CA, screenshot folder, change hub and
//! rate limiters live as long as the last clone. Shutdown is the token in `App::shutdown`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::ca::Authority;
use crate::config::{Config, Database};
use crate::screenshots::Screenshots;
use crate::store::{self, Store};

/// Shared state. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    ca: Authority,
    screenshots: Screenshots,
    hub: Hub,
    device_limiter: RateLimiter,
    enrol_limiter: RateLimiter,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("backend", &self.inner.store.backend())
            .finish_non_exhaustive()
    }
}

/// Opens the configured store (SQLite file in the data dir, or PostgreSQL).
///
/// # Errors
/// The database cannot be opened or migrated.
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("{}: cannot create", config.data_dir.display()))?;
    match &config.database {
        Database::Sqlite => {
            let path = config.data_dir.join("ward.db");
            let store = store::sqlite::SqliteStore::open(&path)
                .with_context(|| format!("{}: cannot open the database", path.display()))?;
            Ok(Arc::new(store))
        }
        Database::Postgres(url) => {
            let store = store::postgres::PostgresStore::open(url)
                .context("cannot open the PostgreSQL database (database.url)")?;
            Ok(Arc::new(store))
        }
    }
}

/// What start-up did that a first-time operator must see.
#[derive(Debug)]
pub struct Started {
    /// The state.
    pub app: App,
    /// The first admin's one-time password, on the very first start.
    pub initial_admin_password: Option<String>,
}

impl App {
    /// Builds the state: store, CA, screenshot folder, first admin account, policy import.
    ///
    /// # Errors
    /// Anything that cannot be opened, created or read, named.
    pub fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Started> {
        let store = open_store(&config)?;
        let ca = match &config.database {
            Database::Sqlite => Authority::load_or_create(&config.data_dir)?,
            Database::Postgres(url) => Authority::load_or_create_shared(
                &config.data_dir,
                url,
                config.ca_key_secret_file.as_deref(),
            )?,
        };
        let screenshots = Screenshots::open_for(&config)?;
        let initial_admin_password = crate::accounts::bootstrap_admin(&*store, &config.data_dir)?;
        if let Some(path) = &config.policy {
            import_policy(&*store, path)?;
        }
        let limits = &config.limits;
        let device_limiter = RateLimiter::new(
            limits.device_requests_per_second,
            limits.device_request_burst,
        );
        let enrol_limiter = RateLimiter::new(
            limits.enrol_requests_per_minute / 60.0,
            limits.enrol_requests_per_minute.max(1.0),
        );
        let app = App {
            inner: Arc::new(Inner {
                config,
                store,
                ca,
                screenshots,
                hub: Hub::new(),
                device_limiter,
                enrol_limiter,
                shutdown,
            }),
        };
        Ok(Started {
            app,
            initial_admin_password,
        })
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store, for blocking code. Async code uses [`App::with_store`].
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Runs a blocking store call on the blocking pool.
    ///
    /// # Errors
    /// The call's own error, or a panic in it as [`store::StoreError::Database`].
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, store::StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, store::StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .unwrap_or_else(|e| Err(store::StoreError::Database(format!("store task: {e}"))))
    }

    /// The CA.
    pub fn ca(&self) -> &Authority {
        &self.inner.ca
    }

    /// The screenshot folder.
    pub fn screenshots(&self) -> &Screenshots {
        &self.inner.screenshots
    }

    /// Change notifications for subscribed resolvers.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Per-device request limits.
    pub fn device_limiter(&self) -> &RateLimiter {
        &self.inner.device_limiter
    }

    /// Per-address enrolment limits.
    pub fn enrol_limiter(&self) -> &RateLimiter {
        &self.inner.enrol_limiter
    }

    /// Cancelled when the collector shuts down (long-lived streams end on it).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}

/// Imports `path` as a new policy revision when its text differs from the newest stored one.
///
/// # Errors
/// The file cannot be read or is not TOML.
pub fn import_policy(store: &dyn Store, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the policy", path.display()))?;
    if let Err(e) = toml::from_str::<toml::Table>(&text) {
        return Err(
            ward_service::config::ConfigError::invalid(path, format!("not TOML: {e}")).into(),
        );
    }
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    let latest = store.latest_policy()?;
    if latest.as_ref().is_some_and(|p| p.sha256 == sha256) {
        return Ok(());
    }
    let record = store.add_policy(
        &text,
        &sha256,
        &format!("file:{}", path.display()),
        "imported from the policy file at start-up",
        jiff::Timestamp::now().as_microsecond(),
    )?;
    tracing::info!(revision = record.revision, file = %path.display(), "policy imported");
    Ok(())
}

/// Tells streams that leases or the policy changed. Each is a counter; a stream remembers what it
/// sent and re-reads the store when the counter moves.
#[derive(Debug)]
pub struct Hub {
    leases: watch::Sender<u64>,
    policy: watch::Sender<u64>,
}

impl Hub {
    fn new() -> Hub {
        Hub {
            leases: watch::Sender::new(0),
            policy: watch::Sender::new(0),
        }
    }

    /// A lease was added, renewed or changed.
    pub fn leases_changed(&self) {
        self.leases.send_modify(|n| *n += 1);
    }

    /// A new policy revision was stored.
    pub fn policy_changed(&self) {
        self.policy.send_modify(|n| *n += 1);
    }

    /// Receivers for (leases, policy) changes.
    pub fn watch(&self) -> (watch::Receiver<u64>, watch::Receiver<u64>) {
        (self.leases.subscribe(), self.policy.subscribe())
    }
}

/// Token buckets by key (device id or address), in memory.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` sustained, `burst` at once.
    pub fn new(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(wait)` says how long until one is available.
    ///
    /// # Errors
    /// The bucket is empty.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget full buckets so a flood of distinct keys cannot grow memory without bound.
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_a_burst_then_throttle() {
        let limiter = RateLimiter::new(1.0, 3.0);
        for _ in 0..3 {
            limiter.check("a").unwrap();
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(wait > Duration::from_millis(500), "{wait:?}");
        limiter.check("b").unwrap();
    }
}
