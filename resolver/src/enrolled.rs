//! A resolver enrolled with a collector: it takes policy only from the collector (approved, logged
//! changes) and identity leases from the collector's stream, keeps the last copy of both in the state
//! dir so it filters the same way while the collector is away, and ships its high-risk block alerts.
//!
//! State dir files: the collector client's identity (`device-key.pem`, `device-cert.pem`, `ca.pem`,
//! `device-id`), `collector-url`, `collector-policy.toml` + `collector-policy.revision` (last policy
//! applied), `leases.json` (last lease set), `alerts/queue.jsonl` (alerts not yet acknowledged).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use ward_collector_client::{Client, Enrolment, Identity, SubscribeOptions};
use ward_protocol::{
    Alert, AlertBatch, DeviceKind, PolicySnapshot, StreamEvent, MAX_BATCH, PROTOCOL_VERSION,
};

use crate::identity::{Leases, LEASE_FILE};
use crate::policy::Policy;
use crate::reload;
use crate::state::State;

/// File naming the collector this resolver enrolled with.
pub const URL_FILE: &str = "collector-url";
/// The last policy the collector sent (applied).
pub const POLICY_FILE: &str = "collector-policy.toml";
/// Its revision number.
pub const REVISION_FILE: &str = "collector-policy.revision";
/// How often queued alerts are shipped (an idle round only looks for a file).
const SHIP_EVERY: Duration = Duration::from_secs(2);

/// Whether `state_dir` holds an enrolment.
pub fn is_enrolled(state_dir: &Path) -> bool {
    Identity::exists(state_dir) && state_dir.join(URL_FILE).exists()
}

/// `ward-resolver enrol`: obtains the resolver's certificate and remembers the collector.
///
/// # Errors
/// The CA file cannot be read, the collector refuses or cannot be reached, or the state dir cannot
/// be written.
pub async fn enrol(
    collector: &str,
    token: &str,
    ca: &Path,
    state_dir: &Path,
) -> anyhow::Result<String> {
    let ca_pem =
        std::fs::read_to_string(ca).with_context(|| format!("cannot read {}", ca.display()))?;
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state dir {}", state_dir.display()))?;
    let identity = Enrolment {
        collector: collector.to_string(),
        token: token.to_string(),
        ca_pem,
        hostname: hostname(),
        os: std::env::consts::OS.to_string(),
        kind: DeviceKind::Resolver,
        program_version: env!("CARGO_PKG_VERSION").to_string(),
    }
    .enrol(state_dir)
    .await
    .with_context(|| format!("enrolment with {collector} failed"))?;
    write_atomic(&state_dir.join(URL_FILE), collector.as_bytes())?;
    Ok(identity.device_id.clone())
}

/// This machine's host name, for enrolment and alerts.
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "ward-resolver".to_string())
}

/// The policy an enrolled resolver starts with: the collector's last copy if there is one, else the
/// local file as a bootstrap. Relative list paths resolve from the local policy file's folder.
///
/// # Errors
/// Neither can be loaded.
pub fn starting_policy(state_dir: &Path, local: &Path) -> anyhow::Result<(Policy, u64)> {
    let saved = state_dir.join(POLICY_FILE);
    if let Ok(text) = std::fs::read_to_string(&saved) {
        let revision = std::fs::read_to_string(state_dir.join(REVISION_FILE))
            .ok()
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or(0);
        match Policy::from_text(&collector_path(local), &text) {
            Ok(p) => {
                tracing::info!(
                    revision,
                    "using the collector's last policy until it sends a newer one"
                );
                return Ok((p, revision));
            }
            Err(e) => tracing::error!(
                "saved collector policy unusable, starting from the local file: {e}"
            ),
        }
    }
    Ok((Policy::load(local)?, 0))
}

/// The path a collector policy is built as: beside the local file, so relative list paths work.
fn collector_path(local: &Path) -> PathBuf {
    local.with_file_name(POLICY_FILE)
}

/// Follows the collector's stream and ships alerts until `shutdown`.
///
/// # Errors
/// The saved identity cannot be loaded or the client cannot be built.
pub fn spawn(
    state: Arc<State>,
    state_dir: PathBuf,
    local_policy: PathBuf,
    revision: u64,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let url = std::fs::read_to_string(state_dir.join(URL_FILE))
        .context("reading the collector URL")?
        .trim()
        .to_string();
    let identity = Identity::load(&state_dir).context("loading the enrolment identity")?;
    let client = Client::new(&url, &identity).context("building the collector client")?;
    let device = identity.device_id.clone();
    tracing::info!(collector = %url, device = %device, "enrolled: policy and leases come from the collector");
    let mut events = client.subscribe(SubscribeOptions::default(), shutdown.clone());
    let (s, dir, local) = (state.clone(), state_dir.clone(), local_policy);
    tokio::spawn(async move {
        let mut revision = revision;
        while let Some(event) = events.recv().await {
            match event {
                StreamEvent::Policy(snapshot) => {
                    apply_policy(&s, &dir, &local, &mut revision, snapshot).await
                }
                StreamEvent::Leases { leases, .. } => {
                    let table = Leases::from_wire(&leases);
                    tracing::info!(leases = table.len(), "identity leases from the collector");
                    s.set_leases(table);
                    // Kept so a restart while the collector is away still knows who is who.
                    match serde_json::to_vec(&leases) {
                        Ok(bytes) => {
                            if let Err(e) = write_atomic(&dir.join(LEASE_FILE), &bytes) {
                                tracing::warn!(error = %e, "cannot save leases");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot encode leases"),
                    }
                }
            }
        }
    });
    tokio::spawn(ship_alerts(
        client,
        state_dir.join("alerts"),
        device,
        shutdown,
    ));
    Ok(())
}

async fn apply_policy(
    state: &State,
    dir: &Path,
    local: &Path,
    revision: &mut u64,
    snapshot: PolicySnapshot,
) {
    if snapshot.revision <= *revision {
        return;
    }
    let path = collector_path(local);
    let text = snapshot.policy_toml.clone();
    let built = tokio::task::spawn_blocking(move || Policy::from_text(&path, &text)).await;
    match built {
        Ok(Ok(policy)) => {
            let old = state.snapshot().policy.clone();
            for change in reload::diff(&old, &policy) {
                tracing::info!(
                    revision = snapshot.revision,
                    "policy change from the collector: {change}"
                );
            }
            policy.warn_blocks_without_lists();
            state.set_policy(policy);
            *revision = snapshot.revision;
            let saved = write_atomic(&dir.join(POLICY_FILE), snapshot.policy_toml.as_bytes())
                .and_then(|()| {
                    write_atomic(
                        &dir.join(REVISION_FILE),
                        snapshot.revision.to_string().as_bytes(),
                    )
                });
            if let Err(e) = saved {
                tracing::warn!(error = %e, "cannot save the collector's policy");
            }
            tracing::info!(
                revision = snapshot.revision,
                "policy from the collector applied"
            );
        }
        Ok(Err(e)) => tracing::error!(
            revision = snapshot.revision,
            "collector policy refused, keeping the last good policy: {e}"
        ),
        Err(e) => tracing::error!(error = %e, "collector policy build failed"),
    }
}

/// Ships `queue.jsonl`: renamed aside (so the writer starts a fresh file), sent in batches, deleted
/// once every alert in it is acknowledged. A failure keeps the file for the next round.
async fn ship_alerts(client: Client, dir: PathBuf, device: String, shutdown: CancellationToken) {
    let sending = dir.join("queue.sending.jsonl");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SHIP_EVERY) => {}
        }
        if !sending.exists() {
            match crate::alerts::take(&dir, &sending) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the alert queue for shipping");
                    continue;
                }
            }
        }
        let Ok(text) = std::fs::read_to_string(&sending) else {
            continue;
        };
        let mut alerts: Vec<Alert> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let unreadable = text.lines().count() - alerts.len();
        if unreadable > 0 {
            tracing::warn!(
                unreadable,
                "alert queue lines that do not parse (a write cut short) are skipped"
            );
        }
        for a in &mut alerts {
            a.device = device.clone();
        }
        let mut ok = true;
        for chunk in alerts.chunks(MAX_BATCH) {
            let batch = AlertBatch {
                version: PROTOCOL_VERSION,
                alerts: chunk.to_vec(),
            };
            match client.send_alerts(&batch).await {
                Ok(receipt) if chunk.iter().all(|a| receipt.stored.contains(&a.id)) => {}
                Ok(_) => {
                    tracing::warn!("the collector acknowledged only part of a batch; will retry");
                    ok = false;
                    break;
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "alerts not delivered; will retry");
                    ok = false;
                    break;
                }
                Err(e) => {
                    // Sending the same again would be refused again and hold back every later
                    // alert: keep the file for IT to look at and go on.
                    let kept = dir.join(format!(
                        "refused-{}.jsonl",
                        jiff::Timestamp::now().as_millisecond()
                    ));
                    tracing::error!(error = %e, code = e.code().unwrap_or(""), kept = %kept.display(),
                        "the collector refused these alerts; kept aside");
                    if let Err(e) = std::fs::rename(&sending, &kept) {
                        tracing::error!(error = %e, "cannot set refused alerts aside");
                    }
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            let _ = std::fs::remove_file(&sending);
        }
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}
