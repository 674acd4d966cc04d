//! The name, kind and meaning of every metric the processes keep. docs/operations.md explains
//! each, with the alerts built on them (infra/deploy/prometheus/alerts.yml).

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Gauge: Socket.IO sockets connected to this gateway.
pub const SOCKETS_CONNECTED: &str = "chat_sockets_connected";
/// Counter, labels `event`, `outcome` (`ok` or the refusal code): socket requests answered.
pub const SOCKET_REQUESTS: &str = "chat_socket_requests_total";
/// Histogram, label `event`: time from a socket request's arrival to its answer.
pub const SOCKET_REQUEST_SECONDS: &str = "chat_socket_request_seconds";
/// Counter, labels `route`, `status`: HTTP requests answered.
pub const HTTP_REQUESTS: &str = "chat_http_requests_total";
/// Histogram, label `route`: HTTP request time.
pub const HTTP_REQUEST_SECONDS: &str = "chat_http_request_seconds";
/// Counter, labels `command`, `outcome` (`ok` or the refusal code): commands decided.
pub const COMMANDS: &str = "chat_commands_total";
/// Counter: events appended to the event store.
pub const EVENTS_APPENDED: &str = "chat_events_appended_total";
/// Histogram: appends written together in one event-store transaction.
pub const APPEND_BATCH_SIZE: &str = "chat_append_batch_size";
/// Histogram: time of one event-store write (a batch of appends).
pub const APPEND_SECONDS: &str = "chat_event_store_append_seconds";
/// Counter: event-store writes that failed.
pub const EVENT_STORE_ERRORS: &str = "chat_event_store_errors_total";
/// Histogram, label `op`: time of one read-model database statement.
pub const DATABASE_SECONDS: &str = "chat_database_seconds";
/// Counter: read-model statements that failed.
pub const DATABASE_ERRORS: &str = "chat_database_errors_total";
/// Gauge, label `projector`: events in the log the projector has not applied.
pub const PROJECTION_LAG_EVENTS: &str = "chat_projection_lag_events";
/// Gauge, label `projector`: age of the newest event the projector applied, when it applied it.
pub const PROJECTION_LAG_SECONDS: &str = "chat_projection_lag_seconds";
/// Counter, label `projector`: events applied to the read models.
pub const EVENTS_PROJECTED: &str = "chat_events_projected_total";
/// Gauge: events parked because the read models cannot take them.
pub const DEAD_LETTERS: &str = "chat_projection_dead_letters";
/// Gauge: events committed to the store and not yet published on NATS by the relay.
pub const RELAY_LAG_EVENTS: &str = "chat_relay_lag_events";
/// Counter: events the relay published.
pub const EVENTS_RELAYED: &str = "chat_events_relayed_total";
/// Counter: reconnections to NATS after a lost connection.
pub const NATS_RECONNECTS: &str = "chat_nats_reconnects_total";
/// Gauge: 1 while connected to NATS, 0 while not.
pub const NATS_CONNECTED: &str = "chat_nats_connected";
/// Counter, label `event`: events delivered to sockets (one per socket).
pub const DELIVERIES: &str = "chat_deliveries_total";
/// Counter: sockets disconnected because they did not read what was sent to them.
pub const SLOW_CONSUMER_DISCONNECTS: &str = "chat_slow_consumer_disconnects_total";
/// Counter, label `limit`: requests or connections refused by a rate or count limit.
pub const RATE_LIMITED: &str = "chat_rate_limited_total";
/// Counter, label `outcome` (`sent`, `failed`): mails handed to the SMTP server.
pub const MAILS: &str = "chat_mails_total";

/// Every name above.
pub const ALL: [&str; 24] = [
    SOCKETS_CONNECTED,
    SOCKET_REQUESTS,
    SOCKET_REQUEST_SECONDS,
    HTTP_REQUESTS,
    HTTP_REQUEST_SECONDS,
    COMMANDS,
    EVENTS_APPENDED,
    APPEND_BATCH_SIZE,
    APPEND_SECONDS,
    EVENT_STORE_ERRORS,
    DATABASE_SECONDS,
    DATABASE_ERRORS,
    PROJECTION_LAG_EVENTS,
    PROJECTION_LAG_SECONDS,
    EVENTS_PROJECTED,
    DEAD_LETTERS,
    RELAY_LAG_EVENTS,
    EVENTS_RELAYED,
    NATS_RECONNECTS,
    NATS_CONNECTED,
    DELIVERIES,
    SLOW_CONSUMER_DISCONNECTS,
    RATE_LIMITED,
    MAILS,
];

/// Registers each metric's unit and help text with the recorder.
pub(super) fn describe() {
    describe_gauge!(
        SOCKETS_CONNECTED,
        "Socket.IO sockets connected to this gateway"
    );
    describe_counter!(
        SOCKET_REQUESTS,
        "Socket requests answered, by event and outcome"
    );
    describe_histogram!(
        SOCKET_REQUEST_SECONDS,
        Unit::Seconds,
        "Time from a socket request's arrival to its answer"
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route and status");
    describe_histogram!(HTTP_REQUEST_SECONDS, Unit::Seconds, "HTTP request time");
    describe_counter!(COMMANDS, "Commands decided, by command and outcome");
    describe_counter!(EVENTS_APPENDED, "Events appended to the event store");
    describe_histogram!(
        APPEND_BATCH_SIZE,
        Unit::Count,
        "Appends written together in one event-store transaction"
    );
    describe_histogram!(
        APPEND_SECONDS,
        Unit::Seconds,
        "Time of one event-store write"
    );
    describe_counter!(EVENT_STORE_ERRORS, "Event-store writes that failed");
    describe_histogram!(
        DATABASE_SECONDS,
        Unit::Seconds,
        "Time of one read-model database statement"
    );
    describe_counter!(
        DATABASE_ERRORS,
        "Read-model database statements that failed"
    );
    describe_gauge!(
        PROJECTION_LAG_EVENTS,
        "Events in the log not yet applied by the projector"
    );
    describe_gauge!(
        PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "Age of the newest applied event when the projector applied it"
    );
    describe_counter!(EVENTS_PROJECTED, "Events applied to the read models");
    describe_gauge!(
        DEAD_LETTERS,
        "Events parked because the read models cannot take them"
    );
    describe_gauge!(
        RELAY_LAG_EVENTS,
        "Events committed but not yet published on NATS"
    );
    describe_counter!(EVENTS_RELAYED, "Events the relay published on NATS");
    describe_counter!(NATS_RECONNECTS, "Reconnections to NATS");
    describe_gauge!(NATS_CONNECTED, "1 while connected to NATS");
    describe_counter!(
        DELIVERIES,
        "Events delivered to sockets, one per socket, by event"
    );
    describe_counter!(
        SLOW_CONSUMER_DISCONNECTS,
        "Sockets disconnected for not reading what was sent to them"
    );
    describe_counter!(RATE_LIMITED, "Requests or connections refused by a limit");
    describe_counter!(MAILS, "Mails handed to the SMTP server, by outcome");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_prometheus_names_of_the_chat_namespace() {
        let distinct: std::collections::BTreeSet<_> = ALL.iter().collect();
        assert_eq!(distinct.len(), ALL.len());
        for name in ALL {
            assert!(name.starts_with("chat_"), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }
}
