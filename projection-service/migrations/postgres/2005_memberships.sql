-- Every stretch of time a user was a member of a chat, in log positions: from the event that made
-- them a member (creation, an add) to the one that ended it (a removal, the group's deletion),
-- both included; `until_position` is NULL while they still are. `sync` reads a user's stretches to
-- know which chats' events, and which part of each, were theirs; delivery reads a chat's to address
-- an event to exactly the members it had at that event's position.
CREATE TABLE chat_memberships (
    chat_id        TEXT   NOT NULL,
    user_id        TEXT   NOT NULL,
    since_position BIGINT NOT NULL,
    until_position BIGINT,
    PRIMARY KEY (chat_id, user_id, since_position)
);
CREATE INDEX chat_memberships_by_user ON chat_memberships (user_id, until_position);
