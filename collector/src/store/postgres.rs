//! PostgreSQL, for trusts that run several collectors in front of one replicated database. Same SQL
//! and migrations as SQLite (`super::sql`, `super::MIGRATIONS`); a committed transaction is durable
//! with PostgreSQL's default `synchronous_commit = on`. A small pool of connections serves concurrent
//! calls; a broken connection is dropped rather than returned to the pool.

use std::sync::Mutex;

use ::postgres::types::ToSql;
use ::postgres::{Client, GenericClient, NoTls, Transaction};

use super::rows;
use super::sql;
use super::*;

pub mod shared;

const POOL: usize = 8;

/// The PostgreSQL backend.
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: not in logs.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (libpq key=value or URI form) and applies pending migrations. Several
    /// collectors may start at once: migrations run under an advisory lock.
    ///
    /// # Errors
    /// The database cannot be reached or a migration fails.
    pub fn open(url: &str) -> Result<PostgresStore> {
        let pool = Pool::new(url);
        pool.read(migrate)?;
        Ok(PostgresStore { pool })
    }

    fn write<T: Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T> + Send,
    ) -> Result<T> {
        self.pool.write(f)
    }

    fn read<T: Send>(&self, f: impl FnOnce(&mut Client) -> Result<T> + Send) -> Result<T> {
        self.pool.read(f)
    }
}

/// A few idle connections to one database, reused by blocking calls (the ingest store and the
/// review UI's store each keep their own, so a slow report never holds an ingest connection).
pub(crate) struct Pool {
    url: String,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    /// Connects lazily: the first call opens the first connection.
    pub(crate) fn new(url: &str) -> Pool {
        Pool {
            url: url.to_string(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn connect(&self) -> Result<Client> {
        Ok(Client::connect(&self.url, NoTls)?)
    }

    fn take(&self) -> Result<Client> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(client) if !client.is_closed() => Ok(client),
            _ => self.connect(),
        }
    }

    fn put(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL {
            idle.push(client);
        }
    }

    /// Runs `f` in a transaction, committed when it returns `Ok`.
    pub(crate) fn write<T: Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T> + Send,
    ) -> Result<T> {
        off_runtime(|| {
            let mut client = self.take()?;
            let result = (|| {
                let mut tx = client.transaction()?;
                let value = f(&mut tx)?;
                tx.commit()?;
                Ok(value)
            })();
            self.put(client);
            result
        })
    }

    /// Runs `f` on a connection outside any transaction of ours.
    pub(crate) fn read<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T> + Send,
    ) -> Result<T> {
        off_runtime(|| {
            let mut client = self.take()?;
            let result = f(&mut client);
            self.put(client);
            result
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a connection blocks too (see `off_runtime`).
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        off_runtime(move || drop(idle));
    }
}

/// The `postgres` crate blocks on a runtime of its own, which tokio forbids on a thread that drives
/// async tasks. Callers should use the blocking pool, but a store call from async code must not take
/// the collector down: on a runtime worker this steps off it first.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => f(),
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(f)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    // One collector migrates at a time; the others wait here and then find nothing to do.
    tx.execute("SELECT pg_advisory_xact_lock(7707001)", &[])?;
    tx.execute(sql::CREATE_MIGRATIONS, &[])?;
    let applied: i64 = tx.query_one(sql::APPLIED_MIGRATIONS, &[])?.get(0);
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.batch_execute(migration)?;
        tx.execute(
            sql::RECORD_MIGRATION,
            &[&(i as i64 + 1), &jiff::Timestamp::now().as_microsecond()],
        )?;
    }
    tx.batch_execute(shared::TABLES)?;
    tx.commit()?;
    Ok(())
}

fn insert_alert(tx: &mut Transaction<'_>, a: &AlertRecord) -> Result<bool> {
    if let Some(s) = &a.screenshot {
        tx.execute(
            sql::ADD_SCREENSHOT,
            &[
                &s.sha256,
                &s.format,
                &s.width,
                &s.height,
                &s.bytes,
                &a.received,
            ],
        )?;
    }
    let inserted = tx.execute(
        sql::ADD_ALERT,
        &[
            &a.id,
            &a.device,
            &a.user,
            &a.time,
            &a.received,
            &a.source,
            &a.category,
            &a.severity,
            &a.phrase,
            &a.context,
            &a.language,
            &a.application,
            &a.window_title,
            &a.wordlist_version,
            &a.client_ip,
            &a.screenshot.as_ref().map(|s| s.sha256.clone()),
            &a.no_screenshot_reason,
        ],
    )?;
    Ok(inserted == 1)
}

fn latest_policy(c: &mut impl GenericClient) -> Result<Option<PolicyRecord>> {
    Ok(c.query_opt(sql::LATEST_POLICY, &[])?
        .map(|r| rows::policy(&r))
        .transpose()?)
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn add_token(&self, t: &NewToken) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                sql::ADD_TOKEN,
                &[&t.sha256, &i64::from(t.uses), &t.expires, &t.created],
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
            let token = tx.query_opt(sql::TOKEN, &[&token_sha256])?;
            match token.map(|r| (r.get::<_, i64>(0), r.get::<_, Option<i64>>(1))) {
                None => return Ok(Err(TokenProblem::Unknown)),
                Some((_, Some(expires))) if expires <= now => {
                    return Ok(Err(TokenProblem::Expired))
                }
                Some((uses, _)) if uses <= 0 => return Ok(Err(TokenProblem::UsedUp)),
                Some(_) => {}
            }
            // Re-checked under the row lock: two enrolments racing for the last use cannot both win.
            if tx.execute(sql::SPEND_TOKEN, &[&token_sha256])? == 0 {
                return Ok(Err(TokenProblem::UsedUp));
            }
            let added = tx.execute(
                sql::ADD_DEVICE,
                &[
                    &d.id,
                    &d.kind,
                    &d.cert_sha256,
                    &d.cert_serial,
                    &d.hostname,
                    &d.os,
                    &d.program_version,
                    &d.enrolled,
                    &d.ip,
                ],
            );
            match added {
                Err(e) if e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    Err(StoreError::Conflict(format!("device {}", d.id)))
                }
                other => other.map(|_| Ok(())).map_err(Into::into),
            }
        })
    }

    fn device_by_cert(&self, cert_sha256: &str) -> Result<Option<DeviceRecord>> {
        self.read(|c| {
            Ok(c.query_opt(&sql::device_by_cert(), &[&cert_sha256])?
                .map(|r| rows::device(&r))
                .transpose()?)
        })
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>> {
        self.read(|c| {
            Ok(c.query(&sql::devices(), &[])?
                .iter()
                .map(rows::device)
                .collect::<std::result::Result<_, _>>()?)
        })
    }

    fn revoke_device(&self, id: &str, now: Micros) -> Result<bool> {
        self.write(|tx| Ok(tx.execute(sql::REVOKE_DEVICE, &[&now, &id])? == 1))
    }

    fn record_heartbeat(&self, device: &str, h: &HeartbeatRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                sql::HEARTBEAT,
                &[
                    &h.received,
                    &h.ip,
                    &h.hostname,
                    &h.os,
                    &h.program_version,
                    &h.wordlist_version,
                    &h.spool_depth,
                    &h.spool_dropped,
                    &h.dead_helpers,
                    &device,
                ],
            )?;
            for seen in &h.sessions {
                tx.execute(
                    sql::SEE_SESSION,
                    &[
                        &seen.user,
                        &device,
                        &h.received,
                        &seen.notice_shown,
                        &seen.notice_sha256,
                    ],
                )?;
            }
            for alert in &h.alerts {
                insert_alert(tx, alert)?;
            }
            Ok(())
        })
    }

    fn disclosures(&self) -> Result<Vec<DisclosureRecord>> {
        self.read(|c| {
            Ok(c.query(sql::DISCLOSURES, &[])?
                .iter()
                .map(rows::disclosure)
                .collect::<std::result::Result<_, _>>()?)
        })
    }

    fn purge_disclosures(&self, before: Micros) -> Result<u64> {
        self.write(|tx| Ok(tx.execute(sql::PURGE_DISCLOSURES, &[&before])?))
    }

    fn flag_silent(&self, device: &str, now: Micros, alert: &AlertRecord) -> Result<bool> {
        self.write(|tx| {
            if tx.execute(sql::FLAG_SILENT, &[&now, &device])? == 0 {
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
            let limit = q.limit.map_or(i64::MAX, |l| l.min(i64::MAX as u64) as i64);
            let since = q.since.unwrap_or(i64::MIN);
            Ok(c.query(sql::ALERTS, &[&since, &limit])?
                .iter()
                .map(rows::alert)
                .collect::<std::result::Result<_, _>>()?)
        })
    }

    fn count_alerts(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_one(sql::COUNT_ALERTS, &[])?.get::<_, i64>(0) as u64))
    }

    fn put_lease(&self, l: &LeaseRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(sql::DROP_EXPIRED_LEASES, &[&l.updated])?;
            tx.execute(
                sql::PUT_LEASE,
                &[
                    &l.device,
                    &l.user,
                    &l.group,
                    &l.addresses,
                    &l.expires,
                    &l.updated,
                ],
            )?;
            Ok(())
        })
    }

    fn live_leases(&self, now: Micros) -> Result<Vec<LeaseRecord>> {
        self.read(|c| {
            Ok(c.query(sql::LIVE_LEASES, &[&now])?
                .iter()
                .map(rows::lease)
                .collect::<std::result::Result<_, _>>()?)
        })
    }

    fn latest_policy(&self) -> Result<Option<PolicyRecord>> {
        self.read(latest_policy)
    }

    fn policy_revision(&self) -> Result<Option<i64>> {
        self.read(|c| Ok(c.query_one(sql::POLICY_REVISION, &[])?.get(0)))
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
            // Revisions are numbered from the table: serialise writers so two cannot take one number.
            tx.execute("LOCK TABLE policies IN EXCLUSIVE MODE", &[])?;
            tx.execute(
                sql::ADD_POLICY,
                &[&sha256, &policy_toml, &author, &note, &now],
            )?;
            latest_policy(tx)?.ok_or_else(|| StoreError::Database("policy vanished".into()))
        })
    }

    fn add_user(&self, u: &NewUser) -> Result<()> {
        self.write(|tx| {
            let added = tx.execute(
                sql::ADD_USER,
                &[
                    &u.name,
                    &u.roles,
                    &u.groups,
                    &u.password_hash,
                    &i64::from(u.must_change_password),
                    &u.created,
                ],
            )?;
            if added == 0 {
                return Err(StoreError::Conflict(format!("user {}", u.name)));
            }
            Ok(())
        })
    }

    fn count_users(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_one(sql::COUNT_USERS, &[])?.get::<_, i64>(0) as u64))
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
                    Some(c) => tx.execute(sql::PURGE_CATEGORY, &[c, before])?,
                    None => {
                        let mut values: Vec<&(dyn ToSql + Sync)> = vec![before];
                        values.extend(named.iter().map(|c| *c as &(dyn ToSql + Sync)));
                        tx.execute(&sql::purge_other_categories(named.len()), &values)?
                    }
                };
            }
            tx.execute(sql::DETACH_SCREENSHOTS, &[&screenshots_before])?;
            let orphans: Vec<String> = tx
                .query(sql::ORPHAN_SCREENSHOTS, &[&now])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for sha in &orphans {
                tx.execute(sql::DELETE_SCREENSHOT, &[sha])?;
            }
            purged.screenshots = orphans;
            Ok(purged)
        })
    }
}
