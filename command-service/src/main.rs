//! `command-service`: decides commands sent over NATS (`NATS_URL`), appending to `EVENT_STORE_URL`,
//! and relays every stored event onto JetStream.
//! Without `NATS_URL` there is nothing to serve: the all-in-one server (`cargo run --release`, the
//! gateway) runs the command-service in-process.

use std::process::ExitCode;
use std::sync::Arc;

use command_service::CommandService;
use infra::config::{program, CommandLineError, Settings};
use infra::event_store::open_event_store;
use infra::health::Checks;
use tokio::sync::watch;

/// glibc's allocator took about a sixth of this service's CPU under load (many small, short-lived
/// allocations across threads), as it had in the gateway; mimalloc handles that pattern better.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let command = program(
        "command-service",
        env!("CARGO_PKG_VERSION"),
        "Decides the chat's commands sent over NATS (NATS_URL), appending to the event store \
         (EVENT_STORE_URL), and relays every stored event onto JetStream.",
    );
    // Before logging starts, so that RUST_LOG in .env counts.
    let settings = match Settings::from_command_line(command) {
        Ok(s) => s,
        Err(CommandLineError::Usage(e)) => e.exit(),
        Err(CommandLineError::Setting(e)) => {
            eprintln!("command-service: bad setting: {e}");
            return ExitCode::from(2);
        }
    };
    // Held to the end of `main`: dropping it exports the last spans.
    let _traces =
        match infra::telemetry::init_logging(settings.telemetry.log_format, "command-service") {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("command-service: {e:#}");
                return ExitCode::from(2);
            }
        };
    if let Err(e) = infra::telemetry::install(settings.telemetry.metrics) {
        eprintln!("command-service: metrics: {e:#}");
        return ExitCode::FAILURE;
    }
    let Some(nats_url) = settings.nats_url.clone() else {
        eprintln!(
            "command-service: NATS_URL is not set, so there is nothing to serve; the all-in-one server \
             ('cargo run --release') runs the command-service in-process"
        );
        return ExitCode::from(2);
    };
    match serve(settings, &nats_url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("command-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, nats_url: &str) -> anyhow::Result<()> {
    let shutdown = infra::process::shutdown_signal();
    let store = open_event_store(&settings.event_store_url)
        .await
        .map_err(|e| anyhow::anyhow!("event store (EVENT_STORE_URL) unavailable: {e:#}"))?;
    let client = infra::bus::connect(nats_url).await?;
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let checks = Checks::default()
        .with_event_store("event store", store.clone())
        .with_nats(client.clone());
    infra::health::serve_if_asked(&settings, checks, stop.clone()).await?;
    // Every stored event onto JetStream, from the log itself (several instances may relay at once:
    // JetStream drops the duplicates by event id).
    let relay = tokio::spawn(infra::relay::run(
        store.clone(),
        client.clone(),
        settings.nats_prefix.clone(),
        settings.nats_stream_max_events,
        stop.clone(),
    ));
    let service = Arc::new(CommandService::new(store).with_edit_window(settings.edit_window));
    let served =
        command_service::transport::nats::serve(service, client, &settings.nats_prefix, stop).await;
    match tokio::time::timeout(std::time::Duration::from_secs(2), relay).await {
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %format!("{e:#}"), "event relay stopped with an error")
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "event relay task failed"),
        Ok(Ok(Ok(()))) | Err(_) => {}
    }
    served
}
