//! `gateway`: with no `NATS_URL`, the all-in-one server (what `cargo run --release` starts); with
//! it, one gateway of the production topology.

use std::process::ExitCode;

use gateway::Application;

/// glibc's allocator spent a tenth of the server's time under load (many small, short-lived
/// allocations across threads); mimalloc handles that pattern with less contention.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use infra::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    infra::process::init_logging();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("gateway: bad setting: {e}");
            return ExitCode::from(2);
        }
    };
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
