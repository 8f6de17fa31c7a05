//! The administrative subcommands: they open the same store the server uses (SQLite in WAL mode is
//! safe to open beside a running server) and print for people or, with `--json`, one object per line.

use std::io::Write;

use anyhow::Context;
use rand::Rng;
use serde_json::json;

use crate::cli::{Command, DeviceCommand, TokenCommand, UserCommand};
use crate::config::Config;
use crate::notices::UserNotice;
use crate::store::{AlertQuery, AlertRecord, DeviceRecord, NewToken};

/// Runs one subcommand.
///
/// # Errors
/// Bad arguments (named), or the store fails.
pub fn run(config: &Config, command: Command) -> anyhow::Result<()> {
    let store = crate::app::open_store(config)?;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Token(TokenCommand::Create { uses, expires }) => {
            if uses == 0 {
                anyhow::bail!("--uses: must be at least 1");
            }
            let lifetime =
                parse_duration(&expires).with_context(|| format!("--expires `{expires}`"))?;
            let token = new_token();
            let now = jiff::Timestamp::now().as_microsecond();
            store.add_token(&NewToken {
                sha256: crate::api::token_hash(&token),
                uses,
                expires: Some(now.saturating_add(lifetime.as_micros() as i64)),
                created: now,
            })?;
            writeln!(out, "{token}")?;
        }
        Command::User(UserCommand::Add { role, groups, name }) => {
            let password = crate::accounts::add_user(&*store, &name, &role, &groups)?;
            writeln!(out, "{password}")?;
        }
        Command::Alerts(args) => {
            let since = args
                .since
                .as_deref()
                .map(|s| {
                    s.parse::<jiff::Timestamp>()
                        .with_context(|| format!("--since `{s}`: not an RFC 3339 time"))
                })
                .transpose()?;
            let alerts = store.alerts(&AlertQuery {
                since: since.map(|t| t.as_microsecond()),
                limit: None,
            })?;
            for alert in &alerts {
                if args.json {
                    writeln!(out, "{}", alert_json(alert))?;
                } else {
                    writeln!(out, "{}", alert_line(alert))?;
                }
            }
        }
        Command::Devices(args) => {
            for device in store.devices()? {
                if args.json {
                    writeln!(out, "{}", device_json(&device))?;
                } else {
                    writeln!(out, "{}", device_line(&device))?;
                }
            }
        }
        Command::Notices(args) => {
            let users = crate::notices::by_user(store.disclosures()?, &store.devices()?);
            for user in &users {
                if args.json {
                    writeln!(out, "{}", notice_json(user))?;
                } else {
                    writeln!(out, "{}", notice_line(user))?;
                }
            }
        }
        Command::Device(DeviceCommand::Revoke { id }) => {
            if !store.revoke_device(&id, jiff::Timestamp::now().as_microsecond())? {
                anyhow::bail!("no device `{id}` (see `ward-collector devices`)");
            }
            writeln!(out, "revoked {id}")?;
        }
    }
    Ok(())
}

/// A 32-character token from an unambiguous alphabet (about 165 bits).
fn new_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `30s`, `15m`, `12h`, `7d`, `2w`.
fn parse_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .context("needs a unit: s, m, h, d or w")?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().context("needs a number before the unit")?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => anyhow::bail!("unknown unit `{other}` (use s, m, h, d or w)"),
    };
    if n == 0 {
        anyhow::bail!("must be longer than zero");
    }
    Ok(std::time::Duration::from_secs(n.saturating_mul(secs)))
}

fn time_text(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| us.to_string())
}

fn alert_json(a: &AlertRecord) -> serde_json::Value {
    json!({
        "id": a.id,
        "device": a.device,
        "user": a.user,
        "time": time_text(a.time),
        "received": time_text(a.received),
        "source": a.source,
        "category": a.category,
        "severity": a.severity,
        "phrase": a.phrase,
        "context": a.context,
        "application": a.application,
        "window_title": a.window_title,
        "client_ip": a.client_ip,
        "screenshot": a.screenshot.is_some(),
        "screenshot_sha256": a.screenshot.as_ref().map(|s| &s.sha256),
        "no_screenshot_reason": a.no_screenshot_reason,
    })
}

fn alert_line(a: &AlertRecord) -> String {
    format!(
        "{}  {}  sev {}  {:<14} {:<12} {:<20} {:<20} {}{}",
        time_text(a.time),
        a.id,
        a.severity,
        a.category,
        a.source,
        a.device,
        a.user.as_deref().unwrap_or("-"),
        a.phrase,
        if a.screenshot.is_some() {
            "  [screenshot]"
        } else {
            ""
        }
    )
}

fn device_json(d: &DeviceRecord) -> serde_json::Value {
    json!({
        "id": d.id,
        "kind": d.kind,
        "hostname": d.hostname,
        "os": d.os,
        "version": d.program_version,
        "enrolled": time_text(d.enrolled),
        "revoked": d.revoked.map(time_text),
        "last_heartbeat": d.last_heartbeat.map(time_text),
        "last_ip": d.last_ip,
        "wordlist_version": d.wordlist_version,
        "spool_depth": d.spool_depth,
        "spool_dropped": d.spool_dropped,
        "silent": d.silent_since.is_some(),
        "silent_since": d.silent_since.map(time_text),
        "sessions_without_helper": d.dead_helpers,
    })
}

fn device_line(d: &DeviceRecord) -> String {
    let state = if d.revoked.is_some() {
        "revoked"
    } else if d.silent_since.is_some() {
        "SILENT"
    } else {
        "ok"
    };
    format!(
        "{:<28} {:<8} {:<8} {:<24} {:<14} last heartbeat {}",
        d.id,
        d.kind,
        state,
        d.hostname,
        d.last_ip.as_deref().unwrap_or("-"),
        d.last_heartbeat
            .map(time_text)
            .unwrap_or_else(|| "never".into())
    )
}

fn notice_json(u: &UserNotice) -> serde_json::Value {
    json!({
        "user": u.user,
        "never_shown": u.never_shown(),
        "last_shown": u.last_shown.map(time_text),
        "notice_sha256": u.notice_sha256,
        "first_seen": time_text(u.first_seen),
        "last_seen": time_text(u.last_seen),
        "devices": u.devices.iter().map(|d| json!({
            "device": d.device,
            "hostname": d.hostname,
            "last_seen": time_text(d.last_seen),
            "shown": d.shown.map(time_text),
            "notice_sha256": d.notice_sha256,
        })).collect::<Vec<_>>(),
    })
}

fn notice_line(u: &UserNotice) -> String {
    let shown = match u.last_shown {
        Some(t) => format!("last shown {}", time_text(t)),
        None => "NEVER SHOWN".into(),
    };
    let unshown = u.unshown_devices().count();
    format!(
        "{:<24} {:<40} last seen {}  {} device(s){}",
        u.user,
        shown,
        time_text(u.last_seen),
        u.devices.len(),
        if unshown > 0 && !u.never_shown() {
            format!(", not shown on {unshown}")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 604_800);
        for bad in ["7", "d", "0h", "3y", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
