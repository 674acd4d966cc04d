//! Edits, deletions, reactions and delivered pointers in the read models: a message row holds its latest text, when
//! it was last edited and whether it is deleted (then without its text or reactions); reactions
//! are rows of their own. Each statement is idempotent, so a batch applied again changes nothing.

use events_schema::events::{
    MessageDeleted, MessageEdited, MessagesDelivered, ReactionAdded, ReactionRemoved,
};
use events_schema::RecordedEvent;
use infra::db::DbKind;

use super::projector::{storable, Tx};

pub(crate) async fn edited(
    tx: &mut Tx<'_>,
    kind: DbKind,
    recorded: &RecordedEvent,
    e: &MessageEdited,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET content = $1, edited_at = $2 \
         WHERE chat_id = $3 AND message_id = $4 AND deleted = 0",
    )
    .bind(storable(kind, e.content.as_str()).as_ref())
    .bind(recorded.occurred_at.timestamp_millis())
    .bind(e.chat_id.as_str())
    .bind(e.message_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The text goes, the row stays (pages show the message as deleted in its place).
pub(crate) async fn deleted(tx: &mut Tx<'_>, e: &MessageDeleted) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET content = '', deleted = 1 WHERE chat_id = $1 AND message_id = $2",
    )
    .bind(e.chat_id.as_str())
    .bind(e.message_id.as_str())
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM message_reactions WHERE chat_id = $1 AND message_id = $2")
        .bind(e.chat_id.as_str())
        .bind(e.message_id.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn reaction_added(
    tx: &mut Tx<'_>,
    recorded: &RecordedEvent,
    e: &ReactionAdded,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO message_reactions (chat_id, message_id, emoji, user_id, position) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(e.chat_id.as_str())
    .bind(e.message_id.as_str())
    .bind(e.emoji.as_str())
    .bind(e.user_id.as_str())
    .bind(recorded.position as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn reaction_removed(
    tx: &mut Tx<'_>,
    e: &ReactionRemoved,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM message_reactions \
         WHERE chat_id = $1 AND message_id = $2 AND emoji = $3 AND user_id = $4",
    )
    .bind(e.chat_id.as_str())
    .bind(e.message_id.as_str())
    .bind(e.emoji.as_str())
    .bind(e.user_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves a delivered pointer forward (never back): one row, however many messages it passes.
pub(crate) async fn delivered(tx: &mut Tx<'_>, e: &MessagesDelivered) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE chat_members SET delivered_version = $1 \
         WHERE chat_id = $2 AND user_id = $3 AND delivered_version < $1",
    )
    .bind(e.up_to_version as i64)
    .bind(e.chat_id.as_str())
    .bind(e.reader.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
