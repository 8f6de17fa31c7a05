//! The durable spool: the only handoff between detection and shipping.
//!
//! Every alert is written to its own file (checksummed, fsynced, renamed into place) before anything
//! else happens to it, so it survives a dead collector, a reboot and `kill -9` at any moment. A file
//! is deleted only after the collector acknowledged that alert's id; a crash between the collector's
//! answer and the delete means the alert is sent again, and the collector drops the duplicate by id.
//!
//! The file name carries what ordering and eviction need (`a<severity>-<uuid v7>.rec`), so the spool
//! keeps no index: the folder listing is the state. That makes it safe for a second process
//! (`ward-agent send-test-alert`) to add records while the service runs.
//!
//! Size is bounded. When a new alert does not fit, the lowest-severity, oldest records go first; a
//! new alert less severe than everything held is itself the one dropped. Every drop is counted in a
//! ledger (`ledger.json`) that heartbeats report and that becomes a device alert for the DSL.
//! Unreadable records (torn or rotted) are logged, removed and counted the same way.

pub mod fs;
pub mod record;

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use ward_protocol::{Alert, Category};

pub use fs::{DiskFs, SpoolFs};

const LEDGER: &str = "ledger.json";
const SUFFIX: &str = ".rec";

/// How much the spool may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of records (screenshots are the bulk).
    pub max_bytes: u64,
    /// Number of records.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024 * 1024,
            max_records: 100_000,
        }
    }
}

/// A spool operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The alert could not be written; it is handed back so the caller can keep it and retry.
    #[error("cannot store alert {}: {source}", .alert.id)]
    Write {
        /// The alert that was not stored.
        alert: Box<Alert>,
        /// Why.
        source: io::Error,
    },
    /// The spool folder could not be read or changed.
    #[error("spool: {0}")]
    Io(#[from] io::Error),
}

/// What happened to a pushed alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Stored; `evicted` lists the less severe records removed to make room.
    Stored {
        /// Ids evicted for it.
        evicted: Vec<Uuid>,
    },
    /// Not stored: the spool is full of alerts at least as severe. Counted in the ledger.
    Dropped,
}

/// Alerts lost to a full spool or corruption, waiting to be reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Every alert ever dropped by this spool.
    pub dropped_total: u64,
    /// Dropped since the last heartbeat was delivered.
    pub since_heartbeat: u32,
    /// Dropped and not yet reported to the DSL, by category and severity.
    pub unreported: BTreeMap<String, u32>,
    /// Records found unreadable (a subset of the drops).
    pub corrupt_total: u64,
}

/// A summary of drops for a device alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReport {
    /// How many alerts were lost.
    pub count: u32,
    /// The most severe lost alert's severity.
    pub max_severity: u8,
    /// The most severe lost alert's category; `None` when only unreadable records were lost.
    pub category: Option<Category>,
    /// `category/severity: count` entries, for the alert's context.
    pub detail: String,
}

/// One record as the folder listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    severity: u8,
    id: Uuid,
    size: u64,
}

impl Entry {
    fn parse(name: &str, size: u64) -> Option<Entry> {
        let rest = name.strip_prefix('a')?.strip_suffix(SUFFIX)?;
        let (severity, id) = rest.split_once('-')?;
        Some(Entry {
            name: name.to_string(),
            severity: severity.parse().ok()?,
            id: id.parse().ok()?,
            size,
        })
    }
}

fn record_name(alert: &Alert) -> String {
    format!("a{}-{}{SUFFIX}", alert.severity, alert.id)
}

/// Ids are uuid v7 (time-ordered), so comparing them orders records by age.
fn older_first(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    a.id.cmp(&b.id)
}

/// The durable spool over a [`SpoolFs`].
#[derive(Debug)]
pub struct Spool<F: SpoolFs> {
    fs: F,
    limits: Limits,
    /// Serialises this process's changes (another process may still add records).
    lock: Mutex<()>,
}

impl<F: SpoolFs> Spool<F> {
    /// A spool over `fs`.
    pub fn new(fs: F, limits: Limits) -> Spool<F> {
        Spool {
            fs,
            limits,
            lock: Mutex::new(()),
        }
    }

    fn entries(&self) -> io::Result<Vec<Entry>> {
        Ok(self
            .fs
            .list()?
            .into_iter()
            .filter_map(|(name, size)| Entry::parse(&name, size))
            .collect())
    }

    /// Stores `alert` durably, evicting less severe records if the spool is full.
    ///
    /// # Errors
    /// [`SpoolError::Write`] hands the alert back when it could not be written for a reason other
    /// than space.
    pub fn push(&self, alert: &Alert) -> Result<Pushed, SpoolError> {
        let bytes = record::encode(alert);
        let name = record_name(alert);
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut entries = self.entries()?;
        let mut evicted = Vec::new();
        loop {
            let used: u64 = entries.iter().map(|e| e.size).sum::<u64>() + bytes.len() as u64;
            if used <= self.limits.max_bytes && entries.len() < self.limits.max_records {
                break;
            }
            if !self.evict_one(&mut entries, alert.severity, &mut evicted)? {
                self.record_drops(&[(Some(alert.category), alert.severity)], false)?;
                return Ok(Pushed::Dropped);
            }
        }
        loop {
            match self.fs.write_durable(&name, &bytes) {
                Ok(()) => return Ok(Pushed::Stored { evicted }),
                Err(e) if e.kind() == io::ErrorKind::StorageFull => {
                    if !self.evict_one(&mut entries, alert.severity, &mut evicted)? {
                        self.record_drops(&[(Some(alert.category), alert.severity)], false)?;
                        return Ok(Pushed::Dropped);
                    }
                }
                Err(source) => {
                    return Err(SpoolError::Write {
                        alert: Box::new(alert.clone()),
                        source,
                    })
                }
            }
        }
    }

    /// Evicts the least severe, oldest record if it is no more severe than `severity`. Returns
    /// whether one was evicted.
    fn evict_one(
        &self,
        entries: &mut Vec<Entry>,
        severity: u8,
        evicted: &mut Vec<Uuid>,
    ) -> io::Result<bool> {
        let victim = entries
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| a.severity.cmp(&b.severity).then(older_first(a, b)))
            .map(|(i, _)| i);
        let Some(i) = victim.filter(|&i| entries[i].severity <= severity) else {
            return Ok(false);
        };
        let victim = entries.swap_remove(i);
        let category = self
            .fs
            .read(&victim.name)
            .ok()
            .and_then(|b| record::decode(&b).ok())
            .map(|a| a.category);
        self.fs.remove(&victim.name)?;
        tracing::warn!(
            id = %victim.id,
            severity = victim.severity,
            "spool full: evicted a less severe alert"
        );
        self.record_drops(&[(category, victim.severity)], false)?;
        evicted.push(victim.id);
        Ok(true)
    }

    /// Up to `max_alerts` alerts (and about `max_bytes`), most severe first, oldest first within a
    /// severity. Unreadable records are logged, removed and counted as dropped.
    ///
    /// # Errors
    /// The folder cannot be read.
    pub fn batch(&self, max_alerts: usize, max_bytes: u64) -> Result<Vec<Alert>, SpoolError> {
        let mut entries = self.entries()?;
        entries.sort_by(|a, b| b.severity.cmp(&a.severity).then(older_first(a, b)));
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for entry in entries {
            if out.len() >= max_alerts || (!out.is_empty() && bytes + entry.size > max_bytes) {
                break;
            }
            let content = match self.fs.read(&entry.name) {
                Ok(c) => c,
                // Acknowledged and removed by another process since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            match record::decode(&content) {
                Ok(alert) if alert.id == entry.id => {
                    bytes += entry.size;
                    out.push(alert);
                }
                Ok(_) | Err(_) => {
                    let why = record::decode(&content).err().map_or_else(
                        || "id does not match the file name".into(),
                        |e| e.to_string(),
                    );
                    tracing::error!(file = %entry.name, reason = %why, "corrupt spool record skipped and removed");
                    let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
                    self.fs.remove(&entry.name)?;
                    self.record_drops(&[(None, entry.severity)], true)?;
                }
            }
        }
        Ok(out)
    }

    /// Deletes the records of the acknowledged `ids`.
    ///
    /// # Errors
    /// A record could not be removed.
    pub fn ack(&self, ids: &[Uuid]) -> Result<(), SpoolError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        for entry in self.entries()? {
            if ids.contains(&entry.id) {
                self.fs.remove(&entry.name)?;
            }
        }
        Ok(())
    }

    /// Removes a record the collector refused for good, counting it as dropped.
    ///
    /// # Errors
    /// The record or the ledger could not be changed.
    pub fn reject(&self, id: Uuid) -> Result<(), SpoolError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        for entry in self.entries()? {
            if entry.id == id {
                let category = self
                    .fs
                    .read(&entry.name)
                    .ok()
                    .and_then(|b| record::decode(&b).ok())
                    .map(|a| a.category);
                self.fs.remove(&entry.name)?;
                self.record_drops(&[(category, entry.severity)], false)?;
            }
        }
        Ok(())
    }

    /// Records waiting to be sent.
    ///
    /// # Errors
    /// The folder cannot be read.
    pub fn depth(&self) -> Result<usize, SpoolError> {
        Ok(self.entries()?.len())
    }

    /// The drop ledger.
    ///
    /// # Errors
    /// The folder cannot be read.
    pub fn ledger(&self) -> Result<Ledger, SpoolError> {
        match self.fs.read(LEDGER) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(error = %e, "spool ledger unreadable; starting a new one");
                Ledger::default()
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn save_ledger(&self, ledger: &Ledger) -> io::Result<()> {
        let bytes = serde_json::to_vec(ledger).expect("ledger serialises");
        self.fs.write_durable(LEDGER, &bytes)
    }

    fn record_drops(&self, drops: &[(Option<Category>, u8)], corrupt: bool) -> io::Result<()> {
        let mut ledger = self.ledger().map_err(|e| match e {
            SpoolError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
        for (category, severity) in drops {
            let key = format!(
                "{}/{}",
                category.map_or("unreadable", |c| c.as_str()),
                severity
            );
            *ledger.unreported.entry(key).or_default() += 1;
            ledger.dropped_total += 1;
            ledger.since_heartbeat = ledger.since_heartbeat.saturating_add(1);
            if corrupt {
                ledger.corrupt_total += 1;
            }
        }
        self.save_ledger(&ledger)
    }

    /// Takes the unreported drops as one report and marks them reported; `None` when there are none.
    ///
    /// # Errors
    /// The ledger cannot be written.
    pub fn take_drop_report(&self) -> Result<Option<DropReport>, SpoolError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut ledger = self.ledger()?;
        if ledger.unreported.is_empty() {
            return Ok(None);
        }
        let mut report = DropReport {
            count: 0,
            max_severity: 1,
            category: None,
            detail: String::new(),
        };
        for (key, count) in &ledger.unreported {
            report.count += count;
            let (category, severity) = key.split_once('/').unwrap_or((key, "1"));
            let severity: u8 = severity.parse().unwrap_or(1);
            if severity >= report.max_severity {
                report.max_severity = severity;
                report.category = category.parse().ok().or(report.category);
            }
            if !report.detail.is_empty() {
                report.detail.push_str(", ");
            }
            report.detail.push_str(&format!("{key}: {count}"));
        }
        ledger.unreported.clear();
        self.save_ledger(&ledger)?;
        Ok(Some(report))
    }

    /// Marks the drops counted so far as reported by a delivered heartbeat.
    ///
    /// # Errors
    /// The ledger cannot be written.
    pub fn heartbeat_delivered(&self, reported: u32) -> Result<(), SpoolError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut ledger = self.ledger()?;
        ledger.since_heartbeat = ledger.since_heartbeat.saturating_sub(reported);
        self.save_ledger(&ledger)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
