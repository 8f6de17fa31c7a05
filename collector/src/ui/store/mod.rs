//! What the review UI stores beyond the core records: sign-in state (lockout, TOTP, sessions), triage
//! notes, the append-only audit log, unblock requests from the block page, policy change proposals
//! awaiting approval, and the notifications sent. [`UiStore`] is the interface; its tables use the
//! portable SQL of the core migrations (integer times in microseconds, no backend-specific types).
//!
//! Two backends implement it, [`sqlite::SqliteUi`] and [`postgres::PostgresUi`], over one set of
//! statements (`sql`) and row readers (`rows`); [`open`] picks the one the collector's store uses.
//!
//! The audit log is a hash chain: each entry carries the SHA-256 of its predecessor and of itself, so
//! an edit or deletion made behind the collector's back shows on the audit page. The collector has no
//! code path that updates or deletes an entry, and on SQLite triggers refuse both.

use std::path::Path;
use std::sync::Arc;

use crate::config::Database;
use crate::store::{Micros, Result};

pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;

/// Opens the UI's store on the collector's database (SQLite: `ward.db` in `data_dir`), whose
/// migrations the core store has applied.
///
/// # Errors
/// The database cannot be opened or reached.
pub fn open(database: &Database, data_dir: &Path) -> Result<Arc<dyn UiStore>> {
    Ok(match database {
        Database::Sqlite => Arc::new(sqlite::SqliteUi::open(&data_dir.join("ward.db"))?),
        Database::Postgres(url) => Arc::new(postgres::PostgresUi::open(url)?),
    })
}

/// The UI tables, appended to the core migrations.
pub const MIGRATION: &str = r#"
CREATE TABLE ui_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE ui_account_security (
    user_name TEXT PRIMARY KEY,
    failures BIGINT NOT NULL DEFAULT 0,
    locked_until_us BIGINT,
    totp_secret TEXT,
    totp_enabled BIGINT NOT NULL DEFAULT 0,
    totp_last_step BIGINT
);
CREATE TABLE ui_sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    expires_us BIGINT NOT NULL,
    second_factor_done BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_user ON ui_sessions (user_name);
CREATE TABLE ui_triage_notes (
    alert_id TEXT NOT NULL,
    time_us BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX ui_triage_notes_by_alert ON ui_triage_notes (alert_id, time_us);
CREATE TABLE ui_audit (
    seq BIGINT PRIMARY KEY,
    time_us BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_sha256 TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX ui_audit_by_subject ON ui_audit (subject, seq);
CREATE TABLE ui_unblock_requests (
    id BIGINT PRIMARY KEY,
    time_us BIGINT NOT NULL,
    host TEXT NOT NULL,
    category TEXT NOT NULL,
    tier TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    user_name TEXT,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_us BIGINT,
    decision_note TEXT
);
CREATE INDEX ui_unblock_by_status ON ui_unblock_requests (status, time_us);
CREATE TABLE ui_policy_changes (
    id BIGINT PRIMARY KEY,
    time_us BIGINT NOT NULL,
    author TEXT NOT NULL,
    reason TEXT NOT NULL,
    base_revision BIGINT NOT NULL,
    policy_toml TEXT NOT NULL,
    diff TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_us BIGINT,
    revision BIGINT
);
CREATE TABLE ui_notifications (
    alert_id TEXT PRIMARY KEY,
    time_us BIGINT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX alerts_by_status_time ON alerts (status, time_us);
CREATE INDEX alerts_by_device_time ON alerts (device, time_us);
CREATE INDEX leases_by_user ON leases (user_name, updated_us);
"#;

/// Migration 3: a covering index so per-category counts over a million alerts read no table rows.
pub const MIGRATION_COUNTS: &str = "CREATE INDEX alerts_for_counts ON alerts (category, severity, status, source, user_name, time_us);";

/// An account with its sign-in state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Sign-in name.
    pub name: String,
    /// Comma-separated roles.
    pub roles: String,
    /// Comma-separated reviewer groups.
    pub groups: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The password is one-time.
    pub must_change_password: bool,
    /// Disabled accounts cannot sign in.
    pub disabled: bool,
    /// Consecutive failed sign-ins.
    pub failures: i64,
    /// Locked until then.
    pub locked_until: Option<Micros>,
    /// Base32 TOTP secret, once enrolment started.
    pub totp_secret: Option<String>,
    /// TOTP is confirmed and required at sign-in.
    pub totp_enabled: bool,
    /// The last TOTP step accepted (a code is good once).
    pub totp_last_step: Option<i64>,
}

/// A sign-in session (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hex SHA-256 of the cookie's token.
    pub token_sha256: String,
    /// Account.
    pub user: String,
    /// Created.
    pub created: Micros,
    /// Ends.
    pub expires: Micros,
    /// Whether the TOTP step is done (or not needed).
    pub second_factor_done: bool,
}

/// Which alerts a page lists: the viewer's filters and their role scope.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Happened at or after.
    pub since: Option<Micros>,
    /// Happened before.
    pub until: Option<Micros>,
    /// One category.
    pub category: Option<String>,
    /// At least this severity.
    pub min_severity: Option<i64>,
    /// One triage status (`new`, `false-positive`, ...).
    pub status: Option<String>,
    /// The person's group.
    pub group: Option<String>,
    /// One device.
    pub device: Option<String>,
    /// One person.
    pub user: Option<String>,
    /// Free text in phrase, context, window title, user or device.
    pub text: Option<String>,
    /// The viewer may see every non-staff person alert.
    pub scope_pupils_all: bool,
    /// ... or those of these groups.
    pub scope_pupil_groups: Vec<String>,
    /// ... and alerts about staff.
    pub scope_staff: bool,
    /// ... and device alerts.
    pub scope_device: bool,
    /// Groups whose members are staff.
    pub staff_groups: Vec<String>,
}

/// An alert as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiAlert {
    /// Id (UUID text).
    pub id: String,
    /// Device id.
    pub device: String,
    /// Host name of the device, when enrolled.
    pub hostname: Option<String>,
    /// The person.
    pub user: Option<String>,
    /// The person's group from their newest identity lease.
    pub group: Option<String>,
    /// When.
    pub time: Micros,
    /// `keyboard`, `window-title`, `dns`, `device`.
    pub source: String,
    /// Category.
    pub category: String,
    /// 1 to 5.
    pub severity: i64,
    /// Matched phrase.
    pub phrase: String,
    /// Context as typed.
    pub context: String,
    /// Application.
    pub application: Option<String>,
    /// Window title.
    pub window_title: Option<String>,
    /// Client address (DNS).
    pub client_ip: Option<String>,
    /// Screenshot content address.
    pub screenshot_sha256: Option<String>,
    /// Screenshot format.
    pub screenshot_format: Option<String>,
    /// Why none.
    pub no_screenshot_reason: Option<String>,
    /// Triage status.
    pub status: String,
}

/// A note recorded with a triage decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriageNote {
    /// When.
    pub time: Micros,
    /// Who.
    pub user: String,
    /// Status set.
    pub status: String,
    /// Their note.
    pub note: String,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When.
    pub time: Micros,
    /// Who (account name, or `block-page` for anonymous requests).
    pub actor: String,
    /// What, e.g. `alert.view`, `screenshot.view`, `alert.triage`.
    pub action: String,
    /// On what (an alert id, a user name, a policy change).
    pub subject: String,
    /// Details (status and note for triage, ...).
    pub detail: String,
    /// Hash of the previous entry (64 zeros for the first).
    pub prev_sha256: String,
    /// Hash of this entry.
    pub sha256: String,
}

/// A request to review a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnblockRequest {
    /// Number.
    pub id: i64,
    /// When.
    pub time: Micros,
    /// The blocked name.
    pub host: String,
    /// Its category.
    pub category: String,
    /// The requester's tier.
    pub tier: String,
    /// Requester's address.
    pub client_ip: String,
    /// Requester, from identity leases.
    pub user: Option<String>,
    /// Why they need it.
    pub reason: String,
    /// `open`, `allowed`, `refused`.
    pub status: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided: Option<Micros>,
    /// Why.
    pub decision_note: Option<String>,
}

/// A proposed filter policy change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    /// Number.
    pub id: i64,
    /// When proposed.
    pub time: Micros,
    /// Who proposed.
    pub author: String,
    /// Why.
    pub reason: String,
    /// The revision it was written against.
    pub base_revision: i64,
    /// The full new document.
    pub policy_toml: String,
    /// Unified diff against the base.
    pub diff: String,
    /// `pending`, `applied`, `rejected`.
    pub status: String,
    /// Who approved or rejected.
    pub decided_by: Option<String>,
    /// When.
    pub decided: Option<Micros>,
    /// The policy revision it became.
    pub revision: Option<i64>,
}

/// Alerts per period and category, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodCount {
    /// Period index (e.g. weeks since the report start).
    pub period: i64,
    /// Category.
    pub category: String,
    /// How many.
    pub count: i64,
}

/// Phrases marked false positive, for the suggested suppressions page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseStats {
    /// The wordlist entry.
    pub phrase: String,
    /// Its category.
    pub category: String,
    /// Alerts marked false positive.
    pub false_positives: i64,
    /// Alerts triaged in total.
    pub triaged: i64,
}

/// Storage for the review UI.
pub trait UiStore: Send + Sync + 'static {
    /// The UI's HMAC key, created from `fresh` on first use (shared by every collector of a trust).
    fn ui_key(&self, fresh: &str) -> Result<String>;
    /// A small named value (e.g. when the last digest went).
    fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Sets a small named value.
    fn set_meta(&self, key: &str, value: &str) -> Result<()>;
    /// Sets a small named value only if it still holds `old` (`None`: unset); `true` if this call
    /// set it. Collectors of a trust use it to agree which of them does a once-only task.
    fn swap_meta(&self, key: &str, old: Option<&str>, new: &str) -> Result<bool>;

    /// One account with its sign-in state.
    fn account(&self, name: &str) -> Result<Option<AccountRecord>>;
    /// Every account, by name.
    fn accounts(&self) -> Result<Vec<AccountRecord>>;
    /// Records a failed sign-in.
    fn sign_in_failed(&self, name: &str, failures: i64, locked_until: Option<Micros>)
        -> Result<()>;
    /// Clears the failure count.
    fn sign_in_succeeded(&self, name: &str) -> Result<()>;
    /// Sets a password hash; clears lockout. `one_time` forces a change at next sign-in.
    fn set_password(&self, name: &str, hash: &str, one_time: bool) -> Result<()>;
    /// Starts (secret, not enabled), confirms (enabled) or removes (None) TOTP.
    fn set_totp(&self, name: &str, secret: Option<&str>, enabled: bool) -> Result<()>;
    /// Records the TOTP step just accepted.
    fn totp_used(&self, name: &str, step: i64) -> Result<()>;
    /// Changes roles and groups.
    fn set_roles(&self, name: &str, roles: &str, groups: &str) -> Result<()>;
    /// Disables or re-enables an account.
    fn set_disabled(&self, name: &str, disabled: Option<Micros>) -> Result<()>;

    /// Stores a new session.
    fn create_session(&self, session: &SessionRecord) -> Result<()>;
    /// A live session by token hash.
    fn session(&self, token_sha256: &str, now: Micros) -> Result<Option<SessionRecord>>;
    /// Marks the second factor done.
    fn session_second_factor_done(&self, token_sha256: &str) -> Result<()>;
    /// Ends one session.
    fn delete_session(&self, token_sha256: &str) -> Result<()>;
    /// Ends every session of an account (password reset, disable).
    fn delete_user_sessions(&self, name: &str) -> Result<()>;

    /// Alerts matching a filter, newest first.
    fn queue(&self, filter: &AlertFilter, limit: u32) -> Result<Vec<UiAlert>>;
    /// Alerts matching a filter, per category.
    fn category_counts(&self, filter: &AlertFilter) -> Result<Vec<(String, i64)>>;
    /// One alert.
    fn alert(&self, id: &str) -> Result<Option<UiAlert>>;
    /// Sets the status of alerts and records the note on each; returns how many changed.
    fn triage(
        &self,
        ids: &[String],
        status: &str,
        note: &str,
        by: &str,
        now: Micros,
    ) -> Result<usize>;
    /// Triage notes of one alert, oldest first.
    fn triage_notes(&self, id: &str) -> Result<Vec<TriageNote>>;
    /// Phrases with false positives since a time, most first.
    fn false_positive_phrases(&self, since: Micros) -> Result<Vec<PhraseStats>>;

    /// Appends an audit entry to the chain and returns it.
    fn append_audit(
        &self,
        time: Micros,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<AuditRecord>;
    /// Newest entries first, optionally for one subject.
    fn audit(&self, subject: Option<&str>, limit: u32) -> Result<Vec<AuditRecord>>;
    /// Every entry in chain order (for verification).
    fn audit_chain(&self) -> Result<Vec<AuditRecord>>;

    /// Records an unblock request; returns its number.
    #[allow(clippy::too_many_arguments)]
    fn add_unblock_request(
        &self,
        time: Micros,
        host: &str,
        category: &str,
        tier: &str,
        client_ip: &str,
        user: Option<&str>,
        reason: &str,
    ) -> Result<i64>;
    /// Requests, newest first; `open` only when asked.
    fn unblock_requests(&self, open_only: bool, limit: u32) -> Result<Vec<UnblockRequest>>;
    /// Decides a request.
    fn decide_unblock(
        &self,
        id: i64,
        status: &str,
        by: &str,
        note: &str,
        now: Micros,
    ) -> Result<bool>;

    /// Records a proposed policy change; returns its number.
    fn propose_policy(&self, change: &PolicyChange) -> Result<i64>;
    /// Changes, newest first.
    fn policy_changes(&self, limit: u32) -> Result<Vec<PolicyChange>>;
    /// One change.
    fn policy_change(&self, id: i64) -> Result<Option<PolicyChange>>;
    /// Marks a change applied (with its revision) or rejected.
    fn decide_policy_change(
        &self,
        id: i64,
        status: &str,
        by: &str,
        revision: Option<i64>,
        now: Micros,
    ) -> Result<bool>;

    /// Alerts per period and category since `start`, `period` microseconds wide; DNS-born alerts
    /// (blocked attempts) when `dns`, otherwise the safeguarding alerts from workstations (not the
    /// alerts about devices themselves, which the report counts as device coverage).
    fn period_counts(&self, start: Micros, period: Micros, dns: bool) -> Result<Vec<PeriodCount>>;

    /// Records a notification for an alert; `false` if one already was. The notifier records
    /// `sending` first, as its claim, so of several collectors only one sends.
    fn record_notification(&self, alert_id: &str, now: Micros, outcome: &str) -> Result<bool>;
    /// Replaces a claimed notification's outcome once it was attempted.
    fn finish_notification(&self, alert_id: &str, now: Micros, outcome: &str) -> Result<()>;
    /// Forgets claims still `sending` from before `before` (their collector stopped mid-send), so
    /// those alerts are notified again; returns how many.
    fn release_stale_notifications(&self, before: Micros) -> Result<u64>;
    /// Severity-5 alerts stored since `since` that no notification has covered yet.
    fn unnotified_urgent(&self, since: Micros) -> Result<Vec<String>>;
}

/// The hash of an audit entry: SHA-256 over its fields and its predecessor's hash, length-prefixed.
pub fn audit_hash(
    prev: &str,
    seq: i64,
    time: Micros,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        prev.as_bytes(),
        &seq.to_be_bytes(),
        &time.to_be_bytes(),
        actor.as_bytes(),
        action.as_bytes(),
        subject.as_bytes(),
        detail.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// The entry that follows `seq` (whose hash is `prev`) in the chain.
fn next_audit(
    seq: i64,
    prev: String,
    time: Micros,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> AuditRecord {
    let seq = seq + 1;
    let sha256 = audit_hash(&prev, seq, time, actor, action, subject, detail);
    AuditRecord {
        seq,
        time,
        actor: actor.into(),
        action: action.into(),
        subject: subject.into(),
        detail: detail.into(),
        prev_sha256: prev,
        sha256,
    }
}

/// The first entry's predecessor hash.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first entry whose hash or link does not hold, if any.
pub fn verify_audit_chain(entries: &[AuditRecord]) -> Option<i64> {
    let mut prev = AUDIT_GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected = audit_hash(
            &prev, e.seq, e.time, &e.actor, &e.action, &e.subject, &e.detail,
        );
        if e.seq != i as i64 + 1 || e.prev_sha256 != prev || e.sha256 != expected {
            return Some(e.seq);
        }
        prev = e.sha256.clone();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = AUDIT_GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let sha256 = audit_hash(&prev, seq, seq * 10, "dsl", "alert.view", "a1", "");
                let record = AuditRecord {
                    seq,
                    time: seq * 10,
                    actor: "dsl".into(),
                    action: "alert.view".into(),
                    subject: "a1".into(),
                    detail: String::new(),
                    prev_sha256: prev.clone(),
                    sha256: sha256.clone(),
                };
                prev = sha256;
                record
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_audit_chain(&chain(5)), None);
        assert_eq!(verify_audit_chain(&[]), None);
    }

    #[test]
    fn edits_deletions_and_rewrites_are_found() {
        let mut edited = chain(5);
        edited[2].actor = "someone else".into();
        assert_eq!(verify_audit_chain(&edited), Some(3));

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(verify_audit_chain(&deleted), Some(3));

        // Rewriting one entry with a fresh hash still breaks its successor's link.
        let mut rewritten = chain(5);
        rewritten[1].detail = "changed".into();
        rewritten[1].sha256 = audit_hash(
            &rewritten[1].prev_sha256,
            2,
            20,
            "dsl",
            "alert.view",
            "a1",
            "changed",
        );
        assert_eq!(verify_audit_chain(&rewritten), Some(3));
    }
}
