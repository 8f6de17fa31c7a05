//! Load errors: each names the file and line, so staff can fix a list without reading code.

use std::fmt;

/// One problem found while loading wordlists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A line that cannot be used.
    #[error("{file}:{line}: {reason}")]
    Line {
        /// The file's name as the caller gave it.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong, in words.
        reason: String,
    },
    /// A phrase too long to be matched (over 96 bytes once normalised).
    #[error("{entry}: phrase `{phrase}` is too long (at most 96 bytes once normalised)")]
    TooLong {
        /// `file:line` of the entry.
        entry: String,
        /// The phrase as written.
        phrase: String,
    },
    /// A phrase that normalises to nothing (only punctuation or invisible characters).
    #[error("{entry}: phrase `{phrase}` has no letters or digits")]
    Empty {
        /// `file:line` of the entry.
        entry: String,
        /// The phrase as written.
        phrase: String,
    },
    /// The matching automaton could not be built (too many phrases).
    #[error("cannot build the phrase automaton: {0}")]
    Automaton(String),
}

/// Every problem found in one load; the set is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}
