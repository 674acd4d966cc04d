//! Traces: `tracing` spans exported as OpenTelemetry spans over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and nothing when
//! it is not; and the W3C trace context (`traceparent`) that carries a request's trace from one
//! process to the next: in a command's envelope to the command-service, in the metadata of every
//! event it writes (and so to the projections and the deliveries, in any process, even on replay),
//! and in the `traceparent` header of the event's NATS message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header (and the name of the trace context wherever it is carried).
pub const TRACEPARENT: &str = "traceparent";

/// Set once an exporter is installed: until then no span has an OpenTelemetry context worth
/// carrying, and looking for one is skipped.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// How long a stopping process waits for its last spans to be exported.
const SHUTDOWN: Duration = Duration::from_secs(5);

/// The exporter's settings, read from the standard OpenTelemetry variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    pub protocol: Protocol,
}

impl OtlpSettings {
    /// `None` when no OTLP endpoint is set (no export); an error naming the variable when the
    /// protocol is one this build does not speak.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let endpoint = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
        if !endpoint {
            return Ok(None);
        }
        let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_default();
        let protocol = match protocol.trim() {
            "" | "http/protobuf" => Protocol::HttpBinary,
            "http/json" => Protocol::HttpJson,
            other => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL: {other:?} is not supported; use http/protobuf \
                 (the default) or http/json, to the collector's OTLP/HTTP port (4318)"
            ),
        };
        Ok(Some(Self { protocol }))
    }
}

/// Exports the process's spans until dropped; dropping it sends what is still buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Starts the batch exporter for `service` (`OTEL_SERVICE_NAME` overrides the name) and the
    /// `tracing` layer that feeds it.
    pub fn start<S>(
        settings: &OtlpSettings,
        service: &'static str,
    ) -> anyhow::Result<(
        Self,
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    )>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(settings.protocol)
            .build()
            .map_err(|e| {
                anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces: {e}")
            })?;
        let name = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| service.to_owned());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(name).build())
            .build();
        let tracer = provider.tracer(service);
        EXPORTING.store(true, Ordering::Relaxed);
        Ok((
            Self { provider },
            tracing_opentelemetry::layer().with_tracer(tracer),
        ))
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        EXPORTING.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN) {
            eprintln!("traces: the last spans could not be exported: {e}");
        }
    }
}

/// The current span's trace context as a W3C `traceparent` value, to carry to another process;
/// `None` when no trace is being exported.
pub fn current_trace_parent() -> Option<String> {
    trace_parent_of_exported(&tracing::Span::current())
}

/// `span`'s trace context as a `traceparent` value; `None` when no trace is being exported.
pub fn trace_parent_of_exported(span: &tracing::Span) -> Option<String> {
    if !EXPORTING.load(Ordering::Relaxed) {
        return None;
    }
    trace_parent_of(span)
}

/// `span`'s trace context as a `traceparent` value, when it has one.
pub fn trace_parent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the remote span that `trace_parent` names (a W3C `traceparent`
/// value), so that it joins that trace. Anything unreadable leaves the span where it was.
pub fn continue_trace(span: &tracing::Span, trace_parent: Option<&str>) {
    let Some(trace_parent) = trace_parent else {
        return;
    };
    if !EXPORTING.load(Ordering::Relaxed) {
        return;
    }
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), trace_parent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        // Fails only for a span no layer records: then there is nothing to attach.
        let _ = span.set_parent(context);
    }
}

/// What a process does with an event it did not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Applied to the read models.
    Project,
    /// Sent to the sockets it concerns.
    Deliver,
}

/// One span per traced event of `events`, each continuing its event's trace, for as long as the
/// returned spans live: a batch's work is timed once and shows in every trace it served. Empty
/// (and free) when no trace is being exported.
pub fn event_spans<'a>(
    stage: Stage,
    events: impl IntoIterator<Item = &'a events_schema::RecordedEvent>,
) -> Vec<tracing::Span> {
    if !EXPORTING.load(Ordering::Relaxed) {
        return Vec::new();
    }
    events
        .into_iter()
        .filter(|event| event.trace_parent.is_some())
        .map(|event| {
            let (kind, position) = (event.event_type.as_str(), event.position);
            let correlation_id = tracing::field::display(event.correlation_id);
            let span = match stage {
                Stage::Project => {
                    tracing::info_span!("project", event = kind, position, correlation_id)
                }
                Stage::Deliver => {
                    tracing::info_span!("deliver", event = kind, position, correlation_id)
                }
            };
            continue_trace(&span, event.trace_parent.as_deref());
            span
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// Whether `value` is a well-formed W3C `traceparent` (version 00).
    fn is_trace_parent(value: &str) -> bool {
        let parts: Vec<&str> = value.split('-').collect();
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        parts.len() == 4
            && parts[0] == "00"
            && hex(parts[1], 32)
            && parts[1].bytes().any(|b| b != b'0')
            && hex(parts[2], 16)
            && parts[2].bytes().any(|b| b != b'0')
            && hex(parts[3], 2)
    }

    #[test]
    fn a_trace_context_carried_as_traceparent_continues_the_same_trace() {
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        EXPORTING.store(true, Ordering::Relaxed);
        tracing::subscriber::with_default(subscriber, || {
            let sender = tracing::info_span!("sender");
            let carried = trace_parent_of(&sender).expect("an exported span has a context");
            assert!(is_trace_parent(&carried), "{carried}");
            let receiver = tracing::info_span!("receiver");
            continue_trace(&receiver, Some(&carried));
            drop(receiver);
            drop(sender);
        });
        let spans = exporter.get_finished_spans().unwrap();
        let sender = spans.iter().find(|s| s.name == "sender").unwrap();
        let receiver = spans.iter().find(|s| s.name == "receiver").unwrap();
        assert_eq!(
            receiver.span_context.trace_id(),
            sender.span_context.trace_id()
        );
        assert_eq!(receiver.parent_span_id, sender.span_context.span_id());
    }

    #[test]
    fn only_well_formed_version_00_values_are_trace_parents() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_trace_parent(good));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(!is_trace_parent(bad), "{bad:?}");
        }
    }

    #[test]
    fn without_an_exporter_nothing_is_carried() {
        // No layer records this span: it has no OpenTelemetry context.
        let span = tracing::info_span!("alone");
        assert_eq!(trace_parent_of(&span), None);
    }
}
