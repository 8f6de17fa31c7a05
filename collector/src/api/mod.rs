//! The `/api/v1` routes agents and resolvers use (documented in `collector/openapi.yaml`).
//!
//! Every route except `enrol` and `health` demands an enrolled, unrevoked device certificate
//! ([`extract::Device`]); every body is parsed strictly and validated ([`extract::Strict`]); every
//! refusal is a [`Failure`] mapped to its status in one impl. The review UI adds its own routes to the
//! same router (see [`crate::router`]).

mod enrol;
mod error;
pub mod extract;
mod ingest;
mod stream;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ward_protocol::{Heartbeat, IdentityLease, PolicySnapshot, SessionState, PROTOCOL_VERSION};

pub use enrol::token_hash;
pub use error::{Failure, Refusal, CODES};
use extract::{Device, Strict};

use crate::app::App;
use crate::store::{HeartbeatRecord, LeaseRecord, PolicyRecord, SessionSeen};

/// Every API path; `collector/openapi.yaml` documents each (a test keeps them in step).
pub const PATHS: [&str; 7] = [
    "/api/v1/health",
    "/api/v1/enrol",
    "/api/v1/alerts",
    "/api/v1/heartbeat",
    "/api/v1/leases",
    "/api/v1/policy",
    "/api/v1/stream",
];

/// The API routes.
pub fn router() -> Router<App> {
    let [health_path, enrol_path, alerts_path, heartbeat_path, leases_path, policy_path, stream_path] =
        PATHS;
    Router::new()
        .route(health_path, get(health))
        .route(enrol_path, post(enrol::enrol))
        .route(alerts_path, post(ingest::alerts))
        .route(heartbeat_path, post(heartbeat))
        .route(leases_path, post(lease))
        .route(policy_path, get(policy))
        .route(stream_path, get(stream::stream))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "collector_version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn heartbeat(
    State(app): State<App>,
    device: Device,
    Strict(hb): Strict<Heartbeat>,
) -> Result<StatusCode, Failure> {
    let received = jiff::Timestamp::now().as_microsecond();
    // Sessions (monitoring helpers, the notice shown at logon) are an agent's to report.
    let sessions: &[SessionState] = if device.record.kind == "agent" {
        &hb.sessions
    } else {
        &[]
    };
    let dead: Vec<&str> = sessions
        .iter()
        .filter(|s| !s.helper_alive)
        .map(|s| s.user.as_str())
        .collect();
    // A helper that stopped since the last heartbeat: one device alert per stop (see `tamper`).
    let alerts = crate::tamper::newly_stopped(device.record.dead_helpers.as_deref(), &dead)
        .into_iter()
        .map(|user| crate::tamper::helper_stopped(&device.record, user, received))
        .collect();
    let record = HeartbeatRecord {
        received,
        ip: device.ip.clone(),
        hostname: hb.hostname.clone(),
        os: hb.os.clone(),
        program_version: hb.agent_version.clone(),
        wordlist_version: hb.wordlist_version.clone(),
        spool_depth: i64::from(hb.spool_depth),
        spool_dropped: i64::from(hb.spool_dropped),
        dead_helpers: (!dead.is_empty()).then(|| dead.join(",")),
        sessions: sessions
            .iter()
            .map(|s| SessionSeen {
                user: s.user.clone(),
                notice_shown: s.notice_shown.map(|t| t.as_microsecond()),
                notice_sha256: s.notice_sha256.clone(),
            })
            .collect(),
        alerts,
    };
    let id = device.record.id.clone();
    app.with_store(move |s| s.record_heartbeat(&id, &record))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn lease(
    State(app): State<App>,
    device: Device,
    Strict(lease): Strict<IdentityLease>,
) -> Result<StatusCode, Failure> {
    device.require("agent", "posting identity leases")?;
    let record = LeaseRecord {
        device: device.record.id.clone(),
        user: lease.user.clone(),
        group: lease.group.clone(),
        addresses: lease
            .addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
        expires: lease.expires.as_microsecond(),
        updated: jiff::Timestamp::now().as_microsecond(),
    };
    app.with_store(move |s| s.put_lease(&record)).await?;
    app.hub().leases_changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn policy(State(app): State<App>, device: Device) -> Result<Json<PolicySnapshot>, Failure> {
    device.require("resolver", "the policy")?;
    let policy = app
        .with_store(|s| s.latest_policy())
        .await?
        .ok_or(Failure::NotFound("the collector holds no policy yet"))?;
    Ok(Json(snapshot(policy)))
}

/// The wire form of a stored policy revision.
pub fn snapshot(policy: PolicyRecord) -> PolicySnapshot {
    PolicySnapshot {
        version: PROTOCOL_VERSION,
        revision: policy.revision as u64,
        sha256: policy.sha256,
        policy_toml: policy.policy_toml,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_file_documents_every_route_and_refusal() {
        let spec = include_str!("../../openapi.yaml");
        for path in PATHS {
            assert!(
                spec.contains(&format!("  {path}:\n")),
                "{path} missing from openapi.yaml"
            );
        }
        for code in CODES {
            assert!(
                spec.contains(&format!("`{code}`")),
                "{code} missing from openapi.yaml"
            );
        }
    }
}
