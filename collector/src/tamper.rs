//! Alerts the collector raises about a device itself: its agent went silent in school hours, or a
//! heartbeat says the monitoring helper of a live session stopped (a pupil who kills the helper shows
//! up, not a healthy device).
//!
//! Every one is built by [`device_alert`], as the agent builds its own reports of lost alerts: source
//! `device`, category [`Category::TAMPER`] from the shared vocabulary (there is no `device` category),
//! no screenshot, and a context that says what happened in words a DSL can act on.

use ward_protocol::{AlertSource, Category};

use crate::store::{AlertRecord, DeviceRecord, Micros};

/// Severity of a device alert: worth a look today, not an emergency by itself.
pub const SEVERITY: i64 = 3;

/// An alert about `device` (naming `user` when it concerns one person's session).
pub fn device_alert(
    device: &DeviceRecord,
    user: Option<String>,
    now: Micros,
    phrase: &str,
    context: String,
) -> AlertRecord {
    AlertRecord {
        id: uuid::Uuid::now_v7().to_string(),
        device: device.id.clone(),
        user,
        time: now,
        received: now,
        source: AlertSource::Device.as_str().into(),
        category: Category::TAMPER.as_str().into(),
        severity: SEVERITY,
        phrase: phrase.into(),
        context,
        language: None,
        application: None,
        window_title: None,
        wordlist_version: None,
        client_ip: device.last_ip.clone(),
        screenshot: None,
        no_screenshot_reason: Some("raised by the collector".into()),
    }
}

/// The agent of `device` has sent no heartbeat since `last`.
pub fn silent(device: &DeviceRecord, now: Micros, last: Micros) -> AlertRecord {
    let minutes = (now - last) / 60_000_000;
    device_alert(
        device,
        None,
        now,
        "device silent",
        format!(
            "no heartbeat from {} for {minutes} minutes during school hours: the agent may have been stopped or the device taken off the network",
            device.hostname
        ),
    )
}

/// Users whose helper the new heartbeat reports dead and the previous one did not: each gets one
/// alert per stop, not one per heartbeat.
pub fn newly_stopped<'a>(previous: Option<&str>, now_dead: &[&'a str]) -> Vec<&'a str> {
    let before: Vec<&str> = previous
        .unwrap_or_default()
        .split(',')
        .filter(|u| !u.is_empty())
        .collect();
    let mut fresh: Vec<&str> = now_dead
        .iter()
        .copied()
        .filter(|u| !before.contains(u))
        .collect();
    fresh.sort_unstable();
    fresh.dedup();
    fresh
}

/// The monitoring helper of `user`'s session on `device` stopped while the session lives on.
pub fn helper_stopped(device: &DeviceRecord, user: &str, now: Micros) -> AlertRecord {
    device_alert(
        device,
        Some(user.to_string()),
        now,
        "monitoring helper stopped",
        format!(
            "the monitoring helper of {user}'s session on {} stopped reporting without a logoff: typing and window titles in that session are not being checked (it may have been killed, or the device may have crashed)",
            device.hostname
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_reported_once() {
        assert_eq!(newly_stopped(None, &["alex", "bo"]), ["alex", "bo"]);
        assert_eq!(newly_stopped(Some("alex"), &["alex", "bo"]), ["bo"]);
        assert!(newly_stopped(Some("alex,bo"), &["bo"]).is_empty());
        assert!(newly_stopped(Some(""), &[]).is_empty());
    }
}
