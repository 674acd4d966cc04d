-- The W3C trace context of the span that wrote each event (null when its request was not traced),
-- so that the projections and deliveries that handle it later join the same trace.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
