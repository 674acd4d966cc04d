//! The reads the gateway answers with. Every query is one indexed statement; message pages are
//! keyset scans on `(chat_id, version)`, never OFFSET.

use chrono::{DateTime, Utc};
use events_schema::events::AttachmentShared;
use events_schema::{ChatId, MessageId, UserId};
use infra::db::Database;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum QueryError {
    /// `Before` names no message of this chat.
    #[error("unknown message")]
    UnknownMessage,
    #[error("read-model database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("malformed stored value: {0}")]
    Corrupt(String),
}

/// The position the read models have reached (0: none), as their projector committed it.
pub async fn checkpoint(db: &Database) -> Result<u64, QueryError> {
    Ok(db.read(|| super::checkpoint::read(&db.pool)).await?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub id: UserId,
    pub name: String,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub id: MessageId,
    pub sender_id: UserId,
    pub content: String,
    pub sent_at: DateTime<Utc>,
    /// The message's place in its chat.
    pub version: u64,
    /// The message of the same chat this one answers.
    pub reply_to: Option<MessageId>,
    /// When its text was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted: `content` is then empty.
    pub deleted: bool,
    /// Each emoji on it with who reacted with it, by emoji (bytewise), people in the order they
    /// reacted.
    pub reactions: Vec<(String, Vec<UserId>)>,
    /// The files shared in it, in the sender's order (none once it is deleted).
    pub attachments: Vec<AttachmentShared>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePage {
    /// Newest first.
    pub messages: Vec<MessageView>,
    /// Whether older messages exist.
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalChatView {
    pub chat_id: ChatId,
    pub partner_id: UserId,
    pub partner_name: String,
    pub last_chat: Option<DateTime<Utc>>,
    pub unread: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChatView {
    pub chat_id: ChatId,
    pub name: String,
    pub last_chat: Option<DateTime<Utc>>,
    pub unread: i64,
}

pub(super) fn user_id(s: String) -> Result<UserId, QueryError> {
    UserId::parse(&s).map_err(|_| QueryError::Corrupt(format!("user id {s:?}")))
}

pub(super) fn chat_id(s: String) -> Result<ChatId, QueryError> {
    ChatId::parse(&s).map_err(|_| QueryError::Corrupt(format!("chat id {s:?}")))
}

fn time(ms: i64) -> Result<DateTime<Utc>, QueryError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| QueryError::Corrupt(format!("time {ms}")))
}

/// One user of the directory.
pub async fn user(db: &Database, id: &UserId) -> Result<Option<UserView>, QueryError> {
    let row: Option<(String, String, i64)> = db
        .read(|| {
            sqlx::query_as("SELECT user_id, name, verified FROM users WHERE user_id = $1")
                .bind(id.as_str())
                .fetch_optional(&db.pool)
        })
        .await?;
    row.map(|(id, name, verified)| {
        Ok(UserView {
            id: user_id(id)?,
            name,
            verified: verified != 0,
        })
    })
    .transpose()
}

/// Escapes `%`, `_` and `\` so the query matches literally inside a LIKE pattern.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Verified users whose name contains `query` (case-insensitive, literal), except `searcher`,
/// ordered by name, at most `limit`.
pub async fn search_users(
    db: &Database,
    query: &str,
    searcher: &UserId,
    limit: u32,
) -> Result<Vec<UserView>, QueryError> {
    // No name holds a control character (UserName refuses them all), and PostgreSQL would refuse
    // a NUL in the pattern: such a query finds no one without asking.
    if query.chars().any(char::is_control) {
        return Ok(Vec::new());
    }
    let pattern = format!("%{}%", like_literal(&query.to_lowercase()));
    let rows: Vec<(String, String)> = db
        .read(|| {
            sqlx::query_as(
                "SELECT user_id, name FROM users WHERE verified = 1 AND user_id <> $1 AND name_folded LIKE $2 ESCAPE '\\' \
                 ORDER BY name_folded, user_id LIMIT $3",
            )
            .bind(searcher.as_str())
            .bind(pattern.as_str())
            .bind(i64::from(limit))
            .fetch_all(&db.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(id, name)| {
            Ok(UserView {
                id: user_id(id)?,
                name,
                verified: true,
            })
        })
        .collect()
}

/// A page of a chat's messages, newest first: the `limit` newest, or the `limit` newest older than
/// `before`.
pub async fn message_page(
    db: &Database,
    chat: &ChatId,
    before: Option<&MessageId>,
    limit: u32,
) -> Result<MessagePage, QueryError> {
    let below: i64 = match before {
        None => i64::MAX,
        Some(message) => {
            let row: Option<(i64,)> = db
                .read(|| {
                    sqlx::query_as(
                        "SELECT version FROM messages WHERE message_id = $1 AND chat_id = $2",
                    )
                    .bind(message.as_str())
                    .bind(chat.as_str())
                    .fetch_optional(&db.pool)
                })
                .await?;
            row.ok_or(QueryError::UnknownMessage)?.0
        }
    };
    let rows: Vec<MessageRow> = db
        .read(|| {
            sqlx::query_as(
                "SELECT message_id, sender_id, content, sent_at, version, reply_to, edited_at, deleted \
                 FROM messages WHERE chat_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
            )
            .bind(chat.as_str())
            .bind(below)
            .bind(i64::from(limit) + 1)
            .fetch_all(&db.pool)
        })
        .await?;
    let has_more = rows.len() > limit as usize;
    let mut messages = rows
        .into_iter()
        .take(limit as usize)
        .map(message_view)
        .collect::<Result<Vec<_>, QueryError>>()?;
    reactions_of(db, chat, &mut messages).await?;
    attachments_of(db, chat, &mut messages).await?;
    Ok(MessagePage { messages, has_more })
}

/// `message_id, sender_id, content, sent_at, version, reply_to, edited_at, deleted`.
type MessageRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    i64,
);

fn message_id(s: String) -> Result<MessageId, QueryError> {
    MessageId::parse(&s).map_err(|_| QueryError::Corrupt(format!("message id {s:?}")))
}

fn message_view(row: MessageRow) -> Result<MessageView, QueryError> {
    let (id, sender, content, sent_at, version, reply_to, edited_at, deleted) = row;
    Ok(MessageView {
        id: message_id(id)?,
        sender_id: user_id(sender)?,
        content,
        sent_at: time(sent_at)?,
        version: version.max(0) as u64,
        reply_to: reply_to.map(message_id).transpose()?,
        edited_at: edited_at.map(time).transpose()?,
        deleted: deleted != 0,
        reactions: Vec::new(),
        attachments: Vec::new(),
    })
}

/// Fills in the reactions of a page's messages, with one statement for the page.
async fn reactions_of(
    db: &Database,
    chat: &ChatId,
    messages: &mut [MessageView],
) -> Result<(), QueryError> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = (2..messages.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT message_id, emoji, user_id FROM message_reactions \
         WHERE chat_id = $1 AND message_id IN ({}) ORDER BY position",
        ids.join(", ")
    );
    let rows: Vec<(String, String, String)> = db
        .read(|| {
            let mut query = sqlx::query_as(&sql).bind(chat.as_str());
            for m in messages.iter() {
                query = query.bind(m.id.as_str());
            }
            query.fetch_all(&db.pool)
        })
        .await?;
    for (message, emoji, user) in rows {
        let Some(view) = messages.iter_mut().find(|m| m.id.as_str() == message) else {
            continue;
        };
        let user = user_id(user)?;
        match view.reactions.iter_mut().find(|(e, _)| *e == emoji) {
            Some((_, people)) => people.push(user),
            None => view.reactions.push((emoji, vec![user])),
        }
    }
    // By emoji, bytewise: the same on every backend, whatever its collation.
    for view in messages.iter_mut() {
        view.reactions.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(())
}

/// Fills in the files shared in a page's live messages, with one statement for the page.
async fn attachments_of(
    db: &Database,
    chat: &ChatId,
    messages: &mut [MessageView],
) -> Result<(), QueryError> {
    let live: Vec<&str> = messages
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| m.id.as_str())
        .collect();
    if live.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = (2..live.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT message_id, file_id, name, size, content_type FROM message_attachments \
         WHERE chat_id = $1 AND message_id IN ({}) ORDER BY message_id, ordinal",
        ids.join(", ")
    );
    let rows: Vec<(String, String, Option<String>, i64, String)> = db
        .read(|| {
            let mut query = sqlx::query_as(&sql).bind(chat.as_str());
            for id in &live {
                query = query.bind(*id);
            }
            query.fetch_all(&db.pool)
        })
        .await?;
    for (message, file_id, name, size, content_type) in rows {
        if let Some(view) = messages.iter_mut().find(|m| m.id.as_str() == message) {
            view.attachments.push(AttachmentShared {
                file_id,
                name,
                size: size.max(0) as u64,
                content_type,
            });
        }
    }
    Ok(())
}

/// The user's personal chats, newest `LastChat` first (chats without messages last, newest first).
/// `Unread` counts the partner's messages after the user's read pointer, deleted ones left out.
pub async fn personal_chat_list(
    db: &Database,
    user: &UserId,
) -> Result<Vec<PersonalChatView>, QueryError> {
    let rows: Vec<(String, String, String, Option<i64>, i64)> = db
        .read(|| {
            sqlx::query_as(
                "SELECT c.chat_id, p.user_id, u.name, c.last_chat, \
                    (SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.chat_id AND m.version > me.read_version AND m.sender_id <> me.user_id AND m.deleted = 0) \
                 FROM chat_members me \
                 JOIN chats c ON c.chat_id = me.chat_id AND c.kind = 'personal' \
                 JOIN chat_members p ON p.chat_id = c.chat_id AND p.user_id <> me.user_id \
                 JOIN users u ON u.user_id = p.user_id \
                 WHERE me.user_id = $1 \
                 ORDER BY COALESCE(c.last_chat, c.created_at) DESC, c.chat_id",
            )
            .bind(user.as_str())
            .fetch_all(&db.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(chat, partner, name, last_chat, unread)| {
            Ok(PersonalChatView {
                chat_id: chat_id(chat)?,
                partner_id: user_id(partner)?,
                partner_name: name,
                last_chat: last_chat.map(time).transpose()?,
                unread,
            })
        })
        .collect()
}

/// The user's groups (not deleted), newest first.
pub async fn group_chat_list(
    db: &Database,
    user: &UserId,
) -> Result<Vec<GroupChatView>, QueryError> {
    let rows: Vec<(String, Option<String>, Option<i64>, i64)> = db
        .read(|| {
            sqlx::query_as(
                "SELECT c.chat_id, c.name, c.last_chat, \
                    (SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.chat_id AND m.version > me.read_version AND m.sender_id <> me.user_id AND m.deleted = 0) \
                 FROM chat_members me \
                 JOIN chats c ON c.chat_id = me.chat_id AND c.kind = 'group' AND c.deleted = 0 \
                 WHERE me.user_id = $1 \
                 ORDER BY COALESCE(c.last_chat, c.created_at) DESC, c.chat_id",
            )
            .bind(user.as_str())
            .fetch_all(&db.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(chat, name, last_chat, unread)| {
            Ok(GroupChatView {
                chat_id: chat_id(chat)?,
                name: name.unwrap_or_default(),
                last_chat: last_chat.map(time).transpose()?,
                unread,
            })
        })
        .collect()
}

/// Which kind of chat a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SelfChat,
    Personal,
    Group,
}

/// A chat's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatView {
    pub id: ChatId,
    pub kind: Kind,
    pub name: String,
    pub description: String,
    pub admin: Option<UserId>,
    pub deleted: bool,
}

/// A current member, with their name and read pointer (-1: nothing read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub id: UserId,
    pub name: String,
    pub read_version: i64,
}

/// `chat_id, kind, name, description, admin, deleted`.
type ChatRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// A chat's header, if it exists.
pub async fn chat(db: &Database, id: &ChatId) -> Result<Option<ChatView>, QueryError> {
    let row: Option<ChatRow> = db
        .read(|| {
            sqlx::query_as(
        "SELECT chat_id, kind, name, description, admin, deleted FROM chats WHERE chat_id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(&db.pool)
        })
        .await?;
    row.map(|(id, kind, name, description, admin, deleted)| {
        let kind = match kind.as_str() {
            "self" => Kind::SelfChat,
            "personal" => Kind::Personal,
            "group" => Kind::Group,
            other => return Err(QueryError::Corrupt(format!("chat kind {other:?}"))),
        };
        Ok(ChatView {
            id: chat_id(id)?,
            kind,
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            admin: admin.map(user_id).transpose()?,
            deleted: deleted != 0,
        })
    })
    .transpose()
}

/// The current members of a chat, by id.
pub async fn members(db: &Database, chat: &ChatId) -> Result<Vec<MemberView>, QueryError> {
    let rows: Vec<(String, Option<String>, i64)> = db
        .read(|| {
            sqlx::query_as(
                "SELECT m.user_id, u.name, m.read_version FROM chat_members m LEFT JOIN users u ON u.user_id = m.user_id \
                 WHERE m.chat_id = $1 ORDER BY m.user_id",
            )
            .bind(chat.as_str())
            .fetch_all(&db.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(id, name, read_version)| {
            Ok(MemberView {
                id: user_id(id)?,
                name: name.unwrap_or_default(),
                read_version,
            })
        })
        .collect()
}

/// A member's receipt pointers as message ids: the last message delivered to them and the last
/// they read (`None`: none yet, or a message the read models do not hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptView {
    pub user: UserId,
    pub delivered: Option<MessageId>,
    pub read: Option<MessageId>,
}

/// The receipts of every current member of `chat` (or of `only` that member), by id: two
/// indexed lookups a member, whatever the number of messages. A read delivers too, so the
/// delivered pointer is the greater of the two.
pub async fn receipts(
    db: &Database,
    chat: &ChatId,
    only: Option<&UserId>,
) -> Result<Vec<ReceiptView>, QueryError> {
    let rows: Vec<(String, Option<String>, Option<String>)> = db
        .read(|| {
            sqlx::query_as(
                "SELECT cm.user_id, d.message_id, r.message_id FROM chat_members cm \
                 LEFT JOIN messages d ON d.chat_id = cm.chat_id AND d.version = \
                    (CASE WHEN cm.delivered_version > cm.read_version THEN cm.delivered_version ELSE cm.read_version END) \
                 LEFT JOIN messages r ON r.chat_id = cm.chat_id AND r.version = cm.read_version \
                 WHERE cm.chat_id = $1 AND ($2 = '' OR cm.user_id = $2) ORDER BY cm.user_id",
            )
            .bind(chat.as_str())
            .bind(only.map_or("", UserId::as_str))
            .fetch_all(&db.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(user, delivered, read)| {
            Ok(ReceiptView {
                user: user_id(user)?,
                delivered: delivered.map(message_id).transpose()?,
                read: read.map(message_id).transpose()?,
            })
        })
        .collect()
}

/// The names of `users` (unknown ids are left out).
pub async fn names(
    db: &Database,
    users: &[UserId],
) -> Result<std::collections::HashMap<UserId, String>, QueryError> {
    if users.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT user_id, name FROM users WHERE user_id IN {}",
        infra::db::value_rows(1, users.len())
    );
    db.read(|| {
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for user in users {
            query = query.bind(user.as_str());
        }
        query.fetch_all(&db.pool)
    })
    .await?
    .into_iter()
    .map(|(id, name)| Ok((user_id(id)?, name)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::like_literal;

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(like_literal("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(like_literal("plain"), "plain");
    }
}
