//! Sockets handed over by systemd socket activation, so the block page can answer on ports 80 and
//! 443 while the collector itself holds no capability to bind a privileged port.
//!
//! systemd passes open listening sockets as file descriptors 3, 4, ... and describes them in the
//! environment: `LISTEN_PID` (the process they are meant for: a child that inherited the variables
//! must not take them), `LISTEN_FDS` (how many) and `LISTEN_FDNAMES` (colon-separated names, from
//! each socket unit's `FileDescriptorName=`). The collector knows two names: [`BLOCK_HTTP`] and
//! [`BLOCK_HTTPS`]; a socket under any other name is closed.
//!
//! Only std is used: `try_clone` duplicates with `F_DUPFD_CLOEXEC`, so the copy kept is
//! close-on-exec however systemd passed it, and the inherited descriptor is closed.

use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};

/// The first file descriptor systemd passes.
pub const FIRST_FD: RawFd = 3;
/// The name of the socket for the plain-HTTP block page (ward-collector-http.socket).
pub const BLOCK_HTTP: &str = "block-http";
/// The name of the socket for HTTPS beside the main port (ward-collector-https.socket).
pub const BLOCK_HTTPS: &str = "block-https";
/// More descriptors than any sane unit passes: a larger count is treated as garbage.
const MAX_FDS: usize = 64;

/// The listening sockets systemd handed over, by role.
#[derive(Debug, Default)]
pub struct Inherited {
    /// Serve the plain-HTTP block page here instead of binding `[ui] block_page_listen`.
    pub block_http: Option<TcpListener>,
    /// Serve HTTPS (the same router as the main port) here too.
    pub block_https: Option<TcpListener>,
}

impl Inherited {
    /// Takes the sockets described by this process's environment. Call it once: the descriptors
    /// become owned by the result (or are closed).
    pub fn from_env() -> Inherited {
        let var = |name: &str| std::env::var(name).ok();
        let passed = parse(
            std::process::id(),
            var("LISTEN_PID").as_deref(),
            var("LISTEN_FDS").as_deref(),
            var("LISTEN_FDNAMES").as_deref(),
        );
        let mut inherited = Inherited::default();
        for (name, fd) in passed {
            let slot = match name.as_str() {
                BLOCK_HTTP => &mut inherited.block_http,
                BLOCK_HTTPS => &mut inherited.block_https,
                _ => {
                    tracing::warn!(fd, name, "ignoring a passed socket with an unknown name");
                    close(fd);
                    continue;
                }
            };
            match adopt(fd) {
                Ok(listener) => *slot = Some(listener),
                Err(e) => tracing::error!(fd, name, error = %e, "cannot use a passed socket"),
            }
        }
        inherited
    }
}

/// The passed descriptors with their names, or none when the variables are absent, malformed or
/// meant for another process (`LISTEN_PID` is not `pid`). Names missing from `LISTEN_FDNAMES` are
/// `unknown`, as systemd itself reports them.
pub fn parse(
    pid: u32,
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    names: Option<&str>,
) -> Vec<(String, RawFd)> {
    if listen_pid.and_then(|p| p.trim().parse::<u32>().ok()) != Some(pid) {
        return Vec::new();
    }
    let Some(count) = listen_fds.and_then(|n| n.trim().parse::<usize>().ok()) else {
        return Vec::new();
    };
    if count > MAX_FDS {
        return Vec::new();
    }
    let mut names = names.unwrap_or_default().split(':');
    (0..count)
        .map(|i| {
            let name = names.next().filter(|n| !n.is_empty()).unwrap_or("unknown");
            (name.to_string(), FIRST_FD + i as RawFd)
        })
        .collect()
}

/// Makes `fd` a close-on-exec, non-blocking listener, closing the inherited descriptor.
fn adopt(fd: RawFd) -> std::io::Result<TcpListener> {
    // SAFETY: systemd passed `fd` to this process (LISTEN_PID matched) and nothing else in the
    // process owns it; `parse` yields each descriptor once.
    let inherited = unsafe { TcpListener::from_raw_fd(fd) };
    // Fails with ENOTSOCK on anything that is not a socket, before it is served.
    inherited.local_addr()?;
    let listener = inherited.try_clone()?;
    drop(inherited);
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Closes a passed descriptor the collector has no use for.
fn close(fd: RawFd) {
    // SAFETY: as in `adopt`: the descriptor was passed to this process and is owned by no one else.
    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_descriptors_from_three() {
        let passed = parse(42, Some("42"), Some("2"), Some("block-http:block-https"));
        assert_eq!(
            passed,
            vec![
                ("block-http".to_string(), 3),
                ("block-https".to_string(), 4)
            ]
        );
    }

    #[test]
    fn another_process_s_sockets_are_not_taken() {
        assert!(parse(42, Some("41"), Some("1"), Some("block-http")).is_empty());
        assert!(parse(42, None, Some("1"), Some("block-http")).is_empty());
        assert!(parse(42, Some("x"), Some("1"), Some("block-http")).is_empty());
    }

    #[test]
    fn a_bad_count_passes_nothing() {
        assert!(parse(7, Some("7"), None, None).is_empty());
        assert!(parse(7, Some("7"), Some("-1"), None).is_empty());
        assert!(parse(7, Some("7"), Some("100000"), None).is_empty());
        assert!(parse(7, Some("7"), Some("0"), Some("block-http")).is_empty());
    }

    #[test]
    fn missing_names_are_unknown() {
        let passed = parse(7, Some("7"), Some("3"), Some("block-https"));
        let names: Vec<&str> = passed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["block-https", "unknown", "unknown"]);
        assert_eq!(passed[2].1, 5);
        assert_eq!(parse(7, Some("7"), Some("1"), None)[0].0, "unknown");
    }
}
