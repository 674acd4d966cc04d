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
    infra::process::init_logging();
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
    let shutdown = infra::process::shutdown_signal();
    tokio::spawn(async move {
        shutdown.await;
        // Finish the batch in hand, then stop.
        let _ = stop_tx.send(true);
    });
    tracing::info!(from = *progress.borrow(), "projecting");
    run(store, projector, progress, None, stop_rx).await
}
