-- Each member's delivered pointer: the version of the last message their devices received (-1:
-- none). A read delivers too, so the pointer shown is the greater of this and read_version.
ALTER TABLE chat_members ADD COLUMN delivered_version BIGINT NOT NULL DEFAULT -1;
