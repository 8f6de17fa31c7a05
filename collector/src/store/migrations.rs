//! The schema, as an append-only list of migrations in SQL that SQLite and PostgreSQL both accept
//! (no AUTOINCREMENT/SERIAL, no BLOB/BYTEA, integers for times and flags). A database records how
//! many it has applied; start-up applies the rest, each in its own transaction. Never edit a
//! migration that has shipped: add one.

/// Every migration, in order.
pub const MIGRATIONS: &[&str] = &[
    // 1: enrolment, devices, alerts with content-addressed screenshots, leases, policy, accounts.
    r#"
CREATE TABLE enrolment_tokens (
    token_sha256 TEXT PRIMARY KEY,
    uses_left BIGINT NOT NULL,
    expires_us BIGINT,
    created_us BIGINT NOT NULL
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    cert_sha256 TEXT NOT NULL UNIQUE,
    cert_serial TEXT NOT NULL,
    hostname TEXT NOT NULL,
    os TEXT NOT NULL,
    program_version TEXT NOT NULL,
    enrolled_us BIGINT NOT NULL,
    revoked_us BIGINT,
    last_heartbeat_us BIGINT,
    last_ip TEXT,
    wordlist_version TEXT,
    spool_depth BIGINT NOT NULL DEFAULT 0,
    spool_dropped BIGINT NOT NULL DEFAULT 0,
    silent_since_us BIGINT,
    dead_helpers TEXT
);
CREATE TABLE screenshots (
    sha256 TEXT PRIMARY KEY,
    format TEXT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    stored_us BIGINT NOT NULL
);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    user_name TEXT,
    time_us BIGINT NOT NULL,
    received_us BIGINT NOT NULL,
    source TEXT NOT NULL,
    category TEXT NOT NULL,
    severity BIGINT NOT NULL,
    phrase TEXT NOT NULL,
    context TEXT NOT NULL,
    language TEXT,
    application TEXT,
    window_title TEXT,
    wordlist_version TEXT,
    client_ip TEXT,
    screenshot_sha256 TEXT,
    no_screenshot_reason TEXT,
    status TEXT NOT NULL DEFAULT 'new'
);
CREATE INDEX alerts_by_time ON alerts (time_us);
CREATE INDEX alerts_by_category_time ON alerts (category, time_us);
CREATE INDEX alerts_by_screenshot ON alerts (screenshot_sha256);
CREATE INDEX alerts_by_user_time ON alerts (user_name, time_us);
CREATE TABLE leases (
    device TEXT NOT NULL,
    user_name TEXT NOT NULL,
    group_name TEXT NOT NULL,
    addresses TEXT NOT NULL,
    expires_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    PRIMARY KEY (device, user_name)
);
CREATE INDEX leases_by_expiry ON leases (expires_us);
CREATE TABLE policies (
    revision BIGINT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    policy_toml TEXT NOT NULL,
    author TEXT NOT NULL,
    note TEXT NOT NULL,
    created_us BIGINT NOT NULL
);
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    roles TEXT NOT NULL,
    groups_csv TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BIGINT NOT NULL,
    created_us BIGINT NOT NULL,
    disabled_us BIGINT
);
"#,
    // 2: the review UI's tables (sessions, audit chain, triage notes, unblock requests, policy
    //    change control) and the indexes its queue needs.
    crate::ui::store::MIGRATION,
    // 3: a covering index for the review UI's per-category counts.
    crate::ui::store::MIGRATION_COUNTS,
    // 4: disclosure: per user and device, when they were seen in a monitored session and when the
    //    monitoring notice was last shown to them (and which text, by its SHA-256).
    r#"
CREATE TABLE disclosures (
    user_name TEXT NOT NULL,
    device TEXT NOT NULL,
    first_seen_us BIGINT NOT NULL,
    last_seen_us BIGINT NOT NULL,
    shown_us BIGINT,
    notice_sha256 TEXT,
    PRIMARY KEY (user_name, device)
);
CREATE INDEX disclosures_by_last_seen ON disclosures (last_seen_us);
"#,
    // 5: device alerts raised before they took a category of the shared vocabulary (`device` was
    //    not one) file under the tamper category, `hacking` (see `ward_protocol::Category::TAMPER`).
    "UPDATE alerts SET category = 'hacking' WHERE source = 'device' AND category = 'device';",
];
