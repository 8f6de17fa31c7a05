//! Reading a TOML configuration file with errors that name the file, line, column and field.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the expected fields.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The file parsed but a value is not acceptable.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

impl ConfigError {
    /// An error about a value found in `path` after parsing.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Reads and parses `path` into `T`. Raw config structs should use `deny_unknown_fields` so a typo is
/// an error rather than a silently ignored setting.
///
/// # Errors
/// [`ConfigError::Read`] if the file cannot be read, [`ConfigError::Parse`] with line and column if it
/// is not valid for `T`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses `text` (the contents of `path`) into `T`.
///
/// # Errors
/// [`ConfigError::Parse`] naming line, column and field.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_column(text, s.start))
            .unwrap_or((1, 1));
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: one_line(e.message()),
        }
    })
}

/// Resolves a path written in a config file: relative paths are relative to the file's folder.
pub fn relative_to(config_path: &Path, value: &Path) -> PathBuf {
    if value.is_absolute() {
        value.to_path_buf()
    } else {
        config_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(value)
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        port: u16,
    }

    fn error_of(text: &str) -> String {
        parse::<Sample>(Path::new("/etc/ward/sample.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let msg = error_of("name = \"a\"\nport = 70000\n");
        assert!(msg.starts_with("/etc/ward/sample.toml:2:8:"), "{msg}");
        let msg = error_of("name = \"a\"\nport = 53\nprot = 5\n");
        assert!(
            msg.starts_with("/etc/ward/sample.toml:3:1:") && msg.contains("prot"),
            "{msg}"
        );
        let msg = error_of("name = \"a\"\n");
        assert!(msg.contains("port"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let cfg = Path::new("/etc/ward/resolver.toml");
        assert_eq!(
            relative_to(cfg, Path::new("policy.toml")),
            Path::new("/etc/ward/policy.toml")
        );
        assert_eq!(
            relative_to(cfg, Path::new("/srv/p.toml")),
            Path::new("/srv/p.toml")
        );
    }

    #[test]
    fn unreadable_file_is_named() {
        let msg = load::<Sample>(Path::new("/nonexistent/ward.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("/nonexistent/ward.toml: cannot read"),
            "{msg}"
        );
    }
}
