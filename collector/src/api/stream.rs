//! `GET /api/v1/stream`: server-sent events of policy and identity changes for resolvers.
//!
//! On connection: the current policy (if any), then every live lease. After that: a complete lease set
//! whenever a lease changes (and when one lapses), the new policy whenever one is stored (by this
//! collector at once, by another collector of the trust within seconds), and a comment
//! line every 15 seconds so both ends notice a dead connection. Full sets rather than deltas keep the
//! resolver side trivial and make a reconnection after any gap correct by construction.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::mpsc;
use ward_protocol::{IdentityLease, StreamEvent, PROTOCOL_VERSION};

use super::extract::Device;
use super::{snapshot, Failure};
use crate::app::App;
use crate::store::LeaseRecord;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often lapsed leases are looked for (a lapse changes no row, so nothing notifies). This also
/// brings leases another collector of the trust stored, which notified only its own streams.
const EXPIRY_CHECK: Duration = Duration::from_secs(5);
/// How often the newest policy revision is looked up, for one stored through another collector of
/// the trust (this collector's own changes arrive at once through the hub).
const POLICY_CHECK: Duration = Duration::from_secs(2);

pub async fn stream(State(app): State<App>, device: Device) -> Result<Response, Failure> {
    device.require("resolver", "the policy and identity stream")?;
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tracing::info!(device = %device.record.id, "resolver subscribed");
    tokio::spawn(feed(app, device.record.id, tx));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::new(EventBody { rx }),
    )
        .into_response())
}

/// Writes events into `tx` until the resolver goes away or the collector shuts down.
async fn feed(app: App, device: String, tx: mpsc::Sender<Bytes>) {
    let (mut leases_rx, mut policy_rx) = app.hub().watch();
    let mut sent_policy = None;
    let mut sent_leases = None;
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    let mut expiry = tokio::time::interval(EXPIRY_CHECK);
    let mut policy_check = tokio::time::interval(POLICY_CHECK);
    let result: Result<(), String> = async {
        send_policy(&app, &tx, &mut sent_policy).await?;
        send_leases(&app, &tx, &mut sent_leases, true).await?;
        loop {
            tokio::select! {
                _ = app.shutdown().cancelled() => return Ok(()),
                _ = tx.closed() => return Ok(()),
                changed = leases_rx.changed() => {
                    changed.map_err(|e| e.to_string())?;
                    send_leases(&app, &tx, &mut sent_leases, false).await?;
                }
                changed = policy_rx.changed() => {
                    changed.map_err(|e| e.to_string())?;
                    send_policy(&app, &tx, &mut sent_policy).await?;
                }
                _ = expiry.tick() => send_leases(&app, &tx, &mut sent_leases, false).await?,
                _ = policy_check.tick() => {
                    let revision = app.with_store(|s| s.policy_revision()).await.map_err(|e| e.to_string())?;
                    if revision != sent_policy {
                        send_policy(&app, &tx, &mut sent_policy).await?;
                    }
                }
                _ = keep_alive.tick() => {
                    tx.send(Bytes::from_static(b": keep-alive\n\n")).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
    .await;
    match result {
        Ok(()) => tracing::info!(device, "resolver stream ended"),
        Err(e) => tracing::info!(device, reason = %e, "resolver stream ended"),
    }
}

fn event(event: &StreamEvent) -> Result<Bytes, String> {
    let json = serde_json::to_string(event).map_err(|e| e.to_string())?;
    Ok(Bytes::from(format!("data: {json}\n\n")))
}

async fn send_policy(
    app: &App,
    tx: &mpsc::Sender<Bytes>,
    sent: &mut Option<i64>,
) -> Result<(), String> {
    let policy = app
        .with_store(|s| s.latest_policy())
        .await
        .map_err(|e| e.to_string())?;
    let Some(policy) = policy else { return Ok(()) };
    if *sent == Some(policy.revision) {
        return Ok(());
    }
    *sent = Some(policy.revision);
    let bytes = event(&StreamEvent::Policy(snapshot(policy)))?;
    tx.send(bytes).await.map_err(|e| e.to_string())
}

async fn send_leases(
    app: &App,
    tx: &mpsc::Sender<Bytes>,
    sent: &mut Option<Vec<LeaseRecord>>,
    always: bool,
) -> Result<(), String> {
    let now = jiff::Timestamp::now().as_microsecond();
    let leases = app
        .with_store(move |s| s.live_leases(now))
        .await
        .map_err(|e| e.to_string())?;
    if !always && sent.as_ref() == Some(&leases) {
        return Ok(());
    }
    let wire = leases.iter().filter_map(to_wire).collect();
    *sent = Some(leases);
    let bytes = event(&StreamEvent::Leases {
        version: PROTOCOL_VERSION,
        leases: wire,
    })?;
    tx.send(bytes).await.map_err(|e| e.to_string())
}

fn to_wire(lease: &LeaseRecord) -> Option<IdentityLease> {
    Some(IdentityLease {
        version: PROTOCOL_VERSION,
        addresses: lease
            .addresses
            .split(',')
            .filter_map(|a| a.parse().ok())
            .collect(),
        user: lease.user.clone(),
        group: lease.group.clone(),
        expires: jiff::Timestamp::from_microsecond(lease.expires).ok()?,
    })
}

/// A response body fed by a channel: each message is one frame, the end of the channel ends it.
struct EventBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}
