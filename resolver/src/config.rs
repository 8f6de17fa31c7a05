//! `resolver.toml`: the raw file as serde sees it, and the validated settings the program uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use ward_service::config::{load, relative_to};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Vec<SocketAddr>,
    upstreams: Vec<SocketAddr>,
    policy: PathBuf,
}

/// Validated resolver settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to answer DNS on (UDP and TCP).
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers to forward allowed queries to.
    pub upstreams: Vec<SocketAddr>,
    /// The filter policy file.
    pub policy: PathBuf,
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or names no listener or upstream.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let RawConfig {
            listen,
            upstreams,
            policy,
        } = load(path)?;
        if listen.is_empty() {
            return Err(ward_service::config::ConfigError::invalid(
                path,
                "listen: at least one address is needed",
            )
            .into());
        }
        Ok(Config {
            listen,
            upstreams,
            policy: relative_to(path, &policy),
        })
    }
}
