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

use super::{Pool, Result};

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
