//! Stretches of membership: who was a member of which chat from which log position to which. They
//! make delivery exact (an event reaches the members the chat had at its position, whatever the
//! read models have applied since) and let `sync` find a user's past events without a copy per
//! recipient.

use events_schema::{ChatId, Position, UserId};
use infra::db::Database;

use super::queries::{chat_id, user_id, QueryError};

/// One stretch: a member from `since` to `until` (both included; `None`: still a member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stretch {
    pub since: Position,
    pub until: Option<Position>,
}

impl Stretch {
    /// Whether the event at `position` falls within it.
    pub fn covers(&self, position: Position) -> bool {
        self.since <= position && self.until.is_none_or(|until| position <= until)
    }
}

/// A user's stretch in one chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStretch {
    pub chat_id: ChatId,
    pub stretch: Stretch,
}

/// A chat's member during a stretch, with their name as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStretch {
    pub user_id: UserId,
    pub name: String,
    pub stretch: Stretch,
}

type Row = (String, String, i64, Option<i64>);

fn stretch(since: i64, until: Option<i64>) -> Stretch {
    Stretch {
        since: since.max(0) as Position,
        until: until.map(|u| u.max(0) as Position),
    }
}

/// The stretches of `user` in every chat that did not end before `from`, oldest first.
pub async fn of_user(
    db: &Database,
    user: &UserId,
    from: Position,
) -> Result<Vec<UserStretch>, QueryError> {
    let rows: Vec<(String, i64, Option<i64>)> = db
        .read(|| {
            sqlx::query_as(
                "SELECT chat_id, since_position, until_position FROM chat_memberships \
                 WHERE user_id = $1 AND (until_position IS NULL OR until_position >= $2) \
                 ORDER BY since_position",
            )
            .bind(user.as_str())
            .bind(from as i64)
            .fetch_all(&db.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(chat, since, until)| {
            Ok(UserStretch {
                chat_id: chat_id(chat)?,
                stretch: stretch(since, until),
            })
        })
        .collect()
}

/// The stretches of every member of `chat` that did not end before `from`, by user.
pub async fn of_chat(
    db: &Database,
    chat: &ChatId,
    from: Position,
) -> Result<Vec<MemberStretch>, QueryError> {
    let rows: Vec<Row> = db
        .read(|| {
            sqlx::query_as(
                "SELECT m.user_id, COALESCE(u.name, ''), m.since_position, m.until_position \
                 FROM chat_memberships m LEFT JOIN users u ON u.user_id = m.user_id \
                 WHERE m.chat_id = $1 AND (m.until_position IS NULL OR m.until_position >= $2) \
                 ORDER BY m.user_id, m.since_position",
            )
            .bind(chat.as_str())
            .bind(from as i64)
            .fetch_all(&db.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(user, name, since, until)| {
            Ok(MemberStretch {
                user_id: user_id(user)?,
                name,
                stretch: stretch(since, until),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_covers_both_ends() {
        let closed = stretch(5, Some(9));
        assert!(!closed.covers(4));
        assert!(closed.covers(5));
        assert!(closed.covers(9));
        assert!(!closed.covers(10));
        let open = stretch(5, None);
        assert!(open.covers(u64::MAX));
        assert!(!open.covers(4));
    }
}
