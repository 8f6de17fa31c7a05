//! Facts about this workstation: host name, operating system, signed-in user, the address the
//! collector (and so the school's resolver) sees it by.

use std::net::{IpAddr, ToSocketAddrs, UdpSocket};

/// This machine's host name.
pub fn hostname() -> String {
    #[cfg(windows)]
    let name = std::env::var("COMPUTERNAME").ok();
    #[cfg(not(windows))]
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok());
    name.map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The operating system, as heartbeats and enrolment report it.
pub fn os() -> String {
    std::env::consts::OS.to_string()
}

/// The signed-in user: the configured override, else the session's user name.
pub fn user(configured: Option<&str>) -> Option<String> {
    if let Some(user) = configured {
        return Some(user.to_string());
    }
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .filter(|u| !u.is_empty())
        .or_else(account_name)
}

/// The user of the active graphical session on `display` (`:0`), from systemd-logind's session
/// records; `None` without logind or without such a session.
pub fn display_user(display: &str) -> Option<String> {
    let entries = std::fs::read_dir("/run/systemd/sessions").ok()?;
    let mut found = None;
    for entry in entries.filter_map(Result::ok) {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        if field("DISPLAY").as_deref() == Some(display) {
            let active = field("ACTIVE").as_deref() == Some("1");
            if let Some(user) = field("USER") {
                if active || found.is_none() {
                    found = Some(user);
                }
            }
        }
    }
    found
}

/// The name of this process's account, from its uid and the password database.
#[cfg(unix)]
fn account_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_string())
    })
}

#[cfg(not(unix))]
fn account_name() -> Option<String> {
    None
}

/// The local address used to reach `collector_url`'s host: the address the school network (and its
/// resolver) sees this device by. No packet is sent; connecting a UDP socket only picks a route.
pub fn addresses_towards(collector_url: &str) -> Vec<IpAddr> {
    let authority = collector_url
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let target = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:443")
    };
    let Ok(mut resolved) = target.to_socket_addrs() else {
        return Vec::new();
    };
    resolved
        .find_map(|remote| {
            let local: IpAddr = if remote.is_ipv4() {
                [0, 0, 0, 0].into()
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            };
            let socket = UdpSocket::bind((local, 0)).ok()?;
            socket.connect(remote).ok()?;
            Some(socket.local_addr().ok()?.ip())
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_to_a_loopback_collector_is_loopback() {
        assert_eq!(
            addresses_towards("https://127.0.0.1:8443"),
            vec![IpAddr::from([127, 0, 0, 1])]
        );
    }

    #[test]
    fn a_configured_user_wins() {
        assert_eq!(user(Some("jsmith")).as_deref(), Some("jsmith"));
        assert!(!hostname().is_empty());
    }
}
