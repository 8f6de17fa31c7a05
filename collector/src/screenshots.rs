//! Screenshots live outside the database, content-addressed: `<data-dir>/screenshots/ab/abcdef....png`
//! where the name is the SHA-256 of the image bytes. The same image twice is one file; the database
//! rows only hold the address. A file is written durably before the alert that refers to it commits,
//! and deleted (really unlinked, folder synced) when retention drops the last alert referring to it.
//!
//! Ingest and retention are kept apart by one read/write gate: ingest holds it shared from writing the
//! file until its transaction commits, retention holds it exclusively while it removes rows and files,
//! so retention can never delete a file an alert is just about to refer to.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// The screenshot folder.
#[derive(Debug)]
pub struct Screenshots {
    root: PathBuf,
    gate: RwLock<()>,
}

impl Screenshots {
    /// Uses `<data_dir>/screenshots`, creating it.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn open(data_dir: &Path) -> anyhow::Result<Screenshots> {
        let root = data_dir.join("screenshots");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("{}: cannot create", root.display()))?;
        Ok(Screenshots {
            root,
            gate: RwLock::new(()),
        })
    }

    /// Where the image with this address lives.
    pub fn path(&self, sha256: &str, format: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("00");
        self.root.join(prefix).join(format!("{sha256}.{format}"))
    }

    /// Hex SHA-256 of image bytes.
    pub fn address(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Runs `commit` with the gate held shared after making sure every image is on disk.
    ///
    /// # Errors
    /// A file cannot be written, or `commit` fails.
    pub fn store_then<T>(
        &self,
        images: &[(String, &str, &[u8])],
        commit: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
        for (sha256, format, bytes) in images {
            let path = self.path(sha256, format);
            if !path.exists() {
                crate::files::write_atomic(&path, bytes, true)?;
            }
        }
        commit()
    }

    /// Runs `purge` with the gate held exclusively, then deletes the files of the addresses it
    /// returns (every format).
    ///
    /// # Errors
    /// `purge` fails; a file that cannot be deleted is logged and reported.
    pub fn purge_with(
        &self,
        purge: impl FnOnce() -> anyhow::Result<Vec<String>>,
    ) -> anyhow::Result<usize> {
        let _exclusive = self.gate.write().unwrap_or_else(|e| e.into_inner());
        let gone = purge()?;
        let mut deleted = 0;
        for sha256 in &gone {
            for format in ["png", "webp"] {
                let path = self.path(sha256, format);
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
        Ok(deleted)
    }
}
