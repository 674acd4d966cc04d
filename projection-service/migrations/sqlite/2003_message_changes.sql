-- What happened to messages after they were sent. Pages show the current state; the event store
-- keeps every version (the audit shows them).

-- The message of the same chat a message answers; when its text was last edited (Unix ms); and
-- whether it was deleted (its content is then emptied).
ALTER TABLE messages ADD COLUMN reply_to TEXT;
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

-- One row per member and emoji on a message; position is the global position of the reaction,
-- which orders a message's reactions.
CREATE TABLE message_reactions (
    chat_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    emoji      TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);
