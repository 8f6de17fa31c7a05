//! Request extractors: who the device is ([`Device`]), and the body as a strictly parsed, validated
//! protocol message ([`Strict`]).
//!
//! Order matters and axum keeps it: authentication (headers only) runs before the body is read, so an
//! unauthenticated sender never gets to upload megabytes.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use ward_protocol::{AlertBatch, EnrolRequest, Heartbeat, IdentityLease, Validate};

use super::Failure;
use crate::app::App;
use crate::store::DeviceRecord;
use crate::tls::Peer;

/// The remote peer of this request.
pub fn peer(parts: &Parts) -> Result<&Peer, Failure> {
    parts
        .extensions
        .get::<Peer>()
        .ok_or_else(|| Failure::Internal("request without peer information".into()))
}

/// An enrolled, unrevoked device, identified by its client certificate, within its rate limit.
#[derive(Debug, Clone)]
pub struct Device {
    /// Its record, as of this request.
    pub record: DeviceRecord,
    /// The address it connected from.
    pub ip: String,
}

impl Device {
    /// Refuses unless the device is of `kind` (`agent` or `resolver`).
    ///
    /// # Errors
    /// [`Failure::Forbidden`] naming the route's audience.
    pub fn require(&self, kind: &str, what: &str) -> Result<(), Failure> {
        if self.record.kind == kind {
            Ok(())
        } else {
            Err(Failure::Forbidden(format!(
                "{what} is for {kind}s; device {} enrolled as {}",
                self.record.id, self.record.kind
            )))
        }
    }
}

impl FromRequestParts<App> for Device {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let peer = peer(parts)?;
        let cert = peer.cert.clone().ok_or(Failure::NoCertificate)?;
        if let Err(why) = &cert.chain {
            return Err(Failure::UntrustedCertificate(why.clone()));
        }
        // Looked up on every request, so a revocation takes effect at once.
        let sha = cert.sha256.clone();
        let record = app
            .with_store(move |s| s.device_by_cert(&sha))
            .await?
            .ok_or(Failure::UnknownDevice)?;
        if record.revoked.is_some() {
            return Err(Failure::Revoked(record.id));
        }
        app.device_limiter()
            .check(&record.id)
            .map_err(Failure::RateLimited)?;
        Ok(Device {
            record,
            ip: peer.addr.ip().to_string(),
        })
    }
}

/// A message the API accepts as a body, with the largest body it may arrive in.
pub trait Message: DeserializeOwned + Validate + Send {
    /// Largest accepted body for this message.
    fn max_bytes(app: &App) -> usize;
}

impl Message for AlertBatch {
    fn max_bytes(app: &App) -> usize {
        app.config().limits.max_request_bytes
    }
}

macro_rules! small_message {
    ($($t:ty),*) => {$(
        impl Message for $t {
            fn max_bytes(_: &App) -> usize {
                64 * 1024
            }
        }
    )*};
}
small_message!(EnrolRequest, Heartbeat, IdentityLease);

/// A body parsed strictly: JSON content type, bounded size, no fields the protocol does not define,
/// and [`Validate`] passed.
#[derive(Debug)]
pub struct Strict<T>(pub T);

impl<T: Message> FromRequest<App> for Strict<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json")
            });
        if !json {
            return Err(Failure::NotJson);
        }
        let limit = T::max_bytes(app);
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body = read_bounded(request.into_body(), limit, declared).await?;
        let message = parse_strict::<T>(&body)?;
        message
            .validate(jiff::Timestamp::now())
            .map_err(Failure::from_validation)?;
        Ok(Strict(message))
    }
}

/// Reads a body of at most `limit` bytes. An oversized body is still read (and thrown away) up to a
/// bound, so the client is reading when the 413 arrives: closing a socket with unread data makes the
/// kernel reset the connection, and the client would see a broken connection instead of the reason.
async fn read_bounded(
    mut body: axum::body::Body,
    limit: usize,
    declared: Option<usize>,
) -> Result<bytes::Bytes, Failure> {
    const DRAIN_MAX: usize = 64 * 1024 * 1024;
    const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);
    if declared.is_some_and(|n| n > DRAIN_MAX) {
        return Err(Failure::TooLarge(limit));
    }
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) if seen > limit => break,
            Err(_) => return Err(Failure::Malformed("the body did not arrive in time".into())),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Failure::Malformed(format!("cannot read the body: {e}")))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_MAX {
            break;
        }
        if seen <= limit {
            kept.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(Failure::TooLarge(limit));
    }
    Ok(kept.freeze())
}

/// Parses JSON, refusing any field the type does not define (at any depth).
///
/// # Errors
/// [`Failure::Malformed`] or [`Failure::UnknownField`].
pub fn parse_strict<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    let mut unknown = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_ignored::deserialize(&mut deserializer, |path| {
        unknown.get_or_insert_with(|| path.to_string());
    })
    .map_err(|e| Failure::Malformed(e.to_string()))?;
    deserializer
        .end()
        .map_err(|e| Failure::Malformed(e.to_string()))?;
    match unknown {
        Some(path) => Err(Failure::UnknownField(path)),
        None => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_named_at_any_depth() {
        let hb = r#"{"version":1,"time":"2026-11-24T10:00:00Z","hostname":"h","os":"linux","agent_version":"1","sessions":[{"user":"u","helper_alive":true,"extra":1}]}"#;
        match parse_strict::<Heartbeat>(hb.as_bytes()) {
            Err(Failure::UnknownField(path)) => assert_eq!(path, "sessions.0.extra"),
            other => panic!("{other:?}"),
        }
        let ok = hb.replace(",\"extra\":1", "");
        parse_strict::<Heartbeat>(ok.as_bytes()).unwrap();
        assert!(matches!(
            parse_strict::<Heartbeat>(b"{\"version\":1"),
            Err(Failure::Malformed(_))
        ));
        assert!(matches!(
            parse_strict::<Heartbeat>(format!("{ok} trailing").as_bytes()),
            Err(Failure::Malformed(_))
        ));
    }
}
