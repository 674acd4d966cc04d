-- Full-text search over messages (`search-messages`): a GIN index over each message's words,
-- case-folded and unstemmed (the 'simple' configuration, so a word matches whole in any
-- language). An expression index rather than a stored column: PostgreSQL keeps it current on
-- every insert and update (sends, edits, deletions that empty the text, the rows a replay swaps
-- in), `messages` keeps only types every reader of it can decode, and creating it indexes the
-- messages a database upgraded to this version already holds. A query uses it by naming the same
-- expression: `to_tsvector('simple'::regconfig, content)`.
CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple'::regconfig, content));
