//! Every NATS name of a deployment, built from its `NATS_PREFIX` here and nowhere else, so that
//! several deployments (or test runs) share one NATS server without meeting.
//!
//! | name | what travels |
//! |---|---|
//! | `<prefix>.commands` | commands, request/reply, to the queue group `<prefix>.command-service` |
//! | `<prefix>.events.<stream>` | each stored event, on the JetStream stream `<PREFIX>_EVENTS` |
//! | `<PREFIX>_EVENTS_<projection>` | a projection's durable consumer of that stream |
//! | `<prefix>.applied.<projection>` | what a projection committed, for the gateways to deliver |
//! | `<prefix>.sessions.ended` | a session one gateway ended, for the others to close |
//! | `<prefix>.presence` | each gateway's joins, leaves and heartbeats, and its users for a gateway that starts |
//! | `<prefix>.typing` | who started or stopped typing where, for every gateway to emit to its sockets |

/// The projection the gateways deliver from: its checkpoint row, its durable consumer and its
/// announcements all carry this name.
pub const READ_MODELS: &str = "read_models";

/// The subject commands are sent on.
pub fn commands(prefix: &str) -> String {
    format!("{prefix}.commands")
}

/// The queue group command-service instances share, so that NATS hands each command to one.
pub fn command_queue(prefix: &str) -> String {
    format!("{prefix}.command-service")
}

/// The JetStream stream of the events (stream names allow no `.`, so any character but letters,
/// digits, `_` and `-` becomes `_`).
pub fn events_stream(prefix: &str) -> String {
    let safe: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}_EVENTS")
}

/// The subject of one event of `stream`.
pub fn event(prefix: &str, stream: &str) -> String {
    format!("{prefix}.events.{stream}")
}

/// Every event's subject: what the events stream takes in.
pub fn all_events(prefix: &str) -> String {
    format!("{prefix}.events.>")
}

/// The durable consumer of projection `projection` on the events stream (names allow no `.`).
pub fn durable_consumer(prefix: &str, projection: &str) -> String {
    format!("{}_{projection}", events_stream(prefix))
}

/// The core-NATS subject on which projection `projection` announces what it has applied
/// ([`crate::feed::Applied`]).
pub fn applied(prefix: &str, projection: &str) -> String {
    format!("{prefix}.applied.{projection}")
}

/// The core-NATS subject on which a gateway tells the others that a session ended.
pub fn sessions_ended(prefix: &str) -> String {
    format!("{prefix}.sessions.ended")
}

/// The core-NATS subject on which gateways keep each other's online users: joins, leaves,
/// heartbeats, a new gateway's hello and a stopping one's goodbye.
pub fn presence(prefix: &str) -> String {
    format!("{prefix}.presence")
}

/// The core-NATS subject on which a gateway tells every gateway who started or stopped typing.
pub fn typing(prefix: &str) -> String {
    format!("{prefix}.typing")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_starts_from_the_prefix() {
        assert_eq!(commands("chat"), "chat.commands");
        assert_eq!(command_queue("run42"), "run42.command-service");
        assert_eq!(events_stream("chat"), "chat_EVENTS");
        assert_eq!(events_stream("a.b c"), "a_b_c_EVENTS");
        assert_eq!(event("chat", "chat-1"), "chat.events.chat-1");
        assert_eq!(all_events("chat"), "chat.events.>");
        assert_eq!(
            durable_consumer("chat", "read_models"),
            "chat_EVENTS_read_models"
        );
        assert_eq!(applied("chat", "read_models"), "chat.applied.read_models");
        assert_eq!(sessions_ended("chat"), "chat.sessions.ended");
        assert_eq!(presence("chat"), "chat.presence");
        assert_eq!(typing("chat"), "chat.typing");
    }
}
