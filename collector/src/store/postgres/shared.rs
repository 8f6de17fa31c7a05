//! What collectors on one PostgreSQL database share beyond the [`Store`](super::Store): the CA
//! (certificate and key) and the screenshots' bytes. With these in the database a collector keeps
//! nothing on its own disk that another collector needs, so a trust can run several behind a load
//! balancer and lose any one of them.
//!
//! These tables exist only on PostgreSQL (`bytea`), so they are not in the shared migration list:
//! [`TABLES`] is applied with `IF NOT EXISTS` under the migration lock at every start.
//!
//! An S3-compatible object store for screenshots would replace [`ScreenshotTable`] (same three
//! calls: put before the alerts commit, get, sweep what no screenshot row names) and keep the gate.

use ::postgres::Client;

use super::{off_runtime, Pool, Result};

/// The PostgreSQL-only tables.
pub(super) const TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS collector_ca (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    cert_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_us BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS screenshot_data (
    sha256 TEXT PRIMARY KEY,
    data BYTEA NOT NULL,
    stored_us BIGINT NOT NULL
);
"#;

/// Serialises CA creation across collectors starting at once.
const CA_LOCK: i64 = 7_707_002;

/// The CA as the database holds it.
#[derive(Clone)]
pub struct SharedCa {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
    /// How it came to be (`created`, `imported from <path>`).
    pub origin: String,
    /// This call put it there.
    pub created_now: bool,
}

/// The database's CA; when there is none yet, `offer` (certificate, key, origin) becomes it. Two
/// collectors calling at once agree on one: the table is read and written under an advisory lock.
/// `Ok(None)`: the table is empty and nothing was offered.
///
/// # Errors
/// The database fails.
pub fn ca(url: &str, offer: Option<(String, String, String)>) -> Result<Option<SharedCa>> {
    let pool = Pool::new(url);
    pool.write(|tx| {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CA_LOCK])?;
        if let Some(row) =
            tx.query_opt("SELECT cert_pem, key_pem, origin FROM collector_ca WHERE id = 1", &[])?
        {
            return Ok(Some(SharedCa {
                cert_pem: row.get(0),
                key_pem: row.get(1),
                origin: row.get(2),
                created_now: false,
            }));
        }
        let Some((cert_pem, key_pem, origin)) = offer else {
            return Ok(None);
        };
        tx.execute(
            "INSERT INTO collector_ca (id, cert_pem, key_pem, origin, created_us) VALUES (1, $1, $2, $3, $4)",
            &[&cert_pem, &key_pem, &origin, &jiff::Timestamp::now().as_microsecond()],
        )?;
        Ok(Some(SharedCa {
            cert_pem,
            key_pem,
            origin,
            created_now: true,
        }))
    })
}

/// Replaces a plain CA key with its sealed form, if it is still the plain one (another collector may
/// have sealed it meanwhile, which is as good).
///
/// # Errors
/// The database fails.
pub fn seal_ca_key(url: &str, plain: &str, sealed: &str) -> Result<()> {
    Pool::new(url).write(|tx| {
        tx.execute(
            "UPDATE collector_ca SET key_pem = $2 WHERE id = 1 AND key_pem = $1",
            &[&plain, &sealed],
        )?;
        Ok(())
    })
}

/// The screenshot gate: ingest holds it shared from writing bytes until its alerts commit, retention
/// exclusively while it deletes rows and bytes (see `crate::screenshots`). A session lock, because
/// the alerts commit on another connection; a connection that cannot unlock is closed, which unlocks.
const SCREENSHOT_GATE: i64 = 7_707_003;

/// Screenshot bytes in `screenshot_data`, keyed by their SHA-256, on a pool of their own.
pub struct ScreenshotTable {
    pool: Pool,
}

impl std::fmt::Debug for ScreenshotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenshotTable").finish_non_exhaustive()
    }
}

impl ScreenshotTable {
    /// Connects lazily to `url`.
    pub fn new(url: &str) -> ScreenshotTable {
        ScreenshotTable {
            pool: Pool::new(url),
        }
    }

    /// Runs `f` on one connection holding the gate (shared or exclusive) for its whole length.
    fn gated<T: Send>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&mut Client) -> Result<T> + Send,
    ) -> Result<T> {
        let (lock, unlock) = if exclusive {
            (
                "SELECT pg_advisory_lock($1)",
                "SELECT pg_advisory_unlock($1)",
            )
        } else {
            (
                "SELECT pg_advisory_lock_shared($1)",
                "SELECT pg_advisory_unlock_shared($1)",
            )
        };
        off_runtime(|| {
            let mut client = self.pool.take()?;
            client.execute(lock, &[&SCREENSHOT_GATE])?;
            let result = f(&mut client);
            if client.execute(unlock, &[&SCREENSHOT_GATE]).is_ok() {
                self.pool.put(client);
            }
            result
        })
    }

    /// Stores `images` (address, bytes) durably, then runs `commit`, all under the shared gate.
    ///
    /// # Errors
    /// The database fails (`commit`'s own result is returned inside).
    pub fn put_then<T: Send>(
        &self,
        images: &[(&str, &[u8])],
        now: i64,
        commit: impl FnOnce() -> T + Send,
    ) -> Result<T> {
        self.gated(false, |client| {
            for (sha256, bytes) in images {
                client.execute(
                    "INSERT INTO screenshot_data (sha256, data, stored_us) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
                    &[sha256, bytes, &now],
                )?;
            }
            Ok(commit())
        })
    }

    /// The bytes stored under `sha256`.
    ///
    /// # Errors
    /// The database fails.
    pub fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.pool.read(|client| {
            Ok(client
                .query_opt(
                    "SELECT data FROM screenshot_data WHERE sha256 = $1",
                    &[&sha256],
                )?
                .map(|row| row.get(0)))
        })
    }

    /// Whether a `screenshots` row (so an alert) names this address.
    ///
    /// # Errors
    /// The database fails.
    pub fn referenced(&self, sha256: &str) -> Result<bool> {
        self.pool.read(|client| {
            Ok(client
                .query_opt("SELECT 1 FROM screenshots WHERE sha256 = $1", &[&sha256])?
                .is_some())
        })
    }

    /// Every address stored.
    ///
    /// # Errors
    /// The database fails.
    pub fn addresses(&self) -> Result<Vec<String>> {
        self.pool.read(|client| {
            Ok(client
                .query("SELECT sha256 FROM screenshot_data", &[])?
                .iter()
                .map(|row| row.get(0))
                .collect())
        })
    }

    /// Runs `purge` (which deletes `screenshots` rows) under the exclusive gate, then deletes the
    /// bytes no `screenshots` row names: those it just dropped, and any an ingest stored but never
    /// committed an alert for. Returns `purge`'s result and how many images went.
    ///
    /// # Errors
    /// The database fails.
    pub fn purge_with<T: Send>(&self, purge: impl FnOnce() -> T + Send) -> Result<(T, usize)> {
        self.gated(true, |client| {
            let purged = purge();
            let deleted = client.execute(
                "DELETE FROM screenshot_data d WHERE NOT EXISTS (SELECT 1 FROM screenshots s WHERE s.sha256 = d.sha256)",
                &[],
            )?;
            Ok((purged, deleted as usize))
        })
    }
}
