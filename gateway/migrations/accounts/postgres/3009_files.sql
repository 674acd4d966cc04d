-- Uploaded files: the bytes are in the file store (FILES_URL) under `file_id`; this is what the
-- gateway knows of them. `sent_at` (Unix milliseconds) is set when the uploader first sends the
-- file in a message; an upload never sent within a day is swept away with its bytes.
CREATE TABLE files (
    file_id      TEXT PRIMARY KEY,
    uploader     TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT   NOT NULL,
    sha256       TEXT   NOT NULL,
    name         TEXT,
    created_at   BIGINT NOT NULL,
    sent_at      BIGINT
);
CREATE INDEX files_orphans ON files (created_at) WHERE sent_at IS NULL;
