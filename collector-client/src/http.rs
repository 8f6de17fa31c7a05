//! The HTTPS client: HTTP/1.1 over rustls, a few kept-alive connections, JSON in and out, and every
//! answer turned into either the typed response or a [`ClientError`] that says whether to retry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use ward_protocol::{
    AlertBatch, ApiError, Heartbeat, IdentityLease, IngestReceipt, PolicySnapshot, Validate,
};

use crate::{tls, ClientError, Identity};

/// Largest response body read into memory (a policy snapshot is at most 4 MiB).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 4;

/// How long the client waits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect plus TLS handshake.
    pub connect: Duration,
    /// A whole request: sending it and reading the full answer.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
        }
    }
}

/// Where the collector is: parsed from `https://host[:port][/]`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) url: String,
    /// `host:port` for TCP connect and the Host header.
    pub(crate) authority: String,
    pub(crate) server_name: ServerName<'static>,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let bad = |why: &str| ClientError::Config(format!("collector URL `{url}`: {why}"));
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("must start with https://"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || authority.contains('@') {
            return Err(bad("must be https://HOST[:PORT] with no path"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad host or port"))?;
        Ok(Endpoint {
            url: url.trim_end_matches('/').to_string(),
            authority: if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            },
            server_name: tls::server_name(host)?,
        })
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 443.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 443,
            None => return None,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority, 443)),
    }
}

/// An authenticated connection to one collector. Cheap to clone; clones share kept-alive connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    connector: TlsConnector,
    device_id: Option<String>,
    timeouts: Timeouts,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("collector", &self.inner.endpoint.url)
            .field("device_id", &self.inner.device_id)
            .finish()
    }
}

impl Client {
    /// A client for the collector at `collector_url` (`https://host:port`) that pins the CA of
    /// `identity` and presents its device certificate.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a bad URL or unusable PEM.
    pub fn new(collector_url: &str, identity: &Identity) -> Result<Client, ClientError> {
        let config = tls::client_config(
            identity.ca_pem.as_bytes(),
            Some((identity.cert_pem.as_bytes(), identity.key_pem.as_bytes())),
        )?;
        Client::build(collector_url, config, Some(identity.device_id.clone()))
    }

    /// A client with no device certificate, pinned to `ca_pem`: only enrolment and
    /// [`Client::ping`] work with it.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a bad URL or unusable PEM.
    pub fn anonymous(collector_url: &str, ca_pem: &[u8]) -> Result<Client, ClientError> {
        Client::build(collector_url, tls::client_config(ca_pem, None)?, None)
    }

    fn build(
        collector_url: &str,
        config: Arc<rustls::ClientConfig>,
        device_id: Option<String>,
    ) -> Result<Client, ClientError> {
        Ok(Client {
            inner: Arc::new(Inner {
                endpoint: Endpoint::parse(collector_url)?,
                connector: TlsConnector::from(config),
                device_id,
                timeouts: Timeouts::default(),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The same client with other timeouts (kept-alive connections are not shared with the original).
    #[must_use]
    pub fn with_timeouts(&self, timeouts: Timeouts) -> Client {
        Client {
            inner: Arc::new(Inner {
                endpoint: self.inner.endpoint.clone(),
                connector: self.inner.connector.clone(),
                device_id: self.inner.device_id.clone(),
                timeouts,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The collector's URL as given.
    pub fn url(&self) -> &str {
        &self.inner.endpoint.url
    }

    /// This device's id (the `device` field of every alert it sends), or `None` for an anonymous client.
    pub fn device_id(&self) -> Option<&str> {
        self.inner.device_id.as_deref()
    }

    /// `POST /api/v1/alerts`: ships a batch; the receipt lists every id the collector now holds
    /// durably (duplicates of earlier deliveries included), so the caller may delete exactly those.
    ///
    /// # Errors
    /// See [`ClientError`]; a 413 (`too-large`) means: split the batch.
    pub async fn send_alerts(&self, batch: &AlertBatch) -> Result<IngestReceipt, ClientError> {
        self.post_json("/api/v1/alerts", batch).await
    }

    /// `POST /api/v1/heartbeat`: records that this device is alive.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn send_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), ClientError> {
        self.post_json("/api/v1/heartbeat", heartbeat).await
    }

    /// `POST /api/v1/leases`: "this device's addresses are this user in this group until `expires`".
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn send_lease(&self, lease: &IdentityLease) -> Result<(), ClientError> {
        self.post_json("/api/v1/leases", lease).await
    }

    /// `GET /api/v1/policy`: the current policy snapshot, or `None` when the collector holds none.
    ///
    /// # Errors
    /// See [`ClientError`]; only resolvers may fetch the policy.
    pub async fn policy(&self) -> Result<Option<PolicySnapshot>, ClientError> {
        match self.get_json::<PolicySnapshot>("/api/v1/policy").await {
            Ok(snapshot) => {
                snapshot
                    .validate(jiff::Timestamp::now())
                    .map_err(|e| ClientError::Protocol(format!("policy snapshot: {e}")))?;
                Ok(Some(snapshot))
            }
            Err(ClientError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v1/health`: succeeds when the collector is up and the TLS trust is right (no device
    /// certificate needed). For status pages.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn ping(&self) -> Result<(), ClientError> {
        let _: serde_json::Value = self.get_json("/api/v1/health").await?;
        Ok(())
    }

    /// Sends `body` as JSON to `path` (e.g. `/api/v1/alerts`) and parses the answer as `Resp`.
    /// A `204 No Content` answer parses as JSON `null`, so `Resp = ()` fits routes that return nothing.
    ///
    /// # Errors
    /// [`ClientError::Refused`] for a 4xx with the collector's reason, [`ClientError::Server`] for a
    /// 5xx, [`ClientError::Transport`] when no answer came, [`ClientError::Protocol`] for a body that
    /// does not parse as `Resp`.
    pub async fn post_json<Req, Resp>(&self, path: &str, body: &Req) -> Result<Resp, ClientError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let json = serde_json::to_vec(body)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        let request = self
            .request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(json)))
            .map_err(|e| ClientError::Config(format!("bad request for {path}: {e}")))?;
        self.json_call(request).await
    }

    /// `GET path` and parse the answer as `Resp`.
    ///
    /// # Errors
    /// As [`Client::post_json`].
    pub async fn get_json<Resp: DeserializeOwned>(&self, path: &str) -> Result<Resp, ClientError> {
        let request = self
            .request(Method::GET, path)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Config(format!("bad request for {path}: {e}")))?;
        self.json_call(request).await
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.inner.endpoint.authority)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("ward-collector-client/", env!("CARGO_PKG_VERSION")),
            )
    }

    async fn json_call<Resp: DeserializeOwned>(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Resp, ClientError> {
        let timeout = self.inner.timeouts.request;
        let call = async {
            let (status, headers, body) = self.call(request).await?;
            check_status(status, &headers, &body)?;
            let body: &[u8] = if status == StatusCode::NO_CONTENT || body.is_empty() {
                b"null"
            } else {
                &body
            };
            serde_json::from_slice(body)
                .map_err(|e| ClientError::Protocol(format!("cannot parse the answer: {e}")))
        };
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or_else(|_| Err(self.transport(format!("no answer within {timeout:?}"))))
    }

    /// One request and its whole (bounded) answer, on a kept-alive connection when one is idle.
    async fn call(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), ClientError> {
        let (mut sender, reused) = match self.take_idle() {
            Some(sender) => (sender, true),
            None => (self.connect().await?, false),
        };
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            // A kept-alive connection the server closed meanwhile hands the unsent request back:
            // one attempt on a fresh connection is then safe.
            Err(mut e) if reused => match e.take_message() {
                Some(request) => {
                    sender = self.connect().await?;
                    sender
                        .send_request(request)
                        .await
                        .map_err(|e| self.transport(e))?
                }
                None => return Err(self.transport(e.into_error())),
            },
            Err(e) => return Err(self.transport(e.into_error())),
        };
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| self.transport(format!("reading the answer: {e}")))?
            .to_bytes();
        // After a refusal the server may close the connection without reading the rest of what was
        // sent (413), and it says so with `Connection: close`: such a connection is not reused.
        let closing = parts
            .headers
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if parts.status.is_success() && !closing {
            self.put_idle(sender);
        }
        Ok((parts.status, parts.headers, body))
    }

    /// Sends a request whose answer is read by the caller as it arrives (the event stream). The
    /// connection is not reused.
    pub(crate) async fn open_stream(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let mut sender = self.connect().await?;
        let response =
            tokio::time::timeout(self.inner.timeouts.connect, sender.send_request(request))
                .await
                .map_err(|_| self.transport("no answer to the subscription"))?
                .map_err(|e| self.transport(e))?;
        if !response.status().is_success() {
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            check_status(parts.status, &parts.headers, &body)?;
            return Err(ClientError::Protocol(format!(
                "unexpected status {}",
                parts.status
            )));
        }
        Ok(response)
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let endpoint = &self.inner.endpoint;
        let connect = async {
            let tcp = TcpStream::connect(&endpoint.authority)
                .await
                .map_err(|e| self.transport(e))?;
            let _ = tcp.set_nodelay(true);
            let tls = self
                .inner
                .connector
                .connect(endpoint.server_name.clone(), tcp)
                .await
                .map_err(|e| self.transport(format!("TLS: {e}")))?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| self.transport(e))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "collector connection ended");
                }
            });
            Ok(sender)
        };
        let limit = self.inner.timeouts.connect;
        tokio::time::timeout(limit, connect)
            .await
            .unwrap_or_else(|_| Err(self.transport(format!("no connection within {limit:?}"))))
    }

    pub(crate) fn transport(&self, reason: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            url: self.inner.endpoint.url.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Turns a non-2xx answer into the matching error.
fn check_status(
    status: StatusCode,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Result<(), ClientError> {
    if status.is_success() {
        return Ok(());
    }
    if status.is_client_error() {
        let error = serde_json::from_slice::<ApiError>(body).unwrap_or_else(|_| ApiError {
            error: "refused".into(),
            reason: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        });
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        return Err(ClientError::Refused {
            status: status.as_u16(),
            error,
            retry_after,
        });
    }
    Err(ClientError::Server {
        status: status.as_u16(),
        reason: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_urls() {
        let e = Endpoint::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!(e.authority, "127.0.0.1:8443");
        let e = Endpoint::parse("https://ward.school.example/").unwrap();
        assert_eq!(e.authority, "ward.school.example:443");
        let e = Endpoint::parse("https://[::1]:9443").unwrap();
        assert_eq!(e.authority, "[::1]:9443");
        for bad in [
            "http://127.0.0.1:8443",
            "https://",
            "https://host:port",
            "https://host/api",
            "127.0.0.1:8443",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn refusals_carry_the_reason_and_retry_advice() {
        let body = br#"{"error":"device-revoked","reason":"device ws-1 was revoked"}"#;
        let err = check_status(StatusCode::FORBIDDEN, &hyper::HeaderMap::new(), body).unwrap_err();
        assert_eq!(err.code(), Some("device-revoked"));
        assert!(!err.is_retryable());
        let mut headers = hyper::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "3".parse().unwrap());
        let err = check_status(StatusCode::TOO_MANY_REQUESTS, &headers, b"{}").unwrap_err();
        assert!(err.is_retryable());
        assert!(matches!(
            err,
            ClientError::Refused {
                retry_after: Some(3),
                ..
            }
        ));
        let err = check_status(StatusCode::BAD_GATEWAY, &headers, b"down").unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.status(), Some(502));
    }
}
