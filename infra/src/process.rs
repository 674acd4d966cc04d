//! What every service binary does the same way: the shutdown signal and retried start-up steps.

use std::future::Future;

/// Resolves on SIGTERM or Ctrl-C. The SIGTERM handler is installed when this is called, not when
/// the future is first polled, so call it before announcing readiness: a SIGTERM sent the moment a
/// service says it is up must still stop it gracefully, not kill it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
    }
}

/// Runs `attempt` until it returns `Ok` (which it does only when asked to stop) or `stop` turns
/// true. A failure is logged as `what` interrupted, and the next attempt starts after a pause that
/// doubles up to 5 s. Each attempt gets its own receiver of `stop`.
pub async fn retry_until_stopped<F, Fut>(
    mut stop: tokio::sync::watch::Receiver<bool>,
    what: &str,
    mut attempt: F,
) where
    F: FnMut(tokio::sync::watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut pauses = crate::backoff::Backoff::new(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(5),
    );
    loop {
        if *stop.borrow() {
            return;
        }
        match attempt(stop.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "{what} interrupted; resuming from its own position")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pauses.next()) => {}
            _ = stop.changed() => return,
        }
    }
}
