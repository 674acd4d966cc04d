//! What presence reads from the read models: a user's contacts (personal-chat partners and fellow
//! group members) and whether each lets others see them online (`PresenceVisibilitySet`). Being
//! online is not kept here: it is not an event.

use events_schema::events::PresenceVisibilitySet;
use events_schema::UserId;
use infra::db::Database;

use super::projector::Tx;
use super::queries::QueryError;

/// A contact of a user, and whether they let others see them online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub user_id: UserId,
    pub visible: bool,
}

/// Applies `PresenceVisibilitySet`: the user's choice, as of their latest event.
pub(super) async fn visibility_set(
    tx: &mut Tx<'_>,
    event: &PresenceVisibilitySet,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET presence_visible = $1 WHERE user_id = $2")
        .bind(i64::from(event.visible))
        .bind(event.user_id.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The user's contacts: partners of their personal chats and fellow members of their groups (not
/// deleted), the most recently active chats first, each contact once, at most `limit`.
pub async fn contacts(
    db: &Database,
    user: &UserId,
    limit: usize,
) -> Result<Vec<Contact>, QueryError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows: Vec<(String, i64)> = db
        .read(|| {
            sqlx::query_as(
                "SELECT o.user_id, u.presence_visible \
                 FROM chat_members me \
                 JOIN chats c ON c.chat_id = me.chat_id AND c.kind IN ('personal', 'group') AND c.deleted = 0 \
                 JOIN chat_members o ON o.chat_id = c.chat_id AND o.user_id <> me.user_id \
                 JOIN users u ON u.user_id = o.user_id \
                 WHERE me.user_id = $1 \
                 GROUP BY o.user_id, u.presence_visible \
                 ORDER BY MAX(COALESCE(c.last_chat, c.created_at)) DESC, o.user_id \
                 LIMIT $2",
            )
            .bind(user.as_str())
            .bind(limit)
            .fetch_all(&db.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(id, visible)| {
            Ok(Contact {
                user_id: UserId::parse(&id).map_err(|e| QueryError::Corrupt(e.to_string()))?,
                visible: visible != 0,
            })
        })
        .collect()
}

/// Whether `user` lets others see them online (an unknown user is taken as visible: there is no
/// choice of theirs to respect).
pub async fn visible(db: &Database, user: &UserId) -> Result<bool, QueryError> {
    let row: Option<(i64,)> = db
        .read(|| {
            sqlx::query_as("SELECT presence_visible FROM users WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(&db.pool)
        })
        .await?;
    Ok(row.is_none_or(|(visible,)| visible != 0))
}
