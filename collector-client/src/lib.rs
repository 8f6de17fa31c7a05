//! The HTTPS client agents and resolvers use to reach ward-collector.
//!
//! Trust runs one way only: the collector's own CA (copied by the technician from
//! `<data-dir>/ca.pem`, then kept in the state dir) is the only root this client accepts, and the
//! collector accepts only device certificates its CA signed at enrolment and that are not revoked.
//! The system certificate store is never consulted.
//!
//! # Enrol once
//!
//! ```no_run
//! # async fn demo() -> Result<(), ward_collector_client::ClientError> {
//! use ward_collector_client::{Enrolment, Identity};
//! use ward_protocol::DeviceKind;
//! let state_dir = std::path::Path::new("/var/lib/ward-agent");
//! let identity = Enrolment {
//!     collector: "https://127.0.0.1:8443".into(),
//!     token: "token printed by `ward-collector token create`".into(),
//!     ca_pem: std::fs::read_to_string("/path/to/ca.pem").unwrap(),
//!     hostname: "ws-101".into(),
//!     os: "linux".into(),
//!     kind: DeviceKind::Agent,
//!     program_version: env!("CARGO_PKG_VERSION").into(),
//! }
//! .enrol(state_dir)
//! .await?;
//! // Later runs: Identity::load(state_dir)?
//! # let _ = identity; Ok(()) }
//! ```
//!
//! The private key is generated locally and only a CSR is sent. The state dir then holds
//! `device-key.pem` (0600), `device-cert.pem`, `ca.pem` and `device-id`; [`Identity::exists`] tells
//! whether a device is enrolled.
//!
//! # Send
//!
//! ```no_run
//! # async fn demo(identity: ward_collector_client::Identity, batch: ward_protocol::AlertBatch)
//! # -> Result<(), ward_collector_client::ClientError> {
//! use ward_collector_client::Client;
//! let client = Client::new("https://127.0.0.1:8443", &identity)?;
//! match client.send_alerts(&batch).await {
//!     Ok(receipt) => { /* delete exactly receipt.stored from the spool */ }
//!     Err(e) if e.is_retryable() => { /* keep the batch, retry with backoff */ }
//!     Err(e) => { /* refused for good: e.code() says why (log it, set the batch aside) */ }
//! }
//! # Ok(()) }
//! ```
//!
//! | method | route | answer |
//! |---|---|---|
//! | [`Client::send_alerts`] | `POST /api/v1/alerts` ([`ward_protocol::AlertBatch`]) | [`ward_protocol::IngestReceipt`]: every id now held durably, duplicates included |
//! | [`Client::send_heartbeat`] | `POST /api/v1/heartbeat` ([`ward_protocol::Heartbeat`]) | `()` (204) |
//! | [`Client::send_lease`] | `POST /api/v1/leases` ([`ward_protocol::IdentityLease`]) | `()` (204) |
//! | [`Client::policy`] | `GET /api/v1/policy` (resolvers) | `Option<`[`ward_protocol::PolicySnapshot`]`>` |
//! | [`Client::subscribe`] | `GET /api/v1/stream` (resolvers, server-sent events) | receiver of [`ward_protocol::StreamEvent`] |
//! | [`Client::ping`] | `GET /api/v1/health` | `()` when the collector is up and trusted |
//! | [`Client::post_json`] / [`Client::get_json`] | any route | any `Deserialize` type |
//!
//! Rules the collector enforces (the full list with status codes is `collector/openapi.yaml`):
//! - every alert's `device` must be this device's id ([`Client::device_id`]); agents send sources
//!   `keyboard`, `window-title` and `device`, resolvers only `dns`;
//! - leases and heartbeats come from agents; the policy and the stream are for resolvers;
//! - a request body is at most 16 MiB by default (413 `too-large`: split the batch), at most
//!   [`ward_protocol::MAX_BATCH`] alerts per batch;
//! - JSON fields not in the protocol are refused (400 `unknown-field`), as are other protocol
//!   versions (400 `unsupported-version`) and invalid fields (422 `invalid-field`, naming the field);
//! - requests beyond the per-device rate are answered 429 with `Retry-After`.
//!
//! # Errors and retrying
//!
//! Every call returns the typed answer or a [`ClientError`]. [`ClientError::is_retryable`] is the one
//! decision a caller needs: `true` for transport failures, timeouts, 5xx, 408 and 429 (keep the data and
//! try again later); `false` for other refusals, which carry the collector's [`ward_protocol::ApiError`]
//! (`error` code and a human `reason`) and will be refused again.
//!
//! # Subscribe (resolvers)
//!
//! ```no_run
//! # async fn demo(client: ward_collector_client::Client) {
//! use ward_collector_client::SubscribeOptions;
//! use ward_protocol::StreamEvent;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let mut events = client.subscribe(SubscribeOptions::default(), shutdown.clone());
//! while let Some(event) = events.recv().await {
//!     match event {
//!         StreamEvent::Policy(snapshot) => { /* apply if newer, persist */ }
//!         StreamEvent::Leases { leases, .. } => { /* replace the whole lease table */ }
//!     }
//! }
//! # }
//! ```
//!
//! On every (re)connection the collector first sends the current policy (when it has one) and then
//! the complete set of live leases, and after that a fresh complete lease set whenever one changes;
//! so a subscriber replaces its lease table on each `Leases` event and never has to catch up.
#![deny(missing_docs)]

mod error;
mod http;
mod identity;
mod stream;
mod tls;

pub use error::ClientError;
pub use http::{Client, Timeouts};
pub use identity::{Enrolment, Identity};
pub use stream::SubscribeOptions;
