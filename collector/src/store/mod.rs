//! Storage behind one interface, [`Store`], with SQLite (embedded, the default) and PostgreSQL (for
//! trusts) behind it, sharing one list of migrations written in the SQL both understand.
//!
//! Constraints every backend keeps:
//! - a call that returns `Ok` has made its writes durable (SQLite: WAL with `synchronous=FULL`;
//!   PostgreSQL: a committed transaction), because the API acknowledges right after;
//! - alert ingest is idempotent on the alert id (`ON CONFLICT DO NOTHING`);
//! - times are integer microseconds since the Unix epoch (UTC), so ordering and ranges are plain
//!   integer comparisons in both databases;
//! - the `Store`'s tables hold a screenshot's SHA-256 and shape, never its bytes: those are files on
//!   SQLite and the PostgreSQL-only `screenshot_data` table (`postgres::shared`), both reached through
//!   `crate::screenshots`.
//!
//! Calls are blocking; async code reaches them through `crate::app::App::store` (spawn_blocking).
//! New features (the review UI's triage, audit log, sessions) add tables with a new migration at the
//! end of [`MIGRATIONS`] and methods here, implemented for both backends.

mod migrations;
pub mod postgres;
pub(crate) mod rows;
mod sql;
pub mod sqlite;

pub use migrations::MIGRATIONS;

/// A storage failure. `Conflict` is the one a caller can act on (a name already taken).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique name or id is already taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// An enrolment token as stored (only its hash).
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Hex SHA-256 of the token text.
    pub sha256: String,
    /// How many enrolments it allows.
    pub uses: u32,
    /// When it stops working.
    pub expires: Option<Micros>,
    /// When it was made.
    pub created: Micros,
}

/// Why a token did not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No such token.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Every use spent.
    UsedUp,
}

/// A device to record at enrolment.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Assigned id (the certificate's common name).
    pub id: String,
    /// `agent` or `resolver`.
    pub kind: String,
    /// Hex SHA-256 of the issued certificate's DER.
    pub cert_sha256: String,
    /// Hex serial of the issued certificate.
    pub cert_serial: String,
    /// As the device reported.
    pub hostname: String,
    /// As the device reported.
    pub os: String,
    /// As the device reported.
    pub program_version: String,
    /// When.
    pub enrolled: Micros,
    /// Address it enrolled from.
    pub ip: String,
}

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Assigned id.
    pub id: String,
    /// `agent` or `resolver`.
    pub kind: String,
    /// Hex SHA-256 of its certificate.
    pub cert_sha256: String,
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// Agent or resolver version (updated by heartbeats).
    pub program_version: String,
    /// Enrolment time.
    pub enrolled: Micros,
    /// Revocation time; a revoked device is refused.
    pub revoked: Option<Micros>,
    /// Last heartbeat.
    pub last_heartbeat: Option<Micros>,
    /// Address of its last request.
    pub last_ip: Option<String>,
    /// Wordlist version from the last heartbeat.
    pub wordlist_version: Option<String>,
    /// Spool depth from the last heartbeat.
    pub spool_depth: i64,
    /// Alerts evicted from the device's full spool, in total.
    pub spool_dropped: i64,
    /// When it was flagged silent (cleared by the next heartbeat).
    pub silent_since: Option<Micros>,
    /// Users in the last heartbeat whose monitoring helper was not alive.
    pub dead_helpers: Option<String>,
}

/// A heartbeat as recorded.
#[derive(Debug, Clone)]
pub struct HeartbeatRecord {
    /// When it arrived.
    pub received: Micros,
    /// Sender's address.
    pub ip: String,
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// Agent version.
    pub program_version: String,
    /// Wordlist version.
    pub wordlist_version: Option<String>,
    /// Spool depth.
    pub spool_depth: i64,
    /// Newly evicted alerts.
    pub spool_dropped: i64,
    /// Comma-separated users whose helper is dead, if any.
    pub dead_helpers: Option<String>,
    /// Every user in the heartbeat's sessions, with the notice showing the agent reports.
    pub sessions: Vec<SessionSeen>,
    /// Device alerts the heartbeat gives rise to (a monitoring helper that stopped), stored with it.
    pub alerts: Vec<AlertRecord>,
}

/// A user in a heartbeat's sessions, for the disclosure record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSeen {
    /// Signed-in user.
    pub user: String,
    /// When the monitoring notice was shown at this logon, if it was.
    pub notice_shown: Option<Micros>,
    /// Hex SHA-256 of the notice text shown.
    pub notice_sha256: Option<String>,
}

/// Disclosure, per user and device: seen in monitored sessions from `first_seen` to `last_seen`,
/// and shown the monitoring notice last at `shown` (never, if `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRecord {
    /// User.
    pub user: String,
    /// Device id.
    pub device: String,
    /// First heartbeat that named the user on this device.
    pub first_seen: Micros,
    /// Latest heartbeat that did.
    pub last_seen: Micros,
    /// Latest showing of the notice on this device.
    pub shown: Option<Micros>,
    /// Hex SHA-256 of the text shown then.
    pub notice_sha256: Option<String>,
}

/// One alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// The sender's id (UUID text).
    pub id: String,
    /// Device id.
    pub device: String,
    /// Signed-in user.
    pub user: Option<String>,
    /// When it happened.
    pub time: Micros,
    /// When the collector stored it.
    pub received: Micros,
    /// `keyboard`, `window-title`, `dns`, `device`.
    pub source: String,
    /// Category name (the shared vocabulary; `device` for the collector's own device alerts).
    pub category: String,
    /// 1 to 5.
    pub severity: i64,
    /// Matched phrase or blocked domain.
    pub phrase: String,
    /// Bounded context.
    pub context: String,
    /// Language.
    pub language: Option<String>,
    /// Foreground application.
    pub application: Option<String>,
    /// Window title.
    pub window_title: Option<String>,
    /// Wordlist version.
    pub wordlist_version: Option<String>,
    /// Client address (DNS alerts).
    pub client_ip: Option<String>,
    /// The screenshot's content address, while it is kept.
    pub screenshot: Option<ScreenshotRef>,
    /// Why none was taken.
    pub no_screenshot_reason: Option<String>,
}

/// A screenshot's content address and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenshotRef {
    /// Hex SHA-256 of the image bytes: the file name.
    pub sha256: String,
    /// `png` or `webp`.
    pub format: String,
    /// Pixels.
    pub width: i64,
    /// Pixels.
    pub height: i64,
    /// File size.
    pub bytes: i64,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// Happened at or after.
    pub since: Option<Micros>,
    /// At most this many (newest last).
    pub limit: Option<u64>,
}

/// An identity lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Device that reported it.
    pub device: String,
    /// User.
    pub user: String,
    /// Group (maps to a tier).
    pub group: String,
    /// Addresses, comma-separated.
    pub addresses: String,
    /// Lapses then.
    pub expires: Micros,
    /// Last renewal.
    pub updated: Micros,
}

/// A policy revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// Monotonic revision.
    pub revision: i64,
    /// Hex SHA-256 of the text.
    pub sha256: String,
    /// The TOML policy document.
    pub policy_toml: String,
    /// Who made it (a user name, or `file:<path>`).
    pub author: String,
    /// Why.
    pub note: String,
    /// When.
    pub created: Micros,
}

/// An account of the review UI.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Sign-in name.
    pub name: String,
    /// Comma-separated roles (`admin`, `dsl`, `reviewer`, `head`, `governor`).
    pub roles: String,
    /// Comma-separated pupil groups a reviewer sees.
    pub groups: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The password is one-time and must be changed at first sign-in.
    pub must_change_password: bool,
    /// When.
    pub created: Micros,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    /// Alerts deleted.
    pub alerts: u64,
    /// Screenshot content addresses no alert refers to any more (their files must go too).
    pub screenshots: Vec<String>,
    /// Disclosure rows of users not seen for as long as alerts are kept.
    pub disclosures: u64,
}

/// Everything the collector stores. Implemented by [`sqlite::SqliteStore`] and
/// [`postgres::PostgresStore`]; the integration tests run the same suite against both.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs.
    fn backend(&self) -> &'static str;

    /// Records an enrolment token.
    fn add_token(&self, token: &NewToken) -> Result<()>;
    /// Spends one use of a token and records the device, in one transaction; nothing changes if the
    /// token does not work.
    fn enrol(
        &self,
        token_sha256: &str,
        now: Micros,
        device: &NewDevice,
    ) -> Result<std::result::Result<(), TokenProblem>>;

    /// The device holding this certificate, revoked or not.
    fn device_by_cert(&self, cert_sha256: &str) -> Result<Option<DeviceRecord>>;
    /// Every device, in id order.
    fn devices(&self) -> Result<Vec<DeviceRecord>>;
    /// Revokes a device; `false` if no such device.
    fn revoke_device(&self, id: &str, now: Micros) -> Result<bool>;
    /// Records a heartbeat and clears the silent flag; records each session's user (and notice
    /// showing) in the disclosure table and stores the heartbeat's device alerts, in the same
    /// transaction.
    fn record_heartbeat(&self, device: &str, heartbeat: &HeartbeatRecord) -> Result<()>;
    /// The disclosure table, by user then device.
    fn disclosures(&self) -> Result<Vec<DisclosureRecord>>;
    /// Forgets disclosure rows of users not seen since `before` (retention); returns how many.
    fn purge_disclosures(&self, before: Micros) -> Result<u64>;
    /// Flags a device silent and stores the alert that says so, in one transaction; `false` if it
    /// was already flagged.
    fn flag_silent(&self, device: &str, now: Micros, alert: &AlertRecord) -> Result<bool>;

    /// Stores alerts (and their screenshots' rows), skipping ids already held; returns how many were
    /// duplicates.
    fn insert_alerts(&self, alerts: &[AlertRecord]) -> Result<u32>;
    /// Lists alerts in time order.
    fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>>;
    /// How many alerts are stored.
    fn count_alerts(&self) -> Result<u64>;

    /// Stores or renews a lease (one per device and user).
    fn put_lease(&self, lease: &LeaseRecord) -> Result<()>;
    /// Every lease not yet expired at `now`.
    fn live_leases(&self, now: Micros) -> Result<Vec<LeaseRecord>>;

    /// The newest policy revision.
    fn latest_policy(&self) -> Result<Option<PolicyRecord>>;
    /// The newest policy revision's number only (cheap enough to poll: another collector of the
    /// trust may have stored one).
    fn policy_revision(&self) -> Result<Option<i64>>;
    /// Stores a new policy revision (one more than the newest) and returns it.
    fn add_policy(
        &self,
        policy_toml: &str,
        sha256: &str,
        author: &str,
        note: &str,
        now: Micros,
    ) -> Result<PolicyRecord>;

    /// Creates an account; [`StoreError::Conflict`] if the name is taken.
    fn add_user(&self, user: &NewUser) -> Result<()>;
    /// How many accounts exist.
    fn count_users(&self) -> Result<u64>;

    /// Deletes alerts by `rules`: `(Some(category), before)` deletes that category's alerts older
    /// than `before`; `(None, before)` does the same for every category not named in another rule.
    /// Then forgets screenshots of alerts before `screenshots_before`; returns what
    /// went, including screenshot addresses no longer referenced (the caller deletes their files).
    fn purge(
        &self,
        rules: &[(Option<String>, Micros)],
        screenshots_before: Micros,
        now: Micros,
    ) -> Result<Purged>;
}
