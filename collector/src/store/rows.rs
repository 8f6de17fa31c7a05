//! Result rows to records, written once for both backends: the queries in `sql` select the same
//! columns in the same order for SQLite and PostgreSQL, so only how one column is read differs, and
//! that is the [`Columns`] impl of each backend's row type.

use super::{
    AlertRecord, DeviceRecord, DisclosureRecord, LeaseRecord, PolicyRecord, ScreenshotRef,
};

/// One result row, read by column index. Times, counts and flags are 64-bit integers in both
/// databases, everything else text (see `migrations`).
pub trait Columns {
    /// The backend's error (a column of an unexpected type or null).
    type Error;
    /// A `TEXT NOT NULL` column.
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    /// A `BIGINT NOT NULL` column.
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    /// A nullable `BIGINT` column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
}

impl Columns for ::postgres::Row {
    type Error = ::postgres::Error;
    fn text(&self, i: usize) -> Result<String, ::postgres::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, ::postgres::Error> {
        self.try_get(i)
    }
    fn int(&self, i: usize) -> Result<i64, ::postgres::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, ::postgres::Error> {
        self.try_get(i)
    }
}

/// A row of `sql::devices()` / `sql::device_by_cert()`.
pub fn device<R: Columns>(r: &R) -> Result<DeviceRecord, R::Error> {
    Ok(DeviceRecord {
        id: r.text(0)?,
        kind: r.text(1)?,
        cert_sha256: r.text(2)?,
        hostname: r.text(3)?,
        os: r.text(4)?,
        program_version: r.text(5)?,
        enrolled: r.int(6)?,
        revoked: r.opt_int(7)?,
        last_heartbeat: r.opt_int(8)?,
        last_ip: r.opt_text(9)?,
        wordlist_version: r.opt_text(10)?,
        spool_depth: r.int(11)?,
        spool_dropped: r.int(12)?,
        silent_since: r.opt_int(13)?,
        dead_helpers: r.opt_text(14)?,
    })
}

/// A row of `sql::ALERTS` (the alert, then its screenshot's columns when it has one).
pub fn alert<R: Columns>(r: &R) -> Result<AlertRecord, R::Error> {
    let screenshot = match r.opt_text(16)? {
        Some(sha256) => Some(ScreenshotRef {
            sha256,
            format: r.text(17)?,
            width: r.int(18)?,
            height: r.int(19)?,
            bytes: r.int(20)?,
        }),
        None => None,
    };
    Ok(AlertRecord {
        id: r.text(0)?,
        device: r.text(1)?,
        user: r.opt_text(2)?,
        time: r.int(3)?,
        received: r.int(4)?,
        source: r.text(5)?,
        category: r.text(6)?,
        severity: r.int(7)?,
        phrase: r.text(8)?,
        context: r.text(9)?,
        language: r.opt_text(10)?,
        application: r.opt_text(11)?,
        window_title: r.opt_text(12)?,
        wordlist_version: r.opt_text(13)?,
        client_ip: r.opt_text(14)?,
        no_screenshot_reason: r.opt_text(15)?,
        screenshot,
    })
}

/// A row of `sql::LIVE_LEASES`.
pub fn lease<R: Columns>(r: &R) -> Result<LeaseRecord, R::Error> {
    Ok(LeaseRecord {
        device: r.text(0)?,
        user: r.text(1)?,
        group: r.text(2)?,
        addresses: r.text(3)?,
        expires: r.int(4)?,
        updated: r.int(5)?,
    })
}

/// A row of `sql::LATEST_POLICY`.
pub fn policy<R: Columns>(r: &R) -> Result<PolicyRecord, R::Error> {
    Ok(PolicyRecord {
        revision: r.int(0)?,
        sha256: r.text(1)?,
        policy_toml: r.text(2)?,
        author: r.text(3)?,
        note: r.text(4)?,
        created: r.int(5)?,
    })
}

/// A row of `sql::DISCLOSURES`.
pub fn disclosure<R: Columns>(r: &R) -> Result<DisclosureRecord, R::Error> {
    Ok(DisclosureRecord {
        user: r.text(0)?,
        device: r.text(1)?,
        first_seen: r.int(2)?,
        last_seen: r.int(3)?,
        shown: r.opt_int(4)?,
        notice_sha256: r.opt_text(5)?,
    })
}
