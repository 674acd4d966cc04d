//! What a process tells its operator: Prometheus metrics through the `metrics` facade, and the
//! log format. The names of every metric are in [`names`], each described once at install, so
//! that `/metrics` and docs/operations.md list the same set.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub mod names;
pub mod traces;

/// Latency buckets (seconds) for every `*_seconds` histogram: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Buckets for batch sizes (events or messages).
const SIZE_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
/// How often histogram samples are folded into their buckets, so that they do not pile up
/// between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls keep the first), and starts folding its
/// samples on the current tokio runtime. With `enabled` false nothing is installed: every
/// `metrics::counter!` and the like is then a no-op, and [`render`] answers `None`.
pub fn install(enabled: bool) -> anyhow::Result<()> {
    if !enabled || HANDLE.get().is_some() {
        return Ok(());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_size".into()), &SIZE_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another part of this process installed one first (tests start several servers).
        return Ok(());
    }
    if HANDLE.set(handle.clone()).is_err() {
        return Ok(());
    }
    names::describe();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
    Ok(())
}

/// Every metric in Prometheus's text format, or `None` when metrics are off.
pub fn render() -> Option<String> {
    HANDLE.get().map(PrometheusHandle::render)
}

/// The `/metrics` answer: the text format, or 404 when metrics are off.
pub async fn metrics_route() -> Response {
    match render() {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off (METRICS=off)\n").into_response(),
    }
}

/// Serves `/metrics` alone on `host:port` for as long as the process runs (a gateway's
/// `METRICS_PORT`), and returns the bound address.
pub async fn serve_metrics(host: &str, port: u16) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("METRICS_PORT: cannot listen on {host}:{port}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route("/metrics", axum::routing::get(metrics_route));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics endpoint stopped");
        }
    });
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(bound)
}

/// Logs to stderr (stdout stays free for what a command prints) in `format`; `RUST_LOG`
/// overrides the default filter (`info`). Colours only on a terminal. Spans are also exported over
/// OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`traces`]), as `service`: the project's own
/// spans among those `RUST_LOG` keeps. The returned guard sends the last of them when the process
/// ends.
pub fn init_logging(
    format: LogFormat,
    service: &'static str,
) -> anyhow::Result<Option<traces::Exporter>> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    // One filter for both layers: `RUST_LOG` directives filtered per layer lose their targets.
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    let Some(settings) = traces::OtlpSettings::from_env()? else {
        // Already set in this process (tests start several servers): the first one stays.
        let _ = registry.try_init();
        return Ok(None);
    };
    let (exporter, layer) = traces::Exporter::start(&settings, service)?;
    // Of what the filter keeps, the project's own spans: not every dependency's.
    let spans = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::level_filters::LevelFilter::OFF)
        .with_targets(TRACED.iter().map(|t| (*t, tracing::Level::INFO)));
    let _ = registry.with(layer.with_filter(spans)).try_init();
    Ok(Some(exporter))
}

/// The crates whose spans are exported.
const TRACED: [&str; 5] = [
    "gateway",
    "command_service",
    "projection_service",
    "infra",
    "events_schema",
];
