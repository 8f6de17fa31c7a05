//! `POST /api/v1/enrol`: an enrolment token and a CSR in, a device certificate out.
//!
//! The token is spent and the device recorded in one transaction, and only after the certificate was
//! signed, so a failure anywhere leaves the token unspent. Tokens are stored as SHA-256 hashes only.

use axum::extract::State;
use axum::http::request::Parts;
use axum::Json;
use sha2::{Digest, Sha256};
use ward_protocol::{DeviceKind, EnrolRequest, EnrolResponse};

use super::extract::{peer, Strict};
use super::Failure;
use crate::app::App;
use crate::store::{NewDevice, StoreError, TokenProblem};

/// The sender's address, within the per-address enrolment rate.
pub struct EnrolGate {
    ip: String,
}

impl axum::extract::FromRequestParts<App> for EnrolGate {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let ip = peer(parts)?.addr.ip().to_string();
        app.enrol_limiter()
            .check(&ip)
            .map_err(Failure::RateLimited)?;
        Ok(EnrolGate { ip })
    }
}

/// Hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub async fn enrol(
    State(app): State<App>,
    gate: EnrolGate,
    Strict(request): Strict<EnrolRequest>,
) -> Result<Json<EnrolResponse>, Failure> {
    let kind = match request.kind {
        DeviceKind::Agent => "agent",
        DeviceKind::Resolver => "resolver",
    };
    let device_id = device_id(&request.hostname);
    let issued = app
        .ca()
        .sign_device(&request.csr_pem, &device_id)
        .map_err(|e| Failure::invalid("csr_pem", e))?;
    let now = jiff::Timestamp::now().as_microsecond();
    let device = NewDevice {
        id: device_id.clone(),
        kind: kind.to_string(),
        cert_sha256: issued.sha256.clone(),
        cert_serial: issued.serial.clone(),
        hostname: request.hostname.clone(),
        os: request.os.clone(),
        program_version: request.program_version.clone(),
        enrolled: now,
        ip: gate.ip,
    };
    let hash = token_hash(&request.token);
    let outcome = app.with_store(move |s| s.enrol(&hash, now, &device)).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(problem)) => {
            return Err(Failure::BadToken(match problem {
                TokenProblem::Unknown => "the enrolment token is not known to this collector",
                TokenProblem::Expired => "the enrolment token has expired",
                TokenProblem::UsedUp => "the enrolment token has no uses left",
            }))
        }
        Err(StoreError::Conflict(what)) => {
            return Err(Failure::Internal(format!("{what}: id collision, retry")))
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(device = %device_id, kind, hostname = %request.hostname, "device enrolled");
    Ok(Json(EnrolResponse {
        device_id,
        certificate_pem: issued.pem,
        ca_pem: app.ca().cert_pem().to_string(),
    }))
}

/// A readable, unique id: the host name cut down to `[a-z0-9-]`, then six random hex digits.
fn device_id(hostname: &str) -> String {
    let mut base: String = hostname
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    base = base.trim_matches('-').to_string();
    if base.is_empty() {
        base = "device".into();
    }
    format!("{base}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_readable_and_distinct() {
        let a = device_id("WS-101.school.local");
        assert!(a.starts_with("ws-101-school-local-"), "{a}");
        assert_ne!(a, device_id("WS-101.school.local"));
        assert!(device_id("***").starts_with("device-"));
    }
}
