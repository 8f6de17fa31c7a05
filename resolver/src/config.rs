//! `resolver.toml`: the raw file as serde sees it, and the validated settings the program uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use ward_service::config::{load, relative_to, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Vec<SocketAddr>,
    upstreams: Vec<SocketAddr>,
    policy: PathBuf,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    rate_limit: RawRateLimit,
    #[serde(default)]
    query_log: RawQueryLog,
    #[serde(default = "default_udp_payload")]
    udp_payload: u16,
}

fn default_udp_payload() -> u16 {
    1232
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCache {
    max_entries: usize,
    min_ttl: u32,
    max_ttl: u32,
    negative_ttl: u32,
    serve_stale: bool,
    stale_for: u32,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            max_entries: 100_000,
            min_ttl: 0,
            max_ttl: 86_400,
            negative_ttl: 300,
            serve_stale: false,
            stale_for: 86_400,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawUpstream {
    attempt_timeout_ms: u64,
    deadline_ms: u64,
}

impl Default for RawUpstream {
    fn default() -> Self {
        RawUpstream {
            attempt_timeout_ms: 800,
            deadline_ms: 2500,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRateLimit {
    queries_per_second: u32,
    burst: u32,
    exempt: Vec<IpNet>,
    tcp_connections_per_client: usize,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        RawRateLimit {
            queries_per_second: 0,
            burst: 0,
            exempt: Vec::new(),
            tcp_connections_per_client: 16,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawQueryLog {
    enabled: bool,
    rotate_mib: f64,
    retention_days: u32,
    max_total_mib: f64,
}

impl Default for RawQueryLog {
    fn default() -> Self {
        RawQueryLog {
            enabled: true,
            rotate_mib: 64.0,
            retention_days: 30,
            max_total_mib: 4096.0,
        }
    }
}

/// Smallest file size a query log rotates at (a few dozen records).
const MIN_ROTATE_MIB: f64 = 1.0 / 64.0;

/// Cache settings.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Most answers kept.
    pub max_entries: usize,
    /// Floor on cached TTLs (seconds).
    pub min_ttl: u32,
    /// Ceiling on cached TTLs.
    pub max_ttl: u32,
    /// Ceiling on NXDOMAIN/NODATA TTLs.
    pub negative_ttl: u32,
    /// When every upstream is down, answer expired data (TTL 30) rather than SERVFAIL.
    pub serve_stale: bool,
    /// How long past expiry an answer may still be served stale.
    pub stale_for: Duration,
}

/// Forwarding timeouts.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// How long one upstream gets before the next is tried.
    pub attempt_timeout: Duration,
    /// When the client gets SERVFAIL (or stale data) if no upstream answered.
    pub deadline: Duration,
}

/// Per-client rate limiting.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// Sustained queries per second per client address; 0 turns limiting off.
    pub queries_per_second: u32,
    /// Burst allowance.
    pub burst: u32,
    /// Never limited (the policy's own networks are added to these).
    pub exempt: Vec<IpNet>,
    /// Most TCP connections one client may hold open at once; 0 for no cap.
    pub tcp_connections_per_client: usize,
}

/// Query log settings.
#[derive(Debug, Clone)]
pub struct QueryLogConfig {
    /// Whether decisions are logged.
    pub enabled: bool,
    /// Rotate when the current file passes this size (it also rotates daily).
    pub rotate_bytes: u64,
    /// Delete rotated files older than this many days.
    pub retention_days: u32,
    /// Delete the oldest rotated files while all of them together are larger than this.
    pub max_total_bytes: u64,
}

/// Validated resolver settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file they came from.
    pub path: PathBuf,
    /// Addresses to answer DNS on (UDP and TCP).
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers to forward allowed queries to, in order of preference.
    pub upstreams: Vec<SocketAddr>,
    /// The filter policy file.
    pub policy: PathBuf,
    /// Where leases, the query log, alert queue and enrolment live.
    pub state_dir: PathBuf,
    /// Cache.
    pub cache: CacheConfig,
    /// Forwarding.
    pub upstream: UpstreamConfig,
    /// Rate limiting.
    pub rate_limit: RateLimitConfig,
    /// Query log.
    pub query_log: QueryLogConfig,
    /// Largest UDP answer offered to EDNS clients.
    pub udp_payload: u16,
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or names no listener or upstream.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let RawConfig {
            listen,
            upstreams,
            policy,
            state_dir,
            cache,
            upstream,
            rate_limit,
            query_log,
            udp_payload,
        } = load(path)?;
        if listen.is_empty() {
            return Err(ConfigError::invalid(
                path,
                "listen: at least one address is needed",
            ));
        }
        if !(512..=4096).contains(&udp_payload) {
            return Err(ConfigError::invalid(
                path,
                "udp_payload: must be between 512 and 4096",
            ));
        }
        let RawCache {
            max_entries,
            min_ttl,
            max_ttl,
            negative_ttl,
            serve_stale,
            stale_for,
        } = cache;
        let RawUpstream {
            attempt_timeout_ms,
            deadline_ms,
        } = upstream;
        if attempt_timeout_ms == 0 || deadline_ms < attempt_timeout_ms {
            return Err(ConfigError::invalid(
                path,
                "upstream: deadline_ms must be at least attempt_timeout_ms, which must be above 0",
            ));
        }
        let RawRateLimit {
            queries_per_second,
            burst,
            exempt,
            tcp_connections_per_client,
        } = rate_limit;
        let RawQueryLog {
            enabled,
            rotate_mib,
            retention_days,
            max_total_mib,
        } = query_log;
        if rotate_mib.is_nan()
            || rotate_mib < MIN_ROTATE_MIB
            || max_total_mib.is_nan()
            || max_total_mib < rotate_mib
        {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "query_log: rotate_mib must be at least {MIN_ROTATE_MIB} and max_total_mib at least rotate_mib"
                ),
            ));
        }
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            upstreams,
            policy: relative_to(path, &policy),
            state_dir: relative_to(
                path,
                &state_dir.unwrap_or_else(|| PathBuf::from("ward-data/resolver")),
            ),
            cache: CacheConfig {
                max_entries: max_entries.max(16),
                min_ttl,
                max_ttl: max_ttl.max(min_ttl),
                negative_ttl,
                serve_stale,
                stale_for: Duration::from_secs(u64::from(stale_for)),
            },
            upstream: UpstreamConfig {
                attempt_timeout: Duration::from_millis(attempt_timeout_ms),
                deadline: Duration::from_millis(deadline_ms),
            },
            rate_limit: RateLimitConfig {
                queries_per_second,
                burst: burst.max(queries_per_second),
                exempt,
                tcp_connections_per_client,
            },
            query_log: QueryLogConfig {
                enabled,
                rotate_bytes: mib_to_bytes(rotate_mib),
                retention_days,
                max_total_bytes: mib_to_bytes(max_total_mib),
            },
            udp_payload,
        })
    }
}

fn mib_to_bytes(mib: f64) -> u64 {
    (mib * 1024.0 * 1024.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config")
            .join(name)
    }

    #[test]
    fn every_example_loads_and_an_unknown_key_in_any_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["resolver.toml", "gateway.toml"] {
            let config = Config::load(&example(name)).unwrap();
            assert!(config.query_log.max_total_bytes >= config.query_log.rotate_bytes);
            let text = std::fs::read_to_string(example(name)).unwrap();
            let broken = dir.path().join(name);
            std::fs::write(&broken, format!("{text}\nno_such_key = 1\n")).unwrap();
            assert!(Config::load(&broken).is_err(), "{name} with an unknown key");
        }
    }

    #[test]
    fn a_query_log_bound_below_its_rotation_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolver.toml");
        let write = |query_log: &str| {
            std::fs::write(
                &path,
                format!("listen = [\"127.0.0.1:0\"]\nupstreams = []\npolicy = \"p.toml\"\n[query_log]\n{query_log}\n"),
            )
            .unwrap();
        };
        write("rotate_mib = 0.5\nmax_total_mib = 2");
        assert_eq!(
            Config::load(&path).unwrap().query_log.rotate_bytes,
            512 * 1024
        );
        write("rotate_mib = 8\nmax_total_mib = 4");
        assert!(Config::load(&path).is_err());
        write("rotate_mib = 0.001");
        assert!(Config::load(&path).is_err());
    }
}
