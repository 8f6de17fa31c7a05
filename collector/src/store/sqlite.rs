//! SQLite: one file in the data dir, WAL journal, `synchronous=FULL` so every commit is on disk
//! before the call returns. One writer connection behind a mutex (SQLite has one writer anyway);
//! readers get their own connections so listing never waits behind ingest.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::rows;
use super::sql;
use super::*;

/// The SQLite backend.
pub struct SqliteStore {
    path: std::path::PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    ///
    /// # Errors
    /// The file cannot be opened or a migration fails.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut conn = open(path)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open(&self.path)?,
        };
        let value = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < 4 {
            readers.push(conn);
        }
        value
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute(sql::CREATE_MIGRATIONS, [])?;
    let applied: i64 = conn.query_row(sql::APPLIED_MIGRATIONS, [], |r| r.get(0))?;
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.execute(
            sql::RECORD_MIGRATION,
            params![i as i64 + 1, jiff::Timestamp::now().as_microsecond()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn insert_alert(tx: &Transaction<'_>, a: &AlertRecord) -> Result<bool> {
    if let Some(s) = &a.screenshot {
        tx.prepare_cached(sql::ADD_SCREENSHOT)?.execute(params![
            s.sha256, s.format, s.width, s.height, s.bytes, a.received
        ])?;
    }
    let inserted = tx.prepare_cached(sql::ADD_ALERT)?.execute(params![
        a.id,
        a.device,
        a.user,
        a.time,
        a.received,
        a.source,
        a.category,
        a.severity,
        a.phrase,
        a.context,
        a.language,
        a.application,
        a.window_title,
        a.wordlist_version,
        a.client_ip,
        a.screenshot.as_ref().map(|s| &s.sha256),
        a.no_screenshot_reason,
    ])?;
    Ok(inserted == 1)
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn add_token(&self, t: &NewToken) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                sql::ADD_TOKEN,
                params![t.sha256, t.uses, t.expires, t.created],
            )?;
            Ok(())
        })
    }

    fn enrol(
        &self,
        token_sha256: &str,
        now: Micros,
        d: &NewDevice,
    ) -> Result<std::result::Result<(), TokenProblem>> {
        self.write(|tx| {
            let token: Option<(i64, Option<i64>)> = tx
                .query_row(sql::TOKEN, params![token_sha256], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            match token {
                None => return Ok(Err(TokenProblem::Unknown)),
                Some((_, Some(expires))) if expires <= now => {
                    return Ok(Err(TokenProblem::Expired))
                }
                Some((uses, _)) if uses <= 0 => return Ok(Err(TokenProblem::UsedUp)),
                Some(_) => {}
            }
            if tx.execute(sql::SPEND_TOKEN, params![token_sha256])? == 0 {
                return Ok(Err(TokenProblem::UsedUp));
            }
            let added = tx.execute(
                sql::ADD_DEVICE,
                params![
                    d.id,
                    d.kind,
                    d.cert_sha256,
                    d.cert_serial,
                    d.hostname,
                    d.os,
                    d.program_version,
                    d.enrolled,
                    d.ip
                ],
            );
            match added {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(StoreError::Conflict(format!("device {}", d.id)))
                }
                other => other.map(|_| Ok(())).map_err(Into::into),
            }
        })
    }

    fn device_by_cert(&self, cert_sha256: &str) -> Result<Option<DeviceRecord>> {
        self.read(|c| {
            Ok(c.prepare_cached(&sql::device_by_cert())?
                .query_row(params![cert_sha256], |r| rows::device(r))
                .optional()?)
        })
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(&sql::devices())?;
            let rows = stmt.query_map([], |r| rows::device(r))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn revoke_device(&self, id: &str, now: Micros) -> Result<bool> {
        self.write(|tx| Ok(tx.execute(sql::REVOKE_DEVICE, params![now, id])? == 1))
    }

    fn record_heartbeat(&self, device: &str, h: &HeartbeatRecord) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(sql::HEARTBEAT)?.execute(params![
                h.received,
                h.ip,
                h.hostname,
                h.os,
                h.program_version,
                h.wordlist_version,
                h.spool_depth,
                h.spool_dropped,
                h.dead_helpers,
                device
            ])?;
            for seen in &h.sessions {
                tx.prepare_cached(sql::SEE_SESSION)?.execute(params![
                    seen.user,
                    device,
                    h.received,
                    seen.notice_shown,
                    seen.notice_sha256
                ])?;
            }
            for alert in &h.alerts {
                insert_alert(tx, alert)?;
            }
            Ok(())
        })
    }

    fn disclosures(&self) -> Result<Vec<DisclosureRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql::DISCLOSURES)?;
            let rows = stmt.query_map([], |r| rows::disclosure(r))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn purge_disclosures(&self, before: Micros) -> Result<u64> {
        self.write(|tx| Ok(tx.execute(sql::PURGE_DISCLOSURES, params![before])? as u64))
    }

    fn flag_silent(&self, device: &str, now: Micros, alert: &AlertRecord) -> Result<bool> {
        self.write(|tx| {
            if tx.execute(sql::FLAG_SILENT, params![now, device])? == 0 {
                return Ok(false);
            }
            insert_alert(tx, alert)?;
            Ok(true)
        })
    }

    fn insert_alerts(&self, alerts: &[AlertRecord]) -> Result<u32> {
        self.write(|tx| {
            let mut duplicates = 0;
            for a in alerts {
                if !insert_alert(tx, a)? {
                    duplicates += 1;
                }
            }
            Ok(duplicates)
        })
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql::ALERTS)?;
            let limit = q.limit.map_or(i64::MAX, |l| l.min(i64::MAX as u64) as i64);
            let rows = stmt.query_map(params![q.since.unwrap_or(i64::MIN), limit], |r| {
                rows::alert(r)
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn count_alerts(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_row(sql::COUNT_ALERTS, [], |r| r.get::<_, i64>(0))? as u64))
    }

    fn put_lease(&self, l: &LeaseRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(sql::DROP_EXPIRED_LEASES, params![l.updated])?;
            tx.execute(
                sql::PUT_LEASE,
                params![l.device, l.user, l.group, l.addresses, l.expires, l.updated],
            )?;
            Ok(())
        })
    }

    fn live_leases(&self, now: Micros) -> Result<Vec<LeaseRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql::LIVE_LEASES)?;
            let rows = stmt.query_map(params![now], |r| rows::lease(r))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn latest_policy(&self) -> Result<Option<PolicyRecord>> {
        self.read(latest_policy)
    }

    fn policy_revision(&self) -> Result<Option<i64>> {
        self.read(|c| Ok(c.query_row(sql::POLICY_REVISION, [], |r| r.get(0))?))
    }

    fn add_policy(
        &self,
        policy_toml: &str,
        sha256: &str,
        author: &str,
        note: &str,
        now: Micros,
    ) -> Result<PolicyRecord> {
        self.write(|tx| {
            tx.execute(
                sql::ADD_POLICY,
                params![sha256, policy_toml, author, note, now],
            )?;
            latest_policy(tx)?.ok_or_else(|| StoreError::Database("policy vanished".into()))
        })
    }

    fn add_user(&self, u: &NewUser) -> Result<()> {
        self.write(|tx| {
            let added = tx.execute(
                sql::ADD_USER,
                params![
                    u.name,
                    u.roles,
                    u.groups,
                    u.password_hash,
                    i64::from(u.must_change_password),
                    u.created
                ],
            )?;
            if added == 0 {
                return Err(StoreError::Conflict(format!("user {}", u.name)));
            }
            Ok(())
        })
    }

    fn count_users(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_row(sql::COUNT_USERS, [], |r| r.get::<_, i64>(0))? as u64))
    }

    fn purge(
        &self,
        rules: &[(Option<String>, Micros)],
        screenshots_before: Micros,
        now: Micros,
    ) -> Result<Purged> {
        self.write(|tx| {
            let mut purged = Purged::default();
            let named: Vec<&String> = rules.iter().filter_map(|(c, _)| c.as_ref()).collect();
            for (category, before) in rules {
                purged.alerts += match category {
                    Some(c) => tx.execute(sql::PURGE_CATEGORY, params![c, before])?,
                    None => {
                        let mut values: Vec<&dyn rusqlite::ToSql> = vec![before];
                        values.extend(named.iter().map(|c| *c as &dyn rusqlite::ToSql));
                        tx.execute(&sql::purge_other_categories(named.len()), values.as_slice())?
                    }
                } as u64;
            }
            tx.execute(sql::DETACH_SCREENSHOTS, params![screenshots_before])?;
            let orphans: Vec<String> = {
                let mut stmt = tx.prepare(sql::ORPHAN_SCREENSHOTS)?;
                let rows = stmt.query_map(params![now], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for sha in &orphans {
                tx.execute(sql::DELETE_SCREENSHOT, params![sha])?;
            }
            purged.screenshots = orphans;
            Ok(purged)
        })
    }
}

fn latest_policy(c: &Connection) -> Result<Option<PolicyRecord>> {
    Ok(c.query_row(sql::LATEST_POLICY, [], |r| rows::policy(r))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_alerts_stored_with_the_old_device_category_move_to_the_tamper_category() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward.db");
        {
            // A database as the release before migration 5 left it, holding one such alert.
            let mut conn = open(&path).unwrap();
            conn.execute(sql::CREATE_MIGRATIONS, []).unwrap();
            let tx = conn.transaction().unwrap();
            for (i, migration) in MIGRATIONS[..4].iter().enumerate() {
                tx.execute_batch(migration).unwrap();
                tx.execute(sql::RECORD_MIGRATION, params![i as i64 + 1, 0])
                    .unwrap();
            }
            tx.execute_batch(
                "INSERT INTO alerts (id, device, time_us, received_us, source, category, severity, phrase, context)
                   VALUES ('a1', 'd1', 1, 1, 'device', 'device', 3, 'device silent', ''),
                          ('a2', 'd1', 1, 1, 'keyboard', 'bullying', 3, 'p', '');",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let categories: Vec<(String, String)> = store
            .alerts(&AlertQuery::default())
            .unwrap()
            .into_iter()
            .map(|a| (a.id, a.category))
            .collect();
        assert_eq!(
            categories,
            [
                ("a1".to_string(), "hacking".to_string()),
                ("a2".to_string(), "bullying".to_string())
            ]
        );
    }
}
