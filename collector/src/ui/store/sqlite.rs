//! [`UiStore`] on SQLite: its own connection to the collector's database file (WAL lets it read while
//! ingest writes), so a slow report never holds the ingest path's connection.
//!
//! Parameters are written `?N` (SQLite's numbered parameters, bound by number whatever the order
//! they appear in).
//!
//! The append-only rule for the audit log is also enforced by the database: triggers refuse any
//! UPDATE or DELETE on `ui_audit`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::*;
use crate::store::{Micros, Result, StoreError};

/// Triggers that make the audit table append-only (SQLite syntax; run at open, idempotent).
const APPEND_ONLY: &str = "
CREATE TRIGGER IF NOT EXISTS ui_audit_no_update BEFORE UPDATE ON ui_audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ui_audit_no_delete BEFORE DELETE ON ui_audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// The UI's store over one SQLite connection.
pub struct SqliteUi {
    conn: Mutex<Connection>,
}

impl SqliteUi {
    /// Opens the collector's database (its migrations, including [`MIGRATION`], already applied).
    ///
    /// # Errors
    /// The file cannot be opened or the UI tables are missing.
    pub fn open(path: &Path) -> Result<SqliteUi> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(APPEND_ONLY)?;
        Ok(SqliteUi {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(StoreError::from)
    }
}

const ACCOUNT: &str = "SELECT u.name, u.roles, u.groups_csv, u.password_hash, u.must_change_password, \
    u.disabled_us, COALESCE(s.failures, 0), s.locked_until_us, s.totp_secret, COALESCE(s.totp_enabled, 0), \
    s.totp_last_step FROM users u LEFT JOIN ui_account_security s ON s.user_name = u.name";

fn account_row(row: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        name: row.get(0)?,
        roles: row.get(1)?,
        groups: row.get(2)?,
        password_hash: row.get(3)?,
        must_change_password: row.get::<_, i64>(4)? != 0,
        disabled: row.get::<_, Option<i64>>(5)?.is_some(),
        failures: row.get(6)?,
        locked_until: row.get(7)?,
        totp_secret: row.get(8)?,
        totp_enabled: row.get::<_, i64>(9)? != 0,
        totp_last_step: row.get(10)?,
    })
}

const ENSURE_SECURITY: &str =
    "INSERT INTO ui_account_security (user_name) VALUES (?1) ON CONFLICT (user_name) DO NOTHING";

/// The person's group: from their newest identity lease.
const GROUP: &str = "(SELECT l.group_name FROM leases l WHERE l.user_name = a.user_name \
    ORDER BY l.updated_us DESC LIMIT 1)";

const ALERT_COLUMNS: &str = "a.id, a.device, d.hostname, a.user_name, a.time_us, a.source, a.category, \
    a.severity, a.phrase, a.context, a.application, a.window_title, a.client_ip, a.screenshot_sha256, \
    s.format, a.no_screenshot_reason, a.status";

const ALERT_FROM: &str = "FROM alerts a LEFT JOIN devices d ON d.id = a.device \
    LEFT JOIN screenshots s ON s.sha256 = a.screenshot_sha256";

fn alert_row(row: &Row<'_>) -> rusqlite::Result<UiAlert> {
    Ok(UiAlert {
        id: row.get(0)?,
        device: row.get(1)?,
        hostname: row.get(2)?,
        user: row.get(3)?,
        time: row.get(4)?,
        source: row.get(5)?,
        category: row.get(6)?,
        severity: row.get(7)?,
        phrase: row.get(8)?,
        context: row.get(9)?,
        application: row.get(10)?,
        window_title: row.get(11)?,
        client_ip: row.get(12)?,
        screenshot_sha256: row.get(13)?,
        screenshot_format: row.get(14)?,
        no_screenshot_reason: row.get(15)?,
        status: row.get(16)?,
        group: row.get(17)?,
    })
}

/// A WHERE clause under construction with numbered placeholders.
struct Where {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Where {
    fn new() -> Where {
        Where {
            clauses: Vec::new(),
            values: Vec::new(),
        }
    }

    fn bind(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("?{}", self.values.len())
    }

    fn list(&mut self, items: &[String]) -> String {
        if items.is_empty() {
            return "(NULL)".into();
        }
        let names: Vec<String> = items
            .iter()
            .map(|i| self.bind(Value::Text(i.clone())))
            .collect();
        format!("({})", names.join(", "))
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The WHERE clause for a filter. `for_listing` steers SQLite's choice of index for a listing in time
/// order: with a status, the status index (few new alerts) rather than the category one; severity is
/// never the driving index there (a unary `+` keeps an index off a term). Counts take the covering
/// index instead, so they see every term.
fn filter_where(filter: &AlertFilter, for_listing: bool) -> Where {
    let mut w = Where::new();
    let flag = |b: bool| if b { "1" } else { "0" };
    // People are sorted into staff and groups by their identity leases. The sets are uncorrelated
    // subqueries, which SQLite builds once per statement, so the scope costs one look-up per row.
    let staff = w.list(&filter.staff_groups);
    let groups = w.list(&filter.scope_pupil_groups);
    let staff_set = format!("(SELECT l.user_name FROM leases l WHERE l.group_name IN {staff})");
    let group_set = format!("(SELECT l.user_name FROM leases l WHERE l.group_name IN {groups})");
    w.clauses.push(format!(
        "((a.source = 'device' AND {device}) OR (a.source <> 'device' AND \
         ((a.user_name IN {staff_set} AND {staff_ok}) OR \
          ((a.user_name IS NULL OR a.user_name NOT IN {staff_set}) AND ({all} OR a.user_name IN {group_set})))))",
        device = flag(filter.scope_device),
        staff_ok = flag(filter.scope_staff),
        all = flag(filter.scope_pupils_all),
    ));
    if let Some(since) = filter.since {
        let p = w.bind(Value::Integer(since));
        w.clauses.push(format!("a.time_us >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = w.bind(Value::Integer(until));
        w.clauses.push(format!("a.time_us < {p}"));
    }
    let category = if for_listing && filter.status.is_some() {
        "+a.category"
    } else {
        "a.category"
    };
    for (column, value) in [
        (category, &filter.category),
        ("a.status", &filter.status),
        ("a.device", &filter.device),
        ("a.user_name", &filter.user),
    ] {
        if let Some(value) = value {
            let p = w.bind(Value::Text(value.clone()));
            w.clauses.push(format!("{column} = {p}"));
        }
    }
    if let Some(group) = &filter.group {
        let p = w.bind(Value::Text(group.clone()));
        w.clauses.push(format!(
            "a.user_name IN (SELECT l.user_name FROM leases l WHERE l.group_name = {p})"
        ));
    }
    if let Some(min) = filter.min_severity {
        let p = w.bind(Value::Integer(min));
        let severity = if for_listing {
            "+a.severity"
        } else {
            "a.severity"
        };
        w.clauses.push(format!("{severity} >= {p}"));
    }
    if let Some(text) = &filter.text {
        let p = w.bind(Value::Text(like_pattern(text)));
        w.clauses.push(format!(
            "(a.phrase LIKE {p} ESCAPE '\\' OR a.context LIKE {p} ESCAPE '\\' OR \
             a.window_title LIKE {p} ESCAPE '\\' OR a.user_name LIKE {p} ESCAPE '\\' OR \
             a.device LIKE {p} ESCAPE '\\')"
        ));
    }
    w
}

const AUDIT_COLUMNS: &str = "seq, time_us, actor, action, subject, detail, prev_sha256, sha256";

fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.get(0)?,
        time: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        subject: row.get(4)?,
        detail: row.get(5)?,
        prev_sha256: row.get(6)?,
        sha256: row.get(7)?,
    })
}

const UNBLOCK_COLUMNS: &str =
    "id, time_us, host, category, tier, client_ip, user_name, reason, status, \
    decided_by, decided_us, decision_note";

fn unblock_row(row: &Row<'_>) -> rusqlite::Result<UnblockRequest> {
    Ok(UnblockRequest {
        id: row.get(0)?,
        time: row.get(1)?,
        host: row.get(2)?,
        category: row.get(3)?,
        tier: row.get(4)?,
        client_ip: row.get(5)?,
        user: row.get(6)?,
        reason: row.get(7)?,
        status: row.get(8)?,
        decided_by: row.get(9)?,
        decided: row.get(10)?,
        decision_note: row.get(11)?,
    })
}

const CHANGE_COLUMNS: &str =
    "id, time_us, author, reason, base_revision, policy_toml, diff, status, \
    decided_by, decided_us, revision";

fn change_row(row: &Row<'_>) -> rusqlite::Result<PolicyChange> {
    Ok(PolicyChange {
        id: row.get(0)?,
        time: row.get(1)?,
        author: row.get(2)?,
        reason: row.get(3)?,
        base_revision: row.get(4)?,
        policy_toml: row.get(5)?,
        diff: row.get(6)?,
        status: row.get(7)?,
        decided_by: row.get(8)?,
        decided: row.get(9)?,
        revision: row.get(10)?,
    })
}

impl UiStore for SqliteUi {
    fn ui_key(&self, fresh: &str) -> Result<String> {
        self.with(|c| {
            c.execute(
                "INSERT INTO ui_meta (key, value) VALUES ('ui_key', ?1) ON CONFLICT (key) DO NOTHING",
                params![fresh],
            )?;
            c.query_row("SELECT value FROM ui_meta WHERE key = 'ui_key'", [], |r| r.get(0))
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM ui_meta WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO ui_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    fn account(&self, name: &str) -> Result<Option<AccountRecord>> {
        self.with(|c| {
            c.prepare_cached(&format!("{ACCOUNT} WHERE u.name = ?1"))?
                .query_row(params![name], account_row)
                .optional()
        })
    }

    fn accounts(&self) -> Result<Vec<AccountRecord>> {
        self.with(|c| {
            c.prepare_cached(&format!("{ACCOUNT} ORDER BY u.name"))?
                .query_map([], account_row)?
                .collect()
        })
    }

    fn sign_in_failed(
        &self,
        name: &str,
        failures: i64,
        locked_until: Option<Micros>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(ENSURE_SECURITY, params![name])?;
            c.execute(
                "UPDATE ui_account_security SET failures = ?2, locked_until_us = ?3 WHERE user_name = ?1",
                params![name, failures, locked_until],
            )?;
            Ok(())
        })
    }

    fn sign_in_succeeded(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE ui_account_security SET failures = 0, locked_until_us = NULL WHERE user_name = ?1",
                params![name],
            )?;
            Ok(())
        })
    }

    fn set_password(&self, name: &str, hash: &str, one_time: bool) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE users SET password_hash = ?2, must_change_password = ?3 WHERE name = ?1",
                params![name, hash, one_time as i64],
            )?;
            tx.execute(ENSURE_SECURITY, params![name])?;
            tx.execute(
                "UPDATE ui_account_security SET failures = 0, locked_until_us = NULL WHERE user_name = ?1",
                params![name],
            )?;
            tx.commit()
        })
    }

    fn set_totp(&self, name: &str, secret: Option<&str>, enabled: bool) -> Result<()> {
        self.with(|c| {
            c.execute(ENSURE_SECURITY, params![name])?;
            c.execute(
                "UPDATE ui_account_security SET totp_secret = ?2, totp_enabled = ?3, totp_last_step = NULL \
                 WHERE user_name = ?1",
                params![name, secret, enabled as i64],
            )?;
            Ok(())
        })
    }

    fn totp_used(&self, name: &str, step: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE ui_account_security SET totp_last_step = ?2 WHERE user_name = ?1",
                params![name, step],
            )?;
            Ok(())
        })
    }

    fn set_roles(&self, name: &str, roles: &str, groups: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET roles = ?2, groups_csv = ?3 WHERE name = ?1",
                params![name, roles, groups],
            )?;
            Ok(())
        })
    }

    fn set_disabled(&self, name: &str, disabled: Option<Micros>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET disabled_us = ?2 WHERE name = ?1",
                params![name, disabled],
            )?;
            Ok(())
        })
    }

    fn create_session(&self, s: &SessionRecord) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO ui_sessions (token_sha256, user_name, created_us, expires_us, second_factor_done) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.token_sha256, s.user, s.created, s.expires, s.second_factor_done as i64],
            )?;
            // Expired sessions are of no use to anyone; drop them as new ones start.
            c.execute("DELETE FROM ui_sessions WHERE expires_us < ?1", params![s.created])?;
            Ok(())
        })
    }

    fn session(&self, token_sha256: &str, now: Micros) -> Result<Option<SessionRecord>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT token_sha256, user_name, created_us, expires_us, second_factor_done FROM ui_sessions \
                 WHERE token_sha256 = ?1 AND expires_us > ?2",
            )?
            .query_row(params![token_sha256, now], |r| {
                Ok(SessionRecord {
                    token_sha256: r.get(0)?,
                    user: r.get(1)?,
                    created: r.get(2)?,
                    expires: r.get(3)?,
                    second_factor_done: r.get::<_, i64>(4)? != 0,
                })
            })
            .optional()
        })
    }

    fn session_second_factor_done(&self, token_sha256: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE ui_sessions SET second_factor_done = 1 WHERE token_sha256 = ?1",
                params![token_sha256],
            )?;
            Ok(())
        })
    }

    fn delete_session(&self, token_sha256: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM ui_sessions WHERE token_sha256 = ?1",
                params![token_sha256],
            )?;
            Ok(())
        })
    }

    fn delete_user_sessions(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM ui_sessions WHERE user_name = ?1",
                params![name],
            )?;
            Ok(())
        })
    }

    fn queue(&self, filter: &AlertFilter, limit: u32) -> Result<Vec<UiAlert>> {
        let mut w = filter_where(filter, true);
        let limit = w.bind(Value::Integer(limit.into()));
        let sql = format!(
            "SELECT {ALERT_COLUMNS}, {GROUP} {ALERT_FROM} {} ORDER BY a.time_us DESC, a.id LIMIT {limit}",
            w.sql()
        );
        self.with(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(w.values.iter()), alert_row)?
                .collect()
        })
    }

    fn category_counts(&self, filter: &AlertFilter) -> Result<Vec<(String, i64)>> {
        let w = filter_where(filter, false);
        let sql = format!(
            "SELECT a.category, COUNT(*) FROM alerts a {} GROUP BY a.category ORDER BY COUNT(*) DESC, a.category",
            w.sql()
        );
        self.with(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(w.values.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
        })
    }

    fn alert(&self, id: &str) -> Result<Option<UiAlert>> {
        let sql = format!("SELECT {ALERT_COLUMNS}, {GROUP} {ALERT_FROM} WHERE a.id = ?1");
        self.with(|c| {
            c.prepare_cached(&sql)?
                .query_row(params![id], alert_row)
                .optional()
        })
    }

    fn triage(
        &self,
        ids: &[String],
        status: &str,
        note: &str,
        by: &str,
        now: Micros,
    ) -> Result<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut changed = 0;
            for id in ids {
                let n = tx.execute(
                    "UPDATE alerts SET status = ?2 WHERE id = ?1",
                    params![id, status],
                )?;
                if n > 0 {
                    tx.execute(
                        "INSERT INTO ui_triage_notes (alert_id, time_us, user_name, status, note) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![id, now, by, status, note],
                    )?;
                    changed += n;
                }
            }
            tx.commit()?;
            Ok(changed)
        })
    }

    fn triage_notes(&self, id: &str) -> Result<Vec<TriageNote>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT time_us, user_name, status, note FROM ui_triage_notes WHERE alert_id = ?1 ORDER BY time_us",
            )?
            .query_map(params![id], |r| {
                Ok(TriageNote {
                    time: r.get(0)?,
                    user: r.get(1)?,
                    status: r.get(2)?,
                    note: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    fn false_positive_phrases(&self, since: Micros) -> Result<Vec<PhraseStats>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT a.phrase, a.category, SUM(CASE WHEN a.status = 'false-positive' THEN 1 ELSE 0 END), COUNT(*) \
                 FROM alerts a WHERE a.status <> 'new' AND a.time_us >= ?1 GROUP BY a.phrase, a.category \
                 HAVING SUM(CASE WHEN a.status = 'false-positive' THEN 1 ELSE 0 END) > 0 \
                 ORDER BY 3 DESC, a.phrase LIMIT 200",
            )?
            .query_map(params![since], |r| {
                Ok(PhraseStats {
                    phrase: r.get(0)?,
                    category: r.get(1)?,
                    false_positives: r.get(2)?,
                    triaged: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    fn append_audit(
        &self,
        time: Micros,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<AuditRecord> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (seq, prev): (i64, String) = tx
                .query_row("SELECT seq, sha256 FROM ui_audit ORDER BY seq DESC LIMIT 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?
                .unwrap_or((0, AUDIT_GENESIS.to_string()));
            let seq = seq + 1;
            let sha256 = audit_hash(&prev, seq, time, actor, action, subject, detail);
            tx.execute(
                "INSERT INTO ui_audit (seq, time_us, actor, action, subject, detail, prev_sha256, sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![seq, time, actor, action, subject, detail, prev, sha256],
            )?;
            tx.commit()?;
            Ok(AuditRecord {
                seq,
                time,
                actor: actor.into(),
                action: action.into(),
                subject: subject.into(),
                detail: detail.into(),
                prev_sha256: prev,
                sha256,
            })
        })
    }

    fn audit(&self, subject: Option<&str>, limit: u32) -> Result<Vec<AuditRecord>> {
        self.with(|c| match subject {
            Some(subject) => c
                .prepare_cached(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM ui_audit WHERE subject = ?1 ORDER BY seq DESC LIMIT ?2"
                ))?
                .query_map(params![subject, limit], audit_row)?
                .collect(),
            None => c
                .prepare_cached(&format!("SELECT {AUDIT_COLUMNS} FROM ui_audit ORDER BY seq DESC LIMIT ?1"))?
                .query_map(params![limit], audit_row)?
                .collect(),
        })
    }

    fn audit_chain(&self) -> Result<Vec<AuditRecord>> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM ui_audit ORDER BY seq"
            ))?
            .query_map([], audit_row)?
            .collect()
        })
    }

    fn add_unblock_request(
        &self,
        time: Micros,
        host: &str,
        category: &str,
        tier: &str,
        client_ip: &str,
        user: Option<&str>,
        reason: &str,
    ) -> Result<i64> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let id: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM ui_unblock_requests", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO ui_unblock_requests (id, time_us, host, category, tier, client_ip, user_name, reason, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open')",
                params![id, time, host, category, tier, client_ip, user, reason],
            )?;
            tx.commit()?;
            Ok(id)
        })
    }

    fn unblock_requests(&self, open_only: bool, limit: u32) -> Result<Vec<UnblockRequest>> {
        let filter = if open_only {
            "WHERE status = 'open'"
        } else {
            ""
        };
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {UNBLOCK_COLUMNS} FROM ui_unblock_requests {filter} ORDER BY time_us DESC LIMIT ?1"
            ))?
            .query_map(params![limit], unblock_row)?
            .collect()
        })
    }

    fn decide_unblock(
        &self,
        id: i64,
        status: &str,
        by: &str,
        note: &str,
        now: Micros,
    ) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE ui_unblock_requests SET status = ?2, decided_by = ?3, decision_note = ?4, decided_us = ?5 \
                 WHERE id = ?1 AND status = 'open'",
                params![id, status, by, note, now],
            )? > 0)
        })
    }

    fn propose_policy(&self, ch: &PolicyChange) -> Result<i64> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let id: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM ui_policy_changes", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO ui_policy_changes (id, time_us, author, reason, base_revision, policy_toml, diff, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, ch.time, ch.author, ch.reason, ch.base_revision, ch.policy_toml, ch.diff, ch.status],
            )?;
            tx.commit()?;
            Ok(id)
        })
    }

    fn policy_changes(&self, limit: u32) -> Result<Vec<PolicyChange>> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM ui_policy_changes ORDER BY id DESC LIMIT ?1"
            ))?
            .query_map(params![limit], change_row)?
            .collect()
        })
    }

    fn policy_change(&self, id: i64) -> Result<Option<PolicyChange>> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM ui_policy_changes WHERE id = ?1"
            ))?
            .query_row(params![id], change_row)
            .optional()
        })
    }

    fn decide_policy_change(
        &self,
        id: i64,
        status: &str,
        by: &str,
        revision: Option<i64>,
        now: Micros,
    ) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE ui_policy_changes SET status = ?2, decided_by = ?3, revision = ?4, decided_us = ?5 \
                 WHERE id = ?1 AND status = 'pending'",
                params![id, status, by, revision, now],
            )? > 0)
        })
    }

    fn period_counts(&self, start: Micros, period: Micros, dns: bool) -> Result<Vec<PeriodCount>> {
        let source = if dns {
            "a.source = 'dns'"
        } else {
            "a.source NOT IN ('dns', 'device')"
        };
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT (a.time_us - ?1) / ?2 AS p, a.category, COUNT(*) FROM alerts a \
                 WHERE a.time_us >= ?1 AND {source} GROUP BY p, a.category ORDER BY p, a.category"
            ))?
            .query_map(params![start, period], |r| {
                Ok(PeriodCount {
                    period: r.get(0)?,
                    category: r.get(1)?,
                    count: r.get(2)?,
                })
            })?
            .collect()
        })
    }

    fn record_notification(&self, alert_id: &str, now: Micros, outcome: &str) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "INSERT INTO ui_notifications (alert_id, time_us, outcome) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (alert_id) DO NOTHING",
                params![alert_id, now, outcome],
            )? > 0)
        })
    }

    fn unnotified_urgent(&self, since: Micros) -> Result<Vec<String>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT a.id FROM alerts a WHERE a.severity >= 5 AND a.received_us >= ?1 AND NOT EXISTS \
                 (SELECT 1 FROM ui_notifications n WHERE n.alert_id = a.id) ORDER BY a.received_us LIMIT 100",
            )?
            .query_map(params![since], |r| r.get(0))?
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, SqliteUi) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward.db");
        let conn = Connection::open(&path).unwrap();
        for migration in crate::store::MIGRATIONS {
            conn.execute_batch(migration).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO users (name, roles, groups_csv, password_hash, must_change_password, created_us)
               VALUES ('dsl', 'dsl', '', 'x', 0, 0);
             INSERT INTO leases VALUES ('d1', 'alex', '7a', '10.0.0.1', 99, 1), ('d1', 'sam', '8b', '10.0.0.2', 99, 1),
               ('d2', 'mr.t', 'staff', '10.0.0.3', 99, 1);",
        )
        .unwrap();
        let mut id = 0;
        for (user, source, text) in [
            (Some("alex"), "keyboard", "100% sure"),
            (Some("sam"), "keyboard", "plain"),
            (Some("mr.t"), "keyboard", "staff text"),
            (None, "device", "device silent"),
            (Some("newbie"), "keyboard", "no lease yet"),
        ] {
            id += 1;
            conn.execute(
                "INSERT INTO alerts (id, device, user_name, time_us, received_us, source, category, severity, phrase, context)
                 VALUES (?1, 'd1', ?2, ?3, ?3, ?4, 'bullying', 3, 'p', ?5)",
                params![format!("a{id}"), user, id * 10, source, text],
            )
            .unwrap();
        }
        drop(conn);
        let ui = SqliteUi::open(&path).unwrap();
        (dir, ui)
    }

    fn ids(ui: &SqliteUi, filter: &AlertFilter) -> Vec<String> {
        let mut ids: Vec<String> = ui
            .queue(filter, 100)
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn each_role_lists_only_its_scope() {
        let (_dir, ui) = fixture();
        let staff = vec!["staff".to_string()];
        let dsl = AlertFilter {
            scope_pupils_all: true,
            staff_groups: staff.clone(),
            ..Default::default()
        };
        assert_eq!(ids(&ui, &dsl), ["a1", "a2", "a5"]);
        let head = AlertFilter {
            scope_staff: true,
            staff_groups: staff.clone(),
            ..Default::default()
        };
        assert_eq!(ids(&ui, &head), ["a3"]);
        let reviewer = AlertFilter {
            scope_pupil_groups: vec!["7a".into()],
            staff_groups: staff.clone(),
            ..Default::default()
        };
        assert_eq!(ids(&ui, &reviewer), ["a1"]);
        let admin = AlertFilter {
            scope_device: true,
            staff_groups: staff.clone(),
            ..Default::default()
        };
        assert_eq!(ids(&ui, &admin), ["a4"]);
        let governor = AlertFilter {
            staff_groups: staff,
            ..Default::default()
        };
        assert!(ids(&ui, &governor).is_empty());
        let counts = ui.category_counts(&dsl).unwrap();
        assert_eq!(counts, [("bullying".to_string(), 3)]);
    }

    #[test]
    fn free_text_is_literal() {
        let (_dir, ui) = fixture();
        let base = AlertFilter {
            scope_pupils_all: true,
            staff_groups: vec!["staff".into()],
            ..Default::default()
        };
        let percent = AlertFilter {
            text: Some("100%".into()),
            ..base.clone()
        };
        assert_eq!(ids(&ui, &percent), ["a1"]);
        let underscore = AlertFilter {
            text: Some("_".into()),
            ..base
        };
        assert!(ids(&ui, &underscore).is_empty(), "_ is not a wildcard");
    }

    #[test]
    fn triage_sets_status_and_keeps_notes() {
        let (_dir, ui) = fixture();
        assert_eq!(
            ui.triage(
                &["a1".into(), "nope".into()],
                "false-positive",
                "spelling test",
                "dsl",
                5
            )
            .unwrap(),
            1
        );
        assert_eq!(ui.alert("a1").unwrap().unwrap().status, "false-positive");
        let notes = ui.triage_notes("a1").unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].note, "spelling test");
        let fp = ui.false_positive_phrases(0).unwrap();
        assert_eq!((fp[0].false_positives, fp[0].triaged), (1, 1));
    }

    #[test]
    fn the_audit_log_is_append_only_in_the_database() {
        let (_dir, ui) = fixture();
        for i in 0..3 {
            ui.append_audit(i, "dsl", "alert.view", "a1", "").unwrap();
        }
        assert_eq!(verify_audit_chain(&ui.audit_chain().unwrap()), None);
        let conn = ui.conn.lock().unwrap();
        let update = conn.execute("UPDATE ui_audit SET actor = 'x' WHERE seq = 2", []);
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = conn.execute("DELETE FROM ui_audit", []);
        assert!(delete.unwrap_err().to_string().contains("append-only"));
    }
}
