//! Every way an API request can fail, mapped to its HTTP status in one place.
//!
//! Refusals (4xx) carry a machine-readable code and a reason a technician can act on, as a
//! `protocol::ApiError` body; failures of the collector itself (5xx) say only that something went
//! wrong, and the details go to the log. The accept loop logs every refusal with the peer and path
//! (it reads the [`Refusal`] this puts into the response's extensions).

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ward_protocol::{ApiError, ValidationError};

use crate::store::StoreError;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No client certificate on a route that needs one.
    #[error("this route needs the device certificate issued at enrolment")]
    NoCertificate,
    /// The certificate is not from this collector's CA (or is expired, or not for client auth).
    #[error("the client certificate is not valid for this collector: {0}")]
    UntrustedCertificate(String),
    /// Signed by our CA but not in the devices table.
    #[error("the client certificate belongs to no enrolled device")]
    UnknownDevice,
    /// The device was revoked.
    #[error("device {0} has been revoked")]
    Revoked(String),
    /// The device kind may not use this route.
    #[error("{0}")]
    Forbidden(String),
    /// The enrolment token does not work.
    #[error("{0}")]
    BadToken(&'static str),
    /// Too many requests.
    #[error("too many requests; retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// The body is larger than the route accepts.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// Not JSON.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    NotJson,
    /// JSON that does not parse as the message.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// A field the protocol does not have.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// Another protocol version.
    #[error("{0}")]
    UnsupportedVersion(ValidationError),
    /// A field that breaks the protocol's rules.
    #[error("{0}")]
    Invalid(ValidationError),
    /// Nothing here.
    #[error("{0}")]
    NotFound(&'static str),
    /// Something broke inside the collector.
    #[error("internal error")]
    Internal(String),
}

impl Failure {
    /// A field error with `field` and `problem`.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Failure {
        let (field, problem) = (field.into(), problem.into());
        Failure::Invalid(ValidationError { field, problem })
    }

    /// The validation error of a message, split into version mismatch and the rest.
    pub fn from_validation(e: ValidationError) -> Failure {
        if e.field == "version" {
            Failure::UnsupportedVersion(e)
        } else {
            Failure::Invalid(e)
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Failure::NoCertificate => (StatusCode::UNAUTHORIZED, "client-certificate-required"),
            Failure::UntrustedCertificate(_) => (StatusCode::UNAUTHORIZED, "untrusted-certificate"),
            Failure::UnknownDevice => (StatusCode::FORBIDDEN, "unknown-device"),
            Failure::Revoked(_) => (StatusCode::FORBIDDEN, "device-revoked"),
            Failure::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Failure::BadToken(_) => (StatusCode::FORBIDDEN, "invalid-token"),
            Failure::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            Failure::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            Failure::NotJson => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-json"),
            Failure::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed-json"),
            Failure::UnknownField(_) => (StatusCode::BAD_REQUEST, "unknown-field"),
            Failure::UnsupportedVersion(_) => (StatusCode::BAD_REQUEST, "unsupported-version"),
            Failure::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-field"),
            Failure::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            Failure::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Internal(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Internal(format!("{e:#}"))
    }
}

/// Every code [`Failure`] can answer with (the OpenAPI file lists each).
pub const CODES: [&str; 15] = [
    "client-certificate-required",
    "untrusted-certificate",
    "unknown-device",
    "device-revoked",
    "forbidden",
    "invalid-token",
    "rate-limited",
    "too-large",
    "not-json",
    "malformed-json",
    "unknown-field",
    "unsupported-version",
    "invalid-field",
    "not-found",
    "internal",
];

/// Put into a refused response's extensions so the accept loop can log why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The machine-readable code.
    pub code: &'static str,
    /// The reason (for 5xx, the internal detail that the client does not see).
    pub reason: String,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (shown, logged) = match &self {
            Failure::Internal(detail) => (
                "the collector could not complete the request; it has been logged".to_string(),
                detail.clone(),
            ),
            other => (other.to_string(), other.to_string()),
        };
        let mut response = (
            status,
            Json(ApiError {
                error: code.to_string(),
                reason: shown,
            }),
        )
            .into_response();
        if matches!(self, Failure::TooLarge(_)) {
            // The rest of the body is never read: tell the client this connection is done.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Failure::RateLimited(wait) = &self {
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response.extensions_mut().insert(Refusal {
            code,
            reason: logged,
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_maps_to_a_listed_code_and_a_4xx_or_500() {
        let field = || ValidationError {
            field: "x".into(),
            problem: "y".into(),
        };
        let all = [
            Failure::NoCertificate,
            Failure::UntrustedCertificate(String::new()),
            Failure::UnknownDevice,
            Failure::Revoked(String::new()),
            Failure::Forbidden(String::new()),
            Failure::BadToken(""),
            Failure::RateLimited(Duration::from_secs(1)),
            Failure::TooLarge(1),
            Failure::NotJson,
            Failure::Malformed(String::new()),
            Failure::UnknownField(String::new()),
            Failure::UnsupportedVersion(field()),
            Failure::Invalid(field()),
            Failure::NotFound(""),
            Failure::Internal(String::new()),
        ];
        let mut seen = std::collections::HashSet::new();
        for failure in all {
            let (status, code) = failure.status_and_code();
            assert!(CODES.contains(&code), "{code}");
            assert!(status.is_client_error() || status == StatusCode::INTERNAL_SERVER_ERROR);
            seen.insert(code);
        }
        assert_eq!(seen.len(), CODES.len());
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let response = Failure::Internal("disk /srv full".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let refusal = response.extensions().get::<Refusal>().unwrap();
        assert!(refusal.reason.contains("/srv"));
    }
}
