-- Announces each stored batch to every process that follows the log (LISTEN expresschat_events),
-- with the highest position the statement wrote, so that a follower reads another process's appends
-- as soon as they are committed instead of polling for them. A notification is delivered at commit,
-- and not at all if the transaction rolls back.
CREATE FUNCTION events_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('expresschat_events', (SELECT MAX(position) FROM appended)::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER events_announce AFTER INSERT ON events REFERENCING NEW TABLE AS appended
  FOR EACH STATEMENT EXECUTE FUNCTION events_announce();
