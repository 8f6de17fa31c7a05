//! Reading wordlist folders from disk and building the detector from them.
//!
//! The detector is a leaf library that never touches files; this module is the IO half. Shipped
//! lists live in one folder (replaced by updates) and the school's own additions and suppressions in
//! another (never touched by updates), so a package upgrade cannot undo a school's local decision.
//! Files are `*.txt`, read recursively; the name handed to the detector is the path relative to its
//! folder (`en/suicide.txt`), prefixed `local/` for the local folder, so every entry id says where
//! to edit it. A `local/` folder inside the shipped folder also counts as local.

use std::path::{Path, PathBuf};

use ward_detector::{Detector, LoadErrors, Origin, WordlistFile};

/// Where packages install the shipped wordlists.
#[cfg(windows)]
pub const INSTALLED_DIR: &str = r"C:\Program Files\Ward\wordlists";
/// Where packages install the shipped wordlists.
#[cfg(not(windows))]
pub const INSTALLED_DIR: &str = "/usr/share/ward/wordlists";

/// Where a school keeps its own additions and suppressions.
#[cfg(windows)]
pub const LOCAL_DIR: &str = r"C:\ProgramData\Ward\wordlists.local";
/// Where a school keeps its own additions and suppressions.
#[cfg(not(windows))]
pub const LOCAL_DIR: &str = "/etc/ward/wordlists.local";

/// Why a set of wordlists could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WordlistsError {
    /// No folder given and none installed or in a source checkout.
    #[error("no wordlists found in {INSTALLED_DIR} or next to this program's source checkout; pass --wordlists DIR")]
    NotFound,
    /// A folder or file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Files were read but some lines are wrong (each names file and line).
    #[error("wordlists in {dir}: {errors}")]
    Invalid {
        /// The shipped folder.
        dir: PathBuf,
        /// Every bad line.
        errors: LoadErrors,
    },
}

/// The shipped folder to use when none is configured: the installed lists, or else the `wordlists/`
/// folder of the source checkout this program was built in (so `target/debug/ward-agent scan` works
/// in a clone).
///
/// # Errors
/// [`WordlistsError::NotFound`] when neither exists.
pub fn default_dir() -> Result<PathBuf, WordlistsError> {
    let installed = PathBuf::from(INSTALLED_DIR);
    if installed.is_dir() {
        return Ok(installed);
    }
    let exe = std::env::current_exe().ok();
    exe.iter()
        .flat_map(|p| p.ancestors())
        .find(|d| d.join("Cargo.toml").is_file() && d.join("wordlists").is_dir())
        .map(|d| d.join("wordlists"))
        .ok_or(WordlistsError::NotFound)
}

/// The local folder when none is configured: [`LOCAL_DIR`] if it exists.
pub fn default_local_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(LOCAL_DIR);
    dir.is_dir().then_some(dir)
}

/// The text of every wordlist file, read once, ready to build a detector from.
#[derive(Debug, Default)]
pub struct Texts {
    files: Vec<(String, String, Origin)>,
}

impl Texts {
    /// Reads the shipped folder and, if given, the local folder.
    ///
    /// # Errors
    /// A folder or file that cannot be read (a missing local folder is not an error).
    pub fn read(shipped: &Path, local: Option<&Path>) -> Result<Texts, WordlistsError> {
        let mut texts = Texts::default();
        read_dir(shipped, "", Origin::Shipped, &mut texts.files)?;
        if let Some(local) = local.filter(|d| d.is_dir()) {
            read_dir(local, "local/", Origin::Local, &mut texts.files)?;
        }
        texts.files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(texts)
    }

    /// The files as the detector takes them.
    pub fn files(&self) -> Vec<WordlistFile<'_>> {
        self.files
            .iter()
            .map(|(name, text, origin)| WordlistFile {
                name,
                text,
                origin: *origin,
            })
            .collect()
    }
}

/// Reads and builds, refusing the whole set if any line is wrong: on a reload the caller keeps its
/// last good detector.
///
/// # Errors
/// Unreadable files, or every bad line of every file.
pub fn load(shipped: &Path, local: Option<&Path>) -> Result<Detector, WordlistsError> {
    let texts = Texts::read(shipped, local)?;
    Detector::build(&texts.files()).map_err(|errors| WordlistsError::Invalid {
        dir: shipped.to_path_buf(),
        errors,
    })
}

/// Reads and builds from every good line, returning the bad ones as messages: for a first start,
/// when there is no last good set and monitoring with most of the lists beats none.
///
/// # Errors
/// Unreadable files, or nothing could be built at all.
pub fn load_skipping_errors(
    shipped: &Path,
    local: Option<&Path>,
) -> Result<(Detector, Vec<String>), WordlistsError> {
    let texts = Texts::read(shipped, local)?;
    let (detector, problems) = Detector::build_skipping_errors(&texts.files());
    let detector = detector.map_err(|errors| WordlistsError::Invalid {
        dir: shipped.to_path_buf(),
        errors,
    })?;
    Ok((detector, problems.iter().map(ToString::to_string).collect()))
}

fn read_dir(
    root: &Path,
    prefix: &str,
    origin: Origin,
    out: &mut Vec<(String, String, Origin)>,
) -> Result<(), WordlistsError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WordlistsError::Read { path, source }
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(read_err(&dir))? {
            let path = entry.map_err(read_err(&dir))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "txt") {
                let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let name = format!("{prefix}{}", relative.to_string_lossy().replace('\\', "/"));
                let origin = if name.starts_with("local/") {
                    Origin::Local
                } else {
                    origin
                };
                out.push((name, text, origin));
            }
        }
    }
    Ok(())
}
