-- Whether the user lets their contacts see them online (1) or hides (0): the last
-- PresenceVisibilitySet of their stream; everyone is visible until they choose otherwise.
ALTER TABLE users ADD COLUMN presence_visible INTEGER NOT NULL DEFAULT 1;
