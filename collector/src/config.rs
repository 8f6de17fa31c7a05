//! `collector.toml`: the raw file as serde sees it, and the validated settings the program uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use ward_service::config::{load, relative_to};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: SocketAddr,
    data_dir: PathBuf,
}

/// Validated collector settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTPS address for the API and review UI.
    pub listen: SocketAddr,
    /// Database, CA and screenshots.
    pub data_dir: PathBuf,
}

impl Default for Config {
    /// The embedded defaults: loopback, data in `./ward-data`.
    fn default() -> Self {
        Config {
            listen: ([127, 0, 0, 1], 8443).into(),
            data_dir: PathBuf::from("ward-data"),
        }
    }
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// The file cannot be read or does not parse.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let RawConfig { listen, data_dir } = load(path)?;
        Ok(Config {
            listen,
            data_dir: relative_to(path, &data_dir),
        })
    }
}
