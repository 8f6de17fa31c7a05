//! [`UiStore`] on PostgreSQL: its own small pool of connections to the trust's database, so a slow
//! report never holds an ingest connection. Every collector of a trust reads and writes the same
//! tables, so a sign-in made through one collector is good at all of them (sessions, lockouts, the
//! UI key and the audit chain live in the database, never in one process).
//!
//! This file is `super::sqlite`'s twin, method for method, over the same statements (`super::sql`,
//! with [`Dialect::Postgres`] where the two differ). Where SQLite serialises writers by taking its
//! one write lock early (`BEGIN IMMEDIATE`), collectors here lock the table they number rows of, so
//! two of them can never give two entries one number or fork the audit chain.
//!
//! The append-only rule for the audit log is also enforced by the database: a trigger refuses any
//! UPDATE, DELETE or TRUNCATE on `ui_audit`.

use ::postgres::types::ToSql;
use ::postgres::GenericClient;

use super::sql::{self, Dialect, Param};
use super::*;
use crate::store::postgres::Pool;
use crate::store::{Micros, Result};

/// The append-only trigger (PostgreSQL syntax; run at open, idempotent). Under the migrations'
/// advisory lock, so collectors starting together do not race to create it.
const APPEND_ONLY: &str = "
SELECT pg_advisory_xact_lock(7707001);
CREATE OR REPLACE FUNCTION ui_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'ui_audit_append_only'
                 AND tgrelid = 'ui_audit'::regclass) THEN
    CREATE TRIGGER ui_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ui_audit
      FOR EACH STATEMENT EXECUTE FUNCTION ui_audit_append_only();
  END IF;
END $$;
";

/// The UI's store over a pool of PostgreSQL connections.
pub struct PostgresUi {
    pool: Pool,
}

impl std::fmt::Debug for PostgresUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: not in logs.
        f.debug_struct("PostgresUi").finish_non_exhaustive()
    }
}

impl PostgresUi {
    /// Connects to the collector's database (its migrations, including [`MIGRATION`], already
    /// applied) and makes the audit log append-only.
    ///
    /// # Errors
    /// The database cannot be reached or the UI tables are missing.
    pub fn open(url: &str) -> Result<PostgresUi> {
        let pool = Pool::new(url);
        pool.write(|tx| Ok(tx.batch_execute(APPEND_ONLY)?))?;
        Ok(PostgresUi { pool })
    }

    /// The plan PostgreSQL chooses for the queue with this filter (`EXPLAIN`, one line a row): for
    /// operators checking a slow queue, and for the test that holds the queue to an index.
    ///
    /// # Errors
    /// The database failed.
    pub fn explain_queue(&self, filter: &AlertFilter, limit: u32) -> Result<Vec<String>> {
        let (sql, params) = sql::queue(filter, limit, Dialect::Postgres);
        self.pool.read(|c| {
            Ok(c.query(&format!("EXPLAIN {sql}"), &bind(&params))?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?)
        })
    }
}

/// Run-time parameters as the driver takes them.
fn bind(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(i) => i as &(dyn ToSql + Sync),
            Param::Text(t) => t as &(dyn ToSql + Sync),
        })
        .collect()
}

/// The rows of `sql` mapped by `row`.
fn all<T>(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    row: fn(&::postgres::Row) -> std::result::Result<T, ::postgres::Error>,
) -> Result<Vec<T>> {
    Ok(c.query(sql, params)?
        .iter()
        .map(row)
        .collect::<std::result::Result<_, _>>()?)
}

/// The row of `sql`, if any, mapped by `row`.
fn one<T>(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    row: fn(&::postgres::Row) -> std::result::Result<T, ::postgres::Error>,
) -> Result<Option<T>> {
    Ok(c.query_opt(sql, params)?.map(|r| row(&r)).transpose()?)
}

fn first_text(r: &::postgres::Row) -> std::result::Result<String, ::postgres::Error> {
    r.try_get(0)
}

fn first_int(r: &::postgres::Row) -> std::result::Result<i64, ::postgres::Error> {
    r.try_get(0)
}

/// Limits are `u32` in the interface and `BIGINT` to PostgreSQL.
fn limit(n: u32) -> i64 {
    n.into()
}

impl UiStore for PostgresUi {
    fn ui_key(&self, fresh: &str) -> Result<String> {
        self.pool.write(|tx| {
            tx.execute(sql::UI_KEY_INIT, &[&fresh])?;
            one(tx, sql::UI_KEY, &[], first_text)?
                .ok_or_else(|| crate::store::StoreError::Database("the UI key vanished".into()))
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        self.pool.read(|c| one(c, sql::META, &[&key], first_text))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::SET_META, &[&key, &value])?;
            Ok(())
        })
    }

    fn swap_meta(&self, key: &str, old: Option<&str>, new: &str) -> Result<bool> {
        self.pool.write(|tx| {
            Ok(match old {
                None => tx.execute(sql::INIT_META, &[&key, &new])?,
                Some(old) => tx.execute(sql::SWAP_META, &[&new, &key, &old])?,
            } == 1)
        })
    }

    fn account(&self, name: &str) -> Result<Option<AccountRecord>> {
        self.pool
            .read(|c| one(c, &sql::account(), &[&name], rows::account))
    }

    fn accounts(&self) -> Result<Vec<AccountRecord>> {
        self.pool
            .read(|c| all(c, &sql::accounts(), &[], rows::account))
    }

    fn sign_in_failed(
        &self,
        name: &str,
        failures: i64,
        locked_until: Option<Micros>,
    ) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::ENSURE_SECURITY, &[&name])?;
            tx.execute(sql::SIGN_IN_FAILED, &[&failures, &locked_until, &name])?;
            Ok(())
        })
    }

    fn sign_in_succeeded(&self, name: &str) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::CLEAR_FAILURES, &[&name])?;
            Ok(())
        })
    }

    fn set_password(&self, name: &str, hash: &str, one_time: bool) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::SET_PASSWORD, &[&hash, &i64::from(one_time), &name])?;
            tx.execute(sql::ENSURE_SECURITY, &[&name])?;
            tx.execute(sql::CLEAR_FAILURES, &[&name])?;
            Ok(())
        })
    }

    fn set_totp(&self, name: &str, secret: Option<&str>, enabled: bool) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::ENSURE_SECURITY, &[&name])?;
            tx.execute(sql::SET_TOTP, &[&secret, &i64::from(enabled), &name])?;
            Ok(())
        })
    }

    fn totp_used(&self, name: &str, step: i64) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::TOTP_USED, &[&step, &name])?;
            Ok(())
        })
    }

    fn set_roles(&self, name: &str, roles: &str, groups: &str) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::SET_ROLES, &[&roles, &groups, &name])?;
            Ok(())
        })
    }

    fn set_disabled(&self, name: &str, disabled: Option<Micros>) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::SET_DISABLED, &[&disabled, &name])?;
            Ok(())
        })
    }

    fn create_session(&self, s: &SessionRecord) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(
                sql::CREATE_SESSION,
                &[
                    &s.token_sha256,
                    &s.user,
                    &s.created,
                    &s.expires,
                    &i64::from(s.second_factor_done),
                ],
            )?;
            // Expired sessions are of no use to anyone; drop them as new ones start.
            tx.execute(sql::DROP_EXPIRED_SESSIONS, &[&s.created])?;
            Ok(())
        })
    }

    fn session(&self, token_sha256: &str, now: Micros) -> Result<Option<SessionRecord>> {
        self.pool
            .read(|c| one(c, sql::SESSION, &[&token_sha256, &now], rows::session))
    }

    fn session_second_factor_done(&self, token_sha256: &str) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::SECOND_FACTOR_DONE, &[&token_sha256])?;
            Ok(())
        })
    }

    fn delete_session(&self, token_sha256: &str) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::DELETE_SESSION, &[&token_sha256])?;
            Ok(())
        })
    }

    fn delete_user_sessions(&self, name: &str) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::DELETE_USER_SESSIONS, &[&name])?;
            Ok(())
        })
    }

    fn queue(&self, filter: &AlertFilter, limit: u32) -> Result<Vec<UiAlert>> {
        let (sql, params) = sql::queue(filter, limit, Dialect::Postgres);
        self.pool
            .read(|c| all(c, &sql, &bind(&params), rows::alert))
    }

    fn category_counts(&self, filter: &AlertFilter) -> Result<Vec<(String, i64)>> {
        let (sql, params) = sql::category_counts(filter, Dialect::Postgres);
        self.pool
            .read(|c| all(c, &sql, &bind(&params), rows::category_count))
    }

    fn alert(&self, id: &str) -> Result<Option<UiAlert>> {
        self.pool
            .read(|c| one(c, &sql::alert(), &[&id], rows::alert))
    }

    fn triage(
        &self,
        ids: &[String],
        status: &str,
        note: &str,
        by: &str,
        now: Micros,
    ) -> Result<usize> {
        self.pool.write(|tx| {
            let mut changed = 0;
            for id in ids {
                let n = tx.execute(sql::SET_STATUS, &[&status, id])?;
                if n > 0 {
                    tx.execute(sql::ADD_TRIAGE_NOTE, &[id, &now, &by, &status, &note])?;
                    changed += n as usize;
                }
            }
            Ok(changed)
        })
    }

    fn triage_notes(&self, id: &str) -> Result<Vec<TriageNote>> {
        self.pool
            .read(|c| all(c, sql::TRIAGE_NOTES, &[&id], rows::triage_note))
    }

    fn false_positive_phrases(&self, since: Micros) -> Result<Vec<PhraseStats>> {
        self.pool.read(|c| {
            all(
                c,
                sql::FALSE_POSITIVE_PHRASES,
                &[&since],
                rows::phrase_stats,
            )
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
        self.pool.write(|tx| {
            // One writer at a time reads the chain's end and extends it; readers are not blocked.
            tx.execute("LOCK TABLE ui_audit IN EXCLUSIVE MODE", &[])?;
            let last = tx.query_opt(sql::LAST_AUDIT, &[])?;
            let (seq, prev) = match last {
                Some(r) => (r.try_get(0)?, r.try_get(1)?),
                None => (0, AUDIT_GENESIS.to_string()),
            };
            let record = next_audit(seq, prev, time, actor, action, subject, detail);
            tx.execute(
                sql::ADD_AUDIT,
                &[
                    &record.seq,
                    &record.time,
                    &record.actor,
                    &record.action,
                    &record.subject,
                    &record.detail,
                    &record.prev_sha256,
                    &record.sha256,
                ],
            )?;
            Ok(record)
        })
    }

    fn audit(&self, subject: Option<&str>, n: u32) -> Result<Vec<AuditRecord>> {
        self.pool.read(|c| match subject {
            Some(subject) => all(
                c,
                &sql::audit_of_subject(),
                &[&subject, &limit(n)],
                rows::audit,
            ),
            None => all(c, &sql::audit(), &[&limit(n)], rows::audit),
        })
    }

    fn audit_chain(&self) -> Result<Vec<AuditRecord>> {
        self.pool
            .read(|c| all(c, &sql::audit_chain(), &[], rows::audit))
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
        self.pool.write(|tx| {
            tx.execute("LOCK TABLE ui_unblock_requests IN EXCLUSIVE MODE", &[])?;
            let id = next_id(tx, sql::NEXT_UNBLOCK_ID)?;
            tx.execute(
                sql::ADD_UNBLOCK,
                &[
                    &id, &time, &host, &category, &tier, &client_ip, &user, &reason,
                ],
            )?;
            Ok(id)
        })
    }

    fn unblock_requests(&self, open_only: bool, n: u32) -> Result<Vec<UnblockRequest>> {
        self.pool.read(|c| {
            all(
                c,
                &sql::unblock_requests(open_only),
                &[&limit(n)],
                rows::unblock,
            )
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
        self.pool
            .write(|tx| Ok(tx.execute(sql::DECIDE_UNBLOCK, &[&status, &by, &note, &now, &id])? > 0))
    }

    fn propose_policy(&self, ch: &PolicyChange) -> Result<i64> {
        self.pool.write(|tx| {
            tx.execute("LOCK TABLE ui_policy_changes IN EXCLUSIVE MODE", &[])?;
            let id = next_id(tx, sql::NEXT_CHANGE_ID)?;
            tx.execute(
                sql::ADD_CHANGE,
                &[
                    &id,
                    &ch.time,
                    &ch.author,
                    &ch.reason,
                    &ch.base_revision,
                    &ch.policy_toml,
                    &ch.diff,
                    &ch.status,
                ],
            )?;
            Ok(id)
        })
    }

    fn policy_changes(&self, n: u32) -> Result<Vec<PolicyChange>> {
        self.pool
            .read(|c| all(c, &sql::policy_changes(), &[&limit(n)], rows::change))
    }

    fn policy_change(&self, id: i64) -> Result<Option<PolicyChange>> {
        self.pool
            .read(|c| one(c, &sql::policy_change(), &[&id], rows::change))
    }

    fn decide_policy_change(
        &self,
        id: i64,
        status: &str,
        by: &str,
        revision: Option<i64>,
        now: Micros,
    ) -> Result<bool> {
        self.pool.write(|tx| {
            Ok(tx.execute(sql::DECIDE_CHANGE, &[&status, &by, &revision, &now, &id])? > 0)
        })
    }

    fn period_counts(&self, start: Micros, period: Micros, dns: bool) -> Result<Vec<PeriodCount>> {
        self.pool.read(|c| {
            all(
                c,
                &sql::period_counts(dns),
                &[&start, &period],
                rows::period_count,
            )
        })
    }

    fn record_notification(&self, alert_id: &str, now: Micros, outcome: &str) -> Result<bool> {
        self.pool
            .write(|tx| Ok(tx.execute(sql::RECORD_NOTIFICATION, &[&alert_id, &now, &outcome])? > 0))
    }

    fn finish_notification(&self, alert_id: &str, now: Micros, outcome: &str) -> Result<()> {
        self.pool.write(|tx| {
            tx.execute(sql::FINISH_NOTIFICATION, &[&outcome, &now, &alert_id])?;
            Ok(())
        })
    }

    fn release_stale_notifications(&self, before: Micros) -> Result<u64> {
        self.pool
            .write(|tx| Ok(tx.execute(sql::RELEASE_STALE_NOTIFICATIONS, &[&before])?))
    }

    fn unnotified_urgent(&self, since: Micros) -> Result<Vec<String>> {
        self.pool
            .read(|c| all(c, sql::UNNOTIFIED_URGENT, &[&since], first_text))
    }
}

/// The next number of a table numbered from its largest (the caller holds the table's lock).
fn next_id(tx: &mut impl GenericClient, sql: &str) -> Result<i64> {
    Ok(one(tx, sql, &[], first_int)?.unwrap_or(1))
}
