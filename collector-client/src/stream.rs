//! The resolver's subscription to policy and identity changes: server-sent events over the same
//! authenticated HTTPS connection, reconnected with backoff for as long as the caller wants it.
//!
//! The collector sends the full picture on every (re)connection (current policy, then every live
//! lease), so nothing is lost across a gap: the subscriber just applies what arrives. The collector
//! also sends a comment line every 15 seconds; silence longer than [`SubscribeOptions::idle_timeout`]
//! means a dead connection, which is dropped and reopened.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::{header, Method};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use ward_protocol::{StreamEvent, Validate};

use crate::{Client, ClientError};

/// Largest single event accepted (a policy snapshot is at most 4 MiB of TOML, escaped as JSON).
const MAX_EVENT_BYTES: usize = 12 * 1024 * 1024;

/// How a subscription retries.
#[derive(Debug, Clone, Copy)]
pub struct SubscribeOptions {
    /// First wait after a failure; doubled on each further failure.
    pub min_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// A connection silent for this long (no event, no keep-alive) is dropped and reopened.
    pub idle_timeout: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(45),
        }
    }
}

impl Client {
    /// Subscribes to `GET /api/v1/stream` and returns the events as they arrive, each already
    /// validated. A background task keeps the subscription open, reconnecting with exponential
    /// backoff after any failure, until `shutdown` is cancelled or the receiver is dropped. Only
    /// enrolled resolvers may subscribe; a refusal (e.g. a revoked device) is logged and retried at
    /// the longest backoff, so a resolver keeps serving its last copy meanwhile.
    ///
    /// Must be called inside a tokio runtime.
    pub fn subscribe(
        &self,
        options: SubscribeOptions,
        shutdown: CancellationToken,
    ) -> mpsc::Receiver<StreamEvent> {
        let (tx, rx) = mpsc::channel(16);
        let client = self.clone();
        tokio::spawn(async move {
            let mut backoff = options.min_backoff;
            loop {
                let outcome = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tx.closed() => return,
                    outcome = client.follow(&tx, options.idle_timeout) => outcome,
                };
                let delay = match outcome {
                    // Events flowed before the break: start the backoff afresh.
                    Ok(true) => options.min_backoff,
                    Ok(false) => backoff,
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "collector stream lost");
                        backoff
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "collector refused the stream subscription");
                        options.max_backoff
                    }
                };
                backoff = delay.saturating_mul(2).min(options.max_backoff);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        });
        rx
    }

    /// Follows one connection until it ends. `Ok(true)` if at least one event arrived.
    async fn follow(
        &self,
        tx: &mpsc::Sender<StreamEvent>,
        idle_timeout: Duration,
    ) -> Result<bool, ClientError> {
        let request = self
            .request(Method::GET, "/api/v1/stream")
            .header(header::ACCEPT, "text/event-stream")
            .body(Full::default())
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let mut body = self.open_stream(request).await?.into_body();
        tracing::info!(collector = %self.url(), "subscribed to the collector stream");
        let mut buffer = BytesMut::new();
        let mut delivered = false;
        loop {
            let frame = match tokio::time::timeout(idle_timeout, body.frame()).await {
                Err(_) => return Err(self.transport("stream silent for too long")),
                Ok(None) => return Ok(delivered),
                Ok(Some(Err(e))) => return Err(self.transport(e)),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            while let Some(event) = next_event(&mut buffer) {
                let Some(json) = event else { continue };
                let event: StreamEvent = serde_json::from_slice(&json)
                    .map_err(|e| ClientError::Protocol(format!("stream event: {e}")))?;
                if let Err(e) = event.validate(jiff::Timestamp::now()) {
                    tracing::warn!(error = %e, "ignoring an invalid stream event");
                    continue;
                }
                if tx.send(event).await.is_err() {
                    return Ok(delivered);
                }
                delivered = true;
            }
            if buffer.len() > MAX_EVENT_BYTES {
                return Err(ClientError::Protocol("stream event too large".into()));
            }
        }
    }
}

/// Takes one complete event block (ending in a blank line) off the front of `buffer`. The outer
/// `None` means "need more bytes"; `Some(None)` is a block with no data (a keep-alive comment).
fn next_event(buffer: &mut BytesMut) -> Option<Option<Vec<u8>>> {
    let end = buffer.windows(2).position(|w| w == b"\n\n")?;
    let block = buffer.split_to(end);
    buffer.advance(2);
    let mut data = Vec::new();
    for line in block[..].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
        }
    }
    Some((!data.is_empty()).then_some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_blank_lines_and_skip_comments() {
        let mut buffer = BytesMut::from(
            &b": keep-alive\n\nevent: leases\ndata: {\"a\":\ndata: 1}\n\ndata: {\"b\""[..],
        );
        assert_eq!(next_event(&mut buffer), Some(None));
        assert_eq!(next_event(&mut buffer), Some(Some(b"{\"a\":\n1}".to_vec())));
        assert_eq!(next_event(&mut buffer), None);
        buffer.extend_from_slice(b":2}\n\n");
        assert_eq!(next_event(&mut buffer), Some(Some(b"{\"b\":2}".to_vec())));
        assert!(buffer.is_empty());
    }
}
