//! Screenshots, content-addressed: an image is named by the SHA-256 of its bytes, so the same image
//! twice is stored once, and the alert rows hold only the address (their `screenshots` row holds the
//! shape). Where the bytes live depends on the database:
//! - SQLite (one collector): files, `<data-dir>/screenshots/ab/abcdef....png`, written durably
//!   (fsynced, renamed, folder synced) and really unlinked when no alert refers to them;
//! - PostgreSQL (a trust's collectors): the `screenshot_data` table
//!   (`crate::store::postgres::shared::ScreenshotTable`), so any collector serves an image another
//!   one received. An S3-compatible object store would be a third [`Place`] here.
//!
//! Either way the bytes are durable before the alert that refers to them commits, and ingest and
//! retention are kept apart by one read/write gate: ingest holds it shared from writing the bytes
//! until its transaction commits, retention holds it exclusively while it removes rows and bytes, so
//! retention can never delete an image an alert is just about to refer to. For files the gate is a
//! lock in this process; in the database it is an advisory lock, held across every collector.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::config::{Config, Database};
use crate::store::postgres::shared::ScreenshotTable;

/// Where screenshots are kept, behind one interface.
#[derive(Debug)]
pub struct Screenshots {
    place: Place,
    gate: RwLock<()>,
}

#[derive(Debug)]
enum Place {
    Files(PathBuf),
    Database(ScreenshotTable),
}

/// An image to store: (address, format, bytes).
pub type Image<'a> = (String, &'a str, &'a [u8]);

impl Screenshots {
    /// The place the configuration implies: files in the data dir on SQLite, the database on
    /// PostgreSQL (whose tables the store's migrations made).
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn open_for(config: &Config) -> anyhow::Result<Screenshots> {
        match &config.database {
            Database::Sqlite => Screenshots::open(&config.data_dir),
            Database::Postgres(url) => {
                let table = ScreenshotTable::new(url);
                move_files_in(&table, &config.data_dir.join("screenshots"))?;
                Ok(Screenshots {
                    place: Place::Database(table),
                    gate: RwLock::new(()),
                })
            }
        }
    }

    /// Files in `<data_dir>/screenshots`, creating the folder.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn open(data_dir: &Path) -> anyhow::Result<Screenshots> {
        let root = data_dir.join("screenshots");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("{}: cannot create", root.display()))?;
        Ok(Screenshots {
            place: Place::Files(root),
            gate: RwLock::new(()),
        })
    }

    fn path(root: &Path, sha256: &str, format: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("00");
        root.join(prefix).join(format!("{sha256}.{format}"))
    }

    /// Hex SHA-256 of image bytes.
    pub fn address(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// The bytes of the image with this address, if they are kept. Blocking.
    ///
    /// # Errors
    /// The file or the database cannot be read (a missing image is `Ok(None)`).
    pub fn read(&self, sha256: &str, format: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match &self.place {
            Place::Files(root) => {
                let path = Screenshots::path(root, sha256, format);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
                }
            }
            Place::Database(table) => Ok(table.get(sha256)?),
        }
    }

    /// The address of every image kept, sorted (for checks and counts).
    ///
    /// # Errors
    /// The folder or the database cannot be read.
    pub fn addresses(&self) -> anyhow::Result<Vec<String>> {
        let mut found = match &self.place {
            Place::Files(root) => files(root)?.into_iter().map(|(sha, _)| sha).collect(),
            Place::Database(table) => table.addresses()?,
        };
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// Runs `commit` with the gate held shared after making sure every image is stored durably.
    ///
    /// # Errors
    /// An image cannot be written, or `commit` fails.
    pub fn store_then<T: Send>(
        &self,
        images: &[Image<'_>],
        commit: impl FnOnce() -> anyhow::Result<T> + Send,
    ) -> anyhow::Result<T> {
        match &self.place {
            Place::Files(root) => {
                let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
                for (sha256, format, bytes) in images {
                    let path = Screenshots::path(root, sha256, format);
                    if !path.exists() {
                        crate::files::write_atomic(&path, bytes, true)?;
                    }
                }
                commit()
            }
            // Alerts without images need no gate (and no extra round trip).
            Place::Database(_) if images.is_empty() => commit(),
            Place::Database(table) => {
                let now = jiff::Timestamp::now().as_microsecond();
                let images: Vec<(&str, &[u8])> = images
                    .iter()
                    .map(|(sha, _, bytes)| (sha.as_str(), *bytes))
                    .collect();
                table.put_then(&images, now, commit)?
            }
        }
    }

    /// Runs `purge` with the gate held exclusively, then deletes the images of the addresses it
    /// returns (files: every format; database: every image no `screenshots` row names any more).
    /// Returns how many images went.
    ///
    /// # Errors
    /// `purge` fails; a file that cannot be deleted is logged and reported.
    pub fn purge_with(
        &self,
        purge: impl FnOnce() -> anyhow::Result<Vec<String>> + Send,
    ) -> anyhow::Result<usize> {
        match &self.place {
            Place::Files(root) => {
                let _exclusive = self.gate.write().unwrap_or_else(|e| e.into_inner());
                let gone = purge()?;
                Ok(delete_files(root, &gone))
            }
            Place::Database(table) => {
                let (purged, deleted) = table.purge_with(purge)?;
                purged?;
                Ok(deleted)
            }
        }
    }
}

/// Moves screenshot files a collector kept before its images moved into the database (they would
/// otherwise be out of reach of the UI and of retention): each image an alert still refers to goes
/// into the table, then every file is deleted, and the emptied folders too.
fn move_files_in(table: &ScreenshotTable, root: &Path) -> anyhow::Result<()> {
    if !root.is_dir() {
        return Ok(());
    }
    let (mut moved, mut dropped) = (0, 0);
    let now = jiff::Timestamp::now().as_microsecond();
    for (sha256, path) in files(root)? {
        let bytes =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        // A damaged file is not the image its name promises: it is dropped, not moved.
        if Screenshots::address(&bytes) == sha256 && table.referenced(&sha256)? {
            table.put_then(&[(sha256.as_str(), bytes.as_slice())], now, || ())?;
            moved += 1;
        } else {
            dropped += 1;
        }
        std::fs::remove_file(&path)
            .with_context(|| format!("{}: cannot delete", path.display()))?;
        if let Some(prefix) = path.parent() {
            let _ = std::fs::remove_dir(prefix); // Once empty.
        }
    }
    let _ = std::fs::remove_dir(root);
    tracing::info!(folder = %root.display(), moved, dropped, "moved screenshot files into the database");
    Ok(())
}

/// Every image file under `root` (`ab/abcdef....png`): its address and path.
fn files(root: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for prefix in
        std::fs::read_dir(root).with_context(|| format!("{}: cannot read", root.display()))?
    {
        let prefix = prefix?.path();
        if !prefix.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&prefix)? {
            let path = file?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            // Temporary files of an interrupted write start with a dot.
            if let Some((sha, _)) = name.split_once('.').filter(|_| !name.starts_with('.')) {
                found.push((sha.to_string(), path));
            }
        }
    }
    Ok(found)
}

fn delete_files(root: &Path, gone: &[String]) -> usize {
    let mut deleted = 0;
    for sha256 in gone {
        for format in ["png", "webp"] {
            let path = Screenshots::path(root, sha256, format);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    deleted += 1;
                    if let Some(dir) = path.parent() {
                        let _ = crate::files::sync_dir(dir);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "cannot delete a screenshot past retention")
                }
            }
        }
    }
    deleted
}
