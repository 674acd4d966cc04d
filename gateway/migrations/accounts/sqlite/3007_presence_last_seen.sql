-- When each user was last seen: the time their last socket left, written once the grace after it
-- ended with no socket back (Unix milliseconds). Not an event: being online is not kept in the log.
CREATE TABLE presence_last_seen (
    user_id   TEXT PRIMARY KEY,
    last_seen BIGINT NOT NULL
);
