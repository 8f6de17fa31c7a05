//! `agent.toml`: the raw file as serde sees it, and the validated settings the program uses.

use std::path::Path;

use serde::Deserialize;
use ward_service::config::load;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    collector: String,
}

/// Validated agent settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The collector's base URL.
    pub collector: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            collector: "https://127.0.0.1:8443".into(),
        }
    }
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// The file cannot be read or does not parse.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let RawConfig { collector } = load(path)?;
        Ok(Config { collector })
    }
}
