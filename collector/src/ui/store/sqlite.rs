//! [`UiStore`] on SQLite: its own connection to the collector's database file (WAL lets it read while
//! ingest writes), so a slow report never holds the ingest path's connection.
//!
//! The statements are `super::sql`'s, shared with PostgreSQL (`super::postgres` is this file's twin,
//! method for method); only how a call reaches the database is SQLite's own here.
//!
//! The append-only rule for the audit log is also enforced by the database: triggers refuse any
//! UPDATE or DELETE on `ui_audit`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use super::sql::{self, Dialect, Param};
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

fn values(params: Vec<Param>) -> Vec<Value> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Int(i) => Value::Integer(i),
            Param::Text(t) => Value::Text(t),
        })
        .collect()
}

impl UiStore for SqliteUi {
    fn ui_key(&self, fresh: &str) -> Result<String> {
        self.with(|c| {
            c.execute(sql::UI_KEY_INIT, params![fresh])?;
            c.query_row(sql::UI_KEY, [], |r| r.get(0))
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(sql::META, params![key], |r| r.get(0))
                .optional()
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.with(|c| {
            c.execute(sql::SET_META, params![key, value])?;
            Ok(())
        })
    }

    fn swap_meta(&self, key: &str, old: Option<&str>, new: &str) -> Result<bool> {
        self.with(|c| {
            Ok(match old {
                None => c.execute(sql::INIT_META, params![key, new])?,
                Some(old) => c.execute(sql::SWAP_META, params![new, key, old])?,
            } == 1)
        })
    }

    fn account(&self, name: &str) -> Result<Option<AccountRecord>> {
        self.with(|c| {
            c.prepare_cached(&sql::account())?
                .query_row(params![name], |r| rows::account(r))
                .optional()
        })
    }

    fn accounts(&self) -> Result<Vec<AccountRecord>> {
        self.with(|c| {
            c.prepare_cached(&sql::accounts())?
                .query_map([], |r| rows::account(r))?
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
            c.execute(sql::ENSURE_SECURITY, params![name])?;
            c.execute(sql::SIGN_IN_FAILED, params![failures, locked_until, name])?;
            Ok(())
        })
    }

    fn sign_in_succeeded(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.execute(sql::CLEAR_FAILURES, params![name])?;
            Ok(())
        })
    }

    fn set_password(&self, name: &str, hash: &str, one_time: bool) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(sql::SET_PASSWORD, params![hash, one_time as i64, name])?;
            tx.execute(sql::ENSURE_SECURITY, params![name])?;
            tx.execute(sql::CLEAR_FAILURES, params![name])?;
            tx.commit()
        })
    }

    fn set_totp(&self, name: &str, secret: Option<&str>, enabled: bool) -> Result<()> {
        self.with(|c| {
            c.execute(sql::ENSURE_SECURITY, params![name])?;
            c.execute(sql::SET_TOTP, params![secret, enabled as i64, name])?;
            Ok(())
        })
    }

    fn totp_used(&self, name: &str, step: i64) -> Result<()> {
        self.with(|c| {
            c.execute(sql::TOTP_USED, params![step, name])?;
            Ok(())
        })
    }

    fn set_roles(&self, name: &str, roles: &str, groups: &str) -> Result<()> {
        self.with(|c| {
            c.execute(sql::SET_ROLES, params![roles, groups, name])?;
            Ok(())
        })
    }

    fn set_disabled(&self, name: &str, disabled: Option<Micros>) -> Result<()> {
        self.with(|c| {
            c.execute(sql::SET_DISABLED, params![disabled, name])?;
            Ok(())
        })
    }

    fn create_session(&self, s: &SessionRecord) -> Result<()> {
        self.with(|c| {
            c.execute(
                sql::CREATE_SESSION,
                params![
                    s.token_sha256,
                    s.user,
                    s.created,
                    s.expires,
                    s.second_factor_done as i64
                ],
            )?;
            // Expired sessions are of no use to anyone; drop them as new ones start.
            c.execute(sql::DROP_EXPIRED_SESSIONS, params![s.created])?;
            Ok(())
        })
    }

    fn session(&self, token_sha256: &str, now: Micros) -> Result<Option<SessionRecord>> {
        self.with(|c| {
            c.prepare_cached(sql::SESSION)?
                .query_row(params![token_sha256, now], |r| rows::session(r))
                .optional()
        })
    }

    fn session_second_factor_done(&self, token_sha256: &str) -> Result<()> {
        self.with(|c| {
            c.execute(sql::SECOND_FACTOR_DONE, params![token_sha256])?;
            Ok(())
        })
    }

    fn delete_session(&self, token_sha256: &str) -> Result<()> {
        self.with(|c| {
            c.execute(sql::DELETE_SESSION, params![token_sha256])?;
            Ok(())
        })
    }

    fn delete_user_sessions(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.execute(sql::DELETE_USER_SESSIONS, params![name])?;
            Ok(())
        })
    }

    fn queue(&self, filter: &AlertFilter, limit: u32) -> Result<Vec<UiAlert>> {
        let (sql, params) = sql::queue(filter, limit, Dialect::Sqlite);
        self.with(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(values(params)), |r| rows::alert(r))?
                .collect()
        })
    }

    fn category_counts(&self, filter: &AlertFilter) -> Result<Vec<(String, i64)>> {
        let (sql, params) = sql::category_counts(filter, Dialect::Sqlite);
        self.with(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(values(params)), |r| {
                    rows::category_count(r)
                })?
                .collect()
        })
    }

    fn alert(&self, id: &str) -> Result<Option<UiAlert>> {
        self.with(|c| {
            c.prepare_cached(&sql::alert())?
                .query_row(params![id], |r| rows::alert(r))
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
                let n = tx.execute(sql::SET_STATUS, params![status, id])?;
                if n > 0 {
                    tx.execute(sql::ADD_TRIAGE_NOTE, params![id, now, by, status, note])?;
                    changed += n;
                }
            }
            tx.commit()?;
            Ok(changed)
        })
    }

    fn triage_notes(&self, id: &str) -> Result<Vec<TriageNote>> {
        self.with(|c| {
            c.prepare_cached(sql::TRIAGE_NOTES)?
                .query_map(params![id], |r| rows::triage_note(r))?
                .collect()
        })
    }

    fn false_positive_phrases(&self, since: Micros) -> Result<Vec<PhraseStats>> {
        self.with(|c| {
            c.prepare_cached(sql::FALSE_POSITIVE_PHRASES)?
                .query_map(params![since], |r| rows::phrase_stats(r))?
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
            // IMMEDIATE: the write lock is taken before the chain's end is read.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (seq, prev): (i64, String) = tx
                .query_row(sql::LAST_AUDIT, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or((0, AUDIT_GENESIS.to_string()));
            let record = next_audit(seq, prev, time, actor, action, subject, detail);
            tx.execute(
                sql::ADD_AUDIT,
                params![
                    record.seq,
                    record.time,
                    record.actor,
                    record.action,
                    record.subject,
                    record.detail,
                    record.prev_sha256,
                    record.sha256
                ],
            )?;
            tx.commit()?;
            Ok(record)
        })
    }

    fn audit(&self, subject: Option<&str>, limit: u32) -> Result<Vec<AuditRecord>> {
        self.with(|c| match subject {
            Some(subject) => c
                .prepare_cached(&sql::audit_of_subject())?
                .query_map(params![subject, limit], |r| rows::audit(r))?
                .collect(),
            None => c
                .prepare_cached(&sql::audit())?
                .query_map(params![limit], |r| rows::audit(r))?
                .collect(),
        })
    }

    fn audit_chain(&self) -> Result<Vec<AuditRecord>> {
        self.with(|c| {
            c.prepare_cached(&sql::audit_chain())?
                .query_map([], |r| rows::audit(r))?
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
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id: i64 = tx.query_row(sql::NEXT_UNBLOCK_ID, [], |r| r.get(0))?;
            tx.execute(
                sql::ADD_UNBLOCK,
                params![id, time, host, category, tier, client_ip, user, reason],
            )?;
            tx.commit()?;
            Ok(id)
        })
    }

    fn unblock_requests(&self, open_only: bool, limit: u32) -> Result<Vec<UnblockRequest>> {
        self.with(|c| {
            c.prepare_cached(&sql::unblock_requests(open_only))?
                .query_map(params![limit], |r| rows::unblock(r))?
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
        self.with(|c| Ok(c.execute(sql::DECIDE_UNBLOCK, params![status, by, note, now, id])? > 0))
    }

    fn propose_policy(&self, ch: &PolicyChange) -> Result<i64> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id: i64 = tx.query_row(sql::NEXT_CHANGE_ID, [], |r| r.get(0))?;
            tx.execute(
                sql::ADD_CHANGE,
                params![
                    id,
                    ch.time,
                    ch.author,
                    ch.reason,
                    ch.base_revision,
                    ch.policy_toml,
                    ch.diff,
                    ch.status
                ],
            )?;
            tx.commit()?;
            Ok(id)
        })
    }

    fn policy_changes(&self, limit: u32) -> Result<Vec<PolicyChange>> {
        self.with(|c| {
            c.prepare_cached(&sql::policy_changes())?
                .query_map(params![limit], |r| rows::change(r))?
                .collect()
        })
    }

    fn policy_change(&self, id: i64) -> Result<Option<PolicyChange>> {
        self.with(|c| {
            c.prepare_cached(&sql::policy_change())?
                .query_row(params![id], |r| rows::change(r))
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
            Ok(c.execute(sql::DECIDE_CHANGE, params![status, by, revision, now, id])? > 0)
        })
    }

    fn period_counts(&self, start: Micros, period: Micros, dns: bool) -> Result<Vec<PeriodCount>> {
        self.with(|c| {
            c.prepare_cached(&sql::period_counts(dns))?
                .query_map(params![start, period], |r| rows::period_count(r))?
                .collect()
        })
    }

    fn record_notification(&self, alert_id: &str, now: Micros, outcome: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute(sql::RECORD_NOTIFICATION, params![alert_id, now, outcome])? > 0))
    }

    fn finish_notification(&self, alert_id: &str, now: Micros, outcome: &str) -> Result<()> {
        self.with(|c| {
            c.execute(sql::FINISH_NOTIFICATION, params![outcome, now, alert_id])?;
            Ok(())
        })
    }

    fn release_stale_notifications(&self, before: Micros) -> Result<u64> {
        self.with(|c| Ok(c.execute(sql::RELEASE_STALE_NOTIFICATIONS, params![before])? as u64))
    }

    fn unnotified_urgent(&self, since: Micros) -> Result<Vec<String>> {
        self.with(|c| {
            c.prepare_cached(sql::UNNOTIFIED_URGENT)?
                .query_map(params![since], |r| r.get(0))?
                .collect()
        })
    }
}
