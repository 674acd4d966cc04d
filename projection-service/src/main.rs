//! `projection-service`: the projector on its own, following `EVENT_STORE_URL` into `DATABASE_URL`.
//! (The all-in-one gateway runs the same projector in-process.)

use std::process::ExitCode;
use std::sync::Arc;

use infra::config::Settings;
use infra::db::Database;
use infra::event_store::open_event_store;
use projection_service::{run, Projector};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("projection-service: bad setting: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("projection-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let store = open_event_store(&settings.event_store_url).await?;
    let db = Database::connect(&settings.database_url).await?;
    let projector = Arc::new(Projector::new(db).await?);
    let (progress, _) = watch::channel(projector.checkpoint().await?);
    let (stop_tx, stop_rx) = watch::channel(false);
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        // Finish the batch in hand, then stop.
        let _ = stop_tx.send(true);
    });
    tracing::info!(from = *progress.borrow(), "projecting");
    run(store, projector, progress, None, stop_rx).await
}
