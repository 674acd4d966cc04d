//! `gateway`: with no `NATS_URL`, the all-in-one server (what `cargo run --release` starts); with
//! it, one gateway of the production topology.

use std::process::ExitCode;

use gateway::Application;

/// glibc's allocator spent a tenth of the server's time under load (many small, short-lived
/// allocations across threads); mimalloc handles that pattern with less contention.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use infra::config::{program, CommandLineError, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let command = program(
        "gateway",
        env!("CARGO_PKG_VERSION"),
        "The chat server's HTTP and Socket.IO front. With no NATS_URL, the whole server in one \
         process (all-in-one); with it, one gateway of the production topology.",
    );
    // Before logging starts, so that RUST_LOG in .env counts.
    let settings = match Settings::from_command_line(command) {
        Ok(settings) => settings,
        Err(CommandLineError::Usage(e)) => e.exit(),
        Err(CommandLineError::Setting(e)) => {
            eprintln!("gateway: bad setting: {e}");
            return ExitCode::from(2);
        }
    };
    // Held to the end of `main`: dropping it exports the last spans.
    let _traces = match infra::telemetry::init_logging(settings.telemetry.log_format, "gateway") {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = infra::telemetry::install(settings.telemetry.metrics) {
        eprintln!("gateway: metrics: {e:#}");
        return ExitCode::FAILURE;
    }
    if let (true, Some(port)) = (settings.telemetry.metrics, settings.telemetry.metrics_port) {
        if let Err(e) = infra::telemetry::serve_metrics(&settings.host, port).await {
            eprintln!("gateway: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    let shutdown = infra::process::shutdown_signal();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
