//! `projection-service`: the projector on its own, into `DATABASE_URL`. With `NATS_URL` (the
//! production topology) it is fed by a JetStream durable consumer and announces its progress to
//! the gateways; without, it follows `EVENT_STORE_URL` directly. (The all-in-one gateway runs the
//! same projector in-process.)

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
    let shutdown = infra::process::shutdown_signal();
    let db = Database::connect(&settings.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("database (DATABASE_URL) unavailable: {e:#}"))?;
    let projector = Arc::new(Projector::new(db).await?);
    let from = projector.checkpoint().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        // Finish the batch in hand, then stop.
        let _ = stop_tx.send(true);
    });
    if let Some(url) = &settings.nats_url {
        let client = infra::bus::connect(url).await?;
        tracing::info!(from, "projecting from JetStream");
        let prefix = settings.nats_prefix.clone();
        let done = projection_service::nats::run(client.clone(), prefix, projector, stop_rx).await;
        let _ = client.flush().await;
        return done;
    }
    let store = open_event_store(&settings.event_store_url)
        .await
        .map_err(|e| anyhow::anyhow!("event store (EVENT_STORE_URL) unavailable: {e:#}"))?;
    let (progress, _) = watch::channel(from);
    tracing::info!(from, "projecting from the event store");
    run(store, projector, progress, None, stop_rx).await
}
