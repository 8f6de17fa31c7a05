//! `POST /api/v1/alerts`: alert batches from agents (and DNS alerts from resolvers).
//!
//! Idempotent on the alert id: a batch sent twice (the agent never heard the first answer) stores each
//! alert once and acknowledges every id both times. The 2xx goes out only after the screenshots are
//! durable (file fsynced, or row committed) and the transaction committed, so an acknowledged alert is never lost.

use axum::extract::State;
use axum::Json;
use base64::Engine;
use ward_protocol::{Alert, AlertBatch, AlertSource, IngestReceipt};

use super::extract::{Device, Strict};
use super::Failure;
use crate::app::App;
use crate::screenshots::Screenshots;
use crate::store::{AlertRecord, ScreenshotRef};

pub async fn alerts(
    State(app): State<App>,
    device: Device,
    Strict(batch): Strict<AlertBatch>,
) -> Result<Json<IngestReceipt>, Failure> {
    let received = jiff::Timestamp::now().as_microsecond();
    let mut records = Vec::with_capacity(batch.alerts.len());
    let mut images = Vec::new();
    for (i, alert) in batch.alerts.iter().enumerate() {
        check_sender(&device, alert).map_err(|(field, problem)| {
            Failure::invalid(format!("alerts[{i}].{field}"), problem)
        })?;
        let (record, image) = to_record(alert, received)
            .map_err(|problem| Failure::invalid(format!("alerts[{i}].screenshot"), problem))?;
        records.push(record);
        images.extend(image);
    }
    let stored = batch.alerts.iter().map(|a| a.id).collect();
    let app2 = app.clone();
    let duplicates = tokio::task::spawn_blocking(move || {
        let images: Vec<(String, &str, &[u8])> = images
            .iter()
            .map(|(sha, format, bytes)| (sha.clone(), format.as_str(), bytes.as_slice()))
            .collect();
        app2.screenshots()
            .store_then(&images, || Ok(app2.store().insert_alerts(&records)?))
    })
    .await
    .map_err(|e| Failure::Internal(format!("ingest task: {e}")))??;
    Ok(Json(IngestReceipt { stored, duplicates }))
}

/// What a device may claim: its own id, and the sources its kind produces.
fn check_sender(device: &Device, alert: &Alert) -> Result<(), (&'static str, String)> {
    if alert.device != device.record.id {
        return Err((
            "device",
            format!(
                "`{}` is not the sending device's id `{}`",
                alert.device, device.record.id
            ),
        ));
    }
    let dns = alert.source == AlertSource::Dns;
    match device.record.kind.as_str() {
        "resolver" if !dns => Err(("source", "resolvers send only dns alerts".into())),
        "agent" if dns => Err(("source", "dns alerts come from resolvers".into())),
        _ => Ok(()),
    }
}

/// A screenshot decoded: (address, format, bytes).
type Image = (String, String, Vec<u8>);

fn to_record(alert: &Alert, received: i64) -> Result<(AlertRecord, Option<Image>), String> {
    let (screenshot, image) = match &alert.screenshot {
        None => (None, None),
        Some(shot) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&shot.data_base64)
                .map_err(|e| format!("data_base64: {e}"))?;
            let looks_right = match shot.format.as_str() {
                "png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
                "webp" => bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
                _ => false,
            };
            if !looks_right {
                return Err(format!("data is not a {} image", shot.format));
            }
            let sha256 = Screenshots::address(&bytes);
            let reference = ScreenshotRef {
                sha256: sha256.clone(),
                format: shot.format.clone(),
                width: i64::from(shot.width),
                height: i64::from(shot.height),
                bytes: bytes.len() as i64,
            };
            (Some(reference), Some((sha256, shot.format.clone(), bytes)))
        }
    };
    let record = AlertRecord {
        id: alert.id.to_string(),
        device: alert.device.clone(),
        user: alert.user.clone(),
        time: alert.time.as_microsecond(),
        received,
        source: alert.source.as_str().to_string(),
        category: alert.category.to_string(),
        severity: i64::from(alert.severity),
        phrase: alert.phrase.clone(),
        context: alert.context.clone(),
        language: alert.language.clone(),
        application: alert.application.clone(),
        window_title: alert.window_title.clone(),
        wordlist_version: alert.wordlist_version.clone(),
        client_ip: alert.client_ip.map(|ip| ip.to_string()),
        screenshot,
        no_screenshot_reason: alert.no_screenshot_reason.clone(),
    };
    Ok((record, image))
}
