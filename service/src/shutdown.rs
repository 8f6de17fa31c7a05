//! One cancellation token that every loop selects on, cancelled by SIGINT or SIGTERM.

use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

/// Starts a task that cancels `token` on the first SIGINT or SIGTERM.
///
/// # Errors
/// If the signal handlers cannot be installed.
pub fn on_signals(token: CancellationToken) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down");
            token.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("shutting down");
                token.cancel();
            }
        });
    }
    Ok(())
}

/// How long in-flight work may take to finish after shutdown starts.
pub const GRACE: Duration = Duration::from_secs(5);
