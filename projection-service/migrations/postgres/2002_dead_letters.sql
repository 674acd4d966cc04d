-- Events the projector could not apply and stepped over, so that one event cannot stall every
-- later one (docs/design.md, "An event the read models cannot take"). Each is written in the
-- same transaction as the checkpoint that passes it; the read models lack its effect until a
-- replay that can apply it. `parked_at` is Unix milliseconds.
CREATE TABLE projection_dead_letters (
    position   BIGINT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    event_type TEXT NOT NULL,
    error      TEXT NOT NULL,
    parked_at  BIGINT NOT NULL
);
