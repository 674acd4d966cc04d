-- Read models, written only by the projector. Times are Unix milliseconds; versions are the chat
-- stream's event versions (the order of the chat).

-- How far the projector has applied the global log; written in the same transaction as the models.
CREATE TABLE projection_checkpoints (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- The user directory: names for display and search.
CREATE TABLE users (
    user_id     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_folded TEXT NOT NULL,   -- lower-cased name, for case-insensitive search
    verified    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX users_by_folded_name ON users (verified, name_folded);

-- Every chat: kind is 'self', 'personal' or 'group'.
CREATE TABLE chats (
    chat_id      TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    name         TEXT,
    description  TEXT,
    admin        TEXT,
    deleted      BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    last_version BIGINT,           -- version of the newest message
    last_chat    BIGINT            -- time of the newest message
);

-- Current members, with their read pointer (version of the last message they read, -1 for none).
CREATE TABLE chat_members (
    chat_id      TEXT NOT NULL REFERENCES chats(chat_id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    read_version BIGINT NOT NULL DEFAULT -1,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_by_user ON chat_members (user_id);

-- One row per message, keyed by its place in the chat; pages are keyset scans of this key.
CREATE TABLE messages (
    chat_id    TEXT NOT NULL,
    version    BIGINT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    sender_id  TEXT NOT NULL,
    content    TEXT NOT NULL,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (chat_id, version)
);
