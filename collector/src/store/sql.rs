//! SQL text shared by both backends. Placeholders are `$1`, `$2`, ... in order of first use, which
//! PostgreSQL reads natively and SQLite reads as numbered named parameters bound by position.

pub const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_us BIGINT NOT NULL)";
pub const APPLIED_MIGRATIONS: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
pub const RECORD_MIGRATION: &str =
    "INSERT INTO schema_migrations (version, applied_us) VALUES ($1, $2)";

pub const ADD_TOKEN: &str = "INSERT INTO enrolment_tokens (token_sha256, uses_left, expires_us, created_us) VALUES ($1, $2, $3, $4)";
pub const TOKEN: &str =
    "SELECT uses_left, expires_us FROM enrolment_tokens WHERE token_sha256 = $1";
pub const SPEND_TOKEN: &str =
    "UPDATE enrolment_tokens SET uses_left = uses_left - 1 WHERE token_sha256 = $1 AND uses_left > 0";

pub const ADD_DEVICE: &str = "INSERT INTO devices (id, kind, cert_sha256, cert_serial, hostname, os, program_version, enrolled_us, last_ip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const DEVICE_COLUMNS: &str = "id, kind, cert_sha256, hostname, os, program_version, enrolled_us, revoked_us, last_heartbeat_us, last_ip, wordlist_version, spool_depth, spool_dropped, silent_since_us, dead_helpers";
pub fn device_by_cert() -> String {
    format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE cert_sha256 = $1")
}
pub fn devices() -> String {
    format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id")
}
pub const REVOKE_DEVICE: &str =
    "UPDATE devices SET revoked_us = COALESCE(revoked_us, $1) WHERE id = $2";
pub const HEARTBEAT: &str = "UPDATE devices SET last_heartbeat_us = $1, last_ip = $2, hostname = $3, os = $4, program_version = $5, wordlist_version = $6, spool_depth = $7, spool_dropped = spool_dropped + $8, dead_helpers = $9, silent_since_us = NULL WHERE id = $10";
/// One user seen in a heartbeat's sessions. Times only move forward: a heartbeat that arrives late
/// (or repeats an older showing) never replaces a newer notice time or its text's hash.
pub const SEE_SESSION: &str = "INSERT INTO disclosures (user_name, device, first_seen_us, last_seen_us, shown_us, notice_sha256) VALUES ($1, $2, $3, $3, $4, $5) ON CONFLICT (user_name, device) DO UPDATE SET \
    last_seen_us = CASE WHEN excluded.last_seen_us > disclosures.last_seen_us THEN excluded.last_seen_us ELSE disclosures.last_seen_us END, \
    notice_sha256 = CASE WHEN excluded.shown_us IS NOT NULL AND (disclosures.shown_us IS NULL OR excluded.shown_us > disclosures.shown_us) THEN excluded.notice_sha256 ELSE disclosures.notice_sha256 END, \
    shown_us = CASE WHEN excluded.shown_us IS NOT NULL AND (disclosures.shown_us IS NULL OR excluded.shown_us > disclosures.shown_us) THEN excluded.shown_us ELSE disclosures.shown_us END";
pub const DISCLOSURES: &str = "SELECT user_name, device, first_seen_us, last_seen_us, shown_us, notice_sha256 FROM disclosures ORDER BY user_name, device";
pub const PURGE_DISCLOSURES: &str = "DELETE FROM disclosures WHERE last_seen_us < $1";
pub const FLAG_SILENT: &str =
    "UPDATE devices SET silent_since_us = $1 WHERE id = $2 AND silent_since_us IS NULL";

pub const ADD_SCREENSHOT: &str = "INSERT INTO screenshots (sha256, format, width, height, bytes, stored_us) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING";
pub const ADD_ALERT: &str = "INSERT INTO alerts (id, device, user_name, time_us, received_us, source, category, severity, phrase, context, language, application, window_title, wordlist_version, client_ip, screenshot_sha256, no_screenshot_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (id) DO NOTHING";
pub const ALERTS: &str = "SELECT a.id, a.device, a.user_name, a.time_us, a.received_us, a.source, a.category, a.severity, a.phrase, a.context, a.language, a.application, a.window_title, a.wordlist_version, a.client_ip, a.no_screenshot_reason, s.sha256, s.format, s.width, s.height, s.bytes FROM alerts a LEFT JOIN screenshots s ON s.sha256 = a.screenshot_sha256 WHERE a.time_us >= $1 ORDER BY a.time_us, a.id LIMIT $2";
pub const COUNT_ALERTS: &str = "SELECT COUNT(*) FROM alerts";

pub const PUT_LEASE: &str = "INSERT INTO leases (device, user_name, group_name, addresses, expires_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device, user_name) DO UPDATE SET group_name = excluded.group_name, addresses = excluded.addresses, expires_us = excluded.expires_us, updated_us = excluded.updated_us";
pub const LIVE_LEASES: &str = "SELECT device, user_name, group_name, addresses, expires_us, updated_us FROM leases WHERE expires_us > $1 ORDER BY device, user_name";
pub const DROP_EXPIRED_LEASES: &str = "DELETE FROM leases WHERE expires_us <= $1";

pub const POLICY_REVISION: &str = "SELECT MAX(revision) FROM policies";
pub const LATEST_POLICY: &str = "SELECT revision, sha256, policy_toml, author, note, created_us FROM policies ORDER BY revision DESC LIMIT 1";
pub const ADD_POLICY: &str = "INSERT INTO policies (revision, sha256, policy_toml, author, note, created_us) SELECT COALESCE(MAX(revision), 0) + 1, CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS BIGINT) FROM policies";

pub const ADD_USER: &str = "INSERT INTO users (name, roles, groups_csv, password_hash, must_change_password, created_us) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING";
pub const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";

pub const PURGE_CATEGORY: &str = "DELETE FROM alerts WHERE category = $1 AND time_us < $2";
pub const DETACH_SCREENSHOTS: &str = "UPDATE alerts SET screenshot_sha256 = NULL, no_screenshot_reason = 'screenshot removed by the retention policy' WHERE screenshot_sha256 IS NOT NULL AND time_us < $1";
pub const ORPHAN_SCREENSHOTS: &str = "SELECT sha256 FROM screenshots s WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.screenshot_sha256 = s.sha256) AND s.stored_us < $1";
pub const DELETE_SCREENSHOT: &str = "DELETE FROM screenshots WHERE sha256 = $1";

/// `DELETE` of alerts before a time in every category not in `named` (bound as `$2`, `$3`, ...).
pub fn purge_other_categories(named: usize) -> String {
    if named == 0 {
        return "DELETE FROM alerts WHERE time_us < $1".into();
    }
    let list = (0..named)
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    format!("DELETE FROM alerts WHERE time_us < $1 AND category NOT IN ({list})")
}
