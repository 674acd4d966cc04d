-- The event log. `position` is the global order: appends serialize on an advisory lock and take
-- max(position)+1 inside their transaction, so positions appear in commit order and a follower
-- reading "after P" can never miss an event committed later with a smaller position.
-- Payloads are TEXT (not jsonb) so they come back byte for byte.
CREATE TABLE IF NOT EXISTS events (
    position        BIGINT  PRIMARY KEY,
    event_id        TEXT    NOT NULL UNIQUE,
    stream          TEXT    NOT NULL,
    version         BIGINT  NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    occurred_at     BIGINT  NOT NULL,
    actor           TEXT,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT,
    payload         TEXT    NOT NULL,
    UNIQUE (stream, version)
);
