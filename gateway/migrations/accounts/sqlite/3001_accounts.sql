-- Accounts and their secrets: ordinary tables, never events. Times are Unix milliseconds.
CREATE TABLE accounts (
    user_id       TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,   -- trimmed and lower-cased
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,          -- argon2id PHC string
    verified      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- At most one live verification code per account, stored as a keyed hash.
CREATE TABLE verification_codes (
    user_id    TEXT PRIMARY KEY REFERENCES accounts(user_id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0
);

-- A session is one login (or verification); its refresh token rotates, only its hash is kept.
CREATE TABLE sessions (
    session_id   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES accounts(user_id) ON DELETE CASCADE,
    refresh_hash TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Refresh tokens already rotated away: presenting one again revokes its session.
CREATE TABLE spent_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE
);
