-- The files shared in each message, in the order the sender gave them: pages show them with the
-- message, and a file may be fetched by the current members of every chat it was sent in (the
-- gateway joins this with `chat_members` by `file_id`).
CREATE TABLE message_attachments (
    chat_id      TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    ordinal      INTEGER NOT NULL,
    file_id      TEXT    NOT NULL,
    name         TEXT,
    size         BIGINT  NOT NULL,
    content_type TEXT    NOT NULL,
    PRIMARY KEY (message_id, ordinal)
);
CREATE INDEX message_attachments_by_file ON message_attachments (file_id, chat_id);
