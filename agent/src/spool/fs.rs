//! The spool's filesystem, behind a trait so tests can fill the disk, corrupt files and crash at will.
//!
//! The contract is what durability needs: [`SpoolFs::write_durable`] either leaves the complete file
//! under its name, flushed to stable storage, or leaves no file under that name at all.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Files in one folder, written atomically and durably.
pub trait SpoolFs: Send + Sync {
    /// Names and sizes of the files in the folder (temporary files excluded).
    ///
    /// # Errors
    /// The folder cannot be read.
    fn list(&self) -> io::Result<Vec<(String, u64)>>;

    /// The whole content of `name`.
    ///
    /// # Errors
    /// The file is missing or unreadable.
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;

    /// Writes `bytes` as `name`: complete and on stable storage when this returns `Ok`, absent or
    /// unchanged otherwise (temp file, fsync, rename, fsync of the folder).
    ///
    /// # Errors
    /// The disk is full or the folder is not writable.
    fn write_durable(&self, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// Deletes `name`; deleting a missing file is not an error.
    ///
    /// # Errors
    /// The file exists and cannot be removed.
    fn remove(&self, name: &str) -> io::Result<()>;
}

/// The real filesystem: one folder.
#[derive(Debug, Clone)]
pub struct DiskFs {
    dir: PathBuf,
}

/// Prefix of files being written; left behind only by a crash, and removed when the spool opens.
const TEMP_PREFIX: &str = ".tmp-";

impl DiskFs {
    /// Uses `dir` (created if missing, mode 0700: alerts hold sensitive text) and removes temporary
    /// files a crash left behind.
    ///
    /// # Errors
    /// The folder cannot be created or read.
    pub fn open(dir: &Path) -> io::Result<DiskFs> {
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(DiskFs {
            dir: dir.to_path_buf(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn sync_dir(&self) -> io::Result<()> {
        // Directories cannot be opened for syncing on Windows; NTFS journals the rename itself.
        #[cfg(unix)]
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

impl SpoolFs for DiskFs {
    fn list(&self) -> io::Result<Vec<(String, u64)>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            // A file may be acknowledged and removed by another process between listing and stat.
            if let Ok(meta) = entry.metadata() {
                if meta.is_file() {
                    names.push((name, meta.len()));
                }
            }
        }
        Ok(names)
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.dir.join(name))
    }

    fn write_durable(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temp = self
            .dir
            .join(format!("{TEMP_PREFIX}{}-{name}", std::process::id()));
        let written = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, self.dir.join(name))
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        self.sync_dir()
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// An in-memory filesystem with a capacity, for tests of full disks, corruption and crashes.
pub mod memory {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// Shared state, so a test can "reboot" by opening a new spool on the same files.
    #[derive(Debug, Clone, Default)]
    pub struct MemFs {
        inner: Arc<Mutex<State>>,
    }

    #[derive(Debug, Default)]
    struct State {
        files: BTreeMap<String, Vec<u8>>,
        capacity: Option<u64>,
    }

    impl MemFs {
        /// An empty filesystem holding at most `capacity` bytes (unbounded with `None`).
        pub fn with_capacity(capacity: Option<u64>) -> MemFs {
            let fs = MemFs::default();
            fs.inner.lock().unwrap().capacity = capacity;
            fs
        }

        /// Overwrites part of a file, as a failing disk would.
        pub fn corrupt(&self, name: &str, at: usize) {
            let mut state = self.inner.lock().unwrap();
            if let Some(bytes) = state.files.get_mut(name) {
                let at = at % bytes.len().max(1);
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 0x5a;
                }
            }
        }

        /// Bytes in use.
        pub fn used(&self) -> u64 {
            let state = self.inner.lock().unwrap();
            state.files.values().map(|b| b.len() as u64).sum()
        }
    }

    impl SpoolFs for MemFs {
        fn list(&self) -> io::Result<Vec<(String, u64)>> {
            let state = self.inner.lock().unwrap();
            Ok(state
                .files
                .iter()
                .map(|(n, b)| (n.clone(), b.len() as u64))
                .collect())
        }

        fn read(&self, name: &str) -> io::Result<Vec<u8>> {
            let state = self.inner.lock().unwrap();
            state
                .files
                .get(name)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn write_durable(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
            let mut state = self.inner.lock().unwrap();
            let used: u64 = state
                .files
                .iter()
                .filter(|(n, _)| n.as_str() != name)
                .map(|(_, b)| b.len() as u64)
                .sum();
            if let Some(cap) = state.capacity {
                if used + bytes.len() as u64 > cap {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
                }
            }
            state.files.insert(name.to_string(), bytes.to_vec());
            Ok(())
        }

        fn remove(&self, name: &str) -> io::Result<()> {
            self.inner.lock().unwrap().files.remove(name);
            Ok(())
        }
    }
}
