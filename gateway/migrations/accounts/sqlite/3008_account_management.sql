-- What a user sees of each of their sessions: the client it was opened from and when it was last
-- used (written at most once a minute, Unix milliseconds; null until first used again).
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN last_used_at BIGINT;

-- At most one live password-reset code per account, stored as a keyed hash; a new request
-- replaces it. Kept apart from verification codes, so neither is accepted for the other.
CREATE TABLE password_reset_codes (
    user_id    TEXT PRIMARY KEY REFERENCES accounts(user_id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0
);
