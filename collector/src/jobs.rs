//! Background jobs: retention (hourly; alerts, screenshots and disclosure rows) and silent devices
//! (every minute). Each pass is a plain
//! function of the state and a time, so tests call it directly with the time they need.

use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::store::Purged;

/// Runs the jobs until `shutdown`.
pub async fn run(app: App, shutdown: CancellationToken) {
    let mut retention = tokio::time::interval(Duration::from_secs(3600));
    let mut silent = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = retention.tick() => {
                let app = app.clone();
                match tokio::task::spawn_blocking(move || retention_pass(&app, Timestamp::now())).await {
                    Ok(Ok(p)) if p.alerts > 0 || !p.screenshots.is_empty() || p.disclosures > 0 => {
                        tracing::info!(alerts = p.alerts, screenshots = p.screenshots.len(), disclosures = p.disclosures, "retention purged");
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "retention pass failed"),
                    Err(e) => tracing::error!(error = %e, "retention pass panicked"),
                }
            }
            _ = silent.tick() => {
                let app = app.clone();
                match tokio::task::spawn_blocking(move || silent_pass(&app, Timestamp::now())).await {
                    Ok(Ok(flagged)) => for id in flagged {
                        tracing::warn!(device = %id, "device is silent during school hours");
                    },
                    Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "silent-device check failed"),
                    Err(e) => tracing::error!(error = %e, "silent-device check panicked"),
                }
            }
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Deletes alerts past their category's retention and screenshots past theirs (files included).
///
/// # Errors
/// The store fails.
pub fn retention_pass(app: &App, now: Timestamp) -> anyhow::Result<Purged> {
    let now_us = now.as_microsecond();
    let retention = &app.config().retention;
    let mut rules: Vec<(Option<String>, i64)> = retention
        .categories
        .iter()
        .map(|(c, d)| (Some(c.to_string()), now_us.saturating_sub(micros(*d))))
        .collect();
    rules.push((None, now_us.saturating_sub(micros(retention.alerts))));
    let screenshots_before = now_us.saturating_sub(micros(retention.screenshots));
    let mut purged = Purged::default();
    app.screenshots().purge_with(|| {
        purged = app.store().purge(&rules, screenshots_before, now_us)?;
        Ok(purged.screenshots.clone())
    })?;
    // Who was shown the monitoring notice is kept as long as the alerts it makes lawful.
    purged.disclosures = app
        .store()
        .purge_disclosures(now_us.saturating_sub(micros(retention.alerts)))?;
    Ok(purged)
}

/// Whether `now` falls in school hours.
pub fn in_school_hours(app: &App, now: Timestamp) -> bool {
    let silent = &app.config().silent;
    let local = now.to_zoned(silent.timezone.clone());
    let weekday = local.weekday().to_monday_zero_offset() as u8;
    let minute = local.hour() as u16 * 60 + local.minute() as u16;
    silent.days.contains(&weekday) && (silent.opens..silent.closes).contains(&minute)
}

/// Flags agents with no heartbeat for the configured time during school hours, each with a device
/// alert ([`crate::tamper::silent`]); returns the ids newly flagged.
///
/// # Errors
/// The store fails.
pub fn silent_pass(app: &App, now: Timestamp) -> anyhow::Result<Vec<String>> {
    if !in_school_hours(app, now) {
        return Ok(Vec::new());
    }
    let now_us = now.as_microsecond();
    let cutoff = now_us.saturating_sub(micros(app.config().silent.after));
    let mut flagged = Vec::new();
    for device in app.store().devices()? {
        let last = device.last_heartbeat.unwrap_or(device.enrolled);
        if device.kind != "agent"
            || device.revoked.is_some()
            || device.silent_since.is_some()
            || last >= cutoff
        {
            continue;
        }
        let alert = crate::tamper::silent(&device, now_us, last);
        if app.store().flag_silent(&device.id, now_us, &alert)? {
            flagged.push(device.id);
        }
    }
    Ok(flagged)
}
