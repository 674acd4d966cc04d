-- Full-text search over messages (`search-messages`): an FTS5 index over `messages.content`
-- (external content: the text is stored once, in `messages`), keyed by the message row's rowid.
-- Words are runs of letters, digits and combining marks, case-folded, diacritics kept (so a word
-- matches whole in any language, as PostgreSQL's 'simple' configuration does).
CREATE VIRTUAL TABLE message_search USING fts5(
    content,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 0'
);

-- Kept current in the same statement as every write of a message's text: the projector's batched
-- inserts, edits and deletions (content emptied), and the rows a replay swaps in. A row inserted
-- again (`ON CONFLICT DO NOTHING`) fires nothing, so applying an event twice changes nothing.
CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO message_search (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, content) VALUES ('delete', old.rowid, old.content);
END;

-- A database upgraded to this version indexes the messages it already holds.
INSERT INTO message_search (message_search) VALUES ('rebuild');
