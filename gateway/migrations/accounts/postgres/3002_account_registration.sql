-- Whether the account's `UserRegistered` is known to be in the event log. A sign-up whose
-- registration did not reach the log (the store refused it, or its answer was lost) leaves 0, and
-- the next sign-up, verification or login records it first. Accounts made before this column start
-- at 0 too: recording a registration the log already holds is harmless, and heals any that is not.
ALTER TABLE accounts ADD COLUMN registered BIGINT NOT NULL DEFAULT 0;
