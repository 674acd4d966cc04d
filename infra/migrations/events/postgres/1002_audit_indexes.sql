-- Audit pages: a chat's history (its stream) and a user's actions (the actor), each in log order,
-- read from any position at the cost of the page alone.
CREATE INDEX IF NOT EXISTS events_stream_position ON events (stream, position);
CREATE INDEX IF NOT EXISTS events_actor_position ON events (actor, position) WHERE actor IS NOT NULL;
