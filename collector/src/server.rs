//! The accept loop: TLS over TCP, one task per connection, a cap on open connections, and a graceful
//! shutdown that stops accepting, lets requests in flight finish within a grace period, then returns.
//!
//! Every request is handed to one axum `Router` (API and, later, review UI on the same port) with a
//! [`Peer`] in its extensions: the remote address and the client certificate, if any. A connection that
//! fails (handshake, protocol error, timeout) ends only its own task.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::tls::{Peer, Tls};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` over TLS on `listener` until `shutdown` is cancelled, then drains for `grace`.
///
/// # Errors
/// Only if accepting fails for a reason other than a single bad connection.
pub async fn run(
    listener: TcpListener,
    tls: Tls,
    router: Router,
    max_connections: usize,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(max_connections));
    let tracker = TaskTracker::new();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit?,
        };
        let (tcp, addr) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, tls, router, shutdown) = (
            acceptor.clone(),
            tls.clone(),
            router.clone(),
            shutdown.clone(),
        );
        tracker.spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let cert = tls
                .peer_cert(stream.get_ref().1.peer_certificates())
                .map(Arc::new);
            let peer = Peer { addr, cert };
            serve_connection(stream, peer, router, shutdown).await;
        });
    }
    tracker.close();
    tracing::info!(connections = tracker.len(), "no longer accepting; draining");
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            connections = tracker.len(),
            "grace period over; closing the remaining connections"
        );
    }
    Ok(())
}

async fn serve_connection<S>(stream: S, peer: Peer, router: Router, shutdown: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        let (method, path, addr) = (
            request.method().clone(),
            request.uri().path().to_string(),
            peer.addr,
        );
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await?;
            if let Some(refusal) = response.extensions().get::<crate::api::Refusal>() {
                let status = response.status().as_u16();
                if status >= 500 {
                    tracing::error!(peer = %addr, %method, path, status, error = refusal.code, reason = %refusal.reason, "request failed");
                } else {
                    tracing::warn!(peer = %addr, %method, path, status, error = refusal.code, reason = %refusal.reason, "request refused");
                }
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
