//! What can go wrong talking to the collector, split by what the caller should do about it.
//!
//! The one question every caller has is "do I keep this and try again later?". A request the collector
//! refused on purpose (4xx with a [`ApiError`] body) will be refused again, so retrying it only wastes a
//! spool; anything else (no route, TLS failure, a 5xx, a timeout) may succeed later.

use std::path::PathBuf;

use ward_protocol::ApiError;

/// A request to the collector that did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The collector understood the request and refused it (HTTP 4xx). Sending the same request
    /// again will be refused again, except for 408 and 429 (see [`ClientError::is_retryable`]).
    #[error("collector refused the request (HTTP {status}, {}): {}", .error.error, .error.reason)]
    Refused {
        /// The HTTP status, 400 to 499.
        status: u16,
        /// The collector's reason.
        error: ApiError,
        /// Seconds the collector asked the caller to wait (429 Retry-After), when it said.
        retry_after: Option<u64>,
    },
    /// The collector failed (HTTP 5xx); the request may succeed later.
    #[error("collector failed (HTTP {status}): {reason}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The body, or what was wrong with it.
        reason: String,
    },
    /// The collector could not be reached, the TLS handshake failed, or the connection broke or
    /// timed out before an answer arrived; the request may succeed later.
    #[error("cannot reach the collector at {url}: {reason}")]
    Transport {
        /// The collector's address.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The collector answered 2xx with a body this client cannot use (a version mismatch or a bug).
    #[error("unexpected answer from the collector: {0}")]
    Protocol(String),
    /// A local file (key, certificate, CA) could not be read or written.
    #[error("{}: {reason}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A setting given to the client is unusable (bad URL, bad PEM).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// Whether the same request may succeed later: transport failures, 5xx, and the two 4xx that mean
    /// "not now" (408 timeout, 429 rate limit). A caller keeps the data and retries with backoff on
    /// `true`, and sets it aside (logs, counts, drops) on `false`.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } | ClientError::Server { .. } => true,
            ClientError::Refused { status, .. } => matches!(status, 408 | 429),
            ClientError::Protocol(_) | ClientError::File { .. } | ClientError::Config(_) => false,
        }
    }

    /// The HTTP status, when the collector answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } | ClientError::Server { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The collector's machine-readable refusal code (`device-revoked`, `too-large`, ...), if refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { error, .. } => Some(&error.error),
            _ => None,
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        ClientError::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
